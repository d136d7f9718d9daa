//! Reading one generation of substring tables: the metapage's description, the page list
//! from the map pages, slot ranges from the slot pages, records from the records pages.

use crate::format::{FormatError, Meta, Strategy, Tid, META_BLOCK};
use crate::relation::{BlockNumber, Relation};
use crate::substrings::layout::{self, capacity, Kind, Special, SubMeta, Table, U32_CAPACITY};

/// The TID of record `i` of the page being visited.
pub type TidOf<'a> = &'a dyn Fn(usize) -> Tid;
/// Visits a run of records: (position of the first, their codes, their TIDs in table 0).
pub type RecordVisitor<'a> = dyn FnMut(u32, &[u8], Option<TidOf<'_>>) + 'a;
/// Visits a tail page: (its codes, their TIDs).
pub type TailVisitor<'a> = dyn FnMut(&[u8], TidOf<'_>) + 'a;

/// The index as the metapage describes it at one moment (read under one share lock).
#[derive(Debug, Clone)]
pub struct Runs {
    pub meta: Meta,
    pub sub: SubMeta,
    /// The page list: block numbers of every run page, in order.
    pub pages: Vec<BlockNumber>,
}

impl Runs {
    /// Reads the metapage and the page list. Pages of this generation stay readable until
    /// no snapshot can be reading them, even after a merge replaces them.
    pub fn read<R: Relation>(rel: &R) -> Result<Runs, FormatError> {
        let (meta, sub) = {
            let page = rel.read(META_BLOCK);
            let meta = Meta::read(&page)?;
            if meta.strategy != Strategy::Substrings {
                return Err(FormatError::BadMeta("not a substring-tables index".into()));
            }
            let sub = SubMeta::read(&page).map_err(FormatError::BadMeta)?;
            (meta, sub)
        };
        let mut pages = Vec::with_capacity(sub.map_blocks.len() * U32_CAPACITY);
        for &b in &sub.map_blocks {
            let p = rel.read(b);
            let s = Special::read(&p)
                .filter(|s| s.kind == Kind::Map && s.generation == sub.generation)
                .ok_or(FormatError::NotDataPage { block: b })?;
            for i in 0..s.count as usize {
                pages.push(layout::u32_at(&p, i));
            }
        }
        let runs = Runs { meta, sub, pages };
        runs.check_shape()?;
        Ok(runs)
    }

    /// The page list is as long as the tables say.
    fn check_shape(&self) -> Result<(), FormatError> {
        let mut want = 0usize;
        for (j, t) in self.sub.tables.iter().enumerate() {
            if t.rec_first as usize != want
                || t.slot_first as usize != want + t.rec_pages(self.cap(j))
            {
                return Err(FormatError::BadMeta(format!("table {j}: {t:?}")));
            }
            want += t.rec_pages(self.cap(j)) + t.slot_pages();
        }
        if want != self.pages.len() {
            return Err(FormatError::BadMeta(format!(
                "{} run pages listed, the tables need {want}",
                self.pages.len()
            )));
        }
        Ok(())
    }

    /// Checks that `page` is still the `kind` page of table `j` of this generation (see
    /// [`Relation::page_recycled_under_scan`] for when it is not).
    fn expect<R: Relation>(
        &self,
        rel: &R,
        page: &crate::page::Page,
        block: BlockNumber,
        kind: Kind,
        j: usize,
    ) {
        let ok = Special::read(page).is_some_and(|s| {
            s.kind == kind && s.table as usize == j && s.generation == self.sub.generation
        });
        if !ok {
            rel.page_recycled_under_scan(block);
        }
    }

    pub fn code_bytes(&self) -> usize {
        self.meta.code_bytes as usize
    }

    pub fn m(&self) -> usize {
        self.sub.tables.len()
    }

    pub fn table(&self, j: usize) -> &Table {
        &self.sub.tables[j]
    }

    /// Records per page of table `j` (table 0 carries TIDs).
    pub fn cap(&self, j: usize) -> usize {
        capacity(self.code_bytes(), j == 0)
    }

    /// The block of table `j`'s `p`-th records page.
    pub fn rec_block(&self, j: usize, p: usize) -> BlockNumber {
        self.pages[self.table(j).rec_first as usize + p]
    }

    /// The block holding slot entry `e` of table `j`, and its index on that page.
    pub fn slot_location(&self, j: usize, e: usize) -> (BlockNumber, usize) {
        let t = self.table(j);
        (
            self.pages[t.slot_first as usize + e / U32_CAPACITY],
            e % U32_CAPACITY,
        )
    }

