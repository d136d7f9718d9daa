//! What a benchmark run records (`bench.json`: [`BenchReport`]) and its parts.

use anyhow::Result;
use serde::Serialize;

use crate::data::ClassAreas;
use crate::eval::agreement::{weight_area_agreement, AgreementReport};
use crate::eval::size_ratio::{size_ratio_breakdown, RatioBin};
use crate::eval::ModelEval;
use crate::ics::{IcsModel, Method, TrainConfig};

/// Benchmark size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchSize {
    /// The benchmark size: 10,000 / 2,000 / 20,000 canvases.
    Full,
    /// A seconds-scale run for tests: 64 px canvases, 200 / 50 / 200 (+ 200 area) canvases.
    Small,
}

/// Feature extraction speed, measured without the cache.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureSpeed {
    /// Images of the probe (fresh extraction, no cache).
    pub images: usize,
    pub ms_per_image: f64,
    pub preprocess_ms_per_image: f64,
    pub inference_ms_per_image: f64,
    pub batch: usize,
    pub ort_threads: usize,
}

/// One split's feature extraction (from the cache or not).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Extraction {
    pub split: String,
    pub images: usize,
    pub from_cache: bool,
    pub seconds: f64,
}

/// The weight-vs-area result of the area benchmark.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AreaResult {
    pub images: usize,
    pub bits: usize,
    pub train_seconds: f64,
    /// Pixel-area shares (foreground pixels of each instance).
    pub pixel: AgreementReport,
    /// Box-area shares (w x h of each pasted box).
    pub boxed: AgreementReport,
    /// Mean Spearman (learned weights vs pixel-area shares) by how different the instance
    /// sizes of a canvas are: the smallest ratio between consecutive sorted areas.
    pub by_size_ratio: Vec<RatioBin>,
    /// The same on the canvases whose instances all differ at least
    /// [`DIFFERENT_SIZES`](crate::eval::size_ratio::DIFFERENT_SIZES)-fold in
    /// area ("labels of different sizes"); uniform weights score 0 there too.
    pub different_sizes: RatioBin,
}

impl AreaResult {
    /// `model`'s learned weights against the `areas` of its training images.
    pub fn evaluate(model: &IcsModel, areas: &ClassAreas) -> Result<AreaResult> {
        let pixel = weight_area_agreement(model.weights(), areas.pixel.view())?;
        let boxed = weight_area_agreement(model.weights(), areas.boxed.view())?;
        let ratios = size_ratio_breakdown(model.weights(), areas.pixel.view());
        Ok(AreaResult {
            images: areas.pixel.nrows(),
            bits: model.bits(),
            train_seconds: model.history().iter().map(|e| e.seconds).sum(),
            pixel,
            boxed,
            by_size_ratio: ratios.bins,
            different_sizes: ratios.different_sizes,
        })
    }
}

/// A target of the benchmark (docs/benchmarks.md), and whether the run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub name: String,
    pub wanted: String,
    pub measured: String,
    pub met: bool,
}

/// How a fine-tuning run of the benchmark went: its speed and time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FinetuneRun {
    /// The model's name (`ics64-top2`).
    pub name: String,
    pub mode: String,
    pub method: Method,
    pub bits: usize,
    pub train_images: usize,
    pub image_size: u32,
    pub epochs: usize,
    /// Backbone parameters trained.
    pub trained_parameters: usize,
    /// Training images per second through the trained part's forward and backward passes
    /// (and the backbone's Adam step).
    pub images_per_second: f64,
    /// Seconds in those passes, and preparing inputs (preprocessing, augmentation, the
    /// frozen prefix per batch), over the whole run.
    pub network_seconds: f64,
    pub input_seconds: f64,
    /// Seconds before the first epoch (weights, the frozen prefix's cached activations).
    pub prepare_seconds: f64,
    /// Seconds of the epochs (per-epoch evaluation included).
    pub train_seconds: f64,
}

impl FinetuneRun {
    /// Preparation and training together: the fine-tuning's wall time.
    pub fn total_seconds(&self) -> f64 {
        self.prepare_seconds + self.train_seconds
    }
}

/// Everything one benchmark run measured (`bench.json`).
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub size: BenchSize,
    pub trainer_version: String,
    pub backbone: String,
    pub data: String,
    pub area_data: Option<String>,
    pub r: usize,
    pub train_images: usize,
    pub queries: usize,
    pub database: usize,
    pub feature_dim: usize,
    pub feature_speed: FeatureSpeed,
    pub extractions: Vec<Extraction>,
    pub cosine_map_at_r: f64,
    pub base_config: TrainConfig,
    pub models: Vec<ModelEval>,
    /// The fine-tuning runs among `models`, with their speed.
    pub finetune_runs: Vec<FinetuneRun>,
    pub area: Option<AreaResult>,
    pub targets: Vec<Target>,
    pub total_seconds: f64,
}
