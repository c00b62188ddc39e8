//! A 2-D convolution with small output maps as one matrix product over the whole batch.
//!
//! Deep in a ResNet the maps are small (4 x 4 pixels in `layer4` at 112 px input): per image, a
//! product is a few columns wide and the whole weight matrix (9.4 MB for a 512-channel 3x3
//! convolution) is streamed from memory once per image. Here the im2col columns of all images are
//! gathered first, `columns [C_in k k, N H_out W_out]`, so that the forward pass is one product
//! `W [C_out, C_in k k] x columns`, and the backward pass two: `dW = dY x columnsᵀ` and
//! `dcolumns = Wᵀ x dY`, whose columns are added back into the input gradient (col2im). `gemm`
//! splits each product over blocks of its output, never over the inner dimension, so results do not
//! depend on the number of threads.

use rayon::prelude::*;

use super::channel_affine::ChannelAffine;
use super::shifted_conv::Geometry;
use super::strided_gemm::{self, Strides};

/// Rows of the columns matrix: one per input channel and kernel offset, in the weight's order.
fn rows(g: &Geometry) -> usize {
    g.cin * g.k * g.k
}

/// Output pixels of the whole batch: the columns.
fn pixels(g: &Geometry) -> usize {
    g.n * g.ho * g.wo
}

/// For kernel column offset `j`: the output columns `ow` whose input column lies inside the
/// image, as `first..last`.
fn valid_columns(g: &Geometry, j: usize) -> (usize, usize) {
    let first = g.padding.saturating_sub(j).div_ceil(g.stride);
    // Kernels wider than the padded image reach past it entirely for large `j`.
    let last = (g.w + g.padding)
        .saturating_sub(j)
        .div_ceil(g.stride)
        .min(g.wo);
    (first, last.max(first))
}

/// The input row under output row `oh` for kernel row offset `i`, if inside the image.
fn input_row(g: &Geometry, oh: usize, i: usize) -> Option<usize> {
    (oh * g.stride + i)
        .checked_sub(g.padding)
        .filter(|&ih| ih < g.h)
}

/// Writes into `dst` (`rows wo` values, zero-filled) the input of one `plane` (`[h, w]`) under
/// kernel offset `(i, j)` for output rows `first..first + rows`: one row of a columns matrix,
/// or a part of one. The padding's places are left at zero.
pub(super) fn gather(
    plane: &[f32],
    g: &Geometry,
    [i, j]: [usize; 2],
    first: usize,
    dst: &mut [f32],
) {
    let (start, end) = valid_columns(g, j);
    for (r, out) in dst.chunks_mut(g.wo).enumerate() {
        let Some(ih) = input_row(g, first + r, i) else {
            continue;
        };
        let src = &plane[ih * g.w..][..g.w];
        for ow in start..end {
            out[ow] = src[ow * g.stride + j - g.padding];
        }
    }
}

/// The columns of `x` (`[n, cin, h, w]`): row `(c, i, j)` holds, for every output pixel of every
/// image, the input value under kernel offset `(i, j)` of channel `c` (zero in the padding).
fn columns(x: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k, pixels(g));
    let mut cols = vec![0f32; rows(g) * pixels];
    cols.par_chunks_mut(pixels)
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, i, j) = (row / (k * k), (row / k) % k, row % k);
            for (b, image_dst) in dst.chunks_mut(g.ho * g.wo).enumerate() {
                let plane = &x[(b * g.cin + c) * g.h * g.w..][..g.h * g.w];
                gather(plane, g, [i, j], 0, image_dst);
            }
        });
    cols
}

/// `dst [m, n] = lhs [m, k] x rhs [k, n]` (`dst` row-major, the factors with the given
/// (row, column) strides), in parallel over blocks of `dst`.
fn product(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    lhs: &[f32],
    [lhs_rs, lhs_cs]: [usize; 2],
    rhs: &[f32],
    [rhs_rs, rhs_cs]: [usize; 2],
) {
    assert_eq!(dst.len(), m * n, "product output length");
    strided_gemm::product(
        [m, n, k],
        dst,
        Strides::row_major(n),
        false,
        lhs,
        Strides {
            rows: lhs_rs,
            cols: lhs_cs,
        },
        rhs,
        Strides {
            rows: rhs_rs,
            cols: rhs_cs,
        },
        gemm::Parallelism::Rayon(0),
    );
}

