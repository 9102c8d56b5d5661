//! GEMM and data-parallel loops over the rayon pool (natively, and in the threaded wasm build),
//! or on the calling thread in the single-threaded wasm build.

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
pub(super) fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::Rayon(0)
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::None
}

/// `fill(r, row)` for every `n`-long row of `rows`, on all cores where there are several.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(super) fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    /// Fewest f32 one task fills: below this the pool's wake-ups cost more than the copy.
    const MIN_TASK_FLOATS: usize = 1 << 15;
    // A task per row is too fine for short rows (a batch-1 7×7 stage has 49-long rows, 4,608 of
    // them): in the threaded wasm build that made ResNet-18 slower on 2 threads than on 1.
    let min_rows = MIN_TASK_FLOATS.div_ceil(n.max(1));
    rows.par_chunks_mut(n)
        .enumerate()
        .with_min_len(min_rows)
        .for_each(|(r, row)| fill(r, row));
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32])) {
    for (r, row) in rows.chunks_mut(n).enumerate() {
        fill(r, row);
    }
}

/// `f(i)` for every `i < count`, each a task of its own on all cores where there are several.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(super) fn par_each(count: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..count).into_par_iter().for_each(f);
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn par_each(count: usize, f: impl Fn(usize)) {
    (0..count).for_each(f);
}

/// `f(i, item)` for every item, in order, on all cores where there are several: decoding,
/// resizing and thumbnailing photos while the other threads would otherwise wait for the
/// backbone's next batch.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    f: impl Fn(usize, &T) -> R + Sync + Send,
) -> Vec<R> {
    use rayon::prelude::*;
    items.par_iter().enumerate().map(|(i, t)| f(i, t)).collect()
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn par_map<T, R>(items: &[T], f: impl Fn(usize, &T) -> R) -> Vec<R> {
    items.iter().enumerate().map(|(i, t)| f(i, t)).collect()
}

/// Threads the data-parallel loops run on.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn threads() -> usize {
    1
}
