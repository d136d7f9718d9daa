//! The small interface the algorithm needs from an index relation, and an in-memory
//! implementation for tests.
//!
//! PostgreSQL's implementation (in the extension) maps `read` to a pinned, share-locked
//! buffer and `write` to an exclusively locked buffer whose changes become one Generic WAL
//! record when the guard drops (or are discarded if the operation panics/errors).

use crate::format::FormatError;
use crate::page::Page;
use std::cell::{Cell, OnceCell, RefCell};
use std::ops::{Deref, DerefMut};

pub type BlockNumber = u32;

pub trait Relation {
    type Read<'a>: Deref<Target = Page>
    where
        Self: 'a;
    type Write<'a>: DerefMut<Target = Page>
    where
        Self: 'a;
    type Pair<'a>: PagePair
    where
        Self: 'a;

    /// The page at `block`, share-locked while the guard lives.
    fn read(&self, block: BlockNumber) -> Self::Read<'_>;
    /// The page at `block`, exclusively locked; changes are logged when the guard drops.
    fn write(&self, block: BlockNumber) -> Self::Write<'_>;
    /// Two pages changed as one: `first` (a guard not changed yet) and `second`, locked
    /// exclusively after it. Their changes become one WAL record when the guard drops, so
    /// crash recovery replays both or neither (for counts that must agree with the pages
    /// they describe).
    fn join<'a>(&'a self, first: Self::Write<'a>, second: BlockNumber) -> Self::Pair<'a>;
    /// A page for new use (a recycled free page or a new block at the end), exclusively
    /// locked; the caller initialises it (it is logged as a full image).
    fn new_page(&self) -> (BlockNumber, Self::Write<'_>);
    /// Number of blocks.
    fn nblocks(&self) -> BlockNumber;
    /// Records that an unlinked page can be reused (free space map).
    fn record_free_page(&self, block: BlockNumber);
    /// The next full transaction id: stamped on pages VACUUM unlinks.
    fn next_xid(&self) -> u64;
    /// Whether no snapshot that might still walk an unlinked page is older than `xid`.
    fn xid_is_old(&self, xid: u64) -> bool;
    /// Honour a cancel request in long loops (CHECK_FOR_INTERRUPTS in PostgreSQL).
    fn check_interrupts(&self) {}
    /// Where the page list of a substring index may be remembered between scans of this
    /// very relation (PostgreSQL: per backend and relation file); `None`, the default: the
    /// map pages are read by every scan. See [`PageListMemo`].
    fn page_list_memo(&self) -> Option<&RefCell<Option<PageListMemo>>> {
        None
    }
    /// Ends a scan that found `block` recycled under it. Substring tables of a replaced
    /// generation stay until no snapshot can read them, so on a primary this never happens;
    /// a hot standby without `hot_standby_feedback` may replay their recycling under its own
    /// queries, which must then fail, never return wrong rows. PostgreSQL raises a
    /// serialization failure (40001, as for its own recovery conflicts: retry the query).
    fn page_recycled_under_scan(&self, block: BlockNumber) -> ! {
        panic!("{}", recycled_message(block))
    }
    /// Ends an operation that found the index's pages unreadable where it cannot return the
    /// error (deep in a scan's iteration). The same [`FormatError`] as the operations return,
    /// so PostgreSQL reports both alike (index corrupted, REINDEX).
    fn corrupted(&self, e: FormatError) -> ! {
        panic!("mih: {e}")
    }
}

/// A substring index's page list as one scan read it: a later scan of the same relation file
/// whose metapage names the same generation and the same map pages reuses it instead of
/// reading the map pages again (at 100M rows, 300 pages and 2.4 MB a query). A generation's
/// page list never changes: merges write a new generation, and REINDEX a new relation file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageListMemo {
    pub generation: u32,
    pub map_blocks: Vec<BlockNumber>,
    pub pages: std::sync::Arc<[BlockNumber]>,
}

/// Whether a page the free space map offers may be taken for new use. The map is only a hint
/// (it is not WAL-logged and may be stale after a crash, and a page may be offered twice), so
/// both relations check the page itself: never initialised, or a data page unlinked so long
/// ago (`xid_is_old` of its deletion xid) that no scan can still be reading it.
pub fn is_recyclable(page: &Page, xid_is_old: impl FnOnce(u64) -> bool) -> bool {
    use crate::format::{DataOpaque, FLAG_DELETED};
    if page.is_new() {
        return true;
    }
    if !DataOpaque::is_any_data_page(page) {
        return false;
    }
    let o = DataOpaque::read(page);
    o.flags & FLAG_DELETED != 0 && xid_is_old(o.deleted_xid)
}

