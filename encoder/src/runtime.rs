//! ONNX Runtime in this process: loading the shared library the front end chose (from its
//! [`Candidate`]s), the one environment a process may have, the execution-provider choice,
//! and building sessions.
//!
//! Rules kept here:
//! - `ort::init_from` with a path checked beforehand: `ort` panics rather than failing when it
//!   has to find a library itself. A missing or wrong library is an error whose
//!   [`crate::error::Cause`] says which, and a process whose load failed may retry with
//!   another path.
//! - One environment per process, kept in a static; the first library loaded stays for the
//!   process's life.
//! - Every call that may create threads runs with all signals blocked ([`SignalsBlocked`]).
//! - Sessions allocate their CPU memory through [`crate::memory`] (the environment's
//!   registered allocator), so every byte they hold is counted and bounded.
//! - Sessions are built from bytes only, after [`crate::contract::ModelContract::from_onnx`]
//!   (or [`crate::onnx_external::check_self_contained`]) proved those bytes refer to no file:
//!   ONNX Runtime would resolve external data against the working directory.
//! - Every session parses its bytes as ONNX (`session.load_model_format = ONNX`): ONNX Runtime
//!   would otherwise load bytes with `ORTM` at offset 4 in its own format, unchecked.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use ort::environment::Environment;
use ort::ep::{ArenaExtendStrategy, ExecutionProvider as _, CUDA};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{Cause, EncoderError, ErrorKind};
use crate::signals::SignalsBlocked;

/// The environment variable `ort` itself reads; front ends may offer it as a
/// [`Candidate::Env`].
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";
/// ONNX Runtime's session config key for the model format (`kOrtSessionOptionsConfigLoadModelFormat`).
pub const LOAD_MODEL_FORMAT_KEY: &str = "session.load_model_format";
/// ONNX Runtime's names of the providers used here.
pub const CUDA_PROVIDER: &str = "CUDAExecutionProvider";
pub const CPU_PROVIDER: &str = "CPUExecutionProvider";

/// A place a front end takes the library from. The front end owns every path and name: this
/// crate compiles in no install location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidate<'a> {
    /// A setting named `source`: chosen when set and not blank.
    Setting {
        value: Option<&'a str>,
        source: &'static str,
    },
    /// An installed file: chosen when it exists.
    Installed { path: &'a str, source: &'static str },
    /// An environment variable: chosen when set and not empty.
    Env(&'static str),
}

/// Which library to load and why that one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryChoice {
    pub path: Option<PathBuf>,
    /// What chose it: the candidate's name ([`Candidate`]'s `source`, or the variable), or
    /// `none`.
    pub source: &'static str,
    /// Why each candidate before the chosen one was passed over, in order (e.g. `no path is
    /// set`): the message when none is chosen.
    pub passed_over: Vec<String>,
}

