//! The contract both strategies keep, as one suite run per strategy ([`contract_suite!`] in
//! each strategy's tests): exact k-NN and radius searches against brute force at every code
//! length, inserts, deletes and VACUUM, filters, empty indexes, crash images and scans whose
//! pages were recycled under them. Everything goes through the strategy-blind verbs
//! ([`crate::build`], [`crate::insert`], [`crate::vacuum`], [`crate::verify`]); a case's
//! strategy parameters (`lists`, `substrings`) come from [`params`].

use crate::build::Build;
use crate::format::{DataOpaque, Strategy, Tid};
use crate::open::open;
use crate::options::{Options, Requested};
use crate::relation::{MemRelation, Relation};
use crate::spill::MemSpill;
use crate::testutil::{
    check_filters, check_query, check_verify, clustered, insert_rows, live_except, live_of,
    multilabel, queries, query, rows_of, tid, uniform,
};
use crate::vacuum::{bulk_delete, cleanup};
use crate::verify::verify;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashSet;

/// Memory of a build or a merge: small enough that lists flush several batches.
const BUDGET: usize = 1 << 20;

/// The options of an index of strategy `s` with its parameter `param` (lists: the number of
/// lists, substrings: the number of substrings; 0: the default).
pub(crate) fn options(s: Strategy, param: usize) -> Options {
    match s {
        Strategy::Lists => Options {
            strategy: Requested::Lists,
            lists: param,
            substrings: 0,
        },
        Strategy::Substrings => Options {
            strategy: Requested::Substrings,
            lists: 0,
            substrings: param as u32,
        },
    }
}

/// `lists` for a lists index, the default for substring tables.
fn lists_only(s: Strategy, lists: usize) -> usize {
    if s == Strategy::Lists {
        lists
    } else {
        0
    }
}

/// The parameters the exactness test builds with at case number `case` for codes of `nb`
/// bytes: the default always, and for substring tables one of 1 or 4 substrings in turn (the
/// full cross product is slow and adds nothing the rotation misses).
pub(crate) fn params(s: Strategy, nb: usize, case: usize) -> Vec<usize> {
    match s {
        Strategy::Lists => vec![0],
        Strategy::Substrings => vec![0, [1, 4.min(nb * 8)][case % 2]],
    }
}

/// Builds `rows` (codes of `nb` bytes) through both passes, as CREATE INDEX does.
pub(crate) fn build(rel: &MemRelation, rows: &[(Vec<u8>, Tid)], nb: usize, options: Options) {
    let mut b = Build::new(rel, &MemSpill, BUDGET, nb, options);
    for (c, t) in rows {
        b.sample(Some(c), *t).unwrap();
    }
    if b.choose() {
        for (c, t) in rows {
            b.add(c, *t).unwrap();
        }
    }
    let s = b.finish(&mut |_| {}).unwrap();
    assert_eq!(s.rows, rows.len() as u64);
    assert_eq!(Some(s.strategy), strategy_of(options.strategy));
}

fn strategy_of(r: Requested) -> Option<Strategy> {
    match r {
        Requested::Lists => Some(Strategy::Lists),
        Requested::Substrings => Some(Strategy::Substrings),
        Requested::Auto => None,
    }
}

/// Uniform, clustered (many duplicates) and mixed (half multi-label, half uniform) codes.
fn codes_of_kind(rng: &mut SmallRng, kind: usize, n: usize, nb: usize) -> Vec<Vec<u8>> {
    match kind {
        0 => uniform(rng, n, nb),
        1 => clustered(rng, n, nb, 10, 0.04),
        _ => {
            let mut c = multilabel(rng, n / 2, nb, 12, 0.1);
            c.extend(uniform(rng, n / 2, nb));
            c
        }
    }
}

pub(crate) fn exact_at_every_length(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(13);
    let radii: Vec<u32> = (0..=16).collect();
    let mut case = 0;
    for nb in [1usize, 2, 4, 8, 16, 32] {
        for kind in 0..3 {
            let codes = codes_of_kind(&mut rng, kind, 2500, nb);
            let rows = rows_of(&codes);
            let live = live_of(&rows);
            for param in params(s, nb, case) {
                let rel = MemRelation::new();
                build(&rel, &rows, nb, options(s, param));
                check_verify(&rel, &live);
                // Stored codes (distance 0 exists), perturbed ones and a random one.
                for q in queries(&mut rng, &codes, nb) {
                    check_query(&rel, &live, &q, &radii);
                }
            }
            case += 1;
        }
    }
}