/// Bounds a walk along a chain of `prev` links: each page of a chain is a distinct block, so a
/// walk longer than the relation has blocks goes round a cycle, which only corruption makes
/// (and which would otherwise loop forever).
#[derive(Debug, Default)]
pub struct ChainWalk {
    steps: u64,
    limit: Option<u64>,
}

impl ChainWalk {
    /// Chains this short are not checked: most are, and asking for the block count costs a
    /// system call in PostgreSQL.
    const UNCHECKED: u64 = 64;

    pub fn new() -> ChainWalk {
        ChainWalk::default()
    }

    /// Counts a step onto `block`; `Err` once the walk is longer than any chain can be.
    pub fn step<R: Relation + ?Sized>(
        &mut self,
        rel: &R,
        block: BlockNumber,
    ) -> Result<(), FormatError> {
        self.steps += 1;
        if self.steps > Self::UNCHECKED
            && self.steps > *self.limit.get_or_insert_with(|| u64::from(rel.nblocks()))
        {
            return Err(FormatError::BadPage {
                block,
                why: "the chain of pages through it leads back to itself",
            });
        }
        Ok(())
    }
}

/// Two exclusively locked pages whose changes are logged together ([`Relation::join`]).
pub trait PagePair {
    /// Both pages, for changing.
    fn pages(&mut self) -> (&mut Page, &mut Page);
}

/// The error of [`Relation::page_recycled_under_scan`].
pub fn recycled_message(block: BlockNumber) -> String {
    format!("mih: block {block} was recycled while this scan was reading the index")
}

/// What to do about [`Relation::page_recycled_under_scan`].
pub const RECYCLED_HINT: &str =
    "Run the query again. On a hot standby, hot_standby_feedback = on prevents this.";

/// Pages a [`MemRelation::new`] can hold (1 GB of index: far beyond any unit test).
pub const MEM_RELATION_PAGES: usize = 1 << 17;

/// An in-memory relation. `RefCell` borrows stand in for buffer locks: a test that would
/// deadlock or race in PostgreSQL panics here instead. Pages live in a slice of fixed capacity
/// that never moves, so a guard can borrow one page while another is added, without unsafe.
///
/// For crash tests it counts *records* (what one WAL record would log in PostgreSQL: the
/// changes of one write guard or [`Relation::join`]ed pair) and, with
/// [`MemRelation::crash_after`], keeps a copy of the pages as they are after that many
/// records: what crash recovery would rebuild from the WAL written up to there.
pub struct MemRelation {
    pages: Box<[OnceCell<RefCell<Box<Page>>>]>,
    len: Cell<usize>,
    free: RefCell<Vec<BlockNumber>>,
    xid: Cell<u64>,
    /// Unlinked pages stamped with an xid below this may be recycled.
    pub horizon: Cell<u64>,
    records: Cell<u64>,
    crash_at: Cell<Option<u64>>,
    /// Pages of guards alive now, as they were before the guard: at a crash, their changes
    /// are not logged yet.
    before: RefCell<std::collections::HashMap<BlockNumber, Box<Page>>>,
    crash_image: RefCell<Option<Vec<Box<Page>>>>,
    /// The page-list memo, when a test turns it on ([`MemRelation::remember_page_list`]).
    memo: RefCell<Option<PageListMemo>>,
    memo_on: Cell<bool>,
}

fn copy_page(p: &Page) -> Box<Page> {
    Box::new(Page(p.0))
}

impl Default for MemRelation {
    fn default() -> Self {
        MemRelation::new()
    }
}

impl MemRelation {
    pub fn new() -> MemRelation {
        MemRelation::with_capacity(MEM_RELATION_PAGES)
    }

    /// A relation that can hold at most `pages` pages.
    pub fn with_capacity(pages: usize) -> MemRelation {
        MemRelation {
            pages: (0..pages).map(|_| OnceCell::new()).collect(),
            len: Cell::new(0),
            free: RefCell::new(Vec::new()),
            xid: Cell::new(100),
            horizon: Cell::new(0),
            records: Cell::new(0),
            crash_at: Cell::new(None),
            before: RefCell::new(Default::default()),
            crash_image: RefCell::new(None),
            memo: RefCell::new(None),
            memo_on: Cell::new(false),
        }
    }

