//! Training checkpoints: everything the loop carries from one epoch to the next, so that a
//! run resumed from the checkpoint of epoch `e` continues exactly as the unbroken run would
//! (same shuffles, same dropout masks, same augmentation, same optimiser moments).
//!
//! A checkpoint is a tensor file ([`crate::tensorfile`], [`FORMAT`]; `checkpoint.icsc` in
//! the checkpoint folder), written after each epoch through a temporary file and a rename, so
//! an interrupted write leaves the previous checkpoint intact:
//!
//! | tensor | dtype | |
//! |---|---|---|
//! | `head.{i}.weight`, `head.{i}.bias` | F32 | the head's layers |
//! | `adam.m.{i}`, `adam.v.{i}` | F32 | the head optimiser's moments |
//! | `instance_weights` | F64 | (images, classes) |
//! | `source.{name}` | F32 | the feature source's state (a fine-tuned backbone and its optimiser) |
//!
//! Its description (`Meta`) holds the completed epochs, the configuration, the run's
//! fingerprint (data and source), the shuffle order and the random streams' positions, the
//! head optimiser's step count, the history and the source's own JSON.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::adam::AdamState;
use super::config::TrainConfig;
use super::head::{HashHead, Linear};
use super::model::EpochLog;
use super::source::SourceState;
use crate::tensorfile::{Format, Reader, Writer};

/// The checkpoint's format: one version, written and read.
pub const FORMAT: Format = Format {
    name: "ics-train checkpoint",
    key: "ics_train.checkpoint",
    version: 1,
    oldest: 1,
    older_advice: "start the run again without --resume",
};
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

    /// [`Checkpoint::resume_warmup`] of the folder's checkpoint when resuming (nothing when
    /// there is no checkpoint: the training loop says so).
    pub fn resume_warmup(&self, config: &mut TrainConfig) -> Result<Option<String>> {
        if !self.resume || !self.file().is_file() {
            return Ok(None);
        }
        Ok(Checkpoint::load(&self.file())?.resume_warmup(config))
    }
}

/// The warm-up a resumed run continues with when its command line gives none
/// ([`Checkpoint::resume_warmup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumedWarmup {
    /// The checkpoint's warm-up and the run's are the same.
    Same,
    /// The checkpoint's warm-up was clamped to fit a short run, and every epoch done was a
    /// warm-up epoch in both schedules: the run continues with the warm-up it would have had
    /// from the start, and ends exactly where an unbroken run of its configuration ends.
    Run,
    /// Otherwise the run keeps the checkpoint's warm-up, and ends where an unbroken run with
    /// that warm-up (`--warmup-epochs` of the checkpoint) ends.
    Checkpoint,
}

