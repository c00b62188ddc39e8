//! AffectNet (manually annotated): `training.csv` (training split) and `validation.csv` (test
//! split), columns `subDirectory_filePath, face_x, face_y, face_width, face_height,
//! facial_landmarks, expression, valence, arousal`, with or without a header row (the published
//! `validation.csv` has none). Faces are cropped to the bbox columns, widened by the crop margin.
//!
//! Expressions `8 none, 9 uncertain, 10 non-face` are left out (and counted), as is `7 contempt`
//! in 7-class mode; 8-class mode keeps contempt as index 7.

use std::collections::HashMap;
use std::path::Path;

use super::LoadOptions;
use super::error::DataError;
use super::sample::{CropBox, ImageSource, Listing, Sample, Split};
use super::text::{LineReader, column_indices, file_name, first_existing, split_csv};

/// The columns read, in the order of the published files.
const COLUMNS: [&str; 7] = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
];
/// AffectNet codes 0..7 (neutral, happy, sad, surprise, fear, disgust, anger, contempt) to
/// canonical indices.
const TO_CANONICAL: [usize; 8] = [6, 3, 4, 0, 1, 2, 5, 7];
/// Names of the codes 8, 9, 10 that no mode keeps.
const NON_EXPRESSIONS: [&str; 3] = ["none", "uncertain", "non-face"];

/// Lists AffectNet's samples under `root` (the folder holding `Manually_Annotated_file_lists/`
/// or the two CSV files, and `Manually_Annotated_Images/`).
pub(crate) fn list(root: &Path, opts: &LoadOptions) -> Result<Listing, DataError> {
    let num_classes = match opts.classes {
        None | Some(7) => 7,
        Some(8) => 8,
        Some(k) => {
            return Err(DataError::invalid(
                root,
                format!("AffectNet has 7 or 8 classes, not {k}"),
            ));
        }
    };
    let csv = |name: &str| {
        first_existing(&[
            root.join("Manually_Annotated_file_lists").join(name),
            root.join(name),
        ])
    };
    let images = first_existing(&[
        root.join("Manually_Annotated_Images"),
        root.join("Manually_Annotated/Manually_Annotated_Images"),
        root.to_path_buf(),
    ]);
    let mut listing = Listing::new(num_classes);
    let reader = Reader {
        images: &images,
        num_classes,
        margin: f64::from(opts.crop_margin),
    };
    reader.parse(&csv("training.csv"), Split::Train, &mut listing)?;
    let validation = csv("validation.csv");
    if validation.exists() {
        reader.parse(&validation, Split::Test, &mut listing)?;
    }
    Ok(listing)
}

/// What one row turns into.
enum Row {
    Keep {
        path: String,
        label: usize,
        face: CropBox,
    },
    Exclude(String),
}

struct Reader<'a> {
    images: &'a Path,
    num_classes: usize,
    margin: f64,
}

impl Reader<'_> {
    fn parse(&self, csv: &Path, split: Split, listing: &mut Listing) -> Result<(), DataError> {
        let shown = file_name(csv);
        let mut reader = LineReader::open(csv, "AffectNet list")?;
        let mut columns: Vec<usize> = (0..COLUMNS.len()).collect();
        let mut seen: HashMap<String, usize> = HashMap::new();
        while let Some(line) = reader.next_line()? {
            let at = format!("{shown} line {}", line.number);
            let fields = match line.text.and_then(|t| split_csv(&t)) {
                Ok(f) if f.iter().all(|s| s.is_empty()) => continue,
                Ok(f) => f,
                Err(problem) => {
                    listing.bad(at, problem);
                    continue;
                }
            };
            if line.number == 1 && fields[0].eq_ignore_ascii_case(COLUMNS[0]) {
                columns =
                    column_indices(&fields, &COLUMNS).map_err(|m| DataError::invalid(csv, m))?;
                continue;
            }
            match self.row(&fields, &columns) {
                Ok(Row::Keep { path, label, face }) => {
                    if let Some(first) = seen.insert(path.clone(), line.number) {
                        listing.bad(at, format!("duplicate of {path} at line {first}"));
                        continue;
                    }
                    listing.split_mut(split).push(Sample {
                        source: ImageSource::File {
                            path: self.images.join(&path),
                            crop: Some(face),
                        },
                        label,
                        name: path,
                        origin: at,
                    });
                }
                Ok(Row::Exclude(reason)) => listing.exclude(reason),
                Err(problem) => listing.bad(at, problem),
            }
        }
        Ok(())
    }

    fn row(&self, fields: &[String], columns: &[usize]) -> Result<Row, String> {
        let needed = columns.iter().max().map_or(0, |m| m + 1);
        if fields.len() < needed {
            return Err(format!(
                "expected at least {needed} columns, found {}",
                fields.len()
            ));
        }
        let field = |i: usize| fields[columns[i]].as_str();
        let code: i64 = field(6)
            .parse()
            .map_err(|_| format!("expression {:?} is not a number", field(6)))?;
        let code = usize::try_from(code)
            .ok()
            .filter(|&c| c <= 10)
            .ok_or_else(|| format!("expression {code} out of range 0..10"))?;
        if code >= 8 {
            return Ok(Row::Exclude(format!(
                "AffectNet expression {code} ({})",
                NON_EXPRESSIONS[code - 8]
            )));
        }
        if code == 7 && self.num_classes == 7 {
            return Ok(Row::Exclude("AffectNet contempt (7-class mode)".into()));
        }
        let path = field(0);
        if path.is_empty() {
            return Err("empty subDirectory_filePath".into());
        }
        let mut bbox = [0.0f64; 4];
        for (k, v) in bbox.iter_mut().enumerate() {
            let text = field(1 + k);
            *v = text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("{} {text:?} is not a number", COLUMNS[1 + k]))?;
        }
        let [x, y, w, h] = bbox;
        if w <= 0.0 || h <= 0.0 {
            return Err(format!("face box has no area (width {w}, height {h})"));
        }
        let face = CropBox {
            left: x - self.margin * w,
            top: y - self.margin * h,
            width: w * (1.0 + 2.0 * self.margin),
            height: h * (1.0 + 2.0 * self.margin),
        };
        Ok(Row::Keep {
            path: path.to_string(),
            label: TO_CANONICAL[code],
            face,
        })
    }
}
