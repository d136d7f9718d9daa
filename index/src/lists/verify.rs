//! Structural verification of an index (what `mih_verify` reports): the metapage, every list's
//! chain (no cycles, no page in two lists, only data pages), every entry's shape, and the
//! invariant search depends on: each code lies within its list's covering radius.

use crate::format::{DataOpaque, FormatError, FLAG_DELETED, INVALID_BLOCK};
use crate::lists::directory::Directory;
use crate::lists::layout::entry;
use crate::relation::Relation;
use crate::verify::Report;
use ics_codes::hamming::hamming;
use std::collections::HashSet;

pub fn verify<R: Relation>(rel: &R, collect: bool) -> Result<Report, FormatError> {
    let dir = Directory::read(rel)?;
    let nb = dir.code_bytes();
    let mut r = Report {
        code_bytes: nb,
        lists: dir.lists(),
        ..Default::default()
    };
    let nblocks = rel.nblocks();
    let mut seen_pages = HashSet::new();
    for l in 0..dir.lists() {
        let centroid = dir.centroid(l);
        r.max_radius = r.max_radius.max(dir.radius[l]);
        let mut block = dir.tails[l];
        if block != INVALID_BLOCK {
            r.nonempty_lists += 1;
        }
        while block != INVALID_BLOCK {
            rel.check_interrupts();
            if block < dir.meta.first_data_block() || block >= nblocks {
                r.problems.push(format!(
                    "list {l}: link to block {block}, outside the data pages"
                ));
                break;
            }
            if !seen_pages.insert(block) {
                r.problems.push(format!(
                    "list {l}: block {block} is reached twice (cycle or shared page)"
                ));
                break;
            }
            let page = rel.read(block);
            if !DataOpaque::is_data_page(&page) {
                r.problems
                    .push(format!("list {l}: block {block} is not a data page"));
                break;
            }
            if let Err((field, expected, found)) = page.check_items() {
                r.problems.push(format!(
                    "list {l}: block {block}: {field} is {found}, expected {expected}"
                ));
                break;
            }
            let o = DataOpaque::read(&page);
            if o.flags & FLAG_DELETED != 0 {
                r.unlinked_pages_still_linked += 1;
            }
            r.data_pages += 1;
            for i in 0..page.item_count() {
                let body = page.item(i);
                let n = if body.len() >= 2 {
                    entry::ntids(body)
                } else {
                    0
                };
                if n == 0 || body.len() != entry::size(nb, n) {
                    r.problems
                        .push(format!("block {block} item {}: malformed entry", i + 1));
                    continue;
                }
                let code = entry::code(body, nb);
                let d = hamming(code, centroid);
                if d > u32::from(dir.radius[l]) {
                    r.problems.push(format!(
                        "block {block} item {}: code at distance {d} from list {l}'s centroid, beyond its radius {}",
                        i + 1,
                        dir.radius[l]
                    ));
                }
                r.entries += 1;
                r.tids += n as u64;
                for tid in entry::tids(body, nb) {
                    if tid.offset == 0 {
                        r.problems
                            .push(format!("block {block} item {}: invalid TID {tid:?}", i + 1));
                    }
                    if collect {
                        r.contents.push((tid, code.to_vec()));
                    }
                }
            }
            block = o.prev;
        }
    }
    Ok(r)
}
