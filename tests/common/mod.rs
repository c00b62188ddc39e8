//! Shared helpers of the reference tests: fixture reading and tolerance checks.
#![allow(dead_code)] // each test binary uses a subset

use std::collections::HashMap;
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cucn::model::Cucn;
use cucn::model::weights::CUCN_TO_TORCH;

/// Path of a fixture written by `scripts/gen_fixtures.py`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/model")
        .join(name)
}

/// A tensor of a fixture file: shape and values (integers converted to f64 exactly).
#[derive(Clone, Debug)]
pub struct Named {
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Reads every tensor of a safetensors file (f32 or i64).
pub fn read_safetensors(name: &str) -> HashMap<String, Named> {
    let bytes = std::fs::read(fixture(name)).expect("fixture exists (scripts/gen_fixtures.py)");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    st.tensors()
        .into_iter()
        .map(|(key, view)| {
            let data = view.data();
            let values: Vec<f64> = match view.dtype() {
                safetensors::Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                safetensors::Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
                    .collect(),
                other => panic!("unexpected dtype {other:?} for {key}"),
            };
            (
                key,
                Named {
                    shape: view.shape().to_vec(),
                    values,
                },
            )
        })
        .collect()
}

impl Named {
    pub fn tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        let values: Vec<f32> = self.values.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(values, self.shape.clone()), device)
    }

    pub fn int_tensor(&self, device: &Device) -> Tensor<1, Int> {
        let values: Vec<i64> = self.values.iter().map(|&v| v as i64).collect();
        Tensor::from_data(TensorData::new(values, self.shape.clone()), device)
    }
}

/// Reads a float tensor's values.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("float tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// The PyTorch name of a cucn parameter path.
pub fn torch_name(cucn_path: &str) -> String {
    let mut name = cucn_path.to_string();
    for (from, to) in CUCN_TO_TORCH {
        let from = from.replace('\\', "");
        name = name.replace(&from, to);
    }
    name
}

/// One model tensor in PyTorch naming and layout, with its Burn parameter id.
pub struct ModelTensor {
    pub torch_name: String,
    pub param_id: Option<u64>,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

/// Every tensor of the model (parameters and BatchNorm buffers), PyTorch names and layout.
pub fn model_tensors(model: &Cucn) -> Vec<ModelTensor> {
    use burn_store::ModuleSnapshot;
    model
        .collect(
            None,
            Some(Box::new(burn_store::BurnToPyTorchAdapter)),
            false,
        )
        .into_iter()
        .map(|t| {
            let data = burn_store::bridge::to_data(&t).expect("tensor data");
            ModelTensor {
                torch_name: torch_name(&t.name),
                param_id: t.param_id,
                shape: t.shape.as_slice().to_vec(),
                values: data
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(f64::from)
                    .collect(),
            }
        })
        .collect()
}

/// Largest error of `got` against `want`, relative to `max(max|want|, floor)`.
pub fn relative_error(got: &[f64], want: &[f64], floor: f64) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let scale = want.iter().fold(floor, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((g - w).abs()));
    err / scale
}

/// Asserts closeness and returns the relative error (for the record printed by the tests).
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64, floor: f64) -> f64 {
    let err = relative_error(got, want, floor);
    assert!(
        err <= tol,
        "{what}: relative error {err:.3e} above {tol:.0e}\n got {:?}\nwant {:?}",
        &got[..got.len().min(8)],
        &want[..want.len().min(8)]
    );
    err
}
