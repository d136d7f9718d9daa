//! Which operators a model may use, so that every run can be stopped.
//!
//! A cancel, a statement timeout or a terminate stops a run between two operators
//! ([`crate::cancel`]: ONNX Runtime checks its terminate flag before each node). One node that
//! runs for minutes therefore cannot be stopped, and some operators can be made to run that long
//! by their input: NonMaxSuppression and TopK-like operators grow with the square of their
//! input, a MatMul of two run-time tensors with their product, control flow (Loop, Scan, If)
//! with a trip count or a branch the input picks, and operators that size their output from
//! tensor values (Expand, Tile, Resize, ...) turn a few input values into a huge tensor.
//!
//! A model is accepted when every node, in the graph, in subgraphs and in model-local function
//! bodies, is
//! - in the default ONNX domain and on [`ALLOWED`]: operators whose cost is at most their
//!   tensors' sizes times a factor the model fixes (a kernel size, a weight's inner dimension);
//! - and in the form that keeps it so ([`STRUCTURAL`]): MatMul and Gemm with a constant operand
//!   (an initializer, a `Constant`, or computed from those only), Conv and ConvTranspose with a
//!   constant weight, and every operand that sets an output's size (Expand's shape, Resize's
//!   scales and sizes, Pad's pads, ...) independent of the input's values (constants and the
//!   shapes of tensors whose shapes do not depend on values).
//!
//! Then no tensor's size depends on what the input holds: a run of n items costs what a blank
//! run of n items costs, every tensor fits the encoder's memory limit (its allocator refuses
//! more), and each node's time is bounded by its tensors times the model's fixed factors.
//!
//! A superuser may name further operator types ([`OperatorPolicy::extra`], the server's
//! `ics_hash.extra_operators`); a named operator is accepted in any form (its structural rule
//! is lifted too), and nodes inside its subgraphs are still checked. Anything not understood
//! (another domain, an operator a newer ONNX adds) is refused.

use std::collections::HashMap;
use std::fmt;

use prost::Message;

use crate::onnx_proto::{FunctionProto, GraphProto, ModelProto, NodeProto};

/// Operators of the default ONNX domain whose cost is bounded by their tensors' sizes (times a
/// factor the model fixes), in the forms [`STRUCTURAL`] requires. Covers what image-hashing
/// networks use: the trainer's exports (convolutions, Clip, pooling, Gemm, Tanh) and common
/// CNN backbones exported from PyTorch or TensorFlow.
pub const ALLOWED: &[&str] = &[
    // element-wise
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "And",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "BitShift",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "Clip",
    "Cos",
    "Cosh",
    "Div",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Floor",
    "Gelu",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "IsInf",
    "IsNaN",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "Max",
    "Mean",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pow",
    "PRelu",
    "Reciprocal",
    "Relu",
    "Round",
    "Selu",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Softplus",
    "Softsign",
    "Sqrt",
    "Sub",
    "Sum",
    "Tan",
    "Tanh",
    "ThresholdedRelu",
    "Where",
    "Xor",
    "Dropout",
    // normalisation and activations over an axis
    "BatchNormalization",
    "GroupNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "LpNormalization",
    "MeanVarianceNormalization",
    "Softmax",
    "LogSoftmax",
    "Hardmax",
    // reductions and pooling (a pooling kernel is an attribute: fixed by the model)
    "ArgMax",
    "ArgMin",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "AveragePool",
    "MaxPool",
    "LpPool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "GlobalLpPool",
    // layout
    "Concat",
    "Constant",
    "ConstantOfShape",
    "DepthToSpace",
    "Expand",
    "Flatten",
    "Gather",
    "GatherElements",
    "Pad",
    "Range",
    "Reshape",
    "Resize",
    "Shape",
    "Size",
    "Slice",
    "SpaceToDepth",
    "Split",
    "Squeeze",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    // quantisation
    "QuantizeLinear",
    "DequantizeLinear",
    // with a constant operand (STRUCTURAL)
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
];

