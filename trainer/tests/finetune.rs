//! Fine-tuning on a tiny EfficientNet-Lite (the library, with ONNX Runtime):
//! - the trained network (burn) computes what the ONNX graph computes, whole and as frozen
//!   prefix + trained part, at every cut;
//! - a run resumed from a checkpoint ends exactly where the unbroken run ends (cached
//!   activations, and images with augmentation);
//! - the export of a fine-tuned model passes the check against the trained network, and a
//!   model file round trip keeps the fine-tuned backbone.
//!
//! Needs the ONNX Runtime library (scripts/setup.sh, or `ORT_DYLIB_PATH`).

use std::path::PathBuf;
use std::sync::Arc;

use ics_encoder::decode::RgbImage;
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use ics_train::backbone::architecture::Architecture;
use ics_train::backbone::efficientnet::{build, build_prefix, FEATURES, INPUT};
use ics_train::backbone::file::{save_backbone_file, BackboneFile};
use ics_train::backbone::folded::NetworkWeights;
use ics_train::backbone::{Backbone, FeatureOptions};
use ics_train::data::{Dataset, ImageRef};
use ics_train::export::{check_onnx, write_onnx, ExportOptions, SampleImages};
use ics_train::finetune::device::inference_device;
use ics_train::finetune::network::{tensor, to_vec};
use ics_train::finetune::{
    model_backbone, train_finetuned, FinetuneInputs, FinetuneOutcome, NetworkTensors, Start,
};
use ics_train::ics::{Checkpointing, EpochLog, FinetuneMode, TrainConfig};
use ics_train::model_file::ModelFile;
use ics_train::onnx::runtime;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZE: u32 = 16;

fn preprocess() -> Preprocess {
    Preprocess {
        size: SIZE,
        resize: ResizeMode::Stretch,
        mean: [127.0; 3],
        std: [128.0; 3],
    }
}

fn tiny_weights() -> NetworkWeights {
    NetworkWeights::random(&Architecture::tiny(), 7)
}

fn tiny_backbone(w: &NetworkWeights) -> Backbone {
    Backbone::from_weights(w, preprocess(), format!("tiny-efficientnet@{SIZE}px")).unwrap()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ics-finetune-{tag}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `n` in-memory 20 x 16 images of 3 classes: a bright block whose place says the class.
fn dataset(n: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut items = Vec::new();
    let mut labels = Array2::<u8>::zeros((n, 3));
    for i in 0..n {
        let (w, h) = (20u32, 16u32);
        let class = i % 3;
        labels[[i, class]] = 1;
        if i % 4 == 0 {
            labels[[i, (class + 1) % 3]] = 1;
        }
        let data = (0..w * h)
            .flat_map(|p| {
                let (x, y) = (p % w, p / w);
                let on = (x / 7) as usize == class || (i % 4 == 0 && (y / 6) as usize == class);
                let v: u8 = if on { 220 } else { rng.gen_range(0..60) };
                [v, v / 2, 255 - v]
            })
            .collect();
        items.push(ImageRef::Memory(Arc::new(RgbImage {
            width: w,
            height: h,
            data,
        })));
    }
    Dataset::new(
        "train",
        "/nonexistent",
        items,
        labels,
        vec!["a".into(), "b".into(), "c".into()],
    )
    .unwrap()
}

#[test]
fn burn_network_matches_the_onnx_graph_at_every_cut() {
    let w = tiny_weights();
    let n = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let s = SIZE as usize;
    let x: Vec<f32> = (0..n * 3 * s * s)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    // ONNX Runtime on the whole graph.
    let full = build(&w, SIZE).unwrap();
    let mut session = runtime::session(&full.to_bytes(), 1).unwrap();
    let want = runtime::run_f32(&mut session, INPUT, &[n, 3, s, s], &x, &[FEATURES])
        .unwrap()
        .remove(0)
        .data;
    let device = inference_device();
    let max_diff = |got: &[f32]| {
        got.iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max)
    };
    // burn from the image on.
    let net = NetworkTensors::upload_f32(&w, Start::Image, &device, false);
    let got: Vec<f32> = to_vec(
        net.forward(tensor::<f32, 4>(x.clone(), [n, 3, s, s], &device))
            .into_data(),
    );
    assert!(max_diff(&got) < 1e-4, "image: {}", max_diff(&got));
    // The ONNX prefix up to each stage, then burn.
    for stage in 1..=w.arch.stage_count() + 1 {
        let prefix = build_prefix(&w, SIZE, stage).unwrap();
        let b = w.arch.boundary(stage, s);
        let mut session = runtime::session(&prefix.to_bytes(), 1).unwrap();
        let act = runtime::run_f32(&mut session, INPUT, &[n, 3, s, s], &x, &[&b.value])
            .unwrap()
            .remove(0);
        assert_eq!(act.shape, vec![n, b.channels, b.spatial, b.spatial]);
        let net = NetworkTensors::upload_f32(&w, Start::Stage(stage), &device, false);
        let x = tensor::<f32, 4>(act.data, [n, b.channels, b.spatial, b.spatial], &device);
        let got: Vec<f32> = to_vec(net.forward(x).into_data());
        assert!(max_diff(&got) < 1e-4, "stage {stage}: {}", max_diff(&got));
    }
}

