//! A 2-D convolution as `k x k` accumulated matrix products over a zero-padded input, with no
//! im2col buffer.
//!
//! Lay each input plane out with its padding, `W_p` values per row. Output pixel `(oh, ow)` of a
//! "wide" output with `W_p` columns per row, index `q = oh W_p + ow`, reads kernel offset `(i, j)`
//! of channel `c` at `c P + q + i W_p + j` (`P` the padded plane's length). For a fixed offset
//! that is a matrix `[C_in, pixels]` with row stride `P` and unit column stride, so
//! `out[C_out, pixels] = sum over (i, j) of W_ij [C_out, C_in] x X_ij [C_in, pixels]`: `k k`
//! `gemm` calls reading the padded input in place. The extra columns of each wide row read
//! padding or the next row and are dropped. With a stride `s`, each padded plane is first split
//! into its phases (rows and columns by remainder modulo `s`); offset `(i, j)` then reads
//! phase `(i mod s, j mod s)` shifted by `(i / s, j / s)`, again at unit stride, and the wide rows
//! are `W_p / s` long.
//!
//! `flex`'s own convolution instead converts the whole batch to NHWC on one thread, builds an
//! im2col tile (`k k` copies of the input) and scatters each tile's result back; all of that is
//! gone here. Measured at batch 32 (forward, median of 7): a 64-channel 3x3 on 56 x 56 121 -> 55
//! ms, on 28 x 28 27 -> 18 ms, 128 channels on 14 x 14 15 -> 10 ms.
//!
//! Work is split into tiles of whole output rows (about [`TILE_PIXELS`] wide pixels each, smaller
//! for batches of fewer than [`MIN_TILES`] images) over all images, in parallel; each tile runs
//! its products on one thread, so the sums are taken in the same order whatever the number of
//! threads.

use rayon::prelude::*;

use super::channel_affine::ChannelAffine;
use super::strided_gemm::{Strides, product};

/// Wide output pixels per tile: its `[C_out, pixels]` accumulator and the `[C_in, pixels]` input
/// it reads stay in the core's L2 cache for 64-128 channels.
pub const TILE_PIXELS: usize = 512;

/// The geometry of one convolution computed as shifted products: input `[n, cin, h, w]`, `cout`
/// kernels of `k x k`, output maps `ho x wo`.
#[derive(Debug, Clone, Copy)]
pub struct Geometry {
    pub n: usize,
    pub cin: usize,
    pub h: usize,
    pub w: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
    pub ho: usize,
    pub wo: usize,
    /// Columns per row of a phase of the padded input, and per wide output row.
    wq: usize,
    /// Values per phase, enough for every read of the last wide pixel.
    phase: usize,
}

impl Geometry {
    /// `x` `[n, cin, h, w]` convolved with a `[cout, cin, k, k]` kernel.
    pub fn new(x: [usize; 4], cout: usize, k: usize, stride: usize, padding: usize) -> Self {
        let [n, cin, h, w] = x;
        let ho = (h + 2 * padding - k) / stride + 1;
        let wo = (w + 2 * padding - k) / stride + 1;
        let wq = (w + 2 * padding).div_ceil(stride);
        let hq = (h + 2 * padding).div_ceil(stride);
        let reach = (k - 1) / stride;
        let last_read = ho * wq - 1 + reach * (wq + 1);
        Self {
            n,
            cin,
            h,
            w,
            cout,
            k,
            stride,
            padding,
            ho,
            wo,
            wq,
            phase: (hq * wq).max(last_read + 1),
        }
    }

    /// Phases per dimension that some kernel offset reads: `min(k, stride)` (one for a strided
    /// 1x1 convolution, which reads every other pixel only).
    fn phases(&self) -> usize {
        self.k.min(self.stride)
    }

    /// Values per padded input plane (the phases that are read).
    fn plane(&self) -> usize {
        self.phases() * self.phases() * self.phase
    }

    /// Where kernel offset `(i, j)` starts reading in a padded plane.
    fn offset(&self, i: usize, j: usize) -> usize {
        let s = self.stride;
        ((i % s) * self.phases() + j % s) * self.phase + (i / s) * self.wq + j / s
    }

    /// The input `[n, cin, h, w]` as zero-padded planes, each split into its phases.
    fn padded(&self, x: &[f32]) -> Vec<f32> {
        let (w, p, s) = (self.w, self.padding, self.stride);
        let mut out = vec![0f32; self.n * self.cin * self.plane()];
        out.par_chunks_mut(self.plane())
            .zip(x.par_chunks(self.h * w))
            .for_each(|(dst, src)| {
                for (r, row) in src.chunks(w).enumerate() {
                    let y = r + p;
                    if y % s >= self.phases() {
                        continue;
                    }
                    // Phase column `b` holds the input columns `c` with `(c + p) mod s == b`,
                    // at consecutive places from that of the first one.
                    for b in 0..self.phases() {
                        let first = (b + s - p % s) % s;
                        if first >= w {
                            continue;
                        }
                        let start = ((y % s) * self.phases() + b) * self.phase
                            + (y / s) * self.wq
                            + (first + p) / s;
                        let dst = &mut dst[start..];
                        for (d, &value) in dst.iter_mut().zip(row[first..].iter().step_by(s)) {
                            *d = value;
                        }
                    }
                }
            });
        out
    }

