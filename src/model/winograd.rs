//! Size-keeping 3x3 convolutions (stride 1, padding 1: every 3x3 inside a stage) by Winograd's
//! minimal filtering F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural
//! Networks", 2016), on large maps.
//!
//! Each 2 x 2 block of output pixels (a *tile*) reads a 4 x 4 patch `d` of each input channel.
//! With the patch transformed to `V = Bᵀ d B` and each 3x3 kernel `g` to `U = G g Gᵀ` (both
//! 4 x 4), the tile's output is `Aᵀ (Σ over input channels of U ⊙ V) A`. For each of the 16
//! positions `ξ` of the 4 x 4 transforms, the sum over channels is a matrix product
//! `M_ξ [C_out, tiles] = U_ξ [C_out, C_in] x V_ξ [C_in, tiles]`: 16 products of depth `C_in` per
//! four output pixels where the shifted products ([`super::shifted_conv`]) take 9 per pixel,
//! 2.25x fewer multiplications, for transforms that are additions only.
//!
//! Work is split into chunks of whole tile rows of one image, sized so that a chunk's `V` and `M`
//! stay near the core's L2 cache, and the chunks run in parallel, each on one thread: the sums are
//! taken in the same order whatever the number of threads. The transforms run along tile rows
//! (the input rows split into even and odd columns first), so they vectorize.
//!
//! Rounding: the transforms add and subtract up to nine inputs (and halve the kernel), so results
//! differ from a direct convolution by a few ulps of the largest terms, as any reordered sum.

use std::cell::RefCell;

use multiversion::multiversion;
use rayon::prelude::*;

use super::channel_affine::ChannelAffine;
use super::shifted_conv::{Arrangement, Geometry, MIN_TILES, assemble, sum_over_images, taps};
use super::strided_gemm::{Strides, product};
use super::winograd_batch::kernel_gradient;

