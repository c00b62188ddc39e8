//! `cucn::bench::run` on a small input: every measurement is present and self-consistent.

use burn::tensor::Device;
use cucn::bench::{BenchConfig, run};

#[test]
fn measures_training_and_inference_at_each_size() {
    let config = BenchConfig {
        sizes: vec![32, 48],
        batch: 3,
        steps: 2,
        warmup: 1,
        seed: 7,
    };
    let mut phases = Vec::new();
    let report = run(&config, &Device::default(), &mut |p| {
        phases.push(p.to_string())
    })
    .unwrap();
    assert_eq!(phases.len(), 4, "{phases:?}");
    assert_eq!(report.steps, 2);
    assert!(report.threads >= 1);
    let sizes: Vec<usize> = report.sizes.iter().map(|s| s.size).collect();
    assert_eq!(sizes, [32, 48]);
    for s in &report.sizes {
        for (t, batch) in [(&s.train, 3), (&s.eval, 3), (&s.eval_single, 1)] {
            assert_eq!(t.batch, batch);
            assert!(t.min_ms > 0.0 && t.min_ms <= t.median_ms && t.median_ms <= t.max_ms);
            let expected = batch as f64 / (t.median_ms / 1e3);
            assert!((t.images_per_second - expected).abs() < 1e-6 * expected);
        }
        let p = &s.train_phases;
        let parts = p.forward_ms + p.backward_ms + p.optimizer_ms;
        assert!(p.forward_ms > 0.0 && p.backward_ms > 0.0 && p.optimizer_ms > 0.0);
        // The parts are medians of pieces of the same steps: close to, never far above, the
        // slowest whole step.
        assert!(
            parts <= s.train.max_ms * 1.5,
            "{parts} vs {}",
            s.train.max_ms
        );
    }
    if cfg!(target_os = "linux") {
        let peak = report.peak_rss_mib.expect("VmHWM is readable on Linux");
        assert!(peak > 1.0);
        for s in &report.sizes {
            for phase in [s.train_peak_rss_mib, s.eval_peak_rss_mib]
                .into_iter()
                .flatten()
            {
                assert!(phase > 0.0 && phase <= peak + 1e-9, "{phase} vs {peak}");
            }
        }
    }
    let json = serde_json::to_value(&report).unwrap();
    assert!(
        json["sizes"][1]["eval_single"]["images_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
