//! Training checkpoints: `checkpoints/last` and `checkpoints/best`, each a folder with the model
//! (`model.bpk`, self-describing), the optimizer state (`optimizer.bpk`) and `state.json` (position,
//! history, data fingerprint, resolved config). A folder is written complete under a temporary
//! name and then swapped in, so a kill at any moment leaves the previous checkpoint usable.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::config::TrainConfig;
use super::history::EpochMetrics;
use crate::model::optim::CucnOptimizer;
use crate::model::weights::{load_model, save_model};
use crate::model::{Cucn, CucnConfig, ModelError};

/// Where training stands.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainState {
    /// Epochs fully done.
    pub epochs_done: usize,
    /// Batches done in the current (unfinished) epoch; 0 at an epoch boundary.
    pub batches_done: usize,
    /// Running sums of the unfinished epoch: loss x samples, correct, samples, seconds.
    pub partial: PartialEpoch,
    /// One entry per finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Best test accuracy so far and its epoch (1-based).
    pub best: Option<(f64, usize)>,
    /// The dataset's fingerprint.
    pub data_fingerprint: String,
    /// Class weights used.
    pub class_weights: Vec<f64>,
    /// The resolved configuration.
    pub config: TrainConfig,
}

/// Sums over the batches done so far in an epoch.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PartialEpoch {
    /// Sum of batch loss x batch size.
    pub loss_sum: f64,
    /// Correct training predictions.
    pub correct: usize,
    /// Samples seen.
    pub seen: usize,
    /// Seconds spent.
    pub seconds: f64,
}

/// What a checkpoint folder holds once loaded.
pub struct Checkpoint {
    /// The network (on the device it was loaded to).
    pub model: Cucn,
    /// Its architecture.
    pub network: CucnConfig,
    /// The training position.
    pub state: TrainState,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ModelError + '_ {
    move |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a checkpoint folder at `dir` atomically (build `dir.tmp`, then swap).
pub fn save(
    dir: &Path,
    model: &Cucn,
    network: &CucnConfig,
    optim: &CucnOptimizer,
    state: &TrainState,
) -> Result<(), ModelError> {
    let tmp = with_suffix(dir, "tmp");
    let old = with_suffix(dir, "old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    save_model(model, network, &tmp.join("model.bpk"))?;
    let opt_path = tmp.join("optimizer.bpk");
    let bytes = optim
        .state_bytes()
        .map_err(|reason| ModelError::BadCheckpoint {
            file: opt_path.clone(),
            reason,
        })?;
    crate::util::write_atomic(&opt_path, &bytes).map_err(io(&opt_path))?;
    let state_path = tmp.join("state.json");
    let json = serde_json::to_vec_pretty(state).expect("state serializes");
    crate::util::write_atomic(&state_path, &json).map_err(io(&state_path))?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        std::fs::rename(dir, &old).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(&old))?;
    }
    Ok(())
}

fn with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The usable folder for `dir`: itself, or the previous one left by a kill mid-swap.
pub fn usable(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), with_suffix(dir, "old")]
        .into_iter()
        .find(|d| d.join("state.json").is_file() && d.join("model.bpk").is_file())
}

/// The checkpoint folder a run directory is used through: `checkpoints/best`, else
/// `checkpoints/last`.
pub fn best_or_last(run: &Path) -> Option<PathBuf> {
    ["best", "last"]
        .iter()
        .find_map(|c| usable(&run.join("checkpoints").join(c)))
}

/// Reads `state.json` of a checkpoint folder.
pub fn read_state(dir: &Path) -> Result<TrainState, ModelError> {
    let path = dir.join("state.json");
    let text = std::fs::read(&path).map_err(io(&path))?;
    serde_json::from_slice(&text).map_err(|e| ModelError::NotAModel {
        path,
        reason: format!("bad checkpoint state: {e}"),
    })
}

/// Loads a checkpoint folder's model and state; the optimizer state is applied by `restore_optim`.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint, ModelError> {
    let state = read_state(dir)?;
    let (model, network) = load_model(&dir.join("model.bpk"), device)?;
    Ok(Checkpoint {
        model,
        network,
        state,
    })
}

/// Restores the optimizer state saved beside a checkpoint.
pub fn restore_optim(
    dir: &Path,
    optim: &mut CucnOptimizer,
    epochs_done: usize,
) -> Result<(), ModelError> {
    let path = dir.join("optimizer.bpk");
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    optim
        .restore(bytes, epochs_done)
        .map_err(|reason| ModelError::BadCheckpoint { file: path, reason })
}
