//! ONNX Runtime inside a backend: finding and loading the shared library, the one environment
//! a process may have, the execution-provider choice, and building sessions.
//!
//! Rules this module keeps (see shared/design/TOOLCHAIN.md):
//! - Nothing happens in `_PG_init`: the library is loaded at a backend's first encoder call, so
//!   a preloaded `ics_hash` never starts ONNX Runtime threads in the postmaster (they would not
//!   survive `fork`).
//! - `ort::init_from` with a path checked beforehand: `ort` panics rather than failing when it
//!   has to find a library itself. A missing or wrong library is an ERROR with a hint, and a
//!   backend whose load failed may retry (after a superuser fixes the setting).
//! - One environment per process, kept in a static; the first library loaded stays for the
//!   process (a later `ics_hash.onnxruntime_library` applies to new connections).
//! - Every call that may create threads (the environment, sessions, runs: the CUDA provider
//!   starts threads lazily) runs with all signals blocked ([`SignalsBlocked`]), so ONNX
//!   Runtime's threads inherit a full mask and PostgreSQL's signals always reach the backend's
//!   own thread. Those threads never call PostgreSQL: they see plain Rust buffers.

use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::{ExecutionProvider as _, CUDA};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use pgrx::PgSqlErrorCode;

use super::gucs::{self, ExecutionProvider};
use super::EncoderError;

/// Where `scripts/setup.sh` installs ONNX Runtime (the CPU build from PyPI).
pub const DEFAULT_LIBRARY: &str =
    "/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";
/// The environment variable `ort` itself reads; our last resort.
pub const LIBRARY_ENV: &str = "ORT_DYLIB_PATH";
/// ONNX Runtime's names of the providers we use.
pub const CUDA_PROVIDER: &str = "CUDAExecutionProvider";
pub const CPU_PROVIDER: &str = "CPUExecutionProvider";

const LIBRARY_HINT: &str = "Set ics_hash.onnxruntime_library (superuser, e.g. in postgresql.conf) to the path of libonnxruntime.so 1.31 or later, or run scripts/setup.sh; a backend loads the library once, so reconnect after changing it.";

/// The loaded runtime of this process.
pub struct Runtime {
    pub env: Environment,
    pub library: PathBuf,
    /// `ics_hash.onnxruntime_library`, `default` or `ORT_DYLIB_PATH`: where the path came from.
    pub source: &'static str,
    /// e.g. `1.31.1`.
    pub version: String,
    /// The execution providers this build of ONNX Runtime has.
    pub providers: Vec<String>,
    /// Milliseconds spent loading the library and creating the environment.
    pub load_ms: f64,
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

/// All signals blocked for the current thread while alive; the previous mask comes back on
/// drop (also when unwinding). Threads started meanwhile inherit the full mask.
pub struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    pub fn new() -> Self {
        // SAFETY: plain sigset manipulation on stack values; pthread_sigmask only changes this
        // thread's mask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked { old }
        }
    }
}

impl Default for SignalsBlocked {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

/// The library this backend would load now, and where the choice came from: the setting if
/// set; else the installed default if present; else `$ORT_DYLIB_PATH`.
pub fn library_choice() -> (Option<PathBuf>, &'static str) {
    if let Some(p) = gucs::onnxruntime_library() {
        return (Some(PathBuf::from(p)), "ics_hash.onnxruntime_library");
    }
    if Path::new(DEFAULT_LIBRARY).is_file() {
        return (Some(PathBuf::from(DEFAULT_LIBRARY)), "default");
    }
    match std::env::var_os(LIBRARY_ENV) {
        Some(p) if !p.is_empty() => (Some(PathBuf::from(p)), LIBRARY_ENV),
        _ => (None, "none"),
    }
}

/// The runtime if this backend has loaded it already (never loads).
pub fn loaded() -> Option<&'static Runtime> {
    RUNTIME.get()
}

/// The process's runtime, loading the library and creating the environment on first use.
pub fn get() -> Result<&'static Runtime, EncoderError> {
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    if let Some(msg) = BROKEN.get() {
        return Err(EncoderError::new(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, msg.clone())
            .hint("Reconnect after fixing ics_hash.onnxruntime_library: this backend keeps the library it loaded."));
    }
    let started = std::time::Instant::now();
    let (path, source) = library_choice();
    let Some(path) = path else {
        return Err(EncoderError::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            format!("ONNX Runtime library not found: ics_hash.onnxruntime_library is not set, {DEFAULT_LIBRARY} does not exist and {LIBRARY_ENV} is not set"),
        )
        .hint(LIBRARY_HINT));
    };
    if !path.is_file() {
        return Err(EncoderError::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_FILE,
            format!(
                "ONNX Runtime library not found at \"{}\" (from {source})",
                path.display()
            ),
        )
        .hint(LIBRARY_HINT));
    }
    let _blocked = SignalsBlocked::new();
    let builder = ort::init_from(&path).map_err(|e| {
        EncoderError::new(
            PgSqlErrorCode::ERRCODE_SYSTEM_ERROR,
            format!(
                "cannot load ONNX Runtime from \"{}\" (from {source}): {e}",
                path.display()
            ),
        )
        .hint(LIBRARY_HINT)
    })?;
    let env = match builder.with_name("ics_hash").with_telemetry(false).build() {
        Ok(env) => env,
        Err(e) => {
            let msg = format!(
                "cannot create the ONNX Runtime environment with \"{}\": {e}",
                path.display()
            );
            let _ = BROKEN.set(msg.clone());
            return Err(EncoderError::new(PgSqlErrorCode::ERRCODE_SYSTEM_ERROR, msg));
        }
    };
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
    // version string is static too.
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
    // SAFETY: documented ONNX Runtime API; the list is released with its own function.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut list, &mut n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Vec::new();
        }
        let out = (0..n.max(0) as usize)
            .map(|i| CStr::from_ptr(*list.add(i)).to_string_lossy().into_owned())
            .collect();
        let status = (api.ReleaseAvailableProviders)(list, n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
        }
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
        "no NVIDIA GPU is visible to the server (no /proc/driver/nvidia/gpus entries, no /dev/nvidiaN)".into(),
    )
}

