//! CUDA slots: a bound on how many backends of the cluster hold CUDA sessions at once
//! (`ics_hash.max_cuda_sessions`). Every backend that runs a model on CUDA holds a CUDA
//! context and its sessions' arenas on the device; without a bound, device memory grows with
//! the number of connections until allocations fail mid-query.
//!
//! The extension is not preloaded, so it has no shared memory of its own: a slot is a
//! session-level lock in the lock manager, taken without waiting. Slot `n` (1..=max) is the
//! advisory lock tag
//!
//! ```text
//! database 0 (no database: cluster-wide), classid 1229149000 (0x49435348, "ICSH"),
//! objid n, objsubid 2
//! ```
//!
//! which no SQL advisory lock can name (`pg_advisory_lock` always puts the current database's
//! OID first), so user code cannot take or release it by accident. `pg_locks` shows it, and so
//! does the view `ics_cuda_sessions`.
//!
//! Life of a slot: a backend takes the first free one just before it builds its first CUDA
//! session, and releases it when its last CUDA session leaves its cache (evicted, model
//! dropped); the lock manager releases it when the backend ends, however it ends. When every
//! slot is taken, `auto` builds a CPU session and says so in a NOTICE; `cuda` fails with 53000.
//! No waiting: a slot frees up only when a connection closes or drops its models, which may
//! be never for a pooled connection. `pg_advisory_unlock_all()` and `DISCARD ALL` release
//! session-level advisory locks, this one included: the next encoder call notices, takes a
//! slot again if one is free, and otherwise drops its CUDA sessions (rebuilt on the terms of
//! the moment).
//!
//! Parallel workers take no slot and run on the CPU (`auto`) or fail (`cuda`): members of a
//! lock group never conflict, so a worker would share its leader's slot while creating a CUDA
//! context of its own, and its session would last one query.

use std::cell::Cell;

use ics_encoder::runtime::{self, CudaOptions, ProviderSetting, Runtime};
use pgrx::pg_sys;

use super::gucs;

/// The slots' classid (field 2 of the lock tag): "ICSH".
pub const SLOT_CLASS: u32 = 0x4943_5348;

thread_local! {
    /// The slot this backend holds, as far as it knows (the lock manager has the last word).
    static HELD: Cell<Option<u32>> = const { Cell::new(None) };
}