    /// Wide output pixels per image.
    fn pixels(&self) -> usize {
        self.ho * self.wq
    }

    /// An output gradient `[n, cout, ho, wo]` as wide rows, zero in the extra columns.
    fn wide(&self, dy: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.n * self.cout * self.pixels()];
        out.par_chunks_mut(self.pixels())
            .zip(dy.par_chunks(self.ho * self.wo))
            .for_each(|(dst, src)| {
                for (wide_row, row) in dst.chunks_mut(self.wq).zip(src.chunks(self.wo)) {
                    wide_row[..self.wo].copy_from_slice(row);
                }
            });
        out
    }
}

/// How [`taps`] lays out each offset's matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// `[cout, cin]` for offset `(i, j)`: the forward pass.
    Forward,
    /// `[cin, cout]` for offset `(k-1-i, k-1-j)`: the input gradient as a stride-1 convolution.
    Flipped,
}

/// The kernel `[cout, cin, k, k]` as `k k` matrices, offset `(i, j)` at `i k + j`, the matrices
/// in parallel: one-image inference at 224 px spent 7 % of its time here on one thread (a
/// 256-channel 3x3 kernel, forward / flipped: 1.2 / 1.5 ms on one thread, 0.6 / 1.0 on two).
pub fn taps(weight: &[f32], [cout, cin, k, _]: [usize; 4], arrangement: Arrangement) -> Vec<f32> {
    let kk = k * k;
    let mut out = vec![0f32; kk * cout * cin];
    out.par_chunks_mut(cout * cin)
        .enumerate()
        .for_each(|(tap, dst)| {
            for co in 0..cout {
                for c in 0..cin {
                    let at = (co * cin + c) * kk;
                    match arrangement {
                        Arrangement::Forward => dst[co * cin + c] = weight[at + tap],
                        Arrangement::Flipped => dst[c * cout + co] = weight[at + kk - 1 - tap],
                    }
                }
            }
        });
    out
}

/// The convolution of `x` (`[n, cin, h, w]`, contiguous) with the kernel matrices of [`taps`]
/// ([`Arrangement::Forward`]; [`Arrangement::Flipped`] with the output gradient as `x` gives the
/// input gradient of a stride-1 convolution): `[n, cout, ho, wo]`, contiguous. An `epilogue` is
/// applied per output channel as the tiles are written out (inference BatchNorm and ReLU, at no
/// extra pass over the output).
pub fn forward(
    x: &[f32],
    taps: &[f32],
    g: &Geometry,
    epilogue: Option<&ChannelAffine>,
) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.cin * g.h * g.w, "input length");
    assert_eq!(taps.len(), g.k * g.k * g.cout * g.cin, "kernel length");
    let padded = g.padded(x);
    assemble(
        g,
        g.wq,
        rows_per_tile(g, g.wq),
        epilogue,
        |b, first, rows| {
            let image = &padded[b * g.cin * g.plane()..][..g.cin * g.plane()];
            tile(image, taps, g, first, rows)
        },
    )
}

/// Tiles over the whole batch at least, where maps allow: one image's 14 x 14 map (`layer2` at
/// 112 px, `layer3` at 224) fits one tile of [`TILE_PIXELS`], which left all but one core idle
/// for single images (one-image inference, medians of three interleaved runs: 112 px 21-30 ->
/// 19-26 ms, 224 px 62-66 -> 51-64 ms). A constant rather than the thread count, so that the
/// tiles, and with them the results, do not depend on the number of threads.
pub const MIN_TILES: usize = 4;

/// Output rows per tile: about [`TILE_PIXELS`] values of `row_len` per row, fewer for batches
/// below [`MIN_TILES`] images.
pub fn rows_per_tile(g: &Geometry, row_len: usize) -> usize {
    let tiles_per_image = MIN_TILES.div_ceil(g.n);
    (TILE_PIXELS / row_len)
        .min(g.ho.div_ceil(tiles_per_image))
        .clamp(1, g.ho.max(1))
}

