//! Bulk build: codes stream in, are assigned to their nearest centroid in batches, sorted
//! within each batch so equal codes share one entry (a posting list), and appended to their
//! list's chain. Only one open page per list is held in memory, plus the current batch, whose
//! size the caller derives from `maintenance_work_mem`.
//!
//! The caller writes pages without WAL and logs the finished relation at the end
//! (log_newpage_range), as PostgreSQL's own index builds do.

use crate::format::{self, Meta, Tid, INVALID_BLOCK};
use crate::lists::layout::{entry, init_data_page, ListRecord};
use crate::page::Page;
use crate::relation::Relation;
use ics_codes::hamming::nearest;

/// Lists for a table of `rows` rows: about sqrt(rows), so a query's work (centroids plus
/// the lists it visits) stays balanced.
pub fn default_lists(rows: u64) -> usize {
    ((rows as f64).sqrt().round() as usize).clamp(1, crate::options::MAX_LISTS as usize)
}

/// Memory one buffered row takes in a batch (code, TID, list, sort key).
pub fn batch_bytes_per_row(code_bytes: usize) -> usize {
    code_bytes + Tid::SIZE + 4 + 4 + 4
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    pub rows: u64,
    pub entries: u64,
    pub data_pages: u64,
    pub lists: usize,
    pub nonempty_lists: usize,
    pub max_radius: u16,
}

pub struct Builder<'r, R: Relation> {
    rel: &'r R,
    meta: Meta,
    centroids: Vec<u8>,
    radius: Vec<u16>,
    tails: Vec<u32>,
    open: Vec<Option<Box<Page>>>,
    batch_codes: Vec<u8>,
    batch_tids: Vec<Tid>,
    batch_rows: usize,
    scratch: Vec<u32>,
    summary: BuildSummary,
}

impl<'r, R: Relation> Builder<'r, R> {
    /// Starts a build into an empty relation: writes the metapage and directory pages first
    /// (blocks 0..=dir_pages), data pages follow.
    pub fn new(rel: &'r R, centroids: Vec<u8>, code_bytes: usize, batch_rows: usize) -> Self {
        assert!(!centroids.is_empty() && centroids.len().is_multiple_of(code_bytes));
        let lists = centroids.len() / code_bytes;
        let meta = Meta::new(code_bytes, lists, 0);
        meta.write(&mut format::new_metapage(rel));
        for d in 0..meta.dir_pages {
            let (b, mut p) = rel.new_page();
            assert_eq!(b, format::FIRST_DIR_BLOCK + d);
            let per = meta.records_per_page as usize;
            crate::lists::layout::init_dir_page(&meta, &mut p, per.min(lists - d as usize * per));
        }
        Builder {
            rel,
            radius: vec![0; lists],
            tails: vec![INVALID_BLOCK; lists],
            open: (0..lists).map(|_| None).collect(),
            batch_codes: Vec::new(),
            batch_tids: Vec::new(),
            batch_rows: batch_rows.max(1),
            scratch: Vec::new(),
            summary: BuildSummary {
                lists,
                ..Default::default()
            },
            meta,
            centroids,
        }
    }

    /// Adds one row.
    pub fn add(&mut self, code: &[u8], tid: Tid) {
        debug_assert_eq!(code.len(), self.meta.code_bytes as usize);
        self.batch_codes.extend_from_slice(code);
        self.batch_tids.push(tid);
        if self.batch_tids.len() >= self.batch_rows {
            self.flush();
        }
    }

    pub fn rows(&self) -> u64 {
        self.summary.rows + self.batch_tids.len() as u64
    }

    fn flush(&mut self) {
        let nb = self.meta.code_bytes as usize;
        let n = self.batch_tids.len();
        let mut list_of = Vec::with_capacity(n);
        for i in 0..n {
            if i % 4096 == 0 {
                self.rel.check_interrupts();
            }
            let code = &self.batch_codes[i * nb..(i + 1) * nb];
            let (l, d) = nearest(code, &self.centroids, &mut self.scratch);
            self.radius[l] = self.radius[l].max(d as u16);
            list_of.push(l as u32);
        }
        let codes = std::mem::take(&mut self.batch_codes);
        let tids = std::mem::take(&mut self.batch_tids);
        let code = |i: u32| &codes[i as usize * nb..(i as usize + 1) * nb];
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            (list_of[a as usize], code(a), tids[a as usize]).cmp(&(
                list_of[b as usize],
                code(b),
                tids[b as usize],
            ))
        });
        let max_tids = entry::max_tids(nb);
        let mut i = 0;
        let mut group: Vec<Tid> = Vec::new();
        while i < n {
            let first = order[i];
            let l = list_of[first as usize];
            group.clear();
            while i < n && list_of[order[i] as usize] == l && code(order[i]) == code(first) {
                group.push(tids[order[i] as usize]);
                i += 1;
            }
            for chunk in group.chunks(max_tids) {
                let body = entry::encode(code(first), chunk);
                self.append(l as usize, &body);
            }
        }
        self.summary.rows += n as u64;
        self.batch_codes = codes;
        self.batch_codes.clear();
        self.batch_tids = tids;
        self.batch_tids.clear();
    }

    fn append(&mut self, l: usize, body: &[u8]) {
        self.summary.entries += 1;
        let prev = self.tails[l];
        let page = self.open[l].get_or_insert_with(|| {
            let mut p = Page::zeroed();
            init_data_page(&mut p, prev);
            p
        });
        if page.add_item(body) {
            return;
        }
        self.write_open(l);
        let mut p = Page::zeroed();
        init_data_page(&mut p, self.tails[l]);
        assert!(p.add_item(body), "an entry always fits an empty page");
        self.open[l] = Some(p);
    }

    fn write_open(&mut self, l: usize) {
        if let Some(page) = self.open[l].take() {
            let (block, mut w) = self.rel.new_page();
            w.0.copy_from_slice(&page.0);
            self.tails[l] = block;
            self.summary.data_pages += 1;
        }
    }

    /// Writes what is buffered and the directory; returns what was built.
    pub fn finish(mut self) -> BuildSummary {
        if !self.batch_tids.is_empty() {
            self.flush();
        }
        for l in 0..self.tails.len() {
            self.write_open(l);
        }
        let nb = self.meta.code_bytes as usize;
        for l in 0..self.tails.len() {
            let (block, offset) = self.meta.record_location(l);
            let rec = ListRecord {
                centroid: self.centroids[l * nb..(l + 1) * nb].to_vec(),
                radius: self.radius[l],
                tail: self.tails[l],
            };
            rec.write(&self.meta, &mut self.rel.write(block), offset);
        }
        self.meta.build_rows = self.summary.rows;
        self.meta.write(&mut self.rel.write(format::META_BLOCK));
        self.summary.nonempty_lists = self.tails.iter().filter(|&&t| t != INVALID_BLOCK).count();
        self.summary.max_radius = self.radius.iter().copied().max().unwrap_or(0);
        self.summary
    }
}

/// Writes the metapage and directory of an index with no rows yet (CREATE INDEX on an empty
/// table, or the init fork of an unlogged index): one list whose centroid is all zeros. Every
/// insert then goes to that list, with an exact covering radius; REINDEX once the table has
/// data gives it real lists.
pub fn build_empty<R: Relation>(rel: &R, code_bytes: usize) -> BuildSummary {
    Builder::new(rel, vec![0; code_bytes], code_bytes, 1).finish()
}
