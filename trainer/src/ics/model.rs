//! A trained model: the head, the centres, the per-image weights, the configuration and the
//! training history; encodes features to packed codes.
//!
//! For the ONNX exporter: [`IcsModel::layers`] gives the layers in order, layer `i` computing
//! `y = x · W + b` with `W` of shape **(in, out)** (row-major `f32`; ONNX `Gemm` with
//! `transB = 0`) and `b` of shape (out); [`IcsModel::activations`] gives the activation after
//! each (`Relu` after hidden layers, `Tanh` after the last). Dropout is training-only
//! (inverted dropout), so it is absent from the exported graph. The code of an image is
//! `pack_signs(tanh outputs)`: bit `j` is 1 iff output `j >= 0`, most significant bit first.

use ndarray::{s, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use super::centres::Centres;
use super::config::TrainConfig;
use super::diagnostics::WeightDiagnostics;
use super::head::{Activation, HashHead, Linear};
use super::weights::InstanceWeights;
use crate::codes::PackedCodes;

/// One epoch's numbers, passed to the callback and kept in the model's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochLog {
    /// 1-based.
    pub epoch: usize,
    pub lr: f64,
    /// Mean over images of the full objective: `centre + λ_q · quantization` plus, for ICS,
    /// `λ_r Σ_k w_ik ln w_ik` (the negative entropy term).
    pub loss: f64,
    /// Mean `l(u_i, c̄_i)` (mean over bits).
    pub centre: f64,
    /// Mean `mean_j (|u_ij| − 1)²`, before `λ_q`.
    pub quantization: f64,
    /// Mean entropy (nats) of the per-image weights over the whole training set at the end
    /// of the epoch (`ln |L_i|` averaged while they are uniform).
    pub weight_entropy: f64,
    /// Whether the weights were updated this epoch (false during warm-up and for CSQ).
    pub weights_updated: bool,
    /// mAP@R on the evaluation set, on the epochs it is computed.
    pub map: Option<f64>,
    /// Wall time of the epoch, evaluation included.
    pub seconds: f64,
    /// Weight entropy and loss spread over the multi-label images, and agreement with the
    /// true areas when known (absent in histories written before it was logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<WeightDiagnostics>,
}

/// Rows per forward chunk when encoding a whole data set: bounds the size of the hidden
/// activations (4096 × 2048 f32 = 32 MB) whatever the data size.
const ENCODE_CHUNK: usize = 4096;

/// The result of [`super::train::train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IcsModel {
    pub(crate) config: TrainConfig,
    pub(crate) head: HashHead<f32>,
    pub(crate) centres: Centres,
    pub(crate) weights: InstanceWeights,
    pub(crate) history: Vec<EpochLog>,
}

impl IcsModel {
    /// Assembles a model (e.g. from parts read back from disk).
    pub fn new(
        config: TrainConfig,
        head: HashHead<f32>,
        centres: Centres,
        weights: InstanceWeights,
        history: Vec<EpochLog>,
    ) -> IcsModel {
        IcsModel {
            config,
            head,
            centres,
            weights,
            history,
        }
    }

    /// `tanh` outputs `u` for features (n, d) -> (n, K).
    ///
    /// # Panics
    /// If `features` has not [`IcsModel::input_dim`] columns.
    pub fn forward(&self, features: ArrayView2<f32>) -> Array2<f32> {
        forward_chunked(&self.head, features)
    }

    /// Packed codes of features, one `Vec<u8>` of `bits/8` bytes per row. Features must be
    /// finite (a NaN output has no sign and packs as 0).
    pub fn encode(&self, features: ArrayView2<f32>) -> Vec<Vec<u8>> {
        self.encode_packed(features).to_vecs()
    }

    /// The same codes, contiguous, ready for the Hamming kernels.
    pub fn encode_packed(&self, features: ArrayView2<f32>) -> PackedCodes {
        encode_packed(&self.head, features)
    }

    pub fn config(&self) -> &TrainConfig {
        &self.config
    }
    pub fn head(&self) -> &HashHead<f32> {
        &self.head
    }
    /// Layers in order; layout in the module docs.
    pub fn layers(&self) -> &[Linear<f32>] {
        self.head.layers()
    }
    /// Activation after each layer, in layer order.
    pub fn activations(&self) -> Vec<Activation> {
        (0..self.head.layers().len())
            .map(|i| self.head.activation(i))
            .collect()
    }
    pub fn input_dim(&self) -> usize {
        self.head.input_dim()
    }
    pub fn bits(&self) -> usize {
        self.head.bits()
    }
    pub fn centres(&self) -> &Centres {
        &self.centres
    }
    /// Final per-image weights, by training-set index.
    pub fn weights(&self) -> &InstanceWeights {
        &self.weights
    }
    /// One entry per epoch.
    pub fn history(&self) -> &[EpochLog] {
        &self.history
    }
}

pub(crate) fn forward_chunked(head: &HashHead<f32>, features: ArrayView2<f32>) -> Array2<f32> {
    assert_eq!(
        features.ncols(),
        head.input_dim(),
        "features have {} columns, the head takes {}",
        features.ncols(),
        head.input_dim()
    );
    let mut out = Array2::<f32>::zeros((features.nrows(), head.bits()));
    for (i, chunk) in features.axis_chunks_iter(Axis(0), ENCODE_CHUNK).enumerate() {
        let start = i * ENCODE_CHUNK;
        out.slice_mut(s![start..start + chunk.nrows(), ..])
            .assign(&head.forward(chunk));
    }
    out
}

pub(crate) fn encode_packed(head: &HashHead<f32>, features: ArrayView2<f32>) -> PackedCodes {
    PackedCodes::from_signs(forward_chunked(head, features).view())
}