/// The output `[n, cout, ho, wo]` from tiles of `rows_per_tile` whole output rows (the last one
/// of an image shorter), computed in parallel by `tile(image, first row, rows)` as
/// `[cout, rows row_len]` (`row_len >= wo` values per row, the extra ones dropped), with
/// `epilogue` applied per output channel as the tiles are copied out.
pub fn assemble(
    g: &Geometry,
    row_len: usize,
    rows_per_tile: usize,
    epilogue: Option<&ChannelAffine>,
    tile: impl Fn(usize, usize, usize) -> Vec<f32> + Sync,
) -> Vec<f32> {
    let tiles = g.ho.div_ceil(rows_per_tile);
    let per_image = g.cout * g.ho * g.wo;
    let mut out = vec![0f32; g.n * per_image];
    out.par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(b, out_image)| {
            let computed: Vec<(usize, Vec<f32>)> = (0..tiles)
                .into_par_iter()
                .map(|t| {
                    let first = t * rows_per_tile;
                    (first, tile(b, first, rows_per_tile.min(g.ho - first)))
                })
                .collect();
            for (first, acc) in computed {
                let pixels = acc.len() / g.cout;
                for (co, acc_row) in acc.chunks(pixels).enumerate() {
                    for (r, wide_row) in acc_row.chunks(row_len).enumerate() {
                        let dst = &mut out_image[(co * g.ho + first + r) * g.wo..][..g.wo];
                        match epilogue {
                            Some(affine) => affine.apply(&wide_row[..g.wo], co, dst),
                            None => dst.copy_from_slice(&wide_row[..g.wo]),
                        }
                    }
                }
            }
        });
    out
}

/// `rows` wide output rows from `first` of one image: `[cout, rows wq]`.
fn tile(image: &[f32], taps: &[f32], g: &Geometry, first: usize, rows: usize) -> Vec<f32> {
    let pixels = rows * g.wq;
    let mut acc = vec![0f32; g.cout * pixels];
    let start = first * g.wq;
    for i in 0..g.k {
        for j in 0..g.k {
            let tap = i * g.k + j;
            let lhs = &taps[tap * g.cout * g.cin..][..g.cout * g.cin];
            // The bound of `Geometry::phase` keeps the input's reads inside the padded image.
            product(
                [g.cout, pixels, g.cin],
                &mut acc,
                Strides::row_major(pixels),
                tap > 0,
                lhs,
                Strides::row_major(g.cin),
                &image[start + g.offset(i, j)..],
                Strides::row_major(g.plane()),
                gemm::Parallelism::None,
            );
        }
    }
    acc
}

/// Most shares of the images for a weight gradient: each share sums its images into its own
/// partial gradient, in parallel, and the shares are added in order, so the result depends on the
/// shape alone, not on the number of threads.
pub const SHARES: usize = 8;

/// `Σ over images b` of what `add_image(b, acc)` adds into a `len`-value accumulator, taken in
/// up to [`SHARES`] fixed shares of the `n` images (in parallel) and the shares added in order.
pub fn sum_over_images(
    n: usize,
    len: usize,
    add_image: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    let shares = n.clamp(1, SHARES);
    let partials: Vec<Vec<f32>> = (0..shares)
        .into_par_iter()
        .map(|share| {
            let mut acc = vec![0f32; len];
            for b in n * share / shares..n * (share + 1) / shares {
                add_image(b, &mut acc);
            }
            acc
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut sum = parts.next().expect("at least one share");
    for partial in parts {
        sum.iter_mut().zip(&partial).for_each(|(s, p)| *s += p);
    }
    sum
}

/// The weight gradient `[cout, cin, k, k]` of the convolution of `x` (`[n, cin, h, w]`) given the
/// output gradient `dy` (`[n, cout, ho, wo]`): for each offset `(i, j)`,
/// `dW_ij [cout, cin] = sum over images of dY [cout, pixels] x X_ijᵀ [pixels, cin]`, with the
/// wide output gradient zero in its extra columns.
pub fn weight_grad(x: &[f32], dy: &[f32], g: &Geometry) -> Vec<f32> {
    assert_eq!(x.len(), g.n * g.cin * g.h * g.w, "input length");
    assert_eq!(
        dy.len(),
        g.n * g.cout * g.ho * g.wo,
        "output gradient length"
    );
    let padded = g.padded(x);
    let wide = g.wide(dy);
    let (pixels, kk) = (g.pixels(), g.k * g.k);
    let sum = sum_over_images(g.n, kk * g.cout * g.cin, |b, acc| {
        let dy_image = &wide[b * g.cout * pixels..][..g.cout * pixels];
        let image = &padded[b * g.cin * g.plane()..][..g.cin * g.plane()];
        for (tap, dst) in acc.chunks_mut(g.cout * g.cin).enumerate() {
            // `dY [cout, pixels] x X_ijᵀ [pixels, cin]`, added to the share's sum.
            product(
                [g.cout, g.cin, pixels],
                dst,
                Strides::row_major(g.cin),
                true,
                dy_image,
                Strides::row_major(pixels),
                &image[g.offset(tap / g.k, tap % g.k)..],
                Strides {
                    rows: 1,
                    cols: g.plane(),
                },
                gemm::Parallelism::None,
            );
        }
    });
    // [k k, cout, cin] -> [cout, cin, k, k].
    let mut dw = vec![0f32; sum.len()];
    for (tap, matrix) in sum.chunks(g.cout * g.cin).enumerate() {
        for (co_c, &value) in matrix.iter().enumerate() {
            dw[co_c * kk + tap] = value;
        }
    }
    dw
}
