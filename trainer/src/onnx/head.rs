//! Exporting the hash head: `Gemm -> Relu -> ... -> Gemm -> Tanh`, either alone (a feature-input
//! model) or appended to a backbone graph (one image-in, K-values-out model), with the model
//! contract in the metadata.
//!
//! Layer `i` is `y = x . W_i + b_i` with `W_i` of shape (in, out), the layout of
//! [`crate::ics::head`]; it is written as `Gemm(x, W_i, b_i)` with `transB = 0`. Dropout is
//! the identity at inference and is not written.
//!
//! Merging keeps only what the hash output needs: the backbone's other outputs (e.g. the
//! ImageNet logits) and the nodes and weights that only they used are pruned.

use std::collections::HashSet;

use anyhow::{bail, ensure, Context, Result};
use ics_encoder::contract::{ModelContract, ModelInput, PREFIX};
use ics_encoder::onnx_proto::{
    data_type, type_proto, AttributeProto, Dim, GraphProto, ModelProto, ValueInfoProto,
};
use ndarray::{Array1, Array2};

use super::builder::{model, GraphBuilder, PRODUCER};

/// One fully connected layer of the head.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseLayer {
    /// (in, out).
    pub weight: Array2<f32>,
    /// (out).
    pub bias: Array1<f32>,
}

impl DenseLayer {
    /// A layer, checking that the bias matches the weight's outputs.
    pub fn new(weight: Array2<f32>, bias: Array1<f32>) -> Result<Self> {
        ensure!(
            weight.ncols() == bias.len() && weight.nrows() > 0 && !bias.is_empty(),
            "layer weight {:?} does not match bias of {} values",
            weight.shape(),
            bias.len()
        );
        Ok(DenseLayer { weight, bias })
    }

    pub fn in_dim(&self) -> usize {
        self.weight.nrows()
    }

    pub fn out_dim(&self) -> usize {
        self.weight.ncols()
    }
}

impl From<&crate::ics::head::Linear<f32>> for DenseLayer {
    fn from(l: &crate::ics::head::Linear<f32>) -> Self {
        DenseLayer {
            weight: l.weight().clone(),
            bias: l.bias().clone(),
        }
    }
}

/// The exportable layers of a trained head (same (in, out) layout; ReLU between, tanh last).
pub fn head_layers(head: &crate::ics::head::HashHead<f32>) -> Vec<DenseLayer> {
    head.layers().iter().map(DenseLayer::from).collect()
}

fn check_layers(layers: &[DenseLayer]) -> Result<()> {
    ensure!(!layers.is_empty(), "the hash head has no layers");
    for (i, l) in layers.iter().enumerate() {
        ensure!(
            l.weight.ncols() == l.bias.len(),
            "head layer {i}: weight {:?} does not match bias of {}",
            l.weight.shape(),
            l.bias.len()
        );
        ensure!(
            l.weight.iter().chain(l.bias.iter()).all(|v| v.is_finite()),
            "head layer {i} has non-finite parameters"
        );
        if i > 0 {
            ensure!(
                layers[i - 1].out_dim() == l.in_dim(),
                "head layer {i} takes {} inputs, layer {} gives {}",
                l.in_dim(),
                i - 1,
                layers[i - 1].out_dim()
            );
        }
    }
    Ok(())
}

/// Appends the head to `b`, reading `input` (N x in) and producing the value `output`
/// (N x out of the last layer). Weight names start with `prefix`.
pub fn append_head(
    b: &mut GraphBuilder,
    input: &str,
    layers: &[DenseLayer],
    output: &str,
    prefix: &str,
) -> Result<()> {
    check_layers(layers)?;
    let mut x = input.to_string();
    for (i, l) in layers.iter().enumerate() {
        let w = b.initializer(
            &format!("{prefix}fc{i}.weight"),
            &[l.in_dim(), l.out_dim()],
            l.weight
                .as_standard_layout()
                .as_slice()
                .expect("standard layout"),
        )?;
        let bias = b.initializer(
            &format!("{prefix}fc{i}.bias"),
            &[l.out_dim()],
            l.bias
                .as_standard_layout()
                .as_slice()
                .expect("standard layout"),
        )?;
        let z = b.node(
            "Gemm",
            &[&x, &w, &bias],
            &format!("{prefix}fc{i}"),
            vec![AttributeProto::int("transB", 0)],
        )?;
        x = if i + 1 < layers.len() {
            b.node("Relu", &[&z], &format!("{prefix}relu{i}"), vec![])?
        } else {
            b.node_to("Tanh", &[&z], output, vec![])?
        };
    }
    Ok(())
}

