//! Stopping work when the caller is interrupted (inside PostgreSQL: a cancel, a statement
//! timeout, a terminate).
//!
//! A network run cannot look at the caller's interrupt flags itself, and the caller's thread
//! is busy inside ONNX Runtime, so one watcher thread per process (started with signals
//! blocked) polls the caller's [`Interrupt`] every [`POLL`] while runs are in progress and sets
//! ONNX Runtime's terminate flag on the run's options when it fires. ONNX Runtime checks that
//! flag between operators (and between iterations of a loop), so the run ends within one
//! operator's time with an error; the caller then handles its interrupt as usual. Between
//! runs the watcher sleeps on a condition variable: idle processes cost nothing.
//!
//! Decoding checks the same function between images (see [`crate::batch`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use ort::session::RunOptions;

use crate::error::{EncoderError, ErrorKind};
use crate::signals::SignalsBlocked;

/// Says whether the caller wants its work stopped. Called from the watcher thread, so it must
/// only read flags (PostgreSQL's `QueryCancelPending` / `ProcDiePending`).
pub type Interrupt = fn() -> bool;

/// How often a running run's interrupt is polled.
pub const POLL: Duration = Duration::from_millis(2);

struct Running {
    id: u64,
    options: Arc<RunOptions>,
    interrupt: Option<Interrupt>,
    fired: Arc<AtomicBool>,
}

/// The runs in progress (and the last id handed out).
static RUNS: Mutex<(u64, Vec<Running>)> = Mutex::new((0, Vec::new()));
static WAKE: Condvar = Condvar::new();
/// Whether the watcher thread runs (it is started at the first watched run).
static WATCHER: OnceLock<bool> = OnceLock::new();

fn runs() -> std::sync::MutexGuard<'static, (u64, Vec<Running>)> {
    RUNS.lock().unwrap_or_else(|e| e.into_inner())
}

fn watcher_started() -> bool {
    *WATCHER.get_or_init(|| {
        let _blocked = SignalsBlocked::new();
        std::thread::Builder::new()
            .name("ics_hash run watcher".into())
            .spawn(watch)
            .is_ok()
    })
}

fn watch() {
    let mut guard = runs();
    loop {
        while !guard.1.iter().any(|r| r.interrupt.is_some()) {
            guard = WAKE.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
        for run in &guard.1 {
            let Some(interrupt) = run.interrupt else {
                continue;
            };
            if !run.fired.load(Ordering::Relaxed) && interrupt() {
                run.fired.store(true, Ordering::Relaxed);
                let _ = run.options.terminate();
            }
        }
        drop(guard);
        std::thread::sleep(POLL);
        guard = runs();
    }
}

/// Runs `f` with fresh run options that are terminated if `interrupt` fires meanwhile. Returns `f`'s result and whether the interrupt fired. If no watcher
/// thread could be started, the interrupt is not polled during the run.
pub fn watched<R>(
    interrupt: Option<Interrupt>,
    f: impl FnOnce(&RunOptions) -> R,
) -> Result<(R, bool), EncoderError> {
    let options = Arc::new(RunOptions::new().map_err(|e| {
        EncoderError::new(ErrorKind::Runtime, format!("ONNX Runtime run options: {e}"))
    })?);
    let interrupt = interrupt.filter(|_| watcher_started());
    let fired = Arc::new(AtomicBool::new(false));
    if interrupt.is_some_and(|i| i()) {
        // Already interrupted: the run stops before its first operator.
        fired.store(true, Ordering::Relaxed);
        let _ = options.terminate();
    }
    let id = {
        let mut runs = runs();
        runs.0 += 1;
        let id = runs.0;
        runs.1.push(Running {
            id,
            options: options.clone(),
            interrupt,
            fired: fired.clone(),
        });
        id
    };
    if interrupt.is_some() {
        WAKE.notify_one();
    }
    // Removes the entry even if `f` unwinds.
    struct Done(u64);
    impl Drop for Done {
        fn drop(&mut self) {
            runs().1.retain(|r| r.id != self.0);
        }
    }
    let _done = Done(id);
    let r = f(&options);
    Ok((r, fired.load(Ordering::Relaxed)))
}
