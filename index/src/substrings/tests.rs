//! Exactness of substring tables against brute force on an in-memory relation: uniform,
//! clustered and mixed codes of 8 to 256 bits, k-NN with ties and radii 0..16, through the
//! tail, tombstones, merges (also with sorts spilled to "disk"), and interrupted merges.

use crate::format::{Tid, INVALID_BLOCK};
use crate::open::{open, Opened};
use crate::relation::{MemRelation, Relation};
use crate::search::Search;
use crate::spill::MemSpill;
use crate::substrings::build::{build, build_empty, tests::build_as_format_3, VecRows};
use crate::substrings::layout::Special;
use crate::substrings::vacuum::bulk_delete;
use crate::substrings::vacuum::{merge, reclaim};
use crate::testutil::{
    check_query, check_verify, insert_rows, live_except, live_of, multilabel, queries, query,
    rows_of, search_all, split_rows, tid, uniform,
};
use crate::verify::verify;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::BTreeMap;

/// The substring tables of `rel` as a scan reads them.
fn runs_of(rel: &MemRelation) -> crate::substrings::runs::Runs {
    let Opened::Substrings(runs) = open(rel).unwrap() else {
        panic!("substring tables")
    };
    runs
}

fn build_from(rel: &MemRelation, rows: &[(Vec<u8>, Tid)], nb: usize, m: u32, budget: usize) {
    let mut sorted = rows.to_vec();
    sorted.sort();
    build(
        rel,
        &MemSpill,
        budget,
        nb,
        m,
        sorted.len() as u64,
        &mut VecRows::new(&sorted),
        &mut || {},
    );
}

#[test]
fn small_radii_probe_the_tables_and_large_k_switches_to_a_linear_pass() {
    let mut rng = SmallRng::seed_from_u64(3);
    let nb = 8;
    let codes = uniform(&mut rng, 60_000, nb);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build_from(&rel, &rows, nb, 0, 1 << 24);
    let runs = runs_of(&rel);
    assert_eq!(runs.m(), 3);
    let table0_pages = runs.table(0).rec_pages(runs.cap(0));
    // Radius 4 around a stored code: a handful of slots, no linear pass.
    let (got, stats) = search_all(&rel, query(&codes[7], 4));
    assert!(got.iter().any(|r| r.0 == tid(7)));
    assert!(!stats.switched_to_linear, "{stats:?}");
    assert!(
        stats.pages_read * 3 < table0_pages,
        "{stats:?} vs {table0_pages} pages"
    );
    // Every row in order: the tables give up for a linear pass.
    let (all, stats) = search_all(&rel, query(&codes[7], u32::MAX));
    assert_eq!(all.len(), codes.len());
    assert!(
        stats.switched_to_linear && stats.linear_passes >= 1,
        "{stats:?}"
    );
}

#[test]
fn multilabel_neighbours_are_found_in_the_tables() {
    let mut rng = SmallRng::seed_from_u64(5);
    let nb = 8;
    let codes = multilabel(&mut rng, 40_000, nb, 80, 0.1);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build_from(&rel, &rows, nb, 0, 1 << 24);
    let live = live_of(&rows);
    for q in queries(&mut rng, &codes, nb).into_iter().take(3) {
        check_query(&rel, &live, &q, &[0, 3, 8]);
    }
}

