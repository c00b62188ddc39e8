//! The CUCN network: ResNet (+CBAM) backbone in torchvision names, RUL head and classifier.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Int, Tensor};

use super::backbone::{Block, BlockSpec, bn, conv, stage, stage_layout};
use super::conv::conv2d_bn;
use super::cpu_max_pool::max_pool2d;
use super::error::ModelError;
use super::head::{RulBranch, RulBranchConfig};
use super::loss::{add_up_loss, mix_features, weighted_cross_entropy};
use super::norm::TorchBatchNorm;

/// Architecture of a CUCN network. Serialized beside every checkpoint.
#[derive(Config, Debug, PartialEq)]
pub struct CucnConfig {
    /// Number of classes K (7, or 8 with contempt).
    #[config(default = 7)]
    pub num_classes: usize,
    /// ResNet depth: 18, 34 or 50.
    #[config(default = 18)]
    pub depth: usize,
    /// CBAM in every residual block.
    #[config(default = true)]
    pub cbam: bool,
    /// Input side S in pixels (the head's Linear in-features follow it).
    #[config(default = 112)]
    pub input_size: usize,
    /// Stage widths (torchvision: 64, 128, 256, 512); the stem has `widths[0]` channels.
    #[config(default = "[64, 128, 256, 512]")]
    pub widths: [usize; 4],
    /// CBAM channel reduction.
    #[config(default = 16)]
    pub cbam_reduction: usize,
    /// Embedding size of the RUL head.
    #[config(default = 64)]
    pub embed_dim: usize,
    /// Dropout of the RUL head.
    #[config(default = 0.4)]
    pub dropout: f64,
}

/// Output side of a convolution or pooling: `floor((n + 2p - k) / s) + 1`.
fn conv_out(n: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (n + 2 * pad - kernel) / stride + 1
}

impl CucnConfig {
    /// Side of the last feature map for this input size (7 at 224 px, 4 at 112 px).
    pub fn feature_side(&self) -> usize {
        let mut n = conv_out(self.input_size, 7, 2, 3); // stem conv
        n = conv_out(n, 3, 2, 1); // max pool
        for _ in 0..3 {
            n = conv_out(n, 3, 2, 1); // layer2..4 first blocks
        }
        n
    }

    /// Channels of the last feature map (512 for ResNet-18/34, 2048 for ResNet-50).
    pub fn feature_channels(&self) -> Result<usize, ModelError> {
        let (kind, _) = self.layout()?;
        Ok(self.widths[3] * kind.expansion())
    }

    fn layout(&self) -> Result<(super::backbone::BlockKind, [usize; 4]), ModelError> {
        stage_layout(self.depth).ok_or(ModelError::UnsupportedDepth(self.depth))
    }

    /// Checks the configuration and builds the network with fresh weights.
    pub fn init(&self, device: &Device) -> Result<Cucn, ModelError> {
        if self.input_size < 32 {
            return Err(ModelError::InputTooSmall(self.input_size));
        }
        if !(2..=1000).contains(&self.num_classes) {
            return Err(ModelError::BadClassCount(self.num_classes));
        }
        let (kind, blocks) = self.layout()?;
        let stem = self.widths[0];
        let mut in_channels = stem;
        let mut layers = Vec::with_capacity(4);
        for (i, (&width, &count)) in self.widths.iter().zip(blocks.iter()).enumerate() {
            let spec = BlockSpec {
                kind,
                in_channels,
                width,
                stride: if i == 0 { 1 } else { 2 },
                cbam: self.cbam,
                reduction: self.cbam_reduction,
            };
            layers.push(stage(spec, count, device));
            in_channels = width * kind.expansion();
        }
        let [layer1, layer2, layer3, layer4]: [Vec<Block>; 4] =
            layers.try_into().expect("four stages were built");
        let branch = RulBranchConfig::new(in_channels, self.feature_side())
            .with_embed_dim(self.embed_dim)
            .with_dropout(self.dropout);
        Ok(Cucn {
            conv1: conv(3, stem, 7, 2, device),
            bn1: bn(stem, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
            mu: branch.init(device),
            logvar: branch.init(device),
            fc: LinearConfig::new(self.embed_dim, self.num_classes).init(device),
        })
    }
}

/// CUCN: ResNet (+CBAM) backbone, RUL head (`mu`, `logvar`) and classifier `fc`.
#[derive(Module, Debug)]
pub struct Cucn {
    /// Stem convolution 7x7/2.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: TorchBatchNorm,
    /// Stem max pooling 3x3/2.
    pub maxpool: MaxPool2d,
    /// Stage 1.
    pub layer1: Vec<Block>,
    /// Stage 2.
    pub layer2: Vec<Block>,
    /// Stage 3.
    pub layer3: Vec<Block>,
    /// Stage 4.
    pub layer4: Vec<Block>,
    /// Mean branch of the RUL head.
    pub mu: RulBranch,
    /// Log-variance branch of the RUL head.
    pub logvar: RulBranch,
    /// Final classifier (has its own learning rate).
    pub fc: Linear,
}

/// What the head computes for a batch.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// Mean embedding `[B, D]`.
    pub mu: Tensor<2>,
    /// Per-sample uncertainty `u = mean_k exp(logvar_k)`, `[B]`.
    pub uncertainty: Tensor<1>,
}

