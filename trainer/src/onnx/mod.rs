//! ONNX on the trainer side: building graphs, exporting the hash head (alone or merged with a
//! backbone) with the model contract in its metadata, reading models back, and running them
//! with ONNX Runtime.
//!
//! The protobuf messages and the contract are `ics_encoder`'s ([`ics_encoder::onnx_proto`],
//! [`ics_encoder::contract`]): the extension reads models with the very same code.
//!
//! - [`builder`]: a graph builder (unique names, initializers, nodes, typed inputs/outputs).
//! - [`head`]: the hash head as `Gemm/Relu/.../Tanh`, feature-input models and backbone merging.
//! - [`runtime`]: the ONNX Runtime environment, sessions and float runs.
//! - `toy` (tests only): the tests' toy image backbone.

pub mod builder;
pub mod head;
pub mod runtime;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod toy;

use std::path::Path;

use anyhow::{Context, Result};
use ics_encoder::onnx_proto::ModelProto;

pub use builder::{model, GraphBuilder, IR_VERSION, OPSET};
pub use head::{append_head, head_layers, head_model, merge_backbone_head, DenseLayer};

/// Writes a model to `path` (through a temporary file and a rename, so a reader never sees a
/// half-written model).
pub fn save_model(model: &ModelProto, path: &Path) -> Result<()> {
    let bytes = model.to_bytes();
    crate::files::write_atomically(path, |w| w.write_all(&bytes))
}

/// Reads an ONNX file.
pub fn load_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    ModelProto::from_bytes(&bytes).with_context(|| format!("decoding {}", path.display()))
}
