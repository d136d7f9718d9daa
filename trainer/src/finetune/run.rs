//! A whole fine-tuning run, from an EfficientNet-Lite0 backbone file and datasets to a trained
//! model with its fine-tuned backbone (what `ics-train train --finetune` and `ics-train bench`
//! call), and the backbone of a model file (fine-tuned, or the file it was trained on).
//!
//! Steps: the backbone's folded weights are read back from its graph; for `top:N` the frozen
//! prefix's activations of the training images (unless augmenting) and of the evaluation
//! images are computed once in ONNX Runtime (cached on disk when a cache folder is given); for
//! `all` the evaluation images are kept preprocessed in memory (4 bytes per value: 196 KB per
//! 128-px image). Then the training loop runs on a [`FinetuneSource`], and at the end the
//! evaluation features are computed with the trained network.

use std::time::Instant;

use anyhow::{Context, Result};
use ics_encoder::decode::DEFAULT_MAX_PIXELS;
use ics_encoder::preprocess::Preprocess;
use ndarray::Array2;

use super::device;
use super::network::Start;
use super::prefix::Prefix;
use super::source::{start_of, FinetuneSource, PassTimes, TrainInputs};
use crate::backbone::architecture::Architecture;
use crate::backbone::features::{preprocess_indices, ImageSource};
use crate::backbone::file::BackboneFile;
use crate::backbone::folded::NetworkWeights;
use crate::backbone::{Backbone, FeatureOptions};
use crate::data::Dataset;
use crate::eval::EvalSet;
use crate::ics::{train_source, Checkpointing, EpochLog, FinetuneMode, IcsModel, TrainConfig};
use crate::model_file::{FinetunedRecord, ModelFile};

/// What a fine-tuning run reads.
pub struct FinetuneInputs<'a> {
    /// The backbone file it starts from (EfficientNet-Lite0 from `ics-train backbone import`).
    pub backbone: &'a Backbone,
    pub train: &'a Dataset,
    /// Query and database sets for the per-epoch mAP@R (and the final features).
    pub eval: Option<(&'a Dataset, &'a Dataset)>,
    /// R of mAP@R.
    pub r: usize,
    /// ONNX Runtime batch, threads and cache folder of the frozen prefix, and the device
    /// (`features.device`) both the prefix and the trained part run on.
    pub features: FeatureOptions,
}

/// What a fine-tuning run produced.
pub struct FinetuneOutcome {
    pub model: IcsModel,
    /// The trained backbone's folded weights.
    pub weights: NetworkWeights,
    /// The trained backbone as an ONNX backbone (what the exported model runs).
    pub backbone: Backbone,
    /// Features of the query and database images under the trained backbone.
    pub eval_features: Option<(Array2<f32>, Array2<f32>)>,
    pub start: Start,
    pub trained_parameters: usize,
    /// Time in the trained part's passes and on inputs, and the images it saw.
    pub times: PassTimes,
    /// Seconds before training: weights, prefix activations, evaluation inputs.
    pub prepare_seconds: f64,
}

impl FinetuneOutcome {
    /// Training images per second through the trained part's forward and backward passes
    /// (the backbone's Adam step included).
    pub fn images_per_second(&self) -> f64 {
        self.times.images as f64 / self.times.network_seconds.max(1e-9)
    }

    /// The model file's record of the fine-tuned backbone.
    pub fn record(&self, mode: FinetuneMode) -> FinetunedRecord {
        finetuned_record(&self.weights, &self.backbone, mode)
    }
}

/// The weights of a backbone the trainer can fine-tune: EfficientNet-Lite0 graphs from
/// `ics-train backbone import` (their description starts with `efficientnet-lite0@`), or
/// another architecture the trainer knows by name ([`Architecture::known`]; tests use a tiny
/// one).
pub fn finetunable_weights(backbone: &Backbone) -> Result<NetworkWeights> {
    let name = backbone.description.split('@').next().unwrap_or_default();
    let arch = Architecture::known(name)
        .filter(|_| backbone.description.contains('@'))
        .with_context(|| {
            format!(
                "fine-tuning needs an EfficientNet-Lite0 backbone file from `ics-train backbone \
                 import`; this backbone is {:?} (other ONNX backbones can only be used frozen: \
                 --finetune none)",
                backbone.description
            )
        })?;
    let mut w = NetworkWeights::from_onnx(backbone.model(), &arch)
        .context("reading the backbone's weights for fine-tuning")?;
    // The ImageNet classifier plays no part in hashing and is not trained.
    w.classifier = None;
    Ok(w)
}

/// Preprocessed images as rows of 3 x S x S values.
fn image_rows(images: &dyn ImageSource, p: &Preprocess) -> Result<Array2<f32>> {
    let idx: Vec<usize> = (0..images.len()).collect();
    let mut rows = Vec::with_capacity(idx.len() * p.output_len());
    for chunk in idx.chunks(256) {
        rows.extend(preprocess_indices(images, chunk, p, DEFAULT_MAX_PIXELS)?);
    }
    Ok(Array2::from_shape_vec((idx.len(), p.output_len()), rows)?)
}