/// `[a, b, p]` -> `[b, a, p]`: the batch and channel axes swapped, `p` values kept together,
/// with `epilogue` applied per index along `a` when given.
fn swap_outer(values: &[f32], [a, b, p]: [usize; 3], epilogue: Option<&ChannelAffine>) -> Vec<f32> {
    let mut out = vec![0f32; values.len()];
    out.par_chunks_mut(p).enumerate().for_each(|(ba, dst)| {
        let (bi, ai) = (ba / a, ba % a);
        let src = &values[(ai * b + bi) * p..][..p];
        match epilogue {
            Some(affine) => affine.apply(src, ai, dst),
            None => dst.copy_from_slice(src),
        }
    });
    out
}

/// The convolution of `x` (`[n, cin, h, w]`) with `weight` (`[cout, cin, k, k]`):
/// `[n, cout, ho, wo]`, with `epilogue` applied per output channel when given.
pub fn forward(
    x: &[f32],
    weight: &[f32],
    g: &Geometry,
    epilogue: Option<&ChannelAffine>,
) -> Vec<f32> {
    let (r, p) = (rows(g), pixels(g));
    let cols = columns(x, g);
    let mut out = vec![0f32; g.cout * p];
    product([g.cout, p, r], &mut out, weight, [r, 1], &cols, [p, 1]);
    // [cout, n, ho wo] -> [n, cout, ho wo].
    swap_outer(&out, [g.cout, g.n, g.ho * g.wo], epilogue)
}

/// The input and weight gradients of the convolution from the output gradient `dy`
/// (`[n, cout, ho, wo]`); the input gradient only when `input_grad`.
pub fn backward(
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    g: &Geometry,
    input_grad: bool,
) -> (Option<Vec<f32>>, Vec<f32>) {
    let (r, p) = (rows(g), pixels(g));
    let cols = columns(x, g);
    // [n, cout, ho wo] -> [cout, n, ho wo].
    let dy = swap_outer(dy, [g.n, g.cout, g.ho * g.wo], None);
    let mut dw = vec![0f32; g.cout * r];
    product([g.cout, r, p], &mut dw, &dy, [p, 1], &cols, [1, p]);
    if !input_grad {
        return (None, dw);
    }
    let mut dcols = cols;
    product([r, p, g.cout], &mut dcols, weight, [1, r], &dy, [p, 1]);
    (Some(col2im(&dcols, g)), dw)
}

/// The input gradient `[n, cin, h, w]` from the gradient of the columns: each column value added
/// back where [`columns`] took it from, one input plane per task, offsets in a fixed order.
fn col2im(dcols: &[f32], g: &Geometry) -> Vec<f32> {
    let (k, pixels) = (g.k, pixels(g));
    let mut dx = vec![0f32; g.n * g.cin * g.h * g.w];
    dx.par_chunks_mut(g.h * g.w)
        .enumerate()
        .for_each(|(plane_index, plane)| {
            let (b, c) = (plane_index / g.cin, plane_index % g.cin);
            for i in 0..k {
                for j in 0..k {
                    let row = &dcols[((c * k + i) * k + j) * pixels..][..pixels];
                    let (first, last) = valid_columns(g, j);
                    for oh in 0..g.ho {
                        let Some(ih) = input_row(g, oh, i) else {
                            continue;
                        };
                        let src = &row[(b * g.ho + oh) * g.wo..][..g.wo];
                        let dst = &mut plane[ih * g.w..][..g.w];
                        for ow in first..last {
                            dst[ow * g.stride + j - g.padding] += src[ow];
                        }
                    }
                }
            }
        });
    dx
}
