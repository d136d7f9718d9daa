//! Total order and hashing of `hashcode`, for the btree and hash operator classes (ORDER BY,
//! GROUP BY, DISTINCT, UNIQUE, merge and hash joins).
//!
//! Order: bytewise (so bitwise, bit 0 first), a shorter code before a longer one it prefixes.
//! This is `<[u8]>::cmp`; equal codes have equal bytes, so hashing the bytes is consistent.

use super::code_arg;
use crate::fmgr::{self, sql_function};
use std::cmp::Ordering;

unsafe extern "C-unwind" {
    // From PostgreSQL's common/hashfn.c (what hash_any() calls); not in pgrx's bindings.
    // Neither raises an error.
    fn hash_bytes(k: *const u8, keylen: i32) -> u32;
    fn hash_bytes_extended(k: *const u8, keylen: i32, seed: u64) -> u64;
}

/// The order of the call's two codes.
///
/// # Safety
/// `fcinfo` is the current call's, and arguments 0 and 1 are non-NULL hashcodes.
#[inline]
unsafe fn compare_args(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Ordering {
    // SAFETY: the caller's promise is exactly what code_arg needs for both arguments.
    unsafe { code_arg(&*fcinfo, 0).cmp(code_arg(&*fcinfo, 1)) }
}

macro_rules! comparison {
    ($name:ident, $test:expr) => {
        sql_function! {
            fn $name(fcinfo) -> Datum {
                let test: fn(Ordering) -> bool = $test;
                // SAFETY: the comparison functions take two hashcodes and are STRICT.
                fmgr::datum_bool(test(unsafe { compare_args(fcinfo) }))
            }
        }
    };
}

comparison!(hashcode_lt, Ordering::is_lt);
comparison!(hashcode_le, Ordering::is_le);
comparison!(hashcode_eq, Ordering::is_eq);
comparison!(hashcode_ne, Ordering::is_ne);
comparison!(hashcode_ge, Ordering::is_ge);
comparison!(hashcode_gt, Ordering::is_gt);

sql_function! {
    /// `hashcode_cmp(hashcode, hashcode) -> integer`: btree support function 1.
    fn hashcode_cmp(fcinfo) -> Datum {
        // SAFETY: hashcode_cmp takes two hashcodes and is STRICT.
        fmgr::datum_i32(unsafe { compare_args(fcinfo) } as i32)
    }
}

sql_function! {
    /// `hashcode_hash(hashcode) -> integer`: hash support function 1.
    fn hashcode_hash(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let code = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: hash_bytes reads exactly `keylen` bytes (at most 512 here) from the pointer,
        // all within `code`, and neither keeps the pointer nor raises.
        let h = unsafe { hash_bytes(code.as_ptr(), code.len() as i32) };
        fmgr::datum_i32(h as i32)
    }
}

sql_function! {
    /// `hashcode_hash_extended(hashcode, bigint) -> bigint`: hash support function 2
    /// (hash partitioning).
    fn hashcode_hash_extended(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let code = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is the seed, a non-NULL bigint.
        let seed = unsafe { fmgr::arg_i64(fcinfo, 1) } as u64;
        // SAFETY: as for hash_bytes: `keylen` bytes within `code`, no pointer kept, no error.
        let h = unsafe { hash_bytes_extended(code.as_ptr(), code.len() as i32, seed) };
        fmgr::datum_i64(h as i64)
    }
}
