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

#[inline]
unsafe fn compare_args(fcinfo: pgrx::pg_sys::FunctionCallInfo) -> Ordering {
    unsafe { code_arg(&*fcinfo, 0).cmp(code_arg(&*fcinfo, 1)) }
}

macro_rules! comparison {
    ($name:ident, $test:expr) => {
        sql_function! {
            fn $name(fcinfo) -> Datum {
                let test: fn(Ordering) -> bool = $test;
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
        fmgr::datum_i32(unsafe { compare_args(fcinfo) } as i32)
    }
}

sql_function! {
    /// `hashcode_hash(hashcode) -> integer`: hash support function 1.
    fn hashcode_hash(fcinfo) -> Datum {
        let code = unsafe { code_arg(&*fcinfo, 0) };
        let h = unsafe { hash_bytes(code.as_ptr(), code.len() as i32) };
        fmgr::datum_i32(h as i32)
    }
}

sql_function! {
    /// `hashcode_hash_extended(hashcode, bigint) -> bigint`: hash support function 2
    /// (hash partitioning).
    fn hashcode_hash_extended(fcinfo) -> Datum {
        let code = unsafe { code_arg(&*fcinfo, 0) };
        let seed = unsafe { fmgr::arg_i64(fcinfo, 1) } as u64;
        let h = unsafe { hash_bytes_extended(code.as_ptr(), code.len() as i32, seed) };
        fmgr::datum_i64(h as i64)
    }
}
