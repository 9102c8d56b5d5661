//! Data-parallel loops over the rayon pool (natively, and in the threaded wasm build), or on the
//! calling thread in the single-threaded wasm build: the one place that tells the builds apart
//! for them. The CPU kernels (`kernels/`) fill rows with them, and the session (`session/`)
//! decodes and thumbnails photos with them.

/// Fewest values one task of [`par_rows`] fills where filling a value is a copy or a few
/// operations: below this the pool's wake-ups cost more than the work.
pub(crate) const COPY_TASK_VALUES: usize = 1 << 15;

/// `fill(r, row)` for every `n`-long row of `rows`, on all cores where there are several, each
/// task filling at least `min_task` values (see [`COPY_TASK_VALUES`]).
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn par_rows<T: Send>(
    rows: &mut [T],
    n: usize,
    min_task: usize,
    fill: impl Fn(usize, &mut [T]) + Sync,
) {
    use rayon::prelude::*;
    // A task per row is too fine for short rows (a batch-1 7×7 stage has 49-long rows, 4,608 of
    // them): in the threaded wasm build that made ResNet-18 slower on 2 threads than on 1.
    let min_rows = min_task.div_ceil(n.max(1));
    rows.par_chunks_mut(n)
        .enumerate()
        .with_min_len(min_rows)
        .for_each(|(r, row)| fill(r, row));
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn par_rows<T>(
    rows: &mut [T],
    n: usize,
    _min_task: usize,
    fill: impl Fn(usize, &mut [T]),
) {
    for (r, row) in rows.chunks_mut(n).enumerate() {
        fill(r, row);
    }
}

/// `f(i)` for every `i < count`, each a task of its own on all cores where there are several.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn par_each(count: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..count).into_par_iter().for_each(f);
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn par_each(count: usize, f: impl Fn(usize)) {
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

/// `f()` on one of the pool's threads, the calling thread waiting for it; at once where the
/// caller is a pool thread, or where there is no pool. Each loop above, called from outside the
/// pool, hands its work in and puts the caller to sleep on a lock until it is done: in the
/// threaded wasm build a batch-1 EfficientNet-Lite0 forward made ~60 such calls, and waking
/// and sleeping (`memory.atomic.notify`/`wait` through V8) was ~19% of the threads' busy time in
/// a profile. A backbone pass run here pays that once; its loops start from inside the pool.
///
/// While `f` runs, the pool's other threads do not go to sleep: each runs a task that takes
/// the pool's pending work, or spins, until `f` is done. Asleep, a thread had to be woken for
/// each of the pass's ~60 loops (`memory.atomic.notify`, then the wait in V8 returning), and a
/// batch-1 loop at 14×14 or 7×7 was mostly over before it joined in (XNNPACK's thread pool
/// spins the same way while an operator runs).
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let done = AtomicBool::new(false);
    let done = &done;
    // `scope` runs its body on a pool thread when called from outside the pool.
    rayon::scope(|s| {
        for _ in 1..threads() {
            s.spawn(move |_| {
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let r = f();
        done.store(true, Ordering::Release);
        r
    })
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn on_pool<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `f(i)` for every `i < parts`, each a task of its own on the pool (see `on_pool`), the
/// results in order: independent passes run side by side, their loops' tasks shared.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn on_pool_each<R: Send>(parts: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    on_pool(|| (0..parts).into_par_iter().with_max_len(1).map(f).collect())
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(crate) fn on_pool_each<R>(parts: usize, f: impl Fn(usize) -> R) -> Vec<R> {
    (0..parts).map(f).collect()
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
