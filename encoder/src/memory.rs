//! The allocator every ONNX Runtime session of this process allocates its CPU memory through:
//! weights, prepacked kernels, a run's activations and outputs. It counts every byte, refuses
//! an allocation that would pass the limit (ONNX Runtime then fails the run, or the session
//! creation, with an error instead of growing), and records the peak, which is how a session
//! measures what one run of n items costs and how callers plan batches that fit
//! ([`crate::batch`]).
//!
//! Refusing: ONNX Runtime's callers expect an allocator to throw `std::bad_alloc`, not to
//! return null (1.31 crashes on a null block in some paths), and Rust cannot throw a C++
//! exception; so the entry points ONNX Runtime calls are two lines of C++
//! (`src/bad_alloc.cc`) around [`ics_encoder_try_alloc`], and no exception crosses a Rust frame.
//!
//! Why by hand: ONNX Runtime's own arena has a `max_mem` but no way to read a run's peak or
//! to change the limit after creation, and inside PostgreSQL the limit is a setting that may
//! change between statements. The C API lets a process register its own `OrtAllocator` with
//! the environment; sessions built with `session.use_env_allocators = 1` use it instead of
//! their arenas.
//!
//! Freed blocks of at least [`CACHE_MIN_BLOCK`] are kept (up to [`CACHE_MAX_BYTES`]) and
//! reused by the next request of a similar size: ONNX Runtime's memory planner asks for the
//! same large buffer on every run of the same shape, and handing it fresh pages each time
//! would cost page faults worth a good part of a small model's run. Kept blocks count against
//! the limit and are released first when an allocation would pass it.
//!
//! Blocks are `HEADER` bytes longer than asked: the header holds the block's size (so that
//! `Free` can count it) and keeps the returned pointer 64-byte aligned, as ONNX Runtime's own
//! CPU allocator does.

use std::alloc::Layout;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard, OnceLock};

use ort::sys::{OrtAllocator, OrtAllocatorType, OrtMemType, OrtMemoryInfo};

use crate::error::{EncoderError, ErrorKind};

const HEADER: usize = 64;
const ALIGN: usize = 64;
/// Smallest freed block worth keeping for reuse.
pub const CACHE_MIN_BLOCK: usize = 256 << 10;
/// Most bytes kept in freed blocks.
pub const CACHE_MAX_BYTES: usize = 256 << 20;
const CACHE_MAX_BLOCKS: usize = 16;

/// What the allocator holds and has done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Bytes in blocks ONNX Runtime holds now.
    pub live: usize,
    /// Bytes in freed blocks kept for reuse.
    pub kept: usize,
    /// Largest `live` since the last [`reset_peak`].
    pub peak: usize,
    /// The limit on `live + kept` (`usize::MAX`: none).
    pub limit: usize,
    /// Whether an allocation was refused since the last [`take_refused`].
    pub refused: bool,
}

struct State {
    stats: Stats,
    /// Freed blocks kept for reuse: (block start, usable size).
    kept: Vec<(usize, usize)>,
}

static STATE: Mutex<State> = Mutex::new(State {
    stats: Stats {
        live: 0,
        kept: 0,
        peak: 0,
        limit: usize::MAX,
        refused: false,
    },
    kept: Vec::new(),
});

fn state() -> MutexGuard<'static, State> {
    // A panic while holding the lock cannot leave the counters inconsistent (they are updated
    // together after the allocation succeeds), so a poisoned lock is still good.
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, ALIGN).ok()
}

/// Releases one kept block (its bytes go back to the system).
fn release(block: usize, size: usize) {
    let layout = layout(size).expect("a layout that was allocated");
    // SAFETY: `block` was returned by `std::alloc::alloc` with exactly this layout and was
    // removed from the kept list, so it is freed once.
    unsafe { std::alloc::dealloc(block as *mut u8, layout) };
}

