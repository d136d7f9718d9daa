//! `ambuild` (CREATE INDEX / REINDEX), `ambuildempty` (the init fork of unlogged indexes) and
//! the build's progress phases: the two heap scans of `ics_index::build::Build`, fed through
//! `table_index_build_scan`. Pages are written without WAL and logged at the end with
//! `log_newpage_range`. Progress shows in `pg_stat_progress_create_index` (phases, tuples
//! done).

use super::am_options;
use super::pg_relation::PgRelation;
use super::pg_spill::{maintenance_budget, PgSpill};
use super::{length_mismatch, needs_wal, tid_of};
use crate::fmgr::varlena_bytes;
use ics_index::build::{build_empty, Build, Phase};
use ics_index::relation::{MemRelation, Relation};
use pgrx::pg_sys;

/// Progress subphase numbers: PostgreSQL's own end at 1 (`building index`), ours follow in
/// the order of `Phase::ALL`, then WAL.
const FIRST_PHASE: i64 = 2;
const PHASE_WAL: i64 = FIRST_PHASE + Phase::ALL.len() as i64;

fn phase_number(phase: Phase) -> i64 {
    FIRST_PHASE + Phase::ALL.iter().position(|p| *p == phase).unwrap_or(0) as i64
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildphasename(phase: i64) -> *mut std::ffi::c_char {
    if phase == PHASE_WAL {
        return c"writing WAL".as_ptr() as *mut _;
    }
    let Some(p) = Phase::ALL.into_iter().find(|p| phase_number(*p) == phase) else {
        return std::ptr::null_mut();
    };
    // A palloc'd copy: PostgreSQL only reads it.
    let name = std::ffi::CString::new(p.name()).expect("phase names have no NUL");
    // SAFETY: pstrdup copies the NUL-terminated string into the current memory context.
    unsafe { pg_sys::pstrdup(name.as_ptr()) }
}

fn progress(param: u32, value: i64) {
    // SAFETY: progress reporting is a no-op outside a reporting command.
    unsafe { pg_sys::pgstat_progress_update_param(param as i32, value) }
}

fn progress_phase(phase: Phase) {
    progress(pg_sys::PROGRESS_CREATEIDX_SUBPHASE, phase_number(phase));
}

type PgBuild<'a> = Build<'a, PgRelation, PgSpill>;

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn sample_callback(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    _alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: `state` is the Build ambuild passed; `values`/`isnull`/`tid` describe the one
    // indexed column of the row being scanned, valid for the duration of the callback.
    let (b, code, tid) = unsafe {
        (
            &mut *(state as *mut PgBuild),
            (!*isnull).then(|| varlena_bytes(*values, &*values)),
            tid_of(tid),
        )
    };
    if let Err(m) = b.sample(code, tid) {
        length_mismatch(m.expected, m.found, "a code");
    }
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
    // SAFETY: as in sample_callback.
    let (b, code, tid) = unsafe {
        if *isnull {
            return;
        }
        (
            &mut *(state as *mut PgBuild),
            varlena_bytes(*values, &*values),
            tid_of(tid),
        )
    };
    if let Err(m) = b.add(code, tid) {
        length_mismatch(m.expected, m.found, "a code");
    }
    if b.rows().is_multiple_of(1024) {
        progress(pg_sys::PROGRESS_CREATEIDX_TUPLES_DONE, b.rows() as i64);
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
        let code_bytes = super::declared_code_bytes(heap, index, index_info);
        // Rows this transaction inserted before a REINDEX or TRUNCATE: the build reads them
        // (or their absence) from the table.
        super::pg_pending::discard(index);
        let rel = PgRelation::for_build(index);
        let spill = PgSpill;
        let mut build = Build::new(
            &rel,
            &spill,
            maintenance_budget(),
            code_bytes,
            am_options::options(index),
        );
        let scan = |callback: pg_sys::IndexBuildCallback, build: &mut PgBuild| {
            pg_sys::table_index_build_scan(
                heap,
                index,
                index_info,
                true,
                true,
                callback,
                build as *mut PgBuild as *mut _,
                std::ptr::null_mut(),
            )
        };
        progress_phase(Phase::Sampling);
        let heap_tuples = scan(Some(sample_callback), &mut build);
        progress_phase(Phase::Choosing);
        if build.choose() {
            progress_phase(Phase::Loading);
            progress(
                pg_sys::PROGRESS_CREATEIDX_TUPLES_TOTAL,
                build.sampled_rows() as i64,
            );
            scan(Some(load_callback), &mut build);
        }
        let summary = build
            .finish(&mut |p| progress_phase(p))
            .unwrap_or_else(|e| super::format_error(index, e));
        pgrx::debug1!("mih: {}", summary.description);
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
        result.index_tuples = (summary.rows + summary.null_rows) as f64;
        result.into_pg()
    }
}

/// The init fork of an unlogged index: built in memory, written and logged directly (the
/// buffer manager does not handle init forks; see contrib/bloom).
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn ambuildempty(index: pg_sys::Relation) {
    // An empty index is a metapage, a directory page and at most one data page.
    let mem = MemRelation::with_capacity(4);
    // SAFETY: PostgreSQL passes the open unlogged index.
    let code_bytes = unsafe { super::index_code_bytes(index) };
    // SAFETY: as above.
    let strategy = unsafe { am_options::options(index) }.strategy;
    build_empty(
        &mem,
        code_bytes.expect("ambuild refuses an untyped column"),
        strategy,
    );
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
