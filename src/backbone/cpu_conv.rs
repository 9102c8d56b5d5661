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
//! Depthwise convolutions (EfficientNet) run here too, with the "SAME" padding applied inside
//! the kernel: burn pads an asymmetric input explicitly, one more copy of every activation.
//! The ReLU/ReLU6 that follows each convolution is applied while the output is written.
//!
//! 3×3 stride-1 convolutions on enough tiles go to Winograd's algorithm (`winograd.rs`).
//!
//! Only plain (non-autodiff) CPU tensors take this path; training the last stage and the
//! WebGPU backend keep burn's convolution, as do 1×1 convolutions (burn-flex multiplies those
//! without im2col) and other grouped ones.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::{relu, relu6};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::scratch::Scratch;
use super::winograd;

/// At most this many f32 in one im2col block (16 MB): large enough that GEMM amortises its
/// packing, small enough to stay modest next to the activations.
const BLOCK_FLOATS: usize = 1 << 22;
const MIN_BLOCK_COLS: usize = 256;

/// What follows the convolution, applied as the output is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Identity,
    Relu,
    Relu6,
}

impl Activation {
    pub(super) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Identity => v,
            Activation::Relu => v.max(0.0),
            Activation::Relu6 => v.clamp(0.0, 6.0),
        }
    }

    pub fn apply_tensor(self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Activation::Identity => x,
            Activation::Relu => relu(x),
            Activation::Relu6 => relu6(x),
        }
    }
}

/// `act(conv.forward(x))`, on this module's kernels when `x` is a plain CPU tensor.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>, act: Activation) -> Tensor<4> {
    let Some(g) = Geometry::for_cpu(conv, &x) else {
        return act.apply_tensor(conv.forward(x));
    };
    let device = x.device();
    let input = x.into_data();
    let weight = conv.weight.val().into_data();
    let bias = conv.bias.as_ref().map(|b| b.val().into_data());
    let (Ok(input), Ok(weight)) = (input.as_slice::<f32>(), weight.as_slice::<f32>()) else {
        unreachable!("Geometry::for_cpu only accepts f32 tensors")
    };
    let bias = bias.as_ref().and_then(|b| b.as_slice::<f32>().ok());
    let out = if g.depthwise {
        g.run_depthwise(input, weight, bias, act)
    } else if winograd::applies(&g) {
        winograd::run(&g, input, weight, bias, act)
    } else {
        g.run_dense(input, weight, bias, act)
    };
    Tensor::from_data(TensorData::new(out, g.output_shape()), &device)
}

/// Shapes, strides and padding of one convolution call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Geometry {
    pub batch: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub dilation: [usize; 2],
    /// (top, left)
    pub pad: [usize; 2],
    pub oh: usize,
    pub ow: usize,
    /// One input channel per output channel (`groups == C_in == C_out`), else dense.
    pub depthwise: bool,
}

impl Geometry {
    /// `None` when burn's convolution should run instead (see the module comment).
    fn for_cpu(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
        let device = x.device();
        if device.is_autodiff()
            || device != Device::flex()
            || x.dtype() != DType::F32
            || conv.weight.val().dtype() != DType::F32
            || conv.kernel_size == [1, 1]
        {
            return None;
        }
        let (top, left, bottom, right) = match conv.padding {
            PaddingConfig2d::Valid => (0, 0, 0, 0),
            PaddingConfig2d::Explicit(t, l, b, r) => (t, l, b, r),
            PaddingConfig2d::Same => return None,
        };
        let [batch, c_in, h, w] = x.dims();
        let [c_out, wc_in, kh, kw] = conv.weight.dims();
        let depthwise = conv.groups > 1 && conv.groups == c_in && c_out == c_in && wc_in == 1;
        if !(depthwise || conv.groups == 1 && wc_in == c_in) {
            return None;
        }
        let out = |len: usize, pad: usize, k: usize, s: usize, d: usize| {
            let span = d * (k - 1) + 1;
            (len + pad >= span).then(|| (len + pad - span) / s + 1)
        };
        let oh = out(h, top + bottom, kh, conv.stride[0], conv.dilation[0])?;
        let ow = out(w, left + right, kw, conv.stride[1], conv.dilation[1])?;
        Some(Geometry {
            batch,
            c_in,
            h,
            w,
            c_out,
            kh,
            kw,
            stride: conv.stride,
            dilation: conv.dilation,
            pad: [top, left],
            oh,
            ow,
            depthwise,
        })
    }

    fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.oh, self.ow]
    }

    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// NCHW `input`, `[C_out, C_in, kh, kw]` `weight` -> NCHW output.
    fn run_dense(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Vec<f32> {
        let k = self.k();
        let plane = self.oh * self.ow;
        let total = self.batch * plane;
        let block = (BLOCK_FLOATS / k).max(MIN_BLOCK_COLS).min(total);
        let mut out = vec![0f32; self.batch * self.c_out * plane];
        let mut cols = Scratch::take(k * block);
        let mut product = Scratch::take(self.c_out * block);
        let mut start = 0;
        while start < total {
            let n = block.min(total - start);
            let segments = self.segments(start, n);
            self.im2col(input, &segments, &mut cols[..k * n], n);
            gemm_rows(
                weight,
                &cols[..k * n],
                &mut product[..self.c_out * n],
                self.c_out,
                k,
                n,
            );
            self.scatter(
                &product[..self.c_out * n],
                n,
                &segments,
                bias,
                act,
                &mut out,
            );
            start += n;
        }
        out
    }

    /// The block's columns `[start, start + n)` cut at output-row boundaries.
    fn segments(&self, start: usize, n: usize) -> Vec<Segment> {
        let plane = self.oh * self.ow;
        let mut segments = Vec::new();
        let mut j = start;
        while j < start + n {
            let (image, p) = (j / plane, j % plane);
            let (oy, ox) = (p / self.ow, p % self.ow);
            let len = (self.ow - ox).min(start + n - j);
            segments.push(Segment {
                image,
                oy,
                ox,
                len,
                col: j - start,
            });
            j += len;
        }
        segments
    }

    /// Row `(c, ky, kx)` of the `[K, n]` im2col block: the input value each output column reads
    /// through that kernel tap, 0 in the padding.
    fn im2col(&self, input: &[f32], segments: &[Segment], cols: &mut [f32], n: usize) {
        let taps = self.kh * self.kw;
        let fill = |r: usize, row: &mut [f32]| {
            let (c, tap) = (r / taps, r % taps);
            let (ky, kx) = (tap / self.kw, tap % self.kw);
            for s in segments {
                let dst = &mut row[s.col..s.col + s.len];
                let Some(iy) = self.input_row(s.oy, ky) else {
                    dst.fill(0.0);
                    continue;
                };
                let src_row = ((s.image * self.c_in + c) * self.h + iy) * self.w;
                let src = &input[src_row..src_row + self.w];
                let Taps { first, end, at } = self.taps(kx, s.ox, s.len);
                dst[..first].fill(0.0);
                dst[end..].fill(0.0);
                if self.stride[1] == 1 && first < end {
                    dst[first..end].copy_from_slice(&src[at(first)..at(first) + end - first]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate().take(end).skip(first) {
                        *d = src[at(i)];
                    }
                }
            }
        };
        par_rows(cols, n, fill);
    }

    /// The input row that output row `oy` reads through kernel row `ky`; `None` in the padding.
    fn input_row(&self, oy: usize, ky: usize) -> Option<usize> {
        let iy = (oy * self.stride[0] + ky * self.dilation[0]).checked_sub(self.pad[0])?;
        (iy < self.h).then_some(iy)
    }

    /// For `len` output columns from `ox`, through kernel column `kx`: the range `first..end`
    /// of them that reads inside the input row (the rest read padding), and where each reads.
    fn taps(&self, kx: usize, ox: usize, len: usize) -> Taps<impl Fn(usize) -> usize> {
        let x0 = (kx * self.dilation[1]) as isize - self.pad[1] as isize;
        let sx = self.stride[1];
        let base = (ox * sx) as isize + x0;
        let first = ((-base).max(0) as usize).div_ceil(sx).min(len);
        let end = ((self.w as isize - base).max(0) as usize)
            .div_ceil(sx)
            .clamp(first, len);
        Taps {
            first,
            end,
            at: move |i| (base + (i * sx) as isize) as usize,
        }
    }

    /// `[C_out, n]` block product -> NCHW output, adding the bias and applying `act`.
    fn scatter(
        &self,
        product: &[f32],
        n: usize,
        segments: &[Segment],
        bias: Option<&[f32]>,
        act: Activation,
        out: &mut [f32],
    ) {
        let plane = self.oh * self.ow;
        for co in 0..self.c_out {
            let b = bias.map_or(0.0, |b| b[co]);
            let row = &product[co * n..(co + 1) * n];
            for s in segments {
                let at = (s.image * self.c_out + co) * plane + s.oy * self.ow + s.ox;
                for (o, &v) in out[at..at + s.len]
                    .iter_mut()
                    .zip(&row[s.col..s.col + s.len])
                {
                    *o = act.apply(v + b);
                }
            }
        }
    }

    /// Depthwise: each output plane is its input plane's `kh×kw` filter, accumulated tap by tap
    /// as whole-row multiply-adds (which vectorise), padding skipped rather than materialised.
    fn run_depthwise(
        &self,
        input: &[f32],
        weight: &[f32],
        bias: Option<&[f32]>,
        act: Activation,
    ) -> Vec<f32> {
        let (plane_in, plane_out) = (self.h * self.w, self.oh * self.ow);
        let mut out = vec![0f32; self.batch * self.c_out * plane_out];
        let filter = |bc: usize, o: &mut [f32]| {
            let c = bc % self.c_out;
            let src = &input[bc * plane_in..(bc + 1) * plane_in];
            o.fill(bias.map_or(0.0, |b| b[c]));
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let wv = weight[(c * self.kh + ky) * self.kw + kx];
                    let Taps { first, end, at } = self.taps(kx, 0, self.ow);
                    if first == end {
                        continue;
                    }
                    for oy in 0..self.oh {
                        let Some(iy) = self.input_row(oy, ky) else {
                            continue;
                        };
                        let row = &src[iy * self.w..(iy + 1) * self.w];
                        let dst = &mut o[oy * self.ow + first..oy * self.ow + end];
                        if self.stride[1] == 1 {
                            for (d, &v) in dst.iter_mut().zip(&row[at(first)..]) {
                                *d += wv * v;
                            }
                        } else {
                            for (i, d) in (first..end).zip(dst.iter_mut()) {
                                *d += wv * row[at(i)];
                            }
                        }
                    }
                }
            }
            for v in o.iter_mut() {
                *v = act.apply(*v);
            }
        };
        par_rows(&mut out, plane_out, filter);
        out
    }
}

