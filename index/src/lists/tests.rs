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
    check_filters, check_query, check_verify, clustered, live_except, live_of, rows_of, split_rows,
    tid, uniform,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

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
fn exact_on_random_and_clustered_codes_of_every_length() {
    let mut rng = SmallRng::seed_from_u64(11);
    for nb in [2usize, 4, 8, 16, 32] {
        for clustered_data in [false, true] {
            let n = 3000;
            let codes = if clustered_data {
                clustered(&mut rng, n, nb, 12, 0.04)
            } else {
                uniform(&mut rng, n, nb)
            };
            let rows = rows_of(&codes);
            let rel = MemRelation::new();
            build(&rel, &rows, nb, default_lists(n as u64), 700);
            let live = live_of(&rows);
            check_verify(&rel, &live);
            for qi in 0..6 {
                // Queries: stored codes (distance 0 exists), perturbed ones and random ones.
                let mut q = codes[rng.gen_range(0..n)].clone();
                if qi % 2 == 1 {
                    q[0] ^= 0b1010_0000;
                }
                if qi == 5 {
                    q = (0..nb).map(|_| rng.gen()).collect();
                }
                check_query(&rel, &live, &q, &(0..=12).collect::<Vec<_>>());
            }
        }
    }
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
fn inserts_after_build_and_into_an_empty_index() {
    let mut rng = SmallRng::seed_from_u64(5);
    let nb = 8;
    let codes = clustered(&mut rng, 4000, nb, 8, 0.05);
    for start_empty in [false, true] {
        let rel = MemRelation::new();
        let split = if start_empty { 0 } else { 1500 };
        let rows = rows_of(&codes);
        if start_empty {
            crate::lists::build::build_empty(&rel, nb);
        } else {
            build(&rel, &rows[..split], nb, 40, 1000);
        }
        let dir = Directory::read(&rel).unwrap();
        let mut scratch = Vec::new();
        // Some inserted codes far from every centroid: radii must grow.
        for (i, (c, t)) in rows[split..].iter().enumerate() {
            let c = if i % 50 == 0 {
                (0..nb).map(|_| rng.gen()).collect()
            } else {
                c.clone()
            };
            insert(&rel, &dir.meta, &dir.centroids, &c, *t, &mut scratch);
        }
        let mut live = live_of(&rows[..split]);
        // The expectation is what verify collects, checked here to hold every row.
        let report = verify(&rel, true).unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        live.clear();
        for (t, c) in report.contents {
            live.insert(t, c);
        }
        assert_eq!(live.len(), codes.len());
        for i in 0..5 {
            let q = codes[i * 700].clone();
            check_query(&rel, &live, &q, &[0, 2, 4, 8]);
        }
    }
}

#[test]
fn vacuum_removes_dead_unlinks_recycles_and_shrinks_radii() {
    let mut rng = SmallRng::seed_from_u64(9);
    let nb = 8;
    let codes = clustered(&mut rng, 6000, nb, 6, 0.06);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows, nb, 20, 2000);
    let before = verify(&rel, false).unwrap();
    // Delete about 90% of the rows, whole pages' worth (entries are sorted by code in a list).
    let dead: HashSet<Tid> = rows
        .iter()
        .filter(|(c, _)| c[0] < 230)
        .map(|r| r.1)
        .collect();
    let stats = bulk_delete(&rel, &mut |t| dead.contains(&t)).unwrap();
    assert_eq!(stats.tids_removed, dead.len() as u64);
    assert_eq!(stats.tids_remaining, (rows.len() - dead.len()) as u64);
    assert!(stats.pages_unlinked > 0, "{stats:?}");
    let live = live_except(&rows, &dead);
    check_verify(&rel, &live);
    let after = verify(&rel, false).unwrap();
    assert!(after.data_pages < before.data_pages);
    assert!(after.max_radius <= before.max_radius);
    let q = codes[0].clone();
    check_query(&rel, &live, &q, &[0, 3, 6, 10]);
    // Unlinked pages are recycled only once no snapshot can reach them.
    assert_eq!(stats.pages_recycled, 0);
    rel.horizon.set(rel.next_xid() + 1);
    let again = bulk_delete(&rel, &mut |_| false).unwrap();
    assert_eq!(again.pages_recycled, stats.pages_unlinked);
    let free_before = rel.free_pages().len();
    assert!(free_before > 0);
    // Inserts reuse recycled pages before extending the relation.
    let nblocks = rel.nblocks();
    let dir = Directory::read(&rel).unwrap();
    let mut scratch = Vec::new();
    let mut live = live;
    for i in 0..20_000 {
        let c: Vec<u8> = (0..nb).map(|_| rng.gen()).collect();
        let t = tid(100_000 + i);
        insert(&rel, &dir.meta, &dir.centroids, &c, t, &mut scratch);
        live.insert(t, c);
    }
    assert!(rel.free_pages().len() < free_before);
    assert!(rel.nblocks() >= nblocks);
    check_verify(&rel, &live);
    check_query(&rel, &live, &q, &[0, 5, 20]);
}

#[test]
fn filters_and_combined_radius_knn() {
    let mut rng = SmallRng::seed_from_u64(3);
    let nb = 4;
    let codes = clustered(&mut rng, 2000, nb, 5, 0.05);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows, nb, 30, 500);
    check_filters(&rel, &rows, &codes[7], &codes[8]);
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

/// The extension builds an unlogged index's init fork in a `MemRelation::with_capacity(4)`.
#[test]
fn empty_indexes_fit_four_pages() {
    for nb in [1usize, 8, 512] {
        let m = MemRelation::with_capacity(4);
        crate::lists::build::build_empty(&m, nb);
        assert!(m.nblocks() <= 4, "{} pages for {nb} bytes", m.nblocks());
    }
}
