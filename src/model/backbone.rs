//! ResNet residual blocks in torchvision's layout (BasicBlock for ResNet-18/34, Bottleneck with
//! the stride on the 3x3 convolution for ResNet-50), with optional CBAM on the residual branch
//! after its last BatchNorm and before the shortcut is added (METHOD.md, "Backbone").

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::cbam::{Cbam, CbamConfig};
use super::conv::conv2d_bn;
use super::cpu_residual::add_relu;
use super::norm::{TorchBatchNorm, TorchBatchNormConfig};

/// The block type and per-stage block counts of a ResNet depth.
pub fn stage_layout(depth: usize) -> Option<(BlockKind, [usize; 4])> {
    match depth {
        18 => Some((BlockKind::Basic, [2, 2, 2, 2])),
        34 => Some((BlockKind::Basic, [3, 4, 6, 3])),
        50 => Some((BlockKind::Bottleneck, [3, 4, 6, 3])),
        _ => None,
    }
}

/// Residual block type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convolutions (expansion 1).
    Basic,
    /// 1x1, 3x3, 1x1 convolutions (expansion 4).
    Bottleneck,
}

impl BlockKind {
    /// Output channels per unit of stage width.
    pub fn expansion(self) -> usize {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

/// torchvision's weight initialization: Kaiming normal, fan-out, ReLU gain.
fn kaiming_fan_out() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: true,
    }
}

/// A bias-free convolution with torchvision's initialization.
pub fn conv(cin: usize, cout: usize, kernel: usize, stride: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(kaiming_fan_out())
        .init(device)
}

/// A BatchNorm with PyTorch defaults.
pub fn bn(channels: usize, device: &Device) -> TorchBatchNorm {
    TorchBatchNormConfig::new(channels).init(device)
}

/// The projection shortcut (torchvision `downsample.0` / `downsample.1`, renamed `conv` / `bn`
/// here and mapped on import and export).
#[derive(Module, Debug)]
pub struct Downsample {
    /// 1x1 strided convolution.
    pub conv: Conv2d,
    /// BatchNorm after it.
    pub bn: TorchBatchNorm,
}

/// One residual block. A Bottleneck has `conv3`/`bn3`; a BasicBlock has not.
#[derive(Module, Debug)]
pub struct Block {
    /// First convolution (3x3 strided in a BasicBlock, 1x1 in a Bottleneck).
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`.
    pub bn1: TorchBatchNorm,
    /// Second convolution (3x3; strided in a Bottleneck).
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`.
    pub bn2: TorchBatchNorm,
    /// Third convolution (1x1 expansion), Bottleneck only.
    pub conv3: Option<Conv2d>,
    /// BatchNorm after `conv3`, Bottleneck only.
    pub bn3: Option<TorchBatchNorm>,
    /// Attention on the residual branch, when enabled.
    pub cbam: Option<Cbam>,
    /// Projection shortcut when the shape changes.
    pub downsample: Option<Downsample>,
}

/// Shape parameters of one block.
#[derive(Clone, Copy, Debug)]
pub struct BlockSpec {
    /// Basic or Bottleneck.
    pub kind: BlockKind,
    /// Input channels.
    pub in_channels: usize,
    /// Stage width (output channels are `width * expansion`).
    pub width: usize,
    /// Stride of the block (1 or 2).
    pub stride: usize,
    /// Whether CBAM is inserted.
    pub cbam: bool,
    /// CBAM's channel reduction.
    pub reduction: usize,
}

impl BlockSpec {
    /// Builds the block.
    pub fn init(&self, device: &Device) -> Block {
        let out = self.width * self.kind.expansion();
        let (conv1, conv2, conv3, bn3) = match self.kind {
            BlockKind::Basic => (
                conv(self.in_channels, self.width, 3, self.stride, device),
                conv(self.width, self.width, 3, 1, device),
                None,
                None,
            ),
            BlockKind::Bottleneck => (
                conv(self.in_channels, self.width, 1, 1, device),
                conv(self.width, self.width, 3, self.stride, device),
                Some(conv(self.width, out, 1, 1, device)),
                Some(bn(out, device)),
            ),
        };
        let downsample = (self.stride != 1 || self.in_channels != out).then(|| Downsample {
            conv: conv(self.in_channels, out, 1, self.stride, device),
            bn: bn(out, device),
        });
        Block {
            conv1,
            bn1: bn(self.width, device),
            conv2,
            bn2: bn(self.width, device),
            conv3,
            bn3,
            cbam: self.cbam.then(|| {
                CbamConfig::new(out)
                    .with_reduction(self.reduction)
                    .init(device)
            }),
            downsample,
        }
    }
}

impl Block {
    /// Residual block forward.
    ///
    /// # Shapes
    /// - `x`: `[B, C_in, H, W]`
    /// - output: `[B, width * expansion, H / stride, W / stride]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(d) => conv2d_bn(&d.conv, &d.bn, x.clone(), false),
            None => x.clone(),
        };
        let y = conv2d_bn(&self.conv1, &self.bn1, x, true);
        let mut y = match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let y = conv2d_bn(&self.conv2, &self.bn2, y, true);
                conv2d_bn(conv3, bn3, y, false)
            }
            _ => conv2d_bn(&self.conv2, &self.bn2, y, false),
        };
        if let Some(cbam) = &self.cbam {
            y = cbam.forward(y);
        }
        add_relu(y, identity)
    }
}

/// Builds one stage (`layerN`): the first block carries the stride and the projection.
pub fn stage(first: BlockSpec, blocks: usize, device: &Device) -> Vec<Block> {
    let out = first.width * first.kind.expansion();
    (0..blocks)
        .map(|i| {
            let spec = if i == 0 {
                first
            } else {
                BlockSpec {
                    in_channels: out,
                    stride: 1,
                    ..first
                }
            };
            spec.init(device)
        })
        .collect()
}
