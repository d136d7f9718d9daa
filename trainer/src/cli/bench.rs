//! `ics-train bench`: the quality and speed benchmark, end to end
//! ([`ics_train::benchmark`] says what it measures and checks).
//!
//! 1. composes (or reuses, from the work folder) the 20-class benchmark and the area
//!    benchmark;
//! 2. imports EfficientNet-Lite0 at the canvas size, extracts features of every split once
//!    (cached in the work folder) and measures the extraction speed on a fresh sample;
//! 3. cosine ranking of the raw features (the float baseline);
//! 4. trains ICS and CSQ (same configuration, same code) at each code length, mAP@R each, for
//!    each `--finetune` mode: `none` (the head on the cached features) and fine-tuned rows
//!    (`top:N`, `all`: the backbone trains too, `--finetune-epochs` epochs, images/s
//!    recorded);
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
use ics_train::backbone::{Backbone, FeatureOptions};
use ics_train::benchmark::{
    compose_options, find, modes, speed_probe, targets, AreaResult, BenchReport, BenchSize,
    Extraction, FeatureSpeed, FinetuneRun,
};
use ics_train::data::{ComposeOptions, Sources};
use ics_train::eval::cosine::cosine_map_at_r;
use ics_train::eval::size_ratio::DIFFERENT_SIZES;
use ics_train::eval::{EvalSet, ModelEval};
use ics_train::finetune::FinetuneInputs;
use ics_train::ics::{Checkpointing, FinetuneMode, Method, TrainConfig};
use ics_train::model_file::{BackboneRecord, ModelFile};
use ndarray::Array2;

use super::backbone::default_pth;
use super::compose::{compose_logged, SourceArgs};
use super::data::{split_features, DataArgs, LoadedSplit, SplitName};
use super::eval::{evaluate_model, model_line, share_points, write_plots, SharePoints};
use super::plots;
use super::train::{
    agreement_line, parse_finetune, train_finetuned_logged, train_logged, ConfigArgs, MethodArg,
};
use super::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
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
    /// Fine-tuning modes to train, each a row group of the table: none (the head on frozen
    /// features), top:N, all; e.g. none,top:2.
    #[arg(
        long,
        value_name = "MODE,MODE",
        value_delimiter = ',',
        default_value = "none",
        value_parser = parse_finetune
    )]
    pub finetune: Vec<FinetuneMode>,
    /// Epochs of the fine-tuned rows [default: the configuration's epochs]; they are evaluated
    /// after the last epoch only.
    #[arg(long, value_name = "N")]
    pub finetune_epochs: Option<usize>,
    /// Code lengths of the fine-tuned rows [default: those of --bits].
    #[arg(long, value_name = "K,K", value_delimiter = ',')]
    pub finetune_bits: Vec<usize>,
    /// Methods of the fine-tuned rows (ics, csq) [default: ICS, and CSQ unless --no-csq].
    #[arg(long, value_name = "M,M", value_delimiter = ',', value_enum)]
    pub finetune_methods: Vec<MethodArg>,
    /// Checkpoint folder of the fine-tuned rows (one subfolder per row; with --resume an
    /// interrupted row continues).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Resume the fine-tuned rows from --checkpoint-dir where a checkpoint exists.
    #[arg(long, requires = "checkpoint_dir")]
    pub resume: bool,
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

impl From<Size> for BenchSize {
    fn from(s: Size) -> Self {
        match s {
            Size::Full => BenchSize::Full,
            Size::Small => BenchSize::Small,
        }
    }
}

