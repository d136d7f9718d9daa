//! The model contract: what an exported ONNX model promises about itself, stored in its
//! `metadata_props` under keys prefixed `ics_hash.`, written by the trainer's exporter and
//! checked by the extension's `ics_model_load` (one definition for both sides).
//!
//! | key | value |
//! |---|---|
//! | `ics_hash.contract_version` | `1` |
//! | `ics_hash.bits` | code length K: a multiple of 8 in 8..=4096 |
//! | `ics_hash.input_kind` | `image` or `features` |
//! | `ics_hash.input_name` | the graph input to feed |
//! | `ics_hash.output_name` | the graph output (N x K tanh values) |
//! | `ics_hash.packing` | `sign-msb-first`: u >= 0 gives bit 1, bit 0 = MSB of byte 0 ([`ics_codes::code::pack_signs`]) |
//! | `ics_hash.centres` | the class hash centres, hex codes separated by commas (a JSON array of strings is also read) |
//! | `ics_hash.trainer_version` | version of the trainer that exported the model |
//! | `ics_hash.config_sha256` | sha256 (64 hex digits) of the training configuration |
//! | `ics_hash.backbone` | optional: a free-text description of the backbone |
//!
//! Image models (input `N x 3 x S x S` f32) add the preprocessing of [`crate::preprocess`]:
//!
//! | key | value |
//! |---|---|
//! | `ics_hash.image_size` | S |
//! | `ics_hash.channel_order` | `RGB` |
//! | `ics_hash.layout` | `NCHW` |
//! | `ics_hash.resize` | `shorter-side-center-crop` or `stretch` |
//! | `ics_hash.resize_filter` | `triangle` |
//! | `ics_hash.preprocess_version` | [`crate::preprocess::PIPELINE_VERSION`] |
//! | `ics_hash.norm_mean` | three numbers `R,G,B` on the 0..=255 scale |
//! | `ics_hash.norm_std` | three positive numbers `R,G,B` |
//!
//! Feature models (input `N x D` f32) add `ics_hash.feature_dim` = D instead.
//! Unknown `ics_hash.*` keys are ignored (a later minor addition must not break older
//! loaders); an incompatible change bumps `contract_version`, which older loaders reject.

use std::fmt;

use crate::onnx_external::{check_self_contained, ExternalReference};
use crate::onnx_proto::{data_type, Dim, ModelProto, OnnxError, TensorInfo};
use crate::preprocess::{Preprocess, ResizeMode, PIPELINE_VERSION};
use crate::resize::FILTER;
use ics_codes::code::{check_bits, parse_hex, to_hex};
use ics_codes::echo::echo;

/// Prefix of every contract key.
pub const PREFIX: &str = "ics_hash.";
/// The contract version this code writes and reads.
pub const CONTRACT_VERSION: u32 = 1;
/// The only packing convention.
pub const PACKING_SIGN_MSB_FIRST: &str = "sign-msb-first";

/// The metadata keys.
pub mod keys {
    pub const CONTRACT_VERSION: &str = "ics_hash.contract_version";
    pub const BITS: &str = "ics_hash.bits";
    pub const INPUT_KIND: &str = "ics_hash.input_kind";
    pub const INPUT_NAME: &str = "ics_hash.input_name";
    pub const OUTPUT_NAME: &str = "ics_hash.output_name";
    pub const PACKING: &str = "ics_hash.packing";
    pub const CENTRES: &str = "ics_hash.centres";
    pub const TRAINER_VERSION: &str = "ics_hash.trainer_version";
    pub const CONFIG_SHA256: &str = "ics_hash.config_sha256";
    pub const BACKBONE: &str = "ics_hash.backbone";
    pub const IMAGE_SIZE: &str = "ics_hash.image_size";
    pub const CHANNEL_ORDER: &str = "ics_hash.channel_order";
    pub const LAYOUT: &str = "ics_hash.layout";
    pub const RESIZE: &str = "ics_hash.resize";
    pub const RESIZE_FILTER: &str = "ics_hash.resize_filter";
    pub const PREPROCESS_VERSION: &str = "ics_hash.preprocess_version";
    pub const NORM_MEAN: &str = "ics_hash.norm_mean";
    pub const NORM_STD: &str = "ics_hash.norm_std";
    pub const FEATURE_DIM: &str = "ics_hash.feature_dim";

