//! `ics-train eval`: scores model files on the query and database splits (mAP@R by Hamming
//! ranking, precision within radius 2, PR curve, random-code and optional cosine baselines)
//! and the learned weights against the training split's areas; writes `report.json`,
//! `summary.md` and PNG plots (`map_vs_bits.png`, `pr_curves.png`, `weights_vs_area.png`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_codes::code::to_hex;
use ics_train::backbone::file::BackboneFile;
use ics_train::codes::PackedCodes;
use ics_train::eval::cosine::cosine_map_at_r;
use ics_train::eval::{EvalSet, ModelEval};
use ics_train::finetune::model_backbone;
use ics_train::ics::{IcsModel, InstanceWeights, Method};
use ics_train::model_file::ModelFile;
use ndarray::ArrayView2;
use plotters::chart::SeriesLabelPosition;
use serde::Serialize;

use super::data::{split_features, DataArgs, FeatureArgs, LoadedSplit, SplitName};
use super::plots::{self, Axes, Series, PALETTE};
use super::train::agreement_line;
use super::ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file from `ics-train train`; repeat to compare several (e.g. ICS and CSQ at
    /// 16/32/64 bits: the mAP-vs-bits plot).
    #[arg(long = "model", value_name = "FILE", required = true)]
    pub models: Vec<PathBuf>,
    /// Output folder for report.json, summary.md and the plots.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Backbone file [default: the one the first model was trained with].
    #[arg(long, value_name = "FILE")]
    pub backbone: Option<PathBuf>,
    /// Data [default: the data the first model was trained on].
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// R of mAP@R (1000 as in the issue; 5000 for COCO/NUS-WIDE protocols).
    #[arg(long, value_name = "R", default_value_t = 1000)]
    pub r: usize,
    /// Also rank by cosine similarity of the raw float features (the float baseline).
    #[arg(long)]
    pub cosine: bool,
    /// Also write each model's codes: DIR/codes/<model>-{query,database}.tsv (path TAB hex).
    #[arg(long)]
    pub codes: bool,
    /// Skip the PNG plots.
    #[arg(long)]
    pub no_plots: bool,
    /// TrueType font for the plots [default: DejaVu Sans of fonts-dejavu-core].
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
}

#[derive(Serialize)]
struct EvalJson<'a> {
    data: String,
    backbone: String,
    r: usize,
    queries: usize,
    database: usize,
    cosine_map_at_r: Option<f64>,
    models: &'a [ModelEval],
}

/// Scores one model ([`ModelEval::evaluate`]) with `train`'s pixel areas, saying so when
/// the model's weights are for another training split.
pub fn evaluate_model(
    name: &str,
    file: Option<&Path>,
    model: &IcsModel,
    set: &EvalSet,
    train: Option<&LoadedSplit>,
) -> Result<ModelEval> {
    let areas = train
        .and_then(|t| t.dataset.areas())
        .map(|a| a.pixel.view());
    if let (Some(t), Some(a)) = (train, areas) {
        if !ModelEval::agreement_applies(model, a) {
            ui::log(format!(
                "{name}: weights are for {} training images, the train split has {}: \
                 no weight-vs-area agreement",
                model.weights().len(),
                t.dataset.len()
            ));
        }
    }
    ModelEval::evaluate(name, file, model, set, areas)
}

pub fn model_line(m: &ModelEval) -> String {
    let r = m.report.retrieval.as_ref().expect("evaluated");
    format!(
        "{}: {:?} {} bits: mAP@{} {:.4} (random codes {:.4}), precision within radius 2 {:.4}",
        m.name,
        m.report.config.method,
        r.bits,
        r.r,
        r.map_at_r,
        r.random_codes_map_at_r,
        r.precision_within_radius2
    )
}

