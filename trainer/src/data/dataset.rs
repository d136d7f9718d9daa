//! The in-memory dataset every reader produces and the trainer, the feature extractor and the
//! evaluation consume.
//!
//! A [`Dataset`] is n items with multi-hot labels (n x C, values 0/1, at least one label per
//! item: an unlabelled image has no hash centre to learn), C class names and optionally the
//! per-(item, class) areas that give the ground-truth instance shares ICS weights are compared
//! with. Construction validates all of this once so later stages can index without checks.

use anyhow::{bail, Result};
use ics_encoder::decode::RgbImage;
use ndarray::{Array2, Axis};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where an item's image is.
#[derive(Clone, Debug)]
pub enum ImageRef {
    /// A file, relative to the dataset root.
    Path(PathBuf),
    /// An image already in memory (tests, generated data).
    Memory(Arc<RgbImage>),
}

/// Which ground-truth area to use for instance shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AreaKind {
    /// Foreground pixels (composer) or segmentation area (COCO `area`).
    Pixel,
    /// Bounding-box area (w * h).
    Box,
}

/// Per-(item, class) areas, n x C each, zero where the item lacks the class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassAreas {
    pub pixel: Array2<f64>,
    pub boxed: Array2<f64>,
}

impl ClassAreas {
    /// All-zero areas for n items and c classes.
    pub fn zeros(n: usize, c: usize) -> ClassAreas {
        ClassAreas {
            pixel: Array2::zeros((n, c)),
            boxed: Array2::zeros((n, c)),
        }
    }

    /// The matrix for one kind of area.
    pub fn get(&self, kind: AreaKind) -> &Array2<f64> {
        match kind {
            AreaKind::Pixel => &self.pixel,
            AreaKind::Box => &self.boxed,
        }
    }
}

/// A labelled image set (one split).
#[derive(Clone, Debug)]
pub struct Dataset {
    split: String,
    root: PathBuf,
    items: Vec<ImageRef>,
    labels: Array2<u8>,
    class_names: Vec<String>,
    areas: Option<ClassAreas>,
}

/// `class 0`, `class 1`, ... for formats that carry no names (list files).
pub fn default_class_names(c: usize) -> Vec<String> {
    (0..c).map(|k| format!("class {k}")).collect()
}

impl Dataset {
    /// Builds and validates a dataset: one label row per item, labels 0/1, every item with at
    /// least one label, one name per class, names distinct.
    pub fn new(
        split: impl Into<String>,
        root: impl Into<PathBuf>,
        items: Vec<ImageRef>,
        labels: Array2<u8>,
        class_names: Vec<String>,
    ) -> Result<Dataset> {
        let ds = Dataset {
            split: split.into(),
            root: root.into(),
            items,
            labels,
            class_names,
            areas: None,
        };
        ds.validate()?;
        Ok(ds)
    }

    fn validate(&self) -> Result<()> {
        let (n, c) = self.labels.dim();
        if n != self.items.len() {
            bail!(
                "split {}: {} items but {n} label rows",
                self.split,
                self.items.len()
            );
        }
        if c == 0 {
            bail!("split {}: no label columns", self.split);
        }
        if self.class_names.len() != c {
            bail!(
                "split {}: {} class names for {c} label columns",
                self.split,
                self.class_names.len()
            );
        }
        for (k, name) in self.class_names.iter().enumerate() {
            if let Some(j) = self.class_names[..k].iter().position(|m| m == name) {
                bail!(
                    "split {}: class name {name:?} used for columns {j} and {k}",
                    self.split
                );
            }
        }
        for (i, row) in self.labels.axis_iter(Axis(0)).enumerate() {
            if let Some(&v) = row.iter().find(|&&v| v > 1) {
                bail!("{}: label value {v} is not 0 or 1", self.item_name(i));
            }
            if row.iter().all(|&v| v == 0) {
                bail!(
                    "{}: no label (every training image needs at least one)",
                    self.item_name(i)
                );
            }
        }
        Ok(())
    }