    /// Keys that only image models carry.
    pub const IMAGE_ONLY: [&str; 8] = [
        IMAGE_SIZE,
        CHANNEL_ORDER,
        LAYOUT,
        RESIZE,
        RESIZE_FILTER,
        PREPROCESS_VERSION,
        NORM_MEAN,
        NORM_STD,
    ];
}

/// What the model takes as input.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelInput {
    /// Encoded images, preprocessed as described; graph input `N x 3 x S x S`.
    Image(Preprocess),
    /// Feature vectors of `dim` values; graph input `N x dim`.
    Features { dim: usize },
}

impl ModelInput {
    /// `image` or `features`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelInput::Image(_) => "image",
            ModelInput::Features { .. } => "features",
        }
    }

    /// Values per item fed to the graph.
    pub fn item_len(&self) -> usize {
        match self {
            ModelInput::Image(p) => p.output_len(),
            ModelInput::Features { dim } => *dim,
        }
    }

    /// The graph input's shape with a symbolic batch dimension `N`.
    pub fn graph_shape(&self) -> Vec<Dim> {
        let n = Dim::Symbolic("N".into());
        match self {
            ModelInput::Image(p) => {
                let s = i64::from(p.size);
                vec![n, Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)]
            }
            ModelInput::Features { dim } => vec![n, Dim::Fixed(*dim as i64)],
        }
    }
}

/// The contract of an exported model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    /// Code length K.
    pub bits: usize,
    pub input: ModelInput,
    pub input_name: String,
    pub output_name: String,
    /// Class centres as packed codes of `bits / 8` bytes each, class order.
    pub centres: Vec<Vec<u8>>,
    pub trainer_version: String,
    /// 64 lowercase hex digits.
    pub config_sha256: String,
    pub backbone: Option<String>,
}

/// Why metadata (or a model) does not satisfy the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContractError {
    /// A required key is absent.
    Missing { key: String },
    /// A key appears more than once.
    Duplicate { key: String },
    /// A key's value is malformed or out of range.
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// A key that does not apply to this input kind (e.g. `image_size` on a feature model).
    NotApplicable { key: String, kind: String },
    /// The model's graph does not match its metadata.
    Graph(String),
    /// The bytes are not a readable ONNX model.
    Onnx(OnnxError),
    /// The model refers to data outside its bytes (a file, a memory address).
    External(ExternalReference),
    /// The bytes carry ONNX Runtime's own format marker (`ORTM` at offset 4): ONNX Runtime
    /// would run the ORT-format graph they also hold instead of the ONNX graph checked here.
    OrtFormat,
}

impl fmt::Display for ContractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContractError::Missing { key } => {
                write!(f, "model metadata lacks the required key \"{key}\"")
            }
            ContractError::Duplicate { key } => {
                write!(f, "model metadata has the key \"{key}\" more than once")
            }
            ContractError::Invalid { key, value, reason } => {
                write!(
                    f,
                    "model metadata \"{key}\" = \"{}\" is invalid: {reason}",
                    echo(value)
                )
            }
            ContractError::NotApplicable { key, kind } => write!(
                f,
                "model metadata \"{key}\" does not apply to a model whose input kind is {kind}"
            ),
            ContractError::Graph(reason) => {
                write!(f, "model graph does not match its metadata: {reason}")
            }
            ContractError::Onnx(e) => write!(f, "{e}"),
            ContractError::External(e) => write!(f, "{e}"),
            ContractError::OrtFormat => write!(
                f,
                "bytes 4-7 of the model are \"ORTM\", the marker of ONNX Runtime's own model format, which ONNX Runtime would load instead of the ONNX graph"
            ),
        }
    }
}

impl std::error::Error for ContractError {}

impl From<ExternalReference> for ContractError {
    fn from(e: ExternalReference) -> Self {
        ContractError::External(e)
    }
}

