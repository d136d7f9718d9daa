//! Tiny ONNX models with the `ics_hash.*` contract, for the encoder's tests and the SQL test
//! fixtures (`trainer/examples/make_encoder_fixtures.rs` writes them to files), each built
//! to exercise one limit:
//! - [`features_model`]: 4 features -> Gemm -> Tanh, 8 bits, with known codes;
//! - [`slow_features_model`]: its run time is chosen by its input (a Loop whose trip count is
//!   the largest feature), for cancellation;
//! - [`wide_image_model`]: a 64-channel convolution at full resolution, so a run's memory
//!   grows by about a megabyte per image at 64 px, for the memory limit;
//! - [`external_data_model`]: [`features_model`] whose weight lives in an outside file;
//! - [`nms_features_model`], [`runtime_matmul_features_model`]: operators a run cannot be
//!   stopped inside (refused at load, see `crate::operators`);
//! - [`ort_format_features_model`]: [`features_model`] whose bytes also carry ONNX Runtime's
//!   own format marker (refused at load);
//! - [`heavy_image_model`]: allowed operators only, but one MatMul node whose time grows with
//!   the batch (a constant weight made at load, so the file stays small), for the cap on items
//!   per run.
//!
//! [`slow_features_model`] uses a Loop, refused by the default operator list: its tests allow
//! it explicitly.
//!
//! Built on the pgrx-free ONNX messages of `crate::onnx_proto`; no protoc, no Python.

use crate::contract::{ModelContract, ModelInput};
use crate::onnx_proto::{
    data_type, AttributeProto, Dim, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, ValueInfoProto,
};
use crate::preprocess::Preprocess;

fn n() -> Dim {
    Dim::Symbolic("N".into())
}

fn node(op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// The contract every test model carries (two centres, a fixed config hash).
pub fn contract(bits: usize, input: ModelInput, input_name: &str) -> ModelContract {
    ModelContract {
        bits,
        input,
        input_name: input_name.into(),
        output_name: "hash".into(),
        centres: vec![vec![0x0f; bits / 8], vec![0xf0; bits / 8]],
        trainer_version: "test".into(),
        config_sha256: "0f".repeat(32),
        backbone: None,
    }
}

fn model(graph: GraphProto, contract: &ModelContract) -> Vec<u8> {
    let mut m = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "ics-encoder test models".into(),
        graph: Some(graph),
        ..Default::default()
    };
    m.set_metadata(&contract.to_metadata());
    m.to_bytes()
}

/// The weight of [`features_model`]: code bit j of features x is the sign of x[j % 4] for
/// j < 4 and of -x[j % 4] for j >= 4.
fn sign_weights() -> Vec<f32> {
    let mut w = vec![0f32; 4 * 8];
    for j in 0..8 {
        w[(j % 4) * 8 + j] = if j < 4 { 1.0 } else { -1.0 };
    }
    w
}

/// 4 features -> Gemm -> Tanh -> 8 bits: bit j is `x[j % 4] >= 0` for j < 4, its negation
/// after (so every code has its last four bits inverted from its first four).
pub fn features_model() -> Vec<u8> {
    let c = contract(8, ModelInput::Features { dim: 4 }, "features");
    let graph = GraphProto {
        name: "features".into(),
        initializer: vec![
            TensorProto::from_f32("w", &[4, 8], &sign_weights()),
            TensorProto::from_f32("b", &[8], &[0.0; 8]),
        ],
        node: vec![
            node("Gemm", &["features", "w", "b"], "z", vec![]),
            node("Tanh", &["z"], "hash", vec![]),
        ],
        ..features_graph()
    };
    model(graph, &c)
}

/// [`features_model`] with its weight `w` kept in an outside file at `location` (relative to
/// the working directory, as ONNX Runtime resolves it for a model given as bytes).
pub fn external_data_model(location: &str) -> Vec<u8> {
    let mut m = ModelProto::from_bytes(&features_model()).expect("our own model");
    let g = m.graph.as_mut().expect("graph");
    let w = g.initializer.iter_mut().find(|t| t.name == "w").expect("w");
    w.raw_data.clear();
    w.data_location = 1;
    w.external_data = [("location", location), ("offset", "0"), ("length", "128")]
        .iter()
        .map(|(k, v)| StringStringEntryProto {
            key: k.to_string(),
            value: v.to_string(),
        })
        .collect();
    m.to_bytes()
}

