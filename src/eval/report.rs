//! The evaluation report: computed from labels, probabilities and uncertainties, saved as
//! `report.json` and `report.md` with `confusion.png` and `per_class.png` beside them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::{self, ClassMetrics, ConfusionMatrix, DistributionSummary, ECE_BINS};
use super::{EvalError, plots, write_output};

/// Histogram bins of the uncertainty distribution.
pub const UNCERTAINTY_BINS: usize = 20;

/// Distribution of the learned uncertainty `u` over the evaluated samples.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UncertaintyReport {
    /// Statistics over all samples.
    #[serde(flatten)]
    pub all: DistributionSummary,
    /// Mean `u` of correctly classified samples (`None` if there are none).
    pub mean_correct: Option<f64>,
    /// Mean `u` of misclassified samples (`None` if there are none).
    pub mean_wrong: Option<f64>,
}

/// Everything `cucn eval` reports. Accuracies and rates are fractions in [0, 1].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Number of evaluated samples.
    pub num_samples: usize,
    /// Overall accuracy.
    pub accuracy: f64,
    /// Mean of the per-class accuracies (balanced accuracy).
    pub mean_class_accuracy: f64,
    /// Mean F1 over the classes that occur.
    pub macro_f1: f64,
    /// Highest per-class accuracy (Table II), over classes with samples.
    pub max_class_accuracy: f64,
    /// Lowest per-class accuracy (Table II), over classes with samples.
    pub min_class_accuracy: f64,
    /// Expected calibration error of the top-class probability.
    pub ece: f64,
    /// Number of confidence bins used for `ece`.
    pub ece_bins: usize,
    /// Mean top-class probability.
    pub mean_confidence: f64,
    /// Class names in index order.
    pub classes: Vec<String>,
    /// Per-class precision, recall (= class accuracy), F1 and support, by class name.
    pub per_class: BTreeMap<String, ClassMetrics>,
    /// K x K counts, rows = true class, columns = predicted class.
    pub confusion: Vec<Vec<u64>>,
    /// The confusion matrix with each row divided by its sum.
    pub confusion_normalized: Vec<Vec<f64>>,
    /// Distribution of the uncertainty `u`, when the model provides it.
    pub uncertainty: Option<UncertaintyReport>,
}

/// Computes the report. `probs` holds one row of K = `class_names.len()` class probabilities per
/// sample (row-major, n x K); the prediction is the most probable class (the first on ties).
/// `uncertainty`, when given, has one `u` per sample.
pub fn evaluate(
    y_true: &[usize],
    probs: &[f32],
    uncertainty: Option<&[f32]>,
    class_names: &[&str],
) -> Result<Report, EvalError> {
    let k = class_names.len();
    let n = y_true.len();
    if k == 0 || n == 0 {
        return Err(EvalError::Input(format!(
            "nothing to evaluate ({n} samples, {k} classes)"
        )));
    }
    if probs.len() != n * k {
        return Err(EvalError::Input(format!(
            "{} probabilities for {n} samples x {k} classes",
            probs.len()
        )));
    }
    if let Some(i) = probs.iter().position(|p| !p.is_finite()) {
        return Err(EvalError::Input(format!(
            "sample {}: probability of class {} is not finite",
            i / k,
            i % k
        )));
    }
    let (y_pred, confidences): (Vec<usize>, Vec<f64>) = probs.chunks(k).map(argmax).unzip();
    let confusion = ConfusionMatrix::from_labels(y_true, &y_pred, k)?;
    let correct: Vec<bool> = y_true.iter().zip(&y_pred).map(|(t, p)| t == p).collect();
    let calibration: Vec<(f64, bool)> = confidences
        .iter()
        .copied()
        .zip(correct.iter().copied())
        .collect();
    let uncertainty = uncertainty
        .map(|u| uncertainty_report(u, &correct))
        .transpose()?;

    let accuracies: Vec<f64> = confusion.class_accuracies().into_iter().flatten().collect();
    let class_metrics = confusion.class_metrics();
    Ok(Report {
        num_samples: n,
        accuracy: confusion.accuracy(),
        mean_class_accuracy: confusion.mean_class_accuracy(),
        macro_f1: confusion.macro_f1(),
        max_class_accuracy: accuracies.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        min_class_accuracy: accuracies.iter().copied().fold(f64::INFINITY, f64::min),
        ece: metrics::expected_calibration_error(&calibration, ECE_BINS),
        ece_bins: ECE_BINS,
        mean_confidence: confidences.iter().sum::<f64>() / n as f64,
        classes: class_names.iter().map(|s| s.to_string()).collect(),
        per_class: class_names
            .iter()
            .zip(class_metrics)
            .map(|(name, m)| (name.to_string(), m))
            .collect(),
        confusion_normalized: confusion.row_normalized(),
        confusion: confusion.counts().to_vec(),
        uncertainty,
    })
}

