//! Makes the fixtures of the encoder's SQL tests (tests/fixtures/encoder/): tiny models
//! exported through the trainer's ONNX exporter, small images cut from the sample photos,
//! broken variants, and the golden codes computed by the trainer's own inference path.
//!
//!     cargo run -p ics-train --example make_encoder_fixtures            # writes the folder
//!     cargo run -p ics-train --example make_encoder_fixtures -- OUT_DIR DATA_DIR
//!
//! DATA_DIR (default: the offline data folder, `$ICS_DATA_DIR` or else `.cache/data` under the
//! current folder, filled by scripts/setup.sh) must hold chelsea.png and coffee.png. OUT_DIR
//! defaults to this checkout's `tests/fixtures/encoder`: a dev tool that regenerates the
//! checked-in fixtures, it is the one place that locates the source checkout
//! (`CARGO_MANIFEST_DIR`), and it is never part of a binary that ships. Everything is seeded:
//! a rerun writes the same bytes.
//!
//! Models (all with the `ics_hash.*` contract in their metadata):
//! - `tiny_image.onnx`: a 2-conv backbone (32 x 32 input, GlobalAveragePool to 16 features)
//!   merged with a 16 -> 32 -> 64 hash head (`merge_backbone_head`);
//! - `tiny_features.onnx`: a feature-input head, 8 -> 16 -> 32 bits (`head_model`);
//! - `nan_features.onnx`: 8 features -> Sqrt -> Gemm -> Tanh, 8 bits (NaN for negative input);
//! - `wrong_bits.onnx`: declares 16 bits but computes 8 (its output dimension is symbolic, so
//!   only running it shows the mismatch);
//! - `slow_features.onnx`, `wide_image.onnx`, `heavy_image.onnx`, `external_data.onnx`: the
//!   encoder's limit tests (`ics_encoder::test_models`): a run time chosen by the input
//!   (cancellation), a megabyte of activations per 64-px image (the memory limit), one MatMul
//!   node whose time grows with the batch (the cap on items per run), a weight read from `global/1260` (the
//!   data directory's `pg_authid` file; must be refused);
//! - `ort_format_features.onnx`, `nms_features.onnx`, `runtime_matmul_features.onnx`: model
//!   files the loader refuses (ONNX Runtime's format marker in ONNX bytes; operators a run
//!   cannot be stopped inside);
//! - `no_contract.onnx`: `tiny_features` without metadata; `bad_graph.onnx`: metadata naming
//!   an input the graph does not have.
//!
//! Golden codes: images are preprocessed by the trainer's batch preprocessing
//! (`backbone::features`, i.e. `ics_encoder::preprocess`), the backbone runs in ONNX Runtime
//! through the trainer's `Extractor`, the head runs in the trainer's own ndarray forward
//! (`HashHead::forward`) and outputs are packed with `ics_codes::code::pack_signs`. The merged
//! ONNX model is run too and must give the same codes; every output is at least `MARGIN` away
//! from zero so that float differences between the two paths cannot flip a bit.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use ics_codes::code::{pack_signs, to_hex};
use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::decode::{decode_rgb, RgbImage};
use ics_encoder::onnx_proto::{AttributeProto, Dim, ModelProto};
use ics_encoder::preprocess::Preprocess;
use ics_train::backbone::features::{extract_features, EncodedImages, FeatureOptions};
use ics_train::backbone::Backbone;
use ics_train::ics::head::HashHead;
use ics_train::onnx::{self, head_layers, head_model, merge_backbone_head, model, GraphBuilder};
use image::ImageFormat;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Smallest |tanh output| accepted in a golden code: 100x the ~1e-6 by which the f32 results
/// of ONNX Runtime and ndarray differ.
const MARGIN: f32 = 1e-4;
const IMAGE_SIZE: u32 = 32;
const IMAGE_BITS: usize = 64;
const FEATURE_DIM: usize = 8;
const FEATURE_BITS: usize = 32;

fn n() -> Dim {
    Dim::Symbolic("N".into())
}

fn contract(
    bits: usize,
    input: ModelInput,
    input_name: &str,
    rng: &mut ChaCha8Rng,
) -> ModelContract {
    ModelContract {
        bits,
        input,
        input_name: input_name.into(),
        output_name: "hash".into(),
        centres: (0..2)
            .map(|_| (0..bits / 8).map(|_| rng.gen()).collect())
            .collect(),
        trainer_version: env!("CARGO_PKG_VERSION").into(),
        config_sha256: "0f".repeat(32),
        backbone: None,
    }
}

