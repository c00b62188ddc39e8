//! Training-mode BatchNorm on the CPU as two passes forward and two backward.
//!
//! `flex` has no BatchNorm of its own, so Burn's generic one runs: the statistics go through a
//! `swap_dims(0, 1)` and a reshape (a transposing copy of the activation), and forward and
//! backward together make about 20 passes over it. On the 32 x 64 x 56 x 56 output of `conv1`
//! at 112 px (26 MB, beyond the caches) that took ~210 ms of a ~2.6 s training step. Here the
//! forward reads the input once for the statistics and once to normalize it; the backward reads
//! it once for the two per-channel sums and once to write the input gradient. Each pass runs over
//! contiguous `[channel, pixels]` rows in parallel. Each row's sums are vectorized f32 partial sums
//! (`lanes`), and the rows of a channel are combined in f64.
//!
//! The operation is a Burn backend extension: [`CpuBatchNorm`] is implemented for `Flex` and for
//! `Autodiff<Flex>`, whose backward is the same closed form as Burn's
//! `batch_norm_train_backward`. [`batch_norm_train`] uses it where it applies (f32 on `flex`)
//! and Burn's operation elsewhere (CUDA).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use super::channel_affine::ChannelAffine;
use super::lanes::{lane_sum, lane_sums};
use crate::device::is_flex;

/// Elements per parallel work item when rows are short (the 4 x 4 maps of `layer4`).
const MIN_ELEMENTS_PER_TASK: usize = 1 << 13;

/// Rows of `pixels` values per parallel task: at least [`MIN_ELEMENTS_PER_TASK`] values.
fn rows_per_task(pixels: usize) -> usize {
    (MIN_ELEMENTS_PER_TASK / pixels.max(1)).max(1)
}

/// The output, batch mean and biased batch variance of a training-mode BatchNorm.
pub type BatchNormTrain<B> = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

/// Training-mode BatchNorm, optionally followed by a ReLU, as one backend operation.
#[backend_extension(Autodiff, Flex)]
pub trait CpuBatchNorm: burn::backend::Backend {
    /// Normalizes `x` (`[N, C, ...]`) with its own per-channel statistics, scales by `gamma`
    /// and shifts by `beta` (`[C]`), then with `relu` clamps at zero. Returns the output and the
    /// mean and biased variance (`[C]`, not differentiated).
    fn cpu_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// Inference-mode BatchNorm in PyTorch's CPU form, `x * scale + shift` per channel
    /// (`scale`, `shift`: `[C]`), then with `relu` clamped at zero: one pass over `x`.
    fn cpu_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// `[N, C, ...]` as (`N * C` rows, pixels per row, `C`).
fn rows(x: &FlexTensor) -> (usize, usize, usize) {
    let shape = x.layout().shape();
    let (n, c) = (shape[0], shape[1]);
    let numel: usize = shape.iter().product();
    (n * c, numel / (n * c).max(1), c)
}

/// Row `r` of a `[rows, pixels]` buffer.
fn row_of(values: &[f32], r: usize, pixels: usize) -> &[f32] {
    &values[r * pixels..(r + 1) * pixels]
}

fn flex_from(values: Vec<f32>, like: &FlexTensor) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, like.layout().shape().clone()))
}

fn flex_vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

/// `f(row index)` for every row, in parallel.
fn per_row<T: Send>(n_rows: usize, pixels: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    (0..n_rows)
        .into_par_iter()
        .with_min_len(rows_per_task(pixels))
        .map(&f)
        .collect()
}

/// Writes `out[row] = g(row, channel of row)` for every row, in parallel.
fn map_rows<F>(out: &mut [f32], pixels: usize, channels: usize, g: F)
where
    F: Fn(usize, usize, &mut [f32]) + Sync,
{
    out.par_chunks_mut(pixels.max(1))
        .with_min_len(rows_per_task(pixels))
        .enumerate()
        .for_each(|(row, dst)| g(row, row % channels, dst));
}