impl ResumedWarmup {
    /// Which warm-up a run continues with: it would warm up for `run` epochs from the start; the
    /// checkpoint was trained with `checkpoint` epochs of warm-up (`clamped`: cut to fit its
    /// short run) and is at `epochs_done`.
    pub fn choose(checkpoint: usize, clamped: bool, epochs_done: usize, run: usize) -> Self {
        if checkpoint == run {
            ResumedWarmup::Same
        } else if clamped && epochs_done <= checkpoint.min(run) {
            ResumedWarmup::Run
        } else {
            ResumedWarmup::Checkpoint
        }
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

/// The description in the header.
#[derive(Serialize, Deserialize)]
struct Meta {
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

impl Checkpoint {
    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let meta = Meta {
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
        let mut file = Writer::new();
        for (i, l) in self.head.layers().iter().enumerate() {
            file.matrix(format!("head.{i}.weight"), l.weight())?;
            file.add(
                format!("head.{i}.bias"),
                &[l.outputs()],
                l.bias().iter().copied(),
            )?;
        }
        for (i, (m, v)) in self.adam.m.iter().zip(&self.adam.v).enumerate() {
            file.add(format!("adam.m.{i}"), &[m.len()], m.iter().copied())?;
            file.add(format!("adam.v.{i}"), &[v.len()], v.iter().copied())?;
        }
        file.matrix("instance_weights", &self.weights)?;
        for (name, shape, values) in &self.source.tensors {
            file.add(format!("source.{name}"), shape, values.iter().copied())?;
        }
        Ok(file.to_bytes(&FORMAT, &meta)?)
    }

    /// Parses a checkpoint's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint> {
        let file = Reader::parse(bytes, &FORMAT)?;
        let meta: Meta = file.description()?;
        let mut layers = Vec::with_capacity(meta.head_layers);
        for i in 0..meta.head_layers {
            layers.push(Linear::new(
                file.matrix(&format!("head.{i}.weight"))?,
                file.vector::<f32>(&format!("head.{i}.bias"))?.into(),
            )?);
        }
        let head = HashHead::from_layers(layers, meta.head_dropout)?;
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for i in 0..2 * meta.head_layers {
            m.push(file.vector(&format!("adam.m.{i}"))?);
            v.push(file.vector(&format!("adam.v.{i}"))?);
        }
        let weights: Array2<f64> = file.matrix("instance_weights")?;
        let mut tensors = Vec::new();
        for name in &meta.source_tensors {
            let (shape, values) = file.tensor(&format!("source.{name}"))?;
            tensors.push((name.clone(), shape, values));
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

    /// A run resumed without `--warmup-epochs`: sets `config.warmup_epochs` (the default, or
    /// `epochs - 1` when the run is shorter than that) to the warm-up it continues with
    /// ([`ResumedWarmup::choose`]), so that extending a short run, whose warm-up was clamped to
    /// fit, is not refused as another configuration. Returns a log line when the choice is not
    /// simply the run's own warm-up (or makes no difference: CSQ learns no weights). A warm-up
    /// given on the command line is not this function's: [`Checkpoint::check_resumes`] holds it
    /// to the checkpoint's.
    pub fn resume_warmup(&self, config: &mut TrainConfig) -> Option<String> {
        let (ck, run, done) = (
            self.config.warmup_epochs,
            config.warmup_epochs,
            self.epochs_done,
        );
        let clamped = ck + 1 == self.config.epochs && ck < TrainConfig::default().warmup_epochs;
        let n = |n: usize| match n {
            1 => "1 epoch".to_string(),
            n => format!("{n} epochs"),
        };
        let choice = ResumedWarmup::choose(ck, clamped, done, run);
        if choice == ResumedWarmup::Checkpoint {
            if ck > config.epochs {
                // Longer than the run: check_resumes names the difference.
                return None;
            }
            config.warmup_epochs = ck;
        }
        let how = if clamped {
            format!(" (clamped to fit its run of {})", n(self.config.epochs))
        } else {
            String::new()
        };
        match choice {
            ResumedWarmup::Same => None,
            _ if !config.learns_weights() => None,
            ResumedWarmup::Run => Some(format!(
                "resuming after epoch {done}, still in the warm-up: continuing with the warm-up \
                 of a run of {}, {}, not the checkpoint's {}{how}; the result equals an unbroken \
                 run's",
                n(config.epochs),
                n(run),
                n(ck)
            )),
            ResumedWarmup::Checkpoint => Some(format!(
                "resuming after epoch {done} with the checkpoint's warm-up of {}{how}, not the \
                 {} a run of {} has from the start{}. The result equals an unbroken run with \
                 --warmup-epochs {ck}; for the other warm-up, train from the start",
                n(ck),
                n(run),
                n(config.epochs),
                if done > ck {
                    format!(": weights have been learned since epoch {}", ck + 1)
                } else {
                    String::new()
                }
            )),
        }
    }

    /// Checks the checkpoint belongs to a run of `config` on data with `fingerprint`: the
    /// same configuration apart from `epochs` and `eval_every` (a run may be extended) and
    /// `warmup_epochs` while every epoch done was warm-up in both, the same data and source,
    /// and not past `config.epochs`.
    pub fn check_resumes(&self, config: &TrainConfig, fingerprint: &str) -> Result<()> {
        // The warm-up may differ while every epoch done was warm-up in both schedules: those
        // epochs were the same either way.
        let same_so_far = self.epochs_done <= self.config.warmup_epochs.min(config.warmup_epochs);
        let comparable = |c: &TrainConfig| TrainConfig {
            epochs: 0,
            eval_every: 1,
            warmup_epochs: if same_so_far { 0 } else { c.warmup_epochs },
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
                "the checkpoint was written by a run with another configuration: {}; resume \
                 with the checkpoint's settings (only --epochs may change), or train from the \
                 start without --resume",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_warmup_a_resumed_run_keeps() {
        use ResumedWarmup::*;
        // (checkpoint warm-up, clamped, epochs done, the run's warm-up)
        assert_eq!(ResumedWarmup::choose(2, false, 1, 2), Same);
        // A 2-epoch run (warm-up clamped to 1) stopped after epoch 1: still warming up.
        assert_eq!(ResumedWarmup::choose(1, true, 1, 2), Run);
        // ... after epoch 2: weights already learned in epoch 2.
        assert_eq!(ResumedWarmup::choose(1, true, 2, 2), Checkpoint);
        // A warm-up that was not clamped is kept, even within it.
        assert_eq!(ResumedWarmup::choose(5, false, 1, 2), Checkpoint);
    }
}
