//! Refuses ONNX models that refer to anything outside their own bytes.
//!
//! ONNX lets a tensor keep its data in a separate file (`TensorProto.data_location =
//! EXTERNAL`, with the path in `external_data["location"]`), and ONNX Runtime resolves such a
//! path relative to the model's folder or, for a model given as bytes, to the process's
//! working directory. Inside PostgreSQL that is the data directory: a model whose weight
//! "comes from" `global/1260` would read `pg_authid`'s relation file into a tensor that the
//! caller can read back through the outputs. ONNX Runtime also knows a magic location
//! (`*/_ORT_MEM_ADDR_/*`) that reads process memory, and `EPContext` nodes that load an
//! execution provider's cache file by name. A model loaded into the database must therefore be
//! self-contained, and this module proves it on the exact bytes ONNX Runtime will see.
//!
//! Why a walk over the wire format and not the `prost` messages of [`crate::onnx_proto`]:
//! those decode only the fields the exporter and loader need and keep some messages opaque,
//! so they would not see a tensor inside a function body, a sparse initializer, a training
//! graph or a subgraph attribute. This walk follows every place `onnx.proto` allows a
//! `TensorProto` or a node, recursively, and refuses what it cannot read (fail closed).

use std::fmt;

use ics_codes::echo::echo;
use prost::encoding::{decode_key, decode_varint, WireType};

/// How deep graphs may nest (If/Loop/Scan bodies, functions); deeper is refused rather than
/// risking the stack.
pub const MAX_DEPTH: usize = 32;

/// `TensorProto.DataLocation.EXTERNAL`.
const DATA_LOCATION_EXTERNAL: i32 = 1;

/// A `data_location` varint as ONNX Runtime's protobuf reads it: an `int32` enum keeps the low
/// 32 bits, so `0x1_0000_0001` is EXTERNAL too.
fn data_location(v: u64) -> i32 {
    v as u32 as i32
}

/// Why a model is not self-contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalReference {
    /// A tensor whose data lives outside the model (`what` says which and where it points).
    ExternalData { what: String },
    /// A node that loads a file by name (ONNX Runtime's `EPContext`).
    FileNode { what: String },
    /// The bytes could not be walked (malformed, too deeply nested).
    Unreadable(String),
}

impl fmt::Display for ExternalReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExternalReference::ExternalData { what } => write!(
                f,
                "{what} keeps its data outside the model (ONNX external data); models must be self-contained"
            ),
            ExternalReference::FileNode { what } => write!(
                f,
                "{what} loads a file by name; models must be self-contained"
            ),
            ExternalReference::Unreadable(why) => write!(f, "not a readable ONNX model: {why}"),
        }
    }
}

impl std::error::Error for ExternalReference {}

/// The message types of `onnx.proto` that can (transitively) hold a tensor or a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Function,
    Tensor,
    SparseTensor,
    TrainingInfo,
}

impl Kind {
    /// The field holding the message's name (0: it has none).
    fn name_field(self) -> u32 {
        match self {
            Kind::Tensor => 8,
            Kind::Graph => 2,
            Kind::Node => 3,
            Kind::Attribute | Kind::Function => 1,
            _ => 0,
        }
    }

    /// The field of this message that holds a message of interest, and that message's kind
    /// (field numbers of `onnx/onnx.proto`).
    fn child(self, field: u32) -> Option<Kind> {
        use Kind::*;
        match (self, field) {
            (Model, 7) => Some(Graph),
            (Model, 20) => Some(TrainingInfo),
            (Model, 25) => Some(Function),
            (Graph, 1) => Some(Node),
            (Graph, 5) => Some(Tensor),
            (Graph, 15) => Some(SparseTensor),
            (Node, 5) => Some(Attribute),
            (Attribute, 5 | 10) => Some(Tensor),
            (Attribute, 6 | 11) => Some(Graph),
            (Attribute, 22 | 23) => Some(SparseTensor),
            (Function, 7) => Some(Node),
            (Function, 11) => Some(Attribute),
            (SparseTensor, 1 | 2) => Some(Tensor),
            (TrainingInfo, 1 | 2) => Some(Graph),
            _ => None,
        }
    }
}

