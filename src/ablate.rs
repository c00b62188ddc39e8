//! `cucn compare` and `cucn ablate` as library calls: Table II of the paper from trained runs, and
//! the runs themselves (baseline, +W, +W+CBAM; optionally the ResNet-50 pair) trained with the same
//! seed and data.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::eval::compare::{CompareRow, write_comparison};
use crate::eval::report::Report;
use crate::evaluate::{RunEvalError, evaluate_run, run_config};
use crate::train::{ClassWeights, TrainConfig, TrainError, TrainOptions, train};

/// Why `compare` or `ablate` stopped.
#[derive(Debug, thiserror::Error)]
pub enum AblateError {
    /// Training a variant.
    #[error("variant {variant}: {source}")]
    Train {
        /// Variant name.
        variant: String,
        /// Cause.
        source: TrainError,
    },
    /// Evaluating or comparing.
    #[error(transparent)]
    Eval(#[from] RunEvalError),
}

/// A run's report: `RUN/report/report.json`, computed first if the run has none.
pub fn run_report(run: &Path, device: &Device) -> Result<Report, RunEvalError> {
    let path = run.join("report").join("report.json");
    if path.is_file() {
        return Report::load(&path).map_err(RunEvalError::Eval);
    }
    Ok(evaluate_run(run, None, None, device)?.report)
}

/// The Table II row of a run: its directory name as the method, its dataset as the dataset.
pub fn compare_row(run: &Path, device: &Device) -> Result<CompareRow, RunEvalError> {
    let config = run_config(run)?;
    let dataset = match (&config.data.format, &config.data.path) {
        (Some(f), Some(p)) => format!(
            "{f} ({})",
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ),
        _ => "unknown".into(),
    };
    Ok(CompareRow {
        method: run
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| run.display().to_string()),
        dataset,
        report: run_report(run, device)?,
    })
}

/// Writes `comparison.md` and `per_class.png` for `runs` into `out`; returns the rows.
pub fn compare(
    runs: &[PathBuf],
    out: &Path,
    device: &Device,
) -> Result<Vec<CompareRow>, RunEvalError> {
    let rows = runs
        .iter()
        .map(|r| compare_row(r, device))
        .collect::<Result<Vec<_>, _>>()?;
    write_comparison(&rows, out)?;
    Ok(rows)
}

/// The variants of Table II: (name, depth, class weights on, CBAM on).
pub fn variants(with_resnet50: bool) -> Vec<(&'static str, usize, bool, bool)> {
    let mut v = vec![
        ("resnet18", 18, false, false),
        ("resnet18+W", 18, true, false),
        ("resnet18+W+CBAM", 18, true, true),
    ];
    if with_resnet50 {
        v.push(("resnet50+W", 50, true, false));
        v.push(("resnet50+W+CBAM", 50, true, true));
    }
    v
}

/// Trains (or resumes) every variant of `base` into `out/<variant>`, evaluates each and writes the
/// comparison into `out`. `weights` is the class-weight mode of the "+W" variants.
pub fn ablate(
    base: &TrainConfig,
    weights: &ClassWeights,
    with_resnet50: bool,
    out: &Path,
    quiet: bool,
    device: &Device,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Vec<CompareRow>, AblateError> {
    let mut runs = Vec::new();
    for (name, depth, weighted, cbam) in variants(with_resnet50) {
        let mut config = base.clone();
        config.model.depth = depth;
        config.model.cbam = cbam;
        config.train.class_weights = if weighted {
            weights.clone()
        } else {
            ClassWeights::None
        };
        let dir = out.join(name);
        progress(&format!("training {name} in {}", dir.display()));
        let options = TrainOptions {
            resume: dir.join("checkpoints").exists(),
            out: dir.clone(),
            quiet,
            interrupt: None,
            device: device.clone(),
            replicas: Vec::new(),
        };
        train(config, &options).map_err(|source| AblateError::Train {
            variant: name.into(),
            source,
        })?;
        evaluate_run(&dir, None, None, device)?;
        runs.push(dir);
    }
    Ok(compare(&runs, out, device)?)
}
