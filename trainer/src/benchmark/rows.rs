//! Step 4: the rows of the table, ICS and CSQ at each code length for each fine-tuning mode,
//! each trained, evaluated and saved as a model file; the fine-tuned rows also record their
//! speed ([`FinetuneRun`]).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::events::BenchObserver;
use super::features::{feature_options, Splits};
use super::plan::BenchPlan;
use super::prepare::Inputs;
use super::record::FinetuneRun;
use crate::eval::{EvalSet, ModelEval};
use crate::finetune::FinetuneInputs;
use crate::ics::checkpoint::FILE_NAME;
use crate::ics::{Checkpointing, TrainConfig};
use crate::model_file::ModelFile;
use crate::workflow::{evaluate_model, finetune, train_head, Event};

/// One row: a method at a code length in a fine-tuning mode, under its model name (`ics64`,
/// `csq32-top2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub config: TrainConfig,
}

impl Row {
    /// Whether the backbone trains with the head.
    pub fn finetuned(&self) -> bool {
        self.config.finetune.mode.trains_backbone()
    }
}

/// The rows of `plan`, in table order: each fine-tuning mode, each length, each method. A
/// fine-tuned row trains `finetune_epochs` epochs when given (learning-rate step and warm-up
/// shortened to fit) and is evaluated once, after the last epoch: each evaluation costs a
/// forward pass of the trained part over every query and database image. Fine-tuned
/// configurations are validated when their row trains.
pub fn rows(plan: &BenchPlan) -> Vec<Row> {
    let mut out = Vec::new();
    for &mode in &plan.finetune {
        let (lengths, methods) = if mode.trains_backbone() {
            (
                if plan.finetune_bits.is_empty() {
                    &plan.bits
                } else {
                    &plan.finetune_bits
                },
                if plan.finetune_methods.is_empty() {
                    &plan.methods
                } else {
                    &plan.finetune_methods
                },
            )
        } else {
            (&plan.bits, &plan.methods)
        };
        for &bits in lengths {
            for &method in methods {
                let mut config = TrainConfig {
                    bits,
                    method,
                    ..plan.base.clone()
                };
                config.finetune.mode = mode;
                let mut name = format!("{}{bits}", method.prefix());
                if mode.trains_backbone() {
                    name = format!("{name}-{}", mode.to_string().replace(':', ""));
                    if let Some(e) = plan.finetune_epochs {
                        config.epochs = e;
                        config.lr_step_epochs = config.lr_step_epochs.min(e);
                        config.warmup_epochs = config.warmup_epochs.min(e.saturating_sub(1));
                    }
                    config.eval_every = config.epochs;
                }
                out.push(Row { name, config });
            }
        }
    }
    out
}

/// Trains, evaluates and saves every row; the evaluations, and the fine-tuning runs.
pub fn train_rows(
    plan: &BenchPlan,
    inputs: &Inputs,
    splits: &Splits,
    set: &EvalSet,
    obs: &mut dyn BenchObserver,
) -> Result<(Vec<ModelEval>, Vec<FinetuneRun>)> {
    let mut models = Vec::new();
    let mut runs = Vec::new();
    for row in rows(plan) {
        if !row.finetuned() {
            models.push(frozen_row(plan, &row, inputs, splits, set, obs)?);
            continue;
        }
        row.config.validate()?;
        let (e, run) = finetune_row(plan, &row, inputs, splits, obs)?;
        models.push(e);
        runs.push(run);
    }
    Ok((models, runs))
}

/// `out/models/<name>.icsm`.
pub fn model_path(plan: &BenchPlan, name: &str) -> PathBuf {
    plan.out.join("models").join(format!("{name}.icsm"))
}

/// A head on the cached features, evaluated every `eval_every` epochs.
fn frozen_row(
    plan: &BenchPlan,
    row: &Row,
    inputs: &Inputs,
    splits: &Splits,
    set: &EvalSet,
    obs: &mut dyn BenchObserver,
) -> Result<ModelEval> {
    let train = &splits.train;
    let name = &row.name;
    let model = train_head(
        &format!("[{name}] "),
        train.features.view(),
        train.split.dataset.labels().view(),
        &row.config,
        Some(set),
        None,
        obs,
    )?;
    let e = evaluate_model(name, None, &model, set, Some(&train.split), obs)?;
    obs.event(Event::Evaluated(&e));
    let file = model_path(plan, name);
    ModelFile {
        model,
        class_names: train.split.dataset.class_names().to_vec(),
        backbone: Some(inputs.record.clone()),
        data: Some(inputs.data_record.clone()),
        finetuned: None,
    }
    .save(&file)?;
    Ok(ModelEval {
        file: Some(file),
        ..e
    })
}

