//! Image preprocessing shared exactly by the trainer (feature extraction) and the extension's
//! `ics_encode`: the same bytes must give the same network input in both, or codes computed at
//! training time and at query time drift apart.
//!
//! The pipeline, in order:
//! 1. **Decode** ([`crate::decode`]) JPEG, PNG, WebP, BMP or the first frame of a GIF (format
//!    from the magic bytes). The header is read first and images over a pixel limit are
//!    rejected *before* the pixel data is decoded (decompression bombs).
//! 2. **EXIF orientation** (JPEG, PNG `eXIf`, WebP) is applied, so a portrait photo stored
//!    sideways is seen upright.
//! 3. **RGB**: grey is replicated, alpha is discarded (not composited; what PIL's
//!    `convert("RGB")` does), 16-bit samples are scaled to 8 bits.
//! 4. **Resize** to `size` x `size` with [`ResizeMode`]:
//!    - `ShorterSideCenterCrop`: scale so that the shorter side is `size` and the longer side is
//!      `round(long * size / short)` (half up), then take the centred `size` x `size` window,
//!      offset `floor((resized - size) / 2)` on each axis;
//!    - `Stretch`: scale each axis to `size` independently.
//!
//!    The filter is [`crate::resize`]'s triangle filter; only the cropped window is computed,
//!    which gives exactly the values of "resize, then crop", and values stay `f32` until
//!    normalised (no rounding to 8 bits in between, unlike PIL).
//! 5. **Normalise** each channel: `(v - mean[c]) / std[c]` with `v` in 0..=255
//!    (EfficientNet-Lite: mean 127, std 128).
//! 6. **Layout** NCHW for one image: the R plane, then G, then B, each row-major.

use std::fmt;

use crate::decode::decode_rgb;
use crate::image_error::PreprocessError;
use crate::resize::{axis_taps, FILTER};

/// Largest accepted output side: far beyond any CNN input, small enough to bound memory.
pub const MAX_SIZE: u32 = 4096;

/// Version of this pipeline's numerics; part of [`Preprocess::describe`] so that feature
/// caches are invalidated if the algorithm ever changes.
pub const PIPELINE_VERSION: u32 = 1;

/// How the image is brought to `size` x `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResizeMode {
    /// Shorter side to `size`, then the centred square (keeps the aspect ratio; torchvision's
    /// `Resize(size)` + `CenterCrop(size)`).
    ShorterSideCenterCrop,
    /// Both axes to `size` independently (distorts the aspect ratio, keeps the whole image).
    Stretch,
}

impl ResizeMode {
    /// The contract's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            ResizeMode::ShorterSideCenterCrop => "shorter-side-center-crop",
            ResizeMode::Stretch => "stretch",
        }
    }

    /// Inverse of [`ResizeMode::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "shorter-side-center-crop" => Some(ResizeMode::ShorterSideCenterCrop),
            "stretch" => Some(ResizeMode::Stretch),
            _ => None,
        }
    }
}

impl fmt::Display for ResizeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The preprocessing parameters a model was trained with (part of its contract).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preprocess {
    /// Output side in pixels (the network input is `3 x size x size`).
    pub size: u32,
    pub resize: ResizeMode,
    /// Per-channel mean, R G B, on the 0..=255 scale.
    pub mean: [f32; 3],
    /// Per-channel standard deviation, R G B, on the 0..=255 scale; positive.
    pub std: [f32; 3],
}

impl Preprocess {
    /// EfficientNet-Lite's preprocessing: `(x - 127) / 128`, shorter side + centre crop.
    pub fn efficientnet_lite(size: u32) -> Self {
        Preprocess {
            size,
            resize: ResizeMode::ShorterSideCenterCrop,
            mean: [127.0; 3],
            std: [128.0; 3],
        }
    }

    /// Checks the parameters: `1 <= size <= MAX_SIZE`, finite means, finite positive stds.
    pub fn validate(&self) -> Result<(), PreprocessError> {
        if self.size == 0 || self.size > MAX_SIZE {
            return Err(PreprocessError::InvalidConfig(format!(
                "size {} is out of range 1..={MAX_SIZE}",
                self.size
            )));
        }
        if let Some(m) = self.mean.iter().find(|m| !m.is_finite()) {
            return Err(PreprocessError::InvalidConfig(format!(
                "mean {m} is not finite"
            )));
        }
        if let Some(s) = self.std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(PreprocessError::InvalidConfig(format!(
                "std {s} is not a finite positive number"
            )));
        }
        Ok(())
    }

    /// Number of `f32` values of one preprocessed image (`3 * size * size`).
    pub fn output_len(&self) -> usize {
        3 * self.size as usize * self.size as usize
    }

    /// A canonical one-line description of everything that determines the output (including
    /// [`PIPELINE_VERSION`] and the filter): hash it to key caches of computed features.
    pub fn describe(&self) -> String {
        format!(
            "ics-preprocess v{PIPELINE_VERSION} size={} resize={} filter={FILTER} \
             mean={},{},{} std={},{},{} layout=NCHW channels=RGB",
            self.size,
            self.resize,
            self.mean[0],
            self.mean[1],
            self.mean[2],
            self.std[0],
            self.std[1],
            self.std[2]
        )
    }
}

