//! `cucn demo`: synthetic data -> train -> eval -> report, then the headline figures.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::Device;
use cucn::demo::{DemoSize, run as run_demo};

/// Arguments of `cucn demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// About one minute instead of a few: fewer, smaller images and 2 epochs.
    #[arg(long)]
    pub quick: bool,
    /// Where to put the data, the run and the report.
    #[arg(long, default_value = "cucn-demo")]
    pub out: PathBuf,
    /// Only the final summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `cucn demo`.
pub fn run(args: &DemoArgs, interrupt: Arc<AtomicBool>) -> anyhow::Result<()> {
    let size = if args.quick {
        DemoSize::Quick
    } else {
        DemoSize::Full
    };
    let quiet = args.quiet || args.json;
    let say = |msg: &str| {
        if !quiet {
            eprintln!("{msg}");
        }
    };
    let s = run_demo(
        size,
        &args.out,
        quiet,
        Some(interrupt),
        &Device::default(),
        &say,
    )?;
    let r = &s.evaluation.report;
    if args.json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    println!("accuracy            {:.2}%", 100.0 * r.accuracy);
    println!("mean class accuracy {:.2}%", 100.0 * r.mean_class_accuracy);
    println!("macro-F1            {:.2}%", 100.0 * r.macro_f1);
    println!(
        "max / min class acc {:.1}% / {:.1}%",
        100.0 * r.max_class_accuracy,
        100.0 * r.min_class_accuracy
    );
    println!("data    {}", s.data_dir.display());
    println!("run     {}", s.train.run_dir.display());
    println!(
        "report  {} (report.md, confusion.png, per_class.png)",
        s.evaluation.dir.display()
    );
    Ok(())
}
