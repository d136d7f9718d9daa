//! The `mih` index access method: exact Hamming k-NN and radius search.
//!
//! The pgrx-free `ics-index` crate owns every access-method verb (build, insert, scan,
//! vacuum, cost, options, verify: one entry point each, whatever the strategy); these files
//! only translate between PostgreSQL and it, and never name a strategy. File names say which
//! side of PostgreSQL a file is on, so none shares a name with an `ics-index` module:
//! - `am_*`: the callbacks of the access method, one verb each: [`am_build`] (CREATE INDEX,
//!   REINDEX, the init fork of unlogged indexes), [`am_insert`], [`am_scan`] (index and
//!   bitmap scans), [`am_vacuum`] (VACUUM and its cleanup), [`am_cost`] (the planner's
//!   estimate), [`am_options`] (`WITH (strategy = ..., lists = n, substrings = m)`); [`am`]
//!   is the handler that lists them;
//! - `pg_*`: `ics-index`'s traits and buffers over PostgreSQL's services: [`pg_relation`]
//!   (buffers, locks and Generic WAL behind `ics_index::relation::Relation`), [`pg_recent`]
//!   (the buffers a backend's scans last found pages in), [`pg_spill`]
//!   (temporary files behind `ics_index::spill::Spill`), [`pg_pending`] (a backend's inserted
//!   rows, written in batches at transaction events);
//! - `sql_*`: SQL-callable functions: [`sql_support`] (`hamming_within` as an index condition,
//!   selectivity), [`sql_verify`] (`mih_verify(index)`).

pub mod am;
pub mod am_build;
pub mod am_cost;
pub mod am_insert;
pub mod am_options;
pub mod am_scan;
pub mod am_vacuum;
pub mod pg_pending;
pub mod pg_recent;
pub mod pg_relation;
pub mod pg_spill;
pub mod sql_support;
pub mod sql_verify;

use crate::fmgr::raise;
use ics_index::format::{FormatError, Tid};
use pgrx::{pg_sys, PgSqlErrorCode};

/// Strategy numbers of the operator class.
pub const STRATEGY_WITHIN: u16 = 1; // code <@ hamming_ball(q, r)
pub const STRATEGY_DISTANCE: u16 = 2; // ORDER BY code <~> q

/// Raises the error for an index whose pages cannot be read as a mih index.
///
/// # Safety
/// `index` is an open relation.
pub unsafe fn format_error(index: pgrx::pg_sys::Relation, e: FormatError) -> ! {
    // SAFETY: as the caller promises.
    let name = unsafe { relation_name(index) };
    if let FormatError::NullsNotIndexed { .. } = e {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("index \"{name}\" cannot be used for ORDER BY code <~> q: {e}"),
            Some(&format!("REINDEX INDEX {name}; (an index of this version of ics_hash holds the rows whose code is NULL)")),
        )
    }
    raise(
        PgSqlErrorCode::ERRCODE_INDEX_CORRUPTED,
        format!("index \"{name}\" cannot be read: {e}"),
        Some(&format!("REINDEX INDEX {name};")),
    )
}

/// The value of `r`, or the error for an index whose pages cannot be read.
///
/// # Safety
/// `index` is an open relation.
pub unsafe fn or_format_error<T>(index: pgrx::pg_sys::Relation, r: Result<T, FormatError>) -> T {
    match r {
        Ok(v) => v,
        // SAFETY: as the caller promises.
        Err(e) => unsafe { format_error(index, e) },
    }
}

