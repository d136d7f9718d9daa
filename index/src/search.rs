//! Exact search, whatever the strategy: k-NN in distance order, radius, or both, with
//! optional extra radius filters. Every returned distance is exact; nothing needs
//! rechecking against the heap.

use crate::format::Tid;
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
}

impl Query {
    /// The query for an index scan's keys: `conditions` (centre, radius), all of which must
    /// hold, and the ORDER BY code if any, over codes of `code_bytes`. The search is driven by
    /// the ORDER BY code when there is one, else by the first condition; a condition centred
    /// on the driving code becomes its distance bound, the others filter. Without either,
    /// every row (driven from the all-zeros code).
    pub fn from_keys(
        conditions: Vec<(Vec<u8>, u32)>,
        order: Option<Vec<u8>>,
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

/// A search in progress over either strategy.
pub enum Search {
    Lists(crate::lists::search::Search),
    Substrings(Box<crate::substrings::search::Search>),
}

impl Search {
    /// A search of the index `opened` describes (`query`'s codes have its length).
    pub fn new(opened: Opened, query: Query) -> Search {
        match opened {
            Opened::Lists(dir) => Search::Lists(crate::lists::search::Search::new(&dir, query)),
            Opened::Substrings(runs) => Search::Substrings(Box::new(
                crate::substrings::search::Search::over(runs, query),
            )),
        }
    }

    /// The next row in increasing distance, or `None` when the search is exhausted.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Option<(Tid, u32)> {
        match self {
            Search::Lists(s) => s.next(rel),
            Search::Substrings(s) => s.next(rel),
        }
    }

    pub fn stats(&self) -> &SearchStats {
        match self {
            Search::Lists(s) => &s.stats,
            Search::Substrings(s) => &s.stats,
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
            1,
        );
        assert_eq!(
            (q.code, q.max_distance, q.filters),
            (vec![1], 4, vec![(vec![2], 3)])
        );
        // Without ORDER BY the first condition drives.
        let q = Query::from_keys(vec![(vec![7], 2), (vec![8], 1)], None, 1);
        assert_eq!(
            (q.code, q.max_distance, q.filters),
            (vec![7], 2, vec![(vec![8], 1)])
        );
        // An ORDER BY alone: no bound; nothing at all: every row from zeros.
        let q = Query::from_keys(vec![], Some(vec![3, 3]), 2);
        assert_eq!((q.max_distance, q.filters.len()), (u32::MAX, 0));
        let q = Query::from_keys(vec![], None, 2);
        assert_eq!((q.code, q.max_distance), (vec![0, 0], u32::MAX));
    }
}
