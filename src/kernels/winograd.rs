//! Winograd F(4×4, 3×3) for the dense 3×3 stride-1 convolutions, which carry most of ResNet's
//! multiplies: each 4×4 output tile costs 36 multiplies per (input, output) channel pair
//! instead of 144. The products become 36 independent GEMMs (one per point of the 6×6
//! transformed tile), `M[ξ] = U[ξ] · V[ξ]`, so they run on the same GEMM as the direct path.
//!
//! Transforms (Lavin & Gray 2015, interpolation points 0, ±1, ±2, ∞): `U = G g Gᵀ` for each
//! 3×3 filter, `V = Bᵀ d B` for each 6×6 input tile, `Y = Aᵀ M A`. In f32 this loses about one
//! more decimal digit than direct convolution (tests compare against it); the larger F(6×6)
//! variant loses several and is not used.
//!
//! The transformed weights are 4× the size (~150 MB for ResNet-18, too much to keep in a browser
//! tab), so only the first 40 MB of them are kept between calls ([`kept`]: ResNet-18's stages
//! 1–3, all its Winograd layers at batch 1); the rest are transformed on every call, which
//! costs ~9/T of the multiply for T tiles and which [`MIN_TILES`] keeps small.

#[cfg(target_arch = "wasm32")]
use super::Activation;
use super::geometry::{Geometry, Operands};
use super::matmul::{SharedMut, gemm_strided};
use super::scratch::Scratch;
use crate::parallel::{COPY_TASK_VALUES, par_each, par_rows};

/// Output tile side and transformed tile side (`TILE + 3 - 1`).
const TILE: usize = 4;
const ALPHA: usize = 6;
const POINTS: usize = ALPHA * ALPHA;

/// Below this many output tiles per call the direct path wins: transforming the filters is
/// then a large share of the work, and the 36 GEMMs become too thin to run at speed. Batch-1
/// ResNet stages at 14×14 and 7×7 have 16 and 4 tiles. Chosen in wasm (`bench/ab.mjs`, 2
/// threads) once the transforms wrote their rows directly: 32 → 16 made ResNet-18's batch-1
/// forward 0.955–0.981 the time and batch 8 (passes of 4) 0.915, ResNet-50's batch 1 0.974;
/// 16 → 4 made ResNet-18's batch 1 1.215.
const MIN_TILES: usize = 16;

/// Whether `g` is a convolution this module computes, and one large enough to pay.
pub(super) fn applies(g: &Geometry) -> bool {
    !g.depthwise
        && (g.kh, g.kw) == (3, 3)
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.batch * g.oh.div_ceil(TILE) * g.ow.div_ceil(TILE) >= MIN_TILES
}

/// NCHW `input`, `[C_out, C_in, 3, 3]` `weight` -> NCHW output with bias and `act` applied.
pub(super) fn run(g: &Geometry, op: &Operands) -> Vec<f32> {
    let tiles = Tiles::new(g);
    let u = kept::filters(op, g.c_out * g.c_in);
    let v = transform_input(g, &tiles, op.input);
    let m = multiply(&u, &v, g.c_out, g.c_in, tiles.total);
    inverse(g, &tiles, &m, op)
}

/// How the output planes are cut into `TILE`×`TILE` tiles (the last row/column of tiles may
/// hang over the edge; those outputs are computed from zero padding and dropped).
struct Tiles {
    rows: usize,
    cols: usize,
    per_image: usize,
    total: usize,
}

impl Tiles {
    fn new(g: &Geometry) -> Tiles {
        let (rows, cols) = (g.oh.div_ceil(TILE), g.ow.div_ceil(TILE));
        Tiles {
            rows,
            cols,
            per_image: rows * cols,
            total: g.batch * rows * cols,
        }
    }
}

/// `Bᵀ d` for one column of six input values.
#[inline(always)]
fn bt(d: [f32; 6]) -> [f32; 6] {
    [
        4.0 * d[0] - 5.0 * d[2] + d[4],
        -4.0 * (d[1] + d[2]) + d[3] + d[4],
        4.0 * (d[1] - d[2]) - d[3] + d[4],
        2.0 * (d[3] - d[1]) - d[2] + d[4],
        2.0 * (d[1] - d[3]) - d[2] + d[4],
        4.0 * d[1] - 5.0 * d[3] + d[5],
    ]
}

