//! The `ics-train eval` run ([`EvalJob`]): model files scored on the query and database
//! splits, each against the training split's areas; `report.json`, `summary.md` and, when
//! asked, each model's codes. The plots are the command line's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_codes::code::to_hex;

use super::events::{Event, Observer, Task};
use super::features::{features_of, load_split, FeatureSettings};
use super::training::evaluate_model;
use crate::backbone::file::BackboneFile;
use crate::codes::PackedCodes;
use crate::data::class_names::{are_placeholders, differences};
use crate::data::{DataSpec, LoadedSplit, SplitName};
use crate::eval::cosine::cosine_map_at_r;
use crate::eval::{share_points, summary_markdown, EvalSet, EvalSummary, SharePoints};
use crate::finetune::model_backbone;
use crate::ics::Method;
use crate::model_file::ModelFile;

/// One `ics-train eval` run.
#[derive(Debug, Clone)]
pub struct EvalJob {
    /// Model files (at least one).
    pub models: Vec<PathBuf>,
    /// Output folder (created).
    pub out: PathBuf,
    /// Backbone file [default: the one the first model was trained with].
    pub backbone: Option<PathBuf>,
    /// The data; empty: the data the first model was trained on.
    pub data: DataSpec,
    pub features: FeatureSettings,
    /// R of mAP@R.
    pub r: usize,
    /// Also rank by cosine similarity of the raw features.
    pub cosine: bool,
    /// Also write each model's codes: `out/codes/<model>-{query,database}.tsv`.
    pub codes: bool,
}

/// What an evaluation produced.
pub struct Evaluation {
    pub summary: EvalSummary,
    /// The weights-vs-area points of the first ICS model, when its weights are for the
    /// training split and that split has areas.
    pub shares: Option<SharePoints>,
    /// `report.json` and `summary.md`.
    pub report_file: PathBuf,
    pub markdown_file: PathBuf,
}

impl EvalJob {
    /// Scores the models and writes `report.json`, `summary.md` (and the codes).
    pub fn run(&self, obs: &mut dyn Observer) -> Result<Evaluation> {
        ensure!(!self.models.is_empty(), "no model file to evaluate");
        let mut files = Vec::new();
        for p in &self.models {
            files.push((p.clone(), ModelFile::load(p)?));
        }
        let data = self.data_for(&files)?;
        let bb = self.backbone_for(&files)?;
        let opts = self.features.options(&data)?;
        let q = load_split(&data, SplitName::Query, obs)?;
        let db = load_split(&data, SplitName::Database, obs)?;
        let qf = features_of(&bb.backbone, &q, &opts, obs)?;
        let dbf = features_of(&bb.backbone, &db, &opts, obs)?;
        let set = EvalSet::new(
            qf.features.view(),
            q.dataset.labels().view(),
            dbf.features.view(),
            db.dataset.labels().view(),
            self.r,
        )?;
        let train = if data.has(SplitName::Train) {
            Some(load_split(&data, SplitName::Train, obs)?)
        } else {
            None
        };
        for (path, f) in &files {
            for split in [Some(&q), Some(&db), train.as_ref()].into_iter().flatten() {
                check_classes(path, &f.class_names, split)?;
            }
        }
        std::fs::create_dir_all(&self.out)
            .with_context(|| format!("creating {}", self.out.display()))?;

        let mut evals = Vec::new();
        for (path, f) in &files {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            let e = evaluate_model(&name, Some(path), &f.model, &set, train.as_ref(), obs)?;
            obs.event(Event::Evaluated(&e));
            if let Some(a) = &e.report.agreement {
                obs.event(Event::Agreement {
                    name: &name,
                    report: a,
                });
            }
            if self.codes {
                let dir = self.out.join("codes");
                std::fs::create_dir_all(&dir)?;
                for (split, feats) in [(&q, qf.features.view()), (&db, dbf.features.view())] {
                    let path = dir.join(format!("{name}-{}.tsv", split.name.name()));
                    write_codes(&path, split, &f.model.encode_packed(feats))?;
                }
            }
            evals.push(e);
        }
        let cosine = if self.cosine {
            obs.event(Event::Begin(Task::Cosine));
            let m = cosine_map_at_r(
                set.query_features,
                &set.query_labels,
                set.db_features,
                &set.db_labels,
                set.r,
            );
            obs.event(Event::End);
            obs.event(Event::Cosine { r: set.r, map: m });
            Some(m)
        } else {
            None
        };

        let markdown = summary_markdown(&evals, cosine, self.r);
        let summary = EvalSummary {
            data: data.describe(),
            backbone: bb.backbone.description.clone(),
            r: self.r,
            queries: q.dataset.len(),
            database: db.dataset.len(),
            cosine_map_at_r: cosine,
            models: evals,
        };
        let report_file = self.out.join("report.json");
        std::fs::write(&report_file, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("cannot write {}", report_file.display()))?;
        let markdown_file = self.out.join("summary.md");
        std::fs::write(&markdown_file, markdown)
            .with_context(|| format!("cannot write {}", markdown_file.display()))?;
        let shares = train.as_ref().and_then(|t| {
            let (_, f) = files
                .iter()
                .find(|(_, f)| f.model.config().method == Method::Ics)?;
            let a = t.dataset.areas()?;
            (f.model.weights().len() == t.dataset.len())
                .then(|| share_points(f.model.weights(), a.pixel.view()))
        });
        Ok(Evaluation {
            summary,
            shares,
            report_file,
            markdown_file,
        })
    }

