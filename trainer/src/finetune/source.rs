//! The feature source of a fine-tuning run: it runs the trained part of the backbone on each
//! mini-batch (burn, tracked for gradients), hands the features to the training loop, takes
//! `∂L/∂features` back, back-propagates it through the network (a vector-Jacobian product:
//! the gradient of `Σ features ⊙ ∂L/∂features`) and takes one Adam step on the trained
//! convolutions at the backbone's learning rate.
//!
//! Inputs of the trained part: the cached activations entering its first stage (`top:N`
//! without augmentation), or images preprocessed per batch (`all`, or augmentation), which
//! for `top:N` then go through the frozen prefix in ONNX Runtime first.

use std::cell::RefCell;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ics_encoder::decode::DEFAULT_MAX_PIXELS;
use ics_encoder::preprocess::Preprocess;
use ndarray::{Array2, ArrayView2, CowArray, Ix2};
use sha2::{Digest, Sha256};

use super::augment;
use super::device::{Compute, PendingPass};
use super::network::{trained_convs, Start};
use crate::backbone::architecture::Architecture;
use crate::backbone::features::{preprocess_indices, Extractor, ImageSource};
use crate::backbone::folded::NetworkWeights;
use crate::ics::adam::{Adam, AdamState};
use crate::ics::{FeatureSource, FinetuneMode, SourceState, TrainConfig};

/// Rows per forward pass when computing evaluation features.
const EVAL_CHUNK: usize = 128;

/// Where the trained part of `arch` starts for `mode`; an error naming the valid range when
/// `top:N` asks for more stages than the network has.
pub fn start_of(mode: FinetuneMode, arch: &Architecture) -> Result<Start> {
    let stages = arch.stage_count();
    match mode {
        FinetuneMode::None => bail!("finetune mode none trains no backbone layer"),
        FinetuneMode::All => Ok(Start::Image),
        FinetuneMode::Top(n) => {
            ensure!(
                (1..=stages).contains(&n),
                "--finetune top:{n}: {} has {stages} MBConv stages, so N must be 1..={stages} \
                 (top:{stages} trains all but the stem; all trains every layer)",
                arch.name
            );
            Ok(Start::Stage(stages - n + 1))
        }
    }
}

/// What the trained part reads for training images.
pub enum TrainInputs<'a> {
    /// Rows of the activation entering the first trained stage, computed once.
    Cached(ArrayView2<'a, f32>),
    /// Images, preprocessed (and augmented) per batch; `prefix` runs the frozen part when
    /// the trained part does not start at the image.
    Images {
        images: &'a dyn ImageSource,
        prefix: Option<Extractor>,
    },
}

/// Time and images of the trained part's passes, for the images/s the benchmark reports.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PassTimes {
    /// Images through forward + backward.
    pub images: usize,
    /// Seconds in the trained part's forward and backward passes and the backbone's Adam
    /// step (not the frozen prefix, the preprocessing or the head).
    pub network_seconds: f64,
    /// Seconds preparing inputs (preprocessing, augmentation, the ONNX Runtime prefix).
    pub input_seconds: f64,
}

/// The fine-tuning feature source.
pub struct FinetuneSource<'a> {
    config: TrainConfig,
    start: Start,
    weights: NetworkWeights,
    /// Names of the trained convolutions, in network order.
    trained: Vec<String>,
    adam: Adam<f32>,
    preprocess: Preprocess,
    inputs: TrainInputs<'a>,
    /// C, H, W of one input row.
    input_shape: [usize; 3],
    compute: Compute,
    /// The forward pass waiting for its backward pass, and its feature shape.
    pending: Option<(PendingPass, (usize, usize))>,
    fingerprint: String,
    times: PassTimes,
    /// Optimiser steps taken: the network's version, for [`EvalMemo`].
    steps: u64,
    memo: RefCell<Vec<EvalMemo>>,
}

