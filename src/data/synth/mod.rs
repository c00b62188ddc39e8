//! `cucn synth`: a procedural facial-expression benchmark whose ground truth is known.
//!
//! Each image is a cartoon face drawn with tiny-skia from an expression model grounded in facial
//! action units (`expression`), on a random person (`identity`) under random pose, lighting,
//! clutter, occlusion, blur, noise and JPEG quality (`nuisance`). Class imbalance, ambiguous
//! (blended) faces and flipped training labels are controlled by `SynthConfig`, and every choice
//! is recorded in `synth_meta.csv`, so claims such as "class weights help minority classes" or
//! "learned uncertainty finds bad labels" can be checked against the truth.
//!
//! Every image draws its randomness from its own stream, derived from (seed, split, index), so
//! the output is byte-identical whatever the number of threads.

mod canvas;
mod config;
mod contact_sheet;
pub mod expression;
mod face;
mod identity;
mod labels;
mod nuisance;
mod writer;

use std::path::PathBuf;

use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tiny_skia::Pixmap;

pub use config::{MAX_SIZE, MIN_SIZE, SynthConfig};
pub use contact_sheet::contact_sheet;
pub use labels::class_counts;
pub use writer::{META_FILE, SynthSummary, generate};

#[cfg(test)]
use crate::classes::CLASS_NAMES;
use crate::classes::NUM_BASIC;
use face::Face;
use identity::Identity;
use labels::LabelPlan;
use nuisance::{Nuisance, draw_background};

/// Errors of the synthetic benchmark.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An option is out of range.
    #[error("invalid synth option: {0}")]
    InvalidConfig(String),
    /// The output directory exists and is not empty.
    #[error("output directory {} already holds files; choose a new or empty directory", .0.display())]
    OutputNotEmpty(PathBuf),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Encoding an image failed.
    #[error("{}: could not encode image: {source}", path.display())]
    Encode {
        /// The image being written.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
    /// `render_face` was asked for an image the split does not have.
    #[error("{split} image {index} does not exist: the split has {len} images")]
    IndexOutOfRange {
        /// The split asked for.
        split: Split,
        /// The 0-based index asked for.
        index: usize,
        /// The number of images in the split.
        len: usize,
    },
    /// The worker thread pool could not be built.
    #[error("could not start {threads} worker threads: {message}")]
    Threads {
        /// Threads requested.
        threads: usize,
        /// Why it failed.
        message: String,
    },
}

/// The two splits of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (label noise applies here only).
    Train,
    /// Test images.
    Test,
}

impl Split {
    /// `train` or `test`, the prefix of RAF-DB's file names.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is known about one generated image: one row of `synth_meta.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleMeta {
    /// The name in the label file, e.g. `train_00001.jpg`.
    pub name: String,
    /// The image path relative to the output directory.
    pub file: String,
    /// The split.
    pub split: Split,
    /// 0-based index in the split.
    pub index: usize,
    /// The expression drawn (canonical class index).
    pub clean_label: usize,
    /// The label written to the label file (differs from `clean_label` when flipped).
    pub label: usize,
    /// Whether label noise flipped this label.
    pub flipped: bool,
    /// Expression intensity multiplying the class prototype.
    pub intensity: f32,
    /// The second expression of a blended (ambiguous) face.
    pub blend_partner: Option<usize>,
    /// The partner's share of the blend (below 0.5, so the label is the stronger expression).
    pub blend_weight: f32,
    /// Whether an object covers part of the face.
    pub occluded: bool,
    /// JPEG quality the image is saved with.
    pub jpeg_quality: u8,
}

/// The seed of the random stream of image `index` of `split` (index `u64::MAX` is reserved for
/// the split's label plan). SplitMix64 mixing, so neighbouring indices give unrelated streams.
pub(crate) fn derive_seed(seed: u64, split: Split, index: u64) -> u64 {
    crate::util::derive_seed(seed, &[split as u64, index])
}

/// Renders image `index` (0-based) of `split` exactly as `generate` writes it, before JPEG
/// encoding. Plans the whole split's labels first, so calling it for many images is slower than
/// `generate`.
pub fn render_face(
    cfg: &SynthConfig,
    split: Split,
    index: usize,
) -> Result<(RgbImage, SampleMeta), SynthError> {
    cfg.validate()?;
    let plan = labels::plan_split(cfg, split);
    let entry = *plan.get(index).ok_or(SynthError::IndexOutOfRange {
        split,
        index,
        len: plan.len(),
    })?;
    Ok(render_planned(cfg, split, index, entry))
}

/// Draws one image whose labels are already planned.
fn render_planned(
    cfg: &SynthConfig,
    split: Split,
    index: usize,
    plan: LabelPlan,
) -> (RgbImage, SampleMeta) {
    let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, split, index as u64));
    let id = Identity::sample(&mut rng);
    let intensity = rng.random_range(cfg.intensity.0..=cfg.intensity.1);
    let blend = rng.random_bool(cfg.ambiguity).then(|| {
        let other = rng.random_range(0..NUM_BASIC - 1);
        let partner = if other >= plan.clean {
            other + 1
        } else {
            other
        };
        (partner, rng.random_range(0.25..0.45))
    });
    let mut aus = expression::prototype(plan.clean);
    if let Some((partner, w)) = blend {
        aus = aus.blend(expression::prototype(partner), w);
    }
    let aus = aus.scaled(intensity).plus(id.resting);
    let nuisance = Nuisance::sample(&mut rng, id.skin);

    let mut pm = Pixmap::new(cfg.size, cfg.size).expect("validated size is non-zero");
    draw_background(&mut pm, &mut rng);
    Face {
        id: &id,
        aus,
        pose: nuisance.pose,
    }
    .draw(&mut pm);
    nuisance.draw_occluder(&mut pm, cfg.size);
    let image = nuisance.finish(&pm, &mut rng);

    let (name, file) = writer::sample_names(cfg, split, index);
    let meta = SampleMeta {
        name,
        file,
        split,
        index,
        clean_label: plan.clean,
        label: plan.given,
        flipped: plan.flipped,
        intensity,
        blend_partner: blend.map(|b| b.0),
        blend_weight: blend.map_or(0.0, |b| b.1),
        occluded: nuisance.occluder.is_some(),
        jpeg_quality: nuisance.jpeg_quality,
    };
    (image, meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expression_moves_the_face_and_nothing_else() {
        let cfg = SynthConfig {
            size: 64,
            ambiguity: 0.0,
            intensity: (1.0, 1.0),
            ..Default::default()
        };
        // The same index draws the same person, pose and scene whatever the class.
        let draw = |class| {
            let plan = LabelPlan {
                clean: class,
                given: class,
                flipped: false,
            };
            render_planned(&cfg, Split::Train, 3, plan).0
        };
        let neutral = draw(6);
        assert_eq!(neutral, draw(6));
        for (class, name) in CLASS_NAMES.iter().enumerate().take(6) {
            let img = draw(class);
            let differs = |x: u32, y: u32| {
                let (a, b) = (img.get_pixel(x, y).0, neutral.get_pixel(x, y).0);
                (0..3).map(|c| a[c].abs_diff(b[c])).max().unwrap_or(0)
            };
            let changed = (0..64)
                .flat_map(|y| (0..64).map(move |x| (x, y)))
                .filter(|&(x, y)| differs(x, y) > 25)
                .count();
            assert!(changed >= 30, "{name}: only {changed} pixels changed");
            let border_changed =
                (0..64).any(|i| differs(i, 0) + differs(0, i) + differs(63, i) > 0);
            assert!(!border_changed, "{name} changed the image border");
        }
    }
}
