//! Fine-tuning: the backbone trains along with the hash head (docs/method.md, ICS; step 2: the
//! objective is back-propagated through the network), `--finetune top:N` or `all`.
//!
//! - [`network`]: the trained part of EfficientNet-Lite as burn tensor operations (autodiff
//!   through depthwise convolutions, SAME padding, ReLU6, residuals, pooling), generic over
//!   `f32`/`f64`, written once over [`engine`]'s operations; [`device`]: where it runs
//!   (`--device`: burn 0.22 on the CPU, burn 0.21 on CUDA with `--features cuda`), and
//!   [`gradcheck`]: its gradients against finite differences on either.
//! - [`prefix`]: the frozen part of a `top:N` run in ONNX Runtime, its activations cached.
//! - [`augment`]: random crop and horizontal flip, drawn per image and epoch.
//! - [`source`]: the training loop's [`crate::ics::FeatureSource`] that runs, back-propagates
//!   and steps the backbone each mini-batch.
//! - [`run`]: a whole fine-tuning run from a backbone file and datasets (what `ics-train
//!   train` and `bench` call), and the backbone of a fine-tuned model file.
//!
//! Why burn: measured here on Lite0-shaped networks at 128 px, batch 32, forward + backward
//! on 2 cores, burn 0.22's flex backend ran the last two stages (`top:2`) at ~55 images/s and
//! the whole network at ~11, against ~1 for candle 0.11 on `top:2`, whose CPU grouped
//! convolution runs one convolution per group (README, "Fine-tuning the backbone").

pub mod augment;
pub mod device;
pub mod engine;
pub mod gradcheck;
pub mod network;
pub mod prefix;
pub mod run;
pub mod source;

pub use network::{NetworkTensors, Start};
pub use run::{model_backbone, train_finetuned, FinetuneInputs, FinetuneOutcome};
pub use source::{start_of, FinetuneSource, PassTimes, TrainInputs};
