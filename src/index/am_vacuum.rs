//! VACUUM: dead TIDs out; then cleanup: pages unlinked earlier recycled, and for substring
//! tables the tail merged into new tables when it has grown (see `ics_index::vacuum`).

use super::format_error;
use super::pg_relation::PgRelation;
use super::pg_spill::{maintenance_budget, PgSpill};
use ics_index::format::Tid;
use ics_index::relation::Relation;
use ics_index::vacuum::{bulk_delete, cleanup};
use pgrx::pg_sys;

unsafe fn stats_or_new(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        // SAFETY: a zeroed IndexBulkDeleteResult in the current memory context is a valid
        // empty result, as PostgreSQL's own AMs make it.
        unsafe { pgrx::PgBox::<pg_sys::IndexBulkDeleteResult>::alloc0() }.into_pg()
    } else {
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambulkdelete(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    callback: pg_sys::IndexBulkDeleteCallback,
    callback_state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: VACUUM passes a valid IndexVacuumInfo with the open index, the running stats
    // (or NULL) and its dead-TID callback with its state.
    unsafe {
        let index = (*info).index;
        let rel = PgRelation::new(index);
        let callback = callback.expect("VACUUM passes a callback");
        let mut is_dead = |tid: Tid| {
            let mut ip = pg_sys::ItemPointerData::default();
            super::set_tid(&mut ip, tid);
            callback(&mut ip, callback_state)
        };
        let v = bulk_delete(&rel, &mut is_dead).unwrap_or_else(|e| format_error(index, e));
        let stats = stats_or_new(stats);
        (*stats).tuples_removed += v.tids_removed as f64;
        (*stats).num_index_tuples = v.tids_remaining as f64;
        (*stats).pages_newly_deleted += v.pages_unlinked as u32;
        (*stats).pages_free += v.pages_recycled as u32;
        (*stats).num_pages = rel.nblocks();
        stats
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amvacuumcleanup(
    info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    // SAFETY: VACUUM passes a valid IndexVacuumInfo with the open index and the stats of the
    // bulk deletes (or NULL when none ran).
    unsafe {
        if (*info).analyze_only {
            return stats;
        }
        let index = (*info).index;
        let rel = PgRelation::new(index);
        let done = cleanup(
            &rel,
            &PgSpill,
            maintenance_budget(),
            super::am_options::substrings(index),
            &mut || {
                pgrx::check_for_interrupts!();
            },
        )
        .unwrap_or_else(|e| format_error(index, e));
        if let Some(m) = &done.merge {
            pgrx::debug1!(
                "mih: merged {} tail rows into {} substring tables of {} rows ({} tombstones dropped, {} pages written, {} retired)",
                m.tail_rows,
                m.substrings,
                m.rows,
                m.tombstones_dropped,
                m.pages_written,
                m.pages_retired
            );
        }
        let stats = if stats.is_null() {
            // No bulk delete ran (nothing dead): report what is there.
            let s = stats_or_new(std::ptr::null_mut());
            (*s).num_index_tuples = (*info).num_heap_tuples;
            (*s).estimated_count = (*info).estimated_count;
            s
        } else {
            stats
        };
        (*stats).pages_free += done.pages_recycled as u32;
        pg_sys::IndexFreeSpaceMapVacuum(index);
        (*stats).num_pages = rel.nblocks();
        stats
    }
}
