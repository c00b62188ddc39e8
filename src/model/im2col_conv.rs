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
    if keeps_size(g) {
        gather_same_size(plane, g, [i, j], first, dst);
    } else {
        gather_rows(plane, g, [i, j], first, dst);
    }
}

/// [`gather`] one output row at a time: any stride and padding.
fn gather_rows(plane: &[f32], g: &Geometry, [i, j]: [usize; 2], first: usize, dst: &mut [f32]) {
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

/// Whether the convolution has stride 1 and an output of the input's size
/// (`padding = (k - 1) / 2`), as every 3x3 convolution inside a ResNet stage.
fn keeps_size(g: &Geometry) -> bool {
    g.stride == 1 && g.ho == g.h && g.wo == g.w
}

/// [`gather`] for a convolution that [`keeps_size`]: output pixel `q` (row-major) reads input
/// pixel `q + (i - p) w + (j - p)`, so all its valid rows are one contiguous copy instead of one
/// short copy per row ([`gather_rows`]: rows of 4 or 7 values in `layer3`/`layer4` at 112 px, where
/// the per-row work dominated; the columns of a 256-channel 3x3 on 7 x 7 maps at batch 32:
/// 3.6-4.7 -> 3.2-3.3 ms). The values that wrap in from the neighbouring row at the left or right
/// edge are padding and are zeroed after.
fn gather_same_size(
    plane: &[f32],
    g: &Geometry,
    [i, j]: [usize; 2],
    first: usize,
    dst: &mut [f32],
) {
    let w = g.w;
    let rows = dst.len() / w;
    let (start, end, offset) = same_size_run(g, [i, j], first, rows);
    if start >= end {
        return;
    }
    let local = |q: isize| q as usize - first * w;
    let source = |q: isize| (q + offset) as usize;
    dst[local(start)..local(end)].copy_from_slice(&plane[source(start)..source(end)]);
    let wrapped = wrapped_columns(g, j);
    let lo = (start as usize / w).max(first);
    let hi = (end as usize).div_ceil(w);
    for row in dst[(lo - first) * w..(hi - first) * w].chunks_mut(w) {
        row[wrapped.clone()].fill(0.0);
    }
}

/// For kernel offset `(i, j)` of a convolution that [`keeps_size`] and output rows
/// `first..first + rows`: the output pixels (row-major over the whole map) `start..end` whose
/// input pixel, `q + offset`, lies inside the plane. Within that run, the [`wrapped_columns`] of
/// each row read the neighbouring row and belong to the padding.
fn same_size_run(
    g: &Geometry,
    [i, j]: [usize; 2],
    first: usize,
    rows: usize,
) -> (isize, isize, isize) {
    let (w, p) = (g.w, g.padding);
    let signed = |v: usize| v as isize;
    // Output rows whose input row `oh + i - p` lies inside the image.
    let lo = p.saturating_sub(i).max(first);
    let hi = (g.h + p).saturating_sub(i).min(first + rows);
    let offset = (signed(i) - signed(p)) * signed(w) + signed(j) - signed(p);
    let start = signed(lo * w).max(-offset);
    let end = signed(hi * w).min(signed(g.h * w) - offset);
    (start, end, offset)
}

/// The output columns whose input column, for kernel column offset `j`, lies in the padding.
fn wrapped_columns(g: &Geometry, j: usize) -> std::ops::Range<usize> {
    let (w, p) = (g.w, g.padding);
    if j < p {
        0..(p - j).min(w)
    } else {
        (w + p).saturating_sub(j)..w
    }
}

/// Zeroes, in the gradient of the columns of a convolution that [`keeps_size`], the values of the
/// [`wrapped_columns`]: they belong to the padding, and [`add_back`] adds whole runs.
fn clear_wrapped(dcols: &mut [f32], g: &Geometry) {
    let (k, w) = (g.k, g.w);
    dcols
        .par_chunks_mut(pixels(g))
        .enumerate()
        .for_each(|(row, values)| {
            let wrapped = wrapped_columns(g, row % k);
            if wrapped.is_empty() {
                return;
            }
            for image_row in values.chunks_mut(w) {
                image_row[wrapped.clone()].fill(0.0);
            }
        });
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
pub(super) fn swap_outer(
    values: &[f32],
    [a, b, p]: [usize; 3],
    epilogue: Option<&ChannelAffine>,
) -> Vec<f32> {
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
    (Some(col2im(dcols, g)), dw)
}

/// The input gradient `[n, cin, h, w]` from the gradient of the columns: each column value added
/// back where [`columns`] took it from, offsets in a fixed order. One input channel per task, its
/// images in turn, so that the task reads each of its `k k` rows of `dcols` front to back (tasks
/// per image jumped between rows); the result is then put back in image-major order. With the
/// contiguous runs of [`add_back`], a 256-channel 3x3 on 7 x 7 maps at batch 32 went from
/// 6.2-6.6 to 3.0 ms; the order alone, on a stride-2 convolution, 2.7-3.3 -> 2.1-2.6 ms.
fn col2im(mut dcols: Vec<f32>, g: &Geometry) -> Vec<f32> {
    let (k, pixels, plane) = (g.k, pixels(g), g.h * g.w);
    if keeps_size(g) {
        clear_wrapped(&mut dcols, g);
    }
    let mut by_channel = vec![0f32; g.cin * g.n * plane];
    by_channel
        .par_chunks_mut(g.n * plane)
        .enumerate()
        .for_each(|(c, planes)| {
            for (b, dst) in planes.chunks_mut(plane).enumerate() {
                for i in 0..k {
                    for j in 0..k {
                        let row = &dcols[((c * k + i) * k + j) * pixels..][..pixels];
                        let src = &row[b * g.ho * g.wo..][..g.ho * g.wo];
                        add_back(src, g, [i, j], dst);
                    }
                }
            }
        });
    // [cin, n, h w] -> [n, cin, h w].
    swap_outer(&by_channel, [g.cin, g.n, plane], None)
}

/// Adds one image's gradient of the columns row for kernel offset `(i, j)` (`src`, `[ho, wo]`)
/// into that image's input plane (`dst`, `[h, w]`): the reverse of [`gather`].
fn add_back(src: &[f32], g: &Geometry, [i, j]: [usize; 2], dst: &mut [f32]) {
    if keeps_size(g) {
        // As in `gather_same_size`, the valid part is one contiguous run at a fixed offset; the
        // values that would wrap into the neighbouring row are zero (`clear_wrapped`).
        let (start, end, offset) = same_size_run(g, [i, j], 0, g.ho);
        if start < end {
            let target = |q: isize| (q + offset) as usize;
            let dst = &mut dst[target(start)..target(end)];
            for (d, s) in dst.iter_mut().zip(&src[start as usize..end as usize]) {
                *d += s;
            }
        }
        return;
    }
    let (first, last) = valid_columns(g, j);
    for oh in 0..g.ho {
        let Some(ih) = input_row(g, oh, i) else {
            continue;
        };
        let src = &src[oh * g.wo..][..g.wo];
        let dst = &mut dst[ih * g.w..][..g.w];
        for ow in first..last {
            dst[ow * g.stride + j - g.padding] += src[ow];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Geometry, gather_rows, gather_same_size, keeps_size};

    /// The contiguous gather equals the row-by-row one for every kernel offset and every band of
    /// output rows (the per-tile columns of `tiled_im2col` start at any row), on maps wider and
    /// narrower than the kernel's reach.
    #[test]
    fn size_keeping_gather_equals_the_row_by_row_one() {
        // ([h, w], kernel, padding)
        for ([h, w], k, p) in [
            ([5, 6], 3, 1),
            ([6, 5], 5, 2),
            ([2, 3], 7, 3),
            ([4, 4], 1, 0),
        ] {
            let g = Geometry::new([1, 1, h, w], 1, k, 1, p);
            assert!(keeps_size(&g));
            let plane: Vec<f32> = (1..=h * w).map(|v| v as f32).collect();
            for (i, j) in (0..k).flat_map(|i| (0..k).map(move |j| (i, j))) {
                for first in 0..h {
                    for rows in 1..=h - first {
                        let mut fast = vec![0f32; rows * w];
                        let mut reference = vec![0f32; rows * w];
                        gather_same_size(&plane, &g, [i, j], first, &mut fast);
                        gather_rows(&plane, &g, [i, j], first, &mut reference);
                        assert_eq!(
                            fast, reference,
                            "{h}x{w} k{k} offset ({i}, {j}) rows {first}+{rows}"
                        );
                    }
                }
            }
        }
    }
}
