//! `mih_verify(index regclass, check_heap boolean)`: checks an index's structure
//! (`ics_index::verify`) and, with `check_heap`, that every visible row with a non-NULL code
//! is in the index with the same code. The C function returns JSON; the SQL wrapper shapes
//! it into columns.
//!
//! Who may run it: the owner of the table (a member of its owning role) or a superuser, as
//! for amcheck's checks. Not `pg_monitor`: the report counts heap rows and index entries of
//! every row, ignoring grants and row-level security, which is the table owner's business.

use super::format_error;
use super::pg_relation::PgRelation;
use super::pg_spill::{maintenance_budget, PgSpill};
use super::tid_of;
use crate::fmgr::varlena_bytes;
use crate::fmgr::{self, raise, sql_function};
use ics_index::format::Tid;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::collections::HashMap;

/// Raises 42P01 for an OID that names no relation and 42501 unless the caller owns it (or is
/// a superuser): before any lock is taken, so nobody can queue a lock on another's index.
unsafe fn check_may_verify(oid: pg_sys::Oid) {
    // SAFETY: catalog lookups by OID; the name is copied before anything else can free it.
    unsafe {
        if pg_sys::get_rel_relkind(oid) == 0 {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!("relation with OID {} does not exist", oid.to_u32()),
                Some(
                    "mih_verify takes the name of a mih index, e.g. mih_verify('images_code_idx').",
                ),
            );
        }
        if pg_sys::superuser() || owns(oid) {
            return;
        }
        let name = pg_sys::get_rel_name(oid);
        let name = if name.is_null() {
            oid.to_u32().to_string()
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        };
        raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            format!("must be owner of index {name} to verify it"),
            Some("mih_verify reads every row of the table regardless of grants and row-level security: only the table's owner or a superuser may run it."),
        );
    }
}

/// Whether the current user owns the relation (an index is owned by its table's owner).
unsafe fn owns(oid: pg_sys::Oid) -> bool {
    // SAFETY: an ownership check by OID against the current user.
    unsafe {
        #[cfg(feature = "pg15")]
        {
            pg_sys::pg_class_ownercheck(oid, pg_sys::GetUserId())
        }
        #[cfg(not(feature = "pg15"))]
        {
            pg_sys::object_ownercheck(pg_sys::RelationRelationId, oid, pg_sys::GetUserId())
        }
    }
}