/// The relation's name, for messages.
///
/// # Safety
/// `rel` is an open relation.
pub unsafe fn relation_name(rel: pgrx::pg_sys::Relation) -> String {
    // SAFETY: an open relation's rd_rel holds its NUL-terminated name.
    unsafe {
        std::ffi::CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// Raises 22000 for a code whose length differs from the index's.
pub fn length_mismatch(index_bytes: usize, code_bytes: usize, what: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
        format!(
            "{what} of {} bits does not match the index's codes of {} bits",
            code_bytes * 8,
            index_bytes * 8
        ),
        Some("All codes in one mih index have the same length: use one model per indexed column."),
    )
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

/// The indexed column's declared code length in bytes (`hashcode(n)`), `None` for a plain
/// `hashcode`.
///
/// # Safety
/// `index` is an open mih index.
pub unsafe fn index_code_bytes(index: pg_sys::Relation) -> Option<usize> {
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

/// The indexed column's declared code length in bytes (CREATE INDEX), or 22023 for a plain
/// `hashcode` column, with the `ALTER TABLE` that gives it the length of the table's first
/// code as the hint.
///
/// # Safety
/// `heap` and `index` are open, `index_info` describes `index`.
pub unsafe fn declared_code_bytes(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) -> usize {
    // SAFETY: as the caller promises; the scan raises at the first code it finds.
    unsafe {
        if let Some(nb) = index_code_bytes(index) {
            return nb;
        }
        first_code_bits(heap, index, index_info);
        untyped_column(heap, index, index_info, None)
    }
}

/// Raises [`untyped_column`] with the length of the table's first code, if it has one.
unsafe fn first_code_bits(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
) {
    #[pgrx::pg_guard]
    unsafe extern "C-unwind" fn first(
        _index: pg_sys::Relation,
        _tid: pg_sys::ItemPointer,
        values: *mut pg_sys::Datum,
        isnull: *mut bool,
        _alive: bool,
        state: *mut std::ffi::c_void,
    ) {
        // SAFETY: `state` is the (heap, index, info) below; the values are the row's.
        unsafe {
            if *isnull {
                return;
            }
            let (heap, index, info) =
                *(state as *const (pg_sys::Relation, pg_sys::Relation, *mut pg_sys::IndexInfo));
            let code = crate::fmgr::varlena_bytes(*values, &*values);
            untyped_column(heap, index, info, Some(code.len() * 8))
        }
    }
    let mut state = (heap, index, index_info);
    // SAFETY: the callback's state outlives the scan; the scan ends at the first code.
    unsafe {
        pg_sys::table_index_build_scan(
            heap,
            index,
            index_info,
            true,
            false,
            Some(first),
            &mut state as *mut _ as *mut _,
            std::ptr::null_mut(),
        );
    }
}

/// Raises 22023 for an index on a `hashcode` column without a declared length; the hint is
/// the `ALTER TABLE` that gives it one: `bits` long (the codes at hand), else `n`.
///
/// # Safety
/// `heap` and `index` are open, `index_info` describes `index`.
pub unsafe fn untyped_column(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    index_info: *mut pg_sys::IndexInfo,
    bits: Option<usize>,
) -> ! {
    let n = bits.map_or("n".to_string(), |b| b.to_string());
    // SAFETY: open relations; the catalog lookups return palloc'd names or raise.
    let (index_name, table, column) = unsafe {
        let attnum = (*index_info).ii_IndexAttrNumbers[0];
        let relid = (*heap).rd_id;
        let quote = |s: *const std::ffi::c_char| {
            std::ffi::CStr::from_ptr(pg_sys::quote_identifier(s))
                .to_string_lossy()
                .into_owned()
        };
        let relname = (*(*heap).rd_rel).relname.data.as_ptr();
        let table = if pg_sys::RelationIsVisible(relid) {
            quote(relname)
        } else {
            let schema = pg_sys::get_namespace_name((*(*heap).rd_rel).relnamespace);
            format!("{}.{}", quote(schema), quote(relname))
        };
        let column = (attnum != 0).then(|| quote(pg_sys::get_attname(relid, attnum, false)));
        (relation_name(index), table, column)
    };
    let what = column
        .as_ref()
        .map_or("the indexed expression".to_string(), |c| {
            format!("column {c}")
        });
    let mut hint = match &column {
        Some(c) => format!("ALTER TABLE {table} ALTER COLUMN {c} TYPE hashcode({n});"),
        None => format!("Index the expression cast to hashcode({n})."),
    };
    if bits.is_none() {
        hint.push_str(" (n: the length of the codes in bits)");
    }
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!(
            "mih index \"{index_name}\" needs codes of a declared length, but {what} is hashcode without one"
        ),
        Some(&hint),
    )
}
