//! Weights in and out: PyTorch checkpoint import, safetensors export with torchvision-style names,
//! and cucn's own self-describing model file (burnpack with the architecture in its metadata).
//!
//! Names differ from torchvision in one place only: the projection shortcut, `downsample.0/1`
//! in PyTorch, is `downsample.conv/bn` here. Both directions map it with one rule each.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn_store::pytorch_reader::PytorchReader;
use burn_store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, BurnpackStore, ModuleSnapshot,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore, burn_pack,
};

use super::error::ModelError;
use super::network::{Cucn, CucnConfig};

/// Metadata key holding the architecture (JSON of [`CucnConfig`]) in cucn model files.
pub const CONFIG_KEY: &str = "cucn_config";
/// Metadata key and value that mark a file as a cucn model.
const FORMAT_KEY: &str = "cucn_format";
const FORMAT_VALUE: &str = "cucn-model-1";

/// Key rules from PyTorch names to cucn's (regex, replacement).
pub const TORCH_TO_CUCN: [(&str, &str); 2] = [
    (r"\.downsample\.0\.", ".downsample.conv."),
    (r"\.downsample\.1\.", ".downsample.bn."),
];
/// Key rules from cucn names to PyTorch's (regex, replacement).
pub const CUCN_TO_TORCH: [(&str, &str); 2] = [
    (r"\.downsample\.conv\.", ".downsample.0."),
    (r"\.downsample\.bn\.", ".downsample.1."),
];

/// Prefix given to the checkpoint's own classifier keys, which are ignored by design (the CUCN
/// head and classifier are new).
const IGNORED_FC: &str = "checkpoint_fc.";

/// What a PyTorch import did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    /// Number of model tensors loaded from the checkpoint.
    pub loaded: usize,
    /// Model tensors the checkpoint does not have (kept at their fresh initialization).
    pub missing: Vec<String>,
    /// Checkpoint tensors the model has no place for (besides `fc.*`).
    pub unused: Vec<String>,
    /// Checkpoint `fc.*` tensors ignored by design.
    pub ignored_fc: Vec<String>,
}

fn bad(file: &Path, reason: impl ToString) -> ModelError {
    ModelError::BadCheckpoint {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Finds where the state dict sits: at the top level, or under `state_dict` / `model_state_dict`.
fn state_dict_key(path: &Path) -> Result<Option<&'static str>, ModelError> {
    let reader = PytorchReader::new(path).map_err(|e| bad(path, e))?;
    let keys = reader.keys();
    for nested in ["state_dict", "model_state_dict"] {
        let prefix = format!("{nested}.");
        if keys.iter().any(|k| k.starts_with(&prefix)) {
            return Ok(Some(nested));
        }
    }
    Ok(None)
}

/// Loads a PyTorch checkpoint (`.pth`/`.pt`) into `model`: a state dict at the top level or under
/// `state_dict`/`model_state_dict`, with or without a `module.` prefix, in torchvision ResNet
/// names. The checkpoint's `fc.*` is ignored. Nothing in the file is executed: the pickle is
/// interpreted by a restricted reader that refuses unknown opcodes and oversized tensors.
///
/// A shape mismatch is an error naming the key and both shapes; missing and unused keys are
/// reported.
pub fn import_pytorch(model: Cucn, path: &Path) -> Result<(Cucn, ImportReport), ModelError> {
    let top = state_dict_key(path)?;
    let mut store = PytorchStore::from_file(path)
        .with_key_remapping(r"^module\.", "")
        .with_key_remapping(r"^fc\.", IGNORED_FC)
        .allow_partial(true)
        .validate(false);
    for (from, to) in TORCH_TO_CUCN {
        store = store.with_key_remapping(from, to);
    }
    if let Some(key) = top {
        store = store.with_top_level_key(key);
    }
    let mut model = model;
    let result = model.load_from(&mut store).map_err(|e| bad(path, e))?;
    let report = import_report(path, result)?;
    Ok((model, report))
}

/// Loads a safetensors file in PyTorch layout and names (as written by [`export_safetensors`],
/// or by a PyTorch user's `save_file(model.state_dict())`) into `model`, classifier included.
pub fn import_safetensors(model: Cucn, path: &Path) -> Result<(Cucn, ImportReport), ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes))
        .with_from_adapter(PyTorchToBurnAdapter)
        .allow_partial(true)
        .validate(false);
    for (from, to) in TORCH_TO_CUCN {
        store = store.with_key_remapping(from, to);
    }
    let mut model = model;
    let result = model.load_from(&mut store).map_err(|e| bad(path, e))?;
    let report = import_report(path, result)?;
    Ok((model, report))
}

