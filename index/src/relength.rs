//! Forgetting the code length of an index that holds nothing alive, whatever the strategy
//! (see [`crate::lists::relength`] for why; substring tables do the same with their pages).

use crate::format::{FormatError, Strategy, Tid};
use crate::relation::Relation;

/// Removes every TID for which `is_dead` is true; if none remains, resets the index to "no
/// length yet" and returns true. The caller keeps other inserts out (see the lists' module).
pub fn reset_if_all_dead<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<bool, FormatError> {
    match crate::open::strategy(rel)? {
        Strategy::Lists => crate::lists::relength::reset_if_all_dead(rel, is_dead),
        Strategy::Substrings => crate::substrings::vacuum::reset_if_all_dead(rel, is_dead),
    }
}
