//! The rows whose code is NULL, whatever the strategy: a chain of pages of heap TIDs that the
//! metapage points to (format version 3, see [`crate::format`]).
//!
//! A k-NN scan (`ORDER BY code <~> q` without radius conditions) must return every row, as a
//! sequential scan does, and a NULL distance sorts last: the search returns these TIDs after
//! every code. Radius conditions never match a NULL code, so radius scans never read them.
//!
//! ```text
//! page        header | TIDs [count x 6] (pd_lower = header + 6 x count) ... | DataOpaque (16)
//! ```
//! The special space is the one every data page has ([`DataOpaque`], page_id
//! [`NULLS_PAGE_ID`]); `prev` links to the next older page. Inserts fill the newest page and
//! add new ones in front: each new page is written and linked by the metapage in one WAL record
//! ([`Relation::join`]), so a crash never leaves a page unlinked or a link to nothing. VACUUM
//! removes dead TIDs from each page in place (one record per page). Pages stay in the chain
//! once linked (an emptied page is filled again only if it is the newest): nothing moves a
//! TID from one page to another, so a scan walking the chain meanwhile misses nothing.

use crate::format::{
    DataOpaque, FormatError, Meta, Tid, DATA_SPECIAL_SIZE, INVALID_BLOCK, META_BLOCK, NULLS_PAGE_ID,
};
use crate::page::{Page, HEADER_SIZE, PAGE_SIZE};
use crate::relation::{BlockNumber, PagePair, Relation};

/// TIDs one page holds.
pub const CAPACITY: usize = (PAGE_SIZE - HEADER_SIZE - DATA_SPECIAL_SIZE) / Tid::SIZE;

fn init_page(page: &mut Page, prev: BlockNumber) {
    page.init(DATA_SPECIAL_SIZE);
    DataOpaque {
        prev,
        flags: 0,
        deleted_xid: 0,
    }
    .write_with_id(page, NULLS_PAGE_ID);
}

/// Whether `page` is a page of the NULL-code chain.
pub fn is_nulls_page(page: &Page) -> bool {
    !page.is_new()
        && page.special().len() == DATA_SPECIAL_SIZE
        && page.special()[6..8] == NULLS_PAGE_ID.to_ne_bytes()
}

fn count(page: &Page) -> usize {
    (page.lower() - HEADER_SIZE) / Tid::SIZE
}

/// The TIDs on a chain page.
pub fn page_tids(page: &Page) -> Vec<Tid> {
    page.contents()[..count(page) * Tid::SIZE]
        .chunks_exact(Tid::SIZE)
        .map(Tid::from_bytes)
        .collect()
}

/// Replaces the page's TIDs with `tids` (at most [`CAPACITY`]).
fn set_tids(page: &mut Page, tids: &[Tid]) {
    debug_assert!(tids.len() <= CAPACITY);
    for (i, t) in tids.iter().enumerate() {
        page.contents_mut()[i * Tid::SIZE..(i + 1) * Tid::SIZE].copy_from_slice(&t.to_bytes());
    }
    page.set_lower(HEADER_SIZE + tids.len() * Tid::SIZE);
}

/// Appends as many of `tids` as fit; returns how many.
fn fill(page: &mut Page, tids: &[Tid]) -> usize {
    let mut all = page_tids(page);
    let n = (CAPACITY - all.len()).min(tids.len());
    if n > 0 {
        all.extend_from_slice(&tids[..n]);
        set_tids(page, &all);
    }
    n
}

fn head<R: Relation>(rel: &R) -> Result<Meta, FormatError> {
    Meta::read(&rel.read(META_BLOCK))
}

fn chain_page<R: Relation>(rel: &R, block: BlockNumber) -> Result<R::Read<'_>, FormatError> {
    if block == META_BLOCK || block >= rel.nblocks() {
        return Err(FormatError::NotDataPage { block });
    }
    let page = rel.read(block);
    if is_nulls_page(&page) {
        Ok(page)
    } else {
        Err(FormatError::NotDataPage { block })
    }
}

