//! Exactness against brute force: build, insert, vacuum and search on an in-memory relation,
//! for uniform and hash-like (clustered, duplicated) codes of several lengths.

use crate::format::{Tid, INVALID_BLOCK};
use crate::lists::build::{default_lists, Builder};
use crate::lists::directory::Directory;
use crate::lists::insert::insert;
use crate::lists::kmodes;
use crate::lists::search::Search;
use crate::lists::vacuum::bulk_delete;
use crate::lists::verify::verify;
use crate::relation::{MemRelation, Relation};
use crate::search::Query;
use crate::testutil::{
    check_query, check_verify, clustered, live_of, rows_of, split_rows, tid, uniform,
};
use rand::rngs::SmallRng;
use rand::SeedableRng;

fn build(rel: &MemRelation, rows: &[(Vec<u8>, Tid)], nb: usize, lists: usize, batch: usize) {
    let sample: Vec<u8> = rows
        .iter()
        .take(5000)
        .flat_map(|(c, _)| c.clone())
        .collect();
    let centroids = kmodes::train(&sample, nb, lists, 8, 1, &mut || {});
    let mut b = Builder::new(rel, centroids, nb, batch);
    for (c, t) in rows {
        b.add(c, *t);
    }
    let s = b.finish();
    assert_eq!(s.rows, rows.len() as u64);
}

#[test]
fn duplicates_share_entries_and_long_posting_lists_split() {
    let nb = 8;
    let code = vec![0x5a; nb];
    let mut rows: Vec<(Vec<u8>, Tid)> = (0..5000).map(|i| (code.clone(), tid(i))).collect();
    rows.push((vec![0xff; nb], tid(5000)));
    let rel = MemRelation::new();
    build(&rel, &rows, nb, 4, 100_000);
    let report = verify(&rel, false).unwrap();
    assert_eq!(report.tids, 5001);
    let max = crate::lists::layout::entry::max_tids(nb) as u64;
    assert_eq!(report.entries, 5000u64.div_ceil(max) + 1);
    let live = live_of(&rows);
    check_query(&rel, &live, &code, &[0, 1, 64]);
}

#[test]
fn search_skips_far_lists() {
    let mut rng = SmallRng::seed_from_u64(21);
    let nb = 8;
    let codes = clustered(&mut rng, 20_000, nb, 40, 1.0 / 32.0);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows, nb, default_lists(rows.len() as u64), 100_000);
    let dir = Directory::read(&rel).unwrap();
    let nonempty = dir.tails.iter().filter(|&&t| t != INVALID_BLOCK).count();
    let mut s = Search::new(
        &dir,
        Query {
            code: codes[3].clone(),
            max_distance: u32::MAX,
            filters: vec![],
            nulls: false,
        },
    );
    for _ in 0..10 {
        s.next(&rel).unwrap();
    }
    // The 10 nearest of hash-like data come from the query's own cluster.
    assert!(
        s.stats.lists_visited * 4 <= nonempty,
        "{:?} of {nonempty}",
        s.stats
    );
}

#[test]
fn verify_detects_a_radius_too_small() {
    let mut rng = SmallRng::seed_from_u64(4);
    let nb = 8;
    let codes = uniform(&mut rng, 500, nb);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows, nb, 3, 1000);
    let dir = Directory::read(&rel).unwrap();
    let (block, offset) = dir.meta.record_location(0);
    crate::lists::layout::ListRecord::write_radius_tail(
        &dir.meta,
        &mut rel.write(block),
        offset,
        0,
        dir.tails[0],
    );
    let report = verify(&rel, false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("beyond its radius")),
        "{:?}",
        report.problems
    );
}

