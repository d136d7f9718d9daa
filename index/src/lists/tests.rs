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
        );
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
        insert(&rel, &dir.meta, &dir.centroids, c, t2, &mut scratch);
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
