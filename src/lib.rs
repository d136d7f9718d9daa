//! ics_hash: semantic image retrieval in PostgreSQL with learned binary hash codes.
//!
//! The SQL surface is hand-written in `sql/` (one file per concept, loaded in order by
//! `extension_sql_file!`); the Rust side is thin glue over the pgrx-free crates
//! `ics-codes` (codes, kernels), `ics-index` (the search structure) and `ics-encoder` (images,
//! models, ONNX Runtime).
//!
//! - [`hashcode`]: the `hashcode` type, its operators, casts and operator classes.
//! - [`index`]: the `mih` index access method (exact Hamming k-NN and radius search).
//! - [`encoder`]: models in the database and `ics_encode` (ONNX Runtime inside the backend).

pub mod encoder;
mod fmgr;
pub mod hashcode;
pub mod index;

pgrx::pg_module_magic!();

pgrx::extension_sql_file!("../sql/hashcode.sql", name = "hashcode", bootstrap);
pgrx::extension_sql_file!("../sql/index.sql", name = "index", requires = ["hashcode"]);
pgrx::extension_sql_file!("../sql/encoder.sql", name = "encoder", requires = ["index"]);

/// Library load: registers the index options and the encoder's settings. Nothing here starts
/// threads, loads ONNX Runtime or touches the database (the library may be preloaded into the
/// postmaster).
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    never_send_backtraces();
    index::am_options::register();
    encoder::gucs::register();
}

/// pgrx puts a captured Rust backtrace into an error's DETAIL, which goes to the client, and
/// `std::backtrace::Backtrace::capture` captures one whenever `RUST_BACKTRACE` (or
/// `RUST_LIB_BACKTRACE`) is set in the server's environment. A client must never see the
/// server's stack, so captures are switched off for the process before anything can take one
/// (the choice is read once and cached). Panic messages in the server log are unaffected.
fn never_send_backtraces() {
    // Library load is single-threaded: nothing reads the environment concurrently.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
}
