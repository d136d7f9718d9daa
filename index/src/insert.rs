//! Inserts after the build, whatever the strategy: the lists strategy puts each row in its
//! nearest list; substring tables append to their tail until the next merge.

use crate::format::{FormatError, Strategy, Tid, META_BLOCK};
use crate::open::{open, Opened};
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
            crate::lists::insert::insert_batch(
                rel,
                &dir.meta,
                &dir.centroids,
                codes,
                tids,
                scratch,
            );
            Ok(())
        }
        Opened::Substrings(_) => crate::substrings::insert::insert_batch(rel, codes, tids),
    }
}

/// For an index built without knowing the code length: fixes it to `code_bytes`, unless a
/// concurrent insert already did. Returns the index as it now is.
pub fn fix_code_length<R: Relation>(rel: &R, code_bytes: usize) -> Result<Opened, FormatError> {
    let strategy = crate::format::Meta::read(&rel.read(META_BLOCK))?.strategy;
    match strategy {
        Strategy::Lists => {
            crate::lists::insert::fix_code_length(rel, code_bytes)?;
        }
        Strategy::Substrings => {
            crate::substrings::build::fix_code_length(rel, code_bytes)?;
        }
    }
    open(rel)
}
