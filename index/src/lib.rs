//! The search structure behind ics_hash's `mih` index access method, with no dependency on
//! PostgreSQL: it works on pages through the [`relation::Relation`] trait, implemented over
//! shared buffers and Generic WAL by the extension and in memory by the tests here.
//!
//! An index has one of two strategies, chosen at build time by measuring both on a sample of
//! the codes ([`strategy`]) and recorded in the metapage:
//! - [`lists`]: clusters with covering radii, for codes that sit close to a few centres;
//! - [`substrings`]: multi-index hashing, fast on every distribution.
//!
//! Both are exact: k-NN returns rows in exact distance order, radius queries every row within
//! the radius. Every access-method verb has one entry point here, whatever the strategy:
//! [`build`], [`insert`], [`search`] (over [`open`]), [`vacuum`], [`verify`], [`cost`],
//! [`options`]; the extension only translates between PostgreSQL and them.
//!
//! - [`page`]: PostgreSQL's page layout in Rust. [`format`]: the metapage and what all pages
//!   share (diagrams there and in each strategy's `layout`).
//! - [`nulls`]: the rows whose code is NULL (returned last by k-NN searches).
//! - [`pending`]: inserted rows not yet written, with their subtransaction levels;
//!   [`sample`]: the build's reservoir sample of codes; [`sort`] and [`spill`]: external
//!   sorting in bounded memory; [`selectivity`]: radius selectivity for the planner.

#![forbid(unsafe_code)]

pub mod build;
pub mod cost;
pub mod format;
pub mod insert;
pub mod lists;
pub mod nulls;
pub mod open;
pub mod options;
pub mod page;
pub mod pending;
pub mod relation;
pub mod sample;
pub mod search;
pub mod selectivity;
pub mod sort;
pub mod spill;
pub mod strategy;
pub mod substrings;
pub mod vacuum;
pub mod verify;

#[cfg(test)]
mod suite;
#[cfg(test)]
mod testutil;
