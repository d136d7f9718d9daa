//! Logic that the `ics_hash` PostgreSQL extension and the `ics-train` trainer must share
//! exactly, with no PostgreSQL dependency so that it is unit-tested with plain `cargo test`.
//!
//! - [`code`]: what a hash code is (length rules, the hex text form, bit order).
//! - [`hamming`]: Hamming distance kernels (scalar reference, word-wise, runtime-dispatched SIMD).
//! - [`preprocess`]: image decoding and preprocessing (resize, crop, normalise) for the network.
//! - [`contract`]: the model contract, the `ics_hash.*` ONNX metadata keys and their checks.
//! - [`onnx_external`]: proof that model bytes refer to no file or other outside data.
//! - [`onnx_proto`]: the minimal ONNX protobuf messages the exporter writes and the loader reads.

pub mod code;
pub mod contract;
pub mod hamming;
pub mod onnx_external;
pub mod onnx_proto;
pub mod preprocess;
