//! Folding eval-mode BatchNorm into the preceding convolution, once at load time:
//! `w' = w·γ/√(σ²+ε)`, `b' = (b−μ)·γ/√(σ²+ε) + β`. The backbone is frozen, so the folded network
//! computes the same function with one pass less over every activation.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::Tensor;

use crate::kernels::{self, Activation};

/// `conv` followed by `bn` when the pair has not been folded yet.
pub fn conv_bn(conv: &Conv2d, bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    conv_bn_act(conv, bn, x, Activation::Identity)
}

/// `act(bn(conv(x)))`; once folded, the activation is fused into the convolution's output.
pub fn conv_bn_act(
    conv: &Conv2d,
    bn: &Option<BatchNorm>,
    x: Tensor<4>,
    act: Activation,
) -> Tensor<4> {
    conv_bn_add_act(conv, bn, x, None, act)
}

/// `act(bn(conv(x)) + residual)`: a skip connection; once folded, the residual and the
/// activation are both applied as the convolution's output is written.
pub fn conv_bn_add_act(
    conv: &Conv2d,
    bn: &Option<BatchNorm>,
    x: Tensor<4>,
    residual: Option<Tensor<4>>,
    act: Activation,
) -> Tensor<4> {
    match bn {
        Some(bn) => act.apply_after_add(bn.forward(conv.forward(x)), residual),
        None => kernels::conv2d_add(conv, x, residual, act),
    }
}

/// Fold `bn` (if still there) into `conv`.
pub fn fold_pair(conv: &mut Conv2d, bn: &mut Option<BatchNorm>) {
    let Some(bn) = bn.take() else { return };
    let [c_out, ..] = conv.weight.dims();
    let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
    let weight = conv.weight.val() * scale.clone().reshape([c_out, 1, 1, 1]);
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([c_out], &scale.device()),
    };
    let bias = (bias - bn.running_mean.value()) * scale + bn.beta.val();
    conv.weight = Param::from_tensor(weight);
    conv.bias = Some(Param::from_tensor(bias));
}