#[test]
fn inserts_go_to_the_tail_and_merges_fold_them_in() {
    let mut rng = SmallRng::seed_from_u64(7);
    for nb in [2usize, 8, 16] {
        let codes = multilabel(&mut rng, 6000, nb, 20, 0.08);
        let rows = rows_of(&codes);
        let rel = MemRelation::new();
        build_from(&rel, &rows[..2000], nb, 0, 1 << 20);
        let mut live = live_of(&rows[..2000]);
        // Batches of several sizes, some spanning pages.
        let mut at = 2000;
        for size in [1usize, 7, 300, 1692] {
            let batch = &rows[at..at + size];
            insert_rows(&rel, batch);
            for (c, t) in batch {
                live.insert(*t, c.clone());
            }
            at += size;
        }
        check_verify(&rel, &live);
        let report = verify(&rel, &MemSpill, 1 << 20, false).unwrap();
        assert_eq!(report.tail_rows, 2000);
        for q in queries(&mut rng, &codes, nb).into_iter().take(3) {
            check_query(&rel, &live, &q, &[0, 2, 5, 9]);
        }
        // A merge folds the tail in (sorts spilled: a tiny memory budget).
        let stats = merge(&rel, &MemSpill, 40_000, 0, false, &mut || {})
            .unwrap()
            .expect("the tail is large");
        assert_eq!((stats.rows, stats.tail_rows), (4000, 2000));
        let report = verify(&rel, &MemSpill, 1 << 20, false).unwrap();
        assert_eq!((report.tail_rows, report.generation), (0, 2));
        check_verify(&rel, &live);
        for q in queries(&mut rng, &codes, nb).into_iter().take(3) {
            check_query(&rel, &live, &q, &[0, 4, 12]);
        }
        // Nothing to merge now.
        assert_eq!(
            merge(&rel, &MemSpill, 1 << 20, 0, false, &mut || {}).unwrap(),
            None
        );
        // The old generation's pages are recycled once no snapshot can see them, and reused.
        assert_eq!(reclaim(&rel).unwrap(), 0);
        rel.horizon.set(u64::MAX);
        assert!(reclaim(&rel).unwrap() > 0);
        let free = rel.free_pages().len();
        let nblocks = rel.nblocks();
        let batch = &rows[at..];
        insert_rows(&rel, batch);
        for (c, t) in batch {
            live.insert(*t, c.clone());
        }
        let m = merge(&rel, &MemSpill, 1 << 20, 0, true, &mut || {})
            .unwrap()
            .expect("forced");
        assert!(rel.free_pages().len() < free, "recycled pages were reused");
        let grown = (rel.nblocks() - nblocks) as u64;
        assert!(
            grown < m.pages_written,
            "{nblocks} -> {} blocks for {m:?}",
            rel.nblocks()
        );
        check_verify(&rel, &live);
    }
}

#[test]
fn an_index_built_empty_takes_rows_in_its_tail_and_becomes_tables_at_the_first_merge() {
    let mut rng = SmallRng::seed_from_u64(11);
    let nb = 8;
    let rel = MemRelation::new();
    build_empty(&rel, nb);
    let codes = uniform(&mut rng, 3000, nb);
    let mut live = BTreeMap::new();
    for (i, chunk) in codes.chunks(700).enumerate() {
        let flat: Vec<u8> = chunk.iter().flatten().copied().collect();
        let tids: Vec<Tid> = (0..chunk.len()).map(|k| tid(i * 700 + k)).collect();
        crate::insert::insert_batch(&rel, &open(&rel).unwrap(), &flat, &tids, &mut Vec::new())
            .unwrap();
        for (k, c) in chunk.iter().enumerate() {
            live.insert(tid(i * 700 + k), c.clone());
        }
    }
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[5], &[0, 8, 16]);
    merge(&rel, &MemSpill, 1 << 20, 0, false, &mut || {})
        .unwrap()
        .expect("a tail and no tables");
    let runs = runs_of(&rel);
    assert_eq!(runs.m(), 3);
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[5], &[0, 8, 16]);
}

#[test]
fn an_interrupted_merge_leaves_a_valid_index_and_its_pages_are_reclaimed() {
    let mut rng = SmallRng::seed_from_u64(17);
    let nb = 8;
    let codes = uniform(&mut rng, 4000, nb);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build_from(&rel, &rows[..2000], nb, 0, 1 << 20);
    insert_rows(&rel, &rows[2000..]);
    let live = live_of(&rows);
    // A cancel request in the middle of writing the new tables.
    let mut calls = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        merge(&rel, &MemSpill, 1 << 20, 0, false, &mut || {
            calls += 1;
            if calls == 2 {
                panic!("canceling statement due to user request");
            }
        })
    }));
    assert!(r.is_err());
    // The tail is sealed, the old tables still in force: every row is still found.
    let runs = runs_of(&rel);
    assert_ne!(runs.sub.sealed, INVALID_BLOCK);
    assert_eq!(runs.sub.generation, 1);
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[3], &[0, 10]);
    // New inserts go to a new tail meanwhile.
    let extra = (vec![0xab; nb], tid(9999));
    crate::insert::insert_batch(
        &rel,
        &open(&rel).unwrap(),
        &extra.0,
        &[extra.1],
        &mut Vec::new(),
    )
    .unwrap();
    let mut live = live;
    live.insert(extra.1, extra.0.clone());
    check_verify(&rel, &live);
    // The next merge folds the sealed tail in (the new tail waits), and the pages the
    // interrupted one wrote are marked deleted and recycled later.
    let m = merge(&rel, &MemSpill, 1 << 20, 0, false, &mut || {})
        .unwrap()
        .expect("a sealed tail");
    assert_eq!(m.tail_rows, 2000);
    check_verify(&rel, &live);
    rel.horizon.set(u64::MAX);
    let recycled = reclaim(&rel).unwrap();
    assert!(
        recycled as usize >= m.pages_retired as usize,
        "{recycled} < {m:?}"
    );
    check_query(&rel, &live, &codes[3], &[0, 10]);
}

