//! `ics-train train`: trains a hash head (ICS or CSQ) on cached backbone features of the
//! training split, or with `--finetune top:N|all` the backbone along with it
//! ([`ics_train::finetune`]); logs one line per epoch (mAP@R on query vs database when both
//! splits are given), optionally checkpoints every epoch (`--checkpoint-dir`, `--resume`), and
//! writes the model file (with the fine-tuned backbone, if any) and a JSON report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::ValueEnum;
use ics_train::backbone::file::BackboneFile;
use ics_train::eval::{EvalSet, TrainReport};
use ics_train::finetune::{train_finetuned, FinetuneInputs, FinetuneOutcome};
use ics_train::ics::train::validate_data;
use ics_train::ics::{
    self, CentreMethod, Checkpointing, EpochEval, EpochLog, FinetuneMode, FrozenFeatures, IcsModel,
    Method, TrainConfig, WeightUpdate,
};
use ics_train::model_file::{BackboneRecord, ModelFile};
use ndarray::ArrayView2;

use super::data::{split_features, DataArgs, FeatureArgs, SplitName};
use super::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Instance-weighted central similarity (learned per-image weights over the labels).
    Ics,
    /// Central Similarity Quantization: the equal-weight, sign-binarised centroid baseline.
    Csq,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CentresArg {
    /// Balanced random centres (K/2 bits set) with a checked minimum distance.
    BalancedRandom,
    /// Sylvester Hadamard rows (power-of-two bits; wastes bits when classes <= bits/2).
    Hadamard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightUpdateArg {
    /// --n-pgd projected-gradient steps of size --eta per mini-batch (the published method).
    Pgd,
    /// The exact per-image optimum, softmax(-loss / lambda_r), in one step.
    ClosedForm,
}

/// Training parameters; each flag overrides --config, which overrides the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Training configuration JSON (fields of TrainConfig; unknown keys are an error).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Hidden layer widths, comma-separated, or "none" for one linear layer [default: 1024].
    #[arg(long, value_name = "W,W|none")]
    pub hidden: Option<String>,
    /// Dropout after each hidden ReLU [default: 0].
    #[arg(long, value_name = "P")]
    pub dropout: Option<f64>,
    /// Epochs [default: 30].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Mini-batch size [default: 64].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 1e-3].
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Learning-rate factor every --lr-step-epochs [default: 0.7].
    #[arg(long, value_name = "F")]
    pub lr_decay: Option<f64>,
    /// Epochs between learning-rate decays [default: 10].
    #[arg(long, value_name = "N")]
    pub lr_step_epochs: Option<usize>,
    /// L2 penalty on weight matrices [default: 0].
    #[arg(long, value_name = "W")]
    pub weight_decay: Option<f64>,
    /// Entropy weight of the per-image weights (ICS; losses are means over bits) [default: 0.5].
    #[arg(long, value_name = "L")]
    pub lambda_r: Option<f64>,
    /// Quantisation weight on mean (|u|-1)^2 [default: 0.05].
    #[arg(long, value_name = "L")]
    pub lambda_q: Option<f64>,
    /// PGD step size on the weights [default: 0.1].
    #[arg(long, value_name = "ETA")]
    pub eta: Option<f64>,
    /// PGD steps per mini-batch [default: 1].
    #[arg(long, value_name = "N")]
    pub n_pgd: Option<usize>,
    /// How the per-image weights are updated [default: pgd].
    #[arg(long, value_enum)]
    pub weight_update: Option<WeightUpdateArg>,
    /// Epochs with uniform weights before they are learned (ICS) [default: 2].
    #[arg(long, value_name = "N")]
    pub warmup_epochs: Option<usize>,
    /// Hash centre construction [default: balanced-random].
    #[arg(long, value_enum)]
    pub centres: Option<CentresArg>,
    /// Minimum pairwise Hamming distance of balanced random centres [default: bits/4].
    #[arg(long, value_name = "D")]
    pub centre_min_distance: Option<usize>,
    /// Seed of every random choice [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate mAP@R every N epochs (and after the last) [default: 5].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Fine-tuning: the backbone's learning rate as a multiple of --lr [default: 0.2; CSQ's
    /// 0.05 suits its 90 epochs, 0.2 measured better for short CPU runs].
    #[arg(long, value_name = "F")]
    pub backbone_lr_scale: Option<f64>,
    /// Fine-tuning: augment training images (random crop by up to 1/8 of the side, edges
    /// replicated, and horizontal flip), drawn per image and epoch.
    #[arg(long)]
    pub augment: bool,
}

