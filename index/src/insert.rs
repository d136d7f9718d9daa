//! Insert one row after the build: to its nearest list's newest page, merging into an entry
//! with the same code on that page when there is one.
//!
//! Locking: the list's tail page (exclusive), then its directory page. Scans never hold a
//! directory lock while waiting for a data page, and VACUUM takes the same order, so this
//! cannot deadlock. The covering radius is raised before the entry becomes visible, so no scan
//! can see an entry outside its list's radius.

use crate::format::{
    entry, init_data_page, init_dir_page, ListRecord, Meta, Tid, FIRST_DIR_BLOCK, INVALID_BLOCK,
    META_BLOCK,
};
use crate::kmodes::nearest;
use crate::page::Page;
use crate::relation::Relation;

/// Adds `tid` to an entry for `code` on `page` or as a new entry; `false` if it does not fit.
fn add_to_page(page: &mut Page, code: &[u8], tid: Tid) -> bool {
    let nb = code.len();
    let max_tids = entry::max_tids(nb);
    for i in 0..page.item_count() {
        let body = page.item(i);
        if entry::code(body, nb) == code && entry::ntids(body) < max_tids {
            let mut grown = body.to_vec();
            grown.extend_from_slice(&tid.to_bytes());
            let n = entry::ntids(body) as u16 + 1;
            grown[..2].copy_from_slice(&n.to_ne_bytes());
            if page.replace_item(i, &grown) {
                return true;
            }
            break;
        }
    }
    page.add_item(&entry::encode(code, &[tid]))
}

/// Inserts (`code`, `tid`). `centroids` are the index's (fixed at build; callers cache them).
pub fn insert<R: Relation>(
    rel: &R,
    meta: &Meta,
    centroids: &[u8],
    code: &[u8],
    tid: Tid,
    scratch: &mut Vec<u32>,
) {
    let (l, d) = nearest(code, centroids, scratch);
    let d = d as u16;
    let (dir_block, offset) = meta.record_location(l);
    loop {
        let seen = ListRecord::read(meta, &rel.read(dir_block), offset);
        if seen.tail == INVALID_BLOCK {
            // First page of an empty list: created under the directory lock (nobody can wait
            // for a page that does not exist yet, so this keeps the lock order).
            let mut dir = rel.write(dir_block);
            let now = ListRecord::read(meta, &dir, offset);
            if now.tail != INVALID_BLOCK {
                continue;
            }
            let (block, mut page) = rel.new_page();
            init_data_page(&mut page, INVALID_BLOCK);
            assert!(add_to_page(&mut page, code, tid));
            drop(page);
            ListRecord::write_radius_tail(meta, &mut dir, offset, now.radius.max(d), block);
            return;
        }
        let mut tail = rel.write(seen.tail);
        let now = ListRecord::read(meta, &rel.read(dir_block), offset);
        if now.tail != seen.tail {
            continue; // another insert added a newer page meanwhile
        }
        if d > now.radius {
            let mut dir = rel.write(dir_block);
            ListRecord::write_radius_tail(meta, &mut dir, offset, d, now.tail);
        }
        if add_to_page(&mut tail, code, tid) {
            return;
        }
        let (block, mut page) = rel.new_page();
        init_data_page(&mut page, seen.tail);
        assert!(add_to_page(&mut page, code, tid));
        drop(page);
        let mut dir = rel.write(dir_block);
        let cur = ListRecord::read(meta, &dir, offset);
        ListRecord::write_radius_tail(meta, &mut dir, offset, cur.radius.max(d), block);
        return;
    }
}

/// For an index built without knowing the code length (see
/// [`crate::build::build_unsized`]): fixes it to `code_bytes` with one list whose centroid is
/// all zeros, unless a concurrent insert already did. Returns the metapage now in force.
pub fn fix_code_length<R: Relation>(
    rel: &R,
    code_bytes: usize,
) -> Result<Meta, crate::format::FormatError> {
    let mut meta_page = rel.write(META_BLOCK);
    let current = Meta::read(&meta_page)?;
    if current.code_bytes != 0 {
        return Ok(current);
    }
    let meta = Meta::new(code_bytes, 1, 0);
    debug_assert_eq!(meta.dir_pages, current.dir_pages);
    {
        let mut dir = rel.write(FIRST_DIR_BLOCK);
        init_dir_page(&meta, &mut dir, 1);
        let rec = ListRecord {
            centroid: vec![0; code_bytes],
            radius: 0,
            tail: INVALID_BLOCK,
        };
        rec.write(&meta, &mut dir, 0);
    }
    meta.write(&mut meta_page);
    Ok(meta)
}
