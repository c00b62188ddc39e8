//! `cucn eval`: the report of a trained run on its held-out split (or on other data).

use std::path::PathBuf;

use burn::tensor::Device;
use cucn::data::DatasetFormat;
use cucn::evaluate::{DataOverride, evaluate_run};

/// Arguments of `cucn eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Run directory written by `cucn train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Format of other data to evaluate on (with --data).
    #[arg(long, value_enum, requires = "data")]
    pub format: Option<DatasetFormat>,
    /// Other data to evaluate on (its test split, else its validation split).
    #[arg(long, requires = "format")]
    pub data: Option<PathBuf>,
    /// Where to write the report (default RUN/report).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print report.json to standard output.
    #[arg(long)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `cucn eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let data = match (&args.format, &args.data) {
        (Some(format), Some(path)) => Some(DataOverride {
            format: *format,
            path: path.clone(),
        }),
        _ => None,
    };
    let e = evaluate_run(
        &args.run,
        data.as_ref(),
        args.out.as_deref(),
        &Device::default(),
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e.report)?);
    } else if !args.quiet {
        print!(
            "{}",
            e.report.to_markdown(&format!(
                "{} ({} split)",
                args.run.display(),
                e.split.name()
            ))
        );
        println!("\nwrote {}", e.dir.display());
    }
    Ok(())
}
