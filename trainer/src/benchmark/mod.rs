//! The benchmark (`ics-train bench`): what it composes, measures, records
//! (`bench.json`: [`BenchReport`]) and checks, and the run itself ([`run`]), one file per step.
//! The command parses its flags into a [`BenchPlan`], prints the events a run reports
//! ([`BenchObserver`]) and draws the plots; nothing here writes to the terminal.
//!
//! 1. the 20-class benchmark (full: 10,000 train, 2,000 query, 20,000 database canvases of
//!    128 px with 1-3 instances) and the area benchmark (training canvases with 2-3 classes of
//!    widely different sizes), composed unless the work folder has them, and EfficientNet-Lite0
//!    imported at the canvas size: [`plan::compose_options`], [`prepare`];
//! 2. EfficientNet-Lite0 features of every split (cached in the work folder), and the
//!    extraction speed on a fresh sample: [`features`];
//! 3. cosine ranking of the raw features (the float baseline): [`features::float_baseline`];
//! 4. ICS and CSQ (same configuration, same code) at each code length, mAP@R each, for each
//!    fine-tuning mode asked for (`none`: the head on frozen features; `top:N`, `all`: the
//!    backbone trains too, [`FinetuneRun`] records its speed): [`rows`];
//! 5. ICS on the area benchmark, its learned weights against the true area shares
//!    ([`AreaResult`]): [`area`];
//! 6. the targets ([`targets()`]), `bench.json` and `bench.md` ([`output`]).
//!
//! [`record`] holds what a run records; [`events`] what it reports while running.

pub mod area;
pub mod events;
pub mod features;
pub mod output;
pub mod plan;
pub mod prepare;
pub mod record;
pub mod rows;
pub mod targets;

use std::time::Instant;

use anyhow::Result;

pub use events::{BenchEvent, BenchObserver};
pub use output::{write_report, Written};
pub use plan::{compose_options, BenchPlan};
pub use record::{
    AreaResult, BenchReport, BenchSize, Extraction, FeatureSpeed, FinetuneRun, Target,
};
pub use targets::{find, modes, targets, FINETUNE_GAIN_POINTS, FINETUNE_MINUTES};

use crate::eval::{EvalSet, SharePoints};

/// What a run produced: its report, and the points of the weights-vs-area plot when the
/// area benchmark ran.
pub struct BenchRun {
    pub report: BenchReport,
    pub shares: Option<SharePoints>,
}

/// Runs the benchmark `plan` describes: steps 1 to 5 and the targets; the model files go to
/// `plan.out/models`. The caller writes the report ([`write_report`]) and the plots.
pub fn run(plan: &BenchPlan, obs: &mut dyn BenchObserver) -> Result<BenchRun> {
    let started = Instant::now();
    prepare::make_folders(plan, obs)?;
    let (main_opts, area_opts) = compose_options(plan.size, plan.data_seed, plan.area_train);
    let inputs = prepare::prepare(plan, &main_opts, &area_opts, obs)?;
    let bb = &inputs.backbone;
    let splits = features::extract(plan, &inputs, obs)?;
    let speed = features::feature_speed(
        plan,
        &bb.backbone,
        &splits.query.split.dataset,
        main_opts.canvas,
        obs,
    )?;
    let set = EvalSet::new(
        splits.query.features.view(),
        splits.query.split.dataset.labels().view(),
        splits.database.features.view(),
        splits.database.split.dataset.labels().view(),
        plan.r,
    )?
    .with_train_areas(splits.train.split.dataset.areas().map(|a| a.pixel.view()));
    let cosine = features::float_baseline(&set, bb.feature_dim, obs);
    let (models, finetune_runs) = rows::train_rows(plan, &inputs, &splits, &set, obs)?;
    let area = match &splits.area {
        Some(a) => Some(area::area_benchmark(plan, &inputs, a, obs)?),
        None => None,
    };
    let (area, shares) = area.unzip();
    let targets = targets(&models, cosine, area.as_ref(), &speed, &finetune_runs);
    let report = BenchReport {
        size: plan.size,
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        backbone: bb.backbone.description.clone(),
        data: plan.work.join("data").display().to_string(),
        area_data: plan
            .area
            .then(|| plan.work.join("area").display().to_string()),
        r: plan.r,
        train_images: splits.train.split.dataset.len(),
        queries: splits.query.split.dataset.len(),
        database: splits.database.split.dataset.len(),
        feature_dim: bb.feature_dim,
        feature_speed: speed,
        extractions: splits.extractions,
        cosine_map_at_r: cosine,
        base_config: plan.base.clone(),
        models,
        finetune_runs,
        area,
        targets,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    Ok(BenchRun { report, shares })
}
