//! The training configuration: TOML sections with defaults, presets, and command-line overrides.
//! The fully resolved configuration is written to every run directory as `config.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::class_weights::ClassWeights;
use crate::data::{DatasetFormat, LoadOptions};
use crate::model::CucnConfig;
use crate::model::optim::OptimConfig;

/// Where the data is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DataSection {
    /// Dataset format.
    pub format: Option<DatasetFormat>,
    /// Dataset root.
    pub path: Option<PathBuf>,
    /// RAF-DB: alternative label list (e.g. a noisy-label protocol file).
    pub label_file: Option<PathBuf>,
    /// 7 or 8 classes where the format offers both.
    pub classes: Option<usize>,
    /// Skip bad samples instead of stopping.
    pub skip_bad: bool,
    /// AffectNet: face box margin (fraction of the box size).
    pub crop_margin: f32,
}

/// The network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSection {
    /// ResNet depth: 18, 34 or 50.
    pub depth: usize,
    /// CBAM in every residual block.
    pub cbam: bool,
    /// Input side in pixels.
    pub input_size: usize,
    /// PyTorch checkpoint of the backbone (MS-Celeb or torchvision ResNet).
    pub pretrained: Option<PathBuf>,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            depth: 18,
            cbam: true,
            input_size: 112,
            pretrained: None,
        }
    }
}

/// The training loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    /// Number of epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// RUL's uncertainty-weighted mixing (off: the plain baseline).
    pub mix: bool,
    /// Class weights of the loss.
    pub class_weights: ClassWeights,
    /// Seed of everything random.
    pub seed: u64,
    /// Input pipeline worker threads.
    pub workers: usize,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            epochs: 10,
            batch: 64,
            mix: true,
            class_weights: ClassWeights::InverseSqrt,
            seed: 0,
            workers: 2,
        }
    }
}

/// The optimizer (METHOD.md, "Optimization").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimSection {
    /// Learning rate of the backbone and head.
    pub lr: f64,
    /// Learning rate of the classifier.
    pub fc_lr: f64,
    /// L2 weight decay (added to the gradient).
    pub weight_decay: f64,
    /// ExponentialLR gamma, per epoch.
    pub gamma: f64,
}

impl Default for OptimSection {
    fn default() -> Self {
        OptimSection {
            lr: 1e-4,
            fc_lr: 5e-4,
            weight_decay: 1e-4,
            gamma: 0.9,
        }
    }
}

/// A complete training configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Data.
    pub data: DataSection,
    /// Network.
    pub model: ModelSection,
    /// Loop.
    pub train: TrainSection,
    /// Optimizer.
    pub optim: OptimSection,
}

/// Named settings from the literature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// RUL's RAF-DB settings: batch 64, lr 2e-4, classifier 2e-3.
    Rafdb,
    /// The paper's AffectNet settings: batch 256, lr 1e-4 / 5e-4, 60 epochs, gamma 0.9, wd 1e-4.
    Affectnet,
}

impl Preset {
    /// The configuration this preset starts from.
    pub fn config(self) -> TrainConfig {
        let mut c = TrainConfig::default();
        match self {
            Preset::Rafdb => {
                c.data.format = Some(DatasetFormat::Rafdb);
                c.model.input_size = 224;
                c.train.batch = 64;
                c.train.epochs = 60;
                c.optim.lr = 2e-4;
                c.optim.fc_lr = 2e-3;
            }
            Preset::Affectnet => {
                c.data.format = Some(DatasetFormat::Affectnet);
                c.model.input_size = 224;
                c.train.batch = 256;
                c.train.epochs = 60;
                c.optim.lr = 1e-4;
                c.optim.fc_lr = 5e-4;
                c.optim.gamma = 0.9;
                c.optim.weight_decay = 1e-4;
            }
        }
        c
    }

    fn format(self) -> DatasetFormat {
        match self {
            Preset::Rafdb => DatasetFormat::Rafdb,
            Preset::Affectnet => DatasetFormat::Affectnet,
        }
    }
}

/// A configuration problem, with the file or key concerned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax, unknown key or wrong type.
    #[error("{path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// What serde/toml said (names the key and line).
        message: String,
    },
    /// A value out of range or missing.
    #[error("config: {0}")]
    Invalid(String),
}

