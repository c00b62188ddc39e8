//! The backbone's convolutions: on the CPU (`flex`, f32) cucn's own kernels ([`cpu_conv`]),
//! elsewhere Burn's convolution.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use super::cpu_conv;
use super::norm::TorchBatchNorm;

/// `conv.forward(x)`, through [`cpu_conv`] where it applies: a bias-free, ungrouped, undilated
/// convolution with square kernel and stride and symmetric explicit padding (every convolution of
/// the network) on the CPU. The result is the same convolution (same weights, same parameter
/// names; only the order of the floating-point sums differs).
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; output `[N, C_out, H_out, W_out]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match cpu_stride_padding(conv, &x) {
        Some([stride, padding]) => cpu_conv::conv2d_cpu(x, conv.weight.val(), stride, padding),
        None => conv.forward(x),
    }
}

/// `[stride, padding]` when [`cpu_conv`] computes `conv` on `x`.
fn cpu_stride_padding(conv: &Conv2d, x: &Tensor<4>) -> Option<[usize; 2]> {
    let [_, _, kh, kw] = conv.weight.dims();
    match &conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == bottom
                && left == right
                && conv.bias.is_none()
                && conv.groups == 1
                && conv.dilation == [1, 1]
                && cpu_conv::applies(x, [kh, kw], conv.stride, [*top, *left]) =>
        {
            Some([conv.stride[0], *top])
        }
        _ => None,
    }
}

/// `bn(conv(x))`, then a ReLU if `relu`. At inference on the CPU the BatchNorm (and ReLU) is
/// applied by the convolution as it writes its output, saving a pass over the activations.
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; output `[N, C_out, H_out, W_out]`
pub fn conv2d_bn(conv: &Conv2d, bn: &TorchBatchNorm, x: Tensor<4>, relu: bool) -> Tensor<4> {
    if let Some(stride_padding) = cpu_stride_padding(conv, &x)
        && let Some(affine) = bn.inference_affine(&x.device())
    {
        return cpu_conv::conv2d_affine_cpu(x, conv.weight.val(), stride_padding, affine, relu);
    }
    let y = conv2d(conv, x);
    if relu {
        bn.forward_relu(y)
    } else {
        bn.forward(y)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{Param, RunningState};
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::{conv2d, conv2d_bn};
    use crate::model::max_abs_diff;
    use crate::model::norm::TorchBatchNormConfig;

    /// f32 sums taken in another order: a few ulps of the largest terms, relative to the
    /// result's magnitude where that exceeds 1 (a weight gradient sums every pixel of the batch:
    /// ~270 for 3 images of 19 x 19, whose ulp is 3e-5).
    const TOLERANCE: f32 = 1e-4;

    /// The largest difference between `ours` and `reference`, over [`TOLERANCE`] scaled by the
    /// reference's largest magnitude (at least 1): below 1 when they agree.
    fn scaled_difference<const D: usize>(ours: Tensor<D>, reference: Tensor<D>) -> f32 {
        let scale = reference.clone().abs().max().into_scalar::<f32>().max(1.0);
        max_abs_diff(ours, reference) / (TOLERANCE * scale)
    }

    /// (kernel, stride, padding, input side, batch): 3x3 plain and strided, the 1x1 projection,
    /// the stem's 7x7. Outputs below 50 pixels: one product over the batch (`im2col_conv`), or
    /// for size-keeping 3x3 kernels over 64 tiles in the batch (4 images of 7 x 7), Winograd's
    /// over the batch (`winograd_batch`).
    const SHAPES: [(usize, usize, usize, usize, usize); 14] = [
        (3, 1, 1, 6, 3),
        (3, 2, 1, 7, 3),
        (1, 2, 0, 8, 3),
        (1, 1, 0, 5, 3),
        (3, 1, 1, 7, 4),
        // Outputs of 50 pixels or more: shifted products (`shifted_conv`), and for size-keeping
        // 3x3 kernels over `winograd::MIN_PIXELS` output pixels in the batch (3 images of
        // 19 x 19), Winograd's (`winograd`).
        (3, 1, 1, 9, 3),
        (3, 1, 1, 19, 3),
        (3, 2, 1, 17, 3),
        (7, 2, 3, 19, 3),
        // CBAM's 7x7 spatial convolution, both paths, and on a map narrower than its reach.
        (7, 1, 3, 9, 3),
        (7, 1, 3, 5, 3),
        (7, 1, 3, 2, 3),
        // A kernel wider than the image (a tiny input to the stem).
        (7, 2, 3, 2, 3),
        (1, 2, 0, 16, 3),
    ];

    // The batch of 4 on 7 x 7 maps (16 tiles each) reaches `winograd_batch`'s threshold, and 3
    // images of 19 x 19 `winograd`'s.
    const _: () = assert!(4 * 16 >= crate::model::winograd_batch::MIN_COLUMNS);
    const _: () = assert!(3 * 19 * 19 >= crate::model::winograd::MIN_PIXELS);

    /// Input channels: few and many (see `tiled_im2col::suits`; the convolutions have 16 output
    /// channels), so that the large maps of [`SHAPES`] go through both of their methods.
    const INPUT_CHANNELS: [usize; 2] = [3, 9];

    /// Every shape of [`SHAPES`] with every count of [`INPUT_CHANNELS`].
    fn cases() -> impl Iterator<Item = ((usize, usize, usize, usize, usize), usize)> {
        SHAPES
            .into_iter()
            .flat_map(|shape| INPUT_CHANNELS.map(|cin| (shape, cin)))
    }

    fn conv(cin: usize, [k, s, p]: [usize; 3], device: &Device) -> burn::nn::conv::Conv2d {
        Conv2dConfig::new([cin, 16], [k, k])
            .with_stride([s, s])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(device)
    }

    #[test]
    fn cucns_convolution_equals_burns_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(7);
        for ((k, s, p, side, batch), cin) in cases() {
            let conv = conv(cin, [k, s, p], &device);
            let x = Tensor::<4>::random([batch, cin, side, side], Distribution::Default, &device)
                .require_grad();
            let ours = conv2d(&conv, x.clone());
            let burn = conv.forward(x.clone());
            assert_eq!(ours.dims(), burn.dims());
            let d = scaled_difference(ours.clone(), burn.clone());
            assert!(d < 1.0, "k{k} s{s} side {side} cin {cin}: {d}");
            // Same gradients for the input and the weight under a non-uniform upstream gradient.
            let upstream = Tensor::<4>::random(ours.dims(), Distribution::Default, &device);
            let g1 = (ours * upstream.clone()).sum().backward();
            let g2 = (burn * upstream).sum().backward();
            let dx = |g: &burn::tensor::Gradients| x.grad(g).expect("x grad");
            let dw = |g: &burn::tensor::Gradients| conv.weight.val().grad(g).expect("w grad");
            let d = scaled_difference(dx(&g1), dx(&g2));
            assert!(d < 1.0, "dx k{k} s{s} side {side} cin {cin}: {d}");
            let d = scaled_difference(dw(&g1), dw(&g2));
            assert!(d < 1.0, "dw k{k} s{s} side {side} cin {cin}: {d}");
        }
    }

    #[test]
    fn inference_convolution_with_batch_norm_equals_the_two_layers() {
        let device = Device::default();
        device.seed(9);
        let random = |n| Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        let mut bn = TorchBatchNormConfig::new(16).init(&device);
        bn.weight = Some(Param::from_tensor(random(16)));
        bn.bias = Some(Param::from_tensor(random(16)));
        bn.running_mean = RunningState::new(random(16));
        bn.running_var = RunningState::new(random(16).abs().add_scalar(0.1));
        for ((k, s, p, side, batch), cin) in cases() {
            let conv = conv(cin, [k, s, p], &device);
            let x = Tensor::<4>::random([batch, cin, side, side], Distribution::Default, &device);
            for relu in [false, true] {
                let ours = conv2d_bn(&conv, &bn, x.clone(), relu);
                let mut burn = bn.forward(conv.forward(x.clone()));
                if relu {
                    burn = burn::tensor::activation::relu(burn);
                }
                let d = max_abs_diff(ours, burn);
                assert!(
                    d < TOLERANCE,
                    "k{k} s{s} side {side} cin {cin} relu {relu}: {d}"
                );
            }
        }
    }
}
