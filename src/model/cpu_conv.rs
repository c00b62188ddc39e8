//! The backbone's convolutions on the CPU: [`shifted_conv`] for maps of [`BATCHED_BELOW_PIXELS`]
//! output pixels or more ([`tiled_im2col`] there when the input has few channels, as `conv1`;
//! [`winograd`] for size-keeping 3x3 kernels over [`winograd::MIN_PIXELS`] output pixels in the
//! batch: forward, input and weight gradients), below it [`winograd_batch`] for size-keeping 3x3
//! kernels over [`winograd_batch::MIN_COLUMNS`] tiles in the batch, [`im2col_conv`] (one product
//! over the whole batch) otherwise. At inference a following BatchNorm (and ReLU) can be applied
//! as the output is written ([`conv2d_affine_cpu`]).
//!
//! `flex`'s convolution converts the batch to NHWC on one thread, builds im2col tiles and
//! scatters each tile's result back; its weight gradient is a convolution whose kernel is the
//! output gradient (one thin product per input channel), 2.2-2.4x the cost of the forward pass.
//! Measured at batch 32, 112 px input (median of 7, forward / input gradient / weight gradient,
//! ms, `flex` -> cucn): a 64-channel 3x3 on 28 x 28 30/33/74 -> 15/16/22, on 56 x 56
//! 124/108/326 -> 59/55/82, 128 channels on 14 x 14 21/17/47 -> 13/12/16, `conv1` (7x7, stride 2)
//! 53/-/97 -> 45/-/36. For strides above 1 the input gradient stays `flex`'s transposed
//! convolution, which measured faster than a scattered form of the shifted products (a
//! 64-to-128-channel 3x3 on 28 x 28: 10-12 against 12-17 ms).
//!
//! The operation is a Burn backend extension ([`CpuConv`], implemented for `Flex` and
//! `Autodiff<Flex>`); [`conv2d_cpu`] is the entry point and [`applies`] says when it can be used.

use super::channel_affine::ChannelAffine;
use super::im2col_conv;
use super::shifted_conv::{self, Arrangement, Geometry};
use super::tiled_im2col;
use super::winograd;
use super::winograd_batch;
use crate::device::is_flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};

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

    /// Inference only (not differentiated): [`CpuConv::cpu_conv2d`] followed by
    /// `y * scale + shift` per output channel (`[C_out]`) and, with `relu`, a clamp at zero,
    /// applied as the output is written (a BatchNorm in its inference form).
    fn cpu_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;
}

