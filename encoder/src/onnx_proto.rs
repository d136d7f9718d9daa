//! The subset of the ONNX protobuf schema (`onnx.proto`, IR version 7-10) that ics_hash reads
//! and writes, as hand-written `prost` messages: no `protoc`, no build script, one copy shared
//! by the trainer's exporter and the extension's model loader.
//!
//! Field numbers are those of `onnx/onnx.proto`. Messages we never look inside but must not
//! lose when a foreign model is read and written back (functions, sparse tensors, sequence and
//! map types, quantisation annotations) are kept as raw length-delimited bytes: protobuf encodes
//! an embedded message exactly like a `bytes` field, so they round-trip byte for byte. Fields
//! this module does not declare at all (training info, deprecated ones) are dropped on decode.
//!
//! Encoding follows proto3 rules (defaults omitted, repeated numbers packed); ONNX is proto2,
//! whose parsers accept both forms and read an omitted scalar as its default, so the bytes
//! mean the same thing to ONNX Runtime.

use std::fmt;

use prost::Message;

/// `TensorProto.DataType` values used here.
pub mod data_type {
    pub const UNDEFINED: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const STRING: i32 = 8;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
    pub const DOUBLE: i32 = 11;
}

/// `AttributeProto.AttributeType` values.
pub mod attribute_type {
    pub const UNDEFINED: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const GRAPH: i32 = 5;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
    pub const STRINGS: i32 = 8;
    pub const TENSORS: i32 = 9;
    pub const GRAPHS: i32 = 10;
}

/// `ModelProto`: the top-level ONNX file.
#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
    /// `FunctionProto`s, kept opaque.
    #[prost(bytes = "vec", repeated, tag = "25")]
    pub functions: Vec<Vec<u8>>,
}

/// `OperatorSetIdProto`: an operator set the model uses (empty domain = the default `ai.onnx`).
#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `FunctionProto`: a model-local function (decoded from [`ModelProto::functions`] by callers
/// that look inside; only the fields they need).
#[derive(Clone, PartialEq, Message)]
pub struct FunctionProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "7")]
    pub node: Vec<NodeProto>,
    #[prost(string, repeated, tag = "4")]
    pub input: Vec<String>,
    #[prost(string, tag = "10")]
    pub domain: String,
}

