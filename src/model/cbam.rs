//! CBAM (Woo et al., ECCV 2018): channel then spatial attention on a residual branch.
//!
//! Parameter names (for the safetensors export and the PyTorch fixture script):
//! `cbam.channel.fc1`, `cbam.channel.fc2` (the shared MLP), `cbam.spatial.conv` (7x7, 2 -> 1,
//! no bias) and `cbam.spatial.bn` (1-channel BatchNorm, as in the CBAM authors' code).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};

use super::conv::conv2d_bn;
use super::cpu_cbam;
use super::norm::{TorchBatchNorm, TorchBatchNormConfig};

/// Configuration of [`Cbam`].
#[derive(Config, Debug)]
pub struct CbamConfig {
    /// Channels of the feature map.
    pub channels: usize,
    /// Reduction of the channel MLP's hidden layer (`C -> C / reduction -> C`, at least 1 unit).
    #[config(default = 16)]
    pub reduction: usize,
    /// Momentum of the spatial BatchNorm (0.01 in the CBAM authors' reference code).
    #[config(default = 0.01)]
    pub bn_momentum: f64,
}

impl CbamConfig {
    /// Builds the attention module.
    pub fn init(&self, device: &Device) -> Cbam {
        let hidden = (self.channels / self.reduction).max(1);
        Cbam {
            channel: ChannelGate {
                fc1: LinearConfig::new(self.channels, hidden).init(device),
                fc2: LinearConfig::new(hidden, self.channels).init(device),
            },
            spatial: SpatialGate {
                conv: Conv2dConfig::new([2, 1], [7, 7])
                    .with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3))
                    .with_bias(false)
                    .init(device),
                bn: TorchBatchNormConfig::new(1)
                    .with_momentum(self.bn_momentum)
                    .init(device),
            },
        }
    }
}

/// Channel attention: `Mc = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))`.
#[derive(Module, Debug)]
pub struct ChannelGate {
    /// First Linear of the shared MLP (`C -> C/r`).
    pub fc1: Linear,
    /// Second Linear of the shared MLP (`C/r -> C`).
    pub fc2: Linear,
}

impl ChannelGate {
    /// The attention weights from the pooled map: `sigmoid(MLP(avg) + MLP(max))`.
    ///
    /// # Shapes
    /// - `pooled`: `[2, B, C]` (the planes' means, then their maxima); output `[B, C]`
    pub fn gate(&self, pooled: Tensor<3>) -> Tensor<2> {
        let [two, b, c] = pooled.dims();
        let mlp = self
            .fc2
            .forward(relu(self.fc1.forward(pooled.reshape([two * b, c]))));
        sigmoid(mlp.reshape([two, b, c]).sum_dim(0).reshape([b, c]))
    }

    /// Scales each channel by its attention weight (Burn's operations; [`Cbam::forward`] uses
    /// cucn's CPU passes where they apply).
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`; output: same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let flat = x.clone().reshape([b, c, h * w]);
        let avg = flat.clone().mean_dim(2).reshape([b, c]);
        let max = flat.max_dim(2).reshape([b, c]);
        x * self
            .gate(Tensor::stack(vec![avg, max], 0))
            .reshape([b, c, 1, 1])
    }
}

/// Spatial attention: `Ms = sigmoid(BN(conv7x7([max_c(x); mean_c(x)])))`.
#[derive(Module, Debug)]
pub struct SpatialGate {
    /// 7x7 convolution from the 2 pooled maps to 1, padding 3, no bias.
    pub conv: Conv2d,
    /// 1-channel BatchNorm after the convolution.
    pub bn: TorchBatchNorm,
}

impl SpatialGate {
    /// The attention weights from the pooled map: `sigmoid(BN(conv7x7(pooled)))`.
    ///
    /// # Shapes
    /// - `pooled`: `[B, 2, H, W]` (the maxima over channels, then the means); output
    ///   `[B, 1, H, W]`
    pub fn gate(&self, pooled: Tensor<4>) -> Tensor<4> {
        sigmoid(conv2d_bn(&self.conv, &self.bn, pooled, false))
    }

    /// Scales each position by its attention weight (Burn's operations; [`Cbam::forward`] uses
    /// cucn's CPU passes where they apply).
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`; output: same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pooled = Tensor::cat(vec![x.clone().max_dim(1), x.clone().mean_dim(1)], 1);
        x * self.gate(pooled)
    }
}

/// Convolutional Block Attention Module.
#[derive(Module, Debug)]
pub struct Cbam {
    /// Channel attention, applied first.
    pub channel: ChannelGate,
    /// Spatial attention, applied second.
    pub spatial: SpatialGate,
}

impl Cbam {
    /// Applies channel then spatial attention.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`; output: same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if !cpu_cbam::applies(&x) {
            return self.spatial.forward(self.channel.forward(x));
        }
        let channel = self.channel.gate(cpu_cbam::plane_mean_max(x.clone()));
        let spatial = self
            .spatial
            .gate(cpu_cbam::channel_max_mean(x.clone(), channel.clone()));
        cpu_cbam::apply_gates(x, channel, spatial)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::CbamConfig;
    use crate::model::max_abs_diff;

    /// f32 sums over up to a few thousand terms, taken in different orders by the two paths.
    const TOLERANCE: f32 = 1e-4;

    #[test]
    fn cpu_passes_equal_burns_operations_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(11);
        // A map with more channels than the reduction and pixels not a multiple of the lanes.
        for shape in [[3, 32, 9, 7], [2, 16, 4, 4]] {
            let cbam = CbamConfig::new(shape[1]).init(&device);
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
            let upstream = Tensor::<4>::random(shape, Distribution::Default, &device);
            let ours = cbam.forward(x.clone());
            let burn = cbam.spatial.forward(cbam.channel.forward(x.clone()));
            assert!(
                max_abs_diff(ours.clone(), burn.clone()) < TOLERANCE,
                "{shape:?}"
            );
            let g1 = (ours * upstream.clone()).sum().backward();
            let g2 = (burn * upstream).sum().backward();
            let grad = |t: &Tensor<4>| {
                let (a, b) = (t.grad(&g1).expect("grad"), t.grad(&g2).expect("grad"));
                max_abs_diff(a, b)
            };
            assert!(grad(&x) < TOLERANCE, "{shape:?} dx {}", grad(&x));
            let conv = &cbam.spatial.conv.weight.val();
            assert!(grad(conv) < TOLERANCE, "{shape:?} dconv {}", grad(conv));
            for (name, w) in [
                ("fc1", cbam.channel.fc1.weight.val()),
                ("fc2", cbam.channel.fc2.weight.val()),
            ] {
                let (a, b) = (w.grad(&g1).expect("grad"), w.grad(&g2).expect("grad"));
                let d = max_abs_diff(a, b);
                assert!(d < TOLERANCE, "{shape:?} d{name} {d}");
            }
        }
    }
}
