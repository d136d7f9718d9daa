//! RGB image buffers and PNG input/output.
//!
//! The composer writes PNG (lossless, so the recorded foreground areas stay exact in the saved
//! file) and reads them back here. Other formats (the JPEGs of user datasets) are decoded by the
//! shared preprocessing code in `ics_encoder`, which the feature extractor uses; this module only
//! needs PNG and keeps the dependency to the `png` crate.

use anyhow::{bail, Context, Result};
use png::{BitDepth, ColorType, Compression, Transformations};
use rayon::prelude::*;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// An 8-bit RGB image, row-major, 3 bytes a pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// Wraps a buffer, checking its length is `width * height * 3`.
    pub fn new(width: u32, height: u32, data: Vec<u8>) -> Result<RgbImage> {
        let want = width as usize * height as usize * 3;
        if data.len() != want {
            bail!(
                "RGB buffer of {} bytes does not match {width}x{height}x3 = {want}",
                data.len()
            );
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    /// Replicates a grayscale buffer into the three channels.
    pub fn from_gray(width: u32, height: u32, gray: &[u8]) -> Result<RgbImage> {
        if gray.len() != width as usize * height as usize {
            bail!(
                "grayscale buffer of {} bytes does not match {width}x{height}",
                gray.len()
            );
        }
        let data = gray.iter().flat_map(|&v| [v, v, v]).collect();
        RgbImage::new(width, height, data)
    }

    /// The pixel at (x, y) as [r, g, b].
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
}

/// Encodes an 8-bit grayscale buffer as PNG: RGB (gray replicated, what image backbones expect)
/// or single-channel. Fast compression: the composer writes tens of thousands of these, and the
/// fdeflate path is several times faster than zlib levels for a modest size cost.
pub fn encode_gray_png(width: u32, height: u32, gray: &[u8], rgb: bool) -> Result<Vec<u8>> {
    if gray.len() != width as usize * height as usize {
        bail!(
            "grayscale buffer of {} bytes does not match {width}x{height}",
            gray.len()
        );
    }
    let mut out = Vec::with_capacity(gray.len() / 2 + 128);
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_depth(BitDepth::Eight);
        enc.set_compression(Compression::Fast);
        if rgb {
            enc.set_color(ColorType::Rgb);
            let data: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v]).collect();
            let mut w = enc.write_header()?;
            w.write_image_data(&data)?;
            w.finish()?;
        } else {
            enc.set_color(ColorType::Grayscale);
            let mut w = enc.write_header()?;
            w.write_image_data(gray)?;
            w.finish()?;
        }
    }
    Ok(out)
}

/// Reads a PNG file as 8-bit RGB (grayscale is replicated, alpha dropped, palettes and 16-bit
/// samples normalised to 8 bits). The error names the file.
pub fn read_png_rgb(path: &Path) -> Result<RgbImage> {
    decode_png_rgb(path).with_context(|| format!("cannot read image {}", path.display()))
}

fn decode_png_rgb(path: &Path) -> Result<RgbImage> {
    let file = File::open(path)?;
    let mut dec = png::Decoder::new(BufReader::new(file));
    dec.set_transformations(Transformations::normalize_to_color8());
    let mut reader = dec.read_info()?;
    let size = reader
        .output_buffer_size()
        .context("PNG dimensions overflow")?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf)?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width, info.height);
    let n = w as usize * h as usize;
    let data = match info.color_type {
        ColorType::Rgb => buf,
        ColorType::Rgba => buf
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        ColorType::Grayscale => buf.iter().flat_map(|&v| [v, v, v]).collect(),
        ColorType::GrayscaleAlpha => buf.chunks_exact(2).flat_map(|p| [p[0]; 3]).collect(),
        ColorType::Indexed => bail!("palette not expanded"),
    };
    if data.len() != n * 3 {
        bail!("decoded {} bytes for a {w}x{h} image", data.len());
    }
    RgbImage::new(w, h, data)
}

/// Loads images `root/path` for each path as RGB, in parallel, in the given order. The first
/// unreadable file fails the whole load with its name.
pub fn load_rgb_images(root: &Path, paths: &[PathBuf]) -> Result<Vec<RgbImage>> {
    paths
        .par_iter()
        .map(|p| read_png_rgb(&root.join(p)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;

    #[test]
    fn png_round_trips_gray_and_rgb() {
        let dir = TempDir::new("png");
        let (w, h) = (5u32, 3u32);
        let gray: Vec<u8> = (0..15).map(|i| (i * 17) as u8).collect();
        for rgb in [true, false] {
            let bytes = encode_gray_png(w, h, &gray, rgb).unwrap();
            let path = dir.write(&format!("x{rgb}.png"), &bytes);
            let img = read_png_rgb(&path).unwrap();
            assert_eq!((img.width, img.height), (w, h));
            for y in 0..h {
                for x in 0..w {
                    let v = gray[(y * w + x) as usize];
                    assert_eq!(img.pixel(x, y), [v, v, v]);
                }
            }
        }
    }

    #[test]
    fn unreadable_image_error_names_the_file() {
        let dir = TempDir::new("png-bad");
        let path = dir.write("broken.png", b"not a png at all");
        let err = format!("{:#}", read_png_rgb(&path).unwrap_err());
        assert!(err.contains("broken.png"), "{err}");
        let err = format!(
            "{:#}",
            load_rgb_images(dir.path(), &[PathBuf::from("absent.png")]).unwrap_err()
        );
        assert!(err.contains("absent.png"), "{err}");
    }

    #[test]
    fn buffer_length_is_checked() {
        assert!(RgbImage::new(2, 2, vec![0; 11]).is_err());
        assert!(encode_gray_png(2, 2, &[0; 3], true).is_err());
        let img = RgbImage::from_gray(2, 1, &[7, 9]).unwrap();
        assert_eq!(img.data, vec![7, 7, 7, 9, 9, 9]);
    }
}
