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

/// `f(i)` for every `i < parts`, each a task of its own on one of the pool's threads, the
/// results in order, the calling thread waiting for them; at once where the caller is a pool
/// thread, or where there is no pool. Each loop inside, called from outside the pool, would
/// hand its work in and put the caller to sleep on a lock until it is done: in the threaded wasm
/// build a batch-1 EfficientNet-Lite0 forward made ~60 such calls, and waking and sleeping
/// (`memory.atomic.notify`/`wait` through V8) was ~19% of the threads' busy time in a profile.
/// Passes run here pay that once; their loops start from inside the pool.
///
/// With fewer parts than threads (a batch of one photo), the threads without a part do not go
/// to sleep while the parts run: each runs a task that takes the pool's pending work, or spins,
/// until they are done. Asleep, a thread had to be woken for each of the pass's loops, and a
/// batch-1 loop at 14×14 or 7×7 was mostly over before it joined in (XNNPACK's thread pool spins
/// the same way while an operator runs). With a part each, the threads are busy anyway and a
/// spinning one would only take a core from the page's own work.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(crate) fn on_pool_each<R: Send>(parts: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    let run = || (0..parts).into_par_iter().with_max_len(1).map(&f).collect();
    if rayon::current_thread_index().is_some() {
        return run();
    }
    let done = AtomicBool::new(false);
    let done = &done;
    // `scope` runs its body on a pool thread when called from outside the pool. The spinning
    // tasks are pushed before the parts' jobs, so a thread waiting on a stolen job never finds
    // one of them in its own deque (thieves take the oldest first).
    rayon::scope(|s| {
        for _ in parts..threads() {
            s.spawn(move |_| {
                while !done.load(Ordering::Acquire) {
                    if rayon::yield_now() != Some(rayon::Yield::Executed) {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let r = run();
        done.store(true, Ordering::Release);
        r
    })
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
