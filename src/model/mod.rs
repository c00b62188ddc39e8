//! The CUCN network (METHOD.md): ResNet backbone with CBAM, RUL head, loss, optimizer, and
//! weight import/export.

pub mod backbone;
pub mod cbam;
pub mod channel_affine;
pub mod conv;
pub mod cpu_batch_norm;
pub mod cpu_cbam;
pub mod cpu_conv;
pub mod cpu_max_pool;
pub mod cpu_residual;
pub mod error;
pub mod fused_adam;
pub mod head;
pub mod im2col_conv;
pub mod lanes;
pub mod loss;
pub mod network;
pub mod norm;
pub mod optim;
pub mod shifted_conv;
pub mod strided_gemm;
pub mod tiled_im2col;
pub mod weights;
pub mod winograd;
pub mod winograd_batch;

pub use error::ModelError;
pub use network::{Cucn, CucnConfig, Prediction, TrainOutput};

/// Largest absolute difference between two tensors (the unit tests' comparisons with Burn).
#[cfg(test)]
pub(crate) fn max_abs_diff<const D: usize>(
    a: burn::tensor::Tensor<D>,
    b: burn::tensor::Tensor<D>,
) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}
