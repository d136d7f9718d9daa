//! `ics-train encode`: hash codes with an exported ONNX model, the way the extension computes
//! them: the contract from the model's metadata, images decoded and preprocessed by
//! `ics_encoder::preprocess` (the extension's own code), ONNX Runtime, `pack_signs`, hex.
//!
//! Output (stdout or --out): one line per input, `input TAB hex` (tsv), or a JSON array of
//! `{"input": ..., "code": ...}` (json). Feature-input models read `--features FILE`: one
//! vector a line, numbers separated by spaces, tabs or commas.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, ensure, Context, Result};
use clap::ValueEnum;
use ics_codes::code::to_hex;
use ics_encoder::batch::{self, BatchOptions};
use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::decode::DEFAULT_MAX_PIXELS;
use ics_encoder::EncoderError;
use ics_train::onnx::runtime;

use super::ui;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `input TAB hex`, one a line.
    Tsv,
    /// A JSON array of {"input", "code"} objects.
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Exported ONNX model (from `ics-train export`).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Image files (JPEG, PNG, WebP, BMP, GIF).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
    /// A file listing images, one a line (the first whitespace-separated field, so HashNet
    /// list files work as they are); relative paths are taken from --root.
    #[arg(long, value_name = "FILE")]
    pub list: Option<PathBuf>,
    /// Folder that --list's relative paths are relative to [default: the list file's folder].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Feature vectors to encode with a feature-input model (one vector a line).
    #[arg(long, value_name = "FILE")]
    pub features: Option<PathBuf>,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Tsv)]
    pub format: Format,
    /// Print absolute image paths (default: as given).
    #[arg(long)]
    pub absolute: bool,
    /// Images per ONNX Runtime call.
    #[arg(long, value_name = "N", default_value_t = 32)]
    pub batch: usize,
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub ort_threads: usize,
}

/// The folder relative image paths of a list file are taken from: `root` when given, else the
/// list file's own folder (as the trainer's list-file reader does).
pub(crate) fn list_root(list: &Path, root: Option<&Path>) -> PathBuf {
    root.map(Path::to_path_buf)
        .or_else(|| list.parent().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// Reads a list of image paths; errors name the file and line.
fn read_image_list(list: &Path, root: Option<&Path>) -> Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read image list {}", list.display()))?;
    let root = list_root(list, root);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(first) = line.split_whitespace().next() else {
            continue;
        };
        let p = root.join(first);
        ensure!(
            p.is_file(),
            "{}:{}: image {} does not exist",
            list.display(),
            i + 1,
            p.display()
        );
        out.push(p);
    }
    Ok(out)
}

/// Reads feature vectors of `dim` values; errors name the file and line.
fn read_feature_rows(path: &Path, dim: usize) -> Result<(Vec<String>, Vec<f32>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read features {}", path.display()))?;
    let (mut names, mut values) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate() {
        let toks: Vec<&str> = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .collect();
        if toks.is_empty() {
            continue;
        }
        ensure!(
            toks.len() == dim,
            "{}:{}: {} values, the model takes {dim}",
            path.display(),
            i + 1,
            toks.len()
        );
        for t in toks {
            let v: f32 = t
                .parse()
                .ok()
                .filter(|v: &f32| v.is_finite())
                .with_context(|| {
                    format!("{}:{}: {t:?} is not a finite number", path.display(), i + 1)
                })?;
            values.push(v);
        }
        names.push(format!("{}:{}", path.display(), i + 1));
    }
    Ok((names, values))
}

