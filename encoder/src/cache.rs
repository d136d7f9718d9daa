//! Ready sessions kept for reuse, keyed by the model's identity (the sha256 of its bytes) and
//! the execution-provider setting it was built for. A model re-loaded under the same name has
//! other bytes, hence another key: a stale session is never used, and a dropped model ages
//! out. One session per key: a session built with another thread count replaces the old one
//! rather than joining it, so changing a thread setting cannot pile up sessions and threads.
//!
//! Two bounds, least recently used out: a count, and the memory the cached sessions hold
//! (their measured resident bytes) of at most half the encoder's memory limit, which leaves
//! the other half for runs.

use crate::runtime::ProviderSetting;
use crate::session::EncoderSession;

/// A cached session.
pub struct Entry {
    pub sha256: String,
    /// The name it was first resolved by (informational: several names may share bytes).
    pub name: String,
    pub session: EncoderSession,
    last_used: u64,
}

/// The cache (the caller keeps one per process or per thread).
#[derive(Default)]
pub struct SessionCache {
    entries: Vec<Entry>,
    clock: u64,
}

impl SessionCache {
    pub const fn new() -> Self {
        SessionCache {
            entries: Vec::new(),
            clock: 0,
        }
    }

    fn position(&self, sha256: &str, setting: ProviderSetting) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.sha256 == sha256 && e.session.setting == setting)
    }

    /// Whether a session for (`sha256`, `setting`) is cached (whatever its thread count).
    pub fn contains(&self, sha256: &str, setting: ProviderSetting) -> bool {
        self.position(sha256, setting).is_some()
    }

    /// The session for (`sha256`, `setting`) if cached with `threads` threads (touching it).
    pub fn get(
        &mut self,
        sha256: &str,
        setting: ProviderSetting,
        threads: usize,
    ) -> Option<&mut Entry> {
        let i = self.position(sha256, setting)?;
        if self.entries[i].session.threads != threads {
            return None;
        }
        self.clock += 1;
        let e = &mut self.entries[i];
        e.last_used = self.clock;
        Some(e)
    }

    /// Adds a session (replacing one of the same key), then evicts the least recently used
    /// others beyond `max_entries` or beyond `memory_limit / 2` resident bytes in all.
    pub fn insert(
        &mut self,
        sha256: &str,
        name: &str,
        session: EncoderSession,
        max_entries: usize,
        memory_limit: usize,
    ) -> &mut Entry {
        if let Some(i) = self.position(sha256, session.setting) {
            self.entries.swap_remove(i);
        }
        self.clock += 1;
        self.entries.push(Entry {
            sha256: sha256.to_string(),
            name: name.to_string(),
            session,
            last_used: self.clock,
        });
        self.shrink(max_entries.max(1), memory_limit / 2);
        let newest = self
            .entries
            .iter()
            .position(|e| e.last_used == self.clock)
            .expect("the new entry is never evicted");
        &mut self.entries[newest]
    }

    /// Evicts the least recently used sessions (never the most recent one) until at most
    /// `max_entries` remain and they hold at most `max_resident` bytes.
    pub fn shrink(&mut self, max_entries: usize, max_resident: usize) {
        loop {
            let resident: usize = self.resident();
            if self.entries.len() <= 1
                || (self.entries.len() <= max_entries && resident <= max_resident)
            {
                return;
            }
            let oldest = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
                .expect("non-empty");
            self.entries.swap_remove(oldest);
        }
    }

    /// Bytes the cached sessions hold (as measured when each was built).
    pub fn resident(&self) -> usize {
        self.entries
            .iter()
            .map(|e| e.session.profile.resident)
            .sum()
    }

    /// Drops every session of the model with this sha256.
    pub fn evict(&mut self, sha256: &str) {
        self.entries.retain(|e| e.sha256 != sha256);
    }

    /// The cached sessions, most recently used first.
    pub fn entries(&self) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self.entries.iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.last_used));
        v
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