/// `Aᵀ m` for one column of six transformed products.
#[inline(always)]
fn at(m: [f32; 6]) -> [f32; 4] {
    let (p1, n1) = (m[1] + m[2], m[1] - m[2]);
    let (p2, n2) = (m[3] + m[4], m[3] - m[4]);
    [
        m[0] + p1 + p2,
        n1 + 2.0 * n2,
        p1 + 4.0 * p2,
        n1 + 8.0 * n2 + m[5],
    ]
}

/// `G g` for one column of three filter taps (`G` is the 6×3 interpolation matrix).
///
/// Multiplies by the reciprocals rather than dividing: a division by 6, 12 or 24 is not exact,
/// so the compiler keeps it, and nine calls a filter made the filter transform ~8% of a
/// ResNet-18 batch in wasm (divisions cost several multiplies each). The reciprocals differ
/// from the quotients by at most an ulp.
#[inline(always)]
fn gt(g: [f32; 3]) -> [f32; 6] {
    const SIXTH: f32 = 1.0 / 6.0;
    const TWELFTH: f32 = 1.0 / 12.0;
    const TWENTYFOURTH: f32 = 1.0 / 24.0;
    let (even, odd) = (g[0] + g[2], g[1]);
    let (outer, inner) = (g[0] * TWENTYFOURTH + g[2] * SIXTH, g[1] * TWELFTH);
    [
        g[0] * 0.25,
        -(even + odd) * SIXTH,
        (odd - even) * SIXTH,
        outer + inner,
        outer - inner,
        g[2],
    ]
}

/// Tiles (or filters) transformed together: the transforms run across a block in structure-of-
/// arrays form, so every arithmetic loop is over consecutive tiles and vectorises, and the
/// block's working set (a few 36×`BLOCK` arrays) stays in L1/L2.
const BLOCK: usize = 64;

/// Transformed filters kept between calls, up to [`kept::FLOATS`] in all.
///
/// In wasm on 2 threads a batch-1 ResNet-18 forward spent twice the thread time of 1 thread in
/// its memory-bound loops (the filter transform 5.5 → 10.8 ms a call: V8's profiler), so batch 1
/// barely ran faster on 2 threads than on 1; transforming the filters wrote 38 MB a call.
/// ResNet-18's stages 1–3 (the Winograd layers at batch 1) transform to 37.7 MB, which the
/// budget holds; larger layers are transformed per call as before. Entries are keyed by the
/// weights' storage and hold a clone of its tensor: while they do, that storage cannot be freed
/// (so no other weights can take its address) nor written in place (burn-flex writes only into
/// storage it alone holds). Entries whose weights only the cache still holds (a backbone let go
/// of) are dropped when a new one is made.
pub(super) mod kept {
    use std::ops::Deref;
    use std::sync::{Arc, Mutex};

    use burn::backend::flex::FlexTensor;

    use super::super::geometry::{Operands, values};
    use super::super::scratch::Scratch;
    use super::{POINTS, transform_filters};

    /// The budget, in floats (40 MB).
    pub(super) const FLOATS: usize = 10 << 20;

    struct Kept {
        weight: FlexTensor,
        u: Arc<Vec<f32>>,
    }

    static KEPT: Mutex<Vec<Kept>> = Mutex::new(Vec::new());

    /// One call's transformed filters: kept, or made for it.
    pub(in super::super) enum Filters {
        Kept(Arc<Vec<f32>>),
        Fresh(Scratch),
    }

    impl Deref for Filters {
        type Target = [f32];
        fn deref(&self) -> &[f32] {
            match self {
                Filters::Kept(u) => u,
                Filters::Fresh(u) => u,
            }
        }
    }

    fn holds(k: &Kept, weight: &[f32]) -> bool {
        let w = values(&k.weight);
        w.as_ptr() == weight.as_ptr() && w.len() == weight.len()
    }