fn check_head_against_contract(layers: &[DenseLayer], contract: &ModelContract) -> Result<()> {
    contract.validate()?;
    check_layers(layers)?;
    let last = layers.last().expect("checked non-empty").out_dim();
    ensure!(
        last == contract.bits,
        "the head outputs {last} values, the contract says {} bits",
        contract.bits
    );
    Ok(())
}

/// A feature-input model: `contract.input_name` (N x D) -> head -> `contract.output_name`
/// (N x K), with the contract as metadata.
pub fn head_model(layers: &[DenseLayer], contract: &ModelContract) -> Result<ModelProto> {
    check_head_against_contract(layers, contract)?;
    let ModelInput::Features { dim } = contract.input else {
        bail!("head_model exports a feature-input model; the contract's input is an image");
    };
    ensure!(
        layers[0].in_dim() == dim,
        "the head takes {} features, the contract says {dim}",
        layers[0].in_dim()
    );
    let mut b = GraphBuilder::new("ics_hash_head");
    let x = b.input(&contract.input_name, &contract.input.graph_shape())?;
    append_head(&mut b, &x, layers, &contract.output_name, "head.")?;
    b.output(
        &contract.output_name,
        &[Dim::Symbolic("N".into()), Dim::Fixed(contract.bits as i64)],
    )?;
    let m = model(b.finish(), &contract.to_metadata());
    contract
        .check_graph(&m)
        .context("internal error: the exported head does not match its contract")?;
    Ok(m)
}

