//! This backend's ready models: an `ics_encoder::cache::SessionCache` on the backend's
//! thread, and the settings a session is built and run with (provider, capped thread count,
//! memory limit). The cache is keyed by the model's sha256, so a model re-loaded under the
//! same name never runs stale weights and a dropped model ages out.
//!
//! ONNX Runtime's pool threads and the decoding threads only ever see plain buffers; nothing
//! here runs PostgreSQL code while the cache is borrowed except fetching a model's bytes
//! (SPI), whose ERROR unwinds through the borrow and leaves the cache as it was.

use std::cell::RefCell;

use ics_encoder::cache::SessionCache;
use ics_encoder::memory;
use ics_encoder::runtime::{self, LibraryChoice, Runtime};
use ics_encoder::session::{EncoderSession, SessionOptions};
use ics_encoder::EncoderError;

use super::gucs;

thread_local! {
    static CACHE: RefCell<SessionCache> = const { RefCell::new(SessionCache::new()) };
}

/// The library this backend would load now (`ics_hash.onnxruntime_library`, else the
/// installed default, else `$ORT_DYLIB_PATH`).
pub fn library_choice() -> LibraryChoice {
    let setting = gucs::onnxruntime_library();
    LibraryChoice::resolve(
        setting
            .as_deref()
            .map(|p| (p, "ics_hash.onnxruntime_library")),
    )
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

/// Builds a session for `bytes` with the current settings (not cached).
pub fn build(bytes: &[u8]) -> Result<EncoderSession, EncoderError> {
    let rt = runtime()?;
    EncoderSession::build(rt, bytes, options())
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
        if let Some(e) = cache.get(sha256, opts.provider, opts.threads) {
            return Ok(f(&mut e.session));
        }
        let bytes = fetch()?;
        // Room first: the new session's weights and prepacked kernels take about twice the
        // model's size, and cached sessions may hold half the limit.
        let max_entries = gucs::session_cache_size();
        cache.shrink(
            max_entries.saturating_sub(1).max(1),
            (opts.memory_limit / 2).saturating_sub(2 * bytes.len()),
        );
        let session = EncoderSession::build(runtime()?, &bytes, opts)
            .map_err(|e| e.context(format!("model \"{name}\"")))?;
        // Memory figures depend on the CPU's kernels: they are in ics_encoder_info(), not here.
        pgrx::debug1!(
            "ics_hash: model \"{name}\" (sha256 {}) runs on {} with {} intra-op thread(s) ({})",
            &sha256[..12.min(sha256.len())],
            session.provider,
            session.threads,
            session.provider_reason
        );
        let e = cache.insert(sha256, name, session, max_entries, opts.memory_limit);
        Ok(f(&mut e.session))
    })
}

/// Adds a session built elsewhere (by `ics_model_load`'s checks).
pub fn insert(sha256: &str, name: &str, session: EncoderSession) {
    let limit = gucs::encoder_memory_limit();
    CACHE.with_borrow_mut(|c| {
        c.insert(sha256, name, session, gucs::session_cache_size(), limit);
    });
}

/// Drops every cached session of the model with this sha256 (after `ics_model_drop`).
pub fn evict(sha256: &str) {
    CACHE.with_borrow_mut(|c| c.evict(sha256));
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
                    "run_bytes_fixed": s.profile.run_fixed,
                    "run_bytes_per_item": s.profile.run_per_item,
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
