//! `ics-train bench`: the quality and speed benchmark, end to end.
//!
//! 1. composes (or reuses, from the work folder) the 20-class benchmark (full: 10,000 train,
//!    2,000 query, 20,000 database canvases of 128 px with 1-3 instances) and the area
//!    benchmark (training canvases with 2-3 classes of widely different sizes);
//! 2. imports EfficientNet-Lite0 at the canvas size, extracts features of every split once
//!    (cached in the work folder) and measures the extraction speed on a fresh sample;
//! 3. cosine ranking of the raw features (the float baseline);
//! 4. trains ICS and CSQ (same configuration, same code) at each code length, mAP@R each;
//! 5. trains ICS on the area benchmark and compares its learned weights with the true area
//!    shares (Spearman, top-1, KL; raw and class-normalised; against uniform weights);
//! 6. writes `bench.json`, `bench.md` (the table and the targets), the PNG plots and the
//!    model files to the output folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::ValueEnum;
use ics_train::backbone::file::{save_backbone_file, BackboneFile};
use ics_train::backbone::{extract_features, Backbone, FeatureOptions};
use ics_train::data::{ComposeOptions, Sources};
use ics_train::eval::cosine::cosine_map_at_r;
use ics_train::eval::{weight_area_agreement, AgreementReport, EvalSet};
use ics_train::ics::{Method, TrainConfig};
use ics_train::model_file::{BackboneRecord, ModelFile};
use serde::Serialize;

use super::backbone::default_pth;
use super::compose::{compose_logged, SourceArgs};
use super::data::{split_features, DataArgs, LoadedSplit, SplitName};
use super::eval::{evaluate_model, model_line, share_points, write_plots, ModelEval};
use super::plots;
use super::train::{agreement_line, train_logged, ConfigArgs};
use super::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The benchmark (about 15-20 minutes cold on 2 cores, most of it feature
    /// extraction; minutes with a warm work folder).
    Full,
    /// A seconds-scale run for tests: 64 px canvases, 200 / 50 / 200 (+ 200 area) canvases,
    /// a small head.
    Small,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder: bench.json, bench.md, PNG plots, models/.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Benchmark size.
    #[arg(long, value_enum, default_value_t = Size::Full)]
    pub size: Size,
    /// Same as --size small.
    #[arg(long, conflicts_with = "size")]
    pub small: bool,
    /// Work folder for the composed data, the backbone and the feature cache, reused by later
    /// runs [default: .cache/bench/<size> under the current folder].
    #[arg(long, value_name = "DIR")]
    pub work: Option<PathBuf>,
    /// Code lengths to train.
    #[arg(
        long,
        value_name = "K,K",
        value_delimiter = ',',
        default_value = "16,32,64"
    )]
    pub bits: Vec<usize>,
    /// R of mAP@R.
    #[arg(long, value_name = "R", default_value_t = 1000)]
    pub r: usize,
    /// Training canvases of the area benchmark [default: 10000; small: 200].
    #[arg(long, value_name = "N")]
    pub area_train: Option<usize>,
    /// Seed of the composed data.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub data_seed: u64,
    /// Skip the CSQ runs.
    #[arg(long)]
    pub no_csq: bool,
    /// Skip the area benchmark.
    #[arg(long)]
    pub no_area: bool,
    /// Training parameters for both methods (defaults: the library's; small: hidden 128,
    /// 20 epochs).
    #[command(flatten)]
    pub config: ConfigArgs,
    /// EfficientNet-Lite0 PyTorch weights (default: in the offline data folder, $ICS_DATA_DIR
    /// or else .cache/data under the current folder).
    #[arg(long, value_name = "FILE", default_value_os_t = default_pth())]
    pub pth: PathBuf,
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Images per ONNX Runtime call.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch: usize,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub ort_threads: usize,
    /// Images of the extraction speed probe [default: 512; small: 64].
    #[arg(long, value_name = "N")]
    pub speed_sample: Option<usize>,
    /// TrueType font for the plots [default: DejaVu Sans of fonts-dejavu-core].
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
}

impl Args {
    fn size(&self) -> Size {
        if self.small {
            Size::Small
        } else {
            self.size
        }
    }
}

