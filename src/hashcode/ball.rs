//! `hamming_ball`: a query code with a radius, the right side of `code <@ ball` ("code lies
//! within the ball"). `hamming_within(code, q, r)` is rewritten by the planner to
//! `code <@ hamming_ball(q, r)` so that a mih index can serve it; users may write it
//! directly too. Text form: `'<hex code>:<radius>'`, e.g. `'8f3a:2'`.
//!
//! Stored as a varlena: radius (int32, native order) then the code bytes.

use super::{code_arg, echo, enforce_same_length};
use crate::fmgr::{self, raise, raise_detailed, sql_function};
use ics_codes::{code, hamming};
use pgrx::{pg_sys, PgSqlErrorCode};
use std::ffi::CStr;

const RADIUS_SIZE: usize = 4;

/// (radius, code) of a ball payload.
pub fn parts(payload: &[u8]) -> (u32, &[u8]) {
    let r = i32::from_ne_bytes(payload[..RADIUS_SIZE].try_into().unwrap());
    (r as u32, &payload[RADIUS_SIZE..])
}

/// (radius, code) of a ball datum, borrowed as long as `owner` (see `fmgr::varlena_bytes`).
///
/// # Safety
/// `datum` is a non-NULL `hamming_ball` that outlives `owner`'s borrow.
pub unsafe fn datum_parts<T: ?Sized>(datum: pg_sys::Datum, owner: &T) -> (u32, &[u8]) {
    // SAFETY: a hamming_ball is a varlena; the caller promises it is valid and outlives
    // `owner`'s borrow, which is what varlena_bytes needs.
    unsafe { parts(fmgr::varlena_bytes(datum, owner)) }
}

fn ball_datum(radius: i32, code: &[u8]) -> pg_sys::Datum {
    let mut payload = Vec::with_capacity(RADIUS_SIZE + code.len());
    payload.extend_from_slice(&radius.to_ne_bytes());
    payload.extend_from_slice(code);
    fmgr::new_varlena(&payload)
}

pub(crate) fn check_radius(radius: i32) {
    if radius < 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("radius must not be negative, got {radius}"),
            Some("hamming_within(code, q, r) is true when code and q differ in at most r bits."),
        )
    }
}

sql_function! {
    /// `hamming_ball(q hashcode, radius integer) -> hamming_ball`
    fn hamming_ball_make(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let q = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is the radius, a non-NULL int4.
        let radius = unsafe { fmgr::arg_i32(fcinfo, 1) };
        check_radius(radius);
        ball_datum(radius, q)
    }
}

sql_function! {
    /// `hamming_ball_in(cstring) -> hamming_ball`: `'<hex>:<radius>'`.
    fn hamming_ball_in(fcinfo) -> Datum {
        // SAFETY: argument 0 of a type input function is the NUL-terminated input string,
        // never NULL (hamming_ball_in is STRICT); CStr borrows it for this call only.
        let raw = unsafe { CStr::from_ptr(fmgr::arg(fcinfo, 0).cast_mut_ptr()) };
        let text = raw.to_str().unwrap_or("");
        let bad = |why: String| -> ! {
            raise_detailed(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type hamming_ball: \"{}\"", echo(text)),
                Some(why),
                Some("Write a hamming_ball as '<hex code>:<radius>', e.g. '8f3a0c5e91b2d477:3'."),
            )
        };
        let Some((hex, radius)) = text.rsplit_once(':') else {
            bad("Missing \":<radius>\".".into())
        };
        let bytes = code::parse_hex(hex).unwrap_or_else(|e| bad(format!("{e}.")));
        let radius: i32 = radius.parse().unwrap_or_else(|_| bad(format!("\"{}\" is not a radius.", echo(radius))));
        check_radius(radius);
        ball_datum(radius, &bytes)
    }
}

sql_function! {
    /// `hamming_ball_out(hamming_ball) -> cstring`
    fn hamming_ball_out(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hamming_ball (STRICT), a varlena.
        let (radius, q) = unsafe { parts(fmgr::arg_varlena_bytes(&*fcinfo, 0)) };
        fmgr::new_cstring(&format!("{}:{radius}", code::to_hex(q)))
    }
}

sql_function! {
    /// `hashcode_within_ball(hashcode, hamming_ball) -> boolean`: the function of `<@`.
    fn hashcode_within_ball(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let c = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is a non-NULL hamming_ball, a varlena.
        let (radius, q) = unsafe { parts(fmgr::arg_varlena_bytes(&*fcinfo, 1)) };
        enforce_same_length(c, q);
        fmgr::datum_bool(hamming::hamming(c, q) <= radius)
    }
}
