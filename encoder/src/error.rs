//! Errors of the encoder. Each carries an [`ErrorKind`] (the class of failure), a message of
//! facts, and a [`Cause`]: what happened as data (which limit, its value, what was found). The
//! crate speaks no front end's language: the extension words a hint with its SQLSTATE and
//! setting names, the trainer's CLI with its flags, both from the [`Cause`].

use std::fmt;
use std::path::PathBuf;

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

/// What happened, as facts a front end turns into its own advice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// Nothing beyond the message (ONNX Runtime failures, invariants, interrupts).
    Other,
    /// An image that cannot become an input.
    Image(PreprocessError),
    /// Model bytes that do not satisfy the contract.
    Contract(ContractError),
    /// An operator a run could not be stopped inside.
    Operator(OperatorRefusal),
    /// The graph's inputs or outputs are not what its contract declares.
    Interface,
    /// ONNX Runtime asked for more than the memory limit (`limit` bytes) allows.
    MemoryLimit { limit: usize },
    /// One image needs `need` bytes, more than the `available` bytes the memory limit
    /// (`limit`) leaves.
    ImageMemory {
        need: usize,
        available: usize,
        limit: usize,
    },
    /// A run returned an output of `shape` for `items` items, not `items x bits`.
    Output {
        shape: Vec<i64>,
        items: usize,
        bits: usize,
    },
    /// A run returned NaN (item and output, counted from 0).
    NotANumber { item: usize, output: usize },
    /// No ONNX Runtime library at `path` (from the front end's `source`), or no path at all.
    LibraryMissing {
        path: Option<PathBuf>,
        source: &'static str,
    },
    /// The library at `path` could not be loaded.
    LibraryUnusable { path: PathBuf },
    /// An earlier load in this process failed after the library was loaded: the process keeps
    /// it, so only a new process can load another.
    LibraryKept,
    /// CUDA was asked for, but the caller refused it now (`why`, the caller's words).
    CudaRefused { why: String },
    /// CUDA was asked for, but the loaded library has no CUDA execution provider.
    CudaMissing,
    /// CUDA was asked for, but no GPU is visible.
    NoGpu,
    /// CUDA was asked for, but its execution provider failed to start.
    CudaFailed,
}

/// An encoder error on its way to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    /// Boxed: errors travel in `Result`s, and most are never looked into.
    pub cause: Box<Cause>,
}

impl EncoderError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EncoderError {
            kind,
            message: message.into(),
            detail: None,
            cause: Box::new(Cause::Other),
        }
    }

    pub fn because(mut self, cause: Cause) -> Self {
        self.cause = Box::new(cause);
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
        let kind = match e {
            PreprocessError::Empty
            | PreprocessError::UnknownFormat
            | PreprocessError::Corrupt { .. }
            | PreprocessError::Truncated { .. } => ErrorKind::InvalidBinary,
            PreprocessError::UnsupportedFormat { .. } => ErrorKind::NotSupported,
            PreprocessError::TooManyPixels { .. } | PreprocessError::LimitExceeded { .. } => {
                ErrorKind::LimitExceeded
            }
            PreprocessError::InvalidConfig(_) => ErrorKind::Internal,
        };
        EncoderError::new(kind, e.to_string()).because(Cause::Image(e.clone()))
    }
}

impl From<&ContractError> for EncoderError {
    fn from(e: &ContractError) -> Self {
        let kind = match e {
            ContractError::Onnx(_) | ContractError::OrtFormat => ErrorKind::InvalidBinary,
            ContractError::External(_) => ErrorKind::NotSupported,
            _ => ErrorKind::InvalidModel,
        };
        EncoderError::new(kind, format!("invalid model: {e}")).because(Cause::Contract(e.clone()))
    }
}

impl From<&OperatorRefusal> for EncoderError {
    fn from(e: &OperatorRefusal) -> Self {
        EncoderError::new(ErrorKind::NotSupported, format!("invalid model: {e}"))
            .because(Cause::Operator(e.clone()))
    }
}