/// How a node of an [`ALLOWED`] operator must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// One of these operands must be constant (a product's cost is the product of both sizes).
    ConstantOperand(&'static [usize]),
    /// These operands set the output's size: they must not depend on the input's values.
    SizeFromShapesOnly(&'static [usize]),
}

/// The structural rules, by operator.
pub const STRUCTURAL: &[(&str, Rule)] = &[
    ("MatMul", Rule::ConstantOperand(&[0, 1])),
    ("Gemm", Rule::ConstantOperand(&[0, 1])),
    ("Conv", Rule::ConstantOperand(&[1])),
    ("ConvTranspose", Rule::ConstantOperand(&[1])),
    ("Expand", Rule::SizeFromShapesOnly(&[1])),
    ("Tile", Rule::SizeFromShapesOnly(&[1])),
    ("Pad", Rule::SizeFromShapesOnly(&[1, 3])),
    ("Resize", Rule::SizeFromShapesOnly(&[1, 2, 3])),
    ("Upsample", Rule::SizeFromShapesOnly(&[1])),
    ("ConstantOfShape", Rule::SizeFromShapesOnly(&[0])),
    ("Range", Rule::SizeFromShapesOnly(&[0, 1, 2])),
];

/// Operands whose values shape an output without enlarging it past its inputs (a reshape, a
/// slice): allowed to depend on values, but the output's shape then does too.
const SHAPING_OPERANDS: &[(&str, &[usize])] = &[
    ("Reshape", &[1]),
    ("Slice", &[1, 2, 3, 4]),
    ("Split", &[1]),
    ("Squeeze", &[1]),
    ("Unsqueeze", &[1]),
    ("ReduceL1", &[1]),
    ("ReduceL2", &[1]),
    ("ReduceLogSum", &[1]),
    ("ReduceLogSumExp", &[1]),
    ("ReduceMax", &[1]),
    ("ReduceMean", &[1]),
    ("ReduceMin", &[1]),
    ("ReduceProd", &[1]),
    ("ReduceSum", &[1]),
    ("ReduceSumSquare", &[1]),
];

/// Longest user string (a node, graph or operator name) echoed in a message.
const SHOWN: usize = 80;

fn shown(s: &str) -> String {
    if s.chars().count() > SHOWN {
        format!("{}...", s.chars().take(SHOWN).collect::<String>())
    } else {
        s.to_string()
    }
}

/// What a model may use beyond [`ALLOWED`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorPolicy {
    /// Operator types accepted in any form: `OpType` (default domain) or `domain:OpType`.
    pub extra: Vec<String>,
}

impl OperatorPolicy {
    /// The built-in list only.
    pub fn strict() -> Self {
        OperatorPolicy::default()
    }

    /// A policy from a comma-separated list (`ics_hash.extra_operators`); blanks are ignored.
    pub fn with_extra(list: &str) -> Self {
        OperatorPolicy {
            extra: list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// Whether `op` (`OpType` or `domain:OpType`) is named in [`OperatorPolicy::extra`].
    pub fn is_extra(&self, op: &str) -> bool {
        self.extra.iter().any(|e| e == op)
    }

    /// Whether every operator in `ops` is still named (a cached session built under a wider
    /// policy is dropped when it is not).
    pub fn allows_all(&self, ops: &[String]) -> bool {
        ops.iter().all(|o| self.is_extra(o))
    }
}

/// Why a model's operators are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRefusal {
    /// Which node, where.
    pub node: String,
    /// The operator (`OpType` or `domain:OpType`).
    pub op: String,
    pub reason: String,
}

impl fmt::Display for OperatorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}) {}", self.node, shown(&self.op), self.reason)
    }
}

impl std::error::Error for OperatorRefusal {}

/// What a value depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    /// Initializers, `Constant`s and what is computed from them only.
    Constant,
    /// Also the shapes of tensors (whose shapes do not depend on values).
    Shapes,
    /// The input's values.
    Values,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Value {
    origin: Origin,
    /// Whether the value's shape depends on the input's values.
    shape_varies: bool,
}

const UNKNOWN: Value = Value {
    origin: Origin::Values,
    shape_varies: true,
};

fn op_name(n: &NodeProto) -> String {
    if is_default_domain(&n.domain) {
        n.op_type.clone()
    } else {
        format!("{}:{}", n.domain, n.op_type)
    }
}

fn is_default_domain(d: &str) -> bool {
    d.is_empty() || d == "ai.onnx"
}

