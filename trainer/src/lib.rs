//! The ICS trainer as a library; `ics-train` (`src/cli/`) is its command line, which parses
//! arguments, calls these modules and prints.
//!
//! Modules in layers, each using only the layers below it (`tests/module_layers.rs` checks):
//!
//! 1. [`codes`]: sets of packed hash codes laid out for the Hamming kernels (`ics` encodes
//!    into them, `eval` scores them). [`data`]: datasets users have (list files, COCO json)
//!    and the composed multi-label benchmark built from offline images, with exact per-class
//!    areas; where the offline data is (`ICS_DATA_DIR`). [`files`]: writing a file whole or
//!    not at all. [`tensorfile`]: the safetensors files (typed description, named tensors)
//!    that the model file, the checkpoint and the feature cache are.
//! 2. [`ics`]: hash centres, instance weights (PGD on the simplex), the hash head and its
//!    hand-written back-propagation, the training loop (ICS and the CSQ baseline); training
//!    calls an evaluation through [`ics::EpochEval`] without knowing its protocol.
//! 3. [`eval`]: mAP@R, precision within Hamming radius 2, PR curves, weight-vs-area agreement
//!    (also by size ratio), the reports. [`onnx`]: writing ONNX graphs (hash head, merged
//!    model) with the model contract; the ONNX Runtime environment.
//! 4. [`backbone`]: EfficientNet-Lite0 import from the PyTorch weights (its architecture and
//!    folded weights as data), backbone files, feature extraction.
//! 5. [`model_file`]: the versioned model file `train` writes and later commands read (the
//!    head, and the backbone it came from or, fine-tuned, carries).
//! 6. [`finetune`]: back-propagation through the backbone (burn) so that it trains with the
//!    head: the trained network, the frozen prefix and its cached activations, augmentation,
//!    the training loop's feature source, a whole run.
//! 7. [`export`]: the ONNX export (backbone + head, the model contract) and its check against
//!    the trainer's forward pass in ONNX Runtime. [`workflow`]: what the commands do between
//!    parsing and printing (loading data and features, the `train` and `eval` runs), telling
//!    an observer what happens instead of printing.
//! 8. [`benchmark`]: the benchmark (`ics-train bench`), step by step: what it
//!    composes, measures, records and checks, and the run itself.

// No unsafe code in the trainer. `deny`, not `forbid`: ndarray's `s!` macro expands to an
// `allow(unsafe_code)` of its own, which `forbid` would refuse.
#![deny(unsafe_code)]

pub mod backbone;
pub mod benchmark;
pub mod codes;
pub mod data;
pub mod eval;
pub mod export;
pub mod files;
pub mod finetune;
pub mod ics;
pub mod model_file;
pub mod onnx;
pub mod tensorfile;
pub mod workflow;

pub use ics_codes::code;