/// One image model: the backbone's single input (renamed to `contract.input_name`) ->
/// backbone -> `feature_output` -> Flatten -> head -> `contract.output_name`. Everything the
/// hash output does not need is pruned; the backbone's own non-`ics_hash.` metadata is kept.
pub fn merge_backbone_head(
    backbone: &ModelProto,
    feature_output: &str,
    layers: &[DenseLayer],
    contract: &ModelContract,
) -> Result<ModelProto> {
    check_head_against_contract(layers, contract)?;
    ensure!(
        matches!(contract.input, ModelInput::Image(_)),
        "merging a backbone needs an image contract, not a feature one"
    );
    let opset = backbone.opset_version("").unwrap_or(0);
    ensure!(
        opset >= 11,
        "the backbone imports default opset {opset}; at least 11 is needed"
    );
    let mut graph = backbone.graph()?.clone();
    ensure!(
        graph.has_value(feature_output),
        "the backbone has no value \"{feature_output}\" (outputs: {})",
        graph
            .output
            .iter()
            .map(|o| o.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let feeds = graph.feed_inputs();
    ensure!(
        feeds.len() == 1,
        "the backbone must take exactly one input, it takes {}",
        feeds.len()
    );
    let old_input = feeds[0].name.clone();
    let new_input = contract.input_name.clone();
    if old_input != new_input {
        ensure!(
            !graph.has_value(&new_input),
            "cannot rename the backbone input to \"{new_input}\": the name is in use"
        );
        rename_value(&mut graph, &old_input, &new_input);
    }
    // The input keeps its declared shape when it has one (symbolic sizes included), else the
    // contract's.
    if let Some(v) = graph.input.iter_mut().find(|v| v.name == new_input) {
        let has_shape = matches!(
            v.r#type.as_ref().and_then(|t| t.value.as_ref()),
            Some(type_proto::Value::TensorType(t)) if t.shape.is_some()
        );
        if !has_shape {
            *v =
                ValueInfoProto::tensor(&new_input, data_type::FLOAT, &contract.input.graph_shape());
        }
    }
    let feature = if feature_output == old_input {
        new_input.clone()
    } else {
        feature_output.to_string()
    };
    ensure!(
        !graph.has_value(&contract.output_name),
        "the backbone already has a value named \"{}\"",
        contract.output_name
    );
    graph.output.clear();
    let mut b = GraphBuilder::from_graph(graph);
    let flat = b.node(
        "Flatten",
        &[&feature],
        "head.features_flat",
        vec![AttributeProto::int("axis", 1)],
    )?;
    append_head(&mut b, &flat, layers, &contract.output_name, "head.")?;
    b.output(
        &contract.output_name,
        &[Dim::Symbolic("N".into()), Dim::Fixed(contract.bits as i64)],
    )?;
    let mut graph = b.finish();
    prune(&mut graph);

    let mut m = backbone.clone();
    m.graph = Some(graph);
    m.metadata_props.retain(|e| !e.key.starts_with(PREFIX));
    m.set_metadata(&contract.to_metadata());
    m.producer_name = PRODUCER.to_string();
    m.producer_version = env!("CARGO_PKG_VERSION").to_string();
    contract
        .check_graph(&m)
        .context("the merged model does not match its contract")?;
    Ok(m)
}

/// Renames a value everywhere it appears in `graph` (not inside subgraphs: a renamed graph
/// input is never shadowed there by our own models).
fn rename_value(graph: &mut GraphProto, from: &str, to: &str) {
    let fix = |s: &mut String| {
        if s == from {
            *s = to.to_string();
        }
    };
    for n in &mut graph.node {
        n.input.iter_mut().for_each(fix);
        n.output.iter_mut().for_each(fix);
    }
    graph.input.iter_mut().for_each(|v| fix(&mut v.name));
    graph.output.iter_mut().for_each(|v| fix(&mut v.name));
    graph.value_info.iter_mut().for_each(|v| fix(&mut v.name));
}

/// Every value name a subgraph (and its subgraphs) reads: outer-scope values it may capture.
fn subgraph_reads(g: &GraphProto, out: &mut HashSet<String>) {
    for n in &g.node {
        out.extend(n.input.iter().cloned());
        for a in &n.attribute {
            for sg in a.g.iter().chain(a.graphs.iter()) {
                subgraph_reads(sg, out);
            }
        }
    }
}

/// Removes nodes, initializers and value_info the graph outputs do not depend on. Graph
/// inputs are kept (the model signature must not change).
pub fn prune(graph: &mut GraphProto) {
    let mut live: HashSet<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let mut keep = vec![false; graph.node.len()];
    for (i, n) in graph.node.iter().enumerate().rev() {
        if n.output.iter().any(|o| live.contains(o)) {
            keep[i] = true;
            live.extend(n.input.iter().cloned());
            for a in &n.attribute {
                for sg in a.g.iter().chain(a.graphs.iter()) {
                    subgraph_reads(sg, &mut live);
                }
            }
        }
    }
    let mut k = keep.iter();
    graph.node.retain(|_| *k.next().expect("one flag per node"));
    graph.initializer.retain(|t| live.contains(&t.name));
    graph.value_info.retain(|v| live.contains(&v.name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ics_encoder::preprocess::Preprocess;

    fn layers(dims: &[usize]) -> Vec<DenseLayer> {
        dims.windows(2)
            .enumerate()
            .map(|(i, d)| {
                let w = Array2::from_shape_fn((d[0], d[1]), |(r, c)| {
                    ((r * 7 + c * 3 + i) % 11) as f32 / 11.0 - 0.5
                });
                DenseLayer::new(w, Array1::from_elem(d[1], 0.1 * i as f32)).unwrap()
            })
            .collect()
    }

    fn feature_contract(dim: usize, bits: usize) -> ModelContract {
        ModelContract {
            bits,
            input: ModelInput::Features { dim },
            input_name: "features".into(),
            output_name: "hash".into(),
            centres: vec![vec![0xa5; bits / 8]],
            trainer_version: "0.1.0".into(),
            config_sha256: "0".repeat(64),
            backbone: None,
        }
    }

    #[test]
    fn head_graph_structure() {
        let m = head_model(&layers(&[6, 5, 4, 16]), &feature_contract(6, 16)).unwrap();
        let g = m.graph().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Tanh"]);
        assert_eq!(g.initializer.len(), 6);
        assert_eq!(g.node.last().unwrap().output, vec!["hash".to_string()]);
        assert_eq!(
            ModelContract::from_metadata(&m.metadata()).unwrap(),
            feature_contract(6, 16)
        );
    }

    #[test]
    fn trained_head_converts_layer_by_layer() {
        use crate::ics::head::{HashHead, Linear};
        let src = layers(&[6, 5, 16]);
        let linears = src
            .iter()
            .map(|l| Linear::new(l.weight.clone(), l.bias.clone()).unwrap())
            .collect();
        let head = HashHead::from_layers(linears, 0.5).unwrap();
        assert_eq!(head_layers(&head), src);
    }

    #[test]
    fn head_contract_mismatches() {
        let c = feature_contract(6, 16);
        assert!(head_model(&layers(&[5, 16]), &c).is_err());
        assert!(head_model(&layers(&[6, 8]), &c).is_err());
        assert!(head_model(&[], &c).is_err());
        let mut bad = layers(&[6, 4, 16]);
        bad[1] = layers(&[5, 16]).remove(0);
        assert!(head_model(&bad, &c).is_err());
        let mut nan = layers(&[6, 16]);
        nan[0].weight[[0, 0]] = f32::NAN;
        assert!(head_model(&nan, &c).is_err());
        let image = ModelContract {
            input: ModelInput::Image(Preprocess::efficientnet_lite(8)),
            ..c
        };
        assert!(head_model(&layers(&[6, 16]), &image).is_err());
    }

    /// The toy backbone with metadata of its own, which the merged model keeps except for
    /// `ics_hash.*` (replaced by the contract).
    fn toy_backbone() -> ModelProto {
        let mut m = crate::onnx::toy::toy_backbone(2);
        m.metadata_props
            .extend(
                [("ics_hash.bits", "999"), ("author", "someone")].map(|(key, value)| {
                    ics_encoder::onnx_proto::StringStringEntryProto {
                        key: key.into(),
                        value: value.into(),
                    }
                }),
            );
        m
    }

    #[test]
    fn merge_renames_prunes_and_tags() {
        let c = ModelContract {
            input: ModelInput::Image(Preprocess::efficientnet_lite(2)),
            input_name: "image".into(),
            ..feature_contract(3, 8)
        };
        let m = merge_backbone_head(&toy_backbone(), "pooled", &layers(&[3, 8]), &c).unwrap();
        let g = m.graph().unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            ["Relu", "GlobalAveragePool", "Flatten", "Gemm", "Tanh"]
        );
        assert!(g.initializer.iter().all(|t| t.name != "aux_scale"));
        assert_eq!(g.feed_inputs()[0].name, "image");
        assert_eq!(g.node[0].input, vec!["image".to_string()]);
        assert_eq!(g.outputs().len(), 1);
        let md = m.metadata();
        assert!(md.contains(&("author".to_string(), "someone".to_string())));
        assert_eq!(md.iter().filter(|(k, _)| k == "ics_hash.bits").count(), 1);
        assert_eq!(ModelContract::from_metadata(&md).unwrap(), c);

        assert!(merge_backbone_head(&toy_backbone(), "nothing", &layers(&[3, 8]), &c).is_err());
        let feature_c = feature_contract(3, 8);
        assert!(
            merge_backbone_head(&toy_backbone(), "pooled", &layers(&[3, 8]), &feature_c).is_err()
        );
        let mut old = toy_backbone();
        old.opset_import[0].version = 9;
        assert!(merge_backbone_head(&old, "pooled", &layers(&[3, 8]), &c).is_err());
    }

    #[test]
    fn prune_keeps_subgraph_captures() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", &[]).unwrap();
        let captured = b.node("Relu", &[&x], "captured", vec![]).unwrap();
        let dead = b.node("Relu", &[&x], "dead", vec![]).unwrap();
        let mut body = GraphBuilder::new("body");
        body.graph_mut()
            .node
            .push(ics_encoder::onnx_proto::NodeProto {
                input: vec![captured.clone()],
                output: vec!["inner".into()],
                op_type: "Identity".into(),
                ..Default::default()
            });
        let mut attr = AttributeProto::int("then_branch", 0);
        attr.r#type = ics_encoder::onnx_proto::attribute_type::GRAPH;
        attr.g = Some(body.finish());
        b.graph_mut().node.push(ics_encoder::onnx_proto::NodeProto {
            input: vec![x.clone()],
            output: vec!["out".into()],
            op_type: "If".into(),
            attribute: vec![attr],
            ..Default::default()
        });
        let mut g = b.finish();
        g.output
            .push(ValueInfoProto::tensor("out", data_type::FLOAT, &[]));
        prune(&mut g);
        let outs: Vec<&str> = g.node.iter().map(|n| n.output[0].as_str()).collect();
        assert_eq!(outs, [captured.as_str(), "out"]);
        assert!(!outs.contains(&dead.as_str()));
    }
}
