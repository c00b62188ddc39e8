//! Metric functions against hand-computed cases and scikit-learn's values
//! (tests/fixtures/metrics_sklearn.json, from scripts/gen_metric_fixtures.py).

use cucn::eval::EvalError;
use cucn::eval::metrics::{ConfusionMatrix, expected_calibration_error, summarize};
use cucn::eval::report::evaluate;
use serde_json::Value;

fn fixtures() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_sklearn.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("fixture file"))
        .expect("fixture JSON")
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

/// For values computed from `f32` inputs.
fn assert_close_f32(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{what}: {actual} != {expected}"
    );
}

#[test]
fn hand_computed_three_class_case() {
    // true 0 0 1 1 2 2, predicted 0 1 1 1 0 2.
    let m = ConfusionMatrix::from_labels(&[0, 0, 1, 1, 2, 2], &[0, 1, 1, 1, 0, 2], 3).unwrap();
    assert_eq!(m.counts(), &[vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]);
    assert_eq!(m.total(), 6);
    assert_close(m.accuracy(), 4.0 / 6.0, "accuracy");
    assert_close(
        m.mean_class_accuracy(),
        (0.5 + 1.0 + 0.5) / 3.0,
        "mean class accuracy",
    );
    let per_class = m.class_metrics();
    let precision: Vec<f64> = per_class.iter().map(|c| c.precision).collect();
    let f1: Vec<f64> = per_class.iter().map(|c| c.f1).collect();
    assert_eq!(precision, vec![0.5, 2.0 / 3.0, 1.0]);
    assert_eq!(
        per_class.iter().map(|c| c.support).collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    assert_close(f1[0], 0.5, "f1 class 0");
    assert_close(f1[1], 0.8, "f1 class 1");
    assert_close(f1[2], 2.0 / 3.0, "f1 class 2");
    assert_close(m.macro_f1(), (0.5 + 0.8 + 2.0 / 3.0) / 3.0, "macro-F1");
    assert_eq!(m.row_normalized()[2], vec![0.5, 0.0, 0.5]);
}

#[test]
fn classes_without_samples_are_left_out_of_the_averages() {
    // Class 2 occurs nowhere; class 1 is predicted but never true.
    let m = ConfusionMatrix::from_labels(&[0, 0, 0], &[0, 0, 1], 3).unwrap();
    assert_eq!(m.class_accuracies(), vec![Some(2.0 / 3.0), None, None]);
    assert_close(m.mean_class_accuracy(), 2.0 / 3.0, "mean class accuracy");
    // F1: class 0 = 4/5, class 1 = 0 (predicted, never right), class 2 absent everywhere.
    assert_close(m.macro_f1(), 0.4, "macro-F1");
    assert_eq!(m.row_normalized()[1], vec![0.0; 3]);
}

#[test]
fn bad_labels_are_errors_not_panics() {
    assert!(matches!(
        ConfusionMatrix::from_labels(&[0, 3], &[0, 0], 3),
        Err(EvalError::Input(_))
    ));
    assert!(matches!(
        ConfusionMatrix::from_labels(&[0], &[0, 1], 3),
        Err(EvalError::Input(_))
    ));
    assert!(ConfusionMatrix::from_counts(vec![vec![1, 2], vec![3]]).is_err());
}

#[test]
fn matches_scikit_learn_on_seeded_cases() {
    let fixtures = fixtures();
    for case in fixtures["classification"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let k = case["num_classes"].as_u64().unwrap() as usize;
        let m = ConfusionMatrix::from_labels(&usizes(&case["y_true"]), &usizes(&case["y_pred"]), k)
            .unwrap();
        let expected_confusion: Vec<Vec<u64>> = case["confusion"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| usizes(row).into_iter().map(|v| v as u64).collect())
            .collect();
        assert_eq!(
            m.counts(),
            expected_confusion.as_slice(),
            "{name}: confusion"
        );
        assert_close(
            m.accuracy(),
            case["accuracy"].as_f64().unwrap(),
            &format!("{name}: accuracy"),
        );
        assert_close(
            m.mean_class_accuracy(),
            case["balanced_accuracy"].as_f64().unwrap(),
            &format!("{name}: balanced accuracy"),
        );
        assert_close(
            m.macro_f1(),
            case["macro_f1"].as_f64().unwrap(),
            &format!("{name}: macro-F1"),
        );
        let per_class = m.class_metrics();
        for (field, expected) in [
            ("precision", floats(&case["precision"])),
            ("recall", floats(&case["recall"])),
            ("f1", floats(&case["f1"])),
        ] {
            for (c, (metrics, want)) in per_class.iter().zip(expected).enumerate() {
                let got = match field {
                    "precision" => metrics.precision,
                    "recall" => metrics.recall,
                    _ => metrics.f1,
                };
                assert_close(got, want, &format!("{name}: {field} of class {c}"));
            }
        }
        let support: Vec<usize> = per_class.iter().map(|c| c.support as usize).collect();
        assert_eq!(support, usizes(&case["support"]), "{name}: support");
    }
}

#[test]
fn ece_hand_computed() {
    // Bin (13/15, 14/15] holds 0.9 twice (accuracy 0.5): 0.5 * 0.4; bin (4/15, 5/15] holds 0.3
    // (accuracy 1): 0.25 * 0.7; bin (14/15, 1] holds 1.0 (accuracy 1): 0.
    let ece =
        expected_calibration_error(&[(0.9, true), (0.9, false), (0.3, true), (1.0, true)], 15);
    assert_close(ece, 0.375, "ece");
    assert_eq!(expected_calibration_error(&[], 15), 0.0);
}

#[test]
fn ece_puts_a_confidence_on_an_edge_into_the_lower_bin() {
    // With 5 bins, 0.2 closes (0, 0.2]: sharing a bin with 0.1 gives |0.5 - 0.15| = 0.35; had it
    // opened (0.2, 0.4] the error would be 0.5 * 0.8 + 0.5 * 0.1 = 0.45.
    assert_close(
        expected_calibration_error(&[(0.2, true), (0.1, false)], 5),
        0.35,
        "ece",
    );
}

#[test]
fn ece_matches_the_reference_implementation() {
    let fixtures = fixtures();
    for case in fixtures["ece"].as_array().unwrap() {
        let pairs: Vec<(f64, bool)> = floats(&case["confidence"])
            .into_iter()
            .zip(
                case["correct"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_bool().unwrap()),
            )
            .collect();
        let name = case["name"].as_str().unwrap();
        assert_close(
            expected_calibration_error(&pairs, 15),
            case["ece"].as_f64().unwrap(),
            name,
        );

        // The same through `evaluate`, from float32 probabilities.
        let k = case["num_classes"].as_u64().unwrap() as usize;
        let probs: Vec<f32> = case["probs"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .map(|p| p as f32)
            .collect();
        let names: Vec<&str> = cucn::classes::class_names(k).to_vec();
        let report = evaluate(&usizes(&case["y_true"]), &probs, None, &names).unwrap();
        assert!(
            (report.ece - case["ece"].as_f64().unwrap()).abs() < 1e-6,
            "{name}: evaluate's ece {}",
            report.ece
        );
    }
}

#[test]
fn summary_hand_computed() {
    let s = summarize(&[4.0, 1.0, 3.0, 2.0], 3).unwrap();
    assert_eq!(
        (s.count, s.min, s.max, s.mean, s.median),
        (4, 1.0, 4.0, 2.5, 2.5)
    );
    assert_close(s.std, 1.25f64.sqrt(), "std");
    assert_close(s.p25, 1.75, "p25");
    assert_close(s.p95, 3.85, "p95");
    assert_eq!(s.histogram.edges, vec![1.0, 2.0, 3.0, 4.0]);
    assert_eq!(s.histogram.counts, vec![1, 1, 2]);
    // A constant sample gets numpy's widened range.
    let constant = summarize(&[5.0, 5.0], 2).unwrap();
    assert_eq!(constant.histogram.edges, vec![4.5, 5.0, 5.5]);
    assert_eq!(constant.histogram.counts, vec![0, 2]);
    assert!(summarize(&[], 3).is_none());
    assert!(summarize(&[1.0, f64::NAN], 3).is_none());
}

#[test]
fn summary_matches_numpy() {
    let fixtures = fixtures();
    let case = &fixtures["distribution"][0];
    let s = summarize(
        &floats(&case["values"]),
        case["bins"].as_u64().unwrap() as usize,
    )
    .unwrap();
    assert_close(s.mean, case["mean"].as_f64().unwrap(), "mean");
    assert_close(s.std, case["std"].as_f64().unwrap(), "std");
    let ours = [s.p05, s.p25, s.median, s.p75, s.p95];
    for (got, pair) in ours.iter().zip(case["quantiles"].as_array().unwrap()) {
        assert_close(
            *got,
            pair[1].as_f64().unwrap(),
            &format!("quantile {}", pair[0]),
        );
    }
    for (got, want) in s
        .histogram
        .edges
        .iter()
        .zip(floats(&case["histogram_edges"]))
    {
        assert_close(*got, want, "histogram edge");
    }
    let counts: Vec<usize> = s.histogram.counts.iter().map(|&c| c as usize).collect();
    assert_eq!(counts, usizes(&case["histogram_counts"]));
}

#[test]
fn evaluate_fills_every_report_field() {
    let names = ["a", "b", "c"];
    // Sample 3 ties between b and c: the first (b) wins, which is wrong for its label c.
    let probs = [0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.45, 0.45, 0.6, 0.3, 0.1];
    let u = [0.1, 0.2, 0.9, 0.5];
    let r = evaluate(&[0, 1, 2, 1], &probs, Some(&u), &names).unwrap();
    assert_eq!(r.num_samples, 4);
    assert_eq!(
        r.confusion,
        vec![vec![1, 0, 0], vec![1, 1, 0], vec![0, 1, 0]]
    );
    assert_close(r.accuracy, 0.5, "accuracy");
    assert_close(
        r.mean_class_accuracy,
        (1.0 + 0.5 + 0.0) / 3.0,
        "mean class accuracy",
    );
    assert_eq!((r.max_class_accuracy, r.min_class_accuracy), (1.0, 0.0));
    assert_eq!(r.classes, vec!["a", "b", "c"]);
    assert_eq!(r.per_class["b"].support, 2);
    assert_close_f32(
        r.mean_confidence,
        (0.8 + 0.7 + 0.45 + 0.6) / 4.0,
        "mean confidence",
    );
    let unc = r.uncertainty.unwrap();
    assert_close_f32(unc.mean_correct.unwrap(), 0.15, "mean u correct");
    assert_close_f32(unc.mean_wrong.unwrap(), 0.7, "mean u wrong");
    assert_eq!(unc.all.count, 4);
}

#[test]
fn evaluate_rejects_inconsistent_input() {
    let names = ["a", "b"];
    let err = |r: Result<_, EvalError>| match r {
        Err(EvalError::Input(message)) => message,
        other => panic!("expected an input error, got {other:?}"),
    };
    assert!(err(evaluate(&[0, 1], &[0.5, 0.5, 0.5], None, &names)).contains("3 probabilities"));
    assert!(err(evaluate(&[0, 2], &[0.5, 0.5, 0.5, 0.5], None, &names)).contains("sample 1"));
    assert!(err(evaluate(&[0, 1], &[0.5, f32::NAN, 0.5, 0.5], None, &names)).contains("sample 0"));
    assert!(err(evaluate(&[0, 1], &[0.5; 4], Some(&[0.1]), &names)).contains("1 uncertainties"));
    assert!(
        err(evaluate(
            &[0, 1],
            &[0.5; 4],
            Some(&[0.1, f32::INFINITY]),
            &names
        ))
        .contains("sample 1")
    );
    assert!(err(evaluate(&[], &[], None, &names)).contains("nothing to evaluate"));
}
