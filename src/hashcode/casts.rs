//! Explicit conversions between `hashcode` and PostgreSQL's own types. Bit order is the same
//! everywhere (bit 0 = most significant bit of byte 0), so these only copy bytes; what they add
//! is checking lengths: a code is never silently padded or truncated.
//!
//! `hashcode -> bytea` needs no function (the payload is the same): see `sql/hashcode.sql`.

use super::{code_arg, code_datum, enforce_code_length};
use crate::fmgr::{self, raise, sql_function};
use pgrx::{pg_sys, PgSqlErrorCode};

sql_function! {
    /// `hashcode(bytea) -> hashcode`: the bytes are the code.
    fn hashcode_from_bytea(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL bytea (STRICT), a varlena.
        let bytes = unsafe { fmgr::arg_varlena_bytes(&*fcinfo, 0) };
        enforce_code_length(bytes.len() * 8, &format!("a bytea of {} bytes", bytes.len()));
        code_datum(bytes)
    }
}

/// Size of the `bit_len` field that starts a bit string's payload (`VarBit` in varbit.h).
const BIT_LEN_SIZE: usize = std::mem::size_of::<i32>();

sql_function! {
    /// `hashcode(bit)` and `hashcode(bit varying) -> hashcode`: both types share one layout.
    fn hashcode_from_varbit(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL bit or bit varying (STRICT), a varlena.
        let payload = unsafe { fmgr::arg_varlena_bytes(&*fcinfo, 0) };
        let bit_len = i32::from_ne_bytes(payload[..BIT_LEN_SIZE].try_into().unwrap()) as usize;
        enforce_code_length(bit_len, &format!("a bit string of {bit_len} bits"));
        code_datum(&payload[BIT_LEN_SIZE..BIT_LEN_SIZE + bit_len / 8])
    }
}

/// A `bit`/`bit varying` datum with the bits of `code`. Whole bytes, so no padding to clear.
fn varbit_datum(code: &[u8]) -> pg_sys::Datum {
    let mut payload = Vec::with_capacity(BIT_LEN_SIZE + code.len());
    payload.extend_from_slice(&((code.len() * 8) as i32).to_ne_bytes());
    payload.extend_from_slice(code);
    fmgr::new_varlena(&payload)
}

sql_function! {
    /// `hashcode_to_bit(hashcode, integer, boolean) -> bit`: `bit(n)` must be the code's length.
    fn hashcode_to_bit(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let code = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is the target typmod, a non-NULL int4.
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 1) };
        let bits = code.len() * 8;
        if typmod >= 0 && typmod as usize != bits {
            raise(
                PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
                format!("hashcode length {bits} does not match type bit({typmod})"),
                Some(&format!("Cast to bit({bits}) or to bit varying.")),
            )
        }
        varbit_datum(code)
    }
}

sql_function! {
    /// `hashcode_to_varbit(hashcode, integer, boolean) -> bit varying`: `bit varying(n)` must
    /// hold the whole code.
    fn hashcode_to_varbit(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let code = unsafe { code_arg(&*fcinfo, 0) };
        // SAFETY: argument 1 is the target typmod, a non-NULL int4.
        let typmod = unsafe { fmgr::arg_i32(fcinfo, 1) };
        let bits = code.len() * 8;
        if typmod >= 0 && (typmod as usize) < bits {
            raise(
                PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
                format!("hashcode length {bits} is too long for type bit varying({typmod})"),
                Some(&format!("Cast to bit varying({bits}) or to bit varying without a length.")),
            )
        }
        varbit_datum(code)
    }
}

sql_function! {
    /// `hashcode(bigint) -> hashcode`: a 64-bit code, the sign bit of the bigint first.
    fn hashcode_from_int8(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL bigint (STRICT).
        let value = unsafe { fmgr::arg_i64(fcinfo, 0) };
        code_datum(&value.to_be_bytes())
    }
}

sql_function! {
    /// `int8(hashcode) -> bigint`: only 64-bit codes convert.
    fn hashcode_to_int8(fcinfo) -> Datum {
        // SAFETY: argument 0 is a non-NULL hashcode: the function is STRICT.
        let code = unsafe { code_arg(&*fcinfo, 0) };
        match <[u8; 8]>::try_from(code) {
            Ok(bytes) => fmgr::datum_i64(i64::from_be_bytes(bytes)),
            Err(_) => raise(
                PgSqlErrorCode::ERRCODE_STRING_DATA_LENGTH_MISMATCH,
                format!("hashcode length {} does not match bigint (64 bits)", code.len() * 8),
                Some("Only hashcode(64) values cast to bigint; use bytea or bit varying for other lengths."),
            ),
        }
    }
}
