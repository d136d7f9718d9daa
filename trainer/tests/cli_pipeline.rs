//! The command line end to end on tiny real data: compose -> backbone import (EfficientNet-
//! Lite0) -> features -> train (ICS) -> eval -> export (merged and head-only) -> encode.
//!
//! Checks: ICS beats random codes by a wide margin; the exported ONNX model, run through the
//! extension's preprocessing and ONNX Runtime by `encode`, gives exactly the codes of the
//! trainer's own forward pass (backbone features + Rust head) on every query image; the
//! feature cache is hit on the second use; reports and plots are written.
//!
//! Needs scripts/setup.sh's offline data and ONNX Runtime.

mod cli_util;

use cli_util::{data_file, fresh_dir, ok, s};

fn json(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn assert_png(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 10_000,
        "{} is not a drawn PNG ({} bytes)",
        path.display(),
        bytes.len()
    );
}

#[test]
fn compose_import_features_train_eval_export_encode() {
    let dir = fresh_dir("pipeline");
    let data = dir.join("data");
    let bb = dir.join("lite0.onnx");
    let model = dir.join("ics.icsm");

    // 1-2 labels of 20 classes on 96-px canvases: few enough images for a debug build, large
    // enough instances for Lite0 to see them.
    ok(&[
        "data",
        "compose",
        "--size",
        "small",
        "--canvas",
        "96",
        "--max-instances",
        "2",
        "--min-size",
        "40",
        "--max-size",
        "90",
        "--train",
        "400",
        "--query",
        "40",
        "--database",
        "200",
        "--seed",
        "5",
        "--out",
        s(&data),
    ]);
    for f in [
        "manifest.json",
        "classes.txt",
        "train.txt",
        "train_areas.tsv",
        "query.txt",
    ] {
        assert!(data.join(f).is_file(), "compose wrote no {f}");
    }
    ok(&[
        "backbone",
        "import",
        "--pth",
        s(&data_file("efficientnet-lite0-57934424.pth")),
        "--size",
        "96",
        "--out",
        s(&bb),
    ]);
    let (_, log) = ok(&["features", "--backbone", s(&bb), "--data", s(&data)]);
    assert_eq!(log.matches("cached in").count(), 3, "{log}");

    let (_, log) = ok(&[
        "train",
        "--backbone",
        s(&bb),
        "--data",
        s(&data),
        "--bits",
        "32",
        "--hidden",
        "none",
        "--epochs",
        "12",
        "--lr",
        "3e-3",
        "--lr-step-epochs",
        "6",
        "--eval-every",
        "4",
        "--r",
        "50",
        "--out",
        s(&model),
    ]);
    // Features came from the cache; one log line per epoch, mAP on epochs 4, 8, 12.
    assert_eq!(log.matches("from cache").count(), 3, "{log}");
    assert_eq!(log.matches("epoch ").count(), 12, "{log}");
    assert_eq!(log.matches("mAP@50 ").count(), 3 + 1, "{log}");
    let report = json(&dir.join("ics.report.json"));
    assert_eq!(report["epochs"].as_array().unwrap().len(), 12);
    assert!(
        report["agreement"]["images"].as_u64().unwrap() > 0,
        "{report}"
    );

    let eval = dir.join("eval");
    ok(&[
        "eval",
        "--model",
        s(&model),
        "--r",
        "50",
        "--cosine",
        "--codes",
        "--out",
        s(&eval),
    ]);
    let r = json(&eval.join("report.json"));
    let retrieval = &r["models"][0]["report"]["retrieval"];
    let map = retrieval["map_at_r"].as_f64().unwrap();
    let random = retrieval["random_codes_map_at_r"].as_f64().unwrap();
    let cosine = r["cosine_map_at_r"].as_f64().unwrap();
    eprintln!("tiny run: ICS mAP {map:.4}, random codes {random:.4}, cosine {cosine:.4}");
    // Measured: ICS 0.48, random codes 0.21, cosine of the raw features 0.46.
    assert!(
        map >= random + 0.15 && map >= 1.5 * random,
        "ICS mAP {map:.4} does not beat random codes {random:.4} by a wide margin"
    );
    // One code length: bars, not a line over one point.
    for p in ["map_by_method.png", "pr_curves.png", "weights_vs_area.png"] {
        assert_png(&eval.join(p));
    }
    assert!(!eval.join("map_vs_bits.png").exists());
    let summary = std::fs::read_to_string(eval.join("summary.md")).unwrap();
    assert!(summary.contains("| ics | ICS | 32 |"), "{summary}");

    // Export: backbone + head in one file, checked against the trainer on a sample.
    let onnx = dir.join("ics.onnx");
    let (_, log) = ok(&["export", "--model", s(&model), "--out", s(&onnx)]);
    assert!(log.contains("16 of 16 sample codes"), "{log}");
    let head = dir.join("head.onnx");
    let (_, log) = ok(&[
        "export",
        "--model",
        s(&model),
        "--head-only",
        "--out",
        s(&head),
    ]);
    assert!(
        log.contains("16 of 16 sample codes") && log.contains("features"),
        "{log}"
    );

    // encode: every query image's code equals the trainer's (eval --codes).
    let (stdout, _) = ok(&[
        "encode",
        "--model",
        s(&onnx),
        "--list",
        s(&data.join("query.txt")),
        "--absolute",
    ]);
    let trainer = std::fs::read_to_string(eval.join("codes/ics-query.tsv")).unwrap();
    assert_eq!(stdout.lines().count(), 40);
    assert_eq!(
        stdout, trainer,
        "exported-model codes differ from the trainer's"
    );
    let first = stdout.lines().next().unwrap();
    let hex = first.split('\t').nth(1).unwrap();
    assert_eq!(hex.len(), 8, "32 bits = 8 hex digits: {first}");

    // JSON output of a single image.
    let img = first.split('\t').next().unwrap();
    let (stdout, _) = ok(&["encode", "--model", s(&onnx), "--format", "json", img]);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v[0]["code"], hex);
}
