//! The small interface the algorithm needs from an index relation, and an in-memory
//! implementation for tests.
//!
//! PostgreSQL's implementation (in the extension) maps `read` to a pinned, share-locked
//! buffer and `write` to an exclusively locked buffer whose changes become one Generic WAL
//! record when the guard drops (or are discarded if the operation panics/errors).

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

    /// The page at `block`, share-locked while the guard lives.
    fn read(&self, block: BlockNumber) -> Self::Read<'_>;
    /// The page at `block`, exclusively locked; changes are logged when the guard drops.
    fn write(&self, block: BlockNumber) -> Self::Write<'_>;
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
    /// Ends a scan that found `block` recycled under it. Substring tables of a replaced
    /// generation stay until no snapshot can read them, so on a primary this never happens;
    /// a hot standby without `hot_standby_feedback` may replay their recycling under its own
    /// queries, which must then fail, never return wrong rows. PostgreSQL raises a
    /// serialization failure (40001, as for its own recovery conflicts: retry the query).
    fn page_recycled_under_scan(&self, block: BlockNumber) -> ! {
        panic!("{}", recycled_message(block))
    }
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
pub struct MemRelation {
    pages: Box<[OnceCell<RefCell<Box<Page>>>]>,
    len: Cell<usize>,
    free: RefCell<Vec<BlockNumber>>,
    xid: Cell<u64>,
    /// Unlinked pages stamped with an xid below this may be recycled.
    pub horizon: Cell<u64>,
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
        }
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

impl Relation for MemRelation {
    type Read<'a> = std::cell::Ref<'a, Page>;
    type Write<'a> = std::cell::RefMut<'a, Page>;

    fn read(&self, block: BlockNumber) -> Self::Read<'_> {
        std::cell::Ref::map(self.cell(block).borrow(), |b| &**b)
    }

    fn write(&self, block: BlockNumber) -> Self::Write<'_> {
        std::cell::RefMut::map(self.cell(block).borrow_mut(), |b| &mut **b)
    }

    fn new_page(&self) -> (BlockNumber, Self::Write<'_>) {
        let reused = self.free.borrow_mut().pop();
        let block = match reused {
            Some(b) => b,
            None => {
                let n = self.len.get();
                assert!(n < self.pages.len(), "MemRelation is full");
                let _ = self.pages[n].set(RefCell::new(Page::zeroed()));
                self.len.set(n + 1);
                n as BlockNumber
            }
        };
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
