//! Step 5: ICS at the longest code length on the area benchmark; its learned weights against
//! the true area shares ([`AreaResult`]) and the points of the weights-vs-area plot.

use anyhow::{Context, Result};

use super::events::{BenchEvent, BenchObserver};
use super::features::Split;
use super::plan::BenchPlan;
use super::prepare::Inputs;
use super::record::AreaResult;
use super::rows::model_path;
use crate::eval::{share_points, SharePoints};
use crate::ics::{Method, TrainConfig};
use crate::model_file::ModelFile;
use crate::workflow::train_head;

/// Trains ICS at the longest length on the area benchmark's training split, compares its
/// weights with the areas, and saves the model file (`area-ics<bits>.icsm`).
pub fn area_benchmark(
    plan: &BenchPlan,
    inputs: &Inputs,
    area: &Split,
    obs: &mut dyn BenchObserver,
) -> Result<(AreaResult, SharePoints)> {
    let bits = *plan.bits.iter().max().context("no code length")?;
    let mut config = TrainConfig {
        bits,
        method: Method::Ics,
        ..plan.base.clone()
    };
    config.finetune = Default::default();
    let model = train_head(
        "[area] ",
        area.features.view(),
        area.split.dataset.labels().view(),
        &config,
        None,
        None,
        obs,
    )?;
    let areas = area
        .split
        .dataset
        .areas()
        .context("the area benchmark has no areas")?;
    let result = AreaResult::evaluate(&model, areas)?;
    obs.bench(BenchEvent::Area(&result));
    let shares = share_points(model.weights(), areas.pixel.view());
    let file = model_path(plan, &format!("area-ics{bits}"));
    ModelFile {
        model,
        class_names: area.split.dataset.class_names().to_vec(),
        backbone: Some(inputs.record.clone()),
        data: Some(inputs.area_data.absolute()?),
        finetuned: None,
    }
    .save(&file)?;
    Ok((result, shares))
}
