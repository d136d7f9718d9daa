//! Index options: `CREATE INDEX ... USING mih (code) WITH (strategy = ..., lists = n,
//! substrings = m)`.
//! - `strategy`: `auto` (the default: the build measures both strategies on a sample of the
//!   codes and keeps the faster), `lists` or `substrings`; giving only `lists` or only
//!   `substrings` chooses that option's strategy;
//! - `lists`: lists of the lists strategy (0, the default: about the square root of the rows);
//! - `substrings`: substrings of the substring strategy (0, the default: bits / log2(rows), within
//!   the size budget; more tables search faster and take a whole code per row each).

use ics_index::options::{Options, Requested, MAX_LISTS, MAX_SUBSTRINGS};
use pgrx::pg_sys;
use std::sync::atomic::{AtomicU32, Ordering};

/// The parsed options (a varlena, as PostgreSQL's reloptions are).
#[repr(C)]
pub struct MihOptions {
    vl_len_: i32,
    pub lists: i32,
    pub strategy: i32,
    pub substrings: i32,
}

const STRATEGY_AUTO: i32 = 0;
const STRATEGY_LISTS: i32 = 1;
const STRATEGY_SUBSTRINGS: i32 = 2;

/// The `strategy` values, as PostgreSQL's enum options want them (NULL-terminated).
struct StrategyValues([pg_sys::relopt_enum_elt_def; 4]);
// SAFETY: the table is immutable and its pointers are to 'static C strings.
unsafe impl Sync for StrategyValues {}
static STRATEGY_VALUES: StrategyValues = StrategyValues([
    pg_sys::relopt_enum_elt_def {
        string_val: c"auto".as_ptr(),
        symbol_val: STRATEGY_AUTO,
    },
    pg_sys::relopt_enum_elt_def {
        string_val: c"lists".as_ptr(),
        symbol_val: STRATEGY_LISTS,
    },
    pg_sys::relopt_enum_elt_def {
        string_val: c"substrings".as_ptr(),
        symbol_val: STRATEGY_SUBSTRINGS,
    },
    pg_sys::relopt_enum_elt_def {
        string_val: std::ptr::null(),
        symbol_val: 0,
    },
]);

/// The options' kind, set once by [`register`] (from `_PG_init`) before any index is opened.
static RELOPT_KIND: AtomicU32 = AtomicU32::new(0);

/// Registers the options (from `_PG_init`).
pub fn register() {
    // SAFETY: called once, from _PG_init, before any index uses the options; PostgreSQL keeps
    // the pointers, which are all to statics.
    unsafe {
        let kind = pg_sys::add_reloption_kind();
        RELOPT_KIND.store(kind, Ordering::Relaxed);
        pg_sys::add_int_reloption(
            kind as _,
            c"lists".as_ptr(),
            c"Number of lists of a mih index using the lists strategy; 0 = about the square root of the row count".as_ptr(),
            0,
            0,
            MAX_LISTS as i32,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::add_enum_reloption(
            kind as _,
            c"strategy".as_ptr(),
            c"How a mih index organises its codes: auto (measured at build), lists or substrings"
                .as_ptr(),
            STRATEGY_VALUES.0.as_ptr() as *mut _,
            STRATEGY_AUTO,
            c"Valid values are \"auto\", \"lists\" and \"substrings\".".as_ptr(),
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
        pg_sys::add_int_reloption(
            kind as _,
            c"substrings".as_ptr(),
            c"Number of substring tables of a mih index using the substrings strategy; 0 = chosen from the code length and row count".as_ptr(),
            0,
            0,
            MAX_SUBSTRINGS as i32,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
    }
}

/// Where build_reloptions puts one option in `MihOptions`.
fn parse_elt(
    name: &'static std::ffi::CStr,
    opttype: pg_sys::relopt_type::Type,
    offset: usize,
) -> pg_sys::relopt_parse_elt {
    pg_sys::relopt_parse_elt {
        optname: name.as_ptr(),
        opttype,
        offset: offset as i32,
        // PostgreSQL 18: where to record whether the option was set; 0 = not recorded.
        #[cfg(not(any(feature = "pg15", feature = "pg16")))]
        isset_offset: 0,
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let table = [
        parse_elt(
            c"lists",
            pg_sys::relopt_type::RELOPT_TYPE_INT,
            std::mem::offset_of!(MihOptions, lists),
        ),
        parse_elt(
            c"strategy",
            pg_sys::relopt_type::RELOPT_TYPE_ENUM,
            std::mem::offset_of!(MihOptions, strategy),
        ),
        parse_elt(
            c"substrings",
            pg_sys::relopt_type::RELOPT_TYPE_INT,
            std::mem::offset_of!(MihOptions, substrings),
        ),
    ];
    // SAFETY: parses into a palloc'd MihOptions laid out as declared in `table`.
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND.load(Ordering::Relaxed),
            std::mem::size_of::<MihOptions>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    }
}

/// The options of an index (defaults when none were given); options of the other strategy
/// than the one named are an error (22023).
///
/// # Safety
/// `index` is an open mih index.
pub unsafe fn options(index: pg_sys::Relation) -> Options {
    // SAFETY: rd_options is NULL or a MihOptions built by amoptions, living as long as the
    // relation cache entry (longer than this call).
    let Some(o) = (unsafe { ((*index).rd_options as *const MihOptions).as_ref() }) else {
        return Options::default();
    };
    let strategy = match o.strategy {
        STRATEGY_LISTS => Some(Requested::Lists),
        STRATEGY_SUBSTRINGS => Some(Requested::Substrings),
        _ => None,
    };
    Options::resolve(strategy, o.lists, o.substrings).unwrap_or_else(|m| {
        crate::fmgr::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "option {} does not apply to strategy {}",
                m.option, m.strategy
            ),
            Some(&format!(
                "Leave out {}, or use strategy = {}.",
                m.option, m.option
            )),
        )
    })
}

/// The `substrings` option alone (0 when not set), for VACUUM's merges: an option of the other
/// strategy set later by ALTER INDEX must not stop VACUUM.
///
/// # Safety
/// `index` is an open mih index.
pub unsafe fn substrings(index: pg_sys::Relation) -> u32 {
    // SAFETY: as in `options`.
    let o = unsafe { ((*index).rd_options as *const MihOptions).as_ref() };
    o.map_or(0, |o| o.substrings.max(0) as u32)
}