#[test]
fn batched_inserts_group_codes_chain_pages_and_vacuum_merges_them() {
    let mut rng = SmallRng::seed_from_u64(8);
    let nb = 8;
    let codes = clustered(&mut rng, 3000, nb, 4, 0.03);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows[..500], nb, 4, 1000);
    let dir = Directory::read(&rel).unwrap();
    let mut scratch = Vec::new();
    // Batches of several sizes, each overflowing the tails into new pages.
    let mut at = 500;
    for size in [1usize, 7, 300, 2192] {
        let batch = &rows[at..at + size];
        let (flat, tids) = split_rows(batch);
        crate::lists::insert::insert_batch(
            &rel,
            &dir.meta,
            &dir.centroids,
            &flat,
            &tids,
            &mut scratch,
        )
        .unwrap();
        at += size;
    }
    assert_eq!(at, rows.len());
    let live = live_of(&rows);
    check_verify(&rel, &live);
    let q = codes[10].clone();
    check_query(&rel, &live, &q, &[0, 2, 5, 9]);
    // The same codes inserted row by row leave one entry each; VACUUM merges them per page.
    for (c, t) in rows.iter().take(200) {
        let t2 = Tid {
            block: t.block + 50_000,
            offset: t.offset,
        };
        insert(&rel, &dir.meta, &dir.centroids, c, t2, &mut scratch).unwrap();
    }
    let before = verify(&rel, false).unwrap();
    bulk_delete(&rel, &mut |_| false).unwrap();
    let after = verify(&rel, false).unwrap();
    assert_eq!(after.tids, before.tids);
    assert!(
        after.entries < before.entries,
        "{} -> {}",
        before.entries,
        after.entries
    );
    assert!(after.problems.is_empty(), "{:?}", after.problems);
}

crate::suite::contract_suite!(crate::format::Strategy::Lists);

/// Bytes on a list page that cannot be what the format says reach every verb as the same
/// [`FormatError`] (PostgreSQL: index corrupted, REINDEX), never as a panic of its own: a line
/// pointer outside the page, an entry whose length does not match its TID count, a header
/// whose offsets are out of order; and a chain link to a page that is no list page is, for a
/// scan, a page recycled under it (40001).
#[test]
fn a_corrupt_list_page_reaches_every_verb_as_a_format_error() {
    use crate::format::{FormatError, FIRST_DIR_BLOCK};
    use crate::page::HEADER_SIZE;
    let mut rng = SmallRng::seed_from_u64(4);
    let nb = 8;
    let codes = uniform(&mut rng, 500, nb);
    let rows = rows_of(&codes);
    let scan_panic = |rel: &MemRelation, q: &[u8]| -> String {
        crate::testutil::scan_failure(rel, crate::testutil::query(q, u32::MAX))
    };
    type Corrupt = fn(&mut crate::page::Page);
    let cases: [(&str, Corrupt); 4] = [
        ("a line pointer is item 1 at 8190", |p| {
            let raw = 8190u32 | (1 << 15) | (100 << 17);
            p.0[HEADER_SIZE..HEADER_SIZE + 4].copy_from_slice(&raw.to_ne_bytes());
        }),
        ("an entry's length is", |p| {
            let raw = u32::from_ne_bytes(p.0[HEADER_SIZE..HEADER_SIZE + 4].try_into().unwrap());
            let off = (raw & 0x7fff) as usize;
            p.0[off..off + 2].copy_from_slice(&0u16.to_ne_bytes());
        }),
        ("pd_lower, pd_upper, pd_special is 9000", |p| {
            p.0[12..14].copy_from_slice(&9000u16.to_ne_bytes());
        }),
        ("was recycled while this scan", |p| {
            let mut o = crate::format::DataOpaque::read(p);
            o.prev = FIRST_DIR_BLOCK;
            o.write(p);
        }),
    ];
    for (want, corrupt) in cases {
        let rel = MemRelation::new();
        build(&rel, &rows, nb, 3, 1000);
        let dir = Directory::read(&rel).unwrap();
        let block = dir.tails[0];
        corrupt(&mut rel.write(block));
        let msg = scan_panic(&rel, dir.centroid(0));
        assert!(msg.contains(want), "{want}: {msg}");
        let vacuum = crate::vacuum::bulk_delete(&rel, &mut |_| false).unwrap_err();
        let inserted = insert(
            &rel,
            &dir.meta,
            &dir.centroids,
            dir.centroid(0),
            tid(9999),
            &mut Vec::new(),
        );
        let problems = verify(&rel, false).unwrap().problems;
        if want.starts_with("was recycled") {
            // The tail is intact; the link it holds leads to the directory.
            assert_eq!(
                vacuum,
                FormatError::NotDataPage {
                    block: FIRST_DIR_BLOCK
                }
            );
            assert!(
                problems.iter().any(|p| p.contains("link to block 1")),
                "{problems:?}"
            );
            continue;
        }
        assert!(
            matches!(&vacuum, FormatError::BadField { block: b, .. } if *b == block),
            "{vacuum:?}"
        );
        assert!(vacuum.to_string().contains(want), "{want}: {vacuum}");
        assert_eq!(inserted, Err(vacuum));
        assert!(!problems.is_empty());
    }
}

