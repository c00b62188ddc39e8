//! The CUCN training objective: RUL's uncertainty-weighted feature mixing and the class-weighted
//! add-up cross-entropy (METHOD.md, "Training step").

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// Class-weighted cross-entropy with PyTorch's `weight=` semantics:
/// `sum_i w[y_i] * -log softmax(z_i)[y_i] / sum_i w[y_i]`.
///
/// # Shapes
/// - `logits`: `[B, K]`, `targets`: `[B]`, `class_weights`: `[K]`
/// - output: `[1]`
pub fn weighted_cross_entropy(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    class_weights: Tensor<1>,
) -> Tensor<1> {
    let [b, _] = logits.dims();
    let nll = log_softmax(logits, 1)
        .gather(1, targets.clone().reshape([b, 1]))
        .reshape([b])
        .neg();
    let w = class_weights.select(0, targets);
    (nll * w.clone()).sum() / w.sum()
}

/// RUL's relative mixing: `a_i = u_i / (u_i + u_p(i))`, `m_i = a_i mu_i + (1 - a_i) mu_p(i)`.
/// Gradients flow through `u`, which is how the uncertainty branch learns.
///
/// # Shapes
/// - `mu`: `[B, D]`, `u`: `[B]`, `perm`: `[B]` (a permutation of `0..B`)
/// - output: `[B, D]`
pub fn mix_features(mu: Tensor<2>, u: Tensor<1>, perm: Tensor<1, Int>) -> Tensor<2> {
    let [b, _] = mu.dims();
    let u_p = u.clone().select(0, perm.clone());
    let a = (u.clone() / (u + u_p)).reshape([b, 1]);
    let mu_p = mu.clone().select(0, perm);
    mu * a.clone() + mu_p * a.neg().add_scalar(1.0)
}

/// The add-up loss (eq. 2 with RUL's 0.5): `0.5 CE_w(logits, y) + 0.5 CE_w(logits, y_p)`.
///
/// # Shapes
/// - `logits`: `[B, K]`, `targets`: `[B]`, `perm`: `[B]`, `class_weights`: `[K]`
/// - output: `[1]`
pub fn add_up_loss(
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    perm: Tensor<1, Int>,
    class_weights: Tensor<1>,
) -> Tensor<1> {
    let targets_p = targets.clone().select(0, perm);
    let a = weighted_cross_entropy(logits.clone(), targets, class_weights.clone());
    let b = weighted_cross_entropy(logits, targets_p, class_weights);
    (a + b).mul_scalar(0.5)
}
