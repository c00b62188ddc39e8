//! The canonical expression classes and their order (METHOD.md, "Classes").
//!
//! Index order is RAF-DB's (labels 1..7 minus 1); AffectNet-8 and FERPlus add `contempt` as index 7.

/// Class names in canonical index order. The first 7 are the basic expressions; `contempt` is the
/// 8th class of AffectNet-8 and FERPlus.
pub const CLASS_NAMES: [&str; 8] = [
    "surprise",
    "fear",
    "disgust",
    "happiness",
    "sadness",
    "anger",
    "neutral",
    "contempt",
];

/// Number of basic expression classes.
pub const NUM_BASIC: usize = 7;

/// The names of the first `num_classes` classes (7 or 8).
pub fn class_names(num_classes: usize) -> &'static [&'static str] {
    &CLASS_NAMES[..num_classes.min(CLASS_NAMES.len())]
}

/// RAF-DB's training-set class counts (METHOD.md), in canonical order.
pub const RAFDB_TRAIN_COUNTS: [usize; 7] = [1290, 281, 717, 4772, 1982, 705, 2524];

/// RAF-DB's test-set class counts (METHOD.md), in canonical order.
pub const RAFDB_TEST_COUNTS: [usize; 7] = [329, 74, 160, 1185, 478, 162, 680];

/// ImageNet normalization used by the input pipeline (METHOD.md, "Input pipeline").
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet standard deviation used by the input pipeline.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
