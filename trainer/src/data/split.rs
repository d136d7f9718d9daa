//! Where a run's data is ([`DataSpec`]: a composed benchmark folder, or one file per split)
//! and its splits as loaded ([`LoadedSplit`]), with the file and line each image came from so
//! that errors name them. `features`, `train`, `eval`, `export` and `bench` all load data
//! through here; the command line only turns its flags into a [`DataSpec`].

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::areas::read_areas;
use super::class_names::differences;
use super::coco::{read_coco_instances, CocoOptions};
use super::compose::load_composed_split;
use super::dataset::{Dataset, ImageRef};
use super::listfile::{parse_list, read_class_names, read_list_file};

/// Which split of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// Where the data is: a composed benchmark folder (splits train, query and database with class
/// names and areas), or one file per split (a HashNet list file, or a COCO instances JSON when
/// the name ends in `.json`) with its options. A model file records it (absolute paths,
/// [`DataSpec::absolute`]) as the JSON of its fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataSpec {
    /// Composed benchmark folder (from `ics-train data compose`).
    pub composed_dir: Option<PathBuf>,
    /// Split files.
    pub train_file: Option<PathBuf>,
    pub query_file: Option<PathBuf>,
    pub database_file: Option<PathBuf>,
    /// Folder the split files' image paths are relative to (none: each file's folder).
    pub image_root: Option<PathBuf>,
    /// Class names, one a line in label-column order.
    pub classes_file: Option<PathBuf>,
    /// Areas file of the training split (TSV: image, class, pixel_area, box_area).
    pub train_areas_file: Option<PathBuf>,
}

/// One loaded split.
#[derive(Debug)]
pub struct LoadedSplit {
    pub name: SplitName,
    pub dataset: Dataset,
    /// The file the split was read from.
    pub file: PathBuf,
    /// For list files, the 1-based line of each item.
    pub lines: Option<Vec<usize>>,
    /// COCO images without annotations, left out of the split.
    pub skipped_unannotated: usize,
}

/// `p` made absolute; an error names it when it does not exist.
fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(p).with_context(|| format!("{} not found", p.display()))
}

impl DataSpec {
    /// A composed benchmark folder.
    pub fn composed(dir: impl Into<PathBuf>) -> DataSpec {
        DataSpec {
            composed_dir: Some(dir.into()),
            ..DataSpec::default()
        }
    }

    /// The same data with every path made absolute, so that later commands find it from any
    /// folder (an error names a path that does not exist).
    pub fn absolute(&self) -> Result<DataSpec> {
        let abs = |p: &Option<PathBuf>| p.as_deref().map(absolute).transpose();
        Ok(DataSpec {
            composed_dir: abs(&self.composed_dir)?,
            train_file: abs(&self.train_file)?,
            query_file: abs(&self.query_file)?,
            database_file: abs(&self.database_file)?,
            image_root: abs(&self.image_root)?,
            classes_file: abs(&self.classes_file)?,
            train_areas_file: abs(&self.train_areas_file)?,
        })
    }

    /// Whether no data is given at all.
    pub fn is_empty(&self) -> bool {
        *self == DataSpec::default()
    }

    /// A one-line description for logs and reports.
    pub fn describe(&self) -> String {
        if let Some(d) = &self.composed_dir {
            return format!("composed benchmark {}", d.display());
        }
        let mut parts = Vec::new();
        for (n, p) in [
            ("train", &self.train_file),
            ("query", &self.query_file),
            ("database", &self.database_file),
        ] {
            if let Some(p) = p {
                parts.push(format!("{n} {}", p.display()));
            }
        }
        parts.join(", ")
    }

    fn split_file(&self, split: SplitName) -> Option<&PathBuf> {
        match split {
            SplitName::Train => self.train_file.as_ref(),
            SplitName::Query => self.query_file.as_ref(),
            SplitName::Database => self.database_file.as_ref(),
        }
    }

    /// Whether the split is available (given explicitly, or in the composed folder).
    pub fn has(&self, split: SplitName) -> bool {
        match &self.composed_dir {
            Some(d) => d.join(format!("{}.txt", split.name())).is_file(),
            None => self.split_file(split).is_some(),
        }
    }

