//! `cucn eval`, `compare`, `audit` and `export` on a tiny trained run (real binary, generated data).

use std::path::Path;
use std::process::{Command, Output};

fn cucn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cucn"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// Standard output of a successful run.
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn is_png(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|b| b.starts_with(b"\x89PNG\r\n\x1a\n") && b.len() > 1000)
}

#[test]
fn eval_compare_audit_and_export_work_on_a_trained_run() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    ok(cucn(&[
        "synth", "--out", d, "--train", "64", "--test", "32", "--size", "32", "--noise", "0.25",
        "-q",
    ]));
    ok(cucn(&[
        "train", "--format", "rafdb", "--data", d, "--out", r, "--epochs", "1", "--batch", "16",
        "--size", "32", "-q",
    ]));

    let json = ok(cucn(&["eval", "--run", r, "--json"]));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "accuracy",
        "mean_class_accuracy",
        "macro_f1",
        "max_class_accuracy",
        "min_class_accuracy",
        "ece",
        "classes",
        "per_class",
        "confusion",
    ] {
        assert!(report.get(key).is_some(), "report.json lacks {key}");
    }
    let confusion = report["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 32, "every test image is counted once");
    for f in ["report.json", "report.md"] {
        assert!(run.join("report").join(f).is_file());
    }
    for f in ["confusion.png", "per_class.png"] {
        assert!(is_png(&run.join("report").join(f)), "{f}");
    }

    let cmp = tmp.path().join("cmp");
    let table = ok(cucn(&["compare", r, r, "--out", cmp.to_str().unwrap()]));
    assert!(
        table.contains("max acc") || table.contains("max"),
        "{table}"
    );
    assert!(cmp.join("comparison.md").is_file() && is_png(&cmp.join("per_class.png")));

    let audit = tmp.path().join("audit");
    let summary = ok(cucn(&[
        "audit",
        "--run",
        r,
        "--format",
        "rafdb",
        "--data",
        d,
        "--top",
        "8",
        "--out",
        audit.to_str().unwrap(),
        "--json",
    ]));
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["samples"], 64);
    assert_eq!(
        summary["flipped"], 16,
        "25 % of 64 labels flipped, read from synth_meta.csv"
    );
    let csv = std::fs::read_to_string(audit.join("audit.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        65,
        "header + one row per training sample"
    );
    assert!(is_png(&audit.join("audit_top.png")));
    assert!(audit.join("audit_detection.json").is_file());

    // A run directory is a model for predict (its best checkpoint).
    let face = data.join("Image/aligned/test_0001_aligned.jpg");
    let json = ok(cucn(&[
        "predict",
        "--model",
        r,
        "--no-detect",
        face.to_str().unwrap(),
        "--format",
        "json",
    ]));
    let results: serde_json::Value = serde_json::from_str(&json).unwrap();
    let faces = results[0]["faces"].as_array().unwrap();
    assert_eq!(faces.len(), 1, "--no-detect: the image is the face");
    let p: f64 = faces[0]["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4 && faces[0]["uncertainty"].as_f64().unwrap() > 0.0);

    let st = tmp.path().join("model.safetensors");
    ok(cucn(&[
        "export",
        "--model",
        r,
        "--to",
        st.to_str().unwrap(),
    ]));
    assert!(std::fs::metadata(&st).unwrap().len() > 1_000_000);
    let err = cucn(&["export", "--model", d, "--to", st.to_str().unwrap()]);
    assert_eq!(err.status.code(), Some(1), "a data folder is not a model");
}
