//! Depthwise convolutions (EfficientNet's 3×3 and 5×5, stride 1 and 2): every output plane is
//! its own input plane's `kh×kw` filter.
//!
//! Output rows are computed `LANES` pixels at a time, all taps accumulated in registers before
//! one store: the earlier kernel added each tap to the whole output row in turn, which loaded and
//! stored the row once per tap (25 times for a 5×5) and took ~30% of a native
//! EfficientNet-Lite0 forward in a profile. Each input plane is first copied into a zero-padded
//! one (one pass: ~5% of a native Lite0 forward, against ~17% for the taps), so that no pixel
//! needs a bounds check: EfficientNet's 7×7 and 14×14 planes are mostly border. A stride-2
//! plane's rows are split into their even and odd columns in the same copy, so that every tap
//! reads a contiguous run there too.
//!
//! At stride 1 the whole plane is one run instead of a run per output row: output `(y, x)` is
//! computed at `y·cols + x` of the padded grid (the `kw − 1` columns past each row's end are
//! computed and dropped), so that a 14- or 7-wide plane fills whole vectors. Row by row, a 7-wide
//! row was one vector of four and three pixels one at a time, and the 14×14 and 7×7 stages hold
//! half of Lite0's depthwise multiply-adds: ~34% of a wasm Lite0 forward went to depthwise.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::geometry::{Geometry, Operands};
use super::{Activation, max};
use crate::parallel::{COPY_TASK_VALUES, par_rows};

/// Output pixels accumulated at once: four 128-bit vectors (wasm SIMD128, SSE) or one AVX-512.
const LANES: usize = 16;

/// Tallest kernel taken here (and widest stride: 2); others stay with burn (`applies`).
const MAX_KERNEL: usize = 7;

/// Whether `g` is a depthwise convolution this module computes.
pub(super) fn applies(g: &Geometry) -> bool {
    g.depthwise && g.kh <= MAX_KERNEL && g.stride[1] <= 2
}

/// The zero-padded copy of an input plane: the `rows × cols` pixels the outputs read, at
/// `(y + top, x + left)` for input pixel `(y, x)`; with stride 2 each row holds its even
/// columns, then (from `even`) its odd ones.
struct Padded {
    rows: usize,
    cols: usize,
    even: usize,
}

impl Padded {
    fn new(g: &Geometry) -> Padded {
        let span = |out: usize, s: usize, k: usize, d: usize| (out - 1) * s + (k - 1) * d + 1;
        let cols = span(g.ow, g.stride[1], g.kw, g.dilation[1]);
        Padded {
            rows: span(g.oh, g.stride[0], g.kh, g.dilation[0]),
            cols,
            even: if g.stride[1] == 2 {
                cols.div_ceil(2)
            } else {
                cols
            },
        }
    }

    /// Where tap `kx` reads in a padded row for output column 0 (column `x` reads `x` later).
    fn offset(&self, g: &Geometry, kx: usize) -> usize {
        let shift = kx * g.dilation[1];
        if g.stride[1] == 2 {
            shift % 2 * self.even + shift / 2
        } else {
            shift
        }
    }

    /// Zeros past the last row: the flat run's last taps read up to `(kw − 1)·dilation` beyond.
    fn tail(&self, g: &Geometry) -> usize {
        (g.kw - 1) * g.dilation[1]
    }

    /// `plane` copied into `p`, zeros around it. `p` last held a plane of the call `last`
    /// (`None`: none yet): a plane of the same call writes the same pixels, so the zeros around
    /// them are still there and only the pixels are copied (zeroing the whole padded plane again
    /// was ~half of the copy's time, natively, on Lite0's 14×14 and 7×7 planes).
    fn load(&self, g: &Geometry, plane: &[f32], p: &mut Vec<f32>, last: &mut Option<Geometry>) {
        if *last != Some(*g) {
            p.clear();
            p.resize(self.rows * self.cols + self.tail(g), 0.0);
            *last = Some(*g);
        }
        let [top, left] = g.pad;
        // Input columns `..x1` land inside the padded row, at `x + left` (the rest no output
        // reads).
        let x1 = g.w.min(self.cols.saturating_sub(left));
        if x1 == 0 {
            return;
        }
        for (y, src) in plane.chunks_exact(g.w).enumerate() {
            let row = y + top;
            if row >= self.rows {
                break;
            }
            let dst = &mut p[row * self.cols..(row + 1) * self.cols];
            if g.stride[1] == 2 {
                let (even, odd) = dst.split_at_mut(self.even);
                split_columns(&src[..x1], left, even, odd);
            } else {
                dst[left..left + x1].copy_from_slice(&src[..x1]);
            }
        }
    }
}

