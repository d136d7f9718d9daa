//! A small ONNX graph builder over `ics_encoder::onnx_proto`: unique value names, float
//! initializers, nodes with attributes, typed inputs and outputs, and the model wrapper.
//!
//! It writes what the backbone importer and the head exporter need and nothing more; the graph
//! is kept in topological order because nodes are appended after their inputs exist.

use std::collections::HashSet;

use anyhow::{bail, Result};
use ics_encoder::onnx_proto::{
    data_type, AttributeProto, Dim, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, ValueInfoProto,
};

/// Default-domain operator set the trainer writes (Clip takes min/max as inputs since 11,
/// Gemm/Flatten/Conv are stable in 13).
pub const OPSET: i64 = 13;
/// ONNX IR version matching [`OPSET`] (IR 7 = ONNX 1.8, opsets up to 13).
pub const IR_VERSION: i64 = 7;
/// `producer_name` of models the trainer writes.
pub const PRODUCER: &str = "ics-train";

/// Builds a [`GraphProto`] node by node.
#[derive(Debug, Clone)]
pub struct GraphBuilder {
    graph: GraphProto,
    names: HashSet<String>,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
            names: HashSet::new(),
        }
    }

    /// Continues an existing graph (e.g. a backbone the head is appended to); every name it
    /// already uses is reserved.
    pub fn from_graph(graph: GraphProto) -> Self {
        let mut names = HashSet::new();
        for n in &graph.node {
            names.extend(n.output.iter().cloned());
            names.extend(n.input.iter().cloned());
            if !n.name.is_empty() {
                names.insert(n.name.clone());
            }
        }
        names.extend(graph.input.iter().map(|v| v.name.clone()));
        names.extend(graph.output.iter().map(|v| v.name.clone()));
        names.extend(graph.initializer.iter().map(|t| t.name.clone()));
        GraphBuilder { graph, names }
    }

    /// `base` if no value or node uses it yet, else `base_1`, `base_2`, ...; reserved on return.
    pub fn unique(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut i = 0;
        while self.names.contains(&name) {
            i += 1;
            name = format!("{base}_{i}");
        }
        self.names.insert(name.clone());
        name
    }

    /// Reserves an exact name (graph inputs/outputs that callers name); an error if taken.
    fn claim(&mut self, name: &str) -> Result<()> {
        if !self.names.insert(name.to_string()) {
            bail!("ONNX value name \"{name}\" is already used in the graph");
        }
        Ok(())
    }

    /// Declares a float graph input.
    pub fn input(&mut self, name: &str, dims: &[Dim]) -> Result<String> {
        self.claim(name)?;
        self.graph
            .input
            .push(ValueInfoProto::tensor(name, data_type::FLOAT, dims));
        Ok(name.to_string())
    }

    /// Declares a float graph output; `name` must be produced by a node.
    pub fn output(&mut self, name: &str, dims: &[Dim]) -> Result<()> {
        if !self.graph.has_value(name) {
            bail!("graph output \"{name}\" is not produced by any node");
        }
        if self.graph.output.iter().any(|o| o.name == name) {
            bail!("graph output \"{name}\" is declared twice");
        }
        self.graph
            .output
            .push(ValueInfoProto::tensor(name, data_type::FLOAT, dims));
        Ok(())
    }

    /// Adds a float initializer under a fresh name derived from `base`; returns the name.
    pub fn initializer(&mut self, base: &str, dims: &[usize], data: &[f32]) -> Result<String> {
        let n: usize = dims.iter().product();
        if n != data.len() {
            bail!(
                "initializer {base}: dims {dims:?} need {n} values, got {}",
                data.len()
            );
        }
        let name = self.unique(base);
        let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        self.graph
            .initializer
            .push(TensorProto::from_f32(&name, &dims, data));
        Ok(name)
    }

    /// Appends a node with one output named `output` exactly (claimed here).
    pub fn node_to(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> Result<String> {
        for i in inputs {
            if !i.is_empty() && !self.graph.has_value(i) {
                bail!("{op} node input \"{i}\" does not exist in the graph");
            }
        }
        self.claim(output)?;
        let node_name = self.unique(&format!("{op}_{output}"));
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: node_name,
            op_type: op.to_string(),
            attribute: attrs,
            ..Default::default()
        });
        Ok(output.to_string())
    }

    /// Appends a node whose single output gets a fresh name derived from `base`.
    pub fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        base: &str,
        attrs: Vec<AttributeProto>,
    ) -> Result<String> {
        let out = self.unique(base);
        self.names.remove(&out); // node_to claims it
        self.node_to(op, inputs, &out, attrs)
    }

    /// Read access to the graph built so far.
    pub fn graph(&self) -> &GraphProto {
        &self.graph
    }

    /// Mutable access for edits the builder does not model (replacing outputs).
    pub fn graph_mut(&mut self) -> &mut GraphProto {
        &mut self.graph
    }

    /// The finished graph.
    pub fn finish(self) -> GraphProto {
        self.graph
    }
}

/// Wraps a graph into a model with the trainer's opset, IR version and producer, and the given
/// metadata.
pub fn model(graph: GraphProto, metadata: &[(String, String)]) -> ModelProto {
    let mut m = ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: PRODUCER.to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(graph),
        ..Default::default()
    };
    m.set_metadata(metadata);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_checked() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", &[Dim::Fixed(2)]).unwrap();
        assert!(b.input("x", &[Dim::Fixed(2)]).is_err());
        let w = b.initializer("w", &[2], &[1.0, 2.0]).unwrap();
        let w2 = b.initializer("w", &[2], &[3.0, 4.0]).unwrap();
        assert_eq!((w.as_str(), w2.as_str()), ("w", "w_1"));
        assert!(b.initializer("bad", &[3], &[1.0]).is_err());
        let y = b.node("Add", &[&x, &w], "y", vec![]).unwrap();
        let y2 = b.node("Add", &[&y, &w2], "y", vec![]).unwrap();
        assert_eq!((y.as_str(), y2.as_str()), ("y", "y_1"));
        assert!(b.node("Add", &[&y, "missing"], "z", vec![]).is_err());
        assert!(b.node_to("Relu", &[&y2], "y", vec![]).is_err());
        assert!(b.output("nope", &[Dim::Fixed(2)]).is_err());
        b.output(&y2, &[Dim::Fixed(2)]).unwrap();
        assert!(b.output(&y2, &[Dim::Fixed(2)]).is_err());
        let g = b.finish();
        assert_eq!(g.node.len(), 2);
        let node_names: HashSet<_> = g.node.iter().map(|n| n.name.clone()).collect();
        assert_eq!(node_names.len(), 2);
    }

    #[test]
    fn from_graph_reserves_existing_names() {
        let mut b = GraphBuilder::new("g");
        let x = b.input("x", &[]).unwrap();
        b.node_to("Relu", &[&x], "features", vec![]).unwrap();
        let mut b = GraphBuilder::from_graph(b.finish());
        assert_eq!(b.unique("features"), "features_1");
        assert_eq!(b.unique("x"), "x_1");
    }

    #[test]
    fn model_wrapper() {
        let m = model(
            GraphBuilder::new("g").finish(),
            &[("a".to_string(), "b".to_string())],
        );
        assert_eq!(m.opset_version(""), Some(OPSET));
        assert_eq!(m.ir_version, IR_VERSION);
        assert_eq!(m.producer_name, PRODUCER);
        assert_eq!(m.metadata(), vec![("a".to_string(), "b".to_string())]);
    }
}
