//! RUL's head: mean and log-variance branches of the 64-d embedding (METHOD.md, "Head").
//!
//! Each branch is `BN1d_64(Linear_{C*h*w -> 64}(flatten(Dropout_0.4(BN2d_C(F)))))`, where the BN2d
//! has no affine parameters and both BatchNorms use eps 2e-5. Parameter names: `bn2d`, `linear`,
//! `bn1d` (RUL's `nn.Sequential` indices 0, 3 and 4).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::norm::{TorchBatchNorm, TorchBatchNormConfig};

/// Epsilon of both head BatchNorms (RUL's code).
pub const HEAD_BN_EPS: f64 = 2e-5;

/// Configuration of one [`RulBranch`].
#[derive(Config, Debug)]
pub struct RulBranchConfig {
    /// Channels of the last feature map.
    pub channels: usize,
    /// Spatial side `h = w` of the last feature map.
    pub side: usize,
    /// Embedding size.
    #[config(default = 64)]
    pub embed_dim: usize,
    /// Dropout probability before flattening.
    #[config(default = 0.4)]
    pub dropout: f64,
}

impl RulBranchConfig {
    /// Builds the branch.
    pub fn init(&self, device: &Device) -> RulBranch {
        RulBranch {
            bn2d: TorchBatchNormConfig::new(self.channels)
                .with_eps(HEAD_BN_EPS)
                .with_affine(false)
                .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            linear: LinearConfig::new(self.channels * self.side * self.side, self.embed_dim)
                .init(device),
            bn1d: TorchBatchNormConfig::new(self.embed_dim)
                .with_eps(HEAD_BN_EPS)
                .init(device),
        }
    }
}

/// One branch of the RUL head (`mu` or `logvar`).
#[derive(Module, Debug)]
pub struct RulBranch {
    /// BatchNorm2d without affine parameters.
    pub bn2d: TorchBatchNorm,
    /// Dropout (active in training only).
    pub dropout: Dropout,
    /// Projection of the flattened map to the embedding.
    pub linear: Linear,
    /// BatchNorm1d of the embedding.
    pub bn1d: TorchBatchNorm,
}

impl RulBranch {
    /// Embeds the last feature map.
    ///
    /// # Shapes
    /// - `features`: `[B, C, h, w]`
    /// - output: `[B, embed_dim]`
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        let x = self.dropout.forward(self.bn2d.forward(features));
        let x = self.linear.forward(x.flatten::<2>(1, 3));
        let [b, d] = x.dims();
        // BatchNorm1d over (B, D) is BatchNorm over (B, D, 1).
        self.bn1d.forward(x.reshape([b, d, 1])).reshape([b, d])
    }
}
