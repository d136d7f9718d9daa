//! Rows inserted after the build (INSERT, UPDATE, COPY): checked here, buffered and written
//! in batches by [`super::pending`], each to its nearest list.
//!
//! The metapage is read once per statement and cached in `ii_AmCache`. An index built before
//! its length was known (untyped column, no rows) learns it when its first buffered rows are
//! written ([`super::pending::flush`]), not when they are inserted: a transaction that rolls
//! back before then leaves no trace. An index whose rows of one length all died forgets that
//! length when a row of another length comes ([`relength`]), so a rolled-back or crashed first
//! insert cannot fix the length for good.

use super::build::tid_of;
use super::relation::PgRelation;
use super::{format_error, length_mismatch};
use ics_index::format::Tid;
use ics_index::open::{open, Opened};
use ics_index::relength::reset_if_all_dead;
use pgrx::pg_sys;
use pgrx::PgMemoryContexts;

struct InsertCache {
    opened: Opened,
}

#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    index_info: *mut pg_sys::IndexInfo,
) -> bool {
    // SAFETY: PostgreSQL passes the open index and heap, the row's one indexed column in
    // `values`/`isnull`, its heap TID and the statement's IndexInfo, whose ii_AmCache we own.
    unsafe {
        if *isnull {
            // Kept for k-NN scans, which return every row (see ics_index::nulls).
            super::pending::add_null(index, tid_of(heap_tid));
            return false;
        }
        let rel = PgRelation::new(index);
        let code = crate::fmgr::varlena_bytes(*values, &*values);
        let cache = (*index_info).ii_AmCache as *mut InsertCache;
        let cache: &mut InsertCache = if cache.is_null() {
            let opened = open(&rel).unwrap_or_else(|e| format_error(index, e));
            let ptr = PgMemoryContexts::For((*index_info).ii_Context)
                .leak_and_drop_on_delete(InsertCache { opened });
            (*index_info).ii_AmCache = ptr as *mut _;
            &mut *ptr
        } else {
            &mut *cache
        };
        let known = cache.opened.code_bytes();
        if known != 0 && code.len() != known {
            if relength(index, heap) {
                cache.opened = open(&rel).unwrap_or_else(|e| format_error(index, e));
            } else {
                length_mismatch(known, code.len(), "a code");
            }
        }
        if let Some(buffered) = super::pending::buffered_length(index) {
            if buffered != code.len() {
                length_mismatch(buffered, code.len(), "a code (rows of this transaction)");
            }
        }
        super::pending::add(index, code, tid_of(heap_tid));
        false
    }
}

/// Whether every entry of `index` points to a heap tuple that is dead to everyone, in which
/// case the index is reset to "no length yet" (see `ics_index::relength`). Takes an
/// ExclusiveLock on the index, held to the end of the transaction: it waits until no other
/// transaction holds inserts not yet written (they write them before they commit), and keeps
/// new ones out meanwhile; scans go on.
unsafe fn relength(index: pg_sys::Relation, heap: pg_sys::Relation) -> bool {
    // SAFETY: open relations of the caller's; the lock is released at transaction end, and
    // the TID check reads the heap under the active snapshot.
    unsafe {
        pg_sys::LockRelation(index, pg_sys::ExclusiveLock as i32);
        let snapshot = pg_sys::GetActiveSnapshot();
        let rel = PgRelation::new(index);
        let mut is_dead = |t: Tid| {
            let mut item = pg_sys::ItemPointerData::default();
            super::build::set_tid(&mut item, t);
            let mut all_dead = false;
            let visible =
                pg_sys::table_index_fetch_tuple_check(heap, &mut item, snapshot, &mut all_dead);
            !visible && all_dead
        };
        reset_if_all_dead(&rel, &mut is_dead).unwrap_or_else(|e| format_error(index, e))
    }
}
