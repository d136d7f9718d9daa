//! CREATE INDEX / REINDEX: sample the table, choose centroids, load every code.
//!
//! Two heap scans: the first draws a reservoir sample of codes (centroids are trained on
//! it), the second assigns and loads all rows in batches sized from `maintenance_work_mem`.
//! Pages are written without WAL and logged at the end with `log_newpage_range`. Progress
//! shows in `pg_stat_progress_create_index` (phases below, blocks and tuples done).

use super::relation::PgRelation;
use super::{length_mismatch, options};
use crate::fmgr::varlena_bytes;
use ics_index::build::{batch_bytes_per_row, default_lists, Builder};
use ics_index::format::Tid;
use ics_index::kmodes;
use ics_index::page::PAGE_SIZE;
use ics_index::relation::{MemRelation, Relation};
use ics_index::sample::Reservoir;
use pgrx::pg_sys;

const PHASE_SAMPLING: i64 = 2;
const PHASE_CENTROIDS: i64 = 3;
const PHASE_LOADING: i64 = 4;
const PHASE_WAL: i64 = 5;

/// Codes the centroids are trained on (at most).
const SAMPLE_ROWS: usize = 65_536;
const KMODES_ITERATIONS: usize = 8;
/// Fixed seed: the same table gives the same index.
const SEED: u64 = 0x1c5_4a54;

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        PHASE_SAMPLING => c"sampling codes",
        PHASE_CENTROIDS => c"choosing centroids",
        PHASE_LOADING => c"loading codes",
        PHASE_WAL => c"writing WAL",
        _ => return std::ptr::null_mut(),
    };
    name.as_ptr() as *mut _
}

fn progress(param: u32, value: i64) {
    // SAFETY: progress reporting is a no-op outside a reporting command.
    unsafe { pg_sys::pgstat_progress_update_param(param as i32, value) }
}

