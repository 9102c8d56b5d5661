//! Depthwise convolutions on small planes and at stride 2, eight channels at a time laid out
//! pixel by pixel: each group of 8 input planes is copied into a zero-padded tile
//! `[row][column][8]` (in wasm four pixels at a time, transposed in registers), every output
//! pixel's 8 channels are accumulated in vectors (4 pixels at once, all taps in registers), and
//! each run of 4 pixels is transposed back and stored into the 8 output planes.
//!
//! `depthwise.rs` computes a plane at a time with the pixels in the vectors. On EfficientNet's
//! 7×7 planes a 5×5 filter runs there on an 11-wide padded grid, a third of each vector's lanes
//! wasted, with a vector of four and a pixel alone at the end of every run, and every plane pays
//! its own setup; at stride 2 it goes row by row, and a 7-wide row is one vector and three pixels
//! alone. A probe of Lite0's shapes (natively, one thread, batch 1) gave 1,152 channels at 7×7,
//! 5×5: 2.3 G multiply-adds a second; 672 channels 14×14 → 7×7, 5×5: 1.0 G; against 14.5 G for
//! 240 channels at 28×28, 5×5, stride 1. Here no lane is wasted at any width, and each tap's 8
//! weights are loaded once for 4 pixels. In Chromium, EfficientNet-Lite0 (its only user) ran
//! 0.89–0.93× the time a photo at batch 1 and 8, 2 threads and 1 (docs/BENCHMARKS.md).

use std::cell::RefCell;
use std::mem::MaybeUninit;

use super::Activation;
use super::geometry::{Geometry, Operands};
use crate::parallel::{COPY_TASK_VALUES, par_rows};

/// Channels of one tile.
const GROUP: usize = 8;
/// Output pixels accumulated at once.
const PIXELS: usize = 4;
/// Largest stride-1 output plane taken here: larger ones fill `depthwise.rs`'s vectors.
const MAX_FLAT_PIXELS: usize = 14 * 14;

/// Whether `g` is a depthwise convolution this module computes (`depthwise::applies` holds): in
/// the wasm builds, where it measured faster (docs/BENCHMARKS.md). Natively `depthwise.rs`'s
/// AVX2 kernel fills 8 lanes a plane, and a probe of Lite0's shapes was too noisy on the 2-core
/// VM of the change to say this module is faster there; its portable kernel is tested against
/// that one natively (`conv.rs`'s tests).
pub(super) fn applies(g: &Geometry) -> bool {
    cfg!(target_arch = "wasm32") && fits(g)
}

/// Whether `g` has tiles to fill: whole groups of 8 channels, rows of at least one run of
/// pixels, and a small plane at stride 1 (a large one fills `depthwise.rs`'s vectors whole).
pub(super) fn fits(g: &Geometry) -> bool {
    g.c_out.is_multiple_of(GROUP)
        && g.ow >= PIXELS
        && (g.stride != [1, 1] || g.oh * g.ow <= MAX_FLAT_PIXELS)
}

/// Each thread's padded tile (with the call it last held a tile of) and its weights `[tap][8]`.
type Buffers = (Vec<f32>, Option<Geometry>, Vec<f32>);

thread_local! {
    /// Kept from group to group and call to call (see `depthwise.rs`'s buffers).
    static BUFFERS: RefCell<Buffers> = const {
        RefCell::new((Vec::new(), None, Vec::new()))
    };
}

/// The padded tile's shape: the rows and columns the outputs read.
#[derive(Clone, Copy)]
struct Tile {
    rows: usize,
    cols: usize,
}

impl Tile {
    fn new(g: &Geometry) -> Tile {
        let span = |out: usize, s: usize, k: usize, d: usize| (out - 1) * s + (k - 1) * d + 1;
        Tile {
            rows: span(g.oh, g.stride[0], g.kh, g.dilation[0]),
            cols: span(g.ow, g.stride[1], g.kw, g.dilation[1]),
        }
    }

    /// Planes `planes` (8 of them, each `h × w`) into `t` at `(y + top, x + left)`; the zeros
    /// around them stay from the last call of the same geometry (`last`).
    fn load(&self, g: &Geometry, planes: &[f32], t: &mut Vec<f32>, last: &mut Option<Geometry>) {
        if *last != Some(*g) {
            t.clear();
            t.resize(self.rows * self.cols * GROUP, 0.0);
            *last = Some(*g);
        }
        let [top, left] = g.pad;
        let rows = g.h.min(self.rows.saturating_sub(top));
        let cols = g.w.min(self.cols.saturating_sub(left));
        for y in 0..rows {
            let dst = &mut t[((y + top) * self.cols + left) * GROUP..][..cols * GROUP];
            gather_row(dst, &planes[y * g.w..], g.h * g.w, cols);
        }
    }
}

/// Pixels `0..cols` of row `src` (the first plane's; the 8 planes `plane` apart) into `dst`
/// as `[pixel][channel]`.
fn gather_row(dst: &mut [f32], src: &[f32], plane: usize, cols: usize) {
    #[cfg(target_arch = "wasm32")]
    if cols >= 4 {
        return simd128::gather_row(dst, src, plane, cols);
    }
    for (x, px) in dst[..cols * GROUP].chunks_exact_mut(GROUP).enumerate() {
        for (c, v) in px.iter_mut().enumerate() {
            *v = src[c * plane + x];
        }
    }
}

