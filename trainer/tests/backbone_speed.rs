//! Feature-extraction speed of the imported EfficientNet-Lite0 (a measurement, not a check):
//! batches of 32, 2 intra-op threads, at 128 and 224 px. Run it in release:
//!
//! `cargo test --release -p ics-train --test backbone_speed -- --ignored --nocapture`

use std::path::Path;
use std::time::Instant;

use ics_train::backbone::features::{preprocess_batch, EncodedImages, Extractor};
use ics_train::backbone::Backbone;

#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn lite0_extraction_speed() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/data");
    let read = |n: &str| {
        std::fs::read(data.join(n)).unwrap_or_else(|e| panic!("{n}: {e} (run scripts/setup.sh)"))
    };
    let photos = [read("chelsea.png"), read("coffee.png")];
    let (batch, batches, threads) = (32, 4, 2);
    let images = EncodedImages(
        photos
            .iter()
            .cycle()
            .take(batch * batches)
            .cloned()
            .collect(),
    );
    for size in [128u32, 224] {
        let t = Instant::now();
        let bb =
            Backbone::import_lite0(&data.join("efficientnet-lite0-57934424.pth"), size).unwrap();
        let import_s = t.elapsed().as_secs_f64();
        let mut ex = Extractor::new(&bb, threads).unwrap();
        let warm = preprocess_batch(&images, 0..batch, &bb.preprocess, u64::MAX).unwrap();
        ex.run(&warm, batch).unwrap();
        let (mut pre, mut inf) = (0.0, 0.0);
        for b in 0..batches {
            let t0 = Instant::now();
            let x = preprocess_batch(
                &images,
                b * batch..(b + 1) * batch,
                &bb.preprocess,
                u64::MAX,
            )
            .unwrap();
            let t1 = Instant::now();
            let (d, _) = ex.run(&x, batch).unwrap();
            assert_eq!(d, 1280);
            inf += t1.elapsed().as_secs_f64();
            pre += (t1 - t0).as_secs_f64();
        }
        let n = (batch * batches) as f64;
        eprintln!(
            "lite0 {size}px: import {import_s:.2} s; per image: inference {:.2} ms, preprocessing \
             {:.2} ms (451x300 / 400x600 PNG decode + resize, rayon), total {:.2} ms",
            1e3 * inf / n,
            1e3 * pre / n,
            1e3 * (inf + pre) / n
        );
    }
}