/// Checks every node of `model` against `policy`. Returns the operator types the model needs
/// the policy for (outside [`ALLOWED`], or listed but in a form only the policy accepts),
/// sorted.
pub fn check_operators(
    model: &ModelProto,
    policy: &OperatorPolicy,
) -> Result<Vec<String>, OperatorRefusal> {
    let mut walk = Walk {
        policy,
        beyond: Vec::new(),
        path: Vec::new(),
    };
    if let Some(g) = &model.graph {
        walk.graph(g, &HashMap::new())?;
    }
    for (i, bytes) in model.functions.iter().enumerate() {
        let f = FunctionProto::decode(bytes.as_slice()).map_err(|e| OperatorRefusal {
            node: format!("model-local function {i}"),
            op: "?".into(),
            reason: format!("cannot be read: {e}"),
        })?;
        walk.path.push(format!(
            "function \"{}\"",
            shown(&format!("{}:{}", f.domain, f.name))
        ));
        let mut scope: HashMap<String, Value> = HashMap::new();
        for i in &f.input {
            scope.insert(i.clone(), UNKNOWN);
        }
        walk.nodes(&f.node, scope)?;
        walk.path.pop();
    }
    walk.beyond.sort();
    walk.beyond.dedup();
    Ok(walk.beyond)
}

struct Walk<'a> {
    policy: &'a OperatorPolicy,
    beyond: Vec<String>,
    path: Vec<String>,
}

