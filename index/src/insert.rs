//! Inserts after the build, whatever the strategy: the lists strategy puts each row in its
//! nearest list; substring tables append to their tail until the next merge.

use crate::format::{FormatError, Tid};
use crate::open::Opened;
use crate::relation::Relation;

/// Writes rows (`codes` contiguous, one per TID, of the index's length) to the index that
/// `opened` describes.
pub fn insert_batch<R: Relation>(
    rel: &R,
    opened: &Opened,
    codes: &[u8],
    tids: &[Tid],
    scratch: &mut Vec<u32>,
) -> Result<(), FormatError> {
    match opened {
        Opened::Lists(dir) => {
            crate::lists::insert::insert_batch(rel, &dir.meta, &dir.centroids, codes, tids, scratch)
        }
        Opened::Substrings(_) => crate::substrings::insert::insert_batch(rel, codes, tids),
    }
}
