//! Dataset options shared by `features`, `train` and `eval`, and the feature extraction
//! options, parsed into the library's [`DataSpec`] and [`FeatureSettings`].
//!
//! A dataset is either a composed benchmark folder (`--data DIR`: splits train, query,
//! database with class names and areas) or one file per split (`--train`, `--query`,
//! `--database`): a HashNet list file (`path b_1 ... b_C`), or a COCO `instances_*.json` when the
//! name ends in `.json`. Errors about an image name the list file and line it came from.

use std::path::PathBuf;

use ics_train::data::{DataSpec, SplitName};
use ics_train::onnx::runtime::DeviceChoice;
use ics_train::workflow::FeatureSettings;

use super::ui;

/// Which split of a dataset (`--splits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    Train,
    Query,
    Database,
}

impl From<SplitArg> for SplitName {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => SplitName::Train,
            SplitArg::Query => SplitName::Query,
            SplitArg::Database => SplitName::Database,
        }
    }
}

/// Where the data is.
#[derive(Debug, Clone, Default, clap::Args, PartialEq)]
pub struct DataArgs {
    /// Composed benchmark folder (from `ics-train data compose`): splits train, query and
    /// database, class names and per-class areas.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Training split: a list file (one `path b_1 ... b_C` line per image, b = 0/1) or a COCO
    /// instances JSON (name ending in .json).
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub train: Option<PathBuf>,
    /// Query split (list file or COCO JSON), for evaluation.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub query: Option<PathBuf>,
    /// Database split (list file or COCO JSON), for evaluation.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub database: Option<PathBuf>,
    /// Folder the image paths of --train/--query/--database are relative to [default: the
    /// folder of each list file].
    #[arg(long, value_name = "DIR", conflicts_with = "data")]
    pub image_root: Option<PathBuf>,
    /// Class names, one a line in label-column order (list files carry none).
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub classes: Option<PathBuf>,
    /// Areas file of the training split (TSV: image, class, pixel_area, box_area), for the
    /// weight-vs-area agreement.
    #[arg(long, value_name = "FILE", conflicts_with = "data")]
    pub train_areas: Option<PathBuf>,
}

impl DataArgs {
    /// The data the flags give (empty when none is given).
    pub fn spec(&self) -> DataSpec {
        DataSpec {
            composed_dir: self.data.clone(),
            train_file: self.train.clone(),
            query_file: self.query.clone(),
            database_file: self.database.clone(),
            image_root: self.image_root.clone(),
            classes_file: self.classes.clone(),
            train_areas_file: self.train_areas.clone(),
        }
    }
}

/// Options of feature extraction shared by the commands that need features.
#[derive(Debug, Clone, clap::Args)]
pub struct FeatureArgs {
    /// Feature cache folder [default: DATA/features, or features/ beside the first split file].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Images per ONNX Runtime call.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch: usize,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub ort_threads: usize,
    /// Where the backbone runs: ONNX Runtime's feature extraction and frozen prefixes, and
    /// fine-tuning (--finetune top:N|all). cuda: an NVIDIA GPU (fine-tuning needs an
    /// ics-train built with --features cuda), an error saying what is missing otherwise;
    /// auto: the GPU when it can run, else the CPU with a note [default: cpu].
    #[arg(long, value_name = "auto|cpu|cuda", default_value = "cpu")]
    pub device: DeviceChoice,
}

impl FeatureArgs {
    /// The settings, with progress bars unless `--quiet`.
    pub fn settings(&self) -> FeatureSettings {
        FeatureSettings {
            cache_dir: self.cache_dir.clone(),
            batch: self.batch,
            ort_threads: self.ort_threads,
            progress: !ui::quiet(),
            device: self.device,
        }
    }
}
