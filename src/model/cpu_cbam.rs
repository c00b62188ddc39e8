//! CBAM's passes over the full feature map, on the CPU.
//!
//! Written with Burn's tensor operations, CBAM makes about a dozen passes over its input forward
//! and twice that backward (two poolings per plane, two reductions across channels over a
//! strided dimension, a concatenation, two broadcast products and their reductions, scatters for
//! the maxima): ~10 % of a training step at 112 px. The gates themselves are tiny (`[B, C]` and
//! `[B, 1, H, W]`). Here the three steps that touch the full map are one pass each, forward and
//! backward:
//!
//! - [`plane_mean_max`]: each plane's mean and maximum (the channel gate's poolings);
//! - [`channel_max_mean`]: per pixel, the maximum and mean over channels of `x * channel_gate`,
//!   without writing that product (the spatial gate's poolings);
//! - [`apply_gates`]: `x * channel_gate * spatial_gate`, with both gates' gradients in the same
//!   backward pass as the input's.
//!
//! The MLP, the 7x7 convolution, the BatchNorm and the sigmoids stay Burn operations on the small
//! gate tensors. Each step is a backend extension ([`CpuCbam`], for `Flex` and `Autodiff<Flex>`)
//! used for f32 on `flex` (see [`applies`]); [`crate::model::cbam::Cbam`] keeps Burn's
//! operations elsewhere. As in PyTorch's `max`, the first maximum wins and NaN propagates.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::cpu_max_pool::replaces;
use super::lanes::lane_sum;
use crate::device::is_flex;

