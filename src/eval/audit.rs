//! Label audit: ranks training samples by how suspicious their label looks, writes `audit.csv`
//! and a contact sheet, and, where the flipped labels are known (the synthetic benchmark), measures
//! how well each ranking finds them (precision at k, AUROC).
//!
//! Two signals are ranked: the learned uncertainty `u` and the disagreement `1 - p(given label)`.
//! The overall `rank` orders by their mean normalized rank, so a sample must look odd on both to
//! come first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::EvalError;
use super::plots::{Tile, contact_sheet};

/// Tiles per row of the audit contact sheet.
pub const SHEET_COLUMNS: usize = 8;

/// The model's view of one training sample.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditSample {
    /// Image path (as it should appear in `audit.csv`).
    pub path: String,
    /// Label given by the dataset (class index).
    pub given: usize,
    /// Predicted class index.
    pub predicted: usize,
    /// Probability of the predicted class.
    pub prob_predicted: f32,
    /// Probability the model gives to the dataset's label.
    pub prob_given: f32,
    /// Learned uncertainty `u`.
    pub uncertainty: f32,
}

impl AuditSample {
    /// How strongly the model disagrees with the given label: `1 - p(given)`.
    pub fn disagreement(&self) -> f64 {
        1.0 - f64::from(self.prob_given)
    }
}

/// A sample's place in the audit ranking (1 = most suspicious).
#[derive(Clone, Debug, PartialEq)]
pub struct RankedSample {
    /// Index into the audited samples.
    pub index: usize,
    /// Overall rank by `suspicion`.
    pub rank: usize,
    /// Mean of the sample's normalized ranks by `u` and by disagreement, in (0, 1].
    pub suspicion: f64,
    /// Rank by uncertainty alone.
    pub uncertainty_rank: usize,
    /// Rank by disagreement alone.
    pub disagreement_rank: usize,
}

/// Ranks `samples`, most suspicious first. Ties are broken by disagreement, then input order.
pub fn rank_samples(
    samples: &[AuditSample],
    num_classes: usize,
) -> Result<Vec<RankedSample>, EvalError> {
    for s in samples {
        let finite =
            s.prob_given.is_finite() && s.prob_predicted.is_finite() && s.uncertainty.is_finite();
        if !finite || s.given >= num_classes || s.predicted >= num_classes {
            return Err(EvalError::Input(format!(
                "{}: label {} / prediction {} / probabilities {}, {} / u {} are not valid for {num_classes} classes",
                s.path, s.given, s.predicted, s.prob_predicted, s.prob_given, s.uncertainty
            )));
        }
    }
    let uncertainty: Vec<f64> = samples.iter().map(|s| f64::from(s.uncertainty)).collect();
    let disagreement: Vec<f64> = samples.iter().map(AuditSample::disagreement).collect();
    let n = samples.len() as f64;
    let (u_ranks, d_ranks) = (average_ranks(&uncertainty), average_ranks(&disagreement));
    let suspicion: Vec<f64> = u_ranks
        .iter()
        .zip(&d_ranks)
        .map(|(u, d)| (u + d) / (2.0 * n))
        .collect();
    let u_order = descending_order(&uncertainty);
    let d_order = descending_order(&disagreement);
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| {
        suspicion[b]
            .total_cmp(&suspicion[a])
            .then(disagreement[b].total_cmp(&disagreement[a]))
            .then(a.cmp(&b))
    });
    let mut ranking: Vec<RankedSample> = order
        .iter()
        .enumerate()
        .map(|(position, &index)| RankedSample {
            index,
            rank: position + 1,
            suspicion: suspicion[index],
            uncertainty_rank: 0,
            disagreement_rank: 0,
        })
        .collect();
    let mut place = vec![0; samples.len()];
    for (position, &index) in order.iter().enumerate() {
        place[index] = position;
    }
    for (position, &index) in u_order.iter().enumerate() {
        ranking[place[index]].uncertainty_rank = position + 1;
    }
    for (position, &index) in d_order.iter().enumerate() {
        ranking[place[index]].disagreement_rank = position + 1;
    }
    Ok(ranking)
}

/// Indices sorted by score, highest first, ties in input order.
fn descending_order(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
}