    /// The default feature cache folder: `DATA/features`, else `features/` beside the first
    /// split file.
    pub fn default_cache_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.composed_dir {
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
        if let Some(dir) = &self.composed_dir {
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
                skipped_unannotated: 0,
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
        let (mut dataset, lines, skipped_unannotated) = if is_coco {
            let imp = read_coco_instances(&file, &root, split.name(), &CocoOptions::default())?;
            (imp.dataset, None, imp.skipped_unannotated)
        } else {
            (
                read_list_file(&file, &root, split.name())?,
                list_lines(&file)?,
                0,
            )
        };
        if let (Some(c), true) = (&self.classes_file, is_coco) {
            // A COCO file names its own columns (the category names sorted by name): a
            // classes file can only confirm them, never rename them.
            let names = read_class_names(c)?;
            if let Some(d) = differences(&names, dataset.class_names(), "--classes", "COCO") {
                bail!(
                    "{}: the class names differ from the categories of the COCO file {}, whose \
                     label columns are its category names sorted by name: {d}. Leave out \
                     --classes with COCO files (they name their classes), or list the category \
                     names in that order",
                    c.display(),
                    file.display()
                );
            }
        } else if let Some(c) = &self.classes_file {
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
            if let Some(a) = &self.train_areas_file {
                let areas = read_areas(a, &dataset)?;
                dataset = dataset.with_areas(areas)?;
            }
        }
        Ok(LoadedSplit {
            name: split,
            dataset,
            file,
            lines,
            skipped_unannotated,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    /// A list-file dataset of three images over two classes in `dir`.
    pub(crate) fn list_data(dir: &TempDir) -> DataSpec {
        for n in ["a", "b", "c"] {
            dir.write(&format!("img/{n}.png"), b"x");
        }
        let train = dir.write(
            "train.txt",
            "img/a.png 1 0\n\nimg/b.png 0 1\nimg/c.png 1 1\n",
        );
        let query = dir.write("query.txt", "img/a.png 1 0\n");
        DataSpec {
            train_file: Some(train),
            query_file: Some(query),
            ..DataSpec::default()
        }
    }

    #[test]
    fn absolute_specs_hold_absolute_paths() {
        let dir = TempDir::new("split-absolute");
        let sub = dir.path().join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let spec = DataSpec {
            train_file: Some(sub.join(".").join("..").join("sub")),
            ..DataSpec::default()
        };
        let abs = spec.absolute().unwrap();
        assert_eq!(abs.train_file, Some(std::fs::canonicalize(&sub).unwrap()));
        assert!(abs.query_file.is_none() && abs.composed_dir.is_none());
        let missing = DataSpec::composed(dir.path().join("missing"));
        let err = format!("{:#}", missing.absolute().unwrap_err());
        assert!(err.contains("missing not found"), "{err}");
    }

    #[test]
    fn list_files_load_with_their_lines() {
        let dir = TempDir::new("split-list");
        let spec = list_data(&dir);
        assert!(!spec.is_empty() && DataSpec::default().is_empty());
        assert!(spec.has(SplitName::Train) && spec.has(SplitName::Query));
        assert!(!spec.has(SplitName::Database));
        let train = spec.load(SplitName::Train).unwrap();
        assert_eq!(train.dataset.len(), 3);
        assert_eq!(train.lines.as_deref(), Some(&[1, 3, 4][..]));
        let name = train.item_name(1);
        assert!(
            name.contains("train.txt:3: image") && name.ends_with("b.png"),
            "{name}"
        );
        assert_eq!(train.paths().unwrap().len(), 3);
        // No database split: loading it says which flag to give.
        let err = format!("{:#}", spec.load(SplitName::Database).err().unwrap());
        assert!(err.contains("give --database FILE"), "{err}");
        assert_eq!(
            spec.default_cache_dir().unwrap(),
            absolute(dir.path()).unwrap().join("features")
        );
        assert!(spec.describe().starts_with("train "), "{}", spec.describe());
    }

    #[test]
    fn class_names_must_match_the_label_columns() {
        let dir = TempDir::new("split-classes");
        let mut spec = list_data(&dir);
        spec.classes_file = Some(dir.write("classes.txt", "cat\ndog\n"));
        let train = spec.load(SplitName::Train).unwrap();
        assert_eq!(train.dataset.class_names(), ["cat", "dog"]);
        spec.classes_file = Some(dir.write("three.txt", "cat\ndog\nfox\n"));
        let err = format!("{:#}", spec.load(SplitName::Train).err().unwrap());
        assert!(err.contains("3 class names"), "{err}");
    }

    #[test]
    fn a_composed_folder_without_a_split_says_so() {
        let dir = TempDir::new("split-composed");
        let spec = DataSpec::composed(dir.path());
        assert!(!spec.has(SplitName::Train));
        assert!(spec.describe().starts_with("composed benchmark "));
        let err = format!("{:#}", spec.load(SplitName::Query).err().unwrap());
        assert!(err.contains("has no query split"), "{err}");
    }
}