impl TrainConfig {
    /// Reads a TOML file on top of `base` (defaults or a preset): keys the file sets win.
    pub fn from_toml_file(path: &Path, base: TrainConfig) -> Result<TrainConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parse_err = |e: toml::de::Error| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim().to_string(),
        };
        // Merge: the base as a TOML table, overwritten key by key by the file.
        let mut merged = toml::Value::try_from(&base).expect("a config always serializes");
        let file: toml::Value = toml::from_str(&text).map_err(parse_err)?;
        merge(&mut merged, file);
        merged.try_into().map_err(parse_err)
    }

    /// Checks a preset against the data format actually used.
    pub fn check_preset(&self, preset: Option<Preset>) -> Result<(), ConfigError> {
        if let (Some(p), Some(f)) = (preset, self.data.format)
            && p.format() != f
        {
            return Err(ConfigError::Invalid(format!(
                "preset '{}' is for {} data but the format is {f}",
                p.format(),
                p.format()
            )));
        }
        Ok(())
    }

    /// Checks ranges and required keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.data.format.is_none() {
            return bad("no dataset format: give --format or [data] format".into());
        }
        if self.data.path.is_none() {
            return bad("no dataset path: give --data or [data] path".into());
        }
        if ![18, 34, 50].contains(&self.model.depth) {
            return bad(format!(
                "model.depth {} is not 18, 34 or 50",
                self.model.depth
            ));
        }
        if self.model.input_size < 32 {
            return bad(format!(
                "model.input_size {} is under 32",
                self.model.input_size
            ));
        }
        if self.train.epochs == 0 {
            return bad("train.epochs must be at least 1".into());
        }
        if self.train.batch < 2 {
            return bad(format!(
                "train.batch {} is under 2 (BatchNorm and mixing need pairs)",
                self.train.batch
            ));
        }
        if self.train.workers == 0 {
            return bad("train.workers must be at least 1".into());
        }
        for (k, v) in [
            ("optim.lr", self.optim.lr),
            ("optim.fc_lr", self.optim.fc_lr),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{k} {v} must be a positive number"));
            }
        }
        if !(self.optim.weight_decay.is_finite() && self.optim.weight_decay >= 0.0) {
            return bad(format!(
                "optim.weight_decay {} must be >= 0",
                self.optim.weight_decay
            ));
        }
        if !(self.optim.gamma > 0.0 && self.optim.gamma <= 1.0) {
            return bad(format!(
                "optim.gamma {} must be in (0, 1]",
                self.optim.gamma
            ));
        }
        Ok(())
    }

    /// The dataset loading options.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            label_file: self.data.label_file.clone(),
            classes: self.data.classes,
            skip_bad: self.data.skip_bad,
            crop_margin: self.data.crop_margin,
            ..LoadOptions::default()
        }
    }

    /// The network architecture for `num_classes` classes.
    pub fn network(&self, num_classes: usize) -> CucnConfig {
        CucnConfig::new()
            .with_num_classes(num_classes)
            .with_depth(self.model.depth)
            .with_cbam(self.model.cbam)
            .with_input_size(self.model.input_size)
    }

    /// The optimizer settings.
    pub fn optimizer(&self) -> OptimConfig {
        OptimConfig::new()
            .with_lr(self.optim.lr)
            .with_fc_lr(self.optim.fc_lr)
            .with_weight_decay(self.optim.weight_decay)
            .with_gamma(self.optim.gamma)
    }

    /// The resolved configuration as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a config always serializes")
    }

    /// The keys whose values differ and that a resumed run may not change (everything but the
    /// number of epochs and workers), as `key: old -> new` lines.
    pub fn resume_conflicts(&self, other: &TrainConfig) -> Vec<String> {
        let flat = |c: &TrainConfig| {
            let mut c = c.clone();
            c.train.epochs = 0;
            c.train.workers = 0;
            let mut out = Vec::new();
            flatten(
                "",
                &toml::Value::try_from(&c).expect("serializes"),
                &mut out,
            );
            out
        };
        let (a, b) = (flat(self), flat(other));
        let mut diffs = Vec::new();
        for (k, v) in &a {
            let w = b
                .iter()
                .find(|(k2, _)| k2 == k)
                .map(|(_, w)| w.as_str())
                .unwrap_or("unset");
            if v != w {
                diffs.push(format!("{k}: {v} -> {w}"));
            }
        }
        for (k, w) in &b {
            if !a.iter().any(|(k2, _)| k2 == k) {
                diffs.push(format!("{k}: unset -> {w}"));
            }
        }
        diffs
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

fn merge(base: &mut toml::Value, over: toml::Value) {
    match (base, over) {
        (toml::Value::Table(b), toml::Value::Table(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_table() && v.is_table() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn file_overrides_preset_key_by_key() {
        let (_d, p) = write("[train]\nepochs = 3\n[optim]\nlr = 0.001\n");
        let c = TrainConfig::from_toml_file(&p, Preset::Rafdb.config()).unwrap();
        assert_eq!(c.train.epochs, 3);
        assert_eq!(c.optim.lr, 0.001);
        assert_eq!(c.optim.fc_lr, 2e-3, "untouched preset key stays");
        assert_eq!(c.train.batch, 64);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let (_d, p) = write("[train]\nepoch = 3\n");
        let e = TrainConfig::from_toml_file(&p, TrainConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("run.toml") && e.contains("epoch"), "{e}");
        let (_d, p) = write("[train]\nbatch = \"big\"\n");
        let e = TrainConfig::from_toml_file(&p, TrainConfig::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch"), "{e}");
    }

    #[test]
    fn resume_conflicts_name_the_changed_keys_only() {
        let a = Preset::Rafdb.config();
        let mut b = a.clone();
        b.train.epochs = 99;
        b.train.workers = 1;
        assert!(a.resume_conflicts(&b).is_empty());
        b.optim.lr = 0.5;
        let d = a.resume_conflicts(&b);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("optim.lr: 0.0002 -> 0.5"), "{d:?}");
    }

    #[test]
    fn preset_conflicting_with_format_is_refused() {
        let mut c = Preset::Rafdb.config();
        c.data.format = Some(DatasetFormat::Affectnet);
        assert!(c.check_preset(Some(Preset::Rafdb)).is_err());
        assert!(c.check_preset(None).is_ok());
    }
}