    /// `op.weight`'s `filters` 3×3 filters transformed (`U`, `[36][filters]`).
    pub(in super::super) fn filters(op: &Operands, filters: usize) -> Filters {
        let fresh = || {
            let mut u = Scratch::take(POINTS * filters);
            transform_filters(op.weight, filters, &mut u);
            Filters::Fresh(u)
        };
        let Some(tensor) = op.weight_tensor else {
            return fresh();
        };
        debug_assert!(std::ptr::eq(values(tensor), op.weight));
        let len = POINTS * filters;
        {
            let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(k) = kept.iter().find(|k| holds(k, op.weight)) {
                return Filters::Kept(k.u.clone());
            }
            kept.retain(|k| !k.weight.is_unique());
            if kept.iter().map(|k| k.u.len()).sum::<usize>() + len > FLOATS {
                return fresh();
            }
        }
        let mut u = vec![0f32; len];
        transform_filters(op.weight, filters, &mut u);
        let u = Arc::new(u);
        let mut kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        // Another pass may have kept them meanwhile, or filled the budget.
        let used: usize = kept.iter().map(|k| k.u.len()).sum();
        if !kept.iter().any(|k| holds(k, op.weight)) && used + len <= FLOATS {
            kept.push(Kept {
                weight: tensor.clone(),
                u: u.clone(),
            });
        }
        Filters::Kept(u)
    }

    /// The transformed filters kept for `weight` now, if any (tests).
    #[cfg(test)]
    pub(in super::super) fn kept_for(weight: &[f32]) -> Option<std::sync::Weak<Vec<f32>>> {
        let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .find(|k| holds(k, weight))
            .map(|k| Arc::downgrade(&k.u))
    }
}

/// `[K·C, 3, 3]` filters -> `u`, `U` as `[36][K·C]`, `U[(a, b)] = (G g Gᵀ)[a][b]`.
fn transform_filters(weight: &[f32], filters: usize, u: &mut [f32]) {
    assert!(u.len() >= POINTS * filters && weight.len() >= 9 * filters);
    let dst = SharedMut(u.as_mut_ptr());
    par_each(filters.div_ceil(BLOCK), |blk| {
        let dst = &dst;
        let f0 = blk * BLOCK;
        let len = BLOCK.min(filters - f0);
        let mut g = [[0f32; BLOCK]; 9];
        for (i, f) in weight[f0 * 9..(f0 + len) * 9].chunks_exact(9).enumerate() {
            for (t, &v) in f.iter().enumerate() {
                g[t][i] = v;
            }
        }
        // `G g` down each of the three filter columns, then `· Gᵀ` along each of the six rows.
        let mut half = [[0f32; BLOCK]; 18];
        for j in 0..3 {
            for i in 0..len {
                for (a, v) in gt([g[j][i], g[3 + j][i], g[6 + j][i]])
                    .into_iter()
                    .enumerate()
                {
                    half[a * 3 + j][i] = v;
                }
            }
        }
        // Straight into `U`'s rows: a staging block, zeroed and copied out, cost as much as the
        // arithmetic.
        for a in 0..ALPHA {
            // SAFETY: block `blk` writes only columns `[f0, f0 + len)` of `u`'s 36 rows of
            // `filters` floats, disjoint from every other block's.
            let out: [&mut [f32]; ALPHA] = std::array::from_fn(|b| unsafe {
                std::slice::from_raw_parts_mut(dst.0.add((a * ALPHA + b) * filters + f0), len)
            });
            for i in 0..len {
                let row = [half[a * 3][i], half[a * 3 + 1][i], half[a * 3 + 2][i]];
                for (b, v) in gt(row).into_iter().enumerate() {
                    out[b][i] = v;
                }
            }
        }
    });
}

/// The input planes with the convolution's padding and the last tiles' overhang as zeros, so
/// every tile reads a full 6×6 window without bounds checks.
struct Padded {
    width: usize,
    plane: Vec<f32>,
}

impl Padded {
    fn new(tiles: &Tiles) -> Padded {
        let (height, width) = (tiles.rows * TILE + 2, tiles.cols * TILE + 2);
        Padded {
            width,
            plane: vec![0f32; height * width],
        }
    }

    /// Fill with the `[h, w]` plane `src` (the zero border is never written).
    fn load(&mut self, g: &Geometry, src: &[f32]) {
        let w = g.w.min(self.width - g.pad[1]);
        let rows = g.h.min(self.plane.len() / self.width - g.pad[0]);
        for (y, src) in src.chunks_exact(g.w).take(rows).enumerate() {
            let at = (y + g.pad[0]) * self.width + g.pad[1];
            self.plane[at..at + w].copy_from_slice(&src[..w]);
        }
    }
}

