//! Raw ONNX Runtime throughput of the real encoder model, the baseline of the SQL benchmark
//! (benches/sql/encoder.sh) and the GPU check (tests/gpu/check_cuda.sh).
//!
//!     cargo run --release -p ics-train --example encoder_bench -- \
//!         --size 224 --out target/bench-encoder [--images 64] [--batch 32] [--threads 2] \
//!         [--provider cpu|cuda] [--codes FILE] [--pth .cache/data/efficientnet-lite0-57934424.pth]
//!
//! Paths are relative to the current folder (the scripts run it from the repository root); the
//! photos and the default `--pth` are in the offline data folder (`$ICS_DATA_DIR`, else
//! `.cache/data`, see `ics_train::data::source::offline_data_dir`).
//!
//! Exports (once) `OUT/lite0_<size>.onnx`: EfficientNet-Lite0 imported from the PyTorch weights
//! (`Backbone::import_lite0`) merged with a seeded random 1280 -> 1024 -> 64 hash head
//! (`merge_backbone_head`), the same export path as `ics-train export`. Writes (once)
//! `OUT/images/img_NNN.jpg`: crops of the sample photos resized to 320 x 240 .. 640 x 480,
//! JPEG q85. Then measures, with the session options of the extension (intra-op threads,
//! one inter-op thread, no spinning, full graph optimisation):
//! - `infer`: ONNX Runtime alone on preprocessed tensors, batch 1 and batch B;
//! - `pipeline`: decode + preprocess (rayon, `threads` workers) + run, batch B;
//! - `single`: decode + preprocess + run, one image at a time.
//!
//! Each is the best of three passes over all the images.
//!
//! `--codes FILE` writes the code of every image (hex, one per line) from the batch-B pipeline.

use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ics_codes::code::{pack_signs, to_hex};
use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::decode::decode_rgb;
use ics_encoder::preprocess::{preprocess_into, Preprocess};
use ics_train::backbone::{efficientnet, Backbone};
use ics_train::data::source::{offline_data_dir, offline_data_file};
use ics_train::ics::head::HashHead;
use ics_train::onnx::{self, head_layers, merge_backbone_head};
use ort::ep::CUDA;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::TensorRef;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const BITS: usize = 64;

struct Args {
    size: u32,
    out: PathBuf,
    images: usize,
    batch: usize,
    threads: usize,
    provider: String,
    codes: Option<PathBuf>,
    pth: PathBuf,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        size: 224,
        out: PathBuf::from("target/bench-encoder"),
        images: 64,
        batch: 32,
        threads: 2,
        provider: "cpu".into(),
        codes: None,
        pth: offline_data_file("efficientnet-lite0-57934424.pth"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--size" => a.size = value()?.parse()?,
            "--out" => a.out = value()?.into(),
            "--images" => a.images = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--threads" => a.threads = value()?.parse()?,
            "--provider" => a.provider = value()?,
            "--codes" => a.codes = Some(value()?.into()),
            "--pth" => a.pth = value()?.into(),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(a)
}

/// The Lite0 + hash head model for `size`, exported once.
fn model(a: &Args) -> Result<(Vec<u8>, ModelContract)> {
    let path = a.out.join(format!("lite0_{}.onnx", a.size));
    if !path.is_file() {
        let backbone = Backbone::import_lite0(&a.pth, a.size)?;
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let head = HashHead::<f32>::new(efficientnet::FEATURE_DIM, &[1024], BITS, 0.0, &mut rng);
        let contract = ModelContract {
            bits: BITS,
            input: ModelInput::Image(backbone.preprocess),
            input_name: "image".into(),
            output_name: "hash".into(),
            centres: (0..4)
                .map(|_| (0..BITS / 8).map(|_| rng.gen()).collect())
                .collect(),
            trainer_version: env!("CARGO_PKG_VERSION").into(),
            config_sha256: "be".repeat(32),
            backbone: Some(backbone.description.clone()),
        };
        let merged = merge_backbone_head(
            backbone.model(),
            &backbone.feature_output,
            &head_layers(&head),
            &contract,
        )?;
        onnx::save_model(&merged, &path)?;
    }
    let bytes = std::fs::read(&path)?;
    let (contract, _) = ModelContract::from_onnx(&bytes)?;
    Ok((bytes, contract))
}

/// JPEG test images (crops of the sample photos, resized), written once.
fn images(a: &Args) -> Result<Vec<Vec<u8>>> {
    let dir = a.out.join("images");
    std::fs::create_dir_all(&dir)?;
    let data = offline_data_dir();
    // The photos are read only when an image has to be made.
    let mut photos = Vec::new();
    let mut out = Vec::with_capacity(a.images);
    for i in 0..a.images {
        let path = dir.join(format!("img_{i:03}.jpg"));
        if !path.is_file() {
            if photos.is_empty() {
                for f in ["chelsea.png", "coffee.png"] {
                    photos.push(decode_rgb(&std::fs::read(data.join(f))?, u64::MAX)?);
                }
            }
            let mut rng = ChaCha8Rng::seed_from_u64(11 + i as u64);
            let p = &photos[i % photos.len()];
            let full =
                image::RgbImage::from_raw(p.width, p.height, p.data.clone()).context("rgb")?;
            let (cw, ch) = (
                rng.gen_range(p.width / 2..=p.width),
                rng.gen_range(p.height / 2..=p.height),
            );
            let (x, y) = (
                rng.gen_range(0..=p.width - cw),
                rng.gen_range(0..=p.height - ch),
            );
            let crop = image::imageops::crop_imm(&full, x, y, cw, ch).to_image();
            let w = rng.gen_range(320..=640u32);
            let resized =
                image::imageops::resize(&crop, w, w * 3 / 4, image::imageops::FilterType::Triangle);
            let mut buf = Cursor::new(Vec::new());
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85)
                .encode_image(&resized)?;
            std::fs::write(&path, buf.into_inner())?;
        }
        out.push(std::fs::read(&path)?);
    }
    Ok(out)
}