    /// The data given, else the data the first model was trained on.
    fn data_for(&self, files: &[(PathBuf, ModelFile)]) -> Result<DataSpec> {
        if !self.data.is_empty() {
            return Ok(self.data.clone());
        }
        files[0].1.data.clone().with_context(|| {
            format!(
                "{} records no data; give --data DIR or --query/--database FILE",
                files[0].0.display()
            )
        })
    }

    /// The backbone every model is evaluated with: the first model's fine-tuned network, the
    /// one given, or the one the first model was trained with; every model must have been
    /// trained on its features.
    fn backbone_for(&self, files: &[(PathBuf, ModelFile)]) -> Result<BackboneFile> {
        let (first_path, first) = &files[0];
        let bb = if first.finetuned.is_some() {
            ensure!(
                self.backbone.is_none(),
                "{} carries its fine-tuned backbone; --backbone does not apply",
                first_path.display()
            );
            model_backbone(first, None)?
        } else {
            let bb_path = match (&self.backbone, &first.backbone) {
                (Some(p), _) => p.clone(),
                (None, Some(rec)) => rec.path.clone(),
                (None, None) => bail!(
                    "{} records no backbone; give --backbone FILE",
                    first_path.display()
                ),
            };
            BackboneFile::load(&bb_path)?
        };
        let bb_path = &bb.path;
        for (path, f) in files {
            if f.finetuned.is_some() {
                // Each fine-tuned model has its own network: one evaluation each.
                ensure!(
                    model_backbone(f, None)?.backbone.sha256 == bb.backbone.sha256,
                    "{} and {} have different backbones (fine-tuned): evaluate each on its own",
                    path.display(),
                    first_path.display()
                );
            } else if let Some(rec) = &f.backbone {
                ensure!(
                    first.finetuned.is_none() && rec.sha256 == bb.backbone.sha256,
                    "{} was trained on features of backbone {} (sha256 {:.12}...), but {} has \
                     sha256 {:.12}...: evaluate each with its own backbone",
                    path.display(),
                    rec.path.display(),
                    rec.sha256,
                    bb_path.display(),
                    bb.backbone.sha256
                );
            }
            ensure!(
                f.model.input_dim() == bb.feature_dim,
                "{} takes {} features, backbone {} gives {}",
                path.display(),
                f.model.input_dim(),
                bb_path.display(),
                bb.feature_dim
            );
        }
        Ok(bb)
    }
}

/// Checks that a model's classes are the split's label columns: the same number, and the same
/// names in the same order where both sides have names (a list file without `--classes` has
/// none to compare). Otherwise mAP would score codes against labels of other classes.
pub fn check_classes(model: &Path, names: &[String], split: &LoadedSplit) -> Result<()> {
    let data = split.dataset.class_names();
    let comparable = !are_placeholders(names) && !are_placeholders(data);
    if names.len() == data.len() && !comparable {
        return Ok(());
    }
    let Some(d) = differences(names, data, "the model", "the data") else {
        return Ok(());
    };
    bail!(
        "{} was trained on other classes than the label columns of the {} split {}: {d}. \
         Evaluate it on data labelled with the model's classes in the model's order (list \
         files: --classes with those names, one a line; COCO files: their columns are the \
         category names sorted by name), or train a model on this data",
        model.display(),
        split.name.name(),
        split.file.display()
    )
}

/// Writes codes as `absolute path TAB hex`, one image a line, split order.
pub fn write_codes(path: &Path, split: &LoadedSplit, codes: &PackedCodes) -> Result<()> {
    let paths = split.paths()?;
    let mut out = String::with_capacity(paths.len() * (codes.code_bytes() * 2 + 64));
    for (i, p) in paths.iter().enumerate() {
        let _ = writeln!(out, "{}\t{}", p.display(), to_hex(codes.code(i)));
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}
