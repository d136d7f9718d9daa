//! Inserts after the build go to the tail: a chain of append pages, newest first, that every
//! search reads linearly and the next merge (VACUUM) folds into the tables. Appending costs one
//! page lock and a small WAL record per batch, whatever the codes look like, which keeps bulk
//! `INSERT ... SELECT` into an indexed table close to the unindexed rate.
//!
//! Locking: the tail page (exclusive), then the metapage. A merge seals the tail by pointing
//! the metapage elsewhere (holding only the metapage); an insert that locked the old tail sees
//! the change when it checks the metapage again, and starts over on the new tail.

use crate::format::{FormatError, Meta, Tid, INVALID_BLOCK, META_BLOCK};
use crate::relation::Relation;
use crate::substrings::layout::{self, capacity, check_page, init_page, Kind, SubMeta, Want};

fn read_meta<R: Relation>(rel: &R) -> Result<(Meta, SubMeta), FormatError> {
    let page = rel.read(META_BLOCK);
    let meta = Meta::read(&page)?;
    let sub = SubMeta::read(&page).map_err(FormatError::BadMeta)?;
    Ok((meta, sub))
}

/// Appends rows (`codes` contiguous, one per TID) to the tail.
pub fn insert_batch<R: Relation>(rel: &R, codes: &[u8], tids: &[Tid]) -> Result<(), FormatError> {
    if tids.is_empty() {
        return Ok(());
    }
    let nb = codes.len() / tids.len();
    assert_eq!(codes.len(), tids.len() * nb);
    let cap = capacity(nb, true);
    loop {
        let (_, seen) = read_meta(rel)?;
        if seen.tail == INVALID_BLOCK {
            // The first tail page: made under the metapage lock (nobody can wait for a page
            // that does not exist yet, so this keeps the lock order).
            let mut mp = rel.write(META_BLOCK);
            let meta = Meta::read(&mp)?;
            let mut sub = SubMeta::read(&mp).map_err(FormatError::BadMeta)?;
            if sub.tail != INVALID_BLOCK {
                continue;
            }
            sub.tail = fill_new_pages(rel, INVALID_BLOCK, sub.generation, nb, codes, tids, 0);
            sub.write(&meta, &mut mp);
            return Ok(());
        }
        let mut tail = rel.write(seen.tail);
        let (_, now) = read_meta(rel)?;
        if now.tail != seen.tail {
            continue; // sealed by a merge, or a newer page added meanwhile
        }
        let mut count = check_page(&tail, seen.tail, &Want::tail(nb))?.count as usize;
        let mut at = 0;
        if count < cap {
            let page: &mut crate::page::Page = &mut tail;
            while count < cap && at < tids.len() {
                layout::set_record(
                    page,
                    nb,
                    cap,
                    count,
                    &codes[at * nb..(at + 1) * nb],
                    Some(tids[at]),
                );
                count += 1;
                at += 1;
            }
            layout::set_count(page, count as u32);
        }
        if at < tids.len() {
            let head = fill_new_pages(rel, seen.tail, now.generation, nb, codes, tids, at);
            let mut mp = rel.write(META_BLOCK);
            let meta = Meta::read(&mp)?;
            let mut sub = SubMeta::read(&mp).map_err(FormatError::BadMeta)?;
            debug_assert_eq!(sub.tail, seen.tail, "the tail is locked");
            sub.tail = head;
            sub.write(&meta, &mut mp);
        }
        return Ok(());
    }
}

/// Writes rows `from..` to new tail pages chained behind `prev`; returns the newest page.
pub(crate) fn fill_new_pages<R: Relation>(
    rel: &R,
    mut prev: u32,
    generation: u32,
    nb: usize,
    codes: &[u8],
    tids: &[Tid],
    from: usize,
) -> u32 {
    let cap = capacity(nb, true);
    let mut at = from;
    while at < tids.len() {
        let (block, mut page) = rel.new_page();
        init_page(&mut page, Kind::Tail, 0, generation, prev);
        // The birth stamp lets VACUUM tell a page an insert has not linked *yet* (its
        // transaction is running, so the stamp is not old) from one it never will (a crash or
        // an error between writing the page and linking it): see vacuum::reclaim.
        layout::set_birth(&mut page, rel.next_xid());
        let n = (tids.len() - at).min(cap);
        for i in 0..n {
            layout::set_record(
                &mut page,
                nb,
                cap,
                i,
                &codes[(at + i) * nb..(at + i + 1) * nb],
                Some(tids[at + i]),
            );
        }
        layout::set_count(&mut page, n as u32);
        at += n;
        prev = block;
    }
    prev
}
