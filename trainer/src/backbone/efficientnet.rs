//! EfficientNet-Lite0 as an ONNX graph, built from its PyTorch weights (lukemelas naming).
//!
//! Architecture (no squeeze-excite, ReLU6): stem conv 3x3 stride 2 to 32 channels; 16 MBConv
//! blocks in 7 stages of (repeats, kernel, first stride, expansion, out channels)
//! (1,3,1,1,16) (2,3,2,6,24) (2,5,2,6,40) (3,3,2,6,80) (3,5,1,6,112) (4,5,2,6,192)
//! (1,3,1,6,320); each block is an optional 1x1 expand conv with BN and ReLU6, a depthwise kxk
//! conv with BN and ReLU6, a 1x1 project conv with BN, and a residual add when the stride is 1
//! and the channels match; then a 1x1 conv to 1280 with BN and ReLU6, global average pooling,
//! flatten (the 1280-d `features` output) and the ImageNet classifier (`logits`, 1000).
//!
//! BatchNorm (eps 1e-3, TensorFlow's) is folded into the preceding convolution:
//! `w' = w * g / sqrt(v + eps)`, `b' = beta - m * g / sqrt(v + eps)`. Padding is TensorFlow
//! "SAME": `out = ceil(in / s)`, `total = max((out - 1) * s + k - in, 0)`, `total / 2` before
//! and the rest after (asymmetric for stride 2 on even sizes). It depends on the input size,
//! so the graph is built for one square input size S. ReLU6 is `Clip(x, 0, 6)` with min/max
//! as initializer inputs (opset >= 11). The graph holds only Conv, Clip, Add,
//! GlobalAveragePool, Flatten and Gemm.

use anyhow::{ensure, Context, Result};
use ics_encoder::onnx_proto::{AttributeProto, Dim, ModelProto};

use super::torch::StateDict;
use crate::onnx::builder::{model, GraphBuilder};

/// BatchNorm epsilon of the TensorFlow-trained weights.
pub const BN_EPS: f32 = 1e-3;
/// Width of the feature output.
pub const FEATURE_DIM: usize = 1280;
/// ImageNet classes.
pub const NUM_CLASSES: usize = 1000;
/// Graph input name (N x 3 x S x S, RGB, normalised (x - 127) / 128).
pub const INPUT: &str = "image";
/// Graph output of the pooled features (N x 1280).
pub const FEATURES: &str = "features";
/// Graph output of the classifier (N x 1000).
pub const LOGITS: &str = "logits";

/// (repeats, kernel, first stride, expansion, output channels) per stage.
pub const STAGES: [(usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
];
const STEM_CHANNELS: usize = 32;
const SMALLEST_INPUT: u32 = 32;

/// TensorFlow SAME padding on one axis: (output size, pad before, pad after).
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize, usize) {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(input);
    (out, total / 2, total - total / 2)
}

/// A convolution's weight after BatchNorm folding, shape (out, in/groups, k, k), and bias.
struct FoldedConv {
    weight: Vec<f32>,
    bias: Vec<f32>,
    out: usize,
    in_per_group: usize,
    kernel: usize,
}

fn tensor<'a>(sd: &'a StateDict, name: &str, shape: &[usize]) -> Result<&'a [f32]> {
    let t = sd
        .get(name)
        .with_context(|| format!("the weights have no tensor \"{name}\""))?;
    ensure!(
        t.shape == shape,
        "tensor {name} has shape {:?}, expected {shape:?}",
        t.shape
    );
    t.f32().with_context(|| name.to_string())
}

/// Folds `bn` into `conv` (no conv bias in these weights).
fn fold(sd: &StateDict, conv: &str, bn: &str) -> Result<FoldedConv> {
    let w = sd
        .get(&format!("{conv}.weight"))
        .with_context(|| format!("the weights have no tensor \"{conv}.weight\""))?;
    ensure!(
        w.shape.len() == 4 && w.shape[2] == w.shape[3],
        "{conv}.weight has shape {:?}",
        w.shape
    );
    let (out, in_per_group, kernel) = (w.shape[0], w.shape[1], w.shape[2]);
    let gamma = tensor(sd, &format!("{bn}.weight"), &[out])?;
    let beta = tensor(sd, &format!("{bn}.bias"), &[out])?;
    let mean = tensor(sd, &format!("{bn}.running_mean"), &[out])?;
    let var = tensor(sd, &format!("{bn}.running_var"), &[out])?;
    let per_out = in_per_group * kernel * kernel;
    let mut weight = w.f32()?.to_vec();
    let mut bias = vec![0f32; out];
    for o in 0..out {
        // f64 for the fold itself: the only rounding is the final cast.
        let scale = f64::from(gamma[o]) / (f64::from(var[o]) + f64::from(BN_EPS)).sqrt();
        for v in &mut weight[o * per_out..(o + 1) * per_out] {
            *v = (f64::from(*v) * scale) as f32;
        }
        bias[o] = (f64::from(beta[o]) - f64::from(mean[o]) * scale) as f32;
    }
    Ok(FoldedConv {
        weight,
        bias,
        out,
        in_per_group,
        kernel,
    })
}