/// 1-based ranks in ascending order of score, tied scores sharing their mean rank.
fn average_ranks(scores: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut ranks = vec![0.0; scores.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        // Positions start..end hold equal scores; their 1-based ranks average to this.
        let mean_rank = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = mean_rank;
        }
        start = end;
    }
    ranks
}

/// Area under the ROC curve of `scores` for finding the `positive` samples, computed as the
/// Mann-Whitney statistic with tied scores counting one half (equal to scikit-learn's
/// `roc_auc_score`). `None` if the lengths differ, a score is not finite, or either class is empty.
pub fn auroc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    if scores.len() != positive.len() || scores.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let positives = positive.iter().filter(|&&p| p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let ranks = average_ranks(scores);
    let positive_rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|&(_, &p)| p)
        .map(|(r, _)| r)
        .sum();
    let p = positives as f64;
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// Fraction of positives among the `k` highest scores (ties in input order). `k` larger than
/// the number of samples is cut to it; `None` for `k = 0`, no samples or differing lengths.
pub fn precision_at_k(scores: &[f64], positive: &[bool], k: usize) -> Option<f64> {
    let k = k.min(scores.len());
    if k == 0 || scores.len() != positive.len() {
        return None;
    }
    let hits = descending_order(scores)
        .iter()
        .take(k)
        .filter(|&&i| positive[i])
        .count();
    Some(hits as f64 / k as f64)
}

/// The sample a ranking entry points at, or an error if the ranking belongs to other samples.
fn ranked_sample(samples: &[AuditSample], index: usize) -> Result<&AuditSample, EvalError> {
    samples.get(index).ok_or_else(|| {
        EvalError::Input(format!(
            "ranking refers to sample {index} of {}",
            samples.len()
        ))
    })
}

/// `audit.csv` in rank order: `rank, path, given_label, predicted_label, probability (of the
/// prediction), probability_given, u, suspicion, uncertainty_rank, disagreement_rank`.
pub fn audit_csv(
    samples: &[AuditSample],
    ranking: &[RankedSample],
    class_names: &[&str],
) -> Result<String, EvalError> {
    let name = |c: usize| {
        class_names
            .get(c)
            .copied()
            .ok_or_else(|| EvalError::Input(format!("class index {c} has no name")))
    };
    let mut csv = String::from(
        "rank,path,given_label,predicted_label,probability,probability_given,u,suspicion,uncertainty_rank,disagreement_rank\n",
    );
    for r in ranking {
        let s = ranked_sample(samples, r.index)?;
        let _ = writeln!(
            csv,
            "{},{},{},{},{:.6},{:.6},{:.6},{:.6},{},{}",
            r.rank,
            crate::util::csv_field(&s.path),
            crate::util::csv_field(name(s.given)?),
            crate::util::csv_field(name(s.predicted)?),
            s.prob_predicted,
            s.prob_given,
            s.uncertainty,
            r.suspicion,
            r.uncertainty_rank,
            r.disagreement_rank
        );
    }
    Ok(csv)
}

/// Contact sheet of the top of the ranking: `images[i]` belongs to `ranking[i]`; each tile is
/// captioned with its rank and `u`, the given label and the predicted label with its probability.
pub fn audit_contact_sheet(
    samples: &[AuditSample],
    ranking: &[RankedSample],
    images: &[RgbImage],
    class_names: &[&str],
) -> Result<Vec<u8>, EvalError> {
    let name = |c: usize| class_names.get(c).copied().unwrap_or("?");
    let tiles = ranking
        .iter()
        .zip(images)
        .map(|(r, image)| {
            let s = ranked_sample(samples, r.index)?;
            Ok(Tile {
                image: image.clone(),
                caption: vec![
                    format!("#{} u={:.3}", r.rank, s.uncertainty),
                    format!("given: {}", name(s.given)),
                    format!("pred: {} {:.2}", name(s.predicted), s.prob_predicted),
                ],
            })
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    contact_sheet(&tiles, SHEET_COLUMNS)
}

/// Precision of one ranking at one cut-off.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrecisionAtK {
    /// Number of top-ranked samples inspected.
    pub k: usize,
    /// Fraction of them whose label was flipped.
    pub precision: f64,
}

/// How well one score finds the flipped labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionScore {
    /// `uncertainty`, `disagreement` or `suspicion` (the combined rank).
    pub score: String,
    /// Area under the ROC curve (`None` if all or no labels are flipped).
    pub auroc: Option<f64>,
    /// Precision at each requested cut-off.
    pub precision_at_k: Vec<PrecisionAtK>,
}

