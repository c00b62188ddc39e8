//! `gemm`'s product on slices with explicit strides, its bounds checked: the one place cucn's
//! convolution kernels call into `gemm`'s `unsafe` API.

/// Rows and columns strides of a matrix inside a slice: element `(r, c)` at `r * rows + c * cols`.
#[derive(Debug, Clone, Copy)]
pub struct Strides {
    pub rows: usize,
    pub cols: usize,
}

impl Strides {
    /// A row-major matrix with `cols` values per row.
    pub fn row_major(cols: usize) -> Self {
        Self {
            rows: cols,
            cols: 1,
        }
    }

    /// Whether every element of a `rows x cols` matrix with these strides lies in `len` values.
    fn fits(self, [rows, cols]: [usize; 2], len: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rows + (cols - 1) * self.cols < len
    }
}

/// `dst [m, n] (+)= lhs [m, k] x rhs [k, n]`: added to `dst` when `accumulate`, written
/// otherwise. Panics if a matrix does not fit its slice.
#[allow(clippy::too_many_arguments)]
pub fn product(
    [m, n, k]: [usize; 3],
    dst: &mut [f32],
    dst_strides: Strides,
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: Strides,
    rhs: &[f32],
    rhs_strides: Strides,
    parallelism: gemm::Parallelism,
) {
    assert!(
        dst_strides.fits([m, n], dst.len()),
        "product output too short"
    );
    assert!(lhs_strides.fits([m, k], lhs.len()), "left factor too short");
    assert!(
        rhs_strides.fits([k, n], rhs.len()),
        "right factor too short"
    );
    let signed = |v: usize| v as isize;
    // SAFETY: every element read or written lies inside its slice by the assertions above, and
    // `dst` is borrowed mutably, so it overlaps neither factor.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            signed(dst_strides.cols),
            signed(dst_strides.rows),
            accumulate,
            lhs.as_ptr(),
            signed(lhs_strides.cols),
            signed(lhs_strides.rows),
            rhs.as_ptr(),
            signed(rhs_strides.cols),
            signed(rhs_strides.rows),
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}
