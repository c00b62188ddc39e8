//! Sums over rows of f32 values that vectorize: `LANES` f32 partial sums, added in f64 at the
//! end. A plain `iter().sum()` in f64 (or f32) is one dependent chain of additions, which the
//! compiler may not reorder, so it runs one element per add latency.

/// f32 partial sums per row: as many as one AVX-512 register (four SSE ones) holds, so the sums
/// vectorize, and each partial sum adds up only `len / LANES` terms before the f64 total.
const LANES: usize = 16;

/// `Σ f([rows[0][i], rows[1][i], ...])` over `K` rows of equal length.
#[inline(always)]
pub fn lane_sum<const K: usize>(rows: [&[f32]; K], f: impl Fn([f32; K]) -> f32) -> f64 {
    let [sum] = lane_sums(rows, |values| [f(values)]);
    sum
}

/// `M` sums at once, `Σ f(...)[m]`, in one read of the `K` rows (see [`lane_sum`]).
#[inline(always)]
pub fn lane_sums<const K: usize, const M: usize>(
    rows: [&[f32]; K],
    f: impl Fn([f32; K]) -> [f32; M],
) -> [f64; M] {
    let len = rows.first().map_or(0, |r| r.len());
    debug_assert!(rows.iter().all(|r| r.len() == len), "rows of equal length");
    let full = len / LANES * LANES;
    let mut lanes = [[0f32; LANES]; M];
    for start in (0..full).step_by(LANES) {
        let chunks: [&[f32; LANES]; K] = rows.map(|r| {
            r[start..start + LANES]
                .try_into()
                .expect("a chunk of LANES values")
        });
        for l in 0..LANES {
            let values = f(chunks.map(|c| c[l]));
            for (lane, value) in lanes.iter_mut().zip(values) {
                lane[l] += value;
            }
        }
    }
    let mut sums = lanes.map(|lane| lane.iter().map(|&v| f64::from(v)).sum::<f64>());
    for i in full..len {
        for (sum, value) in sums.iter_mut().zip(f(rows.map(|r| r[i]))) {
            *sum += f64::from(value);
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::{lane_sum, lane_sums};

    #[test]
    fn sums_every_element_once_including_the_tail() {
        for len in [0, 1, 15, 16, 17, 100] {
            let a: Vec<f32> = (0..len).map(|i| i as f32).collect();
            let b: Vec<f32> = (0..len).map(|i| (i % 3) as f32).collect();
            let expected: f64 = (0..len).map(|i| (i * (i % 3)) as f64).sum();
            assert_eq!(lane_sum([&a, &b], |[x, y]| x * y), expected, "len {len}");
            let [products, firsts] = lane_sums([&a, &b], |[x, y]| [x * y, x]);
            assert_eq!(products, expected, "len {len}");
            assert_eq!(firsts, (0..len).map(|i| i as f64).sum::<f64>(), "len {len}");
        }
    }
}
