//! The ONNX graph of a folded backbone, its head and the calibrated softmax, node for node what
//! `backbone/resnet.rs` and `backbone/efficientnet.rs` compute (with BatchNorm folded, see
//! `backbone/fold.rs`). Values are named by the module paths of the weights they come from
//! (`layer1.0.conv1`, `blocks.3.depthwise_conv`), so the graph reads like the state dict.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::Tensor;

use super::proto::attribute_proto::AttributeType;
use super::proto::tensor_proto::DataType;
use super::proto::tensor_shape_proto::{Dimension, dimension};
use super::proto::{self, type_proto};
use super::{Dtype, INPUT, OUTPUT};
use crate::backbone::efficientnet::{EfficientNetLite, MbConv};
use crate::backbone::resnet::{Block, ResNet};
use crate::backbone::{Backbone, Net};
use crate::error::{Error, Result};
use crate::formats::model_file::Model;
use crate::preprocess::CROP;
use crate::tensor_io::read_rows;

/// What follows a convolution.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Identity,
    Relu,
    /// `Clip(0, 6)`.
    Relu6,
}

/// The graph being written: nodes in execution order and their initializers.
struct Builder {
    dtype: Dtype,
    nodes: Vec<proto::NodeProto>,
    initializers: Vec<proto::TensorProto>,
    /// Names of the `Clip` bounds, once written.
    clip_bounds: Option<(String, String)>,
}

/// The graph of `backbone` (folded, with its fine-tuned stage in place) and `model`'s head.
pub(super) async fn build(
    backbone: &Backbone,
    model: &Model,
    dtype: Dtype,
) -> Result<proto::GraphProto> {
    let mut g = Builder {
        dtype,
        nodes: Vec::new(),
        initializers: Vec::new(),
        clip_bounds: None,
    };
    let trunk = match &backbone.net {
        Net::ResNet(m) => g.resnet(m).await?,
        Net::EfficientNet(m) => g.lite(m).await?,
    };
    let pooled = g.node("GlobalAveragePool", "pool", &[&trunk], vec![]);
    let features = g.node("Flatten", "features", &[&pooled], vec![int("axis", 1)]);
    let classes = model.meta.labels.len();
    // The head in PyTorch layout, `[classes, dim]`: `Gemm` with `transB` is `nn.Linear`.
    let weight = g.float("head.weight", &[classes, model.meta.dim], &model.weight);
    let bias = g.float("head.bias", &[classes], &model.bias);
    let logits = g.node(
        "Gemm",
        "logits",
        &[&features, &weight, &bias],
        vec![int("transB", 1)],
    );
    let t = g.float("temperature", &[], &[model.meta.temperature as f32]);
    let scaled = g.node("Div", "logits_over_temperature", &[&logits, &t], vec![]);
    let probs = g.node("Softmax", OUTPUT, &[&scaled], vec![int("axis", -1)]);
    debug_assert_eq!(probs, OUTPUT);
    let batch = || Dimension {
        denotation: None,
        value: Some(dimension::Value::DimParam("N".into())),
    };
    let fixed = |n: usize| Dimension {
        denotation: None,
        value: Some(dimension::Value::DimValue(n as i64)),
    };
    let side = CROP as usize;
    Ok(proto::GraphProto {
        name: Some(format!("sortwise_{}", backbone.arch.name())),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![value_info(
            INPUT,
            vec![batch(), fixed(3), fixed(side), fixed(side)],
        )],
        output: vec![value_info(OUTPUT, vec![batch(), fixed(classes)])],
        ..Default::default()
    })
}

fn value_info(name: &str, dims: Vec<Dimension>) -> proto::ValueInfoProto {
    proto::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(proto::TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(proto::TensorShapeProto { dim: dims }),
            })),
        }),
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

fn ints(name: &str, v: &[usize]) -> proto::AttributeProto {
    proto::AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

/// A tensor's values, read back from its device (asynchronously: WebGPU cannot block).
async fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let n: usize = t.dims().iter().product();
    Ok(read_rows(t.reshape([1, n])).await?.remove(0))
}

