//! Acceptance test of the EfficientNet-Lite0 import: the imported graph, run by ONNX Runtime
//! on scikit-image's CC0 photos preprocessed at 224 px, must name the right ImageNet classes
//! (chelsea.png: a cat, 281/282/285; coffee.png: 967 espresso). Also checks batching, the
//! feature cache, and the backbone + head merge on the real graph.
//!
//! Needs the files `scripts/setup.sh` puts in `.cache/data` and the ONNX Runtime library; a
//! missing file fails the test with a message saying so.

use std::time::Instant;

use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::decode::DEFAULT_MAX_PIXELS;
use ics_encoder::preprocess::{preprocess, Preprocess};
use ics_train::backbone::features::Files;
use ics_train::backbone::{efficientnet, extract_features, Backbone, FeatureOptions};
use ics_train::onnx::runtime;
use ics_train::onnx::{merge_backbone_head, DenseLayer};
use ndarray::{Array1, Array2};

mod cli_util;
use cli_util::data_file;

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap()
}

#[test]
fn lite0_golden_classes_batches_cache_and_merge() {
    let t = Instant::now();
    let bb = Backbone::import_lite0(&data_file("efficientnet-lite0-57934424.pth"), 224).unwrap();
    eprintln!(
        "import: {:.2} s, ONNX {} bytes, {} nodes",
        t.elapsed().as_secs_f64(),
        bb.onnx_bytes().len(),
        bb.model().graph().unwrap().node.len()
    );
    // Only the operators the design names, and the expected interface.
    let g = bb.model().graph().unwrap();
    for n in &g.node {
        assert!(
            [
                "Conv",
                "Clip",
                "Add",
                "GlobalAveragePool",
                "Flatten",
                "Gemm"
            ]
            .contains(&n.op_type.as_str()),
            "unexpected op {}",
            n.op_type
        );
    }
    assert_eq!(
        g.node.iter().filter(|n| n.op_type == "Conv").count(),
        1 + 15 * 3 + 2 + 1
    );
    assert_eq!(g.node.iter().filter(|n| n.op_type == "Add").count(), 9);
    let size = bb.onnx_bytes().len();
    assert!((18_000_000..19_500_000).contains(&size), "ONNX size {size}");
    assert_eq!(bb.description, "efficientnet-lite0@224px");

    let p = Preprocess::efficientnet_lite(224);
    let files = [
        ("chelsea.png", vec![281, 282, 285]),
        ("coffee.png", vec![967]),
    ];
    let mut session = runtime::session(bb.onnx_bytes(), 2).unwrap();
    let mut batch = Vec::new();
    let mut single_features = Vec::new();
    let mut single_logits = Vec::new();
    for (name, allowed) in &files {
        let x = preprocess(
            &std::fs::read(data_file(name)).unwrap(),
            &p,
            DEFAULT_MAX_PIXELS,
        )
        .unwrap();
        let out = runtime::run_f32(
            &mut session,
            efficientnet::INPUT,
            &[1, 3, 224, 224],
            &x,
            &[efficientnet::LOGITS, efficientnet::FEATURES],
        )
        .unwrap();
        assert_eq!(out[0].shape, vec![1, 1000]);
        assert_eq!(out[1].shape, vec![1, 1280]);
        let top = argmax(&out[0].data);
        eprintln!("{name}: top-1 ImageNet class {top}");
        assert!(
            allowed.contains(&top),
            "{name}: top-1 is {top}, expected one of {allowed:?}"
        );
        // ReLU6 then averaging: every feature lies in [0, 6].
        assert!(out[1].data.iter().all(|v| (0.0..=6.0).contains(v)));
        batch.extend_from_slice(&x);
        single_logits.push(out[0].data.clone());
        single_features.push(out[1].data.clone());
    }

    // A batch of two gives each image's own results.
    let out = runtime::run_f32(
        &mut session,
        efficientnet::INPUT,
        &[2, 3, 224, 224],
        &batch,
        &[efficientnet::LOGITS],
    )
    .unwrap();
    for (i, single) in single_logits.iter().enumerate() {
        let row = &out[0].data[i * 1000..(i + 1) * 1000];
        let diff = row
            .iter()
            .zip(single)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-3, "image {i}: batched logits differ by {diff}");
    }

    // Batched extraction with the cache: same features, the second run from the cache.
    let cache = std::env::temp_dir().join(format!("ics-lite0-cache-{}", std::process::id()));
    let images = Files(files.iter().map(|(n, _)| data_file(n)).collect());
    let opts = FeatureOptions {
        batch_size: 32,
        intra_threads: 2,
        cache_dir: Some(cache.clone()),
        progress: false,
        ..Default::default()
    };
    let first = extract_features(&bb, &images, &opts).unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.features.dim(), (2, 1280));
    for (i, single) in single_features.iter().enumerate() {
        let diff = first
            .features
            .row(i)
            .iter()
            .zip(single)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff < 1e-3,
            "image {i}: extracted features differ by {diff}"
        );
    }
    let second = extract_features(&bb, &images, &opts).unwrap();
    assert!(second.from_cache);
    assert_eq!(second.features, first.features);
    std::fs::remove_dir_all(&cache).unwrap();

    // Backbone + head in one model equals features -> Rust head forward.
    let bits = 32;
    let w1 = Array2::from_shape_fn((1280, 64), |(i, j)| {
        (((i * 31 + j * 17) % 97) as f32 / 97.0 - 0.5) * 0.2
    });
    let b1 = Array1::from_shape_fn(64, |j| (j as f32 / 64.0 - 0.5) * 0.1);
    let w2 = Array2::from_shape_fn((64, bits), |(i, j)| {
        (((i * 13 + j * 7) % 53) as f32 / 53.0 - 0.5) * 0.5
    });
    let b2 = Array1::from_elem(bits, 0.01);
    let layers = vec![
        DenseLayer::new(w1.clone(), b1.clone()).unwrap(),
        DenseLayer::new(w2.clone(), b2.clone()).unwrap(),
    ];
    let contract = ModelContract {
        bits,
        input: ModelInput::Image(p),
        input_name: "image".into(),
        output_name: "hash".into(),
        centres: vec![vec![0x0f; 4], vec![0xf0; 4]],
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: "1".repeat(64),
        backbone: Some(bb.description.clone()),
    };
    let merged = merge_backbone_head(bb.model(), &bb.feature_output, &layers, &contract).unwrap();
    let merged_bytes = merged.to_bytes();
    // The ImageNet classifier (1000 x 1280 floats) is pruned; the head (1280 x 64) is added.
    let mg = merged.graph().unwrap();
    assert!(
        mg.initializer.iter().all(|t| t.name != "fc.weight"),
        "the classifier was not pruned"
    );
    assert!(mg
        .node
        .iter()
        .all(|n| n.output.iter().all(|o| o != efficientnet::LOGITS)));
    let expected = size - 1_281_000 * 4 + (1280 * 64 + 64 + 64 * 32 + 32) * 4;
    assert!(
        merged_bytes.len().abs_diff(expected) < 20_000,
        "merged model of {} bytes, about {expected} expected",
        merged_bytes.len()
    );
    let (back, _) = ModelContract::from_onnx(&merged_bytes).unwrap();
    assert_eq!(back, contract);
    let mut session = runtime::session(&merged_bytes, 2).unwrap();
    let out =
        runtime::run_f32(&mut session, "image", &[2, 3, 224, 224], &batch, &["hash"]).unwrap();
    assert_eq!(out[0].shape, vec![2, bits]);
    let feats = Array2::from_shape_vec((2, 1280), single_features.concat()).unwrap();
    let h = (feats.dot(&w1) + &b1).mapv(|v| v.max(0.0));
    let u = (h.dot(&w2) + &b2).mapv(f32::tanh);
    let diff = u
        .iter()
        .zip(&out[0].data)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        diff < 1e-3,
        "merged model differs from features + head by {diff}"
    );
}