/// NCHW input -> `V` as `[C][36][T]` (T = all tiles of all images), one task per channel.
fn transform_input(g: &Geometry, tiles: &Tiles, input: &[f32]) -> Scratch {
    let t = tiles.total;
    let mut v = Scratch::take(g.c_in * POINTS * t);
    par_rows(&mut v, POINTS * t, COPY_TASK_VALUES, |c, vc| {
        let mut padded = Padded::new(tiles);
        let mut loaded = usize::MAX;
        let mut d = vec![[0f32; BLOCK]; POINTS];
        let mut half = vec![[0f32; BLOCK]; POINTS];
        for t0 in (0..t).step_by(BLOCK) {
            let len = BLOCK.min(t - t0);
            // Gather each tile's 6×6 window into column `i` of the 36 rows of `d`.
            #[allow(clippy::needless_range_loop)]
            for i in 0..len {
                let (n, p) = ((t0 + i) / tiles.per_image, (t0 + i) % tiles.per_image);
                if n != loaded {
                    padded.load(g, &input[(n * g.c_in + c) * g.h * g.w..][..g.h * g.w]);
                    loaded = n;
                }
                let (y, x) = (p / tiles.cols * TILE, p % tiles.cols * TILE);
                for r in 0..ALPHA {
                    let row = &padded.plane[(y + r) * padded.width + x..][..ALPHA];
                    for (j, &val) in row.iter().enumerate() {
                        d[r * ALPHA + j][i] = val;
                    }
                }
            }
            // `Bᵀ d` down the six columns, then `· B` along the six rows.
            for j in 0..ALPHA {
                for i in 0..len {
                    let col = std::array::from_fn(|r| d[r * ALPHA + j][i]);
                    for (a, val) in bt(col).into_iter().enumerate() {
                        half[a * ALPHA + j][i] = val;
                    }
                }
            }
            // Straight into the six rows of `V` (as the filters).
            for a in 0..ALPHA {
                let mut rows = vc[a * ALPHA * t..(a + 1) * ALPHA * t]
                    .chunks_exact_mut(t)
                    .map(|row| &mut row[t0..t0 + len]);
                let out: [&mut [f32]; ALPHA] = std::array::from_fn(|_| rows.next().unwrap());
                for i in 0..len {
                    let row = std::array::from_fn(|j| half[a * ALPHA + j][i]);
                    for (b, val) in bt(row).into_iter().enumerate() {
                        out[b][i] = val;
                    }
                }
            }
        }
    });
    v
}

/// `M[k][ξ][t] = Σ_c U[ξ][k][c] · V[c][ξ][t]`: 36 GEMMs, one task each.
fn multiply(u: &[f32], v: &[f32], k: usize, c: usize, t: usize) -> Scratch {
    let mut m = Scratch::take(k * POINTS * t);
    let dst = SharedMut(m.as_mut_ptr());
    par_each(POINTS, |p| {
        let dst = &dst;
        // SAFETY: point `p` writes only the columns `[p·t, (p+1)·t)` of each row of `m` (row
        // stride 36·t), disjoint from every other point's; `u[p]` is K×C row-major and `v`'s
        // point-`p` block is C×T with row stride 36·T, all inside their buffers.
        unsafe {
            gemm_strided(
                [k, t, c],
                (dst.0.add(p * t), POINTS * t),
                (u.as_ptr().add(p * k * c), 1, c),
                (v.as_ptr().add(p * t), 1, POINTS * t),
                gemm::Parallelism::None,
                false,
            );
        }
    });
    m
}

