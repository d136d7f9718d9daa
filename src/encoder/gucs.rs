//! The encoder's settings, all under the reserved prefix `ics_hash.`, each with its reason.
//!
//! | GUC | default | who may set it | why |
//! |---|---|---|---|
//! | `ics_hash.model` | empty | anyone | the model `ics_encode(img)` uses; empty = the only registered one |
//! | `ics_hash.execution_provider` | `auto` | anyone | `auto` takes CUDA when the loaded ONNX Runtime has it and a GPU is present, else the CPU; `cuda` insists (an error says why not); `cpu` never touches a GPU |
//! | `ics_hash.onnxruntime_library` | empty | superuser | path of `libonnxruntime.so`; empty = [`super::sessions::DEFAULT_LIBRARY`], else `$ORT_DYLIB_PATH`. Loading a shared library runs its code inside the server: superuser only. Read at the first encoder call of a backend; the library stays for the process's life |
//! | `ics_hash.intra_op_threads` | 1 | anyone, up to `max_intra_op_threads` | threads ONNX Runtime may use in one backend. One keeps a backend's network runs on one core as PostgreSQL expects; raise it for bulk encoding on an idle server |
//! | `ics_hash.decode_threads` | 0 (= the CPU count, at most [`MAX_DEFAULT_DECODE_THREADS`]) | superuser | threads that decode the images of an `ics_encode_batch` call, overlapping the network run of the chunk before. On a GPU the network waits for decoding unless many cores decode; the threads are busy only inside a batch call, and each one's image counts against `encoder_memory_limit`. Superuser because threads are a server resource |
//! | `ics_hash.max_intra_op_threads` | 0 (= the server's CPU count) | superuser | the cap on `intra_op_threads`: threads are a server resource, so an ordinary role cannot start hundreds of them |
//! | `ics_hash.encoder_memory_limit` | 1 GB | superuser | all memory the encoder holds in one backend outside PostgreSQL's accounting: ONNX Runtime's (cached models' weights, a run's activations; counted by its allocator, which refuses past the limit) plus the input tensor and the images being decoded (planned from their headers before anything is allocated). Batches are sized to fit; what cannot fit is an error (53200). Cached models may hold at most half of it |
//! | `ics_hash.max_image_pixels` | 50,000,000 | superuser | images with more pixels are refused from their header, before decoding (decompression bombs); superuser because the decoded pixels are memory outside PostgreSQL's accounting |
//! | `ics_hash.batch_size` | 32 | anyone | most images fed to one ONNX Runtime run by `ics_encode_batch` (longer arrays run in several; fewer when `encoder_memory_limit` requires) |
//! | `ics_hash.session_cache_size` | 4 | anyone | models kept ready per backend; the least recently used is dropped beyond it (and beyond half the memory limit). One session per model and provider: changing the thread count replaces it |
//! | `ics_hash.max_cuda_sessions` | 4 | superuser | how many backends of the cluster may hold CUDA sessions at once (slots: [`super::slots`]); -1 no bound, 0 none. Each such backend holds a CUDA context (hundreds of MB of device memory) plus its sessions' arenas, so an unbounded count multiplies device memory by the connections; a few concurrent backends already keep one GPU busy. Others run on the CPU (`auto`, with a NOTICE) or fail with 53000 (`cuda`) |
//! | `ics_hash.cuda_memory_limit` | 4 GB | superuser | the device memory arena of one CUDA session (ONNX Runtime's `gpu_mem_limit`, grown by what is requested); 0 no limit. With the slots it bounds the device memory of the cluster's encoders to about slots x (context + cached models x this) |
//! | `ics_hash.extra_operators` | empty | superuser | operator types (`OpType` or `domain:OpType`, comma-separated) a model may use beyond the built-in list of [`ics_encoder::operators::ALLOWED`], in any form. The list keeps every run stoppable by a cancel or timeout; an operator added here may run for as long as its input makes it. Checked when a model is loaded and whenever a backend builds (or reuses) its session |
//! | `ics_hash.debug_assume_cuda` | off | superuser, not shown | developer option for tests on machines without a GPU: slots are admitted as if CUDA were possible (sessions still run where they can, so on the CPU) |

use std::ffi::CString;

use ics_encoder::runtime::ProviderSetting;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;

/// `ics_hash.execution_provider`.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum ExecutionProvider {
    #[name = c"auto"]
    Auto,
    #[name = c"cuda"]
    Cuda,
    #[name = c"cpu"]
    Cpu,
}

impl ExecutionProvider {
    /// The encoder's provider setting.
    pub fn setting(self) -> ProviderSetting {
        match self {
            ExecutionProvider::Auto => ProviderSetting::Auto,
            ExecutionProvider::Cuda => ProviderSetting::Cuda,
            ExecutionProvider::Cpu => ProviderSetting::Cpu,
        }
    }
}

