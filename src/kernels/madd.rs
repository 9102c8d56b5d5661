//! The multiply-add of the wasm builds' SIMD128 kernels (`depthwise.rs`, `depthwise_tiles.rs`):
//! in the relaxed-SIMD build (`pkg-cpu-relaxed/`) one `f32x4.relaxed_madd`, an FMA on x86-64 and
//! ARM; in the others a multiply and an add. Callers in the relaxed build enable `relaxed-simd`
//! too, so that it inlines.

use core::arch::wasm32::v128;

/// `a·b + c`.
#[cfg(feature = "relaxed-simd")]
#[inline]
#[target_feature(enable = "simd128,relaxed-simd")]
pub(super) fn madd(a: v128, b: v128, c: v128) -> v128 {
    core::arch::wasm32::f32x4_relaxed_madd(a, b, c)
}

/// `a·b + c`.
#[cfg(not(feature = "relaxed-simd"))]
#[inline(always)]
pub(super) fn madd(a: v128, b: v128, c: v128) -> v128 {
    use core::arch::wasm32::{f32x4_add, f32x4_mul};
    f32x4_add(f32x4_mul(a, b), c)
}
