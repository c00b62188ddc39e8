//! Classification metrics: confusion matrix, accuracies, per-class precision/recall/F1, macro-F1,
//! expected calibration error and a distribution summary for the uncertainty `u`.
//!
//! Conventions follow scikit-learn so that numbers agree with the Python FER literature:
//! a ratio whose denominator is zero counts as 0 (sklearn's `zero_division` default), mean class
//! accuracy averages recall over the classes present in the ground truth (`balanced_accuracy_score`)
//! and macro-F1 averages over the classes present in the ground truth or the predictions
//! (`f1_score(average="macro")`).

use serde::{Deserialize, Serialize};

use super::EvalError;

/// Number of equal-width confidence bins for the expected calibration error (Guo et al. 2017).
pub const ECE_BINS: usize = 15;

/// Precision, recall (the paper's per-class accuracy), F1 and support of one class.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Correct predictions of the class over all predictions of the class.
    pub precision: f64,
    /// Correct predictions of the class over its true samples: the paper's "class accuracy".
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Number of true samples of the class.
    pub support: u64,
}

/// A K x K confusion matrix of counts; rows are true classes, columns predicted classes.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
}

impl ConfusionMatrix {
    /// Counts (true, predicted) pairs; every label must be below `num_classes`.
    pub fn from_labels(
        y_true: &[usize],
        y_pred: &[usize],
        num_classes: usize,
    ) -> Result<Self, EvalError> {
        if y_true.len() != y_pred.len() {
            return Err(EvalError::Input(format!(
                "{} true labels but {} predictions",
                y_true.len(),
                y_pred.len()
            )));
        }
        let mut counts = vec![vec![0u64; num_classes]; num_classes];
        for (i, (&t, &p)) in y_true.iter().zip(y_pred).enumerate() {
            if t >= num_classes || p >= num_classes {
                return Err(EvalError::Input(format!(
                    "sample {i}: label {t} / prediction {p} outside 0..{num_classes}"
                )));
            }
            counts[t][p] += 1;
        }
        Ok(Self { counts })
    }

    /// Wraps existing counts (for example from a `report.json`); they must form a square matrix.
    pub fn from_counts(counts: Vec<Vec<u64>>) -> Result<Self, EvalError> {
        let k = counts.len();
        if let Some(row) = counts.iter().position(|r| r.len() != k) {
            return Err(EvalError::Input(format!(
                "confusion matrix row {row} has {} entries, expected {k}",
                counts[row].len()
            )));
        }
        Ok(Self { counts })
    }

    /// The counts, rows = true class.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// Number of classes K.
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// Total number of samples.
    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    fn correct(&self) -> u64 {
        (0..self.num_classes()).map(|c| self.counts[c][c]).sum()
    }

    fn row_sum(&self, c: usize) -> u64 {
        self.counts[c].iter().sum()
    }

    fn column_sum(&self, c: usize) -> u64 {
        self.counts.iter().map(|row| row[c]).sum()
    }

    /// Overall accuracy (0 for an empty matrix).
    pub fn accuracy(&self) -> f64 {
        ratio(self.correct(), self.total())
    }

    /// Per-class precision, recall, F1 and support, in class order.
    pub fn class_metrics(&self) -> Vec<ClassMetrics> {
        (0..self.num_classes())
            .map(|c| {
                let tp = self.counts[c][c];
                let support = self.row_sum(c);
                let predicted = self.column_sum(c);
                ClassMetrics {
                    precision: ratio(tp, predicted),
                    recall: ratio(tp, support),
                    // 2tp / (2tp + fp + fn), which equals the harmonic mean where both are defined.
                    f1: ratio(2 * tp, support + predicted),
                    support,
                }
            })
            .collect()
    }

    /// Per-class accuracy (recall); `None` for a class without true samples.
    pub fn class_accuracies(&self) -> Vec<Option<f64>> {
        (0..self.num_classes())
            .map(|c| {
                let support = self.row_sum(c);
                (support > 0).then(|| ratio(self.counts[c][c], support))
            })
            .collect()
    }

