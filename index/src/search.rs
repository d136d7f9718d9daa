//! Exact search, whatever the strategy: k-NN in distance order, radius, or both, with
//! optional extra radius filters. Every returned distance is exact; nothing needs
//! rechecking against the heap. A k-NN search without radius conditions returns every row,
//! as a sequential scan of `ORDER BY code <~> q` does: the rows whose code is NULL come last,
//! with no distance (see [`crate::nulls`]).

use crate::format::{FormatError, Tid};
use crate::open::Opened;
use crate::relation::Relation;

/// What to search for.
#[derive(Debug, Clone)]
pub struct Query {
    /// The code distances are measured from (the ORDER BY argument, or the first radius
    /// condition's centre).
    pub code: Vec<u8>,
    /// Return only codes within this distance of `code` (`u32::MAX`: no limit).
    pub max_distance: u32,
    /// Further conditions `hamming(code, centre) <= radius`, all of which must hold.
    pub filters: Vec<(Vec<u8>, u32)>,
    /// Return the rows whose code is NULL after all others (a k-NN search without radius
    /// conditions, which a NULL code can never meet).
    pub nulls: bool,
}

impl Query {
    /// The query for an index scan's keys: `conditions` (centre, radius), all of which must
    /// hold, and the ORDER BY code if any, over codes of `code_bytes`. The search is driven by
    /// the ORDER BY code when there is one, else by the first condition; a condition centred
    /// on the driving code becomes its distance bound, the others filter. Without either,
    /// every row (driven from the all-zeros code). `ordered`: the scan has an ORDER BY (its
    /// code may be NULL, then `order` is `None` and every distance is NULL); without
    /// conditions it returns the NULL-code rows too.
    pub fn from_keys(
        conditions: Vec<(Vec<u8>, u32)>,
        order: Option<Vec<u8>>,
        ordered: bool,
        code_bytes: usize,
    ) -> Query {
        let code = match (order, conditions.first()) {
            (Some(code), _) => code,
            (None, Some((code, _))) => code.clone(),
            (None, None) => vec![0; code_bytes],
        };
        let mut query = Query {
            code,
            max_distance: u32::MAX,
            filters: Vec::new(),
            nulls: ordered && conditions.is_empty(),
        };
        for (centre, radius) in conditions {
            if centre == query.code {
                query.max_distance = query.max_distance.min(radius);
            } else {
                query.filters.push((centre, radius));
            }
        }
        query
    }
}

/// Work done, for diagnostics and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Lists strategy: lists read.
    pub lists_visited: usize,
    /// Substring strategy: table stages run, linear passes over table 0, and whether the
    /// search switched from stages to linear passes.
    pub stages: usize,
    pub linear_passes: usize,
    pub switched_to_linear: bool,
    pub pages_read: usize,
    pub entries_checked: usize,
}

/// The codes' part of a search, by strategy.
enum Codes {
    Lists(crate::lists::search::Search),
    Substrings(Box<crate::substrings::search::Search>),
}

/// A search in progress over either strategy.
pub struct Search {
    /// `None`: the index has no code length yet (no codes).
    codes: Option<Codes>,
    /// The NULL-code rows, once the codes are exhausted (when the query asks for them).
    nulls: Option<crate::nulls::Cursor>,
    empty_stats: SearchStats,
}

impl Search {
    /// A search of the index `opened` describes (`query`'s codes have its length). An index
    /// that does not hold its NULL-code rows (an older format) cannot answer a query that
    /// must return them.
    pub fn new(opened: Opened, query: Query) -> Result<Search, FormatError> {
        let meta = opened.meta();
        if query.nulls && !meta.holds_nulls() {
            return Err(FormatError::NullsNotIndexed {
                version: meta.version,
            });
        }
        let nulls = query.nulls.then(crate::nulls::Cursor::new);
        let codes = match opened {
            _ if opened.code_bytes() == 0 => None,
            Opened::Lists(dir) => {
                Some(Codes::Lists(crate::lists::search::Search::new(&dir, query)))
            }
            Opened::Substrings(runs) => Some(Codes::Substrings(Box::new(
                crate::substrings::search::Search::over(runs, query),
            ))),
        };
        Ok(Search {
            codes,
            nulls,
            empty_stats: SearchStats::default(),
        })
    }

    /// The next row in increasing distance (`None`: a NULL code, after every other), or
    /// `None` when the search is exhausted.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Option<(Tid, Option<u32>)> {
        let hit = match &mut self.codes {
            Some(Codes::Lists(s)) => s.next(rel),
            Some(Codes::Substrings(s)) => s.next(rel),
            None => None,
        };
        if let Some((tid, d)) = hit {
            return Some((tid, Some(d)));
        }
        let cursor = self.nulls.as_mut()?;
        match cursor.next(rel) {
            Ok(t) => t.map(|t| (t, None)),
            Err(e) => rel.corrupted(e),
        }
    }

    pub fn stats(&self) -> &SearchStats {
        match &self.codes {
            Some(Codes::Lists(s)) => &s.stats,
            Some(Codes::Substrings(s)) => &s.stats,
            None => &self.empty_stats,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn scan_keys_become_one_driving_code_a_bound_and_filters() {
        // ORDER BY drives; a condition on the same code bounds it; another filters.
        let q = Query::from_keys(
            vec![(vec![1], 5), (vec![2], 3), (vec![1], 4)],
            Some(vec![1]),
            true,
            1,
        );
        assert_eq!(
            (q.code, q.max_distance, q.filters, q.nulls),
            (vec![1], 4, vec![(vec![2], 3)], false)
        );
        // Without ORDER BY the first condition drives.
        let q = Query::from_keys(vec![(vec![7], 2), (vec![8], 1)], None, false, 1);
        assert_eq!(
            (q.code, q.max_distance, q.filters),
            (vec![7], 2, vec![(vec![8], 1)])
        );
        // An ORDER BY alone: no bound; nothing at all: every row from zeros.
        // An ORDER BY alone returns the NULL-code rows too, also ORDER BY a NULL code.
        let q = Query::from_keys(vec![], Some(vec![3, 3]), true, 2);
        assert_eq!(
            (q.max_distance, q.filters.len(), q.nulls),
            (u32::MAX, 0, true)
        );
        let q = Query::from_keys(vec![], None, true, 2);
        assert_eq!(
            (q.code, q.max_distance, q.nulls),
            (vec![0, 0], u32::MAX, true)
        );
        let q = Query::from_keys(vec![], None, false, 2);
        assert!(!q.nulls);
    }

    /// A page found unreadable mid-scan ends the scan through `Relation::corrupted`, with the
    /// same error an operation returns for its metapage.
    #[test]
    #[should_panic(expected = "mih: block 1 is not a mih data page")]
    fn a_corrupt_page_mid_scan_is_reported_as_the_format_error() {
        use crate::format::Tid;
        use crate::relation::{MemRelation, Relation};
        let rel = MemRelation::new();
        crate::substrings::build::build_empty(&rel, 1);
        let tid = Tid {
            block: 0,
            offset: 1,
        };
        crate::nulls::append(&rel, &[tid]).unwrap();
        *rel.write(1) = *crate::page::Page::zeroed();
        let q = Query::from_keys(vec![], None, true, 1);
        let mut s = super::Search::new(crate::open::open(&rel).unwrap(), q).unwrap();
        s.next(&rel);
    }
}
