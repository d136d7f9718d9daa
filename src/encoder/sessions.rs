//! This backend's ready models: an `ics_encoder::cache::SessionCache` on the backend's
//! thread, and the settings a session is built and run with (provider, capped thread count,
//! memory limit). The cache is keyed by the model's sha256, so a model re-loaded under the
//! same name never runs stale weights and a dropped model ages out.
//!
//! Sessions that may run on CUDA are built on the terms of [`slots`]: a backend holds a CUDA
//! slot while any of its cached sessions uses CUDA, and releases it when the last one leaves
//! the cache.
//!
//! ONNX Runtime's pool threads and the decoding threads only ever see plain buffers; nothing
//! here runs PostgreSQL code while the cache is borrowed except fetching a model's bytes
//! (SPI), whose ERROR unwinds through the borrow and leaves the cache as it was.

use std::cell::RefCell;

use ics_encoder::cache::SessionCache;
use ics_encoder::memory;
use ics_encoder::runtime::{
    self, Candidate, LibraryChoice, ProviderSetting, Runtime, CPU_PROVIDER,
};
use ics_encoder::session::{EncoderSession, SessionOptions};
use ics_encoder::EncoderError;

use super::{gucs, slots};

thread_local! {
    static CACHE: RefCell<SessionCache> = const { RefCell::new(SessionCache::new()) };
    /// The cached sessions (sha256, setting) that hold this backend's CUDA slot: those on
    /// CUDA, and under `ics_hash.debug_assume_cuda` those built while it held one.
    static SLOT_USERS: RefCell<Vec<(String, ProviderSetting)>> = const { RefCell::new(Vec::new()) };
}

/// Forgets slot users no longer cached and releases the slot when none is left (cheap when
/// this backend holds none).
fn settle(cache: &SessionCache) {
    if !slots::claimed() {
        return;
    }
    let needed = SLOT_USERS.with_borrow_mut(|users| {
        users.retain(|(sha, setting)| cache.contains(sha, *setting));
        !users.is_empty()
    });
    slots::settle(needed);
}

/// After a `DISCARD ALL` or `pg_advisory_unlock_all()` released the slot under this
/// backend's CUDA sessions: take one again, or drop those sessions (they are rebuilt on the
/// terms of the moment).
fn recheck_slot(cache: &mut SessionCache) {
    if !slots::lost() {
        return;
    }
    let users = SLOT_USERS.with_borrow(|u| u.clone());
    if let (Some(&(_, setting)), Ok(rt)) = (users.first(), runtime()) {
        if slots::admit(rt, setting).refused.is_none() && slots::held().is_some() {
            return;
        }
    }
    for (sha, _) in &users {
        cache.evict(sha);
    }
    SLOT_USERS.with_borrow_mut(|u| u.clear());
    slots::settle(false);
}

/// Builds a session on this backend's CUDA terms (taking a CUDA slot when it may run on
/// CUDA); `auto` refused a slot says so in a NOTICE. Returns whether the session holds the
/// slot.
fn build_admitted(
    rt: &Runtime,
    name: &str,
    bytes: &[u8],
    opts: SessionOptions,
) -> Result<(EncoderSession, bool), EncoderError> {
    let terms = slots::admit(rt, opts.provider);
    // On failure the caller settles the slot (it may hold the cache).
    let session = EncoderSession::build_checked(rt, bytes, opts, &terms, &gucs::operator_policy())?;
    if let Some(why) = &terms.refused {
        if session.provider == CPU_PROVIDER {
            pgrx::notice!("ics_hash: model \"{name}\" runs on the CPU: {why}");
        }
    }
    let uses_slot = slots::held().is_some()
        && (session.provider == runtime::CUDA_PROVIDER || gucs::debug_assume_cuda())
        && terms.refused.is_none();
    Ok((session, uses_slot))
}

fn remember_slot_user(sha256: &str, setting: ProviderSetting, uses_slot: bool) {
    if uses_slot {
        SLOT_USERS.with_borrow_mut(|u| {
            if !u.iter().any(|(s, p)| s == sha256 && *p == setting) {
                u.push((sha256.to_string(), setting));
            }
        });
    }
}

/// Where `scripts/setup.sh` installs ONNX Runtime (the CPU build from PyPI): what an empty
/// `ics_hash.onnxruntime_library` means. The one place in the extension that names it.
pub const DEFAULT_LIBRARY: &str =
    "/usr/local/lib/ics_hash/onnxruntime-1.31.1/libonnxruntime.so.1.31.1";

/// The library this backend would load now (`ics_hash.onnxruntime_library`, else the
/// installed default, else `$ORT_DYLIB_PATH`).
pub fn library_choice() -> LibraryChoice {
    let setting = gucs::onnxruntime_library();
    LibraryChoice::resolve(&[
        Candidate::Setting {
            value: setting.as_deref(),
            source: "ics_hash.onnxruntime_library",
        },
        Candidate::Installed {
            path: DEFAULT_LIBRARY,
            source: "default",
        },
        Candidate::Env(runtime::LIBRARY_ENV),
    ])
}

/// The process's ONNX Runtime, loaded at the backend's first encoder call (never in
/// `_PG_init`: a preloaded library would start threads in the postmaster).
pub fn runtime() -> Result<&'static Runtime, EncoderError> {
    runtime::load(&library_choice(), "ics_hash")
}

/// The options a session is built with now.
pub fn options() -> SessionOptions {
    SessionOptions {
        provider: gucs::execution_provider().setting(),
        provider_setting_name: "ics_hash.execution_provider",
        threads: gucs::intra_op_threads(),
        memory_limit: gucs::encoder_memory_limit(),
    }
}

