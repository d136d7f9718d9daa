//! `simd-scan`: the scan floor (`ics_benches::scan`) over the very codes `gen-codes` gives
//! PostgreSQL, timed per query in this process.
//!
//! `simd-scan KIND --bits B --rows N [--centres C --flip P --seed S] [--queries Q]
//!  [--k 10,100] [--radius 4,8]`: codes 1..=N are the table, the next 1,000 the query codes
//! (as benches/sql/mih.sh loads them); each form runs Q queries (cycling through the query
//! codes) after a warm-up pass and prints `FORM MEDIAN_MS P95_MS`, after a line
//! `kernel NAME`.

use ics_benches::gen::Spec;
use ics_benches::scan::{knn, radius};
use std::time::Instant;

const QUERY_CODES: usize = 1000;

struct Args {
    spec: Spec,
    rows: usize,
    queries: usize,
    ks: Vec<usize>,
    radii: Vec<u32>,
}

fn list<T: std::str::FromStr>(flag: &str, v: &str) -> Result<Vec<T>, String> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| format!("{flag} {v}: a comma-separated list of numbers"))
        })
        .collect()
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let kind = it.next().ok_or("usage: simd-scan uniform|clustered|multilabel --bits B --rows N [--queries Q] [--k 10,100] [--radius 4,8] [--centres C] [--flip P] [--seed S]")?;
    let mut a = Args {
        spec: Spec::new(&kind)?,
        rows: 0,
        queries: 300,
        ks: vec![10, 100],
        radii: vec![4, 8],
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--rows" => a.rows = v.parse().map_err(|e| bad(&e))?,
            "--queries" => a.queries = v.parse().map_err(|e| bad(&e))?,
            "--k" => a.ks = list(&flag, &v)?,
            "--radius" => a.radii = list(&flag, &v)?,
            _ if a.spec.option(&flag, &v)? => {}
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    a.spec.check()?;
    if a.rows == 0 || a.queries == 0 {
        return Err("--rows and --queries must be at least 1".into());
    }
    Ok(a)
}

/// Median and 95th percentile, in ms, of `q` timed runs of `f` on the query codes in turn.
fn time(q: usize, queries: &[u8], nb: usize, mut f: impl FnMut(&[u8]) -> usize) -> (f64, f64) {
    let pick = |i: usize| &queries[(i % QUERY_CODES) * nb..(i % QUERY_CODES + 1) * nb];
    let mut sink = 0;
    for i in 0..q.min(20) {
        sink += f(pick(i)); // warm-up: caches and the kernel's first call
    }
    let mut ms: Vec<f64> = (0..q)
        .map(|i| {
            let t = Instant::now();
            sink += f(pick(i));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    std::hint::black_box(sink);
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    (at(0.5), at(0.95))
}

fn main() {
    let a = parse().unwrap_or_else(|e| {
        eprintln!("simd-scan: {e}");
        std::process::exit(2);
    });
    let nb = a.spec.bits / 8;
    let mut stream = a.spec.stream();
    let mut codes = vec![0u8; a.rows * nb];
    for c in codes.chunks_exact_mut(nb) {
        stream.next_into(c);
    }
    let mut queries = vec![0u8; QUERY_CODES * nb];
    for c in queries.chunks_exact_mut(nb) {
        stream.next_into(c);
    }
    println!("kernel {}", ics_codes::hamming::kernel_name());
    let mut hits = Vec::new();
    for &k in &a.ks {
        let (m, p) = time(a.queries, &queries, nb, |q| {
            knn(q, &codes, k, &mut hits).len()
        });
        println!("knn{k} {m:.3} {p:.3}");
    }
    for &r in &a.radii {
        let (m, p) = time(a.queries, &queries, nb, |q| radius(q, &codes, r, &mut hits));
        println!("radius{r} {m:.3} {p:.3}");
    }
}
