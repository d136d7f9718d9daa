//! ICS: Instance-weighted Central Similarity hashing (and its CSQ baseline) on precomputed
//! feature vectors. The method is described in docs/method.md.
//!
//! - [`centres`]: class hash centres (balanced random with a checked minimum distance;
//!   Hadamard as an option).
//! - [`simplex`], [`weights`]: per-image weights on the label simplex, the PGD step with the
//!   exact sort-descending projection, and the closed-form softmax optimum.
//! - [`loss`]: the centre loss (BCE against soft targets, mean over bits), quantisation, the
//!   ICS and CSQ targets, and their gradients.
//! - [`head`], [`matmul`], [`adam`]: the MLP hash head with hand-written back-propagation
//!   (generic over `f32`/`f64` via [`real`]), rayon-split matrix products, Adam.
//! - [`config`], [`train`](mod@train), [`model`]: validated parameters (fine-tuning included),
//!   the training loop, the trained model (encode, layers for the ONNX exporter).
//! - [`source`]: where the loop's feature rows come from (precomputed features, or a backbone
//!   `crate::finetune` trains along); [`checkpoint`]: the loop's state after an epoch, to
//!   resume a run exactly.
//! - [`synthetic`]: synthetic features with known labels and areas (tests, timing examples).

pub mod adam;
pub mod centres;
pub mod checkpoint;
pub mod config;
pub mod diagnostics;
pub mod head;
pub mod loss;
pub mod matmul;
pub mod model;
pub mod orthohash;
pub mod real;
pub mod simplex;
pub mod source;
pub mod synthetic;
pub mod train;
pub mod weights;

#[cfg(test)]
mod gradcheck;

pub use centres::{CentreStats, Centres};
pub use checkpoint::{Checkpoint, Checkpointing, ResumedWarmup};
pub use config::{
    CentreMethod, Finetune, FinetuneMode, Method, OrthoHashParams, TrainConfig, WeightUpdate,
};
pub use diagnostics::WeightDiagnostics;
pub use head::{Activation, HashHead, Linear};
pub use model::{EpochLog, IcsModel};
pub use source::{FeatureSource, FrozenFeatures, SourceState};
pub use train::{train, train_checkpointed, train_silently, train_source, EpochEval};
pub use weights::InstanceWeights;
