//! The encoder: models stored in the database and `ics_encode`, which turns an image (or a
//! feature vector) into a `hashcode` inside PostgreSQL with ONNX Runtime.
//!
//! ```text
//! ics_model_load(name, onnx) --validate--> ics_model_registry (extension table, pg_dump'ed)
//! ics_encode(img [, model]) --name -> sha256 (once per query)--> session cache (per backend)
//!     --decode + preprocess (ics_core)--> ONNX Runtime --pack_signs (ics_core)--> hashcode
//! ```
//!
//! - [`gucs`]: the `ics_hash.*` settings.
//! - [`runtime`]: loading ONNX Runtime, the process's environment, execution-provider choice.
//! - [`sessions`]: the per-backend cache of ready models, keyed by model identity (sha256).
//! - [`decode`]: parallel image decoding for batches, off PostgreSQL's memory and threads.
//! - [`registry`]: the SQL functions that load, drop and describe models.
//! - [`encode`]: `ics_encode` and `ics_encode_batch`.
//!
//! Errors carry specific SQLSTATEs ([`EncoderError`]); every failure leaves the backend usable
//! (Rust state is unwound, cached sessions stay valid).

pub mod decode;
pub mod encode;
pub mod gucs;
pub mod registry;
pub mod runtime;
pub mod sessions;

use ics_core::contract::ContractError;
use ics_core::preprocess::PreprocessError;
use pgrx::PgSqlErrorCode;

use crate::fmgr;

/// An error on its way to an ERROR report.
#[derive(Debug, Clone)]
pub struct EncoderError {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl EncoderError {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Self {
        EncoderError {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Prefixes the message (e.g. with which image of a batch failed).
    pub fn context(mut self, what: impl std::fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Raises the ERROR. Never returns.
    #[track_caller]
    pub fn raise(self) -> ! {
        fmgr::raise_detailed(self.code, self.message, self.detail, self.hint.as_deref())
    }
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
            Err(e) => e.raise(),
        }
    }
}

/// The SQLSTATE of an image that cannot be preprocessed.
pub fn preprocess_error(e: &PreprocessError) -> EncoderError {
    use PgSqlErrorCode::*;
    let (code, hint) = match e {
        PreprocessError::Empty
        | PreprocessError::UnknownFormat
        | PreprocessError::Corrupt { .. }
        | PreprocessError::Truncated { .. } => (
            ERRCODE_INVALID_BINARY_REPRESENTATION,
            "ics_encode takes the bytes of a JPEG, PNG, WebP, BMP or GIF file.",
        ),
        PreprocessError::UnsupportedFormat { .. } => (
            ERRCODE_FEATURE_NOT_SUPPORTED,
            "Convert the image to JPEG, PNG, WebP, BMP or GIF.",
        ),
        PreprocessError::TooManyPixels { .. } | PreprocessError::LimitExceeded { .. } => (
            ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "Downscale the image, or have a superuser raise ics_hash.max_image_pixels.",
        ),
        PreprocessError::InvalidConfig(_) => (
            ERRCODE_INTERNAL_ERROR,
            "The model's preprocessing parameters were validated when it was loaded; please report this.",
        ),
    };
    EncoderError::new(code, e.to_string()).hint(hint)
}

/// The SQLSTATE of model bytes that do not satisfy the contract.
pub fn contract_error(e: &ContractError) -> EncoderError {
    let code = match e {
        ContractError::Onnx(_) => PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    EncoderError::new(code, format!("invalid model: {e}")).hint(
        "Load a model exported by ics-train (its ONNX metadata carries the ics_hash.* contract keys).",
    )
}
