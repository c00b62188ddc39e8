//! Running a network over a list of samples in batches (evaluation, audit, training's held-out
//! pass): images are decoded and normalized by the data pipeline, classified in eval mode.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::data::{BatchLoader, DataError, LoaderConfig, Sample};
use crate::model::Cucn;

/// Network outputs for every sample, in the samples' order.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    /// True labels.
    pub labels: Vec<usize>,
    /// Number of classes K.
    pub num_classes: usize,
    /// Softmax probabilities, row-major `n x K`.
    pub probabilities: Vec<f32>,
    /// Learned uncertainty `u` per sample.
    pub uncertainty: Vec<f32>,
}

impl Outputs {
    /// Index of the most probable class of each sample.
    pub fn predictions(&self) -> Vec<usize> {
        self.probabilities
            .chunks(self.num_classes.max(1))
            .map(argmax)
            .collect()
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv { (i, v) } else { (bi, bv) }
        })
        .0
}

/// Turns a pipeline batch into the network's input tensor.
pub fn batch_tensor(images: Vec<f32>, batch: usize, size: usize, device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(images, [batch, 3, size, size]), device)
}

/// Classifies `samples` with an eval-mode model (`model.valid()`), calling `progress(done)` after
/// every batch.
pub fn run(
    model: &Cucn,
    samples: Arc<[Sample]>,
    size: usize,
    batch: usize,
    workers: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize),
) -> Result<Outputs, DataError> {
    let order: Vec<usize> = (0..samples.len()).collect();
    let loader = BatchLoader::new(
        samples,
        order,
        LoaderConfig::new(batch, size as u32, workers),
    );
    let mut out = Outputs::default();
    for b in loader {
        let b = b?;
        let n = b.labels.len();
        let pred = model.predict(batch_tensor(b.images, n, size, device));
        out.num_classes = pred.probabilities.dims()[1];
        out.probabilities.extend(
            pred.probabilities
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32"),
        );
        out.uncertainty.extend(
            pred.uncertainty
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("f32"),
        );
        out.labels.extend(b.labels);
        progress(out.labels.len());
    }
    Ok(out)
}