/// Codes of images with an exported image model, in input order: the encoder's batch path,
/// the same as `ics_encode_batch` in the database (decoding, preprocessing, run, output
/// checks, packing), `batch` images per run, the files read a batch at a time.
pub fn encode_images(
    model_bytes: &[u8],
    contract: &ModelContract,
    images: &[PathBuf],
    batch: usize,
    threads: usize,
) -> Result<Vec<Vec<u8>>> {
    ensure!(
        matches!(contract.input, ModelInput::Image(_)),
        "the model takes feature vectors, not images: use --features FILE"
    );
    ensure!(batch >= 1, "--batch must be at least 1");
    let mut session = runtime::encoder_session(model_bytes, threads)?;
    let opts = BatchOptions {
        batch_size: batch,
        threads,
        max_pixels: DEFAULT_MAX_PIXELS,
        memory_limit: usize::MAX,
        interrupt: None,
    };
    let bar = super::ui::bar(images.len() as u64, "encode", "images");
    let mut codes = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch) {
        let bytes: Vec<Vec<u8>> = chunk
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("cannot read image {}", p.display())))
            .collect::<Result<_>>()?;
        let slices: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        let packed =
            batch::encode_images(&mut session, &slices, &opts).map_err(|e| match e.index {
                Some(i) => anyhow!("{}: {}", chunk[i].display(), runtime::describe(&e.error)),
                None => anyhow!("{}", runtime::describe(&e.error)),
            })?;
        codes.extend(packed.chunks_exact(contract.bits / 8).map(<[u8]>::to_vec));
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(codes)
}

pub fn run(args: Args) -> Result<()> {
    let bytes = std::fs::read(&args.model)
        .with_context(|| format!("cannot read model {}", args.model.display()))?;
    let (contract, _) = ModelContract::from_onnx(&bytes).map_err(|e| {
        let e = EncoderError::from(&e);
        anyhow!("{}: {}", args.model.display(), runtime::describe(&e))
    })?;
    let (names, codes) = match &contract.input {
        ModelInput::Features { dim } => {
            ensure!(
                args.images.is_empty() && args.list.is_none(),
                "{} takes feature vectors ({dim} values), not images: use --features FILE",
                args.model.display()
            );
            let f = args.features.as_ref().with_context(|| {
                format!(
                    "{} takes feature vectors: give --features FILE",
                    args.model.display()
                )
            })?;
            let (names, values) = read_feature_rows(f, *dim)?;
            let n = names.len();
            // The extension's path: output shape and NaN checked, signs packed.
            let mut session = runtime::encoder_session(&bytes, args.ort_threads)?;
            let packed = session.run(&values, n, None).map_err(|e| {
                anyhow!("{}: model {}", args.model.display(), runtime::describe(&e))
            })?;
            let codes = packed
                .chunks_exact(contract.bits / 8)
                .map(<[u8]>::to_vec)
                .collect();
            (names, codes)
        }
        ModelInput::Image(_) => {
            ensure!(
                args.features.is_none(),
                "{} takes images, not feature vectors",
                args.model.display()
            );
            let mut images = args.images.clone();
            for p in &images {
                ensure!(p.is_file(), "image {} does not exist", p.display());
            }
            if let Some(l) = &args.list {
                images.extend(read_image_list(l, args.root.as_deref())?);
            }
            ensure!(
                !images.is_empty(),
                "no images: give image files or --list FILE"
            );
            let codes = encode_images(&bytes, &contract, &images, args.batch, args.ort_threads)?;
            let names = images
                .iter()
                .map(|p| {
                    if args.absolute {
                        std::fs::canonicalize(p)
                            .unwrap_or_else(|_| p.clone())
                            .display()
                            .to_string()
                    } else {
                        p.display().to_string()
                    }
                })
                .collect();
            (names, codes)
        }
    };
    let mut text = String::new();
    match args.format {
        Format::Tsv => {
            for (n, c) in names.iter().zip(&codes) {
                let _ = writeln!(text, "{n}\t{}", to_hex(c));
            }
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = names
                .iter()
                .zip(&codes)
                .map(|(n, c)| serde_json::json!({"input": n, "code": to_hex(c)}))
                .collect();
            text = serde_json::to_string_pretty(&rows)? + "\n";
        }
    }
    match &args.out {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?;
            ui::log(format!(
                "{} codes of {} bits written to {}",
                codes.len(),
                contract.bits,
                p.display()
            ));
        }
        None => print!("{text}"),
    }
    Ok(())
}