/// Builds the ONNX side of the network as the graph is written.
struct Net {
    b: GraphBuilder,
    clip_min: String,
    clip_max: String,
    /// Spatial size of the current tensor.
    size: usize,
}

impl Net {
    /// Conv (+ folded BN) with SAME padding; `groups` = channels for depthwise.
    fn conv(
        &mut self,
        x: &str,
        c: &FoldedConv,
        stride: usize,
        groups: usize,
        name: &str,
    ) -> Result<String> {
        let (out_size, before, after) = same_padding(self.size, c.kernel, stride);
        let w = self.b.initializer(
            &format!("{name}.weight"),
            &[c.out, c.in_per_group, c.kernel, c.kernel],
            &c.weight,
        )?;
        let bias = self
            .b
            .initializer(&format!("{name}.bias"), &[c.out], &c.bias)?;
        let (k, s, b, a) = (c.kernel as i64, stride as i64, before as i64, after as i64);
        let y = self.b.node(
            "Conv",
            &[x, &w, &bias],
            name,
            vec![
                AttributeProto::ints("kernel_shape", &[k, k]),
                AttributeProto::ints("strides", &[s, s]),
                AttributeProto::ints("pads", &[b, b, a, a]),
                AttributeProto::ints("dilations", &[1, 1]),
                AttributeProto::int("group", groups as i64),
            ],
        )?;
        self.size = out_size;
        Ok(y)
    }

    fn relu6(&mut self, x: &str, name: &str) -> Result<String> {
        let (lo, hi) = (self.clip_min.clone(), self.clip_max.clone());
        self.b.node("Clip", &[x, &lo, &hi], name, vec![])
    }
}