/// An insert that wrote new tail pages and then crashed (or failed) before linking them
/// leaves orphans: VACUUM must leave them while their insert may still link them, then mark
/// them deleted and recycle them, never touching the linked tail.
#[test]
fn orphaned_tail_pages_are_reclaimed_once_no_insert_can_link_them() {
    let mut rng = SmallRng::seed_from_u64(11);
    let nb = 8;
    let codes = uniform(&mut rng, 4000, nb);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build_from(&rel, &rows[..2000], nb, 0, 1 << 20);
    insert_rows(&rel, &rows[2000..3000]);
    let live = live_of(&rows[..3000]);
    // The crashed insert: its pages are written, the metapage never learns of them.
    let runs = runs_of(&rel);
    let (lost_codes, lost_tids) = split_rows(&rows[3000..]);
    let newest = crate::substrings::insert::fill_new_pages(
        &rel,
        INVALID_BLOCK,
        runs.sub.generation,
        nb,
        &lost_codes,
        &lost_tids,
        0,
    );
    let mut orphans = Vec::new();
    let mut at = newest;
    while at != INVALID_BLOCK {
        orphans.push(at);
        at = Special::read(&rel.read(at)).unwrap().prev;
    }
    assert!(orphans.len() >= 2, "{orphans:?}");
    let deleted = |b: u32| Special::read(&rel.read(b)).unwrap().is_deleted();
    // While a transaction as old as the pages runs, their insert may still link them.
    rel.horizon.set(rel.next_xid());
    reclaim(&rel).unwrap();
    assert!(orphans.iter().all(|&b| !deleted(b)));
    // Once every transaction that saw them made is over, they are orphans: marked deleted,
    // then recycled; the linked tail keeps every row.
    rel.advance_xid(10);
    rel.horizon.set(rel.next_xid());
    reclaim(&rel).unwrap();
    assert!(orphans.iter().all(|&b| deleted(b)));
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[2500], &[0, 8]);
    rel.advance_xid(10);
    rel.horizon.set(rel.next_xid());
    reclaim(&rel).unwrap();
    let free = rel.free_pages();
    assert!(
        orphans.iter().all(|b| free.contains(b)),
        "{orphans:?} {free:?}"
    );
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[2500], &[0, 8]);
}

crate::suite::contract_suite!(crate::format::Strategy::Substrings);