/// The composition options of each benchmark part.
pub fn compose_options(
    size: Size,
    seed: u64,
    area_train: Option<usize>,
) -> (ComposeOptions, ComposeOptions) {
    let main = match size {
        Size::Full => ComposeOptions::default(),
        Size::Small => ComposeOptions::small(),
    };
    let mut area = ComposeOptions::area_benchmark();
    if size == Size::Small {
        area.canvas = 64;
        area.min_size = 14;
        area.max_size = 56;
    }
    area.train = area_train.unwrap_or(match size {
        Size::Full => 10_000,
        Size::Small => 200,
    });
    area.query = 0;
    area.database = 0;
    (
        ComposeOptions { seed, ..main },
        ComposeOptions {
            // A different seed stream from the main benchmark's canvases.
            seed: seed.wrapping_add(1),
            ..area
        },
    )
}

/// Composes into `dir` unless it holds a benchmark with the same options already.
fn ensure_composed(
    dir: &Path,
    opts: &ComposeOptions,
    sources: &mut Option<Sources>,
    source_args: &SourceArgs,
) -> Result<()> {
    let manifest = dir.join("manifest.json");
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not JSON", manifest.display()))?;
        let have: ComposeOptions = serde_json::from_value(v["options"].clone())
            .with_context(|| format!("{}: no composer options", manifest.display()))?;
        ensure!(
            have == *opts,
            "{} holds a benchmark composed with other options ({have:?}); delete it or choose \
             another --work folder",
            dir.display()
        );
        ui::log(format!(
            "reusing the composed benchmark in {}",
            dir.display()
        ));
        return Ok(());
    }
    if dir.exists() {
        // A composition interrupted before its manifest: start again.
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("removing the incomplete {}", dir.display()))?;
    }
    if sources.is_none() {
        *sources = Some(source_args.load()?);
    }
    compose_logged(sources.as_ref().expect("loaded"), opts, dir)?;
    Ok(())
}

#[derive(Debug, Serialize)]
struct FeatureSpeed {
    /// Images of the probe (fresh extraction, no cache).
    images: usize,
    ms_per_image: f64,
    preprocess_ms_per_image: f64,
    inference_ms_per_image: f64,
    batch: usize,
    ort_threads: usize,
}