/// See [`Geometry::taps`].
struct Taps<F: Fn(usize) -> usize> {
    first: usize,
    end: usize,
    at: F,
}

/// A run of consecutive output pixels on one output row of one image, and where it starts in
/// the block's columns.
struct Segment {
    image: usize,
    oy: usize,
    ox: usize,
    len: usize,
    col: usize,
}

/// `dst[m, n] = lhs[m, k] · rhs[k, n]`, all row-major.
fn gemm_rows(lhs: &[f32], rhs: &[f32], dst: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(lhs.len() >= m * k && rhs.len() >= k * n && dst.len() >= m * n);
    // SAFETY: the three slices hold the m×k, k×n and m×n row-major matrices described by the
    // strides (checked above), and `dst` does not alias the inputs (it is borrowed mutably).
    unsafe {
        gemm_strided(
            [m, n, k],
            (dst.as_mut_ptr(), n),
            (lhs.as_ptr(), 1, k),
            (rhs.as_ptr(), 1, n),
            parallelism(),
        );
    }
}

/// `dst = lhs · rhs` for `[m, n, k]`-shaped operands; `dst` has unit column stride and the given
/// row stride, `lhs` and `rhs` are `(pointer, column stride, row stride)`.
///
/// # Safety
/// Every element the shapes and strides address must be inside its allocation, and `dst`'s
/// elements must not overlap the inputs' or be written by anyone else meanwhile.
pub(super) unsafe fn gemm_strided(
    [m, n, k]: [usize; 3],
    (dst, dst_rs): (*mut f32, usize),
    (lhs, lhs_cs, lhs_rs): (*const f32, usize, usize),
    (rhs, rhs_cs, rhs_rs): (*const f32, usize, usize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: forwarded to the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            false,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::Rayon(0)
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
fn parallelism() -> gemm::Parallelism {
    gemm::Parallelism::None
}

/// `fill(r, row)` for every `n`-long row of `rows`, on all cores where there are several.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(super) fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    /// Fewest f32 one task fills: below this the pool's wake-ups cost more than the copy.
    const MIN_TASK_FLOATS: usize = 1 << 15;
    // A task per row is too fine for short rows (a batch-1 7×7 stage has 49-long rows, 4,608 of
    // them): in the threaded wasm build that made ResNet-18 slower on 2 threads than on 1.
    let min_rows = MIN_TASK_FLOATS.div_ceil(n.max(1));
    rows.par_chunks_mut(n)
        .enumerate()
        .with_min_len(min_rows)
        .for_each(|(r, row)| fill(r, row));
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32])) {
    for (r, row) in rows.chunks_mut(n).enumerate() {
        fill(r, row);
    }
}

