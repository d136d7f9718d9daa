//! The weight dynamics of ICS on frozen features (a measurement, not a check): how the
//! spread of the per-label losses compares with `lambda_r`, and what `lambda_r`, the
//! warm-up and the weight update do to the weights' entropy, their agreement with the true
//! areas and mAP, on two synthetic compositions that differ in class count, labels per
//! image and noise. CSQ and OrthoHash on the same features for reference.
//!
//!     cargo run --release -p ics-train --example ics_dynamics [N_TRAIN] [EPOCHS]
//!
//! Prints one markdown row per run (the table of `trainer/docs/ics-dynamics.md`).

use std::time::Instant;

use anyhow::Result;
use ics_train::eval::EvalSet;
use ics_train::ics::synthetic::make;
use ics_train::ics::{train, Method, OrthoHashParams, TrainConfig, WeightUpdate};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(2000), |s| s.parse())?;
    let epochs: usize = args.get(2).map_or(Ok(20), |s| s.parse())?;
    // (name, classes, max labels per image, noise)
    let compositions = [
        ("A: 10 classes, 1-3 labels, noise 0.7", 10, 3, 0.7),
        ("B: 20 classes, 1-4 labels, noise 1.0", 20, 4, 1.0),
    ];
    let d = 64;
    println!(
        "| composition | run | loss range ep1 | loss range last | H/ln|L| last (± std) | Spearman | top-1 | mAP@1000 | s |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (ci, &(name, classes, max_labels, noise)) in compositions.iter().enumerate() {
        let seed = 100 * ci as u64;
        let tr = make(n, d, classes, max_labels, noise, seed + 1);
        let q = make(300, d, classes, max_labels, noise, seed + 2);
        let db = make(2000, d, classes, max_labels, noise, seed + 3);
        let set = EvalSet::new(
            q.features.view(),
            q.labels.view(),
            db.features.view(),
            db.labels.view(),
            1000,
        )?
        .with_train_areas(Some(tr.areas.view()));
        let base = TrainConfig {
            bits: 32,
            hidden: vec![128],
            epochs,
            eval_every: epochs,
            lr_step_epochs: 10,
            ..TrainConfig::default()
        };
        let ics = |lambda_r: f64, eta: f64, warmup: usize, update: WeightUpdate| TrainConfig {
            lambda_r,
            eta,
            warmup_epochs: warmup,
            weight_update: update,
            ..base.clone()
        };
        let mut runs: Vec<(String, TrainConfig)> = Vec::new();
        // PGD as published: one step of eta per image and epoch.
        for lr in [0.5, 0.1, 0.02] {
            runs.push((
                format!("ICS pgd η=0.1 λr={lr} warm-up 2"),
                ics(lr, 0.1, 2, WeightUpdate::Pgd),
            ));
        }
        // A larger PGD step (eta * lambda_r * 4 labels < 2).
        for lr in [0.5, 0.1] {
            runs.push((
                format!("ICS pgd η=0.8 λr={lr} warm-up 2"),
                ics(lr, 0.8, 2, WeightUpdate::Pgd),
            ));
        }
        // The exact optimum each batch.
        for lr in [0.5, 0.1, 0.05, 0.02] {
            runs.push((
                format!("ICS closed-form λr={lr} warm-up 2"),
                ics(lr, 0.1, 2, WeightUpdate::ClosedForm),
            ));
        }
        // Losses measured from the first epoch, before the network fits the centroid.
        runs.push((
            "ICS closed-form λr=0.1 warm-up 0".into(),
            ics(0.1, 0.1, 0, WeightUpdate::ClosedForm),
        ));
        runs.push((
            "CSQ".into(),
            TrainConfig {
                method: Method::Csq,
                ..base.clone()
            },
        ));
        runs.push((
            "OrthoHash 1/|L|".into(),
            TrainConfig {
                method: Method::Orthohash,
                ..base.clone()
            },
        ));
        runs.push((
            "OrthoHash + ICS weights closed-form λr=0.1".into(),
            TrainConfig {
                method: Method::Orthohash,
                lambda_r: 0.1,
                weight_update: WeightUpdate::ClosedForm,
                orthohash: OrthoHashParams {
                    ics_weights: true,
                    ..OrthoHashParams::default()
                },
                ..base.clone()
            },
        ));
        for (run, config) in runs {
            let t = Instant::now();
            let model = train(
                tr.features.view(),
                tr.labels.view(),
                &config,
                Some(&set),
                |_| {},
            )?;
            let h = model.history();
            let first = h[0].diagnostics.clone().unwrap_or_default();
            let last = h
                .last()
                .and_then(|l| l.diagnostics.clone())
                .unwrap_or_default();
            let map = h.last().and_then(|l| l.map).unwrap_or(f64::NAN);
            println!(
                "| {name} | {run} | {:.4} | {:.4} | {:.3} ± {:.3} | {:.3} | {:.3} | {map:.4} | {:.0} |",
                first.loss_range_mean,
                last.loss_range_mean,
                last.entropy_mean,
                last.entropy_std,
                last.spearman.unwrap_or(f64::NAN),
                last.top1.unwrap_or(f64::NAN),
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
