//! Training-image augmentation: a random crop (the image shifted by up to 1/8 of its side in
//! each direction, edges replicated: a pad-and-crop without a border of zeros) and a
//! horizontal flip with probability 1/2, on the preprocessed `3 x S x S` input.
//!
//! The draws of image `i` in epoch `e` depend only on the seed, `e` and `i` (not on the batch
//! or the order images come in), so a run resumed from a checkpoint sees exactly the
//! augmentations the unbroken run saw.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::ics::config::{rng, Stream};

/// One image's augmentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    /// Output pixel (y, x) reads input (y + dy, x + dx), clamped to the image.
    pub dy: i64,
    pub dx: i64,
    pub flip: bool,
}

/// Random words reserved per (epoch, image): far more than the three draws use.
const WORDS_PER_DRAW: u128 = 64;

/// The augmentation of image `index` (of `images`) in `epoch` for images of side `size`.
pub fn draw(seed: u64, epoch: usize, index: usize, images: usize, size: usize) -> Draw {
    let mut r: ChaCha8Rng = rng(seed, Stream::Augment);
    let slot = (epoch as u128) * (images as u128) + index as u128;
    r.set_word_pos(slot * WORDS_PER_DRAW);
    let m = (size / 8) as i64;
    Draw {
        dy: r.gen_range(-m..=m),
        dx: r.gen_range(-m..=m),
        flip: r.gen_bool(0.5),
    }
}

/// Applies `d` to one preprocessed image (`3 x size x size`, planar) in place.
pub fn apply(image: &mut [f32], size: usize, d: Draw) {
    assert_eq!(image.len(), 3 * size * size, "3 x {size} x {size} values");
    if d == (Draw {
        dy: 0,
        dx: 0,
        flip: false,
    }) {
        return;
    }
    let last = size as i64 - 1;
    let source = image.to_vec();
    for c in 0..3 {
        let plane = &source[c * size * size..(c + 1) * size * size];
        let out = &mut image[c * size * size..(c + 1) * size * size];
        for y in 0..size {
            let sy = (y as i64 + d.dy).clamp(0, last) as usize;
            for x in 0..size {
                let cx = if d.flip { size - 1 - x } else { x };
                let sx = (cx as i64 + d.dx).clamp(0, last) as usize;
                out[y * size + x] = plane[sy * size + sx];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_depend_only_on_seed_epoch_and_image() {
        let a = draw(1, 2, 3, 10, 128);
        assert_eq!(a, draw(1, 2, 3, 10, 128));
        let all: Vec<Draw> = (0..10)
            .flat_map(|e| (0..10).map(move |i| draw(1, e, i, 10, 128)))
            .collect();
        assert!(all.iter().all(|d| d.dx.abs() <= 16 && d.dy.abs() <= 16));
        assert!(all.iter().any(|d| d.flip) && all.iter().any(|d| !d.flip));
        assert!(all.iter().any(|d| d.dx != 0));
        let distinct: std::collections::HashSet<_> =
            all.iter().map(|d| (d.dx, d.dy, d.flip)).collect();
        assert!(
            distinct.len() > 50,
            "{} distinct draws of 100",
            distinct.len()
        );
        assert_ne!(draw(2, 2, 3, 10, 128), a);
    }

    #[test]
    fn shift_and_flip_move_pixels() {
        // 3 x 4 x 4, value = 100c + 10y + x.
        let size = 4;
        let img: Vec<f32> = (0..3 * 16)
            .map(|i| (100 * (i / 16) + 10 * ((i % 16) / 4) + i % 4) as f32)
            .collect();
        let mut flipped = img.clone();
        apply(
            &mut flipped,
            size,
            Draw {
                dy: 0,
                dx: 0,
                flip: true,
            },
        );
        assert_eq!(&flipped[..4], &[3.0, 2.0, 1.0, 0.0]);
        let mut shifted = img.clone();
        apply(
            &mut shifted,
            size,
            Draw {
                dy: 1,
                dx: -1,
                flip: false,
            },
        );
        // Row 0 reads row 1; column 0 reads column -1, clamped to 0.
        assert_eq!(&shifted[..4], &[10.0, 10.0, 11.0, 12.0]);
        // Last row reads row 4, clamped to 3; channel 2 the same way.
        assert_eq!(&shifted[12..16], &[30.0, 30.0, 31.0, 32.0]);
        assert_eq!(shifted[32], 210.0);
        let mut same = img.clone();
        apply(
            &mut same,
            size,
            Draw {
                dy: 0,
                dx: 0,
                flip: false,
            },
        );
        assert_eq!(same, img);
    }
}