/// The full-map steps of CBAM (see the module documentation).
#[backend_extension(Autodiff, Flex)]
pub trait CpuCbam: burn::backend::Backend {
    /// Each plane's mean and maximum of `x` `[B, C, H, W]`, as `[2, B, C]` (means first).
    fn cpu_plane_mean_max(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Per pixel, the maximum and the mean over channels of `x * gate` (`x` `[B, C, H, W]`,
    /// `gate` `[B, C]`), as `[B, 2, H, W]` (maxima first).
    fn cpu_channel_max_mean(x: FloatTensor<Self>, gate: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x * channel[b, c] * spatial[b, h, w]` (`x` `[B, C, H, W]`, `channel` `[B, C]`,
    /// `spatial` `[B, 1, H, W]`).
    fn cpu_apply_gates(
        x: FloatTensor<Self>,
        channel: FloatTensor<Self>,
        spatial: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `[B, C, H, W]` as (images, channels, pixels per plane).
fn dims(x: &FlexTensor) -> (usize, usize, usize) {
    let shape = x.layout().shape();
    (shape[0], shape[1], shape[2] * shape[3])
}

fn flex(values: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.to_vec()))
}

/// The position of the first maximum of `values` (the last NaN if any), and that value.
fn arg_max(values: &[f32]) -> (usize, f32) {
    values
        .iter()
        .enumerate()
        .fold((0, values[0]), |(i, best), (j, &v)| {
            if replaces(v, best) { (j, v) } else { (i, best) }
        })
}

/// [`CpuCbam::cpu_plane_mean_max`]; also the position of each plane's maximum.
fn plane_mean_max_forward(x: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let (b, c, p) = dims(x);
    let xs: &[f32] = x.storage();
    let per_plane: Vec<(f32, f32, u32)> = xs
        .par_chunks(p)
        .map(|plane| {
            let (at, max) = arg_max(plane);
            let mean = (lane_sum([plane], |[v]| v) / p as f64) as f32;
            (mean, max, at as u32)
        })
        .collect();
    let mut out: Vec<f32> = per_plane.iter().map(|m| m.0).collect();
    out.extend(per_plane.iter().map(|m| m.1));
    let argmax = per_plane.iter().map(|m| m.2).collect();
    (flex(out, &[2, b, c]), argmax)
}

/// The input gradient of [`plane_mean_max_forward`]: each plane gets its mean's gradient spread
/// evenly and its maximum's gradient at the maximum.
fn plane_mean_max_backward(shape: &[usize], argmax: &[u32], grad: FlexTensor) -> FlexTensor {
    let grad = grad.to_contiguous();
    let gs: &[f32] = grad.storage();
    let planes = argmax.len();
    let p = shape[2] * shape[3];
    let mut dx = vec![0f32; planes * p];
    dx.par_chunks_mut(p).enumerate().for_each(|(i, plane)| {
        plane.fill(gs[i] / p as f32);
        plane[argmax[i] as usize] += gs[planes + i];
    });
    flex(dx, shape)
}

/// [`CpuCbam::cpu_channel_max_mean`]; also, per pixel, the channel of the maximum.
fn channel_max_mean_forward(x: &FlexTensor, gate: &FlexTensor) -> (FlexTensor, Vec<u32>) {
    let (b, c, p) = dims(x);
    let (xs, gs): (&[f32], &[f32]) = (x.storage(), gate.storage());
    let mut out = vec![0f32; b * 2 * p];
    let mut argmax = vec![0u32; b * p];
    out.par_chunks_mut(2 * p)
        .zip(argmax.par_chunks_mut(p))
        .enumerate()
        .for_each(|(image, (out, at))| {
            let (max, mean) = out.split_at_mut(p);
            let planes = &xs[image * c * p..(image + 1) * c * p];
            let gates = &gs[image * c..(image + 1) * c];
            for (o, &v) in max.iter_mut().zip(&planes[..p]) {
                *o = v * gates[0];
            }
            mean.copy_from_slice(max);
            for ch in 1..c {
                let g = gates[ch];
                let plane = &planes[ch * p..(ch + 1) * p];
                for (((m, s), a), &v) in max
                    .iter_mut()
                    .zip(mean.iter_mut())
                    .zip(at.iter_mut())
                    .zip(plane)
                {
                    let v = v * g;
                    if replaces(v, *m) {
                        (*m, *a) = (v, ch as u32);
                    }
                    *s += v;
                }
            }
            let scale = 1.0 / c as f32;
            mean.iter_mut().for_each(|s| *s *= scale);
        });
    let shape = x.layout().shape();
    (flex(out, &[b, 2, shape[2], shape[3]]), argmax)
}

/// Gradients of [`channel_max_mean_forward`] for `x` and `gate`: with `t = dmean / C` plus the
/// maximum's gradient at its channel, `dx = gate * t` and `dgate = Σ_pixels x * t`.
fn channel_max_mean_backward(
    x: &FlexTensor,
    gate: &FlexTensor,
    argmax: &[u32],
    grad: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let grad = grad.to_contiguous();
    let (b, c, p) = dims(x);
    let (xs, gates, gs): (&[f32], &[f32], &[f32]) = (x.storage(), gate.storage(), grad.storage());
    let mut dx = vec![0f32; b * c * p];
    let mut dgate = vec![0f32; b * c];
    dx.par_chunks_mut(c * p)
        .zip(dgate.par_chunks_mut(c))
        .enumerate()
        .for_each(|(image, (dx, dgate))| {
            let (dmax, dmean) = gs[image * 2 * p..(image + 1) * 2 * p].split_at(p);
            let at = &argmax[image * p..(image + 1) * p];
            let mut t = vec![0f32; p];
            for ch in 0..c {
                for (((t, &dmax), &dmean), &a) in t.iter_mut().zip(dmax).zip(dmean).zip(at) {
                    *t = dmean / c as f32 + if a as usize == ch { dmax } else { 0.0 };
                }
                let g = gates[image * c + ch];
                let plane = &xs[(image * c + ch) * p..(image * c + ch + 1) * p];
                for (d, &t) in dx[ch * p..(ch + 1) * p].iter_mut().zip(&t) {
                    *d = g * t;
                }
                dgate[ch] = lane_sum([plane, &t], |[v, t]| v * t) as f32;
            }
        });
    (flex(dx, x.layout().shape()), flex(dgate, &[b, c]))
}

/// [`CpuCbam::cpu_apply_gates`].
fn apply_gates_forward(x: &FlexTensor, channel: &FlexTensor, spatial: &FlexTensor) -> FlexTensor {
    let (_, c, p) = dims(x);
    let (xs, cg, sg): (&[f32], &[f32], &[f32]) =
        (x.storage(), channel.storage(), spatial.storage());
    let mut y = vec![0f32; xs.len()];
    y.par_chunks_mut(p)
        .zip(xs.par_chunks(p))
        .enumerate()
        .for_each(|(plane, (y, x))| {
            let g = cg[plane];
            let s = &sg[plane / c * p..(plane / c + 1) * p];
            for ((y, &x), &s) in y.iter_mut().zip(x).zip(s) {
                *y = x * g * s;
            }
        });
    flex(y, x.layout().shape())
}

/// Gradients of [`apply_gates_forward`]: `dx = grad * channel * spatial`,
/// `dchannel = Σ_pixels grad * x * spatial`, `dspatial = Σ_channels grad * x * channel`.
fn apply_gates_backward(
    x: &FlexTensor,
    channel: &FlexTensor,
    spatial: &FlexTensor,
    grad: FlexTensor,
) -> [FlexTensor; 3] {
    let grad = grad.to_contiguous();
    let (b, c, p) = dims(x);
    let (xs, cg, sg, gs): (&[f32], &[f32], &[f32], &[f32]) = (
        x.storage(),
        channel.storage(),
        spatial.storage(),
        grad.storage(),
    );
    let mut dx = vec![0f32; b * c * p];
    let mut dchannel = vec![0f32; b * c];
    let mut dspatial = vec![0f32; b * p];
    dx.par_chunks_mut(c * p)
        .zip(dchannel.par_chunks_mut(c))
        .zip(dspatial.par_chunks_mut(p))
        .enumerate()
        .for_each(|(image, ((dx, dchannel), dspatial))| {
            let s = &sg[image * p..(image + 1) * p];
            for ch in 0..c {
                let plane = image * c + ch;
                let g = cg[plane];
                let (x, grad) = (
                    &xs[plane * p..(plane + 1) * p],
                    &gs[plane * p..(plane + 1) * p],
                );
                for (((d, &gr), &s), (ds, &x)) in dx[ch * p..(ch + 1) * p]
                    .iter_mut()
                    .zip(grad)
                    .zip(s)
                    .zip(dspatial.iter_mut().zip(x))
                {
                    *d = gr * g * s;
                    *ds += gr * x * g;
                }
                dchannel[ch] = lane_sum([grad, x, s], |[gr, x, s]| gr * x * s) as f32;
            }
        });
    [
        flex(dx, x.layout().shape()),
        flex(dchannel, &[b, c]),
        flex(dspatial, spatial.layout().shape()),
    ]
}

impl CpuCbam for Flex {
    fn cpu_plane_mean_max(x: FlexTensor) -> FlexTensor {
        plane_mean_max_forward(&x.to_contiguous()).0
    }

    fn cpu_channel_max_mean(x: FlexTensor, gate: FlexTensor) -> FlexTensor {
        channel_max_mean_forward(&x.to_contiguous(), &gate.to_contiguous()).0
    }

    fn cpu_apply_gates(x: FlexTensor, channel: FlexTensor, spatial: FlexTensor) -> FlexTensor {
        apply_gates_forward(
            &x.to_contiguous(),
            &channel.to_contiguous(),
            &spatial.to_contiguous(),
        )
    }
}

#[derive(Debug)]
struct PlaneMeanMaxBackward;

impl Backward<Flex, 1> for PlaneMeanMaxBackward {
    /// The input's shape and the position of each plane's maximum.
    type State = (Vec<usize>, Vec<u32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (shape, argmax) = ops.state;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, plane_mean_max_backward(&shape, &argmax, grad));
        }
    }
}

#[derive(Debug)]
struct ChannelMaxMeanBackward;

impl Backward<Flex, 2> for ChannelMaxMeanBackward {
    /// The input and the gate (checkpointed), and per pixel the channel of the maximum.
    type State = (NodeId, NodeId, Vec<u32>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gate] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, gate_state, argmax) = ops.state;
        let x = checkpointer
            .retrieve_node_output::<FlexTensor>(x_state)
            .to_contiguous();
        let gate = checkpointer
            .retrieve_node_output::<FlexTensor>(gate_state)
            .to_contiguous();
        let (dx, dgate) = channel_max_mean_backward(&x, &gate, &argmax, grad);
        for (node, value) in [(node_x, dx), (node_gate, dgate)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, value);
            }
        }
    }
}

#[derive(Debug)]
struct ApplyGatesBackward;

impl Backward<Flex, 3> for ApplyGatesBackward {
    /// The input and both gates (checkpointed).
    type State = [NodeId; 3];

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<Flex>(&ops.node);
        let [x, channel, spatial] = ops.state.map(|state| {
            checkpointer
                .retrieve_node_output::<FlexTensor>(state)
                .to_contiguous()
        });
        let gradients = apply_gates_backward(&x, &channel, &spatial, grad);
        for (node, value) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, value);
            }
        }
    }
}

impl<C: CheckpointStrategy> CpuCbam for Autodiff<Flex, C> {
    fn cpu_plane_mean_max(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match PlaneMeanMaxBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive().to_contiguous();
                let (out, argmax) = plane_mean_max_forward(&x);
                prep.finish((x.layout().shape().to_vec(), argmax), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(plane_mean_max_forward(&x.into_primitive().to_contiguous()).0)
            }
        }
    }

    fn cpu_channel_max_mean(x: FloatTensor<Self>, gate: FloatTensor<Self>) -> FloatTensor<Self> {
        match ChannelMaxMeanBackward
            .prepare::<C>([x.node(), gate.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let (x_state, gate_state) = (prep.checkpoint(&x), prep.checkpoint(&gate));
                let (out, argmax) = channel_max_mean_forward(
                    &x.into_primitive().to_contiguous(),
                    &gate.into_primitive().to_contiguous(),
                );
                prep.finish((x_state, gate_state, argmax), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                channel_max_mean_forward(
                    &x.into_primitive().to_contiguous(),
                    &gate.into_primitive().to_contiguous(),
                )
                .0,
            ),
        }
    }

    fn cpu_apply_gates(
        x: FloatTensor<Self>,
        channel: FloatTensor<Self>,
        spatial: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match ApplyGatesBackward
            .prepare::<C>([x.node(), channel.node(), spatial.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = [
                    prep.checkpoint(&x),
                    prep.checkpoint(&channel),
                    prep.checkpoint(&spatial),
                ];
                let out = Flex::cpu_apply_gates(
                    x.into_primitive(),
                    channel.into_primitive(),
                    spatial.into_primitive(),
                );
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::cpu_apply_gates(
                x.into_primitive(),
                channel.into_primitive(),
                spatial.into_primitive(),
            )),
        }
    }
}

/// Whether the steps of this module run for `x`: f32 on `flex`.
pub fn applies(x: &Tensor<4>) -> bool {
    is_flex(&x.device()) && x.dtype() == DType::F32
}

/// Each plane's mean and maximum, through [`CpuCbam`] (see [`applies`]).
///
/// # Shapes
/// - `x`: `[B, C, H, W]`; output `[2, B, C]`, the means first
pub fn plane_mean_max(x: Tensor<4>) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as CpuCbam>::cpu_plane_mean_max(x.into_dispatch()))
}

/// Per pixel, the maximum and the mean over channels of `x * gate`, through [`CpuCbam`].
///
/// # Shapes
/// - `x`: `[B, C, H, W]`, `gate`: `[B, C]`; output `[B, 2, H, W]`, the maxima first
pub fn channel_max_mean(x: Tensor<4>, gate: Tensor<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuCbam>::cpu_channel_max_mean(
        x.into_dispatch(),
        gate.into_dispatch(),
    ))
}

/// `x * channel * spatial` with both gates broadcast, through [`CpuCbam`].
///
/// # Shapes
/// - `x`: `[B, C, H, W]`, `channel`: `[B, C]`, `spatial`: `[B, 1, H, W]`; output as `x`
pub fn apply_gates(x: Tensor<4>, channel: Tensor<2>, spatial: Tensor<4>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuCbam>::cpu_apply_gates(
        x.into_dispatch(),
        channel.into_dispatch(),
        spatial.into_dispatch(),
    ))
}
