//! Threads that ONNX Runtime (or a decoding pool) starts must never take the signals the
//! calling process handles itself: PostgreSQL's handlers expect to run on the backend's own
//! thread. A new thread inherits its creator's signal mask, so every call that may start
//! threads (the environment, session creation, a CUDA session's first run, a thread pool) runs
//! inside [`SignalsBlocked`]. Runs on the CPU do not: their worker threads exist by then, and
//! the caller's thread must stay able to receive a cancel or a timeout while it waits.

/// All signals blocked for the current thread while alive; the previous mask comes back on
/// drop (also when unwinding).
pub struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    pub fn new() -> Self {
        // SAFETY: sigset_t is plain data that sigfillset/pthread_sigmask initialise; the call
        // changes only this thread's mask and saves the old one, restored in drop.
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
        // SAFETY: restores the mask saved in `new` on the same thread (the guard is !Send
        // because sigset_t holds no pointers, but it is only ever created and dropped in one
        // scope).
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(sig: libc::c_int) -> bool {
        // SAFETY: queries this thread's mask into a local set.
        unsafe {
            let mut cur: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut cur);
            libc::sigismember(&cur, sig) == 1
        }
    }

    #[test]
    fn blocks_inside_and_restores_after() {
        assert!(!blocked(libc::SIGINT));
        {
            let _g = SignalsBlocked::new();
            assert!(blocked(libc::SIGINT) && blocked(libc::SIGALRM));
            // A thread started now inherits the full mask.
            let child = std::thread::spawn(|| blocked(libc::SIGINT)).join().unwrap();
            assert!(child);
        }
        assert!(!blocked(libc::SIGINT));
    }
}
