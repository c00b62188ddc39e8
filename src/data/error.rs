//! Errors of dataset loading and the input pipeline. Every message names the file, and the line or
//! row where one applies, so that a researcher can find and fix the input.

use std::path::PathBuf;

use super::sample::BadSample;

/// An error while reading a dataset or preparing its images.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file or folder could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file the format requires is not there.
    #[error("{what} not found: expected {}", path.display())]
    MissingListFile {
        /// What the file is, e.g. "RAF-DB label list".
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The dataset as a whole is unusable (wrong header, mismatched files, bad option).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file or folder at fault.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A class folder whose name is not one of the known classes.
    #[error(
        "{}: unknown class folder {name:?}; accepted names (case-insensitive): {accepted}",
        path.display()
    )]
    UnknownClassFolder {
        /// The folder.
        path: PathBuf,
        /// Its name.
        name: String,
        /// The accepted folder names, comma-separated.
        accepted: String,
    },
    /// One image or line is bad and `--skip-bad` was not given. `more` counts the other bad
    /// samples found, which `cucn data check` lists.
    #[error(
        "{}: {}{}",
        first.location,
        first.problem,
        more_note(*more)
    )]
    BadSample {
        /// The first bad sample found (in file order).
        first: Box<BadSample>,
        /// How many further bad samples were found.
        more: usize,
    },
    /// A bad image met while streaming batches (e.g. changed on disk after validation).
    #[error("{location}: {problem}")]
    Image {
        /// The sample's name (file path, or CSV file and row).
        location: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The dataset has no sample left in a split that is needed.
    #[error("{}: no usable samples in the {split} split", path.display())]
    Empty {
        /// The dataset root.
        path: PathBuf,
        /// The split's name.
        split: &'static str,
    },
}

fn more_note(more: usize) -> String {
    if more == 0 {
        " (use --skip-bad to skip bad samples)".to_string()
    } else {
        format!(
            " (and {more} more bad samples; `cucn data check` lists them all, --skip-bad skips them)"
        )
    }
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A whole-dataset problem at `path`.
    pub fn invalid(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        DataError::Invalid {
            path: path.into(),
            message: message.into(),
        }
    }
}