/// Checks that ONNX model bytes refer to no file, no memory address and no other outside data.
pub fn check_self_contained(bytes: &[u8]) -> Result<(), ExternalReference> {
    walk(bytes, Kind::Model, 0, &mut Vec::new())
}

/// One field of a message: its number and, for length-delimited fields, the payload.
enum Field<'a> {
    Varint(u32, u64),
    Bytes(u32, &'a [u8]),
    Other,
}

fn unreadable(why: impl Into<String>) -> ExternalReference {
    ExternalReference::Unreadable(why.into())
}

fn next_field<'a>(buf: &mut &'a [u8]) -> Result<Field<'a>, ExternalReference> {
    let (tag, wire) = decode_key(buf).map_err(|e| unreadable(e.to_string()))?;
    match wire {
        WireType::Varint => {
            let v = decode_varint(buf).map_err(|e| unreadable(e.to_string()))?;
            Ok(Field::Varint(tag, v))
        }
        WireType::LengthDelimited => {
            let len = decode_varint(buf).map_err(|e| unreadable(e.to_string()))?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&l| l <= buf.len())
                .ok_or_else(|| {
                    unreadable(format!("field {tag} runs past the end of its message"))
                })?;
            let (payload, rest) = buf.split_at(len);
            *buf = rest;
            Ok(Field::Bytes(tag, payload))
        }
        WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
            let n = if wire == WireType::SixtyFourBit { 8 } else { 4 };
            if buf.len() < n {
                return Err(unreadable(format!("field {tag} is cut off")));
            }
            *buf = &buf[n..];
            Ok(Field::Other)
        }
        // ONNX never uses protobuf groups; a parser that skipped them could be misled.
        WireType::StartGroup | WireType::EndGroup => Err(unreadable(format!(
            "field {tag} uses protobuf groups, which ONNX does not"
        ))),
    }
}

/// A readable name for the message being walked (its `name` field, when it has one).
fn describe(kind: Kind, name: Option<&str>, path: &[String]) -> String {
    let what = match kind {
        Kind::Tensor => "tensor",
        Kind::Node => "node",
        _ => "element",
    };
    let name = name.filter(|n| !n.is_empty()).unwrap_or("(unnamed)");
    let name = echo(name);
    if path.is_empty() {
        format!("{what} \"{name}\"")
    } else {
        format!("{what} \"{name}\" (in {})", path.join(" > "))
    }
}

/// The value of `location` among a tensor's `external_data` entries (for the message).
fn external_location(entry: &[u8]) -> Option<String> {
    let mut buf = entry;
    let (mut key, mut value) = (None, None);
    while !buf.is_empty() {
        match next_field(&mut buf).ok()? {
            Field::Bytes(1, k) => key = Some(String::from_utf8_lossy(k).into_owned()),
            Field::Bytes(2, v) => value = Some(String::from_utf8_lossy(v).into_owned()),
            _ => {}
        }
    }
    (key.as_deref() == Some("location")).then(|| value.unwrap_or_default())
}