/// The EfficientNet-Lite0 graph for `size` x `size` inputs, batch dimension `N` free.
pub fn build_lite0(sd: &StateDict, size: u32) -> Result<ModelProto> {
    ensure!(
        (SMALLEST_INPUT..=4096).contains(&size),
        "input size {size} is out of range {SMALLEST_INPUT}..=4096"
    );
    let mut b = GraphBuilder::new("efficientnet_lite0");
    let s = i64::from(size);
    let x = b.input(
        INPUT,
        &[
            Dim::Symbolic("N".into()),
            Dim::Fixed(3),
            Dim::Fixed(s),
            Dim::Fixed(s),
        ],
    )?;
    let clip_min = b.initializer("relu6.min", &[], &[0.0])?;
    let clip_max = b.initializer("relu6.max", &[], &[6.0])?;
    let mut net = Net {
        b,
        clip_min,
        clip_max,
        size: size as usize,
    };

    let stem = fold(sd, "_conv_stem", "_bn0")?;
    ensure!(
        stem.out == STEM_CHANNELS && stem.in_per_group == 3 && stem.kernel == 3,
        "unexpected stem convolution"
    );
    let y = net.conv(&x, &stem, 2, 1, "stem")?;
    let mut x = net.relu6(&y, "stem.act")?;
    let mut channels = STEM_CHANNELS;

    let mut block = 0;
    for &(repeats, kernel, first_stride, expansion, out_channels) in &STAGES {
        for r in 0..repeats {
            let stride = if r == 0 { first_stride } else { 1 };
            let p = format!("_blocks.{block}");
            let name = format!("block{block}");
            let input = x.clone();
            let hidden = channels * expansion;
            let mut h = input.clone();
            if expansion != 1 {
                let c = fold(sd, &format!("{p}._expand_conv"), &format!("{p}._bn0"))?;
                ensure!(
                    c.out == hidden && c.in_per_group == channels && c.kernel == 1,
                    "{p}._expand_conv has an unexpected shape"
                );
                let y = net.conv(&h, &c, 1, 1, &format!("{name}.expand"))?;
                h = net.relu6(&y, &format!("{name}.expand.act"))?;
            }
            let c = fold(sd, &format!("{p}._depthwise_conv"), &format!("{p}._bn1"))?;
            ensure!(
                c.out == hidden && c.in_per_group == 1 && c.kernel == kernel,
                "{p}._depthwise_conv has an unexpected shape"
            );
            let y = net.conv(&h, &c, stride, hidden, &format!("{name}.depthwise"))?;
            h = net.relu6(&y, &format!("{name}.depthwise.act"))?;
            let c = fold(sd, &format!("{p}._project_conv"), &format!("{p}._bn2"))?;
            ensure!(
                c.out == out_channels && c.in_per_group == hidden && c.kernel == 1,
                "{p}._project_conv has an unexpected shape"
            );
            h = net.conv(&h, &c, 1, 1, &format!("{name}.project"))?;
            x = if stride == 1 && channels == out_channels {
                net.b
                    .node("Add", &[&h, &input], &format!("{name}.add"), vec![])?
            } else {
                h
            };
            channels = out_channels;
            block += 1;
        }
    }
    ensure!(
        !sd.contains_key(&format!("_blocks.{block}._project_conv.weight")),
        "the weights have more than {block} blocks: not EfficientNet-Lite0"
    );

    let head = fold(sd, "_conv_head", "_bn1")?;
    ensure!(
        head.out == FEATURE_DIM && head.in_per_group == channels && head.kernel == 1,
        "unexpected head convolution"
    );
    let y = net.conv(&x, &head, 1, 1, "head")?;
    let y = net.relu6(&y, "head.act")?;
    let pooled = net.b.node("GlobalAveragePool", &[&y], "pool", vec![])?;
    let features = net.b.node_to(
        "Flatten",
        &[&pooled],
        FEATURES,
        vec![AttributeProto::int("axis", 1)],
    )?;
    let fc_w = tensor(sd, "_fc.weight", &[NUM_CLASSES, FEATURE_DIM])?;
    let fc_b = tensor(sd, "_fc.bias", &[NUM_CLASSES])?;
    let w = net
        .b
        .initializer("fc.weight", &[NUM_CLASSES, FEATURE_DIM], fc_w)?;
    let bias = net.b.initializer("fc.bias", &[NUM_CLASSES], fc_b)?;
    net.b.node_to(
        "Gemm",
        &[&features, &w, &bias],
        LOGITS,
        vec![AttributeProto::int("transB", 1)],
    )?;
    let n = || Dim::Symbolic("N".into());
    net.b
        .output(FEATURES, &[n(), Dim::Fixed(FEATURE_DIM as i64)])?;
    net.b
        .output(LOGITS, &[n(), Dim::Fixed(NUM_CLASSES as i64)])?;
    Ok(model(net.b.finish(), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::torch::{Tensor, TensorData};

    #[test]
    fn same_padding_matches_tensorflow() {
        // Even input, stride 2, k 3: one pixel after, none before.
        assert_eq!(same_padding(224, 3, 2), (112, 0, 1));
        // k 5 stride 2 on 28: out 14, total 3 -> 1 before, 2 after.
        assert_eq!(same_padding(28, 5, 2), (14, 1, 2));
        // Odd input, stride 2, k 3: out 4, total 2 -> 1 and 1.
        assert_eq!(same_padding(7, 3, 2), (4, 1, 1));
        // Stride 1 keeps the size: k 5 -> 2 and 2; k 1 -> none.
        assert_eq!(same_padding(14, 5, 1), (14, 2, 2));
        assert_eq!(same_padding(14, 1, 1), (14, 0, 0));
        // A kernel smaller than the stride never pads negatively.
        assert_eq!(same_padding(8, 1, 2), (4, 0, 0));
    }

    fn t(shape: &[usize], data: Vec<f32>) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: TensorData::F32(data),
        }
    }

    #[test]
    fn batchnorm_folding() {
        let mut sd = StateDict::new();
        // Two output channels, 1 input, 1x1 kernel: weights 2 and -1.
        sd.insert("c.weight".into(), t(&[2, 1, 1, 1], vec![2.0, -1.0]));
        sd.insert("bn.weight".into(), t(&[2], vec![3.0, 1.0]));
        sd.insert("bn.bias".into(), t(&[2], vec![0.5, 0.0]));
        sd.insert("bn.running_mean".into(), t(&[2], vec![1.0, -2.0]));
        sd.insert(
            "bn.running_var".into(),
            t(&[2], vec![4.0 - BN_EPS, 1.0 - BN_EPS]),
        );
        let f = fold(&sd, "c", "bn").unwrap();
        // scale = gamma / sqrt(var + eps) = 3/2 and 1.
        assert!((f.weight[0] - 3.0).abs() < 1e-6 && (f.weight[1] + 1.0).abs() < 1e-6);
        assert!((f.bias[0] - (0.5 - 1.5)).abs() < 1e-6 && (f.bias[1] - 2.0).abs() < 1e-6);
        // For any input x: BN(conv(x)) == folded(x).
        let bn = |y: f32, g: f32, b: f32, m: f32, v: f32| g * (y - m) / (v + BN_EPS).sqrt() + b;
        for x in [-1.5f32, 0.0, 2.0] {
            let want0 = bn(2.0 * x, 3.0, 0.5, 1.0, 4.0 - BN_EPS);
            let want1 = bn(-x, 1.0, 0.0, -2.0, 1.0 - BN_EPS);
            assert!((f.weight[0] * x + f.bias[0] - want0).abs() < 1e-5);
            assert!((f.weight[1] * x + f.bias[1] - want1).abs() < 1e-5);
        }
        sd.insert("bn.bias".into(), t(&[3], vec![0.0; 3]));
        assert!(fold(&sd, "c", "bn").is_err());
        assert!(fold(&sd, "missing", "bn").is_err());
    }

    #[test]
    fn rejects_wrong_weights() {
        assert!(build_lite0(&StateDict::new(), 224).is_err());
        assert!(build_lite0(&StateDict::new(), 16).is_err());
    }
}