/// `f(i)` for every `i < count`, each a task of its own on all cores where there are several.
#[cfg(any(not(target_arch = "wasm32"), feature = "threads"))]
pub(super) fn par_each(count: usize, f: impl Fn(usize) + Sync + Send) {
    use rayon::prelude::*;
    (0..count).into_par_iter().for_each(f);
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
pub(super) fn par_each(count: usize, f: impl Fn(usize)) {
    (0..count).for_each(f);
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Max |a − b| over max |b|: this module against burn-flex's own convolution + activation.
    fn relative_error(conv: &Conv2d, input: [usize; 4], act: Activation) -> f32 {
        let device = Device::flex();
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        assert!(
            Geometry::for_cpu(conv, &x).is_some(),
            "{input:?} must take this module's path"
        );
        let ours = conv2d(conv, x.clone(), act).into_data();
        let theirs = act.apply_tensor(conv.forward(x)).into_data();
        assert_eq!(ours.shape(), theirs.shape());
        let (a, b) = (
            ours.as_slice::<f32>().unwrap(),
            theirs.as_slice::<f32>().unwrap(),
        );
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        diff / scale
    }

    fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: [usize; 4]) -> Conv2d {
        Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[2], pad[3]))
            .init(&Device::flex())
    }

    fn depthwise(c: usize, k: usize, stride: usize, pad: [usize; 4]) -> Conv2d {
        Conv2dConfig::new([c, c], [k, k])
            .with_groups(c)
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[2], pad[3]))
            .init(&Device::flex())
    }

    /// Every shape the backbones use: ResNet's 7×7/2 stem and 3×3 convs at stride 1 and 2,
    /// EfficientNet's asymmetric "SAME" 3×3/2 stem and its 3×3 and 5×5 depthwise convs at
    /// stride 1 and 2 (asymmetric padding); batches that split across column blocks (1,000+
    /// columns per image) and blocks that span several images (7×7 outputs); each activation.
    #[test]
    fn matches_burn_convolution() {
        use Activation::*;
        let cases = [
            (conv(3, 16, 7, 2, [3, 3, 3, 3]), [2, 3, 61, 57], Relu),
            (conv(8, 8, 3, 1, [1, 1, 1, 1]), [3, 8, 40, 33], Identity),
            (conv(8, 12, 3, 2, [1, 1, 1, 1]), [2, 8, 29, 30], Relu),
            (conv(3, 8, 3, 2, [0, 0, 1, 1]), [2, 3, 32, 32], Relu6),
            (conv(32, 16, 3, 1, [1, 1, 1, 1]), [5, 32, 7, 7], Identity),
            (conv(4, 6, 3, 1, [0, 0, 0, 0]), [1, 4, 9, 11], Relu6),
            (depthwise(6, 3, 1, [1, 1, 1, 1]), [2, 6, 13, 12], Relu6),
            (depthwise(5, 3, 2, [0, 0, 1, 1]), [2, 5, 16, 16], Relu6),
            (depthwise(4, 5, 2, [1, 1, 2, 2]), [3, 4, 14, 14], Identity),
            (depthwise(4, 5, 1, [2, 2, 2, 2]), [1, 4, 7, 9], Relu),
        ];
        for (conv, input, act) in cases {
            let err = relative_error(&conv, input, act);
            assert!(err < 1e-5, "{input:?} {act:?}: relative error {err}");
        }
    }

    #[test]
    fn leaves_other_convolutions_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 8, 8, 8], &device);
        let pointwise = conv(8, 8, 1, 1, [0, 0, 0, 0]);
        let grouped = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(2)
            .init(&device);
        assert!(Geometry::for_cpu(&pointwise, &x).is_none());
        assert!(Geometry::for_cpu(&grouped, &x).is_none());
        let tracked = Tensor::<4>::zeros([1, 8, 8, 8], &device.clone().autodiff());
        let dense = conv(8, 8, 3, 1, [1, 1, 1, 1]);
        assert!(Geometry::for_cpu(&dense, &tracked).is_none());
    }
}
