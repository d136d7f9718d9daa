//! A backbone from any ONNX file (`--backbone file.onnx --feature-output name`): interface
//! checks, intermediate values exposed as outputs, and batched extraction through ONNX Runtime
//! matching a hand computation.

use ics_encoder::decode::RgbImage;
use ics_encoder::preprocess::{Preprocess, ResizeMode};
use ics_train::backbone::features::{ImageSource, Pixels};
use ics_train::backbone::{extract_features, Backbone, FeatureOptions};
use ics_train::onnx::save_model;
use ics_train::onnx::toy::toy_backbone;
use sha2::Sha256;

/// Five 4x4 images; image i has channel c everywhere equal to 10 * i + c.
struct Flat;

impl ImageSource for Flat {
    fn len(&self) -> usize {
        5
    }
    fn load(&self, i: usize) -> anyhow::Result<Pixels<'_>> {
        let px = [10 * i as u8, 10 * i as u8 + 1, 10 * i as u8 + 2];
        Ok(Pixels::Rgb(std::borrow::Cow::Owned(RgbImage {
            width: 4,
            height: 4,
            data: px.iter().cycle().take(48).copied().collect(),
        })))
    }
    fn fingerprint(&self, i: usize, h: &mut Sha256) -> anyhow::Result<()> {
        sha2::Digest::update(h, [i as u8]);
        Ok(())
    }
}

#[test]
fn foreign_onnx_backbone() {
    let dir = std::env::temp_dir().join(format!("ics-backbone-onnx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("toy.onnx");
    save_model(&toy_backbone(4), &path).unwrap();
    let p = Preprocess {
        size: 4,
        resize: ResizeMode::Stretch,
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    assert!(Backbone::from_onnx_file(&path, "missing", p).is_err());
    let wrong_size = Preprocess { size: 8, ..p };
    assert!(Backbone::from_onnx_file(&path, "pooled", wrong_size).is_err());

    let bb = Backbone::from_onnx_file(&path, "pooled", p).unwrap();
    assert_eq!(bb.input_name, "input");
    assert_eq!(bb.description, "toy.onnx:pooled");
    // The intermediate value became a graph output so ONNX Runtime can return it.
    assert!(bb
        .model()
        .graph()
        .unwrap()
        .outputs()
        .iter()
        .any(|o| o.name == "pooled"));

    let opts = FeatureOptions {
        batch_size: 2, // 5 images: batches of 2, 2, 1
        intra_threads: 1,
        progress: false,
        ..Default::default()
    };
    let got = extract_features(&bb, &Flat, &opts).unwrap();
    assert_eq!(got.features.dim(), (5, 3));
    for i in 0..5 {
        for c in 0..3 {
            assert_eq!(got.features[[i, c]], (10 * i + c) as f32);
        }
    }

    // A feature value that is not one vector per image is refused.
    let maps = Backbone::from_onnx_file(&path, "act", p).unwrap();
    let err = extract_features(&maps, &Flat, &opts).unwrap_err();
    assert!(
        format!("{err:#}").contains("not one vector per image"),
        "{err:#}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
