//! VACUUM: remove dead TIDs, drop emptied entries, merge entries of one code that separate
//! inserts left on a page, unlink emptied pages, recycle unlinked pages
//! no scan can still reach, and shrink each list's covering radius to what remains.
//!
//! Per list, the tail page stays exclusively locked for the whole walk: inserts only ever go
//! to the tail, so nothing is added behind the walk and the recomputed radius is exact. The
//! walk couples locks from newer to older pages, so an emptied page can be unlinked by
//! pointing its newer neighbour past it. An unlinked page keeps its own `prev` link (a scan
//! already on its way to it continues correctly) and is stamped with the next transaction id;
//! a later VACUUM hands it to the free space map once no snapshot that old remains.

use crate::format::{DataOpaque, FormatError, Tid, FLAG_DELETED, INVALID_BLOCK};
use crate::lists::directory::Directory;
use crate::lists::layout::{check_data_page, entry, ListRecord};
use crate::page::Page;
use crate::relation::{ChainWalk, PagePair, Relation};
use crate::vacuum::VacuumStats;
use ics_codes::hamming::hamming;

/// What one page holds after removing dead TIDs (without changing it).
struct Cleaned {
    bodies: Option<Vec<Vec<u8>>>,
    removed: u64,
    remaining: u64,
    entries: u64,
    max_distance: u32,
}

fn clean(page: &Page, nb: usize, centroid: &[u8], is_dead: &mut dyn FnMut(Tid) -> bool) -> Cleaned {
    let mut out = Cleaned {
        bodies: None,
        removed: 0,
        remaining: 0,
        entries: 0,
        max_distance: 0,
    };
    // Live TIDs per distinct code, in page order: entries of one code that inserts added
    // separately are merged into one posting list here.
    let mut live: Vec<(&[u8], Vec<Tid>)> = Vec::with_capacity(page.item_count());
    let mut position: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    let mut merged = false;
    for i in 0..page.item_count() {
        let body = page.item(i);
        let code = entry::code(body, nb);
        let before = live.len();
        let slot = *position.entry(code).or_insert(before);
        if slot == before {
            live.push((code, Vec::new()));
        } else {
            merged = true;
        }
        for t in entry::tids(body, nb) {
            if is_dead(t) {
                out.removed += 1;
            } else {
                live[slot].1.push(t);
            }
        }
    }
    let max_tids = entry::max_tids(nb);
    let mut bodies = Vec::with_capacity(live.len());
    for (code, tids) in &live {
        if tids.is_empty() {
            continue;
        }
        out.remaining += tids.len() as u64;
        out.max_distance = out.max_distance.max(hamming(code, centroid));
        for chunk in tids.chunks(max_tids) {
            out.entries += 1;
            bodies.push(entry::encode(code, chunk));
        }
    }
    if out.removed > 0 || merged {
        out.bodies = Some(bodies);
    }
    out
}

fn rewrite(page: &mut Page, bodies: &[Vec<u8>]) {
    page.retain_items(|_, _| false);
    for b in bodies {
        assert!(
            page.add_item(b),
            "internal invariant: a cleaned page holds no more than it did"
        );
    }
}

fn set_prev(page: &mut Page, prev: u32) {
    let mut o = DataOpaque::read(page);
    o.prev = prev;
    o.write(page);
}