/// Turns Burn's apply result into cucn's report, or the first error.
fn import_report(path: &Path, result: ApplyResult) -> Result<ImportReport, ModelError> {
    if let Some(error) = result.errors.first() {
        return Err(match error {
            ApplyError::ShapeMismatch {
                path: key,
                expected,
                found,
            } => ModelError::ShapeMismatch {
                file: path.to_path_buf(),
                key: key.clone(),
                expected: expected.as_slice().to_vec(),
                found: found.as_slice().to_vec(),
            },
            other => bad(path, other),
        });
    }
    let (ignored_fc, unused): (Vec<String>, Vec<String>) = result
        .unused
        .into_iter()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .partition(|k| k.starts_with(IGNORED_FC));
    let ignored_fc = ignored_fc
        .into_iter()
        .map(|k| format!("fc.{}", &k[IGNORED_FC.len()..]))
        .collect();
    if result.applied.is_empty() {
        return Err(ModelError::NothingMatched {
            file: path.to_path_buf(),
            unused: unused.len(),
            example: unused.first().cloned().unwrap_or_else(|| "none".into()),
        });
    }
    Ok(ImportReport {
        loaded: result.applied.len(),
        missing: result.missing.into_iter().map(|(k, _)| k).collect(),
        unused,
        ignored_fc,
    })
}

/// Writes the whole model to safetensors with torchvision-style names (Linear weights as
/// `[out, in]`, `downsample.0/1`), the architecture JSON in the metadata under `cucn_config`.
pub fn export_safetensors(
    model: &Cucn,
    config: &CucnConfig,
    path: &Path,
) -> Result<(), ModelError> {
    let mut store = SafetensorsStore::from_bytes(None)
        .with_to_adapter(BurnToPyTorchAdapter)
        .metadata(CONFIG_KEY, config_json(config));
    for (from, to) in CUCN_TO_TORCH {
        store = store.with_key_remapping(from, to);
    }
    model.save_into(&mut store).map_err(|e| bad(path, e))?;
    let bytes = store.get_bytes().map_err(|e| bad(path, e))?;
    crate::util::write_atomic(path, &bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn config_json(config: &CucnConfig) -> String {
    serde_json::to_string(config).expect("a config always serializes")
}

/// Saves a self-describing cucn model file (burnpack; architecture in the metadata), atomically.
pub fn save_model(model: &Cucn, config: &CucnConfig, path: &Path) -> Result<(), ModelError> {
    let mut store = BurnpackStore::from_bytes(None)
        .metadata(FORMAT_KEY, FORMAT_VALUE)
        .metadata(CONFIG_KEY, config_json(config));
    model.save_into(&mut store).map_err(|e| bad(path, e))?;
    let bytes = store.get_bytes().map_err(|e| bad(path, e))?;
    crate::util::write_atomic(path, &bytes).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the architecture stored in a cucn model file.
pub fn read_model_config(path: &Path) -> Result<CucnConfig, ModelError> {
    let not_model = |reason: String| ModelError::NotAModel {
        path: PathBuf::from(path),
        reason,
    };
    let reader = burn_pack::Reader::from_file(path).map_err(|e| not_model(e.to_string()))?;
    let meta = reader.metadata();
    if meta.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT_VALUE) {
        return Err(not_model("no cucn model marker in its metadata".into()));
    }
    let json = meta
        .get(CONFIG_KEY)
        .ok_or_else(|| not_model("no architecture in its metadata".into()))?;
    serde_json::from_str(json).map_err(|e| not_model(format!("bad architecture: {e}")))
}

/// Loads a cucn model file written by [`save_model`].
pub fn load_model(path: &Path, device: &Device) -> Result<(Cucn, CucnConfig), ModelError> {
    let config = read_model_config(path)?;
    let mut model = config.init(device)?;
    let mut store = BurnpackStore::from_file(path);
    model
        .load_from(&mut store)
        .map_err(|e| ModelError::NotAModel {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok((model, config))
}