/// The indexed column's declared length in bytes (`hashcode(n)`), if any.
unsafe fn declared_code_bytes(index: pg_sys::Relation) -> Option<usize> {
    unsafe {
        let att = (*(*index).rd_att).attrs.as_slice(1)[0];
        (att.atttypmod > 0).then_some(att.atttypmod as usize / 8)
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn sample_callback(
    _index: pg_sys::Relation,
    _tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: `state` is the Reservoir ambuild passed; `values`/`isnull` hold the one indexed
    // column of the row being scanned.
    let (s, code) = unsafe {
        if *isnull {
            return;
        }
        (
            &mut *(state as *mut Reservoir),
            varlena_bytes(*values, &*values),
        )
    };
    if let Err(m) = s.add(code) {
        length_mismatch(m.expected, m.found, "a code");
    }
}

struct LoadState<'r> {
    builder: Builder<'r, PgRelation>,
    code_bytes: usize,
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn load_callback(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    let s = unsafe { &mut *(state as *mut LoadState) };
    if unsafe { *isnull } {
        return;
    }
    // SAFETY: `values` holds the row's indexed column for the duration of the callback.
    let code = unsafe { varlena_bytes(*values, &*values) };
    if code.len() != s.code_bytes {
        length_mismatch(s.code_bytes, code.len(), "a code");
    }
    s.builder.add(code, unsafe { tid_of(tid) });
    let rows = s.builder.rows();
    if rows % 1024 == 0 {
        progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, rows as i64);
    }
}

/// Writes `tid` into an `ItemPointerData`.
pub fn set_tid(dst: &mut pg_sys::ItemPointerData, tid: Tid) {
    dst.ip_blkid.bi_hi = (tid.block >> 16) as u16;
    dst.ip_blkid.bi_lo = tid.block as u16;
    dst.ip_posid = tid.offset;
}

/// An `ItemPointer` as a [`Tid`].
pub unsafe fn tid_of(tid: pg_sys::ItemPointer) -> Tid {
    unsafe {
        let t = &*tid;
        Tid {
            block: ((t.ip_blkid.bi_hi as u32) << 16) | t.ip_blkid.bi_lo as u32,
            offset: t.ip_posid,
        }
    }
}

/// RelationNeedsWAL(rel).
pub unsafe fn needs_wal(rel: pg_sys::Relation) -> bool {
    unsafe {
        (*(*rel).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
            && (pg_sys::wal_level >= pg_sys::WalLevel::WAL_LEVEL_REPLICA as i32
                || ((*rel).rd_createSubid == 0 && (*rel).rd_firstRelfilenodeSubid == 0))
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    unsafe {
        if pg_sys::RelationGetNumberOfBlocksInFork(index, pg_sys::ForkNumber::MAIN_FORKNUM) != 0 {
            pgrx::error!(
                "index \"{}\" already contains data",
                super::relation_name(index)
            );
        }
        // Rows this transaction inserted before a REINDEX or TRUNCATE: the build reads them
        // (or their absence) from the table.
        super::pending::discard(index);
        // Pass 1: a sample of the codes (and their length).
        progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_SAMPLING);
        let mut sample = Reservoir::new(SAMPLE_ROWS, declared_code_bytes(index).unwrap_or(0), SEED);
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            true,
            Some(sample_callback),
            &mut sample as *mut Reservoir as *mut _,
            std::ptr::null_mut(),
        );
        let rel = PgRelation::for_build(index);
        let heap_tuples;
        let index_tuples;
        if sample.seen() == 0 {
            // No rows: an index with one list (or none yet, if the length is unknown).
            build_empty_into(&rel, sample.code_bytes());
            heap_tuples = 0.0;
            index_tuples = 0.0;
        } else {
            let nb = sample.code_bytes();
            let seen = sample.seen();
            let codes = sample.into_codes();
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_CENTROIDS);
            let lists = match options::lists(index) {
                0 => default_lists(seen),
                n => n,
            };
            let centroids = kmodes::train(&codes, nb, lists, KMODES_ITERATIONS, SEED, &mut || {
                pgrx::check_for_interrupts!();
            });
            drop(codes);
            let kept_lists = centroids.len() / nb;

            // Pass 2: load every row, in batches that fit maintenance_work_mem next to one
            // open page per list.
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOADING);
            progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL, seen as i64);
            let budget = pg_sys::maintenance_work_mem as usize * 1024;
            let batch_rows =
                budget.saturating_sub(kept_lists * PAGE_SIZE) / batch_bytes_per_row(nb);
            let mut load = LoadState {
                builder: Builder::new(&rel, centroids, nb, batch_rows.max(1024)),
                code_bytes: nb,
            };
            heap_tuples = pg_sys::table_index_build_scan(
                heap,
                index,
                index_info,
                true,
                true,
                Some(load_callback),
                &mut load as *mut LoadState as *mut _,
                std::ptr::null_mut(),
            );
            let summary = load.builder.finish();
            index_tuples = summary.rows as f64;
            pgrx::debug1!(
                "mih: built {} rows into {} entries on {} pages, {} lists ({} non-empty, largest radius {})",
                summary.rows,
                summary.entries,
                summary.data_pages,
                summary.lists,
                summary.nonempty_lists,
                summary.max_radius
            );
        }
        if needs_wal(index) {
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_WAL);
            pg_sys::log_newpage_range(
                index,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                0,
                rel.nblocks(),
                true,
            );
        }
        let mut result = pgrx::PgBox::<pg_sys::IndexBuildResult>::alloc0();
        result.heap_tuples = heap_tuples;
        result.index_tuples = index_tuples;
        result.into_pg()
    }
}

/// Metapage and directory of an index without rows. `code_bytes` 0: length not known yet
/// (an untyped `hashcode` column); the first insert sets it.
fn build_empty_into<R: Relation>(rel: &R, code_bytes: usize) {
    if code_bytes == 0 {
        ics_index::build::build_unsized(rel);
    } else {
        ics_index::build::build_empty(rel, code_bytes);
    }
}

/// The init fork of an unlogged index: built in memory, written and logged directly (the
/// buffer manager does not handle init forks; see contrib/bloom).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    unsafe {
        // An empty index is a metapage, a directory page and at most one data page.
        let mem = MemRelation::with_capacity(4);
        build_empty_into(&mem, declared_code_bytes(index).unwrap_or(0));
        let smgr = pg_sys::RelationGetSmgr(index);
        for block in 0..mem.nblocks() {
            let mut page = mem.write(block);
            let ptr = page.0.as_mut_ptr() as pg_sys::Page;
            pg_sys::PageSetChecksumInplace(ptr, block);
            pg_sys::smgrwrite(
                smgr,
                pg_sys::ForkNumber::INIT_FORKNUM,
                block,
                ptr as *mut _,
                true,
            );
            pg_sys::log_newpage(
                &mut (*smgr).smgr_rnode.node,
                pg_sys::ForkNumber::INIT_FORKNUM,
                block,
                ptr,
                true,
            );
        }
        pg_sys::smgrimmedsync(smgr, pg_sys::ForkNumber::INIT_FORKNUM);
    }
}