/// Evaluation features of one set of rows under one version of the network: the last
/// evaluation epoch's query and database features are asked for again once training ends,
/// and computing them costs about as much as a tenth of an epoch.
struct EvalMemo {
    /// The rows' address and shape (the caller's arrays outlive the run).
    rows: (usize, (usize, usize)),
    steps: u64,
    features: Array2<f32>,
}

impl<'a> FinetuneSource<'a> {
    /// A source training `weights` (the backbone's folded weights at the start) as
    /// `config.finetune` says, on `inputs` of images preprocessed by `preprocess`, with the
    /// network on `compute`.
    pub fn new(
        weights: NetworkWeights,
        config: &TrainConfig,
        preprocess: Preprocess,
        inputs: TrainInputs<'a>,
        compute: Compute,
    ) -> Result<FinetuneSource<'a>> {
        config.validate()?;
        weights.check()?;
        let start = start_of(config.finetune.mode, &weights.arch)?;
        let size = preprocess.size as usize;
        let input_shape = match start {
            Start::Image => [3, size, size],
            Start::Stage(s) => {
                let b = weights.arch.boundary(s, size);
                [b.channels, b.spatial, b.spatial]
            }
        };
        match &inputs {
            TrainInputs::Cached(rows) => {
                ensure!(
                    !config.finetune.augment,
                    "augmentation needs the images, not cached activations"
                );
                ensure!(
                    rows.ncols() == input_shape.iter().product::<usize>(),
                    "cached rows have {} values, the trained part takes {input_shape:?}",
                    rows.ncols()
                );
            }
            TrainInputs::Images { prefix, .. } => {
                ensure!(
                    prefix.is_some() == (start != Start::Image),
                    "a frozen prefix is needed exactly when the trained part starts inside \
                     the network"
                );
            }
        }
        let trained = trained_convs(&weights, start);
        let sizes: Vec<usize> = weights
            .convs()
            .into_iter()
            .filter(|c| trained.contains(&c.name))
            .flat_map(|c| [c.weight.len(), c.bias.len()])
            .collect();
        let adam = Adam::for_sizes(&sizes, config.weight_decay);
        let fingerprint = fingerprint(&weights, config, &preprocess, &inputs)?;
        Ok(FinetuneSource {
            config: config.clone(),
            start,
            weights,
            trained,
            adam,
            preprocess,
            inputs,
            input_shape,
            compute,
            pending: None,
            fingerprint,
            times: PassTimes::default(),
            steps: 0,
            memo: RefCell::new(Vec::new()),
        })
    }

    /// The backbone's weights as trained so far.
    pub fn weights(&self) -> &NetworkWeights {
        &self.weights
    }

    /// Where the trained part starts.
    pub fn start(&self) -> Start {
        self.start
    }

    /// Parameters the run trains.
    pub fn trained_parameters(&self) -> usize {
        self.weights
            .convs()
            .iter()
            .filter(|c| self.trained.contains(&c.name))
            .map(|c| c.weight.len() + c.bias.len())
            .sum()
    }

    /// Time spent so far in the trained part and on inputs.
    pub fn times(&self) -> PassTimes {
        self.times
    }

    /// Input rows of training images `batch` (preprocessed, augmented, through the prefix).
    fn input_rows(&mut self, batch: &[usize], epoch: usize) -> Result<Vec<f32>> {
        let n = self.len();
        let (images, prefix) = match &mut self.inputs {
            TrainInputs::Cached(rows) => {
                return Ok(batch.iter().flat_map(|&i| rows.row(i).to_vec()).collect())
            }
            TrainInputs::Images { images, prefix } => (*images, prefix),
        };
        let size = self.preprocess.size as usize;
        let mut x = preprocess_indices(images, batch, &self.preprocess, DEFAULT_MAX_PIXELS)?;
        if self.config.finetune.augment {
            let item = 3 * size * size;
            for (img, &i) in x.chunks_mut(item).zip(batch) {
                augment::apply(
                    img,
                    size,
                    augment::draw(self.config.seed, epoch, i, n, size),
                );
            }
        }
        match prefix {
            Some(p) => {
                let (d, rows) = p.run(&x, batch.len())?;
                ensure!(
                    d == self.input_shape.iter().product::<usize>(),
                    "the frozen prefix gave {d} values per image"
                );
                Ok(rows)
            }
            None => Ok(x),
        }
    }

    /// The shape of `n` input rows.
    fn input_dims(&self, n: usize) -> [usize; 4] {
        let [c, h, w] = self.input_shape;
        [n, c, h, w]
    }
}

