//! The new classifier: one linear layer on the frozen backbone's pooled embedding.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use crate::tensor_io::{matrix, read_rows};

#[derive(Module, Debug)]
pub struct Head {
    pub linear: Linear,
}

impl Head {
    /// Zero-initialised: softmax regression is convex, so the start point does not matter for
    /// where training ends, and zeros make runs reproducible without touching burn's RNG.
    pub fn zeros(dim: usize, classes: usize, device: &Device) -> Self {
        Self::from_weights(&vec![0.0; dim * classes], &vec![0.0; classes], dim, device)
    }

    /// From PyTorch layout: `weight` is `[classes, dim]` row-major, `bias` `[classes]`.
    pub fn from_weights(weight: &[f32], bias: &[f32], dim: usize, device: &Device) -> Self {
        let classes = bias.len();
        assert_eq!(weight.len(), dim * classes, "weight must be classes x dim");
        // burn's Linear stores [d_input, d_output]: transpose.
        let mut w = vec![0f32; dim * classes];
        for c in 0..classes {
            for d in 0..dim {
                w[d * classes + c] = weight[c * dim + d];
            }
        }
        Head {
            linear: Linear {
                weight: Param::from_tensor(Tensor::from_data(
                    TensorData::new(w, [dim, classes]),
                    device,
                )),
                bias: Some(Param::from_tensor(Tensor::from_data(
                    TensorData::new(bias.to_vec(), [classes]),
                    device,
                ))),
            },
        }
    }

    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.linear.forward(x)
    }

    /// Softmax probabilities for each embedding row.
    pub async fn probabilities(
        &self,
        rows: &[&[f32]],
        device: &Device,
    ) -> crate::Result<Vec<Vec<f32>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        read_rows(softmax(self.forward(matrix(rows, device)), 1)).await
    }

    /// Logits for each embedding row.
    pub async fn logits(&self, rows: &[&[f32]], device: &Device) -> crate::Result<Vec<Vec<f32>>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        read_rows(self.forward(matrix(rows, device))).await
    }

    pub fn dims(&self) -> (usize, usize) {
        let [dim, classes] = self.linear.weight.dims();
        (dim, classes)
    }

    /// Weights back in PyTorch layout, for the model file.
    pub async fn to_weights(&self) -> crate::Result<(Vec<f32>, Vec<f32>)> {
        let (dim, classes) = self.dims();
        let w = self
            .linear
            .weight
            .val()
            .transpose()
            .reshape([1, dim * classes]);
        let b = self
            .linear
            .bias
            .as_ref()
            .map(|b| b.val().reshape([1, classes]))
            .expect("head has a bias");
        let w = read_rows(w).await?.remove(0);
        let b = read_rows(b).await?.remove(0);
        Ok((w, b))
    }
}
