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
//! Errors carry specific SQLSTATEs ([`raise`] maps `ics_encoder::ErrorKind`); every failure
//! leaves the backend usable (Rust state is unwound, cached sessions stay valid). A run or a
//! batch interrupted by a cancel, a statement timeout or a terminate stops within an operator
//! or an image, and PostgreSQL then reports its own error for the interrupt.

pub mod encode;
pub mod gucs;
pub mod registry;
pub mod sessions;
pub mod slots;

use std::sync::atomic::{AtomicI32, Ordering};

use ics_encoder::{EncoderError, ErrorKind};
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

/// Raises an encoder error. An interrupted run first lets PostgreSQL handle the interrupt
/// (which raises its own error: canceling statement, statement timeout, terminating
/// connection); only if PostgreSQL holds it off is 57014 raised here.
#[track_caller]
pub fn raise(e: EncoderError) -> ! {
    if e.kind == ErrorKind::Interrupted {
        pgrx::check_for_interrupts!();
    }
    fmgr::raise_detailed(sqlstate(e.kind), e.message, e.detail, e.hint.as_deref())
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
