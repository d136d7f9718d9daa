//! ONNX Runtime in the trainer: the shared encoder's runtime (`ics_encoder::runtime`, the
//! one place that loads the library, creates the environment and builds sessions), with the
//! trainer's choice of library (`$ORT_DYLIB_PATH`, else the installed default) and errors as
//! `anyhow`. Models with a contract run through `ics_encoder::session::EncoderSession` (see
//! [`encoder_session`]), exactly as `ics_encode` runs them in the database.

use anyhow::{anyhow, Result};
use ics_encoder::onnx_external::check_self_contained;
use ics_encoder::runtime::{self as encoder_runtime, LibraryChoice, ProviderSetting, Runtime};
use ics_encoder::session::{EncoderSession, SessionOptions};
use ort::session::Session;

pub use ics_encoder::runtime::{Output, DEFAULT_LIBRARY, LIBRARY_ENV};

/// Loads ONNX Runtime and creates the process's environment (once; later calls return the
/// first outcome, and a failed load is reported again).
pub fn init() -> Result<&'static Runtime> {
    encoder_runtime::load(&LibraryChoice::from_env(), "ics-train").map_err(|e| anyhow!("{e}"))
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
    .map_err(|e| anyhow!("ONNX Runtime rejected the model: {e}"))
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
    .map_err(|e| anyhow!("{e}"))
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
    encoder_runtime::run_float(session, input, shape, data, outputs).map_err(|e| anyhow!("{e}"))
}