impl From<OnnxError> for ContractError {
    fn from(e: OnnxError) -> Self {
        ContractError::Onnx(e)
    }
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ContractError {
    ContractError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

fn join_f32(v: &[f32; 3]) -> String {
    // `{}` prints the shortest text that parses back to the same f32.
    format!("{},{},{}", v[0], v[1], v[2])
}

fn parse_f32x3(key: &str, value: &str) -> Result<[f32; 3], ContractError> {
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        return Err(invalid(
            key,
            value,
            "expected three comma-separated numbers R,G,B",
        ));
    }
    let mut out = [0f32; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p
            .parse::<f32>()
            .map_err(|_| invalid(key, value, format!("\"{p}\" is not a number")))?;
        if !o.is_finite() {
            return Err(invalid(key, value, "numbers must be finite"));
        }
    }
    Ok(out)
}

fn parse_usize(key: &str, value: &str) -> Result<usize, ContractError> {
    value
        .parse::<usize>()
        .map_err(|_| invalid(key, value, "not a non-negative integer"))
}

/// Comma-separated hex codes, or a JSON array of hex strings.
fn parse_centres(value: &str, bits: usize) -> Result<Vec<Vec<u8>>, ContractError> {
    let key = keys::CENTRES;
    let trimmed = value.trim();
    let list = match trimmed.strip_prefix('[') {
        Some(rest) => rest
            .strip_suffix(']')
            .ok_or_else(|| invalid(key, value, "JSON array without a closing ]"))?,
        None => trimmed,
    };
    if list.trim().is_empty() {
        return Err(invalid(key, value, "no centres"));
    }
    list.split(',')
        .enumerate()
        .map(|(i, item)| {
            let item = item.trim();
            let item = match item.strip_prefix('"') {
                Some(rest) => rest.strip_suffix('"').ok_or_else(|| {
                    invalid(key, value, format!("centre {i}: unterminated string"))
                })?,
                None => item,
            };
            let code =
                parse_hex(item).map_err(|e| invalid(key, value, format!("centre {i}: {e}")))?;
            if code.len() * 8 != bits {
                return Err(invalid(
                    key,
                    value,
                    format!(
                        "centre {i} has {} bits, the model has {bits}",
                        code.len() * 8
                    ),
                ));
            }
            Ok(code)
        })
        .collect()
}

/// Looks keys up in metadata, rejecting duplicates of contract keys.
struct Lookup<'a> {
    pairs: &'a [(String, String)],
}

impl<'a> Lookup<'a> {
    fn new(pairs: &'a [(String, String)]) -> Result<Self, ContractError> {
        for (i, (k, _)) in pairs.iter().enumerate() {
            if k.starts_with(PREFIX) && pairs[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(ContractError::Duplicate { key: k.clone() });
            }
        }
        Ok(Lookup { pairs })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn req(&self, key: &str) -> Result<&'a str, ContractError> {
        self.get(key).ok_or_else(|| ContractError::Missing {
            key: key.to_string(),
        })
    }

    /// A required key that must hold exactly `expected`.
    fn fixed(&self, key: &str, expected: &str) -> Result<(), ContractError> {
        let v = self.req(key)?;
        if v == expected {
            Ok(())
        } else {
            Err(invalid(key, v, format!("only \"{expected}\" is supported")))
        }
    }

    fn name(&self, key: &str) -> Result<String, ContractError> {
        let v = self.req(key)?;
        if v.is_empty() {
            return Err(invalid(key, v, "empty name"));
        }
        Ok(v.to_string())
    }
}

impl ModelContract {
    /// Checks every field: valid bit length, at least one centre of that length, input
    /// parameters, non-empty names and trainer version, a sha256 in hex.
    pub fn validate(&self) -> Result<(), ContractError> {
        // Round-tripping through the metadata runs every check in one place.
        let back = Self::from_metadata(&self.to_metadata())?;
        debug_assert_eq!(back, *self, "the metadata encoding must be lossless");
        Ok(())
    }

