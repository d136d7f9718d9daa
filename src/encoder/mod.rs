//! The encoder: models stored in the database and `ics_encode`, which turns an image (or a
//! feature vector) into a `hashcode` inside PostgreSQL with ONNX Runtime.
//!
//! ```text
//! ics_model_load(name, onnx) --validate--> ics_model_registry (extension table, pg_dump'ed)
//! ics_encode(img [, model]) --name -> sha256 (once per query)--> session cache (per backend)
//!     --ics_encoder::batch (headers, memory plan, parallel decode)--> ONNX Runtime
//!     --check, pack_signs--> hashcode
//! ```
//!
//! Everything that is not PostgreSQL lives in the pgrx-free `ics-encoder` crate (shared with
//! the trainer): loading ONNX Runtime, the counted and bounded allocator, cancellable runs,
//! sessions checked against their contract, batch planning. The files here are the glue:
//! - [`gucs`]: the `ics_hash.*` settings (who may set which, and why).
//! - [`sessions`]: the backend's session cache and the settings a session is built with.
//! - [`slots`]: the bound on backends holding CUDA sessions (session-level lock slots).
//! - [`registry`]: the SQL functions that load, drop and describe models.
//! - [`encode`]: `ics_encode` and `ics_encode_batch`.
//!
//! Errors carry specific SQLSTATEs ([`raise`] maps `ics_encoder::ErrorKind`) and a hint in the
//! server's words ([`hint`], from the facts of `ics_encoder::Cause`); every failure
//! leaves the backend usable (Rust state is unwound, cached sessions stay valid). A run or a
//! batch interrupted by a cancel, a statement timeout or a terminate stops within an operator
//! or an image, and PostgreSQL then reports its own error for the interrupt.

pub mod encode;
pub mod gucs;
pub mod registry;
pub mod sessions;
pub mod slots;

use std::sync::atomic::{AtomicI32, Ordering};

use ics_encoder::{Cause, EncoderError, ErrorKind};
use pgrx::{pg_sys, PgSqlErrorCode};

use crate::fmgr;

/// The SQLSTATE of an encoder error kind.
pub fn sqlstate(kind: ErrorKind) -> PgSqlErrorCode {
    use PgSqlErrorCode::*;
    match kind {
        ErrorKind::InvalidBinary => ERRCODE_INVALID_BINARY_REPRESENTATION,
        ErrorKind::NotSupported => ERRCODE_FEATURE_NOT_SUPPORTED,
        ErrorKind::LimitExceeded => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
        ErrorKind::OutOfMemory => ERRCODE_OUT_OF_MEMORY,
        ErrorKind::Busy => ERRCODE_INSUFFICIENT_RESOURCES,
        ErrorKind::InvalidModel => ERRCODE_INVALID_PARAMETER_VALUE,
        ErrorKind::BadOutput => ERRCODE_DATA_EXCEPTION,
        ErrorKind::NotANumber => ERRCODE_FLOATING_POINT_EXCEPTION,
        ErrorKind::Runtime => ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
        ErrorKind::Interrupted => ERRCODE_QUERY_CANCELED,
        ErrorKind::LibraryNotFound => ERRCODE_UNDEFINED_FILE,
        ErrorKind::System => ERRCODE_SYSTEM_ERROR,
        ErrorKind::Internal => ERRCODE_INTERNAL_ERROR,
    }
}

