//! Dataset options shared by `features`, `train`, `eval` and `export`, and feature
//! extraction through the cache.
//!
//! A dataset is either a composed benchmark folder (`--data DIR`: splits train, query,
//! database with class names and areas) or one file per split (`--train`, `--query`,
//! `--database`): a HashNet list file (`path b_1 ... b_C`), or a COCO `instances_*.json` when the
//! name ends in `.json`. Errors about an image name the list file and line it came from.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_train::backbone::{
    extract_features, Backbone, Extracted, FeatureOptions, ImageSource, Pixels,
};
use ics_train::data::listfile::parse_list;
use ics_train::data::{
    load_composed_split, read_areas, read_class_names, read_coco_instances, read_list_file,
    CocoOptions, Dataset, ImageRef,
};
use ics_train::model_file::DataRecord;
use sha2::Sha256;

use super::ui;

/// Which split of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitName {
    Train,
    Query,
    Database,
}

impl SplitName {
    pub const ALL: [SplitName; 3] = [SplitName::Train, SplitName::Query, SplitName::Database];

    pub fn name(self) -> &'static str {
        match self {
            SplitName::Train => "train",
            SplitName::Query => "query",
            SplitName::Database => "database",
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

/// The options a model file recorded.
impl From<&DataRecord> for DataArgs {
    fn from(r: &DataRecord) -> Self {
        DataArgs {
            data: r.composed_dir.clone(),
            train: r.train_file.clone(),
            query: r.query_file.clone(),
            database: r.database_file.clone(),
            image_root: r.image_root.clone(),
            classes: r.classes_file.clone(),
            train_areas: r.train_areas_file.clone(),
        }
    }
}

/// One loaded split.
pub struct LoadedSplit {
    pub name: SplitName,
    pub dataset: Dataset,
    /// The file the split was read from.
    pub file: PathBuf,
    /// For list files, the 1-based line of each item.
    pub lines: Option<Vec<usize>>,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{} not found", p.display()))
}

impl DataArgs {
    /// Whether any data option is given.
    pub fn is_empty(&self) -> bool {
        *self == DataArgs::default()
    }

    /// What the model file records: the same options with every path made absolute, so later
    /// commands find the data from any folder.
    pub fn record(&self) -> Result<DataRecord> {
        let abs = |p: &Option<PathBuf>| p.as_deref().map(absolute).transpose();
        Ok(DataRecord {
            composed_dir: abs(&self.data)?,
            train_file: abs(&self.train)?,
            query_file: abs(&self.query)?,
            database_file: abs(&self.database)?,
            image_root: abs(&self.image_root)?,
            classes_file: abs(&self.classes)?,
            train_areas_file: abs(&self.train_areas)?,
        })
    }

    /// A one-line description for logs and reports.
    pub fn describe(&self) -> String {
        if let Some(d) = &self.data {
            return format!("composed benchmark {}", d.display());
        }
        let mut parts = Vec::new();
        for (n, p) in [
            ("train", &self.train),
            ("query", &self.query),
            ("database", &self.database),
        ] {
            if let Some(p) = p {
                parts.push(format!("{n} {}", p.display()));
            }
        }
        parts.join(", ")
    }

    fn split_file(&self, split: SplitName) -> Option<&PathBuf> {
        match split {
            SplitName::Train => self.train.as_ref(),
            SplitName::Query => self.query.as_ref(),
            SplitName::Database => self.database.as_ref(),
        }
    }

    /// Whether the split is available (given explicitly, or in the composed folder).
    pub fn has(&self, split: SplitName) -> bool {
        match &self.data {
            Some(d) => d.join(format!("{}.txt", split.name())).is_file(),
            None => self.split_file(split).is_some(),
        }
    }

    /// The default feature cache folder: `DATA/features`, else `features/` beside the first
    /// split file.
    pub fn default_cache_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.data {
            return Ok(absolute(d)?.join("features"));
        }
        let first = SplitName::ALL
            .iter()
            .find_map(|&s| self.split_file(s))
            .context("no data given: use --data DIR, or --train/--query/--database FILE")?;
        let parent = absolute(first)?
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(parent.join("features"))
    }

    /// Loads a split; errors name the file and line of bad entries.
    pub fn load(&self, split: SplitName) -> Result<LoadedSplit> {
        if let Some(dir) = &self.data {
            let dir = absolute(dir)
                .with_context(|| format!("composed benchmark folder {}", dir.display()))?;
            let file = dir.join(format!("{}.txt", split.name()));
            ensure!(
                file.is_file(),
                "{}: the composed benchmark has no {} split ({} is missing)",
                dir.display(),
                split.name(),
                file.display()
            );
            let dataset = load_composed_split(&dir, split.name())?;
            let lines = list_lines(&file)?;
            return Ok(LoadedSplit {
                name: split,
                dataset,
                file,
                lines,
            });
        }
        let Some(file) = self.split_file(split) else {
            bail!(
                "no {} split: give --{} FILE (or --data DIR)",
                split.name(),
                split.name()
            );
        };
        let file = absolute(file).with_context(|| format!("{} split", split.name()))?;
        let root = match &self.image_root {
            Some(r) => absolute(r).context("--image-root")?,
            None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let is_coco = file.extension().is_some_and(|e| e == "json");
        let (mut dataset, lines) = if is_coco {
            let imp = read_coco_instances(&file, &root, split.name(), &CocoOptions::default())?;
            if imp.skipped_unannotated > 0 {
                ui::log(format!(
                    "{}: {} images without annotations left out",
                    file.display(),
                    imp.skipped_unannotated
                ));
            }
            (imp.dataset, None)
        } else {
            (
                read_list_file(&file, &root, split.name())?,
                list_lines(&file)?,
            )
        };
        if let Some(c) = &self.classes {
            let names = read_class_names(c)?;
            ensure!(
                names.len() == dataset.num_classes(),
                "{}: {} class names, but {} has {} label columns",
                c.display(),
                names.len(),
                file.display(),
                dataset.num_classes()
            );
            dataset = dataset.with_class_names(names)?;
        }
        if split == SplitName::Train {
            if let Some(a) = &self.train_areas {
                let areas = read_areas(a, &dataset)?;
                dataset = dataset.with_areas(areas)?;
            }
        }
        Ok(LoadedSplit {
            name: split,
            dataset,
            file,
            lines,
        })
    }
}

/// The 1-based line of each entry of a list file (blank lines skipped).
fn list_lines(file: &Path) -> Result<Option<Vec<usize>>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read list file {}", file.display()))?;
    Ok(Some(parse_list(&text, file)?.lines))
}

impl LoadedSplit {
    /// How image `i` is named in errors: `list.txt:LINE: /abs/path.png`.
    pub fn item_name(&self, i: usize) -> String {
        match (&self.lines, &self.dataset.items()[i]) {
            (Some(lines), ImageRef::Path(p)) => format!(
                "{}:{}: image {}",
                self.file.display(),
                lines[i],
                self.dataset.root().join(p).display()
            ),
            _ => format!("{}: {}", self.file.display(), self.dataset.item_name(i)),
        }
    }

