//! Prediction speed with a full-size network (ResNet-18 + CBAM at 112 px; random weights, which
//! do not change the cost):
//! - face crops per second: 100x100 synthetic JPEG faces through `Predictor::predict_files` with
//!   detection off (decode, resize, normalize and classify in batches, as `cucn predict
//!   --no-detect` does);
//! - latency of one 640x480 photo with one face (the public-domain test portrait on a 640x480
//!   canvas) through `Predictor::predict`: detection, crop and classification, and detection
//!   alone.
//!
//! Run: `cargo bench --bench predict` (env `CUCN_BENCH_CROPS`, default 256).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::tensor::Device;
use cucn::data::synth::{SynthConfig, generate};
use cucn::model::CucnConfig;
use cucn::model::weights::save_model;
use cucn::predict::detect::detect_faces;
use cucn::predict::{DetectOptions, PredictOptions, Predictor};
use image::{Rgb, RgbImage};

const PHOTO: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/photos/astronaut.jpg"
);

fn main() {
    let crops: usize = std::env::var("CUCN_BENCH_CROPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let dir = tempfile::tempdir().expect("temp dir");
    let device = Device::default();
    let config = CucnConfig::new();
    let model = config.init(&device).expect("default config is valid");
    let model_path = dir.path().join("model.bpk");
    save_model(&model, &config, &model_path).expect("save model");
    println!(
        "predict: ResNet-{} + CBAM at {} px, {} threads",
        config.depth,
        config.input_size,
        rayon::current_num_threads()
    );

    let faces_dir = dir.path().join("faces");
    let synth = SynthConfig {
        train: 0,
        test: crops,
        size: 100,
        ..SynthConfig::default()
    };
    generate(&synth, &faces_dir, None, &|_, _| {}).expect("synthetic faces");
    let files = cucn::predict::inputs::collect_inputs(&[faces_dir]).files;
    let files: Vec<PathBuf> = files.into_iter().map(|f| f.path).collect();
    for batch in [32, 64] {
        let predictor = Predictor::load(&model_path)
            .expect("load")
            .with_options(PredictOptions {
                detect: None,
                batch,
                ..PredictOptions::default()
            });
        predictor.predict_files(&files[..batch.min(files.len())], |_| {}); // warm-up
        let start = Instant::now();
        let mut done = 0;
        predictor.predict_files(&files, |r| done += usize::from(r.faces.is_ok()));
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(done, files.len());
        println!(
            "  crops, batch {batch:>2}: {:.1} img/s ({done} 100x100 JPEGs in {seconds:.2} s)",
            done as f64 / seconds
        );
    }

    let portrait = image::open(PHOTO).expect("test photo").into_rgb8();
    let portrait =
        image::imageops::resize(&portrait, 480, 480, image::imageops::FilterType::Triangle);
    let mut photo = RgbImage::from_pixel(640, 480, Rgb([90, 90, 90]));
    image::imageops::replace(&mut photo, &portrait, 80, 0);
    let predictor = Predictor::load(&model_path).expect("load");
    let faces = predictor.predict(&photo); // warm-up
    assert_eq!(faces.len(), 1, "the portrait has one face");
    let whole = median_time(20, || {
        predictor.predict(&photo);
    });
    let detect = median_time(20, || {
        detect_faces(&photo, &DetectOptions::default());
    });
    println!(
        "  one 640x480 photo, detect + classify: {:.1} ms median (detection alone {:.1} ms)",
        ms(whole),
        ms(detect)
    );
}

fn median_time(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
