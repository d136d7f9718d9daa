//! `ics-train export`: one ONNX file per model, the model contract in its metadata, checked.
//!
//! - default: backbone graph + hash head, `image` (N x 3 x S x S) in, `hash` (N x K tanh
//!   values) out, with the backbone's preprocessing in the contract;
//! - `--head-only`: the head alone, `features` (N x D) in, for feature-input models.
//!
//! After writing, the file is read back, its contract parsed and checked against the graph,
//! and ONNX Runtime runs it on a sample (images of the model's training data when they are
//! still there, else generated images): its codes must equal the trainer's own forward pass
//! (backbone features, then the Rust head) bit for bit, apart from outputs within 1e-4 of 0
//! whose sign float rounding may flip (reported).

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use ics_core::code::pack_signs;
use ics_core::contract::{ModelContract, ModelInput};
use ics_core::preprocess::{RgbImage, DEFAULT_MAX_PIXELS};
use ics_train::backbone::features::{preprocess_batch, Extractor};
use ics_train::backbone::file::BackboneFile;
use ics_train::backbone::{ImageSource, Pixels};
use ics_train::ics::IcsModel;
use ics_train::model_file::ModelFile;
use ics_train::onnx::{head_layers, head_model, merge_backbone_head, runtime, save_model};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use super::data::{DataArgs, SplitName};
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

/// sha256 of the configuration's JSON (the contract's `config_sha256`).
pub fn config_sha256(model: &IcsModel) -> String {
    let json = serde_json::to_vec(model.config()).expect("configurations serialise");
    ics_core::code::to_hex(&Sha256::digest(json))
}

/// What the check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub samples: usize,
    pub sample_source: String,
    pub codes_equal: usize,
    /// Bits that differ where the trainer's output is within 1e-4 of 0.
    pub borderline_bits: usize,
    pub max_abs_diff: f32,
}