#[derive(Debug, Serialize)]
struct Extraction {
    split: String,
    images: usize,
    from_cache: bool,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct AreaResult {
    images: usize,
    bits: usize,
    train_seconds: f64,
    /// Pixel-area shares (foreground pixels of each instance).
    pixel: AgreementReport,
    /// Box-area shares (w x h of each pasted box).
    boxed: AgreementReport,
    /// Mean Spearman (learned weights vs pixel-area shares) by how different the instance
    /// sizes of a canvas are: the smallest ratio between consecutive sorted areas.
    by_size_ratio: Vec<RatioBin>,
    /// The same on the canvases whose instances all differ at least [`DIFFERENT_SIZES`]-fold in
    /// area ("labels of different sizes"); uniform weights score 0 there too.
    different_sizes: RatioBin,
}

/// Area ratio from which two instances count as being of different sizes.
const DIFFERENT_SIZES: f64 = 2.0;

#[derive(Debug, Clone, Serialize)]
struct RatioBin {
    /// Smallest consecutive area ratio, inclusive lower and exclusive upper bound.
    min_ratio: f64,
    max_ratio: Option<f64>,
    images: usize,
    spearman: f64,
}

/// Spearman of learned weights vs area shares, binned by the canvases' size separation.
fn ratio_breakdown(
    weights: &ics_train::ics::InstanceWeights,
    areas: ndarray::ArrayView2<f64>,
) -> (Vec<RatioBin>, RatioBin) {
    use ics_train::eval::agreement::spearman;
    let edges = [1.0, 1.25, 1.5, DIFFERENT_SIZES, 3.0, f64::INFINITY];
    let mut sums = vec![(0usize, 0.0f64); edges.len() - 1];
    let mut diff = (0usize, 0.0f64);
    for i in 0..weights.len() {
        let labels = weights.labels(i);
        if labels.len() < 2 {
            continue;
        }
        let a: Vec<f64> = labels.iter().map(|&k| areas[[i, k]]).collect();
        if a.iter().any(|&x| x <= 0.0) {
            continue;
        }
        let mut sorted = a.clone();
        sorted.sort_by(f64::total_cmp);
        let ratio = sorted
            .windows(2)
            .map(|w| w[1] / w[0])
            .fold(f64::INFINITY, f64::min);
        let rho = spearman(&a, &weights.on_labels(i)).unwrap_or(0.0);
        let b = edges.windows(2).position(|e| ratio >= e[0] && ratio < e[1]);
        if let Some(b) = b {
            sums[b].0 += 1;
            sums[b].1 += rho;
        }
        if ratio >= DIFFERENT_SIZES {
            diff.0 += 1;
            diff.1 += rho;
        }
    }
    let bin = |lo: f64, hi: f64, (n, sum): (usize, f64)| RatioBin {
        min_ratio: lo,
        max_ratio: hi.is_finite().then_some(hi),
        images: n,
        spearman: sum / n.max(1) as f64,
    };
    let bins = edges
        .windows(2)
        .zip(&sums)
        .map(|(e, &s)| bin(e[0], e[1], s))
        .collect();
    (bins, bin(DIFFERENT_SIZES, f64::INFINITY, diff))
}

#[derive(Debug, Serialize)]
struct Target {
    name: String,
    wanted: String,
    measured: String,
    met: bool,
}

#[derive(Debug, Serialize)]
struct BenchJson {
    size: Size,
    trainer_version: String,
    backbone: String,
    data: String,
    area_data: Option<String>,
    r: usize,
    train_images: usize,
    queries: usize,
    database: usize,
    feature_dim: usize,
    feature_speed: FeatureSpeed,
    extractions: Vec<Extraction>,
    cosine_map_at_r: f64,
    base_config: TrainConfig,
    models: Vec<ModelEval>,
    area: Option<AreaResult>,
    targets: Vec<Target>,
    total_seconds: f64,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    plots::init_font(args.font.as_deref())?;
    let size = args.size();
    for &b in &args.bits {
        ics_core::code::check_bits(b).map_err(|e| anyhow::anyhow!("--bits {b}: {e}"))?;
    }
    ensure!(!args.bits.is_empty(), "--bits: no code length");
    let mut base = args.config.build(None, None)?;
    if size == Size::Small {
        // A small head and fewer epochs keep the test run (debug build) in seconds; flags win.
        if args.config.hidden.is_none() && args.config.config.is_none() {
            base.hidden = vec![128];
        }
        if args.config.epochs.is_none() && args.config.config.is_none() {
            base.epochs = 20;
            base.lr_step_epochs = 8;
        }
        base.validate()?;
    }
    let work = match &args.work {
        Some(w) => w.clone(),
        None => Path::new(".cache/bench").join(match size {
            Size::Full => "full",
            Size::Small => "small",
        }),
    };
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    std::fs::create_dir_all(args.out.join("models"))
        .with_context(|| format!("creating {}", args.out.display()))?;
    ui::log(format!(
        "bench ({size:?}): work folder {}, output {}",
        work.display(),
        args.out.display()
    ));

    // 1. Data.
    let (main_opts, area_opts) = compose_options(size, args.data_seed, args.area_train);
    let mut sources = None;
    let data_dir = work.join("data");
    ensure_composed(&data_dir, &main_opts, &mut sources, &args.sources)?;
    let area_dir = work.join("area");
    if !args.no_area {
        ensure_composed(&area_dir, &area_opts, &mut sources, &args.sources)?;
    }
    drop(sources);

