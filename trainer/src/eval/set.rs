//! An evaluation split: query and database features with their labels, and the `R` of mAP@R.
//!
//! Built once and checked once (shapes, 0/1 labels), then used both for the per-epoch mAP
//! during training (as the loop's [`EpochEval`]) and for the final report.

use anyhow::{ensure, Result};
use ndarray::ArrayView2;

use super::agreement::weight_area_agreement;
use super::labels::LabelSets;
use super::map::map_at_r;
use crate::codes::PackedCodes;
use crate::ics::train::EpochEval;
use crate::ics::InstanceWeights;

/// Query and database features (rows = items) with their label sets.
#[derive(Clone, Debug)]
pub struct EvalSet<'a> {
    pub query_features: ArrayView2<'a, f32>,
    pub query_labels: LabelSets,
    pub db_features: ArrayView2<'a, f32>,
    pub db_labels: LabelSets,
    /// Ranks counted by mAP@R (5000 for COCO and NUS-WIDE, 1000 for ImageNet).
    pub r: usize,
    /// Pixel areas (training images, classes) of the training split, when known: training
    /// then logs the weights' agreement with them every epoch.
    pub train_areas: Option<ArrayView2<'a, f64>>,
}

impl<'a> EvalSet<'a> {
    /// Checks shapes and labels (multi-hot 0/1, `u8` or `bool`).
    pub fn new<L: Copy + Into<u8>>(
        query_features: ArrayView2<'a, f32>,
        query_labels: ArrayView2<L>,
        db_features: ArrayView2<'a, f32>,
        db_labels: ArrayView2<L>,
        r: usize,
    ) -> Result<EvalSet<'a>> {
        ensure!(r >= 1, "R of mAP@R must be >= 1");
        ensure!(
            query_features.nrows() >= 1 && db_features.nrows() >= 1,
            "empty query or database set"
        );
        ensure!(
            query_features.ncols() == db_features.ncols(),
            "query features have {} dimensions, database features {}",
            query_features.ncols(),
            db_features.ncols()
        );
        ensure!(
            query_features.nrows() == query_labels.nrows()
                && db_features.nrows() == db_labels.nrows(),
            "features and labels differ in row count (queries {} vs {}, database {} vs {})",
            query_features.nrows(),
            query_labels.nrows(),
            db_features.nrows(),
            db_labels.nrows()
        );
        ensure!(
            query_labels.ncols() == db_labels.ncols(),
            "query and database class counts differ"
        );
        for (name, f) in [("query", query_features), ("database", db_features)] {
            if let Some(i) = f
                .rows()
                .into_iter()
                .position(|r| r.iter().any(|v| !v.is_finite()))
            {
                anyhow::bail!("{name} feature row {i} is not finite");
            }
        }
        Ok(EvalSet {
            query_features,
            query_labels: LabelSets::from_multi_hot(query_labels)?,
            db_features,
            db_labels: LabelSets::from_multi_hot(db_labels)?,
            r,
            train_areas: None,
        })
    }

    /// The same set, logging the weights' agreement with `areas` (training images, classes)
    /// every epoch.
    pub fn with_train_areas(mut self, areas: Option<ArrayView2<'a, f64>>) -> Self {
        self.train_areas = areas;
        self
    }
}

/// What training logs per evaluation epoch: mAP@R of the query codes against the database
/// codes.
impl EpochEval for EvalSet<'_> {
    fn feature_dim(&self) -> usize {
        self.query_features.ncols()
    }

    fn classes(&self) -> usize {
        self.query_labels.classes()
    }

    fn score(&self, encode: &dyn Fn(ArrayView2<f32>) -> PackedCodes) -> f64 {
        map_at_r(
            &encode(self.query_features),
            &self.query_labels,
            &encode(self.db_features),
            &self.db_labels,
            self.r,
        )
    }

    fn weight_agreement(&self, weights: &InstanceWeights) -> Option<(f64, f64)> {
        let areas = self.train_areas?;
        if areas.dim() != (weights.len(), weights.classes()) {
            return None;
        }
        let a = weight_area_agreement(weights, areas).ok()?;
        Some((a.raw.learned.spearman, a.raw.learned.top1))
    }
}