impl LibraryChoice {
    /// The first of `candidates` that applies.
    pub fn resolve(candidates: &[Candidate]) -> LibraryChoice {
        let mut passed_over = Vec::new();
        for c in candidates {
            let (path, source) = match *c {
                Candidate::Setting { value, source } => match value {
                    Some(p) if !p.trim().is_empty() => (PathBuf::from(p), source),
                    _ => {
                        passed_over.push("no path is set".to_string());
                        continue;
                    }
                },
                Candidate::Installed { path, source } => {
                    if !Path::new(path).is_file() {
                        passed_over.push(format!("{path} does not exist"));
                        continue;
                    }
                    (PathBuf::from(path), source)
                }
                Candidate::Env(var) => match std::env::var_os(var) {
                    Some(p) if !p.is_empty() => (PathBuf::from(p), var),
                    _ => {
                        passed_over.push(format!("{var} is not set"));
                        continue;
                    }
                },
            };
            return LibraryChoice {
                path: Some(path),
                source,
                passed_over,
            };
        }
        LibraryChoice {
            path: None,
            source: "none",
            passed_over,
        }
    }
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The loaded runtime of this process.
pub struct Runtime {
    pub env: Environment,
    pub library: PathBuf,
    pub source: &'static str,
    /// e.g. `1.31.1`.
    pub version: String,
    /// The execution providers this build of ONNX Runtime has.
    pub providers: Vec<String>,
    /// Milliseconds spent loading the library and creating the environment.
    pub load_ms: f64,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("source", &self.source)
            .field("version", &self.version)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn has_provider(&self, name: &str) -> bool {
        self.providers.iter().any(|p| p == name)
    }
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
/// Set when the library was loaded but the environment could not be created: `ort` keeps the
/// library, so retrying with another path cannot help in this process.
static BROKEN: OnceLock<String> = OnceLock::new();

/// The runtime if this process has loaded it already (never loads).
pub fn loaded() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The process's runtime, loading `choice` and creating the environment (named `env_name`)
/// on first use; later calls return the loaded one whatever they ask for.
pub fn load(choice: &LibraryChoice, env_name: &str) -> Result<&'static Runtime, EncoderError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    if let Some(msg) = BROKEN.get() {
        return Err(EncoderError::new(ErrorKind::System, msg.clone()).because(Cause::LibraryKept));
    }
    let started = Instant::now();
    let source = choice.source;
    let Some(path) = choice.path.clone() else {
        return Err(EncoderError::new(
            ErrorKind::LibraryNotFound,
            format!(
                "ONNX Runtime library not found: {}",
                and_list(&choice.passed_over)
            ),
        )
        .because(Cause::LibraryMissing { path: None, source }));
    };
    if !path.is_file() {
        return Err(EncoderError::new(
            ErrorKind::LibraryNotFound,
            format!(
                "ONNX Runtime library not found at \"{}\" (from {source})",
                path.display()
            ),
        )
        .because(Cause::LibraryMissing {
            path: Some(path),
            source,
        }));
    }
    let _blocked = SignalsBlocked::new();
    let builder = ort::init_from(&path).map_err(|e| {
        EncoderError::new(
            ErrorKind::System,
            format!(
                "cannot load ONNX Runtime from \"{}\" (from {source}): {e}",
                path.display()
            ),
        )
        .because(Cause::LibraryUnusable { path: path.clone() })
    })?;
    let env = match builder.with_name(env_name).with_telemetry(false).build() {
        Ok(env) => env,
        Err(e) => {
            let msg = format!(
                "cannot create the ONNX Runtime environment with \"{}\": {e}",
                path.display()
            );
            let _ = BROKEN.set(msg.clone());
            return Err(EncoderError::new(ErrorKind::System, msg));
        }
    };
    if let Err(e) = crate::memory::register(&env) {
        let _ = BROKEN.set(e.message.clone());
        return Err(e);
    }
    let rt = Runtime {
        env,
        version: library_version(&path).unwrap_or_else(|| "unknown".into()),
        providers: available_providers(),
        library: path,
        source,
        load_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The version string of the already-loaded library (`OrtGetApiBase()->GetVersionString()`).
fn library_version(path: &Path) -> Option<String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: RTLD_NOLOAD only returns a handle to the library `ort` already loaded; the
    // symbol is ONNX Runtime's documented entry point and returns a static struct whose
    // version string is static too; the extra handle is closed again.
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return None;
        }
        let sym = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
        let version = if sym.is_null() {
            None
        } else {
            let get_base: unsafe extern "C" fn() -> *const ort::sys::OrtApiBase =
                std::mem::transmute(sym);
            let base = get_base();
            if base.is_null() {
                None
            } else {
                let v = ((*base).GetVersionString)();
                (!v.is_null()).then(|| CStr::from_ptr(v).to_string_lossy().into_owned())
            }
        };
        libc::dlclose(handle);
        version
    }
}

/// The execution providers the loaded library was built with.
fn available_providers() -> Vec<String> {
    let api = ort::api();
    let mut list: *mut *mut c_char = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: documented C API; the list holds `n` C strings and is released with its own
    // function after they are copied.
    unsafe {
        if crate::memory::status((api.GetAvailableProviders)(&mut list, &mut n)).is_err() {
            return Vec::new();
        }
        let out = (0..n.max(0) as usize)
            .map(|i| CStr::from_ptr(*list.add(i)).to_string_lossy().into_owned())
            .collect();
        let _ = crate::memory::status((api.ReleaseAvailableProviders)(list, n));
        out
    }
}