    // 2. Backbone and features.
    let bb_path = work.join(format!("lite0-{}.onnx", main_opts.canvas));
    if !bb_path.is_file() {
        let sp = ui::spinner("importing EfficientNet-Lite0");
        let bb = Backbone::import_lite0(&args.pth, main_opts.canvas);
        sp.finish_and_clear();
        let bb = bb.with_context(|| format!("importing {}", args.pth.display()))?;
        save_backbone_file(&bb, &bb_path, args.ort_threads)?;
        ui::log(format!(
            "imported {} to {}",
            bb.description,
            bb_path.display()
        ));
    }
    let bb = BackboneFile::load(&bb_path)?;
    let cache = work.join("features");
    let fopts = FeatureOptions {
        batch_size: args.batch,
        intra_threads: args.ort_threads,
        cache_dir: Some(cache.clone()),
        progress: !ui::quiet(),
        ..FeatureOptions::default()
    };
    let data = DataArgs {
        data: Some(data_dir.clone()),
        ..DataArgs::default()
    };
    let mut extractions = Vec::new();
    let mut load =
        |d: &DataArgs, s: SplitName, tag: &str| -> Result<(LoadedSplit, ndarray::Array2<f32>)> {
            let split = d.load(s)?;
            let ex = split_features(&bb.backbone, &split, &fopts)?;
            extractions.push(Extraction {
                split: format!("{tag}{}", s.name()),
                images: split.dataset.len(),
                from_cache: ex.from_cache,
                seconds: ex.preprocess_s + ex.inference_s,
            });
            Ok((split, ex.features))
        };
    let (train, train_f) = load(&data, SplitName::Train, "")?;
    let (query, query_f) = load(&data, SplitName::Query, "")?;
    let (db, db_f) = load(&data, SplitName::Database, "")?;
    let area_data = DataArgs {
        data: Some(area_dir.clone()),
        ..DataArgs::default()
    };
    let area = if args.no_area {
        None
    } else {
        Some(load(&area_data, SplitName::Train, "area ")?)
    };
    let speed = speed_probe(&bb.backbone, &query, &args, size)?;
    ui::log(format!(
        "feature speed: {:.2} ms/image on {} fresh {} px images (preprocessing {:.2}, inference \
         {:.2}; batch {}, ONNX Runtime threads {})",
        speed.ms_per_image,
        speed.images,
        main_opts.canvas,
        speed.preprocess_ms_per_image,
        speed.inference_ms_per_image,
        speed.batch,
        if speed.ort_threads == 0 {
            "one per core".to_string()
        } else {
            speed.ort_threads.to_string()
        }
    ));

    // 3. Float baseline.
    let set = EvalSet::new(
        query_f.view(),
        query.dataset.labels().view(),
        db_f.view(),
        db.dataset.labels().view(),
        args.r,
    )?;
    let t = Instant::now();
    let cosine = cosine_map_at_r(
        set.query_features,
        &set.query_labels,
        set.db_features,
        &set.db_labels,
        set.r,
    );
    ui::log(format!(
        "cosine ranking of the raw {}-d features: mAP@{} {cosine:.4} ({})",
        bb.feature_dim,
        args.r,
        ui::duration(t.elapsed().as_secs_f64())
    ));

    // 4. ICS and CSQ at each length.
    let record = BackboneRecord {
        path: std::fs::canonicalize(&bb_path)?,
        sha256: bb.backbone.sha256.clone(),
        description: bb.backbone.description.clone(),
        feature_dim: bb.feature_dim,
    };
    let methods: Vec<Method> = if args.no_csq {
        vec![Method::Ics]
    } else {
        vec![Method::Ics, Method::Csq]
    };
    let mut models = Vec::new();
    for &bits in &args.bits {
        for &method in &methods {
            let config = TrainConfig {
                bits,
                method,
                ..base.clone()
            };
            let name = format!(
                "{}{bits}",
                if method == Method::Ics { "ics" } else { "csq" }
            );
            let model = train_logged(
                &format!("[{name}] "),
                train_f.view(),
                train.dataset.labels().view(),
                &config,
                Some(&set),
            )?;
            let e = evaluate_model(&name, None, &model, &set, Some(&train))?;
            ui::log(model_line(&e));
            let file = args.out.join("models").join(format!("{name}.icsm"));
            ModelFile {
                model,
                class_names: train.dataset.class_names().to_vec(),
                backbone: Some(record.clone()),
                data: Some(data.record()?),
            }
            .save(&file)?;
            models.push(ModelEval {
                file: Some(file),
                ..e
            });
        }
    }

