//! Steps 1 and 2a: the work and output folders, the composed benchmarks and the backbone
//! file, each made unless the work folder has it already.

use std::path::Path;

use anyhow::{ensure, Context, Result};

use super::events::{BenchEvent, BenchObserver};
use super::plan::BenchPlan;
use crate::backbone::file::{save_backbone_file, BackboneFile};
use crate::backbone::Backbone;
use crate::backbone::BackboneRecord;
use crate::data::{ComposeOptions, DataSpec, Sources};
use crate::workflow::{compose_into, load_sources, Event, Task};

/// Where the composed data and the backbone are.
pub struct Inputs {
    pub data: DataSpec,
    pub area_data: DataSpec,
    pub backbone: BackboneFile,
    /// What the model files record of the backbone and the data.
    pub record: BackboneRecord,
    /// `data` with absolute paths.
    pub data_record: DataSpec,
}

/// Creates the work folder and the output folder (with `models/`).
pub fn make_folders(plan: &BenchPlan, obs: &mut dyn BenchObserver) -> Result<()> {
    let work = &plan.work;
    std::fs::create_dir_all(work).with_context(|| format!("creating {}", work.display()))?;
    std::fs::create_dir_all(plan.out.join("models"))
        .with_context(|| format!("creating {}", plan.out.display()))?;
    obs.bench(BenchEvent::Start {
        size: plan.size,
        work,
        out: &plan.out,
    });
    Ok(())
}

/// Whether `dir` holds a benchmark composed with `opts` (an error when it holds one composed
/// with other options); `false` when it has no manifest.
pub fn holds_composition(dir: &Path, opts: &ComposeOptions) -> Result<bool> {
    let manifest = dir.join("manifest.json");
    if !manifest.is_file() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", manifest.display()))?;
    let have: ComposeOptions = serde_json::from_value(v["options"].clone())
        .with_context(|| format!("{}: no composer options", manifest.display()))?;
    ensure!(
        have == *opts,
        "{} holds a benchmark composed with other options ({have:?}); delete it or choose \
         another --work folder",
        dir.display()
    );
    Ok(true)
}

/// Composes into `dir` unless it holds a benchmark with the same options already; the sources
/// are loaded on first need.
pub fn ensure_composed(
    plan: &BenchPlan,
    dir: &Path,
    opts: &ComposeOptions,
    sources: &mut Option<Sources>,
    obs: &mut dyn BenchObserver,
) -> Result<()> {
    if holds_composition(dir, opts)? {
        obs.bench(BenchEvent::ReusingComposed { dir });
        return Ok(());
    }
    if dir.exists() {
        // A composition interrupted before its manifest: start again.
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the incomplete {}", dir.display()))?;
    }
    if sources.is_none() {
        *sources = Some(load_sources(&plan.sources, obs)?);
    }
    compose_into(sources.as_ref().expect("loaded"), opts, dir, obs)?;
    Ok(())
}

/// The composed benchmarks and the backbone file of the work folder, made if missing.
pub fn prepare(
    plan: &BenchPlan,
    main_opts: &ComposeOptions,
    area_opts: &ComposeOptions,
    obs: &mut dyn BenchObserver,
) -> Result<Inputs> {
    let work = &plan.work;
    let mut sources = None;
    let data_dir = work.join("data");
    ensure_composed(plan, &data_dir, main_opts, &mut sources, obs)?;
    let area_dir = work.join("area");
    if plan.area {
        ensure_composed(plan, &area_dir, area_opts, &mut sources, obs)?;
    }
    drop(sources);

    let bb_path = work.join(format!("lite0-{}.onnx", main_opts.canvas));
    if !bb_path.is_file() {
        import_lite0(plan, main_opts.canvas, &bb_path, obs)?;
    }
    let backbone = BackboneFile::load(&bb_path)?;
    let record = backbone.record()?;
    let data = DataSpec::composed(data_dir);
    let data_record = data.absolute()?;
    Ok(Inputs {
        data,
        area_data: DataSpec::composed(area_dir),
        backbone,
        record,
        data_record,
    })
}

/// Imports EfficientNet-Lite0 at `canvas` px into the backbone file `path`.
fn import_lite0(
    plan: &BenchPlan,
    canvas: u32,
    path: &Path,
    obs: &mut dyn BenchObserver,
) -> Result<()> {
    obs.event(Event::Begin(Task::ImportLite0));
    let bb = Backbone::import_lite0(&plan.pth, canvas);
    obs.event(Event::End);
    let bb = bb.with_context(|| format!("importing {}", plan.pth.display()))?;
    save_backbone_file(&bb, path, plan.ort_threads)?;
    obs.bench(BenchEvent::BackboneImported {
        description: &bb.description,
        path,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    #[test]
    fn a_composition_is_reused_only_with_the_same_options() {
        let dir = TempDir::new("bench-reuse");
        let opts = ComposeOptions::small();
        assert!(!holds_composition(dir.path(), &opts).unwrap());
        let manifest = serde_json::json!({ "options": opts });
        dir.write("manifest.json", manifest.to_string());
        assert!(holds_composition(dir.path(), &opts).unwrap());
        let other = ComposeOptions {
            seed: 9,
            ..opts.clone()
        };
        let err = format!("{:#}", holds_composition(dir.path(), &other).unwrap_err());
        assert!(err.contains("composed with other options"), "{err}");
        dir.write("manifest.json", "{}");
        let err = format!("{:#}", holds_composition(dir.path(), &opts).unwrap_err());
        assert!(err.contains("no composer options"), "{err}");
    }
}