/// The `trained` convolutions' tensors of `weights`, flat, in Adam's order (weight, bias per
/// convolution, network order).
fn trained_slices<'w>(weights: &'w mut NetworkWeights, trained: &[String]) -> Vec<&'w mut [f32]> {
    weights
        .convs_mut()
        .into_iter()
        .filter(|c| trained.contains(&c.name))
        .flat_map(|c| [c.weight.as_mut_slice(), c.bias.as_mut_slice()])
        .collect()
}

/// What identifies a fine-tuning source: the starting weights, the settings that shape the
/// inputs, and the training inputs themselves.
fn fingerprint(
    weights: &NetworkWeights,
    config: &TrainConfig,
    preprocess: &Preprocess,
    inputs: &TrainInputs,
) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"finetune source\n");
    h.update(serde_json::to_vec(&weights.arch)?);
    h.update(config.finetune.mode.to_string().as_bytes());
    h.update([u8::from(config.finetune.augment)]);
    h.update(preprocess.describe().as_bytes());
    for (name, _, values) in weights.to_named() {
        h.update(name.as_bytes());
        for v in values {
            h.update(v.to_le_bytes());
        }
    }
    match inputs {
        TrainInputs::Cached(rows) => {
            h.update(b"cached\n");
            for v in rows.iter() {
                h.update(v.to_le_bytes());
            }
        }
        TrainInputs::Images { images, .. } => {
            h.update(b"images\n");
            for i in 0..images.len() {
                images.fingerprint(i, &mut h)?;
            }
        }
    }
    Ok(ics_codes::code::to_hex(&h.finalize()))
}