    // 5. Weight-vs-area agreement.
    let mut area_result = None;
    let mut shares = None;
    if let Some((asplit, afeat)) = &area {
        let bits = *args.bits.iter().max().expect("non-empty");
        let config = TrainConfig {
            bits,
            method: Method::Ics,
            ..base.clone()
        };
        let model = train_logged(
            "[area] ",
            afeat.view(),
            asplit.dataset.labels().view(),
            &config,
            None,
        )?;
        let areas = asplit
            .dataset
            .areas()
            .context("the area benchmark has no areas")?;
        let pixel = weight_area_agreement(model.weights(), areas.pixel.view())?;
        let boxed = weight_area_agreement(model.weights(), areas.boxed.view())?;
        ui::log(format!("[area] pixel areas: {}", agreement_line(&pixel)));
        ui::log(format!("[area] box areas: {}", agreement_line(&boxed)));
        let (by_size_ratio, different_sizes) = ratio_breakdown(model.weights(), areas.pixel.view());
        ui::log(format!(
            "[area] on the {} canvases whose instance areas differ >= {DIFFERENT_SIZES}x: \
             Spearman {:.3} (uniform 0)",
            different_sizes.images, different_sizes.spearman
        ));
        shares = Some(share_points(model.weights(), areas.pixel.view()));
        let file = args.out.join("models").join(format!("area-ics{bits}.icsm"));
        let train_seconds = model.history().iter().map(|e| e.seconds).sum();
        ModelFile {
            model,
            class_names: asplit.dataset.class_names().to_vec(),
            backbone: Some(record.clone()),
            data: Some(area_data.record()?),
        }
        .save(&file)?;
        area_result = Some(AreaResult {
            images: asplit.dataset.len(),
            bits,
            train_seconds,
            pixel,
            boxed,
            by_size_ratio,
            different_sizes,
        });
    }

