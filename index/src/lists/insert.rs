//! Inserts after the build: each row goes to its nearest list's newest page (new pages are
//! chained in front when it is full). Rows inserted together are grouped by list and equal
//! codes share one entry.
//!
//! Locking: the list's tail page (exclusive), then its directory page. Scans never hold a
//! directory lock while waiting for a data page, and VACUUM takes the same order, so this
//! cannot deadlock. The covering radius is raised before the entry becomes visible, so no scan
//! can see an entry outside its list's radius.

use crate::format::{FormatError, Meta, Tid, INVALID_BLOCK};
use crate::lists::layout::{check_data_page, entry, init_data_page, ListRecord};
use crate::page::{maxalign, Page};
use crate::relation::Relation;
use ics_codes::hamming::nearest;

/// Inserts one row. See [`insert_batch`].
pub fn insert<R: Relation>(
    rel: &R,
    meta: &Meta,
    centroids: &[u8],
    code: &[u8],
    tid: Tid,
    scratch: &mut Vec<u32>,
) -> Result<(), FormatError> {
    insert_batch(rel, meta, centroids, code, &[tid], scratch)
}

/// Inserts many rows (`codes` contiguous, one per TID): grouped by list, equal codes merged
/// into posting lists, each list's pages locked and logged once per batch rather than once per
/// row, which is what makes bulk `INSERT ... SELECT` cheap.
pub fn insert_batch<R: Relation>(
    rel: &R,
    meta: &Meta,
    centroids: &[u8],
    codes: &[u8],
    tids: &[Tid],
    scratch: &mut Vec<u32>,
) -> Result<(), FormatError> {
    let nb = meta.code_bytes as usize;
    assert_eq!(codes.len(), tids.len() * nb);
    let code = |i: u32| &codes[i as usize * nb..(i as usize + 1) * nb];
    // (list, first 8 code bytes, row): sorting plain integers is several times faster than
    // comparing code slices; rows whose codes share the prefix are ordered fully below.
    let prefix = |i: u32| {
        let c = code(i);
        let mut k = [0u8; 8];
        let n = c.len().min(8);
        k[..n].copy_from_slice(&c[..n]);
        u64::from_be_bytes(k)
    };
    let mut distance = Vec::with_capacity(tids.len());
    let mut placed: Vec<(u32, u64, u32)> = (0..tids.len() as u32)
        .map(|i| {
            let (l, d) = nearest(code(i), centroids, scratch);
            distance.push(d);
            (l as u32, prefix(i), i)
        })
        .collect();
    placed.sort_unstable();
    if nb > 8 {
        for run in placed.chunk_by_mut(|a, b| (a.0, a.1) == (b.0, b.1)) {
            run.sort_unstable_by(|a, b| code(a.2).cmp(code(b.2)).then(a.2.cmp(&b.2)));
        }
    }
    let max_tids = entry::max_tids(nb);
    let mut start = 0;
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    while start < placed.len() {
        let list = placed[start].0;
        let mut end = start;
        let mut max_d = 0;
        while end < placed.len() && placed[end].0 == list {
            max_d = max_d.max(distance[placed[end].2 as usize]);
            end += 1;
        }
        // Entries: one per distinct code (split when a posting list would not fit a page).
        bodies.clear();
        let mut i = start;
        let mut group: Vec<Tid> = Vec::new();
        while i < end {
            let first = placed[i].2;
            group.clear();
            while i < end && code(placed[i].2) == code(first) {
                group.push(tids[placed[i].2 as usize]);
                i += 1;
            }
            for chunk in group.chunks(max_tids) {
                bodies.push(entry::encode(code(first), chunk));
            }
        }
        append_to_list(rel, meta, list as usize, max_d as u16, &bodies)?;
        start = end;
    }
    Ok(())
}

/// Appends `bodies` to list `l`, whose codes are all within `max_d` of its centroid.
fn append_to_list<R: Relation>(
    rel: &R,
    meta: &Meta,
    l: usize,
    max_d: u16,
    bodies: &[Vec<u8>],
) -> Result<(), FormatError> {
    let (dir_block, offset) = meta.record_location(l);
    loop {
        let seen = ListRecord::read(meta, &rel.read(dir_block), dir_block, offset)?;
        if seen.tail == INVALID_BLOCK {
            // First pages of an empty list: created under the directory lock (nobody can wait
            // for a page that does not exist yet, so this keeps the lock order).
            let mut dir = rel.write(dir_block);
            let now = ListRecord::read(meta, &dir, dir_block, offset)?;
            if now.tail != INVALID_BLOCK {
                continue;
            }
            let tail = fill_new_pages(rel, INVALID_BLOCK, bodies);
            ListRecord::write_radius_tail(meta, &mut dir, offset, now.radius.max(max_d), tail);
            return Ok(());
        }
        let mut tail = rel.write(seen.tail);
        check_data_page(&tail, seen.tail, meta.code_bytes as usize)?;
        let now = ListRecord::read(meta, &rel.read(dir_block), dir_block, offset)?;
        if now.tail != seen.tail {
            continue; // another insert added a newer page meanwhile
        }
        if max_d > now.radius {
            let mut dir = rel.write(dir_block);
            ListRecord::write_radius_tail(meta, &mut dir, offset, max_d, now.tail);
        }
        // As many entries as fit on the tail (no WAL for it if none does), the rest on new
        // pages chained behind it.
        let mut n = 0;
        if maxalign(bodies[0].len()) <= tail.free_space() {
            let page: &mut Page = &mut tail;
            while n < bodies.len() && page.add_item(&bodies[n]) {
                n += 1;
            }
        }
        if n < bodies.len() {
            let new_tail = fill_new_pages(rel, now.tail, &bodies[n..]);
            let mut dir = rel.write(dir_block);
            let cur = ListRecord::read(meta, &dir, dir_block, offset)?;
            ListRecord::write_radius_tail(meta, &mut dir, offset, cur.radius.max(max_d), new_tail);
        }
        return Ok(());
    }
}

/// Writes `bodies` to new pages chained behind `prev`; returns the newest page.
fn fill_new_pages<R: Relation>(rel: &R, mut prev: u32, bodies: &[Vec<u8>]) -> u32 {
    let mut i = 0;
    while i < bodies.len() {
        let (block, mut page) = rel.new_page();
        init_data_page(&mut page, prev);
        while i < bodies.len() && page.add_item(&bodies[i]) {
            i += 1;
        }
        assert!(page.item_count() > 0, "an entry always fits an empty page");
        prev = block;
    }
    prev
}
