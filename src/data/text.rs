//! Line-by-line reading of label lists and CSV files, streamed so that memory does not grow with
//! the file, plus the small CSV field splitter the formats need.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::error::DataError;

/// One line of a text file: its 1-based number and its text (without the line ending and a
/// leading byte-order mark), or the reason it cannot be read as text.
pub(crate) struct Line {
    pub number: usize,
    pub text: Result<String, String>,
}

/// Streams the lines of a text file.
pub(crate) struct LineReader {
    path: PathBuf,
    reader: BufReader<File>,
    buf: Vec<u8>,
    number: usize,
}

impl LineReader {
    /// Opens `path`; a missing file is reported as `MissingListFile` describing `what` it is.
    pub fn open(path: &Path, what: &'static str) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => DataError::MissingListFile {
                what,
                path: path.to_path_buf(),
            },
            _ => DataError::io(path, e),
        })?;
        Ok(LineReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 16, file),
            buf: Vec::new(),
            number: 0,
        })
    }

    /// The next line, `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<Line>, DataError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| DataError::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        let mut bytes = self.buf.as_slice();
        while let [rest @ .., b'\n' | b'\r'] = bytes {
            bytes = rest;
        }
        if self.number == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => Err(format!(
                "not valid UTF-8 text (bad byte at column {})",
                e.valid_up_to() + 1
            )),
        };
        Ok(Some(Line {
            number: self.number,
            text,
        }))
    }
}

/// Splits one CSV line into fields: commas separate, double quotes group (with `""` as an escaped
/// quote), surrounding spaces are trimmed. Fails on an unterminated quote.
pub(crate) fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match (c, in_quotes) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => in_quotes = !in_quotes,
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err("unterminated quoted field".into());
    }
    fields.push(field.trim().to_string());
    Ok(fields)
}

/// The positions of the `wanted` columns in a CSV header row (names compared case-insensitively),
/// or the name of the first column that is missing.
pub(crate) fn column_indices(header: &[String], wanted: &[&str]) -> Result<Vec<usize>, String> {
    wanted
        .iter()
        .map(|w| {
            header
                .iter()
                .position(|h| h.eq_ignore_ascii_case(w))
                .ok_or_else(|| format!("header has no column {w:?} (found {})", header.join(",")))
        })
        .collect()
}

/// The first of `candidates` that exists, else the first candidate (so that the "not found"
/// message names the canonical place).
pub(crate) fn first_existing(candidates: &[PathBuf]) -> PathBuf {
    candidates
        .iter()
        .find(|p| p.exists())
        .unwrap_or(&candidates[0])
        .clone()
}

/// `path` relative to `root` when it lies below it, for short messages.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The file name of `path`, for locations such as `training.csv line 7`.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_handle_quotes_and_spaces() {
        assert_eq!(
            split_csv(r#"a, "b,c" ,"say ""hi""",,"#).unwrap(),
            vec!["a", "b,c", r#"say "hi""#, "", ""]
        );
        assert!(split_csv(r#"a,"b"#).is_err());
    }
}