fn tag(slot: u32) -> pg_sys::LOCKTAG {
    // SET_LOCKTAG_ADVISORY with database 0 and the two-int4-keys form (field 4 = 2).
    pg_sys::LOCKTAG {
        locktag_field1: pg_sys::InvalidOid.to_u32(),
        locktag_field2: SLOT_CLASS,
        locktag_field3: slot,
        locktag_field4: 2,
        locktag_type: pg_sys::LockTagType::LOCKTAG_ADVISORY as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

const MODE: pg_sys::LOCKMODE = pg_sys::ExclusiveLock as pg_sys::LOCKMODE;

fn try_lock(slot: u32) -> bool {
    let t = tag(slot);
    // SAFETY: a valid tag of the user lock method; session lock, no waiting (so no deadlock
    // and no sleep); a full lock table raises an ordinary ERROR.
    let r = unsafe { pg_sys::LockAcquire(&t, MODE, true, true) };
    match r {
        pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL => false,
        pg_sys::LockAcquireResult::LOCKACQUIRE_ALREADY_HELD
        | pg_sys::LockAcquireResult::LOCKACQUIRE_ALREADY_CLEAR => {
            // Held already (by this backend): keep one count of it.
            // SAFETY: releases the count just added to a lock this backend holds.
            unsafe { pg_sys::LockRelease(&t, MODE, true) };
            true
        }
        _ => true,
    }
}

fn held_by_me(slot: u32) -> bool {
    let t = tag(slot);
    // SAFETY: looks the tag up in this backend's local lock table.
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    let held = unsafe { pg_sys::LockHeldByMe(&t, MODE) };
    // SAFETY: as above (PostgreSQL 17 added the "or stronger" flag).
    #[cfg(not(any(feature = "pg15", feature = "pg16")))]
    let held = unsafe { pg_sys::LockHeldByMe(&t, MODE, false) };
    held
}

/// The slot this backend holds now (checked with the lock manager: a `DISCARD ALL` may have
/// released it).
pub fn held() -> Option<u32> {
    let slot = HELD.get()?;
    if held_by_me(slot) {
        Some(slot)
    } else {
        HELD.set(None);
        None
    }
}

/// Whether this backend believes it holds a slot (no lock manager call).
pub fn claimed() -> bool {
    HELD.get().is_some()
}

/// Whether this backend believed it held a slot that the lock manager no longer has for it
/// (released by `pg_advisory_unlock_all()` or `DISCARD ALL`); forgets it.
pub fn lost() -> bool {
    HELD.get().is_some() && held().is_none()
}

fn in_parallel_worker() -> bool {
    // SAFETY: a plain integer global PostgreSQL sets once when a worker starts.
    unsafe { pg_sys::ParallelWorkerNumber >= 0 }
}

/// Whether a session with `setting` could be a CUDA session here (or the developer option
/// `ics_hash.debug_assume_cuda` says to act as if).
pub fn cuda_wanted(rt: &Runtime, setting: ProviderSetting) -> bool {
    setting != ProviderSetting::Cpu && (gucs::debug_assume_cuda() || runtime::cuda_possible(rt))
}

/// The CUDA terms for a session about to be built with `setting`: when it could run on CUDA,
/// this backend takes a slot (if it holds none), or the terms say why it may not.
pub fn admit(rt: &Runtime, setting: ProviderSetting) -> CudaOptions {
    let mut terms = CudaOptions {
        refused: None,
        memory_limit: gucs::cuda_memory_limit(),
    };
    if !cuda_wanted(rt, setting) {
        return terms;
    }
    if in_parallel_worker() {
        terms.refused = Some(
            "parallel workers do not hold CUDA sessions (a worker's session would last one query)"
                .into(),
        );
        return terms;
    }
    let Some(max) = gucs::max_cuda_sessions() else {
        return terms;
    };
    if held().is_some() {
        return terms;
    }
    if max == 0 {
        terms.refused = Some("ics_hash.max_cuda_sessions is 0 (no backend may use CUDA)".into());
        return terms;
    }
    if let Some(slot) = (1..=max).find(|&s| try_lock(s)) {
        HELD.set(Some(slot));
        return terms;
    }
    terms.refused = Some(format!(
        "all {max} CUDA slots (ics_hash.max_cuda_sessions) are held by other backends"
    ));
    terms
}

/// Releases this backend's slot unless `needed` (some cached session still uses CUDA).
pub fn settle(needed: bool) {
    if needed {
        return;
    }
    // held(): a slot the lock manager already released (DISCARD ALL) is only forgotten.
    if let Some(slot) = held() {
        HELD.set(None);
        let t = tag(slot);
        // SAFETY: releases the session lock this backend holds (checked just above).
        unsafe { pg_sys::LockRelease(&t, MODE, true) };
    }
}

/// The slot state for `ics_encoder_info()`.
pub fn describe() -> serde_json::Value {
    let in_use = pgrx::spi::Spi::get_one::<i64>(&format!(
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_locks \
         WHERE locktype OPERATOR(pg_catalog.=) 'advisory' AND database OPERATOR(pg_catalog.=) 0 \
         AND classid OPERATOR(pg_catalog.=) {SLOT_CLASS} AND objsubid OPERATOR(pg_catalog.=) 2 \
         AND granted"
    ))
    .ok()
    .flatten();
    serde_json::json!({
        "max_cuda_sessions": gucs::max_cuda_sessions().map_or(-1, i64::from),
        "slot": held(),
        "slots_in_use": in_use,
        "debug_assume_cuda": gucs::debug_assume_cuda(),
    })
}