/// A session and the provider it runs on.
pub struct BuiltSession {
    pub session: Session,
    /// [`CUDA_PROVIDER`] or [`CPU_PROVIDER`].
    pub provider: &'static str,
    /// Why this provider (for `ics_encoder_info()` and the DEBUG1 line).
    pub reason: String,
}

fn cpu_builder(rt: &Runtime, threads: usize) -> Result<SessionBuilder, String> {
    let b = Session::builder(&rt.env).map_err(|e| e.to_string())?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| e.to_string())?;
    let b = b.with_intra_threads(threads).map_err(|e| e.to_string())?;
    let b = b.with_inter_threads(1).map_err(|e| e.to_string())?;
    // Idle pool threads sleep instead of spinning: a backend is one of many processes.
    b.with_intra_op_spinning(false).map_err(|e| e.to_string())
}

fn commit(builder: SessionBuilder, model: &[u8]) -> Result<Session, String> {
    let mut builder = builder;
    builder.commit_from_memory(model).map_err(|e| e.to_string())
}

fn cpu_session(rt: &Runtime, model: &[u8], threads: usize) -> Result<Session, EncoderError> {
    cpu_builder(rt, threads)
        .and_then(|b| commit(b, model))
        .map_err(|e| {
            EncoderError::new(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                format!("ONNX Runtime cannot load the model: {e}"),
            )
        })
}

fn cuda_session(rt: &Runtime, model: &[u8], threads: usize) -> Result<Session, String> {
    let b = cpu_builder(rt, threads)?;
    let b = b
        .with_execution_providers([CUDA::default().build().error_on_failure()])
        .map_err(|e| e.to_string())?;
    commit(b, model)
}

/// Builds a session for `model` with `threads` intra-op threads on the provider `setting`
/// asks for.
pub fn build_session(
    rt: &Runtime,
    model: &[u8],
    threads: usize,
    setting: ExecutionProvider,
) -> Result<BuiltSession, EncoderError> {
    let _blocked = SignalsBlocked::new();
    let cpu = |reason: String| -> Result<BuiltSession, EncoderError> {
        Ok(BuiltSession {
            session: cpu_session(rt, model, threads)?,
            provider: CPU_PROVIDER,
            reason,
        })
    };
    if setting == ExecutionProvider::Cpu {
        return cpu("ics_hash.execution_provider = cpu".into());
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
        ExecutionProvider::Cuda => {
            if !has_cuda {
                return Err(EncoderError::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!("ics_hash.execution_provider is cuda, but {cuda_missing}"),
                )
                .hint("Point ics_hash.onnxruntime_library at the libonnxruntime.so of the onnxruntime-gpu package (with CUDA 13 and cuDNN 9 on the library path) and reconnect, or set ics_hash.execution_provider = auto."));
            }
            if !gpu {
                return Err(EncoderError::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!("ics_hash.execution_provider is cuda, but {gpu_why}"),
                )
                .hint("Set ics_hash.execution_provider = auto or cpu on a server without a GPU."));
            }
            match cuda_session(rt, model, threads) {
                Ok(session) => Ok(BuiltSession {
                    session,
                    provider: CUDA_PROVIDER,
                    reason: format!("ics_hash.execution_provider = cuda; {gpu_why}"),
                }),
                Err(e) => Err(EncoderError::new(
                    PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                    format!("ics_hash.execution_provider is cuda, but the CUDA execution provider failed to start: {e}"),
                )
                .hint("The CUDA provider needs the CUDA 13 runtime (cudart, cublas, curand, nvrtc) and cuDNN 9 libraries on the server's library path (LD_LIBRARY_PATH of the postmaster).")),
            }
        }
        _ => {
            if !has_cuda {
                return cpu(format!("auto: {cuda_missing}"));
            }
            if !gpu {
                return cpu(format!("auto: {gpu_why}"));
            }
            match cuda_session(rt, model, threads) {
                Ok(session) => Ok(BuiltSession {
                    session,
                    provider: CUDA_PROVIDER,
                    reason: format!("auto: CUDA execution provider available; {gpu_why}"),
                }),
                Err(e) => cpu(format!(
                    "auto: the CUDA execution provider failed to start ({e})"
                )),
            }
        }
    }
}