fn allocate(size: usize) -> *mut c_void {
    let size = size.max(1);
    let mut s = state();
    // A kept block of a similar size (not more than twice the request, so reuse cannot hold
    // much more than asked).
    let reuse = s
        .kept
        .iter()
        .enumerate()
        .filter(|(_, &(_, cap))| cap >= size && cap / 2 <= size)
        .min_by_key(|(_, &(_, cap))| cap)
        .map(|(i, _)| i);
    let (block, cap) = match reuse {
        Some(i) => {
            let (block, cap) = s.kept.swap_remove(i);
            s.stats.kept -= cap;
            (block, cap)
        }
        None => {
            while s.stats.live + s.stats.kept + size > s.stats.limit && !s.kept.is_empty() {
                let (block, cap) = s.kept.swap_remove(0);
                s.stats.kept -= cap;
                release(block, cap);
            }
            if s.stats.live.saturating_add(size) > s.stats.limit {
                s.stats.refused = true;
                return std::ptr::null_mut();
            }
            let Some(layout) = layout(size) else {
                s.stats.refused = true;
                return std::ptr::null_mut();
            };
            // SAFETY: the layout has a non-zero size.
            let block = unsafe { std::alloc::alloc(layout) };
            if block.is_null() {
                return std::ptr::null_mut();
            }
            (block as usize, size)
        }
    };
    s.stats.live += cap;
    s.stats.peak = s.stats.peak.max(s.stats.live);
    // SAFETY: the block has HEADER + cap bytes, 64-byte aligned; the header's first word
    // records the usable size and the caller gets the bytes after the header.
    unsafe {
        (block as *mut usize).write(cap);
        (block as *mut u8).add(HEADER) as *mut c_void
    }
}

fn free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: `p` was returned by `allocate`, so the block starts HEADER bytes before it and
    // its first word is the usable size.
    let (block, cap) = unsafe {
        let block = (p as *mut u8).sub(HEADER);
        (block as usize, (block as *const usize).read())
    };
    let mut s = state();
    s.stats.live -= cap;
    let keep = cap >= CACHE_MIN_BLOCK
        && s.stats.kept + cap <= CACHE_MAX_BYTES
        && s.stats.live + s.stats.kept + cap <= s.stats.limit;
    if keep {
        if s.kept.len() >= CACHE_MAX_BLOCKS {
            let (old, old_cap) = s.kept.remove(0);
            s.stats.kept -= old_cap;
            release(old, old_cap);
        }
        s.kept.push((block, cap));
        s.stats.kept += cap;
    } else {
        drop(s);
        release(block, cap);
    }
}

/// A block for ONNX Runtime, or null when it would pass the limit (the C++ entry points in
/// `src/bad_alloc.cc` turn null into `std::bad_alloc`). Never unwinds.
#[unsafe(no_mangle)]
pub extern "C" fn ics_encoder_try_alloc(size: usize) -> *mut c_void {
    allocate(size)
}

unsafe extern "system" {
    /// `src/bad_alloc.cc`: [`ics_encoder_try_alloc`] or throw `std::bad_alloc`. Called by
    /// ONNX Runtime only, never from Rust (it may throw).
    fn ics_encoder_alloc(this: *mut OrtAllocator, size: usize) -> *mut c_void;
    fn ics_encoder_reserve(this: *const OrtAllocator, size: usize) -> *mut c_void;
}

unsafe extern "system" fn ort_free(_this: *mut OrtAllocator, p: *mut c_void) {
    free(p)
}

unsafe extern "system" fn ort_info(_this: *const OrtAllocator) -> *const OrtMemoryInfo {
    MEMORY_INFO
        .get()
        .map_or(std::ptr::null(), |p| p.0 as *const OrtMemoryInfo)
}

/// An `OrtMemoryInfo` pointer that lives for the process (ONNX Runtime asks for it from any
/// thread; it is never written after creation).
struct InfoPtr(*mut OrtMemoryInfo);
// SAFETY: the pointee is immutable after creation and freed never.
unsafe impl Send for InfoPtr {}
// SAFETY: as above.
unsafe impl Sync for InfoPtr {}

static MEMORY_INFO: OnceLock<InfoPtr> = OnceLock::new();
static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();

/// Converts a C API status into a Result (releasing the status).
pub(crate) fn status(s: ort::sys::OrtStatusPtr) -> Result<(), String> {
    if s.0.is_null() {
        return Ok(());
    }
    let api = ort::api();
    // SAFETY: a non-null status from the C API; its message is a C string owned by the
    // status, copied before the status is released.
    unsafe {
        let msg = std::ffi::CStr::from_ptr((api.GetErrorMessage)(s.0))
            .to_string_lossy()
            .into_owned();
        (api.ReleaseStatus)(s.0);
        Err(msg)
    }
}