impl Args {
    fn size(&self) -> BenchSize {
        if self.small {
            BenchSize::Small
        } else {
            self.size.into()
        }
    }
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

/// A loaded split and its features.
struct Split {
    split: LoadedSplit,
    features: Array2<f32>,
}

/// The benchmark's splits, their features, and how each extraction went.
struct Splits {
    train: Split,
    query: Split,
    database: Split,
    area: Option<Split>,
    extractions: Vec<Extraction>,
}

/// Where the composed data and the backbone are.
struct Inputs {
    data: DataArgs,
    area_data: DataArgs,
    backbone: BackboneFile,
    record: BackboneRecord,
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    plots::init_font(args.font.as_deref())?;
    let size = args.size();
    let base = base_config(&args, size)?;
    let work = work_folder(&args, size)?;
    let (main_opts, area_opts) = compose_options(size, args.data_seed, args.area_train);
    let inputs = prepare(&args, &work, &main_opts, &area_opts)?;
    let bb = &inputs.backbone;
    let splits = extract(&args, &inputs, &work)?;
    let speed = feature_speed(&args, size, bb, &splits.query.split, main_opts.canvas)?;
    let set = EvalSet::new(
        splits.query.features.view(),
        splits.query.split.dataset.labels().view(),
        splits.database.features.view(),
        splits.database.split.dataset.labels().view(),
        args.r,
    )?;
    let cosine = float_baseline(&set, bb.feature_dim);
    let (models, finetune_runs) = train_lengths(&args, &base, &inputs, &splits, &set, &work)?;
    let area = match &splits.area {
        Some(a) => Some(area_benchmark(&args, &base, &inputs, a)?),
        None => None,
    };
    let (area, shares) = area.unzip();
    let targets = targets(&models, cosine, area.as_ref(), &speed, &finetune_runs);
    let report = BenchReport {
        size,
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        backbone: bb.backbone.description.clone(),
        data: work.join("data").display().to_string(),
        area_data: (!args.no_area).then(|| work.join("area").display().to_string()),
        r: args.r,
        train_images: splits.train.split.dataset.len(),
        queries: splits.query.split.dataset.len(),
        database: splits.database.split.dataset.len(),
        feature_dim: bb.feature_dim,
        feature_speed: speed,
        extractions: splits.extractions,
        cosine_map_at_r: cosine,
        base_config: base,
        models,
        finetune_runs,
        area,
        targets,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    write_outputs(&args, &report, shares.as_ref(), started)
}

/// The training configuration of both methods; a small run gets a small head and fewer
/// epochs unless given.
fn base_config(args: &Args, size: BenchSize) -> Result<TrainConfig> {
    for &b in &args.bits {
        ics_codes::code::check_bits(b).map_err(|e| anyhow::anyhow!("--bits {b}: {e}"))?;
    }
    ensure!(!args.bits.is_empty(), "--bits: no code length");
    ensure!(!args.finetune.is_empty(), "--finetune: no mode");
    for &b in &args.finetune_bits {
        ics_codes::code::check_bits(b).map_err(|e| anyhow::anyhow!("--finetune-bits {b}: {e}"))?;
    }
    if let Some(e) = args.finetune_epochs {
        ensure!(e >= 1, "--finetune-epochs 0: must be >= 1");
    }
    let mut base = args.config.build(None, None, None)?;
    if size == BenchSize::Small {
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
    Ok(base)
}

/// Creates the work folder and the output folder; the work folder.
fn work_folder(args: &Args, size: BenchSize) -> Result<PathBuf> {
    let work = match &args.work {
        Some(w) => w.clone(),
        None => Path::new(".cache/bench").join(match size {
            BenchSize::Full => "full",
            BenchSize::Small => "small",
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
    Ok(work)
}

/// Steps 1 and 2a: the composed benchmarks and the backbone file, made unless the work folder
/// has them.
fn prepare(
    args: &Args,
    work: &Path,
    main_opts: &ComposeOptions,
    area_opts: &ComposeOptions,
) -> Result<Inputs> {
    let mut sources = None;
    let data_dir = work.join("data");
    ensure_composed(&data_dir, main_opts, &mut sources, &args.sources)?;
    let area_dir = work.join("area");
    if !args.no_area {
        ensure_composed(&area_dir, area_opts, &mut sources, &args.sources)?;
    }
    drop(sources);

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
    let backbone = BackboneFile::load(&bb_path)?;
    let record = BackboneRecord {
        path: std::fs::canonicalize(&bb_path)?,
        sha256: backbone.backbone.sha256.clone(),
        description: backbone.backbone.description.clone(),
        feature_dim: backbone.feature_dim,
    };
    let composed = |dir: PathBuf| DataArgs {
        data: Some(dir),
        ..DataArgs::default()
    };
    Ok(Inputs {
        data: composed(data_dir),
        area_data: composed(area_dir),
        backbone,
        record,
    })
}

/// Step 2b: features of every split, through the work folder's cache.
fn extract(args: &Args, inputs: &Inputs, work: &Path) -> Result<Splits> {
    let fopts = FeatureOptions {
        batch_size: args.batch,
        intra_threads: args.ort_threads,
        cache_dir: Some(work.join("features")),
        progress: !ui::quiet(),
        ..FeatureOptions::default()
    };
    let mut extractions = Vec::new();
    let mut load = |d: &DataArgs, s: SplitName, tag: &str| -> Result<Split> {
        let split = d.load(s)?;
        let ex = split_features(&inputs.backbone.backbone, &split, &fopts)?;
        extractions.push(Extraction {
            split: format!("{tag}{}", s.name()),
            images: split.dataset.len(),
            from_cache: ex.from_cache,
            seconds: ex.preprocess_s + ex.inference_s,
        });
        Ok(Split {
            split,
            features: ex.features,
        })
    };
    let train = load(&inputs.data, SplitName::Train, "")?;
    let query = load(&inputs.data, SplitName::Query, "")?;
    let database = load(&inputs.data, SplitName::Database, "")?;
    let area = if args.no_area {
        None
    } else {
        Some(load(&inputs.area_data, SplitName::Train, "area ")?)
    };
    Ok(Splits {
        train,
        query,
        database,
        area,
        extractions,
    })
}

/// Step 2c: the extraction speed on a fresh sample of the query split (no cache).
fn feature_speed(
    args: &Args,
    size: BenchSize,
    bb: &BackboneFile,
    query: &LoadedSplit,
    canvas: u32,
) -> Result<FeatureSpeed> {
    let n = args.speed_sample.unwrap_or(match size {
        BenchSize::Full => 512,
        BenchSize::Small => 64,
    });
    let speed = speed_probe(
        &bb.backbone,
        &query.dataset,
        n,
        args.batch,
        args.ort_threads,
    )?;
    ui::log(format!(
        "feature speed: {:.2} ms/image on {} fresh {canvas} px images (preprocessing {:.2}, \
         inference {:.2}; batch {}, ONNX Runtime threads {})",
        speed.ms_per_image,
        speed.images,
        speed.preprocess_ms_per_image,
        speed.inference_ms_per_image,
        speed.batch,
        if speed.ort_threads == 0 {
            "one per core".to_string()
        } else {
            speed.ort_threads.to_string()
        }
    ));
    Ok(speed)
}

/// Step 3: mAP@R of the raw features by cosine similarity.
fn float_baseline(set: &EvalSet, feature_dim: usize) -> f64 {
    let t = Instant::now();
    let cosine = cosine_map_at_r(
        set.query_features,
        &set.query_labels,
        set.db_features,
        &set.db_labels,
        set.r,
    );
    ui::log(format!(
        "cosine ranking of the raw {feature_dim}-d features: mAP@{} {cosine:.4} ({})",
        set.r,
        ui::duration(t.elapsed().as_secs_f64())
    ));
    cosine
}

/// Step 4: ICS and CSQ at each code length for each fine-tuning mode, evaluated and saved as
/// model files; the fine-tuning runs' speed.
fn train_lengths(
    args: &Args,
    base: &TrainConfig,
    inputs: &Inputs,
    splits: &Splits,
    set: &EvalSet,
    work: &Path,
) -> Result<(Vec<ModelEval>, Vec<FinetuneRun>)> {
    let methods: Vec<Method> = if args.no_csq {
        vec![Method::Ics]
    } else {
        vec![Method::Ics, Method::Csq]
    };
    let train = &splits.train;
    let mut models = Vec::new();
    let mut runs = Vec::new();
    let tuned_methods: Vec<Method> = if args.finetune_methods.is_empty() {
        methods.clone()
    } else {
        args.finetune_methods
            .iter()
            .map(|m| match m {
                MethodArg::Ics => Method::Ics,
                MethodArg::Csq => Method::Csq,
            })
            .collect()
    };
    for &mode in &args.finetune {
        let (lengths, methods) = if mode.trains_backbone() {
            let b = if args.finetune_bits.is_empty() {
                &args.bits
            } else {
                &args.finetune_bits
            };
            (b, &tuned_methods)
        } else {
            (&args.bits, &methods)
        };
        for &bits in lengths {
            for &method in methods {
                let mut config = TrainConfig {
                    bits,
                    method,
                    ..base.clone()
                };
                config.finetune.mode = mode;
                let mut name = format!(
                    "{}{bits}",
                    if method == Method::Ics { "ics" } else { "csq" }
                );
                if !mode.trains_backbone() {
                    let model = train_logged(
                        &format!("[{name}] "),
                        train.features.view(),
                        train.split.dataset.labels().view(),
                        &config,
                        Some(set),
                        None,
                    )?;
                    let e = evaluate_model(&name, None, &model, set, Some(&train.split))?;
                    ui::log(model_line(&e));
                    let file = args.out.join("models").join(format!("{name}.icsm"));
                    ModelFile {
                        model,
                        class_names: train.split.dataset.class_names().to_vec(),
                        backbone: Some(inputs.record.clone()),
                        data: Some(inputs.data.record()?),
                        finetuned: None,
                    }
                    .save(&file)?;
                    models.push(ModelEval {
                        file: Some(file),
                        ..e
                    });
                    continue;
                }
                name = format!("{name}-{}", mode.to_string().replace(':', ""));
                if let Some(e) = args.finetune_epochs {
                    config.epochs = e;
                    config.lr_step_epochs = config.lr_step_epochs.min(e);
                    config.warmup_epochs = config.warmup_epochs.min(e.saturating_sub(1));
                }
                // One evaluation, after the last epoch: each costs a forward pass of the
                // trained part over every query and database image.
                config.eval_every = config.epochs;
                config.validate()?;
                let (e, run) = finetune_row(args, &config, &name, inputs, splits, work)?;
                models.push(e);
                runs.push(run);
            }
        }
    }
    Ok((models, runs))
}

/// One fine-tuned row: trains, evaluates on the fine-tuned features, saves the model file.
fn finetune_row(
    args: &Args,
    config: &TrainConfig,
    name: &str,
    inputs: &Inputs,
    splits: &Splits,
    work: &Path,
) -> Result<(ModelEval, FinetuneRun)> {
    let fopts = FeatureOptions {
        batch_size: args.batch,
        intra_threads: args.ort_threads,
        cache_dir: Some(work.join("features")),
        progress: !ui::quiet(),
        ..FeatureOptions::default()
    };
    let finputs = FinetuneInputs {
        backbone: &inputs.backbone.backbone,
        train: &splits.train.split.dataset,
        eval: Some((&splits.query.split.dataset, &splits.database.split.dataset)),
        r: args.r,
        features: fopts,
    };
    let checkpointing = args.checkpoint_dir.as_ref().map(|d| Checkpointing {
        dir: d.join(name),
        every: 1,
        resume: args.resume
            && d.join(name)
                .join(ics_train::ics::checkpoint::FILE_NAME)
                .is_file(),
    });
    let out = train_finetuned_logged(
        &format!("[{name}] "),
        &finputs,
        config,
        checkpointing.as_ref(),
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
        args.r,
    )?;
    let e = evaluate_model(name, None, &out.model, &fset, Some(&splits.train.split))?;
    ui::log(model_line(&e));
    let file = args.out.join("models").join(format!("{name}.icsm"));
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
        finetuned: Some(out.record(&config.finetune.mode.to_string())?),
        model: out.model,
        class_names: splits.train.split.dataset.class_names().to_vec(),
        backbone: Some(inputs.record.clone()),
        data: Some(inputs.data.record()?),
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

/// Step 5: ICS at the longest length on the area benchmark, its weights against the areas;
/// the result and the points of the weights-vs-area plot.
fn area_benchmark(
    args: &Args,
    base: &TrainConfig,
    inputs: &Inputs,
    area: &Split,
) -> Result<(AreaResult, SharePoints)> {
    let bits = *args.bits.iter().max().expect("non-empty");
    let mut config = TrainConfig {
        bits,
        method: Method::Ics,
        ..base.clone()
    };
    config.finetune = Default::default();
    let model = train_logged(
        "[area] ",
        area.features.view(),
        area.split.dataset.labels().view(),
        &config,
        None,
        None,
    )?;
    let areas = area
        .split
        .dataset
        .areas()
        .context("the area benchmark has no areas")?;
    let result = AreaResult::evaluate(&model, areas)?;
    ui::log(format!(
        "[area] pixel areas: {}",
        agreement_line(&result.pixel)
    ));
    ui::log(format!(
        "[area] box areas: {}",
        agreement_line(&result.boxed)
    ));
    let d = &result.different_sizes;
    ui::log(format!(
        "[area] on the {} canvases whose instance areas differ >= {DIFFERENT_SIZES}x: \
         Spearman {:.3} (uniform 0)",
        d.images, d.spearman
    ));
    let shares = share_points(model.weights(), areas.pixel.view());
    let file = args.out.join("models").join(format!("area-ics{bits}.icsm"));
    ModelFile {
        model,
        class_names: area.split.dataset.class_names().to_vec(),
        backbone: Some(inputs.record.clone()),
        data: Some(inputs.area_data.record()?),
        finetuned: None,
    }
    .save(&file)?;
    Ok((result, shares))
}

/// Step 6: `bench.json`, `bench.md` (also printed) and the plots.
fn write_outputs(
    args: &Args,
    report: &BenchReport,
    shares: Option<&SharePoints>,
    started: Instant,
) -> Result<()> {
    let md = markdown(report);
    let jpath = args.out.join("bench.json");
    std::fs::write(&jpath, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("cannot write {}", jpath.display()))?;
    let mpath = args.out.join("bench.md");
    std::fs::write(&mpath, &md).with_context(|| format!("cannot write {}", mpath.display()))?;
    let plots = write_plots(
        &args.out,
        &report.models,
        Some(report.cosine_map_at_r),
        shares,
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

/// The markdown of `bench.md` (also printed): the table, the area results, the targets.
fn markdown(b: &BenchReport) -> String {
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
        "| backbone | bits | ICS mAP | CSQ mAP | ICS - CSQ (points) | random codes | ICS train s | CSQ train s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in modes(&b.models) {
        let label = match mode {
            FinetuneMode::None => "frozen (head only)".to_string(),
            m => format!("fine-tuned {m}"),
        };
        for &k in &bits {
            let i = find(&b.models, mode, Method::Ics, k);
            let c = find(&b.models, mode, Method::Csq, k);
            if i.is_none() && c.is_none() {
                continue;
            }
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
                "| {label} | {k} | {} | {} | {diff} | {random} | {} | {} |",
                f(i),
                f(c),
                secs(i),
                secs(c)
            );
        }
    }
    if !b.finetune_runs.is_empty() {
        let _ = writeln!(
            s,
            "\nFine-tuning runs (backbone and head trained together; images/s through the \
             trained part's forward + backward passes):\n"
        );
        let _ = writeln!(
            s,
            "| model | mode | images | px | epochs | trained parameters | images/s fwd+bwd | network s | inputs s | preparing s | epochs s | total s |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &b.finetune_runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.name,
                r.mode,
                r.train_images,
                r.image_size,
                r.epochs,
                r.trained_parameters,
                r.images_per_second,
                r.network_seconds,
                r.input_seconds,
                r.prepare_seconds,
                r.train_seconds,
                r.total_seconds()
            );
        }
        for m in b
            .models
            .iter()
            .filter(|m| m.report.config.finetune.mode.trains_backbone())
        {
            if let Some(a) = &m.report.agreement {
                let _ = writeln!(
                    s,
                    "\n{}: weights vs pixel-area shares on its {} multi-label training canvases: \
                     Spearman {:.3} (uniform {:.3}), top-1 {:.3}.",
                    m.name,
                    a.images,
                    a.raw.learned.spearman,
                    a.raw.uniform.spearman,
                    a.raw.learned.top1
                );
            }
        }
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
    if let Some(m) = b
        .models
        .iter()
        .find(|m| m.report.config.finetune.mode.trains_backbone())
    {
        let c = &m.report.config;
        let _ = writeln!(
            s,
            "Fine-tuned rows: {} epochs (evaluated after the last), backbone learning rate \
             x{} of the head's, BatchNorm frozen (folded), augmentation {}.",
            c.epochs,
            c.finetune.backbone_lr_scale,
            if c.finetune.augment { "on" } else { "off" }
        );
    }
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
