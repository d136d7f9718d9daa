//! Training a head (on frozen features, or fine-tuning the backbone along), observed epoch by
//! epoch; scoring a trained model; and the whole `ics-train train` run ([`TrainJob`]): data,
//! features, training, the model file and its JSON report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ndarray::ArrayView2;

use super::events::{Event, Observer, Task};
use super::features::{features_of, load_eval_splits, load_split, FeatureSettings};
use crate::backbone::file::BackboneFile;
use crate::data::{DataSpec, LoadedSplit, SplitName};
use crate::eval::{EvalSet, ModelEval, TrainReport};
use crate::finetune::{train_finetuned, FinetuneInputs, FinetuneOutcome};
use crate::ics::{self, Checkpointing, EpochEval, IcsModel, TrainConfig};
use crate::model_file::ModelFile;

/// Trains a head on frozen `features` ([`ics::train_source`]), evaluated every
/// `config.eval_every` epochs on `eval` when given; `tag` prefixes the run's events.
pub fn train_head(
    tag: &str,
    features: ArrayView2<f32>,
    labels: ArrayView2<u8>,
    config: &TrainConfig,
    eval: Option<&EvalSet>,
    checkpointing: Option<&Checkpointing>,
    obs: &mut dyn Observer,
) -> Result<IcsModel> {
    let r = eval.map_or(0, |e| e.r);
    obs.event(Event::Begin(Task::Train { tag, config }));
    let eval = eval.map(|e| e as &dyn EpochEval);
    let model = ics::train_checkpointed(features, labels, config, eval, checkpointing, |log| {
        obs.event(Event::Epoch {
            tag,
            log,
            config,
            r,
        })
    });
    obs.event(Event::End);
    let model = model?;
    obs.event(Event::Trained {
        tag,
        config,
        model: &model,
        images: features.nrows(),
    });
    Ok(model)
}

/// Trains the backbone with the head ([`train_finetuned`]); `tag` prefixes the run's events.
pub fn finetune(
    tag: &str,
    inputs: &FinetuneInputs,
    config: &TrainConfig,
    checkpointing: Option<&Checkpointing>,
    obs: &mut dyn Observer,
) -> Result<FinetuneOutcome> {
    let r = inputs.eval.map_or(0, |_| inputs.r);
    // Resolved again by the run itself (the GPU check is done once per process).
    let (compute, note) = crate::finetune::device::resolve(inputs.features.device)?;
    if let Some(note) = &note {
        obs.event(Event::Note(note));
    }
    let device = compute.describe();
    obs.event(Event::Begin(Task::Finetune {
        tag,
        config,
        device: &device,
    }));
    let out = train_finetuned(inputs, config, checkpointing, |log| {
        obs.event(Event::Epoch {
            tag,
            log,
            config,
            r,
        })
    });
    obs.event(Event::End);
    let out = out?;
    obs.event(Event::Finetuned {
        tag,
        config,
        outcome: &out,
        images: inputs.train.len(),
    });
    Ok(out)
}

/// Scores one model ([`ModelEval::evaluate`]) with `train`'s pixel areas; an
/// [`Event::NoAgreement`] says so when the model's weights are for another training split.
pub fn evaluate_model(
    name: &str,
    file: Option<&Path>,
    model: &IcsModel,
    set: &EvalSet,
    train: Option<&LoadedSplit>,
    obs: &mut dyn Observer,
) -> Result<ModelEval> {
    let areas = train
        .and_then(|t| t.dataset.areas())
        .map(|a| a.pixel.view());
    if let (Some(t), Some(a)) = (train, areas) {
        if !ModelEval::agreement_applies(model, a) {
            obs.event(Event::NoAgreement {
                name,
                weights: model.weights().len(),
                train_images: t.dataset.len(),
            });
        }
    }
    ModelEval::evaluate(name, file, model, set, areas)
}

/// `x/model.icsm` -> `x/model.report.json`.
pub fn report_path_for(model: &Path) -> PathBuf {
    model.with_extension("report.json")
}

/// One `ics-train train` run.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// Backbone file (from `ics-train backbone import`).
    pub backbone: PathBuf,
    pub data: DataSpec,
    pub features: FeatureSettings,
    /// Validated by the run; `config.finetune.mode` says whether the backbone trains too.
    pub config: TrainConfig,
    pub checkpointing: Option<Checkpointing>,
    /// R of mAP@R for the evaluation during training.
    pub r: usize,
    /// Evaluate during training when the data has query and database splits.
    pub evaluate: bool,
    /// The model file to write.
    pub out: PathBuf,
    /// The JSON report to write.
    pub report: PathBuf,
}

