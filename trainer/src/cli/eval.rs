//! `ics-train eval`: scores model files on the query and database splits (mAP@R by Hamming
//! ranking, precision within radius 2, PR curve, random-code and optional cosine baselines)
//! and the learned weights against the training split's areas; writes `report.json`,
//! `summary.md` ([`ics_train::workflow::EvalJob`]) and PNG plots ([`super::plots::write_plots`]:
//! `map_vs_bits.png` or, with one code length, `map_by_method.png`; `pr_curves.png`,
//! `weights_vs_area.png`, `dynamics_<model>.png`).

use std::path::PathBuf;

use anyhow::Result;
use ics_train::workflow::EvalJob;

use super::data::{DataArgs, FeatureArgs};
use super::plots;
use super::printer::Printer;
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
    /// R of mAP@R (1000, the usual protocol; 5000 for COCO/NUS-WIDE protocols).
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

pub fn run(args: Args) -> Result<()> {
    if !args.no_plots {
        plots::init_font(args.font.as_deref())?;
    }
    let job = EvalJob {
        models: args.models,
        out: args.out,
        backbone: args.backbone,
        data: args.data.spec(),
        features: args.features.settings(),
        r: args.r,
        cosine: args.cosine,
        codes: args.codes,
    };
    let e = job.run(&mut Printer::default())?;
    if !args.no_plots {
        let s = &e.summary;
        let written = plots::write_plots(
            &job.out,
            &s.models,
            s.cosine_map_at_r,
            e.shares.as_ref(),
            s.r,
        )?;
        for p in written {
            ui::log(format!("plot {}", p.display()));
        }
    }
    ui::log(format!(
        "wrote {} and {}",
        e.report_file.display(),
        e.markdown_file.display()
    ));
    Ok(())
}