    /// Lets scans remember the page list between them, as PostgreSQL's scans do.
    pub fn remember_page_list(&self, on: bool) {
        self.memo_on.set(on);
    }

    /// The remembered page list, if any.
    pub fn page_list(&self) -> Option<PageListMemo> {
        self.memo.borrow().clone()
    }

    /// A relation holding `pages` (a crash image).
    pub fn from_pages(pages: Vec<Box<Page>>) -> MemRelation {
        let rel = MemRelation::new();
        for p in pages {
            let (_, mut w) = rel.new_page();
            w.0.copy_from_slice(&p.0);
        }
        rel
    }

    /// Records (logged changes) so far.
    pub fn records(&self) -> u64 {
        self.records.get()
    }

    /// Keeps the pages as they are once `records` more records have been written
    /// ([`MemRelation::crash_image`]).
    pub fn crash_after(&self, records: u64) {
        self.crash_at.set(Some(self.records.get() + records));
        *self.crash_image.borrow_mut() = None;
    }

    /// The relation as crash recovery would leave it at the point [`MemRelation::crash_after`]
    /// named (`None`: fewer records were written).
    pub fn crash_image(&self) -> Option<MemRelation> {
        self.crash_image
            .borrow()
            .as_ref()
            .map(|pages| MemRelation::from_pages(pages.iter().map(|p| copy_page(p)).collect()))
    }

    fn tracking(&self) -> bool {
        self.crash_at
            .get()
            .is_some_and(|at| at > self.records.get())
    }

    fn guard_opened(&self, block: BlockNumber, page: &Page) {
        if self.tracking() {
            self.before.borrow_mut().insert(block, copy_page(page));
        }
    }

    /// One record, of `done` (pages whose guards are finishing, still borrowed by them).
    fn record(&self, done: &[(BlockNumber, &Page)]) {
        let n = self.records.get() + 1;
        self.records.set(n);
        if self.crash_at.get() != Some(n) {
            return;
        }
        let before = self.before.borrow();
        let image = (0..self.len.get() as BlockNumber)
            .map(|b| {
                if let Some((_, p)) = done.iter().find(|(d, _)| *d == b) {
                    copy_page(p)
                } else if let Some(p) = before.get(&b) {
                    copy_page(p)
                } else {
                    copy_page(&self.cell(b).borrow())
                }
            })
            .collect();
        *self.crash_image.borrow_mut() = Some(image);
    }

    fn guard_closed(&self, block: BlockNumber) {
        self.before.borrow_mut().remove(&block);
    }

    fn cell(&self, block: BlockNumber) -> &RefCell<Box<Page>> {
        assert!(
            (block as usize) < self.len.get(),
            "block {block} beyond the relation"
        );
        self.pages[block as usize]
            .get()
            .expect("pages below len exist")
    }

    /// Advances the transaction counter (what running transactions do).
    pub fn advance_xid(&self, by: u64) {
        self.xid.set(self.xid.get() + by);
    }

    /// Free pages waiting for reuse.
    pub fn free_pages(&self) -> Vec<BlockNumber> {
        self.free.borrow().clone()
    }
}

/// An exclusively locked in-memory page (see [`MemRelation`] for records).
pub struct MemWrite<'a> {
    rel: &'a MemRelation,
    block: BlockNumber,
    /// `None` once handed to a [`MemPair`].
    page: Option<std::cell::RefMut<'a, Box<Page>>>,
    changed: bool,
}

impl Deref for MemWrite<'_> {
    type Target = Page;
    fn deref(&self) -> &Page {
        self.page.as_ref().expect("a live guard")
    }
}

impl DerefMut for MemWrite<'_> {
    fn deref_mut(&mut self) -> &mut Page {
        self.changed = true;
        self.page.as_mut().expect("a live guard")
    }
}

impl Drop for MemWrite<'_> {
    fn drop(&mut self) {
        if let Some(page) = &self.page {
            if self.changed {
                self.rel.record(&[(self.block, page)]);
            }
            self.rel.guard_closed(self.block);
        }
    }
}

/// Two in-memory pages changed as one record.
pub struct MemPair<'a> {
    rel: &'a MemRelation,
    blocks: [BlockNumber; 2],
    first: std::cell::RefMut<'a, Box<Page>>,
    second: std::cell::RefMut<'a, Box<Page>>,
    changed: bool,
}

impl PagePair for MemPair<'_> {
    fn pages(&mut self) -> (&mut Page, &mut Page) {
        self.changed = true;
        (&mut self.first, &mut self.second)
    }
}