thread_local! {
    /// Each worker's buffers, kept between chunks and calls (fresh ones of ~0.5 MiB cost page
    /// faults on every chunk): the input's transform `V`, the products `M` (or the output
    /// gradient's transform), the input rows split into even and odd columns.
    static SCRATCH: RefCell<[Vec<f32>; 3]> =
        const { RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// Positions of the 4 x 4 transforms.
pub(super) const POSITIONS: usize = 16;

/// `G`'s rows: `U = G g Gᵀ` (the kernel transform).
const G: [[f32; 3]; 4] = [
    [1.0, 0.0, 0.0],
    [0.5, 0.5, 0.5],
    [0.5, -0.5, 0.5],
    [0.0, 0.0, 1.0],
];

/// Values of `V` and `M` per chunk (together), 2 MiB of f32, near the core's L2 cache (1.25 MiB
/// here) between the input transform, the products and the output transform. Half of it made
/// the products of 256 channels on 14 x 14 maps (chunks of 28 tiles) slower; neither size was
/// clearly better for 64 or 128 channels.
const CHUNK_VALUES: usize = 1 << 19;

/// Output pixels over the batch from which the transforms repay: below, the kernel's transform
/// and products a few tiles wide cost more than they save (one image, forward, 128 channels on
/// 14 x 14: 0.8 ms shifted, 1.4 ms here).
pub const MIN_PIXELS: usize = 1024;

/// Whether this module computes the convolution: a 3x3 kernel, stride 1, padding 1.
pub fn suits(g: &Geometry) -> bool {
    g.k == 3 && g.stride == 1 && g.padding == 1
}

/// The kernel `[cout, cin, 3, 3]` transformed, `U_ξ = G g Gᵀ` at position `ξ`, as 16 matrices
/// `[16, rows, cols]`: `[cout, cin]` for [`Arrangement::Forward`], `[cin, cout]` of the flipped
/// kernel for [`Arrangement::Flipped`] (the input gradient). Each `U_ξ` is a combination of the
/// nine offsets' matrices of [`taps`], computed one position per task.
pub fn kernel(weight: &[f32], dims: [usize; 4], arrangement: Arrangement) -> Vec<f32> {
    let [cout, cin, k, _] = dims;
    assert_eq!(k, 3, "a 3x3 kernel");
    let offsets = taps(weight, dims, arrangement);
    let len = cout * cin;
    let mut out = vec![0f32; POSITIONS * len];
    out.par_chunks_mut(len).enumerate().for_each(|(xi, dst)| {
        let (a, b) = (xi / 4, xi % 4);
        let mut first = true;
        for i in 0..3 {
            for j in 0..3 {
                let coef = G[a][i] * G[b][j];
                if coef == 0.0 {
                    continue;
                }
                let src = &offsets[(i * 3 + j) * len..][..len];
                let pairs = dst.iter_mut().zip(src);
                if first {
                    pairs.for_each(|(d, &s)| *d = coef * s);
                } else {
                    pairs.for_each(|(d, &s)| *d += coef * s);
                }
                first = false;
            }
        }
    });
    out
}

/// The convolution of `x` (`[n, cin, h, w]`, contiguous) with the transformed kernel `u` of
/// [`kernel`] ([`Arrangement::Forward`]; [`Arrangement::Flipped`] with the output gradient as `x`
/// gives the input gradient): `[n, cout, h, w]`, with `epilogue` applied per output channel as
/// the chunks are written out.
pub fn forward(x: &[f32], u: &[f32], g: &Geometry, epilogue: Option<&ChannelAffine>) -> Vec<f32> {
    forward_in_chunks(x, u, g, epilogue, tile_rows_per_chunk(g))
}

/// [`forward`] with chunks of `tile_rows` tile rows (two output rows each), fewer for batches of
/// fewer than [`MIN_TILES`] images.
fn forward_in_chunks(
    x: &[f32],
    u: &[f32],
    g: &Geometry,
    epilogue: Option<&ChannelAffine>,
    tile_rows: usize,
) -> Vec<f32> {
    assert!(suits(g), "a size-keeping 3x3 convolution");
    assert_eq!(x.len(), g.n * g.cin * g.h * g.w, "input length");
    assert_eq!(u.len(), POSITIONS * g.cout * g.cin, "kernel length");
    let tw = g.w.div_ceil(2);
    let th = g.h.div_ceil(2);
    // At least `MIN_TILES` chunks over the batch, as `shifted_conv` does, so that single images
    // use every core.
    let per_image = MIN_TILES.div_ceil(g.n);
    let tile_rows = tile_rows.min(th.div_ceil(per_image)).max(1);
    let plane = g.h * g.w;
    assemble(g, 2 * tw, 2 * tile_rows, epilogue, |b, first, rows| {
        let image = &x[b * g.cin * plane..][..g.cin * plane];
        let (ty0, tiles_down) = (first / 2, rows.div_ceil(2));
        let tiles = tiles_down * tw;
        // One slab per position, each with room for a block of lanes past its end.
        let (v_slab, m_slab) = (g.cin * tiles + LANES, g.cout * tiles + LANES);
        SCRATCH.with_borrow_mut(|[v, m, split]| {
            v.resize(POSITIONS * v_slab, 0.0);
            m.resize(POSITIONS * m_slab, 0.0);
            input_transform(image, g, ty0, tiles_down, v, split);
            for xi in 0..POSITIONS {
                product(
                    [g.cout, tiles, g.cin],
                    &mut m[xi * m_slab..][..g.cout * tiles],
                    Strides::row_major(tiles),
                    false,
                    &u[xi * g.cout * g.cin..][..g.cout * g.cin],
                    Strides::row_major(g.cin),
                    &v[xi * v_slab..][..g.cin * tiles],
                    Strides::row_major(tiles),
                    gemm::Parallelism::None,
                );
            }
            output_transform(m, g.cout, tw, tiles_down, rows)
        })
    })
}

/// Tile rows per chunk for `g`: [`CHUNK_VALUES`] of `V` and of the products (or of the output
/// gradient's transform).
fn tile_rows_per_chunk(g: &Geometry) -> usize {
    (CHUNK_VALUES / (POSITIONS * (g.cin + g.cout) * g.w.div_ceil(2))).max(1)
}

/// The weight gradient `[cout, cin, 3, 3]` of the convolution of `x` (`[n, cin, h, w]`) given
/// the output gradient `dy` (`[n, cout, h, w]`), by F(3x3, 2x2), the transpose of the forward
/// algorithm: `dW = Gᵀ [Σ over tiles of (A dY_t Aᵀ) ⊙ (Bᵀ d_t B)] G`, with `A = (Aᵀ)ᵀ` and
/// `dY_t` a tile's 2 x 2 output gradient. The sum over tiles is, per position `ξ`, the product
/// `D_ξ [cout, cin] += Ŷ_ξ [cout, tiles] x V_ξᵀ [tiles, cin]`: 16 products per four output
/// pixels where the shifted products take 9 per pixel. Images are summed in the fixed shares
/// of [`sum_over_images`], so the result does not depend on the number of threads.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    weight_grad_in_chunks(x, dy, g, tile_rows_per_chunk(g))
}

/// [`weight_grad`] with chunks of `tile_rows` tile rows.
fn weight_grad_in_chunks(x: &[f32], dy: &[f32], g: &Geometry, tile_rows: usize) -> Vec<f32> {
    assert!(suits(g), "a size-keeping 3x3 convolution");
    let plane = g.h * g.w;
    assert_eq!(x.len(), g.n * g.cin * plane, "input length");
    assert_eq!(dy.len(), g.n * g.cout * plane, "output gradient length");
    let (tw, th) = (g.w.div_ceil(2), g.h.div_ceil(2));
    let tile_rows = tile_rows.max(1);
    let pairs = g.cout * g.cin;
    let sums = sum_over_images(g.n, POSITIONS * pairs, |b, acc| {
        let image = &x[b * g.cin * plane..][..g.cin * plane];
        let dy_image = &dy[b * g.cout * plane..][..g.cout * plane];
        SCRATCH.with_borrow_mut(|[v, y, split]| {
            for ty0 in (0..th).step_by(tile_rows) {
                let tiles_down = tile_rows.min(th - ty0);
                let tiles = tiles_down * tw;
                let (v_slab, y_slab) = (g.cin * tiles + LANES, g.cout * tiles + LANES);
                v.resize(POSITIONS * v_slab, 0.0);
                y.resize(POSITIONS * y_slab, 0.0);
                input_transform(image, g, ty0, tiles_down, v, split);
                output_grad_transform(dy_image, g, ty0, tiles_down, y, split);
                for (xi, d) in acc.chunks_mut(pairs).enumerate() {
                    product(
                        [g.cout, g.cin, tiles],
                        d,
                        Strides::row_major(g.cin),
                        true,
                        &y[xi * y_slab..][..g.cout * tiles],
                        Strides::row_major(tiles),
                        &v[xi * v_slab..][..g.cin * tiles],
                        Strides {
                            rows: 1,
                            cols: tiles,
                        },
                        gemm::Parallelism::None,
                    );
                }
            }
        })
    });
    kernel_gradient(&sums, [g.cout, g.cin])
}

/// Values per vector of the transforms: one AVX-512 register. Rows are processed in whole
/// blocks of lanes (the rows of a 28 x 28 map are 14 tiles long: as loops over slices they ran
/// in the compiler's scalar remainder); the lanes past a row's end compute values that land
/// where later blocks write theirs, or in the slabs' padding.
pub(super) const LANES: usize = 16;

pub(super) type Lanes = [f32; LANES];

/// `LANES` values from `at`.
#[inline(always)]
pub(super) fn load(src: &[f32], at: usize) -> Lanes {
    src[at..at + LANES].try_into().expect("a block of lanes")
}

/// `x + y` lane by lane.
#[inline(always)]
fn add(x: &Lanes, y: &Lanes) -> Lanes {
    let mut out = [0f32; LANES];
    for i in 0..LANES {
        out[i] = x[i] + y[i];
    }
    out
}

/// `x - y` lane by lane.
#[inline(always)]
fn sub(x: &Lanes, y: &Lanes) -> Lanes {
    let mut out = [0f32; LANES];
    for i in 0..LANES {
        out[i] = x[i] - y[i];
    }
    out
}

/// A row's pairs split into their first and second values, `first[m] = row[2m]` and
/// `second[m] = row[2m + 1]`; the last value of an odd-length row is returned.
#[inline(always)]
fn deinterleave(row: &[f32], first: &mut [f32], second: &mut [f32]) -> Option<f32> {
    let pairs = row.chunks_exact(2);
    let last = pairs.remainder().first().copied();
    for ((f, s), pair) in first.iter_mut().zip(second).zip(pairs) {
        (*f, *s) = (pair[0], pair[1]);
    }
    last
}

/// `V = Bᵀ d B` of tile rows `ty0..ty0 + tiles_down` of one image (`[cin, h, w]`) into
/// `v`: 16 slabs `[cin, tiles_down tw]` of `cin tiles_down tw + LANES` values. `split` is
/// scratch space.
#[multiversion(targets = "simd")]
fn input_transform(
    image: &[f32],
    g: &Geometry,
    ty0: usize,
    tiles_down: usize,
    v: &mut [f32],
    split: &mut Vec<f32>,
) {
    let tw = g.w.div_ceil(2);
    let tiles = tiles_down * tw;
    let slab = g.cin * tiles + LANES;
    // The input rows a chunk reads (`2 ty0 - 1 ..= 2 (ty0 + tiles_down)`), each split into the
    // even and odd columns of the padded row (input column `x` at `x + 1`): tile `tx` reads
    // padded columns `2 tx .. 2 tx + 4`, which are even[tx], odd[tx], even[tx + 1], odd[tx + 1],
    // so the transforms run along contiguous rows of tiles.
    let half = tw.div_ceil(LANES) * LANES + LANES;
    let in_rows = 2 * tiles_down + 2;
    split.resize(in_rows * 2 * half, 0.0);
    for c in 0..g.cin {
        let channel = &image[c * g.h * g.w..][..g.h * g.w];
        for (r, row_split) in split.chunks_exact_mut(2 * half).enumerate() {
            let (even, odd) = row_split.split_at_mut(half);
            match (2 * ty0 + r).checked_sub(1).filter(|&y| y < g.h) {
                Some(y) => {
                    // Input columns 2m and 2m + 1 are odd[m] and even[m + 1].
                    let whole = g.w / 2;
                    even[0] = 0.0;
                    let last = deinterleave(&channel[y * g.w..][..g.w], odd, &mut even[1..]);
                    // The padding after the row (set value by value: `fill` on these few
                    // values was a call to `memset` per row).
                    odd[whole] = last.unwrap_or(0.0);
                    if whole < tw {
                        // An odd width: the row ends on an even padded column.
                        (odd[tw], even[tw]) = (0.0, 0.0);
                    }
                }
                None => row_split[..].fill(0.0),
            }
        }
        for t_row in 0..tiles_down {
            let row = |r: usize| {
                let row = &split[(2 * t_row + r) * 2 * half..][..2 * half];
                row.split_at(half)
            };
            let rows = [row(0), row(1), row(2), row(3)];
            for tx0 in (0..tw).step_by(LANES) {
                let at = c * tiles + t_row * tw + tx0;
                // Down the patch (`Bᵀ d`): row `a` combines patch rows `x` and `y`.
                for (a, (x, y, plus)) in [(0, 2, false), (1, 2, true), (2, 1, false), (1, 3, false)]
                    .into_iter()
                    .enumerate()
                {
                    let ((ex, ox), (ey, oy)) = (rows[x], rows[y]);
                    let down = |u: &[f32], v: &[f32], at: usize| {
                        let (u, v) = (load(u, at), load(v, at));
                        if plus { add(&u, &v) } else { sub(&u, &v) }
                    };
                    // Columns even[tx], even[tx + 1], odd[tx], odd[tx + 1] of the patches.
                    let (e0, e1) = (down(ex, ey, tx0), down(ex, ey, tx0 + 1));
                    let (o0, o1) = (down(ox, oy, tx0), down(ox, oy, tx0 + 1));
                    // Across (`· B`).
                    let across = [sub(&e0, &e1), add(&o0, &e1), sub(&e1, &o0), sub(&o0, &o1)];
                    for (b, values) in across.iter().enumerate() {
                        v[(4 * a + b) * slab + at..][..LANES].copy_from_slice(values);
                    }
                }
            }
        }
    }
}

/// `Ŷ = A dY Aᵀ` of the output gradient's tile rows `ty0..ty0 + tiles_down` of one image
/// (`[cout, h, w]`, zero past the map's edges) into `y`: 16 slabs `[cout, tiles_down tw]` of
/// `cout tiles_down tw + LANES` values. `split` is scratch space.
#[multiversion(targets = "simd")]
fn output_grad_transform(
    dy_image: &[f32],
    g: &Geometry,
    ty0: usize,
    tiles_down: usize,
    y: &mut [f32],
    split: &mut Vec<f32>,
) {
    let tw = g.w.div_ceil(2);
    let tiles = tiles_down * tw;
    let slab = g.cout * tiles + LANES;
    // Each output gradient row split into even and odd columns (a tile's left and right).
    let half = tw.div_ceil(LANES) * LANES;
    split.resize(2 * 2 * half, 0.0);
    let zero = [0f32; LANES];
    for co in 0..g.cout {
        let channel = &dy_image[co * g.h * g.w..][..g.h * g.w];
        for t_row in 0..tiles_down {
            for (r, row_split) in split.chunks_exact_mut(2 * half).enumerate() {
                let (even, odd) = row_split.split_at_mut(half);
                let row_y = 2 * (ty0 + t_row) + r;
                if row_y >= g.h {
                    row_split[..].fill(0.0);
                    continue;
                }
                let whole = g.w / 2;
                if let Some(value) = deinterleave(&channel[row_y * g.w..][..g.w], even, odd) {
                    // An odd width: the last tile's right column lies past the edge.
                    (even[whole], odd[whole]) = (value, 0.0);
                }
            }
            let (top, bottom) = split.split_at(2 * half);
            let ((e0s, o0s), (e1s, o1s)) = (top.split_at(half), bottom.split_at(half));
            for tx0 in (0..tw).step_by(LANES) {
                let at = co * tiles + t_row * tw + tx0;
                let (e0, o0, e1, o1) = (
                    load(e0s, tx0),
                    load(o0s, tx0),
                    load(e1s, tx0),
                    load(o1s, tx0),
                );
                // Down (`A dY`: rows y0, y0 + y1, y0 - y1, -y1), left and right columns.
                let down = [
                    (e0, o0),
                    (add(&e0, &e1), add(&o0, &o1)),
                    (sub(&e0, &e1), sub(&o0, &o1)),
                    (sub(&zero, &e1), sub(&zero, &o1)),
                ];
                for (a, (left, right)) in down.iter().enumerate() {
                    // Across (`· Aᵀ`), the same combinations.
                    let across = [*left, add(left, right), sub(left, right), sub(&zero, right)];
                    for (b, values) in across.iter().enumerate() {
                        y[(4 * a + b) * slab + at..][..LANES].copy_from_slice(values);
                    }
                }
            }
        }
    }
}

/// The output `[cout, rows, 2 tw]` of the products `m` (16 slabs `[cout, tiles_down tw]` of
/// `cout tiles_down tw + LANES` values): `Aᵀ M A` per tile, the last tile row's lower half
/// dropped when `rows` is odd.
#[multiversion(targets = "simd")]
fn output_transform(m: &[f32], cout: usize, tw: usize, tiles_down: usize, rows: usize) -> Vec<f32> {
    let tiles = tiles_down * tw;
    let slab = cout * tiles + LANES;
    let row_len = 2 * tw;
    let len = cout * rows * row_len;
    // Room for the last block's lanes past the end.
    let mut out = vec![0f32; len + 2 * LANES];
    for co in 0..cout {
        for t_row in 0..tiles_down {
            for tx0 in (0..tw).step_by(LANES) {
                let at = co * tiles + t_row * tw + tx0;
                let p: [Lanes; POSITIONS] = std::array::from_fn(|xi| load(m, xi * slab + at));
                // Down (`Aᵀ M`: rows 0 + 1 + 2 and 1 - 2 - 3), then across the same way.
                let top: [Lanes; 4] =
                    std::array::from_fn(|b| add(&add(&p[b], &p[4 + b]), &p[8 + b]));
                let bottom: [Lanes; 4] =
                    std::array::from_fn(|b| sub(&sub(&p[4 + b], &p[8 + b]), &p[12 + b]));
                for (r, [s0, s1, s2, s3]) in [top, bottom].into_iter().enumerate() {
                    let y = 2 * t_row + r;
                    if y >= rows {
                        continue;
                    }
                    let left = add(&add(&s0, &s1), &s2);
                    let right = sub(&sub(&s1, &s2), &s3);
                    let dst = &mut out[(co * rows + y) * row_len + 2 * tx0..][..2 * LANES];
                    for (i, pair) in dst.chunks_exact_mut(2).enumerate() {
                        pair[0] = left[i];
                        pair[1] = right[i];
                    }
                }
            }
        }
    }
    out.truncate(len);
    out
}

/// The Winograd tests' helpers, shared with [`super::winograd_batch`]'s.
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::shifted_conv;

    /// Deterministic values in [-1, 1).
    pub(in crate::model) fn pattern(len: usize, step: usize) -> Vec<f32> {
        (0..len)
            .map(|i| (i * step % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    /// f32 sums of up to 9 cin terms in another order, through transforms that add up to nine
    /// values: a few ulps of the sums' magnitude (~cin).
    pub(in crate::model) const TOLERANCE: f32 = 2e-5;

    pub(in crate::model) fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn winograd_equals_the_shifted_products_for_every_chunking_and_gradient() {
        // Odd and even sides, maps narrower than a tile, one and several images.
        for (n, cin, cout, h, w) in [(2, 5, 7, 9, 9), (1, 3, 4, 6, 11), (3, 8, 2, 1, 5)] {
            let g = Geometry::new([n, cin, h, w], cout, 3, 1, 1);
            let x = pattern(n * cin * h * w, 7919);
            let weight = pattern(cout * cin * 9, 104_729);
            let dims = [cout, cin, 3, 3];
            let direct =
                shifted_conv::forward(&x, &taps(&weight, dims, Arrangement::Forward), &g, None);
            let u = kernel(&weight, dims, Arrangement::Forward);
            for tile_rows in 1..=h.div_ceil(2) + 1 {
                let ours = forward_in_chunks(&x, &u, &g, None, tile_rows);
                let d = largest_difference(&ours, &direct);
                assert!(d < TOLERANCE, "n{n} {h}x{w} chunks of {tile_rows}: {d}");
            }
            // The input gradient's arrangement: the flipped, transposed kernel.
            let gx = Geometry::new([n, cout, h, w], cin, 3, 1, 1);
            let dy = pattern(n * cout * h * w, 31);
            let direct =
                shifted_conv::forward(&dy, &taps(&weight, dims, Arrangement::Flipped), &gx, None);
            let ours = forward(&dy, &kernel(&weight, dims, Arrangement::Flipped), &gx, None);
            let d = largest_difference(&ours, &direct);
            assert!(d < TOLERANCE, "flipped n{n} {h}x{w}: {d}");
            // The weight gradient: sums over every pixel of the batch, so relative.
            let dy = pattern(n * cout * h * w, 31);
            let direct = shifted_conv::weight_grad(&x, &dy, &g);
            let scale = direct.iter().fold(1f32, |m, v| m.max(v.abs()));
            for tile_rows in 1..=h.div_ceil(2) {
                let ours = weight_grad_in_chunks(&x, &dy, &g, tile_rows);
                let d = largest_difference(&ours, &direct) / scale;
                assert!(
                    d < TOLERANCE,
                    "weight gradient n{n} {h}x{w}, chunks of {tile_rows}: {d}"
                );
            }
        }
    }
}
