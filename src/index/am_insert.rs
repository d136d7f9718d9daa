//! `aminsert`: rows inserted after the build (INSERT, UPDATE, COPY), checked here and
//! buffered by [`super::pg_pending`], which writes them in batches through
//! `ics_index::insert::insert_batch` (lists: each row to the list of its nearest centroid;
//! substring tables: their append-only tail).
//!
//! The metapage is read once per statement and cached in `ii_AmCache`. An index on a
//! `hashcode` column without a declared length (made before such columns were refused)
//! takes no rows: 22023, with the `ALTER TABLE` that gives the column its length and
//! rebuilds the index. Scans of it keep working.

use super::pg_relation::PgRelation;
use super::{format_error, index_code_bytes, length_mismatch, tid_of, untyped_column};
use ics_index::open::{open, Opened};
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
        let code = (!*isnull).then(|| crate::fmgr::varlena_bytes(*values, &*values));
        if index_code_bytes(index).is_none() {
            // The hint's length: this row's code, else the index's.
            let known = || match open(&PgRelation::new(index)) {
                Ok(o) if o.code_bytes() > 0 => Some(o.code_bytes() * 8),
                _ => None,
            };
            untyped_column(
                heap,
                index,
                index_info,
                code.map(|c| c.len() * 8).or_else(known),
            );
        }
        let Some(code) = code else {
            // Kept for k-NN scans, which return every row (see ics_index::nulls).
            super::pg_pending::add_null(index, tid_of(heap_tid));
            return false;
        };
        let cache = (*index_info).ii_AmCache as *mut InsertCache;
        let cache: &mut InsertCache = if cache.is_null() {
            let opened = open(&PgRelation::new(index)).unwrap_or_else(|e| format_error(index, e));
            let ptr = PgMemoryContexts::For((*index_info).ii_Context)
                .leak_and_drop_on_delete(InsertCache { opened });
            (*index_info).ii_AmCache = ptr as *mut _;
            &mut *ptr
        } else {
            &mut *cache
        };
        let known = cache.opened.code_bytes();
        if code.len() != known {
            length_mismatch(known, code.len(), "a code");
        }
        super::pg_pending::add(index, code, tid_of(heap_tid));
        false
    }
}