/// Bytes on a substring page that cannot be what the format says reach every verb as a
/// [`FormatError`] (PostgreSQL: index corrupted, REINDEX), never as a panic of its own or as
/// rows read from the wrong place: a tail page's count beyond its capacity, header, page id
/// or kind; a records page's count; a slot range beyond its table. A well-formed page of
/// another generation where a scan expects one of its own is, for a scan, a page recycled
/// under it (40001), and corruption for the other verbs. Inserts only read the tail.
#[test]
fn a_corrupt_substring_page_reaches_every_verb_as_a_format_error() {
    use crate::format::FormatError;
    use crate::page::{Page, PAGE_SIZE};
    use crate::substrings::layout::{capacity, init_page, Kind, SPECIAL_SIZE};
    let mut rng = SmallRng::seed_from_u64(12);
    let nb = 8;
    let codes = uniform(&mut rng, 5000, nb);
    let rows = rows_of(&codes);
    const SP: usize = PAGE_SIZE - SPECIAL_SIZE;
    #[derive(Clone, Copy, PartialEq)]
    enum Target {
        Tail,
        Records,
        Slot,
    }
    type Corrupt = fn(&mut Page);
    let cases: [(&str, Target, Corrupt); 7] = [
        (
            "the page's count is 582, expected 0 to 581",
            Target::Tail,
            |p| {
                let mut s = Special::read(p).unwrap();
                s.count = capacity(8, true) as u32 + 1;
                s.write(p);
            },
        ),
        ("pd_special is 9000", Target::Tail, |p| {
            p.0[16..18].copy_from_slice(&9000u16.to_ne_bytes())
        }),
        ("the page id is 0x1234", Target::Tail, |p| {
            p.0[SP + 6..SP + 8].copy_from_slice(&0x1234u16.to_ne_bytes())
        }),
        ("the page kind is 9", Target::Tail, |p| p.0[SP + 20] = 9),
        ("the page's count is 7, expected", Target::Records, |p| {
            let mut s = Special::read(p).unwrap();
            s.count = 7;
            s.write(p);
        }),
        ("a slot's record range is", Target::Slot, |_| {}),
        ("was recycled while this scan", Target::Records, |p| {
            let g = Special::read(p).unwrap().generation;
            init_page(p, Kind::Records, 0, g + 1, INVALID_BLOCK);
        }),
    ];
    for (want, target, corrupt) in cases {
        let rel = MemRelation::new();
        build_from(&rel, &rows[..4000], nb, 0, 1 << 20);
        insert_rows(&rel, &rows[4000..]);
        let runs = runs_of(&rel);
        let t0 = *runs.table(0);
        let q = &codes[0];
        let block = match target {
            Target::Tail => runs.sub.tail,
            Target::Records => {
                // The page of the query's own rows, which every scan reads.
                let slot = crate::substrings::plan::slot_of(q, t0.sub, t0.slot_bits);
                let (a, _) = runs.slot_ranges(&rel, 0, &[slot]).unwrap()[0];
                runs.rec_block(0, a as usize / runs.cap(0))
            }
            Target::Slot => {
                let slot = crate::substrings::plan::slot_of(q, t0.sub, t0.slot_bits);
                let (block, i) = runs.slot_location(0, slot as usize + 1);
                crate::substrings::layout::set_u32_at(&mut rel.write(block), i, t0.records + 7);
                block
            }
        };
        corrupt(&mut rel.write(block));
        // Both read the query's slot of table 0 first (pricing the stages), its records and
        // the tail.
        let msg = crate::testutil::scan_failure(&rel, query(q, 0));
        assert!(msg.contains(want), "{want}: {msg}");
        let msg = crate::testutil::scan_failure(&rel, query(q, u32::MAX));
        assert!(msg.contains(want), "{want}: {msg}");
        let problems = verify(&rel, &MemSpill, 1 << 20, false).unwrap().problems;
        assert!(!problems.is_empty(), "{want}");
        let is_bad =
            |e: &FormatError| matches!(e, FormatError::BadField { block: b, .. } if *b == block);
        let vacuum = crate::vacuum::bulk_delete(&rel, &mut |_| false);
        let (c, t) = split_rows(&rows[..1]);
        let inserted =
            crate::insert::insert_batch(&rel, &open(&rel).unwrap(), &c, &t, &mut Vec::new());
        let merged = merge(&rel, &MemSpill, 1 << 20, 0, true, &mut || {});
        match target {
            Target::Tail => {
                let e = vacuum.unwrap_err();
                assert!(is_bad(&e), "{want}: {e:?}");
                assert!(e.to_string().contains(want), "{want}: {e}");
                assert_eq!(inserted, Err(e.clone()));
                assert_eq!(merged.unwrap_err(), e);
            }
            Target::Records => {
                let e = vacuum.unwrap_err();
                assert!(is_bad(&e), "{want}: {e:?}");
                inserted.unwrap();
                assert_eq!(merged.unwrap_err(), e);
            }
            Target::Slot => {
                // Neither VACUUM nor a merge reads the slots; the merge writes them anew.
                vacuum.unwrap();
                inserted.unwrap();
                merged.unwrap();
            }
        }
    }
}

