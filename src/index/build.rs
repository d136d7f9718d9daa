//! CREATE INDEX / REINDEX: sample the table, choose the strategy, load every code.
//!
//! Two heap scans: the first draws a reservoir sample of codes, on which the strategy is
//! chosen (by measuring both, unless `WITH (strategy = ...)` says) and, for lists, the
//! centroids are trained; the second loads all rows: into their lists in batches sized from
//! `maintenance_work_mem`, or into an external sort (spilling to temporary files beyond
//! `maintenance_work_mem`) from which the substring tables are written. Pages are written
//! without WAL and logged at the end with `log_newpage_range`. Progress shows in
//! `pg_stat_progress_create_index` (phases below, blocks and tuples done).

use super::relation::PgRelation;
use super::spill::{maintenance_budget, PgSpill};
use super::{length_mismatch, options};
use crate::fmgr::varlena_bytes;
use ics_index::format::{Strategy, Tid};
use ics_index::lists::build::{batch_bytes_per_row, Builder};
use ics_index::page::PAGE_SIZE;
use ics_index::relation::{MemRelation, Relation};
use ics_index::sample::Reservoir;
use ics_index::sort::Sorter;
use ics_index::strategy::{choose, Requested};
use ics_index::substrings::build::{push_row, row_sorter, SortedRows};
use pgrx::pg_sys;

const PHASE_SAMPLING: i64 = 2;
const PHASE_CHOOSING: i64 = 3;
const PHASE_LOADING: i64 = 4;
const PHASE_WAL: i64 = 5;
const PHASE_WRITING_TABLES: i64 = 6;