/// A chain of list pages that leads back into itself (only corruption makes one) ends a scan
/// and VACUUM with a typed error instead of walking it forever (or, in VACUUM, waiting for a
/// lock it holds itself): through the tail, through a page the walk keeps locked, and through
/// a page it does not.
#[test]
fn a_cycle_in_a_list_chain_is_a_format_error_not_an_endless_walk() {
    use crate::format::{DataOpaque, FormatError};
    crate::testutil::within_seconds(120, || {
        let mut rng = SmallRng::seed_from_u64(5);
        let nb = 8;
        let codes = uniform(&mut rng, 3000, nb);
        let rows = rows_of(&codes);
        // (which page of the chain, newest first, links back to which)
        for (from, to) in [(3, 0), (3, 3), (3, 1)] {
            let rel = MemRelation::new();
            build(&rel, &rows, nb, 1, 1000);
            let dir = Directory::read(&rel).unwrap();
            let mut chain = vec![dir.tails[0]];
            loop {
                let prev = DataOpaque::read(&rel.read(*chain.last().unwrap())).prev;
                if prev == INVALID_BLOCK {
                    break;
                }
                chain.push(prev);
            }
            assert!(chain.len() > from, "{chain:?}");
            {
                let mut p = rel.write(chain[from]);
                let mut o = DataOpaque::read(&p);
                o.prev = chain[to];
                o.write(&mut p);
            }
            let msg = crate::testutil::scan_failure(
                &rel,
                crate::testutil::query(dir.centroid(0), u32::MAX),
            );
            assert!(msg.contains("leads back to itself"), "{msg}");
            let vacuum = bulk_delete(&rel, &mut |_| false).unwrap_err();
            assert!(
                matches!(vacuum, FormatError::BadPage { why, .. } if why.contains("leads back")),
                "{vacuum:?}"
            );
            assert!(!verify(&rel, false).unwrap().problems.is_empty());
        }
    });
}

/// A directory page whose header puts the special space where the records are is reported,
/// not sliced.
#[test]
fn a_directory_page_with_a_bad_header_is_a_format_error() {
    use crate::format::{FormatError, FIRST_DIR_BLOCK};
    let mut rng = SmallRng::seed_from_u64(6);
    let codes = uniform(&mut rng, 200, 8);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows, 8, 3, 1000);
    let dir = Directory::read(&rel).unwrap();
    rel.write(FIRST_DIR_BLOCK).0[16..18].copy_from_slice(&40u16.to_ne_bytes());
    let e = Directory::read(&rel).unwrap_err();
    assert!(
        matches!(
            &e,
            FormatError::BadField {
                block: FIRST_DIR_BLOCK,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(bulk_delete(&rel, &mut |_| false).unwrap_err(), e);
    let inserted = insert(
        &rel,
        &dir.meta,
        &dir.centroids,
        dir.centroid(0),
        tid(9999),
        &mut Vec::new(),
    );
    assert_eq!(inserted, Err(e));
}
