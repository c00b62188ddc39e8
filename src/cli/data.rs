//! `cucn data check`: validate a dataset and print its counts, image sizes and every problem.

use std::path::PathBuf;

use anyhow::{Context, bail};
use cucn::data::{self, DatasetFormat, LoadOptions};

/// Dataset commands.
#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Validate a dataset: counts per class and split, image sizes, and every problem found.
    Check(CheckArgs),
}

/// Arguments of `cucn data check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Dataset format.
    #[arg(long, value_enum)]
    pub format: DatasetFormat,
    /// Dataset root folder (or the CSV file for fer2013).
    #[arg(long)]
    pub data: PathBuf,
    /// RAF-DB: alternative label list (e.g. a noisy-label protocol file).
    #[arg(long)]
    pub label_file: Option<PathBuf>,
    /// Number of classes for AffectNet, FERPlus and folders.
    #[arg(long, value_parser = clap::value_parser!(u8).range(7..=8))]
    pub classes: Option<u8>,
    /// Report problems but succeed: training with --skip-bad would skip those samples.
    #[arg(long)]
    pub skip_bad: bool,
    /// AffectNet: widen face boxes by this fraction of their size on every side.
    #[arg(long, default_value_t = 0.0)]
    pub crop_margin: f32,
    /// Refuse images over this many megapixels (decompression bombs).
    #[arg(long, default_value_t = data::decode::DEFAULT_MAX_PIXELS as f64 / 1e6)]
    pub max_megapixels: f64,
    /// Also write every problem to this CSV file (`location,problem`).
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `data` subcommand.
pub fn run(cmd: &DataCommand) -> anyhow::Result<()> {
    match cmd {
        DataCommand::Check(args) => check(args),
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<()> {
    if args.crop_margin < 0.0 || !args.crop_margin.is_finite() {
        bail!("--crop-margin must be a non-negative number");
    }
    if args.max_megapixels.is_nan() || args.max_megapixels <= 0.0 {
        bail!("--max-megapixels must be positive");
    }
    let opts = LoadOptions {
        label_file: args.label_file.clone(),
        classes: args.classes.map(usize::from),
        skip_bad: args.skip_bad,
        crop_margin: args.crop_margin,
        max_pixels: (args.max_megapixels * 1e6) as u64,
        ..LoadOptions::default()
    };
    let report = data::check(args.format, &args.data, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
    }
    if let Some(path) = &args.report {
        data::write_problems_csv(path, &report.problems)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let n = report.problems.len();
    if n > 0 && !args.skip_bad {
        bail!(
            "{n} problem(s) in {}; fix them, or pass --skip-bad to train without those samples",
            args.data.display()
        );
    }
    Ok(())
}
