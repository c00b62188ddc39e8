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

use super::conv::conv2d;
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
    fn mlp(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }

    /// Scales each channel by its attention weight.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`; output: same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let flat = x.clone().reshape([b, c, h * w]);
        let avg = flat.clone().mean_dim(2).reshape([b, c]);
        let max = flat.max_dim(2).reshape([b, c]);
        let gate = sigmoid(self.mlp(avg) + self.mlp(max)).reshape([b, c, 1, 1]);
        x * gate
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
    /// Scales each position by its attention weight.
    ///
    /// # Shapes
    /// - `x`: `[B, C, H, W]`; output: same.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pooled = Tensor::cat(vec![x.clone().max_dim(1), x.clone().mean_dim(1)], 1);
        let gate = sigmoid(self.bn.forward(conv2d(&self.conv, pooled)));
        x * gate
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
        self.spatial.forward(self.channel.forward(x))
    }
}
