//! Writes a benchmark to disk in RAF-DB's basic layout, plus `synth_meta.csv` with the truth.
//!
//! Everything is first written under a hidden staging folder inside the output directory and
//! moved into place at the end, so an interrupted run never leaves a half-written benchmark that
//! looks complete, and nothing outside the output directory is touched.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::labels::plan_split;
use super::{SampleMeta, Split, SynthConfig, SynthError, render_planned};
use crate::classes::{CLASS_NAMES, NUM_BASIC};
use crate::util::write_atomic;

/// The per-image truth table, relative to the output directory.
pub const META_FILE: &str = "synth_meta.csv";
/// RAF-DB's label file, relative to the output directory.
pub const LABEL_FILE: &str = "EmoLabel/list_patition_label.txt";
/// The options the benchmark was generated with, relative to the output directory.
pub const CONFIG_FILE: &str = "synth_config.json";
const IMAGE_DIR: &str = "Image/aligned";
const STAGING_DIR: &str = ".cucn-synth-partial";
/// Top-level entries moved from the staging folder into the output directory.
const OUTPUTS: [&str; 4] = ["Image", "EmoLabel", META_FILE, CONFIG_FILE];

/// What `generate` produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthSummary {
    /// The output directory.
    pub out: PathBuf,
    /// Training images written.
    pub train: usize,
    /// Test images written.
    pub test: usize,
    /// Image side in pixels.
    pub size: u32,
    /// The seed used.
    pub seed: u64,
    /// Class names in canonical order, naming the entries of the count vectors.
    pub classes: Vec<String>,
    /// Training images per given (possibly flipped) label.
    pub train_counts: Vec<usize>,
    /// Training images per clean label.
    pub train_clean_counts: Vec<usize>,
    /// Test images per label.
    pub test_counts: Vec<usize>,
    /// Training labels flipped by label noise.
    pub flipped: usize,
    /// Faces blended between two expressions (both splits).
    pub blended: usize,
    /// Faces partly covered by an object (both splits).
    pub occluded: usize,
    /// Wall time of the generation.
    pub seconds: f64,
    /// Images generated per second.
    pub images_per_second: f64,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The label-file name and the image path (relative to the output directory) of an image.
/// Numbers are 1-based and zero-padded to RAF-DB's widths (5 for train, 4 for test), wider when
/// the split needs more digits.
pub fn sample_names(cfg: &SynthConfig, split: Split, index: usize) -> (String, String) {
    let (count, min_width) = match split {
        Split::Train => (cfg.train, 5),
        Split::Test => (cfg.test, 4),
    };
    let width = count.to_string().len().max(min_width);
    let stem = format!("{}_{:0width$}", split.name(), index + 1);
    (
        format!("{stem}.jpg"),
        format!("{IMAGE_DIR}/{stem}_aligned.jpg"),
    )
}

/// JPEG bytes of `img` at `quality`.
pub(crate) fn encode_jpeg(img: &RgbImage, quality: u8) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, quality).encode_image(img)?;
    Ok(bytes)
}

/// Generates the benchmark `cfg` describes into `out`, which must be missing or empty.
///
/// `threads` bounds the worker threads (`None`: all cores); the output does not depend on it.
/// `progress(done, total)` is called from the workers after each image.
pub fn generate(
    cfg: &SynthConfig,
    out: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SynthSummary, SynthError> {
    cfg.validate()?;
    if threads == Some(0) {
        return Err(SynthError::InvalidConfig(
            "threads must be at least 1".into(),
        ));
    }
    prepare_output(out)?;
    let staging = out.join(STAGING_DIR);
    let start = Instant::now();
    let written = write_staged(cfg, &staging, threads, progress).and_then(|metas| {
        for entry in OUTPUTS {
            let (from, to) = (staging.join(entry), out.join(entry));
            std::fs::rename(&from, &to).map_err(io_err(&to))?;
        }
        std::fs::remove_dir(&staging).map_err(io_err(&staging))?;
        Ok(metas)
    });
    let metas = match written {
        Ok(metas) => metas,
        Err(e) => {
            // Best effort: the staging folder is ours, and a failed run should leave no debris.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let seconds = start.elapsed().as_secs_f64();
    Ok(summarize(cfg, out, &metas, seconds))
}

/// Refuses an output path that is a file or a directory holding anything; creates it if missing.
fn prepare_output(out: &Path) -> Result<(), SynthError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(SynthError::OutputNotEmpty(out.to_path_buf()));
            }
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(io_err(out))
        }
        Err(e) if out.exists() && !out.is_dir() => Err(SynthError::InvalidConfig(format!(
            "output path {} is a file, not a directory ({e})",
            out.display()
        ))),
        Err(e) => Err(io_err(out)(e)),
    }
}

