//! Export round trip through ONNX Runtime: a random hash head (alone, and merged behind a tiny
//! backbone) is written to ONNX bytes, read back, run by ONNX Runtime, and must equal a plain
//! Rust forward pass (Gemm + ReLU + Gemm + tanh) to 1e-5, with its contract read back equal.

use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use ics_train::onnx::runtime;
use ics_train::onnx::toy::toy_backbone;
use ics_train::onnx::{head_model, merge_backbone_head, DenseLayer};
use ndarray::{Array1, Array2};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn random_layers(rng: &mut SmallRng, dims: &[usize]) -> Vec<DenseLayer> {
    dims.windows(2)
        .map(|d| {
            let scale = 1.0 / (d[0] as f32).sqrt();
            DenseLayer::new(
                Array2::from_shape_fn((d[0], d[1]), |_| rng.gen_range(-scale..scale)),
                Array1::from_shape_fn(d[1], |_| rng.gen_range(-0.1..0.1)),
            )
            .unwrap()
        })
        .collect()
}

/// The reference: ReLU between layers, tanh after the last.
fn rust_forward(layers: &[DenseLayer], x: &Array2<f32>) -> Array2<f32> {
    let mut h = x.clone();
    for (i, l) in layers.iter().enumerate() {
        h = h.dot(&l.weight) + &l.bias;
        h = if i + 1 < layers.len() {
            h.mapv(|v| v.max(0.0))
        } else {
            h.mapv(f32::tanh)
        };
    }
    h
}

fn max_diff(a: &Array2<f32>, b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn contract(input: ModelInput, input_name: &str, bits: usize) -> ModelContract {
    ModelContract {
        bits,
        input,
        input_name: input_name.into(),
        output_name: "hash".into(),
        centres: vec![
            vec![0x5a; bits / 8],
            vec![0xc3; bits / 8],
            vec![0x00; bits / 8],
        ],
        trainer_version: "test".into(),
        config_sha256: "9f".repeat(32),
        backbone: None,
    }
}

#[test]
fn head_alone_matches_rust_forward() {
    let mut rng = SmallRng::seed_from_u64(7);
    let (dim, bits, n) = (40, 24, 5);
    let layers = random_layers(&mut rng, &[dim, 48, 32, bits]);
    let c = contract(ModelInput::Features { dim }, "features", bits);
    let bytes = head_model(&layers, &c).unwrap().to_bytes();

    let (back, decoded) = ModelContract::from_onnx(&bytes).unwrap();
    assert_eq!(back, c);
    // The exporter never writes external data (the extension refuses it).
    assert_eq!(
        ics_encoder::onnx_external::check_self_contained(&bytes),
        Ok(())
    );
    assert_eq!(decoded.metadata(), c.to_metadata());

    let x = Array2::from_shape_fn((n, dim), |_| rng.gen_range(-2.0..2.0));
    let mut session = runtime::session(&bytes, 1).unwrap();
    let out = runtime::run_f32(
        &mut session,
        "features",
        &[n, dim],
        x.as_slice().unwrap(),
        &["hash"],
    )
    .unwrap()
    .remove(0);
    assert_eq!(out.shape, vec![n, bits]);
    let want = rust_forward(&layers, &x);
    let diff = max_diff(&want, &out.data);
    assert!(
        diff < 1e-5,
        "ONNX Runtime differs from the Rust forward by {diff}"
    );
    // Codes from the outputs are not all one sign: the comparison is not trivially passing.
    assert!(out.data.iter().any(|&v| v > 0.0) && out.data.iter().any(|&v| v < 0.0));

    // A wrong input width is an ONNX Runtime error, not a crash.
    let bad = vec![0f32; n * (dim + 1)];
    assert!(runtime::run_f32(&mut session, "features", &[n, dim + 1], &bad, &["hash"]).is_err());
}

#[test]
fn merged_toy_backbone_matches_rust_forward() {
    let mut rng = SmallRng::seed_from_u64(11);
    let (bits, n) = (16, 3);
    let layers = random_layers(&mut rng, &[3, 8, bits]);
    let p = Preprocess {
        size: 4,
        resize: ResizeMode::Stretch,
        mean: [0.0; 3],
        std: [1.0; 3],
    };
    let c = contract(ModelInput::Image(p), "image", bits);
    let merged = merge_backbone_head(&toy_backbone(4), "pooled", &layers, &c).unwrap();
    let bytes = merged.to_bytes();
    let (back, _) = ModelContract::from_onnx(&bytes).unwrap();
    assert_eq!(back, c);
    assert_eq!(
        ics_encoder::onnx_external::check_self_contained(&bytes),
        Ok(())
    );

    let x: Vec<f32> = (0..n * 48).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let mut session = runtime::session(&bytes, 1).unwrap();
    let out = runtime::run_f32(&mut session, "image", &[n, 3, 4, 4], &x, &["hash"])
        .unwrap()
        .remove(0);
    assert_eq!(out.shape, vec![n, bits]);
    // Reference backbone: per-channel mean of relu(x).
    let pooled = Array2::from_shape_fn((n, 3), |(i, ch)| {
        x[i * 48 + ch * 16..i * 48 + ch * 16 + 16]
            .iter()
            .map(|v| v.max(0.0))
            .sum::<f32>()
            / 16.0
    });
    let diff = max_diff(&rust_forward(&layers, &pooled), &out.data);
    assert!(
        diff < 1e-5,
        "merged model differs from the Rust forward by {diff}"
    );
}
