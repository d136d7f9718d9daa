//! What a hash code is, shared exactly by the `ics_hash` extension, its index and the trainer,
//! with no dependencies: nothing here decodes images or parses models, so the search crate
//! (`ics-index`) can depend on it without pulling either in.
//!
//! - [`code`]: length rules, the hex text form, bit order, packing signs into bits.
//! - [`hamming`]: Hamming distance kernels (scalar reference, word-wise, runtime-dispatched SIMD).
//! - [`echo`]: user text quoted in error messages, cut to 80 characters (shared by every error
//!   of the extension that repeats what a user passed).

// Only the SIMD kernels (hamming::x86) may use unsafe code, each block with its reason.
#![deny(unsafe_code)]

pub mod code;
pub mod echo;
pub mod hamming;