/// Codes the strategy is chosen and the centroids are trained on (at most).
const SAMPLE_ROWS: usize = 65_536;
/// Fixed seed: the same table gives the same index.
const SEED: u64 = 0x1c5_4a54;

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    let name: &'static std::ffi::CStr = match phase {
        PHASE_SAMPLING => c"sampling codes",
        PHASE_CHOOSING => c"choosing the strategy",
        PHASE_LOADING => c"loading codes",
        PHASE_WRITING_TABLES => c"writing substring tables",
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
    // SAFETY: an open index has one attribute, described in rd_att.
    unsafe {
        // PostgreSQL 18 moved the attributes behind TupleDescAttr (compact_attrs first).
        #[cfg(any(feature = "pg15", feature = "pg16"))]
        let att = (*(*index).rd_att).attrs.as_slice(1)[0];
        #[cfg(not(any(feature = "pg15", feature = "pg16")))]
        let att = *pg_sys::TupleDescAttr((*index).rd_att, 0);
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

/// Where pass 2 puts rows: a lists builder, or the sort the substring tables are written from.
enum Load<'r, 's> {
    Lists(Builder<'r, PgRelation>),
    Substrings(Sorter<'s, PgSpill>, Vec<u8>),
}

struct LoadState<'r, 's> {
    load: Load<'r, 's>,
    code_bytes: usize,
    rows: u64,
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
    // SAFETY: `state` is the LoadState ambuild passed; `values`/`isnull` hold the one indexed
    // column of the row being scanned, valid for the duration of the callback.
    let (s, code, tid) = unsafe {
        if *isnull {
            return;
        }
        (
            &mut *(state as *mut LoadState),
            varlena_bytes(*values, &*values),
            tid_of(tid),
        )
    };
    if code.len() != s.code_bytes {
        length_mismatch(s.code_bytes, code.len(), "a code");
    }
    match &mut s.load {
        Load::Lists(b) => b.add(code, tid),
        Load::Substrings(sorter, scratch) => push_row(sorter, code, tid, scratch),
    }
    s.rows += 1;
    if s.rows % 1024 == 0 {
        progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, s.rows as i64);
    }
}

/// Writes `tid` into an `ItemPointerData`.
pub fn set_tid(dst: &mut pg_sys::ItemPointerData, tid: Tid) {
    dst.ip_blkid.bi_hi = (tid.block >> 16) as u16;
    dst.ip_blkid.bi_lo = tid.block as u16;
    dst.ip_posid = tid.offset;
}

/// An `ItemPointer` as a [`Tid`].
///
/// # Safety
/// `tid` points to a valid `ItemPointerData`.
pub unsafe fn tid_of(tid: pg_sys::ItemPointer) -> Tid {
    // SAFETY: as the caller promises.
    unsafe {
        let t = &*tid;
        Tid {
            block: ((t.ip_blkid.bi_hi as u32) << 16) | t.ip_blkid.bi_lo as u32,
            offset: t.ip_posid,
        }
    }
}

/// RelationNeedsWAL(rel).
///
/// # Safety
/// `rel` is an open relation.
pub unsafe fn needs_wal(rel: pg_sys::Relation) -> bool {
    // SAFETY: plain fields of an open relation and a GUC.
    unsafe {
        // PostgreSQL 16 renamed relfilenode to relfilelocator.
        #[cfg(feature = "pg15")]
        let first_subid = (*rel).rd_firstRelfilenodeSubid;
        #[cfg(not(feature = "pg15"))]
        let first_subid = (*rel).rd_firstRelfilelocatorSubid;
        (*(*rel).rd_rel).relpersistence == pg_sys::RELPERSISTENCE_PERMANENT as std::ffi::c_char
            && (pg_sys::wal_level >= pg_sys::WalLevel::WAL_LEVEL_REPLICA as i32
                || ((*rel).rd_createSubid == 0 && first_subid == 0))
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    // SAFETY: PostgreSQL passes the open heap and (new, empty) index and the IndexInfo; the
    // build scans the heap through table_index_build_scan with callbacks whose state
    // outlives the scan.
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
        let requested = options::strategy(index);
        let heap_tuples;
        let index_tuples;
        if sample.seen() == 0 {
            // No rows: an index without lists or tables (the length unknown, if the column
            // does not fix it).
            build_empty_into(&rel, sample.code_bytes(), requested);
            heap_tuples = 0.0;
            index_tuples = 0.0;
        } else {
            let nb = sample.code_bytes();
            let seen = sample.seen();
            let codes = sample.into_codes();
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_CHOOSING);
            let choice = choose(
                &codes,
                nb,
                seen,
                requested,
                options::lists(index),
                options::substrings(index),
                SEED,
                &mut || {
                    pgrx::check_for_interrupts!();
                },
            );
            drop(codes);
            pgrx::debug1!(
                "mih: strategy {} for {seen} rows (pages per sample query: lists {:?}, substrings {:?})",
                choice.strategy.name(),
                choice.lists_pages,
                choice.substrings_pages
            );
            let budget = maintenance_budget();
            let spill = PgSpill;
            let load = match choice.strategy {
                Strategy::Lists => {
                    // Batches that fit maintenance_work_mem next to one open page per list.
                    let kept_lists = choice.centroids.len() / nb;
                    let batch_rows =
                        budget.saturating_sub(kept_lists * PAGE_SIZE) / batch_bytes_per_row(nb);
                    Load::Lists(Builder::new(
                        &rel,
                        choice.centroids,
                        nb,
                        batch_rows.max(1024),
                    ))
                }
                Strategy::Substrings => {
                    Load::Substrings(row_sorter(&spill, nb, budget), Vec::new())
                }
            };
            // Pass 2: load every row.
            progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_LOADING);
            progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL, seen as i64);
            let mut state = LoadState {
                load,
                code_bytes: nb,
                rows: 0,
            };
            heap_tuples = pg_sys::table_index_build_scan(
                heap,
                index,
                index_info,
                true,
                true,
                Some(load_callback),
                &mut state as *mut LoadState as *mut _,
                std::ptr::null_mut(),
            );
            match state.load {
                Load::Lists(builder) => {
                    let summary = builder.finish();
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
                Load::Substrings(sorter, _) => {
                    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, PHASE_WRITING_TABLES);
                    let spilled = sorter.spilled_runs();
                    let mut rows = SortedRows {
                        sorted: sorter.finish(),
                        code_bytes: nb,
                    };
                    let written = ics_index::substrings::build::build(
                        &rel,
                        &spill,
                        budget,
                        nb,
                        options::substrings(index),
                        state.rows,
                        &mut rows,
                        &mut || {
                            pgrx::check_for_interrupts!();
                        },
                    );
                    index_tuples = written.rows as f64;
                    pgrx::debug1!(
                        "mih: built {} rows ({} distinct codes) into {} substring tables on {} pages ({} sorted runs spilled)",
                        written.rows,
                        written.distinct,
                        written.tables.len(),
                        written.pages.len() + written.map_blocks.len() + 1,
                        spilled
                    );
                }
            }
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

/// An index without rows. `code_bytes` 0: length not known yet (an untyped `hashcode`
/// column); the first insert sets it. Substring tables unless lists were asked for.
fn build_empty_into<R: Relation>(rel: &R, code_bytes: usize, requested: Requested) {
    match (requested, code_bytes) {
        (Requested::Lists, 0) => ics_index::lists::build::build_unsized(rel),
        (Requested::Lists, nb) => {
            ics_index::lists::build::build_empty(rel, nb);
        }
        (_, nb) => ics_index::substrings::build::build_empty(rel, nb),
    }
}

/// The init fork of an unlogged index: built in memory, then written and WAL-logged directly
/// (the buffer manager does not handle init forks; see contrib/bloom).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    // An empty index is a metapage, a directory page and at most one data page.
    let mem = MemRelation::with_capacity(4);
    // SAFETY: PostgreSQL passes the open unlogged index.
    let code_bytes = unsafe { declared_code_bytes(index) }.unwrap_or(0);
    // SAFETY: as above.
    build_empty_into(&mem, code_bytes, unsafe { options::strategy(index) });
    // SAFETY: the open unlogged index; its init fork is written from our in-memory copy.
    unsafe { write_init_fork(index, &mem) }
}

/// Page by page through smgr, each page WAL-logged, then synced: the write bypasses shared
/// buffers, so a checkpoint would neither flush it nor order it after its WAL record. (Since
/// 17, contrib/bloom uses the bulk write API, which does the same; pgrx 0.18 has no bindings
/// for it, and smgrwrite, log_newpage and smgrimmedsync remain on every supported major.)
unsafe fn write_init_fork(index: pg_sys::Relation, mem: &MemRelation) {
    // SAFETY: `index` is open (the caller's promise); every page is a full block of ours.
    unsafe {
        let smgr = pg_sys::RelationGetSmgr(index);
        // PostgreSQL 16 renamed RelFileNode to RelFileLocator.
        #[cfg(feature = "pg15")]
        let locator = &mut (*smgr).smgr_rnode.node;
        #[cfg(not(feature = "pg15"))]
        let locator = &mut (*smgr).smgr_rlocator.locator;
        for block in 0..mem.nblocks() {
            let mut page = mem.write(block);
            let ptr = page.0.as_mut_ptr() as pg_sys::Page;
            pg_sys::PageSetChecksumInplace(ptr, block);
            pg_sys::smgrwrite(
                smgr,
                pg_sys::ForkNumber::INIT_FORKNUM,
                block,
                // `char *` on 15, `const void *` since 16.
                ptr as _,
                true,
            );
            pg_sys::log_newpage(locator, pg_sys::ForkNumber::INIT_FORKNUM, block, ptr, true);
        }
        pg_sys::smgrimmedsync(smgr, pg_sys::ForkNumber::INIT_FORKNUM);
    }
}
