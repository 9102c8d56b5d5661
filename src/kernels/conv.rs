//! Which kernel a CPU convolution takes, and im2col + GEMM for the dense ones no other takes.

use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};

use super::Activation;
use super::geometry::{Geometry, Operands, flex, values};
use super::matmul::gemm_rows;
use super::scratch::Scratch;
use super::{depthwise, pointwise, winograd};
use crate::parallel::{COPY_TASK_VALUES, par_rows};

/// At most this many f32 in one im2col block (16 MB): large enough that GEMM amortises its
/// packing, small enough to stay modest next to the activations.
const BLOCK_FLOATS: usize = 1 << 22;
const MIN_BLOCK_COLS: usize = 256;

/// `act(conv.forward(x))`, on this module's kernels when `x` is a plain CPU tensor.
pub fn conv2d(conv: &Conv2d, x: Tensor<4>, act: Activation) -> Tensor<4> {
    conv2d_add(conv, x, None, act)
}

/// `act(conv.forward(x) + residual)`: the residual (a tensor of the output's shape: a skip
/// connection) is added while the output is written rather than in a pass of its own.
pub fn conv2d_add(
    conv: &Conv2d,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    act: Activation,
) -> Tensor<4> {
    let Some(g) = Geometry::for_cpu(conv, &x) else {
        return act.apply_after_add(conv.forward(x), residual);
    };
    if residual
        .as_ref()
        .is_some_and(|r| r.dims() != g.output_shape())
    {
        panic!(
            "residual {:?} for an output of {:?}",
            residual.map(|r| r.dims()),
            g.output_shape()
        );
    }
    let device = x.device();
    let out = with_operands(conv, x, residual, act, |op| {
        if g.depthwise {
            depthwise::run(&g, op)
        } else if pointwise::applies(&g) {
            pointwise::run(&g, op)
        } else if winograd::applies(&g) {
            winograd::run(&g, op)
        } else {
            g.run_dense(op)
        }
    });
    Tensor::from_data(TensorData::new(out, g.output_shape()), &device)
}

/// `f` on the call's operands, each read where it lies (`flex`).
fn with_operands<R>(
    conv: &Conv2d,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    act: Activation,
    f: impl FnOnce(&Operands) -> R,
) -> R {
    let input = flex(x);
    let weight = flex(conv.weight.val());
    let bias = conv.bias.as_ref().map(|b| flex(b.val()));
    let residual = residual.map(flex);
    f(&Operands {
        input: values(&input),
        weight: values(&weight),
        weight_tensor: Some(&weight),
        bias: bias.as_ref().map(values),
        residual: residual.as_ref().map(values),
        act,
    })
}

impl Geometry {
    /// The call's shapes when one of this module's kernels takes it, `None` when burn's
    /// convolution should run instead (see `kernels/mod.rs`): depthwise calls only within
    /// `depthwise::applies`.
    pub(super) fn for_cpu(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
        Geometry::of(conv, x).filter(|g| !g.depthwise || depthwise::applies(g))
    }

