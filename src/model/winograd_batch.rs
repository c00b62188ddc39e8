//! Winograd's F(2x2, 3x3) ([`super::winograd`]) for small maps (`layer3`/`layer4` at 112 px
//! input, 7 x 7 and 4 x 4): one product per transform position over every tile of the batch.
//!
//! An image of 7 x 7 or 4 x 4 pixels has 16 or 4 tiles, so products per image, or per chunk of
//! stacked images, are a few columns wide and each streams the transformed kernel (1-16 MiB):
//! that measured slower than the one im2col product over the batch (docs/PERFORMANCE.md). Here
//! the transforms of the whole batch are laid out first, `V [C_in, 16, columns]`, and position
//! `ξ`'s product `M_ξ [C_out, columns] = U_ξ [C_out, C_in] x V_ξ` runs on one thread, the 16
//! positions in parallel, so results do not depend on the number of threads. Columns are
//! ordered tile-major and image-minor (tile `t` of image `b` is column `t n + b`), so the
//! transforms run on blocks of [`LANES`] images, one per vector lane.
//!
//! The input gradient is the same convolution of the output gradient with the flipped,
//! transposed kernel (transformed from a transposed copy of the weight, see `kernel`). The
//! weight gradient is F(3x3, 2x2) as in [`super::winograd::weight_grad`], its sum over tiles one
//! product per position, `D_ξ [C_out, C_in] = Ŷ_ξ [C_out, columns] x V_ξᵀ`.

use std::cell::RefCell;

use multiversion::multiversion;
use rayon::prelude::*;

use super::channel_affine::ChannelAffine;
use super::im2col_conv::swap_outer;
use super::shifted_conv::{Arrangement, Geometry};
use super::strided_gemm::{Strides, product};
use super::winograd::{LANES, Lanes, POSITIONS, load, suits};

/// Columns (tiles over the batch) from which the transforms repay; below, the kernel's transform
/// (16 values per pair of channels) and products a few columns wide cost more than the im2col
/// product they replace.
pub const MIN_COLUMNS: usize = 64;

/// Whether this module computes the convolution: size-keeping 3x3, at least [`MIN_COLUMNS`]
/// tiles over the batch.
pub fn applies(g: &Geometry) -> bool {
    suits(g) && Tiling::new(g).columns() >= MIN_COLUMNS
}

thread_local! {
    /// The calling thread's buffers for the transforms and products (tens of MiB for 512
    /// channels: fresh ones cost a page fault per 4 KiB on every call, about half the kernel
    /// transform's time).
    static BUFFERS: RefCell<[Vec<f32>; 4]> = RefCell::default();
}

/// Runs `f` with the calling thread's [`BUFFERS`], taken out while it runs: a convolution that
/// starts on this thread while `f` waits for its parallel work (rayon lets a waiting thread
/// run other tasks) finds them empty and allocates its own.
fn with_buffers<R>(f: impl FnOnce(&mut [Vec<f32>; 4]) -> R) -> R {
    let mut buffers = BUFFERS.take();
    let result = f(&mut buffers);
    BUFFERS.set(buffers);
    result
}

