//! What a native binary asks of the C allocator before it runs a backbone.
//!
//! A forward pass frees and allocates activations of 1–50 MB at every layer. glibc hands blocks
//! that large back to the kernel on free (above its mmap threshold, or at the top of the heap
//! above its trim threshold), so the next layer's output is faulted back in page by page and
//! zeroed by the kernel: ~10% of native ResNet-18's time went to the page-fault path (perf), and
//! the browser's wasm allocator, which never returns memory, does not pay it. Keeping freed
//! memory in the process made `bench_embed` 10–23% faster (docs/BENCHMARKS.md) with the peak
//! unchanged: the same blocks serve the next layer and the next batch.

/// Keep freed memory for reuse. Call once at the start of a native binary (the CLI and
/// `bench_embed` do); a no-op where the C library is not glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes two tuning parameters of glibc's malloc, which takes its own
    // lock for it; no memory is touched.
    unsafe {
        // 256 MB: above every activation of the backbones here at batch 16, so none is mmapped.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
