//! The lists strategy: an exact cluster index for Hamming space. Build chooses centroids
//! ([`kmodes`]) and assigns every code to its nearest one; each list records a covering
//! radius. Search ([`search`]) visits lists in order of the metric lower bound
//! `d(q, centroid) - radius` and returns rows in exact distance order, stopping as soon as no
//! unvisited list can hold anything closer. Learned hash codes of single-label data concentrate
//! around a few dozen class centres with many exact duplicates, so lists are tight and entries
//! are posting lists (one code, many TIDs).
//!
//! [`layout`]: its pages. [`directory`]: the lists' centroids, radii and newest pages.
//! [`build`], [`insert`], [`search`], [`vacuum`], [`verify`]: the operations.

pub mod build;
pub mod directory;
pub mod insert;
pub mod kmodes;
pub mod layout;
pub mod search;
pub mod vacuum;
pub mod verify;

#[cfg(test)]
mod tests;