/// Input columns `src` at `x + left` of a padded row, even columns into `even` (column `2i` at
/// `i`), odd ones into `odd`: in pairs, one per half, so that the loop vectorises (a branch per
/// column on its parity kept it scalar: ~2.5 ms a Lite0 image in wasm, most of its padded
/// copies, as the stride-2 layers read the largest planes).
fn split_columns(src: &[f32], left: usize, even: &mut [f32], odd: &mut [f32]) {
    // Column `x + left` of a pair's first value `x` (even) is even where `left` is.
    let (first, second) = if left.is_multiple_of(2) {
        (&mut even[left / 2..], &mut odd[left / 2..])
    } else {
        (&mut odd[left / 2..], &mut even[left.div_ceil(2)..])
    };
    let pairs = src.len() / 2;
    let (first, second) = (&mut first[..pairs], &mut second[..pairs]);
    for ((a, b), pair) in first.iter_mut().zip(second).zip(src.chunks_exact(2)) {
        *a = pair[0];
        *b = pair[1];
    }
    if !src.len().is_multiple_of(2) {
        let at = src.len() - 1 + left;
        let half = if at.is_multiple_of(2) { even } else { odd };
        half[at / 2] = src[src.len() - 1];
    }
}

/// Each thread's padded plane (with the call it last held a plane of) and stride-1 output grid.
type Buffers = (Vec<f32>, Option<Geometry>, Vec<f32>);

thread_local! {
    /// Kept from plane to plane and call to call: a fresh pair per plane went through the
    /// allocator twice a plane, which in the threaded wasm build is one lock for all threads
    /// (~6% of a wasm Lite0 forward in a profile).
    static BUFFERS: RefCell<Buffers> = const { RefCell::new((Vec::new(), None, Vec::new())) };
}

/// NCHW `input`, `[C, 1, kh, kw]` `weight` -> NCHW `act(conv + bias + residual)`.
/// Small planes and stride 2 in channel tiles (`depthwise_tiles.rs`) where that is faster, the
/// rest here a plane at a time.
pub(super) fn run(g: &Geometry, op: &Operands) -> Vec<f32> {
    if super::depthwise_tiles::applies(g) {
        super::depthwise_tiles::run(g, op)
    } else {
        planes(g, op)
    }
}

