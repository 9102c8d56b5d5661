//! The `gemm` crate's matrix multiply for the kernels: on the rayon pool natively and in the
//! threaded wasm build, on the calling thread in the single-threaded one. The kernels' other
//! data-parallel loops are `crate::parallel`'s.

use crate::parallel::{par_each, threads};

/// Widest product whose rows are split among tasks here ([`rows_per_task`]); wider ones are
/// left to the `gemm` crate's own threads.
const SPLIT_MAX_COLS: usize = 256;

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, all row-major.
///
/// A narrow product (a batch-1 im2col block at 14×14 or 7×7) runs as tasks of rows, one GEMM
/// each: in a wasm ResNet-50 batch-1 profile one pool thread waited a third of the time, much of
/// it while the `gemm` crate ran such products on the other. Each task packs the whole `rhs`,
/// so wider products stay with the crate's own threads (at 1,024 columns, ResNet-18's batch-8
/// 7×7 blocks were split too, and measured no better).
pub(super) fn gemm_rows(lhs: &[f32], rhs: &[f32], dst: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && dst.len() >= m * n);
    let rows = if n <= SPLIT_MAX_COLS {
        rows_per_task(m, 1, threads())
    } else {
        m
    };
    if rows >= m {
        // SAFETY: the three slices hold the m×k, k×n and m×n row-major matrices described by
        // the strides (checked above), and `dst` does not alias the inputs (it is borrowed
        // mutably).
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
        return;
    }
    let out = SharedMut(dst.as_mut_ptr());
    par_each(m.div_ceil(rows), |part| {
        // The whole wrapper, not its field, so that the closure is Sync.
        let out = &out;
        let r = part * rows..((part + 1) * rows).min(m);
        // SAFETY: as above, for rows `r` of `lhs` and `dst`; no other task writes those rows
        // of `dst`, which outlives the tasks (par_each returns after all).
        unsafe {
            gemm_strided(
                [r.len(), n, k],
                (out.0.add(r.start * n), n),
                (lhs.as_ptr().add(r.start * k), 1, k),
                (rhs.as_ptr(), 1, n),
                gemm::Parallelism::None,
                false,
            );
        }
    });
}

/// Output rows one task computes: all of them, unless the tasks are too few to keep every
/// thread busy; then enough parts for 4 tasks a thread (slack for a thread the system takes
/// away for a moment), each a multiple of 16 rows and at least 32, so that the GEMM's
/// microkernel still runs whole. (`gemm_rows`' narrow products; the 1×1 convolutions split
/// their output channels this way until their few-block GEMMs went to the `gemm` crate's own
/// threads, `pointwise.rs`.)
pub(super) fn rows_per_task(c_out: usize, tasks: usize, threads: usize) -> usize {
    let want = 4 * threads;
    if threads <= 1 || tasks >= want {
        return c_out;
    }
    let parts = want.div_ceil(tasks);
    c_out
        .div_ceil(parts)
        .next_multiple_of(16)
        .max(32)
        .min(c_out)
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
    lhs: (*const f32, usize, usize),
    rhs: (*const f32, usize, usize),
    parallelism: gemm::Parallelism,
    accumulate: bool,
) {
    // SAFETY: forwarded to the caller's contract.
    unsafe {
        gemm_any(
            [m, n, k],
            (dst, 1, dst_rs),
            lhs,
            rhs,
            parallelism,
            accumulate,
        )
    }
}

/// [`gemm_strided`] computed as its transpose, `dstᵀ = rhsᵀ · lhsᵀ`, without accumulating:
/// the `gemm` crate packs a right-hand side whose rows are not contiguous (`rhs_rs != 1`) and a
/// row-major left-hand side, and in the transpose a row-major weight matrix is read in place.
///
/// # Safety
/// As [`gemm_strided`].
pub(super) unsafe fn gemm_strided_t(
    [m, n, k]: [usize; 3],
    (dst, dst_rs): (*mut f32, usize),
    (lhs, lhs_cs, lhs_rs): (*const f32, usize, usize),
    (rhs, rhs_cs, rhs_rs): (*const f32, usize, usize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: the same elements as the caller's product, described transposed.
    unsafe {
        gemm_any(
            [n, m, k],
            (dst, dst_rs, 1),
            (rhs, rhs_rs, rhs_cs),
            (lhs, lhs_rs, lhs_cs),
            parallelism,
            false,
        )
    }
}

/// The `gemm` crate's call with every stride given: `dst` and both operands as
/// `(pointer, column stride, row stride)`.
///
/// # Safety
/// As [`gemm_strided`].
unsafe fn gemm_any(
    [m, n, k]: [usize; 3],
    (dst, dst_cs, dst_rs): (*mut f32, usize, usize),
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
            dst_cs as isize,
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
pub(super) fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::Rayon(0)
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::None
}

#[cfg(test)]
mod tests {
    use super::rows_per_task;

    #[test]
    fn channels_are_split_only_when_blocks_are_too_few() {
        // enough blocks (batch 8 at 14×14): one task per block, all channels
        assert_eq!(rows_per_task(672, 8, 2), 672);
        // one thread: never split
        assert_eq!(rows_per_task(672, 1, 1), 672);
        // batch 1 at 7×7 on 2 threads: 8 parts of a multiple of 16 rows
        assert_eq!(rows_per_task(1152, 1, 2), 144);
        assert_eq!(1152usize.div_ceil(144), 8);
        // narrow layers keep at least 32 rows a task
        assert_eq!(rows_per_task(80, 1, 2), 32);
        assert_eq!(rows_per_task(16, 1, 2), 16);
        // 4 blocks on 2 threads: 2 parts
        assert_eq!(rows_per_task(480, 4, 2), 240);
    }
}