/// Whether an NVIDIA GPU is visible to this process, with what shows it (or why not).
pub fn gpu_present() -> (bool, String) {
    let proc_dir = Path::new("/proc/driver/nvidia/gpus");
    if let Ok(entries) = std::fs::read_dir(proc_dir) {
        let n = entries.count();
        if n > 0 {
            return (true, format!("{n} GPU(s) under {}", proc_dir.display()));
        }
    }
    if let Ok(entries) = std::fs::read_dir("/dev") {
        let n = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.strip_prefix("nvidia").is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
                })
            })
            .count();
        if n > 0 {
            return (true, format!("{n} /dev/nvidiaN device(s)"));
        }
    }
    (
        false,
        "no NVIDIA GPU is visible (no /proc/driver/nvidia/gpus entries, no /dev/nvidiaN)".into(),
    )
}

/// Where a session should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderSetting {
    /// CUDA when the loaded library has it and a GPU is present (and it starts), else the CPU.
    Auto,
    /// CUDA or an error saying why not.
    Cuda,
    /// Never a GPU.
    Cpu,
}

impl ProviderSetting {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderSetting::Auto => "auto",
            ProviderSetting::Cuda => "cuda",
            ProviderSetting::Cpu => "cpu",
        }
    }
}

/// What the caller allows a CUDA session (`auto` or `cuda`) and what it may take: how many
/// processes hold CUDA sessions is the caller's bound (the extension counts them with slots,
/// `src/encoder/slots.rs`), and the device memory arena of each session is capped here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CudaOptions {
    /// Why the caller refuses CUDA to this session now (e.g. every slot is taken), or `None`.
    /// `auto` then runs on the CPU and says why; `cuda` fails with [`ErrorKind::Busy`].
    pub refused: Option<String>,
    /// Bytes the session's CUDA memory arena may hold (ONNX Runtime's `gpu_mem_limit`, the
    /// arena growing by what is requested, not by powers of two); 0: no limit. The CUDA
    /// context and cuDNN/cuBLAS workspaces outside the arena are not counted.
    pub memory_limit: usize,
}

/// Whether a session asking for CUDA could get it here: the loaded library has the CUDA
/// provider and an NVIDIA GPU is visible (starting the provider may still fail).
pub fn cuda_possible(rt: &Runtime) -> bool {
    rt.has_provider(CUDA_PROVIDER) && CUDA::is_available().unwrap_or(false) && gpu_present().0
}

/// A session and the provider it runs on.
pub struct BuiltSession {
    pub session: Session,
    /// [`CUDA_PROVIDER`] or [`CPU_PROVIDER`].
    pub provider: &'static str,
    /// Why this provider.
    pub reason: String,
    /// The CUDA arena's byte limit, for a CUDA session with one.
    pub device_memory_limit: Option<usize>,
}

fn cpu_builder(rt: &Runtime, threads: usize) -> Result<SessionBuilder, String> {
    let b = Session::builder(&rt.env).map_err(|e| e.to_string())?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?;
    let b = b.with_intra_threads(threads).map_err(|e| e.to_string())?;
    let b = b.with_inter_threads(1).map_err(|e| e.to_string())?;
    // Bytes are parsed as ONNX, never guessed: left to guess, ONNX Runtime loads any bytes
    // with "ORTM" at offset 4 in its own ORT format, a graph no ONNX check has seen.
    let b = b
        .with_config_entry(LOAD_MODEL_FORMAT_KEY, "ONNX")
        .map_err(|e| e.to_string())?;
    // Every CPU allocation through the counting allocator (crate::memory).
    let b = b.with_env_allocators().map_err(|e| e.to_string())?;
    // Idle pool threads sleep instead of spinning: the caller is one of many processes.
    b.with_intra_op_spinning(false).map_err(|e| e.to_string())
}

fn commit(builder: SessionBuilder, model: &[u8]) -> Result<Session, String> {
    let mut builder = builder;
    builder.commit_from_memory(model).map_err(|e| e.to_string())
}

fn load_error(e: String) -> EncoderError {
    EncoderError::new(
        ErrorKind::Runtime,
        format!("ONNX Runtime cannot load the model: {e}"),
    )
}

fn cuda_session(
    rt: &Runtime,
    model: &[u8],
    threads: usize,
    memory_limit: usize,
) -> Result<Session, String> {
    let b = cpu_builder(rt, threads)?;
    let mut ep = CUDA::default();
    if memory_limit > 0 {
        ep = ep
            .with_memory_limit(memory_limit)
            .with_arena_extend_strategy(ArenaExtendStrategy::SameAsRequested);
    }
    let b = b
        .with_execution_providers([ep.build().error_on_failure()])
        .map_err(|e| e.to_string())?;
    commit(b, model)
}