/// A fine-tuned row: trains, evaluates on the fine-tuned features, saves the model file.
fn finetune_row(
    plan: &BenchPlan,
    row: &Row,
    inputs: &Inputs,
    splits: &Splits,
    obs: &mut dyn BenchObserver,
) -> Result<(ModelEval, FinetuneRun)> {
    let (name, config) = (&row.name, &row.config);
    let finputs = FinetuneInputs {
        backbone: &inputs.backbone.backbone,
        train: &splits.train.split.dataset,
        eval: Some((&splits.query.split.dataset, &splits.database.split.dataset)),
        r: plan.r,
        features: feature_options(plan),
    };
    let checkpointing = plan.checkpoint_dir.as_ref().map(|d| Checkpointing {
        dir: d.join(name),
        every: 1,
        resume: plan.resume && d.join(name).join(FILE_NAME).is_file(),
    });
    let out = finetune(
        &format!("[{name}] "),
        &finputs,
        config,
        checkpointing.as_ref(),
        obs,
    )?;
    let (qf, dbf) = out
        .eval_features
        .as_ref()
        .context("a fine-tuned row is evaluated")?;
    let fset = EvalSet::new(
        qf.view(),
        splits.query.split.dataset.labels().view(),
        dbf.view(),
        splits.database.split.dataset.labels().view(),
        plan.r,
    )?;
    let e = evaluate_model(
        name,
        None,
        &out.model,
        &fset,
        Some(&splits.train.split),
        obs,
    )?;
    obs.event(Event::Evaluated(&e));
    let file = model_path(plan, name);
    let run = FinetuneRun {
        name: name.to_string(),
        mode: config.finetune.mode.to_string(),
        method: config.method,
        bits: config.bits,
        train_images: splits.train.split.dataset.len(),
        image_size: inputs.backbone.backbone.preprocess.size,
        epochs: config.epochs,
        trained_parameters: out.trained_parameters,
        images_per_second: out.images_per_second(),
        network_seconds: out.times.network_seconds,
        input_seconds: out.times.input_seconds,
        prepare_seconds: out.prepare_seconds,
        train_seconds: out.model.history().iter().map(|h| h.seconds).sum(),
    };
    ModelFile {
        finetuned: Some(out.record(config.finetune.mode)),
        model: out.model,
        class_names: splits.train.split.dataset.class_names().to_vec(),
        backbone: Some(inputs.record.clone()),
        data: Some(inputs.data_record.clone()),
    }
    .save(&file)?;
    Ok((
        ModelEval {
            file: Some(file),
            ..e
        },
        run,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmark::plan::tests::plan;
    use crate::ics::{FinetuneMode, Method};

    fn names(rows: &[Row]) -> Vec<&str> {
        rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn frozen_rows_cover_each_length_and_method() {
        let p = plan();
        let r = rows(&p);
        assert_eq!(names(&r), ["ics16", "csq16", "ics32", "csq32"]);
        assert!(r.iter().all(|r| !r.finetuned() && r.config.epochs == 20));
        assert_eq!((r[1].config.method, r[1].config.bits), (Method::Csq, 16));
        assert_eq!(
            model_path(&p, "ics16"),
            PathBuf::from("out/models/ics16.icsm")
        );
    }

    #[test]
    fn finetuned_rows_have_their_lengths_methods_and_epochs() {
        let p = BenchPlan {
            finetune: vec![FinetuneMode::None, FinetuneMode::Top(2)],
            finetune_bits: vec![64],
            finetune_methods: vec![Method::Ics],
            finetune_epochs: Some(2),
            methods: vec![Method::Ics],
            bits: vec![16],
            ..plan()
        };
        let r = rows(&p);
        assert_eq!(names(&r), ["ics16", "ics64-top2"]);
        let c = &r[1].config;
        assert!(r[1].finetuned());
        assert_eq!(c.finetune.mode, FinetuneMode::Top(2));
        // Two epochs: the learning-rate step and warm-up shrink to fit; one evaluation.
        assert_eq!(
            (c.epochs, c.lr_step_epochs, c.warmup_epochs, c.eval_every),
            (2, 2, 1, 2)
        );
        c.validate().unwrap();
        // Without their own lengths and methods, fine-tuned rows take the frozen ones'.
        let p = BenchPlan {
            finetune: vec![FinetuneMode::All],
            ..plan()
        };
        assert_eq!(
            names(&rows(&p)),
            ["ics16-all", "csq16-all", "ics32-all", "csq32-all"]
        );
        assert_eq!(rows(&p)[0].config.epochs, 20);
    }
}
