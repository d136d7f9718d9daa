//! VACUUM, whatever the strategy: dead rows out, then cleanup (for substring tables, the
//! merge of the tail into new tables), and unlinked pages recycled once no snapshot can
//! reach them.

use crate::format::{FormatError, Strategy, Tid};
use crate::open::Opened;
use crate::relation::Relation;
use crate::spill::Spill;

/// What a bulk delete found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumStats {
    pub tids_removed: u64,
    pub tids_remaining: u64,
    pub entries_remaining: u64,
    pub pages_unlinked: u64,
    pub pages_recycled: u64,
    pub pages_in_lists: u64,
}

/// What cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanupStats {
    pub pages_recycled: u64,
    /// Substring tables: the merge, if one ran.
    pub merge: Option<crate::substrings::vacuum::MergeStats>,
}

/// Removes every TID for which `is_dead` is true (the rows whose code is NULL included).
pub fn bulk_delete<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<VacuumStats, FormatError> {
    let mut stats = match crate::open::strategy(rel)? {
        Strategy::Lists => crate::lists::vacuum::bulk_delete(rel, is_dead),
        Strategy::Substrings => crate::substrings::vacuum::bulk_delete(rel, is_dead),
    }?;
    let (removed, remaining) = crate::nulls::bulk_delete(rel, is_dead)?;
    stats.tids_removed += removed;
    stats.tids_remaining += remaining;
    Ok(stats)
}

/// After VACUUM's bulk deletes (or without them): recycles what earlier VACUUMs unlinked, and
/// for substring tables merges the tail when it has grown (`substrings`: the configured
/// number of substrings, 0 for the default). `budget` bounds the merge's memory.
pub fn cleanup<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    substrings: u32,
    check: &mut dyn FnMut(),
) -> Result<CleanupStats, FormatError> {
    match crate::open::open(rel)? {
        Opened::Lists(dir) => Ok(CleanupStats {
            pages_recycled: crate::lists::vacuum::recycle(rel, dir.meta.first_data_block()),
            merge: None,
        }),
        Opened::Substrings(_) => {
            let merge =
                crate::substrings::vacuum::merge(rel, spill, budget, substrings, false, check)?;
            let pages_recycled = crate::substrings::vacuum::reclaim(rel)?;
            Ok(CleanupStats {
                pages_recycled,
                merge,
            })
        }
    }
}
