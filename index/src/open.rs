//! Reading what an index is: its strategy, code length and directory (the lists' centroids
//! and radii, or the substring tables' page list), from the metapage.

use crate::format::{FormatError, Meta, Strategy, META_BLOCK};
use crate::lists::directory::Directory;
use crate::relation::Relation;
use crate::substrings::runs::Runs;

/// An index's description, read under the metapage's share lock (and the directory's).
#[derive(Debug, Clone)]
pub enum Opened {
    Lists(Directory),
    Substrings(Runs),
}

impl Opened {
    /// The length of the index's codes in bytes (0: an index older versions built on an empty
    /// column without a declared length).
    pub fn code_bytes(&self) -> usize {
        match self {
            Opened::Lists(d) => d.code_bytes(),
            Opened::Substrings(r) => r.code_bytes(),
        }
    }

    pub fn strategy(&self) -> Strategy {
        match self {
            Opened::Lists(_) => Strategy::Lists,
            Opened::Substrings(_) => Strategy::Substrings,
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            Opened::Lists(d) => &d.meta,
            Opened::Substrings(r) => &r.meta,
        }
    }
}

/// The index's strategy (reads the metapage only).
pub fn strategy<R: Relation>(rel: &R) -> Result<Strategy, FormatError> {
    Ok(Meta::read(&rel.read(META_BLOCK))?.strategy)
}

/// Reads the index's description.
pub fn open<R: Relation>(rel: &R) -> Result<Opened, FormatError> {
    Ok(match strategy(rel)? {
        Strategy::Lists => Opened::Lists(Directory::read(rel)?),
        Strategy::Substrings => Opened::Substrings(Runs::read(rel)?),
    })
}
