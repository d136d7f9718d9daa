//! Errors of the encoder. Each carries a [`ErrorKind`] that the extension maps to a SQLSTATE
//! (and the trainer to a message), a message, and optionally a detail and a hint.

use std::fmt;

use crate::contract::ContractError;
use crate::image_error::PreprocessError;
use crate::operators::OperatorRefusal;

/// What kind of failure, at the granularity of PostgreSQL's error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bytes that are not a decodable image, or not an ONNX model (22P03).
    InvalidBinary,
    /// Something recognised but not supported: an image format, external model data, CUDA
    /// where it is absent (0A000).
    NotSupported,
    /// An image over the pixel limit (54000).
    LimitExceeded,
    /// More memory than the encoder's limit allows (53200).
    OutOfMemory,
    /// A bounded shared resource has no room now, e.g. every CUDA slot is taken (53000).
    Busy,
    /// A model that does not satisfy its contract or whose graph does not match it (22023).
    InvalidModel,
    /// A model output that is not what the contract declares (22000).
    BadOutput,
    /// A model output that is NaN: it has no sign to pack (22P01).
    NotANumber,
    /// ONNX Runtime failed (38000).
    Runtime,
    /// The run or the decoding stopped because the caller was interrupted (57014).
    Interrupted,
    /// The ONNX Runtime library is not where it should be (58P01).
    LibraryNotFound,
    /// The library could not be loaded or its environment created (58000).
    System,
    /// An invariant of this crate does not hold (XX000).
    Internal,
}

/// An encoder error on its way to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl EncoderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EncoderError {
            kind,
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
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl fmt::Display for EncoderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for EncoderError {}

impl From<&PreprocessError> for EncoderError {
    fn from(e: &PreprocessError) -> Self {
        let (kind, hint) = match e {
            PreprocessError::Empty
            | PreprocessError::UnknownFormat
            | PreprocessError::Corrupt { .. }
            | PreprocessError::Truncated { .. } => (
                ErrorKind::InvalidBinary,
                "ics_encode takes the bytes of a JPEG, PNG, WebP, BMP or GIF file.",
            ),
            PreprocessError::UnsupportedFormat { .. } => (
                ErrorKind::NotSupported,
                "Convert the image to JPEG, PNG, WebP, BMP or GIF.",
            ),
            PreprocessError::TooManyPixels { .. } | PreprocessError::LimitExceeded { .. } => (
                ErrorKind::LimitExceeded,
                "Downscale the image, or have a superuser raise ics_hash.max_image_pixels.",
            ),
            PreprocessError::InvalidConfig(_) => (
                ErrorKind::Internal,
                "The model's preprocessing parameters were validated when it was loaded; please report this.",
            ),
        };
        EncoderError::new(kind, e.to_string()).hint(hint)
    }
}

impl From<&ContractError> for EncoderError {
    fn from(e: &ContractError) -> Self {
        match e {
            ContractError::Onnx(_) => EncoderError::new(ErrorKind::InvalidBinary, format!("invalid model: {e}"))
                .hint("Load a model exported by ics-train (its ONNX metadata carries the ics_hash.* contract keys)."),
            ContractError::OrtFormat => EncoderError::new(ErrorKind::InvalidBinary, format!("invalid model: {e}"))
                .hint("ics_hash loads ONNX models only: re-save the model as plain ONNX (onnx.save, or ics-train export), not as an ONNX Runtime .ort file or a file holding both."),
            ContractError::External(_) => EncoderError::new(ErrorKind::NotSupported, format!("invalid model: {e}"))
                .hint("Export the model with every tensor inside the file (ics-train export does; in Python, onnx.save without save_as_external_data)."),
            _ => EncoderError::new(ErrorKind::InvalidModel, format!("invalid model: {e}"))
                .hint("Load a model exported by ics-train (its ONNX metadata carries the ics_hash.* contract keys)."),
        }
    }
}

impl From<&OperatorRefusal> for EncoderError {
    fn from(e: &OperatorRefusal) -> Self {
        EncoderError::new(ErrorKind::NotSupported, format!("invalid model: {e}")).hint(
            "ics_hash runs only operators whose cost the input cannot blow up, so that a cancel or statement_timeout stops every run (README, Security). A superuser may allow more operator types: SET ics_hash.extra_operators = 'OpType,...' before loading and encoding.",
        )
    }
}
