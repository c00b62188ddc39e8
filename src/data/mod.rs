//! Datasets and the input pipeline: loaders for RAF-DB, AffectNet, FER2013, FERPlus and class
//! folders that map each format's labels to the canonical class order, validation of every input
//! with clear errors, a streaming, parallel, deterministic batch loader, and the procedural
//! synthetic set (`synth`).

mod affectnet;
pub mod augment;
pub mod check;
pub mod decode;
pub mod error;
mod fer2013;
mod ferplus;
mod folder;
pub mod pipeline;
mod rafdb;
pub mod sample;
pub mod synth;
pub mod tensor;
mod text;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use augment::Augment;
pub use check::{CheckReport, check, write_problems_csv};
pub use error::DataError;
pub use pipeline::{Batch, BatchLoader, LoaderConfig, load_image_tensor};
pub use sample::{BadSample, CropBox, ImageSource, Sample, Split};

use crate::classes::class_names;

/// The dataset formats cucn reads (METHOD.md lists them).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    /// RAF-DB basic (`EmoLabel/list_patition_label.txt`, `Image/aligned/`).
    Rafdb,
    /// AffectNet (`training.csv`, `validation.csv`, `Manually_Annotated_Images/`).
    Affectnet,
    /// FER2013 (`fer2013.csv`).
    Fer2013,
    /// FERPlus (`fer2013new.csv` with `fer2013.csv`).
    Ferplus,
    /// A folder per class.
    Folder,
}

impl fmt::Display for DatasetFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetFormat::Rafdb => "rafdb",
            DatasetFormat::Affectnet => "affectnet",
            DatasetFormat::Fer2013 => "fer2013",
            DatasetFormat::Ferplus => "ferplus",
            DatasetFormat::Folder => "folder",
        })
    }
}

/// How thoroughly `load` checks images before training starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageCheck {
    /// Decode every image (finds corrupt and truncated files).
    #[default]
    Decode,
    /// Read every image's header only (finds missing, empty, non-image and oversized files).
    Header,
    /// Check no image (problems then surface as errors while batches are built).
    None,
}

/// Options of `load` and `check`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct LoadOptions {
    /// RAF-DB: an alternative label list (e.g. a noisy-label protocol file).
    pub label_file: Option<PathBuf>,
    /// Number of classes, 7 or 8, where the format offers both (AffectNet, FERPlus, folders).
    pub classes: Option<usize>,
    /// Skip bad samples (and list them in `Dataset::skipped`) instead of failing.
    pub skip_bad: bool,
    /// AffectNet: widen the face box by this fraction of its size on every side.
    pub crop_margin: f32,
    /// How images are checked.
    pub check: ImageCheck,
    /// Images over this many pixels are refused as possible decompression bombs.
    pub max_pixels: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            label_file: None,
            classes: None,
            skip_bad: false,
            crop_margin: 0.0,
            check: ImageCheck::default(),
            max_pixels: decode::DEFAULT_MAX_PIXELS,
        }
    }
}

/// A loaded dataset: labelled samples per split, mapped to canonical class indices.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// The format it was read in.
    pub format: DatasetFormat,
    /// Its root folder.
    pub root: PathBuf,
    /// Number of classes K (7 or 8).
    pub num_classes: usize,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples (FER2013/FERPlus `PublicTest`, folder `val/`); often empty.
    pub val: Vec<Sample>,
    /// Test samples.
    pub test: Vec<Sample>,
    /// Bad samples skipped under `skip_bad` (empty otherwise).
    pub skipped: Vec<BadSample>,
    /// Samples the format's protocol leaves out (AffectNet none/uncertain/non-face, FERPlus
    /// unknown/NF/no majority, ...), counted by reason.
    pub excluded: BTreeMap<String, usize>,
}

impl Dataset {
    /// The samples of a split.
    pub fn samples(&self, split: Split) -> &[Sample] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }

    /// Samples per class in a split, in class order.
    pub fn class_counts(&self, split: Split) -> Vec<usize> {
        check::count_classes(self.samples(split), self.num_classes)
    }

    /// The class names, in index order.
    pub fn class_names(&self) -> &'static [&'static str] {
        class_names(self.num_classes)
    }

    /// A stable hash (FNV-1a, 16 hex digits) of the format, class count and every split's sample
    /// names and labels in order: equal fingerprints mean the same data, e.g. on resume.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(format!("{}|{}", self.format, self.num_classes).as_bytes());
        for split in Split::ALL {
            feed(split.name().as_bytes());
            for s in self.samples(split) {
                feed(format!("\n{}\t{}", s.name, s.label).as_bytes());
            }
        }
        format!("{h:016x}")
    }
}

/// Loads a dataset in `format` from `root`, checking every image as `opts.check` says (in
/// parallel). Without `skip_bad`, the first bad line, row or image is an error naming it (with the
/// number of further problems); with it, bad samples are left out and listed in `skipped`.
pub fn load(format: DatasetFormat, root: &Path, opts: &LoadOptions) -> Result<Dataset, DataError> {
    let check::Inspection { listing, .. } = check::inspect(format, root, opts)?;
    if !opts.skip_bad && !listing.bad.is_empty() {
        let more = listing.bad.len() - 1;
        let first = Box::new(listing.bad.into_iter().next().expect("not empty"));
        return Err(DataError::BadSample { first, more });
    }
    if listing.train.is_empty() && listing.val.is_empty() && listing.test.is_empty() {
        return Err(DataError::Empty {
            path: root.to_path_buf(),
            split: "any",
        });
    }
    Ok(Dataset {
        format,
        root: root.to_path_buf(),
        num_classes: listing.num_classes,
        train: listing.train,
        val: listing.val,
        test: listing.test,
        skipped: listing.bad,
        excluded: listing.excluded,
    })
}
