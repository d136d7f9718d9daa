//! The model file `train` writes and `eval`/`export` read: the trained head, its centres,
//! per-image weights, configuration and history, plus where its features came from (the
//! backbone file and the data options), so later commands need only this file.
//!
//! Layout: `ICSMODEL` (8 bytes), format version (u32 LE), header length (u64 LE), the header
//! (JSON: everything but the head's numbers), then each layer's weight (in x out, row-major)
//! and bias as f32 LE, in layer order. JSON keeps the description readable with `head -c`;
//! the raw floats keep a 1280 x 1024 head at 5 MB and loading instant.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_train::ics::{Centres, EpochLog, HashHead, IcsModel, InstanceWeights, Linear, TrainConfig};
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::data::DataArgs;

const MAGIC: &[u8; 8] = b"ICSMODEL";
const VERSION: u32 = 1;

/// Where the features a model was trained on came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    /// The backbone file (absolute path when written).
    pub path: PathBuf,
    /// sha256 of the backbone's ONNX bytes as loaded: the feature cache key's first part.
    pub sha256: String,
    pub description: String,
    pub feature_dim: usize,
}

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    trainer_version: String,
    config: TrainConfig,
    /// (inputs, outputs) of each layer.
    layers: Vec<(usize, usize)>,
    dropout: f64,
    centres: Centres,
    weights: InstanceWeights,
    history: Vec<EpochLog>,
    class_names: Vec<String>,
    backbone: Option<BackboneRecord>,
    data: Option<DataArgs>,
}

/// A model with its provenance.
pub struct ModelFile {
    pub model: IcsModel,
    pub class_names: Vec<String>,
    pub backbone: Option<BackboneRecord>,
    pub data: Option<DataArgs>,
}

impl ModelFile {
    /// Writes the file (through a temporary file and a rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let m = &self.model;
        let header = Header {
            format: "ics-train model".into(),
            trainer_version: env!("CARGO_PKG_VERSION").into(),
            config: m.config().clone(),
            layers: m
                .layers()
                .iter()
                .map(|l| (l.inputs(), l.outputs()))
                .collect(),
            dropout: m.head().dropout(),
            centres: m.centres().clone(),
            weights: m.weights().clone(),
            history: m.history().to_vec(),
            class_names: self.class_names.clone(),
            backbone: self.backbone.clone(),
            data: self.data.clone(),
        };
        let json = serde_json::to_vec(&header)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("icsm.tmp");
        {
            let f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(f);
            w.write_all(MAGIC)?;
            w.write_all(&VERSION.to_le_bytes())?;
            w.write_all(&(json.len() as u64).to_le_bytes())?;
            w.write_all(&json)?;
            for l in m.layers() {
                for v in l.weight().iter().chain(l.bias().iter()) {
                    w.write_all(&v.to_le_bytes())?;
                }
            }
            w.flush()
                .with_context(|| format!("writing {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
    }

    /// Reads a model file; errors name the file.
    pub fn load(path: &Path) -> Result<ModelFile> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        Self::parse(&bytes).with_context(|| format!("model file {}", path.display()))
    }

    fn parse(bytes: &[u8]) -> Result<ModelFile> {
        ensure!(
            bytes.len() >= 20 && &bytes[..8] == MAGIC,
            "not an ics-train model file (written by `ics-train train`)"
        );
        let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        ensure!(
            version == VERSION,
            "format version {version}; this ics-train reads version {VERSION}"
        );
        let hlen = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
        let body = &bytes[20..];
        ensure!(hlen <= body.len(), "truncated header");
        let header: Header =
            serde_json::from_slice(&body[..hlen]).context("damaged header (JSON)")?;
        let mut floats = body[hlen..]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")));
        let want: usize = header.layers.iter().map(|(i, o)| i * o + o).sum();
        ensure!(
            (body.len() - hlen) == want * 4,
            "{} bytes of parameters, the header's layers need {}",
            body.len() - hlen,
            want * 4
        );
        let mut layers = Vec::with_capacity(header.layers.len());
        for &(i, o) in &header.layers {
            let w: Vec<f32> = floats.by_ref().take(i * o).collect();
            let b: Vec<f32> = floats.by_ref().take(o).collect();
            layers.push(Linear::new(
                Array2::from_shape_vec((i, o), w)?,
                Array1::from_vec(b),
            )?);
        }
        let head = HashHead::from_layers(layers, header.dropout)?;
        if head.bits() != header.config.bits || header.centres.bits() != header.config.bits {
            bail!(
                "inconsistent: config says {} bits, head {}, centres {}",
                header.config.bits,
                head.bits(),
                header.centres.bits()
            );
        }
        Ok(ModelFile {
            model: IcsModel::new(
                header.config,
                head,
                header.centres,
                header.weights,
                header.history,
            ),
            class_names: header.class_names,
            backbone: header.backbone,
            data: header.data,
        })
    }
}
