//! The `hashcode` type: a packed bit string (8..4096 bits, a multiple of 8), stored as a
//! varlena whose payload is the bytes of the code, bit 0 = most significant bit of byte 0.
//! There is no other header: the length in bits is eight times the payload length, so a
//! 64-bit code takes 9 bytes in a heap tuple (1-byte short varlena header).
//!
//! The typmod is the length in bits (`hashcode(64)` has typmod 64).
//!
//! - [`io`]: text and binary input/output, typmod input/output, length coercion.
//! - [`casts`]: bytea, bit/bit varying and bigint conversions.
//! - [`compare`]: ordering and hashing (btree and hash operator classes).
//! - [`distance`]: `<~>` (Hamming distance), `hamming_within`, `length`, `bit_count`.
//! - [`ball`]: `hamming_ball`, the indexable form of `hamming_within` (`code <@ ball`).

pub mod ball;
pub mod casts;
pub mod compare;
pub mod distance;
pub mod io;

use crate::fmgr::{self, raise};
use ics_codes::code;
use pgrx::{pg_sys, PgSqlErrorCode};

/// Bad input is echoed cut to 80 characters (one helper for every echo of user text).
pub(crate) use ics_codes::echo::echo;

/// The code passed as argument `n`, borrowed from the call.
///
/// # Safety
/// Argument `n` of the current call is a non-NULL `hashcode`.
#[inline(always)]
pub(crate) unsafe fn code_arg(fcinfo: &pg_sys::FunctionCallInfoBaseData, n: usize) -> &[u8] {
    // SAFETY: a non-NULL hashcode is a varlena, which is all arg_varlena_bytes needs besides
    // the current call's fcinfo (both the caller's promise).
    unsafe { fmgr::arg_varlena_bytes(fcinfo, n) }
}

/// A `hashcode` datum holding `bytes`, whose length the caller has validated.
pub(crate) fn code_datum(bytes: &[u8]) -> pg_sys::Datum {
    debug_assert!(code::check_bits(bytes.len() * 8).is_ok());
    fmgr::new_varlena(bytes)
}

/// Raises 22026 when a code of `bits` does not fit `hashcode(typmod)`; typmod -1 = any length.
pub(crate) fn enforce_typmod(bits: usize, typmod: i32) {
    if typmod >= 0 && bits != typmod as usize {
        raise(
            PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
            format!("hashcode length {bits} does not match type hashcode({typmod})"),
            Some("A hashcode(n) column holds codes of exactly n bits; all codes compared or indexed together must share one length."),
        )
    }
}

/// Raises 22000 when two codes of different lengths meet in one operation.
#[inline]
pub(crate) fn enforce_same_length(a: &[u8], b: &[u8]) {
    if a.len() != b.len() {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            format!(
                "cannot compute the Hamming distance between hashcodes of {} and {} bits",
                a.len() * 8,
                b.len() * 8
            ),
            Some("Both codes must come from models with the same number of bits."),
        )
    }
}

/// Raises 22026 (with `what` naming the source) when `bits` is not a valid code length.
pub(crate) fn enforce_code_length(bits: usize, what: &str) {
    if let Err(e) = code::check_bits(bits) {
        raise(
            PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
            format!("{what} cannot be a hashcode: {e}"),
            Some("A hashcode is 8 to 4096 bits long, in whole bytes."),
        )
    }
}
