//! Max pooling (ResNet's 3×3 stride-2 stem pool) on the CPU backend.
//!
//! burn-flex runs every 2-D max pool through its 3-D pool with indices: per output value it
//! clips the window to the input, tracks the argmax and compares one value at a time. In a
//! native profile of ResNet-18 at batch 16 (Intel Xeon, AVX-512 GEMM) that was 8% of the
//! forward, for one layer. Inference needs no indices, so here each output row is the
//! elementwise max of the input rows its windows span (a contiguous loop that vectorises),
//! then the max over each window's columns of that one row.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::{Tensor, TensorData};

use super::geometry::{flex, plain_cpu_f32, values};
use crate::parallel::{COPY_TASK_VALUES, par_rows};

/// `pool.forward(x)`, on this module's kernel when `x` is a plain CPU f32 tensor and the pool
/// has no dilation or ceil mode (burn's pool runs otherwise).
///
/// NaN inputs are not propagated as burn's pool does (a NaN may or may not win its window);
/// the backbone's inputs are decoded pixels.
pub fn max_pool2d(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let Some(p) = Pool::for_cpu(pool, &x) else {
        return pool.forward(x);
    };
    let device = x.device();
    let input = flex(x);
    let input = values(&input);
    let [n, c, h, w] = p.input;
    let (oh, ow) = p.output();
    let mut out = vec![0f32; n * c * oh * ow];
    par_rows(&mut out, oh * ow, COPY_TASK_VALUES, |plane, out| {
        p.plane(&input[plane * h * w..][..h * w], out);
    });
    Tensor::from_data(TensorData::new(out, [n, c, oh, ow]), &device)
}

/// One pooling call's shapes.
#[derive(Clone, Copy, Debug)]
struct Pool {
    input: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    /// (top, left, bottom, right)
    pad: [usize; 4],
}

impl Pool {
    fn for_cpu(pool: &MaxPool2d, x: &Tensor<4>) -> Option<Pool> {
        if !plain_cpu_f32(x) || pool.dilation != [1, 1] || pool.ceil_mode {
            return None;
        }
        let pad = match pool.padding {
            PaddingConfig2d::Valid => [0; 4],
            PaddingConfig2d::Explicit(t, l, b, r) => [t, l, b, r],
            PaddingConfig2d::Same => return None,
        };
        let p = Pool {
            input: x.dims(),
            kernel: pool.kernel_size,
            stride: pool.stride,
            pad,
        };
        let [_, _, h, w] = p.input;
        let [kh, kw] = p.kernel;
        // Every window must hold at least one input value (burn and PyTorch require the
        // padding to be at most half the kernel, which implies it).
        let fits = kh > 0
            && kw > 0
            && p.stride.iter().all(|&s| s > 0)
            && pad[0] < kh
            && pad[2] < kh
            && pad[1] < kw
            && pad[3] < kw
            && h + pad[0] + pad[2] >= kh
            && w + pad[1] + pad[3] >= kw;
        fits.then_some(p)
    }

    fn output(&self) -> (usize, usize) {
        let [_, _, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [t, l, b, r] = self.pad;
        (
            (h + t + b - kh) / self.stride[0] + 1,
            (w + l + r - kw) / self.stride[1] + 1,
        )
    }

    /// One `[h, w]` input plane -> its `[oh, ow]` output plane.
    fn plane(&self, input: &[f32], out: &mut [f32]) {
        let [_, _, h, w] = self.input;
        let [kh, kw] = self.kernel;
        let [top, left, _, right] = self.pad;
        let (_, ow) = self.output();
        // The input row span with the left and right padding as -inf, so that the column pass
        // needs no bounds: the padding never wins a max.
        let mut rows = vec![f32::NEG_INFINITY; left + w + right];
        for (oy, out) in out.chunks_exact_mut(ow).enumerate() {
            let y0 = (oy * self.stride[0]).saturating_sub(top);
            let y1 = (oy * self.stride[0] + kh - top).min(h);
            let span = &mut rows[left..left + w];
            span.copy_from_slice(&input[y0 * w..][..w]);
            for y in y0 + 1..y1 {
                for (m, &v) in span.iter_mut().zip(&input[y * w..][..w]) {
                    *m = super::max(v, *m);
                }
            }
            for (ox, o) in out.iter_mut().enumerate() {
                let x0 = ox * self.stride[1];
                *o = rows[x0..x0 + kw]
                    .iter()
                    .fold(f32::NEG_INFINITY, |m, &v| super::max(v, m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::Device;

    /// Against burn's own pool, exactly (a max is exact): ResNet's stem pool on even and odd
    /// sizes, windows without padding, asymmetric padding, and negative inputs (which would
    /// lose to zero padding where a kernel wrongly padded with zeros).
    #[test]
    fn matches_burn() {
        let device = Device::flex();
        let stem = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let uneven = PaddingConfig2d::Explicit(1, 0, 2, 1);
        let cases = [
            ([3, 3], [2, 2], stem.clone(), [2, 3, 12, 12]),
            ([3, 3], [2, 2], stem, [1, 2, 11, 9]),
            ([2, 2], [2, 2], PaddingConfig2d::Valid, [2, 2, 8, 7]),
            ([3, 2], [1, 2], uneven, [1, 3, 6, 5]),
        ];
        for (i, (kernel, stride, padding, shape)) in cases.into_iter().enumerate() {
            let pool = MaxPool2dConfig::new(kernel)
                .with_strides(stride)
                .with_padding(padding.clone())
                .init();
            let len = shape.iter().product::<usize>();
            // Mostly negative values with a few repeats, so ties and padding both matter.
            let values: Vec<f32> = (0..len)
                .map(|j| -(((j * 7919 + i * 31) % 97) as f32) / 8.0)
                .collect();
            let x = Tensor::<4>::from_data(TensorData::new(values, shape), &device);
            assert!(Pool::for_cpu(&pool, &x).is_some(), "case {i}: the kernel");
            let want = pool.forward(x.clone());
            let got = max_pool2d(&pool, x);
            assert_eq!(got.dims(), want.dims(), "case {i}");
            assert_eq!(
                got.into_data().try_to_vec::<f32>().unwrap(),
                want.into_data().try_to_vec::<f32>().unwrap(),
                "case {i}: {kernel:?} stride {stride:?} {padding:?} on {shape:?}"
            );
        }
    }
}
