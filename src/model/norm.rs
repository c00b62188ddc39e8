//! BatchNorm with PyTorch's exact semantics and torchvision's parameter names.
//!
//! Burn's own `BatchNorm` always has affine parameters (the RUL head needs one without) and feeds
//! its running variance with the *biased* batch variance, while PyTorch uses the unbiased one.
//! This module closes both differences so that running statistics match PyTorch after training.

use burn::config::Config;
use burn::module::{Module, Param, RunningState};
use burn::tensor::{Device, Tensor};

use super::cpu_batch_norm::{batch_norm_train, channel_affine_eval};

/// Configuration of [`TorchBatchNorm`].
#[derive(Config, Debug)]
pub struct TorchBatchNormConfig {
    /// Number of channels (dimension 1 of the input).
    pub num_features: usize,
    /// Added to the variance for numerical stability.
    #[config(default = 1e-5)]
    pub eps: f64,
    /// Weight of the new batch statistics in the running average (PyTorch convention).
    #[config(default = 0.1)]
    pub momentum: f64,
    /// Whether the layer has a learnable scale (`weight`) and shift (`bias`).
    #[config(default = true)]
    pub affine: bool,
}

impl TorchBatchNormConfig {
    /// Builds the layer with `weight = 1`, `bias = 0`, running mean 0 and running variance 1.
    pub fn init(&self, device: &Device) -> TorchBatchNorm {
        let n = self.num_features;
        let affine = |value: f32| {
            self.affine
                .then(|| Param::from_tensor(Tensor::full([n], value, device)))
        };
        TorchBatchNorm {
            weight: affine(1.0),
            bias: affine(0.0),
            running_mean: RunningState::new(Tensor::zeros([n], device)),
            running_var: RunningState::new(Tensor::ones([n], device)),
            eps: self.eps,
            momentum: self.momentum,
        }
    }
}

/// Batch normalization over dimension 1, as PyTorch's `BatchNorm1d/2d`.
///
/// Training statistics are used when the input lives on an autodiff device (a training step),
/// running statistics otherwise (`model.valid()`).
#[derive(Module, Debug)]
pub struct TorchBatchNorm {
    /// Scale (PyTorch `weight`), absent when `affine` is false.
    pub weight: Option<Param<Tensor<1>>>,
    /// Shift (PyTorch `bias`), absent when `affine` is false.
    pub bias: Option<Param<Tensor<1>>>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    eps: f64,
    momentum: f64,
}

impl TorchBatchNorm {
    /// Normalizes `input`.
    ///
    /// # Shapes
    /// - `input`: `[batch, channels, ...]`
    /// - output: same as `input`
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalize(input, false)
    }

    /// `relu(self.forward(input))` in one pass over the activations on the CPU.
    ///
    /// # Shapes
    /// - `input`: `[batch, channels, ...]`
    /// - output: same as `input`
    pub fn forward_relu<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        self.normalize(input, true)
    }

    /// `gamma` and `beta`, ones and zeros without affine parameters.
    fn gamma_beta(&self, device: &Device) -> [Tensor<1>; 2] {
        let channels = self.running_mean.value().dims()[0];
        let gamma = match &self.weight {
            Some(w) => w.val(),
            None => Tensor::ones([channels], device),
        };
        let beta = match &self.bias {
            Some(b) => b.val(),
            None => Tensor::zeros([channels], device),
        };
        [gamma, beta]
    }

    /// At inference (a device without autodiff), the layer as one scale and one shift per
    /// channel, PyTorch's CPU form: `[gamma / sqrt(var + eps), beta - mean * scale]`. `None` in
    /// training, where the batch's statistics are used.
    pub fn inference_affine(&self, device: &Device) -> Option<[Tensor<1>; 2]> {
        if device.is_autodiff() {
            return None;
        }
        let [gamma, beta] = self.gamma_beta(device);
        let mean = self.running_mean.value().to_device(device);
        let var = self.running_var.value().to_device(device);
        let scale = gamma / var.add_scalar(self.eps).sqrt();
        let shift = beta - mean * scale.clone();
        Some([scale, shift])
    }

    fn normalize<const D: usize>(&self, input: Tensor<D>, relu: bool) -> Tensor<D> {
        let device = input.device();
        if let Some([scale, shift]) = self.inference_affine(&device) {
            // One pass over the activations instead of the four of
            // `(x - mean) / std * gamma + beta`.
            return channel_affine_eval(input, scale, shift, relu);
        }
        let channels = self.running_mean.value().dims()[0];
        let [gamma, beta] = self.gamma_beta(&device);
        let count = input.shape().num_elements() / channels;
        let (output, batch_mean, batch_var) = batch_norm_train(input, gamma, beta, self.eps, relu);
        // PyTorch updates the running variance with the unbiased estimate n / (n - 1).
        let unbiased = if count > 1 {
            count as f64 / (count as f64 - 1.0)
        } else {
            1.0
        };
        let m = self.momentum;
        let mean = self.running_mean.value_sync().to_device(&device);
        let var = self.running_var.value_sync().to_device(&device);
        let mean = mean.mul_scalar(1.0 - m) + batch_mean.detach().mul_scalar(m);
        let var = var.mul_scalar(1.0 - m) + batch_var.detach().mul_scalar(m * unbiased);
        self.running_mean.update(mean.detach());
        self.running_var.update(var.detach());
        // Fold the update in now: Burn's `RunningState` otherwise lags one update behind in
        // `visit` (what saving and exporting read).
        self.running_mean.value_sync();
        self.running_var.value_sync();
        output
    }
}
