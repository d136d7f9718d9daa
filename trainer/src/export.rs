//! Exporting a trained model to one ONNX file with the model contract in its metadata, and
//! checking the export against the trainer's own forward pass with ONNX Runtime.
//!
//! - default: backbone graph + hash head, `image` (N x 3 x S x S) in, `hash` (N x K tanh
//!   values) out, with the backbone's preprocessing in the contract;
//! - head only: the head alone, `features` (N x D) in, for feature-input models.
//!
//! [`write_onnx`] builds the model and its [`ModelContract`], writes the file, reads it back
//! and checks that the contract parsed from the file is the one written. [`check_onnx`] runs
//! the file in ONNX Runtime on a sample ([`SampleImages`]: images of the model's training data
//! when they are still there, else generated images; random features for a head without its
//! backbone): its codes must equal the trainer's own forward pass (backbone features, then the
//! Rust head) bit for bit, apart from outputs within 1e-4 of 0 whose sign float rounding may
//! flip (counted as borderline bits). For a fine-tuned model the trainer's forward pass is
//! its own trained network (burn) from the image on, so the check also holds the exported
//! backbone to the one that was trained.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use ics_codes::code::pack_signs;
use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::decode::{RgbImage, DEFAULT_MAX_PIXELS};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::backbone::features::{preprocess_batch, read_file, Extractor, ImageSource, Pixels};
use crate::backbone::file::BackboneFile;
use crate::finetune::device::inference_device;
use crate::finetune::network::{tensor, to_vec, NetworkTensors, Start};
use crate::finetune::run::finetuned_weights;
use crate::ics::IcsModel;
use crate::model_file::{FinetunedRecord, ModelFile};
use crate::onnx::{head_layers, head_model, merge_backbone_head, runtime, save_model};

/// Outputs closer to 0 than this may flip sign between ONNX Runtime and the trainer.
pub const BORDERLINE: f32 = 1e-4;

/// How to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// The head alone (feature vectors in) instead of backbone + head (images in).
    pub head_only: bool,
    /// Name of the graph input [`None`: `image`, or `features` when `head_only`].
    pub input_name: Option<String>,
    /// Name of the graph output (N x K tanh values).
    pub output_name: String,
    /// ONNX Runtime intra-op threads of the check (0 = one per core).
    pub ort_threads: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            head_only: false,
            input_name: None,
            output_name: "hash".into(),
            ort_threads: 0,
        }
    }
}

impl ExportOptions {
    /// The graph input's name.
    pub fn input_name(&self) -> String {
        self.input_name
            .clone()
            .unwrap_or_else(|| if self.head_only { "features" } else { "image" }.to_string())
    }
}

/// sha256 of the configuration's JSON (the contract's `config_sha256`).
pub fn config_sha256(model: &IcsModel) -> String {
    let json = serde_json::to_vec(model.config()).expect("configurations serialise");
    ics_codes::code::to_hex(&Sha256::digest(json))
}

/// An ONNX file as written and read back.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    /// The file's bytes, as read back.
    pub bytes: Vec<u8>,
    pub contract: ModelContract,
}

/// What the check found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub samples: usize,
    pub sample_source: String,
    pub codes_equal: usize,
    /// Bits that differ where the trainer's output is within [`BORDERLINE`] of 0.
    pub borderline_bits: usize,
    pub max_abs_diff: f32,
}

/// The contract of `mf` exported with `opts`: the backbone's preprocessing (or the feature
/// dimension when head only), the packed centres, the trainer version, the configuration's
/// hash and the backbone's description (`bb`'s, else the one the model file recorded).
///
/// # Panics
/// Without `bb` unless `opts.head_only` (the caller checks that a backbone is given).
pub fn model_contract(
    mf: &ModelFile,
    bb: Option<&BackboneFile>,
    opts: &ExportOptions,
) -> ModelContract {
    let model = &mf.model;
    let input = if opts.head_only {
        ModelInput::Features {
            dim: model.input_dim(),
        }
    } else {
        ModelInput::Image(bb.expect("checked by the caller").backbone.preprocess)
    };
    ModelContract {
        bits: model.bits(),
        input,
        input_name: opts.input_name(),
        output_name: opts.output_name.clone(),
        centres: model.centres().packed(),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: config_sha256(model),
        backbone: bb
            .map(|b| b.backbone.description.clone())
            .or_else(|| mf.backbone.as_ref().map(|r| r.description.clone())),
    }
}

