//! Per-epoch metrics: `metrics.jsonl` (one JSON object per epoch) and `metrics.csv`, both rewritten
//! atomically from the history after every epoch.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What one epoch measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Training accuracy (of the logits the loss saw).
    pub train_accuracy: f64,
    /// Held-out accuracy.
    pub test_accuracy: f64,
    /// Held-out mean class accuracy (balanced accuracy).
    pub test_mean_class_accuracy: f64,
    /// Held-out accuracy of every class, in class order (None for a class without samples).
    pub test_per_class_accuracy: Vec<Option<f64>>,
    /// Learning rate of the backbone and head.
    pub lr: f64,
    /// Learning rate of the classifier.
    pub fc_lr: f64,
    /// Training images per second.
    pub train_images_per_second: f64,
    /// Seconds of training (without evaluation).
    pub train_seconds: f64,
}

/// Writes `metrics.jsonl` and `metrics.csv` in `dir` from the whole history.
pub fn write(dir: &Path, history: &[EpochMetrics], class_names: &[&str]) -> std::io::Result<()> {
    let mut jsonl = String::new();
    for m in history {
        jsonl.push_str(&serde_json::to_string(m).expect("metrics serialize"));
        jsonl.push('\n');
    }
    crate::util::write_atomic(&dir.join("metrics.jsonl"), jsonl.as_bytes())?;

    let mut csv = String::from(
        "epoch,train_loss,train_accuracy,test_accuracy,test_mean_class_accuracy,lr,fc_lr,train_images_per_second,train_seconds",
    );
    for name in class_names {
        csv.push_str(&format!(",test_accuracy_{name}"));
    }
    csv.push('\n');
    for m in history {
        csv.push_str(&format!(
            "{},{:.6},{:.6},{:.6},{:.6},{:e},{:e},{:.2},{:.2}",
            m.epoch,
            m.train_loss,
            m.train_accuracy,
            m.test_accuracy,
            m.test_mean_class_accuracy,
            m.lr,
            m.fc_lr,
            m.train_images_per_second,
            m.train_seconds
        ));
        for a in &m.test_per_class_accuracy {
            match a {
                Some(a) => csv.push_str(&format!(",{a:.6}")),
                None => csv.push(','),
            }
        }
        csv.push('\n');
    }
    crate::util::write_atomic(&dir.join("metrics.csv"), csv.as_bytes())
}
