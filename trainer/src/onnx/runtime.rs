//! ONNX Runtime in the trainer: the shared encoder's runtime (`ics_encoder::runtime`, the
//! one place that loads the library, creates the environment and builds sessions), with the
//! trainer's choice of library (`$ORT_DYLIB_PATH`, else the installed default) and errors as
//! `anyhow`, worded for the command line ([`report`]). Models with a contract run through
//! `ics_encoder::session::EncoderSession` (see [`encoder_session`]), exactly as `ics_encode`
//! runs them in the database.

use anyhow::{anyhow, Result};
use ics_encoder::contract::ContractError;
use ics_encoder::image_error::PreprocessError;
use ics_encoder::onnx_external::check_self_contained;
use ics_encoder::runtime::{
    self as encoder_runtime, Candidate, LibraryChoice, ProviderSetting, Runtime,
};
use ics_encoder::session::{EncoderSession, SessionOptions};
use ics_encoder::{Cause, EncoderError};
use ort::session::Session;

pub use ics_encoder::runtime::{Output, LIBRARY_ENV};

/// Where `scripts/setup.sh` installs ONNX Runtime (the CPU build from PyPI), used when
/// `$ORT_DYLIB_PATH` is not set.
pub const DEFAULT_LIBRARY: &str =
    "/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";

/// The library the trainer loads: `$ORT_DYLIB_PATH` when set, else the installed default.
pub fn library_choice() -> LibraryChoice {
    LibraryChoice::resolve(&[
        Candidate::Env(LIBRARY_ENV),
        Candidate::Installed {
            path: DEFAULT_LIBRARY,
            source: "default",
        },
    ])
}

/// What to do about an encoder error, in the command line's words (flags and variables).
pub fn hint(e: &EncoderError) -> Option<String> {
    Some(match &*e.cause {
        Cause::Image(PreprocessError::TooManyPixels { max_pixels, .. }) => {
            format!("Downscale the image: ics-train decodes images of at most {max_pixels} pixels.")
        }
        Cause::Image(PreprocessError::UnsupportedFormat { .. }) => {
            "Convert the image to JPEG, PNG, WebP, BMP or GIF.".into()
        }
        Cause::Contract(ContractError::External(_)) => {
            "Export the model with every tensor inside the file (ics-train export does).".into()
        }
        Cause::Contract(_) | Cause::Interface | Cause::Output { .. } | Cause::Operator(_) => {
            "Use a model written by ics-train export.".into()
        }
        Cause::MemoryLimit { .. } => "Encode fewer images per run (--batch).".into(),
        Cause::LibraryMissing { .. } | Cause::LibraryUnusable { .. } => format!(
            "Set {LIBRARY_ENV} to libonnxruntime.so 1.31 or later, or run scripts/setup.sh."
        ),
        _ => return None,
    })
}

/// An encoder error as the trainer reports it: the message, then its hint.
pub fn describe(e: &EncoderError) -> String {
    match hint(e) {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    }
}

fn report(e: &EncoderError) -> anyhow::Error {
    anyhow!("{}", describe(e))
}

/// Loads ONNX Runtime and creates the process's environment (once; later calls return the
/// first outcome, and a failed load is reported again).
pub fn init() -> Result<&'static Runtime> {
    encoder_runtime::load(&library_choice(), "ics-train").map_err(|e| report(&e))
}

/// A CPU session for `model` (ONNX bytes, which must be self-contained) with `intra_threads`
/// threads inside operators.
pub fn session(model: &[u8], intra_threads: usize) -> Result<Session> {
    let rt = init()?;
    check_self_contained(model).map_err(|e| anyhow!("{e}"))?;
    encoder_runtime::build_session(
        rt,
        model,
        intra_threads.max(1),
        ProviderSetting::Cpu,
        "--provider",
    )
    .map(|b| b.session)
    .map_err(|e| anyhow!("ONNX Runtime rejected the model: {}", describe(&e)))
}

/// The contract-checked session of an exported model (the extension's path: interface
/// checked, outputs checked for shape and NaN, signs packed).
pub fn encoder_session(model: &[u8], intra_threads: usize) -> Result<EncoderSession> {
    let rt = init()?;
    EncoderSession::build(
        rt,
        model,
        SessionOptions {
            provider: ProviderSetting::Cpu,
            provider_setting_name: "--provider",
            threads: intra_threads.max(1),
            memory_limit: usize::MAX,
        },
    )
    .map_err(|e| report(&e))
}

/// Feeds one float tensor (`shape`, row-major `data`) to `input` and returns the named float
/// outputs, in the order asked.
pub fn run_f32(
    session: &mut Session,
    input: &str,
    shape: &[usize],
    data: &[f32],
    outputs: &[&str],
) -> Result<Vec<Output>> {
    encoder_runtime::run_float(session, input, shape, data, outputs).map_err(|e| report(&e))
}