/// A tail chain that leads back into itself ends a scan, VACUUM, a merge and verification
/// with a typed error instead of walking it forever.
#[test]
fn a_cycle_in_the_tail_chain_is_a_format_error_not_an_endless_walk() {
    use crate::format::FormatError;
    crate::testutil::within_seconds(120, || {
        let mut rng = SmallRng::seed_from_u64(13);
        let nb = 8;
        let codes = uniform(&mut rng, 4000, nb);
        let rows = rows_of(&codes);
        let rel = MemRelation::new();
        build_from(&rel, &rows[..2000], nb, 0, 1 << 20);
        insert_rows(&rel, &rows[2000..]);
        let runs = runs_of(&rel);
        let head = runs.sub.tail;
        let mut oldest = head;
        loop {
            let prev = Special::read(&rel.read(oldest)).unwrap().prev;
            if prev == INVALID_BLOCK {
                break;
            }
            oldest = prev;
        }
        assert_ne!(oldest, head);
        {
            let mut p = rel.write(oldest);
            let mut s = Special::read(&p).unwrap();
            s.prev = head;
            s.write(&mut p);
        }
        let msg = crate::testutil::scan_failure(&rel, query(&codes[0], u32::MAX));
        assert!(msg.contains("leads back to itself"), "{msg}");
        let cycle = |e: FormatError| matches!(e, FormatError::BadPage { why, .. } if why.contains("leads back"));
        assert!(cycle(
            crate::vacuum::bulk_delete(&rel, &mut |_| false).unwrap_err()
        ));
        assert!(cycle(
            merge(&rel, &MemSpill, 1 << 20, 0, true, &mut || {}).unwrap_err()
        ));
        let problems = verify(&rel, &MemSpill, 1 << 20, false).unwrap().problems;
        assert!(
            problems.iter().any(|p| p.contains("reached twice")),
            "{problems:?}"
        );
    });
}

/// Linear passes read table 0's codes pages (43% fewer pages than its records for 64-bit
/// codes) and keep positions, whose dead rows are skipped when returned; an index built
/// before the codes pages is read as it is, and its next merge writes them.
#[test]
fn codes_pages_serve_linear_passes_and_an_index_without_them_reads_as_before() {
    let mut rng = SmallRng::seed_from_u64(11);
    let nb = 8;
    let codes = uniform(&mut rng, 30_000, nb);
    let rows = rows_of(&codes);
    let dead: std::collections::HashSet<Tid> = rows.iter().step_by(3).map(|r| r.1).collect();
    let mut live = live_except(&rows, &dead);
    let mut pages = Vec::new();
    for with_codes_pages in [true, false] {
        let rel = MemRelation::new();
        build_as_format_3(!with_codes_pages);
        build_from(&rel, &rows, nb, 0, 1 << 24);
        build_as_format_3(false);
        let runs = runs_of(&rel);
        assert_eq!(runs.codes_pages() > 0, with_codes_pages);
        bulk_delete(&rel, &mut |t| dead.contains(&t)).unwrap();
        check_verify(&rel, &live);
        for q in queries(&mut rng, &codes, nb).into_iter().take(2) {
            check_query(&rel, &live, &q, &[0, 6, 12]);
        }
        // The ten nearest of a uniform code: the tables give up for one linear pass.
        let mut s = Search::new(open(&rel).unwrap(), query(&codes[5], u32::MAX)).unwrap();
        for _ in 0..10 {
            s.next(&rel).expect("ten rows");
        }
        assert_eq!(s.stats().linear_passes, 1, "{:?}", s.stats());
        pages.push(s.stats().pages_read);
        if !with_codes_pages {
            // The next merge writes them.
            let more = rows_of(&uniform(&mut rng, 3000, nb));
            let more: Vec<(Vec<u8>, Tid)> = more
                .into_iter()
                .map(|(c, t)| {
                    (
                        c,
                        tid(t.block as usize * 1000 + t.offset as usize + 100_000),
                    )
                })
                .collect();
            insert_rows(&rel, &more);
            live.extend(more.iter().map(|(c, t)| (*t, c.clone())));
            merge(&rel, &MemSpill, 1 << 24, 0, true, &mut || {})
                .unwrap()
                .expect("forced");
            let runs = runs_of(&rel);
            assert!(runs.codes_pages() > 0);
            check_verify(&rel, &live);
            for q in queries(&mut rng, &codes, nb).into_iter().take(2) {
                check_query(&rel, &live, &q, &[0, 6, 12]);
            }
        }
    }
    // The pass reads 30 codes pages instead of 52 records pages; the ten rows returned cost a
    // records page each for their TIDs.
    assert!(
        pages[0] + 10 <= pages[1],
        "pages read with codes pages / without: {pages:?}"
    );
}

