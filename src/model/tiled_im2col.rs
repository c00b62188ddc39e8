//! A 2-D convolution with few input channels (the stem's 3, CBAM's 2) as one matrix product per
//! tile of output rows, over im2col columns gathered for that tile only.
//!
//! Shifted products ([`super::shifted_conv`]) are `k k` products `[C_out, C_in] x [C_in, pixels]`:
//! with 3 input channels each is 3 deep, and `gemm` spends its time packing and storing rather
//! than multiplying (`conv1`, 49 of them per tile). Here a tile's columns
//! `[C_in k k, pixels]` (147 x ~512 values for `conv1`, in cache) are gathered first and the tile
//! is one product `W [C_out, C_in k k] x columns`, 147 deep. The whole batch's columns at once
//! (as [`super::im2col_conv`] does for small maps) would be 59 MB for `conv1` at 112 px and
//! measured slower than the shifted products; per tile they stay in the core's cache.
//!
//! The weight gradient is `dY_tile [C_out, pixels] x columnsᵀ` summed over tiles and images, the
//! images in fixed shares ([`sum_over_images`]: the result does not depend on the thread count).

use super::channel_affine::ChannelAffine;
use super::im2col_conv::gather;
use super::shifted_conv::{self, Geometry, TILE_PIXELS, assemble, sum_over_images};
use super::strided_gemm::{Strides, product};

/// Whether this module's products suit a convolution over large maps: few input channels (below
/// 8: shifted products would be that shallow), and enough output channels (16 or more) to repay
/// gathering the columns. `conv1` (3 -> 64): forward 54 -> 22 ms, weight gradient 36 -> 22 ms at
/// 112 px, batch 32; CBAM's 2 -> 1 spatial convolution: slower (0.6 -> 2.1 ms), so not here.
pub fn suits(g: &Geometry) -> bool {
    g.cin < 8 && g.cout >= 16
}

/// Output rows per tile.
fn rows_per_tile(g: &Geometry) -> usize {
    (TILE_PIXELS / g.wo).clamp(1, g.ho)
}

/// The columns `[cin k k, rows wo]` of output rows `first..first + rows` of one image
/// (`[cin, h, w]`): row `(c, i, j)` holds the input under kernel offset `(i, j)` of channel `c`
/// for each of those output pixels, zero in the padding.
fn columns(image: &[f32], g: &Geometry, first: usize, rows: usize) -> Vec<f32> {
    let (k, pixels) = (g.k, rows * g.wo);
    let mut cols = vec![0f32; g.cin * k * k * pixels];
    for (row, dst) in cols.chunks_mut(pixels).enumerate() {
        let (c, i, j) = (row / (k * k), (row / k) % k, row % k);
        gather(&image[c * g.h * g.w..][..g.h * g.w], g, [i, j], first, dst);
    }
    cols
}

/// The convolution of `x` (`[n, cin, h, w]`) with `weight` (`[cout, cin, k, k]`):
/// `[n, cout, ho, wo]`, with `epilogue` applied per output channel when given.
pub fn forward(
    x: &[f32],
    weight: &[f32],
    g: &Geometry,
    epilogue: Option<&ChannelAffine>,
) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.cin * g.h * g.w, "input length");
    let depth = g.cin * g.k * g.k;
    assert_eq!(weight.len(), g.cout * depth, "kernel length");
    let rows_per_tile = shifted_conv::rows_per_tile(g, g.wo);
    assemble(g, g.wo, rows_per_tile, epilogue, |b, first, rows| {
        let image = &x[b * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
        let cols = columns(image, g, first, rows);
        let pixels = rows * g.wo;
        let mut out = vec![0f32; g.cout * pixels];
        product(
            [g.cout, pixels, depth],
            &mut out,
            Strides::row_major(pixels),
            false,
            weight,
            Strides::row_major(depth),
            &cols,
            Strides::row_major(pixels),
            gemm::Parallelism::None,
        );
        out
    })
}

/// The weight gradient `[cout, cin, k, k]` of the convolution of `x` (`[n, cin, h, w]`) given
/// the output gradient `dy` (`[n, cout, ho, wo]`).
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.cin * g.h * g.w, "input length");
    let out_plane = g.ho * g.wo;
    assert_eq!(dy.len(), g.n * g.cout * out_plane, "output gradient length");
    let depth = g.cin * g.k * g.k;
    let per_tile = rows_per_tile(g);
    sum_over_images(g.n, g.cout * depth, |b, acc| {
        let image = &x[b * g.cin * g.h * g.w..][..g.cin * g.h * g.w];
        let dy_image = &dy[b * g.cout * out_plane..][..g.cout * out_plane];
        for first in (0..g.ho).step_by(per_tile) {
            let rows = per_tile.min(g.ho - first);
            let cols = columns(image, g, first, rows);
            let pixels = rows * g.wo;
            // `dY_tile [cout, pixels] x columnsᵀ [pixels, cin k k]`, added up.
            product(
                [g.cout, depth, pixels],
                acc,
                Strides::row_major(depth),
                true,
                &dy_image[first * g.wo..],
                Strides {
                    rows: out_plane,
                    cols: 1,
                },
                &cols,
                Strides {
                    rows: 1,
                    cols: pixels,
                },
                gemm::Parallelism::None,
            );
        }
    })
}