/// Result of a training forward pass.
#[derive(Debug, Clone)]
pub struct TrainOutput {
    /// Scalar loss `[1]`.
    pub loss: Tensor<1>,
    /// Logits `[B, K]` (of the mixed features when mixing is on).
    pub logits: Tensor<2>,
    /// The embedding the classifier saw `[B, D]`: the mixed features, or `mu` without mixing.
    pub embedding: Tensor<2>,
    /// Uncertainty `[B]`.
    pub uncertainty: Tensor<1>,
}

/// Result of an inference forward pass.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Logits `[B, K]`.
    pub logits: Tensor<2>,
    /// Softmax probabilities `[B, K]`.
    pub probabilities: Tensor<2>,
    /// Uncertainty `[B]`.
    pub uncertainty: Tensor<1>,
}

impl Cucn {
    /// The stem's max pooling, through cucn's CPU kernel when its settings allow (they always do
    /// for a built network: 3x3, stride 2, padding 1).
    fn stem_pool(&self, x: Tensor<4>) -> Tensor<4> {
        let pool = &self.maxpool;
        match pool.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == left
                    && left == bottom
                    && bottom == right
                    && pool.kernel_size[0] == pool.kernel_size[1]
                    && pool.stride[0] == pool.stride[1]
                    && pool.dilation == [1, 1]
                    && !pool.ceil_mode =>
            {
                max_pool2d(x, pool.kernel_size[0], pool.stride[0], top)
            }
            _ => pool.forward(x),
        }
    }

    /// Backbone features.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, S, S]` (normalized)
    /// - output: `[B, C, h, w]` with `h = w = feature_side()`
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        let x = conv2d_bn(&self.conv1, &self.bn1, images, true);
        let mut x = self.stem_pool(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }

    /// RUL head on the backbone features.
    ///
    /// # Shapes
    /// - `images`: `[B, 3, S, S]`; output: `mu` `[B, D]`, `uncertainty` `[B]`
    pub fn head(&self, images: Tensor<4>) -> HeadOutput {
        let f = self.features(images);
        let mu = self.mu.forward(f.clone());
        let logvar = self.logvar.forward(f);
        let uncertainty = logvar.exp().mean_dim(1).squeeze_dim(1);
        HeadOutput { mu, uncertainty }
    }

    /// Inference: `logits = fc(mu)`, softmax probabilities and uncertainty. Use on a model from
    /// `valid()` (running BatchNorm statistics, no dropout).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, S, S]`; outputs `[B, K]`, `[B, K]`, `[B]`
    pub fn predict(&self, images: Tensor<4>) -> Prediction {
        let head = self.head(images);
        let logits = self.fc.forward(head.mu);
        Prediction {
            probabilities: softmax(logits.clone(), 1),
            logits,
            uncertainty: head.uncertainty,
        }
    }

    /// Training forward pass and loss. With `perm`, the RUL mixing and add-up loss; without, the
    /// plain baseline (`logits = fc(mu)`, weighted CE).
    ///
    /// # Shapes
    /// - `images`: `[B, 3, S, S]`, `targets`: `[B]`, `perm`: `[B]`, `class_weights`: `[K]`
    pub fn forward_train(
        &self,
        images: Tensor<4>,
        targets: Tensor<1, Int>,
        perm: Option<Tensor<1, Int>>,
        class_weights: Tensor<1>,
    ) -> TrainOutput {
        let head = self.head(images);
        match perm {
            Some(perm) => {
                let mixed = mix_features(head.mu, head.uncertainty.clone(), perm.clone());
                let logits = self.fc.forward(mixed.clone());
                TrainOutput {
                    loss: add_up_loss(logits.clone(), targets, perm, class_weights),
                    logits,
                    embedding: mixed,
                    uncertainty: head.uncertainty,
                }
            }
            None => {
                let logits = self.fc.forward(head.mu.clone());
                TrainOutput {
                    loss: weighted_cross_entropy(logits.clone(), targets, class_weights),
                    logits,
                    embedding: head.mu,
                    uncertainty: head.uncertainty,
                }
            }
        }
    }
}
