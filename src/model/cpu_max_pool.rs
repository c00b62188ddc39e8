//! The stem's max pooling on the CPU, one pass over each image plane.
//!
//! `flex` pools through its generic 3-D kernel and, for training, writes 64-bit indices of the
//! maxima: 52 ms for the 32 x 64 x 56 x 56 map after `conv1` at 112 px, in training and in
//! inference alike. Here each plane is pooled by a plain loop over precomputed window spans,
//! planes in parallel (inference: down each window's rows first, across whole input rows, which
//! vectorizes, then across its columns); training keeps the 32-bit position of each maximum in
//! its plane (half of `flex`'s indices) and the backward pass adds each gradient there. As in
//! PyTorch, the first maximum of a window wins and NaN propagates.
//!
//! The operation is a Burn backend extension ([`CpuMaxPool`], implemented for `Flex` and
//! `Autodiff<Flex>`); [`max_pool2d`] uses it for f32 on `flex` and Burn's pooling elsewhere.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, Flex, backend_extension};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;
use std::ops::Range;

use crate::device::is_flex;

/// Square max pooling without dilation, rounding the output size down.
#[backend_extension(Autodiff, Flex)]
pub trait CpuMaxPool: burn::backend::Backend {
    /// `x` `[N, C, H, W]` pooled over `kernel x kernel` windows.
    fn cpu_max_pool2d(
        x: FloatTensor<Self>,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self>;
}

/// Window geometry of one pooling, with the input span under each output row and column
/// (computed once per call, shared by every plane).
#[derive(Debug)]
struct Window {
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    rows: Vec<Range<usize>>,
    cols: Vec<Range<usize>>,
}

/// Input rows (or columns) under each of the `outputs` positions along a side of `len`.
fn spans(
    outputs: usize,
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Vec<Range<usize>> {
    (0..outputs)
        .map(|o| {
            let start = (o * stride).saturating_sub(padding);
            let end = (o * stride + kernel).saturating_sub(padding).min(len);
            start..end
        })
        .collect()
}

impl Window {
    fn new(x: &FlexTensor, kernel: usize, stride: usize, padding: usize) -> Self {
        let shape = x.layout().shape();
        let (h, w) = (shape[2], shape[3]);
        let out = |side: usize| (side + 2 * padding - kernel) / stride + 1;
        let (ho, wo) = (out(h), out(w));
        Self {
            h,
            w,
            ho,
            wo,
            rows: spans(ho, h, kernel, stride, padding),
            cols: spans(wo, w, kernel, stride, padding),
        }
    }

    /// Pools one plane, visiting each window in row-major order (the first maximum wins, the
    /// last NaN if any): for each output, in order, `visit(output, index in the plane, maximum)`.
    fn pool_plane_with_indices(&self, plane: &[f32], mut visit: impl FnMut(usize, usize, f32)) {
        for (oh, rows) in self.rows.iter().enumerate() {
            for (ow, cols) in self.cols.iter().enumerate() {
                let mut best_index = rows.start * self.w + cols.start;
                let mut best = plane[best_index];
                for ih in rows.clone() {
                    let start = ih * self.w + cols.start;
                    for (offset, &value) in plane[start..ih * self.w + cols.end].iter().enumerate()
                    {
                        if replaces(value, best) {
                            (best, best_index) = (value, start + offset);
                        }
                    }
                }
                visit(oh * self.wo + ow, best_index, best);
            }
        }
    }

    /// Pools one plane into `dst`, values only: the maxima down each window's rows first, for
    /// whole input rows at a time (this vectorizes), then across each window's columns. `column`
    /// is a buffer of one input row.
    fn pool_plane(&self, plane: &[f32], dst: &mut [f32], column: &mut [f32]) {
        for (rows, out_row) in self.rows.iter().zip(dst.chunks_mut(self.wo)) {
            column.copy_from_slice(&plane[rows.start * self.w..][..self.w]);
            for ih in rows.start + 1..rows.end {
                for (best, &value) in column.iter_mut().zip(&plane[ih * self.w..][..self.w]) {
                    *best = if replaces(value, *best) { value } else { *best };
                }
            }
            for (out, cols) in out_row.iter_mut().zip(&self.cols) {
                *out = column[cols.clone()]
                    .iter()
                    .fold(f32::NEG_INFINITY, |best, &value| {
                        if replaces(value, best) { value } else { best }
                    });
            }
        }
    }
}

/// Whether `value` replaces `best` as a running maximum visited in order: larger, or NaN (so NaN
/// propagates, and among equal maxima the first stays). Also CBAM's maxima (`cpu_cbam`).
#[inline(always)]
pub(super) fn replaces(value: f32, best: f32) -> bool {
    value > best || value.is_nan()
}

/// The pooled map and, when `indices` is set, the position of each maximum in its plane.
fn forward(
    x: FlexTensor,
    kernel: usize,
    stride: usize,
    padding: usize,
    indices: bool,
) -> (FlexTensor, Vec<u32>) {
    let x = x.to_contiguous();
    let win = Window::new(&x, kernel, stride, padding);
    let shape = x.layout().shape().clone();
    let xs: &[f32] = x.storage();
    let outputs = shape[0] * shape[1] * win.ho * win.wo;
    let mut out = vec![0f32; outputs];
    let mut argmax = vec![0u32; if indices { outputs } else { 0 }];
    let per_plane = win.ho * win.wo;
    let planes = out
        .par_chunks_mut(per_plane)
        .zip(xs.par_chunks(win.h * win.w));
    if indices {
        planes
            .zip(argmax.par_chunks_mut(per_plane))
            .for_each(|((dst, plane), at)| {
                win.pool_plane_with_indices(plane, |o, i, v| {
                    dst[o] = v;
                    at[o] = i as u32;
                })
            });
    } else {
        planes.for_each_init(
            || vec![0f32; win.w],
            |column, (dst, plane)| win.pool_plane(plane, dst, column),
        );
    }
    let out = TensorData::new(out, [shape[0], shape[1], win.ho, win.wo]);
    (FlexTensor::from_data(out), argmax)
}

/// The input gradient: each output's gradient added at its window's maximum.
fn backward(input_shape: &[usize], argmax: &[u32], grad: FlexTensor) -> FlexTensor {
    let grad = grad.to_contiguous();
    let gs: &[f32] = grad.storage();
    let plane = input_shape[2] * input_shape[3];
    let per_plane = gs.len() / (input_shape[0] * input_shape[1]).max(1);
    let mut dx = vec![0f32; input_shape.iter().product()];
    dx.par_chunks_mut(plane)
        .zip(gs.par_chunks(per_plane))
        .zip(argmax.par_chunks(per_plane))
        .for_each(|((dst, g), idx)| {
            for (&i, &g) in idx.iter().zip(g) {
                dst[i as usize] += g;
            }
        });
    FlexTensor::from_data(TensorData::new(dx, input_shape.to_vec()))
}

impl CpuMaxPool for Flex {
    fn cpu_max_pool2d(x: FlexTensor, kernel: usize, stride: usize, padding: usize) -> FlexTensor {
        forward(x, kernel, stride, padding, false).0
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// The input's shape and the position of each maximum in its plane.
    type State = (Vec<usize>, Vec<u32>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (input_shape, argmax) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, backward(&input_shape, &argmax, grad));
        }
    }
}

impl<C: CheckpointStrategy> CpuMaxPool for Autodiff<Flex, C> {
    fn cpu_max_pool2d(
        x: FloatTensor<Self>,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let input_shape = x.layout().shape().to_vec();
                let (out, argmax) = forward(x, kernel, stride, padding, true);
                prep.finish((input_shape, argmax), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(x.into_primitive(), kernel, stride, padding, false).0)
            }
        }
    }
}

