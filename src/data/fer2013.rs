//! FER2013 `fer2013.csv`: `emotion,pixels,Usage`, emotion `0 angry, 1 disgust, 2 fear, 3 happy,
//! 4 sad, 5 surprise, 6 neutral`, pixels 2304 space-separated grey values (48x48), Usage
//! `Training` (train split), `PublicTest` (val split) and `PrivateTest` (test split).
//!
//! The pixels are kept in memory as grey bytes (2.3 kB a face, 83 MB for the whole set, a quarter
//! of the CSV's size); they become RGB when a batch is built.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::LoadOptions;
use super::error::DataError;
use super::sample::{ImageSource, Listing, Sample, Split};
use super::text::{LineReader, column_indices, file_name, first_existing, split_csv};
use crate::classes::NUM_BASIC;

/// FER2013's image side.
pub(crate) const SIDE: u32 = 48;
/// FER2013 emotion codes 0..6 (angry, disgust, fear, happy, sad, surprise, neutral) to canonical.
const TO_CANONICAL: [usize; 7] = [5, 2, 1, 3, 4, 0, 6];
const COLUMNS: [&str; 3] = ["emotion", "pixels", "Usage"];

/// `fer2013.csv` under `root` (also `root/fer2013/fer2013.csv` as the Kaggle archive unpacks),
/// or `root` itself when it is the file.
pub(crate) fn csv_path(root: &Path) -> PathBuf {
    if root.is_file() {
        return root.to_path_buf();
    }
    first_existing(&[root.join("fer2013.csv"), root.join("fer2013/fer2013.csv")])
}

/// Lists FER2013's samples.
pub(crate) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    if opts.classes.is_some_and(|k| k != NUM_BASIC) {
        return Err(DataError::invalid(root, "FER2013 has 7 classes"));
    }
    let path = csv_path(root);
    let mut rows = RowReader::open(&path)?;
    let mut listing = Listing::new(NUM_BASIC);
    while let Some((at, row)) = rows.next_row()? {
        let sample = row.and_then(|r| {
            let split = usage_split(&r.usage)?;
            let label = emotion(&r.emotion)?;
            let pixels = parse_pixels(&r.pixels)?;
            Ok((split, label, pixels))
        });
        match sample {
            Ok((split, label, pixels)) => listing.split_mut(split).push(Sample {
                source: grey_source(pixels),
                label,
                name: at,
                origin: String::new(),
            }),
            Err(problem) => listing.bad(at, problem),
        }
    }
    Ok(listing)
}

/// The fields of one FER2013 row.
pub(crate) struct FerRow {
    pub emotion: String,
    pub pixels: String,
    pub usage: String,
}

/// A row's location (`fer2013.csv line 7`) and its fields, or what is wrong with it.
pub(crate) type LocatedRow = (String, Result<FerRow, String>);

/// Streams the rows of `fer2013.csv`, skipping the header and blank lines.
pub(crate) struct RowReader {
    lines: LineReader,
    path: PathBuf,
    shown: String,
    columns: [usize; 3],
}

impl RowReader {
    /// Opens `fer2013.csv`.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        Ok(RowReader {
            lines: LineReader::open(path, "FER2013 CSV (fer2013.csv)")?,
            path: path.to_path_buf(),
            shown: file_name(path),
            columns: [0, 1, 2],
        })
    }

    /// The next row with its location (`fer2013.csv line 7`), or that line's problem; blank lines
    /// are skipped and a header row is read, not returned.
    pub fn next_row(&mut self) -> Result<Option<LocatedRow>, DataError> {
        while let Some(line) = self.lines.next_line()? {
            let at = format!("{} line {}", self.shown, line.number);
            let fields = match line.text.and_then(|t| split_csv(&t)) {
                Ok(f) if f.iter().all(|s| s.is_empty()) => continue,
                Ok(f) => f,
                Err(problem) => return Ok(Some((at, Err(problem)))),
            };
            if line.number == 1 && fields.iter().any(|f| f.eq_ignore_ascii_case("pixels")) {
                let cols = column_indices(&fields, &COLUMNS)
                    .map_err(|m| DataError::invalid(&self.path, format!("line 1: {m}")))?;
                self.columns = [cols[0], cols[1], cols[2]];
                continue;
            }
            let needed = self.columns.iter().max().map_or(0, |m| m + 1);
            if fields.len() < needed {
                let problem = format!("expected {needed} columns, found {}", fields.len());
                return Ok(Some((at, Err(problem))));
            }
            let [e, p, u] = self.columns;
            let row = FerRow {
                emotion: fields[e].clone(),
                pixels: fields[p].clone(),
                usage: fields[u].clone(),
            };
            return Ok(Some((at, Ok(row))));
        }
        Ok(None)
    }
}

/// The split of a `Usage` value.
pub(crate) fn usage_split(usage: &str) -> Result<Split, String> {
    match usage {
        "Training" => Ok(Split::Train),
        "PublicTest" => Ok(Split::Val),
        "PrivateTest" => Ok(Split::Test),
        other => Err(format!(
            "Usage {other:?} is not Training, PublicTest or PrivateTest"
        )),
    }
}

fn emotion(text: &str) -> Result<usize, String> {
    let code: i64 = text
        .parse()
        .map_err(|_| format!("emotion {text:?} is not a number"))?;
    usize::try_from(code)
        .ok()
        .and_then(|c| TO_CANONICAL.get(c).copied())
        .ok_or_else(|| format!("emotion {code} out of range 0..6"))
}

/// Parses the 2304 space-separated grey values of a 48x48 face.
pub(crate) fn parse_pixels(text: &str) -> Result<Arc<[u8]>, String> {
    let expected = (SIDE * SIDE) as usize;
    let mut pixels = Vec::with_capacity(expected);
    for v in text.split_ascii_whitespace() {
        let p: u8 = v
            .parse()
            .map_err(|_| format!("pixel value {v:?} is not an integer 0..255"))?;
        pixels.push(p);
    }
    if pixels.len() != expected {
        return Err(format!(
            "expected {expected} pixel values (48x48), found {}",
            pixels.len()
        ));
    }
    Ok(pixels.into())
}

/// The in-memory source of a 48x48 grey face.
pub(crate) fn grey_source(pixels: Arc<[u8]>) -> ImageSource {
    ImageSource::Grey {
        width: SIDE,
        height: SIDE,
        pixels,
    }
}