/// Per channel, the mean and biased variance of its rows, each row's given as (pixels, mean,
/// sum of squared deviations from that mean), combined in f64 in row order (Chan et al.).
fn combine_moments(rows: &[(f64, f64)], pixels: usize, channels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut moments = vec![(0.0f64, 0.0f64, 0.0f64); channels]; // (count, mean, M2)
    for (r, &(mean_b, m2_b)) in rows.iter().enumerate() {
        let (n_a, mean_a, m2_a) = moments[r % channels];
        let n_b = pixels as f64;
        let n = n_a + n_b;
        let delta = mean_b - mean_a;
        moments[r % channels] = (
            n,
            mean_a + delta * n_b / n,
            m2_a + m2_b + delta * delta * n_a * n_b / n,
        );
    }
    moments
        .into_iter()
        .map(|(n, mean, m2)| (mean, m2 / n.max(1.0)))
        .unzip()
}

fn forward(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
    relu: bool,
) -> (BatchNormTrain<Flex>, ChannelAffine) {
    let x = x.to_contiguous();
    let (gamma, beta) = (gamma.to_contiguous(), beta.to_contiguous());
    let (n_rows, pixels, channels) = rows(&x);
    let xs: &[f32] = x.storage();
    let row = |r| row_of(xs, r, pixels);
    // One read of the input for the statistics: each row's mean and squared deviations (two
    // passes over a row that stays in cache), then the rows of a channel combined.
    let row_moments = per_row(n_rows, pixels, |r| {
        let values = row(r);
        let mean = lane_sum([values], |[v]| v) / pixels.max(1) as f64;
        let m = mean as f32;
        (mean, lane_sum([values], |[v]| (v - m) * (v - m)))
    });
    let (mean, var) = combine_moments(&row_moments, pixels, channels);
    let (gs, bs): (&[f32], &[f32]) = (gamma.storage(), beta.storage());
    // y = x * scale + shift with scale = gamma / std and shift = beta - mean * scale.
    let scale: Vec<f64> = (0..channels)
        .map(|c| f64::from(gs[c]) / (var[c] + epsilon).sqrt())
        .collect();
    let shift: Vec<f32> = (0..channels)
        .map(|c| (f64::from(bs[c]) - mean[c] * scale[c]) as f32)
        .collect();
    let affine = ChannelAffine {
        scale: scale.iter().map(|&s| s as f32).collect(),
        shift,
        relu,
    };
    let mut out = vec![0f32; xs.len()];
    map_rows(&mut out, pixels, channels, |r, c, dst| {
        affine.apply(row(r), c, dst)
    });
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    (
        (
            flex_from(out, &x),
            flex_vector(to_f32(mean)),
            flex_vector(to_f32(var)),
        ),
        affine,
    )
}

/// Gradients of [`forward`] for `x`, `gamma` and `beta`: with `x̂ = (x - mean) / std`, `M`
/// values per channel and `g` the output gradient passed back through the ReLU (if any),
/// `dbeta = Σ g`, `dgamma = Σ g x̂`, `dx = gamma / std * (g - dbeta / M - x̂ dgamma / M)`.
fn backward(
    x: FlexTensor,
    gamma: FlexTensor,
    [mean, var]: [FlexTensor; 2],
    epsilon: f64,
    affine: &ChannelAffine,
    grad: FlexTensor,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, grad, gamma) = (
        x.to_contiguous(),
        grad.to_contiguous(),
        gamma.to_contiguous(),
    );
    let (mean, var) = (mean.to_contiguous(), var.to_contiguous());
    let (n_rows, pixels, channels) = rows(&x);
    let (xs, gs): (&[f32], &[f32]) = (x.storage(), grad.storage());
    let (ms, vs, gammas): (&[f32], &[f32], &[f32]) =
        (mean.storage(), var.storage(), gamma.storage());
    let count = (n_rows / channels.max(1) * pixels) as f64;
    let inv_std: Vec<f64> = vs
        .iter()
        .map(|&v| 1.0 / (f64::from(v) + epsilon).sqrt())
        .collect();
    let slice = |s, r| row_of(s, r, pixels);
    let relu = affine.relu;
    // Per row: Σ g and Σ g (x - mean), the latter scaled by 1 / std per channel below.
    let row_sums = per_row(n_rows, pixels, |r| {
        let c = r % channels;
        let (m, s, t) = (ms[c], affine.scale[c], affine.shift[c]);
        let (xr, gr) = (slice(xs, r), slice(gs, r));
        let [sum_g, sum_gx] = lane_sums([xr, gr], |[x, g]| {
            let g = ChannelAffine::pass(relu, g, x, s, t);
            [g, g * (x - m)]
        });
        (sum_g, sum_gx)
    });
    let mut sums = vec![(0.0f64, 0.0f64); channels];
    for (r, &(sum_g, sum_gx)) in row_sums.iter().enumerate() {
        let c = r % channels;
        sums[c] = (sums[c].0 + sum_g, sums[c].1 + sum_gx * inv_std[c]);
    }
    let mut dx = vec![0f32; xs.len()];
    map_rows(&mut dx, pixels, channels, |r, c, dst| {
        let (sum_g, sum_gx) = sums[c];
        let k = inv_std[c];
        let scale = (f64::from(gammas[c]) * k) as f32;
        let (mean_g, mean_gx) = ((sum_g / count) as f32, (sum_gx / count) as f32);
        let (m, k, s, t) = (ms[c], k as f32, affine.scale[c], affine.shift[c]);
        for ((d, &x), &g) in dst.iter_mut().zip(slice(xs, r)).zip(slice(gs, r)) {
            let x_hat = (x - m) * k;
            *d = scale * (ChannelAffine::pass(relu, g, x, s, t) - mean_g - x_hat * mean_gx);
        }
    });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (flex_from(dx, &x), flex_vector(dgamma), flex_vector(dbeta))
}

