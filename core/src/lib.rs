//! Logic that the `ics_hash` PostgreSQL extension and the `ics-train` trainer must share
//! exactly, with no PostgreSQL dependency so that it is unit-tested with plain `cargo test`.
//!
//! - [`code`]: what a hash code is (length rules, the hex text form, bit order).
//! - [`hamming`]: Hamming distance kernels (scalar reference, word-wise, runtime-dispatched SIMD).

pub mod code;
pub mod hamming;
