//! Where the training loop's feature rows come from, and what it trains besides the head.
//!
//! The loop ([`super::train`]) is the same whether the backbone is frozen or fine-tuned: per
//! mini-batch it asks the source for the batch's feature rows, runs the head, updates the
//! instance weights, and hands `∂L/∂features` back to the source, which takes its own
//! optimiser step ([`FeatureSource::backward`]). [`FrozenFeatures`] is today's path: rows of
//! precomputed features, nothing to train. `crate::finetune` implements a source that runs and
//! trains the backbone.

use anyhow::Result;
use ndarray::{Array2, ArrayView2, Axis, CowArray, Ix2};
use sha2::{Digest, Sha256};

/// A source's own state in a checkpoint: named f32 tensors (parameters, optimiser moments)
/// and a JSON value for the rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SourceState {
    /// (name, shape, values).
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    pub json: serde_json::Value,
}

/// Feature rows for the training loop.
pub trait FeatureSource {
    /// Number of training images.
    fn len(&self) -> usize;

    /// Whether there are no training images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the feature rows (the head's input).
    fn feature_dim(&self) -> usize;

    /// Columns of the evaluation rows [`FeatureSource::eval_features`] turns into features
    /// (the feature width for a frozen source; the cached activations' width when
    /// fine-tuning).
    fn eval_input_dim(&self) -> usize;

    /// Whether the source has parameters [`FeatureSource::backward`] trains.
    fn trains(&self) -> bool;

    /// Feature rows of training images `batch` (in that order) for a step of `epoch`
    /// (0-based); a training source keeps what its backward pass needs.
    fn batch(&mut self, batch: &[usize], epoch: usize) -> Result<Array2<f32>>;

    /// Back-propagates `∂L/∂features` of the last [`FeatureSource::batch`] and takes one
    /// optimiser step on the source's parameters during `epoch`. Only called when
    /// [`FeatureSource::trains`].
    fn backward(&mut self, d_features: ArrayView2<f32>, epoch: usize) -> Result<()>;

    /// Features of evaluation rows (query or database inputs) under the current parameters.
    fn eval_features<'a>(&self, rows: ArrayView2<'a, f32>) -> CowArray<'a, f32, Ix2>;

    /// What identifies the source's data and starting point (a checkpoint only resumes a run
    /// on the same source).
    fn fingerprint(&self) -> String;

    /// The state a checkpoint keeps.
    fn state(&self) -> SourceState;

    /// Continues from a checkpoint's state.
    fn restore(&mut self, state: SourceState) -> Result<()>;
}

/// Precomputed features of a frozen backbone: the head learns on fixed rows.
pub struct FrozenFeatures<'a> {
    features: ArrayView2<'a, f32>,
}

impl<'a> FrozenFeatures<'a> {
    pub fn new(features: ArrayView2<'a, f32>) -> Self {
        FrozenFeatures { features }
    }
}

impl FeatureSource for FrozenFeatures<'_> {
    fn len(&self) -> usize {
        self.features.nrows()
    }

    fn feature_dim(&self) -> usize {
        self.features.ncols()
    }

    fn eval_input_dim(&self) -> usize {
        self.features.ncols()
    }

    fn trains(&self) -> bool {
        false
    }

    fn batch(&mut self, batch: &[usize], _epoch: usize) -> Result<Array2<f32>> {
        Ok(self.features.select(Axis(0), batch))
    }

    fn backward(&mut self, _d_features: ArrayView2<f32>, _epoch: usize) -> Result<()> {
        Ok(())
    }

    fn eval_features<'b>(&self, rows: ArrayView2<'b, f32>) -> CowArray<'b, f32, Ix2> {
        CowArray::from(rows)
    }

    fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"frozen features\n");
        h.update((self.features.nrows() as u64).to_le_bytes());
        h.update((self.features.ncols() as u64).to_le_bytes());
        for v in self.features.iter() {
            h.update(v.to_le_bytes());
        }
        ics_codes::code::to_hex(&h.finalize())
    }

    fn state(&self) -> SourceState {
        SourceState::default()
    }

    fn restore(&mut self, _state: SourceState) -> Result<()> {
        Ok(())
    }
}