/// 4 features -> 8 bits like [`features_model`], but first a Loop runs `max(features)` times
/// (as an integer, at least 0) over a 64 x 64 matrix product, whose result is added times
/// zero to the output: the codes are [`features_model`]'s, the run time is the caller's
/// choice (about 20-100 µs per iteration).
pub fn slow_features_model() -> Vec<u8> {
    let c = contract(8, ModelInput::Features { dim: 4 }, "features");
    let k = 64usize;
    let eye: Vec<f32> = (0..k * k)
        .map(|i| if i % (k + 1) == 0 { 0.5 } else { 0.001 })
        .collect();
    let body = GraphProto {
        name: "body".into(),
        input: vec![
            ValueInfoProto::tensor("i", data_type::INT64, &[]),
            ValueInfoProto::tensor("cond_in", data_type::BOOL, &[]),
            ValueInfoProto::tensor(
                "m_in",
                data_type::FLOAT,
                &[Dim::Fixed(k as i64), Dim::Fixed(k as i64)],
            ),
        ],
        output: vec![
            ValueInfoProto::tensor("cond_out", data_type::BOOL, &[]),
            ValueInfoProto::tensor(
                "m_out",
                data_type::FLOAT,
                &[Dim::Fixed(k as i64), Dim::Fixed(k as i64)],
            ),
        ],
        node: vec![
            node("Identity", &["cond_in"], "cond_out", vec![]),
            node("MatMul", &["m_in", "mix"], "mm", vec![]),
            node("Tanh", &["mm"], "m_out", vec![]),
        ],
        ..Default::default()
    };
    let mut loop_node = node(
        "Loop",
        &["trips", "keep_going", "m0"],
        "m_final",
        vec![AttributeProto {
            name: "body".into(),
            r#type: crate::onnx_proto::attribute_type::GRAPH,
            g: Some(body),
            ..Default::default()
        }],
    );
    loop_node.name = "loop".into();
    let keep_going = TensorProto {
        dims: vec![],
        data_type: data_type::BOOL,
        name: "keep_going".into(),
        raw_data: vec![1],
        ..Default::default()
    };
    let graph = GraphProto {
        name: "slow_features".into(),
        initializer: vec![
            TensorProto::from_f32("w", &[4, 8], &sign_weights()),
            TensorProto::from_f32("b", &[8], &[0.0; 8]),
            TensorProto::from_f32("mix", &[k as i64, k as i64], &eye),
            TensorProto::from_f32("m0", &[k as i64, k as i64], &eye),
            TensorProto::from_f32("zero", &[], &[0.0]),
            keep_going,
        ],
        node: vec![
            node(
                "ReduceMax",
                &["features"],
                "most",
                vec![AttributeProto::int("keepdims", 0)],
            ),
            node("Relu", &["most"], "most_pos", vec![]),
            node(
                "Cast",
                &["most_pos"],
                "trips",
                vec![AttributeProto::int("to", data_type::INT64.into())],
            ),
            loop_node,
            node(
                "ReduceSum",
                &["m_final"],
                "total",
                vec![AttributeProto::int("keepdims", 0)],
            ),
            node("Mul", &["total", "zero"], "nothing", vec![]),
            node("Gemm", &["features", "w", "b"], "z", vec![]),
            node("Add", &["z", "nothing"], "z2", vec![]),
            node("Tanh", &["z2"], "hash", vec![]),
        ],
        ..features_graph()
    };
    model(graph, &c)
}

/// The input and output of the feature models: 4 features in, 8 bits named `hash` out.
fn features_graph() -> GraphProto {
    GraphProto {
        input: vec![ValueInfoProto::tensor(
            "features",
            data_type::FLOAT,
            &[n(), Dim::Fixed(4)],
        )],
        output: vec![ValueInfoProto::tensor(
            "hash",
            data_type::FLOAT,
            &[n(), Dim::Fixed(8)],
        )],
        ..Default::default()
    }
}