/// [`run`] a plane at a time.
pub(super) fn planes(g: &Geometry, op: &Operands) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let padded = Padded::new(g);
    let offsets: Vec<usize> = (0..g.kw).map(|kx| padded.offset(g, kx)).collect();
    // Written whole by the tasks, not zeroed first: zeroing it here, before the tasks start,
    // was a pass over the output on one thread while the others waited (in a wasm Lite0
    // profile, for a tenth of the time a pool thread waited, the other was zeroing this).
    let len = g.batch * g.c_out * plane_out;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let kernel = row_kernel();
    let flat = g.stride == [1, 1];
    let cols = padded.cols;
    let filter = |bc: usize, o: &mut [MaybeUninit<f32>]| {
        BUFFERS.with_borrow_mut(|(src, last, grid)| {
            let c = bc % g.c_out;
            padded.load(g, &op.input[bc * plane_in..(bc + 1) * plane_in], src, last);
            let taps = &op.weight[c * g.kh * g.kw..][..g.kh * g.kw];
            let b = op.bias.map_or(0.0, |b| b[c]);
            // The padded rows kernel rows `ky` read from output row `oy` on, with their taps.
            let rows_from = |oy: usize, len: usize| {
                let mut rows: [(&[f32], &[f32]); MAX_KERNEL] = [(&[], &[]); MAX_KERNEL];
                for (ky, row) in rows.iter_mut().enumerate().take(g.kh) {
                    let at = (oy * g.stride[0] + ky * g.dilation[0]) * cols;
                    *row = (&src[at..at + len], &taps[ky * g.kw..(ky + 1) * g.kw]);
                }
                rows
            };
            // Without a residual the kernel starts from the bias itself; with one, from the
            // residual and bias written into its output first.
            let start = op.residual.is_none().then_some(b);
            if flat {
                // The grid's columns past `ow` are computed from whatever they hold and dropped.
                if grid.len() < g.oh * cols {
                    grid.resize(g.oh * cols, 0.0);
                }
                let grid = &mut grid[..g.oh * cols];
                if start.is_none() {
                    for (oy, row) in grid.chunks_exact_mut(cols).enumerate() {
                        op.start(&mut row[..g.ow], bc * plane_out + oy * g.ow, b);
                    }
                }
                let rows = rows_from(0, g.oh * cols + padded.tail(g));
                // SAFETY: `row_kernel` returns only kernels this CPU has the features for.
                unsafe { kernel(grid, &rows[..g.kh], &offsets, start, op.act) };
                for (dst, row) in o.chunks_exact_mut(g.ow).zip(grid.chunks_exact(cols)) {
                    dst.iter_mut().zip(&row[..g.ow]).for_each(|(d, &v)| {
                        d.write(v);
                    });
                }
                return;
            }
            // The rows are written in place: zeros first (in cache, on this task's thread).
            o.iter_mut().for_each(|v| {
                v.write(0.0);
            });
            // SAFETY: every value was written just above; MaybeUninit<f32> has f32's layout.
            let o = unsafe { &mut *(o as *mut [MaybeUninit<f32>] as *mut [f32]) };
            for (oy, dst) in o.chunks_exact_mut(g.ow).enumerate() {
                if start.is_none() {
                    op.start(dst, bc * plane_out + oy * g.ow, b);
                }
                let rows = rows_from(oy, cols);
                // SAFETY: as above.
                unsafe { kernel(dst, &rows[..g.kh], &offsets, start, op.act) };
            }
        });
    };
    par_rows(
        &mut out.spare_capacity_mut()[..len],
        plane_out,
        (COPY_TASK_VALUES / (g.kh * g.kw)).max(1),
        filter,
    );
    // SAFETY: the tasks wrote all `len` values, every plane's (flat: each row copied from the
    // grid; else zeroed, then the kernel's).
    unsafe { out.set_len(len) };
    out
}

/// One output row: `dst = act(start + Σ taps · inputs)` over the padded `rows` and their taps,
/// where `start` is `Some(bias)` or, for `None`, what `dst` holds. The bias and the activation
/// in registers: a pass of their own over the output (the bias written first, the activation
/// after) was ~5% of a wasm Lite0 forward in a profile, as much as the padded copies.
type RowKernel = unsafe fn(&mut [f32], &[(&[f32], &[f32])], &[usize], Option<f32>, Activation);

/// The activations as the kernels' `const A: u8` (an enum cannot be a const parameter).
const IDENTITY: u8 = 0;
const RELU: u8 = 1;
const RELU6: u8 = 2;

/// `f::<A>()` with `A` the activation's constant: one monomorphised kernel per activation, so
/// that none tests it per value.
macro_rules! with_activation {
    ($act:expr, $f:ident [$($p:tt),*] ($($arg:expr),*)) => {
        match $act {
            Activation::Identity => $f::<$($p,)* { $crate::kernels::depthwise::IDENTITY }>($($arg),*),
            Activation::Relu => $f::<$($p,)* { $crate::kernels::depthwise::RELU }>($($arg),*),
            Activation::Relu6 => $f::<$($p,)* { $crate::kernels::depthwise::RELU6 }>($($arg),*),
        }
    };
}

#[inline(always)]
fn activate<const A: u8>(v: f32) -> f32 {
    match A {
        RELU => max(v, 0.0),
        RELU6 => v.clamp(0.0, 6.0),
        _ => v,
    }
}

