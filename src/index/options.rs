//! Index options: `CREATE INDEX ... USING mih (code) WITH (lists = n)`.
//! `lists = 0` (the default) chooses about sqrt(rows) lists at build time.

use pgrx::pg_sys;

/// The parsed options (a varlena, as PostgreSQL's reloptions are).
#[repr(C)]
pub struct MihOptions {
    vl_len_: i32,
    pub lists: i32,
}

pub const MAX_LISTS: i32 = 4096;

static mut RELOPT_KIND: pg_sys::relopt_kind::Type = 0;

/// Registers the options (from `_PG_init`).
pub fn register() {
    // SAFETY: called once, from _PG_init, before any index uses the options.
    unsafe {
        RELOPT_KIND = pg_sys::add_reloption_kind();
        pg_sys::add_int_reloption(
            RELOPT_KIND as _,
            c"lists".as_ptr(),
            c"Number of lists (clusters) of a mih index; 0 = about the square root of the row count".as_ptr(),
            0,
            0,
            MAX_LISTS,
            pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE,
        );
    }
}

#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    let table = [pg_sys::relopt_parse_elt {
        optname: c"lists".as_ptr(),
        opttype: pg_sys::relopt_type::RELOPT_TYPE_INT,
        offset: std::mem::offset_of!(MihOptions, lists) as i32,
    }];
    // SAFETY: parses into a palloc'd MihOptions laid out as declared in `table`.
    unsafe {
        pg_sys::build_reloptions(
            reloptions,
            validate,
            RELOPT_KIND,
            std::mem::size_of::<MihOptions>(),
            table.as_ptr(),
            table.len() as i32,
        ) as *mut pg_sys::bytea
    }
}

/// The `lists` option of an index (0 when not set).
pub unsafe fn lists(index: pg_sys::Relation) -> usize {
    // SAFETY: rd_options is NULL or a MihOptions built by amoptions.
    unsafe {
        let opts = (*index).rd_options as *const MihOptions;
        if opts.is_null() {
            0
        } else {
            (*opts).lists.max(0) as usize
        }
    }
}
