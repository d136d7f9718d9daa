//! `ics_index::relation::Relation` over PostgreSQL's buffer manager, with RAII guards.
//!
//! - [`PgRelation::read`]: pin + share lock, released when the guard drops.
//! - [`PgRelation::write`]: pin + exclusive lock. The first mutable access registers the page
//!   with Generic WAL; dropping the guard finishes the record (one record per page), or
//!   aborts it when unwinding from an error, so a failed operation leaves the page as it was.
//!   A guard never mutated writes no WAL.
//! - [`PgRelation::join`]: two exclusively locked pages whose changes become one Generic WAL
//!   record (both registered in one GenericXLogState), replayed all or nothing.
//! - In build mode (`wal: false`) pages are changed in place and marked dirty; the build logs
//!   the finished relation with `log_newpage_range`.

use crate::index::pg_recent::Recent;
use ics_index::format::FormatError;
use ics_index::page::Page;
use ics_index::relation::{is_recyclable, BlockNumber, PageListMemo, PagePair, Relation};
use pgrx::pg_sys;
use std::ops::{Deref, DerefMut};

pub struct PgRelation {
    pub rel: pg_sys::Relation,
    wal: bool,
    /// Scans only: the buffers the index's pages were last found in (see [`Recent`]).
    recent: Option<Recent>,
}

impl PgRelation {
    /// Access for scans, inserts and VACUUM: every change WAL-logged (Generic WAL skips the
    /// log by itself for unlogged and temporary indexes).
    pub fn new(rel: pg_sys::Relation) -> PgRelation {
        PgRelation {
            rel,
            wal: true,
            recent: None,
        }
    }

    /// Access for a scan: as [`PgRelation::new`], and pages are pinned through the buffers
    /// they were last found in where they still are.
    ///
    /// # Safety
    /// `rel` is an open index relation that outlives the returned value.
    pub unsafe fn for_scan(rel: pg_sys::Relation) -> PgRelation {
        // SAFETY: an open relation (the caller's promise).
        let (oid, persistence) = unsafe { ((*rel).rd_id, (*(*rel).rd_rel).relpersistence) };
        // The relation's current file: its number changes on REINDEX and TRUNCATE.
        #[cfg(feature = "pg15")]
        // SAFETY: an open relation (the caller's promise).
        let file = unsafe { (*rel).rd_node.relNode };
        #[cfg(not(feature = "pg15"))]
        // SAFETY: an open relation (the caller's promise).
        let file = unsafe { (*rel).rd_locator.relNumber };
        // Temporary indexes live in local buffers, which a map of buffer numbers by OID must
        // not mix with shared ones: they are read the usual way.
        let temp = persistence == pg_sys::RELPERSISTENCE_TEMP as std::ffi::c_char;
        PgRelation {
            rel,
            wal: true,
            recent: (!temp).then(|| Recent::take(oid, file)),
        }
    }

    /// Access for a build into a new relation: no per-change WAL.
    pub fn for_build(rel: pg_sys::Relation) -> PgRelation {
        PgRelation {
            rel,
            wal: false,
            recent: None,
        }
    }

    /// `block` pinned (not locked): through the buffer a scan last found it in where that
    /// still holds it, else by a lookup, which a scan then remembers.
    fn pin(&self, block: BlockNumber) -> pg_sys::Buffer {
        if let Some(recent) = &self.recent {
            // SAFETY: `self.rel` is the open index `recent` was taken for (for_scan).
            if let Some(buf) = unsafe { recent.pin(self.rel, block) } {
                return buf;
            }
        }
        // SAFETY: a valid open relation; ReadBufferExtended raises on a bad block.
        let buf = unsafe {
            pg_sys::ReadBufferExtended(
                self.rel,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            )
        };
        if let Some(recent) = &self.recent {
            recent.remember(block, buf);
        }
        buf
    }

    fn buffer(&self, block: BlockNumber, mode: u32) -> pg_sys::Buffer {
        let buf = self.pin(block);
        // SAFETY: pinned just above.
        unsafe { pg_sys::LockBuffer(buf, mode as i32) };
        buf
    }

    /// Whether this backend alone can see the relation (created in this transaction), so
    /// extending it needs no relation extension lock (RELATION_IS_LOCAL).
    fn is_local(&self) -> bool {
        // SAFETY: rd_createSubid and rd_islocaltemp are plain fields of an open relation.
        unsafe { (*self.rel).rd_islocaltemp || (*self.rel).rd_createSubid != 0 }
    }

