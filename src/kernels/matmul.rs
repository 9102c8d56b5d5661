//! The `gemm` crate's matrix multiply for the kernels: on the rayon pool natively and in the
//! threaded wasm build, on the calling thread in the single-threaded one. The kernels' other
//! data-parallel loops are `crate::parallel`'s.

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, all row-major.
pub(super) fn gemm_rows(lhs: &[f32], rhs: &[f32], dst: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && dst.len() >= m * n);
    // SAFETY: the three slices hold the m×k, k×n and m×n row-major matrices described by the
    // strides (checked above), and `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        gemm_strided(
            [m, n, k],
            (dst.as_mut_ptr(), n),
            (lhs.as_ptr(), 1, k),
            (rhs.as_ptr(), 1, n),
            parallelism(),
            false,
        );
    }
}

/// A buffer the tasks of one call share, each writing a part no other task touches (see the
/// SAFETY notes where it is written).
pub(super) struct SharedMut(pub *mut f32);
// SAFETY: see above; the buffer outlives the tasks (they finish before the call returns).
unsafe impl Sync for SharedMut {}

/// `dst = lhs · rhs` (`dst += lhs · rhs` when `accumulate`) for `[m, n, k]`-shaped operands;
/// `dst` has unit column stride and the given row stride, `lhs` and `rhs` are
/// `(pointer, column stride, row stride)`.
///
/// # Safety
/// Every element the shapes and strides address must be inside its allocation, and `dst`'s
/// elements must not overlap the inputs' or be written by anyone else meanwhile.
pub(super) unsafe fn gemm_strided(
    [m, n, k]: [usize; 3],
    (dst, dst_rs): (*mut f32, usize),
    (lhs, lhs_cs, lhs_rs): (*const f32, usize, usize),
    (rhs, rhs_cs, rhs_rs): (*const f32, usize, usize),
    parallelism: gemm::Parallelism,
    accumulate: bool,
) {
    // SAFETY: forwarded to the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::Rayon(0)
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::None
}