fn session(bytes: &[u8], threads: usize, provider: &str) -> Result<Session> {
    let env = onnx::runtime::init()?;
    let b = Session::builder(&env.env).map_err(|e| anyhow::anyhow!("{e}"))?;
    let b = b
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let b = b
        .with_intra_threads(threads)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let b = b
        .with_inter_threads(1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // As the extension: idle pool threads sleep instead of spinning.
    let mut b = b
        .with_intra_op_spinning(false)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if provider == "cuda" {
        b = b
            .with_execution_providers([CUDA::default().build().error_on_failure()])
            .map_err(|e| anyhow::anyhow!("CUDA execution provider: {e}"))?;
    }
    b.commit_from_memory(bytes)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

fn run(s: &mut Session, input: &[f32], n: usize, size: usize) -> Result<Vec<u8>> {
    let t = TensorRef::from_array_view(([n, 3, size, size], input))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let out = s
        .run(ort::inputs!["image" => t])
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (_, data) = out["hash"]
        .try_extract_tensor::<f32>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(data.chunks(BITS).flat_map(pack_signs).collect())
}

fn main() -> Result<()> {
    let a = parse()?;
    std::fs::create_dir_all(&a.out)?;
    let t0 = Instant::now();
    let (bytes, contract) = model(&a)?;
    let ModelInput::Image(p) = contract.input else {
        bail!("not an image model")
    };
    let imgs = images(&a)?;
    eprintln!(
        "model and {} images ready in {:.1} s",
        imgs.len(),
        t0.elapsed().as_secs_f64()
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build()?;
    let item = p.output_len();
    let size = p.size as usize;
    let prep = |batch: &[Vec<u8>], p: &Preprocess| -> Result<Vec<f32>> {
        let mut buf = vec![0f32; batch.len() * item];
        pool.install(|| {
            buf.par_chunks_mut(item)
                .zip(batch.par_iter())
                .try_for_each(|(o, b)| preprocess_into(b, p, u64::MAX, o))
        })?;
        Ok(buf)
    };

    let t = Instant::now();
    let mut s = session(&bytes, a.threads, &a.provider)?;
    let session_ms = t.elapsed().as_secs_f64() * 1e3;
    let n = imgs.len();
    let pre_all = prep(&imgs, &p)?;
    // Warm-up (first runs allocate; CUDA picks its kernels).
    run(&mut s, &pre_all[..item], 1, size)?;
    run(
        &mut s,
        &pre_all[..a.batch.min(n) * item],
        a.batch.min(n),
        size,
    )?;

    // Each measurement: the best of three passes over all images.
    let best = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            f()?;
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let infer1 = n as f64
        / best(&mut || {
            for i in 0..n {
                run(&mut s, &pre_all[i * item..(i + 1) * item], 1, size)?;
            }
            Ok(())
        })?;
    let infer_b = n as f64
        / best(&mut || {
            for c in (0..n).step_by(a.batch) {
                let m = a.batch.min(n - c);
                run(&mut s, &pre_all[c * item..(c + m) * item], m, size)?;
            }
            Ok(())
        })?;
    let mut codes = Vec::new();
    let pipeline = n as f64
        / best(&mut || {
            codes.clear();
            for chunk in imgs.chunks(a.batch) {
                let buf = prep(chunk, &p)?;
                codes.extend(run(&mut s, &buf, chunk.len(), size)?);
            }
            Ok(())
        })?;
    let mut one = vec![0f32; item];
    let single_s = best(&mut || {
        for img in &imgs {
            preprocess_into(img, &p, u64::MAX, &mut one)?;
            run(&mut s, &one, 1, size)?;
        }
        Ok(())
    })?;

    if let Some(path) = &a.codes {
        let text: String = codes.chunks(BITS / 8).map(|c| to_hex(c) + "\n").collect();
        std::fs::write(path, text)?;
    }
    println!(
        "raw provider={} size={} threads={} batch={} images={n} session_ms={session_ms:.1} infer_b1_ips={infer1:.1} infer_ips={infer_b:.1} pipeline_ips={pipeline:.1} single_ips={:.1} single_ms={:.2}",
        a.provider,
        a.size,
        a.threads,
        a.batch,
        n as f64 / single_s,
        single_s * 1e3 / n as f64
    );
    Ok(())
}