    /// The metadata entries, in a fixed order.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut md: Vec<(&str, String)> = vec![
            (keys::CONTRACT_VERSION, CONTRACT_VERSION.to_string()),
            (keys::BITS, self.bits.to_string()),
            (keys::INPUT_KIND, self.input.kind().to_string()),
            (keys::INPUT_NAME, self.input_name.clone()),
            (keys::OUTPUT_NAME, self.output_name.clone()),
            (keys::PACKING, PACKING_SIGN_MSB_FIRST.to_string()),
        ];
        match &self.input {
            ModelInput::Image(p) => md.extend([
                (keys::IMAGE_SIZE, p.size.to_string()),
                (keys::CHANNEL_ORDER, "RGB".to_string()),
                (keys::LAYOUT, "NCHW".to_string()),
                (keys::RESIZE, p.resize.as_str().to_string()),
                (keys::RESIZE_FILTER, FILTER.to_string()),
                (keys::PREPROCESS_VERSION, PIPELINE_VERSION.to_string()),
                (keys::NORM_MEAN, join_f32(&p.mean)),
                (keys::NORM_STD, join_f32(&p.std)),
            ]),
            ModelInput::Features { dim } => md.push((keys::FEATURE_DIM, dim.to_string())),
        }
        md.push((
            keys::CENTRES,
            self.centres
                .iter()
                .map(|c| to_hex(c))
                .collect::<Vec<_>>()
                .join(","),
        ));
        md.push((keys::TRAINER_VERSION, self.trainer_version.clone()));
        md.push((keys::CONFIG_SHA256, self.config_sha256.clone()));
        if let Some(b) = &self.backbone {
            md.push((keys::BACKBONE, b.clone()));
        }
        md.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// Parses and validates a contract from metadata pairs (other keys are ignored).
    pub fn from_metadata(pairs: &[(String, String)]) -> Result<Self, ContractError> {
        let md = Lookup::new(pairs)?;
        let version = md.req(keys::CONTRACT_VERSION)?;
        if version != CONTRACT_VERSION.to_string() {
            return Err(invalid(
                keys::CONTRACT_VERSION,
                version,
                format!("this ics_hash reads contract version {CONTRACT_VERSION}"),
            ));
        }
        let bits_text = md.req(keys::BITS)?;
        let bits = parse_usize(keys::BITS, bits_text)?;
        check_bits(bits).map_err(|e| invalid(keys::BITS, bits_text, e.to_string()))?;
        md.fixed(keys::PACKING, PACKING_SIGN_MSB_FIRST)?;

        let kind = md.req(keys::INPUT_KIND)?;
        let input = match kind {
            "image" => {
                let size_text = md.req(keys::IMAGE_SIZE)?;
                let size = size_text
                    .parse::<u32>()
                    .map_err(|_| invalid(keys::IMAGE_SIZE, size_text, "not an integer"))?;
                md.fixed(keys::CHANNEL_ORDER, "RGB")?;
                md.fixed(keys::LAYOUT, "NCHW")?;
                md.fixed(keys::RESIZE_FILTER, FILTER)?;
                md.fixed(keys::PREPROCESS_VERSION, &PIPELINE_VERSION.to_string())?;
                let resize_text = md.req(keys::RESIZE)?;
                let resize = ResizeMode::parse(resize_text).ok_or_else(|| {
                    invalid(
                        keys::RESIZE,
                        resize_text,
                        "expected shorter-side-center-crop or stretch",
                    )
                })?;
                let mean = parse_f32x3(keys::NORM_MEAN, md.req(keys::NORM_MEAN)?)?;
                let std_text = md.req(keys::NORM_STD)?;
                let std = parse_f32x3(keys::NORM_STD, std_text)?;
                let p = Preprocess {
                    size,
                    resize,
                    mean,
                    std,
                };
                if let Err(e) = p.validate() {
                    // size and std are the fields validate can reject once parsed.
                    let (key, value) = if std.iter().any(|s| *s <= 0.0) {
                        (keys::NORM_STD, std_text)
                    } else {
                        (keys::IMAGE_SIZE, size_text)
                    };
                    return Err(invalid(key, value, e.to_string()));
                }
                if md.get(keys::FEATURE_DIM).is_some() {
                    return Err(ContractError::NotApplicable {
                        key: keys::FEATURE_DIM.into(),
                        kind: kind.into(),
                    });
                }
                ModelInput::Image(p)
            }
            "features" => {
                let dim_text = md.req(keys::FEATURE_DIM)?;
                let dim = parse_usize(keys::FEATURE_DIM, dim_text)?;
                if dim == 0 {
                    return Err(invalid(keys::FEATURE_DIM, dim_text, "must be at least 1"));
                }
                if let Some(key) = keys::IMAGE_ONLY.iter().find(|k| md.get(k).is_some()) {
                    return Err(ContractError::NotApplicable {
                        key: key.to_string(),
                        kind: kind.into(),
                    });
                }
                ModelInput::Features { dim }
            }
            other => {
                return Err(invalid(
                    keys::INPUT_KIND,
                    other,
                    "expected \"image\" or \"features\"",
                ))
            }
        };

        let centres = parse_centres(md.req(keys::CENTRES)?, bits)?;
        let trainer_version = md.name(keys::TRAINER_VERSION)?;
        let sha = md.req(keys::CONFIG_SHA256)?;
        if sha.len() != 64
            || !sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid(
                keys::CONFIG_SHA256,
                sha,
                "expected 64 lowercase hex digits",
            ));
        }
        Ok(ModelContract {
            bits,
            input,
            input_name: md.name(keys::INPUT_NAME)?,
            output_name: md.name(keys::OUTPUT_NAME)?,
            centres,
            trainer_version,
            config_sha256: sha.to_string(),
            backbone: md.get(keys::BACKBONE).map(str::to_string),
        })
    }

    /// Checks that the graph has the declared input (the only one to feed) and output, of type
    /// float and of compatible shapes: fixed dimensions must match, symbolic ones pass.
    pub fn check_graph(&self, model: &ModelProto) -> Result<(), ContractError> {
        let graph = model.graph()?;
        let feeds = graph.feed_inputs();
        let input = feeds
            .iter()
            .find(|i| i.name == self.input_name)
            .ok_or_else(|| {
                ContractError::Graph(format!(
                    "no graph input \"{}\" (inputs: {})",
                    self.input_name,
                    names(&feeds)
                ))
            })?;
        if feeds.len() != 1 {
            return Err(ContractError::Graph(format!(
                "the graph needs {} inputs ({}), the contract feeds only \"{}\"",
                feeds.len(),
                names(&feeds),
                self.input_name
            )));
        }
        check_tensor(input, &self.input.graph_shape(), "input")?;
        let outputs = graph.outputs();
        let output = outputs
            .iter()
            .find(|o| o.name == self.output_name)
            .ok_or_else(|| {
                ContractError::Graph(format!(
                    "no graph output \"{}\" (outputs: {})",
                    self.output_name,
                    names(&outputs)
                ))
            })?;
        let want = [Dim::Symbolic("N".into()), Dim::Fixed(self.bits as i64)];
        check_tensor(output, &want, "output")
    }

    /// Decodes ONNX bytes, proves they are self-contained (no external data: see
    /// [`crate::onnx_external`]), parses the contract from their metadata and checks the graph
    /// against it: everything a model loader needs before accepting a model.
    pub fn from_onnx(bytes: &[u8]) -> Result<(Self, ModelProto), ContractError> {
        // Sessions are built with the ONNX format forced (crate::runtime), but bytes that two
        // parsers read as two different models are refused outright.
        if has_ort_format_marker(bytes) {
            return Err(ContractError::OrtFormat);
        }
        let model = ModelProto::from_bytes(bytes)?;
        check_self_contained(bytes)?;
        let contract = Self::from_metadata(&model.metadata())?;
        contract.check_graph(&model)?;
        Ok((contract, model))
    }
}

