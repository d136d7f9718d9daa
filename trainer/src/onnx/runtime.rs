//! ONNX Runtime in the trainer: loading the shared library, the one environment a process may
//! have, sessions built from model bytes, and float-tensor runs.
//!
//! `ort` is built with `load-dynamic`: the library is opened at run time from
//! `$ORT_DYLIB_PATH`, else [`DEFAULT_LIBRARY`] (installed by `scripts/setup.sh`). The file is
//! checked before `ort` sees it, because `ort` panics instead of failing when it cannot load a
//! library, and the environment is created once and kept in a `OnceLock` (ONNX Runtime allows
//! one per process; a failure is remembered and reported to every later caller).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::{anyhow, ensure, Context, Result};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;

/// Where the setup script installs ONNX Runtime.
pub const DEFAULT_LIBRARY: &str =
    "/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";
/// Environment variable overriding [`DEFAULT_LIBRARY`] (the variable `ort` itself reads).
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";

static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The ONNX Runtime library this process uses: `$ORT_DYLIB_PATH` if set and non-empty, else
/// [`DEFAULT_LIBRARY`].
pub fn library_path() -> PathBuf {
    match std::env::var_os(LIBRARY_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_LIBRARY),
    }
}

/// Loads ONNX Runtime and creates the process's environment (once; later calls return the
/// first outcome).
pub fn init() -> Result<&'static Environment> {
    let outcome = ENVIRONMENT.get_or_init(|| {
        let path = library_path();
        if !path.is_file() {
            return Err(format!(
                "ONNX Runtime library not found at {} (set {LIBRARY_ENV} to libonnxruntime.so, \
                 or run scripts/setup.sh)",
                path.display()
            ));
        }
        let builder = ort::init_from(&path)
            .map_err(|e| format!("cannot load ONNX Runtime from {}: {e}", path.display()))?;
        builder
            .with_name("ics-train")
            .build()
            .map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
    });
    outcome.as_ref().map_err(|e| anyhow!("{e}"))
}

/// A CPU session for `model` (ONNX bytes) with `intra_threads` threads inside operators
/// (0 = ONNX Runtime's default, one per core).
pub fn session(model: &[u8], intra_threads: usize) -> Result<Session> {
    let env = init()?;
    let builder =
        Session::builder(env).map_err(|e| anyhow!("ONNX Runtime session builder: {e}"))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| anyhow!("setting the optimisation level: {e}"))?;
    let mut builder = builder
        .with_intra_threads(intra_threads)
        .map_err(|e| anyhow!("setting {intra_threads} intra-op threads: {e}"))?;
    builder
        .commit_from_memory(model)
        .map_err(|e| anyhow!("ONNX Runtime rejected the model: {e}"))
}

/// One output of [`run_f32`]: its shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
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
    ensure!(
        shape.iter().product::<usize>() == data.len(),
        "input shape {shape:?} does not match {} values",
        data.len()
    );
    let tensor = TensorRef::from_array_view((shape.to_vec(), data))
        .map_err(|e| anyhow!("building the input tensor: {e}"))?;
    let results = session
        .run(ort::inputs![input => tensor])
        .map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
    outputs
        .iter()
        .map(|name| {
            let value = results
                .get(name)
                .with_context(|| format!("the model has no output \"{name}\""))?;
            let (shape, values) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| anyhow!("output \"{name}\" is not a float tensor: {e}"))?;
            Ok(Output {
                shape: shape.iter().map(|&d| d as usize).collect(),
                data: values.to_vec(),
            })
        })
        .collect()
}