    /// Absolute paths of the items (file items only).
    pub fn paths(&self) -> Result<Vec<PathBuf>> {
        self.dataset.image_paths()
    }
}

/// The split's images as an [`ImageSource`] whose error names are `file:line: image`.
/// Loading and fingerprints are the dataset's own, so the feature cache is shared with any
/// other caller extracting the same dataset.
impl ImageSource for LoadedSplit {
    fn len(&self) -> usize {
        self.dataset.len()
    }
    fn load(&self, i: usize) -> Result<Pixels> {
        ImageSource::load(&self.dataset, i).with_context(|| self.item_name(i))
    }
    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        self.dataset
            .fingerprint(i, hasher)
            .with_context(|| self.item_name(i))
    }
    fn name(&self, i: usize) -> String {
        self.item_name(i)
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
}

impl FeatureArgs {
    pub fn options(&self, data: &DataArgs) -> Result<FeatureOptions> {
        Ok(FeatureOptions {
            batch_size: self.batch,
            intra_threads: self.ort_threads,
            cache_dir: Some(match &self.cache_dir {
                Some(d) => d.clone(),
                None => data.default_cache_dir()?,
            }),
            progress: !ui::quiet(),
            ..FeatureOptions::default()
        })
    }
}

/// Features of a split through the cache, with one log line.
pub fn split_features(
    bb: &Backbone,
    split: &LoadedSplit,
    opts: &FeatureOptions,
) -> Result<Extracted> {
    let ex = extract_features(bb, split, opts)
        .with_context(|| format!("extracting features of the {} split", split.name.name()))?;
    let (n, d) = ex.features.dim();
    let cache = ex
        .cache_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "no cache".into());
    if ex.from_cache {
        ui::log(format!(
            "features {:>8}: {n} x {d} from cache {cache}",
            split.name.name()
        ));
    } else {
        let total = ex.preprocess_s + ex.inference_s;
        ui::log(format!(
            "features {:>8}: {n} x {d} in {} ({:.2} ms/image: preprocessing {:.2}, inference \
             {:.2}); cached in {cache}",
            split.name.name(),
            ui::duration(total),
            1e3 * total / n.max(1) as f64,
            1e3 * ex.preprocess_s / n.max(1) as f64,
            1e3 * ex.inference_s / n.max(1) as f64,
        ));
    }
    Ok(ex)
}