/// Registers the allocator with the process's environment (once).
pub(crate) fn register(env: &ort::environment::Environment) -> Result<(), EncoderError> {
    use ort::AsPointer;
    let outcome = REGISTERED.get_or_init(|| {
        let api = ort::api();
        let mut info: *mut OrtMemoryInfo = std::ptr::null_mut();
        // SAFETY: documented C API; `info` receives a new memory info owned by us for good.
        status(unsafe {
            (api.CreateCpuMemoryInfo)(
                OrtAllocatorType::OrtDeviceAllocator,
                OrtMemType::OrtMemTypeDefault,
                &mut info,
            )
        })?;
        let _ = MEMORY_INFO.set(InfoPtr(info));
        // SAFETY: `OrtAllocator::default` is a plain struct of empty function pointers.
        let mut a = unsafe { OrtAllocator::default() };
        a.Alloc = Some(ics_encoder_alloc);
        a.Free = Some(ort_free);
        a.Info = Some(ort_info);
        a.Reserve = Some(ics_encoder_reserve);
        // Leaked: ONNX Runtime calls it for the environment's (the process's) whole life.
        let a = Box::into_raw(Box::new(a));
        // SAFETY: the environment is alive (it lives in a static) and `a` outlives it.
        status(unsafe { (api.RegisterAllocator)(env.ptr().cast_mut(), a) })
    });
    outcome.as_ref().map(|_| ()).map_err(|e| {
        EncoderError::new(
            ErrorKind::System,
            format!("cannot register the encoder's memory allocator with ONNX Runtime: {e}"),
        )
    })
}

/// The allocator's counters now.
pub fn stats() -> Stats {
    state().stats
}

/// Sets the limit on the bytes ONNX Runtime may hold (blocks it holds plus kept ones); kept
/// blocks over the new limit are released at once.
pub fn set_limit(bytes: usize) {
    let mut s = state();
    s.stats.limit = bytes;
    while s.stats.live + s.stats.kept > s.stats.limit && !s.kept.is_empty() {
        let (block, cap) = s.kept.swap_remove(0);
        s.stats.kept -= cap;
        release(block, cap);
    }
}

/// Starts a new peak measurement at the current live bytes.
pub fn reset_peak() {
    let mut s = state();
    s.stats.peak = s.stats.live;
}

/// Whether an allocation was refused since the last call (and clears the flag).
pub fn take_refused() -> bool {
    std::mem::take(&mut state().stats.refused)
}

/// Releases every kept block.
pub fn trim() {
    let mut s = state();
    for (block, cap) in std::mem::take(&mut s.kept) {
        release(block, cap);
    }
    s.stats.kept = 0;
}

/// Serialises tests that use the process-wide allocator state.
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_refuses_and_reuses() {
        let _serial = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        trim();
        set_limit(usize::MAX);
        let alloc = allocate;
        let base = stats().live;
        reset_peak();
        let a = alloc(1 << 20);
        assert!(!a.is_null() && (a as usize).is_multiple_of(ALIGN));
        assert_eq!(stats().live - base, 1 << 20);
        // A limit below what another block needs: refused, flagged once, nothing allocated.
        set_limit(base + (1 << 20) + 1000);
        assert!(alloc(4096).is_null());
        assert!(take_refused() && !take_refused());
        assert_eq!(stats().live - base, 1 << 20);
        // Freed, then asked again at a similar size: the same block comes back.
        set_limit(usize::MAX);
        free(a);
        assert_eq!(stats().kept, 1 << 20);
        let b = alloc(900 << 10);
        assert_eq!(a, b);
        assert_eq!(stats().kept, 0);
        // A much smaller request does not take a big kept block.
        free(b);
        let small = alloc(64 << 10);
        assert_ne!(small, b);
        assert_eq!(stats().peak - base, 1 << 20);
        free(small);
        // Kept blocks give way to a lower limit.
        set_limit(base + 1000);
        assert_eq!(stats().kept, 0);
        set_limit(usize::MAX);
        assert_eq!(stats().live, base);
    }
}