    /// Attaches per-(item, class) areas: n x C, finite, non-negative, zero for absent classes.
    pub fn with_areas(mut self, areas: ClassAreas) -> Result<Dataset> {
        for (what, m) in [("pixel", &areas.pixel), ("box", &areas.boxed)] {
            if m.dim() != self.labels.dim() {
                bail!(
                    "split {}: {what} areas are {:?}, labels are {:?}",
                    self.split,
                    m.dim(),
                    self.labels.dim()
                );
            }
            for ((i, k), &a) in m.indexed_iter() {
                if !a.is_finite() || a < 0.0 {
                    bail!(
                        "{}: {what} area {a} for class {k} is not a finite non-negative number",
                        self.item_name(i)
                    );
                }
                if a > 0.0 && self.labels[[i, k]] == 0 {
                    bail!(
                        "{}: {what} area {a} for class {k} ({}) which it is not labelled with",
                        self.item_name(i),
                        self.class_names[k]
                    );
                }
            }
        }
        self.areas = Some(areas);
        Ok(self)
    }

    /// Replaces the class names (same count, distinct).
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Dataset> {
        let old = std::mem::replace(&mut self.class_names, names);
        if let Err(e) = self.validate() {
            self.class_names = old;
            return Err(e);
        }
        Ok(self)
    }

