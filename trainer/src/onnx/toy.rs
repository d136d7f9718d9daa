//! The tests' toy image backbone (built with the `test-fixtures` feature, which the trainer's
//! own tests turn on): one small ONNX graph that the backbone, export and command-line tests
//! all use instead of each writing its own.

use ics_encoder::onnx_proto::{Dim, ModelProto};

use super::{model, GraphBuilder};

/// `input` (N x 3 x side x side) -> Relu -> `act` -> GlobalAveragePool -> `pooled`
/// (N x 3 x 1 x 1: the features), and a branch `aux` = `act` x `aux_scale` (an initializer)
/// that no feature uses. Only `aux` is a declared output: `pooled` is an intermediate value,
/// as a backbone's features usually are, and merging with a head must drop `aux`.
pub fn toy_backbone(side: u32) -> ModelProto {
    let mut b = GraphBuilder::new("toy");
    let side = Dim::Fixed(side.into());
    let dims = [Dim::Symbolic("N".into()), Dim::Fixed(3), side.clone(), side];
    let x = b.input("input", &dims).expect("fresh name");
    let act = b.node_to("Relu", &[&x], "act", vec![]).expect("valid node");
    b.node_to("GlobalAveragePool", &[&act], "pooled", vec![])
        .expect("valid node");
    let scale = b.initializer("aux_scale", &[1], &[2.0]).expect("one value");
    b.node_to("Mul", &[&act, &scale], "aux", vec![])
        .expect("valid node");
    b.output("aux", &[]).expect("aux is computed");
    model(b.finish(), &[])
}
