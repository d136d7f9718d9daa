//! The frozen part of a `top:N` run: the network up to the first trained stage, as an ONNX
//! graph ([`crate::backbone::efficientnet::build_prefix`]) run by ONNX Runtime, which is about
//! four times faster than a burn forward pass here and needs no gradients.
//!
//! Its output, the activation entering the first trained stage, is what the trained part
//! starts from. Without augmentation it is computed once per image and cached (in memory,
//! and on disk through the feature cache, keyed by the prefix graph's bytes and the images);
//! with augmentation each batch's augmented images go through it.

use anyhow::Result;
use ics_encoder::preprocess::Preprocess;

use crate::backbone::architecture::Boundary;
use crate::backbone::efficientnet::build_prefix;
use crate::backbone::features::{extract_features, Extracted, Extractor, ImageSource};
use crate::backbone::folded::NetworkWeights;
use crate::backbone::{Backbone, FeatureOptions};

/// The frozen part of a network, up to the input of stage `boundary.stage`.
pub struct Prefix {
    backbone: Backbone,
    pub boundary: Boundary,
}

impl Prefix {
    /// The part of `weights` before stage `stage` for `preprocess.size` px images.
    pub fn new(weights: &NetworkWeights, preprocess: Preprocess, stage: usize) -> Result<Prefix> {
        let model = build_prefix(weights, preprocess.size, stage)?;
        let boundary = weights.arch.boundary(stage, preprocess.size as usize);
        let backbone = Backbone::from_model(
            model,
            &boundary.value,
            preprocess,
            format!(
                "{}@{}px up to stage {stage}",
                weights.arch.name, preprocess.size
            ),
        )?;
        Ok(Prefix { backbone, boundary })
    }

    /// The activations of every image (rows of C x H x W values), through the feature cache
    /// when `opts.cache_dir` is set.
    pub fn extract(&self, images: &dyn ImageSource, opts: &FeatureOptions) -> Result<Extracted> {
        let opts = FeatureOptions {
            maps: true,
            ..opts.clone()
        };
        extract_features(&self.backbone, images, &opts)
    }

    /// A session for preprocessed batches (rows of C x H x W values), ONNX Runtime on
    /// `opts.device`.
    pub fn session(&self, opts: &FeatureOptions) -> Result<Extractor> {
        Ok(Extractor::on(&self.backbone, opts.intra_threads, opts.device)?.with_maps(true))
    }
}