/// `verify` compares the codes pages with table 0's records.
#[test]
fn verify_finds_a_code_changed_on_a_codes_page() {
    let mut rng = SmallRng::seed_from_u64(12);
    let nb = 16;
    let rows = rows_of(&uniform(&mut rng, 5000, nb));
    let rel = MemRelation::new();
    build_from(&rel, &rows, nb, 0, 1 << 24);
    let runs = runs_of(&rel);
    let block = runs.pages[runs.codes_first.expect("codes pages")];
    {
        let mut w = rel.write(block);
        w.contents_mut()[crate::substrings::layout::CODES_PAD + 3 * nb] ^= 0x10;
    }
    let report = verify(&rel, &MemSpill, 1 << 20, false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("1 codes differ from table 0's records")),
        "{:?}",
        report.problems
    );
    // A live codes page marked deleted is reported with its number.
    {
        let mut w = rel.write(runs.pages[runs.codes_first.unwrap() + 2]);
        let mut sp = Special::read(&w).unwrap();
        sp.flags |= crate::format::FLAG_DELETED;
        sp.write(&mut w);
    }
    let report = verify(&rel, &MemSpill, 1 << 20, false).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p == "table 0 codes page 2: it is marked deleted"),
        "{:?}",
        report.problems
    );
    // A pass trusts a codes page by the copy of its identification before the codes: one
    // that does not match its special space is corruption, not a page to read.
    {
        let mut w = rel.write(block);
        w.contents_mut()[4] ^= 1; // the generation's low byte
    }
    let failure = crate::testutil::scan_failure(&rel, query(&rows[0].0, u32::MAX));
    assert!(failure.contains("copy of its identification"), "{failure}");
    // Contents alone cannot make a codes page (a recycled page's first bytes may be codes
    // anyone inserted): the mark in the header, which no row writes, must be there too.
    {
        let mut w = rel.write(block);
        w.contents_mut()[4] ^= 1; // the copy right again
        w.set_prune_xid(0);
    }
    let failure = crate::testutil::scan_failure(&rel, query(&rows[0].0, u32::MAX));
    assert!(failure.contains("the codes page's mark"), "{failure}");
}

/// Scans may remember the page list between them: a later scan of the same generation reuses
/// it (and reads no map page), a merge's new generation is read afresh, and results stay
/// exact throughout.
#[test]
fn a_remembered_page_list_is_reused_within_a_generation_and_read_again_after_a_merge() {
    let mut rng = SmallRng::seed_from_u64(13);
    let nb = 8;
    let codes = multilabel(&mut rng, 20_000, nb, 40, 0.1);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build_from(&rel, &rows[..15_000], nb, 0, 1 << 24);
    rel.remember_page_list(true);
    let mut live = live_of(&rows[..15_000]);
    let q = queries(&mut rng, &codes, nb).remove(0);
    check_query(&rel, &live, &q, &[0, 4]);
    let first = rel.page_list().expect("remembered");
    let runs = runs_of(&rel);
    assert!(
        std::sync::Arc::ptr_eq(&runs.pages, &first.pages),
        "reused, not read again"
    );
    // A map page changed under the memo is not read while the generation is the same.
    let map = runs.sub.map_blocks[0];
    {
        let mut w = rel.write(map);
        crate::substrings::layout::set_u32_at(&mut w, 0, u32::MAX - 1);
    }
    check_query(&rel, &live, &q, &[0, 4]);
    // A merge writes a new generation, whose page list is read (and remembered) afresh.
    insert_rows(&rel, &rows[15_000..]);
    live.extend(rows[15_000..].iter().map(|(c, t)| (*t, c.clone())));
    merge(&rel, &MemSpill, 1 << 24, 0, true, &mut || {})
        .unwrap()
        .expect("forced");
    check_query(&rel, &live, &q, &[0, 4]);
    let second = rel.page_list().expect("remembered");
    assert_ne!(second.generation, first.generation);
    check_verify(&rel, &live);
}