/// `M` -> NCHW output, `Y = Aᵀ M A` per tile plus bias and residual, then the activation; one
/// task per output channel.
fn inverse(g: &Geometry, tiles: &Tiles, m: &[f32], op: &Operands) -> Vec<f32> {
    let t = tiles.total;
    let plane = g.oh * g.ow;
    let mut out = vec![0f32; g.batch * g.c_out * plane];
    #[cfg(target_arch = "wasm32")]
    let out_len = out.len();
    let dst = SharedMut(out.as_mut_ptr());
    par_each(g.c_out, |k| {
        let dst = &dst;
        let mk = &m[k * POINTS * t..][..POINTS * t];
        let b = op.bias.map_or(0.0, |b| b[k]);
        let mut half = vec![[0f32; BLOCK]; ALPHA * TILE];
        let mut y = vec![[0f32; BLOCK]; TILE * TILE];
        for t0 in (0..t).step_by(BLOCK) {
            let len = BLOCK.min(t - t0);
            // `Aᵀ` along each transformed row, then down the four columns.
            for a in 0..ALPHA {
                let rows: [&[f32]; ALPHA] =
                    std::array::from_fn(|bb| &mk[(a * ALPHA + bb) * t + t0..][..len]);
                for i in 0..len {
                    let s = at(std::array::from_fn(|bb| rows[bb][i]));
                    for (x, val) in s.into_iter().enumerate() {
                        half[a * TILE + x][i] = val;
                    }
                }
            }
            for x in 0..TILE {
                for i in 0..len {
                    let s = at(std::array::from_fn(|a| half[a * TILE + x][i]));
                    for (r, val) in s.into_iter().enumerate() {
                        y[r * TILE + x][i] = val + b;
                    }
                }
            }
            // Scatter column `i` of the 16 rows of `y` to its tile of the output.
            let place = |i: usize| {
                let (n, p) = ((t0 + i) / tiles.per_image, (t0 + i) % tiles.per_image);
                (n, p / tiles.cols * TILE, p % tiles.cols * TILE)
            };
            let mut i = 0;
            while i < len {
                // Four whole tiles at a time, transposed in registers.
                #[cfg(target_arch = "wasm32")]
                if i + 4 <= len {
                    let places: [_; 4] = std::array::from_fn(|j| place(i + j));
                    if places
                        .iter()
                        .all(|&(_, oy, ox)| oy + TILE <= g.oh && ox + TILE <= g.ow)
                    {
                        let corners =
                            places.map(|(n, oy, ox)| (n * g.c_out + k) * plane + oy * g.ow + ox);
                        // SAFETY: whole tiles of channel `k`'s own planes, inside `out`.
                        unsafe {
                            simd128::scatter(&y, i, dst.0, out_len, op, corners, g.ow);
                        }
                        i += 4;
                        continue;
                    }
                }
                let (n, oy, ox) = place(i);
                // SAFETY: channel `k`'s task writes only its own planes `(n, k)` of `out`.
                let at = (n * g.c_out + k) * plane;
                let o = unsafe { std::slice::from_raw_parts_mut(dst.0.add(at), plane) };
                let res = op.residual.map(|r| &r[at..at + plane]);
                for r in 0..TILE.min(g.oh - oy) {
                    let start = (oy + r) * g.ow + ox;
                    let row = &mut o[start..][..TILE.min(g.ow - ox)];
                    for (x, val) in row.iter_mut().enumerate() {
                        let skip = res.map_or(0.0, |res| res[start + x]);
                        *val = op.act.apply(y[r * TILE + x][i] + skip);
                    }
                }
                i += 1;
            }
        }
    });
    out
}

/// The wasm builds' scatter of the output tiles, four at a time: a tile's 16 values are one
/// column apart in the inverse's block and four rows of four in the output, so scalar code moved
/// one float per load and store (with the residual and the activation chosen per value); here
/// four tiles' rows are loaded, transposed in registers and stored whole. The inverse went from
/// ~9% to ~6.4% of a ResNet-18 batch's busy time in wasm. (The same for the input's gather left
/// its transform's share unchanged, and was dropped.)
#[cfg(target_arch = "wasm32")]
mod simd128 {
    use core::arch::wasm32::{
        f32x4_add, f32x4_pmax, f32x4_pmin, f32x4_splat, v128, v128_load, v128_store,
    };

    use super::super::geometry::Operands;
    use super::super::simd128::transpose;
    use super::{Activation, BLOCK, TILE};