/// Removes every TID for which `is_dead` is true.
pub fn bulk_delete<R: Relation>(
    rel: &R,
    is_dead: &mut dyn FnMut(Tid) -> bool,
) -> Result<VacuumStats, FormatError> {
    let dir = Directory::read(rel)?;
    let meta = &dir.meta;
    let nb = dir.code_bytes();
    let mut stats = VacuumStats::default();
    for l in 0..dir.lists() {
        let (dir_block, offset) = meta.record_location(l);
        // Lock the list's current tail (it may have moved since the directory was read).
        let (tail_block, tail) = loop {
            let t = ListRecord::read(meta, &rel.read(dir_block), dir_block, offset)?.tail;
            if t == INVALID_BLOCK {
                break (INVALID_BLOCK, None);
            }
            let guard = rel.write(t);
            if ListRecord::read(meta, &rel.read(dir_block), dir_block, offset)?.tail == t {
                break (t, Some(guard));
            }
        };
        let Some(tail_guard) = tail else {
            continue;
        };
        let centroid = dir.centroid(l);

        check_data_page(&tail_guard, tail_block, nb)?;
        // The tail's own changes wait for the end of the walk, to be logged with the radius.
        let c = clean(&tail_guard, nb, centroid, is_dead);
        let tail_bodies = c.bodies;
        let mut tail_prev = None;
        let mut max_distance = c.max_distance;
        stats.tids_removed += c.removed;
        stats.tids_remaining += c.remaining;
        stats.entries_remaining += c.entries;
        stats.pages_in_lists += 1;

        // `newer` is the page whose prev link points at the page being visited (None: tail).
        let mut newer: Option<(u32, R::Write<'_>)> = None;
        let mut block = DataOpaque::read(&tail_guard).prev;
        let mut walk = ChainWalk::new();
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            walk.step(rel, block)?;
            // A link back to a page this walk holds locked would wait for itself forever.
            if block == tail_block || newer.as_ref().is_some_and(|(b, _)| *b == block) {
                return Err(FormatError::BadPage {
                    block,
                    why: "the chain of pages through it leads back to itself",
                });
            }
            let mut page = rel.write(block);
            let opaque = check_data_page(&page, block, nb)?;
            let c = clean(&page, nb, centroid, is_dead);
            stats.tids_removed += c.removed;
            let emptied = opaque.flags & FLAG_DELETED != 0 || c.remaining == 0;
            if emptied {
                // Unlink: mark it first (a crash in between leaves an empty page still
                // linked, which the next VACUUM unlinks), then bypass it.
                if opaque.flags & FLAG_DELETED == 0 {
                    page.retain_items(|_, _| false);
                    DataOpaque {
                        prev: opaque.prev,
                        flags: FLAG_DELETED,
                        deleted_xid: rel.next_xid(),
                    }
                    .write(&mut page);
                }
                match newer.as_mut() {
                    Some((_, link)) => set_prev(link, opaque.prev),
                    None => tail_prev = Some(opaque.prev),
                }
                stats.pages_unlinked += 1;
            } else {
                if let Some(bodies) = &c.bodies {
                    rewrite(&mut page, bodies);
                }
                max_distance = max_distance.max(c.max_distance);
                stats.tids_remaining += c.remaining;
                stats.entries_remaining += c.entries;
                stats.pages_in_lists += 1;
            }
            if !emptied {
                newer = Some((block, page));
            }
            block = opaque.prev;
        }
        drop(newer);
        let change_tail = |page: &mut Page| {
            if let Some(bodies) = &tail_bodies {
                rewrite(page, bodies);
            }
            if let Some(prev) = tail_prev {
                set_prev(page, prev);
            }
        };
        // Nothing was added to this list during the walk (its tail is still locked), so the
        // radius of what remains is exact. A smaller radius is logged with the tail's changes:
        // alone, a crash could keep it and lose them, leaving dead codes beyond it.
        let rec = ListRecord::read(meta, &rel.read(dir_block), dir_block, offset)?;
        if u32::from(rec.radius) > max_distance {
            let mut pair = rel.join(tail_guard, dir_block);
            let (tail, d) = pair.pages();
            change_tail(tail);
            ListRecord::write_radius_tail(meta, d, offset, max_distance as u16, tail_block);
        } else if tail_bodies.is_some() || tail_prev.is_some() {
            let mut tail = tail_guard;
            change_tail(&mut tail);
        }
    }
    stats.pages_recycled = recycle(rel, meta.first_data_block());
    Ok(stats)
}

/// Hands unlinked pages that no snapshot can reach any more to the free space map.
pub fn recycle<R: Relation>(rel: &R, first_data_block: u32) -> u64 {
    let mut recycled = 0;
    for block in first_data_block..rel.nblocks() {
        rel.check_interrupts();
        let page = rel.read(block);
        if page.is_new() {
            // Extended but never written (a crash mid-insert): reusable.
            drop(page);
            rel.record_free_page(block);
            recycled += 1;
            continue;
        }
        // Only list pages are read: any other page here is left alone, never recycled.
        if DataOpaque::is_data_page(&page) && {
            let o = DataOpaque::read(&page);
            o.flags & FLAG_DELETED != 0 && rel.xid_is_old(o.deleted_xid)
        } {
            drop(page);
            rel.record_free_page(block);
            recycled += 1;
        }
    }
    recycled
}
