//! Steps 2b, 2c and 3: features of every split through the work folder's cache, the
//! extraction speed on a fresh sample, and the float baseline (cosine ranking of the raw
//! features).

use std::time::Instant;

use anyhow::Result;
use ndarray::Array2;

use super::events::{BenchEvent, BenchObserver};
use super::plan::BenchPlan;
use super::prepare::Inputs;
use super::record::{Extraction, FeatureSpeed};
use crate::backbone::{extract_features, Backbone, FeatureOptions};
use crate::data::{DataSpec, Dataset, LoadedSplit, SplitName};
use crate::eval::cosine::cosine_map_at_r;
use crate::eval::EvalSet;
use crate::workflow::{features_of, load_split};

/// A loaded split and its features.
pub struct Split {
    pub split: LoadedSplit,
    pub features: Array2<f32>,
}

/// The benchmark's splits, their features, and how each extraction went.
pub struct Splits {
    pub train: Split,
    pub query: Split,
    pub database: Split,
    /// The area benchmark's training split, when it runs.
    pub area: Option<Split>,
    pub extractions: Vec<Extraction>,
}

/// The feature options of the run: the work folder's cache.
pub fn feature_options(plan: &BenchPlan) -> FeatureOptions {
    FeatureOptions {
        batch_size: plan.batch,
        intra_threads: plan.ort_threads,
        cache_dir: Some(plan.work.join("features")),
        progress: plan.progress,
        ..FeatureOptions::default()
    }
}

/// Features of every split (the area benchmark's training split too, when it runs).
pub fn extract(plan: &BenchPlan, inputs: &Inputs, obs: &mut dyn BenchObserver) -> Result<Splits> {
    let fopts = feature_options(plan);
    let mut extractions = Vec::new();
    let mut load = |d: &DataSpec, s: SplitName, tag: &str| -> Result<Split> {
        let split = load_split(d, s, obs)?;
        let ex = features_of(&inputs.backbone.backbone, &split, &fopts, obs)?;
        extractions.push(Extraction {
            split: format!("{tag}{}", s.name()),
            images: split.dataset.len(),
            from_cache: ex.from_cache,
            seconds: ex.preprocess_s + ex.inference_s,
        });
        Ok(Split {
            split,
            features: ex.features,
        })
    };
    let train = load(&inputs.data, SplitName::Train, "")?;
    let query = load(&inputs.data, SplitName::Query, "")?;
    let database = load(&inputs.data, SplitName::Database, "")?;
    let area = if plan.area {
        Some(load(&inputs.area_data, SplitName::Train, "area ")?)
    } else {
        None
    };
    Ok(Splits {
        train,
        query,
        database,
        area,
        extractions,
    })
}

/// The extraction speed on a fresh sample of the query split (no cache).
pub fn feature_speed(
    plan: &BenchPlan,
    backbone: &Backbone,
    query: &Dataset,
    canvas: u32,
    obs: &mut dyn BenchObserver,
) -> Result<FeatureSpeed> {
    let n = plan.speed_sample.unwrap_or(plan.size.speed_sample());
    let speed = speed_probe(backbone, query, n, plan.batch, plan.ort_threads)?;
    obs.bench(BenchEvent::FeatureSpeed {
        speed: &speed,
        canvas,
    });
    Ok(speed)
}

/// mAP@R of the raw features by cosine similarity.
pub fn float_baseline(set: &EvalSet, feature_dim: usize, obs: &mut dyn BenchObserver) -> f64 {
    let t = Instant::now();
    let map = cosine_map_at_r(
        set.query_features,
        &set.query_labels,
        set.db_features,
        &set.db_labels,
        set.r,
    );
    obs.bench(BenchEvent::Cosine {
        feature_dim,
        r: set.r,
        map,
        seconds: t.elapsed().as_secs_f64(),
    });
    map
}

/// Extraction speed on the first `n` images of `images` (at least 1, at most all), after one
/// warm-up batch (session creation, first-run allocations) outside the measurement.
pub fn speed_probe(
    bb: &Backbone,
    images: &Dataset,
    n: usize,
    batch: usize,
    ort_threads: usize,
) -> Result<FeatureSpeed> {
    let n = n.min(images.len()).max(1);
    let idx: Vec<usize> = (0..n).collect();
    let sample = images.subset(&idx, "speed probe")?;
    let opts = FeatureOptions {
        batch_size: batch,
        intra_threads: ort_threads,
        cache_dir: None,
        progress: false,
        ..FeatureOptions::default()
    };
    let warm = sample.subset(&(0..batch.min(n)).collect::<Vec<_>>(), "warm-up")?;
    extract_features(bb, &warm, &opts)?;
    let ex = extract_features(bb, &sample, &opts)?;
    let per = |s: f64| 1e3 * s / n as f64;
    Ok(FeatureSpeed {
        images: n,
        ms_per_image: per(ex.preprocess_s + ex.inference_s),
        preprocess_ms_per_image: per(ex.preprocess_s),
        inference_ms_per_image: per(ex.inference_s),
        batch,
        ort_threads,
    })
}
