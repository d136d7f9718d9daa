//! `ics-train train --finetune` end to end on a tiny EfficientNet-Lite backbone file: training
//! with checkpoints, resuming, exporting (the check against the trained network), evaluating;
//! and bad fine-tuning options give clear errors.

mod cli_util;

use std::path::{Path, PathBuf};

use cli_util::{bin, fails, fresh_dir, ok, s, toy_backbone, write_png};
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use ics_train::backbone::architecture::Architecture;
use ics_train::backbone::file::save_backbone_file;
use ics_train::backbone::folded::NetworkWeights;
use ics_train::backbone::Backbone;
use ics_train::ics::FinetuneMode;
use ics_train::model_file::ModelFile;

/// A backbone file of the tiny EfficientNet-Lite at 16 px.
fn tiny_backbone(dir: &Path) -> PathBuf {
    let w = NetworkWeights::random(&Architecture::tiny(), 11);
    let p = Preprocess {
        size: 16,
        resize: ResizeMode::Stretch,
        mean: [127.0; 3],
        std: [128.0; 3],
    };
    let bb = Backbone::from_weights(&w, p, "tiny-efficientnet@16px".into()).unwrap();
    let path = dir.join("tiny.onnx");
    save_backbone_file(&bb, &path, 1).unwrap();
    path
}

