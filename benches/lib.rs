//! Benchmarks only: see `benches/` (criterion) and `sql/` (SQL benchmark scripts).
