//! Benchmarks only: see `benches/` (criterion) and `sql/` (SQL benchmark scripts). The library
//! holds what the benchmark binaries share.

pub mod gen;
pub mod scan;
