//! Label audit: ranking, audit.csv, ground-truth detection metrics (AUROC against scikit-learn's
//! roc_auc_score, precision at k) and the synth_meta.csv reader.

use cucn::eval::EvalError;
use cucn::eval::audit::{
    AuditSample, audit_contact_sheet, audit_csv, auroc, detection_report, precision_at_k,
    rank_samples, read_synth_meta_flips,
};
use image::{Rgb, RgbImage};
use serde_json::Value;

const NAMES: [&str; 3] = ["surprise", "fear", "disgust"];

fn sample(
    path: &str,
    given: usize,
    predicted: usize,
    prob_predicted: f32,
    prob_given: f32,
    u: f32,
) -> AuditSample {
    AuditSample {
        path: path.into(),
        given,
        predicted,
        prob_predicted,
        prob_given,
        uncertainty: u,
    }
}

/// Sample "b" has the highest u and the lowest p(given); "c" is the most certain and agrees.
fn samples() -> Vec<AuditSample> {
    vec![
        sample("a.jpg", 0, 0, 0.7, 0.7, 0.4),
        sample("b.jpg", 1, 2, 0.9, 0.05, 0.9),
        sample("c.jpg", 2, 2, 0.95, 0.95, 0.1),
        sample("dir,with comma/d.jpg", 0, 1, 0.5, 0.3, 0.2),
    ]
}

#[test]
fn auroc_hand_computed() {
    assert_eq!(
        auroc(&[0.1, 0.2, 0.8, 0.9], &[false, false, true, true]),
        Some(1.0)
    );
    assert_eq!(
        auroc(&[0.1, 0.2, 0.8, 0.9], &[true, true, false, false]),
        Some(0.0)
    );
    assert_eq!(auroc(&[0.5; 4], &[true, false, true, false]), Some(0.5));
    // Pairs (pos, neg): (0.8, 0.1) 1, (0.8, 0.8) 0.5, (0.3, 0.1) 1, (0.3, 0.8) 0 -> 2.5 / 4.
    assert_eq!(
        auroc(&[0.8, 0.3, 0.1, 0.8], &[true, true, false, false]),
        Some(0.625)
    );
    assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    assert_eq!(auroc(&[0.1, 0.2], &[true]), None);
    assert_eq!(auroc(&[f64::NAN, 0.2], &[true, false]), None);
}

#[test]
fn precision_at_k_hand_computed() {
    let scores = [0.9, 0.1, 0.5, 0.5, 0.7];
    let positive = [true, false, false, true, false];
    // Order: 0.9 (pos), 0.7, 0.5 (index 2), 0.5 (index 3, pos), 0.1.
    assert_eq!(precision_at_k(&scores, &positive, 1), Some(1.0));
    assert_eq!(precision_at_k(&scores, &positive, 2), Some(0.5));
    assert_eq!(precision_at_k(&scores, &positive, 3), Some(1.0 / 3.0));
    assert_eq!(precision_at_k(&scores, &positive, 4), Some(0.5));
    assert_eq!(precision_at_k(&scores, &positive, 50), Some(0.4));
    assert_eq!(precision_at_k(&scores, &positive, 0), None);
}

#[test]
fn ranking_metrics_match_scikit_learn() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_sklearn.json"
    );
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for case in fixtures["ranking"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let scores: Vec<f64> = case["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let positive: Vec<bool> = case["positive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let got = auroc(&scores, &positive).unwrap();
        let want = case["auroc"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-12, "{name}: auroc {got} != {want}");
        for pair in case["precision_at_k"].as_array().unwrap() {
            let k = pair[0].as_u64().unwrap() as usize;
            let want = pair[1].as_f64().unwrap();
            let got = precision_at_k(&scores, &positive, k).unwrap();
            assert!(
                (got - want).abs() < 1e-12,
                "{name}: precision@{k} {got} != {want}"
            );
        }
    }
}