impl Drop for MemPair<'_> {
    fn drop(&mut self) {
        if self.changed {
            self.rel.record(&[
                (self.blocks[0], &self.first),
                (self.blocks[1], &self.second),
            ]);
        }
        self.rel.guard_closed(self.blocks[0]);
        self.rel.guard_closed(self.blocks[1]);
    }
}

impl Relation for MemRelation {
    type Read<'a> = std::cell::Ref<'a, Page>;
    type Write<'a> = MemWrite<'a>;
    type Pair<'a> = MemPair<'a>;

    fn read(&self, block: BlockNumber) -> Self::Read<'_> {
        std::cell::Ref::map(self.cell(block).borrow(), |b| &**b)
    }

    fn page_list_memo(&self) -> Option<&RefCell<Option<PageListMemo>>> {
        self.memo_on.get().then_some(&self.memo)
    }

    fn write(&self, block: BlockNumber) -> Self::Write<'_> {
        let page = self.cell(block).borrow_mut();
        self.guard_opened(block, &page);
        MemWrite {
            rel: self,
            block,
            page: Some(page),
            changed: false,
        }
    }

    fn join<'a>(&'a self, mut first: MemWrite<'a>, second: BlockNumber) -> MemPair<'a> {
        assert!(!first.changed, "join a page before changing it");
        let block = first.block;
        // The lock (borrow) passes to the pair; the emptied guard records nothing.
        let page = first.page.take().expect("a live guard");
        let second_page = self.cell(second).borrow_mut();
        self.guard_opened(second, &second_page);
        MemPair {
            rel: self,
            blocks: [block, second],
            first: page,
            second: second_page,
            changed: false,
        }
    }

    fn new_page(&self) -> (BlockNumber, Self::Write<'_>) {
        // As PostgreSQL's free space map: an offered page leaves the map, taken or not.
        loop {
            let Some(block) = self.free.borrow_mut().pop() else {
                break;
            };
            let guard = self.write(block);
            if is_recyclable(&guard, |xid| self.xid_is_old(xid)) {
                return (block, guard);
            }
        }
        let n = self.len.get();
        assert!(n < self.pages.len(), "MemRelation is full");
        let _ = self.pages[n].set(RefCell::new(Page::zeroed()));
        self.len.set(n + 1);
        let block = n as BlockNumber;
        (block, self.write(block))
    }

    fn nblocks(&self) -> BlockNumber {
        self.len.get() as BlockNumber
    }

    fn record_free_page(&self, block: BlockNumber) {
        let mut free = self.free.borrow_mut();
        if !free.contains(&block) {
            free.push(block);
        }
    }

    fn next_xid(&self) -> u64 {
        self.xid.get()
    }

    fn xid_is_old(&self, xid: u64) -> bool {
        xid < self.horizon.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::DataOpaque;

    fn data_page(rel: &MemRelation) -> BlockNumber {
        let (block, mut page) = rel.new_page();
        crate::lists::layout::init_data_page(&mut page, crate::format::INVALID_BLOCK);
        block
    }

    /// The free space map is only a hint: a page it offers that is still in use, or unlinked
    /// too recently, is skipped; only an old unlinked page (or a never-used one) is taken.
    #[test]
    fn new_page_takes_only_recyclable_pages_the_free_space_map_offers() {
        let rel = MemRelation::new();
        let live = data_page(&rel);
        let recent = data_page(&rel);
        let old = data_page(&rel);
        DataOpaque::mark_deleted(&mut rel.write(recent), 500);
        DataOpaque::mark_deleted(&mut rel.write(old), 50);
        rel.horizon.set(100);
        // A stale map: a live page and a page a scan may still read.
        rel.record_free_page(live);
        rel.record_free_page(recent);
        let (block, _) = rel.new_page();
        assert_eq!(block, 3, "a recent or live page is never taken");
        assert!(rel.free_pages().is_empty(), "offered pages leave the map");
        rel.record_free_page(old);
        let (block, mut page) = rel.new_page();
        assert_eq!(block, old);
        // Taken, it is initialised anew; offered again (a stale map), it is in use and skipped.
        crate::lists::layout::init_data_page(&mut page, crate::format::INVALID_BLOCK);
        drop(page);
        rel.record_free_page(old);
        assert_eq!(rel.new_page().0, 4);
        assert!(is_recyclable(&Page::zeroed(), |_| false));
    }
}
