//! Backbone files: what `ics-train backbone import` writes and every later command reads.
//!
//! A backbone file is an ONNX model whose metadata says how to use it, so later commands
//! need only its path:
//!
//! | key | value |
//! |---|---|
//! | `ics_train.backbone.feature_output` | the graph output holding the features |
//! | `ics_train.backbone.description` | e.g. `efficientnet-lite0@128px` |
//! | `ics_train.backbone.image_size` | S of the N x 3 x S x S input |
//! | `ics_train.backbone.resize` | `shorter-side-center-crop` or `stretch` |
//! | `ics_train.backbone.norm_mean`, `..norm_std` | `R,G,B` on the 0..=255 scale |
//! | `ics_train.backbone.feature_dim` | D, measured at import |
//!
//! These keys are not part of the `ics_hash.` model contract; the exporter keeps them in the
//! merged model as plain provenance.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use serde::{Deserialize, Serialize};

use super::features::Extractor;
use super::Backbone;
use crate::onnx::{load_model, save_model};

/// What a model file records of the backbone its features came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneRecord {
    /// The backbone file (absolute path when written).
    pub path: PathBuf,
    /// sha256 of the backbone's ONNX bytes as loaded: the feature cache key's first part.
    pub sha256: String,
    pub description: String,
    pub feature_dim: usize,
}

pub const KEY_FEATURE_OUTPUT: &str = "ics_train.backbone.feature_output";
pub const KEY_DESCRIPTION: &str = "ics_train.backbone.description";
pub const KEY_IMAGE_SIZE: &str = "ics_train.backbone.image_size";
pub const KEY_RESIZE: &str = "ics_train.backbone.resize";
pub const KEY_MEAN: &str = "ics_train.backbone.norm_mean";
pub const KEY_STD: &str = "ics_train.backbone.norm_std";
pub const KEY_FEATURE_DIM: &str = "ics_train.backbone.feature_dim";

/// Checks the backbone runs (one gray image through ONNX Runtime gives one feature vector),
/// writes it to `out` with its metadata, and returns the feature dimension.
pub fn save_backbone_file(bb: &Backbone, out: &Path, ort_threads: usize) -> Result<usize> {
    let mut ex = Extractor::new(bb, ort_threads).context("loading the backbone in ONNX Runtime")?;
    let (dim, values) = ex
        .run(&vec![0.0; bb.preprocess.output_len()], 1)
        .context("check run of the backbone on one image")?;
    ensure!(
        dim > 0 && values.iter().all(|v| v.is_finite()),
        "the backbone's feature \"{}\" is empty or not finite on a gray image",
        bb.feature_output
    );
    let p = &bb.preprocess;
    let mut model = bb.model().clone();
    let mut meta = model.metadata();
    meta.retain(|(k, _)| !k.starts_with("ics_train.backbone."));
    let join = |v: [f32; 3]| format!("{},{},{}", v[0], v[1], v[2]);
    meta.extend([
        (KEY_FEATURE_OUTPUT.to_string(), bb.feature_output.clone()),
        (KEY_DESCRIPTION.to_string(), bb.description.clone()),
        (KEY_IMAGE_SIZE.to_string(), p.size.to_string()),
        (KEY_RESIZE.to_string(), p.resize.as_str().to_string()),
        (KEY_MEAN.to_string(), join(p.mean)),
        (KEY_STD.to_string(), join(p.std)),
        (KEY_FEATURE_DIM.to_string(), dim.to_string()),
    ]);
    model.set_metadata(&meta);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    save_model(&model, out)?;
    Ok(dim)
}

/// A backbone file read back, with its feature dimension.
pub struct BackboneFile {
    pub backbone: Backbone,
    pub feature_dim: usize,
    pub path: PathBuf,
}

fn parse_triple(key: &str, v: &str, path: &Path) -> Result<[f32; 3]> {
    let parts: Vec<f32> = v
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .with_context(|| format!("{}: metadata {key} = {v:?} is not R,G,B", path.display()))?;
    ensure!(
        parts.len() == 3,
        "{}: metadata {key} = {v:?} is not R,G,B",
        path.display()
    );
    Ok([parts[0], parts[1], parts[2]])
}

