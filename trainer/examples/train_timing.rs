//! Training and evaluation time at the benchmark's scale (a measurement, not a check; it was an
//! `#[ignore]`d test). Run it in release:
//!
//!     cargo run --release -p ics-train --example train_timing
//!
//! On 10,000 synthetic 1280-d feature vectors of 20 classes (up to 3 labels each):
//! 1. two epochs (one warm-up) for the heads `[]`, `[1024]` and `[2048, 2048]`, and the time
//!    to encode the 10,000 vectors;
//! 2. a full default run (30 epochs, `[1024]` head) with mAP@1000 every 5 epochs on 2,000
//!    held-out queries against the training set: the "training under 5 minutes" budget;
//! 3. mAP@5000 of 2,000 random 64-bit query codes against 20,000 database codes.
//!
//! Lines go to stderr, one per epoch and one per measurement.

use std::time::Instant;

use anyhow::{ensure, Result};
use ics_train::codes::PackedCodes;
use ics_train::eval::{map_at_r, EvalSet, LabelSets, RetrievalReport};
use ics_train::ics::synthetic::make;
use ics_train::ics::{train, TrainConfig};

fn main() -> Result<()> {
    let (n, d) = (10_000, 1280);
    let data = make(n, d, 20, 3, 1.0, 9);
    for hidden in [vec![], vec![1024], vec![2048, 2048]] {
        let config = TrainConfig {
            bits: 64,
            hidden: hidden.clone(),
            epochs: 2,
            warmup_epochs: 1,
            ..TrainConfig::default()
        };
        let started = Instant::now();
        let model = train(
            data.features.view(),
            data.labels.view(),
            &config,
            None,
            |l| {
                eprintln!(
                    "hidden {hidden:?} epoch {} {:.2}s loss {:.4}",
                    l.epoch, l.seconds, l.loss
                )
            },
        )?;
        let t = Instant::now();
        let codes = model.encode_packed(data.features.view());
        eprintln!(
            "hidden {hidden:?}: total {:.2}s, encode {n} in {:.3}s",
            started.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
        ensure!(codes.len() == n, "{} codes for {n} vectors", codes.len());
    }

    let queries = make(2000, d, 20, 3, 1.0, 10);
    let set = EvalSet::new(
        queries.features.view(),
        queries.labels.view(),
        data.features.view(),
        data.labels.view(),
        1000,
    )?;
    let started = Instant::now();
    let model = train(
        data.features.view(),
        data.labels.view(),
        &TrainConfig::default(),
        Some(&set),
        |l| {
            eprintln!(
                "default epoch {} {:.2}s loss {:.4} mAP {:?}",
                l.epoch, l.seconds, l.loss, l.map
            )
        },
    )?;
    eprintln!("default run: {:.1}s", started.elapsed().as_secs_f64());
    let report = RetrievalReport::evaluate(&model, &set, true);
    eprintln!(
        "mAP@1000 {:.4}, cosine {:.4?}, random {:.4}",
        report.map_at_r, report.cosine_map_at_r, report.random_codes_map_at_r
    );

    let q = PackedCodes::random(2000, 64, 1);
    let db = PackedCodes::random(20_000, 64, 2);
    let lists = |m: usize| {
        (0..m)
            .map(|i| vec![i % 20, (i * 7) % 20])
            .collect::<Vec<_>>()
    };
    let ql = LabelSets::from_lists(&lists(2000), 20)?;
    let dl = LabelSets::from_lists(&lists(20_000), 20)?;
    let t = Instant::now();
    let m = map_at_r(&q, &ql, &db, &dl, 5000);
    eprintln!(
        "mAP@5000 2000 x 20000: {:.3}s ({m:.3})",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
