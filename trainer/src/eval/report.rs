//! The JSON report of a training run: configuration, centres, per-epoch log, retrieval
//! quality against its baselines, and weight-vs-area agreement.
//!
//! Every number a claim in the docs rests on is here, with the configuration that produced
//! it, so a report can be checked (and the run repeated from its seed) without the model.

use std::path::{Path, PathBuf};

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::agreement::{weight_area_agreement, AgreementReport};
use super::cosine::cosine_map_at_r;
use super::map::{map_at_r, TIE_RULE};
use super::pr::{pr_curve, PrPoint};
use super::set::EvalSet;
use crate::codes::PackedCodes;
use crate::ics::{CentreStats, EpochLog, IcsModel, TrainConfig};

/// Seed of the random-code baseline (fixed: the baseline is a property of the data sizes).
const RANDOM_BASELINE_SEED: u64 = 0x1c5;

/// Retrieval quality on one evaluation split.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetrievalReport {
    pub bits: usize,
    pub r: usize,
    pub queries: usize,
    pub database: usize,
    /// mAP@R of the model's codes, Hamming ranking, ties by database index.
    pub map_at_r: f64,
    /// How the ranking breaks ties ([`TIE_RULE`]).
    #[serde(default = "tie_rule")]
    pub tie_rule: String,
    /// Mean precision within Hamming radius 2 (0 for a query retrieving nothing).
    pub precision_within_radius2: f64,
    /// Precision and recall by Hamming radius 0..=bits.
    pub pr_curve: Vec<PrPoint>,
    /// mAP@R of uniformly random codes of the same length: chance level.
    pub random_codes_map_at_r: f64,
    /// mAP@R of the raw features by cosine similarity, when computed.
    pub cosine_map_at_r: Option<f64>,
}

impl RetrievalReport {
    /// Scores `model` on `set`; the cosine baseline (a float matrix product over all pairs,
    /// the slow part) only when `with_cosine`.
    pub fn evaluate(model: &IcsModel, set: &EvalSet, with_cosine: bool) -> RetrievalReport {
        let q = model.encode_packed(set.query_features);
        let db = model.encode_packed(set.db_features);
        Self::from_codes(&q, &db, set, with_cosine)
    }

    /// Scores given codes (query and database, in the order of `set`).
    pub fn from_codes(
        q: &PackedCodes,
        db: &PackedCodes,
        set: &EvalSet,
        with_cosine: bool,
    ) -> RetrievalReport {
        let curve = pr_curve(q, &set.query_labels, db, &set.db_labels);
        let bits = db.bits();
        let rq = PackedCodes::random(q.len(), bits, RANDOM_BASELINE_SEED);
        let rdb = PackedCodes::random(db.len(), bits, RANDOM_BASELINE_SEED + 1);
        RetrievalReport {
            bits,
            r: set.r,
            queries: q.len(),
            database: db.len(),
            map_at_r: map_at_r(q, &set.query_labels, db, &set.db_labels, set.r),
            tie_rule: tie_rule(),
            precision_within_radius2: curve[2.min(bits)].precision,
            pr_curve: curve,
            random_codes_map_at_r: map_at_r(&rq, &set.query_labels, &rdb, &set.db_labels, set.r),
            cosine_map_at_r: with_cosine.then(|| {
                cosine_map_at_r(
                    set.query_features,
                    &set.query_labels,
                    set.db_features,
                    &set.db_labels,
                    set.r,
                )
            }),
        }
    }
}

fn tie_rule() -> String {
    TIE_RULE.to_string()
}

/// Shape of the trained head.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadSummary {
    pub input_dim: usize,
    pub hidden: Vec<usize>,
    pub bits: usize,
    pub parameters: usize,
}

/// Everything about one training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainReport {
    pub trainer_version: String,
    pub config: TrainConfig,
    pub centres: CentreStats,
    pub head: HeadSummary,
    pub epochs: Vec<EpochLog>,
    /// Sum of the epoch times.
    pub train_seconds: f64,
    pub retrieval: Option<RetrievalReport>,
    pub agreement: Option<AgreementReport>,
}

impl TrainReport {
    /// The parts known from the model alone; add `retrieval` and `agreement` with the
    /// methods below.
    pub fn new(model: &IcsModel) -> TrainReport {
        let layers = model.layers();
        TrainReport {
            trainer_version: env!("CARGO_PKG_VERSION").to_string(),
            config: model.config().clone(),
            centres: model.centres().stats(),
            head: HeadSummary {
                input_dim: model.input_dim(),
                hidden: layers[..layers.len() - 1]
                    .iter()
                    .map(|l| l.outputs())
                    .collect(),
                bits: model.bits(),
                parameters: model.head().parameter_count(),
            },
            epochs: model.history().to_vec(),
            train_seconds: model.history().iter().map(|e| e.seconds).sum(),
            retrieval: None,
            agreement: None,
        }
    }

    /// Adds retrieval numbers on `set`.
    pub fn with_retrieval(mut self, model: &IcsModel, set: &EvalSet, with_cosine: bool) -> Self {
        self.retrieval = Some(RetrievalReport::evaluate(model, set, with_cosine));
        self
    }

    /// Adds weight-vs-area agreement, `areas` being (training images, classes) in training
    /// order.
    pub fn with_agreement(
        mut self,
        model: &IcsModel,
        areas: ArrayView2<f64>,
    ) -> anyhow::Result<Self> {
        self.agreement = Some(weight_area_agreement(model.weights(), areas)?);
        Ok(self)
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("reports serialise")
    }
}

/// One evaluated model under a short name (a file stem or a label), as `eval` and `bench`
/// report it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEval {
    pub name: String,
    pub file: Option<PathBuf>,
    pub report: TrainReport,
}

impl ModelEval {
    /// Scores `model`: retrieval on `set`, and the weight-vs-area agreement with
    /// `train_pixel_areas` (training images, classes) when the model's weights are for those
    /// images (same count; see [`ModelEval::agreement_applies`]).
    pub fn evaluate(
        name: &str,
        file: Option<&Path>,
        model: &IcsModel,
        set: &EvalSet,
        train_pixel_areas: Option<ArrayView2<f64>>,
    ) -> anyhow::Result<ModelEval> {
        let mut report = TrainReport::new(model).with_retrieval(model, set, false);
        if let Some(areas) = train_pixel_areas {
            if Self::agreement_applies(model, areas) {
                report = report.with_agreement(model, areas)?;
            }
        }
        Ok(ModelEval {
            name: name.to_string(),
            file: file.map(Path::to_path_buf),
            report,
        })
    }

    /// Whether `model`'s weights are for the images of `areas` (one weight row per area row).
    pub fn agreement_applies(model: &IcsModel, areas: ArrayView2<f64>) -> bool {
        model.weights().len() == areas.nrows()
    }

    /// mAP@R, when evaluated.
    pub fn map(&self) -> Option<f64> {
        self.report.retrieval.as_ref().map(|r| r.map_at_r)
    }
}