/// A graph from the `image` input (`N x 3 x size x size`) to 16 bits named `hash`.
fn image_graph(size: i64) -> GraphProto {
    GraphProto {
        input: vec![ValueInfoProto::tensor(
            "image",
            data_type::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Fixed(size), Dim::Fixed(size)],
        )],
        output: vec![ValueInfoProto::tensor(
            "hash",
            data_type::FLOAT,
            &[n(), Dim::Fixed(16)],
        )],
        ..Default::default()
    }
}

/// An image model (`size` px, EfficientNet-Lite preprocessing) whose first layer is a
/// 3x3 convolution to 64 channels at full resolution: a run holds at least 64·size²·4 bytes
/// per image (1 MB at 64 px), then global pooling and a 64 -> 16-bit head.
pub fn wide_image_model(size: u32) -> Vec<u8> {
    let pre = Preprocess::efficientnet_lite(size);
    let c = contract(16, ModelInput::Image(pre), "image");
    let s = i64::from(size);
    let conv_w: Vec<f32> = (0..64 * 3 * 9)
        .map(|i| ((i * 37 % 17) as f32 - 8.0) / 40.0)
        .collect();
    let head_w: Vec<f32> = (0..64 * 16)
        .map(|i| ((i * 53 % 23) as f32 - 11.0) / 30.0)
        .collect();
    let graph = GraphProto {
        name: "wide_image".into(),
        initializer: vec![
            TensorProto::from_f32("conv_w", &[64, 3, 3, 3], &conv_w),
            TensorProto::from_f32("conv_b", &[64], &[0.01; 64]),
            TensorProto::from_f32("head_w", &[64, 16], &head_w),
            TensorProto::from_f32("head_b", &[16], &[0.003; 16]),
        ],
        node: vec![
            node(
                "Conv",
                &["image", "conv_w", "conv_b"],
                "conv",
                vec![
                    AttributeProto::ints("kernel_shape", &[3, 3]),
                    AttributeProto::ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", &["conv"], "relu", vec![]),
            node("GlobalAveragePool", &["relu"], "pool", vec![]),
            node(
                "Flatten",
                &["pool"],
                "flat",
                vec![AttributeProto::int("axis", 1)],
            ),
            node("Gemm", &["flat", "head_w", "head_b"], "z", vec![]),
            node("Tanh", &["z"], "hash", vec![]),
        ],
        ..image_graph(s)
    };
    model(graph, &c)
}

/// An image model (`size` px) that flattens each image and multiplies it by a constant
/// `3·size² x width` weight (zeros, made by ConstantOfShape at load: the file stays small, the
/// product is computed all the same), adds that product's sum times zero to a 16-bit head on
/// the pooled colours: one MatMul node costs `3·size²·width` multiply-adds per image, so a run of a large
/// batch spends seconds in a single node.
pub fn heavy_image_model(size: u32, width: i64) -> Vec<u8> {
    let pre = Preprocess::efficientnet_lite(size);
    let c = contract(16, ModelInput::Image(pre), "image");
    let s = i64::from(size);
    let head_w: Vec<f32> = (0..3 * 16)
        .map(|i| ((i * 53 % 23) as f32 - 11.0) / 30.0)
        .collect();
    let graph = GraphProto {
        name: "heavy_image".into(),
        initializer: vec![
            TensorProto::from_i64("big_shape", &[2], &[3 * s * s, width]),
            TensorProto::from_i64("sum_axes", &[1], &[1]),
            TensorProto::from_f32("zero", &[], &[0.0]),
            TensorProto::from_f32("head_w", &[3, 16], &head_w),
            TensorProto::from_f32("head_b", &[16], &[0.003; 16]),
        ],
        node: vec![
            node(
                "Flatten",
                &["image"],
                "flat",
                vec![AttributeProto::int("axis", 1)],
            ),
            node("ConstantOfShape", &["big_shape"], "big_w", vec![]),
            node("MatMul", &["flat", "big_w"], "big", vec![]),
            node(
                "ReduceSum",
                &["big", "sum_axes"],
                "big_sum",
                vec![AttributeProto::int("keepdims", 1)],
            ),
            node("Mul", &["big_sum", "zero"], "nothing", vec![]),
            node("GlobalAveragePool", &["image"], "pool", vec![]),
            node(
                "Flatten",
                &["pool"],
                "pooled",
                vec![AttributeProto::int("axis", 1)],
            ),
            node("Gemm", &["pooled", "head_w", "head_b"], "z", vec![]),
            node("Add", &["z", "nothing"], "z2", vec![]),
            node("Tanh", &["z2"], "hash", vec![]),
        ],
        ..image_graph(s)
    };
    model(graph, &c)
}

/// 4 features -> 8 bits like [`features_model`], plus a NonMaxSuppression over boxes made from
/// the input (its cost grows with the square of the box count) whose result is added times
/// zero: refused by the operator list.
pub fn nms_features_model() -> Vec<u8> {
    let c = contract(8, ModelInput::Features { dim: 4 }, "features");
    let graph = GraphProto {
        name: "nms_features".into(),
        initializer: vec![
            TensorProto::from_f32("w", &[4, 8], &sign_weights()),
            TensorProto::from_f32("b", &[8], &[0.0; 8]),
            TensorProto::from_i64("box_axes", &[1], &[0]),
            TensorProto::from_i64("coord_axes", &[1], &[2]),
            TensorProto::from_f32("zero", &[], &[0.0]),
        ],
        node: vec![
            // boxes [1, N, 4], scores [1, 1, N]
            node("Unsqueeze", &["features", "box_axes"], "boxes", vec![]),
            node(
                "ReduceSum",
                &["boxes", "coord_axes"],
                "score_sum",
                vec![AttributeProto::int("keepdims", 1)],
            ),
            node(
                "Transpose",
                &["score_sum"],
                "scores",
                vec![AttributeProto::ints("perm", &[0, 2, 1])],
            ),
            node("NonMaxSuppression", &["boxes", "scores"], "picked", vec![]),
            node(
                "Cast",
                &["picked"],
                "picked_f",
                vec![AttributeProto::int("to", data_type::FLOAT.into())],
            ),
            node(
                "ReduceSum",
                &["picked_f"],
                "total",
                vec![AttributeProto::int("keepdims", 0)],
            ),
            node("Mul", &["total", "zero"], "nothing", vec![]),
            node("Gemm", &["features", "w", "b"], "z", vec![]),
            node("Add", &["z", "nothing"], "z2", vec![]),
            node("Tanh", &["z2"], "hash", vec![]),
        ],
        ..features_graph()
    };
    model(graph, &c)
}

/// 4 features -> 8 bits like [`features_model`], plus the product of the input with its own
/// transpose (N x 4 by 4 x N: its cost is the batch squared, two run-time tensors), added
/// times zero: refused by the operator list.
pub fn runtime_matmul_features_model() -> Vec<u8> {
    let c = contract(8, ModelInput::Features { dim: 4 }, "features");
    let graph = GraphProto {
        name: "runtime_matmul_features".into(),
        initializer: vec![
            TensorProto::from_f32("w", &[4, 8], &sign_weights()),
            TensorProto::from_f32("b", &[8], &[0.0; 8]),
            TensorProto::from_f32("zero", &[], &[0.0]),
        ],
        node: vec![
            node("Transpose", &["features"], "ft", vec![]),
            node("MatMul", &["features", "ft"], "gram", vec![]),
            node(
                "ReduceSum",
                &["gram"],
                "total",
                vec![AttributeProto::int("keepdims", 0)],
            ),
            node("Mul", &["total", "zero"], "nothing", vec![]),
            node("Gemm", &["features", "w", "b"], "z", vec![]),
            node("Add", &["z", "nothing"], "z2", vec![]),
            node("Tanh", &["z2"], "hash", vec![]),
        ],
        ..features_graph()
    };
    model(graph, &c)
}

/// [`features_model`] behind a prefix that puts ONNX Runtime's format marker `ORTM` at offset
/// 4 and stays valid ONNX: unknown fields 15 and 16 (varints, skipped by protobuf parsers),
/// then an unknown field 10 whose 84 bytes of padding are skipped too. Left to guess the
/// format, ONNX Runtime would read these bytes as an ORT-format model.
pub fn ort_format_features_model() -> Vec<u8> {
    let mut bytes = vec![0x78, 0x00, 0x80, 0x01, b'O', b'R', b'T', b'M'];
    bytes.extend_from_slice(&[0u8; 83]);
    bytes.extend_from_slice(&features_model());
    bytes
}
