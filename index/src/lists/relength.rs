//! Forgetting the code length of an index that holds nothing alive.
//!
//! An index built on an untyped `hashcode` column with no rows learns its code length from
//! the first rows written to it. If those rows die (their transaction rolled back after its
//! inserts reached the pages, or crashed), the length would stay fixed for good and every
//! later insert of another length would fail until a REINDEX. [`reset_if_all_dead`] removes
//! the dead entries and, when none is left, returns the index to the state of a fresh build
//! of an empty table: no lists, no length, so the next insert fixes a new one.
//!
//! The caller must keep other inserts out while it runs (the extension takes an ExclusiveLock
//! on the index, which waits for every transaction that holds unwritten inserts); scans may run
//! on. The lists' former pages are unlinked the way VACUUM unlinks pages (marked deleted with
//! the next transaction id, so a scan still walking them stays correct) and a later VACUUM
//! recycles them.

use crate::format::{
    DataOpaque, FormatError, Meta, Tid, FIRST_DIR_BLOCK, FLAG_DELETED, INVALID_BLOCK, META_BLOCK,
};
use crate::lists::directory::Directory;
use crate::lists::layout::init_dir_page;
use crate::lists::vacuum::bulk_delete;
use crate::relation::Relation;

/// Removes every TID for which `is_dead` is true; if none remains, resets the index to "no
/// length yet" and returns true. An index whose length is not known yet is left as it is
/// (and true is returned).
pub fn reset_if_all_dead<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<bool, FormatError> {
    let dir = Directory::read(rel)?;
    if dir.code_bytes() == 0 {
        return Ok(true);
    }
    if bulk_delete(rel, is_dead)?.tids_remaining > 0 {
        return Ok(false);
    }
    // Every list is empty: retire its pages (VACUUM left at most the tail of each).
    let dir = Directory::read(rel)?;
    for &tail in &dir.tails {
        let mut block = tail;
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            let mut page = rel.write(block);
            let o = DataOpaque::read(&page);
            if o.flags & FLAG_DELETED == 0 {
                page.retain_items(|_, _| false);
                DataOpaque {
                    prev: o.prev,
                    flags: FLAG_DELETED,
                    deleted_xid: rel.next_xid(),
                }
                .write(&mut page);
            }
            block = o.prev;
        }
    }
    // The metapage last: until it changes, the old (empty) lists are still a valid index.
    let mut meta_page = rel.write(META_BLOCK);
    let meta = Meta::new(0, 0, 0).keeping(&Meta::read(&meta_page)?);
    debug_assert_eq!(meta.strategy, crate::format::Strategy::Lists);
    {
        let mut d = rel.write(FIRST_DIR_BLOCK);
        init_dir_page(&meta, &mut d, 0);
    }
    meta.write(&mut meta_page);
    Ok(true)
}
