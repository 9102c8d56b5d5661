//! What the wasm builds' SIMD128 kernels (`depthwise.rs`, `depthwise_tiles.rs`, `winograd.rs`)
//! share: the multiply-add and the 4×4 transpose.
//!
//! The multiply-add is, in the relaxed-SIMD build (`pkg-cpu-relaxed/`), one
//! `f32x4.relaxed_madd`, an FMA on x86-64 and ARM; in the others a multiply and an add. Callers
//! in the relaxed build enable `relaxed-simd` too, so that it inlines.

use core::arch::wasm32::{i32x4_shuffle, v128};

/// The 4×4 transpose: `r[i]` lane `j` becomes lane `i` of the result's `j`.
#[inline(always)]
pub(super) fn transpose(r: [v128; 4]) -> [v128; 4] {
    let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0], r[1]);
    let t1 = i32x4_shuffle::<2, 6, 3, 7>(r[0], r[1]);
    let t2 = i32x4_shuffle::<0, 4, 1, 5>(r[2], r[3]);
    let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2], r[3]);
    [
        i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
        i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
        i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
    ]
}

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
