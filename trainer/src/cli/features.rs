//! `ics-train features`: backbone features of a dataset's splits, into the feature cache that
//! `train`, `eval` and `bench` read (keyed by the backbone's bytes, its preprocessing and each
//! image's path, size and modification time; a changed image is extracted again).

use std::path::PathBuf;

use anyhow::Result;
use ics_train::backbone::file::BackboneFile;
use ics_train::data::SplitName;
use ics_train::workflow::{features_of, load_split};

use super::data::{DataArgs, FeatureArgs, SplitArg};
use super::printer::Printer;
use super::ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Backbone file (from `ics-train backbone import`).
    #[arg(long, value_name = "FILE")]
    pub backbone: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Splits to extract [default: every split the data has].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub splits: Vec<SplitArg>,
    #[command(flatten)]
    pub features: FeatureArgs,
}

pub fn run(args: Args) -> Result<()> {
    let data = args.data.spec();
    let opts = args.features.settings().options(&data)?;
    let splits: Vec<SplitName> = if args.splits.is_empty() {
        SplitName::ALL
            .into_iter()
            .filter(|&s| data.has(s))
            .collect()
    } else {
        args.splits.iter().map(|&s| s.into()).collect()
    };
    anyhow::ensure!(
        !splits.is_empty(),
        "no split to extract: give --data DIR or --train/--query/--database FILE"
    );
    let mut printer = Printer::default();
    // Data first: a bad list file is reported before the slower backbone load.
    let loaded = splits
        .into_iter()
        .map(|s| load_split(&data, s, &mut printer))
        .collect::<Result<Vec<_>>>()?;
    let bb = BackboneFile::load(&args.backbone)?;
    let (mut images, mut seconds) = (0, 0.0);
    for split in &loaded {
        let ex = features_of(&bb.backbone, split, &opts, &mut printer)?;
        if !ex.from_cache {
            images += ex.features.nrows();
            seconds += ex.preprocess_s + ex.inference_s;
        }
    }
    if images > 0 {
        ui::log(format!(
            "extracted {images} images in {} ({:.2} ms/image) with {}",
            ui::duration(seconds),
            1e3 * seconds / images as f64,
            bb.backbone.description
        ));
    }
    Ok(())
}
