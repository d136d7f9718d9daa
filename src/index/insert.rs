//! Rows inserted after the build (INSERT, UPDATE, COPY): checked here, buffered and written
//! in batches by [`super::pending`], each to its nearest list.
//!
//! The metapage is read once per statement and cached in `ii_AmCache` (the code length never
//! changes after the build, except that an index built before its length was known fixes it
//! at the first insert).

use super::build::{datum_code, tid_of};
use super::relation::PgRelation;
use super::{format_error, length_mismatch};
use ics_index::directory::Directory;
use ics_index::insert::fix_code_length;
use pgrx::pg_sys;
use pgrx::PgMemoryContexts;

struct InsertCache {
    dir: Directory,
}

#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    _heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    index_info: *mut pg_sys::IndexInfo,
) -> bool {
    unsafe {
        if *isnull {
            return false; // NULL codes are not indexed
        }
        let rel = PgRelation::new(index);
        let code = datum_code(*values);
        let cache = (*index_info).ii_AmCache as *mut InsertCache;
        let cache: &mut InsertCache = if cache.is_null() {
            let dir = Directory::read(&rel).unwrap_or_else(|e| format_error(index, e));
            let ptr = PgMemoryContexts::For((*index_info).ii_Context)
                .leak_and_drop_on_delete(InsertCache { dir });
            (*index_info).ii_AmCache = ptr as *mut _;
            &mut *ptr
        } else {
            &mut *cache
        };
        if cache.dir.code_bytes() == 0 {
            fix_code_length(&rel, code.len()).unwrap_or_else(|e| format_error(index, e));
            cache.dir = Directory::read(&rel).unwrap_or_else(|e| format_error(index, e));
        }
        if code.len() != cache.dir.code_bytes() {
            length_mismatch(cache.dir.code_bytes(), code.len(), "a code");
        }
        super::pending::add(index, code, tid_of(heap_tid));
        false
    }
}