/// The row kernel for this CPU: natively on x86-64 with AVX2 where it has it (the build
/// targets baseline x86-64, whose SSE2 is four lanes), in wasm the SIMD128 one (with relaxed
/// SIMD's fused multiply-add in the relaxed build), else the portable one.
fn row_kernel() -> RowKernel {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        return row_avx2;
    }
    #[cfg(target_arch = "wasm32")]
    return simd128::row;
    #[cfg_attr(target_arch = "wasm32", expect(unreachable_code))]
    row_portable
}

fn row_portable(
    dst: &mut [f32],
    rows: &[(&[f32], &[f32])],
    offsets: &[usize],
    start: Option<f32>,
    act: Activation,
) {
    with_activation!(act, row[LANES, { LANES / 4 }](dst, rows, offsets, start))
}

/// Twice the lanes: four 8-wide accumulators, as many independent adds as the portable
/// kernel keeps in flight.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn row_avx2(
    dst: &mut [f32],
    rows: &[(&[f32], &[f32])],
    offsets: &[usize],
    start: Option<f32>,
    act: Activation,
) {
    with_activation!(act, row[{ 2 * LANES }, { LANES / 2 }](dst, rows, offsets, start))
}

/// `L` pixels at a time, then `Q` (the 14×14 and 7×7 stages are narrower than `L`), then one
/// by one.
#[inline(always)]
fn row<const L: usize, const Q: usize, const A: u8>(
    dst: &mut [f32],
    rows: &[(&[f32], &[f32])],
    offsets: &[usize],
    start: Option<f32>,
) {
    // The start as a constant of the loop: `accumulate`'s body is then the same straight-line
    // code for every call, with no branch for the vectoriser to carry.
    match start {
        Some(b) => row_from::<L, Q, A, false>(dst, rows, offsets, b),
        None => row_from::<L, Q, A, true>(dst, rows, offsets, 0.0),
    }
}

/// `row` starting from `dst` (`LOAD`) or from `bias`.
#[inline(always)]
fn row_from<const L: usize, const Q: usize, const A: u8, const LOAD: bool>(
    dst: &mut [f32],
    rows: &[(&[f32], &[f32])],
    offsets: &[usize],
    bias: f32,
) {
    let mut x = 0;
    while x + L <= dst.len() {
        accumulate::<L, A, LOAD>(dst, x, rows, offsets, bias);
        x += L;
    }
    while x + Q <= dst.len() {
        accumulate::<Q, A, LOAD>(dst, x, rows, offsets, bias);
        x += Q;
    }
    while x < dst.len() {
        accumulate::<1, A, LOAD>(dst, x, rows, offsets, bias);
        x += 1;
    }
}

/// `dst[x..x + N] = act(start + Σ taps · inputs)` over the padded `rows` and their taps, the
/// start `dst[x..x + N]` (`LOAD`) or `bias`.
#[inline(always)]
fn accumulate<const N: usize, const A: u8, const LOAD: bool>(
    dst: &mut [f32],
    x: usize,
    rows: &[(&[f32], &[f32])],
    offsets: &[usize],
    bias: f32,
) {
    let mut acc: [f32; N] = if LOAD {
        dst[x..x + N].try_into().expect("N long")
    } else {
        [bias; N]
    };
    for &(row, w) in rows {
        for (&offset, &wv) in offsets.iter().zip(w) {
            let v: &[f32; N] = row[x + offset..x + offset + N].try_into().expect("N long");
            for (a, &v) in acc.iter_mut().zip(v) {
                *a += wv * v;
            }
        }
    }
    for (d, a) in dst[x..x + N].iter_mut().zip(acc) {
        *d = activate::<A>(a);
    }
}

/// The wasm builds: the taps written with SIMD128's operations, not left to the compiler. The
/// portable kernel's autovectorised form took twice as long in `pkg/` once its accumulators
/// could start from the bias and end in the activation (natively its accumulators had left the
/// registers for the stack, until `accumulate` wrote `act(acc)` by value; in wasm that was not
/// enough): here they are `v128` values. In the relaxed-SIMD build (pkg-cpu-relaxed)
/// every tap is one `f32x4.relaxed_madd` (an FMA on x86-64 and ARM), where the others do a
/// multiply and an add. Eight accumulators, not four: an FMA's latency is the whole chain's, so
/// twice as many independent ones keep both of a core's FMA units busy.
#[cfg(target_arch = "wasm32")]
mod simd128 {
    use core::arch::wasm32::{f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_load, v128_store};

