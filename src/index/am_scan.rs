//! Index scans (`amgettuple`, in exact distance order) and bitmap scans (`amgetbitmap`).
//!
//! Conditions: `code <@ hamming_ball(q, r)` (strategy 1, what `hamming_within(code, q, r)`
//! becomes), any number, all must hold. Ordering: `code <~> q` (strategy 2). The search is
//! driven by the ORDER BY code when there is one, else by the first condition; the other
//! conditions filter. An ORDER BY without conditions returns every row, as a sequential scan
//! does: the rows whose code is NULL last, with a NULL distance (NULLS LAST of an ascending
//! order); a condition never matches a NULL code. Each (re)scan counts in
//! `pg_stat_*_indexes.idx_scan`. Results are exact (distances included), so nothing is rechecked for
//! MVCC snapshots; for others (where a vacuumed TID could be reused by a new row before the
//! heap fetch) the executor rechecks the conditions.

use super::pg_relation::PgRelation;
use super::set_tid;
use super::{format_error, length_mismatch, STRATEGY_DISTANCE, STRATEGY_WITHIN};
use crate::hashcode::ball;
use ics_index::open::open;
use ics_index::search::{Query, Search};
use pgrx::pg_sys;
use pgrx::PgMemoryContexts;

#[derive(Default)]
struct ScanState {
    /// Set up at the first fetch after (re)scan; `None` before.
    search: Option<Search>,
    /// No row can match (a NULL condition).
    empty: bool,
    /// ORDER BY a NULL code: rows come in no order with NULL distances.
    null_order: bool,
    started: bool,
}

