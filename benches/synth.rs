//! Throughput of `cucn synth`: images per second at 112 px, written to disk, all cores.
//!
//! Run with `cargo bench --bench synth`; prints one line per measurement.

use std::time::Instant;

use cucn::data::synth::{Split, SynthConfig, generate, render_face};

fn main() {
    let images = 2000;
    let cfg = SynthConfig {
        train: images * 3 / 4,
        test: images / 4,
        size: 112,
        ..Default::default()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let dir = tempfile::tempdir().expect("temporary directory");
    let out = dir.path().join("bench");
    let start = Instant::now();
    let summary = generate(&cfg, &out, None, &|_, _| {}).expect("generation succeeds");
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "synth generate: {} images of {} px in {seconds:.2} s on {threads} threads = {:.0} images/s",
        images,
        cfg.size,
        images as f64 / seconds
    );
    assert_eq!(summary.train + summary.test, images);

    // Drawing alone, one thread, without encoding or writing.
    let n = 300;
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(render_face(&cfg, Split::Test, i).expect("index in range"));
    }
    let per_image = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "synth render only: {:.2} ms per image on one thread",
        per_image * 1e3
    );
}