/// Rows inserted after a build and into an index built empty, in batches of several sizes
/// (some far from everything the build saw), are all found.
pub(crate) fn inserts_after_build_and_into_an_empty_index(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(5);
    let nb = 8;
    let mut codes = clustered(&mut rng, 4000, nb, 8, 0.05);
    for c in codes.iter_mut().step_by(50) {
        *c = (0..nb).map(|_| rng.gen()).collect();
    }
    let rows = rows_of(&codes);
    for split in [1500, 0] {
        let rel = MemRelation::new();
        build(&rel, &rows[..split], nb, options(s, 0));
        let mut at = split;
        for size in [1usize, 7, 300, 700, 700] {
            insert_rows(&rel, &rows[at..at + size]);
            at += size;
        }
        insert_rows(&rel, &rows[at..]);
        let live = live_of(&rows);
        check_verify(&rel, &live);
        for i in 0..5 {
            check_query(&rel, &live, &codes[i * 700], &[0, 2, 4, 5, 8, 9]);
        }
    }
}

/// VACUUM removes the dead rows (from what the build wrote and what was inserted since),
/// cleanup leaves the rest exact, and the pages it frees are recycled once no snapshot can
/// reach them and reused by inserts.
pub(crate) fn vacuum_removes_dead_rows_and_recycles_pages(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(9);
    let nb = 8;
    let codes = clustered(&mut rng, 6000, nb, 6, 0.06);
    let rows = rows_of(&codes);
    let rel = MemRelation::new();
    build(&rel, &rows[..5000], nb, options(s, lists_only(s, 20)));
    insert_rows(&rel, &rows[5000..]);
    let before = verify(&rel, &MemSpill, BUDGET, false).unwrap();
    // About 90% of the rows, whole pages' worth (a list's entries are sorted by code).
    let dead: HashSet<Tid> = rows
        .iter()
        .filter(|(c, _)| c[0] < 230)
        .map(|r| r.1)
        .collect();
    let stats = bulk_delete(&rel, &mut |t| dead.contains(&t)).unwrap();
    assert_eq!(stats.tids_removed, dead.len() as u64);
    assert_eq!(stats.tids_remaining, (rows.len() - dead.len()) as u64);
    let live = live_except(&rows, &dead);
    check_verify(&rel, &live);
    let after = verify(&rel, &MemSpill, BUDGET, false).unwrap();
    match s {
        Strategy::Lists => {
            assert!(stats.pages_unlinked > 0, "{stats:?}");
            assert!(after.data_pages < before.data_pages);
            assert!(after.max_radius <= before.max_radius);
        }
        Strategy::Substrings => assert!(after.tombstones > 0),
    }
    for q in queries(&mut rng, &codes, nb) {
        check_query(&rel, &live, &q, &[0, 3, 6, 10]);
    }
    // Deleting again finds nothing new.
    let again = bulk_delete(&rel, &mut |t| dead.contains(&t)).unwrap();
    assert_eq!(again.tids_removed, 0);
    // Freed pages are recycled only once no snapshot can reach them.
    assert_eq!(stats.pages_recycled, 0);
    let c = cleanup(&rel, &MemSpill, BUDGET, 0, &mut || {}).unwrap();
    if s == Strategy::Substrings {
        let m = c.merge.expect("many tombstones");
        assert_eq!(m.rows, live.len() as u64);
        assert_eq!(
            verify(&rel, &MemSpill, BUDGET, false).unwrap().tombstones,
            0
        );
    }
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[0], &[0, 5, 20]);
    rel.horizon.set(u64::MAX);
    let c = cleanup(&rel, &MemSpill, BUDGET, 0, &mut || {}).unwrap();
    assert!(c.pages_recycled > 0, "{c:?}");
    if s == Strategy::Lists {
        assert_eq!(c.pages_recycled, stats.pages_unlinked);
    }
    let free_before = rel.free_pages().len();
    assert!(free_before > 0);
    // Inserts reuse recycled pages before extending the relation.
    let mut live = live;
    let more: Vec<(Vec<u8>, Tid)> = (0..20_000)
        .map(|i| ((0..nb).map(|_| rng.gen()).collect(), tid(100_000 + i)))
        .collect();
    for chunk in more.chunks(500) {
        insert_rows(&rel, chunk);
    }
    live.extend(more.iter().map(|(c, t)| (*t, c.clone())));
    assert!(rel.free_pages().len() < free_before);
    check_verify(&rel, &live);
    check_query(&rel, &live, &codes[0], &[0, 5, 20]);
}

/// A radius search with a second radius condition, on clustered and multi-label codes.
pub(crate) fn filters_and_a_radius_with_knn(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(19);
    let nb = 4;
    for codes in [
        clustered(&mut rng, 2000, nb, 5, 0.05),
        multilabel(&mut rng, 3000, nb, 8, 0.05),
    ] {
        let rows = rows_of(&codes);
        let rel = MemRelation::new();
        build(&rel, &rows, nb, options(s, lists_only(s, 30)));
        check_filters(&rel, &rows, &codes[7], &codes[8]);
    }
}