fn uniform(rng: &mut ChaCha8Rng, len: usize, bound: f32) -> Vec<f32> {
    (0..len).map(|_| rng.gen_range(-bound..bound)).collect()
}

/// A 2-conv backbone: input (N x 3 x 32 x 32) -> Conv s2 -> Relu -> Conv s2 -> Relu ->
/// GlobalAveragePool -> "features" (N x 16 x 1 x 1).
fn tiny_backbone(rng: &mut ChaCha8Rng) -> Result<ModelProto> {
    let s = i64::from(IMAGE_SIZE);
    let mut b = GraphBuilder::new("tiny_backbone");
    let x = b.input("input", &[n(), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)])?;
    let conv = |b: &mut GraphBuilder,
                x: &str,
                cin: usize,
                cout: usize,
                name: &str,
                rng: &mut ChaCha8Rng|
     -> Result<String> {
        let bound = (6.0 / (cin * 9) as f32).sqrt();
        let w = b.initializer(
            &format!("{name}.weight"),
            &[cout, cin, 3, 3],
            &uniform(rng, cout * cin * 9, bound),
        )?;
        let bias = b.initializer(&format!("{name}.bias"), &[cout], &uniform(rng, cout, 0.1))?;
        let y = b.node(
            "Conv",
            &[x, &w, &bias],
            name,
            vec![
                AttributeProto::ints("kernel_shape", &[3, 3]),
                AttributeProto::ints("strides", &[2, 2]),
                AttributeProto::ints("pads", &[1, 1, 1, 1]),
            ],
        )?;
        b.node("Relu", &[&y], &format!("{name}.relu"), vec![])
    };
    let h = conv(&mut b, &x, 3, 8, "conv1", rng)?;
    let h = conv(&mut b, &h, 8, 16, "conv2", rng)?;
    b.node_to("GlobalAveragePool", &[&h], "features", vec![])?;
    b.output(
        "features",
        &[n(), Dim::Fixed(16), Dim::Fixed(1), Dim::Fixed(1)],
    )?;
    Ok(model(b.finish(), &[]))
}

/// A fresh head with small random biases (so no output sits at zero by construction).
fn head(input: usize, hidden: &[usize], bits: usize, rng: &mut ChaCha8Rng) -> HashHead<f32> {
    let h = HashHead::<f32>::new(input, hidden, bits, 0.0, rng);
    let layers = h
        .layers()
        .iter()
        .map(|l| {
            let bias = l.bias().mapv(|_| rng.gen_range(-0.2f32..0.2));
            ics_train::ics::head::Linear::new(l.weight().clone(), bias).expect("same shapes")
        })
        .collect();
    HashHead::from_layers(layers, 0.0).expect("chained layers")
}

/// Codes of `u` rows after checking the margin.
fn codes_with_margin(u: &Array2<f32>, what: &str) -> Result<Vec<String>> {
    let min = u.iter().fold(f32::INFINITY, |m, v| m.min(v.abs()));
    ensure!(
        min >= MARGIN,
        "{what}: an output is {min} from zero (margin {MARGIN}); change the seed"
    );
    Ok(u.rows()
        .into_iter()
        .map(|r| to_hex(&pack_signs(r.as_slice().expect("contiguous"))))
        .collect())
}

fn crop(img: &RgbImage, x: u32, y: u32, w: u32, h: u32) -> image::RgbImage {
    let mut out = image::RgbImage::new(w, h);
    for yy in 0..h {
        for xx in 0..w {
            let i = (((y + yy) * img.width + (x + xx)) * 3) as usize;
            out.put_pixel(
                xx,
                yy,
                image::Rgb([img.data[i], img.data[i + 1], img.data[i + 2]]),
            );
        }
    }
    out
}

