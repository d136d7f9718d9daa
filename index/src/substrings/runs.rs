//! Reading one generation of substring tables: the metapage's description, the page list
//! from the map pages, slot ranges from the slot pages, records from the records pages.

use crate::format::{FormatError, Meta, Strategy, Tid, META_BLOCK};
use crate::relation::{BlockNumber, ChainWalk, PageListMemo, Relation};
use crate::substrings::layout::{
    self, capacity, check_page, Kind, PageFault, Special, SubMeta, Table, Want, U32_CAPACITY,
};
use std::sync::Arc;

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
    pub pages: Arc<[BlockNumber]>,
    /// Page-list position of table 0's codes pages; `None` for an index built before them.
    pub codes_first: Option<usize>,
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
        let memo = rel.page_list_memo();
        let remembered = memo.and_then(|m| {
            m.borrow()
                .as_ref()
                .filter(|p| p.generation == sub.generation && p.map_blocks == sub.map_blocks)
                .map(|p| p.pages.clone())
        });
        let pages = match remembered {
            Some(pages) => pages,
            None => {
                let pages: Arc<[BlockNumber]> = Runs::read_page_list(rel, &sub)?.into();
                if let Some(m) = memo {
                    *m.borrow_mut() = Some(PageListMemo {
                        generation: sub.generation,
                        map_blocks: sub.map_blocks.clone(),
                        pages: pages.clone(),
                    });
                }
                pages
            }
        };
        let mut runs = Runs {
            meta,
            sub,
            pages,
            codes_first: None,
        };
        runs.check_shape()?;
        Ok(runs)
    }

    /// The page list from the map pages (every entry checked to lie inside the relation).
    fn read_page_list<R: Relation>(
        rel: &R,
        sub: &SubMeta,
    ) -> Result<Vec<BlockNumber>, FormatError> {
        let mut pages = Vec::with_capacity(sub.map_blocks.len() * U32_CAPACITY);
        let nblocks = rel.nblocks();
        for &b in &sub.map_blocks {
            let p = rel.read(b);
            let map = Want {
                min_count: 0,
                max_count: U32_CAPACITY,
                ..Want::run(Kind::Map, 0, sub.generation, 0)
            };
            let s = check_page(&p, b, &map)?;
            for i in 0..s.count as usize {
                let listed = layout::u32_at(&p, i);
                // Every later read goes by this list: a block outside the index is garbage.
                if listed == META_BLOCK || listed >= nblocks {
                    return Err(FormatError::BadField {
                        block: b,
                        field: "a page-list entry",
                        expected: format!("a block from 1 to {}", nblocks - 1),
                        found: format!("{listed} (entry {i})"),
                    });
                }
                pages.push(listed);
            }
        }
        Ok(pages)
    }

    /// The page list is as long as the tables say, with or without table 0's codes pages
    /// (which it then locates).
    fn check_shape(&mut self) -> Result<(), FormatError> {
        let mut want = 0usize;
        for (j, t) in self.sub.tables.iter().enumerate() {
            if t.rec_first as usize != want
                || t.slot_first as usize != want + t.rec_pages(self.cap(j))
            {
                return Err(FormatError::BadMeta(format!("table {j}: {t:?}")));
            }
            want += t.rec_pages(self.cap(j)) + t.slot_pages();
        }
        let codes = self.sub.tables.first().map_or(0, |t| {
            (t.records as usize).div_ceil(layout::codes_capacity(self.code_bytes()))
        });
        if self.pages.len() == want + codes && codes > 0 {
            self.codes_first = Some(want);
        } else if want != self.pages.len() {
            return Err(FormatError::BadMeta(format!(
                "{} run pages listed, the tables need {want} (or {} with table 0's codes pages)",
                self.pages.len(),
                want + codes
            )));
        }
        Ok(())
    }

    /// Table 0's codes pages: how many there are (0 for an index built before them).
    pub fn codes_pages(&self) -> usize {
        match self.codes_first {
            Some(first) => self.pages.len() - first,
            None => 0,
        }
    }

    /// Calls `f(first_position, codes, page)` for every codes page of table 0, in order (the
    /// caller checks that there are such pages).
    pub fn for_codes<R: Relation>(
        &self,
        rel: &R,
        f: &mut dyn FnMut(u32, &[u8], &crate::page::Page),
    ) -> Result<usize, PageFault> {
        let first = self.codes_first.expect("callers check codes_pages()");
        let nb = self.code_bytes();
        let cap = layout::codes_capacity(nb);
        let total = self.table(0).records as usize;
        for p in 0..self.codes_pages() {
            rel.check_interrupts();
            let block = self.pages[first + p];
            let page = rel.read(block);
            let count = (total - p * cap).min(cap);
            let want = Want::run(Kind::Codes, 0, self.sub.generation, count);
            layout::check_codes_page(&page, block, &want)?;
            f(
                (p * cap) as u32,
                layout::codes_page(&page, nb, count),
                &page,
            );
        }
        Ok(self.codes_pages())
    }

    /// The TID of table 0's record at `position` (a tombstone for a dead row).
    pub fn tid_at<R: Relation>(&self, rel: &R, position: u32) -> Result<Tid, PageFault> {
        let (cap, nb) = (self.cap(0), self.code_bytes());
        let p = position as usize / cap;
        let block = self.rec_block(0, p);
        let page = rel.read(block);
        self.check(
            &page,
            block,
            Kind::Records,
            0,
            self.page_count(0, Kind::Records, p),
        )?;
        Ok(layout::tid(&page, nb, cap, position as usize % cap))
    }

    /// Checks that `page` is still the `kind` page of table `j` of this generation holding
    /// `count` records or entries (see [`PageFault`] for when it is not).
    fn check(
        &self,
        page: &crate::page::Page,
        block: BlockNumber,
        kind: Kind,
        j: usize,
        count: usize,
    ) -> Result<Special, PageFault> {
        check_page(page, block, &Want::run(kind, j, self.sub.generation, count))
    }

    /// Records (or slot entries) on page `p` of table `j`'s records (or slots), as built.
    fn page_count(&self, j: usize, kind: Kind, p: usize) -> usize {
        let (total, per) = match kind {
            Kind::Slots => (self.table(j).slots() + 1, U32_CAPACITY),
            _ => (self.table(j).records as usize, self.cap(j)),
        };
        (total - p * per).min(per)
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
    /// reading each slots page once. Each range is checked to lie within the table.
    pub fn slot_ranges<R: Relation>(
        &self,
        rel: &R,
        j: usize,
        slots: &[u32],
    ) -> Result<Vec<(u32, u32)>, PageFault> {
        let mut out = Vec::with_capacity(slots.len());
        let mut cached: Option<(BlockNumber, R::Read<'_>)> = None;
        let mut entry = |e: usize| -> Result<(BlockNumber, u32), PageFault> {
            let (block, i) = self.slot_location(j, e);
            if cached.as_ref().is_none_or(|(b, _)| *b != block) {
                cached = None; // release the previous page before taking the next
                let page = rel.read(block);
                let count = self.page_count(j, Kind::Slots, e / U32_CAPACITY);
                self.check(&page, block, Kind::Slots, j, count)?;
                cached = Some((block, page));
            }
            Ok((block, layout::u32_at(&cached.as_ref().unwrap().1, i)))
        };
        let records = self.table(j).records;
        for &s in slots {
            let ((_, a), (block, b)) = (entry(s as usize)?, entry(s as usize + 1)?);
            // The reads that follow index the page list by these: out of the table, they
            // would read another table's pages or none.
            if a > b || b > records {
                return Err(PageFault::Garbage(FormatError::BadField {
                    block,
                    field: "a slot's record range",
                    expected: format!("a range within the table's {records} records"),
                    found: format!("{a}..{b} (slot {s})"),
                }));
            }
            if a < b {
                out.push((a, b));
            }
        }
        Ok(out)
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
    ) -> Result<usize, PageFault> {
        let nb = self.code_bytes();
        let cap = self.cap(j);
        let mut pages = 0;
        let mut at = from as usize;
        debug_assert!(to <= self.table(j).records, "callers check ranges");
        while at < to as usize {
            rel.check_interrupts();
            let p = at / cap;
            let block = self.rec_block(j, p);
            let page = rel.read(block);
            let count = self.page_count(j, Kind::Records, p);
            self.check(&page, block, Kind::Records, j, count)?;
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
        Ok(pages)
    }

    /// Every TID of rows whose code is `code` (tombstones left out), found through table 0's
    /// slot of the code: records are sorted by code there.
    pub fn rows_of<R: Relation>(
        &self,
        rel: &R,
        code: &[u8],
        out: &mut Vec<Tid>,
    ) -> Result<usize, PageFault> {
        let t0 = self.table(0);
        let slot = crate::substrings::plan::slot_of(code, t0.sub, t0.slot_bits);
        let Some(&(a, b)) = self.slot_ranges(rel, 0, &[slot])?.first() else {
            return Ok(1);
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
        })?;
        Ok(pages)
    }
}

/// Calls `f(codes, tids_getter, count)` for every page of the tail chain starting at `head`,
/// newest first. Returns the pages read.
pub fn for_tail_pages<R: Relation>(
    rel: &R,
    code_bytes: usize,
    head: BlockNumber,
    f: &mut TailVisitor<'_>,
) -> Result<usize, PageFault> {
    let cap = capacity(code_bytes, true);
    let want = Want::tail(code_bytes);
    let mut block = head;
    let mut pages = 0;
    let mut walk = ChainWalk::new();
    while block != crate::format::INVALID_BLOCK {
        rel.check_interrupts();
        walk.step(rel, block).map_err(PageFault::Garbage)?;
        let page = rel.read(block);
        pages += 1;
        let s = check_page(&page, block, &want)?;
        let n = s.count as usize;
        let codes = layout::codes(&page, code_bytes, 0, n);
        let tid_of = |i: usize| layout::tid(&page, code_bytes, cap, i);
        f(codes, &tid_of);
        block = s.prev;
    }
    Ok(pages)
}