pub fn run(args: Args) -> Result<()> {
    let mf = ModelFile::load(&args.model)?;
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
    let result = export(&mf, bb.as_ref(), &args)?;
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
    let model = &mf.model;
    let layers = head_layers(model.head());
    let input_name = args
        .input_name
        .clone()
        .unwrap_or_else(|| if args.head_only { "features" } else { "image" }.to_string());
    let description = bb
        .map(|b| b.backbone.description.clone())
        .or_else(|| mf.backbone.as_ref().map(|r| r.description.clone()));
    let input = if args.head_only {
        ModelInput::Features {
            dim: model.input_dim(),
        }
    } else {
        ModelInput::Image(bb.expect("checked by the caller").backbone.preprocess)
    };
    let contract = ModelContract {
        bits: model.bits(),
        input,
        input_name: input_name.clone(),
        output_name: args.output_name.clone(),
        centres: model.centres().packed(),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: config_sha256(model),
        backbone: description,
    };
    let onnx = if args.head_only {
        head_model(&layers, &contract)?
    } else {
        let b = bb.expect("checked by the caller");
        ensure!(
            b.feature_dim == model.input_dim(),
            "the model takes {} features, backbone {} gives {}",
            model.input_dim(),
            b.path.display(),
            b.feature_dim
        );
        merge_backbone_head(
            b.backbone.model(),
            &b.backbone.feature_output,
            &layers,
            &contract,
        )?
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    save_model(&onnx, &args.out)?;
    let bytes =
        std::fs::read(&args.out).with_context(|| format!("reading {}", args.out.display()))?;
    let (back, _) = ModelContract::from_onnx(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    ensure!(
        back == contract,
        "{}: the contract read back differs from the one written",
        args.out.display()
    );
    ui::log(format!(
        "wrote {} ({:.1} MB): {} input \"{}\", output \"{}\" ({} tanh values), contract v{}",
        args.out.display(),
        bytes.len() as f64 / 1e6,
        contract.input.kind(),
        contract.input_name,
        contract.output_name,
        contract.bits,
        ics_core::contract::CONTRACT_VERSION
    ));
    if args.check == 0 {
        return Ok(None);
    }
    let mut session = runtime::session(&bytes, args.ort_threads)?;
    let (source, samples) = sample_images(mf, args.check)?;
    let n = samples.len();
    let (reference, fed, shape): (Array2<f32>, Vec<f32>, Vec<usize>) = match bb {
        Some(b) => {
            let p = &b.backbone.preprocess;
            let batch = preprocess_batch(&samples, 0..n, p, DEFAULT_MAX_PIXELS)?;
            let mut ex = Extractor::new(&b.backbone, args.ort_threads)?;
            let (d, feats) = ex.run(&batch, n)?;
            let feats = Array2::from_shape_vec((n, d), feats)?;
            let u = model.forward(feats.view());
            if args.head_only {
                let f = feats
                    .as_standard_layout()
                    .to_owned()
                    .into_raw_vec_and_offset()
                    .0;
                (u, f, vec![n, d])
            } else {
                let s = p.size as usize;
                (u, batch, vec![n, 3, s, s])
            }
        }
        None => {
            // Head alone, no backbone: random features in the range of ReLU6 features.
            let d = model.input_dim();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
            let feats = Array2::from_shape_fn((n, d), |_| rng.gen_range(0.0f32..3.0));
            let u = model.forward(feats.view());
            let f = feats.into_raw_vec_and_offset().0;
            (u, f, vec![n, d])
        }
    };
    let out = runtime::run_f32(
        &mut session,
        &input_name,
        &shape,
        &fed,
        &[&args.output_name],
    )?
    .remove(0);
    ensure!(
        out.shape == vec![n, model.bits()],
        "ONNX Runtime returned shape {:?}, expected [{n}, {}]",
        out.shape,
        model.bits()
    );
    compare(&reference, &out.data, source).map(Some)
}

fn compare(reference: &Array2<f32>, onnx: &[f32], source: String) -> Result<CheckResult> {
    let (n, k) = reference.dim();
    let mut res = CheckResult {
        samples: n,
        sample_source: source,
        codes_equal: 0,
        borderline_bits: 0,
        max_abs_diff: 0.0,
    };
    let mut hard = 0;
    for i in 0..n {
        let r = reference.row(i).to_vec();
        let o = &onnx[i * k..(i + 1) * k];
        if pack_signs(&r) == pack_signs(o) {
            res.codes_equal += 1;
        }
        for (a, b) in r.iter().zip(o) {
            res.max_abs_diff = res.max_abs_diff.max((a - b).abs());
            if (*a >= 0.0) != (*b >= 0.0) {
                if a.abs() < 1e-4 {
                    res.borderline_bits += 1;
                } else {
                    hard += 1;
                }
            }
        }
    }
    ensure!(
        hard == 0 && res.max_abs_diff < 1e-3,
        "export check failed: {hard} code bits differ between ONNX Runtime and the trainer's \
         forward pass on {n} samples ({}), max |du| {:.3e}",
        res.sample_source,
        res.max_abs_diff
    );
    Ok(res)
}

/// A sample of images: the model's training images if still there, else generated ones.
enum Samples {
    Files(Vec<PathBuf>),
    Generated(Vec<RgbImage>),
}

impl ImageSource for Samples {
    fn len(&self) -> usize {
        match self {
            Samples::Files(f) => f.len(),
            Samples::Generated(g) => g.len(),
        }
    }
    fn load(&self, i: usize) -> Result<Pixels> {
        match self {
            Samples::Files(f) => Ok(Pixels::Encoded(
                std::fs::read(&f[i]).with_context(|| format!("reading {}", f[i].display()))?,
            )),
            Samples::Generated(g) => Ok(Pixels::Rgb(g[i].clone())),
        }
    }
    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        hasher.update(i.to_le_bytes());
        Ok(())
    }
    fn name(&self, i: usize) -> String {
        match self {
            Samples::Files(f) => f[i].display().to_string(),
            Samples::Generated(_) => format!("generated image {i}"),
        }
    }
}

fn sample_images(mf: &ModelFile, n: usize) -> Result<(String, Samples)> {
    if let Some(data) = &mf.data {
        if let Some(files) = training_files(&DataArgs::from(data), n) {
            return Ok((
                format!("{} training images", files.len()),
                Samples::Files(files),
            ));
        }
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let images = (0..n)
        .map(|i| {
            let (w, h) = (96 + 8 * (i as u32 % 5), 80 + 8 * (i as u32 % 3));
            let data = (0..w * h)
                .flat_map(|p| {
                    let (x, y) = (p % w, p / w);
                    let base = ((x * 255 / w) as u8, (y * 255 / h) as u8);
                    let noise: u8 = rng.gen_range(0..64);
                    [base.0.wrapping_add(noise), base.1, noise.wrapping_mul(3)]
                })
                .collect();
            RgbImage {
                width: w,
                height: h,
                data,
            }
        })
        .collect();
    Ok(("generated images".into(), Samples::Generated(images)))
}

fn training_files(data: &DataArgs, n: usize) -> Option<Vec<PathBuf>> {
    let split = data.load(SplitName::Train).ok()?;
    let paths = split.paths().ok()?;
    let take: Vec<PathBuf> = paths.into_iter().take(n).collect();
    (!take.is_empty() && take.iter().all(|p: &PathBuf| Path::is_file(p))).then_some(take)
}
