//! 1×1 stride-1 convolutions (EfficientNet's expand and project convolutions, ResNet-50's
//! bottlenecks): one GEMM per block of output pixels on the NCHW data as it lies, written into a
//! block that already holds the bias (and the residual), so the multiply accumulates onto them,
//! and the activation applied to the block while it is still in cache.
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
use super::matmul::{SharedMut, gemm_strided};
use crate::parallel::par_each;

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
    let mut out = vec![0f32; g.batch * g.c_out * plane];
    let dst = SharedMut(out.as_mut_ptr());
    par_each(g.batch * blocks, |task| {
        // The whole wrapper, not its field, so that the closure is Sync.
        let dst = &dst;
        let (image, col) = (task / blocks, task % blocks * BLOCK_COLS);
        let n = BLOCK_COLS.min(plane - col);
        let base = image * g.c_out * plane + col;
        // SAFETY: each task writes only columns `col..col + n` of its image's `c_out` rows, a
        // region no other task touches; `out` outlives the tasks (par_each returns after all).
        let row =
            |co: usize| unsafe { std::slice::from_raw_parts_mut(dst.0.add(base + co * plane), n) };
        for co in 0..g.c_out {
            let b = op.bias.map_or(0.0, |b| b[co]);
            let row = row(co);
            op.start(row, base + co * plane, b);
        }
        // SAFETY: dst is this task's `c_out × n` block (row stride `plane`) described above;
        // the weight is `[c_out, c_in]` and the input block `[c_in, n]` with row stride `plane`,
        // both inside their slices (`input.len() == batch·c_in·plane`).
        unsafe {
            gemm_strided(
                [g.c_out, n, g.c_in],
                (dst.0.add(base), plane),
                (op.weight.as_ptr(), 1, g.c_in),
                (
                    op.input.as_ptr().add(image * g.c_in * plane + col),
                    1,
                    plane,
                ),
                gemm::Parallelism::None,
                true,
            );
        }
        for co in 0..g.c_out {
            op.act.apply_slice(row(co));
        }
    });
    out
}