impl TrainJob {
    /// Trains, writes the model file and the report; the report.
    pub fn run(&self, obs: &mut dyn Observer) -> Result<TrainReport> {
        if self.config.finetune.mode.trains_backbone() {
            return self.run_finetune(obs);
        }
        // Data first: a bad list file is reported before the slower backbone load.
        let train = load_split(&self.data, SplitName::Train, obs)?;
        let bb = BackboneFile::load(&self.backbone)?;
        let opts = self.features.options(&self.data)?;
        let train_f = features_of(&bb.backbone, &train, &opts, obs)?;
        let eval_splits = if self.wants_eval() {
            let (q, db) = load_eval_splits(&self.data, &train.dataset, obs)?;
            let qf = features_of(&bb.backbone, &q, &opts, obs)?;
            let dbf = features_of(&bb.backbone, &db, &opts, obs)?;
            Some((q, qf, db, dbf))
        } else {
            None
        };
        let eval = match &eval_splits {
            Some((q, qf, db, dbf)) => Some(
                EvalSet::new(
                    qf.features.view(),
                    q.dataset.labels().view(),
                    dbf.features.view(),
                    db.dataset.labels().view(),
                    self.r,
                )?
                .with_train_areas(train.dataset.areas().map(|a| a.pixel.view())),
            ),
            None => None,
        };
        let model = train_head(
            "",
            train_f.features.view(),
            train.dataset.labels().view(),
            &self.config,
            eval.as_ref(),
            self.checkpointing.as_ref(),
            obs,
        )?;
        let file = ModelFile {
            model,
            class_names: train.dataset.class_names().to_vec(),
            backbone: Some(bb.record()?),
            data: Some(self.data.absolute()?),
            finetuned: None,
        };
        file.save(&self.out)?;
        self.write_report(&file, eval.as_ref(), &train)
    }

    fn wants_eval(&self) -> bool {
        self.evaluate && self.data.has(SplitName::Query) && self.data.has(SplitName::Database)
    }

    /// `train --finetune top:N|all`: the backbone trains with the head.
    fn run_finetune(&self, obs: &mut dyn Observer) -> Result<TrainReport> {
        let train = load_split(&self.data, SplitName::Train, obs)?;
        let bb = BackboneFile::load(&self.backbone)?;
        let opts = self.features.options(&self.data)?;
        let eval_splits = if self.wants_eval() {
            Some(load_eval_splits(&self.data, &train.dataset, obs)?)
        } else {
            None
        };
        let inputs = FinetuneInputs {
            backbone: &bb.backbone,
            train: &train.dataset,
            eval: eval_splits
                .as_ref()
                .map(|(q, db)| (&q.dataset, &db.dataset)),
            r: self.r,
            features: opts,
        };
        let config = &self.config;
        let out = finetune("", &inputs, config, self.checkpointing.as_ref(), obs)?;
        let file = ModelFile {
            finetuned: Some(out.record(config.finetune.mode)),
            model: out.model,
            class_names: train.dataset.class_names().to_vec(),
            backbone: Some(bb.record()?),
            data: Some(self.data.absolute()?),
        };
        file.save(&self.out)?;
        let eval = match (&eval_splits, &out.eval_features) {
            (Some((q, db)), Some((qf, dbf))) => Some(EvalSet::new(
                qf.view(),
                q.dataset.labels().view(),
                dbf.view(),
                db.dataset.labels().view(),
                self.r,
            )?),
            _ => None,
        };
        self.write_report(&file, eval.as_ref(), &train)
    }

    /// The JSON report of the trained model file: retrieval on `eval`, agreement with the
    /// training split's areas.
    fn write_report(
        &self,
        file: &ModelFile,
        eval: Option<&EvalSet>,
        train: &LoadedSplit,
    ) -> Result<TrainReport> {
        let mut report = TrainReport::new(&file.model);
        if let Some(e) = eval {
            report = report.with_retrieval(&file.model, e, false);
        }
        if let Some(areas) = train.dataset.areas() {
            report = report.with_agreement(&file.model, areas.pixel.view())?;
        }
        std::fs::write(&self.report, report.to_json() + "\n")
            .with_context(|| format!("cannot write {}", self.report.display()))?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ics::synthetic::make;

    /// Records the events' kinds.
    #[derive(Default)]
    struct Kinds(Vec<String>);

    impl Observer for Kinds {
        fn event(&mut self, e: Event<'_>) {
            let k = match e {
                Event::Begin(Task::Train { tag, .. }) => format!("begin {tag}"),
                Event::Begin(_) => "begin".into(),
                Event::End => "end".into(),
                Event::Epoch { log, r, .. } => format!("epoch {} r {r}", log.epoch),
                Event::Trained { images, .. } => format!("trained {images}"),
                Event::NoAgreement {
                    weights,
                    train_images,
                    ..
                } => format!("no agreement {weights} {train_images}"),
                _ => "other".into(),
            };
            self.0.push(k);
        }
    }

    #[test]
    fn training_brackets_its_epochs() {
        let data = make(40, 6, 3, 2, 0.3, 2);
        let config = TrainConfig {
            bits: 16,
            hidden: vec![],
            epochs: 2,
            warmup_epochs: 1,
            ..TrainConfig::default()
        };
        let mut seen = Kinds::default();
        let labels = data.labels.clone();
        train_head(
            "[x] ",
            data.features.view(),
            labels.view(),
            &config,
            None,
            None,
            &mut seen,
        )
        .unwrap();
        assert_eq!(
            seen.0,
            [
                "begin [x] ",
                "epoch 1 r 0",
                "epoch 2 r 0",
                "end",
                "trained 40"
            ]
        );
        // A bad configuration still ends the task it began.
        let mut seen = Kinds::default();
        let bad = TrainConfig {
            epochs: 0,
            ..config
        };
        assert!(train_head(
            "",
            data.features.view(),
            labels.view(),
            &bad,
            None,
            None,
            &mut seen
        )
        .is_err());
        assert_eq!(seen.0, ["begin ", "end"]);
    }

    #[test]
    fn report_next_to_the_model() {
        assert_eq!(
            report_path_for(Path::new("x/m.icsm")),
            PathBuf::from("x/m.report.json")
        );
    }
}
