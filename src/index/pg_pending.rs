//! Inserted rows are buffered per backend and written to the index in batches.
//!
//! Writing one row at a time costs a page lock and a Generic WAL record per row; written in
//! batches, rows are grouped by list and each list's tail page is locked and logged once per
//! batch (`ics_index::insert::insert_batch`; substring tables append to their tail). A buffered row is invisible to everyone until it
//! is written, so buffers are written before anything could need them:
//! - before this backend scans or verifies the index (its own uncommitted rows must be found);
//! - before the transaction commits or prepares (other backends see the rows from then on);
//! - when a buffer reaches `work_mem`.
//!
//! Rows of a subtransaction that rolls back are dropped (their heap tuples are dead); every
//! buffer is dropped when the transaction aborts. A rebuild of the index (REINDEX, TRUNCATE)
//! drops its buffer too: the build reads those rows from the table.

use super::pg_relation::PgRelation;
use super::{length_mismatch, or_format_error};
use ics_index::format::Tid;
use ics_index::insert::insert_batch;
use ics_index::open::open;
use ics_index::pending::PendingRows;
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

thread_local! {
    static BUFFERS: RefCell<BTreeMap<u32, PendingRows>> = const { RefCell::new(BTreeMap::new()) };
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

unsafe fn oid_of(index: pg_sys::Relation) -> u32 {
    // SAFETY: an open relation.
    unsafe { (*index).rd_id.to_u32() }
}

/// Rows a buffer holds before it is written (about `work_mem` of memory).
fn limit(code_bytes: usize) -> usize {
    // SAFETY: reads a GUC.
    let bytes = unsafe { pg_sys::work_mem } as usize * 1024;
    (bytes / (code_bytes + std::mem::size_of::<Tid>() + 4)).max(1024)
}

/// Buffers one row for `index`, writing the buffer when it is full.
///
/// # Safety
/// `index` is an open mih index, locked for inserts (RowExclusiveLock) by the caller.
pub unsafe fn add(index: pg_sys::Relation, code: &[u8], tid: Tid) {
    // SAFETY: as the caller promises.
    unsafe { add_row(index, |buf, level| buf.push(code, tid, level)) }
}

/// Buffers one row whose code is NULL for `index`.
///
/// # Safety
/// As for [`add`].
pub unsafe fn add_null(index: pg_sys::Relation, tid: Tid) {
    // SAFETY: as the caller promises.
    unsafe { add_row(index, |buf, level| buf.push_null(tid, level)) }
}

unsafe fn add_row(index: pg_sys::Relation, push: impl FnOnce(&mut PendingRows, i32)) {
    register_callbacks();
    // SAFETY: reads transaction state.
    let level = unsafe { pg_sys::GetCurrentTransactionNestLevel() };
    // SAFETY: `index` is open (the caller's).
    let oid = unsafe { oid_of(index) };
    let full = BUFFERS.with(|b| {
        let mut buffers = b.borrow_mut();
        let buf = buffers.entry(oid).or_default();
        push(buf, level);
        buf.len() >= limit(buf.code_bytes().unwrap_or(0))
    });
    if full {
        // SAFETY: as above.
        unsafe { flush(index) };
    }
}

/// Writes `index`'s buffered rows (no-op when there are none).
///
/// # Safety
/// `index` is an open mih index.
pub unsafe fn flush(index: pg_sys::Relation) {
    // SAFETY: `index` is open (the caller's).
    let oid = unsafe { oid_of(index) };
    let Some(buf) = BUFFERS.with(|b| b.borrow_mut().remove(&oid)) else {
        return;
    };
    let rel = PgRelation::new(index);
    if let Some(code_bytes) = buf.code_bytes() {
        // SAFETY: `index` is open (the caller's), here and below.
        let opened = unsafe { or_format_error(index, open(&rel)) };
        if opened.code_bytes() != code_bytes {
            length_mismatch(opened.code_bytes(), code_bytes, "a code");
        }
        let mut scratch = Vec::new();
        let (codes, tids) = buf.rows();
        // SAFETY: as above.
        unsafe {
            or_format_error(
                index,
                insert_batch(&rel, &opened, codes, tids, &mut scratch),
            )
        };
    }
    // SAFETY: as above.
    unsafe { or_format_error(index, ics_index::nulls::append(&rel, &buf.nulls())) };
}

/// Drops `index`'s buffered rows (its rebuild reads them from the table).
///
/// # Safety
/// `index` is an open mih index.
pub unsafe fn discard(index: pg_sys::Relation) {
    // SAFETY: `index` is open (the caller's).
    let oid = unsafe { oid_of(index) };
    BUFFERS.with(|b| b.borrow_mut().remove(&oid));
}

/// Writes every buffer (before commit).
fn flush_all() {
    let oids: Vec<u32> = BUFFERS.with(|b| b.borrow().keys().copied().collect());
    for oid in oids {
        // SAFETY: the inserts hold RowExclusiveLock on the index until the transaction ends;
        // an index dropped since then opens as NULL, and its rows go with it.
        unsafe {
            let index =
                pg_sys::try_index_open(pg_sys::Oid::from(oid), pg_sys::RowExclusiveLock as i32);
            if index.is_null() {
                BUFFERS.with(|b| b.borrow_mut().remove(&oid));
                continue;
            }
            flush(index);
            pg_sys::index_close(index, pg_sys::RowExclusiveLock as i32);
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PARALLEL_PRE_COMMIT | XACT_EVENT_PRE_PREPARE => {
            flush_all()
        }
        XACT_EVENT_ABORT
        | XACT_EVENT_PARALLEL_ABORT
        | XACT_EVENT_COMMIT
        | XACT_EVENT_PARALLEL_COMMIT
        | XACT_EVENT_PREPARE => BUFFERS.with(|b| b.borrow_mut().clear()),
        _ => {}
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    // SAFETY: reads transaction state; the level is the subtransaction ending.
    let level = unsafe { pg_sys::GetCurrentTransactionNestLevel() };
    BUFFERS.with(|b| {
        for buf in b.borrow_mut().values_mut() {
            match event {
                // Rows of the rolled-back subtransaction (and its children) are dead.
                pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => buf.abort_level(level),
                // Committed into the parent: they now live or die with it.
                pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => buf.commit_level(level),
                _ => {}
            }
        }
        b.borrow_mut().retain(|_, buf| !buf.is_empty());
    });
}

fn register_callbacks() {
    if !REGISTERED.with(|r| r.replace(true)) {
        // SAFETY: registered once per backend, for the backend's lifetime.
        unsafe {
            pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
            pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
        }
    }
}
