//! One training step's forward and backward pass, on one device or split over several.
//!
//! Several devices follow Burn's multi-device pattern (as `burn-train`'s `MultiDevicesTrainStep`
//! with the optimizer on the main device): the model is forked to each device, every device takes
//! a contiguous share of the batch, and the gradients are moved to the main device
//! (`GradientsParams::to_device`) and summed by `GradientsAccumulator`. Each share's loss is
//! weighted by its share of the batch, so the sum is the batch mean. As in PyTorch's
//! `DistributedDataParallel`, BatchNorm and the mixing permutation work within a device's share.
//!
//! The devices are driven from one thread in a fixed order: GPU backends queue their kernels
//! asynchronously, so the devices still compute at the same time, and BatchNorm's shared running
//! statistics are updated in the same order on every run (threads would make them depend on
//! timing).

use burn::module::Module;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::infer::{argmax, batch_tensor};
use crate::model::Cucn;
use crate::util::derive_seed;

/// Purposes of the step's derived seeds (the trainer's own purposes are 0 and 1).
const SEED_DROPOUT: u64 = 2;
const SEED_PERM: u64 = 3;

/// A device that takes part in training, with the class weights already on it.
pub struct StepDevice {
    /// The autodiff device.
    pub device: Device,
    /// Class weights `[K]` on `device`.
    pub class_weights: Tensor<1>,
}

impl StepDevice {
    /// Prepares `device` (a plain device; its autodiff form is taken here).
    pub fn new(device: &Device, class_weights: &[f64]) -> Self {
        let device = device.clone().autodiff();
        let weights: Vec<f32> = class_weights.iter().map(|&w| w as f32).collect();
        let n = weights.len();
        let class_weights = Tensor::from_data(TensorData::new(weights, [n]), &device);
        Self {
            device,
            class_weights,
        }
    }
}

/// Where a step's random numbers come from: seeds derived from (seed, epoch, batch, purpose)
/// and, with several devices, the device's position.
pub struct StepSeeds {
    /// The run's seed.
    pub seed: u64,
    /// 0-based epoch.
    pub epoch: u64,
    /// 0-based batch within the epoch.
    pub batch: u64,
}

impl StepSeeds {
    fn derive(&self, purpose: u64, device: usize, devices: usize) -> u64 {
        let mut path = vec![self.epoch, self.batch, purpose];
        // One device keeps the path it always had, so its runs do not change.
        if devices > 1 {
            path.push(device as u64);
        }
        derive_seed(self.seed, &path)
    }
}

/// What a step computed: the batch's mean loss, its correct predictions, and the gradients on
/// the main device.
pub struct StepResult {
    /// Mean loss over the batch.
    pub loss: f64,
    /// Training predictions that match the label.
    pub correct: usize,
    /// Gradients of the main device's model.
    pub grads: GradientsParams,
}

/// Runs the forward and backward pass of one batch (`images` `[B, 3, S, S]` flattened, `labels`
/// `[B]`) over `devices` (the first one holds `model`). `mix` turns the RUL mixing on.
pub fn forward_backward(
    model: &Cucn,
    devices: &[StepDevice],
    images: Vec<f32>,
    labels: &[usize],
    size: usize,
    mix: bool,
    seeds: &StepSeeds,
) -> StepResult {
    let n = labels.len();
    let per_image = 3 * size * size;
    let shards = shard_bounds(n, devices.len());
    let mut pending = Vec::with_capacity(devices.len());
    // Queue every device's work before reading anything back.
    for (d, (dev, &(start, end))) in devices.iter().zip(&shards).enumerate() {
        let m = end - start;
        dev.device
            .seed(seeds.derive(SEED_DROPOUT, d, devices.len()));
        let replica = if d == 0 {
            model.clone()
        } else {
            model.clone().fork(&dev.device)
        };
        let perm = mix.then(|| {
            let mut p: Vec<i64> = (0..m as i64).collect();
            p.shuffle(&mut ChaCha8Rng::seed_from_u64(seeds.derive(
                SEED_PERM,
                d,
                devices.len(),
            )));
            Tensor::<1, Int>::from_data(TensorData::new(p, [m]), &dev.device)
        });
        let shard_labels: Vec<i64> = labels[start..end].iter().map(|&l| l as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(shard_labels, [m]), &dev.device);
        let shard_images = images[start * per_image..end * per_image].to_vec();
        let out = replica.forward_train(
            batch_tensor(shard_images, m, size, &dev.device),
            targets,
            perm,
            dev.class_weights.clone(),
        );
        // With one device the factor is exactly 1: the same numbers as an unsplit step.
        let weighted = out.loss.clone().mul_scalar(m as f64 / n as f64);
        let grads = GradientsParams::from_grads(weighted.backward(), &replica);
        pending.push((out.loss, out.logits, grads, m));
    }

    let main = &devices[0].device;
    let mut loss = 0.0;
    let mut correct = 0;
    // With one device the accumulator only takes the gradients over (nothing to add).
    let mut accumulator = GradientsAccumulator::<Cucn>::new();
    for ((shard_loss, logits, grads, m), &(start, _)) in pending.into_iter().zip(&shards) {
        let value = f64::from(shard_loss.into_scalar::<f32>());
        loss += value * m as f64 / n as f64;
        let k = logits.dims()[1];
        let values = logits
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 logits");
        correct += values
            .chunks(k)
            .zip(&labels[start..])
            .filter(|(row, l)| argmax(row) == **l)
            .count();
        accumulator.accumulate(model, grads.to_device(main, model));
    }
    StepResult {
        loss,
        correct,
        grads: accumulator.grads(),
    }
}

/// Splits `n` samples into `parts` contiguous ranges whose sizes differ by at most one.
pub fn shard_bounds(n: usize, parts: usize) -> Vec<(usize, usize)> {
    let base = n / parts;
    let extra = n % parts;
    let mut start = 0;
    (0..parts)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = (start, start + len);
            start += len;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::shard_bounds;

    #[test]
    fn shards_cover_the_batch_in_order_and_differ_by_at_most_one() {
        assert_eq!(shard_bounds(10, 1), vec![(0, 10)]);
        assert_eq!(shard_bounds(10, 3), vec![(0, 4), (4, 7), (7, 10)]);
        assert_eq!(shard_bounds(8, 2), vec![(0, 4), (4, 8)]);
    }
}
