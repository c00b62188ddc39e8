//! `cucn demo --quick`: the README's main job, end to end on a fresh directory, then rerun.

use std::process::Command;

#[test]
fn quick_demo_generates_trains_evaluates_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("demo");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_cucn"))
            .args(["demo", "--quick", "--json", "--out", out.to_str().unwrap()])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy));
    assert_eq!(report["classes"].as_array().unwrap().len(), 7);
    for f in [
        "data/synth_meta.csv",
        "run/metrics.csv",
        "run/report/report.md",
        "run/report/confusion.png",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // A second run reuses the data and the finished run: same report.
    let second = run();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let again: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(again["accuracy"], report["accuracy"]);
    assert_eq!(again["confusion"], report["confusion"]);
}