/// Parses `--hidden`: `1024`, `2048,2048`, `none` (or empty).
pub fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .with_context(|| format!("--hidden: {w:?} is not a layer width"))
        })
        .collect()
}

impl ConfigArgs {
    /// The configuration: defaults, then --config, then the flags, then `bits`, `method` and
    /// the fine-tuning mode when given; validated.
    pub fn build(
        &self,
        bits: Option<usize>,
        method: Option<Method>,
        finetune: Option<FinetuneMode>,
    ) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read configuration {}", p.display()))?;
                serde_json::from_str::<TrainConfig>(&text)
                    .with_context(|| format!("configuration {}", p.display()))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { c.$f = v; } )*};
        }
        set!(
            dropout,
            epochs,
            batch_size,
            lr,
            lr_decay,
            lr_step_epochs,
            weight_decay,
            lambda_r,
            lambda_q,
            eta,
            n_pgd,
            warmup_epochs,
            seed,
            eval_every
        );
        if let Some(b) = bits {
            c.bits = b;
        }
        if let Some(m) = method {
            c.method = m;
        }
        if let Some(h) = &self.hidden {
            c.hidden = parse_hidden(h)?;
        }
        if let Some(w) = self.weight_update {
            c.weight_update = match w {
                WeightUpdateArg::Pgd => WeightUpdate::Pgd,
                WeightUpdateArg::ClosedForm => WeightUpdate::ClosedForm,
            };
        }
        if let Some(ct) = self.centres {
            c.centres = match ct {
                CentresArg::BalancedRandom => CentreMethod::BalancedRandom,
                CentresArg::Hadamard => CentreMethod::Hadamard,
            };
        }
        if self.warmup_epochs.is_none() && c.warmup_epochs >= c.epochs {
            // A short run (--epochs 2) with the default warm-up: keep at least one epoch of
            // weight learning rather than refusing.
            c.warmup_epochs = c.epochs.saturating_sub(1);
        }
        if self.centre_min_distance.is_some() {
            c.centre_min_distance = self.centre_min_distance;
        }
        if let Some(m) = finetune {
            c.finetune.mode = m;
        }
        if let Some(f) = self.backbone_lr_scale {
            c.finetune.backbone_lr_scale = f;
        }
        if self.augment {
            c.finetune.augment = true;
        }
        c.validate().context("training configuration")?;
        Ok(c)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backbone file (from `ics-train backbone import`).
    #[arg(long, value_name = "FILE")]
    pub backbone: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub features: FeatureArgs,
    /// Objective [default: ics].
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// Code length K: a multiple of 8 [default: 64].
    #[arg(long, value_name = "K")]
    pub bits: Option<usize>,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Model file to write (read by `eval` and `export`).
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// JSON report to write [default: the model file with extension .report.json].
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// R of mAP@R for the evaluation during training.
    #[arg(long, value_name = "R", default_value_t = 1000)]
    pub r: usize,
    /// No evaluation during training, even with query and database splits.
    #[arg(long)]
    pub no_eval: bool,
    /// Which backbone layers train with the head: none (the head learns on frozen features,
    /// computed once), top:N (the last N of EfficientNet-Lite0's 7 MBConv stages and its
    /// head convolution; the activations below are computed once and cached), or all
    /// [default: none]. Fine-tuning needs an EfficientNet-Lite0 backbone file.
    #[arg(long, value_name = "none|top:N|all", value_parser = parse_finetune)]
    pub finetune: Option<FinetuneMode>,
    #[command(flatten)]
    pub checkpoints: CheckpointArgs,
}