impl BackboneFile {
    /// What a model file records of this backbone (its absolute path, sha256, description
    /// and feature dimension).
    pub fn record(&self) -> Result<BackboneRecord> {
        Ok(BackboneRecord {
            path: std::fs::canonicalize(&self.path)?,
            sha256: self.backbone.sha256.clone(),
            description: self.backbone.description.clone(),
            feature_dim: self.feature_dim,
        })
    }

    /// Reads a backbone file written by `backbone import` ([`save_backbone_file`]).
    pub fn load(path: &Path) -> Result<BackboneFile> {
        ensure!(
            path.is_file(),
            "backbone file {} not found (write one with `ics-train backbone import`)",
            path.display()
        );
        let model = load_model(path)?;
        let meta = model.metadata();
        let get = |key: &str| -> Result<String> {
            match meta.iter().find(|(k, _)| k == key) {
                Some((_, v)) => Ok(v.clone()),
                None => bail!(
                    "{}: metadata {key} is missing: not a backbone file written by `ics-train \
                     backbone import` (import it with --backbone {} --feature-output NAME)",
                    path.display(),
                    path.display()
                ),
            }
        };
        let num = |key: &str| -> Result<usize> {
            let v = get(key)?;
            v.parse().with_context(|| {
                format!("{}: metadata {key} = {v:?} is not a number", path.display())
            })
        };
        let resize_s = get(KEY_RESIZE)?;
        let preprocess = Preprocess {
            size: num(KEY_IMAGE_SIZE)? as u32,
            resize: ResizeMode::parse(&resize_s).with_context(|| {
                format!(
                    "{}: metadata {KEY_RESIZE} = {resize_s:?} is unknown",
                    path.display()
                )
            })?,
            mean: parse_triple(KEY_MEAN, &get(KEY_MEAN)?, path)?,
            std: parse_triple(KEY_STD, &get(KEY_STD)?, path)?,
        };
        let mut backbone = Backbone::from_model(
            model.clone(),
            &get(KEY_FEATURE_OUTPUT)?,
            preprocess,
            get(KEY_DESCRIPTION)?,
        )
        .with_context(|| format!("backbone file {}", path.display()))?;
        backbone.description = get(KEY_DESCRIPTION)?;
        Ok(BackboneFile {
            backbone,
            feature_dim: num(KEY_FEATURE_DIM)?,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::toy::toy_backbone;

    /// The toy backbone at 8 x 8, its features `pooled` (N x 3 x 1 x 1).
    fn toy() -> Backbone {
        let preprocess = Preprocess {
            size: 8,
            resize: ResizeMode::Stretch,
            mean: [1.0, 2.0, 3.0],
            std: [4.0, 5.0, 6.5],
        };
        Backbone::from_model(toy_backbone(8), "pooled", preprocess, "toy:pooled".into()).unwrap()
    }

    #[test]
    fn a_backbone_file_reads_back_as_written() {
        let dir = std::env::temp_dir().join(format!("ics-backbone-file-{}", std::process::id()));
        let path = dir.join("sub/toy-backbone.onnx");
        let bb = toy();
        assert_eq!(save_backbone_file(&bb, &path, 1).unwrap(), 3);
        let back = BackboneFile::load(&path).unwrap();
        assert_eq!(back.feature_dim, 3);
        assert_eq!(back.path, path);
        assert_eq!(back.backbone.preprocess, bb.preprocess);
        assert_eq!(back.backbone.feature_output, "pooled");
        assert_eq!(back.backbone.input_name, "input");
        assert_eq!(back.backbone.description, "toy:pooled");
        // An ONNX file without the metadata, and a missing file, are named.
        let plain = dir.join("plain.onnx");
        save_model(bb.model(), &plain).unwrap();
        let e = format!("{:#}", BackboneFile::load(&plain).err().unwrap());
        assert!(
            e.contains(&plain.display().to_string())
                && e.contains("is missing")
                && e.contains("backbone import"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            BackboneFile::load(&dir.join("none.onnx")).err().unwrap()
        );
        assert!(
            e.contains("not found") && e.contains("backbone import"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
