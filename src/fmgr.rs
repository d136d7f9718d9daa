//! The thin layer between PostgreSQL's function manager and our code.
//!
//! The SQL surface is hand-written (`sql/`), so functions are plain V1 C functions taking
//! `FunctionCallInfo`, declared with [`sql_function!`], which also emits the `pg_finfo_*`
//! record PostgreSQL looks up. Errors go through [`raise`] so every user error carries a
//! SQLSTATE and, where it helps, a hint.

use pgrx::pg_sys;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Declares a V1 SQL-callable C function named `$name` (its symbol is the same name).
macro_rules! sql_function {
    ($(#[$meta:meta])* fn $name:ident($fcinfo:ident) -> Datum $body:block) => {
        ::paste::paste! {
            #[unsafe(no_mangle)]
            #[doc(hidden)]
            pub extern "C" fn [<pg_finfo_ $name>]() -> &'static ::pgrx::pg_sys::Pg_finfo_record {
                const V1_API: ::pgrx::pg_sys::Pg_finfo_record =
                    ::pgrx::pg_sys::Pg_finfo_record { api_version: 1 };
                &V1_API
            }
        }
        $(#[$meta])*
        ///
        /// # Safety
        /// Only PostgreSQL's function manager calls this, with the current call's `fcinfo`,
        /// through the `CREATE FUNCTION` in `sql/` that declares its arguments.
        #[::pgrx::pg_guard]
        #[unsafe(no_mangle)]
        pub unsafe extern "C-unwind" fn $name(
            fcinfo: ::pgrx::pg_sys::FunctionCallInfo,
        ) -> ::pgrx::pg_sys::Datum {
            // The body sits in an inner function because #[pg_guard] re-creates the argument
            // names, which would not resolve against a body written at the macro's call site.
            #[inline(always)]
            unsafe fn body($fcinfo: ::pgrx::pg_sys::FunctionCallInfo) -> ::pgrx::pg_sys::Datum $body
            // SAFETY: `fcinfo` is the one the function manager passed for this call (see the
            // Safety section); each unsafe block in the body states what it reads from it.
            unsafe { body(fcinfo) }
        }
    };
}
pub(crate) use sql_function;

/// Raises an ERROR with a SQLSTATE, a message and an optional hint. Never returns.
#[track_caller]
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    raise_detailed(code, message, None, hint)
}

/// Like [`raise`], with a DETAIL line (what exactly was wrong) besides the hint (what to do).
#[track_caller]
pub fn raise_detailed(
    code: PgSqlErrorCode,
    message: impl Into<String>,
    detail: Option<String>,
    hint: Option<&str>,
) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "ics_hash");
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// The raw datum of argument `n` (the function is STRICT, so it is not NULL).
///
/// # Safety
/// `fcinfo` is the current call's. (An `n` past its argument count panics; a NULL argument
/// reads as a meaningless datum, so callers of non-STRICT functions check `isnull` first.)
#[inline(always)]
pub unsafe fn arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> pg_sys::Datum {
    // SAFETY: `fcinfo` is valid (the caller's promise); pgrx bounds `n` by its `nargs`.
    unsafe { pgrx::fcinfo::pg_getarg_datum_raw(fcinfo, n) }
}

/// Argument `n` as an `int4`.
///
/// # Safety
/// As for [`arg`]; argument `n` is a non-NULL `int4`.
#[inline]
pub unsafe fn arg_i32(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i32 {
    // SAFETY: the caller's promise is `arg`'s; an int4 datum is passed by value.
    unsafe { arg(fcinfo, n) }.value() as i32
}

/// Argument `n` as an `int8`.
///
/// # Safety
/// As for [`arg`]; argument `n` is a non-NULL `int8`.
#[inline]
pub unsafe fn arg_i64(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> i64 {
    // SAFETY: the caller's promise is `arg`'s; an int8 datum is passed by value (64-bit
    // builds, the only ones pgrx supports).
    unsafe { arg(fcinfo, n) }.value() as i64
}

/// The payload of a varlena datum, detoasted only when it must be: a value with a short
/// (1-byte) or plain 4-byte header is read in place, which keeps per-row distance calls
/// allocation-free in a sequential scan; a compressed or out-of-line value is detoasted into
/// the current memory context.
///
/// The one way this crate reads varlena bytes. The slice borrows `_owner`, something that lives
/// at least as long as the datum's memory (the call's `FunctionCallInfo`, the array or tuple
/// the datum came from), so it cannot outlive it by accident.
///
/// # Safety
/// `datum` must be a valid varlena datum whose memory (or detoasted copy, which lives in the
/// current memory context) outlives `_owner`'s borrow.
#[inline(always)]
pub unsafe fn varlena_bytes<T: ?Sized>(datum: pg_sys::Datum, _owner: &T) -> &[u8] {
    // SAFETY: the caller guarantees a valid varlena; the header tests only read its first
    // bytes, and pg_detoast_datum_packed returns a pointer to a readable varlena.
    unsafe {
        let mut ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
        let in_place = (pgrx::varlena::varatt_is_1b(ptr) && !pgrx::varlena::varatt_is_1b_e(ptr))
            || pgrx::varlena::varatt_is_4b_u(ptr);
        if !in_place {
            ptr = pg_sys::pg_detoast_datum_packed(ptr);
        }
        pgrx::varlena::varlena_to_byte_slice(ptr)
    }
}

/// The payload of varlena argument `n` (see [`varlena_bytes`]), borrowed from the call.
///
/// # Safety
/// `fcinfo` is the current call's, and argument `n` is a non-NULL varlena.
#[inline(always)]
pub unsafe fn arg_varlena_bytes(fcinfo: &pg_sys::FunctionCallInfoBaseData, n: usize) -> &[u8] {
    // SAFETY: argument `n` of the current call is a non-NULL varlena (the caller's promise);
    // argument datums (and a detoasted copy, in the call's memory context) live as long as
    // the call, so as long as the borrow of `fcinfo`.
    unsafe { varlena_bytes(arg(std::ptr::from_ref(fcinfo).cast_mut(), n), fcinfo) }
}

/// A new varlena (4-byte header) holding `payload`, in the current memory context.
pub fn new_varlena(payload: &[u8]) -> pg_sys::Datum {
    let total = pg_sys::VARHDRSZ + payload.len();
    // SAFETY: palloc returns `total` writable bytes (or raises); the header is set before use.
    unsafe {
        let ptr = pg_sys::palloc(total) as *mut pg_sys::varlena;
        pgrx::varlena::set_varsize_4b(ptr, total as i32);
        let data = (ptr as *mut u8).add(pg_sys::VARHDRSZ);
        std::ptr::copy_nonoverlapping(payload.as_ptr(), data, payload.len());
        pg_sys::Datum::from(ptr)
    }
}

/// A palloc'd C string (for type output functions).
pub fn new_cstring(s: &str) -> pg_sys::Datum {
    // SAFETY: palloc returns len + 1 writable bytes (or raises).
    unsafe {
        let ptr = pg_sys::palloc(s.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(s.as_ptr(), ptr, s.len());
        *ptr.add(s.len()) = 0;
        pg_sys::Datum::from(ptr)
    }
}

/// Datum helpers for scalar results.
#[inline]
pub fn datum_i32(v: i32) -> pg_sys::Datum {
    pg_sys::Datum::from(v)
}

#[inline]
pub fn datum_i64(v: i64) -> pg_sys::Datum {
    pg_sys::Datum::from(v)
}

#[inline]
pub fn datum_bool(v: bool) -> pg_sys::Datum {
    pg_sys::Datum::from(v)
}
