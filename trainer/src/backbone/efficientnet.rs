//! EfficientNet-Lite as an ONNX graph, built from folded weights ([`super::folded`]) of an
//! [`Architecture`] (EfficientNet-Lite0 by default).
//!
//! Architecture (no squeeze-excite, ReLU6): stem conv 3x3 stride 2; MBConv blocks in stages,
//! each block an optional 1x1 expand conv with BN and ReLU6, a depthwise kxk conv with BN and
//! ReLU6, a 1x1 project conv with BN, and a residual add when the stride is 1 and the channels
//! match; then a 1x1 head conv with BN and ReLU6, global average pooling, flatten (the
//! `features` output) and, when the weights have one, the ImageNet classifier (`logits`).
//!
//! BatchNorm is folded into the preceding convolution (see [`super::folded`]). Padding is
//! TensorFlow "SAME" ([`same_padding`]): asymmetric for stride 2 on even sizes, so the graph is
//! built for one square input size S. ReLU6 is `Clip(x, 0, 6)` with min/max as initializer
//! inputs (opset >= 11). The graph holds only Conv, Clip, Add, GlobalAveragePool, Flatten and
//! Gemm.
//!
//! [`build_prefix`] builds the graph only up to a stage boundary, ending in that activation
//! (N x C x H x W): the frozen part of a fine-tuning run, run once by ONNX Runtime.

use anyhow::{ensure, Result};
use ics_encoder::onnx_proto::{AttributeProto, Dim, ModelProto};

pub use super::architecture::same_padding;
use super::architecture::Architecture;
pub use super::folded::BN_EPS;
use super::folded::{FoldedConv, NetworkWeights};
use super::torch::StateDict;
use crate::onnx::builder::{model, GraphBuilder};

/// Width of the Lite0 feature output.
pub const FEATURE_DIM: usize = 1280;
/// ImageNet classes.
pub const NUM_CLASSES: usize = 1000;
/// Graph input name (N x 3 x S x S, RGB, normalised (x - 127) / 128).
pub const INPUT: &str = "image";
/// Graph output of the pooled features (N x head channels).
pub const FEATURES: &str = "features";
/// Graph output of the classifier (N x 1000).
pub const LOGITS: &str = "logits";
/// Smallest input size the builders accept.
pub const SMALLEST_INPUT: u32 = 16;

/// Builds the ONNX side of the network as the graph is written.
struct Net {
    b: GraphBuilder,
    clip_min: String,
    clip_max: String,
    /// Spatial size of the current tensor.
    size: usize,
}

