//! `ics-train bench`: the quality and speed benchmark, end to end. The flags become a
//! [`BenchPlan`]; [`ics_train::benchmark::run`] composes (or reuses, from the work folder) the
//! benchmark and the area benchmark, extracts Lite0 features, measures the cosine baseline,
//! trains ICS and CSQ at each code length for each `--finetune` mode, and compares the learned
//! weights with the true area shares; this command prints what happens, writes `bench.json`
//! and `bench.md` (also printed), draws the PNG plots; the model files go to `OUT/models`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::ValueEnum;
use ics_train::benchmark::{self, write_report, BenchEvent, BenchObserver, BenchPlan, BenchSize};
use ics_train::eval::size_ratio::DIFFERENT_SIZES;
use ics_train::ics::{FinetuneMode, Method, TrainConfig};

use super::backbone::default_pth;
use super::compose::SourceArgs;
use super::config::{parse_finetune, ConfigArgs, MethodArg};
use super::plots;
use super::printer::Printer;
use super::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// The benchmark size, 10,000 / 2,000 / 20,000 canvases (about 15-20 minutes cold on 2
    /// cores, most of it feature extraction; minutes with a warm work folder).
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
    /// Also train OrthoHash (its multi-label loss on the same centres) at every length.
    #[arg(long)]
    pub orthohash: bool,
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
    /// The plan the flags describe; the code lengths and modes are checked before the
    /// training configuration.
    fn plan(&self) -> Result<BenchPlan> {
        let size = if self.small {
            BenchSize::Small
        } else {
            match self.size {
                Size::Full => BenchSize::Full,
                Size::Small => BenchSize::Small,
            }
        };
        let mut plan = BenchPlan {
            size,
            out: self.out.clone(),
            work: self.work.clone().unwrap_or_else(|| size.default_work()),
            bits: self.bits.clone(),
            r: self.r,
            area_train: self.area_train,
            data_seed: self.data_seed,
            methods: [
                Some(Method::Ics),
                (!self.no_csq).then_some(Method::Csq),
                self.orthohash.then_some(Method::Orthohash),
            ]
            .into_iter()
            .flatten()
            .collect(),
            finetune: self.finetune.clone(),
            finetune_epochs: self.finetune_epochs,
            finetune_bits: self.finetune_bits.clone(),
            finetune_methods: self.finetune_methods.iter().map(|&m| m.into()).collect(),
            checkpoint_dir: self.checkpoint_dir.clone(),
            resume: self.resume,
            area: !self.no_area,
            base: TrainConfig::default(),
            pth: self.pth.clone(),
            sources: self.sources.paths(),
            batch: self.batch,
            ort_threads: self.ort_threads,
            speed_sample: self.speed_sample,
            progress: !ui::quiet(),
        };
        plan.check()?;
        let c = &self.config;
        let from_file = c.config.is_some();
        plan.base = size.config(
            c.build(None, None, None)?,
            from_file || c.hidden.is_some(),
            from_file || c.epochs.is_some(),
        )?;
        Ok(plan)
    }
}

pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    plots::init_font(args.font.as_deref())?;
    let plan = args.plan()?;
    let run = benchmark::run(&plan, &mut Printer::default())?;
    let report = &run.report;
    let written = write_report(report, &plan.out)?;
    let plots = plots::write_plots(
        &plan.out,
        &report.models,
        Some(report.cosine_map_at_r),
        run.shares.as_ref(),
        plan.r,
    )?;
    println!("{}", written.markdown);
    for p in plots {
        ui::log(format!("plot {}", p.display()));
    }
    ui::log(format!(
        "wrote {} and {} in {}",
        written.json.display(),
        written.markdown_file.display(),
        ui::duration(started.elapsed().as_secs_f64())
    ));
    Ok(())
}

impl BenchObserver for Printer {
    fn bench(&mut self, event: BenchEvent<'_>) {
        match event {
            BenchEvent::Start { size, work, out } => self.line(format!(
                "bench ({size:?}): work folder {}, output {}",
                work.display(),
                out.display()
            )),
            BenchEvent::ReusingComposed { dir } => self.line(format!(
                "reusing the composed benchmark in {}",
                dir.display()
            )),
            BenchEvent::BackboneImported { description, path } => {
                self.line(format!("imported {description} to {}", path.display()))
            }
            BenchEvent::FeatureSpeed { speed, canvas } => self.line(format!(
                "feature speed: {:.2} ms/image on {} fresh {canvas} px images (preprocessing \
                 {:.2}, inference {:.2}; batch {}, ONNX Runtime threads {})",
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
            )),
            BenchEvent::Cosine {
                feature_dim,
                r,
                map,
                seconds,
            } => self.line(format!(
                "cosine ranking of the raw {feature_dim}-d features: mAP@{r} {map:.4} ({})",
                ui::duration(seconds)
            )),
            BenchEvent::Area(result) => {
                self.line(format!("[area] pixel areas: {}", result.pixel.summary()));
                self.line(format!("[area] box areas: {}", result.boxed.summary()));
                let d = &result.different_sizes;
                self.line(format!(
                    "[area] on the {} canvases whose instance areas differ >= \
                     {DIFFERENT_SIZES}x: Spearman {:.3} (uniform 0)",
                    d.images, d.spearman
                ));
            }
        }
    }
}
