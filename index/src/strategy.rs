//! Choosing an index's strategy at build time, by measuring both on a sample of the codes.
//!
//! Lists (clusters with covering radii) are fastest when codes sit very close to a few
//! centres, as well-trained codes of single-label data do; substring tables (multi-index
//! hashing) are fast on every distribution, and the only fast choice for high-entropy codes
//! (multi-label codes, weak models, perceptual hashes). Which wins depends on how clustered
//! the codes are, so the build builds both over the sample in memory and runs the same k-NN
//! queries through each, counting pages read. The sample keeps the table's proportions: a
//! 10-NN query over the table is about a k-NN query over the sample with k scaled down.
//! Substring tables are chosen unless lists skip nearly every code (see [`LISTS_MAX_SHARE`]).

use crate::format::{Strategy, Tid};
use crate::lists::build::{default_lists, Builder};
use crate::lists::kmodes;
use crate::open::open;
use crate::relation::MemRelation;
use crate::search::{Query, Search};
use crate::spill::MemSpill;
use crate::substrings::build::{build as build_substrings, VecRows};

/// Queries run on each strategy.
const QUERIES: usize = 32;
/// k of the real queries the measurement stands for.
const K: u64 = 10;
/// Lists are chosen only when a query checks at most this share of the sample's codes. A
/// small sample flatters neither strategy's page counts the same way (a linear pass over the
/// sample is a few dozen pages, so substring tables seem no better than one), but the share of
/// codes the lists check is about the same in the sample and in the table, k scaled with it:
/// lists pay off only when they skip nearly everything.
const LISTS_MAX_SHARE: f64 = 1.0 / 16.0;
const KMODES_ITERATIONS: usize = 8;

/// What the user asked for (`WITH (strategy = ...)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    Auto,
    Lists,
    Substrings,
}

/// What the build will write.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub strategy: Strategy,
    /// Lists: the centroids (contiguous codes).
    pub centroids: Vec<u8>,
    /// The measurement, when both were measured: mean pages per query.
    pub lists_pages: Option<f64>,
    pub substrings_pages: Option<f64>,
}

