//! The substring strategy: multi-index hashing (Norouzi, Punjani & Fleet, "Fast Exact Search
//! in Hamming Space with Multi-Index Hashing", TPAMI 2014) on PostgreSQL pages.
//!
//! Each code is cut into m substrings ([`plan`]). Table j holds the codes sorted by substring
//! j with a directory of where each slot (substring prefix) starts; table 0 holds every row
//! (code and TID, in code order), the others each distinct code once. Search ([`search`])
//! probes the tables by growing substring radius and proves, stage by stage, up to which
//! distance every row has been found, switching to a linear pass over table 0 when probing
//! would read more pages than that. Tables are written whole ([`build`], external sort in
//! bounded memory); rows inserted later go to an append-only tail ([`insert`]) that searches
//! read linearly and VACUUM merges into a new generation of tables ([`vacuum`]).
//!
//! [`layout`]: the pages. [`runs`]: reading one generation. [`verify`]: the invariants.

pub mod build;
pub mod insert;
pub mod layout;
pub mod plan;
pub mod runs;
pub mod search;
pub mod vacuum;
pub mod verify;

#[cfg(test)]
mod tests;