/// Max pooling over square `kernel` windows with square `stride` and symmetric `padding` (no
/// dilation, output size rounded down), as `burn::tensor::module::max_pool2d`.
///
/// # Shapes
/// - `x`: `[N, C, H, W]`; output `[N, C, (H + 2 p - k) / s + 1, (W + 2 p - k) / s + 1]`
pub fn max_pool2d(x: Tensor<4>, kernel: usize, stride: usize, padding: usize) -> Tensor<4> {
    if !(is_flex(&x.device()) && x.dtype() == DType::F32) {
        let options = MaxPoolOptions::new([kernel; 2])
            .with_stride([stride; 2])
            .with_padding([padding; 2]);
        return burn::tensor::module::max_pool2d(x, options);
    }
    Tensor::from_dispatch(<Dispatch as CpuMaxPool>::cpu_max_pool2d(
        x.into_dispatch(),
        kernel,
        stride,
        padding,
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::ops::MaxPoolOptions;
    use burn::tensor::{Device, Distribution, Tensor, TensorData};

    use super::max_pool2d;

    #[test]
    fn matches_burns_max_pool_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(5);
        // (kernel, stride, padding, side): the stem's 3x3/2/1 on even and odd sides, and others;
        // each on distinct values and on values with many ties (as after a ReLU), where the
        // gradient must go to the same one of the equal maxima.
        let shapes = [(3, 2, 1, 8), (3, 2, 1, 9), (2, 2, 0, 6), (3, 1, 1, 5)];
        for ((k, s, p, side), ties) in shapes.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let x = Tensor::<4>::random([2, 3, side, side], Distribution::Default, &device);
            let x = if ties {
                x.mul_scalar(3.0).floor().clamp_min(1.0)
            } else {
                x
            }
            .require_grad();
            let ours = max_pool2d(x.clone(), k, s, p);
            let options = MaxPoolOptions::new([k; 2])
                .with_stride([s; 2])
                .with_padding([p; 2]);
            let burn = burn::tensor::module::max_pool2d(x.clone(), options);
            // Maxima are copied, not computed: exactly equal.
            assert_eq!(ours.to_data(), burn.to_data(), "k{k} s{s} p{p} side {side}");
            let upstream = Tensor::<4>::random(ours.dims(), Distribution::Default, &device);
            let g1 = (ours * upstream.clone()).sum().backward();
            let g2 = (burn * upstream).sum().backward();
            let (d1, d2) = (x.grad(&g1).expect("grad"), x.grad(&g2).expect("grad"));
            assert_eq!(
                d1.to_data(),
                d2.to_data(),
                "k{k} s{s} p{p} side {side} gradient"
            );
        }
    }

    #[test]
    fn inference_pooling_matches_burns() {
        let device = Device::default();
        device.seed(6);
        for (k, s, p, side) in [(3, 2, 1, 8), (3, 2, 1, 9), (2, 2, 0, 6), (3, 1, 1, 5)] {
            let x = Tensor::<4>::random([2, 3, side, side + 3], Distribution::Default, &device);
            let options = MaxPoolOptions::new([k; 2])
                .with_stride([s; 2])
                .with_padding([p; 2]);
            let burn = burn::tensor::module::max_pool2d(x.clone(), options);
            assert_eq!(
                max_pool2d(x, k, s, p).to_data(),
                burn.to_data(),
                "k{k} s{s} p{p} side {side}"
            );
        }
    }

    #[test]
    fn nan_propagates_to_every_window_that_holds_it() {
        let device = Device::default();
        let mut values = vec![0.5f32; 36];
        values[21] = f32::NAN; // row 3, column 3 of a 6 x 6 plane: in 2 x 2 overlapping windows
        let x = Tensor::<4>::from_data(TensorData::new(values, [1, 1, 6, 6]), &device);
        let nan_at = |t: Tensor<4>| t.is_nan().into_data().try_to_vec::<bool>().expect("bools");
        let ours = nan_at(max_pool2d(x.clone(), 3, 2, 1));
        let options = MaxPoolOptions::new([3; 2])
            .with_stride([2; 2])
            .with_padding([1; 2]);
        let burn = nan_at(burn::tensor::module::max_pool2d(x, options));
        assert_eq!(ours, burn);
        assert_eq!(ours.iter().filter(|&&nan| nan).count(), 4, "{ours:?}");
    }
}