/// Builds a session for `model` (bytes proved self-contained by the caller) with `threads`
/// intra-op threads on the provider `setting` asks for; `setting_name` names the caller's
/// setting in messages (e.g. `ics_hash.execution_provider`). CUDA as [`CudaOptions::default`]
/// allows it (no refusal, no arena limit); see [`build_session_with`].
pub fn build_session(
    rt: &Runtime,
    model: &[u8],
    threads: usize,
    setting: ProviderSetting,
    setting_name: &str,
) -> Result<BuiltSession, EncoderError> {
    build_session_with(
        rt,
        model,
        threads,
        setting,
        setting_name,
        &CudaOptions::default(),
    )
}

/// [`build_session`] with the caller's CUDA terms: a refusal makes `auto` run on the CPU
/// (saying why) and `cuda` fail with [`ErrorKind::Busy`]; the arena limit caps a CUDA
/// session's device memory arena.
pub fn build_session_with(
    rt: &Runtime,
    model: &[u8],
    threads: usize,
    setting: ProviderSetting,
    setting_name: &str,
    cuda_opts: &CudaOptions,
) -> Result<BuiltSession, EncoderError> {
    let _blocked = SignalsBlocked::new();
    let limit = cuda_opts.memory_limit;
    let device_memory_limit = (limit > 0).then_some(limit);
    let cpu = |reason: String| -> Result<BuiltSession, EncoderError> {
        let session = cpu_builder(rt, threads)
            .and_then(|b| commit(b, model))
            .map_err(load_error)?;
        Ok(BuiltSession {
            session,
            provider: CPU_PROVIDER,
            reason,
            device_memory_limit: None,
        })
    };
    if setting == ProviderSetting::Cpu {
        return cpu(format!("{setting_name} = cpu"));
    }
    // The caller refuses only where CUDA is possible: its reason comes first.
    if let Some(why) = &cuda_opts.refused {
        if setting == ProviderSetting::Cuda {
            return Err(EncoderError::new(
                ErrorKind::Busy,
                format!("{setting_name} is cuda, but {why}"),
            )
            .because(Cause::CudaRefused { why: why.clone() }));
        }
        return cpu(format!("auto: {why}"));
    }
    let has_cuda = rt.has_provider(CUDA_PROVIDER) && CUDA::is_available().unwrap_or(false);
    let (gpu, gpu_why) = gpu_present();
    let cuda_missing = format!(
        "the loaded ONNX Runtime ({}, {}) has no CUDA execution provider (it has {})",
        rt.library.display(),
        rt.version,
        rt.providers.join(", ")
    );
    match setting {
        ProviderSetting::Cuda => {
            if !has_cuda {
                return Err(EncoderError::new(
                    ErrorKind::NotSupported,
                    format!("{setting_name} is cuda, but {cuda_missing}"),
                )
                .because(Cause::CudaMissing));
            }
            if !gpu {
                return Err(EncoderError::new(
                    ErrorKind::NotSupported,
                    format!("{setting_name} is cuda, but {gpu_why}"),
                )
                .because(Cause::NoGpu));
            }
            match cuda_session(rt, model, threads, limit) {
                Ok(session) => Ok(BuiltSession {
                    session,
                    provider: CUDA_PROVIDER,
                    reason: format!("{setting_name} = cuda; {gpu_why}"),
                    device_memory_limit,
                }),
                Err(e) => Err(EncoderError::new(
                    ErrorKind::NotSupported,
                    format!("{setting_name} is cuda, but the CUDA execution provider failed to start: {e}"),
                )
                .because(Cause::CudaFailed)),
            }
        }
        _ => {
            if !has_cuda {
                return cpu(format!("auto: {cuda_missing}"));
            }
            if !gpu {
                return cpu(format!("auto: {gpu_why}"));
            }
            match cuda_session(rt, model, threads, limit) {
                Ok(session) => Ok(BuiltSession {
                    session,
                    provider: CUDA_PROVIDER,
                    reason: format!("auto: CUDA execution provider available; {gpu_why}"),
                    device_memory_limit,
                }),
                Err(e) => cpu(format!(
                    "auto: the CUDA execution provider failed to start ({e})"
                )),
            }
        }
    }
}

