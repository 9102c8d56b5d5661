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
use super::matmul::{SharedMut, gemm_strided_t, rows_per_task};
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
    let rows = rows_per_task(g.c_out, g.batch * blocks, threads());
    let parts = g.c_out.div_ceil(rows);
    let len = g.batch * g.c_out * plane;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let dst = SharedMut(out.as_mut_ptr());
    par_each(g.batch * blocks * parts, |task| {
        // The whole wrapper, not its field, so that the closure is Sync.
        let dst = &dst;
        let (image, rest) = (task / (blocks * parts), task % (blocks * parts));
        let col = rest / parts * BLOCK_COLS;
        let channels = rest % parts * rows..((rest % parts + 1) * rows).min(g.c_out);
        let n = BLOCK_COLS.min(plane - col);
        let base = image * g.c_out * plane + col;
        // SAFETY: dst is this task's `channels × n` block (row stride `plane`): columns
        // `col..col + n` of its image's rows `channels`, a region no other task touches, inside
        // `out`'s capacity; `out` outlives the tasks (par_each returns after all). The weight's
        // rows `channels` are `[channels, c_in]` and the input block `[c_in, n]` with row stride
        // `plane`, all inside their slices (`input.len() == batch·c_in·plane`). The GEMM writes
        // the block without reading it. Transposed, so that the weights are read in place and
        // only the input block is packed: at batch 1 the channels are split among tasks, and each
        // packed its rows of the weights (Lite0's batch-1 forward 0.96–0.99× the time, bench/ab.mjs).
        unsafe {
            gemm_strided_t(
                [channels.len(), n, g.c_in],
                (dst.0.add(base + channels.start * plane), plane),
                (op.weight.as_ptr().add(channels.start * g.c_in), 1, g.c_in),
                (
                    op.input.as_ptr().add(image * g.c_in * plane + col),
                    1,
                    plane,
                ),
                gemm::Parallelism::None,
            );
        }
        for co in channels {
            // SAFETY: as above; the GEMM wrote the row.
            let row = unsafe { std::slice::from_raw_parts_mut(dst.0.add(base + co * plane), n) };
            op.finish(row, base + co * plane, op.bias.map_or(0.0, |b| b[co]));
        }
    });
    // SAFETY: the tasks wrote all `len` values: together they cover every channel of every
    // column block of every image, each value first by the GEMM.
    unsafe { out.set_len(len) };
    out
}