fn encode(img: &image::DynamicImage, format: ImageFormat) -> Result<Vec<u8>> {
    let mut buf = Cursor::new(Vec::new());
    if format == ImageFormat::Jpeg {
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 90).encode_image(img)?;
    } else {
        img.write_to(&mut buf, format)?;
    }
    Ok(buf.into_inner())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {name}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = args.first().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/encoder")
    });
    let data = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(ics_train::data::source::offline_data_dir);
    std::fs::create_dir_all(&out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(20_251_127);

    // Images: crops of the sample photos in every decoded format, plus broken ones.
    let chelsea = decode_rgb(&std::fs::read(data.join("chelsea.png"))?, u64::MAX)?;
    let coffee = decode_rgb(&std::fs::read(data.join("coffee.png"))?, u64::MAX)?;
    let cat = image::DynamicImage::ImageRgb8(crop(&chelsea, 150, 40, 96, 80));
    let tall = image::DynamicImage::ImageRgb8(crop(&chelsea, 60, 100, 40, 90));
    let cup = image::DynamicImage::ImageRgb8(crop(&coffee, 200, 100, 120, 90));
    let tiny = image::DynamicImage::ImageRgb8(crop(&coffee, 300, 200, 8, 6));
    let grey = image::DynamicImage::ImageLuma8(cat.to_luma8());
    let mut rgba = cup.to_rgba8();
    for (i, p) in rgba.pixels_mut().enumerate() {
        p.0[3] = (i % 251) as u8;
    }
    let rgba = image::DynamicImage::ImageRgba8(rgba);
    let images: Vec<(&str, Vec<u8>)> = vec![
        ("cat.png", encode(&cat, ImageFormat::Png)?),
        ("cat.jpg", encode(&cat, ImageFormat::Jpeg)?),
        ("cat.bmp", encode(&cat, ImageFormat::Bmp)?),
        ("cat.gif", encode(&cat, ImageFormat::Gif)?),
        ("cat.webp", encode(&cat, ImageFormat::WebP)?),
        ("tall.jpg", encode(&tall, ImageFormat::Jpeg)?),
        ("cup.jpg", encode(&cup, ImageFormat::Jpeg)?),
        ("grey.png", encode(&grey, ImageFormat::Png)?),
        ("rgba.png", encode(&rgba, ImageFormat::Png)?),
        ("tiny.png", encode(&tiny, ImageFormat::Png)?),
    ];
    for (name, bytes) in &images {
        write(&out, name, bytes)?;
    }
    let jpg = &images[1].1;
    write(&out, "truncated.jpg", &jpg[..jpg.len() / 2])?;
    let png = &images[0].1;
    write(&out, "truncated.png", &png[..png.len() * 2 / 3])?;
    let mut corrupt = png.clone();
    let idat = corrupt
        .windows(4)
        .position(|w| w == b"IDAT")
        .context("IDAT chunk")?;
    for b in &mut corrupt[idat + 8..idat + 40] {
        *b ^= 0x5a;
    }
    write(&out, "corrupt.png", &corrupt)?;

    // The image model and its golden codes through the trainer's path.
    let backbone_model = tiny_backbone(&mut rng)?;
    let pre = Preprocess::efficientnet_lite(IMAGE_SIZE);
    let backbone =
        Backbone::from_model(backbone_model, "features", pre, "tiny conv fixture".into())?;
    let image_head = head(16, &[32], IMAGE_BITS, &mut rng);
    let mut image_contract = contract(IMAGE_BITS, ModelInput::Image(pre), "image", &mut rng);
    image_contract.backbone = Some("tiny 2-conv fixture backbone".into());
    let merged = merge_backbone_head(
        backbone.model(),
        "features",
        &head_layers(&image_head),
        &image_contract,
    )?;
    onnx::save_model(&merged, &out.join("tiny_image.onnx"))?;

    let encoded = EncodedImages(images.iter().map(|(_, b)| b.clone()).collect());
    let opts = FeatureOptions {
        batch_size: 4,
        intra_threads: 1,
        cache_dir: None,
        progress: false,
        ..Default::default()
    };
    let features = extract_features(&backbone, &encoded, &opts)?.features;
    let golden = codes_with_margin(&image_head.forward(features.view()), "image model")?;

    // Cross-check: the merged ONNX model gives the same codes.
    let batch =
        ics_train::backbone::features::preprocess_batch(&encoded, 0..images.len(), &pre, u64::MAX)?;
    let mut session = onnx::runtime::session(&merged.to_bytes(), 1)?;
    let s = IMAGE_SIZE as usize;
    let u = onnx::runtime::run_f32(
        &mut session,
        "image",
        &[images.len(), 3, s, s],
        &batch,
        &["hash"],
    )?
    .remove(0);
    let merged_codes: Vec<String> = u
        .data
        .chunks(IMAGE_BITS)
        .map(|r| to_hex(&pack_signs(r)))
        .collect();
    ensure!(
        merged_codes == golden,
        "the merged model disagrees with the trainer's path:\n{merged_codes:?}\n{golden:?}"
    );
    let mut csv = String::from("file,code\n");
    for ((name, _), code) in images.iter().zip(&golden) {
        csv.push_str(&format!("{name},{code}\n"));
    }
    write(&out, "golden_images.csv", csv.as_bytes())?;

    // The feature model and its golden codes (ndarray forward of the trainer's head).
    let feature_head = head(FEATURE_DIM, &[16], FEATURE_BITS, &mut rng);
    let feature_contract = contract(
        FEATURE_BITS,
        ModelInput::Features { dim: FEATURE_DIM },
        "features",
        &mut rng,
    );
    let features_model = head_model(&head_layers(&feature_head), &feature_contract)?;
    onnx::save_model(&features_model, &out.join("tiny_features.onnx"))?;
    // Multiples of 1/8: exact in SQL text and in f32.
    let vectors: Vec<Vec<f32>> = (0..6)
        .map(|_| {
            (0..FEATURE_DIM)
                .map(|_| rng.gen_range(-16i32..=16) as f32 / 8.0)
                .collect()
        })
        .collect();
    let x = Array2::from_shape_vec((vectors.len(), FEATURE_DIM), vectors.concat())?;
    let golden = codes_with_margin(&feature_head.forward(x.view()), "feature model")?;
    let mut csv = String::from("features,code\n");
    for (v, code) in vectors.iter().zip(&golden) {
        let text: Vec<String> = v.iter().map(|f| f.to_string()).collect();
        csv.push_str(&format!("\"{{{}}}\",{code}\n", text.join(",")));
    }
    write(&out, "golden_features.csv", csv.as_bytes())?;

    // Broken models.
    let mut no_contract = features_model.clone();
    no_contract.metadata_props.clear();
    onnx::save_model(&no_contract, &out.join("no_contract.onnx"))?;
    let mut bad_graph = features_model.clone();
    let mut md = feature_contract.clone();
    md.input_name = "pixels".into();
    bad_graph.set_metadata(&md.to_metadata());
    onnx::save_model(&bad_graph, &out.join("bad_graph.onnx"))?;

    let identity: Vec<f32> = (0..FEATURE_DIM * FEATURE_DIM)
        .map(|i| if i % (FEATURE_DIM + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let small = |name: &str,
                 bits: usize,
                 sqrt: bool,
                 out_dim: Dim,
                 rng: &mut ChaCha8Rng|
     -> Result<ModelProto> {
        let c = contract(
            bits,
            ModelInput::Features { dim: FEATURE_DIM },
            "features",
            rng,
        );
        let mut b = GraphBuilder::new(name);
        let x = b.input("features", &c.input.graph_shape())?;
        let x = if sqrt {
            b.node("Sqrt", &[&x], "sqrt", vec![])?
        } else {
            x
        };
        let w = b.initializer("w", &[FEATURE_DIM, FEATURE_DIM], &identity)?;
        let bias = b.initializer("b", &[FEATURE_DIM], &[0.0; FEATURE_DIM])?;
        let z = b.node("Gemm", &[&x, &w, &bias], "fc", vec![])?;
        b.node_to("Tanh", &[&z], "hash", vec![])?;
        b.output("hash", &[n(), out_dim])?;
        let m = model(b.finish(), &c.to_metadata());
        c.check_graph(&m)?;
        Ok(m)
    };
    onnx::save_model(
        &small("nan_features", 8, true, Dim::Fixed(8), &mut rng)?,
        &out.join("nan_features.onnx"),
    )?;
    onnx::save_model(
        &small("wrong_bits", 16, false, Dim::Symbolic("K".into()), &mut rng)?,
        &out.join("wrong_bits.onnx"),
    )?;

    // The encoder's limit tests.
    use ics_encoder::test_models;
    write(
        &out,
        "slow_features.onnx",
        &test_models::slow_features_model(),
    )?;
    write(&out, "wide_image.onnx", &test_models::wide_image_model(64))?;
    write(
        &out,
        "heavy_image.onnx",
        &test_models::heavy_image_model(32, 4096),
    )?;
    write(
        &out,
        "external_data.onnx",
        &test_models::external_data_model("global/1260"),
    )?;
    // Model files the loader must refuse (security_models.sql).
    write(
        &out,
        "ort_format_features.onnx",
        &test_models::ort_format_features_model(),
    )?;
    write(
        &out,
        "nms_features.onnx",
        &test_models::nms_features_model(),
    )?;
    write(
        &out,
        "runtime_matmul_features.onnx",
        &test_models::runtime_matmul_features_model(),
    )?;

    let total: u64 = std::fs::read_dir(&out)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("wrote {} ({total} bytes)", out.display());
    Ok(())
}
