//! The error type of the evaluation module.

use std::path::PathBuf;

/// Everything that can go wrong while computing metrics or writing reports and plots.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The inputs are inconsistent (lengths differ, a label is out of range, a value is not finite).
    #[error("invalid evaluation input: {0}")]
    Input(String),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file that could not be read or written.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An input file (`report.json`, `synth_meta.csv`) could not be parsed or is inconsistent.
    #[error("{}: {message}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Drawing a chart failed.
    #[error("drawing failed: {0}")]
    Plot(String),
    /// Encoding a PNG failed.
    #[error("PNG encoding failed: {0}")]
    Encode(#[from] image::ImageError),
}

impl EvalError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        EvalError::Io {
            path: path.into(),
            source,
        }
    }
}