#[test]
fn ranks_the_sample_odd_on_both_signals_first() {
    let samples = samples();
    let ranking = rank_samples(&samples, 3).unwrap();
    let order: Vec<&str> = ranking
        .iter()
        .map(|r| samples[r.index].path.as_str())
        .collect();
    assert_eq!(order[0], "b.jpg");
    assert_eq!(order[3], "c.jpg");
    assert_eq!(
        ranking.iter().map(|r| r.rank).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let b = &ranking[0];
    assert_eq!(
        (b.uncertainty_rank, b.disagreement_rank, b.suspicion),
        (1, 1, 1.0)
    );
    let mut u_ranks: Vec<usize> = ranking.iter().map(|r| r.uncertainty_rank).collect();
    u_ranks.sort();
    assert_eq!(u_ranks, vec![1, 2, 3, 4]);
}

#[test]
fn ranking_rejects_invalid_samples_naming_them() {
    let mut bad = samples();
    bad[2].uncertainty = f32::NAN;
    let message = rank_samples(&bad, 3).unwrap_err().to_string();
    assert!(message.contains("c.jpg"), "{message}");
    let mut out_of_range = samples();
    out_of_range[0].given = 3;
    assert!(matches!(
        rank_samples(&out_of_range, 3),
        Err(EvalError::Input(_))
    ));
}

#[test]
fn csv_lists_samples_in_rank_order_with_quoted_paths() {
    let samples = samples();
    let ranking = rank_samples(&samples, 3).unwrap();
    let csv = audit_csv(&samples, &ranking, &NAMES).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "rank,path,given_label,predicted_label,probability,probability_given,u,suspicion,uncertainty_rank,disagreement_rank"
    );
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[1],
        "1,b.jpg,fear,disgust,0.900000,0.050000,0.900000,1.000000,1,1"
    );
    assert!(
        csv.contains("\"dir,with comma/d.jpg\",surprise,fear,"),
        "{csv}"
    );
}

#[test]
fn detection_report_measures_each_score() {
    let samples = samples();
    let ranking = rank_samples(&samples, 3).unwrap();
    // b and d have wrong labels.
    let flipped = [false, true, false, true];
    let report = detection_report(&samples, &ranking, &flipped, &[1, 2]).unwrap();
    assert_eq!((report.samples, report.flipped), (4, 2));
    let names: Vec<&str> = report.scores.iter().map(|s| s.score.as_str()).collect();
    assert_eq!(names, ["uncertainty", "disagreement", "suspicion"]);
    // Disagreement (0.3, 0.95, 0.05, 0.7) separates the flipped samples perfectly; u (0.4, 0.9,
    // 0.1, 0.2) orders 3 of the 4 flipped/clean pairs correctly.
    assert_eq!(report.scores[1].auroc, Some(1.0));
    assert_eq!(report.scores[0].auroc, Some(0.75));
    assert_eq!(report.scores[1].precision_at_k[1].precision, 1.0);
    assert_eq!(report.scores[0].precision_at_k[1].precision, 0.5);
    let md = report.to_markdown();
    assert!(
        md.contains("| disagreement | 1.0000 | 1.0000 | 1.0000 |"),
        "{md}"
    );
    assert!(detection_report(&samples, &ranking, &flipped[..3], &[1]).is_err());
}

#[test]
fn contact_sheet_of_the_top_samples() {
    let samples = samples();
    let ranking = rank_samples(&samples, 3).unwrap();
    let images = vec![RgbImage::from_pixel(100, 100, Rgb([40, 160, 40])); 2];
    let png = audit_contact_sheet(&samples, &ranking[..2], &images, &NAMES).unwrap();
    let sheet = image::load_from_memory(&png).unwrap().to_rgb8();
    assert_eq!(sheet.width(), 2 * (cucn::eval::plots::TILE_SIDE + 8) + 8);
}

#[test]
fn reads_flips_from_synth_meta() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth_meta.csv");
    std::fs::write(&path, "name,clean_label,label,flipped,intensity\ntrain_00001.jpg,3,3,0,0.8\ntrain_00002.jpg,1,5,1,0.4\n").unwrap();
    let flips = read_synth_meta_flips(&path).unwrap();
    assert_eq!(flips.len(), 2);
    assert!(flips["train_00002.jpg"]);
    assert!(!flips["train_00001.jpg"]);

    std::fs::write(&path, "name,flipped\na.jpg,true\nb.jpg,maybe\n").unwrap();
    let message = read_synth_meta_flips(&path).unwrap_err().to_string();
    assert!(
        message.contains("synth_meta.csv") && message.contains("line 3"),
        "{message}"
    );
    std::fs::write(&path, "name,label\na.jpg,1\n").unwrap();
    assert!(
        read_synth_meta_flips(&path)
            .unwrap_err()
            .to_string()
            .contains("flipped")
    );
}