/// Index and value of the largest entry (the first one on ties).
fn argmax(row: &[f32]) -> (usize, f64) {
    row.iter()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
            if f64::from(p) > best.1 {
                (i, f64::from(p))
            } else {
                best
            }
        })
}

fn uncertainty_report(u: &[f32], correct: &[bool]) -> Result<UncertaintyReport, EvalError> {
    if u.len() != correct.len() {
        return Err(EvalError::Input(format!(
            "{} uncertainties for {} samples",
            u.len(),
            correct.len()
        )));
    }
    let values: Vec<f64> = u.iter().map(|&v| f64::from(v)).collect();
    let all = metrics::summarize(&values, UNCERTAINTY_BINS).ok_or_else(|| {
        let i = values.iter().position(|v| !v.is_finite()).unwrap_or(0);
        EvalError::Input(format!("sample {i}: uncertainty is not finite"))
    })?;
    let mean_where = |wanted: bool| {
        let selected: Vec<f64> = values
            .iter()
            .zip(correct)
            .filter(|&(_, &c)| c == wanted)
            .map(|(&v, _)| v)
            .collect();
        (!selected.is_empty()).then(|| selected.iter().sum::<f64>() / selected.len() as f64)
    };
    Ok(UncertaintyReport {
        all,
        mean_correct: mean_where(true),
        mean_wrong: mean_where(false),
    })
}

impl Report {
    /// Reads and checks a `report.json`.
    pub fn load(path: &Path) -> Result<Report, EvalError> {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let report: Report = serde_json::from_str(&text).map_err(|e| EvalError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        report.class_accuracies().map_err(|e| EvalError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(report)
    }

    /// Per-class accuracies (recall) in the order of `classes`.
    pub fn class_accuracies(&self) -> Result<Vec<f64>, EvalError> {
        let k = self.classes.len();
        if self.confusion.len() != k || self.confusion.iter().any(|row| row.len() != k) {
            return Err(EvalError::Input(format!(
                "confusion matrix is not {k} x {k}"
            )));
        }
        self.classes
            .iter()
            .map(|name| {
                self.per_class.get(name).map(|m| m.recall).ok_or_else(|| {
                    EvalError::Input(format!("per_class has no entry for class {name:?}"))
                })
            })
            .collect()
    }

    /// Renders the report as Markdown under the heading `title`.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# {title}\n");
        let _ = writeln!(md, "| metric | value |\n|---|---|");
        let _ = writeln!(md, "| samples | {} |", self.num_samples);
        for (name, value) in [
            ("accuracy", self.accuracy),
            ("mean class accuracy", self.mean_class_accuracy),
            ("macro-F1", self.macro_f1),
            ("max class accuracy", self.max_class_accuracy),
            ("min class accuracy", self.min_class_accuracy),
        ] {
            let _ = writeln!(md, "| {name} (%) | {} |", percent(value));
        }
        let _ = writeln!(md, "| ECE ({} bins) | {:.4} |", self.ece_bins, self.ece);
        let _ = writeln!(
            md,
            "| mean confidence (%) | {} |",
            percent(self.mean_confidence)
        );

        let _ = writeln!(md, "\n## Per class\n");
        let _ = writeln!(
            md,
            "| class | precision (%) | recall = accuracy (%) | F1 (%) | support |"
        );
        let _ = writeln!(md, "|---|---|---|---|---|");
        for name in &self.classes {
            if let Some(m) = self.per_class.get(name) {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} |",
                    escape_cell(name),
                    percent(m.precision),
                    percent(m.recall),
                    percent(m.f1),
                    m.support
                );
            }
        }

