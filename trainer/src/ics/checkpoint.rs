//! Training checkpoints: everything the loop carries from one epoch to the next, so that a
//! run resumed from the checkpoint of epoch `e` continues exactly as the unbroken run would
//! (same shuffles, same dropout masks, same augmentation, same optimiser moments).
//!
//! A checkpoint is a safetensors file (`checkpoint.icsc` in the checkpoint folder), written
//! after each epoch through a temporary file and a rename, so an interrupted write leaves the
//! previous checkpoint intact:
//!
//! | tensor | dtype | |
//! |---|---|---|
//! | `head.{i}.weight`, `head.{i}.bias` | F32 | the head's layers |
//! | `adam.m.{i}`, `adam.v.{i}` | F32 | the head optimiser's moments |
//! | `instance_weights` | F64 | (images, classes) |
//! | `source.{name}` | F32 | the feature source's state (a fine-tuned backbone and its optimiser) |
//!
//! The `__metadata__` key `ics_train.checkpoint` holds the JSON of [`Meta`]: the format and
//! version, the completed epochs, the configuration, the run's fingerprint (data and source),
//! the shuffle order and the random streams' positions, the head optimiser's step count, the
//! history and the source's own JSON.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ndarray::{Array1, Array2};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use super::adam::AdamState;
use super::config::TrainConfig;
use super::head::{HashHead, Linear};
use super::model::EpochLog;
use super::source::SourceState;

/// The `format` every checkpoint names.
pub const FORMAT: &str = "ics-train checkpoint";
/// The version this trainer writes and reads.
pub const FORMAT_VERSION: u32 = 1;
const METADATA_KEY: &str = "ics_train.checkpoint";
/// The file name inside the checkpoint folder.
pub const FILE_NAME: &str = "checkpoint.icsc";

/// Where and how often to checkpoint, and whether to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpointing {
    pub dir: PathBuf,
    /// Write a checkpoint after every this many epochs (and after the last).
    pub every: usize,
    /// Continue from the folder's checkpoint (an error when there is none).
    pub resume: bool,
}

impl Checkpointing {
    /// The checkpoint file.
    pub fn file(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }
}

/// The loop's state after `epochs_done` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub epochs_done: usize,
    pub config: TrainConfig,
    /// Data and source identity ([`super::source::FeatureSource::fingerprint`] and labels).
    pub fingerprint: String,
    pub head: HashHead<f32>,
    pub adam: AdamState<f32>,
    /// Instance weights (images, classes).
    pub weights: Array2<f64>,
    /// The training order after the last shuffle (the next epoch shuffles it again).
    pub order: Vec<usize>,
    pub shuffle_word_pos: u128,
    pub dropout_word_pos: u128,
    pub history: Vec<EpochLog>,
    pub source: SourceState,
}

/// The JSON description in the header.
#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    format_version: u32,
    epochs_done: usize,
    config: TrainConfig,
    fingerprint: String,
    head_layers: usize,
    head_dropout: f64,
    adam_steps: i32,
    order: Vec<usize>,
    /// u128 as decimal text (JSON numbers are not that wide).
    shuffle_word_pos: String,
    dropout_word_pos: String,
    history: Vec<EpochLog>,
    source_json: serde_json::Value,
    source_tensors: Vec<String>,
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

