//! `cucn compare`: Table II from several runs, and their per-class accuracies in one chart.

use std::path::PathBuf;

use burn::tensor::Device;
use cucn::eval::compare::compare_markdown;

/// Arguments of `cucn compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Run directories (each evaluated first if it has no report yet).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write comparison.md and per_class.png.
    #[arg(long, default_value = "comparison")]
    pub out: PathBuf,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `cucn compare`.
pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let rows = cucn::ablate::compare(&args.runs, &args.out, &Device::default())?;
    if !args.quiet {
        print!("{}", compare_markdown(&rows));
        println!("\nwrote {}", args.out.display());
    }
    Ok(())
}