fn walk(
    bytes: &[u8],
    kind: Kind,
    depth: usize,
    path: &mut Vec<String>,
) -> Result<(), ExternalReference> {
    if depth > MAX_DEPTH {
        return Err(unreadable(format!(
            "graphs nest deeper than {MAX_DEPTH} levels"
        )));
    }
    // Name first (fields may come in any order), then the checks.
    let mut name: Option<&str> = None;
    let mut op_type: Option<&[u8]> = None;
    let mut external: Option<String> = None;
    let mut children: Vec<(Kind, &[u8])> = Vec::new();
    let mut buf = bytes;
    while !buf.is_empty() {
        match next_field(&mut buf)? {
            Field::Varint(14, v)
                if kind == Kind::Tensor && data_location(v) == DATA_LOCATION_EXTERNAL =>
            {
                external.get_or_insert_with(String::new);
            }
            Field::Bytes(tag, payload) => {
                let name_tag = kind.name_field();
                if tag == name_tag {
                    name = std::str::from_utf8(payload).ok();
                } else if kind == Kind::Node && tag == 4 {
                    op_type = Some(payload);
                } else if kind == Kind::Tensor && tag == 13 {
                    let location = external_location(payload);
                    let slot = external.get_or_insert_with(String::new);
                    if let Some(l) = location {
                        *slot = l;
                    }
                } else if let Some(child) = kind.child(tag) {
                    children.push((child, payload));
                }
            }
            _ => {}
        }
    }
    if let Some(location) = external {
        let mut what = describe(kind, name, path);
        if !location.is_empty() {
            what.push_str(&format!(", location \"{}\"", echo(&location)));
        }
        return Err(ExternalReference::ExternalData { what });
    }
    if op_type == Some(b"EPContext") {
        return Err(ExternalReference::FileNode {
            what: format!("{} of type EPContext", describe(kind, name, path)),
        });
    }
    let pushed = matches!(kind, Kind::Graph | Kind::Node | Kind::Function);
    if pushed {
        let label = match kind {
            Kind::Graph => "graph",
            Kind::Node => "node",
            _ => "function",
        };
        path.push(format!("{label} \"{}\"", echo(name.unwrap_or(""))));
    }
    let nested = depth + usize::from(kind == Kind::Graph || kind == Kind::Function);
    let result = children
        .into_iter()
        .try_for_each(|(child, payload)| walk(payload, child, nested, path));
    if pushed {
        path.pop();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{
        AttributeProto, GraphProto, ModelProto, NodeProto, StringStringEntryProto, TensorProto,
    };
    use prost::Message;

    fn model_with(graph: GraphProto) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn external_tensor(name: &str, location: &str) -> TensorProto {
        let mut t = TensorProto::from_f32(name, &[1], &[0.0]);
        t.raw_data.clear();
        t.data_location = 1;
        t.external_data = vec![
            StringStringEntryProto {
                key: "location".into(),
                value: location.into(),
            },
            StringStringEntryProto {
                key: "offset".into(),
                value: "0".into(),
            },
        ];
        t
    }

    #[test]
    fn ordinary_models_pass() {
        let g = GraphProto {
            name: "g".into(),
            initializer: vec![TensorProto::from_f32("w", &[2], &[1.0, 2.0])],
            node: vec![NodeProto {
                op_type: "Relu".into(),
                input: vec!["x".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(check_self_contained(&model_with(g)), Ok(()));
        assert_eq!(check_self_contained(&[]), Ok(()));
    }

    #[test]
    fn external_initializer_is_refused_with_its_location() {
        let g = GraphProto {
            initializer: vec![external_tensor("leak", "global/1260")],
            ..Default::default()
        };
        let err = check_self_contained(&model_with(g)).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ExternalReference::ExternalData { .. }),
            "{text}"
        );
        assert!(
            text.contains("\"leak\"") && text.contains("global/1260"),
            "{text}"
        );
    }

    #[test]
    fn either_marker_alone_is_refused() {
        // data_location = EXTERNAL without entries, and entries without the flag.
        let mut only_flag = external_tensor("a", "x");
        only_flag.external_data.clear();
        let mut only_entries = external_tensor("b", "*/_ORT_MEM_ADDR_/*");
        only_entries.data_location = 0;
        for t in [only_flag, only_entries] {
            let g = GraphProto {
                initializer: vec![t],
                ..Default::default()
            };
            assert!(check_self_contained(&model_with(g)).is_err());
        }
    }

    /// `data_location` written as a 64-bit varint whose low 32 bits are 1: ONNX Runtime's int32
    /// enum reads EXTERNAL.
    #[test]
    fn data_location_is_read_as_int32() {
        let mut t = external_tensor("wide", "global/1260");
        t.data_location = 0;
        t.external_data.clear();
        let mut tensor = t.encode_to_vec();
        prost::encoding::encode_key(14, WireType::Varint, &mut tensor);
        prost::encoding::encode_varint((1u64 << 32) | 1, &mut tensor);
        let mut graph = Vec::new();
        prost::encoding::bytes::encode(5, &tensor, &mut graph); // GraphProto.initializer
        let mut model = Vec::new();
        prost::encoding::bytes::encode(7, &graph, &mut model); // ModelProto.graph
                                                               // prost truncates like ONNX Runtime does.
        let decoded = ModelProto::decode(model.as_slice()).unwrap();
        assert_eq!(decoded.graph.unwrap().initializer[0].data_location, 1);
        assert!(matches!(
            check_self_contained(&model),
            Err(ExternalReference::ExternalData { .. })
        ));
        // Values that are not 1 in the low 32 bits stay DEFAULT (0) or an unknown enum value.
        assert_eq!(data_location(1 << 32), 0);
        assert_eq!(data_location(u64::MAX), -1);
    }

    #[test]
    fn tensors_in_attributes_and_subgraphs_are_found() {
        // A Constant node's value, and an If node whose branch holds the initializer.
        let constant = NodeProto {
            op_type: "Constant".into(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                r#type: 4,
                t: Some(external_tensor("c", "postgresql.auto.conf")),
                ..Default::default()
            }],
            ..Default::default()
        };
        let g = GraphProto {
            node: vec![constant],
            ..Default::default()
        };
        assert!(check_self_contained(&model_with(g)).is_err());

        let branch = GraphProto {
            name: "then".into(),
            initializer: vec![external_tensor("deep", "server.key")],
            ..Default::default()
        };
        let iff = NodeProto {
            name: "choose".into(),
            op_type: "If".into(),
            attribute: vec![AttributeProto {
                name: "then_branch".into(),
                r#type: 5,
                g: Some(branch),
                ..Default::default()
            }],
            ..Default::default()
        };
        let g = GraphProto {
            name: "main".into(),
            node: vec![iff],
            ..Default::default()
        };
        let text = check_self_contained(&model_with(g))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("server.key") && text.contains("graph \"then\""),
            "{text}"
        );
    }

    /// Fields the typed messages keep opaque: functions, sparse initializers, training info.
    #[test]
    fn opaque_messages_are_walked_too() {
        let tensor = external_tensor("hidden", "pg_hba.conf").encode_to_vec();
        let mut sparse = Vec::new();
        prost::encoding::bytes::encode(1, &tensor, &mut sparse); // SparseTensorProto.values
        let g = GraphProto {
            sparse_initializer: vec![sparse],
            ..Default::default()
        };
        assert!(check_self_contained(&model_with(g)).is_err());

        let node = NodeProto {
            op_type: "Constant".into(),
            attribute: vec![AttributeProto {
                name: "value".into(),
                t: Some(external_tensor("f", "x")),
                ..Default::default()
            }],
            ..Default::default()
        }
        .encode_to_vec();
        let mut function = Vec::new();
        prost::encoding::bytes::encode(7, &node, &mut function); // FunctionProto.node
        let m = ModelProto {
            functions: vec![function],
            ..Default::default()
        };
        assert!(check_self_contained(&m.encode_to_vec()).is_err());

        let graph = GraphProto {
            initializer: vec![external_tensor("t", "x")],
            ..Default::default()
        }
        .encode_to_vec();
        let mut info = Vec::new();
        prost::encoding::bytes::encode(2, &graph, &mut info); // TrainingInfoProto.algorithm
        let mut bytes = ModelProto::default().encode_to_vec();
        prost::encoding::bytes::encode(20, &info, &mut bytes); // ModelProto.training_info
        assert!(check_self_contained(&bytes).is_err());
    }

    #[test]
    fn ep_context_nodes_are_refused() {
        let g = GraphProto {
            node: vec![NodeProto {
                name: "cache".into(),
                op_type: "EPContext".into(),
                domain: "com.microsoft".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let err = check_self_contained(&model_with(g)).unwrap_err();
        assert!(matches!(err, ExternalReference::FileNode { .. }), "{err}");
    }

    #[test]
    fn malformed_and_too_deep_input_fails_closed() {
        assert!(matches!(
            check_self_contained(&[0x3a, 0xff, 0x01]),
            Err(ExternalReference::Unreadable(_))
        ));
        // Graph > If node > then_branch graph > ... nested past the limit.
        let mut g = GraphProto::default();
        for _ in 0..=MAX_DEPTH + 1 {
            g = GraphProto {
                node: vec![NodeProto {
                    op_type: "If".into(),
                    attribute: vec![AttributeProto {
                        name: "then_branch".into(),
                        g: Some(g),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
        }
        assert!(matches!(
            check_self_contained(&model_with(g)),
            Err(ExternalReference::Unreadable(_))
        ));
    }
}
