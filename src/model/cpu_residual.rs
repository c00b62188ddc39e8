//! The end of a residual block, `relu(branch + shortcut)`, as one pass on the CPU.
//!
//! As two Burn operations it is two passes forward (the sum, then the ReLU) and three backward
//! (the ReLU's mask, the masked gradient, and the sum's gradient handed to both inputs). Here the
//! forward is one pass and the backward one: the masked gradient, computed from the kept output,
//! is the gradient of both inputs (the same buffer, registered twice).
//!
//! A backend extension ([`CpuResidual`], for `Flex` and `Autodiff<Flex>`) used for f32 on `flex`;
//! [`add_relu`] falls back to Burn's operations elsewhere.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::device::is_flex;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// `relu(a + b)` for tensors of one shape.
#[backend_extension(Autodiff, Flex)]
pub trait CpuResidual: burn::backend::Backend {
    /// `max(a + b, 0)` element-wise (`a`, `b` of the same shape).
    fn cpu_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn forward(a: FlexTensor, b: FlexTensor) -> FlexTensor {
    let (a, b) = (a.to_contiguous(), b.to_contiguous());
    let shape = a.layout().shape().clone();
    assert_eq!(&shape, b.layout().shape(), "add_relu: inputs of one shape");
    let (xs, ys): (&[f32], &[f32]) = (a.storage(), b.storage());
    let mut out = vec![0f32; xs.len()];
    out.par_chunks_mut(CHUNK)
        .zip(xs.par_chunks(CHUNK).zip(ys.par_chunks(CHUNK)))
        .for_each(|(out, (xs, ys))| {
            for ((o, &x), &y) in out.iter_mut().zip(xs).zip(ys) {
                *o = (x + y).max(0.0);
            }
        });
    FlexTensor::from_data(TensorData::new(out, shape))
}

/// The gradient of both inputs: the output's where the output is positive, else zero.
fn backward(output: &FlexTensor, grad: FlexTensor) -> FlexTensor {
    let grad = grad.to_contiguous();
    let (ys, gs): (&[f32], &[f32]) = (output.storage(), grad.storage());
    let mut dx = vec![0f32; gs.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(ys.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
        .for_each(|(dx, (ys, gs))| {
            for ((d, &y), &g) in dx.iter_mut().zip(ys).zip(gs) {
                *d = if y > 0.0 { g } else { 0.0 };
            }
        });
    FlexTensor::from_data(TensorData::new(dx, output.layout().shape().clone()))
}

impl CpuResidual for Flex {
    fn cpu_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        forward(a, b)
    }
}

#[derive(Debug)]
struct AddReluBackward;

impl Backward<Flex, 2> for AddReluBackward {
    /// The output (contiguous), whose sign is the ReLU's mask.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Flex>(&ops.node);
        let dx = backward(&ops.state, grad);
        for node in ops.parents.into_iter().flatten() {
            grads.register::<Flex>(node.id, dx.clone());
        }
    }
}

impl<C: CheckpointStrategy> CpuResidual for Autodiff<Flex, C> {
    fn cpu_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match AddReluBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let out = forward(a.into_primitive(), b.into_primitive());
                prep.finish(out.clone(), out)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(forward(a.into_primitive(), b.into_primitive()))
            }
        }
    }
}

/// `relu(a + b)`, through [`CpuResidual`] for f32 on `flex`, Burn's operations elsewhere.
///
/// # Shapes
/// - `a`, `b`: the same shape; output: that shape
pub fn add_relu<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if !(is_flex(&a.device()) && a.dtype() == DType::F32 && b.dtype() == DType::F32) {
        return burn::tensor::activation::relu(a + b);
    }
    Tensor::from_dispatch(<Dispatch as CpuResidual>::cpu_add_relu(
        a.into_dispatch(),
        b.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Distribution, Tensor};

    use super::add_relu;
    use crate::model::max_abs_diff;

    #[test]
    fn equals_burns_sum_and_relu_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(4);
        let shape = [3, 5, 7, 6];
        let a = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let b = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device).require_grad();
        let upstream = Tensor::<4>::random(shape, Distribution::Default, &device);
        let ours = add_relu(a.clone(), b.clone());
        let burn = burn::tensor::activation::relu(a.clone() + b.clone());
        // One addition and a clamp, the same operations: exactly equal.
        assert_eq!(max_abs_diff(ours.clone(), burn.clone()), 0.0);
        let g1 = (ours * upstream.clone()).sum().backward();
        let g2 = (burn * upstream).sum().backward();
        for (name, t) in [("a", &a), ("b", &b)] {
            let d = max_abs_diff(t.grad(&g1).expect("grad"), t.grad(&g2).expect("grad"));
            assert_eq!(d, 0.0, "d{name}");
        }
    }
}