/// The first `len` values of `buffer`, grown if need be (the values are stale: every use
/// writes before it reads).
fn sized(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

/// The batch's tiles: `th x tw` per image, column `(ty tw + tx) n + b`.
#[derive(Debug, Clone, Copy)]
struct Tiling {
    n: usize,
    h: usize,
    w: usize,
    th: usize,
    tw: usize,
}

impl Tiling {
    fn new(g: &Geometry) -> Self {
        Self {
            n: g.n,
            h: g.h,
            w: g.w,
            th: g.h.div_ceil(2),
            tw: g.w.div_ceil(2),
        }
    }

    fn columns(&self) -> usize {
        self.th * self.tw * self.n
    }

    /// Values per row of the buffer of one block of planes: a tile's 4 x 4 patch starts at
    /// column `2 tx` (the padding included).
    fn buffer_width(&self) -> usize {
        2 * self.tw + 2
    }
}

/// The transforms of a 3x3 kernel (`G g Gᵀ`), of a 4 x 4 input patch (`Bᵀ d B`), of a 2 x 2
/// output gradient (`A dY Aᵀ`) and of a product's 4 x 4 block to its 2 x 2 output (`Aᵀ M A`) are
/// separable: `f` combines the values down each column of the `I x I` block, then across each
/// row of the result. Lane by lane in one loop, so that the compiler vectorizes along the lanes
/// (on whole blocks of lanes, it made gathers of 128-bit vectors).
#[inline(always)]
fn separable<const I: usize, const O: usize>(
    block: &[[Lanes; I]; I],
    f: impl Fn([f32; I]) -> [f32; O],
) -> [[Lanes; O]; O] {
    let mut out = [[[0f32; LANES]; O]; O];
    for l in 0..LANES {
        // down[s][a]: row `a` of the combination of column `s`.
        let mut down = [[0f32; O]; I];
        for (s, combined) in down.iter_mut().enumerate() {
            let mut column = [0f32; I];
            for (value, row) in column.iter_mut().zip(block) {
                *value = row[s][l];
            }
            *combined = f(column);
        }
        for (a, out_row) in out.iter_mut().enumerate() {
            let mut row = [0f32; I];
            for (value, column) in row.iter_mut().zip(&down) {
                *value = column[a];
            }
            for (dst, value) in out_row.iter_mut().zip(f(row)) {
                dst[l] = value;
            }
        }
    }
    out
}

/// Writes the first `lanes` of `values` at `dst[at..]`: a fixed-size copy for a full block (a
/// copy of a variable length is a call to `memcpy`).
#[inline(always)]
fn store(dst: &mut [f32], at: usize, values: &Lanes, lanes: usize) {
    if lanes == LANES {
        dst[at..at + LANES].copy_from_slice(values);
    } else {
        dst[at..at + lanes].copy_from_slice(&values[..lanes]);
    }
}

/// `G`'s combinations: `g0`, `(g0 + g1 + g2) / 2`, `(g0 - g1 + g2) / 2`, `g2`.
#[inline(always)]
fn g_rows([g0, g1, g2]: [f32; 3]) -> [f32; 4] {
    let outer = g0 + g2;
    [g0, 0.5 * (outer + g1), 0.5 * (outer - g1), g2]
}

/// `Gᵀ`'s combinations: `d0 + (d1 + d2) / 2`, `(d1 - d2) / 2`, `(d1 + d2) / 2 + d3`.
#[inline(always)]
fn g_t_rows([d0, d1, d2, d3]: [f32; 4]) -> [f32; 3] {
    let (half_sum, half_difference) = (0.5 * (d1 + d2), 0.5 * (d1 - d2));
    [d0 + half_sum, half_difference, half_sum + d3]
}

/// `Bᵀ`'s combinations: `d0 - d2`, `d1 + d2`, `d2 - d1`, `d1 - d3`.
#[inline(always)]
fn b_rows([d0, d1, d2, d3]: [f32; 4]) -> [f32; 4] {
    [d0 - d2, d1 + d2, d2 - d1, d1 - d3]
}

/// `A`'s combinations: `y0`, `y0 + y1`, `y0 - y1`, `-y1`.
#[inline(always)]
fn a_rows([y0, y1]: [f32; 2]) -> [f32; 4] {
    [y0, y0 + y1, y0 - y1, -y1]
}

/// `Aᵀ`'s combinations: `m0 + m1 + m2`, `m1 - m2 - m3`.
#[inline(always)]
fn a_t_rows([m0, m1, m2, m3]: [f32; 4]) -> [f32; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// The kernel (`weight_dims`, `[C_out, C_in, 3, 3]`) transformed, `U = G g Gᵀ`, into `u` as
/// `[rows, 16, columns]`: `[C_out, 16, C_in]` for [`Arrangement::Forward`], the flipped kernel
/// `[C_in, 16, C_out]` for [`Arrangement::Flipped`] (the input gradient's), whose kernels are
/// first put in that order in `transposed`. One task per row.
fn kernel(
    weight: &[f32],
    weight_dims: [usize; 2],
    arrangement: Arrangement,
    transposed: &mut Vec<f32>,
    u: &mut [f32],
) {
    let [weight_out, weight_in] = weight_dims;
    assert_eq!(
        weight.len(),
        weight_out * weight_in * 9,
        "a 3x3 kernel's length"
    );
    assert_eq!(
        u.len(),
        weight_out * POSITIONS * weight_in,
        "the transformed kernel's length"
    );
    let (kernels, columns) = match arrangement {
        Arrangement::Forward => (weight, weight_in),
        Arrangement::Flipped => {
            let transposed = sized(transposed, weight.len());
            transpose_kernels(weight, weight_dims, transposed);
            (&*transposed, weight_out)
        }
    };
    u.par_chunks_mut(POSITIONS * columns)
        .zip(kernels.par_chunks(columns * 9))
        .for_each(|(dst, row)| kernel_row(row, arrangement, dst));
}

/// `weight` (`[C_out, C_in, 9]`) as `[C_in, C_out, 9]` into `dst`, one task per [`LANES`] input
/// channels. The flipped kernel's rows read straight from `weight` take one kernel from each
/// output channel, `C_in 9` values apart: a 512-channel kernel took 8-20 ms (3-4 ms forward),
/// a page of the translation cache missed per value read.
fn transpose_kernels(weight: &[f32], [weight_out, weight_in]: [usize; 2], dst: &mut [f32]) {
    dst.par_chunks_mut(LANES * weight_out * 9)
        .enumerate()
        .for_each(|(block, dst)| {
            let ci0 = block * LANES;
            let rows = dst.len() / (weight_out * 9);
            for co in 0..weight_out {
                let src = &weight[(co * weight_in + ci0) * 9..][..rows * 9];
                for (r, kernel) in src.chunks_exact(9).enumerate() {
                    dst[(r * weight_out + co) * 9..][..9].copy_from_slice(kernel);
                }
            }
        });
}

/// One row of [`kernel`]: `kernels` (`[columns, 9]`) into `dst` (`[16, columns]`), in blocks of
/// [`LANES`] columns.
#[multiversion(targets = "simd")]
fn kernel_row(kernels: &[f32], arrangement: Arrangement, dst: &mut [f32]) {
    let columns = kernels.len() / 9;
    for q0 in (0..columns).step_by(LANES) {
        let lanes = LANES.min(columns - q0);
        let mut g = [[[0f32; LANES]; 3]; 3];
        for (l, values) in kernels[q0 * 9..][..lanes * 9].chunks_exact(9).enumerate() {
            for (k, &value) in values.iter().enumerate() {
                // Flipped: offset (i, j) takes (2 - i, 2 - j), the nine values reversed.
                let k = match arrangement {
                    Arrangement::Forward => k,
                    Arrangement::Flipped => 8 - k,
                };
                g[k / 3][k % 3][l] = value;
            }
        }
        let u = separable(&g, g_rows);
        for (xi, values) in u.as_flattened().iter().enumerate() {
            store(dst, xi * columns + q0, values, lanes);
        }
    }
}

/// The weight gradient `[cout, cin, 3, 3]` from the sums over tiles `D` (`[16, cout, cin]`):
/// `Gᵀ D G` per pair of channels, one task per output channel, in blocks of [`LANES`] input
/// channels.
pub(super) fn kernel_gradient(sums: &[f32], [cout, cin]: [usize; 2]) -> Vec<f32> {
    let pairs = cout * cin;
    assert_eq!(sums.len(), POSITIONS * pairs, "sums' length");
    let mut dw = vec![0f32; pairs * 9];
    dw.par_chunks_mut(cin * 9)
        .enumerate()
        .for_each(|(co, dst)| kernel_gradient_row(sums, [cout, cin], co, dst));
    dw
}

/// [`kernel_gradient`] for output channel `co` into `dst` (`[cin, 3, 3]`).
#[multiversion(targets = "simd")]
fn kernel_gradient_row(sums: &[f32], [cout, cin]: [usize; 2], co: usize, dst: &mut [f32]) {
    let pairs = cout * cin;
    for ci0 in (0..cin).step_by(LANES) {
        let lanes = LANES.min(cin - ci0);
        let mut d = [[[0f32; LANES]; 4]; 4];
        for (xi, values) in d.as_flattened_mut().iter_mut().enumerate() {
            let src = &sums[xi * pairs + co * cin + ci0..][..lanes];
            values[..lanes].copy_from_slice(src);
        }
        let kernels = separable(&d, g_t_rows);
        for l in 0..lanes {
            let kernel = &mut dst[(ci0 + l) * 9..][..9];
            for (k, value) in kernel.iter_mut().enumerate() {
                *value = kernels[k / 3][k % 3][l];
            }
        }
    }
}

/// Which transform [`transform_channel`] applies to the tiles of a plane.
#[derive(Debug, Clone, Copy)]
enum Patch {
    /// An input's 4 x 4 patch (one pixel of zero padding around the map): `Bᵀ d B`.
    Input,
    /// An output gradient's 2 x 2 tile (zero past the map's edges): `A dY Aᵀ`.
    OutputGradient,
}

/// Into `v` (`[channels, 16, columns]`): each channel of `x` (`[n, channels, h, w]`) transformed
/// tile by tile as `patch` says, one task per channel.
fn transform(x: &[f32], channels: usize, t: &Tiling, patch: Patch, v: &mut [f32]) {
    assert_eq!(x.len(), t.n * channels * t.h * t.w, "input length");
    assert_eq!(
        v.len(),
        channels * POSITIONS * t.columns(),
        "transforms' length"
    );
    v.par_chunks_mut(POSITIONS * t.columns())
        .enumerate()
        .for_each(|(c, dst)| transform_channel(x, [channels, c], t, patch, dst));
}

/// [`transform`] for channel `c`: its planes gathered [`LANES`] images at a time into a buffer
/// of lanes (the padding zero), then every tile's patch transformed on all lanes at once.
#[multiversion(targets = "simd")]
fn transform_channel(
    x: &[f32],
    [channels, c]: [usize; 2],
    t: &Tiling,
    patch: Patch,
    dst: &mut [f32],
) {
    let (columns, plane) = (t.columns(), t.h * t.w);
    let width = t.buffer_width();
    let pad = match patch {
        Patch::Input => 1,
        Patch::OutputGradient => 0,
    };
    let mut buffer = vec![[0f32; LANES]; (2 * t.th + 2) * width];
    for b0 in (0..t.n).step_by(LANES) {
        let lanes = LANES.min(t.n - b0);
        for l in 0..lanes {
            let src = &x[((b0 + l) * channels + c) * plane..][..plane];
            for (y, row) in src.chunks_exact(t.w).enumerate() {
                let dst_row = &mut buffer[(y + pad) * width + pad..][..t.w];
                for (d, &value) in dst_row.iter_mut().zip(row) {
                    d[l] = value;
                }
            }
        }
        for ty in 0..t.th {
            for tx in 0..t.tw {
                let values = match patch {
                    Patch::Input => separable(&block(&buffer, width, [2 * ty, 2 * tx]), b_rows),
                    Patch::OutputGradient => {
                        separable(&block(&buffer, width, [2 * ty, 2 * tx]), a_rows)
                    }
                };
                let column = (ty * t.tw + tx) * t.n + b0;
                for (xi, values) in values.as_flattened().iter().enumerate() {
                    store(dst, xi * columns + column, values, lanes);
                }
            }
        }
    }
}

/// The `K x K` block of `buffer` (rows of `width` lanes) from `[row, column]`.
#[inline(always)]
fn block<const K: usize>(
    buffer: &[Lanes],
    width: usize,
    [row, column]: [usize; 2],
) -> [[Lanes; K]; K] {
    let mut out = [[[0f32; LANES]; K]; K];
    for (r, dst) in out.iter_mut().enumerate() {
        dst.copy_from_slice(&buffer[(row + r) * width + column..][..K]);
    }
    out
}

/// The output `[n, cout, h, w]` of the products `m` (`[16, cout, columns]` and [`LANES`] values
/// more), `epilogue` applied per output channel: `Aᵀ M A` per tile, one task per output channel,
/// then the channel and batch axes swapped.
fn output(m: &[f32], cout: usize, t: &Tiling, epilogue: Option<&ChannelAffine>) -> Vec<f32> {
    let plane = t.h * t.w;
    let mut by_channel = vec![0f32; cout * t.n * plane];
    by_channel
        .par_chunks_mut(t.n * plane)
        .enumerate()
        .for_each(|(co, dst)| output_channel(m, [cout, co], t, dst));
    swap_outer(&by_channel, [cout, t.n, plane], epilogue)
}

/// [`output`] for output channel `co` into `dst` (`[n, h, w]`).
#[multiversion(targets = "simd")]
fn output_channel(m: &[f32], [cout, co]: [usize; 2], t: &Tiling, dst: &mut [f32]) {
    let (columns, plane) = (t.columns(), t.h * t.w);
    let slab = cout * columns;
    for ty in 0..t.th {
        for tx in 0..t.tw {
            for b0 in (0..t.n).step_by(LANES) {
                let at = co * columns + (ty * t.tw + tx) * t.n + b0;
                let mut products = [[[0f32; LANES]; 4]; 4];
                for (xi, values) in products.as_flattened_mut().iter_mut().enumerate() {
                    *values = load(m, xi * slab + at);
                }
                let y = separable(&products, a_t_rows);
                for (r, row) in y.iter().enumerate() {
                    for (s, values) in row.iter().enumerate() {
                        let (py, px) = (2 * ty + r, 2 * tx + s);
                        if py >= t.h || px >= t.w {
                            continue;
                        }
                        let pixel = py * t.w + px;
                        for (l, &value) in values.iter().take(LANES.min(t.n - b0)).enumerate() {
                            dst[(b0 + l) * plane + pixel] = value;
                        }
                    }
                }
            }
        }
    }
}

/// The convolution of `x` (`[n, cin, h, w]` of `g`) with the 3x3 `weight` (`weight_dims`,
/// `[C_out, C_in, 3, 3]`): [`Arrangement::Forward`] gives the convolution, `[n, cout, h, w]`;
/// [`Arrangement::Flipped`] with the output gradient as `x` gives the input gradient (`g`'s
/// input channels are then the weight's output channels). `epilogue` is applied per output
/// channel as the output is written.
pub fn forward(
    x: &[f32],
    weight: &[f32],
    [weight_out, weight_in]: [usize; 2],
    arrangement: Arrangement,
    g: &Geometry,
    epilogue: Option<&ChannelAffine>,
) -> Vec<f32> {
    assert!(suits(g), "a size-keeping 3x3 convolution");
    let t = Tiling::new(g);
    let columns = t.columns();
    with_buffers(|[u, v, m, transposed]| {
        let u = sized(u, weight_out * POSITIONS * weight_in);
        kernel(weight, [weight_out, weight_in], arrangement, transposed, u);
        let v = sized(v, g.cin * POSITIONS * columns);
        transform(x, g.cin, &t, Patch::Input, v);
        let m = sized(m, POSITIONS * g.cout * columns + LANES);
        m[..POSITIONS * g.cout * columns]
            .par_chunks_mut(g.cout * columns)
            .enumerate()
            .for_each(|(xi, dst)| {
                let kernel_shape = match arrangement {
                    Arrangement::Forward => [weight_out, weight_in],
                    Arrangement::Flipped => [weight_in, weight_out],
                };
                assert_eq!(kernel_shape, [g.cout, g.cin], "kernel shape");
                product(
                    [g.cout, columns, g.cin],
                    dst,
                    Strides::row_major(columns),
                    false,
                    &u[xi * g.cin..],
                    Strides {
                        rows: POSITIONS * g.cin,
                        cols: 1,
                    },
                    &v[xi * columns..],
                    Strides {
                        rows: POSITIONS * columns,
                        cols: 1,
                    },
                    gemm::Parallelism::None,
                );
            });
        output(m, g.cout, &t, epilogue)
    })
}

/// The weight gradient `[cout, cin, 3, 3]` of the convolution of `x` (`[n, cin, h, w]`) given
/// the output gradient `dy` (`[n, cout, h, w]`): per position, `D_ξ = Ŷ_ξ x V_ξᵀ` over all the
/// batch's tiles, then `Gᵀ D G` per pair of channels.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    assert!(suits(g), "a size-keeping 3x3 convolution");
    let t = Tiling::new(g);
    let columns = t.columns();
    let pairs = g.cout * g.cin;
    let across = Strides {
        rows: POSITIONS * columns,
        cols: 1,
    };
    with_buffers(|[v, y, sums, _]| {
        let v = sized(v, g.cin * POSITIONS * columns);
        transform(x, g.cin, &t, Patch::Input, v);
        let y = sized(y, g.cout * POSITIONS * columns);
        transform(dy, g.cout, &t, Patch::OutputGradient, y);
        let sums = sized(sums, POSITIONS * pairs);
        sums.par_chunks_mut(pairs)
            .enumerate()
            .for_each(|(xi, dst)| {
                product(
                    [g.cout, g.cin, columns],
                    dst,
                    Strides::row_major(g.cin),
                    false,
                    &y[xi * columns..],
                    across,
                    &v[xi * columns..],
                    Strides {
                        rows: across.cols,
                        cols: across.rows,
                    },
                    gemm::Parallelism::None,
                );
            });
        kernel_gradient(sums, [g.cout, g.cin])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::shifted_conv::{self, taps};
    use crate::model::winograd::tests::{TOLERANCE, largest_difference, pattern};

    #[test]
    fn batched_winograd_equals_the_shifted_products_for_every_gradient() {
        // Odd and even sides, a map narrower than a tile, batches of one, of part of a block of
        // lanes and of more than one block, channel counts across a block of lanes.
        for (n, cin, cout, h, w) in [
            (1, 5, 7, 4, 4),
            (3, 17, 4, 7, 7),
            (20, 3, 18, 5, 6),
            (2, 8, 2, 1, 5),
        ] {
            let g = Geometry::new([n, cin, h, w], cout, 3, 1, 1);
            let x = pattern(n * cin * h * w, 7919);
            let weight = pattern(cout * cin * 9, 104_729);
            let dims = [cout, cin, 3, 3];
            let direct =
                shifted_conv::forward(&x, &taps(&weight, dims, Arrangement::Forward), &g, None);
            let ours = forward(&x, &weight, [cout, cin], Arrangement::Forward, &g, None);
            let d = largest_difference(&ours, &direct);
            assert!(d < TOLERANCE, "forward n{n} {cin}->{cout} {h}x{w}: {d}");
            let gx = Geometry::new([n, cout, h, w], cin, 3, 1, 1);
            let dy = pattern(n * cout * h * w, 31);
            let direct =
                shifted_conv::forward(&dy, &taps(&weight, dims, Arrangement::Flipped), &gx, None);
            let ours = forward(&dy, &weight, [cout, cin], Arrangement::Flipped, &gx, None);
            let d = largest_difference(&ours, &direct);
            assert!(d < TOLERANCE, "flipped n{n} {cin}->{cout} {h}x{w}: {d}");
            // Sums over every pixel of the batch, so relative.
            let direct = shifted_conv::weight_grad(&x, &dy, &g);
            let scale = direct.iter().fold(1f32, |m, v| m.max(v.abs()));
            let d = largest_difference(&weight_grad(&x, &dy, &g), &direct) / scale;
            assert!(
                d < TOLERANCE,
                "weight gradient n{n} {cin}->{cout} {h}x{w}: {d}"
            );
        }
    }

    #[test]
    fn the_epilogue_is_applied_per_output_channel() {
        let (n, cin, cout, h, w) = (2, 3, 4, 4, 4);
        let g = Geometry::new([n, cin, h, w], cout, 3, 1, 1);
        let x = pattern(n * cin * h * w, 7919);
        let weight = pattern(cout * cin * 9, 104_729);
        let plain = forward(&x, &weight, [cout, cin], Arrangement::Forward, &g, None);
        let affine = ChannelAffine {
            scale: vec![2.0, -1.0, 0.5, 3.0],
            shift: vec![0.1, 0.2, -0.3, 0.0],
            relu: true,
        };
        let fused = forward(
            &x,
            &weight,
            [cout, cin],
            Arrangement::Forward,
            &g,
            Some(&affine),
        );
        for (i, (&f, &p)) in fused.iter().zip(&plain).enumerate() {
            let co = i / (h * w) % cout;
            let expected = (p * affine.scale[co] + affine.shift[co]).max(0.0);
            assert!(
                (f - expected).abs() < 1e-6,
                "value {i}: {f} against {expected}"
            );
        }
    }
}
