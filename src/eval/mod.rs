//! Evaluation without the model: metrics, reports, plots, run comparison and label audit.
//!
//! The commands `cucn eval/compare/ablate/audit` run the network and hand its outputs (labels,
//! probabilities, uncertainties) to this module.

pub mod audit;
pub mod compare;
pub mod error;
pub mod metrics;
pub mod plots;
pub mod report;
pub mod text;

pub use error::EvalError;

/// Writes `bytes` to `path` atomically, naming the path in the error.
pub(crate) fn write_output(path: &std::path::Path, bytes: &[u8]) -> Result<(), EvalError> {
    crate::util::write_atomic(path, bytes).map_err(|e| EvalError::io(path, e))
}
