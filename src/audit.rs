//! `cucn audit` as a library call: rank a dataset's training samples by the trained model's
//! learned uncertainty and by its disagreement with the given label, and, where the true labels
//! are known (the synthetic benchmark's `synth_meta.csv`, or a clean label list beside a noisy
//! one), measure how well that ranking finds the flipped labels.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;

use crate::data::{self, DatasetFormat, LoadOptions, Split};
use crate::eval::audit::{
    AuditSample, DetectionReport, audit_contact_sheet, audit_csv, detection_report, rank_samples,
    read_synth_meta_flips,
};
use crate::evaluate::{RunEvalError, run_config};
use crate::infer;
use crate::model::weights::load_model;

/// Where the truth about flipped labels comes from.
#[derive(Clone, Debug)]
pub enum GroundTruth {
    /// `synth_meta.csv` of the synthetic benchmark (found in the data root).
    SynthMeta(PathBuf),
    /// A clean RAF-DB label list (`train_00001.jpg 5` lines) to compare the given labels with.
    CleanLabels(PathBuf),
}

/// What to audit.
#[derive(Clone, Debug)]
pub struct AuditRequest {
    /// The trained run (its best checkpoint).
    pub run: PathBuf,
    /// Dataset format.
    pub format: DatasetFormat,
    /// Dataset root.
    pub data: PathBuf,
    /// Alternative (e.g. noisy) label list.
    pub label_file: Option<PathBuf>,
    /// Explicit clean label list; otherwise `synth_meta.csv` in the data root is used if present.
    pub clean_labels: Option<PathBuf>,
    /// How many of the most suspicious samples the contact sheet shows.
    pub top: usize,
    /// Output folder.
    pub out: PathBuf,
}

/// A finished audit.
#[derive(Debug, Serialize)]
pub struct AuditSummary {
    /// Samples audited.
    pub samples: usize,
    /// The ground truth used, if any.
    pub ground_truth: Option<String>,
    /// Flipped labels according to it.
    pub flipped: Option<usize>,
    /// Precision at k and AUROC of the rankings, where ground truth exists.
    pub detection: Option<DetectionReport>,
}

/// Reads `name label` lines (RAF-DB labels 1..7) into a map of 0-based labels.
fn read_clean_labels(path: &Path) -> Result<HashMap<String, usize>, RunEvalError> {
    let text = std::fs::read_to_string(path).map_err(|e| data::DataError::io(path, e))?;
    let mut map = HashMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let mut parts = line.split_whitespace();
        let parsed = match (parts.next(), parts.next().map(str::parse::<usize>)) {
            (Some(name), Some(Ok(label))) if (1..=7).contains(&label) => Some((name, label - 1)),
            _ => None,
        };
        let (name, label) = parsed.ok_or_else(|| {
            data::DataError::invalid(
                path,
                format!("line {}: expected 'name label' with label 1..7", i + 1),
            )
        })?;
        map.insert(name.to_string(), label);
    }
    Ok(map)
}

/// Runs the audit and writes `audit.csv`, `audit_top.png` and, with ground truth,
/// `audit_detection.json` and `audit_detection.md` into `req.out`.
pub fn audit(req: &AuditRequest, device: &Device) -> Result<AuditSummary, RunEvalError> {
    let config = run_config(&req.run)?;
    let (model, network) = load_model(&crate::model_file(&req.run)?, device)?;
    let options = LoadOptions {
        label_file: req.label_file.clone(),
        ..config.load_options()
    };
    let dataset = data::load(req.format, &req.data, &options)?;
    let samples = dataset.samples(Split::Train).to_vec();
    let outputs = infer::run(
        &model,
        samples.clone().into(),
        network.input_size,
        config.train.batch,
        config.train.workers,
        device,
        &mut |_| {},
    )?;
    let k = outputs.num_classes;
    let predicted = outputs.predictions();
    let audited: Vec<AuditSample> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let p = &outputs.probabilities[i * k..(i + 1) * k];
            AuditSample {
                path: s.name.clone(),
                given: s.label,
                predicted: predicted[i],
                prob_predicted: p[predicted[i]],
                prob_given: p[s.label],
                uncertainty: outputs.uncertainty[i],
            }
        })
        .collect();
    let names = dataset.class_names();
    let ranking = rank_samples(&audited, k)?;
    std::fs::create_dir_all(&req.out).map_err(|e| data::DataError::io(&req.out, e))?;
    let csv = audit_csv(&audited, &ranking, names)?;
    crate::eval::write_output(&req.out.join("audit.csv"), csv.as_bytes())?;

    let top: Vec<_> = ranking.iter().take(req.top).cloned().collect();
    let images = top
        .iter()
        .map(|r| {
            data::decode::source_rgb(&samples[r.index].source, data::decode::DEFAULT_MAX_PIXELS)
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| data::DataError::invalid(&req.data, e))?;
    let png = audit_contact_sheet(&audited, &top, &images, names)?;
    crate::eval::write_output(&req.out.join("audit_top.png"), &png)?;

    let truth = match &req.clean_labels {
        Some(p) => Some(GroundTruth::CleanLabels(p.clone())),
        None => {
            let meta = req.data.join(crate::data::synth::META_FILE);
            meta.is_file().then_some(GroundTruth::SynthMeta(meta))
        }
    };
    let flipped: Option<(String, Vec<bool>)> = match &truth {
        None => None,
        Some(GroundTruth::SynthMeta(p)) => {
            let flips = read_synth_meta_flips(p)?;
            Some((
                p.display().to_string(),
                samples
                    .iter()
                    .map(|s| flips.get(&s.name).copied().unwrap_or(false))
                    .collect(),
            ))
        }
        Some(GroundTruth::CleanLabels(p)) => {
            let clean = read_clean_labels(p)?;
            Some((
                p.display().to_string(),
                samples
                    .iter()
                    .map(|s| clean.get(&s.name).is_some_and(|&c| c != s.label))
                    .collect(),
            ))
        }
    };
    let (ground_truth, flipped_count, detection) = match flipped {
        None => (None, None, None),
        Some((source, flags)) => {
            let count = flags.iter().filter(|&&f| f).count();
            let ks: Vec<usize> = [50, 100, 500, count]
                .into_iter()
                .filter(|&k| k > 0 && k <= samples.len())
                .collect();
            let report = detection_report(&audited, &ranking, &flags, &ks)?;
            let json = serde_json::to_string_pretty(&report).expect("report serializes");
            crate::eval::write_output(&req.out.join("audit_detection.json"), json.as_bytes())?;
            crate::eval::write_output(
                &req.out.join("audit_detection.md"),
                report.to_markdown().as_bytes(),
            )?;
            (Some(source), Some(count), Some(report))
        }
    };
    Ok(AuditSummary {
        samples: samples.len(),
        ground_truth,
        flipped: flipped_count,
        detection,
    })
}