/// `x * scale + shift` per channel, then the ReLU if `relu` (the inference form).
fn channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor, relu: bool) -> FlexTensor {
    let x = x.to_contiguous();
    let (n_rows, pixels, channels) = rows(&x);
    let affine = ChannelAffine::from_tensors(scale, shift, relu);
    assert_eq!(affine.scale.len(), channels, "one scale per channel");
    let xs: &[f32] = x.storage();
    let mut out = vec![0f32; n_rows * pixels];
    map_rows(&mut out, pixels, channels, |r, c, dst| {
        affine.apply(row_of(xs, r, pixels), c, dst)
    });
    flex_from(out, &x)
}

impl CpuBatchNorm for Flex {
    fn cpu_channel_affine(
        x: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        relu: bool,
    ) -> FlexTensor {
        channel_affine(x, scale, shift, relu)
    }

    fn cpu_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> BatchNormTrain<Self> {
        forward(x, gamma, beta, epsilon, relu).0
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    // As Burn's own BatchNorm: the input and gamma are checkpointed, the statistics kept (and
    // the affine form, for the ReLU's mask).
    type State = (NodeId, NodeId, [FlexTensor; 2], f64, ChannelAffine);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, statistics, epsilon, affine) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FlexTensor>(gamma_state);
        let (dx, dgamma, dbeta) = backward(x, gamma, statistics, epsilon, &affine, grad);
        for (node, value) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, value);
            }
        }
    }
}

impl<C: CheckpointStrategy> CpuBatchNorm for Autodiff<Flex, C> {
    /// Inference only (`channel_affine` has no backward): the result is not tracked.
    fn cpu_channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        <Self as AutodiffBackend>::from_inner(channel_affine(
            x.into_primitive(),
            scale.into_primitive(),
            shift.into_primitive(),
            relu,
        ))
    }

    fn cpu_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> BatchNormTrain<Self> {
        let untracked = |t: FlexTensor| <Self as AutodiffBackend>::from_inner(t);
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let ((out, mean, var), affine) = forward(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                let state = (
                    x_state,
                    gamma_state,
                    [mean.clone(), var.clone()],
                    epsilon,
                    affine,
                );
                (prep.finish(state, out), untracked(mean), untracked(var))
            }
            OpsKind::UnTracked(prep) => {
                let ((out, mean, var), _) = forward(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (prep.finish(out), untracked(mean), untracked(var))
            }
        }
    }
}

