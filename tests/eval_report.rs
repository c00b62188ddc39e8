//! `write_report`: the four files, their JSON fields (CLI.md's contract) and `Report::load`.

use cucn::eval::EvalError;
use cucn::eval::report::{Report, evaluate, write_report};
use serde_json::Value;

/// A 3-class report: 6 samples, 4 correct, with uncertainties.
fn small_report() -> Report {
    let probs = [
        0.9, 0.05, 0.05, 0.2, 0.7, 0.1, 0.1, 0.8, 0.1, 0.1, 0.6, 0.3, 0.6, 0.2, 0.2, 0.1, 0.1, 0.8,
    ];
    let u = [0.1, 0.3, 0.2, 0.9, 0.8, 0.15];
    evaluate(
        &[0, 0, 1, 1, 2, 2],
        &probs,
        Some(&u),
        &["surprise", "fear", "disgust"],
    )
    .unwrap()
}

#[test]
fn writes_all_files_with_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let report = small_report();
    write_report(&report, &out, "test run").unwrap();

    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // No temporary files are left behind.
    assert_eq!(
        names,
        ["confusion.png", "per_class.png", "report.json", "report.md"]
    );

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    for field in [
        "accuracy",
        "mean_class_accuracy",
        "macro_f1",
        "max_class_accuracy",
        "min_class_accuracy",
        "ece",
    ] {
        assert!(json[field].is_f64(), "{field} missing or not a number");
    }
    assert!((json["accuracy"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-12);
    assert_eq!(
        json["classes"],
        serde_json::json!(["surprise", "fear", "disgust"])
    );
    assert_eq!(
        json["confusion"],
        serde_json::json!([[1, 1, 0], [0, 2, 0], [1, 0, 1]])
    );
    assert_eq!(json["per_class"]["fear"]["support"], 2);
    assert!((json["per_class"]["fear"]["precision"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        json["confusion_normalized"][0],
        serde_json::json!([0.5, 0.5, 0.0])
    );
    assert_eq!(json["uncertainty"]["count"], 6);

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.starts_with("# test run"));
    assert!(md.contains("| accuracy (%) | 66.67 |"), "{md}");
    assert!(md.contains("| fear | 66.67 | 100.00 | 80.00 | 2 |"), "{md}");
    assert!(md.contains("| disgust | 1 | 0 | 1 |"), "{md}");
    assert!(md.contains("confusion.png") && md.contains("per_class.png"));

    for png in ["confusion.png", "per_class.png"] {
        image::open(out.join(png)).unwrap_or_else(|e| panic!("{png} is not a valid image: {e}"));
    }
}

#[test]
fn load_round_trips_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let report = small_report();
    write_report(&report, dir.path(), "run").unwrap();
    let loaded = Report::load(&dir.path().join("report.json")).unwrap();
    assert_eq!(loaded.classes, report.classes);
    assert_eq!(loaded.confusion, report.confusion);
    assert_eq!(loaded.class_accuracies().unwrap(), vec![0.5, 1.0, 0.5]);

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"accuracy\": 0.5").unwrap();
    let message = Report::load(&broken).unwrap_err().to_string();
    assert!(message.contains("broken.json"), "{message}");

    // Valid JSON whose per_class lacks a class is rejected too.
    let mut inconsistent = serde_json::to_value(&report).unwrap();
    inconsistent["per_class"]
        .as_object_mut()
        .unwrap()
        .remove("fear");
    let path = dir.path().join("inconsistent.json");
    std::fs::write(&path, inconsistent.to_string()).unwrap();
    let error = Report::load(&path).unwrap_err();
    assert!(matches!(error, EvalError::BadFile { .. }));
    assert!(error.to_string().contains("fear"), "{error}");

    let missing = Report::load(&dir.path().join("absent.json")).unwrap_err();
    assert!(missing.to_string().contains("absent.json"));
}

#[test]
fn report_without_uncertainty_has_null_field() {
    let r = evaluate(&[0, 1], &[0.9, 0.1, 0.3, 0.7], None, &["a", "b"]).unwrap();
    assert!(r.uncertainty.is_none());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["uncertainty"].is_null());
    assert!(!r.to_markdown("t").contains("Uncertainty"));
}