    fn extend(&self) -> pg_sys::Buffer {
        let local = self.is_local();
        // SAFETY: P_NEW (InvalidBlockNumber) extends the relation by one zeroed page; the
        // extension lock serialises concurrent extenders (not needed for a local relation).
        unsafe {
            if !local {
                pg_sys::LockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
            let buf = pg_sys::ReadBufferExtended(
                self.rel,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                pg_sys::InvalidBlockNumber,
                pg_sys::ReadBufferMode::RBM_NORMAL,
                std::ptr::null_mut(),
            );
            pg_sys::LockBuffer(buf, pg_sys::BUFFER_LOCK_EXCLUSIVE as i32);
            if !local {
                pg_sys::UnlockRelationForExtension(self.rel, pg_sys::ExclusiveLock as i32);
            }
            buf
        }
    }
}

/// A share-locked page.
pub struct ReadGuard {
    buf: pg_sys::Buffer,
    page: *const Page,
}

impl Deref for ReadGuard {
    type Target = Page;
    fn deref(&self) -> &Page {
        // SAFETY: the buffer stays pinned and locked while the guard lives.
        unsafe { &*self.page }
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        // SAFETY: we hold the pin and the lock taken in `read`.
        unsafe { pg_sys::UnlockReleaseBuffer(self.buf) }
    }
}

/// An exclusively locked page; see the module docs for WAL.
pub struct WriteGuard<'r> {
    rel: &'r PgRelation,
    buf: pg_sys::Buffer,
    /// Generic WAL state once mutated (WAL mode).
    state: *mut pg_sys::GenericXLogState,
    /// The page to read and write: the buffer's, or the Generic WAL image once registered.
    page: *mut Page,
    full_image: bool,
    dirty: bool,
}

impl Deref for WriteGuard<'_> {
    type Target = Page;
    fn deref(&self) -> &Page {
        // SAFETY: pinned and exclusively locked while the guard lives.
        unsafe { &*self.page }
    }
}

impl DerefMut for WriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut Page {
        if self.rel.wal && self.state.is_null() {
            let flags = if self.full_image {
                pg_sys::GENERIC_XLOG_FULL_IMAGE as i32
            } else {
                0
            };
            // SAFETY: the buffer is exclusively locked; the image lives until Finish/Abort.
            unsafe {
                self.state = pg_sys::GenericXLogStart(self.rel.rel);
                self.page =
                    pg_sys::GenericXLogRegisterBuffer(self.state, self.buf, flags) as *mut Page;
            }
        }
        self.dirty = true;
        // SAFETY: as in deref, and we have the only reference.
        unsafe { &mut *self.page }
    }
}

/// The end of a write to exclusively locked `bufs`: the Generic WAL record is finished (or
/// aborted while unwinding, so a half-made change is never logged), or, unlogged, the pages
/// are marked dirty when written; then the buffers are released, last locked first.
///
/// # Safety
/// The caller holds the pins and exclusive locks of `bufs`; `state` is null or the Generic
/// WAL state that registered them.
unsafe fn finish_write(state: *mut pg_sys::GenericXLogState, bufs: &[pg_sys::Buffer], dirty: bool) {
    // SAFETY: the caller's promise.
    unsafe {
        if !state.is_null() {
            if std::thread::panicking() {
                pg_sys::GenericXLogAbort(state);
            } else {
                pg_sys::GenericXLogFinish(state);
            }
        } else if dirty {
            for &buf in bufs {
                pg_sys::MarkBufferDirty(buf);
            }
        }
        for &buf in bufs.iter().rev() {
            pg_sys::UnlockReleaseBuffer(buf);
        }
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: we hold the pin and the exclusive lock; the Generic WAL state is ours.
        unsafe { finish_write(self.state, &[self.buf], self.dirty) }
    }
}

/// Two exclusively locked pages logged as one record; see the module docs.
pub struct PairGuard<'r> {
    rel: &'r PgRelation,
    bufs: [pg_sys::Buffer; 2],
    /// Whether the first page is new (logged as a full image, as `new_page` asks).
    first_full_image: bool,
    state: *mut pg_sys::GenericXLogState,
    pages: [*mut Page; 2],
    dirty: bool,
}

impl PagePair for PairGuard<'_> {
    fn pages(&mut self) -> (&mut Page, &mut Page) {
        if self.rel.wal && self.state.is_null() {
            let first_flags = if self.first_full_image {
                pg_sys::GENERIC_XLOG_FULL_IMAGE as i32
            } else {
                0
            };
            // SAFETY: both buffers are exclusively locked; the images live until Finish/Abort.
            unsafe {
                self.state = pg_sys::GenericXLogStart(self.rel.rel);
                self.pages[0] =
                    pg_sys::GenericXLogRegisterBuffer(self.state, self.bufs[0], first_flags)
                        as *mut Page;
                self.pages[1] =
                    pg_sys::GenericXLogRegisterBuffer(self.state, self.bufs[1], 0) as *mut Page;
            }
        }
        self.dirty = true;
        // SAFETY: two distinct pinned, exclusively locked pages; we hold the only references.
        unsafe { (&mut *self.pages[0], &mut *self.pages[1]) }
    }
}

