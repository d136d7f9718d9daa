//! What the index tests share: reproducible codes of each kind, and checks of searches and
//! of verification against brute force over the live rows.

use crate::format::Tid;
use crate::open::open;
use crate::relation::MemRelation;
use crate::search::{Query, Search, SearchStats};
use crate::spill::MemSpill;
use crate::verify::verify;
use ics_codes::hamming::hamming;
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::{BTreeMap, HashSet};

pub(crate) fn tid(i: usize) -> Tid {
    Tid {
        block: (i / 100) as u32 + 1,
        offset: (i % 100 + 1) as u16,
    }
}

pub(crate) fn uniform(rng: &mut SmallRng, n: usize, nb: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| (0..nb).map(|_| rng.gen()).collect())
        .collect()
}

/// Codes the way multi-label learned codes look: the per-bit majority of 1-3 of `centres`
/// random centres (ties: the first centre), every bit flipped with probability `p`.
pub(crate) fn multilabel(
    rng: &mut SmallRng,
    n: usize,
    nb: usize,
    centres: usize,
    p: f64,
) -> Vec<Vec<u8>> {
    let cs = uniform(rng, centres, nb);
    (0..n)
        .map(|_| {
            let labels: Vec<usize> = (0..rng.gen_range(1..=3))
                .map(|_| rng.gen_range(0..centres))
                .collect();
            let mut c = vec![0u8; nb];
            for bit in 0..nb * 8 {
                let ones = labels
                    .iter()
                    .filter(|&&l| cs[l][bit / 8] & (0x80 >> (bit % 8)) != 0)
                    .count();
                let first = cs[labels[0]][bit / 8] & (0x80 >> (bit % 8)) != 0;
                let mut v = 2 * ones > labels.len() || (2 * ones == labels.len() && first);
                if rng.gen_bool(p) {
                    v = !v;
                }
                if v {
                    c[bit / 8] |= 0x80 >> (bit % 8);
                }
            }
            c
        })
        .collect()
}

/// Tight clusters with many exact duplicates.
pub(crate) fn clustered(
    rng: &mut SmallRng,
    n: usize,
    nb: usize,
    centres: usize,
    p: f64,
) -> Vec<Vec<u8>> {
    let cs = uniform(rng, centres, nb);
    (0..n)
        .map(|_| {
            let mut c = cs[rng.gen_range(0..centres)].clone();
            for bit in 0..nb * 8 {
                if rng.gen_bool(p) {
                    c[bit / 8] ^= 0x80 >> (bit % 8);
                }
            }
            c
        })
        .collect()
}

pub(crate) fn search_all(rel: &MemRelation, q: Query) -> (Vec<(Tid, u32)>, SearchStats) {
    let mut s = Search::new(open(rel).unwrap(), q).unwrap();
    let mut out = Vec::new();
    while let Some((t, d)) = s.next(rel) {
        out.push((t, d.expect("no NULL codes here")));
    }
    (out, s.stats().clone())
}

pub(crate) fn query(code: &[u8], max_distance: u32) -> Query {
    Query {
        code: code.to_vec(),
        max_distance,
        filters: vec![],
        nulls: false,
    }
}

/// k-NN (full ordered scan and first k) and radius searches against brute force over `live`.
pub(crate) fn check_query(
    rel: &MemRelation,
    live: &BTreeMap<Tid, Vec<u8>>,
    q: &[u8],
    radii: &[u32],
) {
    let mut truth: Vec<(u32, Tid)> = live.iter().map(|(t, c)| (hamming(q, c), *t)).collect();
    truth.sort();
    let (got, _) = search_all(rel, query(q, u32::MAX));
    assert_eq!(
        got.len(),
        truth.len(),
        "ordered scan returns every row once"
    );
    assert!(
        got.windows(2).all(|w| w[0].1 <= w[1].1),
        "distances must not decrease"
    );
    assert_eq!(
        got.iter().map(|r| r.0).collect::<HashSet<_>>().len(),
        got.len(),
        "no TID twice"
    );
    for (t, d) in &got {
        assert_eq!(*d, hamming(q, &live[t]), "reported distance is exact");
    }
    for k in [1usize, 10, 100] {
        let k = k.min(truth.len());
        if k == 0 {
            continue;
        }
        // A search asked for only k rows: the k-th distance matches (ties).
        let mut s = Search::new(open(rel).unwrap(), query(q, u32::MAX)).unwrap();
        let mut last = 0;
        for _ in 0..k {
            last = s.next(rel).expect("k rows").1.expect("a code");
        }
        assert_eq!(last, truth[k - 1].0, "k-th distance for k={k}");
    }
    for &r in radii {
        let want: HashSet<Tid> = truth.iter().filter(|(d, _)| *d <= r).map(|x| x.1).collect();
        let (got, _) = search_all(rel, query(q, r));
        let got_set: HashSet<Tid> = got.iter().map(|x| x.0).collect();
        assert_eq!(got.len(), got_set.len(), "radius {r}: no TID twice");
        assert_eq!(got_set, want, "radius {r}");
    }
}