unsafe fn state<'a>(scan: pg_sys::IndexScanDesc) -> &'a mut ScanState {
    // SAFETY: as the caller promises, opaque is the ScanState ambeginscan made.
    unsafe { &mut *((*scan).opaque as *mut ScanState) }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambeginscan(
    index: pg_sys::Relation,
    nkeys: i32,
    norderbys: i32,
) -> pg_sys::IndexScanDesc {
    // SAFETY: PostgreSQL passes the open index; the scan descriptor and its arrays are
    // allocated in the scan's memory context, as index AMs do.
    unsafe {
        let scan = pg_sys::RelationGetIndexScan(index, nkeys, norderbys);
        // Dropped with the scan's memory context, also when the query fails.
        (*scan).opaque = PgMemoryContexts::CurrentMemoryContext
            .leak_and_drop_on_delete(ScanState::default()) as *mut _;
        if norderbys > 0 {
            let n = norderbys as usize;
            (*scan).xs_orderbyvals =
                pg_sys::palloc0(n * std::mem::size_of::<pg_sys::Datum>()) as *mut _;
            (*scan).xs_orderbynulls = pg_sys::palloc(n) as *mut bool;
            std::ptr::write_bytes((*scan).xs_orderbynulls, 1, n);
        }
        scan
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amrescan(
    scan: pg_sys::IndexScanDesc,
    keys: pg_sys::ScanKey,
    nkeys: i32,
    orderbys: pg_sys::ScanKey,
    norderbys: i32,
) {
    // SAFETY: `scan` is ours (ambeginscan); PostgreSQL passes `nkeys` keys and `norderbys`
    // ORDER BY keys, which the descriptor was sized for.
    unsafe {
        if !keys.is_null() && nkeys > 0 {
            std::ptr::copy(keys, (*scan).keyData, nkeys as usize);
        }
        if !orderbys.is_null() && norderbys > 0 {
            std::ptr::copy(orderbys, (*scan).orderByData, norderbys as usize);
        }
        *state(scan) = ScanState::default();
    }
}

/// `pgstat_count_index_scan(index)`, a macro pgrx has no binding for: one more scan in
/// `pg_stat_*_indexes.idx_scan`, as btree counts each of its scans. The counter's field is
/// named differently per PostgreSQL major version; this is the one place that names it.
///
/// # Safety
/// `index` is an open relation.
unsafe fn count_index_scan(index: pg_sys::Relation) {
    // SAFETY: as the caller promises; pgstat_info is set up by pgstat_assoc_relation when the
    // relation's statistics are enabled (pgstat_should_count_relation).
    unsafe {
        if (*index).pgstat_info.is_null() {
            if !(*index).pgstat_enabled {
                return;
            }
            pg_sys::pgstat_assoc_relation(index);
            if (*index).pgstat_info.is_null() {
                return;
            }
        }
        let info = &mut *(*index).pgstat_info;
        #[cfg(feature = "pg15")]
        {
            info.t_counts.t_numscans += 1;
        }
        #[cfg(not(feature = "pg15"))]
        {
            info.counts.numscans += 1;
        }
    }
}

/// Reads the scan keys into a query (once per rescan).
unsafe fn start(scan: pg_sys::IndexScanDesc) {
    // SAFETY: `scan` is ours; its keys were copied by amrescan and hold this opclass's
    // argument types (hamming_ball for conditions, hashcode for ORDER BY).
    unsafe {
        let st = state(scan);
        st.started = true;
        let index = (*scan).indexRelation;
        count_index_scan(index);
        // This backend's own buffered rows must be found.
        super::pg_pending::flush(index);
        let rel = PgRelation::for_scan(index);
        let opened = open(&rel).unwrap_or_else(|e| format_error(index, e));
        let nb = opened.code_bytes();
        let mut conditions: Vec<(Vec<u8>, u32)> = Vec::new();
        for i in 0..(*scan).numberOfKeys as usize {
            let key = &*(*scan).keyData.add(i);
            if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
                st.empty = true;
                return;
            }
            debug_assert_eq!(key.sk_strategy, STRATEGY_WITHIN);
            let (radius, code) = ball::datum_parts(key.sk_argument, key);
            if nb != 0 && code.len() != nb {
                length_mismatch(nb, code.len(), "a query code");
            }
            conditions.push((code.to_vec(), radius));
        }
        let mut order: Option<Vec<u8>> = None;
        for i in 0..(*scan).numberOfOrderBys as usize {
            let key = &*(*scan).orderByData.add(i);
            debug_assert_eq!(key.sk_strategy, STRATEGY_DISTANCE);
            if key.sk_flags & pg_sys::SK_ISNULL as i32 != 0 {
                st.null_order = true;
                continue;
            }
            let code = crate::fmgr::varlena_bytes(key.sk_argument, key);
            if nb != 0 && code.len() != nb {
                length_mismatch(nb, code.len(), "a query code");
            }
            order.get_or_insert_with(|| code.to_vec());
        }
        let ordered = (*scan).numberOfOrderBys > 0;
        let query = Query::from_keys(conditions, order, ordered, nb);
        st.search = Some(Search::new(opened, query).unwrap_or_else(|e| format_error(index, e)));
    }
}

fn is_mvcc(snapshot: pg_sys::Snapshot) -> bool {
    // SAFETY: the scan's snapshot is valid for the scan.
    let t = unsafe { (*snapshot).snapshot_type };
    t == pg_sys::SnapshotType::SNAPSHOT_MVCC || t == pg_sys::SnapshotType::SNAPSHOT_HISTORIC_MVCC
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgettuple(
    scan: pg_sys::IndexScanDesc,
    _dir: pg_sys::ScanDirection::Type,
) -> bool {
    // SAFETY: `scan` is ours; the TID and ORDER BY value are written into its own fields.
    unsafe {
        if !state(scan).started {
            start(scan);
        }
        let st = state(scan);
        if st.empty {
            return false;
        }
        let rel = PgRelation::for_scan((*scan).indexRelation);
        let Some((tid, distance)) = st.search.as_mut().and_then(|s| s.next(&rel)) else {
            return false;
        };
        set_tid(&mut (*scan).xs_heaptid, tid);
        (*scan).xs_recheck = !is_mvcc((*scan).xs_snapshot);
        if (*scan).numberOfOrderBys > 0 {
            *(*scan).xs_orderbyvals = pg_sys::Datum::from(distance.unwrap_or(0) as i32);
            *(*scan).xs_orderbynulls = st.null_order || distance.is_none();
            (*scan).xs_recheckorderby = false;
        }
        true
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amgetbitmap(
    scan: pg_sys::IndexScanDesc,
    tbm: *mut pg_sys::TIDBitmap,
) -> i64 {
    // SAFETY: `scan` is ours and `tbm` the executor's bitmap; TIDs go in by batches.
    unsafe {
        start(scan);
        let st = state(scan);
        if st.empty {
            return 0;
        }
        let rel = PgRelation::for_scan((*scan).indexRelation);
        let recheck = !is_mvcc((*scan).xs_snapshot);
        let mut batch: Vec<pg_sys::ItemPointerData> = Vec::with_capacity(1024);
        let mut total = 0i64;
        let search = st.search.as_mut().expect("started");
        while let Some((tid, _)) = search.next(&rel) {
            let mut ip = pg_sys::ItemPointerData::default();
            set_tid(&mut ip, tid);
            batch.push(ip);
            if batch.len() == batch.capacity() {
                pg_sys::tbm_add_tuples(tbm, batch.as_mut_ptr(), batch.len() as i32, recheck);
                total += batch.len() as i64;
                batch.clear();
            }
        }
        pg_sys::tbm_add_tuples(tbm, batch.as_mut_ptr(), batch.len() as i32, recheck);
        total + batch.len() as i64
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amendscan(scan: pg_sys::IndexScanDesc) {
    // The state itself goes with the memory context; free the search's buffers now.
    // SAFETY: `scan` is ours; its state is reset, its memory goes with the scan's context.
    unsafe { *state(scan) = ScanState::default() };
}