impl Drop for PairGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: we hold both pins and exclusive locks; the Generic WAL state is ours.
        unsafe { finish_write(self.state, &self.bufs, self.dirty) }
    }
}

impl PgRelation {
    fn write_guard(&self, buf: pg_sys::Buffer, full_image: bool) -> WriteGuard<'_> {
        // SAFETY: a pinned, locked buffer of a block-sized page.
        let page = unsafe { pg_sys::BufferGetPage(buf) as *mut Page };
        WriteGuard {
            rel: self,
            buf,
            state: std::ptr::null_mut(),
            page,
            full_image,
            dirty: false,
        }
    }
}

impl Relation for PgRelation {
    type Read<'a> = ReadGuard;
    type Write<'a> = WriteGuard<'a>;
    type Pair<'a> = PairGuard<'a>;

    fn page_list_memo(&self) -> Option<&std::cell::RefCell<Option<PageListMemo>>> {
        self.recent.as_ref().map(Recent::page_list)
    }

    fn read(&self, block: BlockNumber) -> ReadGuard {
        let buf = self.buffer(block, pg_sys::BUFFER_LOCK_SHARE);
        // SAFETY: pinned and share-locked.
        let page = unsafe { pg_sys::BufferGetPage(buf) as *const Page };
        ReadGuard { buf, page }
    }

    fn write(&self, block: BlockNumber) -> WriteGuard<'_> {
        let buf = self.buffer(block, pg_sys::BUFFER_LOCK_EXCLUSIVE);
        self.write_guard(buf, false)
    }

    fn join<'a>(&'a self, first: WriteGuard<'a>, second: BlockNumber) -> PairGuard<'a> {
        assert!(
            first.state.is_null() && !first.dirty,
            "join a page before changing it"
        );
        let (buf, full_image) = (first.buf, first.full_image);
        // The pin and lock pass to the pair.
        std::mem::forget(first);
        let second_buf = self.buffer(second, pg_sys::BUFFER_LOCK_EXCLUSIVE);
        // SAFETY: pinned, locked buffers of block-sized pages.
        let pages = unsafe {
            [
                pg_sys::BufferGetPage(buf) as *mut Page,
                pg_sys::BufferGetPage(second_buf) as *mut Page,
            ]
        };
        PairGuard {
            rel: self,
            bufs: [buf, second_buf],
            first_full_image: full_image,
            state: std::ptr::null_mut(),
            pages,
            dirty: false,
        }
    }

    fn new_page(&self) -> (BlockNumber, WriteGuard<'_>) {
        if self.wal {
            // Recycled pages first (VACUUM put them in the free space map), checked by the
            // same rule as the in-memory relation's.
            loop {
                // SAFETY: plain FSM lookup.
                let block = unsafe { pg_sys::GetFreeIndexPage(self.rel) };
                if block == pg_sys::InvalidBlockNumber {
                    break;
                }
                let guard =
                    self.write_guard(self.buffer(block, pg_sys::BUFFER_LOCK_EXCLUSIVE), true);
                if is_recyclable(&guard, |xid| self.xid_is_old(xid)) {
                    return (block, guard);
                }
            }
        }
        let buf = self.extend();
        // SAFETY: a pinned buffer.
        let block = unsafe { pg_sys::BufferGetBlockNumber(buf) };
        (block, self.write_guard(buf, true))
    }

    fn nblocks(&self) -> BlockNumber {
        // SAFETY: an open relation.
        unsafe {
            pg_sys::RelationGetNumberOfBlocksInFork(self.rel, pg_sys::ForkNumber::MAIN_FORKNUM)
        }
    }

    fn record_free_page(&self, block: BlockNumber) {
        // SAFETY: plain FSM update.
        unsafe { pg_sys::RecordFreeIndexPage(self.rel, block) }
    }

    fn next_xid(&self) -> u64 {
        // SAFETY: reads shared transaction state.
        unsafe { pg_sys::ReadNextFullTransactionId().value }
    }

    fn xid_is_old(&self, xid: u64) -> bool {
        // SAFETY: the visibility horizon check nbtree uses for deleted pages.
        unsafe {
            pg_sys::GlobalVisCheckRemovableFullXid(
                std::ptr::null_mut(),
                pg_sys::FullTransactionId { value: xid },
            )
        }
    }

    fn check_interrupts(&self) {
        pgrx::check_for_interrupts!();
    }

    fn corrupted(&self, e: FormatError) -> ! {
        // SAFETY: an open relation.
        unsafe { super::format_error(self.rel, e) }
    }

    fn page_recycled_under_scan(&self, block: BlockNumber) -> ! {
        crate::fmgr::raise(
            pgrx::PgSqlErrorCode::ERRCODE_T_R_SERIALIZATION_FAILURE,
            ics_index::relation::recycled_message(block),
            Some(ics_index::relation::RECYCLED_HINT),
        )
    }
}