        let _ = writeln!(
            md,
            "\n## Confusion matrix (rows = true, columns = predicted)\n"
        );
        md.push_str(&self.matrix_markdown(|r, c| self.confusion[r][c].to_string()));
        let _ = writeln!(md, "\n## Confusion matrix, row-normalized (%)\n");
        md.push_str(
            &self.matrix_markdown(|r, c| format!("{:.1}", 100.0 * self.confusion_normalized[r][c])),
        );
        let _ = writeln!(md, "\n![confusion matrix](confusion.png)\n");
        let _ = writeln!(md, "![per-class accuracy](per_class.png)");

        if let Some(u) = &self.uncertainty {
            md.push_str(&uncertainty_markdown(u));
        }
        md
    }

    fn matrix_markdown(&self, cell: impl Fn(usize, usize) -> String) -> String {
        let mut md = String::from("| true \\ predicted |");
        for name in &self.classes {
            let _ = write!(md, " {} |", escape_cell(name));
        }
        md.push_str("\n|---|");
        md.push_str(&"---|".repeat(self.classes.len()));
        md.push('\n');
        for (r, name) in self.classes.iter().enumerate() {
            let _ = write!(md, "| {} |", escape_cell(name));
            for c in 0..self.classes.len() {
                let _ = write!(md, " {} |", cell(r, c));
            }
            md.push('\n');
        }
        md
    }
}

fn uncertainty_markdown(u: &UncertaintyReport) -> String {
    let s = &u.all;
    let mut md = String::from("\n## Uncertainty u\n\n");
    md.push_str("| samples | min | p05 | p25 | median | p75 | p95 | max | mean | std |\n");
    md.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
    let _ = writeln!(
        md,
        "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
        s.count, s.min, s.p05, s.p25, s.median, s.p75, s.p95, s.max, s.mean, s.std
    );
    let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_string(), |v| format!("{v:.4}"));
    let _ = writeln!(
        md,
        "\nMean u of correct predictions: {}; of wrong predictions: {}.\n",
        show(u.mean_correct),
        show(u.mean_wrong)
    );
    md.push_str("| u from | to | samples |\n|---|---|---|\n");
    for (i, count) in s.histogram.counts.iter().enumerate() {
        let _ = writeln!(
            md,
            "| {:.4} | {:.4} | {count} |",
            s.histogram.edges[i],
            s.histogram.edges[i + 1]
        );
    }
    md
}

/// A fraction as a percentage with two decimals.
pub(crate) fn percent(value: f64) -> String {
    format!("{:.2}", 100.0 * value)
}

/// Makes text safe inside a Markdown table cell.
pub(crate) fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Writes `report.json`, `report.md`, `confusion.png` and `per_class.png` into `dir`, each
/// atomically. `title` heads the Markdown and the charts (for example the run name).
pub fn write_report(report: &Report, dir: &Path, title: &str) -> Result<(), EvalError> {
    let names: Vec<&str> = report.classes.iter().map(String::as_str).collect();
    let accuracies = report.class_accuracies()?;
    // Render everything first so that a drawing failure leaves no partial set of files.
    let json = serde_json::to_string_pretty(report)
        .map_err(|e| EvalError::Input(format!("report cannot be serialized: {e}")))?;
    let confusion_png = plots::confusion_heatmap(&report.confusion, &names, title)?;
    let per_class_png = plots::per_class_chart(
        &[(title.to_string(), accuracies)],
        &names,
        &format!("{title}: per-class accuracy"),
    )?;
    write_output(&dir.join("report.json"), json.as_bytes())?;
    write_output(&dir.join("report.md"), report.to_markdown(title).as_bytes())?;
    write_output(&dir.join("confusion.png"), &confusion_png)?;
    write_output(&dir.join("per_class.png"), &per_class_png)
}
