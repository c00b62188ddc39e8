//! Errors of the model library: configuration, weight import/export and checkpoints.

use std::path::PathBuf;

/// What can go wrong building, loading or saving a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Depth other than 18, 34, 50.
    #[error("unsupported ResNet depth {0}: use 18, 34 or 50")]
    UnsupportedDepth(usize),
    /// Input side below the network's minimum.
    #[error("input size {0} px is too small: the network needs at least 32 px")]
    InputTooSmall(usize),
    /// Class count out of range.
    #[error("number of classes {0} is out of range (2..=1000)")]
    BadClassCount(usize),
    /// A checkpoint tensor has another shape than the model's parameter.
    #[error(
        "{file}: tensor '{key}' has shape {found:?} in the checkpoint but the model expects {expected:?}"
    )]
    ShapeMismatch {
        /// The checkpoint.
        file: PathBuf,
        /// Parameter name (checkpoint naming).
        key: String,
        /// Model's shape.
        expected: Vec<usize>,
        /// Checkpoint's shape.
        found: Vec<usize>,
    },
    /// A checkpoint that cannot be read (not a PyTorch file, truncated, malicious...).
    #[error("{file}: cannot read checkpoint: {reason}")]
    BadCheckpoint {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// A checkpoint without any tensor the model can use.
    #[error(
        "{file}: no tensor of the checkpoint matches the model ({unused} unused keys, e.g. {example})"
    )]
    NothingMatched {
        /// The file.
        file: PathBuf,
        /// Count of unused keys.
        unused: usize,
        /// One of them.
        example: String,
    },
    /// File system error with the path concerned.
    #[error("{path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A file that is not a cucn model or checkpoint.
    #[error("{path}: not a cucn model: {reason}")]
    NotAModel {
        /// Path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