impl Walk<'_> {
    fn graph(
        &mut self,
        g: &GraphProto,
        outer: &HashMap<String, Value>,
    ) -> Result<(), OperatorRefusal> {
        let mut scope = outer.clone();
        for t in &g.initializer {
            scope.insert(
                t.name.clone(),
                Value {
                    origin: Origin::Constant,
                    shape_varies: false,
                },
            );
        }
        // Inputs that are not initializers are fed (IR < 4 lists weights as inputs too).
        for i in &g.input {
            if !g.initializer.iter().any(|t| t.name == i.name) {
                scope.insert(
                    i.name.clone(),
                    Value {
                        origin: Origin::Values,
                        shape_varies: !self.path.is_empty(),
                    },
                );
            }
        }
        self.path.push(format!("graph \"{}\"", shown(&g.name)));
        let r = self.nodes(&g.node, scope);
        self.path.pop();
        r
    }

    fn where_(&self, n: &NodeProto) -> String {
        let name = if n.name.is_empty() {
            n.output.first().map_or("(unnamed)", String::as_str)
        } else {
            n.name.as_str()
        };
        format!("node \"{}\" in {}", shown(name), self.path.join(" > "))
    }

    fn nodes(
        &mut self,
        nodes: &[NodeProto],
        mut scope: HashMap<String, Value>,
    ) -> Result<(), OperatorRefusal> {
        for n in nodes {
            let op = op_name(n);
            let at = self.where_(n);
            let refuse = |reason: String| OperatorRefusal {
                node: at.clone(),
                op: op.clone(),
                reason,
            };
            let input = |i: usize| -> Option<Value> {
                let name = n.input.get(i).filter(|s| !s.is_empty())?;
                Some(*scope.get(name).unwrap_or(&UNKNOWN))
            };
            let extra = self.policy.is_extra(&op);
            let listed = is_default_domain(&n.domain) && ALLOWED.contains(&n.op_type.as_str());
            if !listed && !extra {
                let reason = if is_default_domain(&n.domain) {
                    "is not on the list of operators whose cost the input cannot blow up".into()
                } else {
                    "is outside the default ONNX domain".into()
                };
                return Err(refuse(reason));
            }
            if !listed {
                self.beyond.push(op.clone());
            }
            let rule = STRUCTURAL
                .iter()
                .find(|(o, _)| listed && *o == n.op_type)
                .map(|(_, r)| *r);
            let violation = match rule {
                Some(Rule::ConstantOperand(which)) => {
                    let constant = which
                        .iter()
                        .any(|&i| input(i).is_some_and(|v| v.origin == Origin::Constant));
                    (!constant).then(|| {
                        let names: Vec<String> = which
                            .iter()
                            .filter_map(|&i| n.input.get(i))
                            .map(|s| format!("\"{}\"", shown(s)))
                            .collect();
                        format!(
                            "multiplies run-time tensors ({}): only a constant weight (an initializer) keeps its cost fixed",
                            names.join(" and ")
                        )
                    })
                }
                Some(Rule::SizeFromShapesOnly(which)) => which
                    .iter()
                    .find(|&&i| input(i).is_some_and(|v| v.origin == Origin::Values))
                    .map(|&i| {
                        format!(
                            "sizes its output from the values of \"{}\", which the input chooses",
                            shown(&n.input[i])
                        )
                    }),
                None => None,
            };
            if let Some(reason) = violation {
                if !extra {
                    return Err(refuse(reason));
                }
                // Accepted only because the policy names it.
                self.beyond.push(op.clone());
            }
            // Subgraphs (only in operators a superuser named) are checked too; they see the
            // values around them.
            for a in &n.attribute {
                for g in a.g.iter().chain(a.graphs.iter()) {
                    let label = n.name.as_str();
                    self.path.push(format!("node \"{}\"", shown(label)));
                    let r = self.graph(g, &scope);
                    self.path.pop();
                    r?;
                }
            }
            let inputs: Vec<Value> = (0..n.input.len()).filter_map(input).collect();
            let out = if n.op_type == "Constant" && listed {
                Value {
                    origin: Origin::Constant,
                    shape_varies: false,
                }
            } else if (n.op_type == "Shape" || n.op_type == "Size") && listed {
                let varies = inputs.iter().any(|v| v.shape_varies);
                Value {
                    origin: if varies {
                        Origin::Values
                    } else {
                        Origin::Shapes
                    },
                    shape_varies: false,
                }
            } else if !listed {
                // Nothing is known about an operator a superuser added.
                let origin = inputs
                    .iter()
                    .map(|v| v.origin)
                    .max()
                    .unwrap_or(Origin::Constant)
                    .max(if inputs.is_empty() {
                        Origin::Constant
                    } else {
                        Origin::Shapes
                    });
                Value {
                    origin: if origin == Origin::Constant {
                        Origin::Constant
                    } else {
                        Origin::Values
                    },
                    shape_varies: true,
                }
            } else {
                let shaping = SHAPING_OPERANDS
                    .iter()
                    .find(|(o, _)| *o == n.op_type)
                    .map_or(&[][..], |(_, w)| *w);
                let varies = inputs.iter().any(|v| v.shape_varies)
                    || shaping
                        .iter()
                        .any(|&i| input(i).is_some_and(|v| v.origin == Origin::Values));
                Value {
                    origin: inputs
                        .iter()
                        .map(|v| v.origin)
                        .max()
                        .unwrap_or(Origin::Constant),
                    shape_varies: varies,
                }
            };
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                scope.insert(o.clone(), out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{AttributeProto, TensorProto};

    fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
        NodeProto {
            op_type: op.into(),
            name: output.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            ..Default::default()
        }
    }

    fn model(nodes: Vec<NodeProto>) -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                name: "g".into(),
                node: nodes,
                initializer: vec![TensorProto::from_f32("w", &[4, 4], &[0.0; 16])],
                input: vec![crate::onnx_proto::ValueInfoProto::tensor("x", 1, &[])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn check(nodes: Vec<NodeProto>) -> Result<Vec<String>, OperatorRefusal> {
        check_operators(&model(nodes), &OperatorPolicy::strict())
    }

    #[test]
    fn lists_are_consistent() {
        for (op, _) in STRUCTURAL {
            assert!(ALLOWED.contains(op), "{op}");
        }
        for (op, _) in SHAPING_OPERANDS {
            assert!(ALLOWED.contains(op), "{op}");
        }
        let mut sorted = ALLOWED.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ALLOWED.len(), "duplicates in ALLOWED");
    }

    #[test]
    fn products_need_a_constant_operand() {
        assert!(check(vec![node("MatMul", &["x", "w"], "y")]).is_ok());
        assert!(check(vec![node("MatMul", &["w", "x"], "y")]).is_ok());
        // A weight computed from constants only is constant.
        assert!(check(vec![
            node("Transpose", &["w"], "wt"),
            node("Gemm", &["x", "wt"], "y")
        ])
        .is_ok());
        let err = check(vec![
            node("Relu", &["x"], "r"),
            node("MatMul", &["x", "r"], "y"),
        ])
        .unwrap_err();
        assert_eq!(err.op, "MatMul");
        assert!(err.reason.contains("run-time tensors"), "{err}");
        // A weight derived from the input's shape is not constant.
        assert!(check(vec![
            node("Shape", &["x"], "s"),
            node("ConstantOfShape", &["s"], "c"),
            node("MatMul", &["x", "c"], "y"),
        ])
        .is_err());
        assert!(check(vec![node("Conv", &["w", "x"], "y")]).is_err());
        assert!(check(vec![node("Conv", &["x", "w"], "y")]).is_ok());
    }

    #[test]
    fn sizes_must_not_follow_values() {
        // Expand to the input's own shape (what exporters write) is fine ...
        assert!(check(vec![
            node("Shape", &["x"], "s"),
            node("Expand", &["w", "s"], "y")
        ])
        .is_ok());
        // ... to a shape the input's values choose is not.
        let err = check(vec![
            node("Cast", &["x"], "s"),
            node("Expand", &["w", "s"], "y"),
        ])
        .unwrap_err();
        assert!(err.reason.contains("values of \"s\""), "{err}");
        // Nor the shape of a tensor whose shape the values chose.
        assert!(check(vec![
            node("Cast", &["x"], "k"),
            node("Reshape", &["x", "k"], "r"),
            node("Shape", &["r"], "s"),
            node("Tile", &["w", "s"], "y"),
        ])
        .is_err());
        assert!(check(vec![
            node("Cast", &["x"], "k"),
            node("Range", &["k", "k", "k"], "y")
        ])
        .is_err());
    }

    #[test]
    fn unlisted_operators_and_domains_are_refused() {
        for op in [
            "NonMaxSuppression",
            "TopK",
            "Loop",
            "Scan",
            "If",
            "Einsum",
            "NoSuchOp",
        ] {
            let err = check(vec![node(op, &["x"], "y")]).unwrap_err();
            assert_eq!(err.op, op);
            assert!(err.reason.contains("not on the list"), "{err}");
        }
        let mut foreign = node("Relu", &["x"], "y");
        foreign.domain = "com.example".into();
        let err = check(vec![foreign.clone()]).unwrap_err();
        assert_eq!(err.op, "com.example:Relu");
        // A superuser's extra list names it with its domain.
        let p = OperatorPolicy::with_extra(" com.example:Relu , ");
        assert_eq!(
            check_operators(&model(vec![foreign]), &p),
            Ok(vec!["com.example:Relu".to_string()])
        );
    }

    #[test]
    fn extra_operators_load_and_their_subgraphs_are_checked() {
        let body = |op: &str| GraphProto {
            name: "body".into(),
            node: vec![node(op, &["x"], "z")],
            ..Default::default()
        };
        let with_body = |op: &str| {
            let mut l = node("Loop", &["x"], "y");
            l.attribute.push(AttributeProto {
                name: "body".into(),
                r#type: 5,
                g: Some(body(op)),
                ..Default::default()
            });
            vec![l]
        };
        assert!(check(with_body("Relu")).is_err());
        let p = OperatorPolicy::with_extra("Loop");
        assert_eq!(
            check_operators(&model(with_body("Relu")), &p),
            Ok(vec!["Loop".to_string()])
        );
        let err = check_operators(&model(with_body("NonMaxSuppression")), &p).unwrap_err();
        assert_eq!(err.op, "NonMaxSuppression");
        assert!(err.node.contains("graph \"body\""), "{err}");
        // A listed operator in the extra list drops its structural rule.
        let mm = vec![node("Relu", &["x"], "r"), node("MatMul", &["x", "r"], "y")];
        assert_eq!(
            check_operators(&model(mm), &OperatorPolicy::with_extra("MatMul")),
            Ok(vec!["MatMul".to_string()])
        );
        // Used in its listed form, it needs no extra.
        let mm = vec![node("MatMul", &["x", "w"], "y")];
        assert_eq!(
            check_operators(&model(mm), &OperatorPolicy::with_extra("MatMul")),
            Ok(vec![])
        );
        assert!(p.allows_all(&["Loop".into()]));
        assert!(!OperatorPolicy::strict().allows_all(&["Loop".into()]));
    }

    #[test]
    fn function_bodies_are_checked() {
        let f = FunctionProto {
            name: "Relu".into(),
            domain: String::new(),
            input: vec!["a".into()],
            node: vec![node("TopK", &["a"], "b")],
        };
        let mut m = model(vec![node("Relu", &["x"], "y")]);
        m.functions.push(f.encode_to_vec());
        let err = check_operators(&m, &OperatorPolicy::strict()).unwrap_err();
        assert_eq!(err.op, "TopK");
        assert!(err.node.contains("function"), "{err}");
        m.functions[0] = vec![0xff, 0xff];
        assert!(check_operators(&m, &OperatorPolicy::strict()).is_err());
    }

    #[test]
    fn long_names_are_cut() {
        let mut n = node("TopK", &["x"], "y");
        n.name = "n".repeat(10_000);
        let text = check(vec![n]).unwrap_err().to_string();
        assert!(text.len() < 400, "{}", text.len());
    }
}
