//! `ics-train export`: one ONNX file per model, the model contract in its metadata, checked
//! ([`ics_train::export`]).
//!
//! - default: backbone graph + hash head, `image` (N x 3 x S x S) in, `hash` (N x K tanh
//!   values) out, with the backbone's preprocessing in the contract;
//! - `--head-only`: the head alone, `features` (N x D) in, for feature-input models.
//!
//! After writing, the file is read back, its contract parsed and checked against the graph,
//! and ONNX Runtime runs it on a sample (images of the model's training data when they are
//! still there, else generated images): its codes must equal the trainer's own forward pass
//! (backbone features, then the Rust head) bit for bit, apart from outputs within 1e-4 of 0
//! whose sign float rounding may flip (reported). A fine-tuned model exports the backbone it
//! carries, and the check runs its trained network (burn) as the reference.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Result};
use ics_train::backbone::file::BackboneFile;
use ics_train::data::{DataSpec, SplitName};
use ics_train::export::{check_onnx, write_onnx, CheckResult, ExportOptions, SampleImages};
use ics_train::finetune::model_backbone;
use ics_train::model_file::ModelFile;

use super::ui;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model file from `ics-train train`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// ONNX file to write.
    #[arg(long, short, value_name = "FILE")]
    pub out: PathBuf,
    /// Backbone file to merge [default: the one the model was trained with].
    #[arg(long, value_name = "FILE")]
    pub backbone: Option<PathBuf>,
    /// Export the head alone (feature vectors in) instead of backbone + head (images in).
    #[arg(long)]
    pub head_only: bool,
    /// Sample size of the ONNX Runtime check (0 = no check).
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub check: usize,
    /// Name of the graph input [default: image, or features with --head-only].
    #[arg(long, value_name = "NAME")]
    pub input_name: Option<String>,
    /// Name of the graph output (N x K tanh values).
    #[arg(long, value_name = "NAME", default_value = "hash")]
    pub output_name: String,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub ort_threads: usize,
}

impl Args {
    fn options(&self) -> ExportOptions {
        ExportOptions {
            head_only: self.head_only,
            input_name: self.input_name.clone(),
            output_name: self.output_name.clone(),
            ort_threads: self.ort_threads,
        }
    }
}

pub fn run(args: Args) -> Result<()> {
    let mf = ModelFile::load(&args.model)?;
    if mf.finetuned.is_some() {
        ensure!(
            args.backbone.is_none(),
            "{} carries its fine-tuned backbone; --backbone does not apply",
            args.model.display()
        );
        let bb = model_backbone(&mf, None)?;
        return report(export(&mf, Some(&bb), &args)?);
    }
    let bb_path = match (&args.backbone, &mf.backbone) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(rec)) => Some(rec.path.clone()),
        (None, None) => None,
    };
    let bb = match &bb_path {
        Some(p) => match BackboneFile::load(p) {
            Ok(b) => Some(b),
            Err(e) if args.head_only => {
                ui::log(format!(
                    "backbone not available ({e:#}); checking with random features"
                ));
                None
            }
            Err(e) => return Err(e),
        },
        None if args.head_only => None,
        None => bail!(
            "{} records no backbone: give --backbone FILE, or use --head-only",
            args.model.display()
        ),
    };
    if let (Some(b), Some(rec)) = (&bb, &mf.backbone) {
        ensure!(
            b.backbone.sha256 == rec.sha256,
            "{} was trained on features of backbone {} (sha256 {:.12}...), but {} has sha256 \
             {:.12}...",
            args.model.display(),
            rec.path.display(),
            rec.sha256,
            b.path.display(),
            b.backbone.sha256
        );
    }
    report(export(&mf, bb.as_ref(), &args)?)
}

/// Logs the check's result.
fn report(result: Option<CheckResult>) -> Result<()> {
    match result {
        Some(c) => ui::log(format!(
            "check: {} of {} sample codes ({}) equal between ONNX Runtime and the trainer's \
             forward pass, max |du| {:.2e}{}",
            c.codes_equal,
            c.samples,
            c.sample_source,
            c.max_abs_diff,
            if c.borderline_bits > 0 {
                format!(", {} borderline bits (|u| < 1e-4)", c.borderline_bits)
            } else {
                String::new()
            }
        )),
        None => ui::log("check skipped (--check 0)"),
    }
    Ok(())
}

/// Builds, writes and checks the ONNX file; the check result unless `--check 0`.
pub fn export(
    mf: &ModelFile,
    bb: Option<&BackboneFile>,
    args: &Args,
) -> Result<Option<CheckResult>> {
    let opts = args.options();
    let written = write_onnx(mf, bb, &args.out, &opts)?;
    let contract = &written.contract;
    ui::log(format!(
        "wrote {} ({:.1} MB): {} input \"{}\", output \"{}\" ({} tanh values), contract v{}",
        args.out.display(),
        written.bytes.len() as f64 / 1e6,
        contract.input.kind(),
        contract.input_name,
        contract.output_name,
        contract.bits,
        ics_encoder::contract::CONTRACT_VERSION
    ));
    if args.check == 0 {
        return Ok(None);
    }
    let samples = sample_images(mf, args.check);
    check_onnx(mf, bb, &written, &opts, &samples).map(Some)
}

/// A sample of images: the model's training images if still there, else generated ones.
fn sample_images(mf: &ModelFile, n: usize) -> SampleImages {
    if let Some(data) = &mf.data {
        if let Some(files) = training_files(data, n) {
            return SampleImages::Files(files);
        }
    }
    SampleImages::generated(n)
}

fn training_files(data: &DataSpec, n: usize) -> Option<Vec<PathBuf>> {
    let split = data.load(SplitName::Train).ok()?;
    let paths = split.paths().ok()?;
    let take: Vec<PathBuf> = paths.into_iter().take(n).collect();
    (!take.is_empty() && take.iter().all(|p: &PathBuf| Path::is_file(p))).then_some(take)
}