impl FeatureSource for FinetuneSource<'_> {
    fn len(&self) -> usize {
        match &self.inputs {
            TrainInputs::Cached(rows) => rows.nrows(),
            TrainInputs::Images { images, .. } => images.len(),
        }
    }

    fn feature_dim(&self) -> usize {
        self.weights.arch.head_channels
    }

    fn eval_input_dim(&self) -> usize {
        self.input_shape.iter().product()
    }

    fn trains(&self) -> bool {
        true
    }

    fn batch(&mut self, batch: &[usize], epoch: usize) -> Result<Array2<f32>> {
        let t0 = Instant::now();
        let rows = self.input_rows(batch, epoch)?;
        let t1 = Instant::now();
        let (host, pass) = self.compute.forward(
            &self.weights,
            self.start,
            rows,
            self.input_dims(batch.len()),
        );
        let out = Array2::from_shape_vec((batch.len(), self.feature_dim()), host)?;
        if let Some(i) = out
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|v| !v.is_finite()))
        {
            bail!(
                "the fine-tuned backbone gave non-finite features for training image {} \
                 (the backbone learning rate may be too high)",
                batch[i]
            );
        }
        self.pending = Some((pass, out.dim()));
        self.times.input_seconds += (t1 - t0).as_secs_f64();
        self.times.network_seconds += t1.elapsed().as_secs_f64();
        Ok(out)
    }

    fn backward(&mut self, d_features: ArrayView2<f32>, epoch: usize) -> Result<()> {
        let t0 = Instant::now();
        let (pass, (n, d)) = self
            .pending
            .take()
            .context("backward without a forward pass")?;
        ensure!(
            d_features.dim() == (n, d),
            "feature gradient of shape {:?} for features {n} x {d}",
            d_features.dim()
        );
        let g: Vec<f32> = d_features.as_standard_layout().iter().copied().collect();
        let grads = self.compute.backward(pass, g);
        let flat: Vec<Vec<f32>> = grads.into_iter().flat_map(|(_, w, b)| [w, b]).collect();
        let lr = self.config.backbone_lr_at(epoch);
        // Weight decay on convolution weights, not biases (as for the head).
        self.adam.step_slices(
            trained_slices(&mut self.weights, &self.trained),
            flat.iter().map(Vec::as_slice).collect(),
            |i| i % 2 == 0,
            lr,
        );
        self.steps += 1;
        self.times.images += n;
        self.times.network_seconds += t0.elapsed().as_secs_f64();
        Ok(())
    }

    fn eval_features<'b>(&self, rows: ArrayView2<'b, f32>) -> CowArray<'b, f32, Ix2> {
        let key = (rows.as_ptr() as usize, rows.dim());
        if let Some(m) = self
            .memo
            .borrow()
            .iter()
            .find(|m| m.rows == key && m.steps == self.steps)
        {
            return CowArray::from(m.features.clone());
        }
        let out = self.compute_eval_features(rows);
        let mut memo = self.memo.borrow_mut();
        memo.retain(|m| m.steps == self.steps && m.rows != key);
        memo.push(EvalMemo {
            rows: key,
            steps: self.steps,
            features: out.clone(),
        });
        CowArray::from(out)
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    fn state(&self) -> SourceState {
        let mut tensors = Vec::new();
        for c in self.weights.convs() {
            if self.trained.contains(&c.name) {
                tensors.push((
                    format!("{}.weight", c.name),
                    c.weight_shape().to_vec(),
                    c.weight.clone(),
                ));
                tensors.push((format!("{}.bias", c.name), vec![c.out], c.bias.clone()));
            }
        }
        let s = self.adam.state();
        for (i, (m, v)) in s.m.iter().zip(&s.v).enumerate() {
            tensors.push((format!("adam.m.{i}"), vec![m.len()], m.clone()));
            tensors.push((format!("adam.v.{i}"), vec![v.len()], v.clone()));
        }
        SourceState {
            tensors,
            json: serde_json::json!({ "adam_steps": s.steps, "mode": self.config.finetune.mode.to_string() }),
        }
    }

    fn restore(&mut self, state: SourceState) -> Result<()> {
        let steps = state
            .json
            .get("adam_steps")
            .and_then(serde_json::Value::as_i64)
            .context("the checkpoint has no backbone optimiser state")?;
        let mut named: std::collections::HashMap<String, Vec<f32>> =
            state.tensors.into_iter().map(|(n, _, v)| (n, v)).collect();
        let trained = self.trained.clone();
        for c in self.weights.convs_mut() {
            if !trained.contains(&c.name) {
                continue;
            }
            for (suffix, values) in [("weight", &mut c.weight), ("bias", &mut c.bias)] {
                let key = format!("{}.{suffix}", c.name);
                let v = named
                    .remove(&key)
                    .with_context(|| format!("the checkpoint has no backbone tensor {key}"))?;
                ensure!(
                    v.len() == values.len(),
                    "backbone tensor {key}: {} values, {} expected",
                    v.len(),
                    values.len()
                );
                *values = v;
            }
        }
        let count = self.adam.state().m.len();
        let (mut m, mut v) = (Vec::new(), Vec::new());
        for i in 0..count {
            m.push(
                named
                    .remove(&format!("adam.m.{i}"))
                    .context("the checkpoint lacks backbone optimiser moments")?,
            );
            v.push(
                named
                    .remove(&format!("adam.v.{i}"))
                    .context("the checkpoint lacks backbone optimiser moments")?,
            );
        }
        self.adam.restore(AdamState {
            steps: i32::try_from(steps).context("optimiser step count")?,
            m,
            v,
        })?;
        self.pending = None;
        self.memo.borrow_mut().clear();
        Ok(())
    }
}

impl FinetuneSource<'_> {
    /// Features of evaluation rows under the current weights, in chunks, without gradients.
    fn compute_eval_features(&self, rows: ArrayView2<f32>) -> Array2<f32> {
        self.compute.features(
            &self.weights,
            self.start,
            rows,
            self.input_shape,
            EVAL_CHUNK,
        )
    }
}