/// A list file of `n` 16-px PNGs with 2 classes.
fn list(dir: &Path, name: &str, n: u32) -> PathBuf {
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let mut text = String::new();
    for i in 0..n {
        write_png(&img.join(format!("{name}{i}.png")), 16, i);
        let labels = ["1 0", "0 1", "1 1"][i as usize % 3];
        text.push_str(&format!("img/{name}{i}.png {labels}\n"));
    }
    let path = dir.join(format!("{name}.txt"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn finetune_train_resume_export_eval() {
    let dir = fresh_dir("finetune");
    let bb = tiny_backbone(&dir);
    let (train, query, db) = (
        list(&dir, "train", 12),
        list(&dir, "query", 4),
        list(&dir, "db", 6),
    );
    let model = dir.join("m.icsm");
    let ckpt = dir.join("ckpt");
    let args = |epochs: &'static str, out: &Path| -> Vec<String> {
        [
            "train",
            "--backbone",
            s(&bb),
            "--train",
            s(&train),
            "--query",
            s(&query),
            "--database",
            s(&db),
            "--bits",
            "8",
            "--hidden",
            "none",
            "--epochs",
            epochs,
            "--warmup-epochs",
            "1",
            "--batch-size",
            "4",
            "--finetune",
            "top:2",
            "--backbone-lr-scale",
            "0.5",
            "--augment",
            "--r",
            "5",
            "--checkpoint-dir",
            s(&ckpt),
            "--out",
            s(out),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let a = args("2", &model);
    let (_, err) = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(err.contains("fine-tuning top:2"), "{err}");
    assert!(err.contains("images/s"), "{err}");
    assert!(ckpt.join("checkpoint.icsc").is_file());
    let mf = ModelFile::load(&model).unwrap();
    let f = mf.finetuned.as_ref().expect("a fine-tuned model");
    assert_eq!(f.mode, FinetuneMode::Top(2));
    assert_eq!(mf.model.config().finetune.backbone_lr_scale, 0.5);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("m.report.json")).unwrap()).unwrap();
    assert!(
        report["retrieval"]["map_at_r"].as_f64().is_some(),
        "{report}"
    );

    // Extending the run by one epoch from its checkpoint.
    let longer = dir.join("m3.icsm");
    let mut a = args("3", &longer);
    a.push("--resume".into());
    let (_, err) = ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        err.contains("epoch 3/3") && !err.contains("epoch 1/3"),
        "{err}"
    );
    assert_eq!(ModelFile::load(&longer).unwrap().model.history().len(), 3);

    // Export: the fine-tuned backbone goes into the ONNX file, checked against the network.
    let onnx = dir.join("m.onnx");
    let (_, err) = ok(&[
        "export",
        "--model",
        s(&model),
        "--out",
        s(&onnx),
        "--check",
        "6",
    ]);
    assert!(err.contains("check: 6 of 6"), "{err}");
    let e = fails(&[
        "export",
        "--model",
        s(&model),
        "--backbone",
        s(&bb),
        "--out",
        s(&onnx),
    ]);
    assert!(e.contains("carries its fine-tuned backbone"), "{e}");
    // Eval uses the model's own backbone.
    let (_, err) = ok(&[
        "eval",
        "--model",
        s(&model),
        "--out",
        s(&dir.join("eval")),
        "--r",
        "5",
        "--no-plots",
    ]);
    assert!(err.contains("mAP@5"), "{err}");
}

/// A fine-tuning run of 2 epochs clamps the default warm-up (2) to 1. Extended with --resume
/// to 3 epochs, whose default warm-up is 2, it keeps the clamped warm-up (epoch 2 learned
/// weights already), says so, and ends where an unbroken 3-epoch run with --warmup-epochs 1
/// ends.
#[test]
fn extending_a_short_finetuning_run_keeps_its_clamped_warmup() {
    let dir = fresh_dir("finetune-warmup");
    let bb = tiny_backbone(&dir);
    let train = list(&dir, "train", 12);
    let args = |epochs: &str, ckpt: &str, out: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--backbone",
            s(&bb),
            "--train",
            s(&train),
            "--bits",
            "8",
            "--hidden",
            "none",
            "--epochs",
            epochs,
            "--batch-size",
            "4",
            "--finetune",
            "top:1",
            "--checkpoint-dir",
            s(&dir.join(ckpt)),
            "--out",
            s(&dir.join(out)),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |a: Vec<String>| ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    run(args("2", "ckpt", "short.icsm", &[]));
    let short = ModelFile::load(&dir.join("short.icsm")).unwrap();
    assert_eq!(
        short.model.config().warmup_epochs,
        1,
        "clamped to fit 2 epochs"
    );
    let (_, err) = run(args("3", "ckpt", "resumed.icsm", &["--resume"]));
    assert!(
        err.contains(
            "resuming after epoch 2 with the checkpoint's warm-up of 1 epoch (clamped to fit its \
             run of 2 epochs), not the 2 epochs a run of 3 epochs has from the start"
        ) && err.contains("--warmup-epochs 1")
            && err.contains("epoch 3/3")
            && !err.contains("epoch 1/3"),
        "{err}"
    );
    run(args(
        "3",
        "ckpt-unbroken",
        "unbroken.icsm",
        &["--warmup-epochs", "1"],
    ));
    let (a, b) = (
        ModelFile::load(&dir.join("resumed.icsm")).unwrap(),
        ModelFile::load(&dir.join("unbroken.icsm")).unwrap(),
    );
    assert_eq!(a.model.config(), b.model.config());
    assert_eq!(a.model.head(), b.model.head());
    assert_eq!(a.model.weights(), b.model.weights());
    assert_eq!(
        a.finetuned.as_ref().map(|f| &f.tensors),
        b.finetuned.as_ref().map(|f| &f.tensors)
    );
    // A warm-up given that differs from the checkpoint's, once weights were learned: refused,
    // naming the setting and what to do.
    let e = fails(
        &args(
            "3",
            "ckpt",
            "other.icsm",
            &["--resume", "--warmup-epochs", "2"],
        )
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
    );
    assert!(
        e.contains("warmup_epochs (checkpoint 1, now 2)")
            && e.contains("train from the start without --resume"),
        "{e}"
    );
}

#[test]
fn bad_finetune_options_say_why() {
    let dir = fresh_dir("finetune-errors");
    let bb = tiny_backbone(&dir);
    let train = list(&dir, "train", 6);
    let model = dir.join("m.icsm");
    let train_with = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--backbone",
            s(&bb),
            "--train",
            s(&train),
            "--bits",
            "8",
            "--epochs",
            "1",
            "--out",
            s(&model),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = train_with(extra);
        fails(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // More stages than the network has.
    let e = run(&["--finetune", "top:99"]);
    assert!(
        e.contains("top:99") && e.contains("3 MBConv stages") && e.contains("1..=3"),
        "{e}"
    );
    // Augmentation of frozen features.
    let e = run(&["--augment"]);
    assert!(e.contains("augment needs a fine-tuning mode"), "{e}");
    // A backbone that is not an EfficientNet-Lite.
    let toy = toy_backbone(&dir);
    let a: Vec<String> = train_with(&["--finetune", "all"])
        .into_iter()
        .map(|x| if x == s(&bb) { s(&toy).to_string() } else { x })
        .collect();
    let e = fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        e.contains("fine-tuning needs an EfficientNet-Lite0 backbone"),
        "{e}"
    );
    // Resuming without a checkpoint.
    let e = run(&[
        "--finetune",
        "top:1",
        "--checkpoint-dir",
        s(&dir.join("empty")),
        "--resume",
    ]);
    assert!(e.contains("no checkpoint to resume"), "{e}");
    // Usage errors (exit 2) with the reason: N = 0, garbage, --resume alone.
    for (flags, says) in [
        (&["--finetune", "top:0"][..], "N >= 1"),
        (&["--finetune", "everything"][..], "expected none, top:N"),
        (&["--finetune", "top:two"][..], "whole number"),
        (&["--resume"][..], "--checkpoint-dir"),
    ] {
        let a = train_with(flags);
        let out = bin().args(&a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains(says), "{flags:?}: {err}");
    }
    let out = bin()
        .args(["bench", "--small", "--out", s(&dir), "--finetune", "top:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("N >= 1"));
}

/// `--device`: `cuda` says what is missing (here: the `cuda` feature or a GPU for burn, a CUDA
/// build of ONNX Runtime or a GPU for feature extraction), `auto` falls back to the CPU with a
/// one-line note; a machine where CUDA runs skips the checks that expect it to be missing.
#[test]
fn device_cuda_says_what_is_missing_and_auto_falls_back() {
    let gpu = ics_encoder::runtime::gpu_present().0;
    if gpu && ics_train::finetune::device::CUDA_BUILT {
        return;
    }
    let dir = fresh_dir("finetune-device");
    let bb = tiny_backbone(&dir);
    let train = list(&dir, "train", 6);
    let model = dir.join("m.icsm");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "train",
            "--backbone",
            s(&bb),
            "--train",
            s(&train),
            "--bits",
            "8",
            "--hidden",
            "none",
            "--epochs",
            "1",
            "--warmup-epochs",
            "0",
            "--batch-size",
            "4",
            "--out",
            s(&model),
        ]
        .iter()
        .map(|x| x.to_string())
        .collect();
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    fn strs(a: &[String]) -> Vec<&str> {
        a.iter().map(String::as_str).collect()
    }
    // Fine-tuning: burn's CUDA backend.
    let e = fails(&strs(&args(&["--finetune", "top:1", "--device", "cuda"])));
    if ics_train::finetune::device::CUDA_BUILT {
        assert!(e.contains("--device cuda: no NVIDIA GPU is visible"), "{e}");
    } else {
        assert!(
            e.contains("--device cuda: this ics-train was built without the `cuda` feature")
                && e.contains("--features cuda"),
            "{e}"
        );
    }
    let (_, err) = ok(&strs(&args(&["--finetune", "top:1", "--device", "auto"])));
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("--device auto: training on the CPU, "))
        .collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(
        err.contains("fine-tuning top:1 (burn 0.22.1 flex (CPU"),
        "{err}"
    );
    // Frozen features: ONNX Runtime's CUDA provider (the CPU build of ONNX Runtime has none).
    if !gpu {
        let e = fails(&strs(&args(&[
            "--device",
            "cuda",
            "--cache-dir",
            s(&dir.join("c1")),
        ])));
        assert!(
            e.contains("--device is cuda, but") && e.contains("--device cpu"),
            "{e}"
        );
        let (_, err) = ok(&strs(&args(&[
            "--device",
            "auto",
            "--cache-dir",
            s(&dir.join("c2")),
        ])));
        assert!(err.contains("on CPUExecutionProvider (auto: "), "{err}");
    }
    // The CPU, said or not, prints no note.
    let (_, err) = ok(&strs(&args(&["--finetune", "top:1", "--device", "cpu"])));
    assert!(!err.contains("--device"), "{err}");
    // Unknown devices are usage errors.
    let out = bin().args(args(&["--device", "gpu"])).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected auto, cpu or cuda"));
}
