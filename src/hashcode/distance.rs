//! Distance and bit counting: `a <~> b` (Hamming distance; `hamming(a, b)` is a SQL function
//! the planner inlines to it), `hamming_within(code, q, r)`, `length`, `bit_count`.

use super::{code_arg, enforce_same_length};
use crate::fmgr::{self, sql_function};
use ics_codes::hamming;

sql_function! {
    /// `hashcode_hamming(hashcode, hashcode) -> integer`: the function of `<~>`.
    fn hashcode_hamming(fcinfo) -> Datum {
        // SAFETY: arguments 0 and 1 are non-NULL hashcodes: the function is STRICT.
        let (a, b) = unsafe { (code_arg(&*fcinfo, 0), code_arg(&*fcinfo, 1)) };
        enforce_same_length(a, b);
        fmgr::datum_i32(hamming::hamming(a, b) as i32)
    }
}

sql_function! {
    /// `hamming_within(code hashcode, q hashcode, radius integer) -> boolean`.
    fn hashcode_hamming_within(fcinfo) -> Datum {
        // SAFETY: arguments 0 and 1 are non-NULL hashcodes: the function is STRICT.
        let (a, b) = unsafe { (code_arg(&*fcinfo, 0), code_arg(&*fcinfo, 1)) };
        // SAFETY: argument 2 is the radius, a non-NULL int4.
        let radius = unsafe { fmgr::arg_i32(fcinfo, 2) };
        super::ball::check_radius(radius);
        enforce_same_length(a, b);
        fmgr::datum_bool(hamming::hamming(a, b) <= radius as u32)
    }
}

sql_function! {
    /// `length(hashcode) -> integer`: the length in bits.
    fn hashcode_length(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        fmgr::datum_i32((unsafe { code_arg(&*fcinfo, 0) }.len() * 8) as i32)
    }
}

sql_function! {
    /// `bit_count(hashcode) -> bigint`: the number of set bits (bigint, as for bytea and bit).
    fn hashcode_bit_count(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        fmgr::datum_i64(i64::from(hamming::popcount(unsafe { code_arg(&*fcinfo, 0) })))
    }
}