    // 6. Outputs.
    let targets = targets(&models, cosine, area_result.as_ref(), &speed);
    let json = BenchJson {
        size,
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        backbone: bb.backbone.description.clone(),
        data: data_dir.display().to_string(),
        area_data: (!args.no_area).then(|| area_dir.display().to_string()),
        r: args.r,
        train_images: train.dataset.len(),
        queries: query.dataset.len(),
        database: db.dataset.len(),
        feature_dim: bb.feature_dim,
        feature_speed: speed,
        extractions,
        cosine_map_at_r: cosine,
        base_config: base,
        models,
        area: area_result,
        targets,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let md = markdown(&json);
    let jpath = args.out.join("bench.json");
    std::fs::write(&jpath, serde_json::to_string_pretty(&json)? + "\n")
        .with_context(|| format!("cannot write {}", jpath.display()))?;
    let mpath = args.out.join("bench.md");
    std::fs::write(&mpath, &md).with_context(|| format!("cannot write {}", mpath.display()))?;
    let plots = write_plots(
        &args.out,
        &json.models,
        Some(cosine),
        shares.as_ref(),
        args.r,
    )?;
    println!("{md}");
    for p in plots {
        ui::log(format!("plot {}", p.display()));
    }
    ui::log(format!(
        "wrote {} and {} in {}",
        jpath.display(),
        mpath.display(),
        ui::duration(started.elapsed().as_secs_f64())
    ));
    Ok(())
}

/// Extraction speed on a fresh sample of the query split (no cache).
fn speed_probe(
    bb: &Backbone,
    query: &LoadedSplit,
    args: &Args,
    size: Size,
) -> Result<FeatureSpeed> {
    let n = args
        .speed_sample
        .unwrap_or(match size {
            Size::Full => 512,
            Size::Small => 64,
        })
        .min(query.dataset.len())
        .max(1);
    let idx: Vec<usize> = (0..n).collect();
    let sample = query.dataset.subset(&idx, "speed probe")?;
    let opts = FeatureOptions {
        batch_size: args.batch,
        intra_threads: args.ort_threads,
        cache_dir: None,
        progress: false,
        ..FeatureOptions::default()
    };
    // One warm-up batch (session creation, first-run allocations) outside the measurement.
    let warm = sample.subset(&(0..args.batch.min(n)).collect::<Vec<_>>(), "warm-up")?;
    extract_features(bb, &warm, &opts)?;
    let ex = extract_features(bb, &sample, &opts)?;
    let per = |s: f64| 1e3 * s / n as f64;
    Ok(FeatureSpeed {
        images: n,
        ms_per_image: per(ex.preprocess_s + ex.inference_s),
        preprocess_ms_per_image: per(ex.preprocess_s),
        inference_ms_per_image: per(ex.inference_s),
        batch: args.batch,
        ort_threads: args.ort_threads,
    })
}

fn find(models: &[ModelEval], method: Method, bits: usize) -> Option<&ModelEval> {
    models.iter().find(|m| {
        m.report.config.method == method
            && m.report.retrieval.as_ref().is_some_and(|r| r.bits == bits)
    })
}

fn targets(
    models: &[ModelEval],
    cosine: f64,
    area: Option<&AreaResult>,
    speed: &FeatureSpeed,
) -> Vec<Target> {
    let mut t = Vec::new();
    let mut bits: Vec<usize> = models
        .iter()
        .filter_map(|m| m.report.retrieval.as_ref().map(|r| r.bits))
        .collect();
    bits.sort_unstable();
    bits.dedup();
    for &b in &bits {
        if let (Some(i), Some(c)) = (find(models, Method::Ics, b), find(models, Method::Csq, b)) {
            let (mi, mc) = (i.map().unwrap_or(0.0), c.map().unwrap_or(0.0));
            t.push(Target {
                name: format!("ICS >= CSQ + 1.5 points at {b} bits"),
                wanted: format!(">= {:.4}", mc + 0.015),
                measured: format!("{mi:.4} ({:+.2} points)", 100.0 * (mi - mc)),
                met: mi >= mc + 0.015,
            });
        }
    }
    if let Some(&b) = bits.last() {
        if let Some(i) = find(models, Method::Ics, b) {
            let mi = i.map().unwrap_or(0.0);
            t.push(Target {
                name: format!("ICS {b} bits >= cosine of raw features + 10 points"),
                wanted: format!(">= {:.4}", cosine + 0.10),
                measured: format!("{mi:.4} ({:+.2} points)", 100.0 * (mi - cosine)),
                met: mi >= cosine + 0.10,
            });
        }
    }
    if let Some(a) = area {
        t.push(Target {
            name: "weights vs area shares, all area canvases (2-3 labels): mean Spearman >= 0.5"
                .into(),
            wanted: ">= 0.5 (uniform ~0)".into(),
            measured: format!(
                "{:.3} (uniform {:.3}; {} canvases)",
                a.pixel.raw.learned.spearman, a.pixel.raw.uniform.spearman, a.pixel.images
            ),
            met: a.pixel.raw.learned.spearman >= 0.5,
        });
        let d = &a.different_sizes;
        t.push(Target {
            name: format!(
                "weights vs area shares, canvases whose instances differ >= {DIFFERENT_SIZES}x \
                 in area: mean Spearman >= 0.5"
            ),
            wanted: ">= 0.5 (uniform 0)".into(),
            measured: format!("{:.3} ({} canvases)", d.spearman, d.images),
            met: d.spearman >= 0.5,
        });
    }
    for m in models {
        if m.report.config.method == Method::Ics {
            t.push(Target {
                name: format!("{} training under 5 minutes", m.name),
                wanted: "< 300 s".into(),
                measured: format!("{:.1} s", m.report.train_seconds),
                met: m.report.train_seconds < 300.0,
            });
        }
    }
    t.push(Target {
        name: "feature extraction near the Lite0 rate (~7 ms/image at 128 px, 2 cores)".into(),
        wanted: "<= 10 ms/image".into(),
        measured: format!("{:.2} ms/image", speed.ms_per_image),
        met: speed.ms_per_image <= 10.0,
    });
    t
}

fn markdown(b: &BenchJson) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## ics-train bench ({:?}): {} train / {} query / {} database, {}, mAP@{}\n",
        b.size, b.train_images, b.queries, b.database, b.backbone, b.r
    );
    let mut bits: Vec<usize> = b
        .models
        .iter()
        .filter_map(|m| m.report.retrieval.as_ref().map(|r| r.bits))
        .collect();
    bits.sort_unstable();
    bits.dedup();
    let _ = writeln!(
        s,
        "| bits | ICS mAP | CSQ mAP | ICS - CSQ (points) | random codes | ICS train s | CSQ train s |"
    );
    let _ = writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|");
    for &k in &bits {
        let i = find(&b.models, Method::Ics, k);
        let c = find(&b.models, Method::Csq, k);
        let f = |m: Option<&ModelEval>| {
            m.and_then(|m| m.map())
                .map_or("-".into(), |v| format!("{v:.4}"))
        };
        let secs = |m: Option<&ModelEval>| {
            m.map_or("-".into(), |m| format!("{:.1}", m.report.train_seconds))
        };
        let diff = match (i.and_then(|m| m.map()), c.and_then(|m| m.map())) {
            (Some(a), Some(b)) => format!("{:+.2}", 100.0 * (a - b)),
            _ => "-".into(),
        };
        let random = i
            .or(c)
            .and_then(|m| m.report.retrieval.as_ref())
            .map_or("-".into(), |r| format!("{:.4}", r.random_codes_map_at_r));
        let _ = writeln!(
            s,
            "| {k} | {} | {} | {diff} | {random} | {} | {} |",
            f(i),
            f(c),
            secs(i),
            secs(c)
        );
    }
    let _ = writeln!(
        s,
        "\nCosine ranking of the raw {}-d float features: mAP@{} **{:.4}**.",
        b.feature_dim, b.r, b.cosine_map_at_r
    );
    if let Some(a) = &b.area {
        let _ = writeln!(
            s,
            "\nWeight vs area share ({} area-benchmark training images with 2-3 labels, ICS {} \
             bits, trained in {:.1} s):\n",
            a.pixel.images, a.bits, a.train_seconds
        );
        let _ = writeln!(
            s,
            "| areas | Spearman learned | Spearman uniform | top-1 learned | top-1 uniform | KL learned | KL uniform |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in [
            ("pixel, raw", &a.pixel.raw),
            ("pixel, class-normalised", &a.pixel.class_normalised),
            ("box, raw", &a.boxed.raw),
            ("box, class-normalised", &a.boxed.class_normalised),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.4} |",
                r.learned.spearman,
                r.uniform.spearman,
                r.learned.top1,
                r.uniform.top1,
                r.learned.kl,
                r.uniform.kl
            );
        }
        let _ = writeln!(
            s,
            "\nSpearman (learned weights vs pixel-area shares) by the smallest area ratio between \
             a canvas's instances:\n"
        );
        let _ = writeln!(s, "| area ratio | canvases | Spearman |");
        let _ = writeln!(s, "|---|---:|---:|");
        for b in a.by_size_ratio.iter().chain([&a.different_sizes]) {
            let range = match b.max_ratio {
                Some(hi) => format!("{:.2} - {hi:.2}", b.min_ratio),
                None => format!(">= {:.2}", b.min_ratio),
            };
            let _ = writeln!(s, "| {range} | {} | {:.3} |", b.images, b.spearman);
        }
    }
    let fs = &b.feature_speed;
    let _ = writeln!(
        s,
        "\nFeature extraction: {:.2} ms/image (preprocessing {:.2}, inference {:.2}) on {} fresh \
         images.",
        fs.ms_per_image, fs.preprocess_ms_per_image, fs.inference_ms_per_image, fs.images
    );
    let fresh: Vec<&Extraction> = b.extractions.iter().filter(|e| !e.from_cache).collect();
    if !fresh.is_empty() {
        let n: usize = fresh.iter().map(|e| e.images).sum();
        let secs: f64 = fresh.iter().map(|e| e.seconds).sum();
        let _ = writeln!(
            s,
            "This run extracted {n} images in {:.1} s ({:.2} ms/image); the rest came from the \
             cache.",
            secs,
            1e3 * secs / n.max(1) as f64
        );
    }
    let c = &b.base_config;
    let _ = writeln!(
        s,
        "\nConfiguration (both methods): head {:?}, {} epochs, batch {}, lr {} x{} every {} \
         epochs, lambda_q {}, lambda_r {} (ICS), warm-up {} epochs, {:?} weights, {:?} centres, \
         seed {}.",
        c.hidden,
        c.epochs,
        c.batch_size,
        c.lr,
        c.lr_decay,
        c.lr_step_epochs,
        c.lambda_q,
        c.lambda_r,
        c.warmup_epochs,
        c.weight_update,
        c.centres,
        c.seed
    );
    let _ = writeln!(s, "\n| target | wanted | measured | met |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in &b.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.name,
            t.wanted,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(s, "\nTotal wall time: {}.", ui::duration(b.total_seconds));
    s
}
