//! Why an image cannot become a network input: the error of decoding ([`crate::decode`]) and
//! preprocessing ([`crate::preprocess`]), with no type of the `image` crate in it.

use std::fmt;

/// Why an image cannot be preprocessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreprocessError {
    /// Zero bytes.
    Empty,
    /// The bytes start with no known image signature.
    UnknownFormat,
    /// A recognised format this build does not decode (TIFF, AVIF, ...), or a feature of a
    /// supported format the decoder does not implement.
    UnsupportedFormat { format: String, detail: String },
    /// The data does not follow the format.
    Corrupt { format: String, detail: String },
    /// The data ends before the image does.
    Truncated { format: String },
    /// width x height exceeds the pixel limit (checked from the header, before decoding).
    TooManyPixels {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// The decoder would need more memory than allowed (e.g. huge metadata chunks).
    LimitExceeded { format: String, detail: String },
    /// Bad parameters ([`Preprocess::validate`], wrong output buffer length).
    InvalidConfig(String),
}

impl fmt::Display for PreprocessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PreprocessError::Empty => write!(f, "image is empty (0 bytes)"),
            PreprocessError::UnknownFormat => write!(
                f,
                "unknown image format: expected JPEG, PNG, WebP, BMP or GIF data"
            ),
            PreprocessError::UnsupportedFormat { format, detail } => {
                write!(f, "unsupported image ({format}): {detail}")
            }
            PreprocessError::Corrupt { format, detail } => {
                write!(f, "corrupt {format} image: {detail}")
            }
            PreprocessError::Truncated { format } => {
                write!(f, "truncated {format} image: the data ends early")
            }
            PreprocessError::TooManyPixels {
                width,
                height,
                max_pixels,
            } => write!(
                f,
                "image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels"
            ),
            PreprocessError::LimitExceeded { format, detail } => {
                write!(f, "{format} image exceeds a decoding limit: {detail}")
            }
            PreprocessError::InvalidConfig(reason) => {
                write!(f, "invalid preprocessing parameters: {reason}")
            }
        }
    }
}

impl std::error::Error for PreprocessError {}