/// Checkpoints of a training run.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CheckpointArgs {
    /// Write the training state to DIR/checkpoint.icsc after every --checkpoint-every epochs
    /// (and after the last), so that --resume can continue an interrupted run.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<PathBuf>,
    /// Epochs between checkpoints.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        requires = "checkpoint_dir"
    )]
    pub checkpoint_every: usize,
    /// Continue from the checkpoint in --checkpoint-dir; the result equals an unbroken run's.
    #[arg(long, requires = "checkpoint_dir")]
    pub resume: bool,
}

impl CheckpointArgs {
    /// The loop's checkpointing, if asked for.
    pub fn checkpointing(&self) -> Result<Option<Checkpointing>> {
        let Some(dir) = &self.checkpoint_dir else {
            return Ok(None);
        };
        anyhow::ensure!(
            self.checkpoint_every >= 1,
            "--checkpoint-every 0: must be >= 1"
        );
        Ok(Some(Checkpointing {
            dir: dir.clone(),
            every: self.checkpoint_every,
            resume: self.resume,
        }))
    }
}

/// `--finetune`: `none`, `top:N` or `all`.
pub fn parse_finetune(s: &str) -> Result<FinetuneMode> {
    s.parse()
}

/// `epoch  3/30 lr 1.0e-3 loss 0.41234 (centre 0.38120, quant 0.20110, weight entropy 0.512,
/// weights learned) mAP@1000 0.7123 1.42 s`; CSQ lines have no weight terms.
pub fn epoch_line(tag: &str, l: &EpochLog, config: &TrainConfig, r: usize) -> String {
    let epochs = config.epochs;
    let width = epochs.to_string().len();
    let map = l
        .map
        .map(|m| format!(" mAP@{r} {m:.4}"))
        .unwrap_or_default();
    let weights = match (config.method, l.weights_updated) {
        (Method::Csq, _) => String::new(),
        (Method::Ics, true) => format!(", weight entropy {:.3}, weights learned", l.weight_entropy),
        (Method::Ics, false) => format!(", weight entropy {:.3}, warm-up", l.weight_entropy),
    };
    format!(
        "{tag}epoch {:>width$}/{epochs} lr {:.1e} loss {:.5} (centre {:.5}, quant {:.5}{weights}){map} \
         {:.2} s",
        l.epoch, l.lr, l.loss, l.centre, l.quantization, l.seconds
    )
}