/// Trains a hash head and fine-tunes the backbone as `config.finetune` says (see the module
/// docs). `on_epoch` is called once per epoch.
pub fn train_finetuned(
    inputs: &FinetuneInputs,
    config: &TrainConfig,
    checkpointing: Option<&Checkpointing>,
    on_epoch: impl FnMut(&EpochLog),
) -> Result<FinetuneOutcome> {
    config.validate()?;
    let prepare = Instant::now();
    let (compute, _) = device::resolve(inputs.features.device)?;
    let weights = finetunable_weights(inputs.backbone)?;
    let start = start_of(config.finetune.mode, &weights.arch)?;
    let p = inputs.backbone.preprocess;
    let prefix = match start {
        Start::Image => None,
        Start::Stage(s) => Some(Prefix::new(&weights, p, s)?),
    };
    let rows_of = |images: &Dataset| -> Result<Array2<f32>> {
        match &prefix {
            Some(pr) => Ok(pr.extract(images, &inputs.features)?.features),
            None => image_rows(images, &p),
        }
    };
    let eval_rows = match inputs.eval {
        Some((q, db)) => Some((rows_of(q)?, rows_of(db)?)),
        None => None,
    };
    let cached_train;
    let train_inputs = if config.finetune.augment || prefix.is_none() {
        TrainInputs::Images {
            images: inputs.train,
            prefix: match &prefix {
                Some(pr) => Some(pr.session(&inputs.features)?),
                None => None,
            },
        }
    } else {
        cached_train = rows_of(inputs.train)?;
        TrainInputs::Cached(cached_train.view())
    };
    let eval = match (&eval_rows, inputs.eval) {
        (Some((qr, dr)), Some((q, db))) => Some(
            EvalSet::new(
                qr.view(),
                q.labels().view(),
                dr.view(),
                db.labels().view(),
                inputs.r,
            )?
            .with_train_areas(inputs.train.areas().map(|a| a.pixel.view())),
        ),
        _ => None,
    };
    let mut source = FinetuneSource::new(weights, config, p, train_inputs, compute)?;
    let trained_parameters = source.trained_parameters();
    let prepare_seconds = prepare.elapsed().as_secs_f64();
    let model = train_source(
        &mut source,
        inputs.train.labels().view(),
        config,
        eval.as_ref().map(|e| e as &dyn crate::ics::EpochEval),
        checkpointing,
        on_epoch,
    )?;
    let eval_features = eval_rows.as_ref().map(|(qr, dr)| {
        use crate::ics::FeatureSource;
        (
            source.eval_features(qr.view()).into_owned(),
            source.eval_features(dr.view()).into_owned(),
        )
    });
    let times = source.times();
    let weights = source.weights().clone();
    let description = format!(
        "{} fine-tuned {}",
        inputs.backbone.description, config.finetune.mode
    );
    let backbone = Backbone::from_weights(&weights, p, description)?;
    Ok(FinetuneOutcome {
        model,
        weights,
        backbone,
        eval_features,
        start,
        trained_parameters,
        times,
        prepare_seconds,
    })
}

/// The model file's record of fine-tuned `weights` built into `backbone`.
pub fn finetuned_record(
    weights: &NetworkWeights,
    backbone: &Backbone,
    mode: FinetuneMode,
) -> FinetunedRecord {
    let p = backbone.preprocess;
    let tensors = weights.to_named();
    FinetunedRecord {
        architecture: weights.arch.clone(),
        description: backbone.description.clone(),
        mode,
        image_size: p.size,
        resize: p.resize,
        norm_mean: p.mean,
        norm_std: p.std,
        tensor_names: tensors.iter().map(|t| t.0.clone()).collect(),
        tensors,
    }
}

/// The fine-tuned network a model file carries: its weights and preprocessing.
pub fn finetuned_weights(f: &FinetunedRecord) -> Result<(NetworkWeights, Preprocess)> {
    let weights = NetworkWeights::from_named(
        &f.architecture,
        f.tensors.iter().map(|(n, _, v)| (n.clone(), v.clone())),
    )
    .context("the model file's fine-tuned backbone")?;
    let preprocess = Preprocess {
        size: f.image_size,
        resize: f.resize,
        mean: f.norm_mean,
        std: f.norm_std,
    };
    Ok((weights, preprocess))
}

/// The backbone a model's features come from: the fine-tuned network the model file carries,
/// else the backbone file at `path` (the recorded one unless the caller chose another).
pub fn model_backbone(mf: &ModelFile, path: Option<&std::path::Path>) -> Result<BackboneFile> {
    if let Some(f) = &mf.finetuned {
        let (weights, preprocess) = finetuned_weights(f)?;
        let backbone = Backbone::from_weights(&weights, preprocess, f.description.clone())?;
        return Ok(BackboneFile {
            feature_dim: weights.arch.head_channels,
            backbone,
            path: mf
                .backbone
                .as_ref()
                .map(|r| r.path.clone())
                .unwrap_or_default(),
        });
    }
    let path = path
        .map(std::path::Path::to_path_buf)
        .or_else(|| mf.backbone.as_ref().map(|r| r.path.clone()))
        .context("the model file records no backbone: give one")?;
    BackboneFile::load(&path)
}
