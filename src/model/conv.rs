//! The backbone's convolutions as one matrix product over the whole batch, where Burn's CPU
//! backend would run one thin product per image.
//!
//! `flex` computes a convolution as, for every image and every tile of up to 512 output pixels,
//! `weight [C_out, C_in k k] x columns [C_in k k, pixels]`. Deep in a ResNet the feature maps are
//! small (2 x 2 pixels in `layer4` at 64 px input), so each product is a few columns wide and the
//! whole weight matrix (9.4 MB for a 512-channel 3x3 convolution) is streamed from memory once per
//! image: there the time goes to memory traffic and thin-matrix kernels. Gathering the columns of
//! all images first (`im2col` from strided slices) makes it one product per convolution; autodiff
//! then also computes the weight gradient as one product instead of a convolution with the output
//! gradient as its kernel. The result is the same convolution (same weights, same parameter names;
//! only the order of the floating-point sums differs).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{Slice, Tensor};

use super::cpu_conv;

/// Output pixels per image below which the batched product is used: the 4 x 4 and 2 x 2 maps of
/// `layer3`/`layer4`, and 7 x 7 at 112 px. Measured per 3x3 convolution (batch 32, fwd+bwd / eval):
/// at 4 x 4 the product is 1.4x / 1.3x faster than `flex`, at 7 x 7 about even, at 8 x 8 and
/// 14 x 14 `flex` is faster (1.3x / 2x and 1.2x / 3.5x: the gather costs more than the thin
/// products). In the whole network a limit of 50 beat 200 (`cucn bench`, two runs each): 112 px
/// training 12.6/12.8 -> 15.3/13.2 img/s, inference 46.4/46.5 -> 52.4/47.3, 64 px inference
/// 108.9/106.2 -> 126.6/118.1, 64 px training even; and 20 was no better than 50.
pub const BATCHED_BELOW_PIXELS: usize = 50;

/// `conv.forward(x)` for a bias-free, ungrouped, undilated convolution with symmetric explicit
/// padding (every convolution of the network), computed as one matrix product when the output
/// maps are small (see the module documentation); otherwise Burn's own convolution, with cucn's
/// weight gradient on the CPU ([`cpu_conv`]).
///
/// # Shapes
/// - `x`: `[N, C_in, H, W]`; output `[N, C_out, H_out, W_out]`
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let [cout, cin, kh, kw] = conv.weight.dims();
    let padding = match &conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == bottom && left == right && conv.bias.is_none() && conv.groups == 1 =>
        {
            [*top, *left]
        }
        _ => return conv.forward(x),
    };
    if conv.dilation != [1, 1] {
        return conv.forward(x);
    }
    let [n, _, h, w] = x.dims();
    let [sh, sw] = conv.stride;
    let ho = (h + 2 * padding[0] - kh) / sh + 1;
    let wo = (w + 2 * padding[1] - kw) / sw + 1;
    if ho * wo >= BATCHED_BELOW_PIXELS {
        return if cpu_conv::applies(&x, [kh, kw], conv.stride, padding) {
            cpu_conv::conv2d_cpu(x, conv.weight.val(), conv.stride[0], padding[0])
        } else {
            conv.forward(x)
        };
    }
    let x = if padding != [0, 0] {
        x.pad(
            [(padding[0], padding[0]), (padding[1], padding[1])],
            burn::tensor::ops::PadMode::Constant(0.0),
        )
    } else {
        x
    };
    // One strided view per kernel offset: [N, C_in, H_out, W_out] each.
    let window = |offset: usize, stride: usize, len: usize| {
        Slice::new(
            offset as isize,
            Some((offset + stride * (len - 1) + 1) as isize),
            stride as isize,
        )
    };
    let taps: Vec<Tensor<4>> = (0..kh)
        .flat_map(|i| (0..kw).map(move |j| (i, j)))
        .map(|(i, j)| {
            x.clone().slice([
                Slice::full(),
                Slice::full(),
                window(i, sh, ho),
                window(j, sw, wo),
            ])
        })
        .collect();
    // [N, C_in, k*k, H_out, W_out] -> [C_in k k, N H_out W_out], rows in the weight's order.
    let columns = if taps.len() == 1 {
        taps.into_iter()
            .next()
            .expect("one tap")
            .swap_dims(0, 1)
            .reshape([cin, n * ho * wo])
    } else {
        Tensor::<4>::stack::<5>(taps, 2)
            .permute([1, 2, 0, 3, 4])
            .reshape([cin * kh * kw, n * ho * wo])
    };
    let weight = conv.weight.val().reshape([cout, cin * kh * kw]);
    weight
        .matmul(columns)
        .reshape([cout, n, ho, wo])
        .swap_dims(0, 1)
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::{Device, Distribution, Tensor};

    use super::conv2d;
    use crate::model::max_abs_diff;

    /// f32 sums taken in another order: a few ulps of the largest terms.
    const TOLERANCE: f32 = 1e-4;

    #[test]
    fn both_cpu_paths_are_the_same_convolution_forward_and_backward() {
        let device = Device::default().autodiff();
        device.seed(7);
        // (kernel, stride, padding, input side): 3x3 plain and strided, the 1x1 projection.
        for (k, s, p, side) in [
            (3, 1, 1, 6),
            (3, 2, 1, 7),
            (1, 2, 0, 8),
            (1, 1, 0, 5),
            // Outputs of 50 pixels or more: `flex`'s forward with cucn's weight gradient.
            (3, 1, 1, 9),
            (3, 2, 1, 17),
            (7, 2, 3, 19),
            (1, 2, 0, 16),
        ] {
            let conv = Conv2dConfig::new([5, 4], [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .init(&device);
            let x = Tensor::<4>::random([3, 5, side, side], Distribution::Default, &device)
                .require_grad();
            let ours = conv2d(&conv, x.clone());
            let burn = conv.forward(x.clone());
            assert_eq!(ours.dims(), burn.dims());
            assert!(max_abs_diff(ours.clone(), burn.clone()) < TOLERANCE);
            // Same gradients for the input and the weight under a non-uniform upstream gradient.
            let upstream = Tensor::<4>::random(ours.dims(), Distribution::Default, &device);
            let g1 = (ours * upstream.clone()).sum().backward();
            let g2 = (burn * upstream).sum().backward();
            let dx = |g: &burn::tensor::Gradients| x.grad(g).expect("x grad");
            let dw = |g: &burn::tensor::Gradients| conv.weight.val().grad(g).expect("w grad");
            assert!(max_abs_diff(dx(&g1), dx(&g2)) < TOLERANCE, "dx k{k} s{s}");
            assert!(max_abs_diff(dw(&g1), dw(&g2)) < TOLERANCE, "dw k{k} s{s}");
        }
    }
}
