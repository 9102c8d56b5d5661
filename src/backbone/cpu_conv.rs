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
//! Only plain (non-autodiff) CPU tensors take this path; training the last stage and the
//! WebGPU backend keep burn's convolution, as do 1×1 and grouped (depthwise) convolutions, for
//! which burn-flex already has direct kernels.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// At most this many f32 in one im2col block (16 MB): large enough that GEMM amortises its
/// packing, small enough to stay modest next to the activations.
const BLOCK_FLOATS: usize = 1 << 22;
const MIN_BLOCK_COLS: usize = 256;

/// `conv.forward(x)`, through the batched im2col GEMM when `x` is a plain CPU tensor.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    match Geometry::for_cpu(conv, &x) {
        Some(g) => {
            let device = x.device();
            let input = x.into_data();
            let weight = conv.weight.val().into_data();
            let bias = conv.bias.as_ref().map(|b| b.val().into_data());
            let (Ok(input), Ok(weight)) = (input.as_slice::<f32>(), weight.as_slice::<f32>())
            else {
                unreachable!("Geometry::for_cpu only accepts f32 tensors")
            };
            let bias = bias.as_ref().and_then(|b| b.as_slice::<f32>().ok());
            let out = g.run(input, weight, bias);
            Tensor::from_data(TensorData::new(out, g.output_shape()), &device)
        }
        None => conv.forward(x),
    }
}

/// Shapes, strides and padding of one convolution call.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    dilation: [usize; 2],
    /// (top, left)
    pad: [usize; 2],
    oh: usize,
    ow: usize,
}

impl Geometry {
    /// `None` when burn's convolution should run instead (see the module comment).
    fn for_cpu(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
        let device = x.device();
        if device.is_autodiff()
            || device != Device::flex()
            || x.dtype() != DType::F32
            || conv.weight.val().dtype() != DType::F32
            || conv.groups != 1
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
        if wc_in != c_in {
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
        })
    }

    fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.oh, self.ow]
    }

    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// NCHW `input`, `[C_out, C_in, kh, kw]` `weight` -> NCHW output.
    fn run(&self, input: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
        let k = self.k();
        let plane = self.oh * self.ow;
        let total = self.batch * plane;
        let block = (BLOCK_FLOATS / k).max(MIN_BLOCK_COLS).min(total);
        let mut out = vec![0f32; self.batch * self.c_out * plane];
        let mut cols = vec![0f32; k * block];
        let mut product = vec![0f32; self.c_out * block];
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
            self.scatter(&product[..self.c_out * n], n, &segments, bias, &mut out);
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
                let iy =
                    (s.oy * self.stride[0] + ky * self.dilation[0]) as isize - self.pad[0] as isize;
                if iy < 0 || iy >= self.h as isize {
                    dst.fill(0.0);
                    continue;
                }
                let src_row = ((s.image * self.c_in + c) * self.h + iy as usize) * self.w;
                let src = &input[src_row..src_row + self.w];
                let x0 = (kx * self.dilation[1]) as isize - self.pad[1] as isize;
                let sx = self.stride[1];
                // Output columns whose input column `(ox + i)·sx + x0` lies inside the row.
                let first = (-x0 - (s.ox * sx) as isize).max(0) as usize;
                let first = first.div_ceil(sx).min(s.len);
                let end = (self.w as isize - x0 - (s.ox * sx) as isize).max(0) as usize;
                let end = end.div_ceil(sx).clamp(first, s.len);
                dst[..first].fill(0.0);
                dst[end..].fill(0.0);
                let at = |i: usize| ((s.ox + i) * sx) as isize + x0;
                if sx == 1 && first < end {
                    let from = at(first) as usize;
                    dst[first..end].copy_from_slice(&src[from..from + end - first]);
                } else {
                    for (i, d) in dst.iter_mut().enumerate().take(end).skip(first) {
                        *d = src[at(i) as usize];
                    }
                }
            }
        };
        par_rows(cols, n, fill);
    }

    /// `[C_out, n]` block product -> NCHW output, adding the bias.
    fn scatter(
        &self,
        product: &[f32],
        n: usize,
        segments: &[Segment],
        bias: Option<&[f32]>,
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
                    *o = v + b;
                }
            }
        }
    }
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
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism(),
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
fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    rows.par_chunks_mut(n)
        .enumerate()
        .for_each(|(r, row)| fill(r, row));
}

#[cfg(all(target_arch = "wasm32", not(feature = "threads")))]
fn par_rows(rows: &mut [f32], n: usize, fill: impl Fn(usize, &mut [f32])) {
    for (r, row) in rows.chunks_mut(n).enumerate() {
        fill(r, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Distribution;

    /// Max |a − b| over max |b|: the im2col GEMM against burn-flex's own convolution.
    fn relative_error(conv: &Conv2d, input: [usize; 4]) -> f32 {
        let device = Device::flex();
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        assert!(
            Geometry::for_cpu(conv, &x).is_some(),
            "{input:?} must take the GEMM path"
        );
        let ours = conv2d(conv, x.clone()).into_data();
        let theirs = conv.forward(x).into_data();
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

    /// Every dense shape the backbones use: ResNet's 7×7/2 stem and 3×3 convs at stride 1 and 2,
    /// EfficientNet's asymmetric "SAME" 3×3/2 stem; batches that split across column blocks
    /// (1,000+ columns per image) and blocks that span several images (7×7 outputs).
    #[test]
    fn matches_burn_convolution() {
        let cases = [
            (conv(3, 16, 7, 2, [3, 3, 3, 3]), [2, 3, 61, 57]),
            (conv(8, 8, 3, 1, [1, 1, 1, 1]), [3, 8, 40, 33]),
            (conv(8, 12, 3, 2, [1, 1, 1, 1]), [2, 8, 29, 30]),
            (conv(3, 8, 3, 2, [0, 0, 1, 1]), [2, 3, 32, 32]),
            (conv(32, 16, 3, 1, [1, 1, 1, 1]), [5, 32, 7, 7]),
            (conv(4, 6, 3, 1, [0, 0, 0, 0]), [1, 4, 9, 11]),
        ];
        for (conv, input) in cases {
            let err = relative_error(&conv, input);
            assert!(err < 1e-5, "{input:?}: relative error {err}");
        }
    }

    #[test]
    fn leaves_other_convolutions_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 8, 8, 8], &device);
        let pointwise = conv(8, 8, 1, 1, [0, 0, 0, 0]);
        let depthwise = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(8)
            .init(&device);
        assert!(Geometry::for_cpu(&pointwise, &x).is_none());
        assert!(Geometry::for_cpu(&depthwise, &x).is_none());
        let tracked = Tensor::<4>::zeros([1, 8, 8, 8], &device.clone().autodiff());
        let dense = conv(8, 8, 3, 1, [1, 1, 1, 1]);
        assert!(Geometry::for_cpu(&dense, &tracked).is_none());
    }
}
