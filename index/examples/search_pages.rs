//! Pages and codes a search reads, per strategy and data kind, on an in-memory index: the
//! page counts behind the SQL benchmark's latencies (`benches/sql/mih.sh`), without a server.
//!
//! `cargo run --release -p ics-index --example search_pages -- [rows] [queries]`

use ics_index::format::Tid;
use ics_index::lists::build::{default_lists, Builder};
use ics_index::lists::kmodes;
use ics_index::open::open;
use ics_index::relation::MemRelation;
use ics_index::search::{Query, Search};
use ics_index::spill::MemSpill;
use ics_index::substrings::build::{build, VecRows};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn codes(kind: &str, n: usize, rng: &mut SmallRng, centres: &[u64]) -> Vec<u64> {
    (0..n)
        .map(|_| match kind {
            "uniform" => rng.gen(),
            "clustered" => {
                let mut c = centres[rng.gen_range(0..40)];
                for bit in 0..64 {
                    if rng.gen_bool(0.125) {
                        c ^= 1 << bit;
                    }
                }
                c
            }
            _ => {
                let k = rng.gen_range(1..=3);
                let ls: Vec<u64> = (0..k).map(|_| centres[rng.gen_range(0..80)]).collect();
                let mut c = 0u64;
                for bit in 0..64 {
                    let ones = ls.iter().filter(|l| *l >> bit & 1 == 1).count();
                    let mut v = 2 * ones > k || (2 * ones == k && ls[0] >> bit & 1 == 1);
                    if rng.gen_bool(0.1) {
                        v = !v;
                    }
                    c |= u64::from(v) << bit;
                }
                c
            }
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(1_000_000, |a| a.parse().expect("rows"));
    let nq: usize = args.get(2).map_or(50, |a| a.parse().expect("queries"));
    let mut rng = SmallRng::seed_from_u64(1);
    let centres: Vec<u64> = (0..80).map(|_| rng.gen()).collect();
    let kinds = std::env::var("KINDS").unwrap_or("uniform multilabel clustered".into());
    for kind in kinds.split_whitespace() {
        let data = codes(kind, n, &mut rng, &centres);
        let queries = codes(kind, nq, &mut rng, &centres);
        let rows: Vec<(Vec<u8>, Tid)> = data
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let t = Tid {
                    block: (i / 200) as u32 + 1,
                    offset: (i % 200 + 1) as u16,
                };
                (c.to_be_bytes().to_vec(), t)
            })
            .collect();
        let subs = MemRelation::new();
        let mut sorted = rows.clone();
        sorted.sort();
        let t0 = std::time::Instant::now();
        build(
            &subs,
            &MemSpill,
            1 << 30,
            8,
            0,
            n as u64,
            &mut VecRows::new(&sorted),
            &mut || {},
        );
        let build_subs = t0.elapsed();
        let lists = MemRelation::new();
        let t0 = std::time::Instant::now();
        let lists_wanted = std::env::var("NO_LISTS").is_err();
        let sample: Vec<u8> = rows.iter().take(65_536).flat_map(|r| r.0.clone()).collect();
        let c = kmodes::train(&sample, 8, default_lists(n as u64), 8, 1, &mut || {});
        let mut b = Builder::new(&lists, c, 8, 1 << 20);
        for (code, t) in rows.iter().filter(|_| lists_wanted) {
            b.add(code, *t);
        }
        b.finish();
        let build_lists = t0.elapsed();
        println!("{kind} {n} rows: build substrings {build_subs:?} ({} pages), lists {build_lists:?} ({} pages)", subs_pages(&subs), subs_pages(&lists));
        for (name, rel) in [("substrings", &subs), ("lists", &lists)] {
            for (form, k, r) in [
                ("k=10", 10, u32::MAX),
                ("k=100", 100, u32::MAX),
                ("r=4", usize::MAX, 4),
                ("r=8", usize::MAX, 8),
            ] {
                let t0 = std::time::Instant::now();
                let (mut pages, mut entries, mut linear) = (0, 0, 0);
                for q in &queries {
                    let mut s = Search::new(
                        open(rel).unwrap(),
                        Query {
                            code: q.to_be_bytes().to_vec(),
                            max_distance: r,
                            filters: vec![],
                            nulls: false,
                        },
                    )
                    .unwrap();
                    let mut got = 0;
                    while got < k && s.next(rel).is_some() {
                        got += 1;
                    }
                    pages += s.stats().pages_read;
                    entries += s.stats().entries_checked;
                    linear +=
                        usize::from(s.stats().switched_to_linear || s.stats().linear_passes > 0);
                }
                let per = t0.elapsed() / nq as u32;
                println!("  {name:10} {form:6} {per:>10.2?}/query  {:>7.0} pages  {:>9.0} codes  linear {linear}/{nq}", pages as f64 / nq as f64, entries as f64 / nq as f64);
            }
        }
    }
}

fn subs_pages(rel: &MemRelation) -> u32 {
    use ics_index::relation::Relation;
    rel.nblocks()
}
