//! Dense k×k convolutions of the frozen backbone on the CPU backend: im2col over the whole
//! batch, then one large GEMM per block of output columns.
//!
//! burn-flex's own conv2d tiles every image separately (512 output pixels a tile) and calls GEMM
//! once per tile, so the late ResNet stages (14×14 and 7×7 outputs) multiply with N = 196 or 49
//! and pack the whole weight matrix again for every image of the batch: in a profile of
//! ResNet-18 at batch 16, packing took as long as a quarter of the multiply itself. Here a
//! column block spans images, so each block packs the weights once for ≥ ~1,000 columns. The
//! weights need no reordering: `[C_out, C_in, kh, kw]` row-major already is the `[C_out, K]`
//! matrix whose rows match im2col's `(c_in, ky, kx)` order.
//!
//! Depthwise convolutions (EfficientNet) run here too (`depthwise.rs`; in the wasm builds small
//! planes and stride 2 in channel tiles, `depthwise_tiles.rs`), with the "SAME" padding applied
//! inside the kernel: burn pads an asymmetric input explicitly, one more copy of every
//! activation.
//! The ReLU/ReLU6 that follows each convolution is applied while the output is written.
//!
//! 3×3 stride-1 convolutions on enough tiles go to Winograd's algorithm (`winograd.rs`), 1×1
//! stride-1 ones on large planes to a GEMM on the data as it lies (`pointwise.rs`); a skip
//! connection's residual is added while the output is written (`conv2d_add`).
//!
//! ResNet's stem max pool runs here too (`pool.rs`): burn-flex computes it with indices.
//!
//! Only plain (non-autodiff) CPU tensors take this path; training the last stage and the
//! WebGPU backend keep burn's convolution, as do grouped convolutions other than depthwise.

mod conv;
mod depthwise;
mod depthwise_tiles;
mod geometry;
mod matmul;
mod pointwise;
mod pool;
mod scratch;
#[cfg(target_arch = "wasm32")]
mod simd128;
mod winograd;

use burn::tensor::Tensor;
use burn::tensor::activation::{relu, relu6};

pub use conv::{conv2d, conv2d_add};
pub use pool::max_pool2d;

/// `a.max(b)` as a compare and a select. `f32::max` is LLVM's
/// `maxnum`, which wasm has no instruction for: it becomes a call to `fmaxf`, which pkg/'s
/// prebuilt std cannot inline (the threaded builds rebuild std with LTO and do), so every ReLU'd
/// value of the single-threaded build was one call and its loops did not vectorise (0.6% of a
/// ResNet-50 profile in `fmaxf` alone). A NaN `a` gives `b`, as `f32::max` does; a NaN `b` is
/// kept, where `f32::max` would give `a`.
#[inline(always)]
pub(crate) fn max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// What follows the convolution, applied as the output is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    Relu6,
}

impl Activation {
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => max(v, 0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    /// In place, with the variant chosen once per slice so that the loop vectorises (the
    /// per-value `match` in `apply` kept it scalar).
    pub(crate) fn apply_slice(self, values: &mut [f32]) {
        match self {
            Activation::Identity => {}
            Activation::Relu => values.iter_mut().for_each(|v| *v = max(*v, 0.0)),
            Activation::Relu6 => values.iter_mut().for_each(|v| *v = v.clamp(0.0, 6.0)),
        }
    }

    /// `act(y + residual)`, as burn's tensor ops: the path of calls these kernels do not take.
    pub fn apply_after_add(self, y: Tensor<4>, residual: Option<Tensor<4>>) -> Tensor<4> {
        self.apply_tensor(match residual {
            Some(r) => y + r,
            None => y,
        })
    }

    pub fn apply_tensor(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Activation::Identity => x,
            Activation::Relu => relu(x),
            Activation::Relu6 => relu6(x),
        }
    }
}
