//! Exact search: k-NN in distance order, radius, or both, with optional extra radius filters.
//!
//! Hamming distance is a metric, so a list with centroid `c` and covering radius `R` holds no
//! code closer to `q` than `lb = max(0, d(q, c) - R)`. The search visits lists in increasing
//! `lb` and keeps the codes it has seen in buckets by distance (distances are small
//! integers). A code at distance `d` can be returned as soon as `d <= lb` of the next
//! unvisited list: nothing unvisited can be closer. So the first rows come after visiting
//! only the lists near the query, and the scan continues lazily for as long as the executor
//! asks (LIMIT k, or a k-NN scan whose other filters reject rows).
//!
//! Every returned distance is exact; nothing needs rechecking against the heap.

use crate::format::{DataOpaque, Tid, FLAG_DELETED, INVALID_BLOCK};
use crate::lists::directory::Directory;
use crate::lists::layout::{check_data_page, entry};
use crate::relation::{ChainWalk, Relation};
use crate::search::{Query, SearchStats};
use ics_codes::hamming::{hamming, hamming_many};

pub struct Search {
    query: Query,
    /// Lists by increasing lower bound: (lower bound, list).
    order: Vec<(u32, u32)>,
    next_list: usize,
    tails: Vec<u32>,
    buckets: Vec<Vec<Tid>>,
    cursor: usize,
    pending: usize,
    pub stats: SearchStats,
}

impl Search {
    pub fn new(dir: &Directory, query: Query) -> Search {
        let nb = dir.code_bytes();
        assert_eq!(query.code.len(), nb, "query length checked by the caller");
        let mut d = vec![0u32; dir.lists()];
        hamming_many(&query.code, &dir.centroids, &mut d);
        let mut order: Vec<(u32, u32)> = (0..dir.lists())
            .filter(|&l| dir.tails[l] != INVALID_BLOCK)
            .map(|l| (d[l].saturating_sub(u32::from(dir.radius[l])), l as u32))
            .filter(|&(lb, _)| lb <= query.max_distance)
            .collect();
        order.sort_unstable();
        Search {
            buckets: vec![Vec::new(); nb * 8 + 1],
            tails: dir.tails.clone(),
            query,
            order,
            next_list: 0,
            cursor: 0,
            pending: 0,
            stats: SearchStats::default(),
        }
    }

    /// The next row in increasing distance, or `None` when the search is exhausted.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Option<(Tid, u32)> {
        loop {
            let bound = match self.order.get(self.next_list) {
                Some(&(lb, _)) => lb as usize,
                None => usize::MAX,
            };
            while self.pending > 0 && self.cursor <= bound.min(self.buckets.len() - 1) {
                if let Some(tid) = self.buckets[self.cursor].pop() {
                    self.pending -= 1;
                    return Some((tid, self.cursor as u32));
                }
                if self.cursor == bound {
                    break;
                }
                self.cursor += 1;
            }
            if self.next_list >= self.order.len() {
                return None;
            }
            let list = self.order[self.next_list].1 as usize;
            self.next_list += 1;
            self.visit_list(rel, list);
        }
    }

    fn visit_list<R: Relation>(&mut self, rel: &R, list: usize) {
        self.stats.lists_visited += 1;
        let nb = self.query.code.len();
        let mut block = self.tails[list];
        let mut walk = ChainWalk::new();
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            if let Err(e) = walk.step(rel, block) {
                rel.corrupted(e);
            }
            let page = rel.read(block);
            self.stats.pages_read += 1;
            // Unlinked pages are recycled only once no snapshot can reach them, so on a
            // primary this is always a list page; a hot standby may have replayed its reuse.
            if !DataOpaque::is_data_page(&page) {
                rel.page_recycled_under_scan(block);
            }
            let opaque = match check_data_page(&page, block, nb) {
                Ok(o) => o,
                Err(e) => rel.corrupted(e),
            };
            // A page VACUUM unlinked while we were on our way holds nothing; its prev link
            // still leads back into the chain.
            if opaque.flags & FLAG_DELETED == 0 {
                for i in 0..page.item_count() {
                    let body = page.item(i);
                    let code = entry::code(body, nb);
                    self.stats.entries_checked += 1;
                    let d = hamming(&self.query.code, code);
                    if d > self.query.max_distance
                        || !self
                            .query
                            .filters
                            .iter()
                            .all(|(c, r)| hamming(c, code) <= *r)
                    {
                        continue;
                    }
                    let bucket = &mut self.buckets[d as usize];
                    let before = bucket.len();
                    bucket.extend(entry::tids(body, nb));
                    self.pending += bucket.len() - before;
                }
            }
            block = opaque.prev;
        }
    }
}