/// The advice of an encoder error, in the server's words: the settings to change and who may.
pub fn hint(e: &EncoderError) -> Option<&'static str> {
    use ics_encoder::contract::ContractError;
    use ics_encoder::image_error::PreprocessError as P;
    const EXPORT: &str = "Load a model exported by ics-train (its ONNX metadata carries the ics_hash.* contract keys).";
    Some(match &*e.cause {
        Cause::Other => return None,
        Cause::Image(P::Empty | P::UnknownFormat | P::Corrupt { .. } | P::Truncated { .. }) => {
            "ics_encode takes the bytes of a JPEG, PNG, WebP, BMP or GIF file."
        }
        Cause::Image(P::UnsupportedFormat { .. }) => "Convert the image to JPEG, PNG, WebP, BMP or GIF.",
        Cause::Image(P::TooManyPixels { .. } | P::LimitExceeded { .. }) => {
            "Downscale the image, or have a superuser raise ics_hash.max_image_pixels."
        }
        Cause::Image(P::InvalidConfig(_)) => "The model's preprocessing parameters were validated when it was loaded; please report this.",
        Cause::Contract(ContractError::OrtFormat) => "ics_hash loads ONNX models only: re-save the model as plain ONNX (onnx.save, or ics-train export), not as an ONNX Runtime .ort file or a file holding both.",
        Cause::Contract(ContractError::External(_)) => "Export the model with every tensor inside the file (ics-train export does; in Python, onnx.save without save_as_external_data).",
        Cause::Contract(_) => EXPORT,
        Cause::Operator(_) => "ics_hash runs only operators whose cost the input cannot blow up, so that a cancel or statement_timeout stops every run (README, Security). A superuser may allow more operator types: SET ics_hash.extra_operators = 'OpType,...' before loading and encoding.",
        Cause::Interface => "The ONNX graph's inputs and outputs must be what its ics_hash.* metadata declares; re-export the model with ics-train.",
        Cause::MemoryLimit { .. } => "Encode fewer images per run (ics_hash.batch_size), or have a superuser raise ics_hash.encoder_memory_limit.",
        Cause::ImageMemory { .. } => "Downscale the image, or have a superuser raise ics_hash.encoder_memory_limit (or lower ics_hash.max_image_pixels).",
        Cause::Output { .. } => "The model's graph does not compute what its metadata declares; re-export it with ics-train.",
        Cause::NotANumber { .. } => "Check the input values and the model's weights.",
        Cause::LibraryMissing { .. } | Cause::LibraryUnusable { .. } => {
            "Point the encoder at libonnxruntime.so 1.31 or later (the server: ics_hash.onnxruntime_library, then reconnect; ics-train: ORT_DYLIB_PATH), or run scripts/setup.sh."
        }
        Cause::LibraryKept => "Restart the process (reconnect) after fixing the library: it keeps the library it loaded.",
        Cause::CudaRefused { .. } => "Retry later, set it to auto (which falls back to the CPU), or have a superuser raise the bound.",
        Cause::CudaMissing => "Point the encoder at the libonnxruntime.so of the onnxruntime-gpu package (with CUDA 13 and cuDNN 9 on the library path) and reconnect, or set it to auto.",
        Cause::NoGpu => "Use auto or cpu on a machine without a GPU.",
        Cause::CudaFailed => "The CUDA provider needs the CUDA 13 runtime (cudart, cublas, curand, nvrtc) and cuDNN 9 libraries on the library path (for the server: LD_LIBRARY_PATH of the postmaster).",
    })
}

/// Raises an encoder error. An interrupted run first lets PostgreSQL handle the interrupt
/// (which raises its own error: canceling statement, statement timeout, terminating
/// connection); only if PostgreSQL holds it off is 57014 raised here.
#[track_caller]
pub fn raise(e: EncoderError) -> ! {
    if e.kind == ErrorKind::Interrupted {
        pgrx::check_for_interrupts!();
    }
    let hint = hint(&e);
    fmgr::raise_detailed(sqlstate(e.kind), e.message, e.detail, hint)
}

/// Unwraps or raises.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Result<T, EncoderError> {
    #[track_caller]
    fn or_raise(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => raise(e),
        }
    }
}

/// Whether PostgreSQL wants this backend's query stopped (a cancel, a statement timeout) or
/// the backend gone (a terminate). Polled by `ics_encoder`'s watcher thread during runs and by
/// decoding threads between images, so it only reads the two flags the signal handlers set;
/// other reasons PostgreSQL sets `InterruptPending` for (barriers, notifications) do not stop
/// a run.
pub fn interrupted() -> bool {
    // SAFETY: `QueryCancelPending` and `ProcDiePending` are aligned `sig_atomic_t` (i32)
    // globals that live for the process; the signal handlers write them with plain stores and
    // other threads only ever load them, which AtomicI32 does without tearing.
    unsafe {
        AtomicI32::from_ptr(&raw mut pg_sys::QueryCancelPending).load(Ordering::Relaxed) != 0
            || AtomicI32::from_ptr(&raw mut pg_sys::ProcDiePending).load(Ordering::Relaxed) != 0
    }
}
