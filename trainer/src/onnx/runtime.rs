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
        Cause::CudaMissing => format!(
            "Set {LIBRARY_ENV} to the libonnxruntime.so of the onnxruntime-gpu wheel, with the \
             nvidia-* wheels' lib folders in LD_LIBRARY_PATH (trainer/README.md, \"Training on a \
             GPU\"), or use --device cpu or auto."
        ),
        Cause::NoGpu | Cause::CudaFailed => "Use --device cpu, or auto (the CPU when CUDA \
             cannot run)."
            .into(),
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

/// Where the trainer computes (`--device`): ONNX Runtime's execution provider for feature
/// extraction and frozen prefixes, and burn's backend for fine-tuning
/// (`crate::finetune::device`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The CPU (the default: the same seed and data give bit-identical models).
    #[default]
    Cpu,
    /// An NVIDIA GPU, or an error saying what is missing.
    Cuda,
    /// The GPU when everything it needs is here, else the CPU with a note saying why.
    Auto,
}

impl DeviceChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Cuda => "cuda",
            DeviceChoice::Auto => "auto",
        }
    }

    /// ONNX Runtime's provider setting for this choice.
    pub fn provider(self) -> ProviderSetting {
        match self {
            DeviceChoice::Cpu => ProviderSetting::Cpu,
            DeviceChoice::Cuda => ProviderSetting::Cuda,
            DeviceChoice::Auto => ProviderSetting::Auto,
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            "auto" => Ok(DeviceChoice::Auto),
            _ => Err(anyhow!("unknown device {s:?}: expected auto, cpu or cuda")),
        }
    }
}

/// A CPU session for `model` (ONNX bytes, which must be self-contained) with `intra_threads`
/// threads inside operators.
pub fn session(model: &[u8], intra_threads: usize) -> Result<Session> {
    session_on(model, intra_threads, DeviceChoice::Cpu).map(|s| s.session)
}

/// A session for `model` on `device`: the CPU, CUDA (an error saying what is missing when
/// ONNX Runtime cannot run it there: the loaded library has no CUDA provider, no GPU is
/// visible, the provider does not start), or `auto` (CUDA when possible, else the CPU; the
/// session's `provider` and `reason` say which and why).
pub fn session_on(
    model: &[u8],
    intra_threads: usize,
    device: DeviceChoice,
) -> Result<encoder_runtime::BuiltSession> {
    let rt = init()?;
    check_self_contained(model).map_err(|e| anyhow!("{e}"))?;
    encoder_runtime::build_session(
        rt,
        model,
        intra_threads.max(1),
        device.provider(),
        "--device",
    )
    .map_err(|e| match device {
        DeviceChoice::Cpu => anyhow!("ONNX Runtime rejected the model: {}", describe(&e)),
        _ => anyhow!("ONNX Runtime: {}", describe(&e)),
    })
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