fn config(mode: FinetuneMode, augment: bool, epochs: usize) -> TrainConfig {
    let mut c = TrainConfig {
        bits: 16,
        hidden: vec![8],
        epochs,
        warmup_epochs: 1,
        batch_size: 8,
        lr: 3e-3,
        seed: 5,
        ..TrainConfig::default()
    };
    c.finetune.mode = mode;
    c.finetune.augment = augment;
    c.finetune.backbone_lr_scale = 0.5;
    c
}

fn run(
    bb: &Backbone,
    data: &Dataset,
    eval: Option<(&Dataset, &Dataset)>,
    config: &TrainConfig,
    checkpointing: Option<&Checkpointing>,
    on_epoch: impl FnMut(&EpochLog),
) -> FinetuneOutcome {
    let inputs = FinetuneInputs {
        backbone: bb,
        train: data,
        eval,
        r: 10,
        features: FeatureOptions {
            intra_threads: 1,
            progress: false,
            ..FeatureOptions::default()
        },
    };
    train_finetuned(&inputs, config, checkpointing, on_epoch).unwrap()
}

/// Everything but the epochs' wall times.
fn same_result(a: &FinetuneOutcome, b: &FinetuneOutcome) {
    assert_eq!(a.model.head(), b.model.head());
    assert_eq!(a.model.weights(), b.model.weights());
    assert_eq!(a.model.centres(), b.model.centres());
    assert_eq!(a.weights, b.weights);
    let strip = |h: &[EpochLog]| -> Vec<EpochLog> {
        h.iter()
            .map(|l| EpochLog {
                seconds: 0.0,
                ..l.clone()
            })
            .collect()
    };
    assert_eq!(strip(a.model.history()), strip(b.model.history()));
}