/// Chooses the strategy for an index of `rows` rows from `sample` (contiguous codes of
/// `code_bytes`). `lists` and `substrings` are the options (0: default). `seed` makes it
/// reproducible; `check` runs in long loops.
#[allow(clippy::too_many_arguments)]
pub fn choose(
    sample: &[u8],
    code_bytes: usize,
    rows: u64,
    requested: Requested,
    lists: usize,
    substrings: u32,
    seed: u64,
    check: &mut dyn FnMut(),
) -> Choice {
    let nb = code_bytes;
    let n = sample.len() / nb;
    assert!(n > 0, "a sample to choose from");
    let want_lists = if lists == 0 {
        default_lists(rows)
    } else {
        lists
    };
    let centroids = |check: &mut dyn FnMut()| {
        kmodes::train(sample, nb, want_lists, KMODES_ITERATIONS, seed, check)
    };
    match requested {
        Requested::Lists => {
            return Choice {
                strategy: Strategy::Lists,
                centroids: centroids(check),
                lists_pages: None,
                substrings_pages: None,
            }
        }
        Requested::Substrings => {
            return Choice {
                strategy: Strategy::Substrings,
                centroids: Vec::new(),
                lists_pages: None,
                substrings_pages: None,
            }
        }
        Requested::Auto => {}
    }
    let c = centroids(check);
    let rows_of: Vec<(Vec<u8>, Tid)> = (0..n)
        .map(|i| {
            let t = Tid {
                block: (i / 100) as u32,
                offset: (i % 100 + 1) as u16,
            };
            (sample[i * nb..(i + 1) * nb].to_vec(), t)
        })
        .collect();
    // Lists over the sample, as many as the table would get, scaled to the sample's size.
    let sample_lists = ((c.len() / nb) as f64 * (n as f64 / rows.max(1) as f64).sqrt())
        .round()
        .max(1.0) as usize;
    let lists_rel = MemRelation::new();
    let lc = kmodes::train(sample, nb, sample_lists, KMODES_ITERATIONS, seed, check);
    let mut b = Builder::new(&lists_rel, lc, nb, 1 << 16);
    for (code, t) in &rows_of {
        b.add(code, *t);
    }
    b.finish();
    let subs_rel = MemRelation::new();
    let mut sorted = rows_of.clone();
    sorted.sort();
    let m = if substrings == 0 {
        crate::substrings::plan::default_substrings((nb * 8) as u32, rows)
    } else {
        substrings
    };
    build_substrings(
        &subs_rel,
        &MemSpill,
        usize::MAX / 4,
        nb,
        m,
        n as u64,
        &mut VecRows::new(&sorted),
        check,
    );
    // k over the sample for 10-NN over the table, plus the query itself (it is in the sample).
    let k = (K * n as u64).div_ceil(rows.max(1)).max(1) + 1;
    let step = (n / QUERIES).max(1);
    let mut cost = |rel: &MemRelation| {
        let mut pages = 0usize;
        let mut entries = 0usize;
        let mut queries = 0usize;
        for qi in (0..n).step_by(step).take(QUERIES) {
            check();
            let q = Query {
                code: sample[qi * nb..(qi + 1) * nb].to_vec(),
                max_distance: u32::MAX,
                filters: Vec::new(),
                nulls: false,
            };
            let mut s = Search::new(open(rel).expect("built just now"), q).expect("no NULLs");
            for _ in 0..k {
                if s.next(rel).is_none() {
                    break;
                }
            }
            pages += s.stats().pages_read;
            entries += s.stats().entries_checked;
            queries += 1;
        }
        (
            pages as f64 / queries as f64,
            entries as f64 / queries as f64 / n as f64,
        )
    };
    let (lists_pages, lists_share) = cost(&lists_rel);
    let (substrings_pages, _) = cost(&subs_rel);
    let strategy = if lists_share <= LISTS_MAX_SHARE && lists_pages < substrings_pages {
        Strategy::Lists
    } else {
        Strategy::Substrings
    };
    Choice {
        strategy,
        centroids: if strategy == Strategy::Lists {
            c
        } else {
            Vec::new()
        },
        lists_pages: Some(lists_pages),
        substrings_pages: Some(substrings_pages),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn sample_of(rng: &mut SmallRng, n: usize, centres: usize, p: f64, labels: usize) -> Vec<u8> {
        let cs: Vec<u64> = (0..centres).map(|_| rng.gen()).collect();
        (0..n)
            .flat_map(|_| {
                let k = rng.gen_range(1..=labels);
                let ls: Vec<u64> = (0..k).map(|_| cs[rng.gen_range(0..centres)]).collect();
                let mut c = 0u64;
                for bit in 0..64 {
                    let ones = ls.iter().filter(|l| *l >> bit & 1 == 1).count();
                    let mut v = 2 * ones > k || (2 * ones == k && ls[0] >> bit & 1 == 1);
                    if rng.gen_bool(p) {
                        v = !v;
                    }
                    c |= u64::from(v) << bit;
                }
                c.to_be_bytes()
            })
            .collect()
    }

    #[test]
    fn tight_clusters_choose_lists_and_high_entropy_codes_substrings() {
        let mut rng = SmallRng::seed_from_u64(1);
        let rows = 1_000_000;
        let tight = sample_of(&mut rng, 10_000, 20, 0.02, 1);
        let c = choose(&tight, 8, rows, Requested::Auto, 0, 0, 1, &mut || {});
        assert_eq!(c.strategy, Strategy::Lists, "{c:?}");
        assert!(!c.centroids.is_empty());
        let uniform: Vec<u8> = (0..10_000 * 8).map(|_| rng.gen()).collect();
        let c = choose(&uniform, 8, rows, Requested::Auto, 0, 0, 1, &mut || {});
        assert_eq!(c.strategy, Strategy::Substrings, "{c:?}");
        let multilabel = sample_of(&mut rng, 10_000, 80, 0.1, 3);
        let c = choose(&multilabel, 8, rows, Requested::Auto, 0, 0, 1, &mut || {});
        assert_eq!(
            c.strategy,
            Strategy::Substrings,
            "{:?} {:?}",
            c.lists_pages,
            c.substrings_pages
        );
        // Asked for: no measurement.
        let c = choose(&uniform, 8, rows, Requested::Lists, 7, 0, 1, &mut || {});
        assert_eq!(
            (c.strategy, c.centroids.len() / 8, c.lists_pages),
            (Strategy::Lists, 7, None)
        );
        let c = choose(&tight, 8, rows, Requested::Substrings, 0, 0, 1, &mut || {});
        assert_eq!((c.strategy, c.lists_pages), (Strategy::Substrings, None));
    }
}