/// Renders and writes every image, then the label file, the meta table and the config, all
/// under `staging`. Returns the metadata in file order (train then test).
fn write_staged(
    cfg: &SynthConfig,
    staging: &Path,
    threads: Option<usize>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<SampleMeta>, SynthError> {
    let image_dir = staging.join(IMAGE_DIR);
    std::fs::create_dir_all(&image_dir).map_err(io_err(&image_dir))?;
    let jobs: Vec<_> = [Split::Train, Split::Test]
        .into_iter()
        .flat_map(|split| {
            let plan = plan_split(cfg, split);
            plan.into_iter()
                .enumerate()
                .map(move |(i, p)| (split, i, p))
        })
        .collect();
    let total = jobs.len();
    let done = AtomicUsize::new(0);
    let render_all = || {
        jobs.par_iter()
            .map(|&(split, index, plan)| {
                let (img, meta) = render_planned(cfg, split, index, plan);
                let path = staging.join(&meta.file);
                let bytes =
                    encode_jpeg(&img, meta.jpeg_quality).map_err(|source| SynthError::Encode {
                        path: path.clone(),
                        source,
                    })?;
                // Plain writes: the staging folder as a whole is what gets moved into place.
                std::fs::write(&path, bytes).map_err(io_err(&path))?;
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok(meta)
            })
            .collect::<Result<Vec<_>, SynthError>>()
    };
    let metas = match threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| SynthError::Threads {
                threads: n,
                message: e.to_string(),
            })?
            .install(render_all),
        None => render_all(),
    }?;
    let write = |name: &str, bytes: &[u8]| {
        let path = staging.join(name);
        write_atomic(&path, bytes).map_err(io_err(&path))
    };
    write(LABEL_FILE, label_file(&metas).as_bytes())?;
    write(META_FILE, meta_csv(&metas).as_bytes())?;
    let config = serde_json::to_string_pretty(cfg).expect("config serializes");
    write(CONFIG_FILE, format!("{config}\n").as_bytes())?;
    Ok(metas)
}

/// RAF-DB's `list_patition_label.txt`: `name label` with labels 1..7.
fn label_file(metas: &[SampleMeta]) -> String {
    metas
        .iter()
        .map(|m| format!("{} {}\n", m.name, m.label + 1))
        .collect()
}

/// The truth table: one row per image, class names for labels.
fn meta_csv(metas: &[SampleMeta]) -> String {
    let mut csv = String::from(
        "name,file,split,clean_label,label,flipped,intensity,blend_partner,blend_weight,occluded,jpeg_quality\n",
    );
    for m in metas {
        csv += &format!(
            "{},{},{},{},{},{},{:.4},{},{:.4},{},{}\n",
            m.name,
            m.file,
            m.split,
            CLASS_NAMES[m.clean_label],
            CLASS_NAMES[m.label],
            m.flipped,
            m.intensity,
            m.blend_partner.map_or("", |p| CLASS_NAMES[p]),
            m.blend_weight,
            m.occluded,
            m.jpeg_quality,
        );
    }
    csv
}

fn summarize(cfg: &SynthConfig, out: &Path, metas: &[SampleMeta], seconds: f64) -> SynthSummary {
    let count = |split: Split, label: fn(&SampleMeta) -> usize| {
        let mut counts = vec![0; NUM_BASIC];
        for m in metas.iter().filter(|m| m.split == split) {
            counts[label(m)] += 1;
        }
        counts
    };
    SynthSummary {
        out: out.to_path_buf(),
        train: cfg.train,
        test: cfg.test,
        size: cfg.size,
        seed: cfg.seed,
        classes: CLASS_NAMES[..NUM_BASIC]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        train_counts: count(Split::Train, |m| m.label),
        train_clean_counts: count(Split::Train, |m| m.clean_label),
        test_counts: count(Split::Test, |m| m.label),
        flipped: metas.iter().filter(|m| m.flipped).count(),
        blended: metas.iter().filter(|m| m.blend_partner.is_some()).count(),
        occluded: metas.iter().filter(|m| m.occluded).count(),
        seconds,
        images_per_second: metas.len() as f64 / seconds.max(1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rafdb_and_widen_for_large_splits() {
        let cfg = SynthConfig {
            train: 20,
            test: 5,
            ..Default::default()
        };
        assert_eq!(
            sample_names(&cfg, Split::Train, 0),
            (
                "train_00001.jpg".into(),
                "Image/aligned/train_00001_aligned.jpg".into()
            )
        );
        assert_eq!(sample_names(&cfg, Split::Test, 4).0, "test_0005.jpg");
        let big = SynthConfig {
            train: 123_456,
            test: 10_000,
            ..Default::default()
        };
        assert_eq!(sample_names(&big, Split::Train, 6).0, "train_000007.jpg");
        assert_eq!(sample_names(&big, Split::Test, 9_999).0, "test_10000.jpg");
    }
}