/// Size of the resized (uncropped) image and the crop offsets, for an input of `w` x `h`.
fn resize_plan(w: u32, h: u32, size: u32, mode: ResizeMode) -> (usize, usize, usize, usize) {
    let (w64, h64, s64) = (u64::from(w), u64::from(h), u64::from(size));
    let (rw, rh) = match mode {
        ResizeMode::Stretch => (s64, s64),
        ResizeMode::ShorterSideCenterCrop => {
            // round(long * size / short), half up, in exact integer arithmetic.
            let scaled = |long: u64, short: u64| ((2 * long * s64 + short) / (2 * short)).max(s64);
            if w64 <= h64 {
                (s64, scaled(h64, w64))
            } else {
                (scaled(w64, h64), s64)
            }
        }
    };
    let (ox, oy) = ((rw - s64) / 2, (rh - s64) / 2);
    (rw as usize, rh as usize, ox as usize, oy as usize)
}

/// Resizes and normalises an RGB image (row-major, 3 bytes per pixel) into `out`
/// (`p.output_len()` values, NCHW).
pub fn preprocess_rgb(
    width: u32,
    height: u32,
    rgb: &[u8],
    p: &Preprocess,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    p.validate()?;
    if width == 0 || height == 0 {
        return Err(PreprocessError::InvalidConfig(format!(
            "image of {width}x{height} pixels is empty"
        )));
    }
    let (w, h) = (width as usize, height as usize);
    if rgb.len() != w * h * 3 {
        return Err(PreprocessError::InvalidConfig(format!(
            "RGB buffer has {} bytes, {width}x{height} needs {}",
            rgb.len(),
            w * h * 3
        )));
    }
    if out.len() != p.output_len() {
        return Err(PreprocessError::InvalidConfig(format!(
            "output buffer has {} values, size {} needs {}",
            out.len(),
            p.size,
            p.output_len()
        )));
    }
    let s = p.size as usize;
    let (rw, rh, ox, oy) = resize_plan(width, height, p.size, p.resize);
    let xtaps = axis_taps(w, rw, ox, s);
    let ytaps = axis_taps(h, rh, oy, s);

    // Horizontal pass over only the input rows the vertical pass reads.
    let row_lo = ytaps.iter().map(|t| t.start).min().unwrap_or(0);
    let row_hi = ytaps
        .iter()
        .map(|t| t.start + t.weights.len())
        .max()
        .unwrap_or(0);
    let mut tmp = vec![0f32; (row_hi - row_lo) * s * 3];
    for y in row_lo..row_hi {
        let src = &rgb[y * w * 3..(y + 1) * w * 3];
        let dst = &mut tmp[(y - row_lo) * s * 3..(y - row_lo + 1) * s * 3];
        for (x, t) in xtaps.iter().enumerate() {
            let mut acc = [0f32; 3];
            for (k, &wt) in t.weights.iter().enumerate() {
                let px = &src[(t.start + k) * 3..(t.start + k) * 3 + 3];
                acc[0] += wt * f32::from(px[0]);
                acc[1] += wt * f32::from(px[1]);
                acc[2] += wt * f32::from(px[2]);
            }
            dst[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    }

    // Vertical pass, normalisation and the planar layout in one sweep.
    let plane = s * s;
    for (y, t) in ytaps.iter().enumerate() {
        for x in 0..s {
            let mut acc = [0f32; 3];
            for (k, &wt) in t.weights.iter().enumerate() {
                let row = t.start + k - row_lo;
                let v = &tmp[(row * s + x) * 3..(row * s + x) * 3 + 3];
                acc[0] += wt * v[0];
                acc[1] += wt * v[1];
                acc[2] += wt * v[2];
            }
            for c in 0..3 {
                out[c * plane + y * s + x] = (acc[c] - p.mean[c]) / p.std[c];
            }
        }
    }
    Ok(())
}

/// Decodes and preprocesses encoded image bytes into `out` (`p.output_len()` values, NCHW).
pub fn preprocess_into(
    bytes: &[u8],
    p: &Preprocess,
    max_pixels: u64,
    out: &mut [f32],
) -> Result<(), PreprocessError> {
    p.validate()?;
    let img = decode_rgb(bytes, max_pixels)?;
    preprocess_rgb(img.width, img.height, &img.data, p, out)
}

/// Decodes and preprocesses encoded image bytes into a new NCHW vector.
pub fn preprocess(
    bytes: &[u8],
    p: &Preprocess,
    max_pixels: u64,
) -> Result<Vec<f32>, PreprocessError> {
    p.validate()?;
    let mut out = vec![0f32; p.output_len()];
    preprocess_into(bytes, p, max_pixels, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::tests::png;
    use crate::decode::DEFAULT_MAX_PIXELS;

    /// No normalisation: outputs are the resampled 0..=255 values.
    fn stretch(size: u32) -> Preprocess {
        Preprocess {
            size,
            resize: ResizeMode::Stretch,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }

    fn crop(size: u32) -> Preprocess {
        Preprocess {
            resize: ResizeMode::ShorterSideCenterCrop,
            ..stretch(size)
        }
    }

    /// An RGB image whose three channels all hold `grey` (row-major values).
    fn grey(w: u32, h: u32, grey: &[u8]) -> Vec<u8> {
        assert_eq!(grey.len(), (w * h) as usize);
        grey.iter().flat_map(|&g| [g, g, g]).collect()
    }

    fn run(w: u32, h: u32, rgb: &[u8], p: &Preprocess) -> Vec<f32> {
        let mut out = vec![0.0; p.output_len()];
        preprocess_rgb(w, h, rgb, p, &mut out).unwrap();
        out
    }

    fn assert_close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn same_size_is_identity_and_layout_is_nchw() {
        // 2x2 pixels: (10,20,30) (40,50,60) / (70,80,90) (100,110,120).
        let rgb: Vec<u8> = (1..=12).map(|v| v * 10).collect();
        let out = run(2, 2, &rgb, &stretch(2));
        assert_close(
            &out,
            &[
                10., 40., 70., 100., 20., 50., 80., 110., 30., 60., 90., 120.,
            ],
        );
        assert_eq!(out, run(2, 2, &rgb, &crop(2)));
    }

    #[test]
    fn normalisation_is_per_channel() {
        let p = Preprocess {
            size: 1,
            resize: ResizeMode::Stretch,
            mean: [127.0, 127.0, 10.0],
            std: [128.0, 128.0, 2.0],
        };
        assert_close(&run(1, 1, &[255, 127, 0], &p), &[1.0, 0.0, -5.0]);
        let lite = Preprocess::efficientnet_lite(1);
        assert_close(&run(1, 1, &[255, 127, 0], &lite), &[1.0, 0.0, -0.9921875]);
    }

    /// Upscaling 2 -> 4: centres at 0.25, 0.75, 1.25, 1.75 on input centres 0.5, 1.5 give
    /// 0, 0.25*100, 0.75*100, 100 (edges clamp); the single input row is replicated.
    #[test]
    fn upscale_by_hand() {
        let out = run(2, 1, &grey(2, 1, &[0, 100]), &stretch(4));
        for row in out[..16].chunks(4) {
            assert_close(row, &[0.0, 25.0, 75.0, 100.0]);
        }
        assert_eq!(out[..16], out[16..32]);
    }

    /// Downscaling 4 -> 2 (scale 2, support 2): output 0 reads inputs 0,1,2 with weights
    /// .75,.75,.25 (/1.75); output 1 reads 1,2,3 with .25,.75,.75.
    #[test]
    fn downscale_by_hand() {
        let out = run(4, 1, &grey(4, 1, &[0, 40, 80, 120]), &stretch(2));
        let a = (0.0 * 0.75 + 40.0 * 0.75 + 80.0 * 0.25) / 1.75;
        let b = (40.0 * 0.25 + 80.0 * 0.75 + 120.0 * 0.75) / 1.75;
        assert_close(&out[..4], &[a, b, a, b]);
        assert!((a - 28.571_43).abs() < 1e-4 && (b - 91.428_57).abs() < 1e-4);
    }

    #[test]
    fn centre_crop_without_resampling() {
        // 4x2, size 2: the shorter side is already 2, the crop takes columns 1 and 2.
        let out = run(
            4,
            2,
            &grey(4, 2, &[10, 20, 30, 40, 50, 60, 70, 80]),
            &crop(2),
        );
        assert_close(&out[..4], &[20.0, 30.0, 60.0, 70.0]);
        // 5 columns: offset floor(3 / 2) = 1. Portrait 1x3 to 1: rows offset 1.
        let out = run(
            5,
            2,
            &grey(5, 2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            &crop(2),
        );
        assert_close(&out[..4], &[2.0, 3.0, 7.0, 8.0]);
        let out = run(1, 3, &grey(1, 3, &[5, 6, 7]), &crop(1));
        assert_close(&out, &[6.0, 6.0, 6.0]);
    }

    /// 6x3 to 2: the long side becomes round(6*2/3) = 4, crop offset 1. Output column 1 of 4
    /// has centre 2.25, support 1.5, inputs 1,2,3 with weights .5, 5/6, 1/6 (sum 1.5).
    #[test]
    fn centre_crop_with_resampling_by_hand() {
        let row: Vec<u8> = (0..6).map(|x| 10 * x).collect();
        let img: Vec<u8> = row.iter().chain(&row).chain(&row).copied().collect();
        let out = run(6, 3, &grey(6, 3, &img), &crop(2));
        let c1 = (10.0 * 0.5 + 20.0 * 5.0 / 6.0 + 30.0 / 6.0) / 1.5;
        // Column 2 has centre 3.75: inputs 2,3,4 with weights 1/6, 5/6, .5: the mirror image.
        let c2 = (20.0 / 6.0 + 30.0 * 5.0 / 6.0 + 40.0 * 0.5) / 1.5;
        assert_close(&out[..4], &[c1, c2, c1, c2]);
        assert!((c1 - 17.777_779).abs() < 1e-4);
    }

    #[test]
    fn resize_plan_rounds_half_up_and_centres() {
        assert_eq!(
            resize_plan(451, 300, 224, ResizeMode::ShorterSideCenterCrop),
            (337, 224, 56, 0)
        );
        assert_eq!(
            resize_plan(400, 600, 224, ResizeMode::ShorterSideCenterCrop),
            (224, 336, 0, 56)
        );
        // 3 * 2 / 4 = 1.5 rounds to 2.
        assert_eq!(
            resize_plan(3, 4, 2, ResizeMode::ShorterSideCenterCrop),
            (2, 3, 0, 0)
        );
        assert_eq!(
            resize_plan(451, 300, 224, ResizeMode::Stretch),
            (224, 224, 0, 0)
        );
    }

    #[test]
    fn constant_image_stays_constant() {
        let p = Preprocess::efficientnet_lite(16);
        let rgb: Vec<u8> = (0..37 * 23).flat_map(|_| [200u8, 100, 0]).collect();
        let out = run(37, 23, &rgb, &p);
        let plane = 16 * 16;
        assert!(out[..plane].iter().all(|v| (v - 73.0 / 128.0).abs() < 1e-5));
        assert!(out[plane..2 * plane]
            .iter()
            .all(|v| (v + 27.0 / 128.0).abs() < 1e-5));
        assert!(out[2 * plane..]
            .iter()
            .all(|v| (v + 127.0 / 128.0).abs() < 1e-5));
    }

    #[test]
    fn encoded_png_matches_raw_pixels() {
        let rgb: Vec<u8> = (0..9 * 5 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let p = Preprocess::efficientnet_lite(4);
        let direct = run(9, 5, &rgb, &p);
        assert_eq!(
            preprocess(&png(9, 5, &rgb), &p, DEFAULT_MAX_PIXELS).unwrap(),
            direct
        );
    }

    #[test]
    fn invalid_parameters() {
        let ok = Preprocess::efficientnet_lite(2);
        for bad in [
            Preprocess { size: 0, ..ok },
            Preprocess {
                size: MAX_SIZE + 1,
                ..ok
            },
            Preprocess {
                std: [1.0, 0.0, 1.0],
                ..ok
            },
            Preprocess {
                std: [1.0, 1.0, f32::NAN],
                ..ok
            },
            Preprocess {
                mean: [f32::INFINITY, 0.0, 0.0],
                ..ok
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(PreprocessError::InvalidConfig(_))),
                "{bad:?}"
            );
            let mut out = vec![0.0; 12];
            assert!(preprocess_rgb(1, 1, &[0, 0, 0], &bad, &mut out).is_err());
        }
        let mut out = vec![0.0; 11];
        assert!(matches!(
            preprocess_rgb(1, 1, &[0, 0, 0], &ok, &mut out),
            Err(PreprocessError::InvalidConfig(_))
        ));
        let mut out = vec![0.0; 12];
        assert!(preprocess_rgb(2, 1, &[0, 0, 0], &ok, &mut out).is_err());
        assert!(preprocess_rgb(0, 1, &[], &ok, &mut out).is_err());
    }

    #[test]
    fn describe_changes_with_every_parameter() {
        let a = Preprocess::efficientnet_lite(224);
        let variants = [
            Preprocess { size: 128, ..a },
            Preprocess {
                resize: ResizeMode::Stretch,
                ..a
            },
            Preprocess {
                mean: [127.0, 127.0, 127.5],
                ..a
            },
            Preprocess {
                std: [128.0, 64.0, 128.0],
                ..a
            },
        ];
        for v in variants {
            assert_ne!(v.describe(), a.describe());
        }
        assert!(a.describe().contains("filter=triangle"));
        for m in [ResizeMode::Stretch, ResizeMode::ShorterSideCenterCrop] {
            assert_eq!(ResizeMode::parse(m.as_str()), Some(m));
        }
        assert_eq!(ResizeMode::parse("bicubic"), None);
    }
}