impl Net {
    /// Conv (+ folded BN) with SAME padding, named after the convolution.
    fn conv(&mut self, x: &str, c: &FoldedConv) -> Result<String> {
        let (out_size, before, after) = same_padding(self.size, c.kernel, c.stride);
        let w = self
            .b
            .initializer(&format!("{}.weight", c.name), &c.weight_shape(), &c.weight)?;
        let bias = self
            .b
            .initializer(&format!("{}.bias", c.name), &[c.out], &c.bias)?;
        let (k, s, b, a) = (
            c.kernel as i64,
            c.stride as i64,
            before as i64,
            after as i64,
        );
        let y = self.b.node(
            "Conv",
            &[x, &w, &bias],
            &c.name,
            vec![
                AttributeProto::ints("kernel_shape", &[k, k]),
                AttributeProto::ints("strides", &[s, s]),
                AttributeProto::ints("pads", &[b, b, a, a]),
                AttributeProto::ints("dilations", &[1, 1]),
                AttributeProto::int("group", c.groups as i64),
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

/// The graph's name for an architecture (`efficientnet_lite0`).
fn graph_name(arch: &Architecture) -> String {
    arch.name.replace('-', "_")
}

/// Writes the input, the stem and the blocks of stages before `until` (all when `None`);
/// returns the builder state and the last value.
fn body(w: &NetworkWeights, size: u32, until: Option<usize>) -> Result<(Net, String)> {
    w.check()?;
    ensure!(
        (SMALLEST_INPUT..=4096).contains(&size),
        "input size {size} is out of range {SMALLEST_INPUT}..=4096"
    );
    let mut b = GraphBuilder::new(&graph_name(&w.arch));
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
    let y = net.conv(&x, &w.stem)?;
    let mut x = net.relu6(&y, "stem.act")?;
    for blk in &w.blocks {
        if until.is_some_and(|stage| blk.plan.stage >= stage) {
            break;
        }
        let name = format!("block{}", blk.plan.index);
        let input = x.clone();
        let mut h = input.clone();
        if let Some(c) = &blk.expand {
            let y = net.conv(&h, c)?;
            h = net.relu6(&y, &format!("{name}.expand.act"))?;
        }
        let y = net.conv(&h, &blk.depthwise)?;
        h = net.relu6(&y, &format!("{name}.depthwise.act"))?;
        h = net.conv(&h, &blk.project)?;
        x = if blk.plan.residual() {
            net.b
                .node("Add", &[&h, &input], &format!("{name}.add"), vec![])?
        } else {
            h
        };
    }
    Ok((net, x))
}

/// The whole network for `size` x `size` inputs, batch dimension `N` free: `features`
/// (N x head channels) and, with a classifier, `logits`.
pub fn build(w: &NetworkWeights, size: u32) -> Result<ModelProto> {
    let (mut net, x) = body(w, size, None)?;
    let y = net.conv(&x, &w.head)?;
    let y = net.relu6(&y, "head.act")?;
    let pooled = net.b.node("GlobalAveragePool", &[&y], "pool", vec![])?;
    let features = net.b.node_to(
        "Flatten",
        &[&pooled],
        FEATURES,
        vec![AttributeProto::int("axis", 1)],
    )?;
    let n = || Dim::Symbolic("N".into());
    let d = w.arch.head_channels;
    if let Some(c) = &w.classifier {
        let classes = c.bias.len();
        let wt = net.b.initializer("fc.weight", &[classes, d], &c.weight)?;
        let bias = net.b.initializer("fc.bias", &[classes], &c.bias)?;
        net.b.node_to(
            "Gemm",
            &[&features, &wt, &bias],
            LOGITS,
            vec![AttributeProto::int("transB", 1)],
        )?;
        net.b.output(FEATURES, &[n(), Dim::Fixed(d as i64)])?;
        net.b.output(LOGITS, &[n(), Dim::Fixed(classes as i64)])?;
    } else {
        net.b.output(FEATURES, &[n(), Dim::Fixed(d as i64)])?;
    }
    Ok(model(net.b.finish(), &[]))
}

/// The network up to the input of stage `stage` (1-based; `stage_count() + 1` stops before
/// the head convolution), whose single output is that activation (N x C x H x W), named as in
/// [`Architecture::boundary`].
pub fn build_prefix(w: &NetworkWeights, size: u32, stage: usize) -> Result<ModelProto> {
    ensure!(
        (1..=w.arch.stage_count() + 1).contains(&stage),
        "{} has stages 1..={}, no boundary before stage {stage}",
        w.arch.name,
        w.arch.stage_count()
    );
    let (mut net, x) = body(w, size, Some(stage))?;
    let boundary = w.arch.boundary(stage, size as usize);
    ensure!(
        x == boundary.value,
        "internal: the prefix ends in {x}, the boundary is {}",
        boundary.value
    );
    let f = |v: usize| Dim::Fixed(v as i64);
    net.b.output(
        &x,
        &[
            Dim::Symbolic("N".into()),
            f(boundary.channels),
            f(boundary.spatial),
            f(boundary.spatial),
        ],
    )?;
    Ok(model(net.b.finish(), &[]))
}

/// The EfficientNet-Lite0 graph for `size` x `size` inputs from its PyTorch weights.
pub fn build_lite0(sd: &StateDict, size: u32) -> Result<ModelProto> {
    ensure!(
        (32..=4096).contains(&size),
        "input size {size} is out of range 32..=4096"
    );
    let w = NetworkWeights::from_state_dict(sd, &Architecture::lite0())?;
    ensure!(
        w.classifier
            .as_ref()
            .is_some_and(|c| c.bias.len() == NUM_CLASSES),
        "the weights have no ImageNet classifier (_fc) of {NUM_CLASSES} classes"
    );
    build(&w, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_wrong_weights() {
        assert!(build_lite0(&StateDict::new(), 224).is_err());
        assert!(build_lite0(&StateDict::new(), 16).is_err());
    }

    #[test]
    fn weights_read_back_from_the_graph_and_prefixes_end_at_boundaries() {
        let arch = Architecture::tiny();
        let w = NetworkWeights::random(&arch, 1);
        let g = build(&w, 16).unwrap();
        let graph = g.graph().unwrap();
        assert!(graph.outputs().iter().all(|o| o.name != LOGITS));
        let back = NetworkWeights::from_onnx(&g, &arch).unwrap();
        assert_eq!(back, w);
        // Another architecture's graph is not this one's.
        assert!(NetworkWeights::from_onnx(&g, &Architecture::lite0()).is_err());
        for stage in 1..=arch.stage_count() + 1 {
            let p = build_prefix(&w, 16, stage).unwrap();
            let outs = p.graph().unwrap().outputs();
            assert_eq!(outs.len(), 1);
            assert_eq!(outs[0].name, arch.boundary(stage, 16).value);
        }
        assert!(build_prefix(&w, 16, 0).is_err());
        assert!(build_prefix(&w, 16, arch.stage_count() + 2).is_err());
    }
}