struct HeapState {
    rows: Vec<(Tid, Vec<u8>)>,
    nulls: Vec<Tid>,
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn heap_callback(
    _index: pg_sys::Relation,
    tid: pg_sys::ItemPointer,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    alive: bool,
    state: *mut std::ffi::c_void,
) {
    // SAFETY: `state` is the HeapState mih_verify passed; `values`/`isnull`/`tid` describe the
    // row being scanned, valid for the duration of the callback.
    unsafe {
        let s = &mut *(state as *mut HeapState);
        if alive && *isnull {
            s.nulls.push(tid_of(tid));
        } else if alive {
            s.rows
                .push((tid_of(tid), varlena_bytes(*values, &*values).to_vec()));
        }
    }
}

sql_function! {
    /// `mih_verify_json(regclass, boolean) -> text`
    fn mih_verify_json(fcinfo) -> Datum {
        // SAFETY: fcinfo is the call's; argument 0 is a regclass OID and argument 1 a boolean
        // (the function is STRICT). The index is opened, locked and closed here.
        unsafe {
            let oid = pg_sys::Oid::from(fmgr::arg(fcinfo, 0).value() as u32);
            let check_heap = fmgr::arg(fcinfo, 1).value() != 0;
            check_may_verify(oid);
            let index = pg_sys::index_open(oid, pg_sys::AccessShareLock as i32);
            let am_name = pg_sys::get_am_name((*(*index).rd_rel).relam);
            if am_name.is_null() || std::ffi::CStr::from_ptr(am_name).to_bytes() != b"mih" {
                let name = super::relation_name(index);
                pg_sys::index_close(index, pg_sys::AccessShareLock as i32);
                raise(
                    PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
                    format!("\"{name}\" is not a mih index"),
                    Some("mih_verify checks indexes created USING mih."),
                );
            }
            super::pg_pending::flush(index);
            let rel = PgRelation::new(index);
            let mut report = ics_index::verify::verify(&rel, &PgSpill, maintenance_budget(), check_heap)
                .unwrap_or_else(|e| format_error(index, e));
            let mut heap_rows: i64 = -1;
            let mut heap_nulls: i64 = -1;
            let meta_holds_nulls = ics_index::open::open(&rel)
                .map(|o| o.meta().holds_nulls())
                .unwrap_or_else(|e| format_error(index, e));
            if check_heap {
                let heap = pg_sys::table_open((*(*index).rd_index).indrelid, pg_sys::AccessShareLock as i32);
                let info = pg_sys::BuildIndexInfo(index);
                // An MVCC snapshot: the rows this transaction sees (amcheck does the same).
                (*info).ii_Concurrent = true;
                let mut state = HeapState { rows: Vec::new(), nulls: Vec::new() };
                pg_sys::table_index_build_scan(
                    heap,
                    index,
                    info,
                    true,
                    false,
                    Some(heap_callback),
                    &mut state as *mut HeapState as *mut _,
                    std::ptr::null_mut(),
                );
                pg_sys::table_close(heap, pg_sys::AccessShareLock as i32);
                heap_rows = state.rows.len() as i64;
                heap_nulls = state.nulls.len() as i64;
                // Rows whose code is NULL (an older format does not hold them).
                let null_set: std::collections::HashSet<Tid> = report.null_contents.iter().copied().collect();
                if null_set.len() != report.null_contents.len() {
                    report.problems.push(format!("{} TIDs appear in the NULL-code chain more than once", report.null_contents.len() - null_set.len()));
                }
                if meta_holds_nulls {
                    let missing = state.nulls.iter().filter(|t| !null_set.contains(t)).count();
                    if missing > 0 {
                        report.problems.push(format!("{missing} heap rows whose code is NULL are not in the index"));
                    }
                }
                let contents = std::mem::take(&mut report.contents);
                let entries = contents.len();
                let in_index: HashMap<Tid, Vec<u8>> = contents.into_iter().collect();
                if in_index.len() != entries {
                    report.problems.push(format!("{} TIDs appear in the index more than once", entries - in_index.len()));
                }
                let mut missing = 0usize;
                let mut wrong = 0usize;
                for (tid, code) in &state.rows {
                    match in_index.get(tid) {
                        None => {
                            missing += 1;
                            if missing <= 10 {
                                report.problems.push(format!("heap row {tid:?} is not in the index"));
                            }
                        }
                        Some(c) if c != code => {
                            wrong += 1;
                            if wrong <= 10 {
                                report.problems.push(format!("heap row {tid:?} is indexed with another code"));
                            }
                        }
                        Some(_) => {}
                    }
                }
                if missing > 10 || wrong > 10 {
                    report.problems.push(format!("{missing} heap rows missing from the index, {wrong} with another code"));
                }
            }
            pg_sys::index_close(index, pg_sys::AccessShareLock as i32);
            let json = serde_json::json!({
                "ok": report.problems.is_empty(),
                "code_bits": report.code_bytes * 8,
                "strategy": report.strategy.name(),
                "lists": report.lists,
                "nonempty_lists": report.nonempty_lists,
                "max_radius": report.max_radius,
                "substrings": report.substrings,
                "generation": report.generation,
                "tail_rows": report.tail_rows,
                "tombstones": report.tombstones,
                "data_pages": report.data_pages,
                "entries": report.entries,
                "tids": report.tids,
                "heap_rows": (heap_rows >= 0).then_some(heap_rows),
                "nulls": report.nulls,
                "heap_nulls": (heap_nulls >= 0).then_some(heap_nulls),
                "problems": report.problems,
            })
            .to_string();
            pgrx::varlena::rust_str_to_text_p(&json).into_pg().into()
        }
    }
}
