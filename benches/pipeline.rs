//! Input-pipeline throughput: 100x100 JPEG faces (RAF-DB's aligned size) decoded, augmented as in
//! training, resized to 224 and normalized into batches of 64, with 1 and 2 workers; plus the
//! evaluation path without augmentation. Prints images per second. Compare with
//! `scripts/bench_pipeline_torch.py`, the torchvision/PIL equivalent.
//!
//! Run: `cargo bench --bench pipeline` (env `CUCN_BENCH_IMAGES`, default 1024).

use std::sync::Arc;
use std::time::Instant;

use cucn::data::{Augment, BatchLoader, ImageSource, LoaderConfig, Sample};
use image::{ImageEncoder, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZE: u32 = 224;
const BATCH: usize = 64;
const EPOCHS: u64 = 3;

/// A face-like test image: smooth shading plus noise, so JPEG sizes are realistic.
fn test_image(rng: &mut ChaCha8Rng) -> RgbImage {
    let (a, b): (f32, f32) = (rng.random_range(0.5..2.0), rng.random_range(0.5..2.0));
    RgbImage::from_fn(100, 100, |x, y| {
        let base = 128.0 + 60.0 * ((x as f32 / 15.0 * a).sin() + (y as f32 / 12.0 * b).cos());
        let n: f32 = rng.random_range(-12.0..12.0);
        let v = (base + n).clamp(0.0, 255.0) as u8;
        Rgb([v, v.saturating_sub(20), v.saturating_sub(40)])
    })
}

fn main() {
    let n: usize = std::env::var("CUCN_BENCH_IMAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let samples: Vec<Sample> = (0..n)
        .map(|i| {
            let path = dir.path().join(format!("img_{i:05}.jpg"));
            let img = test_image(&mut rng);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
                .write_image(img.as_raw(), 100, 100, image::ExtendedColorType::Rgb8)
                .expect("encode");
            std::fs::write(&path, bytes).expect("write");
            Sample {
                source: ImageSource::File { path, crop: None },
                label: i % 7,
                name: format!("img_{i:05}.jpg"),
                origin: String::new(),
            }
        })
        .collect();
    let samples: Arc<[Sample]> = samples.into();
    println!("pipeline: {n} 100x100 JPEGs -> {SIZE}x{SIZE}, batch {BATCH}, {EPOCHS} passes");
    for (label, augment) in [("train (augmented)", true), ("eval", false)] {
        for workers in [1, 2] {
            let start = Instant::now();
            let mut images = 0;
            for epoch in 0..EPOCHS {
                let mut config = LoaderConfig::new(BATCH, SIZE, workers);
                config.augment = augment.then_some(Augment { seed: 1, epoch });
                let order: Vec<usize> = (0..n).collect();
                for batch in BatchLoader::new(Arc::clone(&samples), order, config) {
                    images += batch.expect("batch").labels.len();
                }
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{label:>18}, {workers} worker(s): {:8.0} img/s",
                images as f64 / secs
            );
        }
    }
}
