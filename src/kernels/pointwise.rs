//! 1×1 stride-1 convolutions (EfficientNet's expand and project convolutions, ResNet-50's
//! bottlenecks): one GEMM per block of output pixels on the NCHW data as it lies, then the bias,
//! the residual and the activation added to each row of the block while it is still in cache.
//! (The block used to hold the bias and residual before the GEMM accumulated onto it: one more
//! pass over it, and the GEMM reading it back; with the activation after, that pass and the
//! rows' own were 6–8% of a wasm Lite0 forward in a profile.)
//!
//! burn-flex's 1×1 path multiplies the same way but then adds the bias, applies the activation
//! and adds the residual in three more passes over the whole output (memory-bound, on outputs of
//! up to 4.8 MB an image): ~8% of a native EfficientNet-Lite0 forward in a profile, against
//! ~25% for all of its GEMMs.
//!
//! The 14×14 and 7×7 stages are multiplied image by image too: gathering their columns across
//! images first (the im2col path of `conv.rs`, which does that for 3×3 convolutions) measured no
//! faster for ResNet-50 and slower for EfficientNet-Lite0, natively (docs/BENCHMARKS.md).

use super::geometry::{Geometry, Operands};
use super::matmul::{SharedMut, gemm_strided_t, parallelism};
use crate::parallel::{par_each, threads};

/// Output pixels of one block: `c_out × BLOCK_COLS` floats stay within L2 for every backbone's
/// widths (1,152 × 256 × 4 B = 1.2 MB at the widest), and a GEMM this wide runs at speed.
const BLOCK_COLS: usize = 256;

/// Whether `g` is a 1×1 convolution this module computes.
pub(super) fn applies(g: &Geometry) -> bool {
    !g.depthwise
        && (g.kh, g.kw) == (1, 1)
        && g.stride == [1, 1]
        && g.pad == [0, 0]
        && (g.oh, g.ow) == (g.h, g.w)
}

/// NCHW `input`, `[C_out, C_in, 1, 1]` `weight` -> NCHW `act(conv + bias + residual)`.
pub(super) fn run(g: &Geometry, op: &Operands) -> Vec<f32> {
    let plane = g.h * g.w;
    let blocks = plane.div_ceil(BLOCK_COLS);
    // Too few blocks to keep every thread busy (batch 1 at 28×28 and below): each block's GEMM
    // on the `gemm` crate's own threads. Split into tasks of output channels instead (until
    // this), every task packed the whole block of activations again, and on 2 threads a batch-1
    // EfficientNet-Lite0 forward's GEMM took 1.43× its one-thread time: this made it 0.965–0.988
    // the time, and ResNet-50's 0.961 (bench/ab.mjs, wasm).
    let parallelism = if g.batch * blocks < 4 * threads() {
        parallelism()
    } else {
        gemm::Parallelism::None
    };
    let len = g.batch * g.c_out * plane;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let dst = SharedMut(out.as_mut_ptr());
    par_each(g.batch * blocks, |task| {
        // The whole wrapper, not its field, so that the closure is Sync.
        let dst = &dst;
        let (image, col) = (task / blocks, task % blocks * BLOCK_COLS);
        let n = BLOCK_COLS.min(plane - col);
        let base = image * g.c_out * plane + col;
        // SAFETY: dst is this task's `c_out × n` block (row stride `plane`): columns
        // `col..col + n` of its image's rows, a region no other task touches, inside `out`'s
        // capacity; `out` outlives the tasks (par_each returns after all). The weight is
        // `[c_out, c_in]` and the input block `[c_in, n]` with row stride `plane`, all inside
        // their slices (`input.len() == batch·c_in·plane`). The GEMM writes the block without
        // reading it. Transposed, so that the weights are read in place and only the input
        // block is packed (Lite0's batch-1 forward 0.96–0.99× the time, bench/ab.mjs).
        unsafe {
            gemm_strided_t(
                [g.c_out, n, g.c_in],
                (dst.0.add(base), plane),
                (op.weight.as_ptr(), 1, g.c_in),
                (
                    op.input.as_ptr().add(image * g.c_in * plane + col),
                    1,
                    plane,
                ),
                parallelism,
            );
        }
        for co in 0..g.c_out {
            // SAFETY: as above; the GEMM wrote the row.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(base + co * plane), n) };
            op.finish(row, base + co * plane, op.bias.map_or(0.0, |b| b[co]));
        }
    });
    // SAFETY: the tasks wrote all `len` values: together they cover every column block of every
    // image, all channels, each value first by the GEMM.
    unsafe { out.set_len(len) };
    out
}