/// A session built with the current settings for [`insert`], and whether it holds this
/// backend's CUDA slot.
pub struct Built {
    pub session: EncoderSession,
    uses_slot: bool,
}

/// Builds a session for `bytes` (model `name`) with the current settings, to be [`insert`]ed.
/// Until then it may hold this backend's CUDA slot; a session dropped instead releases it at
/// the next encoder call.
pub fn build(name: &str, bytes: &[u8]) -> Result<Built, EncoderError> {
    let rt = runtime()?;
    match build_admitted(rt, name, bytes, options()) {
        Ok((session, uses_slot)) => Ok(Built { session, uses_slot }),
        Err(e) => {
            CACHE.with_borrow(settle);
            Err(e)
        }
    }
}

/// Runs `f` on the ready session of the model `sha256` (first resolved as `name`), building
/// it from the bytes `fetch` returns when it is not cached with the current settings.
pub fn with_session<R>(
    name: &str,
    sha256: &str,
    fetch: impl FnOnce() -> Result<Vec<u8>, EncoderError>,
    f: impl FnOnce(&mut EncoderSession) -> R,
) -> Result<R, EncoderError> {
    let opts = options();
    memory::set_limit(opts.memory_limit);
    CACHE.with_borrow_mut(|cache| {
        recheck_slot(cache);
        // A session built and dropped by a failed ics_model_load may have taken the slot.
        settle(cache);
        if let Some(e) = cache.get(sha256, opts.provider, opts.threads) {
            // Built while ics_hash.extra_operators allowed more: rebuilt (and refused) when
            // the setting of the moment does not.
            if gucs::operator_policy().allows_all(&e.session.operators_beyond_list) {
                return Ok(f(&mut e.session));
            }
            cache.evict(sha256);
            settle(cache);
        }
        let bytes = fetch()?;
        // Room first: the new session's weights and prepacked kernels take about twice the
        // model's size, and cached sessions may hold half the limit.
        let max_entries = gucs::session_cache_size();
        cache.shrink(
            max_entries.saturating_sub(1).max(1),
            (opts.memory_limit / 2).saturating_sub(2 * bytes.len()),
        );
        let (session, uses_slot) = match build_admitted(runtime()?, name, &bytes, opts) {
            Ok(built) => built,
            Err(e) => {
                settle(cache);
                return Err(e.context(format!("model \"{name}\"")));
            }
        };
        // Memory figures depend on the CPU's kernels: they are in ics_encoder_info(), not here.
        pgrx::debug1!(
            "ics_hash: model \"{name}\" (sha256 {}) runs on {} with {} intra-op thread(s) ({})",
            &sha256[..12.min(sha256.len())],
            session.provider,
            session.threads,
            session.provider_reason
        );
        remember_slot_user(sha256, opts.provider, uses_slot);
        cache.insert(sha256, name, session, max_entries, opts.memory_limit);
        settle(cache);
        let e = cache
            .get(sha256, opts.provider, opts.threads)
            .expect("the newest entry is never evicted");
        Ok(f(&mut e.session))
    })
}

/// Adds a session [`build`] made (for `ics_model_load`'s checks).
pub fn insert(sha256: &str, name: &str, built: Built) {
    let limit = gucs::encoder_memory_limit();
    remember_slot_user(sha256, built.session.setting, built.uses_slot);
    CACHE.with_borrow_mut(|c| {
        c.insert(
            sha256,
            name,
            built.session,
            gucs::session_cache_size(),
            limit,
        );
        settle(c);
    });
}

/// Drops every cached session of the model with this sha256 (after `ics_model_drop`).
pub fn evict(sha256: &str) {
    CACHE.with_borrow_mut(|c| {
        c.evict(sha256);
        settle(c);
    });
}

/// Descriptions of the cached models, most recently used first.
pub fn describe_all() -> Vec<serde_json::Value> {
    CACHE.with_borrow(|c| {
        c.entries()
            .iter()
            .map(|e| {
                let s = &e.session;
                serde_json::json!({
                    "model": e.name,
                    "sha256": e.sha256,
                    "bits": s.contract.bits,
                    "input_kind": s.contract.input.kind(),
                    "execution_provider": s.provider,
                    "reason": s.provider_reason,
                    "setting": s.setting.as_str(),
                    "intra_op_threads": s.threads,
                    "load_ms": (s.load_ms * 1000.0).round() / 1000.0,
                    "resident_bytes": s.profile.resident,
                    "device_memory_limit_bytes": s.device_memory_limit,
                    "device_memory": s.device_memory().map(|r| match r {
                        // ONNX Runtime gives every figure as text.
                        Ok(stats) => serde_json::Value::Object(
                            stats
                                .into_iter()
                                .map(|(k, v)| {
                                    let v = v.parse::<i64>().map_or(v.into(), Into::into);
                                    (k, v)
                                })
                                .collect(),
                        ),
                        Err(e) => serde_json::json!({ "error": e }),
                    }),
                    "cuda_slot": SLOT_USERS.with_borrow(|u| {
                        u.iter().any(|(sha, p)| sha == &e.sha256 && *p == s.setting)
                    }),
                    "run_bytes_fixed": s.profile.run_fixed,
                    "run_bytes_per_item": s.profile.run_per_item,
                    // null: items are not capped (the trial runs were too fast to time).
                    "max_items_per_run": (s.max_items_per_run != usize::MAX).then_some(s.max_items_per_run),
                    "runs": s.runs,
                    "items": s.items,
                })
            })
            .collect()
    })
}

/// sha256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    ics_codes::code::to_hex(&Sha256::digest(bytes))
}
