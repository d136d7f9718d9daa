//! Text and binary input/output of `hashcode`, its typmod, and the length coercion that
//! enforces `hashcode(n)`.
//!
//! Text: lowercase hex, two digits per byte (`8f3a0c5e91b2d477`); input also takes upper case
//! and a `\x` prefix. Binary (COPY BINARY, drivers): the raw code bytes, as `bytea` sends them.

use super::{code_arg, code_datum, echo, enforce_typmod};
use crate::fmgr::{self, raise, raise_detailed, sql_function};
use ics_codes::code;
use pgrx::{pg_sys, PgSqlErrorCode};
use std::ffi::CStr;

sql_function! {
    /// `hashcode_in(cstring, oid, integer) -> hashcode`
    fn hashcode_in(fcinfo) -> Datum {
        // SAFETY: argument 0 of a type input function is the NUL-terminated input string,
        // never NULL (hashcode_in is STRICT); CStr borrows it for this call only.
        let raw = unsafe { CStr::from_ptr(fmgr::arg(fcinfo, 0).cast_mut_ptr()) };
        // SAFETY: argument 2 is the target typmod, an int4 (-1 when there is none).
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 2) };
        let text = match raw.to_str() {
            Ok(text) => text,
            Err(_) => raise(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                "invalid input syntax for type hashcode: not valid UTF-8",
                Some("Write a hashcode as hex digits, two per byte, e.g. '8f3a0c5e91b2d477'."),
            ),
        };
        let bytes = match code::parse_hex(text) {
            Ok(bytes) => bytes,
            Err(e) => raise_detailed(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                format!("invalid input syntax for type hashcode: \"{}\"", echo(text)),
                Some(format!("{}.", capitalise(&e.to_string()))),
                Some("Write a hashcode as hex digits, two per byte (8 to 4096 bits), optionally prefixed by \\x, e.g. '8f3a0c5e91b2d477'."),
            ),
        };
        enforce_typmod(bytes.len() * 8, typmod);
        code_datum(&bytes)
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

sql_function! {
    /// `hashcode_out(hashcode) -> cstring`
    fn hashcode_out(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let bytes = unsafe { code_arg(&*fcinfo, 0) };
        fmgr::new_cstring(&code::to_hex(bytes))
    }
}

sql_function! {
    /// `hashcode_recv(internal, oid, integer) -> hashcode`: the rest of the message is the code.
    fn hashcode_recv(fcinfo) -> Datum {
        // SAFETY: argument 0 of a receive function is the StringInfo holding the value's
        // bytes (an `internal`, never NULL: hashcode_recv is STRICT).
        let buf = unsafe { fmgr::arg(fcinfo, 0).cast_mut_ptr::<pg_sys::StringInfoData>() };
        // SAFETY: argument 2 is the target typmod, an int4.
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 2) };
        // SAFETY: `buf` is PostgreSQL's message buffer for this value, valid during the call.
        let remaining = unsafe { ((*buf).len - (*buf).cursor) as usize };
        if let Err(e) = code::check_bits(remaining * 8) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                format!("invalid binary hashcode: {e}"),
                Some("The binary form of a hashcode is its 1 to 512 code bytes."),
            )
        }
        // SAFETY: `remaining` bytes are left in `buf`; pq_getmsgbytes returns a pointer to
        // them (inside `buf`, alive for the call) and advances the cursor.
        let bytes = unsafe {
            let ptr = pg_sys::pq_getmsgbytes(buf, remaining as i32) as *const u8;
            std::slice::from_raw_parts(ptr, remaining)
        };
        enforce_typmod(remaining * 8, typmod);
        code_datum(bytes)
    }
}

sql_function! {
    /// `hashcode_send(hashcode) -> bytea`
    fn hashcode_send(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        fmgr::new_varlena(unsafe { code_arg(&*fcinfo, 0) })
    }
}

sql_function! {
    /// `hashcode_typmod_in(cstring[]) -> integer`: `hashcode(n)`, n bits.
    fn hashcode_typmod_in(fcinfo) -> Datum {
        // SAFETY: argument 0 is the cstring[] of modifiers the parser built, never NULL
        // (hashcode_typmod_in is STRICT).
        let array = unsafe { fmgr::arg(fcinfo, 0).cast_mut_ptr::<pg_sys::ArrayType>() };
        let mut n = 0;
        // SAFETY: a cstring[] from the parser; PostgreSQL checks it and returns n int4 values.
        let mods = unsafe { pg_sys::ArrayGetIntegerTypmods(array, &mut n) };
        if n != 1 {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                "invalid type modifier: hashcode takes exactly one, its length in bits",
                Some("Write hashcode(64), for example."),
            )
        }
        // SAFETY: n == 1 was checked above: `mods` points to one int4.
        let bits = unsafe { *mods };
        let reason = match usize::try_from(bits) {
            Ok(bits) => code::check_bits(bits).err().map(|e| e.to_string()),
            Err(_) => Some(format!("hashcode length {bits} is negative")),
        };
        if let Some(reason) = reason {
            raise_detailed(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid type modifier hashcode({bits})"),
                Some(format!("{}.", capitalise(&reason))),
                Some("A hashcode is 8 to 4096 bits long, in whole bytes: hashcode(16), hashcode(64), hashcode(256), ..."),
            )
        }
        fmgr::datum_i32(bits)
    }
}

sql_function! {
    /// `hashcode_typmod_out(integer) -> cstring`
    fn hashcode_typmod_out(fcinfo) -> Datum {
        // SAFETY: argument 0 is the typmod, a non-NULL int4 (STRICT).
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 0) };
        if typmod >= 0 {
            fmgr::new_cstring(&format!("({typmod})"))
        } else {
            fmgr::new_cstring("")
        }
    }
}

sql_function! {
    /// `hashcode(hashcode, integer, boolean) -> hashcode`: the length coercion behind
    /// `hashcode(n)` columns and casts. Codes are never padded or truncated: a code of another
    /// length is an error, on implicit and explicit casts alike.
    fn hashcode_coerce(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let bytes = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is the target typmod, a non-NULL int4.
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 1) };
        enforce_typmod(bytes.len() * 8, typmod);
        // SAFETY: the current call's fcinfo; the argument is returned unchanged, as valid as
        // it came in.
        unsafe { fmgr::arg(fcinfo, 0) }
    }
}
