//! The weight gradient of the backbone's large convolutions on the CPU as one matrix product.
//!
//! Burn computes a convolution's weight gradient as another convolution: the input with batch and
//! channels swapped, convolved with the output gradient as its kernel. On `flex` that is one thin
//! product per input channel with the whole batch in the inner dimension (and a single-threaded
//! layout conversion first); measured at batch 32 it cost 2.2-2.4x the forward pass (`conv1` at
//! 112 px: 135 ms against 63; a 64-channel 3x3 on 28 x 28: 74 ms against 31). Here it is the
//! textbook form: gather the input columns once (`[C_in k k, N H_out W_out]`, rows read straight
//! from contiguous input rows, in parallel) and multiply the output gradient by them,
//! `dW [C_out, C_in k k] = dY [C_out, N H_out W_out] x columnsᵀ`, one `gemm` product per thread
//! over a share of the pixels. Measured the same way, forward + weight gradient + input gradient:
//! `conv1` 229 -> 139 ms, the 64-channel 3x3 on 28 x 28 137 -> 76 ms, the 128-channel 3x3 on
//! 14 x 14 95 -> 47 ms.
//!
//! The forward pass and the input gradient stay `flex`'s own. The operation is a Burn backend
//! extension ([`CpuConv`], implemented for `Flex` and `Autodiff<Flex>`); [`conv2d_cpu`] is the
//! entry point and [`applies`] says when it can be used.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::device::is_flex;

/// A bias-free, ungrouped, undilated 2-D convolution with square stride and symmetric padding.
#[backend_extension(Autodiff, Flex)]
pub trait CpuConv: burn::backend::Backend {
    /// `x` `[N, C_in, H, W]` convolved with `weight` `[C_out, C_in, k, k]`.
    fn cpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self>;
}

/// Most pixel shares of one weight gradient. Measured on 2 cores (forward + both gradients of
/// the 64-channel 3x3 on 28 x 28): 2 shares 80 ms, 4 shares 124 ms, 8 shares 114 ms; `gemm` still
/// splits each product over the output blocks when more threads are free.
const MAX_SHARES: usize = 2;
/// Fewest pixels in a share: below this a product is too short to be worth its own task.
const MIN_SHARE_PIXELS: usize = 2048;

fn options(stride: usize, padding: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [padding; 2], [1; 2], 1)
}

/// The columns of `x` for a `k x k` kernel: row `(c, i, j)` (the weight's order) holds, for every
/// output pixel of every image, the input value under kernel offset `(i, j)` of channel `c`
/// (zero in the padding). Shape `[C_in k k, N H_out W_out]`.
fn columns(x: &FlexTensor, k: usize, stride: usize, padding: usize) -> (Vec<f32>, usize, usize) {
    let shape = x.layout().shape();
    let (n, cin, h, w) = (shape[0], shape[1], shape[2], shape[3]);
    let ho = (h + 2 * padding - k) / stride + 1;
    let wo = (w + 2 * padding - k) / stride + 1;
    let xs: &[f32] = x.storage();
    let pixels = n * ho * wo;
    let mut cols = vec![0f32; cin * k * k * pixels];
    cols.par_chunks_mut(pixels)
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, i, j) = (row / (k * k), (row / k) % k, row % k);
            // Output columns whose input column `ow * stride + j - padding` lies inside the image.
            let first = padding.saturating_sub(j).div_ceil(stride);
            let last = (w + padding - j).div_ceil(stride).min(wo);
            for b in 0..n {
                let plane = &xs[(b * cin + c) * h * w..][..h * w];
                for oh in 0..ho {
                    let Some(ih) = (oh * stride + i).checked_sub(padding).filter(|&ih| ih < h)
                    else {
                        continue;
                    };
                    let src = &plane[ih * w..][..w];
                    let out = &mut dst[(b * ho + oh) * wo..][..wo];
                    for ow in first..last {
                        out[ow] = src[ow * stride + j - padding];
                    }
                }
            }
        });
    (cols, pixels, ho * wo)
}

/// `dW = dY x columnsᵀ` (module documentation).
fn weight_grad(
    x: FlexTensor,
    grad: FlexTensor,
    weight_dims: [usize; 4],
    stride: usize,
    padding: usize,
) -> FlexTensor {
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let [cout, cin, k, _] = weight_dims;
    let (cols, pixels, per_image) = columns(&x, k, stride, padding);
    // dY [N, C_out, P] -> [C_out, N P].
    let gs: &[f32] = grad.storage();
    let n = pixels / per_image.max(1);
    let mut dy = vec![0f32; cout * pixels];
    dy.par_chunks_mut(pixels).enumerate().for_each(|(co, dst)| {
        for b in 0..n {
            dst[b * per_image..][..per_image]
                .copy_from_slice(&gs[(b * cout + co) * per_image..][..per_image]);
        }
    });
    let dy = FlexTensor::from_data(TensorData::new(dy, [cout, pixels]));
    let cols = FlexTensor::from_data(TensorData::new(cols, [cin * k * k, pixels]));
    // `gemm` splits its work over blocks of the output, and `dW` is small (C_out x C_in k k)
    // while the inner dimension is long: one product per share of the pixels, in parallel. The
    // shares depend on the shape alone and are added in order, so the result does not depend on
    // the number of threads.
    let shares = (pixels / MIN_SHARE_PIXELS).clamp(1, MAX_SHARES);
    let partials: Vec<FlexTensor> = (0..shares)
        .into_par_iter()
        .map(|i| {
            let start = pixels * i / shares;
            let len = pixels * (i + 1) / shares - start;
            Flex::float_matmul(
                dy.narrow(1, start, len),
                Flex::float_transpose(cols.narrow(1, start, len)),
            )
        })
        .collect();
    let dw = partials
        .into_iter()
        .reduce(Flex::float_add)
        .expect("at least one share");
    Flex::float_reshape(dw, weight_dims.into())
}

impl CpuConv for Flex {
    fn cpu_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        Flex::conv2d(x, weight, None, options(stride, padding))
    }
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = (NodeId, NodeId, usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state, stride, padding) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state);
        let dims = weight.layout().shape();
        let weight_dims = [dims[0], dims[1], dims[2], dims[3]];
        if let Some(node) = node_x {
            let dx =
                Flex::conv2d_x_backward(x.clone(), weight, grad.clone(), options(stride, padding));
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, weight_grad(x, grad, weight_dims, stride, padding));
        }
    }
}

impl<C: CheckpointStrategy> CpuConv for Autodiff<Flex, C> {
    fn cpu_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = Flex::conv2d(
                    x.into_primitive(),
                    weight.into_primitive(),
                    None,
                    options(stride, padding),
                );
                prep.finish((x_state, weight_state, stride, padding), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                None,
                options(stride, padding),
            )),
        }
    }
}

/// Whether [`conv2d_cpu`] handles this convolution: f32 on `flex`, a square kernel, square stride
/// and symmetric padding (bias, groups and dilation are the caller's to check).
pub fn applies(x: &Tensor<4>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> bool {
    is_flex(&x.device())
        && x.dtype() == DType::F32
        && kernel[0] == kernel[1]
        && stride[0] == stride[1]
        && padding[0] == padding[1]
}

/// The convolution through [`CpuConv`]; see [`applies`].
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in, k, k]`; output `[N, C_out, H_out, W_out]`
pub fn conv2d_cpu(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuConv>::cpu_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    ))
}
