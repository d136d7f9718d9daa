//! The ICS trainer as a library; `ics-train` is its command line.
//!
//! - [`codes`]: sets of packed hash codes laid out for the Hamming kernels (the bottom layer:
//!   `ics` encodes into them, `eval` scores them).
//! - [`data`]: datasets users have (list files, COCO json) and the composed multi-label
//!   benchmark built from offline images, with exact per-class areas.
//! - [`backbone`]: EfficientNet-Lite0 import from the PyTorch weights, feature extraction.
//! - [`onnx`]: writing ONNX graphs (backbone, hash head, merged model) with the model contract.
//! - [`ics`]: hash centres, instance weights (PGD on the simplex), the hash head and its
//!   hand-written back-propagation, the training loop (ICS and the CSQ baseline).
//! - [`eval`]: mAP@R, precision within Hamming radius 2, PR curves, weight-vs-area agreement.
//! - [`export`]: the ONNX export (backbone + head, the model contract) and its check against
//!   the trainer's forward pass in ONNX Runtime.
//! - [`benchmark`]: the benchmark as data (what `ics-train bench` composes, measures,
//!   records and checks).
//! - [`model_file`]: the versioned model file (safetensors) `train` writes and later commands
//!   read.

pub mod backbone;
pub mod benchmark;
pub mod codes;
pub mod data;
pub mod eval;
pub mod export;
pub mod ics;
pub mod model_file;
pub mod onnx;

pub use ics_core::code;