    /// Columns `i..i + 4` of `y` (`[16][BLOCK]`, bias added) stored as whole 4×4 tiles of the
    /// output (`len` floats at `out`, rows `ow` apart) at `corners`, as `act(value + residual)`.
    ///
    /// # Safety
    /// No other thread may write or read those tiles of `out` meanwhile.
    pub(super) unsafe fn scatter(
        y: &[[f32; BLOCK]],
        i: usize,
        out: *mut f32,
        len: usize,
        op: &Operands,
        corners: [usize; 4],
        ow: usize,
    ) {
        assert!(i + 4 <= BLOCK && y.len() >= TILE * TILE);
        assert!(corners.iter().all(|&at| at + (TILE - 1) * ow + TILE <= len));
        assert!(op.residual.is_none_or(|r| r.len() >= len));
        let (zero, six) = (f32x4_splat(0.0), f32x4_splat(6.0));
        // SAFETY: loads at `i..i + 4` of rows of `y` and at the tiles of the residual, stores at
        // the tiles of `out`, all inside (above); the tiles are the caller's to write.
        unsafe {
            for r in 0..TILE {
                let rows = transpose(std::array::from_fn(|x| {
                    v128_load(y[r * TILE + x].as_ptr().add(i).cast())
                }));
                for (j, mut v) in rows.into_iter().enumerate() {
                    let at = corners[j] + r * ow;
                    if let Some(res) = op.residual {
                        v = f32x4_add(v, v128_load(res.as_ptr().add(at).cast()));
                    }
                    // `pmax(0, v)` is `0 < v ? v : 0`, as `Activation::apply`'s `max`.
                    let v: v128 = match op.act {
                        Activation::Identity => v,
                        Activation::Relu => f32x4_pmax(zero, v),
                        Activation::Relu6 => f32x4_pmin(six, f32x4_pmax(zero, v)),
                    };
                    v128_store(out.add(at).cast(), v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Activation;

    /// Direct correlation, the definition, in f64.
    fn reference(g: &Geometry, input: &[f32], weight: &[f32], bias: &[f32]) -> Vec<f64> {
        let mut out = vec![0f64; g.batch * g.c_out * g.oh * g.ow];
        for n in 0..g.batch {
            for k in 0..g.c_out {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = bias[k] as f64;
                        for c in 0..g.c_in {
                            for i in 0..3 {
                                for j in 0..3 {
                                    let (iy, ix) = (oy + i, ox + j);
                                    let (Some(iy), Some(ix)) =
                                        (iy.checked_sub(g.pad[0]), ix.checked_sub(g.pad[1]))
                                    else {
                                        continue;
                                    };
                                    if iy < g.h && ix < g.w {
                                        s += input[((n * g.c_in + c) * g.h + iy) * g.w + ix] as f64
                                            * weight[((k * g.c_in + c) * 3 + i) * 3 + j] as f64;
                                    }
                                }
                            }
                        }
                        out[((n * g.c_out + k) * g.oh + oy) * g.ow + ox] = s;
                    }
                }
            }
        }
        out
    }

    fn geometry(
        batch: usize,
        c_in: usize,
        c_out: usize,
        h: usize,
        w: usize,
        pad: usize,
    ) -> Geometry {
        Geometry {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh: 3,
            kw: 3,
            stride: [1, 1],
            dilation: [1, 1],
            pad: [pad, pad],
            oh: h + 2 * pad - 2,
            ow: w + 2 * pad - 2,
            depthwise: false,
        }
    }

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Sizes that are and are not multiples of the tile, padding 1 and 0, one and several
    /// images, thin and wide channel counts; ReLU checks the activation is applied last, after
    /// the residual (a skip connection) is added.
    /// Stated tolerance: max |error| ≤ 2e-5 of the output's max |value| (F(4×4, 3×3) in f32;
    /// direct convolution reaches ~1e-6 here).
    #[test]
    fn matches_direct_correlation() {
        for (i, &(batch, c_in, c_out, h, w, pad)) in [
            (1, 3, 5, 4, 4, 1),
            (2, 8, 8, 13, 9, 1),
            (3, 16, 12, 7, 7, 1),
            (1, 64, 32, 14, 14, 1),
            (2, 5, 7, 10, 11, 0),
        ]
        .iter()
        .enumerate()
        {
            let g = geometry(batch, c_in, c_out, h, w, pad);
            let input = values(batch * c_in * h * w, i as u64);
            let weight = values(c_out * c_in * 9, 100 + i as u64);
            let bias = values(c_out, 200 + i as u64);
            let want = reference(&g, &input, &weight, &bias);
            let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
            let skip = values(want.len(), 300 + i as u64);
            let cases = [
                (Activation::Identity, None),
                (Activation::Relu, None),
                (Activation::Relu, Some(&skip[..])),
            ];
            for (act, residual) in cases {
                let op = Operands {
                    input: &input,
                    weight: &weight,
                    weight_tensor: None,
                    bias: Some(&bias),
                    residual,
                    act,
                };
                let got = run(&g, &op);
                assert_eq!(got.len(), want.len());
                let err = got
                    .iter()
                    .zip(&want)
                    .enumerate()
                    .fold(0f64, |m, (j, (&a, &b))| {
                        let b = b + residual.map_or(0.0, |r| r[j] as f64);
                        let b = if act == Activation::Relu {
                            b.max(0.0)
                        } else {
                            b
                        };
                        m.max((a as f64 - b).abs())
                    });
                assert!(
                    err <= 2e-5 * scale,
                    "{:?} {act:?} residual {}: error {err:.2e}, scale {scale:.2e}",
                    (batch, c_in, c_out, h, w, pad),
                    residual.is_some()
                );
            }
        }
    }

    /// A convolution's transformed filters are kept after its first call and give its output
    /// to the bit; once its module is dropped, the next call that makes new ones lets them go.
    #[test]
    fn kept_filters_give_the_same_output_and_go_with_their_weights() {
        use burn::nn::PaddingConfig2d;
        use burn::nn::conv::Conv2dConfig;
        use burn::tensor::{Device, Distribution, Tensor};
        let device = Device::flex();
        let conv = || {
            Conv2dConfig::new([48, 40], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device)
        };
        // 16×16 at batch 1: 16 tiles, a Winograd call.
        let x = Tensor::<4>::random([1, 48, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let a = conv();
        let first = crate::kernels::conv2d(&a, x.clone(), Activation::Relu).into_data();
        let weight = a.weight.val().into_data();
        let weight = weight.as_slice::<f32>().unwrap();
        let weights = super::super::geometry::flex(a.weight.val());
        let stored = super::super::geometry::values(&weights);
        let kept = kept::kept_for(stored).expect("kept after the first call");
        let again = crate::kernels::conv2d(&a, x.clone(), Activation::Relu).into_data();
        assert_eq!(
            again.as_slice::<f32>().unwrap(),
            first.as_slice::<f32>().unwrap()
        );
        // Fresh (not kept) filters give the same output too.
        let bias = a.bias.as_ref().unwrap().val().into_data();
        let input = x.clone().into_data();
        let op = Operands {
            input: input.as_slice::<f32>().unwrap(),
            weight,
            weight_tensor: None,
            bias: Some(bias.as_slice::<f32>().unwrap()),
            residual: None,
            act: Activation::Relu,
        };
        let fresh = run(&geometry(1, 48, 40, 16, 16, 1), &op);
        assert_eq!(fresh, first.as_slice::<f32>().unwrap());
        drop((a, weights));
        let b = conv();
        crate::kernels::conv2d(&b, x, Activation::Relu);
        assert!(
            kept.upgrade().is_none(),
            "still kept after its module was dropped"
        );
    }

    #[test]
    fn small_calls_stay_direct() {
        // Batch-1 ResNet stage 4 (7×7, 4 tiles) and a batch of 3 there (12): direct; batch-1
        // stage 3 (14×14, 16 tiles), batch 16 of stage 4 (64 tiles) and batch-1 stage 1
        // (56×56, 196 tiles): Winograd.
        assert!(!applies(&geometry(1, 512, 512, 7, 7, 1)));
        assert!(!applies(&geometry(3, 512, 512, 7, 7, 1)));
        assert!(applies(&geometry(1, 256, 256, 14, 14, 1)));
        assert!(applies(&geometry(16, 512, 512, 7, 7, 1)));
        assert!(applies(&geometry(1, 64, 64, 56, 56, 1)));
        let strided = Geometry {
            stride: [2, 2],
            ..geometry(16, 64, 64, 56, 56, 1)
        };
        assert!(!applies(&strided));
    }
}