pub const DEFAULT_INTRA_OP_THREADS: i32 = 1;
/// The most decoding threads `ics_hash.decode_threads = 0` gives: enough to keep one GPU
/// fed on a 16-core machine (an H200 runs the Lite0 model at about 5,000 images/s, and a core
/// decodes and resizes a few hundred photos a second), without one backend taking every core
/// of a larger server.
pub const MAX_DEFAULT_DECODE_THREADS: usize = 16;
pub const DEFAULT_BATCH_SIZE: i32 = 32;
pub const DEFAULT_SESSION_CACHE_SIZE: i32 = 4;
/// Megabytes.
pub const DEFAULT_ENCODER_MEMORY_LIMIT_MB: i32 = 1024;
/// Backends that may hold CUDA sessions at once.
pub const DEFAULT_MAX_CUDA_SESSIONS: i32 = 4;
/// Megabytes of one CUDA session's device memory arena.
pub const DEFAULT_CUDA_MEMORY_LIMIT_MB: i32 = 4096;
/// `ics_encoder::decode::DEFAULT_MAX_PIXELS`, as a GUC value.
pub const DEFAULT_MAX_IMAGE_PIXELS: i32 = ics_encoder::decode::DEFAULT_MAX_PIXELS as i32;

static MODEL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static EXECUTION_PROVIDER: GucSetting<ExecutionProvider> =
    GucSetting::<ExecutionProvider>::new(ExecutionProvider::Auto);
static ONNXRUNTIME_LIBRARY: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static INTRA_OP_THREADS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_INTRA_OP_THREADS);
static MAX_IMAGE_PIXELS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_MAX_IMAGE_PIXELS);
static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_BATCH_SIZE);
static SESSION_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_SESSION_CACHE_SIZE);
static MAX_INTRA_OP_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);
static DECODE_THREADS: GucSetting<i32> = GucSetting::<i32>::new(0);
static ENCODER_MEMORY_LIMIT: GucSetting<i32> =
    GucSetting::<i32>::new(DEFAULT_ENCODER_MEMORY_LIMIT_MB);