impl Checkpoint {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta = Meta {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            epochs_done: self.epochs_done,
            config: self.config.clone(),
            fingerprint: self.fingerprint.clone(),
            head_layers: self.head.layers().len(),
            head_dropout: self.head.dropout(),
            adam_steps: self.adam.steps,
            order: self.order.clone(),
            shuffle_word_pos: self.shuffle_word_pos.to_string(),
            dropout_word_pos: self.dropout_word_pos.to_string(),
            history: self.history.clone(),
            source_json: self.source.json.clone(),
            source_tensors: self.source.tensors.iter().map(|t| t.0.clone()).collect(),
        };
        let mut tensors: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (i, l) in self.head.layers().iter().enumerate() {
            let w = l.weight().as_standard_layout();
            tensors.push((
                format!("head.{i}.weight"),
                Dtype::F32,
                vec![l.inputs(), l.outputs()],
                f32_bytes(w.as_slice().expect("standard layout")),
            ));
            tensors.push((
                format!("head.{i}.bias"),
                Dtype::F32,
                vec![l.outputs()],
                f32_bytes(&l.bias().to_vec()),
            ));
        }
        for (i, (m, v)) in self.adam.m.iter().zip(&self.adam.v).enumerate() {
            tensors.push((
                format!("adam.m.{i}"),
                Dtype::F32,
                vec![m.len()],
                f32_bytes(m),
            ));
            tensors.push((
                format!("adam.v.{i}"),
                Dtype::F32,
                vec![v.len()],
                f32_bytes(v),
            ));
        }
        tensors.push((
            "instance_weights".into(),
            Dtype::F64,
            vec![self.weights.nrows(), self.weights.ncols()],
            self.weights.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ));
        for (name, shape, values) in &self.source.tensors {
            ensure!(
                shape.iter().product::<usize>() == values.len(),
                "source tensor {name}: shape {shape:?} for {} values",
                values.len()
            );
            tensors.push((
                format!("source.{name}"),
                Dtype::F32,
                shape.clone(),
                f32_bytes(values),
            ));
        }
        let views = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.as_str(), v))
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let metadata = HashMap::from([(METADATA_KEY.to_string(), serde_json::to_string(&meta)?)]);
        safetensors::serialize(views, Some(metadata)).map_err(|e| anyhow::anyhow!("{e:?}"))
    }

    /// Parses a checkpoint's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| anyhow::anyhow!("not a checkpoint file ({e:?})"))?;
        let text = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .context("not an ics-train checkpoint (no description)")?;
        let meta: Meta = serde_json::from_str(text).context("damaged checkpoint description")?;
        ensure!(
            meta.format == FORMAT && meta.format_version == FORMAT_VERSION,
            "checkpoint format {:?} version {}; this ics-train reads {FORMAT:?} version \
             {FORMAT_VERSION}",
            meta.format,
            meta.format_version
        );
        let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let get = |name: &str, dtype: Dtype| -> Result<TensorView<'_>> {
            let t = st
                .tensor(name)
                .map_err(|_| anyhow::anyhow!("damaged checkpoint: no tensor {name}"))?;
            ensure!(
                t.dtype() == dtype,
                "damaged checkpoint: {name} is {:?}",
                t.dtype()
            );
            Ok(t)
        };
        let mut layers = Vec::with_capacity(meta.head_layers);
        for i in 0..meta.head_layers {
            let w = get(&format!("head.{i}.weight"), Dtype::F32)?;
            let b = get(&format!("head.{i}.bias"), Dtype::F32)?;
            ensure!(w.shape().len() == 2, "damaged checkpoint: head.{i}.weight");
            layers.push(Linear::new(
                Array2::from_shape_vec((w.shape()[0], w.shape()[1]), f32s(w.data()))?,
                Array1::from_vec(f32s(b.data())),
            )?);
        }
        let head = HashHead::from_layers(layers, meta.head_dropout)?;
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for i in 0..2 * meta.head_layers {
            m.push(f32s(get(&format!("adam.m.{i}"), Dtype::F32)?.data()));
            v.push(f32s(get(&format!("adam.v.{i}"), Dtype::F32)?.data()));
        }
        let w = get("instance_weights", Dtype::F64)?;
        ensure!(w.shape().len() == 2, "damaged checkpoint: instance_weights");
        let weights = Array2::from_shape_vec(
            (w.shape()[0], w.shape()[1]),
            w.data()
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        )?;
        let mut tensors = Vec::new();
        for name in &meta.source_tensors {
            let t = get(&format!("source.{name}"), Dtype::F32)?;
            tensors.push((name.clone(), t.shape().to_vec(), f32s(t.data())));
        }
        let pos = |s: &str| -> Result<u128> {
            s.parse()
                .with_context(|| format!("damaged checkpoint: random stream position {s:?}"))
        };
        Ok(Checkpoint {
            epochs_done: meta.epochs_done,
            config: meta.config,
            fingerprint: meta.fingerprint,
            head,
            adam: AdamState {
                steps: meta.adam_steps,
                m,
                v,
            },
            weights,
            order: meta.order,
            shuffle_word_pos: pos(&meta.shuffle_word_pos)?,
            dropout_word_pos: pos(&meta.dropout_word_pos)?,
            history: meta.history,
            source: SourceState {
                tensors,
                json: meta.source_json,
            },
        })
    }

    /// Writes the checkpoint to `path` through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        crate::files::write_atomically(path, |w| w.write_all(&bytes))
    }

    /// Reads a checkpoint file; errors name the file.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "no checkpoint to resume: {} does not exist (run without --resume to start)",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_bytes(&bytes).with_context(|| format!("checkpoint {}", path.display()))
    }

    /// Checks the checkpoint belongs to a run of `config` on data with `fingerprint`: the
    /// same configuration apart from `epochs` and `eval_every` (a run may be extended), the
    /// same data and source, and not past `config.epochs`.
    pub fn check_resumes(&self, config: &TrainConfig, fingerprint: &str) -> Result<()> {
        let comparable = |c: &TrainConfig| TrainConfig {
            epochs: 0,
            eval_every: 1,
            ..c.clone()
        };
        if comparable(&self.config) != comparable(config) {
            let a = serde_json::to_value(comparable(&self.config))?;
            let b = serde_json::to_value(comparable(config))?;
            let null = serde_json::Value::Null;
            let keys: std::collections::BTreeSet<&String> = a
                .as_object()
                .into_iter()
                .chain(b.as_object())
                .flat_map(|o| o.keys())
                .collect();
            let differ: Vec<String> = keys
                .into_iter()
                .filter(|k| a.get(k.as_str()) != b.get(k.as_str()))
                .map(|k| {
                    format!(
                        "{k} (checkpoint {}, now {})",
                        a.get(k.as_str()).unwrap_or(&null),
                        b.get(k.as_str()).unwrap_or(&null)
                    )
                })
                .collect();
            bail!(
                "the checkpoint was written by a run with another configuration: {}",
                differ.join(", ")
            );
        }
        ensure!(
            self.fingerprint == fingerprint,
            "the checkpoint was written by a run on other data or another backbone"
        );
        ensure!(
            self.epochs_done <= config.epochs,
            "the checkpoint is at epoch {}, past the {} epochs asked for",
            self.epochs_done,
            config.epochs
        );
        Ok(())
    }
}