/// ONNX's `pads` (`[top, left, bottom, right]`, the order of burn's `Explicit` too).
fn pads(padding: &PaddingConfig2d) -> Result<[usize; 4]> {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => Ok([top, left, bottom, right]),
        PaddingConfig2d::Valid => Ok([0; 4]),
        PaddingConfig2d::Same => Err(Error::Invalid(
            "a convolution with 'same' padding cannot be exported (sortwise's backbones use \
             explicit padding)"
                .into(),
        )),
    }
}

impl Builder {
    /// One node with one output named `output`; the output's name.
    fn node(
        &mut self,
        op: &str,
        output: &str,
        inputs: &[&str],
        attribute: Vec<proto::AttributeProto>,
    ) -> String {
        self.nodes.push(proto::NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: Some(output.to_string()),
            op_type: Some(op.to_string()),
            attribute,
            ..Default::default()
        });
        output.to_string()
    }

    /// A float32 initializer; its name.
    fn float(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, DataType::Float, dims, raw);
        name.to_string()
    }

    fn initializer(&mut self, name: &str, dtype: DataType, dims: &[usize], raw: Vec<u8>) {
        self.initializers.push(proto::TensorProto {
            name: Some(name.to_string()),
            data_type: Some(dtype as i32),
            dims: dims.iter().map(|&d| d as i64).collect(),
            raw_data: Some(raw),
            ..Default::default()
        });
    }

    /// A convolution weight at the file's precision; the name of its float32 value (a `Cast`
    /// of the float16 initializer when the file stores f16).
    fn weight(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        match self.dtype {
            Dtype::F32 => self.float(name, dims, values),
            Dtype::F16 => {
                let raw = values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect();
                self.initializer(name, DataType::Float16, dims, raw);
                self.node(
                    "Cast",
                    &format!("{name}.f32"),
                    &[name],
                    vec![int("to", DataType::Float as i64)],
                )
            }
        }
    }

    fn activation(&mut self, path: &str, x: String, act: Act) -> String {
        match act {
            Act::Identity => x,
            Act::Relu => self.node("Relu", &format!("{path}.relu"), &[&x], vec![]),
            Act::Relu6 => {
                let (lo, hi) = match &self.clip_bounds {
                    Some(b) => b.clone(),
                    None => {
                        let b = (
                            self.float("relu6.min", &[], &[0.0]),
                            self.float("relu6.max", &[], &[6.0]),
                        );
                        self.clip_bounds = Some(b.clone());
                        b
                    }
                };
                self.node("Clip", &format!("{path}.relu6"), &[&x, &lo, &hi], vec![])
            }
        }
    }

    /// `act(conv(x))`, the convolution's bias being the folded BatchNorm's.
    async fn conv(&mut self, path: &str, conv: &Conv2d, x: &str, act: Act) -> Result<String> {
        let w = conv.weight.val();
        let dims = w.dims();
        let weight = self.weight(&format!("{path}.weight"), &dims, &values(w).await?);
        let mut inputs = vec![x.to_string(), weight];
        if let Some(b) = &conv.bias {
            let b = values(b.val()).await?;
            inputs.push(self.float(&format!("{path}.bias"), &[b.len()], &b));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        let y = self.node(
            "Conv",
            path,
            &inputs,
            vec![
                ints("kernel_shape", &[dims[2], dims[3]]),
                ints("strides", &conv.stride),
                ints("pads", &pads(&conv.padding)?),
                ints("dilations", &conv.dilation),
                int("group", conv.groups as i64),
            ],
        );
        Ok(self.activation(path, y, act))
    }

    fn max_pool(&mut self, path: &str, pool: &MaxPool2d, x: &str) -> Result<String> {
        Ok(self.node(
            "MaxPool",
            path,
            &[x],
            vec![
                ints("kernel_shape", &pool.kernel_size),
                ints("strides", &pool.stride),
                ints("pads", &pads(&pool.padding)?),
                ints("dilations", &pool.dilation),
                int("ceil_mode", pool.ceil_mode as i64),
            ],
        ))
    }

    /// `act(x + y)`.
    fn add(&mut self, path: &str, x: &str, y: &str, act: Act) -> String {
        let sum = self.node("Add", &format!("{path}.add"), &[x, y], vec![]);
        self.activation(path, sum, act)
    }

    async fn resnet(&mut self, m: &ResNet) -> Result<String> {
        folded(&[&m.bn1])?;
        let x = self.conv("conv1", &m.conv1, INPUT, Act::Relu).await?;
        let mut x = self.max_pool("maxpool", &m.maxpool, &x)?;
        for (stage, blocks) in [&m.layer1, &m.layer2, &m.layer3, &m.layer4]
            .into_iter()
            .enumerate()
        {
            for (i, block) in blocks.iter().enumerate() {
                x = self
                    .resnet_block(&format!("layer{}.{i}", stage + 1), block, x)
                    .await?;
            }
        }
        Ok(x)
    }

    /// `resnet::Block::forward`: a basic block, or a bottleneck when `conv3` is there.
    async fn resnet_block(&mut self, path: &str, b: &Block, x: String) -> Result<String> {
        folded(&[&b.bn1, &b.bn2, &b.bn3])?;
        let identity = match &b.downsample {
            Some(ds) => {
                folded(&[&ds.bn])?;
                self.conv(&format!("{path}.downsample"), &ds.conv, &x, Act::Identity)
                    .await?
            }
            None => x.clone(),
        };
        let out = self
            .conv(&format!("{path}.conv1"), &b.conv1, &x, Act::Relu)
            .await?;
        let last = match &b.conv3 {
            Some(conv3) => {
                let out = self
                    .conv(&format!("{path}.conv2"), &b.conv2, &out, Act::Relu)
                    .await?;
                self.conv(&format!("{path}.conv3"), conv3, &out, Act::Identity)
                    .await?
            }
            None => {
                self.conv(&format!("{path}.conv2"), &b.conv2, &out, Act::Identity)
                    .await?
            }
        };
        Ok(self.add(path, &last, &identity, Act::Relu))
    }

    async fn lite(&mut self, m: &EfficientNetLite) -> Result<String> {
        folded(&[&m.bn0, &m.bn1])?;
        let mut x = self
            .conv("conv_stem", &m.conv_stem, INPUT, Act::Relu6)
            .await?;
        for (i, block) in m.blocks.iter().enumerate() {
            x = self.mbconv(&format!("blocks.{i}"), block, x).await?;
        }
        self.conv("conv_head", &m.conv_head, &x, Act::Relu6).await
    }

    /// `efficientnet::MbConv::forward`: expand (1x1), depthwise, project (1x1), skip.
    async fn mbconv(&mut self, path: &str, b: &MbConv, input: String) -> Result<String> {
        folded(&[&b.bn0, &b.bn1, &b.bn2])?;
        let x = match &b.expand_conv {
            Some(conv) => {
                self.conv(&format!("{path}.expand_conv"), conv, &input, Act::Relu6)
                    .await?
            }
            None => input.clone(),
        };
        let x = self
            .conv(
                &format!("{path}.depthwise_conv"),
                &b.depthwise_conv,
                &x,
                Act::Relu6,
            )
            .await?;
        let y = self
            .conv(
                &format!("{path}.project_conv"),
                &b.project_conv,
                &x,
                Act::Identity,
            )
            .await?;
        Ok(if b.residual {
            self.add(path, &y, &input, Act::Identity)
        } else {
            y
        })
    }
}

/// The graph has no BatchNorm nodes: every one must have been folded into its convolution.
fn folded(bns: &[&Option<burn::nn::BatchNorm>]) -> Result<()> {
    if bns.iter().any(|bn| bn.is_some()) {
        return Err(Error::Invalid(
            "internal: the backbone was not BatchNorm-folded before export".into(),
        ));
    }
    Ok(())
}