pub(crate) fn check_verify(rel: &MemRelation, live: &BTreeMap<Tid, Vec<u8>>) {
    let report = verify(rel, &MemSpill, 1 << 20, true).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let mut contents = report.contents;
    contents.sort();
    let want: Vec<(Tid, Vec<u8>)> = live.iter().map(|(t, c)| (*t, c.clone())).collect();
    assert_eq!(contents, want);
}

pub(crate) fn queries(rng: &mut SmallRng, codes: &[Vec<u8>], nb: usize) -> Vec<Vec<u8>> {
    (0..5)
        .map(|qi| {
            let mut q = codes[rng.gen_range(0..codes.len())].clone();
            if qi % 2 == 1 {
                q[0] ^= 0b1010_0000;
            }
            if qi == 4 {
                q = (0..nb).map(|_| rng.gen()).collect();
            }
            q
        })
        .collect()
}

/// A radius search with a second radius condition returns exactly the rows that meet both,
/// in distance order.
pub(crate) fn check_filters(rel: &MemRelation, rows: &[(Vec<u8>, Tid)], q: &[u8], f: &[u8]) {
    let (got, _) = search_all(
        rel,
        Query {
            code: q.to_vec(),
            max_distance: 6,
            filters: vec![(f.to_vec(), 5)],
            nulls: false,
        },
    );
    let want: HashSet<Tid> = rows
        .iter()
        .filter(|(c, _)| hamming(q, c) <= 6 && hamming(f, c) <= 5)
        .map(|r| r.1)
        .collect();
    assert_eq!(got.iter().map(|r| r.0).collect::<HashSet<_>>(), want);
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1));
}

/// Index rows of `codes`: row `i` at [`tid`]`(i)`.
pub(crate) fn rows_of(codes: &[Vec<u8>]) -> Vec<(Vec<u8>, Tid)> {
    codes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), tid(i)))
        .collect()
}

/// The live rows of an index holding `rows`, as the checks expect them.
pub(crate) fn live_of(rows: &[(Vec<u8>, Tid)]) -> BTreeMap<Tid, Vec<u8>> {
    rows.iter().map(|(c, t)| (*t, c.clone())).collect()
}

/// The live rows of an index holding `rows` once the `dead` TIDs are deleted.
pub(crate) fn live_except(rows: &[(Vec<u8>, Tid)], dead: &HashSet<Tid>) -> BTreeMap<Tid, Vec<u8>> {
    rows.iter()
        .filter(|r| !dead.contains(&r.1))
        .map(|(c, t)| (*t, c.clone()))
        .collect()
}

/// `rows` as the insert functions take them: the codes one after another, and the TIDs.
pub(crate) fn split_rows(rows: &[(Vec<u8>, Tid)]) -> (Vec<u8>, Vec<Tid>) {
    (
        rows.iter().flat_map(|(c, _)| c.clone()).collect(),
        rows.iter().map(|r| r.1).collect(),
    )
}

/// Inserts `rows` through the strategy-agnostic insert, as `aminsert` does.
pub(crate) fn insert_rows(rel: &MemRelation, rows: &[(Vec<u8>, Tid)]) {
    let (codes, tids) = split_rows(rows);
    crate::insert::insert_batch(rel, &open(rel).unwrap(), &codes, &tids, &mut Vec::new()).unwrap();
}

/// The message a scan for `q` ends with: a scan reports an unreadable page by panicking in
/// [`MemRelation`] (as PostgreSQL's relation raises an error).
pub(crate) fn scan_failure(rel: &MemRelation, q: Query) -> String {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| search_all(rel, q)));
    let e = r.expect_err("the scan fails");
    e.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// Runs `f` on its own thread and fails the test if it takes longer than `secs`: for code
/// that, broken, would loop forever.
pub(crate) fn within_seconds(secs: u64, f: impl FnOnce() + Send + 'static) {
    let (done, wait) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match wait.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(()) => worker.join().unwrap(),
        // The worker panicked: fail with its message.
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("still running after {secs} s: a walk that does not end")
        }
    }
}
