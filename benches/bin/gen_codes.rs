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

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::Write;

struct Args {
    kind: String,
    bits: usize,
    rows: u64,
    first: u64,
    centres: usize,
    flip: f64,
    seed: u64,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let kind = it.next().ok_or("usage: gen-codes uniform|clustered|multilabel --bits B --rows N [--first I] [--centres C] [--flip P] [--seed S]")?;
    if !matches!(kind.as_str(), "uniform" | "clustered" | "multilabel") {
        return Err(format!(
            "unknown kind {kind:?}: uniform, clustered or multilabel"
        ));
    }
    let mut a = Args {
        kind,
        bits: 64,
        rows: 0,
        first: 1,
        centres: 80,
        flip: 0.1,
        seed: 1,
    };
    while let Some(flag) = it.next() {
        let v = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {v}: {e}");
        match flag.as_str() {
            "--bits" => a.bits = v.parse().map_err(|e| bad(&e))?,
            "--rows" => a.rows = v.parse().map_err(|e| bad(&e))?,
            "--first" => a.first = v.parse().map_err(|e| bad(&e))?,
            "--centres" => a.centres = v.parse().map_err(|e| bad(&e))?,
            "--flip" => a.flip = v.parse().map_err(|e| bad(&e))?,
            "--seed" => a.seed = v.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if a.bits == 0 || !a.bits.is_multiple_of(8) || a.bits > 4096 {
        return Err(format!("--bits {}: a multiple of 8 from 8 to 4096", a.bits));
    }
    if a.centres == 0 || !(0.0..=1.0).contains(&a.flip) || a.first == 0 {
        return Err("--centres >= 1, 0 <= --flip <= 1, --first >= 1".into());
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
    let nb = a.bits / 8;
    let mut centre_rng = SmallRng::seed_from_u64(a.seed);
    let centres: Vec<Vec<u8>> = (0..a.centres)
        .map(|_| (0..nb).map(|_| centre_rng.gen()).collect())
        .collect();
    // One stream per seed; skip to --first by drawing (and dropping) the earlier codes.
    let mut rng = SmallRng::seed_from_u64(a.seed ^ 0x5eed_c0de);
    let mut code = vec![0u8; nb];
    let mut line = String::with_capacity(16 + 2 * nb);
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    for id in 1..a.first + a.rows {
        draw(&a, &centres, &mut rng, &mut code);
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

fn draw(a: &Args, centres: &[Vec<u8>], rng: &mut SmallRng, code: &mut [u8]) {
    match a.kind.as_str() {
        "uniform" => rng.fill(code),
        "clustered" => {
            code.copy_from_slice(&centres[rng.gen_range(0..centres.len())]);
            flip(code, a.flip, rng);
        }
        _ => {
            let k = rng.gen_range(1..=3);
            let labels: Vec<usize> = (0..k).map(|_| rng.gen_range(0..centres.len())).collect();
            for bit in 0..code.len() * 8 {
                let mask = 0x80u8 >> (bit % 8);
                let ones = labels
                    .iter()
                    .filter(|&&l| centres[l][bit / 8] & mask != 0)
                    .count();
                let first = centres[labels[0]][bit / 8] & mask != 0;
                let v = 2 * ones > k || (2 * ones == k && first);
                if v {
                    code[bit / 8] |= mask;
                } else {
                    code[bit / 8] &= !mask;
                }
            }
            flip(code, a.flip, rng);
        }
    }
}

fn flip(code: &mut [u8], p: f64, rng: &mut SmallRng) {
    if p == 0.0 {
        return;
    }
    for bit in 0..code.len() * 8 {
        if rng.gen_bool(p) {
            code[bit / 8] ^= 0x80 >> (bit % 8);
        }
    }
}