/// Trains with a progress bar over epochs and one log line per epoch.
pub fn train_logged(
    tag: &str,
    features: ArrayView2<f32>,
    labels: ArrayView2<u8>,
    config: &TrainConfig,
    eval: Option<&EvalSet>,
    checkpointing: Option<&Checkpointing>,
) -> Result<IcsModel> {
    let r = eval.map_or(0, |e| e.r);
    let bar = ui::bar(config.epochs as u64, &format!("{tag}train"), "epochs");
    let eval = eval.map(|e| e as &dyn EpochEval);
    config.validate()?;
    validate_data(features, labels)?;
    let mut source = FrozenFeatures::new(features);
    let model = ics::train_source(&mut source, labels, config, eval, checkpointing, |l| {
        ui::log_with(&bar, epoch_line(tag, l, config, r));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let model = model?;
    let total: f64 = model.history().iter().map(|e| e.seconds).sum();
    ui::log(format!(
        "{tag}trained {:?} {} bits, head {:?} ({} parameters), {} epochs on {} images in {}",
        config.method,
        config.bits,
        config.hidden,
        model.head().parameter_count(),
        config.epochs,
        features.nrows(),
        ui::duration(total)
    ));
    Ok(model)
}

/// Fine-tunes with a progress bar over epochs and one log line per epoch, then one line
/// with the trained part's speed.
pub fn train_finetuned_logged(
    tag: &str,
    inputs: &FinetuneInputs,
    config: &TrainConfig,
    checkpointing: Option<&Checkpointing>,
) -> Result<FinetuneOutcome> {
    let r = inputs.eval.map_or(0, |_| inputs.r);
    ui::log(format!(
        "{tag}fine-tuning {} ({}), backbone lr x{}{}",
        config.finetune.mode,
        ics_train::finetune::device::describe(),
        config.finetune.backbone_lr_scale,
        if config.finetune.augment {
            ", augmented"
        } else {
            ""
        }
    ));
    let bar = ui::bar(config.epochs as u64, &format!("{tag}fine-tune"), "epochs");
    let out = train_finetuned(inputs, config, checkpointing, |l| {
        ui::log_with(&bar, epoch_line(tag, l, config, r));
        bar.inc(1);
    });
    bar.finish_and_clear();
    let out = out?;
    let total: f64 = out.model.history().iter().map(|e| e.seconds).sum();
    ui::log(format!(
        "{tag}trained {:?} {} bits, head {:?}, backbone {} ({} parameters trained), {} epochs on \
         {} images in {} (+{} preparing); forward + backward {:.1} images/s",
        config.method,
        config.bits,
        config.hidden,
        config.finetune.mode,
        out.trained_parameters,
        config.epochs,
        inputs.train.len(),
        ui::duration(total),
        ui::duration(out.prepare_seconds),
        out.images_per_second()
    ));
    Ok(out)
}

pub fn run(args: Args) -> Result<()> {
    let method = args.method.map(|m| match m {
        MethodArg::Ics => Method::Ics,
        MethodArg::Csq => Method::Csq,
    });
    let config = args.config.build(args.bits, method, args.finetune)?;
    let checkpointing = args.checkpoints.checkpointing()?;
    if config.finetune.mode.trains_backbone() {
        return run_finetune(&args, &config, checkpointing.as_ref());
    }
    // Data first: a bad list file is reported before the slower backbone load.
    let train = args.data.load(SplitName::Train)?;
    let bb = BackboneFile::load(&args.backbone)?;
    let opts = args.features.options(&args.data)?;
    let train_f = split_features(&bb.backbone, &train, &opts)?;
    let eval_splits =
        if !args.no_eval && args.data.has(SplitName::Query) && args.data.has(SplitName::Database) {
            let q = args.data.load(SplitName::Query)?;
            let db = args.data.load(SplitName::Database)?;
            anyhow::ensure!(
                q.dataset.num_classes() == train.dataset.num_classes()
                    && db.dataset.num_classes() == train.dataset.num_classes(),
                "class counts differ: train {}, query {}, database {}",
                train.dataset.num_classes(),
                q.dataset.num_classes(),
                db.dataset.num_classes()
            );
            let qf = split_features(&bb.backbone, &q, &opts)?;
            let dbf = split_features(&bb.backbone, &db, &opts)?;
            Some((q, qf, db, dbf))
        } else {
            None
        };
    let eval = match &eval_splits {
        Some((q, qf, db, dbf)) => Some(EvalSet::new(
            qf.features.view(),
            q.dataset.labels().view(),
            dbf.features.view(),
            db.dataset.labels().view(),
            args.r,
        )?),
        None => None,
    };
    let model = train_logged(
        "",
        train_f.features.view(),
        train.dataset.labels().view(),
        &config,
        eval.as_ref(),
        checkpointing.as_ref(),
    )?;

    let file = ModelFile {
        model,
        class_names: train.dataset.class_names().to_vec(),
        backbone: Some(BackboneRecord {
            path: std::fs::canonicalize(&args.backbone)?,
            sha256: bb.backbone.sha256.clone(),
            description: bb.backbone.description.clone(),
            feature_dim: bb.feature_dim,
        }),
        data: Some(args.data.record()?),
        finetuned: None,
    };
    file.save(&args.out)?;
    write_report(&args, &file, eval.as_ref(), &train)
}

/// `train --finetune top:N|all`: the backbone trains with the head.
fn run_finetune(
    args: &Args,
    config: &TrainConfig,
    checkpointing: Option<&Checkpointing>,
) -> Result<()> {
    let train = args.data.load(SplitName::Train)?;
    let bb = BackboneFile::load(&args.backbone)?;
    let opts = args.features.options(&args.data)?;
    let eval_splits =
        if !args.no_eval && args.data.has(SplitName::Query) && args.data.has(SplitName::Database) {
            let q = args.data.load(SplitName::Query)?;
            let db = args.data.load(SplitName::Database)?;
            anyhow::ensure!(
                q.dataset.num_classes() == train.dataset.num_classes()
                    && db.dataset.num_classes() == train.dataset.num_classes(),
                "class counts differ: train {}, query {}, database {}",
                train.dataset.num_classes(),
                q.dataset.num_classes(),
                db.dataset.num_classes()
            );
            Some((q, db))
        } else {
            None
        };
    let inputs = FinetuneInputs {
        backbone: &bb.backbone,
        train: &train.dataset,
        eval: eval_splits
            .as_ref()
            .map(|(q, db)| (&q.dataset, &db.dataset)),
        r: args.r,
        features: opts,
    };
    let out = train_finetuned_logged("", &inputs, config, checkpointing)?;
    let file = ModelFile {
        finetuned: Some(out.record(&config.finetune.mode.to_string())?),
        model: out.model,
        class_names: train.dataset.class_names().to_vec(),
        backbone: Some(BackboneRecord {
            path: std::fs::canonicalize(&args.backbone)?,
            sha256: bb.backbone.sha256.clone(),
            description: bb.backbone.description.clone(),
            feature_dim: bb.feature_dim,
        }),
        data: Some(args.data.record()?),
    };
    file.save(&args.out)?;
    let eval = match (&eval_splits, &out.eval_features) {
        (Some((q, db)), Some((qf, dbf))) => Some(EvalSet::new(
            qf.view(),
            q.dataset.labels().view(),
            dbf.view(),
            db.dataset.labels().view(),
            args.r,
        )?),
        _ => None,
    };
    write_report(args, &file, eval.as_ref(), &train)
}

/// The JSON report of a trained model file and its log lines.
fn write_report(
    args: &Args,
    file: &ModelFile,
    eval: Option<&EvalSet>,
    train: &super::data::LoadedSplit,
) -> Result<()> {
    let mut report = TrainReport::new(&file.model);
    if let Some(e) = eval {
        report = report.with_retrieval(&file.model, e, false);
    }
    if let Some(areas) = train.dataset.areas() {
        report = report.with_agreement(&file.model, areas.pixel.view())?;
    }
    let report_path = args
        .report
        .clone()
        .unwrap_or_else(|| report_path_for(&args.out));
    std::fs::write(&report_path, report.to_json() + "\n")
        .with_context(|| format!("cannot write {}", report_path.display()))?;
    if let Some(r) = &report.retrieval {
        ui::log(format!(
            "mAP@{} {:.4} (random codes {:.4}), precision within radius 2 {:.4}",
            r.r, r.map_at_r, r.random_codes_map_at_r, r.precision_within_radius2
        ));
    }
    if let Some(a) = &report.agreement {
        ui::log(agreement_line(a));
    }
    ui::log(format!(
        "wrote model {} and report {}",
        args.out.display(),
        report_path.display()
    ));
    Ok(())
}

/// `x/model.icsm` -> `x/model.report.json`.
pub fn report_path_for(model: &Path) -> PathBuf {
    model.with_extension("report.json")
}

/// One line of weight-vs-area agreement.
pub fn agreement_line(a: &ics_train::eval::AgreementReport) -> String {
    format!(
        "weights vs area shares on {} multi-label images: Spearman {:.3} (uniform {:.3}), \
         top-1 {:.3} (uniform {:.3}), KL {:.4} (uniform {:.4}); class-normalised Spearman {:.3}",
        a.images,
        a.raw.learned.spearman,
        a.raw.uniform.spearman,
        a.raw.learned.top1,
        a.raw.uniform.top1,
        a.raw.learned.kl,
        a.raw.uniform.kl,
        a.class_normalised.learned.spearman
    )
}
