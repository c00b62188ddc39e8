//! What a loader produces: labelled samples that say where their pixels are, and the bad inputs
//! found on the way.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// A dataset split.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training data.
    Train,
    /// Validation data (FER2013/FERPlus `PublicTest`); empty for RAF-DB and AffectNet.
    Val,
    /// Test data (RAF-DB `test_*`, AffectNet `validation.csv`, FER2013 `PrivateTest`).
    Test,
}

impl Split {
    /// All splits, in report order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The split's lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// A face box in source-image pixels, margin already applied; clamped to the image when decoded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropBox {
    /// Left edge.
    pub left: f64,
    /// Top edge.
    pub top: f64,
    /// Width.
    pub width: f64,
    /// Height.
    pub height: f64,
}

/// Where a sample's pixels come from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// An image file (JPEG or PNG), optionally cropped to a face box.
    File {
        /// The file's path.
        path: PathBuf,
        /// The face box to crop to, if the format gives one.
        crop: Option<CropBox>,
    },
    /// Grey pixels held in memory (FER2013's 48x48 CSV pixels), row-major.
    Grey {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// `width * height` grey values.
        pixels: Arc<[u8]>,
    },
}

/// One labelled face.
#[derive(Clone, Debug)]
pub struct Sample {
    /// Where the pixels are.
    pub source: ImageSource,
    /// Canonical class index (see `crate::classes`).
    pub label: usize,
    /// The name reports and audits show: the file name of the label list (RAF-DB), the relative path
    /// (AffectNet, folders) or the CSV row (`fer2013.csv row 17`).
    pub name: String,
    /// Where the sample is listed, e.g. `EmoLabel/list_patition_label.txt line 5`; empty when the
    /// file itself is the listing (class folders).
    pub origin: String,
}

impl Sample {
    /// How error messages name this sample: the file path and where it is listed.
    pub fn location(&self) -> String {
        match (&self.source, self.origin.is_empty()) {
            (ImageSource::File { path, .. }, true) => path.display().to_string(),
            (ImageSource::File { path, .. }, false) => {
                format!("{} (listed at {})", path.display(), self.origin)
            }
            (ImageSource::Grey { .. }, _) => self.name.clone(),
        }
    }
}

/// An input that was found bad: a line that does not parse, a label out of range, a duplicate, a
/// missing, corrupt or oversized image.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BadSample {
    /// The file (and line or row) at fault.
    pub location: String,
    /// What is wrong.
    pub problem: String,
}

/// What a format's parser hands back before images are checked.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Number of classes (7 or 8).
    pub num_classes: usize,
    /// Samples per split.
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    pub test: Vec<Sample>,
    /// Lines or rows that could not be turned into samples.
    pub bad: Vec<BadSample>,
    /// Samples left out by the format's own protocol (e.g. AffectNet "none"), by reason.
    pub excluded: BTreeMap<String, usize>,
}

impl Listing {
    /// An empty listing for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Listing {
            num_classes,
            ..Default::default()
        }
    }

    /// The samples of `split`, for appending.
    pub fn split_mut(&mut self, split: Split) -> &mut Vec<Sample> {
        match split {
            Split::Train => &mut self.train,
            Split::Val => &mut self.val,
            Split::Test => &mut self.test,
        }
    }

    /// Records a bad line or row.
    pub fn bad(&mut self, location: impl Into<String>, problem: impl Into<String>) {
        self.bad.push(BadSample {
            location: location.into(),
            problem: problem.into(),
        });
    }

    /// Counts a sample left out by the protocol.
    pub fn exclude(&mut self, reason: impl Into<String>) {
        *self.excluded.entry(reason.into()).or_insert(0) += 1;
    }
}
