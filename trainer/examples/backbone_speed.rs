//! Feature-extraction speed of the imported EfficientNet-Lite0 (a measurement, not a check; it
//! was an `#[ignore]`d test): batches of 32, 2 intra-op threads, at 128 and 224 px. Run it in
//! release from the repository root (the photos and weights are read from the offline data
//! folder, see `ics_train::data::offline_data_file`):
//!
//!     cargo run --release -p ics-train --example backbone_speed

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use ics_train::backbone::features::{preprocess_batch, EncodedImages, Extractor};
use ics_train::backbone::Backbone;
use ics_train::data::offline_data_file;

fn main() -> Result<()> {
    let read = |n: &str| {
        let p = offline_data_file(n);
        std::fs::read(&p).with_context(|| format!("{} (run scripts/setup.sh)", p.display()))
    };
    let photos = [read("chelsea.png")?, read("coffee.png")?];
    let (batch, batches, threads) = (32, 4, 2);
    let images = EncodedImages(
        photos
            .iter()
            .cycle()
            .take(batch * batches)
            .cloned()
            .collect(),
    );
    let pth = offline_data_file("efficientnet-lite0-57934424.pth");
    for size in [128u32, 224] {
        let t = Instant::now();
        let bb = Backbone::import_lite0(&pth, size)?;
        let import_s = t.elapsed().as_secs_f64();
        let mut ex = Extractor::new(&bb, threads)?;
        let warm = preprocess_batch(&images, 0..batch, &bb.preprocess, u64::MAX)?;
        ex.run(&warm, batch)?;
        let (mut pre, mut inf) = (0.0, 0.0);
        for b in 0..batches {
            let t0 = Instant::now();
            let x = preprocess_batch(
                &images,
                b * batch..(b + 1) * batch,
                &bb.preprocess,
                u64::MAX,
            )?;
            let t1 = Instant::now();
            let (d, _) = ex.run(&x, batch)?;
            ensure!(d == 1280, "Lite0 features have {d} values, not 1280");
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
    Ok(())
}