    /// The record ranges of `slots` (sorted ascending) in table `j`, empty ones left out,
    /// reading each slots page once.
    pub fn slot_ranges<R: Relation>(&self, rel: &R, j: usize, slots: &[u32]) -> Vec<(u32, u32)> {
        let mut out = Vec::with_capacity(slots.len());
        let mut cached: Option<(BlockNumber, R::Read<'_>)> = None;
        let mut entry = |e: usize| -> u32 {
            let (block, i) = self.slot_location(j, e);
            if cached.as_ref().is_none_or(|(b, _)| *b != block) {
                cached = None; // release the previous page before taking the next
                let page = rel.read(block);
                self.expect(rel, &page, block, Kind::Slots, j);
                cached = Some((block, page));
            }
            layout::u32_at(&cached.as_ref().unwrap().1, i)
        };
        for &s in slots {
            let (a, b) = (entry(s as usize), entry(s as usize + 1));
            if a < b {
                out.push((a, b));
            }
        }
        out
    }

    /// Calls `f(first_position, codes, tids)` for the records `from .. to` of table `j`, page
    /// by page (`tids` is `None` for tables after the first).
    pub fn for_records<R: Relation>(
        &self,
        rel: &R,
        j: usize,
        from: u32,
        to: u32,
        f: &mut RecordVisitor<'_>,
    ) -> usize {
        let nb = self.code_bytes();
        let cap = self.cap(j);
        let mut pages = 0;
        let mut at = from as usize;
        while at < to as usize {
            rel.check_interrupts();
            let p = at / cap;
            let block = self.rec_block(j, p);
            let page = rel.read(block);
            self.expect(rel, &page, block, Kind::Records, j);
            pages += 1;
            let lo = at - p * cap;
            let hi = (to as usize - p * cap).min(cap);
            let codes = layout::codes(&page, nb, lo, hi);
            if j == 0 {
                let tid_of = |i: usize| layout::tid(&page, nb, cap, lo + i);
                f(at as u32, codes, Some(&tid_of));
            } else {
                f(at as u32, codes, None);
            }
            at = p * cap + hi;
        }
        pages
    }

    /// Every TID of rows whose code is `code` (tombstones left out), found through table 0's
    /// slot of the code: records are sorted by code there.
    pub fn rows_of<R: Relation>(&self, rel: &R, code: &[u8], out: &mut Vec<Tid>) -> usize {
        let t0 = self.table(0);
        let slot = crate::substrings::plan::slot_of(code, t0.sub, t0.slot_bits);
        let Some(&(a, b)) = self.slot_ranges(rel, 0, &[slot]).first() else {
            return 1;
        };
        let nb = self.code_bytes();
        let mut pages = 1;
        let mut dist = Vec::new();
        pages += self.for_records(rel, 0, a, b, &mut |_, codes, tids| {
            let tids = tids.expect("table 0 has TIDs");
            dist.resize(codes.len() / nb, 0);
            ics_codes::hamming::hamming_many(code, codes, &mut dist);
            for (i, _) in dist.iter().enumerate().filter(|(_, &d)| d == 0) {
                let t = tids(i);
                if t != layout::TOMBSTONE {
                    out.push(t);
                }
            }
        });
        pages
    }
}

/// Calls `f(codes, tids_getter, count)` for every page of the tail chain starting at `head`,
/// newest first. Returns the pages read.
pub fn for_tail_pages<R: Relation>(
    rel: &R,
    code_bytes: usize,
    head: BlockNumber,
    f: &mut TailVisitor<'_>,
) -> usize {
    let cap = capacity(code_bytes, true);
    let mut block = head;
    let mut pages = 0;
    let mut seen = 0usize;
    while block != crate::format::INVALID_BLOCK {
        rel.check_interrupts();
        let page = rel.read(block);
        pages += 1;
        seen += 1;
        if seen > rel.nblocks() as usize {
            rel.corrupted(crate::format::FormatError::BadPage {
                block,
                why: "its tail chain has a cycle",
            });
        }
        let s = Special::read(&page).filter(|s| s.kind == Kind::Tail);
        let Some(s) = s else {
            rel.page_recycled_under_scan(block);
        };
        let n = s.count as usize;
        let codes = layout::codes(&page, code_bytes, 0, n);
        let tid_of = |i: usize| layout::tid(&page, code_bytes, cap, i);
        f(codes, &tid_of);
        block = s.prev;
    }
    pages
}