/// NCHW `input`, `[C, 1, kh, kw]` `weight` -> NCHW `act(conv + bias + residual)`.
pub(super) fn run(g: &Geometry, op: &Operands) -> Vec<f32> {
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let tile = Tile::new(g);
    let taps = g.kh * g.kw;
    let len = g.batch * g.c_out * plane_out;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let groups = |r: usize, o: &mut [MaybeUninit<f32>]| {
        BUFFERS.with_borrow_mut(|(t, last, w)| {
            // Group `r`: channels `c0..c0 + 8` of image `r·8 / C`.
            let c0 = r * GROUP % g.c_out;
            tile.load(
                g,
                &op.input[r * GROUP * plane_in..][..GROUP * plane_in],
                t,
                last,
            );
            w.resize(taps * GROUP, 0.0);
            for (c, filter) in op.weight[c0 * taps..][..GROUP * taps]
                .chunks_exact(taps)
                .enumerate()
            {
                for (k, &v) in filter.iter().enumerate() {
                    w[k * GROUP + c] = v;
                }
            }
            let bias: [f32; GROUP] = std::array::from_fn(|c| op.bias.map_or(0.0, |b| b[c0 + c]));
            let shape = Shape { g, tile: tile.cols };
            let residual = op
                .residual
                .map(|res| &res[r * GROUP * plane_out..][..GROUP * plane_out]);
            // SAFETY: `tile_kernel` returns only kernels this CPU has the features for; `o` is
            // this group's 8 output planes.
            unsafe { tile_kernel()(&shape, t, w, bias, o, residual, op.act) };
        });
    };
    par_rows(
        &mut out.spare_capacity_mut()[..len],
        GROUP * plane_out,
        (COPY_TASK_VALUES / taps).max(1),
        groups,
    );
    // SAFETY: every group wrote its 8 planes whole (each output pixel of each run).
    unsafe { out.set_len(len) };
    out
}

/// What a tile kernel needs of the call: its geometry and the padded tile's width.
struct Shape<'a> {
    g: &'a Geometry,
    tile: usize,
}

/// `out[c][p] = act(bias[c] + Σ taps · tile + residual[c][p])` for every output pixel `p` and
/// channel `c` of a group (`out`: its 8 planes), from the padded tile `t` and the weights
/// `w[tap][c]`.
type TileKernel = unsafe fn(
    &Shape,
    &[f32],
    &[f32],
    [f32; GROUP],
    &mut [MaybeUninit<f32>],
    Option<&[f32]>,
    Activation,
);

fn tile_kernel() -> TileKernel {
    #[cfg(target_arch = "wasm32")]
    return simd128::tile;
    #[cfg_attr(target_arch = "wasm32", expect(unreachable_code))]
    tile_portable
}

/// The first pixel of each run of [`PIXELS`] along an output row of `ow` (at least PIXELS): the
/// last run ends at the row's end, computing a few pixels again rather than fewer at once.
fn runs(ow: usize) -> impl Iterator<Item = usize> {
    (0..ow.div_ceil(PIXELS)).map(move |i| (i * PIXELS).min(ow - PIXELS))
}

fn tile_portable(
    s: &Shape,
    t: &[f32],
    w: &[f32],
    bias: [f32; GROUP],
    out: &mut [MaybeUninit<f32>],
    residual: Option<&[f32]>,
    act: Activation,
) {
    let g = s.g;
    let plane = g.oh * g.ow;
    for oy in 0..g.oh {
        for ox in runs(g.ow) {
            let mut acc = [bias; PIXELS];
            for ky in 0..g.kh {
                let row = (oy * g.stride[0] + ky * g.dilation[0]) * s.tile;
                for kx in 0..g.kw {
                    let wv: &[f32; GROUP] = w[(ky * g.kw + kx) * GROUP..][..GROUP]
                        .try_into()
                        .expect("GROUP long");
                    for (p, a) in acc.iter_mut().enumerate() {
                        let at = row + (ox + p) * g.stride[1] + kx * g.dilation[1];
                        let iv = &t[at * GROUP..][..GROUP];
                        for ((a, &x), &wc) in a.iter_mut().zip(iv).zip(wv) {
                            *a += x * wc;
                        }
                    }
                }
            }
            for (p, a) in acc.iter().enumerate() {
                let at = oy * g.ow + ox + p;
                for (c, &v) in a.iter().enumerate() {
                    let v = v + residual.map_or(0.0, |r| r[c * plane + at]);
                    out[c * plane + at].write(act.apply(v));
                }
            }
        }
    }
}

/// The wasm builds: the same loops on SIMD128 vectors (two a pixel), eight accumulators, a
/// relaxed-SIMD multiply-add in `pkg-cpu-relaxed/` (see `depthwise.rs`'s kernel); the tile
/// filled and the output written four pixels at a time, transposed in registers.
#[cfg(target_arch = "wasm32")]
mod simd128 {
    use std::mem::MaybeUninit;