    /// NCHW `input`, `[C_out, C_in, kh, kw]` `weight` -> NCHW output.
    fn run_dense(&self, op: &Operands) -> Vec<f32> {
        let (input, weight) = (op.input, op.weight);
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
            self.scatter(&product[..self.c_out * n], n, &segments, op, &mut out);
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
                if first == end {
                    continue;
                }
                let (dst, src) = (&mut dst[first..end], &src[at(first)..]);
                match self.stride[1] {
                    1 => dst.copy_from_slice(&src[..dst.len()]),
                    // The stride as a constant, over whole groups: no bounds check and no address
                    // arithmetic per value (the stride-2 stems and downsampling convolutions
                    // spent ~5.7% of ResNet-18's samples here, ~2.3% with this; an iterator
                    // with a run-time step, as below, ~4.7%).
                    2 => strided_copy::<2>(dst, src),
                    sx => dst
                        .iter_mut()
                        .zip(src.iter().step_by(sx))
                        .for_each(|(d, &s)| *d = s),
                }
            }
        };
        par_rows(cols, n, COPY_TASK_VALUES, fill);
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

    /// `[C_out, n]` block product -> NCHW output, adding the bias and the residual and applying
    /// the activation.
    fn scatter(
        &self,
        product: &[f32],
        n: usize,
        segments: &[Segment],
        op: &Operands,
        out: &mut [f32],
    ) {
        let plane = self.oh * self.ow;
        for co in 0..self.c_out {
            let b = op.bias.map_or(0.0, |b| b[co]);
            let row = &product[co * n..(co + 1) * n];
            for s in segments {
                let at = (s.image * self.c_out + co) * plane + s.oy * self.ow + s.ox;
                let (o, v) = (&mut out[at..at + s.len], &row[s.col..s.col + s.len]);
                match op.residual {
                    Some(r) => {
                        let r = &r[at..at + s.len];
                        for ((o, &v), &r) in o.iter_mut().zip(v).zip(r) {
                            *o = v + b + r;
                        }
                        op.act.apply_slice(o);
                    }
                    None => {
                        for (o, &v) in o.iter_mut().zip(v) {
                            *o = v + b;
                        }
                        op.act.apply_slice(o);
                    }
                }
            }
        }
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

/// `dst[i] = src[i·S]` for every `i` of `dst` (non-empty; `src` holds at least `(len - 1)·S + 1`
/// values): whole groups of `S` for all but the last value, whose group may run past the row.
#[inline(always)]
fn strided_copy<const S: usize>(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    let (last, head) = dst.split_last_mut().expect("a non-empty run of outputs");
    let (groups, _) = src[..(n - 1) * S].as_chunks::<S>();
    for (d, group) in head.iter_mut().zip(groups) {
        *d = group[0];
    }
    *last = src[(n - 1) * S];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::depthwise_tiles;
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Device;
    use burn::tensor::Distribution;

    /// Max |a − b| over max |b|: this module against burn-flex's own convolution, plus the
    /// residual when there is one, then the activation.
    fn relative_error(conv: &Conv2d, input: [usize; 4], act: Activation, skip: bool) -> f32 {
        let device = Device::flex();
        let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
        assert!(
            Geometry::for_cpu(conv, &x).is_some(),
            "{input:?} must take this module's path"
        );
        let theirs = conv.forward(x.clone());
        let residual = skip
            .then(|| Tensor::<4>::random(theirs.dims(), Distribution::Normal(0.0, 1.0), &device));
        let theirs = match &residual {
            Some(r) => theirs + r.clone(),
            None => theirs,
        };
        let theirs = act.apply_tensor(theirs).into_data();
        let ours = conv2d_add(conv, x, residual, act).into_data();
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

    /// A 3×3 depthwise convolution of `c` channels at dilation 2, padded to keep its size.
    fn dilated_depthwise(c: usize) -> Conv2d {
        Conv2dConfig::new([c, c], [3, 3])
            .with_groups(c)
            .with_dilation([2, 2])
            .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
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
    /// stride 1 and 2 (asymmetric padding, odd and even widths); 1×1 convs on planes of several
    /// column blocks (with a ragged last one) and of less than one, and ResNet's 1×1/2
    /// downsample (im2col); batches that split across column
    /// blocks (1,000+ columns per image) and blocks that span several images (7×7 outputs);
    /// batch-1 1×1 convs whose output channels are split among tasks; each activation, with
    /// and without a residual added before it.
    #[test]
    fn matches_burn_convolution() {
        use Activation::*;
        let side = 31; // 992 pixels: three 256-column blocks and a ragged one
        let cases = [
            (conv(3, 16, 7, 2, [3, 3, 3, 3]), [2, 3, 61, 57], Relu, false),
            // Stride 3: im2col's generic strided copy (1 and 2 have their own).
            (conv(4, 6, 3, 3, [1, 1, 1, 1]), [1, 4, 20, 23], Relu, false),
            (
                conv(8, 8, 3, 1, [1, 1, 1, 1]),
                [3, 8, 40, 33],
                Identity,
                false,
            ),
            (conv(8, 8, 3, 1, [1, 1, 1, 1]), [3, 8, 40, 33], Relu, true),
            (conv(8, 12, 3, 2, [1, 1, 1, 1]), [2, 8, 29, 30], Relu, false),
            // A narrow im2col product (batch 1, 42 columns): its 72 output channels split into
            // tasks of 32 rows (`matmul::gemm_rows`), the last ragged.
            (conv(8, 72, 3, 2, [1, 1, 1, 1]), [1, 8, 13, 12], Relu, true),
            (conv(3, 8, 3, 2, [0, 0, 1, 1]), [2, 3, 32, 32], Relu6, false),
            (
                conv(32, 16, 3, 1, [1, 1, 1, 1]),
                [5, 32, 7, 7],
                Identity,
                false,
            ),
            (conv(32, 16, 3, 1, [1, 1, 1, 1]), [5, 32, 7, 7], Relu, true),
            (conv(4, 6, 3, 1, [0, 0, 0, 0]), [1, 4, 9, 11], Relu6, false),
            (
                conv(16, 40, 1, 1, [0, 0, 0, 0]),
                [2, 16, side, side + 1],
                Relu6,
                false,
            ),
            (
                conv(40, 16, 1, 1, [0, 0, 0, 0]),
                [2, 40, side, side],
                Identity,
                true,
            ),
            (conv(24, 48, 1, 1, [0, 0, 0, 0]), [3, 24, 7, 7], Relu, true),
            // Batch 1 on planes of one block: the output channels split among tasks on a
            // pool of several threads (`matmul::rows_per_task`), the last part ragged.
            (
                conv(24, 100, 1, 1, [0, 0, 0, 0]),
                [1, 24, 7, 7],
                Relu6,
                true,
            ),
            (
                conv(48, 72, 1, 1, [0, 0, 0, 0]),
                [1, 48, 14, 14],
                Identity,
                false,
            ),
            (
                conv(48, 24, 1, 1, [0, 0, 0, 0]),
                [2, 48, 14, 14],
                Relu6,
                false,
            ),
            (
                conv(8, 16, 1, 2, [0, 0, 0, 0]),
                [2, 8, 15, 14],
                Identity,
                false,
            ),
            (
                depthwise(6, 3, 1, [1, 1, 1, 1]),
                [2, 6, 13, 12],
                Relu6,
                false,
            ),
            (
                depthwise(6, 3, 1, [1, 1, 1, 1]),
                [2, 6, 13, 12],
                Identity,
                true,
            ),
            (
                depthwise(5, 3, 2, [0, 0, 1, 1]),
                [2, 5, 16, 16],
                Relu6,
                false,
            ),
            (
                depthwise(5, 3, 2, [0, 0, 1, 1]),
                [2, 5, 17, 15],
                Relu6,
                false,
            ),
            (
                depthwise(4, 5, 2, [1, 1, 2, 2]),
                [3, 4, 14, 14],
                Identity,
                false,
            ),
            (
                depthwise(4, 5, 2, [1, 1, 2, 2]),
                [1, 4, 13, 11],
                Relu,
                false,
            ),
            (depthwise(4, 5, 1, [2, 2, 2, 2]), [1, 4, 7, 9], Relu, false),
            // Stride 2 with an even left padding (the split of a row's columns starts at 1).
            (
                depthwise(3, 5, 2, [2, 2, 2, 2]),
                [2, 3, 15, 13],
                Relu6,
                false,
            ),
            (depthwise(3, 3, 2, [1, 2, 1, 2]), [1, 3, 12, 14], Relu, true),
            // Dilation 2 at stride 1: the flat run reads `(kw − 1)·2` past the padded plane.
            (dilated_depthwise(4), [2, 4, 9, 10], Relu, true),
            (
                depthwise(6, 3, 1, [0, 0, 0, 0]),
                [2, 6, 40, 37],
                Relu6,
                false,
            ),
            (
                depthwise(6, 5, 2, [1, 1, 2, 2]),
                [2, 6, 56, 45],
                Relu6,
                true,
            ),
        ];
        for (conv, input, act, skip) in cases.into_iter().chain(tile_cases()) {
            let err = relative_error(&conv, input, act, skip);
            assert!(
                err < 1e-5,
                "{input:?} {act:?} residual {skip}: relative error {err}"
            );
        }
    }

    /// Depthwise calls the wasm builds take in channel tiles (`depthwise_tiles.rs`): Lite0's
    /// kinds, 7×7 and 14×14 at stride 1, "SAME" stride 2 (padding after only, and both sides),
    /// 3×3 and 5×5, rows whose last run of 4 pixels overlaps the one before, a batch, a residual,
    /// each activation, a dilation.
    fn tile_cases() -> Vec<(Conv2d, [usize; 4], Activation, bool)> {
        use Activation::*;
        vec![
            (
                depthwise(16, 5, 1, [2, 2, 2, 2]),
                [1, 16, 7, 7],
                Relu6,
                false,
            ),
            (
                depthwise(24, 3, 1, [1, 1, 1, 1]),
                [2, 24, 14, 14],
                Relu,
                true,
            ),
            (
                depthwise(8, 3, 2, [0, 0, 1, 1]),
                [2, 8, 14, 14],
                Relu6,
                false,
            ),
            (
                depthwise(24, 5, 2, [1, 1, 2, 2]),
                [1, 24, 14, 13],
                Identity,
                true,
            ),
            (depthwise(8, 3, 1, [1, 1, 1, 1]), [3, 8, 9, 10], Relu, true),
            (
                depthwise(8, 5, 2, [2, 2, 2, 2]),
                [1, 8, 28, 28],
                Relu6,
                false,
            ),
            (
                depthwise(16, 3, 2, [0, 0, 1, 1]),
                [1, 16, 112, 112],
                Relu6,
                false,
            ),
            // Dilation 2 (no backbone's, but `depthwise::applies` takes it).
            (dilated_depthwise(8), [1, 8, 9, 10], Relu6, true),
        ]
    }

    /// The tiles against the plane kernel (held to burn's convolution above, natively the path
    /// these calls take): the wasm builds run the tiles' SIMD128 form, natively their portable
    /// one is tested here.
    #[test]
    fn depthwise_tiles_match_the_plane_kernel() {
        let device = Device::flex();
        for (conv, input, act, skip) in tile_cases() {
            let x = Tensor::<4>::random(input, Distribution::Normal(0.0, 1.0), &device);
            let g = Geometry::for_cpu(&conv, &x).expect("a depthwise call the kernels read");
            assert!(depthwise_tiles::fits(&g), "{input:?} must fit the tiles");
            let residual = skip.then(|| {
                Tensor::<4>::random(g.output_shape(), Distribution::Normal(0.0, 1.0), &device)
            });
            let (ours, theirs) = with_operands(&conv, x, residual, act, |op| {
                (depthwise_tiles::run(&g, op), depthwise::planes(&g, op))
            });
            assert_eq!(ours.len(), theirs.len());
            let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs()));
            let diff = ours
                .iter()
                .zip(&theirs)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(
                diff <= 1e-6 * scale,
                "{:?}: relative error {}",
                g.output_shape(),
                diff / scale
            );
        }
    }

    /// Which path each 1×1 call takes: stride 1 unpadded where the data lies, else im2col.
    #[test]
    fn pointwise_calls_take_the_direct_gemm() {
        let device = Device::flex();
        let at = |c: usize, h: usize, w: usize| {
            let x = Tensor::<4>::zeros([1, c, h, w], &device);
            pointwise::applies(&Geometry::for_cpu(&conv(c, c, 1, 1, [0, 0, 0, 0]), &x).unwrap())
        };
        assert!(at(8, 112, 112));
        assert!(at(8, 28, 28));
        assert!(at(8, 7, 7));
        let x = Tensor::<4>::zeros([1, 8, 56, 56], &device);
        let strided = Geometry::for_cpu(&conv(8, 8, 1, 2, [0, 0, 0, 0]), &x).unwrap();
        assert!(!pointwise::applies(&strided));
        let padded = Geometry::for_cpu(&conv(8, 8, 1, 1, [1, 1, 1, 1]), &x).unwrap();
        assert!(!pointwise::applies(&padded));
    }

    #[test]
    fn leaves_other_convolutions_to_burn() {
        let device = Device::flex();
        let x = Tensor::<4>::zeros([1, 8, 8, 8], &device);
        let grouped = Conv2dConfig::new([8, 8], [3, 3])
            .with_groups(2)
            .init(&device);
        assert!(Geometry::for_cpu(&grouped, &x).is_none());
        let stride3 = depthwise(8, 3, 3, [1, 1, 1, 1]);
        assert!(Geometry::for_cpu(&stride3, &x).is_none());
        let tracked = Tensor::<4>::zeros([1, 8, 8, 8], &device.clone().autodiff());
        let dense = conv(8, 8, 3, 1, [1, 1, 1, 1]);
        assert!(Geometry::for_cpu(&dense, &tracked).is_none());
    }
}