/// Training-mode BatchNorm, then a ReLU if `relu`: the output and the batch mean and biased
/// variance (`[C]`, detached), as `burn::tensor::module::batch_norm_train`, through
/// [`CpuBatchNorm`] for f32 on `flex` (one pass over the activations fewer for the ReLU, forward
/// and backward).
///
/// # Shapes
/// - `x`: `[N, C, ...]`; `gamma`, `beta`: `[C]`
/// - output: as `x`; mean and variance `[C]`
pub fn batch_norm_train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    if !(is_flex(&x.device()) && x.dtype() == DType::F32) {
        let result = burn::tensor::module::batch_norm_train(x, gamma, beta, epsilon);
        let output = if relu {
            burn::tensor::activation::relu(result.output)
        } else {
            result.output
        };
        return (output, result.mean, result.variance);
    }
    let (out, mean, var) = <Dispatch as CpuBatchNorm>::cpu_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
        relu,
    );
    (
        Tensor::from_dispatch(out),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// Inference-mode BatchNorm `x * scale + shift` per channel (`scale`, `shift`: `[C]`), then a
/// ReLU if `relu`: one pass through [`CpuBatchNorm`] for f32 on `flex`, Burn's operations
/// elsewhere. For tensors that are not differentiated (inference).
///
/// # Shapes
/// - `x`: `[N, C, ...]`; output: as `x`
pub fn channel_affine_eval<const D: usize>(
    x: Tensor<D>,
    scale: Tensor<1>,
    shift: Tensor<1>,
    relu: bool,
) -> Tensor<D> {
    if !(is_flex(&x.device()) && x.dtype() == DType::F32) {
        let mut per_channel = [1; D];
        per_channel[1] = scale.dims()[0];
        let y = x * scale.reshape(per_channel) + shift.reshape(per_channel);
        return if relu {
            burn::tensor::activation::relu(y)
        } else {
            y
        };
    }
    Tensor::from_dispatch(<Dispatch as CpuBatchNorm>::cpu_channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
        relu,
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::{batch_norm_train, channel_affine_eval};
    use crate::model::max_abs_diff;

    /// f32 results of sums taken in f64 here and in f32 by Burn.
    const TOLERANCE: f32 = 1e-4;

    #[test]
    fn matches_burns_batch_norm_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(3);
        for (shape, relu) in [
            ([4, 3, 5, 6], false),
            ([2, 8, 1, 1], false),
            ([3, 2, 7, 1], false),
            ([4, 3, 5, 6], true),
            ([3, 2, 7, 1], true),
        ] {
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(0.5, 2.0), &device).require_grad();
            let gamma =
                Tensor::<1>::random([shape[1]], Distribution::Default, &device).require_grad();
            let beta =
                Tensor::<1>::random([shape[1]], Distribution::Default, &device).require_grad();
            let upstream = Tensor::<4>::random(shape, Distribution::Default, &device);
            let (ours, mean, var) =
                batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5, relu);
            let mut burn = burn::tensor::module::batch_norm_train(
                x.clone(),
                gamma.clone(),
                beta.clone(),
                1e-5,
            );
            if relu {
                burn.output = burn::tensor::activation::relu(burn.output);
            }
            assert!(
                max_abs_diff(ours.clone(), burn.output.clone()) < TOLERANCE,
                "{shape:?} output"
            );
            assert!(max_abs_diff(mean, burn.mean) < TOLERANCE, "{shape:?} mean");
            assert!(
                max_abs_diff(var, burn.variance) < TOLERANCE,
                "{shape:?} variance"
            );
            let g1 = (ours * upstream.clone()).sum().backward();
            let g2 = (burn.output * upstream).sum().backward();
            let dx = max_abs_diff(x.grad(&g1).expect("grad"), x.grad(&g2).expect("grad"));
            assert!(dx < TOLERANCE, "{shape:?} dx: {dx}");
            for (name, t) in [("gamma", gamma), ("beta", beta)] {
                let d = max_abs_diff(t.grad(&g1).expect("grad"), t.grad(&g2).expect("grad"));
                assert!(d < TOLERANCE, "{shape:?} d{name}: {d}");
            }
        }
    }

    #[test]
    fn inference_form_equals_burns_operations() {
        let device = Device::default();
        device.seed(5);
        let x = Tensor::<4>::random([3, 4, 5, 2], Distribution::Normal(0.0, 2.0), &device);
        let scale = Tensor::<1>::random([4], Distribution::Normal(0.0, 1.0), &device);
        let shift = Tensor::<1>::random([4], Distribution::Normal(0.0, 1.0), &device);
        for relu in [false, true] {
            let ours = channel_affine_eval(x.clone(), scale.clone(), shift.clone(), relu);
            let mut burn = x.clone() * scale.clone().reshape([1, 4, 1, 1])
                + shift.clone().reshape([1, 4, 1, 1]);
            if relu {
                burn = burn::tensor::activation::relu(burn);
            }
            assert!(max_abs_diff(ours, burn) < TOLERANCE, "relu {relu}");
        }
    }
}
