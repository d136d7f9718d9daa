//! Test helpers of the composer: a synthetic source pool and small options.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::options::ComposeOptions;
use crate::data::source::{
    SourceInstance, SourceOrigin, Sources, NUM_SOURCE_CLASSES, SOURCE_PIXELS, SOURCE_SIDE,
};

/// A synthetic pool: per class, ellipses of random size and intensity in every origin
/// (Fashion origins for classes 0-9, MNIST for 10-19), plus one blank instance per origin
/// that the partition must drop.
pub(super) fn synthetic_sources(per_origin_class: usize) -> Sources {
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut out = Vec::new();
    for class in 0..NUM_SOURCE_CLASSES as u8 {
        let origins: &[SourceOrigin] = if class < 10 {
            &[SourceOrigin::FashionTrain, SourceOrigin::FashionTest]
        } else {
            &[SourceOrigin::Mnist5k]
        };
        for &origin in origins {
            for j in 0..=per_origin_class {
                let mut pixels = [0u8; SOURCE_PIXELS];
                if j > 0 {
                    let (cx, cy) = (rng.gen_range(10.0..18.0), rng.gen_range(10.0..18.0));
                    let (rx, ry): (f64, f64) = (rng.gen_range(3.0..10.0), rng.gen_range(3.0..10.0));
                    for y in 0..SOURCE_SIDE {
                        for x in 0..SOURCE_SIDE {
                            let d = ((x as f64 - cx) / rx).powi(2) + ((y as f64 - cy) / ry).powi(2);
                            if d <= 1.0 {
                                pixels[y * SOURCE_SIDE + x] = rng.gen_range(1..=255);
                            }
                        }
                    }
                }
                out.push(SourceInstance {
                    id: out.len() as u32,
                    class,
                    origin,
                    pixels,
                });
            }
        }
    }
    Sources::from_instances(out).unwrap()
}

pub(super) fn tiny_opts() -> ComposeOptions {
    ComposeOptions {
        train: 40,
        query: 12,
        database: 30,
        seed: 5,
        ..ComposeOptions::small()
    }
}