static MAX_CUDA_SESSIONS: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_MAX_CUDA_SESSIONS);
static CUDA_MEMORY_LIMIT: GucSetting<i32> = GucSetting::<i32>::new(DEFAULT_CUDA_MEMORY_LIMIT_MB);
static DEBUG_ASSUME_CUDA: GucSetting<bool> = GucSetting::<bool>::new(false);
static EXTRA_OPERATORS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Registers the GUCs (from `_PG_init`: definitions only, nothing is loaded or started).
pub fn register() {
    GucRegistry::define_string_guc(
        c"ics_hash.model",
        c"Model used by ics_encode(image) and ics_encode_batch(images) without a model name.",
        c"Empty means the only registered model (an error when there are none or several).",
        &MODEL,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"ics_hash.execution_provider",
        c"Where ics_encode runs the network: auto, cuda or cpu.",
        c"auto uses CUDA when the loaded ONNX Runtime has the CUDA execution provider and a GPU is present, else the CPU; cuda makes its absence an error.",
        &EXECUTION_PROVIDER,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"ics_hash.onnxruntime_library",
        c"Path of the ONNX Runtime shared library (libonnxruntime.so) the encoder loads.",
        c"Empty means the library scripts/setup.sh installs, else $ORT_DYLIB_PATH. Read once per backend, at its first encoder call.",
        &ONNXRUNTIME_LIBRARY,
        GucContext::Suset,
        // A server file path: shown (SHOW, pg_settings) to superusers and pg_read_all_settings.
        GucFlags::SUPERUSER_ONLY,
    );
    GucRegistry::define_int_guc(
        c"ics_hash.intra_op_threads",
        c"Threads ONNX Runtime may use in one backend to run a model.",
        c"At most ics_hash.max_intra_op_threads. A cached model is rebuilt with the new count at its next use. Batch decoding has its own threads: ics_hash.decode_threads.",
        &INTRA_OP_THREADS,
        1,
        256,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.max_intra_op_threads",
        c"Most threads ics_hash.intra_op_threads may ask for in one backend.",
        c"0 means the number of CPUs of the server.",
        &MAX_INTRA_OP_THREADS,
        0,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.decode_threads",
        c"Threads one backend uses to decode the images of ics_encode_batch, while the network runs the chunk before.",
        c"0 means the number of CPUs of the server, at most 16. Each decoding image counts against ics_hash.encoder_memory_limit.",
        &DECODE_THREADS,
        0,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.encoder_memory_limit",
        c"Memory the encoder may hold in one backend outside PostgreSQL's accounting (ONNX Runtime, input tensors, decoded images).",
        c"Batches are sized to fit; a call that cannot fit fails with 53200. Cached models may hold at most half of it.",
        &ENCODER_MEMORY_LIMIT,
        16,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_int_guc(
        c"ics_hash.max_image_pixels",
        c"Largest image (width x height) ics_encode decodes; larger ones are refused from their header.",
        c"",
        &MAX_IMAGE_PIXELS,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.batch_size",
        c"Most images ics_encode_batch feeds to one ONNX Runtime run.",
        c"Longer arrays run in several batches; bounds the memory of one input tensor.",
        &BATCH_SIZE,
        1,
        4096,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.session_cache_size",
        c"Models each backend keeps loaded in ONNX Runtime.",
        c"The least recently used model is unloaded beyond this count.",
        &SESSION_CACHE_SIZE,
        1,
        64,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.max_cuda_sessions",
        c"Most backends of the cluster that may hold CUDA encoder sessions at once.",
        c"-1 means no bound, 0 none. Others run on the CPU (execution_provider auto, with a NOTICE) or fail (cuda). Applies when a backend builds its first CUDA session.",
        &MAX_CUDA_SESSIONS,
        -1,
        1024,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"ics_hash.cuda_memory_limit",
        c"Device memory arena of one CUDA encoder session (ONNX Runtime's gpu_mem_limit).",
        c"0 means no limit. The CUDA context and library workspaces outside the arena are not counted. Applies to sessions built afterwards.",
        &CUDA_MEMORY_LIMIT,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_MB,
    );
    GucRegistry::define_string_guc(
        c"ics_hash.extra_operators",
        c"ONNX operator types models may use beyond ics_hash's built-in list (comma-separated OpType or domain:OpType).",
        c"The built-in list holds operators whose cost the input cannot blow up, so that a cancel or statement_timeout stops every run; an operator named here is accepted in any form. Checked when a model is loaded and when a backend builds or reuses its session.",
        &EXTRA_OPERATORS,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"ics_hash.debug_assume_cuda",
        c"Developer option for tests without a GPU: admit CUDA slots as if CUDA were possible.",
        c"Sessions still run where they can (on the CPU); only the slot accounting acts as on a GPU machine.",
        &DEBUG_ASSUME_CUDA,
        GucContext::Suset,
        GucFlags::NO_SHOW_ALL,
    );
    // SAFETY: called from _PG_init, after the definitions above; reserves the prefix so that a
    // misspelt ics_hash.* setting is an error rather than a silent placeholder.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"ics_hash".as_ptr()) };
}

fn non_empty(s: Option<CString>) -> Option<String> {
    s.map(|c| c.to_string_lossy().into_owned())
        .filter(|s| !s.trim().is_empty())
}

/// `ics_hash.model`, when set.
pub fn model() -> Option<String> {
    non_empty(MODEL.get())
}

pub fn execution_provider() -> ExecutionProvider {
    EXECUTION_PROVIDER.get()
}

/// `ics_hash.onnxruntime_library`, when set.
pub fn onnxruntime_library() -> Option<String> {
    non_empty(ONNXRUNTIME_LIBRARY.get())
}

/// The server's CPU count (the default cap on threads).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `ics_hash.max_intra_op_threads`, with 0 meaning the CPU count.
pub fn max_intra_op_threads() -> usize {
    match MAX_INTRA_OP_THREADS.get() {
        n if n <= 0 => cpus(),
        n => n as usize,
    }
}

/// The threads a backend uses: `ics_hash.intra_op_threads`, capped.
pub fn intra_op_threads() -> usize {
    (INTRA_OP_THREADS.get().max(1) as usize).min(max_intra_op_threads().max(1))
}

/// The threads that decode a batch's images: `ics_hash.decode_threads`, 0 meaning the CPU
/// count up to [`MAX_DEFAULT_DECODE_THREADS`].
pub fn decode_threads() -> usize {
    match DECODE_THREADS.get() {
        n if n <= 0 => cpus().min(MAX_DEFAULT_DECODE_THREADS),
        n => n as usize,
    }
}

/// `ics_hash.intra_op_threads` as set (before the cap).
pub fn intra_op_threads_setting() -> usize {
    INTRA_OP_THREADS.get().max(1) as usize
}

/// `ics_hash.encoder_memory_limit` in bytes.
pub fn encoder_memory_limit() -> usize {
    (ENCODER_MEMORY_LIMIT.get().max(16) as usize).saturating_mul(1 << 20)
}

pub fn max_image_pixels() -> u64 {
    MAX_IMAGE_PIXELS.get().max(1) as u64
}

pub fn batch_size() -> usize {
    BATCH_SIZE.get().max(1) as usize
}

pub fn session_cache_size() -> usize {
    SESSION_CACHE_SIZE.get().max(1) as usize
}

/// `ics_hash.max_cuda_sessions`: `None` for no bound (-1).
pub fn max_cuda_sessions() -> Option<u32> {
    u32::try_from(MAX_CUDA_SESSIONS.get()).ok()
}

/// `ics_hash.cuda_memory_limit` in bytes, 0 for no limit.
pub fn cuda_memory_limit() -> usize {
    (CUDA_MEMORY_LIMIT.get().max(0) as usize).saturating_mul(1 << 20)
}

/// `ics_hash.debug_assume_cuda`.
pub fn debug_assume_cuda() -> bool {
    DEBUG_ASSUME_CUDA.get()
}

/// The operator policy of `ics_hash.extra_operators`.
pub fn operator_policy() -> ics_encoder::operators::OperatorPolicy {
    ics_encoder::operators::OperatorPolicy::with_extra(
        &non_empty(EXTRA_OPERATORS.get()).unwrap_or_default(),
    )
}