/// The extension builds an unlogged index's init fork in a `MemRelation::with_capacity(4)`.
pub(crate) fn empty_indexes_fit_the_init_fork(s: Strategy) {
    let most = match s {
        Strategy::Lists => 4,
        Strategy::Substrings => 1,
    };
    for nb in [1usize, 8, 512] {
        let m = MemRelation::with_capacity(4);
        assert_eq!(crate::build::build_empty(&m, nb, options(s, 0).strategy), s);
        assert!(m.nblocks() <= most, "{} pages for {nb} bytes", m.nblocks());
    }
}

/// What a hot standby without `hot_standby_feedback` can do: replay VACUUM and the reuse of
/// pages under a scan that still follows them. The scan must fail (40001 in PostgreSQL),
/// never return rows from pages that are no longer the index's.
pub(crate) fn a_scan_whose_pages_were_recycled_under_it_fails(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(9);
    let nb = 8;
    let codes = uniform(&mut rng, 3000, nb);
    let rel = MemRelation::new();
    build(&rel, &rows_of(&codes), nb, options(s, 0));
    let mut search = crate::search::Search::new(open(&rel).unwrap(), query(&codes[0], 3)).unwrap();
    for b in 1..rel.nblocks() {
        if DataOpaque::is_any_data_page(&rel.read(b)) {
            *rel.write(b) = *crate::page::Page::zeroed();
        }
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| search.next(&rel)));
    let e = r.expect_err("the scan fails");
    let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("was recycled while this scan was reading the index"),
        "{msg}"
    );
}

/// What crash recovery rebuilds after each record of a VACUUM (bulk delete, then cleanup):
/// mih_verify finds nothing wrong, and the index returns the rows it held.
pub(crate) fn a_crash_anywhere_in_vacuum_leaves_counts_that_match_the_pages(s: Strategy) {
    let mut rng = SmallRng::seed_from_u64(21);
    let nb = 8;
    let codes = clustered(&mut rng, 3000, nb, 6, 0.06);
    let rows = rows_of(&codes);
    let dead: HashSet<Tid> = rows.iter().step_by(7).map(|r| r.1).collect();
    let vacuum = |rel: &MemRelation| {
        bulk_delete(rel, &mut |t| dead.contains(&t)).unwrap();
        let c = cleanup(rel, &MemSpill, BUDGET, 0, &mut || {}).unwrap();
        assert!(s == Strategy::Lists || c.merge.is_some(), "a merge ran");
    };
    let fresh = || {
        let rel = MemRelation::new();
        build(&rel, &rows[..1500], nb, options(s, 0));
        insert_rows(&rel, &rows[1500..]);
        rel
    };
    let mut crashes = 0;
    for k in 1.. {
        let rel = fresh();
        rel.crash_after(k);
        vacuum(&rel);
        let Some(image) = rel.crash_image() else {
            break;
        };
        let report = verify(&image, &MemSpill, BUDGET, false).unwrap();
        assert!(
            report.problems.is_empty(),
            "crash after record {k}: {:?}",
            report.problems
        );
        crashes += 1;
    }
    assert!(crashes > 10, "{crashes} crash points");
}

/// One `#[test]` per contract test, for the strategy `$s`.
macro_rules! contract_suite {
    ($s:expr) => {
        #[test]
        fn exact_on_uniform_clustered_and_mixed_codes_of_every_length() {
            crate::suite::exact_at_every_length($s)
        }
        #[test]
        fn inserts_after_build_and_into_an_empty_index() {
            crate::suite::inserts_after_build_and_into_an_empty_index($s)
        }
        #[test]
        fn vacuum_removes_dead_rows_and_recycles_pages() {
            crate::suite::vacuum_removes_dead_rows_and_recycles_pages($s)
        }
        #[test]
        fn filters_and_a_radius_with_knn() {
            crate::suite::filters_and_a_radius_with_knn($s)
        }
        #[test]
        fn empty_indexes_fit_the_init_fork() {
            crate::suite::empty_indexes_fit_the_init_fork($s)
        }
        #[test]
        fn a_scan_whose_pages_were_recycled_under_it_fails() {
            crate::suite::a_scan_whose_pages_were_recycled_under_it_fails($s)
        }
        #[test]
        fn a_crash_anywhere_in_vacuum_leaves_counts_that_match_the_pages() {
            crate::suite::a_crash_anywhere_in_vacuum_leaves_counts_that_match_the_pages($s)
        }
    };
}
pub(crate) use contract_suite;