/// Flipped-label detection quality of the audit's scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionReport {
    /// Number of audited samples.
    pub samples: usize,
    /// Number of them whose label was flipped.
    pub flipped: usize,
    /// One entry per score.
    pub scores: Vec<DetectionScore>,
}

/// Measures each score against `flipped` (one flag per sample) at the cut-offs `ks`.
pub fn detection_report(
    samples: &[AuditSample],
    ranking: &[RankedSample],
    flipped: &[bool],
    ks: &[usize],
) -> Result<DetectionReport, EvalError> {
    if flipped.len() != samples.len() || ranking.len() != samples.len() {
        return Err(EvalError::Input(format!(
            "{} ground-truth flags and {} ranked entries for {} samples",
            flipped.len(),
            ranking.len(),
            samples.len()
        )));
    }
    let mut suspicion = vec![0.0; samples.len()];
    for r in ranking {
        if let Some(slot) = suspicion.get_mut(r.index) {
            *slot = r.suspicion;
        }
    }
    let named_scores = [
        (
            "uncertainty",
            samples
                .iter()
                .map(|s| f64::from(s.uncertainty))
                .collect::<Vec<_>>(),
        ),
        (
            "disagreement",
            samples.iter().map(AuditSample::disagreement).collect(),
        ),
        ("suspicion", suspicion),
    ];
    let scores = named_scores
        .into_iter()
        .map(|(name, scores)| DetectionScore {
            score: name.to_string(),
            auroc: auroc(&scores, flipped),
            precision_at_k: ks
                .iter()
                .filter_map(|&k| {
                    precision_at_k(&scores, flipped, k).map(|precision| PrecisionAtK {
                        k: k.min(scores.len()),
                        precision,
                    })
                })
                .collect(),
        })
        .collect();
    Ok(DetectionReport {
        samples: samples.len(),
        flipped: flipped.iter().filter(|&&f| f).count(),
        scores,
    })
}

impl DetectionReport {
    /// A Markdown table: one row per score, AUROC and precision at each k.
    pub fn to_markdown(&self) -> String {
        let ks: Vec<usize> = self
            .scores
            .first()
            .map_or_else(Vec::new, |s| s.precision_at_k.iter().map(|p| p.k).collect());
        let mut md = format!(
            "Flipped labels: {} of {} samples.\n\n| score | AUROC |",
            self.flipped, self.samples
        );
        for k in &ks {
            let _ = write!(md, " precision@{k} |");
        }
        md.push_str("\n|---|---|");
        md.push_str(&"---|".repeat(ks.len()));
        md.push('\n');
        for s in &self.scores {
            let auroc = s
                .auroc
                .map_or_else(|| "n/a".to_string(), |a| format!("{a:.4}"));
            let _ = write!(md, "| {} | {auroc} |", s.score);
            for p in &s.precision_at_k {
                let _ = write!(md, " {:.4} |", p.precision);
            }
            md.push('\n');
        }
        md
    }
}

/// Reads the `name` and `flipped` columns of the synthetic benchmark's `synth_meta.csv`
/// (`flipped` as `1`/`0` or `true`/`false`), keyed by name.
pub fn read_synth_meta_flips(path: &Path) -> Result<HashMap<String, bool>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    let bad = |line: usize, message: String| EvalError::BadFile {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |wanted: &str| {
        columns
            .iter()
            .position(|c| *c == wanted)
            .ok_or_else(|| bad(1, format!("no `{wanted}` column in the header")))
    };
    let (name_col, flipped_col) = (column("name")?, column("flipped")?);
    lines
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let field = |c: usize| {
                fields
                    .get(c)
                    .copied()
                    .ok_or_else(|| bad(i + 1, format!("expected at least {} fields", c + 1)))
            };
            let flipped = match field(flipped_col)?.to_ascii_lowercase().as_str() {
                "1" | "true" => true,
                "0" | "false" => false,
                other => {
                    return Err(bad(
                        i + 1,
                        format!("`flipped` is {other:?}, expected 0/1 or true/false"),
                    ));
                }
            };
            Ok((field(name_col)?.to_string(), flipped))
        })
        .collect()
}
