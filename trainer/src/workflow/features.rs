//! Loading a run's splits and their features, observed.

use std::path::PathBuf;

use anyhow::Result;

use super::events::{Event, Observer};
use crate::backbone::{split_features, Backbone, Extracted, FeatureOptions};
use crate::data::{DataSpec, Dataset, LoadedSplit, SplitName};
use crate::onnx::runtime::DeviceChoice;

/// How a command extracts features: the cache folder (default: the data's,
/// [`DataSpec::default_cache_dir`]), images per ONNX Runtime call, its threads, progress bars.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSettings {
    pub cache_dir: Option<PathBuf>,
    pub batch: usize,
    pub ort_threads: usize,
    pub progress: bool,
    /// Where ONNX Runtime and fine-tuning compute (`--device`).
    pub device: DeviceChoice,
}

impl FeatureSettings {
    /// The extraction options for `data`.
    pub fn options(&self, data: &DataSpec) -> Result<FeatureOptions> {
        Ok(FeatureOptions {
            batch_size: self.batch,
            intra_threads: self.ort_threads,
            cache_dir: Some(match &self.cache_dir {
                Some(d) => d.clone(),
                None => data.default_cache_dir()?,
            }),
            progress: self.progress,
            device: self.device,
            ..FeatureOptions::default()
        })
    }
}

/// Loads a split of `data` ([`DataSpec::load`]).
pub fn load_split(
    data: &DataSpec,
    split: SplitName,
    obs: &mut dyn Observer,
) -> Result<LoadedSplit> {
    let s = data.load(split)?;
    obs.event(Event::SplitLoaded(&s));
    Ok(s)
}

/// The query and database splits of `data`, whose class counts must be `train`'s.
pub fn load_eval_splits(
    data: &DataSpec,
    train: &Dataset,
    obs: &mut dyn Observer,
) -> Result<(LoadedSplit, LoadedSplit)> {
    let q = load_split(data, SplitName::Query, obs)?;
    let db = load_split(data, SplitName::Database, obs)?;
    anyhow::ensure!(
        q.dataset.num_classes() == train.num_classes()
            && db.dataset.num_classes() == train.num_classes(),
        "class counts differ: train {}, query {}, database {}",
        train.num_classes(),
        q.dataset.num_classes(),
        db.dataset.num_classes()
    );
    Ok((q, db))
}

/// Features of a split through the cache ([`split_features`]).
pub fn features_of(
    backbone: &Backbone,
    split: &LoadedSplit,
    opts: &FeatureOptions,
    obs: &mut dyn Observer,
) -> Result<Extracted> {
    let ex = split_features(backbone, split, opts)?;
    obs.event(Event::Features {
        split,
        extracted: &ex,
    });
    Ok(ex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::split::tests::list_data;
    use crate::data::testutil::TempDir;
    use crate::workflow::events::Silent;

    #[test]
    fn evaluation_splits_need_the_training_class_count() {
        let dir = TempDir::new("split-eval");
        let mut spec = list_data(&dir);
        spec.database_file = Some(dir.write("db.txt", "img/b.png 0 1\nimg/c.png 1 1\n"));
        let train = spec.load(SplitName::Train).unwrap();
        let (q, db) = load_eval_splits(&spec, &train.dataset, &mut Silent).unwrap();
        assert_eq!((q.dataset.len(), db.dataset.len()), (1, 2));
        spec.database_file = Some(dir.write("db3.txt", "img/b.png 0 1 0\n"));
        let err = format!(
            "{:#}",
            load_eval_splits(&spec, &train.dataset, &mut Silent).unwrap_err()
        );
        assert!(err.contains("class counts differ"), "{err}");
    }

    #[test]
    fn the_cache_defaults_to_the_data_folder() {
        let dir = std::env::temp_dir().join(format!("ics-train-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = FeatureSettings {
            cache_dir: None,
            batch: 8,
            ort_threads: 1,
            progress: false,
            device: DeviceChoice::Auto,
        };
        let o = s.options(&DataSpec::composed(&dir)).unwrap();
        let abs = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(o.cache_dir, Some(abs.join("features")));
        assert_eq!((o.batch_size, o.intra_threads, o.progress), (8, 1, false));
        assert_eq!(o.device, DeviceChoice::Auto);
        let given = FeatureSettings {
            cache_dir: Some("elsewhere".into()),
            ..s.clone()
        };
        let o = given.options(&DataSpec::default()).unwrap();
        assert_eq!(o.cache_dir, Some(PathBuf::from("elsewhere")));
        let err = format!("{:#}", s.options(&DataSpec::default()).unwrap_err());
        assert!(err.contains("no data given"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
