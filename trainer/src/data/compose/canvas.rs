//! Drawing one canvas: 1-3 instances of distinct classes, each tight-cropped, resized
//! bilinearly to a random longer side and placed without box overlap; the exact pixel and box
//! area of each instance is recorded (the rules are in the [module docs](super)). Each canvas
//! has its own ChaCha8 stream (seed, split, index).

use anyhow::{bail, ensure, Result};
use ics_encoder::resize::resize_u8;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::options::{ComposeOptions, Split};
use super::partition::SourcePools;
use crate::data::source::{Sources, NUM_SOURCE_CLASSES, SOURCE_SIDE};

/// Layout redraws at full size range before the range starts shrinking.
pub(super) const FULL_RANGE_ATTEMPTS: u32 = 16;
/// Layout redraws in all before the row fallback.
const MAX_ATTEMPTS: u32 = 64;
/// Random positions tried per box within one layout attempt.
const POSITION_TRIES: u32 = 50;

/// One instance as drawn on a canvas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedInstance {
    pub source_id: u32,
    pub class: u8,
    /// Box: top-left corner and size in canvas pixels.
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Pixels of the box with drawn value > 0.
    pub pixel_area: u32,
}

impl PlacedInstance {
    pub fn box_area(&self) -> u32 {
        self.w * self.h
    }
}

/// A composed canvas in memory: grayscale pixels and its instances (ascending class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canvas {
    pub side: u32,
    pub pixels: Vec<u8>,
    pub instances: Vec<PlacedInstance>,
    /// Layout attempts used (1 = first try; > 16 means the size range was shrunk).
    pub attempts: u32,
}