/// Whether ONNX Runtime would take `bytes` for an ORT-format model when left to guess: its
/// test is the FlatBuffers file identifier `ORTM` at offset 4.
pub fn has_ort_format_marker(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"ORTM")
}

fn names(infos: &[TensorInfo]) -> String {
    if infos.is_empty() {
        return "none".into();
    }
    infos
        .iter()
        .map(|i| format!("\"{}\"", i.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `want`'s first dimension is the batch and matches anything.
fn check_tensor(info: &TensorInfo, want: &[Dim], role: &str) -> Result<(), ContractError> {
    if info.elem_type != Some(data_type::FLOAT) {
        return Err(ContractError::Graph(format!(
            "{role} \"{}\" has element type {:?}, expected float (1)",
            info.name, info.elem_type
        )));
    }
    let Some(shape) = &info.shape else {
        return Ok(());
    };
    let show = |s: &[Dim]| {
        s.iter()
            .map(|d| match d {
                Dim::Fixed(n) => n.to_string(),
                Dim::Symbolic(p) => p.clone(),
                Dim::Unknown => "?".into(),
            })
            .collect::<Vec<_>>()
            .join("x")
    };
    let mismatch = shape.len() != want.len()
        || shape
            .iter()
            .zip(want)
            .skip(1)
            .any(|(got, want)| matches!((got, want), (Dim::Fixed(g), Dim::Fixed(w)) if g != w));
    if mismatch {
        return Err(ContractError::Graph(format!(
            "{role} \"{}\" has shape {}, the contract says {}",
            info.name,
            show(shape),
            show(want)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{GraphProto, NodeProto, ValueInfoProto};

    fn image_contract() -> ModelContract {
        ModelContract {
            bits: 16,
            input: ModelInput::Image(Preprocess::efficientnet_lite(224)),
            input_name: "image".into(),
            output_name: "hash".into(),
            centres: vec![vec![0x8f, 0x3a], vec![0x00, 0xff]],
            trainer_version: "0.1.0".into(),
            config_sha256: "ab".repeat(32),
            backbone: Some("efficientnet-lite0".into()),
        }
    }

    fn feature_contract() -> ModelContract {
        ModelContract {
            input: ModelInput::Features { dim: 1280 },
            input_name: "features".into(),
            backbone: None,
            ..image_contract()
        }
    }

    fn with(md: &[(String, String)], key: &str, value: Option<&str>) -> Vec<(String, String)> {
        let mut out: Vec<_> = md.iter().filter(|(k, _)| k != key).cloned().collect();
        if let Some(v) = value {
            out.push((key.to_string(), v.to_string()));
        }
        out
    }

    #[test]
    fn round_trips() {
        for c in [image_contract(), feature_contract()] {
            let md = c.to_metadata();
            assert!(md.iter().all(|(k, _)| k.starts_with(PREFIX)));
            assert_eq!(ModelContract::from_metadata(&md).unwrap(), c);
            c.validate().unwrap();
        }
        let odd = ModelContract {
            input: ModelInput::Image(Preprocess {
                size: 128,
                resize: ResizeMode::Stretch,
                mean: [123.675, 116.28, 103.53],
                std: [58.395, 57.12, 57.375],
            }),
            ..image_contract()
        };
        assert_eq!(
            ModelContract::from_metadata(&odd.to_metadata()).unwrap(),
            odd
        );
    }

    #[test]
    fn known_values_are_written() {
        let md = image_contract().to_metadata();
        let get = |k: &str| md.iter().find(|(key, _)| key == k).unwrap().1.as_str();
        assert_eq!(get(keys::CENTRES), "8f3a,00ff");
        assert_eq!(get(keys::NORM_MEAN), "127,127,127");
        assert_eq!(get(keys::PACKING), "sign-msb-first");
        assert_eq!(get(keys::RESIZE), "shorter-side-center-crop");
        assert_eq!(get(keys::IMAGE_SIZE), "224");
    }

    #[test]
    fn other_keys_are_ignored_and_json_centres_read() {
        let c = image_contract();
        let mut md = with(
            &c.to_metadata(),
            keys::CENTRES,
            Some(r#"[ "8F3A", "00ff" ]"#),
        );
        md.push(("producer".into(), "x".into()));
        md.push(("ics_hash.future_key".into(), "y".into()));
        assert_eq!(ModelContract::from_metadata(&md).unwrap(), c);
    }

    #[test]
    fn missing_keys() {
        let md = image_contract().to_metadata();
        for (key, _) in &md {
            let result = ModelContract::from_metadata(&with(&md, key, None));
            if key == keys::BACKBONE {
                assert!(result.is_ok());
            } else {
                assert_eq!(
                    result,
                    Err(ContractError::Missing { key: key.clone() }),
                    "{key}"
                );
            }
        }
    }

    #[test]
    fn duplicate_key() {
        let mut md = image_contract().to_metadata();
        md.push((keys::BITS.into(), "16".into()));
        let err = ModelContract::from_metadata(&md).unwrap_err();
        assert_eq!(
            err,
            ContractError::Duplicate {
                key: keys::BITS.into()
            }
        );
        assert!(err.to_string().contains("more than once"));
    }

    #[test]
    fn bad_values() {
        let md = image_contract().to_metadata();
        let cases: &[(&str, &str)] = &[
            (keys::CONTRACT_VERSION, "2"),
            (keys::BITS, "12"),
            (keys::BITS, "sixteen"),
            (keys::BITS, "0"),
            (keys::PACKING, "sign-lsb-first"),
            (keys::INPUT_KIND, "audio"),
            (keys::IMAGE_SIZE, "0"),
            (keys::IMAGE_SIZE, "-3"),
            (keys::CHANNEL_ORDER, "BGR"),
            (keys::LAYOUT, "NHWC"),
            (keys::RESIZE, "bicubic"),
            (keys::RESIZE_FILTER, "lanczos3"),
            (keys::PREPROCESS_VERSION, "0"),
            (keys::NORM_MEAN, "127,127"),
            (keys::NORM_MEAN, "127,x,127"),
            (keys::NORM_MEAN, "127,inf,127"),
            (keys::NORM_STD, "128,0,128"),
            (keys::CENTRES, ""),
            (keys::CENTRES, "8f3a,00f"),
            (keys::CENTRES, "8f3a,00ff00"),
            (keys::CENTRES, "8f3a,zz00"),
            (keys::CENTRES, "[\"8f3a\""),
            (keys::TRAINER_VERSION, ""),
            (keys::CONFIG_SHA256, "abc"),
            (keys::CONFIG_SHA256, &"AB".repeat(32)),
            (keys::INPUT_NAME, ""),
        ];
        for (key, value) in cases {
            let err = ModelContract::from_metadata(&with(&md, key, Some(value))).unwrap_err();
            match &err {
                ContractError::Invalid {
                    key: k, value: v, ..
                } => {
                    assert_eq!((k.as_str(), v.as_str()), (*key, *value), "{err}")
                }
                other => panic!("{key}={value}: expected Invalid, got {other:?}"),
            }
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn kind_specific_keys() {
        let md = feature_contract().to_metadata();
        let err =
            ModelContract::from_metadata(&with(&md, keys::IMAGE_SIZE, Some("224"))).unwrap_err();
        assert!(
            matches!(err, ContractError::NotApplicable { ref key, .. } if key == keys::IMAGE_SIZE)
        );
        assert!(matches!(
            ModelContract::from_metadata(&with(&md, keys::FEATURE_DIM, Some("0"))),
            Err(ContractError::Invalid { .. })
        ));
        let md = image_contract().to_metadata();
        assert!(matches!(
            ModelContract::from_metadata(&with(&md, keys::FEATURE_DIM, Some("7"))),
            Err(ContractError::NotApplicable { .. })
        ));
    }

    fn model_for(c: &ModelContract, input: ValueInfoProto, output: ValueInfoProto) -> ModelProto {
        let mut m = ModelProto {
            graph: Some(GraphProto {
                node: vec![NodeProto {
                    input: vec![input.name.clone()],
                    output: vec![output.name.clone()],
                    op_type: "Identity".into(),
                    ..Default::default()
                }],
                input: vec![input],
                output: vec![output],
                ..Default::default()
            }),
            ..Default::default()
        };
        m.set_metadata(&c.to_metadata());
        m
    }

    #[test]
    fn graph_checks() {
        let c = image_contract();
        let n = || Dim::Symbolic("batch".into());
        let good_in = ValueInfoProto::tensor(
            "image",
            data_type::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Fixed(224), Dim::Fixed(224)],
        );
        let good_out = ValueInfoProto::tensor("hash", data_type::FLOAT, &[n(), Dim::Fixed(16)]);
        let m = model_for(&c, good_in.clone(), good_out.clone());
        c.check_graph(&m).unwrap();
        let (back, _) = ModelContract::from_onnx(&m.to_bytes()).unwrap();
        assert_eq!(back, c);

        let bad_cases = [
            // wrong input name, size, element type; wrong output bits, name, rank
            model_for(
                &c,
                ValueInfoProto {
                    name: "img".into(),
                    ..good_in.clone()
                },
                good_out.clone(),
            ),
            model_for(
                &c,
                ValueInfoProto::tensor(
                    "image",
                    data_type::FLOAT,
                    &[n(), Dim::Fixed(3), Dim::Fixed(128), Dim::Fixed(128)],
                ),
                good_out.clone(),
            ),
            model_for(
                &c,
                ValueInfoProto::tensor(
                    "image",
                    data_type::UINT8,
                    &[n(), Dim::Fixed(3), Dim::Fixed(224), Dim::Fixed(224)],
                ),
                good_out.clone(),
            ),
            model_for(
                &c,
                good_in.clone(),
                ValueInfoProto::tensor("hash", data_type::FLOAT, &[n(), Dim::Fixed(32)]),
            ),
            model_for(
                &c,
                good_in.clone(),
                ValueInfoProto {
                    name: "codes".into(),
                    ..good_out.clone()
                },
            ),
            model_for(
                &c,
                good_in.clone(),
                ValueInfoProto::tensor("hash", data_type::FLOAT, &[Dim::Fixed(16)]),
            ),
        ];
        for m in &bad_cases {
            let err = c.check_graph(m).unwrap_err();
            assert!(matches!(err, ContractError::Graph(_)), "{err:?}");
        }
        // A second input to feed is a mismatch too.
        let mut two = model_for(&c, good_in.clone(), good_out.clone());
        two.graph
            .as_mut()
            .unwrap()
            .input
            .push(ValueInfoProto::tensor("extra", data_type::FLOAT, &[n()]));
        assert!(matches!(c.check_graph(&two), Err(ContractError::Graph(_))));
        // Symbolic spatial dimensions are compatible.
        let free = ValueInfoProto::tensor(
            "image",
            data_type::FLOAT,
            &[n(), Dim::Fixed(3), Dim::Symbolic("h".into()), Dim::Unknown],
        );
        c.check_graph(&model_for(&c, free, good_out)).unwrap();
    }

    #[test]
    fn ort_format_marker_is_refused() {
        let plain = crate::test_models::features_model();
        let bytes = crate::test_models::ort_format_features_model();
        assert_eq!(&bytes[4..8], b"ORTM");
        // Both views are valid: protobuf sees the same model.
        assert_eq!(
            ModelProto::from_bytes(&bytes).unwrap(),
            ModelProto::from_bytes(&plain).unwrap()
        );
        assert!(ModelContract::from_onnx(&plain).is_ok());
        let err = ModelContract::from_onnx(&bytes).unwrap_err();
        assert_eq!(err, ContractError::OrtFormat);
        assert!(err.to_string().contains("ORTM"), "{err}");
        assert!(!has_ort_format_marker(b"\x08\x07ORTM"));
    }

    #[test]
    fn onnx_errors() {
        assert!(matches!(
            ModelContract::from_onnx(b"\xff\xff\xff"),
            Err(ContractError::Onnx(OnnxError::Decode(_)))
        ));
        // A valid ONNX model without our metadata.
        let m = ModelProto {
            graph: Some(GraphProto::default()),
            ..Default::default()
        };
        assert_eq!(
            ModelContract::from_onnx(&m.to_bytes()).unwrap_err(),
            ContractError::Missing {
                key: keys::CONTRACT_VERSION.into()
            }
        );
    }
}
