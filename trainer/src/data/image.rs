//! PNG output of the composer's canvases: lossless, so the recorded foreground areas stay
//! exact in the saved file. Every image is read back by the shared decoder of `ics_encoder`
//! (`ics_encoder::decode`), as `ics_encode` reads it.

use anyhow::{bail, Result};
use png::{BitDepth, ColorType, Compression};

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

#[cfg(test)]
mod tests {
    use super::*;
    use ics_encoder::decode::{decode_rgb, DEFAULT_MAX_PIXELS};

    #[test]
    fn png_round_trips_gray_and_rgb() {
        let (w, h) = (5u32, 3u32);
        let gray: Vec<u8> = (0..15).map(|i| (i * 17) as u8).collect();
        let want: Vec<u8> = gray.iter().flat_map(|&v| [v, v, v]).collect();
        for rgb in [true, false] {
            let bytes = encode_gray_png(w, h, &gray, rgb).unwrap();
            let img = decode_rgb(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!((img.width, img.height), (w, h));
            assert_eq!(img.data, want);
        }
    }

    #[test]
    fn buffer_length_is_checked() {
        assert!(encode_gray_png(2, 2, &[0; 3], true).is_err());
        assert!(encode_gray_png(2, 2, &[0; 5], false).is_err());
    }
}