    use core::arch::wasm32::{
        f32x4_add, f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_load, v128_store,
    };

    use super::super::simd128::{madd, transpose};
    use super::{Activation, GROUP, PIXELS, Shape, runs};

    /// `gather_row` four pixels at a time (`cols ≥ 4`; the last four end at `cols`).
    pub(super) fn gather_row(dst: &mut [f32], src: &[f32], plane: usize, cols: usize) {
        assert!(cols >= 4 && dst.len() >= cols * GROUP);
        assert!(src.len() >= (GROUP - 1) * plane + cols);
        // SAFETY: loads of 4 floats at `c·plane + x` with `x + 4 ≤ cols` (inside `src`, above)
        // and stores of 4 at `(x + p)·8 + 4h` (inside `dst`); no alignment needed.
        unsafe {
            for x in runs(cols) {
                for h in 0..2 {
                    let r: [v128; 4] = std::array::from_fn(|c| {
                        v128_load(src.as_ptr().add((4 * h + c) * plane + x).cast::<v128>())
                    });
                    for (p, v) in transpose(r).into_iter().enumerate() {
                        v128_store(dst.as_mut_ptr().add((x + p) * GROUP + 4 * h).cast(), v);
                    }
                }
            }
        }
    }

    /// SAFETY (callers): in the relaxed build, only in a module built with relaxed SIMD.
    #[cfg_attr(
        feature = "relaxed-simd",
        target_feature(enable = "simd128,relaxed-simd")
    )]
    pub(super) unsafe fn tile(
        s: &Shape,
        t: &[f32],
        w: &[f32],
        bias: [f32; GROUP],
        out: &mut [MaybeUninit<f32>],
        residual: Option<&[f32]>,
        act: Activation,
    ) {
        let g = s.g;
        let plane = g.oh * g.ow;
        // Every offset the loops form is inside the slices: `t` holds the rows and columns the
        // outputs read, `w` `taps × 8`, `out` (and `residual`) 8 planes.
        let span = |o: usize, st: usize, k: usize, d: usize| (o - 1) * st + (k - 1) * d + 1;
        assert!(t.len() >= span(g.oh, g.stride[0], g.kh, g.dilation[0]) * s.tile * GROUP);
        assert!(span(g.ow, g.stride[1], g.kw, g.dilation[1]) <= s.tile && g.ow >= PIXELS);
        assert!(w.len() >= g.kh * g.kw * GROUP && out.len() >= GROUP * plane);
        assert!(residual.is_none_or(|r| r.len() >= GROUP * plane));
        // SAFETY: the loads and stores are of four floats at offsets inside the slices (bounded
        // by the asserts above); wasm's v128 loads need no alignment.
        unsafe {
            let (t, w) = (t.as_ptr(), w.as_ptr());
            let out = out.as_mut_ptr().cast::<f32>();
            let b = [
                v128_load(bias.as_ptr().cast::<v128>()),
                v128_load(bias.as_ptr().add(4).cast::<v128>()),
            ];
            let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
            for oy in 0..g.oh {
                for ox in runs(g.ow) {
                    // Channels 0..4 and 4..8 of each of the run's pixels.
                    let mut acc = [[b[0]; PIXELS], [b[1]; PIXELS]];
                    for ky in 0..g.kh {
                        let row = (oy * g.stride[0] + ky * g.dilation[0]) * s.tile;
                        for kx in 0..g.kw {
                            let wp = w.add((ky * g.kw + kx) * GROUP);
                            let w0 = v128_load(wp.cast::<v128>());
                            let w1 = v128_load(wp.add(4).cast::<v128>());
                            let base = row + ox * g.stride[1] + kx * g.dilation[1];
                            let [lo, hi] = &mut acc;
                            for (p, (lo, hi)) in lo.iter_mut().zip(hi).enumerate() {
                                let ip = t.add((base + p * g.stride[1]) * GROUP);
                                *lo = madd(v128_load(ip.cast::<v128>()), w0, *lo);
                                *hi = madd(v128_load(ip.add(4).cast::<v128>()), w1, *hi);
                            }
                        }
                    }
                    // Pixels × channels to channels × pixels: each channel's 4 pixels are one
                    // store into its plane.
                    let at = oy * g.ow + ox;
                    for (h, &half) in acc.iter().enumerate() {
                        let pixels = transpose(half);
                        for (c, v) in pixels.into_iter().enumerate() {
                            let i = (4 * h + c) * plane + at;
                            let v = match residual {
                                Some(r) => f32x4_add(v, v128_load(r.as_ptr().add(i).cast())),
                                None => v,
                            };
                            // `pmax(0, v)` is `0 < v ? v : 0`, the portable kernel's `max(v, 0)`.
                            let v = match act {
                                Activation::Relu => f32x4_pmax(zero, v),
                                Activation::Relu6 => f32x4_pmin(six, f32x4_pmax(zero, v)),
                                Activation::Identity => v,
                            };
                            v128_store(out.add(i).cast::<v128>(), v);
                        }
                    }
                }
            }
        }
    }
}