    /// Mean of the per-class accuracies over classes with true samples (balanced accuracy).
    pub fn mean_class_accuracy(&self) -> f64 {
        mean(self.class_accuracies().into_iter().flatten())
    }

    /// Mean F1 over the classes that occur among the true labels or the predictions.
    pub fn macro_f1(&self) -> f64 {
        let metrics = self.class_metrics();
        mean(
            (0..self.num_classes()).filter_map(|c| {
                (self.row_sum(c) + self.column_sum(c) > 0).then_some(metrics[c].f1)
            }),
        )
    }

    /// Each row divided by its sum (a row without samples stays all zero).
    pub fn row_normalized(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                let sum: u64 = row.iter().sum();
                row.iter().map(|&v| ratio(v, sum)).collect()
            })
            .collect()
    }
}

fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Expected calibration error over `(confidence, correct)` pairs: the sample-weighted mean gap
/// between accuracy and mean confidence in `bins` equal-width bins `(i/bins, (i+1)/bins]`, the
/// usual definition (Guo et al. 2017, 15 bins). 0 for no samples.
pub fn expected_calibration_error(predictions: &[(f64, bool)], bins: usize) -> f64 {
    let bins = bins.max(1);
    let mut confidence_sum = vec![0.0; bins];
    let mut correct = vec![0u64; bins];
    let mut count = vec![0u64; bins];
    for &(confidence, is_correct) in predictions {
        // ceil(c * bins) - 1 puts a confidence on an upper edge into the lower bin.
        let bin = ((confidence * bins as f64).ceil() as usize).clamp(1, bins) - 1;
        confidence_sum[bin] += confidence;
        correct[bin] += u64::from(is_correct);
        count[bin] += 1;
    }
    let n = predictions.len() as f64;
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let gap = correct[b] as f64 / count[b] as f64 - confidence_sum[b] / count[b] as f64;
            count[b] as f64 / n * gap.abs()
        })
        .sum()
}

/// Equal-width histogram: `counts[i]` counts values in `[edges[i], edges[i+1])`, the last bin
/// closed, as `numpy.histogram` does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Bin edges, one more than the bins.
    pub edges: Vec<f64>,
    /// Number of values in each bin.
    pub counts: Vec<u64>,
}

/// Summary statistics of a sample of values (used for the uncertainty `u`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DistributionSummary {
    /// Number of values.
    pub count: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Population standard deviation.
    pub std: f64,
    /// 5th percentile (linear interpolation, numpy's default).
    pub p05: f64,
    /// First quartile.
    pub p25: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Equal-width histogram between min and max.
    pub histogram: Histogram,
}

/// Summarizes `values` with a `bins`-bin histogram; `None` when empty or any value is not finite.
pub fn summarize(values: &[f64], bins: usize) -> Option<DistributionSummary> {
    if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let variance = sorted.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    Some(DistributionSummary {
        count: sorted.len(),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        mean,
        std: variance.sqrt(),
        p05: quantile_sorted(&sorted, 0.05),
        p25: quantile_sorted(&sorted, 0.25),
        median: quantile_sorted(&sorted, 0.5),
        p75: quantile_sorted(&sorted, 0.75),
        p95: quantile_sorted(&sorted, 0.95),
        histogram: histogram_sorted(&sorted, bins.max(1)),
    })
}

/// Quantile `q` of ascending, non-empty `sorted` by linear interpolation between order statistics.
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let lower = position.floor() as usize;
    let upper = (lower + 1).min(sorted.len() - 1);
    let fraction = position - lower as f64;
    sorted[lower] + (sorted[upper] - sorted[lower]) * fraction
}

fn histogram_sorted(sorted: &[f64], bins: usize) -> Histogram {
    let (mut low, mut high) = (sorted[0], sorted[sorted.len() - 1]);
    if low == high {
        // numpy widens a degenerate range to +-0.5 around the value.
        low -= 0.5;
        high += 0.5;
    }
    let width = (high - low) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|i| low + width * i as f64).collect();
    let mut counts = vec![0u64; bins];
    for &v in sorted {
        let bin = (((v - low) / width) as usize).min(bins - 1);
        counts[bin] += 1;
    }
    Histogram { edges, counts }
}