/// Records the heap TIDs of rows whose code is NULL. An index of a format before version 3
/// does not hold them (see [`crate::format`]): nothing is written.
pub fn append<R: Relation>(rel: &R, tids: &[Tid]) -> Result<(), FormatError> {
    let meta = head(rel)?;
    if tids.is_empty() || !meta.holds_nulls() {
        return Ok(());
    }
    let mut at = 0;
    if meta.nulls != INVALID_BLOCK {
        // Pages never leave the chain, so the page read as the newest stays a chain page
        // even if another insert adds a newer one meanwhile.
        let mut page = rel.write(meta.nulls);
        if !is_nulls_page(&page) {
            return Err(FormatError::NotDataPage { block: meta.nulls });
        }
        if count(&page) < CAPACITY {
            at = fill(&mut page, tids);
        }
    }
    while at < tids.len() {
        // The new page and its link in one record (lock order: the page, then the metapage,
        // as everywhere).
        let (block, page) = rel.new_page();
        let mut pair = rel.join(page, META_BLOCK);
        let (page, mp) = pair.pages();
        let prev = Meta::read(mp)?.nulls;
        init_page(page, prev);
        at += fill(page, &tids[at..]);
        Meta::set_nulls(mp, block);
    }
    Ok(())
}

/// Writes the chain of a new index (after the strategy's build wrote its metapage) from
/// `next`, which yields the TIDs in batches.
pub fn build<R: Relation>(
    rel: &R,
    next: &mut dyn FnMut() -> Option<Vec<Tid>>,
) -> Result<u64, FormatError> {
    let mut rows = 0;
    while let Some(batch) = next() {
        rows += batch.len() as u64;
        append(rel, &batch)?;
    }
    Ok(rows)
}

/// Reads the chain, newest page first, for a scan: one page's TIDs at a time.
#[derive(Debug, Clone)]
pub struct Cursor {
    next_block: Option<BlockNumber>,
    buf: Vec<Tid>,
    at: usize,
    pages: usize,
}

impl Cursor {
    /// A cursor that reads the chain from its newest page when first asked.
    pub fn new() -> Cursor {
        Cursor {
            next_block: None,
            buf: Vec::new(),
            at: 0,
            pages: 0,
        }
    }

    /// The next TID of a row whose code is NULL, or `None` at the end.
    pub fn next<R: Relation>(&mut self, rel: &R) -> Result<Option<Tid>, FormatError> {
        loop {
            if let Some(&t) = self.buf.get(self.at) {
                self.at += 1;
                return Ok(Some(t));
            }
            let block = match self.next_block {
                None => head(rel)?.nulls,
                Some(b) => b,
            };
            if block == INVALID_BLOCK {
                self.next_block = Some(INVALID_BLOCK);
                return Ok(None);
            }
            rel.check_interrupts();
            self.pages += 1;
            if self.pages > rel.nblocks() as usize {
                return Err(FormatError::BadMeta(
                    "a cycle in the NULL-code chain".to_string(),
                ));
            }
            let page = chain_page(rel, block)?;
            self.buf = page_tids(&page);
            self.at = 0;
            self.next_block = Some(DataOpaque::read(&page).prev);
        }
    }

    pub fn pages_read(&self) -> usize {
        self.pages
    }
}

impl Default for Cursor {
    fn default() -> Self {
        Cursor::new()
    }
}

/// Removes every TID for which `is_dead` is true; returns (removed, remaining).
pub fn bulk_delete<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<(u64, u64), FormatError> {
    let mut block = head(rel)?.nulls;
    let (mut removed, mut remaining) = (0u64, 0u64);
    let mut seen = 0usize;
    while block != INVALID_BLOCK {
        rel.check_interrupts();
        seen += 1;
        if seen > rel.nblocks() as usize || block == META_BLOCK || block >= rel.nblocks() {
            return Err(FormatError::NotDataPage { block });
        }
        let mut page = rel.write(block);
        if !is_nulls_page(&page) {
            return Err(FormatError::NotDataPage { block });
        }
        let tids = page_tids(&page);
        let live: Vec<Tid> = tids.iter().copied().filter(|&t| !is_dead(t)).collect();
        if live.len() < tids.len() {
            set_tids(&mut page, &live);
        }
        removed += (tids.len() - live.len()) as u64;
        remaining += live.len() as u64;
        block = DataOpaque::read(&page).prev;
    }
    Ok((removed, remaining))
}

