//! The encoder that the `ics_hash` extension and the `ics-train` trainer share, with no
//! PostgreSQL dependency: image bytes (or feature vectors) in, packed hash codes out.
//!
//! ```text
//! images --batch (decode in parallel, memory-planned chunks)--> input tensor
//!        --EncoderSession::run (ONNX Runtime, cancellable)--> outputs
//!        --check (shape, NaN)--> pack_signs --> codes
//! ```
//!
//! What the model sees (shared exactly by training and query time):
//! - [`decode`]: image bytes to an upright RGB image, with the checks before decoding;
//!   [`image_error`]: why an image cannot become an input.
//! - [`resize`]: the one resampler (triangle filter, antialiased).
//! - [`preprocess`]: resize, crop, normalise: the network's input from an image.
//! - [`contract`]: the model contract, the `ics_hash.*` ONNX metadata keys and their checks.
//! - [`onnx_proto`]: the minimal ONNX protobuf messages the exporter writes and the loader reads.
//! - [`onnx_external`]: proof that model bytes refer to no file or other outside data.
//! - [`operators`]: the operators a model may use, so that every run can be stopped.
//!
//! Running it:
//! - [`error`]: what can go wrong, as kinds a caller maps to its own error codes.
//! - [`runtime`]: loading ONNX Runtime, the one environment of the process, sessions.
//! - [`memory`]: the counting allocator every session allocates through, with a byte limit.
//! - [`cancel`]: terminating a run when the caller is interrupted.
//! - [`session`]: a model with its contract, checked interface and measured memory profile.
//! - [`batch`]: many images through one session within a memory limit.
//! - [`cache`]: ready sessions kept per process, bounded by count and by memory.
//! - [`signals`]: threads started by ONNX Runtime never take the caller's signals.
//! - `test_models` (feature `test-models`): tiny models that exercise each limit.
//!
//! Unsafe code is denied except in the three modules that call C: [`memory`], [`runtime`]
//! and [`signals`].

// Every `unsafe` block is in a module that allows it below, with the reason there.
#![deny(unsafe_code)]

pub mod batch;
pub mod cache;
pub mod cancel;
pub mod contract;
pub mod decode;
pub mod error;
pub mod image_error;
// An allocator handed to ONNX Runtime's C API (raw pointers, an `extern "C"` entry point
// for the C++ shim).
#[allow(unsafe_code)]
pub mod memory;
pub mod onnx_external;
pub mod onnx_proto;
pub mod operators;
pub mod preprocess;
pub mod resize;
// dlopen/dlsym for the loaded library's version, and C API calls that return C strings.
#[allow(unsafe_code)]
pub mod runtime;
pub mod session;
// pthread_sigmask around thread creation.
#[allow(unsafe_code)]
pub mod signals;
#[cfg(any(test, feature = "test-models"))]
pub mod test_models;

pub use error::{Cause, EncoderError, ErrorKind};
