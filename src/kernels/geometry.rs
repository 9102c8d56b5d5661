//! The shape of one CPU convolution call, and which calls these kernels can describe at all;
//! which of them a kernel takes (the rest stay with burn's convolution) is `conv.rs`'s choice.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::tensor::{DType, Device, Tensor};

use super::Activation;

/// The data of one convolution call: NCHW `input`, `[C_out, C_in/groups, kh, kw]` `weight`, the
/// bias, a residual of the output's shape added before the activation, and the activation.
#[derive(Clone, Copy)]
pub(crate) struct Operands<'a> {
    pub input: &'a [f32],
    pub weight: &'a [f32],
    /// The tensor whose storage `weight` is, where the call has it: Winograd keeps transformed
    /// filters for it between calls (`winograd::kept`).
    pub weight_tensor: Option<&'a FlexTensor>,
    pub bias: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub act: Activation,
}

impl Operands<'_> {
    /// Output values from `at` (a flat NCHW index) before any product is added: the channel's
    /// bias, plus the residual there when there is one.
    pub fn start(&self, out: &mut [f32], at: usize, bias: f32) {
        match self.residual {
            Some(r) => {
                let r = &r[at..at + out.len()];
                out.iter_mut().zip(r).for_each(|(o, &r)| *o = r + bias);
            }
            None => out.fill(bias),
        }
    }

    /// `act(v + bias + residual)` in place, for values a kernel wrote from its products alone
    /// (`at`: the first one's flat NCHW index). The sum in the order [`Operands::start`] gives
    /// it, `products + (residual + bias)`.
    pub fn finish(&self, out: &mut [f32], at: usize, bias: f32) {
        match self.residual {
            Some(r) => {
                let r = &r[at..at + out.len()];
                out.iter_mut().zip(r).for_each(|(o, &r)| *o += r + bias);
            }
            None => out.iter_mut().for_each(|o| *o += bias),
        }
        self.act.apply_slice(out);
    }
}

/// Whether `x` is a tensor these kernels read: f32 on burn-flex, outside autodiff (training
/// records its own graph through burn's ops).
pub(super) fn plain_cpu_f32(x: &Tensor<4>) -> bool {
    let device = x.device();
    !device.is_autodiff() && device == Device::flex() && x.dtype() == DType::F32
}

/// An operand of a plain CPU call as burn-flex's own tensor, contiguous, so that its values are
/// read where they lie (`values`). `into_data` copied each convolution's input and weights,
/// both shared (a skip connection holds the input, the module its weights): ~5% of a native
/// EfficientNet-Lite0 forward went to that copy in a profile.
pub(super) fn flex<const D: usize>(x: Tensor<D>) -> FlexTensor {
    match x.clone().try_into_primitive::<Flex>() {
        Ok(t) if t.as_slice::<f32>().is_some() => t,
        // a strided view, or another device (no plain CPU call's operand is): one copy
        _ => FlexTensor::from_data(x.into_data()),
    }
}

/// The f32 values of a tensor from [`flex`].
pub(super) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("the kernels' operands are f32 (`Geometry::of`, `plain_cpu_f32`)")
}

/// Shapes, strides and padding of one convolution call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Geometry {
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
    /// The call's shapes, or `None` when it is no call these kernels read: autodiff or non-f32
    /// tensors, "SAME" padding, groups other than depthwise, a kernel wider than the padded input.
    pub(super) fn of(conv: &Conv2d, x: &Tensor<4>) -> Option<Geometry> {
        if !plain_cpu_f32(x) || conv.weight.val().dtype() != DType::F32 {
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

    pub(super) fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.c_out, self.oh, self.ow]
    }

    pub(super) fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }
}