/// A tight crop of a source instance.
struct Crop {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

fn tight_crop(pixels: &[u8]) -> Crop {
    let s = SOURCE_SIDE;
    let (mut x0, mut y0, mut x1, mut y1) = (s, s, 0, 0);
    for y in 0..s {
        for x in 0..s {
            if pixels[y * s + x] > 0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
    }
    // Pools exclude blank instances; the full tile keeps this total anyway.
    if x1 == 0 {
        (x0, y0, x1, y1) = (0, 0, s, s);
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let mut px = Vec::with_capacity(w * h);
    for y in y0..y1 {
        px.extend_from_slice(&pixels[y * s + x0..y * s + x1]);
    }
    Crop { w, h, px }
}

/// Box size for a crop whose longer side becomes `size`.
fn scaled_dims(crop: &Crop, size: u32) -> (u32, u32) {
    let long = crop.w.max(crop.h) as f64;
    let short = |d: usize| ((d as f64 * size as f64 / long).round() as u32).clamp(1, size);
    if crop.w >= crop.h {
        (size, short(crop.h))
    } else {
        (short(crop.w), size)
    }
}

/// The crop resized with the encoder's one resampler (`ics_encoder::resize`: bilinear with
/// half-pixel centres and clamped edges when enlarging, antialiased when shrinking).
fn resize_bilinear(crop: &Crop, w: u32, h: u32) -> Vec<u8> {
    resize_u8(&crop.px, 1, crop.w as u32, crop.h as u32, w, h)
}

pub(super) fn disjoint(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32), gap: u32) -> bool {
    let (ax, ay, aw, ah) = a;
    let (bx, by, bw, bh) = b;
    ax + aw + gap <= bx || bx + bw + gap <= ax || ay + ah + gap <= by || by + bh + gap <= ay
}

/// Random non-overlapping positions for boxes of the given sizes, largest first; None if one
/// does not fit within [`POSITION_TRIES`].
fn place(
    rng: &mut ChaCha8Rng,
    dims: &[(u32, u32)],
    side: u32,
    gap: u32,
) -> Option<Vec<(u32, u32)>> {
    let mut order: Vec<usize> = (0..dims.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(dims[i].0 * dims[i].1));
    let mut placed: Vec<(u32, u32, u32, u32)> = Vec::with_capacity(dims.len());
    let mut pos = vec![(0, 0); dims.len()];
    for &i in &order {
        let (w, h) = dims[i];
        let found = (0..POSITION_TRIES).find_map(|_| {
            let b = (
                rng.gen_range(0..=side - w),
                rng.gen_range(0..=side - h),
                w,
                h,
            );
            placed.iter().all(|&p| disjoint(p, b, gap)).then_some(b)
        })?;
        placed.push(found);
        pos[i] = (found.0, found.1);
    }
    Some(pos)
}

fn canvas_rng(seed: u64, split: Split, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((split.index() as u64) << 48) | index as u64);
    rng
}

/// Composes canvas `index` of `split` (deterministic in seed, split and index).
pub fn compose_canvas(
    sources: &Sources,
    pools: &SourcePools,
    opts: &ComposeOptions,
    split: Split,
    index: usize,
) -> Result<Canvas> {
    let mut rng = canvas_rng(opts.seed, split, index);
    let pool = pools.get(split);
    let k = rng.gen_range(opts.min_instances..=opts.max_instances);
    let mut classes = rand::seq::index::sample(&mut rng, NUM_SOURCE_CLASSES, k).into_vec();
    classes.sort_unstable();
    let mut chosen = Vec::with_capacity(k);
    for &c in &classes {
        let ids = &pool[c];
        ensure!(
            !ids.is_empty(),
            "split {} has no source instance of class {c}",
            split.name()
        );
        let id = ids[rng.gen_range(0..ids.len())];
        chosen.push((id, tight_crop(&sources.get(id).pixels)));
    }
    let side = opts.canvas;
    for attempt in 1..=MAX_ATTEMPTS + 1 {
        let (dims, pos) = if attempt <= MAX_ATTEMPTS {
            // Past the first tries, shrink the upper size bound geometrically towards min_size.
            let shrink = 0.85f64.powi(attempt.saturating_sub(FULL_RANGE_ATTEMPTS) as i32);
            let hi =
                opts.min_size + ((opts.max_size - opts.min_size) as f64 * shrink).round() as u32;
            let dims: Vec<(u32, u32)> = chosen
                .iter()
                .map(|(_, crop)| scaled_dims(crop, rng.gen_range(opts.min_size..=hi)))
                .collect();
            match place(&mut rng, &dims, side, opts.gap) {
                Some(pos) => (dims, pos),
                None => continue,
            }
        } else {
            // Fallback: a row at min_size; validate() guarantees it fits.
            let dims: Vec<(u32, u32)> = chosen
                .iter()
                .map(|(_, crop)| scaled_dims(crop, opts.min_size))
                .collect();
            let mut x = 0;
            let pos = dims
                .iter()
                .map(|&(w, _)| {
                    let p = (x, 0);
                    x += w + opts.gap;
                    p
                })
                .collect();
            (dims, pos)
        };
        let mut pixels = vec![0u8; (side * side) as usize];
        let mut instances = Vec::with_capacity(k);
        for (((id, crop), &(w, h)), &(x, y)) in chosen.iter().zip(&dims).zip(&pos) {
            let patch = resize_bilinear(crop, w, h);
            for (r, row) in patch.chunks_exact(w as usize).enumerate() {
                let o = ((y as usize + r) * side as usize) + x as usize;
                pixels[o..o + w as usize].copy_from_slice(row);
            }
            instances.push(PlacedInstance {
                source_id: *id,
                class: sources.get(*id).class,
                x,
                y,
                w,
                h,
                pixel_area: patch.iter().filter(|&&v| v > 0).count() as u32,
            });
        }
        if instances.iter().all(|i| i.pixel_area > 0) {
            return Ok(Canvas {
                side,
                pixels,
                instances,
                attempts: attempt,
            });
        }
    }
    bail!(
        "split {} canvas {index}: an instance draws no pixel even at min_size",
        split.name()
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::synthetic_sources;
    use super::*;
    use crate::data::source::SOURCE_PIXELS;

    #[test]
    fn area_benchmark_has_two_or_three_classes_and_wide_scales() {
        let sources = synthetic_sources(3);
        let opts = ComposeOptions::area_benchmark();
        let pools =
            SourcePools::partition(&sources, opts.query_fraction, opts.mnist_train_fraction);
        let (mut small, mut large) = (false, false);
        for i in 0..60 {
            let c = compose_canvas(&sources, &pools, &opts, Split::Database, i).unwrap();
            assert!((2..=3).contains(&c.instances.len()));
            for p in &c.instances {
                let long = p.w.max(p.h);
                small |= long < 40;
                large |= long > 80;
                let drawn = (p.y..p.y + p.h)
                    .flat_map(|y| (p.x..p.x + p.w).map(move |x| (x, y)))
                    .filter(|&(x, y)| c.pixels[(y * c.side + x) as usize] > 0)
                    .count() as u32;
                assert_eq!(drawn, p.pixel_area);
            }
        }
        assert!(small && large, "scale spread: small {small} large {large}");
    }

    #[test]
    fn resize_keeps_constant_images_and_aspect() {
        let crop = Crop {
            w: 4,
            h: 2,
            px: vec![200; 8],
        };
        assert_eq!(scaled_dims(&crop, 40), (40, 20));
        assert!(resize_bilinear(&crop, 40, 20).iter().all(|&v| v == 200));
        let tall = Crop {
            w: 1,
            h: 28,
            px: vec![9; 28],
        };
        assert_eq!(scaled_dims(&tall, 14), (1, 14));
        // A 2x2 checker upscaled 2x: corners keep their values, centre blends.
        let chk = Crop {
            w: 2,
            h: 2,
            px: vec![0, 100, 100, 0],
        };
        let r = resize_bilinear(&chk, 4, 4);
        assert_eq!((r[0], r[3], r[12], r[15]), (0, 100, 100, 0));
        assert_eq!(r[5], 38); // (0.75*0.75*0 + 2*0.25*0.75*100 + 0.25*0.25*0) = 37.5 -> 38
        let c = tight_crop(&{
            let mut p = [0u8; SOURCE_PIXELS];
            p[5 * 28 + 7] = 1;
            p[9 * 28 + 3] = 2;
            p
        });
        assert_eq!((c.w, c.h), (5, 5));
        assert_eq!(c.px[4], 1);
        assert_eq!(c.px[20], 2);
    }
}
