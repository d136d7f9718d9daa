//! What a backend's scans of an index remember between them:
//!
//! - the page list of a substring index (`ics_index::relation::PageListMemo`), kept for the
//!   relation file it was read from (REINDEX and TRUNCATE give the index a new file), so
//!   that a scan reads the metapage and not every map page;
//! - which shared buffer each page of the index was last found in, so that a scan pins that
//!   buffer directly (`ReadRecentBuffer`: one check of the buffer's tag) instead of looking
//!   the page up in the shared buffer mapping table. That lookup, a hash probe into a table
//!   of every shared buffer, took a sixth of the time of a k-NN linear pass (a thousand pages
//!   for a million 64-bit codes). A stale entry (the page evicted, the index rewritten or
//!   dropped) fails the check, and the page is read the usual way and remembered again.
//!
//! Only scans of permanent and unlogged indexes use it (a temporary index lives in local
//! buffers, which must not mix with shared ones in a map by OID), only the first
//! [`MAX_BLOCKS`] blocks of [`MAX_INDEXES`] indexes are remembered, and the memory is the
//! backend's own (a backend is one thread: a thread-local map).

use ics_index::relation::PageListMemo;
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;

/// Blocks remembered per index: 4 MiB of buffer numbers, an index of 8 GiB.
const MAX_BLOCKS: usize = 1 << 20;
/// Indexes remembered; past it the map starts again empty.
const MAX_INDEXES: usize = 64;

/// What is remembered of one index.
#[derive(Default)]
struct Remembered {
    buffers: Vec<pg_sys::Buffer>,
    /// The relation file the page list was read from, and the list.
    page_list: Option<(pg_sys::Oid, PageListMemo)>,
}

thread_local! {
    static RECENT: RefCell<HashMap<pg_sys::Oid, Remembered>> = RefCell::new(HashMap::new());
}

/// One index's remembered buffers and page list, taken out of the backend's map for the life
/// of a scan call and put back when dropped.
pub struct Recent {
    index: pg_sys::Oid,
    file: pg_sys::Oid,
    buffers: RefCell<Vec<pg_sys::Buffer>>,
    page_list: RefCell<Option<PageListMemo>>,
}

impl Recent {
    /// What was remembered of index `index`, now stored in relation file `file`.
    pub fn take(index: pg_sys::Oid, file: pg_sys::Oid) -> Recent {
        let r = RECENT
            .with(|m| m.borrow_mut().remove(&index))
            .unwrap_or_default();
        Recent {
            index,
            file,
            buffers: RefCell::new(r.buffers),
            // A page list read from another file (before a REINDEX) says nothing of this one.
            page_list: RefCell::new(r.page_list.filter(|(f, _)| *f == file).map(|(_, p)| p)),
        }
    }

    /// The page-list memo of this scan call.
    pub fn page_list(&self) -> &RefCell<Option<PageListMemo>> {
        &self.page_list
    }

    /// `block` of `rel` pinned through the buffer it was last found in, if it is still there.
    ///
    /// # Safety
    /// `rel` is an open relation (the index this was taken for).
    pub unsafe fn pin(
        &self,
        rel: pg_sys::Relation,
        block: pg_sys::BlockNumber,
    ) -> Option<pg_sys::Buffer> {
        let recent = *self.buffers.borrow().get(block as usize)?;
        if recent == pg_sys::InvalidBuffer as pg_sys::Buffer {
            return None;
        }
        // SAFETY: an open relation; ReadRecentBuffer checks that `recent` holds this very
        // block (its tag) before pinning it, and returns false otherwise.
        let pinned = unsafe {
            #[cfg(feature = "pg15")]
            let found = pg_sys::ReadRecentBuffer(
                (*rel).rd_node,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                recent,
            );
            #[cfg(not(feature = "pg15"))]
            let found = pg_sys::ReadRecentBuffer(
                (*rel).rd_locator,
                pg_sys::ForkNumber::MAIN_FORKNUM,
                block,
                recent,
            );
            found
        };
        pinned.then_some(recent)
    }

    /// Remembers that `block` is in `buffer`.
    pub fn remember(&self, block: pg_sys::BlockNumber, buffer: pg_sys::Buffer) {
        let b = block as usize;
        if b >= MAX_BLOCKS {
            return;
        }
        let mut buffers = self.buffers.borrow_mut();
        if buffers.len() <= b {
            buffers.resize(b + 1, pg_sys::InvalidBuffer as pg_sys::Buffer);
        }
        buffers[b] = buffer;
    }
}

impl Drop for Recent {
    fn drop(&mut self) {
        let r = Remembered {
            buffers: std::mem::take(self.buffers.get_mut()),
            page_list: self.page_list.get_mut().take().map(|p| (self.file, p)),
        };
        RECENT.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= MAX_INDEXES {
                m.clear();
            }
            m.insert(self.index, r);
        });
    }
}