/// `StringStringEntryProto`: one metadata key/value pair.
#[derive(Clone, PartialEq, Eq, Message)]
pub struct StringStringEntryProto {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`: nodes in topological order, weights, inputs and outputs.
#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// `SparseTensorProto`s, kept opaque.
    #[prost(bytes = "vec", repeated, tag = "15")]
    pub sparse_initializer: Vec<Vec<u8>>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
    /// `TensorAnnotation`s, kept opaque.
    #[prost(bytes = "vec", repeated, tag = "14")]
    pub quantization_annotation: Vec<Vec<u8>>,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(string, tag = "7")]
    pub domain: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// `AttributeProto`: a named operator attribute; `type` says which value field is meaningful.
#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
    #[prost(string, tag = "13")]
    pub doc_string: String,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    /// `SparseTensorProto`, kept opaque.
    #[prost(bytes = "vec", optional, tag = "22")]
    pub sparse_tensor: Option<Vec<u8>>,
    /// `TypeProto` (type attributes), kept opaque.
    #[prost(bytes = "vec", optional, tag = "14")]
    pub tp: Option<Vec<u8>>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
    #[prost(message, repeated, tag = "11")]
    pub graphs: Vec<GraphProto>,
    #[prost(bytes = "vec", repeated, tag = "23")]
    pub sparse_tensors: Vec<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "15")]
    pub type_protos: Vec<Vec<u8>>,
}

/// `ValueInfoProto`: a named value and its type (graph inputs and outputs).
#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// `TypeProto`: only tensor types are modelled; the others are kept opaque.
#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1, 4, 5, 7, 8, 9")]
    pub value: Option<type_proto::Value>,
    #[prost(string, tag = "6")]
    pub denotation: String,
}

/// Nested messages of [`TypeProto`].
pub mod type_proto {
    /// `TypeProto.Tensor`: element type and (optional) shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }

    /// The `value` oneof.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
        #[prost(bytes, tag = "4")]
        SequenceType(Vec<u8>),
        #[prost(bytes, tag = "5")]
        MapType(Vec<u8>),
        #[prost(bytes, tag = "7")]
        OpaqueType(Vec<u8>),
        #[prost(bytes, tag = "8")]
        SparseTensorType(Vec<u8>),
        #[prost(bytes, tag = "9")]
        OptionalType(Vec<u8>),
    }
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// Nested messages of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// One dimension: a number, a symbolic name, or neither (unknown).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        #[prost(string, tag = "3")]
        pub denotation: String,
    }

    /// The `value` oneof of [`Dimension`].
    pub mod dimension {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

/// `TensorProto`: a constant tensor (weights). Data is read from `raw_data` (little endian) or
/// the typed repeated fields; written to `raw_data`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// `Segment`, kept opaque.
    #[prost(bytes = "vec", optional, tag = "3")]
    pub segment: Option<Vec<u8>>,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(string, tag = "12")]
    pub doc_string: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    #[prost(int32, tag = "14")]
    pub data_location: i32,
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
}

/// Why ONNX bytes or a tensor in them cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnnxError {
    /// Not a protobuf `ModelProto` (truncated, not ONNX at all, ...).
    Decode(String),
    /// A `ModelProto` without a graph.
    NoGraph,
    /// A tensor whose data cannot be read as asked.
    Tensor { name: String, reason: String },
}

impl fmt::Display for OnnxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OnnxError::Decode(e) => write!(f, "not a readable ONNX model: {e}"),
            OnnxError::NoGraph => write!(f, "the ONNX model has no graph"),
            OnnxError::Tensor { name, reason } => write!(f, "ONNX tensor \"{name}\": {reason}"),
        }
    }
}

impl std::error::Error for OnnxError {}

impl ModelProto {
    /// Decodes an ONNX file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OnnxError> {
        ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))
    }

    /// Encodes to ONNX file bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// The graph, or [`OnnxError::NoGraph`].
    pub fn graph(&self) -> Result<&GraphProto, OnnxError> {
        self.graph.as_ref().ok_or(OnnxError::NoGraph)
    }

    /// `metadata_props` as (key, value) pairs, in file order.
    pub fn metadata(&self) -> Vec<(String, String)> {
        self.metadata_props
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// Replaces every metadata entry whose key is in `pairs` and appends the new ones, keeping
    /// unrelated entries (a foreign backbone's own metadata).
    pub fn set_metadata(&mut self, pairs: &[(String, String)]) {
        self.metadata_props
            .retain(|e| !pairs.iter().any(|(k, _)| *k == e.key));
        self.metadata_props
            .extend(pairs.iter().map(|(k, v)| StringStringEntryProto {
                key: k.clone(),
                value: v.clone(),
            }));
    }

    /// The imported version of an operator set (`""` = the default ONNX domain).
    pub fn opset_version(&self, domain: &str) -> Option<i64> {
        let norm = |d: &str| if d == "ai.onnx" { "" } else { d }.to_string();
        self.opset_import
            .iter()
            .find(|o| norm(&o.domain) == norm(domain))
            .map(|o| o.version)
    }
}

/// A tensor dimension as declared in a graph's inputs/outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A named free size (e.g. the batch `"N"`).
    Symbolic(String),
    /// Not declared.
    Unknown,
}

/// A graph input or output: name, element type and shape when they are declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// A [`data_type`] value; `None` when the value is not a tensor or has no declared type.
    pub elem_type: Option<i32>,
    /// `None` when no shape is declared (rank unknown).
    pub shape: Option<Vec<Dim>>,
}

impl TensorInfo {
    fn from_value_info(v: &ValueInfoProto) -> Self {
        let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => Some(t),
            _ => None,
        };
        let shape = tensor.and_then(|t| t.shape.as_ref()).map(|s| {
            s.dim
                .iter()
                .map(|d| match &d.value {
                    Some(tensor_shape_proto::dimension::Value::DimValue(n)) => Dim::Fixed(*n),
                    Some(tensor_shape_proto::dimension::Value::DimParam(p)) => {
                        Dim::Symbolic(p.clone())
                    }
                    None => Dim::Unknown,
                })
                .collect()
        });
        TensorInfo {
            name: v.name.clone(),
            elem_type: tensor.map(|t| t.elem_type),
            shape,
        }
    }
}

impl GraphProto {
    /// The inputs a caller must feed: declared inputs that are not initializers (IR < 4
    /// models list their weights as inputs too).
    pub fn feed_inputs(&self) -> Vec<TensorInfo> {
        self.input
            .iter()
            .filter(|i| !self.initializer.iter().any(|t| t.name == i.name))
            .map(TensorInfo::from_value_info)
            .collect()
    }

    /// The declared outputs.
    pub fn outputs(&self) -> Vec<TensorInfo> {
        self.output
            .iter()
            .map(TensorInfo::from_value_info)
            .collect()
    }

    /// Whether some node produces `name` or it is a graph input or initializer.
    pub fn has_value(&self, name: &str) -> bool {
        self.node.iter().any(|n| n.output.iter().any(|o| o == name))
            || self.input.iter().any(|i| i.name == name)
            || self.initializer.iter().any(|t| t.name == name)
    }
}

impl ValueInfoProto {
    /// A tensor value of element type `elem_type` and shape `dims`.
    pub fn tensor(name: &str, elem_type: i32, dims: &[Dim]) -> Self {
        use tensor_shape_proto::{dimension::Value as D, Dimension};
        let dim = dims
            .iter()
            .map(|d| Dimension {
                value: match d {
                    Dim::Fixed(n) => Some(D::DimValue(*n)),
                    Dim::Symbolic(p) => Some(D::DimParam(p.clone())),
                    Dim::Unknown => None,
                },
                denotation: String::new(),
            })
            .collect();
        ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type,
                    shape: Some(TensorShapeProto { dim }),
                })),
                denotation: String::new(),
            }),
            doc_string: String::new(),
        }
    }
}

impl TensorProto {
    /// A float tensor; `data.len()` must be the product of `dims` (checked by the caller's
    /// tests, asserted here because a mismatch is a programming error).
    pub fn from_f32(name: &str, dims: &[i64], data: &[f32]) -> Self {
        assert_eq!(
            dims.iter().product::<i64>() as usize,
            data.len(),
            "tensor {name}: dims {dims:?} do not match {} values",
            data.len()
        );
        TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            name: name.to_string(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    /// An int64 tensor (shapes, axes).
    pub fn from_i64(name: &str, dims: &[i64], data: &[i64]) -> Self {
        assert_eq!(dims.iter().product::<i64>() as usize, data.len());
        TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::INT64,
            name: name.to_string(),
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    /// Number of elements the dims describe (1 for a scalar).
    pub fn element_count(&self) -> usize {
        self.dims.iter().map(|&d| d.max(0) as usize).product()
    }

    /// The values of a float tensor, from `raw_data` or `float_data`.
    pub fn to_f32(&self) -> Result<Vec<f32>, OnnxError> {
        let err = |reason: String| OnnxError::Tensor {
            name: self.name.clone(),
            reason,
        };
        if self.data_type != data_type::FLOAT {
            return Err(err(format!("data type {} is not FLOAT", self.data_type)));
        }
        if self.data_location != 0 || !self.external_data.is_empty() {
            return Err(err("external data is not supported".into()));
        }
        let n = self.element_count();
        let values: Vec<f32> = if !self.raw_data.is_empty() {
            self.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            self.float_data.clone()
        };
        if values.len() != n || (!self.raw_data.is_empty() && self.raw_data.len() != 4 * n) {
            return Err(err(format!(
                "holds {} values, its dims {:?} need {n}",
                values.len(),
                self.dims
            )));
        }
        Ok(values)
    }
}

impl AttributeProto {
    fn named(name: &str, r#type: i32) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type,
            ..Default::default()
        }
    }

    /// An `INT` attribute.
    pub fn int(name: &str, value: i64) -> Self {
        AttributeProto {
            i: value,
            ..Self::named(name, attribute_type::INT)
        }
    }

    /// An `INTS` attribute.
    pub fn ints(name: &str, values: &[i64]) -> Self {
        AttributeProto {
            ints: values.to_vec(),
            ..Self::named(name, attribute_type::INTS)
        }
    }

    /// A `FLOAT` attribute.
    pub fn float(name: &str, value: f32) -> Self {
        AttributeProto {
            f: value,
            ..Self::named(name, attribute_type::FLOAT)
        }
    }

    /// A `STRING` attribute.
    pub fn string(name: &str, value: &str) -> Self {
        AttributeProto {
            s: value.as_bytes().to_vec(),
            ..Self::named(name, attribute_type::STRING)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_model() -> ModelProto {
        let graph = GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                name: "mm".into(),
                op_type: "MatMul".into(),
                attribute: vec![
                    AttributeProto::int("zero", 0),
                    AttributeProto::ints("p", &[1, -2]),
                ],
                ..Default::default()
            }],
            initializer: vec![TensorProto::from_f32("w", &[2, 1], &[1.5, -2.0])],
            input: vec![ValueInfoProto::tensor(
                "x",
                data_type::FLOAT,
                &[Dim::Symbolic("N".into()), Dim::Fixed(2)],
            )],
            output: vec![ValueInfoProto::tensor(
                "y",
                data_type::FLOAT,
                &[Dim::Unknown, Dim::Fixed(1)],
            )],
            ..Default::default()
        };
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            producer_name: "test".into(),
            graph: Some(graph),
            metadata_props: vec![StringStringEntryProto {
                key: "k".into(),
                value: "v".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn model_round_trips_through_bytes() {
        let m = tiny_model();
        let back = ModelProto::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.metadata(), vec![("k".to_string(), "v".to_string())]);
        assert_eq!(back.opset_version(""), Some(13));
        assert_eq!(back.opset_version("ai.onnx"), Some(13));
        assert_eq!(back.opset_version("com.microsoft"), None);
    }

    /// Known bytes for a known message pin the field numbers and wire types: a model with
    /// ir_version 7 (field 1 varint) and one opset import {"" , 13} (field 8, nested field 2).
    #[test]
    fn field_numbers_match_onnx_proto() {
        let m = ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            ..Default::default()
        };
        assert_eq!(m.to_bytes(), vec![0x08, 7, 0x42, 2, 0x10, 13]);
        let kv = StringStringEntryProto {
            key: "a".into(),
            value: "b".into(),
        };
        assert_eq!(kv.encode_to_vec(), vec![0x0a, 1, b'a', 0x12, 1, b'b']);
        // TensorProto: dims (1, packed), data_type (2), name (8), raw_data (9).
        let t = TensorProto::from_f32("t", &[1], &[1.0]);
        assert_eq!(
            t.encode_to_vec(),
            vec![0x0a, 1, 1, 0x10, 1, 0x42, 1, b't', 0x4a, 4, 0, 0, 0x80, 0x3f]
        );
    }

    #[test]
    fn opaque_messages_survive_a_round_trip() {
        // A model with a FunctionProto (field 25) we do not model: its bytes come back as they were.
        let mut m = tiny_model();
        m.functions.push(vec![0x22, 3, b'F', b'o', b'o']);
        let back = ModelProto::from_bytes(&m.to_bytes()).unwrap();
        assert_eq!(back.functions, m.functions);
    }

    #[test]
    fn graph_io_and_values() {
        let m = tiny_model();
        let g = m.graph().unwrap();
        let inputs = g.feed_inputs();
        assert_eq!(inputs.len(), 1);
        assert_eq!(inputs[0].name, "x");
        assert_eq!(inputs[0].elem_type, Some(data_type::FLOAT));
        assert_eq!(
            inputs[0].shape,
            Some(vec![Dim::Symbolic("N".into()), Dim::Fixed(2)])
        );
        assert_eq!(
            g.outputs()[0].shape,
            Some(vec![Dim::Unknown, Dim::Fixed(1)])
        );
        assert!(g.has_value("y") && g.has_value("w") && g.has_value("x"));
        assert!(!g.has_value("z"));
    }

    #[test]
    fn initializers_listed_as_inputs_are_not_feeds() {
        let mut m = tiny_model();
        let g = m.graph.as_mut().unwrap();
        g.input.push(ValueInfoProto::tensor(
            "w",
            data_type::FLOAT,
            &[Dim::Fixed(2), Dim::Fixed(1)],
        ));
        assert_eq!(m.graph().unwrap().feed_inputs().len(), 1);
    }

    #[test]
    fn tensor_values() {
        let t = TensorProto::from_f32("w", &[2, 2], &[1.0, -2.0, 3.5, 0.0]);
        assert_eq!(t.to_f32().unwrap(), vec![1.0, -2.0, 3.5, 0.0]);
        let typed = TensorProto {
            dims: vec![2],
            data_type: data_type::FLOAT,
            float_data: vec![4.0, 5.0],
            ..Default::default()
        };
        assert_eq!(typed.to_f32().unwrap(), vec![4.0, 5.0]);
        let short = TensorProto {
            dims: vec![3],
            ..typed.clone()
        };
        assert!(matches!(short.to_f32(), Err(OnnxError::Tensor { .. })));
        let ints = TensorProto::from_i64("s", &[2], &[1, 2]);
        assert!(ints.to_f32().unwrap_err().to_string().contains("not FLOAT"));
        assert_eq!(TensorProto::from_i64("s", &[], &[7]).element_count(), 1);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            ModelProto::from_bytes(b"\xff\xff\xff\xff not onnx"),
            Err(OnnxError::Decode(_))
        ));
        assert_eq!(
            ModelProto::from_bytes(&[]).unwrap().graph(),
            Err(OnnxError::NoGraph)
        );
    }

    #[test]
    fn set_metadata_replaces_and_keeps_others() {
        let mut m = tiny_model();
        m.set_metadata(&[("a".into(), "1".into()), ("k".into(), "new".into())]);
        let md = m.metadata();
        assert_eq!(
            md,
            vec![
                ("a".to_string(), "1".to_string()),
                ("k".to_string(), "new".to_string())
            ]
        );
    }
}