/// The statistics of `session`'s CUDA memory arena (device 0) from `AllocatorGetStats`, as
/// key-value pairs in ONNX Runtime's order.
pub fn device_arena_stats(session: &Session) -> Result<Vec<(String, String)>, String> {
    use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
    use ort::AsPointer as _;
    let info = MemoryInfo::new(
        AllocationDevice::CUDA,
        0,
        AllocatorType::Device,
        MemoryType::Default,
    )
    .map_err(|e| e.to_string())?;
    let allocator = Allocator::new(session, info).map_err(|e| e.to_string())?;
    let api = ort::api();
    let mut kvps: *mut ort::sys::OrtKeyValuePairs = std::ptr::null_mut();
    // SAFETY: documented C API. `allocator` is a live allocator of this session; on success
    // `kvps` owns `n` key and value C strings, copied out before it is released once.
    unsafe {
        crate::memory::status((api.AllocatorGetStats)(allocator.ptr(), &mut kvps))?;
        if kvps.is_null() {
            return Err("ONNX Runtime returned no statistics".into());
        }
        let mut keys: *const *const c_char = std::ptr::null();
        let mut values: *const *const c_char = std::ptr::null();
        let mut n: usize = 0;
        (api.GetKeyValuePairs)(kvps, &mut keys, &mut values, &mut n);
        let text = |p: *const c_char| {
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let out = if keys.is_null() || values.is_null() {
            Vec::new()
        } else {
            (0..n)
                .map(|i| (text(*keys.add(i)), text(*values.add(i))))
                .collect()
        };
        (api.ReleaseKeyValuePairs)(kvps);
        Ok(out)
    }
}

/// One output of [`run_float`]: its shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Feeds one float tensor (`shape`, row-major `data`) to `input` of a session that is not an
/// encoder model (a backbone, say) and returns the named float outputs in the order asked.
/// Models with a contract go through [`crate::session::EncoderSession`] instead.
pub fn run_float(
    session: &mut Session,
    input: &str,
    shape: &[usize],
    data: &[f32],
    outputs: &[&str],
) -> Result<Vec<Output>, EncoderError> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(EncoderError::new(
            ErrorKind::Internal,
            format!("input shape {shape:?} does not match {} values", data.len()),
        ));
    }
    let failed = |what: &str, e: ort::Error| {
        EncoderError::new(
            ErrorKind::Runtime,
            format!("ONNX Runtime {what} failed: {e}"),
        )
    };
    let tensor = TensorRef::from_array_view((shape.to_vec(), data))
        .map_err(|e| failed("input tensor", e))?;
    let results = session
        .run(ort::inputs![input => tensor])
        .map_err(|e| failed("run", e))?;
    outputs
        .iter()
        .map(|name| {
            let value = results.get(name).ok_or_else(|| {
                EncoderError::new(
                    ErrorKind::InvalidModel,
                    format!("the model has no output \"{name}\""),
                )
            })?;
            let (shape, values) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| failed(&format!("extraction of output \"{name}\""), e))?;
            Ok(Output {
                shape: shape.iter().map(|&d| d as usize).collect(),
                data: values.to_vec(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_candidate_that_applies_is_chosen_and_the_others_say_why_not() {
        let here = std::env::current_exe().unwrap();
        let here = here.to_str().unwrap();
        let unset = "ICS_ENCODER_TEST_SURELY_UNSET";
        let choice = LibraryChoice::resolve(&[
            Candidate::Setting {
                value: Some("  "),
                source: "the setting",
            },
            Candidate::Installed {
                path: "/nonexistent/lib.so",
                source: "default",
            },
            Candidate::Env(unset),
            Candidate::Installed {
                path: here,
                source: "fallback",
            },
        ]);
        assert_eq!(choice.path.as_deref(), Some(Path::new(here)));
        assert_eq!(choice.source, "fallback");
        assert_eq!(
            and_list(&choice.passed_over),
            format!("no path is set, /nonexistent/lib.so does not exist and {unset} is not set")
        );
        let set = LibraryChoice::resolve(&[Candidate::Setting {
            value: Some("/x.so"),
            source: "the setting",
        }]);
        assert_eq!(
            (set.path, set.source),
            (Some(PathBuf::from("/x.so")), "the setting")
        );
        let none = LibraryChoice::resolve(&[]);
        assert_eq!((none.path, none.source), (None, "none"));
    }
}
