//! `cucn eval` as a library call: run a trained model over a held-out split and write the report
//! (metrics, confusion matrix, per-class chart) beside the run.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::data::{self, DataError, DatasetFormat, Split};
use crate::eval::EvalError;
use crate::eval::report::{Report, evaluate, write_report};
use crate::infer;
use crate::model::ModelError;
use crate::model::weights::load_model;
use crate::train::{TrainConfig, checkpoint};

/// What can stop an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum RunEvalError {
    /// Model or checkpoint.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Dataset.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Metrics or report writing.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// Nothing says where the data is.
    #[error("{0}")]
    Usage(String),
}

/// Which data to evaluate on, when not the run's own.
#[derive(Clone, Debug)]
pub struct DataOverride {
    /// Format.
    pub format: DatasetFormat,
    /// Root.
    pub path: PathBuf,
}

/// A finished evaluation.
pub struct RunEvaluation {
    /// The report.
    pub report: Report,
    /// Where it was written.
    pub dir: PathBuf,
    /// The split evaluated (test, else validation).
    pub split: Split,
}

/// The training configuration stored with a run's best (else last) checkpoint.
pub fn run_config(run: &Path) -> Result<TrainConfig, ModelError> {
    let dir = checkpoint::best_or_last(run).ok_or_else(|| ModelError::NotAModel {
        path: run.to_path_buf(),
        reason: "not a run directory (no checkpoints/best or checkpoints/last)".into(),
    })?;
    Ok(checkpoint::read_state(&dir)?.config)
}

/// Evaluates the best model of `run` on the held-out split (test, else validation) of its own data
/// or of `data`, and writes the report into `out` (default `RUN/report`).
pub fn evaluate_run(
    run: &Path,
    data: Option<&DataOverride>,
    out: Option<&Path>,
    device: &Device,
) -> Result<RunEvaluation, RunEvalError> {
    let config = run_config(run)?;
    let (model, network) = load_model(&crate::model_file(run)?, device)?;
    let (format, root) = match data {
        Some(d) => (d.format, d.path.clone()),
        None => (
            config
                .data
                .format
                .ok_or_else(|| RunEvalError::Usage("the run has no data format".into()))?,
            config
                .data
                .path
                .clone()
                .ok_or_else(|| RunEvalError::Usage("the run has no data path".into()))?,
        ),
    };
    let mut options = config.load_options();
    if data.is_some() {
        options.label_file = None;
    }
    let dataset = data::load(format, &root, &options)?;
    let split = [Split::Test, Split::Val]
        .into_iter()
        .find(|s| !dataset.samples(*s).is_empty())
        .ok_or(DataError::Empty {
            path: root.clone(),
            split: "test",
        })?;
    if dataset.num_classes != network.num_classes {
        return Err(RunEvalError::Usage(format!(
            "the model has {} classes but {} has {}",
            network.num_classes,
            root.display(),
            dataset.num_classes
        )));
    }
    let outputs = infer::run(
        &model,
        dataset.samples(split).to_vec().into(),
        network.input_size,
        config.train.batch,
        config.train.workers,
        device,
        &mut |_| {},
    )?;
    let names = dataset.class_names();
    let report = evaluate(
        &outputs.labels,
        &outputs.probabilities,
        Some(&outputs.uncertainty),
        names,
    )?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.join("report"));
    let title = run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    write_report(&report, &dir, &title)?;
    Ok(RunEvaluation { report, dir, split })
}