    use super::super::simd128::madd;
    use super::{Activation, RELU, RELU6};

    /// SAFETY (callers): in the relaxed build, only in a module built with relaxed SIMD (the
    /// feature's build).
    #[cfg_attr(
        feature = "relaxed-simd",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    pub(super) unsafe fn row(
        dst: &mut [f32],
        rows: &[(&[f32], &[f32])],
        offsets: &[usize],
        start: Option<f32>,
        act: Activation,
    ) {
        with_activation!(act, row_with[](dst, rows, offsets, start))
    }

    #[inline]
    #[cfg_attr(
        feature = "relaxed-simd",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    fn row_with<const A: u8>(
        dst: &mut [f32],
        rows: &[(&[f32], &[f32])],
        offsets: &[usize],
        start: Option<f32>,
    ) {
        match start {
            Some(b) => row_from::<A, false>(dst, rows, offsets, b),
            None => row_from::<A, true>(dst, rows, offsets, 0.0),
        }
    }

    #[inline]
    #[cfg_attr(
        feature = "relaxed-simd",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    fn row_from<const A: u8, const LOAD: bool>(
        dst: &mut [f32],
        rows: &[(&[f32], &[f32])],
        offsets: &[usize],
        bias: f32,
    ) {
        let mut x = 0;
        while x + 2 * super::LANES <= dst.len() {
            accumulate::<{ 2 * super::LANES / 4 }, A, LOAD>(dst, x, rows, offsets, bias);
            x += 2 * super::LANES;
        }
        while x + 4 <= dst.len() {
            accumulate::<1, A, LOAD>(dst, x, rows, offsets, bias);
            x += 4;
        }
        while x < dst.len() {
            super::accumulate::<1, A, LOAD>(dst, x, rows, offsets, bias);
            x += 1;
        }
    }

    /// `dst[x..x + 4V] = act(start + Σ taps · inputs)`, `V` vectors of four, the start
    /// `dst[x..x + 4V]` (`LOAD`) or `bias`.
    #[inline]
    #[cfg_attr(
        feature = "relaxed-simd",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    fn accumulate<const V: usize, const A: u8, const LOAD: bool>(
        dst: &mut [f32],
        x: usize,
        rows: &[(&[f32], &[f32])],
        offsets: &[usize],
        bias: f32,
    ) {
        let out = &mut dst[x..x + 4 * V];
        // SAFETY: every load and store below is of four floats at `4i` inside a slice of `4V`
        // (`out`, `src`), bounds-checked when sliced; wasm's v128 loads need no alignment.
        unsafe {
            let mut acc = [f32x4_splat(bias); V];
            if LOAD {
                for (i, a) in acc.iter_mut().enumerate() {
                    *a = v128_load(out.as_ptr().add(4 * i).cast::<v128>());
                }
            }
            for &(row, w) in rows {
                for (&offset, &wv) in offsets.iter().zip(w) {
                    let src = &row[x + offset..x + offset + 4 * V];
                    let wv = f32x4_splat(wv);
                    for (i, a) in acc.iter_mut().enumerate() {
                        let v = v128_load(src.as_ptr().add(4 * i).cast::<v128>());
                        *a = madd(v, wv, *a);
                    }
                }
            }
            // `pmax(0, a)` is `0 < a ? a : 0`, the portable kernels' `max(a, 0)`.
            let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
            for (i, a) in acc.iter().enumerate() {
                let a = match A {
                    RELU => f32x4_pmax(zero, *a),
                    RELU6 => f32x4_pmin(six, f32x4_pmax(zero, *a)),
                    _ => *a,
                };
                v128_store(out.as_mut_ptr().add(4 * i).cast::<v128>(), a);
            }
        }
    }
}