fn options(stride: usize, padding: usize) -> ConvOptions<2> {
    ConvOptions::new([stride; 2], [padding; 2], [1; 2], 1)
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

fn values(t: &FlexTensor) -> &[f32] {
    t.storage()
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Output pixels per image below which the whole batch is one product ([`im2col_conv`]): the
/// 4 x 4 and 7 x 7 maps of `layer3`/`layer4` at 112 px input. Per image, their products are a few
/// columns wide and stream the whole weight matrix once per image.
pub const BATCHED_BELOW_PIXELS: usize = 50;

fn geometry(x: &FlexTensor, weight_dims: [usize; 4], stride: usize, padding: usize) -> Geometry {
    let [cout, _, k, _] = weight_dims;
    Geometry::new(dims4(x), cout, k, stride, padding)
}

/// How a convolution is computed on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Small maps: one product over the whole batch ([`im2col_conv`]).
    Batched,
    /// Small maps, size-keeping 3x3 kernels, enough tiles over the batch: Winograd's F(2x2, 3x3)
    /// with one product per transform position over the batch ([`winograd_batch`]).
    WinogradBatched,
    /// Large maps, few input channels and many output channels: one product per tile
    /// ([`tiled_im2col`]).
    TiledColumns,
    /// Large maps: shifted products ([`shifted_conv`]).
    Shifted,
    /// Large maps, size-keeping 3x3 kernels, enough pixels over the batch: Winograd's
    /// F(2x2, 3x3) ([`winograd`]).
    Winograd,
}

fn method(g: &Geometry) -> Method {
    if g.ho * g.wo < BATCHED_BELOW_PIXELS {
        if winograd_batch::applies(g) {
            Method::WinogradBatched
        } else {
            Method::Batched
        }
    } else if tiled_im2col::suits(g) {
        Method::TiledColumns
    } else if winograd::suits(g) && g.n * g.ho * g.wo >= winograd::MIN_PIXELS {
        Method::Winograd
    } else {
        Method::Shifted
    }
}

fn forward(
    x: FlexTensor,
    weight: FlexTensor,
    [stride, padding]: [usize; 2],
    epilogue: Option<&ChannelAffine>,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let weight_dims = dims4(&weight);
    let g = geometry(&x, weight_dims, stride, padding);
    let out = match method(&g) {
        Method::Batched => im2col_conv::forward(values(&x), values(&weight), &g, epilogue),
        Method::WinogradBatched => winograd_batch::forward(
            values(&x),
            values(&weight),
            [g.cout, g.cin],
            Arrangement::Forward,
            &g,
            epilogue,
        ),
        Method::TiledColumns => tiled_im2col::forward(values(&x), values(&weight), &g, epilogue),
        Method::Shifted => {
            let taps = shifted_conv::taps(values(&weight), weight_dims, Arrangement::Forward);
            shifted_conv::forward(values(&x), &taps, &g, epilogue)
        }
        Method::Winograd => {
            let u = winograd::kernel(values(&weight), weight_dims, Arrangement::Forward);
            winograd::forward(values(&x), &u, &g, epilogue)
        }
    };
    tensor(out, [g.n, g.cout, g.ho, g.wo])
}

/// The input gradient (when `input_grad`) and the weight gradient.
fn backward(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    [stride, padding]: [usize; 2],
    input_grad: bool,
) -> (Option<FlexTensor>, FlexTensor) {
    let (x, weight, grad) = (
        x.to_contiguous(),
        weight.to_contiguous(),
        grad.to_contiguous(),
    );
    let weight_dims = dims4(&weight);
    let [cout, cin, k, _] = weight_dims;
    let x_dims = dims4(&x);
    let g = geometry(&x, weight_dims, stride, padding);
    let dw = match method(&g) {
        Method::Batched => {
            let (dx, dw) =
                im2col_conv::backward(values(&x), values(&weight), values(&grad), &g, input_grad);
            return (dx.map(|dx| tensor(dx, x_dims)), tensor(dw, weight_dims));
        }
        Method::TiledColumns => tiled_im2col::weight_grad(values(&x), values(&grad), &g),
        Method::Shifted => shifted_conv::weight_grad(values(&x), values(&grad), &g),
        Method::Winograd => winograd::weight_grad(values(&x), values(&grad), &g),
        Method::WinogradBatched => winograd_batch::weight_grad(values(&x), values(&grad), &g),
    };
    let dw = tensor(dw, weight_dims);
    let dx = input_grad.then(|| {
        if stride > 1 || padding >= k {
            return Flex::conv2d_x_backward(x, weight, grad, options(stride, padding));
        }
        // The convolution of the output gradient with the flipped, transposed kernel.
        let grad_dims = dims4(&grad);
        let gx = Geometry::new(grad_dims, cin, k, 1, k - 1 - padding);
        debug_assert_eq!(gx.cin, cout);
        let dx = match method(&gx) {
            Method::Winograd => {
                let u = winograd::kernel(values(&weight), weight_dims, Arrangement::Flipped);
                winograd::forward(values(&grad), &u, &gx, None)
            }
            Method::WinogradBatched => winograd_batch::forward(
                values(&grad),
                values(&weight),
                [cout, cin],
                Arrangement::Flipped,
                &gx,
                None,
            ),
            _ => {
                let taps = shifted_conv::taps(values(&weight), weight_dims, Arrangement::Flipped);
                shifted_conv::forward(values(&grad), &taps, &gx, None)
            }
        };
        tensor(dx, x_dims)
    });
    (dx, dw)
}

impl CpuConv for Flex {
    fn cpu_conv2d(x: FlexTensor, weight: FlexTensor, stride: usize, padding: usize) -> FlexTensor {
        forward(x, weight, [stride, padding], None)
    }

    fn cpu_conv2d_affine(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
        scale: FlexTensor,
        shift: FlexTensor,
        relu: bool,
    ) -> FlexTensor {
        let affine = ChannelAffine::from_tensors(scale, shift, relu);
        assert_eq!(
            affine.scale.len(),
            dims4(&weight)[0],
            "one scale per output channel"
        );
        forward(x, weight, [stride, padding], Some(&affine))
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
        let (dx, dw) = backward(x, weight, grad, [stride, padding], node_x.is_some());
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<Flex>(node.id, dw);
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
                let out = forward(
                    x.into_primitive(),
                    weight.into_primitive(),
                    [stride, padding],
                    None,
                );
                prep.finish((x_state, weight_state, stride, padding), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(
                x.into_primitive(),
                weight.into_primitive(),
                [stride, padding],
                None,
            )),
        }
    }

    /// Inference only: the result is not tracked.
    fn cpu_conv2d_affine(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(Flex::cpu_conv2d_affine(
            x.into_primitive(),
            weight.into_primitive(),
            stride,
            padding,
            scale.into_primitive(),
            shift.into_primitive(),
            relu,
        ))
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

/// The convolution followed by the per-channel `y * scale + shift` and, with `relu`, a clamp at
/// zero, in one pass through [`CpuConv`] (see [`applies`]); for inference (not differentiated).
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`, `weight`: `[C_out, C_in, k, k]`, `scale`, `shift`: `[C_out]`;
///   output `[N, C_out, H_out, W_out]`
pub fn conv2d_affine_cpu(
    x: Tensor<4>,
    weight: Tensor<4>,
    [stride, padding]: [usize; 2],
    [scale, shift]: [Tensor<1>; 2],
    relu: bool,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuConv>::cpu_conv2d_affine(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
        scale.into_dispatch(),
        shift.into_dispatch(),
        relu,
    ))
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