#[test]
fn a_resumed_run_ends_where_the_unbroken_run_ends() {
    let w = tiny_weights();
    let bb = tiny_backbone(&w);
    let data = dataset(24, 1);
    for (mode, augment) in [(FinetuneMode::Top(2), false), (FinetuneMode::All, true)] {
        let dir = temp_dir(&format!("resume-{}", mode.to_string().replace(':', "")));
        let c = config(mode, augment, 4);
        let every = Checkpointing {
            dir: dir.join("unbroken"),
            every: 1,
            resume: false,
        };
        // The unbroken run, keeping a copy of its checkpoint after epoch 2 (as a run killed
        // during epoch 3 would have left it).
        let kept = dir.join("killed");
        std::fs::create_dir_all(&kept).unwrap();
        let unbroken = run(&bb, &data, None, &c, Some(&every), |l| {
            if l.epoch == 2 {
                std::fs::copy(every.file(), kept.join("checkpoint.icsc")).unwrap();
            }
        });
        let resume = Checkpointing {
            dir: kept.clone(),
            every: 1,
            resume: true,
        };
        let mut epochs_run = Vec::new();
        let resumed = run(&bb, &data, None, &c, Some(&resume), |l| {
            epochs_run.push(l.epoch)
        });
        assert_eq!(epochs_run, vec![3, 4], "{mode}: resumed after epoch 2");
        same_result(&unbroken, &resumed);
        // The network did train, and a plain run without checkpoints is the same run.
        assert_ne!(unbroken.weights, w);
        let plain = run(&bb, &data, None, &c, None, |_| {});
        same_result(&unbroken, &plain);
        // A checkpoint of another configuration is refused, naming what differs.
        let other = TrainConfig {
            lr: 1e-2,
            ..c.clone()
        };
        let inputs = FinetuneInputs {
            backbone: &bb,
            train: &data,
            eval: None,
            r: 10,
            features: FeatureOptions {
                progress: false,
                ..FeatureOptions::default()
            },
        };
        let e = train_finetuned(&inputs, &other, Some(&resume), |_| {})
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("lr (checkpoint 0.003"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn a_finetuned_model_exports_and_passes_the_check() {
    let w = tiny_weights();
    let bb = tiny_backbone(&w);
    let (train, query, db) = (dataset(24, 1), dataset(9, 2), dataset(12, 3));
    let c = config(FinetuneMode::Top(2), false, 2);
    let out = run(&bb, &train, Some((&query, &db)), &c, None, |_| {});
    assert!(out.model.history().last().unwrap().map.is_some());
    let (qf, dbf) = out.eval_features.as_ref().unwrap();
    assert_eq!((qf.dim(), dbf.dim()), ((9, 12), (12, 12)));
    assert!(out.images_per_second() > 0.0 && out.times.images == 2 * 24);
    let dir = temp_dir("export");
    // The base backbone file the model records.
    let base = dir.join("tiny.onnx");
    save_backbone_file(&bb, &base, 1).unwrap();
    let base = BackboneFile::load(&base).unwrap();
    let mf = ModelFile {
        finetuned: Some(out.record(FinetuneMode::Top(2))),
        model: out.model.clone(),
        class_names: vec!["a".into(), "b".into(), "c".into()],
        backbone: Some(ics_train::backbone::BackboneRecord {
            path: base.path.clone(),
            sha256: base.backbone.sha256.clone(),
            description: base.backbone.description.clone(),
            feature_dim: base.feature_dim,
        }),
        data: None,
    };
    let path = dir.join("m.icsm");
    mf.save(&path).unwrap();
    let back = ModelFile::load(&path).unwrap();
    assert_eq!(back.finetuned, mf.finetuned);
    // The model's backbone is the fine-tuned network, not the file it started from.
    let tuned = model_backbone(&back, None).unwrap();
    assert_eq!(tuned.backbone.sha256, out.backbone.sha256);
    assert_ne!(tuned.backbone.sha256, base.backbone.sha256);
    assert_eq!(
        tuned.backbone.description,
        "tiny-efficientnet@16px fine-tuned top:2"
    );
    let opts = ExportOptions {
        ort_threads: 1,
        ..ExportOptions::default()
    };
    let written = write_onnx(&back, Some(&tuned), &dir.join("m.onnx"), &opts).unwrap();
    assert_eq!(
        written.contract.backbone.as_deref(),
        Some("tiny-efficientnet@16px fine-tuned top:2")
    );
    let check = check_onnx(
        &back,
        Some(&tuned),
        &written,
        &opts,
        &SampleImages::generated(8),
    )
    .unwrap();
    assert_eq!((check.samples, check.codes_equal), (8, 8), "{check:?}");
    // Exported with the base backbone instead, the codes are not the trained network's.
    let wrong = write_onnx(&back, Some(&base), &dir.join("wrong.onnx"), &opts).unwrap();
    let e = check_onnx(
        &back,
        Some(&base),
        &wrong,
        &opts,
        &SampleImages::generated(8),
    );
    assert!(e.is_err(), "{e:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
