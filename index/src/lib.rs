//! The search structure behind ics_hash's `mih` index access method, with no dependency on
//! PostgreSQL: it works on pages through the [`relation::Relation`] trait, implemented over
//! shared buffers and Generic WAL by the extension and in memory by the tests here.
//!
//! The structure is an exact cluster index for Hamming space. Build chooses centroids
//! ([`kmodes`]) and assigns every code to its nearest one; each list records a covering
//! radius. Search ([`search`]) visits lists in order of the metric lower bound
//! `d(q, centroid) - radius` and returns rows in exact distance order, stopping as soon as no
//! unvisited list can hold anything closer: k-NN and radius queries are both exact.
//! Learned hash codes concentrate around a few dozen class centres with many exact
//! duplicates, so lists are tight and entries are posting lists (one code, many TIDs).
//!
//! - [`page`]: PostgreSQL's page layout in Rust. [`format`]: our pages (diagrams there).
//! - [`build`], [`insert`], [`search`], [`vacuum`], [`verify`]: the operations;
//!   [`relength`]: an index whose rows all died forgets its code length.
//! - [`pending`]: inserted rows not yet written, with their subtransaction levels;
//!   [`sample`]: the build's reservoir sample of codes.

#![forbid(unsafe_code)]

pub mod build;
pub mod directory;
pub mod format;
pub mod insert;
pub mod kmodes;
pub mod page;
pub mod pending;
pub mod relation;
pub mod relength;
pub mod sample;
pub mod search;
pub mod selectivity;
pub mod vacuum;
pub mod verify;

#[cfg(test)]
mod tests;