/// What the chain holds, for `mih_verify`: TIDs, pages, problems (and the TIDs themselves
/// with `collect`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    pub tids: u64,
    pub pages: u64,
    pub problems: Vec<String>,
    pub contents: Vec<Tid>,
}

/// Checks the chain: every page a chain page, no cycle, valid TIDs.
pub fn verify<R: Relation>(rel: &R, collect: bool) -> Result<Checked, FormatError> {
    let mut c = Checked::default();
    let meta = head(rel)?;
    let mut block = meta.nulls;
    let mut seen = std::collections::HashSet::new();
    while block != INVALID_BLOCK {
        rel.check_interrupts();
        if block == META_BLOCK || block >= rel.nblocks() || !seen.insert(block) {
            c.problems.push(format!(
                "NULL-code chain: block {block} out of range or reached twice"
            ));
            break;
        }
        let page = rel.read(block);
        if !is_nulls_page(&page) || DataOpaque::read(&page).flags != 0 {
            c.problems.push(format!(
                "NULL-code chain: block {block} is not a live chain page"
            ));
            break;
        }
        c.pages += 1;
        for t in page_tids(&page) {
            c.tids += 1;
            if t.offset == 0 {
                c.problems
                    .push(format!("NULL-code chain block {block}: invalid TID {t:?}"));
            }
            if collect {
                c.contents.push(t);
            }
        }
        block = DataOpaque::read(&page).prev;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::MemRelation;

    fn tid(i: u32) -> Tid {
        Tid {
            block: i / 100,
            offset: (i % 100 + 1) as u16,
        }
    }

    fn index() -> MemRelation {
        let rel = MemRelation::new();
        crate::substrings::build::build_empty(&rel, 8);
        rel
    }

    fn all<R: Relation>(rel: &R) -> Vec<Tid> {
        let mut c = Cursor::new();
        let mut out = Vec::new();
        while let Some(t) = c.next(rel).unwrap() {
            out.push(t);
        }
        out.sort();
        out
    }

    #[test]
    fn append_scan_delete_and_verify() {
        let rel = index();
        assert_eq!(all(&rel), vec![]);
        let tids: Vec<Tid> = (0..3000).map(tid).collect();
        append(&rel, &tids[..10]).unwrap();
        append(&rel, &tids[10..]).unwrap();
        let mut want = tids.clone();
        want.sort();
        assert_eq!(all(&rel), want);
        let v = verify(&rel, true).unwrap();
        assert_eq!((v.tids, v.pages, v.problems.len()), (3000, 3, 0));
        let (removed, remaining) = bulk_delete(&rel, &mut |t| t.offset % 2 == 0).unwrap();
        assert_eq!((removed, remaining), (1500, 1500));
        want.retain(|t| t.offset % 2 == 1);
        assert_eq!(all(&rel), want);
        assert_eq!(verify(&rel, false).unwrap().tids, 1500);
        // The newest page takes more before a new one is added.
        append(&rel, &[tid(5000)]).unwrap();
        assert_eq!(verify(&rel, false).unwrap().pages, 3);
    }

    #[test]
    fn every_crash_point_leaves_a_linked_chain() {
        let rel = index();
        let tids: Vec<Tid> = (0..2 * CAPACITY as u32 + 5).map(tid).collect();
        for k in 1.. {
            let rel2 = index();
            rel2.crash_after(k);
            append(&rel2, &tids).unwrap();
            let Some(image) = rel2.crash_image() else {
                break;
            };
            let v = verify(&image, false).unwrap();
            assert!(v.problems.is_empty(), "{k}: {:?}", v.problems);
            // Every written page is linked (no page lost to a crash).
            let chain_pages = (1..image.nblocks())
                .filter(|&b| is_nulls_page(&image.read(b)))
                .count() as u64;
            assert_eq!(chain_pages, v.pages, "crash after record {k}");
        }
        append(&rel, &tids).unwrap();
        assert_eq!(all(&rel).len(), tids.len());
    }

    /// A lists index and a substring-tables index over the same codes.
    fn both_strategies(codes: &[Vec<u8>]) -> Vec<MemRelation> {
        let nb = codes[0].len();
        let rows: Vec<(Vec<u8>, Tid)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), tid(i as u32)))
            .collect();
        let lists = MemRelation::new();
        let mut b = crate::lists::build::Builder::new(&lists, codes[0].clone(), nb, 1 << 16);
        for (c, t) in &rows {
            b.add(c, *t);
        }
        b.finish();
        let subs = MemRelation::new();
        let mut sorted = rows.clone();
        sorted.sort();
        crate::substrings::build::build(
            &subs,
            &crate::spill::MemSpill,
            1 << 20,
            nb,
            0,
            rows.len() as u64,
            &mut crate::substrings::build::VecRows::new(&sorted),
            &mut || {},
        );
        vec![lists, subs]
    }

    fn run<R: Relation>(rel: &R, q: crate::search::Query) -> Vec<(Tid, Option<u32>)> {
        let mut s = crate::search::Search::new(crate::open::open(rel).unwrap(), q).unwrap();
        std::iter::from_fn(|| s.next(rel)).collect()
    }

    #[test]
    fn knn_returns_the_null_rows_last_and_radius_never() {
        use crate::search::Query;
        let codes: Vec<Vec<u8>> = (0..200u32)
            .map(|i| (i * 37).to_be_bytes().to_vec())
            .collect();
        let null_tids: Vec<Tid> = (1000..1003).map(tid).collect();
        for rel in both_strategies(&codes) {
            append(&rel, &null_tids).unwrap();
            let q = codes[5].clone();
            // k-NN alone: every code in distance order, then the NULL rows.
            let got = run(&rel, Query::from_keys(vec![], Some(q.clone()), true, 4));
            assert_eq!(got.len(), 203);
            assert!(got[..200]
                .windows(2)
                .all(|w| w[0].1 <= w[1].1 && w[1].1.is_some()));
            let mut tail: Vec<Tid> = got[200..].iter().map(|r| r.0).collect();
            tail.sort();
            assert_eq!(tail, null_tids);
            assert!(got[200..].iter().all(|r| r.1.is_none()));
            // ORDER BY a NULL code: every row.
            assert_eq!(
                run(&rel, Query::from_keys(vec![], None, true, 4)).len(),
                203
            );
            // A radius, with or without ORDER BY: never a NULL code.
            for ordered in [false, true] {
                let got = run(
                    &rel,
                    Query::from_keys(vec![(q.clone(), 32)], Some(q.clone()), ordered, 4),
                );
                assert_eq!(got.len(), 200);
            }
        }
    }

    #[test]
    fn an_index_of_only_null_codes_returns_them() {
        let rel = MemRelation::new();
        crate::substrings::build::build_empty(&rel, 0);
        append(&rel, &[tid(1), tid(2)]).unwrap();
        let q = crate::search::Query::from_keys(vec![], None, true, 0);
        assert_eq!(run(&rel, q).len(), 2);
        let rel = MemRelation::new();
        crate::lists::build::build_empty(&rel, 2);
        append(&rel, &[tid(1)]).unwrap();
        let q = crate::search::Query::from_keys(vec![], None, true, 2);
        assert_eq!(run(&rel, q), vec![(tid(1), None)]);
    }

    #[test]
    fn an_older_format_takes_no_nulls() {
        let rel = index();
        {
            let mut mp = rel.write(META_BLOCK);
            let meta = Meta::read(&mp).unwrap();
            let old = Meta { version: 2, ..meta };
            crate::substrings::layout::SubMeta::empty().write(&old, &mut mp);
        }
        append(&rel, &[tid(1)]).unwrap();
        assert_eq!(all(&rel), vec![]);
        assert!(!head(&rel).unwrap().holds_nulls());
        // It still answers radius queries; a k-NN search, which must return the NULL rows
        // it does not have, is refused.
        let opened = crate::open::open(&rel).unwrap();
        let radius = crate::search::Query::from_keys(vec![(vec![0; 8], 3)], None, false, 8);
        assert!(crate::search::Search::new(opened.clone(), radius).is_ok());
        let knn = crate::search::Query::from_keys(vec![], Some(vec![0; 8]), true, 8);
        assert!(matches!(
            crate::search::Search::new(opened, knn),
            Err(FormatError::NullsNotIndexed { version: 2 })
        ));
    }
}
