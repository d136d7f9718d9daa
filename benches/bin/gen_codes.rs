//! `gen-codes`: reproducible hash codes for the SQL benchmarks, one `id<TAB>hex` line each.
//!
//! Kinds:
//! - `uniform`: every bit fair and independent (codes of weak models, perceptual hashes);
//! - `clustered`: one of `--centres` random centres with every bit flipped with probability
//!   `--flip` (well-trained single-label codes: tight clusters, many exact duplicates);
//! - `multilabel`: the per-bit majority of 1-3 of `--centres` random centres (ties: the first
//!   label's bit), every bit then flipped with probability `--flip` (the way multi-label
//!   learned codes look; docs/benchmarks.md's runs use 80 centres and 0.1).
//!
//! The centres depend on `--seed` only, so rows, queries and rows inserted later can come
//! from separate runs with `--first` (the id of the first line; ids are drawn in sequence from
//! one stream per seed, so `--first 1000001` continues where `--rows 1000000` stopped).
//!
//! Usage: gen-codes KIND --bits B --rows N [--first I] [--centres C] [--flip P] [--seed S]

use ics_benches::gen::Spec;
use std::io::Write;

struct Args {
    spec: Spec,
    rows: u64,
    first: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let kind = it.next().ok_or("usage: gen-codes uniform|clustered|multilabel --bits B --rows N [--first I] [--centres C] [--flip P] [--seed S]")?;
    let mut a = Args {
        spec: Spec::new(&kind)?,
        rows: 0,
        first: 1,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--rows" => a.rows = v.parse().map_err(|e| bad(&e))?,
            "--first" => a.first = v.parse().map_err(|e| bad(&e))?,
            _ if a.spec.option(&flag, &v)? => {}
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    a.spec.check()?;
    if a.first == 0 {
        return Err("--first >= 1".into());
    }
    Ok(a)
}

fn main() {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gen-codes: {e}");
            std::process::exit(2);
        }
    };
    let nb = a.spec.bits / 8;
    let mut stream = a.spec.stream();
    let mut code = vec![0u8; nb];
    let mut line = String::with_capacity(16 + 2 * nb);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    for id in 1..a.first + a.rows {
        stream.next_into(&mut code);
        if id < a.first {
            continue;
        }
        line.clear();
        line.push_str(&id.to_string());
        line.push('\t');
        for b in &code {
            line.push_str(&format!("{b:02x}"));
        }
        line.push('\n');
        if out.write_all(line.as_bytes()).is_err() {
            return; // the reader went away
        }
    }
    let _ = out.flush();
}
