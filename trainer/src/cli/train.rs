//! `ics-train train`: trains a hash head (ICS or CSQ) on cached backbone features of the
//! training split, or with `--finetune top:N|all` the backbone along with it
//! ([`ics_train::workflow::TrainJob`]); logs one line per epoch (mAP@R on query vs database
//! when both splits are given), optionally checkpoints every epoch (`--checkpoint-dir`, `--resume`), and
//! writes the model file (with the fine-tuned backbone, if any) and a JSON report.

use std::path::PathBuf;

use anyhow::Result;
use ics_train::ics::{Checkpointing, FinetuneMode, Method};
use ics_train::workflow::{report_path_for, TrainJob};

use super::config::{parse_finetune, ConfigArgs, MethodArg};
use super::data::{DataArgs, FeatureArgs};
use super::printer::Printer;
use super::ui;

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

pub fn run(args: Args) -> Result<()> {
    let mut config = args
        .config
        .build(args.bits, args.method.map(Method::from), args.finetune)?;
    let checkpointing = args.checkpoints.checkpointing()?;
    if let (Some(c), None) = (&checkpointing, args.config.warmup_epochs) {
        // Resuming without --warmup-epochs: the warm-up a clamped short run continues with.
        if let Some(line) = c.resume_warmup(&mut config)? {
            ui::log(line);
        }
    }
    let job = TrainJob {
        backbone: args.backbone.clone(),
        data: args.data.spec(),
        features: args.features.settings(),
        config,
        checkpointing,
        r: args.r,
        evaluate: !args.no_eval,
        out: args.out.clone(),
        report: args
            .report
            .clone()
            .unwrap_or_else(|| report_path_for(&args.out)),
    };
    let report = job.run(&mut Printer::default())?;
    if let Some(r) = &report.retrieval {
        ui::log(format!(
            "mAP@{} {:.4} (random codes {:.4}), precision within Hamming radius 2 {:.4} ({})",
            r.r,
            r.map_at_r,
            r.random_codes_map_at_r,
            r.precision_within_radius2,
            super::printer::RADIUS2
        ));
    }
    if let Some(a) = &report.agreement {
        ui::log(a.summary());
    }
    ui::log(format!(
        "wrote model {} and report {}",
        job.out.display(),
        job.report.display()
    ));
    Ok(())
}