pub fn run(args: Args) -> Result<()> {
    if !args.no_plots {
        plots::init_font(args.font.as_deref())?;
    }
    let mut files = Vec::new();
    for p in &args.models {
        files.push((p.clone(), ModelFile::load(p)?));
    }
    let first = &files[0].1;
    let data = if args.data.is_empty() {
        first.data.as_ref().map(DataArgs::from).with_context(|| {
            format!(
                "{} records no data; give --data DIR or --query/--database FILE",
                files[0].0.display()
            )
        })?
    } else {
        args.data.clone()
    };
    let bb = if first.finetuned.is_some() {
        ensure!(
            args.backbone.is_none(),
            "{} carries its fine-tuned backbone; --backbone does not apply",
            files[0].0.display()
        );
        model_backbone(first, None)?
    } else {
        let bb_path = match (&args.backbone, &first.backbone) {
            (Some(p), _) => p.clone(),
            (None, Some(rec)) => rec.path.clone(),
            (None, None) => bail!(
                "{} records no backbone; give --backbone FILE",
                files[0].0.display()
            ),
        };
        BackboneFile::load(&bb_path)?
    };
    let bb_path = bb.path.clone();
    for (path, f) in &files {
        if f.finetuned.is_some() {
            // Each fine-tuned model has its own network: one evaluation each.
            ensure!(
                model_backbone(f, None)?.backbone.sha256 == bb.backbone.sha256,
                "{} and {} have different backbones (fine-tuned): evaluate each on its own",
                path.display(),
                files[0].0.display()
            );
        } else if let Some(rec) = &f.backbone {
            ensure!(
                first.finetuned.is_none() && rec.sha256 == bb.backbone.sha256,
                "{} was trained on features of backbone {} (sha256 {:.12}...), but {} has sha256 \
                 {:.12}...: evaluate each with its own backbone",
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
    let opts = args.features.options(&data)?;
    let q = data.load(SplitName::Query)?;
    let db = data.load(SplitName::Database)?;
    let qf = split_features(&bb.backbone, &q, &opts)?;
    let dbf = split_features(&bb.backbone, &db, &opts)?;
    let set = EvalSet::new(
        qf.features.view(),
        q.dataset.labels().view(),
        dbf.features.view(),
        db.dataset.labels().view(),
        args.r,
    )?;
    let train = if data.has(SplitName::Train) {
        Some(data.load(SplitName::Train)?)
    } else {
        None
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let mut evals = Vec::new();
    for (path, f) in &files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into());
        let e = evaluate_model(&name, Some(path), &f.model, &set, train.as_ref())?;
        ui::log(model_line(&e));
        if let Some(a) = &e.report.agreement {
            ui::log(format!("{name}: {}", agreement_line(a)));
        }
        if args.codes {
            let dir = args.out.join("codes");
            std::fs::create_dir_all(&dir)?;
            for (split, feats) in [(&q, qf.features.view()), (&db, dbf.features.view())] {
                let path = dir.join(format!("{name}-{}.tsv", split.name.name()));
                write_codes(&path, split, &f.model.encode_packed(feats))?;
            }
        }
        evals.push(e);
    }
    let cosine = if args.cosine {
        let sp = ui::spinner("cosine ranking of the raw features");
        let m = cosine_map_at_r(
            set.query_features,
            &set.query_labels,
            set.db_features,
            &set.db_labels,
            set.r,
        );
        sp.finish_and_clear();
        ui::log(format!("cosine of the raw features: mAP@{} {m:.4}", set.r));
        Some(m)
    } else {
        None
    };

    let json = EvalJson {
        data: data.describe(),
        backbone: bb.backbone.description.clone(),
        r: args.r,
        queries: q.dataset.len(),
        database: db.dataset.len(),
        cosine_map_at_r: cosine,
        models: &evals,
    };
    let rpath = args.out.join("report.json");
    std::fs::write(&rpath, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", rpath.display()))?;
    let mpath = args.out.join("summary.md");
    std::fs::write(&mpath, summary_markdown(&evals, cosine, args.r))
        .with_context(|| format!("cannot write {}", mpath.display()))?;
    if !args.no_plots {
        let mut scatter = None;
        if let (Some(t), Some(e)) = (
            &train,
            files
                .iter()
                .find(|(_, f)| f.model.config().method == Method::Ics),
        ) {
            if let Some(a) = t.dataset.areas() {
                if e.1.model.weights().len() == t.dataset.len() {
                    scatter = Some(share_points(e.1.model.weights(), a.pixel.view()));
                }
            }
        }
        let written = write_plots(&args.out, &evals, cosine, scatter.as_ref(), args.r)?;
        for p in written {
            ui::log(format!("plot {}", p.display()));
        }
    }
    ui::log(format!("wrote {} and {}", rpath.display(), mpath.display()));
    Ok(())
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

/// `(true area share, learned weight)` of every label of every multi-label image, grouped by
/// label count (2, 3, more).
pub struct SharePoints {
    pub groups: Vec<(usize, Vec<(f64, f64)>)>,
}

pub fn share_points(weights: &InstanceWeights, areas: ArrayView2<f64>) -> SharePoints {
    let mut groups: std::collections::BTreeMap<usize, Vec<(f64, f64)>> = Default::default();
    let n = weights.len();
    // At most ~3,000 images: every k-th, so the plot stays legible and the choice is fixed.
    let multi = (0..n).filter(|&i| weights.labels(i).len() >= 2).count();
    let step = multi.div_ceil(3000).max(1);
    let mut seen = 0usize;
    for i in 0..n {
        let labels = weights.labels(i);
        if labels.len() < 2 {
            continue;
        }
        seen += 1;
        if !(seen - 1).is_multiple_of(step) {
            continue;
        }
        let a: Vec<f64> = labels.iter().map(|&k| areas[[i, k]]).collect();
        let total: f64 = a.iter().sum();
        if total <= 0.0 {
            continue;
        }
        let w = weights.on_labels(i);
        let g = groups.entry(labels.len().min(4)).or_default();
        for (ak, wk) in a.iter().zip(&w) {
            g.push((ak / total, *wk));
        }
    }
    SharePoints {
        groups: groups.into_iter().collect(),
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Ics => "ICS",
        Method::Csq => "CSQ",
    }
}

/// Writes the plots that the evaluations support; returns their paths.
pub fn write_plots(
    dir: &Path,
    evals: &[ModelEval],
    cosine: Option<f64>,
    shares: Option<&SharePoints>,
    r: usize,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    // mAP vs bits, one line per method.
    let mut by_method: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    let mut random: std::collections::BTreeMap<usize, f64> = Default::default();
    for e in evals {
        if let Some(rr) = &e.report.retrieval {
            by_method
                .entry(method_name(e.report.config.method))
                .or_default()
                .push((rr.bits as f64, rr.map_at_r));
            random.insert(rr.bits, rr.random_codes_map_at_r);
        }
    }
    if !by_method.is_empty() {
        let bits: Vec<f64> = random.keys().map(|&b| b as f64).collect();
        let (bmin, bmax) = (bits[0], *bits.last().expect("non-empty"));
        let span = (bmax - bmin).max(16.0);
        let x = (bmin - span * 0.08)..(bmax + span * 0.08);
        let mut series: Vec<Series> = by_method
            .into_iter()
            .enumerate()
            .map(|(i, (name, mut pts))| {
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: name.to_string(),
                    points: pts,
                    color: PALETTE[i % PALETTE.len()],
                    markers: true,
                    thin: false,
                }
            })
            .collect();
        if let Some(c) = cosine {
            series.push(Series {
                name: "cosine, raw float features".into(),
                points: vec![(x.start, c), (x.end, c)],
                color: PALETTE[2],
                markers: false,
                thin: true,
            });
        }
        series.push(Series {
            name: "random codes".into(),
            points: random.iter().map(|(&b, &m)| (b as f64, m)).collect(),
            color: PALETTE[7],
            markers: true,
            thin: true,
        });
        let ylabel = format!("mAP@{r}");
        let path = dir.join("map_vs_bits.png");
        plots::line_chart(
            &path,
            &Axes {
                title: &format!("mAP@{r} vs code length"),
                x_label: "bits",
                y_label: &ylabel,
                x,
                y: 0.0..1.0,
                legend: SeriesLabelPosition::UpperLeft,
            },
            &series,
        )?;
        written.push(path);
    }
    // PR curves by Hamming radius.
    let series: Vec<Series> = evals
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let rr = e.report.retrieval.as_ref()?;
            Some(Series {
                name: format!("{} {} bits", method_name(e.report.config.method), rr.bits),
                points: rr
                    .pr_curve
                    .iter()
                    .map(|p| (p.recall, p.precision))
                    .collect(),
                color: PALETTE[i % PALETTE.len()],
                markers: false,
                thin: false,
            })
        })
        .collect();
    if !series.is_empty() {
        let path = dir.join("pr_curves.png");
        plots::line_chart(
            &path,
            &Axes {
                title: "Precision-recall by Hamming radius",
                x_label: "recall",
                y_label: "precision",
                x: 0.0..1.0,
                y: 0.0..1.0,
                legend: SeriesLabelPosition::UpperRight,
            },
            &series,
        )?;
        written.push(path);
    }
    if let Some(s) = shares {
        let groups: Vec<Series> = s
            .groups
            .iter()
            .enumerate()
            .map(|(i, (k, pts))| Series {
                name: if *k >= 4 {
                    "4+ labels".into()
                } else {
                    format!("{k} labels")
                },
                points: pts.clone(),
                color: PALETTE[i % PALETTE.len()],
                markers: true,
                thin: false,
            })
            .collect();
        let path = dir.join("weights_vs_area.png");
        plots::scatter_chart(
            &path,
            &Axes {
                title: "Learned ICS weight vs true area share (training images)",
                x_label: "area share of the label's instance",
                y_label: "learned weight",
                x: 0.0..1.0,
                y: 0.0..1.0,
                legend: SeriesLabelPosition::UpperLeft,
            },
            &groups,
        )?;
        written.push(path);
    }
    Ok(written)
}

/// A markdown table of the evaluations.
pub fn summary_markdown(evals: &[ModelEval], cosine: Option<f64>, r: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | method | bits | mAP@{r} | random codes | precision r<=2 | train s |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for e in evals {
        if let Some(rr) = &e.report.retrieval {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.1} |",
                e.name,
                method_name(e.report.config.method),
                rr.bits,
                rr.map_at_r,
                rr.random_codes_map_at_r,
                rr.precision_within_radius2,
                e.report.train_seconds
            );
        }
    }
    if let Some(c) = cosine {
        let _ = writeln!(
            s,
            "\nCosine ranking of the raw float features: mAP@{r} {c:.4}."
        );
    }
    for e in evals {
        if let Some(a) = &e.report.agreement {
            let _ = writeln!(s, "\n{}: {}.", e.name, agreement_line(a));
        }
    }
    s
}
