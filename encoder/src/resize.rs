//! The one image resampler of ics_hash: the separable triangle (bilinear) filter with
//! antialiasing, defined as PIL's `Image.resize(..., BILINEAR)`. On an axis of `n` input
//! pixels resized to `m`, `scale = n / m`, `fs = max(scale, 1)`; output pixel `i` has centre
//! `c = (i + 0.5) * scale` and reads input pixels `j` in `[floor(c - fs + 0.5),
//! floor(c + fs + 0.5))` clipped to the image, with weights `max(0, 1 - |(j + 0.5 - c) / fs|)`
//! normalised to sum 1. Enlarging, this is plain bilinear interpolation with half-pixel centres
//! and clamped edges; shrinking, it averages over the footprint (no aliasing).
//!
//! [`crate::preprocess`] uses the taps directly (fused with normalisation, computing only the
//! cropped window); [`resize_u8`] is the same filter for 8-bit images (the trainer's composed
//! canvases and contact sheets).

/// Name of the resampling filter, as recorded in the model contract.
pub const FILTER: &str = "triangle";

/// One output pixel's footprint on an input axis: `weights[k]` applies to input `start + k`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Taps {
    pub(crate) start: usize,
    pub(crate) weights: Vec<f32>,
}

/// Triangle-filter taps for outputs `first..first + count` of an axis of `in_size` pixels
/// resized to `out_size` (see the module docs for the exact definition).
pub(crate) fn axis_taps(in_size: usize, out_size: usize, first: usize, count: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let fs = scale.max(1.0);
    (first..first + count)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let lo = ((centre - fs + 0.5).floor().max(0.0)) as usize;
            let hi = ((centre + fs + 0.5).floor() as usize).min(in_size);
            let raw: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 + 0.5 - centre) / fs).abs()).max(0.0))
                .collect();
            let sum: f64 = raw.iter().sum();
            Taps {
                start: lo,
                weights: raw.iter().map(|w| (w / sum) as f32).collect(),
            }
        })
        .collect()
}

/// Resizes an 8-bit image of `channels` interleaved channels (row-major) from `sw` x `sh` to
/// `dw` x `dh` with the triangle filter: rows first, then columns, `f32` in between, rounded
/// to the nearest value at the end.
pub fn resize_u8(src: &[u8], channels: usize, sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    assert_eq!(src.len(), sw * sh * channels, "source buffer size");
    if dw == 0 || dh == 0 {
        return Vec::new();
    }
    let xt = axis_taps(sw, dw, 0, dw);
    let yt = axis_taps(sh, dh, 0, dh);
    let mut tmp = vec![0f32; sh * dw * channels];
    for y in 0..sh {
        let row = &src[y * sw * channels..(y + 1) * sw * channels];
        for (x, t) in xt.iter().enumerate() {
            for c in 0..channels {
                tmp[(y * dw + x) * channels + c] = t
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| w * f32::from(row[(t.start + k) * channels + c]))
                    .sum();
            }
        }
    }
    let mut out = vec![0u8; dh * dw * channels];
    for (y, t) in yt.iter().enumerate() {
        for x in 0..dw {
            for c in 0..channels {
                let v: f32 = t
                    .weights
                    .iter()
                    .enumerate()
                    .map(|(k, &w)| w * tmp[((t.start + k) * dw + x) * channels + c])
                    .sum();
                out[(y * dw + x) * channels + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_are_normalised_and_in_bounds() {
        for (n, m) in [(1, 7), (7, 1), (451, 224), (224, 451), (4000, 128), (3, 3)] {
            for t in axis_taps(n, m, 0, m) {
                let sum: f32 = t.weights.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{n}->{m}: {sum}");
                assert!(t.start + t.weights.len() <= n);
                assert!(t.weights.iter().all(|&w| w >= 0.0));
            }
        }
    }

    #[test]
    fn resize_u8_enlarges_bilinearly_and_shrinks_by_averaging() {
        // Enlarging 2 -> 4: centres 0.25, 0.75, 1.25, 1.75 over inputs at 0.5, 1.5, edges clamp.
        assert_eq!(resize_u8(&[0, 100], 1, 2, 1, 4, 1), vec![0, 25, 75, 100]);
        // Shrinking 4 -> 2 averages each footprint (weights .75 .75 .25 and .25 .75 .75).
        let v = resize_u8(&[0, 0, 100, 100], 1, 4, 1, 2, 1);
        assert_eq!(v, vec![14, 86]);
        // Constant images stay constant, channels stay separate.
        let rgb: Vec<u8> = (0..5 * 3).flat_map(|_| [10u8, 200, 77]).collect();
        let r = resize_u8(&rgb, 3, 5, 3, 7, 2);
        assert_eq!(r.len(), 7 * 2 * 3);
        assert!(r.chunks(3).all(|p| p == [10, 200, 77]));
        assert!(resize_u8(&[1, 2], 1, 2, 1, 0, 0).is_empty());
    }
}
