//! Hamming kernels: each path one-to-one, and one query against a block of codes.
//!
//! `cargo bench -p ics-benches --bench hamming`. Paths the CPU lacks are skipped; the
//! dispatcher's choice is printed first.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ics_codes::hamming::{self, paths};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

const BITS: [usize; 4] = [64, 128, 256, 1024];
/// Codes per block in the one-to-many cases: an index page's worth and then some.
const BLOCK: usize = 10_000;

fn random_bytes(rng: &mut SmallRng, n: usize) -> Vec<u8> {
    let mut v = vec![0; n];
    rng.fill_bytes(&mut v);
    v
}

fn configure(c: &mut Criterion) -> &mut Criterion {
    eprintln!("dispatcher picks: {}", hamming::kernel_name());
    c
}

fn one_to_one(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut group = configure(c).benchmark_group("one_to_one");
    group.throughput(Throughput::Elements(1));
    for bits in BITS {
        let a = random_bytes(&mut rng, bits / 8);
        let b = random_bytes(&mut rng, bits / 8);
        for k in paths::available() {
            group.bench_with_input(BenchmarkId::new(k.name(), bits), &bits, |bench, _| {
                bench.iter(|| k.hamming(black_box(&a), black_box(&b)))
            });
        }
        group.bench_with_input(BenchmarkId::new("dispatched", bits), &bits, |bench, _| {
            bench.iter(|| hamming::hamming(black_box(&a), black_box(&b)))
        });
    }
    group.finish();
}

fn one_to_many(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(2);
    let mut group = c.benchmark_group("one_to_many");
    group.throughput(Throughput::Elements(BLOCK as u64));
    for bits in BITS {
        let len = bits / 8;
        let query = random_bytes(&mut rng, len);
        let codes = random_bytes(&mut rng, len * BLOCK);
        let mut out = vec![0u32; BLOCK];
        // The reference is far too slow to be worth a block-sized run.
        for k in paths::available()
            .into_iter()
            .filter(|k| k.name() != "scalar")
        {
            group.bench_with_input(BenchmarkId::new(k.name(), bits), &bits, |bench, _| {
                bench.iter(|| k.hamming_many(black_box(&query), black_box(&codes), &mut out))
            });
        }
        group.bench_with_input(BenchmarkId::new("dispatched", bits), &bits, |bench, _| {
            bench.iter(|| hamming::hamming_many(black_box(&query), black_box(&codes), &mut out))
        });
        group.bench_with_input(BenchmarkId::new("loop_hamming", bits), &bits, |bench, _| {
            bench.iter(|| {
                let q = black_box(&query);
                for (code, o) in black_box(&codes).chunks_exact(len).zip(out.iter_mut()) {
                    *o = hamming::hamming(q, code);
                }
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(50);
    targets = one_to_one, one_to_many
}
criterion_main!(benches);