    pub fn split(&self) -> &str {
        &self.split
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn items(&self) -> &[ImageRef] {
        &self.items
    }
    /// n x C multi-hot labels.
    pub fn labels(&self) -> &Array2<u8> {
        &self.labels
    }
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    pub fn areas(&self) -> Option<&ClassAreas> {
        self.areas.as_ref()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn num_classes(&self) -> usize {
        self.labels.ncols()
    }

    /// How an item is named in messages: its relative path, or its index when in memory.
    pub fn item_name(&self, i: usize) -> String {
        match self.items.get(i) {
            Some(ImageRef::Path(p)) => format!("split {} item {i} ({})", self.split, p.display()),
            _ => format!("split {} item {i} (in memory)", self.split),
        }
    }

    /// Class indices item `i` is labelled with, ascending.
    pub fn item_classes(&self, i: usize) -> Vec<usize> {
        let row = self.labels.row(i);
        (0..row.len()).filter(|&k| row[k] == 1).collect()
    }

    /// Absolute paths (root joined) of all items; an error if any item is in memory.
    pub fn image_paths(&self) -> Result<Vec<PathBuf>> {
        self.items
            .iter()
            .enumerate()
            .map(|(i, it)| match it {
                ImageRef::Path(p) => Ok(self.root.join(p)),
                ImageRef::Memory(_) => bail!("{} has no file", self.item_name(i)),
            })
            .collect()
    }

    /// Checks every file item exists; the error names the first missing one.
    pub fn check_files(&self) -> Result<()> {
        for (i, it) in self.items.iter().enumerate() {
            if let ImageRef::Path(p) = it {
                let full = self.root.join(p);
                if !full.is_file() {
                    bail!(
                        "{}: image {} does not exist",
                        self.item_name(i),
                        full.display()
                    );
                }
            }
        }
        Ok(())
    }

    /// Ground-truth shares a_k = A_k / sum_k A_k over the classes of item `i` (length C, zero for
    /// absent classes). None without areas or when the item's areas sum to zero.
    pub fn area_shares(&self, i: usize, kind: AreaKind) -> Option<Vec<f64>> {
        let row = self.areas.as_ref()?.get(kind).row(i);
        let total: f64 = row.sum();
        (total > 0.0).then(|| row.iter().map(|a| a / total).collect())
    }

    /// The items at `indices` (in that order), with their labels and areas.
    pub fn subset(&self, indices: &[usize], split: impl Into<String>) -> Result<Dataset> {
        if let Some(&i) = indices.iter().find(|&&i| i >= self.len()) {
            bail!("subset index {i} out of range for {} items", self.len());
        }
        let items = indices.iter().map(|&i| self.items[i].clone()).collect();
        let labels = self.labels.select(Axis(0), indices);
        let ds = Dataset::new(
            split,
            self.root.clone(),
            items,
            labels,
            self.class_names.clone(),
        )?;
        match &self.areas {
            None => Ok(ds),
            Some(a) => ds.with_areas(ClassAreas {
                pixel: a.pixel.select(Axis(0), indices),
                boxed: a.boxed.select(Axis(0), indices),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn paths(n: usize) -> Vec<ImageRef> {
        (0..n)
            .map(|i| ImageRef::Path(PathBuf::from(format!("img{i}.png"))))
            .collect()
    }

    #[test]
    fn validation_rejects_bad_labels() {
        let names = default_class_names(3);
        let err = Dataset::new(
            "t",
            "/r",
            paths(2),
            array![[1, 0, 0], [0, 0, 0]],
            names.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("img1.png") && err.contains("no label"),
            "{err}"
        );
        let err = Dataset::new(
            "t",
            "/r",
            paths(2),
            array![[1, 0, 0], [0, 2, 0]],
            names.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("img1.png") && err.contains("not 0 or 1"),
            "{err}"
        );
        let err = Dataset::new(
            "t",
            "/r",
            paths(3),
            array![[1, 0, 0], [0, 1, 0]],
            names.clone(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("3 items but 2 label rows"), "{err}");
        let err = Dataset::new(
            "t",
            "/r",
            paths(1),
            array![[1, 0, 0]],
            default_class_names(2),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("2 class names for 3"), "{err}");
        let dup = vec!["a".into(), "b".into(), "a".into()];
        assert!(Dataset::new("t", "/r", paths(1), array![[1, 0, 0]], dup).is_err());
        assert!(Dataset::new("t", "/r", paths(1), array![[1, 0, 1]], names).is_ok());
    }

    #[test]
    fn areas_are_validated_and_give_shares() {
        let ds = Dataset::new(
            "t",
            "/r",
            paths(2),
            array![[1, 0, 1], [0, 1, 0]],
            default_class_names(3),
        )
        .unwrap();
        let bad = ClassAreas {
            pixel: array![[3.0, 1.0, 1.0], [0.0, 2.0, 0.0]],
            boxed: array![[4.0, 0.0, 4.0], [0.0, 4.0, 0.0]],
        };
        let err = ds.clone().with_areas(bad).unwrap_err().to_string();
        assert!(err.contains("img0.png") && err.contains("class 1"), "{err}");
        let neg = ClassAreas {
            pixel: array![[-1.0, 0.0, 1.0], [0.0, 2.0, 0.0]],
            boxed: array![[4.0, 0.0, 4.0], [0.0, 4.0, 0.0]],
        };
        assert!(ds.clone().with_areas(neg).is_err());
        let good = ClassAreas {
            pixel: array![[3.0, 0.0, 1.0], [0.0, 2.0, 0.0]],
            boxed: array![[4.0, 0.0, 4.0], [0.0, 4.0, 0.0]],
        };
        let ds = ds.with_areas(good).unwrap();
        assert_eq!(
            ds.area_shares(0, AreaKind::Pixel).unwrap(),
            vec![0.75, 0.0, 0.25]
        );
        assert_eq!(
            ds.area_shares(0, AreaKind::Box).unwrap(),
            vec![0.5, 0.0, 0.5]
        );
        let sub = ds.subset(&[1], "s").unwrap();
        assert_eq!(sub.item_classes(0), vec![1]);
        assert_eq!(
            sub.area_shares(0, AreaKind::Pixel).unwrap(),
            vec![0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn in_memory_items_load_and_have_no_path() {
        let img = Arc::new(RgbImage {
            width: 1,
            height: 1,
            data: vec![5, 5, 5],
        });
        let ds = Dataset::new(
            "m",
            "",
            vec![ImageRef::Memory(img)],
            array![[0, 1]],
            default_class_names(2),
        )
        .unwrap();
        assert!(matches!(&ds.items()[0], ImageRef::Memory(m) if m.data == [5, 5, 5]));
        assert!(ds.image_paths().is_err());
        ds.check_files().unwrap();
    }

    #[test]
    fn check_files_names_the_missing_image() {
        let ds = Dataset::new(
            "t",
            "/nonexistent-root",
            paths(1),
            array![[1]],
            default_class_names(1),
        )
        .unwrap();
        let err = ds.check_files().unwrap_err().to_string();
        assert!(
            err.contains("img0.png") && err.contains("does not exist"),
            "{err}"
        );
    }
}
