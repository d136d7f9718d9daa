//! The `mih` index access method: exact Hamming k-NN and radius search.
//!
//! The search structure lives in the pgrx-free `ics-index` crate; these files wire it to
//! PostgreSQL, one callback group each:
//! - [`am`]: the handler (capabilities and callbacks);
//! - [`options`]: `WITH (strategy = ..., lists = n, substrings = m)`;
//! - [`relation`]: buffers, locks and Generic WAL behind `ics_index::relation::Relation`;
//! - [`spill`]: temporary files for the sorts of builds and merges;
//! - [`build`]: CREATE INDEX / REINDEX (and the init fork of unlogged indexes);
//! - [`insert`]: rows inserted after the build, buffered and written in batches by
//!   [`pending`];
//! - [`scan`]: index and bitmap scans;
//! - [`vacuum`]: VACUUM and its cleanup;
//! - [`cost`]: the planner's cost estimate;
//! - [`support`]: `hamming_within` as an index condition, and selectivity;
//! - [`verify`]: `mih_verify(index)`, the consistency check.

pub mod am;
pub mod build;
pub mod cost;
pub mod insert;
pub mod options;
pub mod pending;
pub mod relation;
pub mod scan;
pub mod spill;
pub mod support;
pub mod vacuum;
pub mod verify;

use crate::fmgr::raise;
use ics_index::format::FormatError;
use pgrx::PgSqlErrorCode;

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