/// Builds the ONNX model (backbone + head, or the head alone), writes it to `out` and reads
/// the contract back from the file.
///
/// # Panics
/// Without `bb` unless `opts.head_only`.
pub fn write_onnx(
    mf: &ModelFile,
    bb: Option<&BackboneFile>,
    out: &Path,
    opts: &ExportOptions,
) -> Result<Written> {
    let model = &mf.model;
    let layers = head_layers(model.head());
    let contract = model_contract(mf, bb, opts);
    let onnx = if opts.head_only {
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
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    save_model(&onnx, out)?;
    let bytes = std::fs::read(out).with_context(|| format!("reading {}", out.display()))?;
    let (back, _) =
        ModelContract::from_onnx(&bytes).map_err(|e| anyhow::anyhow!("{}: {e}", out.display()))?;
    ensure!(
        back == contract,
        "{}: the contract read back differs from the one written",
        out.display()
    );
    Ok(Written {
        path: out.to_path_buf(),
        bytes,
        contract,
    })
}

/// Runs the written file in ONNX Runtime on `samples` and compares its codes with the
/// trainer's forward pass (see the module docs); an error when a code bit differs away from
/// 0 or an output by 1e-3 or more. Without `bb` (head only), random features in the range of
/// ReLU6 features are fed instead of images. For a fine-tuned model the trainer's forward
/// pass is its own network (burn, the one that was trained) on the preprocessed images, so
/// the check covers the exported backbone too.
pub fn check_onnx(
    mf: &ModelFile,
    bb: Option<&BackboneFile>,
    written: &Written,
    opts: &ExportOptions,
    samples: &SampleImages,
) -> Result<CheckResult> {
    let model = &mf.model;
    // The extension's path: contract and interface checked, outputs checked for shape and NaN.
    let mut session = runtime::encoder_session(&written.bytes, opts.ort_threads)?;
    let n = samples.len();
    let (reference, fed, shape): (Array2<f32>, Vec<f32>, Vec<usize>) = match bb {
        Some(b) => {
            let p = &b.backbone.preprocess;
            let batch = preprocess_batch(samples, 0..n, p, DEFAULT_MAX_PIXELS)?;
            let (d, feats) = match &mf.finetuned {
                Some(f) => trainer_network_features(f, &batch, n)?,
                None => Extractor::new(&b.backbone, opts.ort_threads)?.run(&batch, n)?,
            };
            let feats = Array2::from_shape_vec((n, d), feats)?;
            let u = model.forward(feats.view());
            if opts.head_only {
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
    ensure!(
        shape == session.input_shape(n),
        "the exported model takes {:?}, the check feeds {shape:?}",
        session.input_shape(n)
    );
    ensure!(
        session.bits() == model.bits(),
        "the exported model has {} bits, the trained one {}",
        session.bits(),
        model.bits()
    );
    let out = session
        .run_values(&fed, n, None)
        .map_err(|e| anyhow::anyhow!("the exported model {e}"))?;
    compare(&reference, &out, samples.describe())
}

/// Features of `n` preprocessed images through the fine-tuned network of `f` as the trainer
/// runs it (burn, from the image on).
fn trainer_network_features(
    f: &FinetunedRecord,
    batch: &[f32],
    n: usize,
) -> Result<(usize, Vec<f32>)> {
    let (weights, p) = finetuned_weights(f)?;
    let device = inference_device();
    let net = NetworkTensors::upload_f32(&weights, Start::Image, &device, false);
    let s = p.size as usize;
    let x = tensor::<f32, 4>(batch.to_vec(), [n, 3, s, s], &device);
    let feats: Vec<f32> = to_vec(net.forward(x).into_data());
    Ok((weights.arch.head_channels, feats))
}

/// Compares the trainer's outputs (`reference`, n x K) with ONNX Runtime's (`onnx`, row-major).
pub fn compare(reference: &Array2<f32>, onnx: &[f32], source: String) -> Result<CheckResult> {
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
                if a.abs() < BORDERLINE {
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

/// The sample of the check: image files (the model's training images, when still there), or
/// generated images.
#[derive(Debug, Clone)]
pub enum SampleImages {
    Files(Vec<PathBuf>),
    Generated(Vec<RgbImage>),
}

impl SampleImages {
    /// `n` seeded images of 96-128 x 80-96 px: colour gradients with noise.
    pub fn generated(n: usize) -> SampleImages {
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
        SampleImages::Generated(images)
    }

    /// `16 training images`, `generated images`: what the check reports.
    pub fn describe(&self) -> String {
        match self {
            SampleImages::Files(f) => format!("{} training images", f.len()),
            SampleImages::Generated(_) => "generated images".into(),
        }
    }
}

impl ImageSource for SampleImages {
    fn len(&self) -> usize {
        match self {
            SampleImages::Files(f) => f.len(),
            SampleImages::Generated(g) => g.len(),
        }
    }
    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        match self {
            SampleImages::Files(f) => read_file(&f[i]),
            SampleImages::Generated(g) => Ok(Pixels::Rgb(Cow::Borrowed(&g[i]))),
        }
    }
    fn fingerprint(&self, i: usize, hasher: &mut Sha256) -> Result<()> {
        hasher.update(i.to_le_bytes());
        Ok(())
    }
    fn name(&self, i: usize) -> String {
        match self {
            SampleImages::Files(f) => f[i].display().to_string(),
            SampleImages::Generated(_) => format!("generated image {i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backbone::file::save_backbone_file;
    use crate::backbone::Backbone;
    use crate::ics::synthetic::make;
    use crate::ics::{train_silently, TrainConfig};
    use crate::onnx::toy;
    use ics_encoder::preprocess::{Preprocess, ResizeMode};
    use ndarray::array;

    /// A model taking `d` features, trained for two epochs on synthetic data.
    fn model_file(d: usize) -> ModelFile {
        let data = make(40, d, 3, 2, 0.3, 8);
        let config = TrainConfig {
            bits: 16,
            hidden: vec![8],
            epochs: 2,
            warmup_epochs: 1,
            batch_size: 8,
            ..TrainConfig::default()
        };
        let model = train_silently(data.features.view(), data.labels.view(), &config).unwrap();
        ModelFile {
            model,
            class_names: vec!["a".into(), "b".into(), "c".into()],
            backbone: None,
            data: None,
            finetuned: None,
        }
    }

    /// A backbone file of the toy backbone at 8 x 8: 3 features.
    fn toy_backbone(dir: &Path) -> BackboneFile {
        let p = Preprocess {
            size: 8,
            resize: ResizeMode::Stretch,
            mean: [0.0; 3],
            std: [64.0; 3],
        };
        let bb = Backbone::from_model(toy::toy_backbone(8), "pooled", p, "toy".into()).unwrap();
        let path = dir.join("toy-backbone.onnx");
        save_backbone_file(&bb, &path, 1).unwrap();
        BackboneFile::load(&path).unwrap()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ics-export-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn backbone_and_head_export_matches_the_trainer() {
        let dir = temp_dir("merged");
        let bb = toy_backbone(&dir);
        let mf = model_file(3);
        let opts = ExportOptions {
            ort_threads: 1,
            ..ExportOptions::default()
        };
        let out = dir.join("m.onnx");
        let written = write_onnx(&mf, Some(&bb), &out, &opts).unwrap();
        let c = &written.contract;
        assert_eq!(
            (c.input_name.as_str(), c.output_name.as_str()),
            ("image", "hash")
        );
        assert_eq!(c.input, ModelInput::Image(bb.backbone.preprocess));
        assert_eq!(c.bits, 16);
        assert_eq!(c.centres, mf.model.centres().packed());
        assert_eq!(c.config_sha256, config_sha256(&mf.model));
        assert_eq!(c.backbone.as_deref(), Some("toy"));
        let check = check_onnx(&mf, Some(&bb), &written, &opts, &SampleImages::generated(6));
        let check = check.unwrap();
        assert_eq!((check.samples, check.codes_equal), (6, 6), "{check:?}");
        assert_eq!(check.sample_source, "generated images");
        // A backbone of another width is refused before anything is written.
        let e = write_onnx(&model_file(5), Some(&bb), &dir.join("x.onnx"), &opts).unwrap_err();
        assert!(e.to_string().contains("takes 5 features"), "{e}");
        assert!(!dir.join("x.onnx").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn head_only_export_matches_the_trainer_on_random_features() {
        let dir = temp_dir("head");
        let mf = model_file(6);
        let opts = ExportOptions {
            head_only: true,
            ort_threads: 1,
            ..ExportOptions::default()
        };
        let written = write_onnx(&mf, None, &dir.join("h.onnx"), &opts).unwrap();
        assert_eq!(written.contract.input, ModelInput::Features { dim: 6 });
        assert_eq!(written.contract.input_name, "features");
        let check = check_onnx(&mf, None, &written, &opts, &SampleImages::generated(5));
        let check = check.unwrap();
        assert_eq!((check.samples, check.codes_equal), (5, 5), "{check:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn compare_tolerates_only_borderline_flips() {
        let r = array![[0.5f32, -0.5, 5e-5, -0.2, 0.1, 0.1, 0.1, 0.1]];
        let same = r.clone().into_raw_vec_and_offset().0;
        let ok = compare(&r, &same, "s".into()).unwrap();
        assert_eq!((ok.codes_equal, ok.borderline_bits), (1, 0));
        // The third output is within 1e-4 of 0: its flip is borderline, not a failure.
        let mut near = same.clone();
        near[2] = -5e-5;
        let c = compare(&r, &near, "s".into()).unwrap();
        assert_eq!((c.codes_equal, c.borderline_bits), (0, 1));
        // A flip away from 0 fails, and so does a large difference without a flip.
        let mut hard = same.clone();
        hard[1] = 1e-5;
        let e = compare(&r, &hard, "s".into()).unwrap_err().to_string();
        assert!(e.contains("1 code bits differ"), "{e}");
        let mut far = same;
        far[0] = 0.6;
        assert!(compare(&r, &far, "s".into()).is_err());
    }
}
