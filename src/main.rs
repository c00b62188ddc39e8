//! The `cucn` command line: parses arguments and maps errors to exit codes (CLI.md): 0 success,
//! 1 failure, 2 usage error, 3 partial success.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

/// Facial expression recognition with CUCN (ResNet + CBAM, class-weighted loss, RUL mixing).
#[derive(Parser, Debug)]
#[command(name = "cucn", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Synthetic data -> train -> eval -> report, in a few minutes (--quick: about one).
    Demo(cli::demo::DemoArgs),
    /// Generate the procedural facial-expression benchmark (RAF-DB layout).
    Synth(cli::synth::SynthArgs),
    /// Validate a dataset: counts per class and split, image sizes, every problem found.
    Data {
        #[command(subcommand)]
        cmd: cli::data::DataCommand,
    },
    /// Train CUCN on a dataset, writing a run directory.
    Train(cli::train::TrainArgs),
    /// Evaluate a trained run: metrics, confusion matrix, per-class chart.
    Eval(cli::eval::EvalArgs),
    /// Table II from several runs (method, dataset, max/min class accuracy, accuracy).
    Compare(cli::compare::CompareArgs),
    /// Train the paper's ablation variants with the same seed and data, then compare them.
    Ablate(cli::ablate::AblateArgs),
    /// Rank training samples by learned uncertainty and disagreement to find bad labels.
    Audit(cli::audit::AuditArgs),
    /// Expressions of the faces in photos or folders (JSON, CSV or a table).
    Predict(cli::predict::PredictArgs),
    /// Export a trained model to safetensors (torchvision-style names).
    Export(cli::export::ExportArgs),
    /// Measure training and inference speed and peak memory.
    Bench(cli::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Training stops at a safe point on the first Ctrl-C (a second one exits at once); other
    // commands keep the default behaviour of exiting at once.
    let interrupt = Arc::new(AtomicBool::new(false));
    if matches!(cli.command, Command::Train(_) | Command::Demo(_)) {
        let flag = interrupt.clone();
        let _ = ctrlc::set_handler(move || {
            if flag.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupt: stopping after the current batch (Ctrl-C again to quit now)");
        });
    }
    let result = match &cli.command {
        Command::Demo(args) => cli::demo::run(args, interrupt.clone()).map(|()| ExitCode::SUCCESS),
        Command::Eval(args) => cli::eval::run(args).map(|()| ExitCode::SUCCESS),
        Command::Synth(args) => cli::synth::run(args).map(|()| ExitCode::SUCCESS),
        Command::Data { cmd } => cli::data::run(cmd).map(|()| ExitCode::SUCCESS),
        Command::Predict(args) => cli::predict::run(args),
        Command::Train(args) => cli::train::run(args, interrupt).map(|()| ExitCode::SUCCESS),
        Command::Compare(args) => cli::compare::run(args).map(|()| ExitCode::SUCCESS),
        Command::Ablate(args) => cli::ablate::run(args).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => cli::audit::run(args).map(|()| ExitCode::SUCCESS),
        Command::Export(args) => cli::export::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => cli::bench::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
