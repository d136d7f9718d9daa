//! Structural verification, whatever the strategy (what `mih_verify` reports).

use crate::format::{FormatError, Strategy, Tid};
use crate::open::Opened;
use crate::relation::Relation;
use crate::spill::Spill;

/// What verification found. Fields that belong to one strategy are zero for the other.
#[derive(Debug, Clone)]
pub struct Report {
    pub code_bytes: usize,
    pub strategy: Strategy,
    pub lists: usize,
    pub nonempty_lists: usize,
    pub max_radius: u16,
    pub unlinked_pages_still_linked: u64,
    /// Substring tables: their number, the generation, dead rows awaiting a merge, and rows
    /// in the tail.
    pub substrings: usize,
    pub generation: u32,
    pub tombstones: u64,
    pub tail_rows: u64,
    pub data_pages: u64,
    /// Stored entries (posting lists, or records) and live TIDs.
    pub entries: u64,
    pub tids: u64,
    /// Rows whose code is NULL, and the pages holding them.
    pub nulls: u64,
    pub null_pages: u64,
    pub problems: Vec<String>,
    /// Every (TID, code) in the index, when asked for (to compare with the heap).
    pub contents: Vec<(Tid, Vec<u8>)>,
    /// Every TID of a row whose code is NULL, when asked for.
    pub null_contents: Vec<Tid>,
}

impl Default for Report {
    fn default() -> Self {
        Report {
            code_bytes: 0,
            strategy: Strategy::Lists,
            lists: 0,
            nonempty_lists: 0,
            max_radius: 0,
            unlinked_pages_still_linked: 0,
            substrings: 0,
            generation: 0,
            tombstones: 0,
            tail_rows: 0,
            data_pages: 0,
            entries: 0,
            tids: 0,
            nulls: 0,
            null_pages: 0,
            problems: Vec::new(),
            contents: Vec::new(),
            null_contents: Vec::new(),
        }
    }
}

/// Verifies the index; with `collect`, [`Report::contents`] lists every live row.
pub fn verify<R: Relation, S: Spill>(
    rel: &R,
    spill: &S,
    budget: usize,
    collect: bool,
) -> Result<Report, FormatError> {
    let mut report = match crate::open::open(rel)? {
        Opened::Lists(_) => crate::lists::verify::verify(rel, collect),
        Opened::Substrings(_) => crate::substrings::verify::verify(rel, spill, budget, collect),
    }?;
    let nulls = crate::nulls::verify(rel, collect)?;
    report.nulls = nulls.tids;
    report.null_pages = nulls.pages;
    report.problems.extend(nulls.problems);
    report.null_contents = nulls.contents;
    Ok(report)
}
