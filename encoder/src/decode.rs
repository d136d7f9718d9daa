//! Decoding image bytes to an upright 8-bit RGB image, and the checks that come before:
//! the format from the magic bytes, the structure of formats whose decoders quietly fill a
//! cut-off image with grey (JPEG, WebP), and the pixel limit from the header alone (nothing
//! is allocated for an image that is refused). Errors of the `image` crate are mapped to
//! [`PreprocessError`] here, so no caller depends on that crate's types.
//!
//! Steps 1-3 of the pipeline described in [`crate::preprocess`]: decode (JPEG, PNG, WebP, BMP,
//! the first frame of a GIF), EXIF orientation, RGB (grey replicated, alpha dropped, 16-bit
//! scaled to 8).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use crate::image_error::PreprocessError;

/// Default pixel limit (width x height) of a decoded image: 50 megapixels, larger than any
/// camera photo people index, small enough that a decoded RGBA image stays under 200 MB.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;

/// A decoded, upright, 8-bit RGB image: `data` is row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

fn format_name(format: ImageFormat) -> String {
    format!("{format:?}").to_uppercase()
}

/// Maps the `image` crate's errors to ours, so callers never depend on that crate's types.
fn map_image_error(e: ImageError, format: &str) -> PreprocessError {
    let format = format.to_string();
    match e {
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            PreprocessError::Truncated { format }
        }
        ImageError::Unsupported(u) => PreprocessError::UnsupportedFormat {
            format,
            detail: u.to_string(),
        },
        ImageError::Limits(l) => PreprocessError::LimitExceeded {
            format,
            detail: l.to_string(),
        },
        other => {
            let detail = other.to_string();
            // Decoders report a premature end in their own words; a truncated file is the
            // common case worth naming precisely.
            let lower = detail.to_lowercase();
            if lower.contains("unexpected end")
                || lower.contains("unexpected eof")
                || lower.contains("unexpectedeof")
                || lower.contains("end of file")
            {
                PreprocessError::Truncated { format }
            } else {
                PreprocessError::Corrupt { format, detail }
            }
        }
    }
}

/// Checks the format and the structure of `bytes` and opens a decoder that has read only the
/// header: (decoder, format name, width, height). Images over `max_pixels` are refused here.
fn open_decoder(
    bytes: &[u8],
    max_pixels: u64,
) -> Result<(impl ImageDecoder + '_, String, u32, u32), PreprocessError> {
    if bytes.is_empty() {
        return Err(PreprocessError::Empty);
    }
    let format = image::guess_format(bytes).map_err(|_| PreprocessError::UnknownFormat)?;
    let name = format_name(format);
    if !matches!(
        format,
        ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Gif
    ) {
        return Err(PreprocessError::UnsupportedFormat {
            format: name,
            detail: "only JPEG, PNG, WebP, BMP and GIF are decoded".into(),
        });
    }
    // Decoders that quietly fill a cut-off image with grey get a structural check first.
    let complete = match format {
        ImageFormat::Jpeg => match jpeg_structure(bytes) {
            JpegStructure::Complete => true,
            JpegStructure::Truncated => false,
            JpegStructure::TooLittleData {
                width,
                height,
                blocks,
                data_bytes,
            } => {
                return Err(PreprocessError::Corrupt {
                    format: name,
                    detail: format!(
                        "the header declares {width}x{height} pixels ({blocks} blocks), but the compressed data has only {data_bytes} bytes, fewer than one bit per block"
                    ),
                })
            }
        },
        ImageFormat::WebP => riff_is_complete(bytes),
        _ => true,
    };
    if !complete {
        return Err(PreprocessError::Truncated { format: name });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // The image crate's allocation cap (512 MiB by default) must not undercut our pixel limit:
    // 8 bytes per pixel covers RGBA16, plus room for metadata.
    let mut limits = Limits::default();
    let needed = max_pixels.saturating_mul(8).saturating_add(64 << 20);
    limits.max_alloc = Some(needed.max(512 << 20));
    reader.limits(limits);
    // into_decoder parses only the header.
    let decoder = reader
        .into_decoder()
        .map_err(|e| map_image_error(e, &name))?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(PreprocessError::TooManyPixels {
            width,
            height,
            max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(PreprocessError::Corrupt {
            format: name,
            detail: format!("zero-sized image ({width}x{height})"),
        });
    }
    Ok((decoder, name, width, height))
}

/// Decodes `bytes` to an upright RGB image, rejecting images over `max_pixels` pixels from the
/// header alone.
pub fn decode_rgb(bytes: &[u8], max_pixels: u64) -> Result<RgbImage, PreprocessError> {
    let (mut decoder, name, _, _) = open_decoder(bytes, max_pixels)?;
    // A malformed EXIF block must not make an otherwise good image unreadable: no rotation.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| map_image_error(e, &name))?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width(),
        height: rgb.height(),
        data: rgb.into_raw(),
    })
}

/// An upper bound of the bytes [`decode_rgb`] holds at once for `bytes`, from the header alone
/// (nothing is decoded): the decoded pixels in the file's colour type, a rotated copy, and the
/// 8-bit RGB result. Lets a caller refuse or schedule an image before allocating for it.
pub fn decode_memory_bound(bytes: &[u8], max_pixels: u64) -> Result<u64, PreprocessError> {
    let (decoder, name, width, height) = open_decoder(bytes, max_pixels)?;
    let bpp = u64::from(decoder.color_type().bytes_per_pixel());
    let mut bound = u64::from(width) * u64::from(height) * (2 * bpp + 3);
    // A GIF's first frame has dimensions of its own, which may exceed the logical screen: the
    // decoder reads it into an RGBA buffer of the frame's size (through an indexed buffer of
    // one byte per pixel) before placing it on the screen.
    if name == "GIF" {
        if let Some((fw, fh)) = gif_first_frame(bytes) {
            let pixels = u64::from(fw) * u64::from(fh);
            if pixels > max_pixels {
                return Err(PreprocessError::TooManyPixels {
                    width: u32::from(fw),
                    height: u32::from(fh),
                    max_pixels,
                });
            }
            // (plus the LZW decoder's tables and buffers)
            bound += pixels * 5 + (256 << 10);
        }
    }
    Ok(bound)
}

/// The dimensions in the first image descriptor of a GIF (after the logical screen, its colour
/// table and any extension blocks), or None when the file ends or is malformed before one.
fn gif_first_frame(b: &[u8]) -> Option<(u16, u16)> {
    let flags = *b.get(10)?;
    let mut i = 13;
    if flags & 0x80 != 0 {
        i += 3 << ((flags & 7) + 1);
    }
    loop {
        match *b.get(i)? {
            0x2C => {
                let d = b.get(i + 5..i + 9)?;
                return Some((
                    u16::from_le_bytes([d[0], d[1]]),
                    u16::from_le_bytes([d[2], d[3]]),
                ));
            }
            0x21 => {
                // Extension: label, then sub-blocks until an empty one.
                i += 2;
                loop {
                    let len = usize::from(*b.get(i)?);
                    i += 1 + len;
                    if len == 0 {
                        break;
                    }
                }
            }
            _ => return None,
        }
    }
}

/// What a walk over a JPEG's marker structure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JpegStructure {
    /// The segments reach the end-of-image marker and the compressed data can hold the
    /// declared image.
    Complete,
    /// The file ends before its end-of-image marker.
    Truncated,
    /// The frame header declares `width` x `height` pixels in `blocks` 8x8 blocks, but the
    /// compressed data has only `data_bytes` bytes: fewer than the one bit every block needs.
    TooLittleData {
        width: u32,
        height: u32,
        blocks: u64,
        data_bytes: u64,
    },
}

/// Walks a JPEG's marker structure: segments by their length, entropy-coded data up to the
/// next marker. The decoder accepts a file cut anywhere, or a frame header that declares far
/// more pixels than the data holds, and fills the missing rows with grey (after allocating the
/// declared size); this walk finds both. Data after the end marker (e.g. a motion photo's
/// video) is ignored.
///
/// The data bound: with Huffman coding (every JPEG the decoder reads) each 8x8 block of each
/// component codes at least its DC coefficient, and a Huffman code is at least one bit, so the
/// entropy-coded bytes of a real image are at least (blocks of all components) / 8.
fn jpeg_structure(b: &[u8]) -> JpegStructure {
    let mut i = 2; // after SOI
    let mut frame: Option<(u32, u32, u64)> = None; // width, height, blocks
    let mut data_bytes: u64 = 0;
    loop {
        while i < b.len() && b[i] != 0xFF {
            i += 1;
        }
        while i < b.len() && b[i] == 0xFF {
            i += 1; // fill bytes
        }
        let Some(&marker) = b.get(i) else {
            return JpegStructure::Truncated;
        };
        i += 1;
        match marker {
            0xD9 => {
                return match frame {
                    Some((width, height, blocks)) if data_bytes.saturating_mul(8) < blocks => {
                        JpegStructure::TooLittleData {
                            width,
                            height,
                            blocks,
                            data_bytes,
                        }
                    }
                    _ => JpegStructure::Complete,
                };
            }
            0x01 | 0xD0..=0xD7 => continue, // markers without a length
            _ => {
                let Some(len) = b.get(i..i + 2) else {
                    return JpegStructure::Truncated;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                if len < 2 || i + len > b.len() {
                    return JpegStructure::Truncated;
                }
                // Huffman-coded frame headers (arithmetic coding, C9-CF, is not decoded).
                if matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7) && frame.is_none() {
                    frame = jpeg_frame_blocks(&b[i + 2..i + len]);
                }
                i += len;
                if marker == 0xDA {
                    // Start of scan: entropy-coded data until a marker other than a stuffed
                    // zero or a restart marker.
                    let start = i;
                    loop {
                        if i + 1 >= b.len() {
                            return JpegStructure::Truncated;
                        }
                        if b[i] == 0xFF && b[i + 1] != 0 && !(0xD0..=0xD7).contains(&b[i + 1]) {
                            break;
                        }
                        i += 1;
                    }
                    data_bytes += (i - start) as u64;
                }
            }
        }
    }
}

/// (width, height, 8x8 blocks over all components) from a frame header's payload, or None
/// when the height is deferred to a DNL marker or the header is malformed.
fn jpeg_frame_blocks(sof: &[u8]) -> Option<(u32, u32, u64)> {
    let height = u32::from(u16::from_be_bytes([*sof.get(1)?, *sof.get(2)?]));
    let width = u32::from(u16::from_be_bytes([*sof.get(3)?, *sof.get(4)?]));
    let n = usize::from(*sof.get(5)?);
    let comps = sof.get(6..6 + 3 * n)?;
    let factors: Vec<(u32, u32)> = comps
        .chunks_exact(3)
        .map(|c| (u32::from(c[1] >> 4), u32::from(c[1] & 15)))
        .collect();
    let hmax = factors.iter().map(|f| f.0).max()?;
    let vmax = factors.iter().map(|f| f.1).max()?;
    if height == 0 || width == 0 || hmax == 0 || vmax == 0 {
        return None;
    }
    let blocks = factors
        .iter()
        .map(|&(h, v)| {
            let w = (width * h).div_ceil(hmax);
            let hh = (height * v).div_ceil(vmax);
            u64::from(w.div_ceil(8)) * u64::from(hh.div_ceil(8))
        })
        .sum();
    Some((width, height, blocks))
}

/// Whether a RIFF (WebP) file holds the number of bytes its header announces.
fn riff_is_complete(b: &[u8]) -> bool {
    match b.get(4..8) {
        Some(size) => {
            let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
            b.len() >= size.saturating_add(8)
        }
        None => false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ExtendedColorType, ImageEncoder};

    pub(crate) fn png(w: u32, h: u32, rgb: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        PngEncoder::new(&mut buf)
            .write_image(rgb, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        buf
    }

    #[test]
    fn other_formats_decode_to_the_same_pixels() {
        use image::codecs::{bmp::BmpEncoder, gif::GifEncoder, webp::WebPEncoder};
        // Colours a GIF palette holds exactly.
        let rgb: Vec<u8> = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]
            .iter()
            .cycle()
            .take(6)
            .flatten()
            .copied()
            .collect();
        let mut bmp = Vec::new();
        BmpEncoder::new(&mut bmp)
            .write_image(&rgb, 3, 2, ExtendedColorType::Rgb8)
            .unwrap();
        let mut webp = Vec::new();
        WebPEncoder::new_lossless(&mut webp)
            .write_image(&rgb, 3, 2, ExtendedColorType::Rgb8)
            .unwrap();
        let mut gif = Vec::new();
        {
            let rgba: Vec<u8> = rgb
                .chunks(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
            let frame = image::Frame::new(image::RgbaImage::from_raw(3, 2, rgba).unwrap());
            let mut enc = GifEncoder::new(&mut gif);
            enc.encode_frames([frame.clone(), frame]).unwrap();
        }
        for (name, bytes) in [("bmp", bmp), ("webp", webp), ("gif", gif)] {
            let img = decode_rgb(&bytes, DEFAULT_MAX_PIXELS).unwrap();
            assert_eq!((img.width, img.height), (3, 2), "{name}");
            assert_eq!(img.data, rgb, "{name}");
        }
    }

    #[test]
    fn alpha_is_dropped_and_grey_replicated() {
        let mut buf = Vec::new();
        PngEncoder::new(&mut buf)
            .write_image(
                &[10, 20, 30, 0, 40, 50, 60, 255],
                2,
                1,
                ExtendedColorType::Rgba8,
            )
            .unwrap();
        assert_eq!(
            decode_rgb(&buf, 100).unwrap().data,
            vec![10, 20, 30, 40, 50, 60]
        );
        let mut buf = Vec::new();
        PngEncoder::new(&mut buf)
            .write_image(&[7, 9], 2, 1, ExtendedColorType::L8)
            .unwrap();
        assert_eq!(decode_rgb(&buf, 100).unwrap().data, vec![7, 7, 7, 9, 9, 9]);
    }

    /// A big-endian TIFF block with one IFD entry: Orientation (0x0112, SHORT) = `o`.
    fn exif_tiff(o: u8) -> Vec<u8> {
        let mut t = b"MM\0\x2a\0\0\0\x08\0\x01".to_vec();
        t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, o, 0, 0]);
        t.extend_from_slice(&[0, 0, 0, 0]);
        t
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// Inserts an `eXIf` chunk right after IHDR (8-byte signature + 25-byte IHDR chunk).
    fn png_with_orientation(w: u32, h: u32, rgb: &[u8], o: u8) -> Vec<u8> {
        let plain = png(w, h, rgb);
        let body = exif_tiff(o);
        let mut chunk = (body.len() as u32).to_be_bytes().to_vec();
        let mut typed = b"eXIf".to_vec();
        typed.extend_from_slice(&body);
        chunk.extend_from_slice(&typed);
        chunk.extend_from_slice(&crc32(&typed).to_be_bytes());
        let mut out = plain[..33].to_vec();
        out.extend_from_slice(&chunk);
        out.extend_from_slice(&plain[33..]);
        out
    }

    /// All eight EXIF orientations on a 3x2 image `a b c / d e f`, checked against the EXIF
    /// definition of what the viewer must show.
    #[test]
    fn exif_orientations_in_png() {
        let px = |v: u8| [v, v, v];
        let stored: Vec<u8> = [1, 2, 3, 4, 5, 6].iter().flat_map(|&v| px(v)).collect();
        let cases: [(u8, (u32, u32), [u8; 6]); 8] = [
            (1, (3, 2), [1, 2, 3, 4, 5, 6]),
            (2, (3, 2), [3, 2, 1, 6, 5, 4]),
            (3, (3, 2), [6, 5, 4, 3, 2, 1]),
            (4, (3, 2), [4, 5, 6, 1, 2, 3]),
            (5, (2, 3), [1, 4, 2, 5, 3, 6]),
            (6, (2, 3), [4, 1, 5, 2, 6, 3]),
            (7, (2, 3), [6, 3, 5, 2, 4, 1]),
            (8, (2, 3), [3, 6, 2, 5, 1, 4]),
        ];
        for (o, dims, want) in cases {
            let img = decode_rgb(&png_with_orientation(3, 2, &stored, o), 100).unwrap();
            assert_eq!((img.width, img.height), dims, "orientation {o}");
            let got: Vec<u8> = img.data.chunks(3).map(|p| p[0]).collect();
            assert_eq!(got, want, "orientation {o}");
        }
    }

    /// A real JPEG with an APP1 Exif segment saying "rotate 90 clockwise": a 16x8 image, red on
    /// the left half, blue on the right, is seen 8x16 with red on top.
    #[test]
    fn exif_orientation_in_jpeg() {
        use image::codecs::jpeg::JpegEncoder;
        let rgb: Vec<u8> = (0..8)
            .flat_map(|_| (0..16).flat_map(|x| if x < 8 { [255, 0, 0] } else { [0, 0, 255] }))
            .collect();
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 100)
            .write_image(&rgb, 16, 8, ExtendedColorType::Rgb8)
            .unwrap();
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend_from_slice(&exif_tiff(6));
        let mut app1 = vec![0xff, 0xe1];
        app1.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        app1.extend_from_slice(&payload);
        let mut file = jpeg[..2].to_vec();
        file.extend_from_slice(&app1);
        file.extend_from_slice(&jpeg[2..]);

        let img = decode_rgb(&file, 1000).unwrap();
        assert_eq!((img.width, img.height), (8, 16));
        let at = |x: usize, y: usize| &img.data[(y * 8 + x) * 3..(y * 8 + x) * 3 + 3];
        for (x, y) in [(0, 0), (7, 6), (3, 3)] {
            assert!(at(x, y)[0] > 200 && at(x, y)[2] < 60, "{:?}", at(x, y));
        }
        for (x, y) in [(0, 15), (7, 9), (4, 12)] {
            assert!(at(x, y)[2] > 200 && at(x, y)[0] < 60, "{:?}", at(x, y));
        }
        // Without the segment, the same file stays landscape.
        assert_eq!(decode_rgb(&jpeg, 1000).unwrap().width, 16);
    }

    #[test]
    fn empty_input() {
        assert_eq!(decode_rgb(&[], 100), Err(PreprocessError::Empty));
    }

    #[test]
    fn unknown_and_unsupported_formats() {
        assert_eq!(
            decode_rgb(b"hello, this is not an image", 100),
            Err(PreprocessError::UnknownFormat)
        );
        // A TIFF signature: recognised, not decoded by this build.
        let err = decode_rgb(b"II*\0\x08\0\0\0\0\0\0\0\0\0\0\0", 100).unwrap_err();
        assert!(
            matches!(&err, PreprocessError::UnsupportedFormat { format, .. } if format == "TIFF"),
            "{err:?}"
        );
        assert!(err.to_string().contains("TIFF"));
    }

    #[test]
    fn corrupt_data() {
        // A valid PNG signature followed by an IHDR whose CRC is wrong.
        let mut bytes = png(2, 2, &[0; 12]);
        bytes[29] ^= 0xff;
        let err = decode_rgb(&bytes, 100).unwrap_err();
        assert!(
            matches!(err, PreprocessError::Corrupt { ref format, .. } if format == "PNG"),
            "{err:?}"
        );
    }

    fn encode_all(w: u32, h: u32, rgb: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        use image::codecs::{
            bmp::BmpEncoder, gif::GifEncoder, jpeg::JpegEncoder, webp::WebPEncoder,
        };
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(rgb, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        let mut bmp = Vec::new();
        BmpEncoder::new(&mut bmp)
            .write_image(rgb, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        let mut webp = Vec::new();
        WebPEncoder::new_lossless(&mut webp)
            .write_image(rgb, w, h, ExtendedColorType::Rgb8)
            .unwrap();
        let mut gif = Vec::new();
        {
            let rgba: Vec<u8> = rgb
                .chunks(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect();
            let frame = image::Frame::new(image::RgbaImage::from_raw(w, h, rgba).unwrap());
            GifEncoder::new(&mut gif).encode_frame(frame).unwrap();
        }
        vec![
            ("PNG", png(w, h, rgb)),
            ("JPEG", jpeg),
            ("BMP", bmp),
            ("WEBP", webp),
            ("GIF", gif),
        ]
    }

    #[test]
    fn truncated_data() {
        let rgb: Vec<u8> = (0..64 * 64 * 3).map(|i| (i * 31 % 251) as u8).collect();
        for (format, bytes) in encode_all(64, 64, &rgb) {
            assert!(decode_rgb(&bytes, 1 << 20).is_ok(), "{format}");
            // Cut in the pixel data (the last bytes may be only an end marker, which the
            // decoders rightly do not need).
            for cut in [bytes.len() / 2, bytes.len() * 9 / 10] {
                match decode_rgb(&bytes[..cut], 1 << 20) {
                    Err(err) => assert_eq!(
                        err,
                        PreprocessError::Truncated {
                            format: format.into()
                        },
                        "{format} cut at {cut}: {err}"
                    ),
                    Ok(_) => panic!("{format} cut at {cut} of {} decoded", bytes.len()),
                }
            }
            // Cut inside the header: never an image.
            assert!(decode_rgb(&bytes[..20], 1 << 20).is_err(), "{format}");
        }
    }

    #[test]
    fn decode_memory_bound_reads_only_the_header() {
        let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 13 % 256) as u8).collect();
        let png16 = png(16, 16, &rgb);
        // RGB8: 3 bytes decoded, 3 for a rotated copy, 3 for the result.
        assert_eq!(decode_memory_bound(&png16, 1000), Ok(16 * 16 * 9));
        assert!(matches!(
            decode_memory_bound(&png16, 100),
            Err(PreprocessError::TooManyPixels { .. })
        ));
        assert_eq!(decode_memory_bound(b"", 100), Err(PreprocessError::Empty));
    }

    #[test]
    fn jpeg_with_trailing_data_is_complete() {
        let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 13 % 256) as u8).collect();
        let (_, mut jpeg) = encode_all(16, 16, &rgb).swap_remove(1);
        assert_eq!(jpeg_structure(&jpeg), JpegStructure::Complete);
        jpeg.extend_from_slice(b"trailing video or padding");
        assert!(decode_rgb(&jpeg, 1000).is_ok());
    }

    /// A JPEG whose frame header was rewritten from 128x128 to 7000x7000 (the marker
    /// structure stays complete): refused before the decoder allocates the declared size.
    #[test]
    fn jpeg_declaring_more_pixels_than_its_data_holds() {
        let rgb: Vec<u8> = (0..128 * 128 * 3).map(|i| (i * 7 % 253) as u8).collect();
        let (_, jpeg) = encode_all(128, 128, &rgb).swap_remove(1);
        assert!(decode_rgb(&jpeg, DEFAULT_MAX_PIXELS).is_ok());
        let sof = (0..jpeg.len() - 1)
            .find(|&i| jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0)
            .expect("a baseline frame header");
        let mut lying = jpeg.clone();
        lying[sof + 5..sof + 7].copy_from_slice(&7000u16.to_be_bytes()); // height
        lying[sof + 7..sof + 9].copy_from_slice(&7000u16.to_be_bytes()); // width
        match decode_rgb(&lying, DEFAULT_MAX_PIXELS) {
            Err(PreprocessError::Corrupt { format, detail }) => {
                assert_eq!(format, "JPEG");
                assert!(detail.contains("7000x7000"), "{detail}");
            }
            other => panic!("expected a corrupt-image error, got {other:?}"),
        }
        // The bound is a true lower bound: a flat image, the cheapest to code, passes.
        let flat = vec![128u8; 1024 * 1024 * 3];
        let mut flat_jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut flat_jpeg, 90)
            .write_image(&flat, 1024, 1024, ExtendedColorType::Rgb8)
            .unwrap();
        assert_eq!(jpeg_structure(&flat_jpeg), JpegStructure::Complete);
        // Blocks of a 7000x7000 greyscale frame header (precision, height, width, 1 component
        // with sampling 1x1).
        assert_eq!(
            jpeg_frame_blocks(&[8, 0x1b, 0x58, 0x1b, 0x58, 1, 1, 0x11, 0]),
            Some((7000, 7000, 765_625))
        );
    }

    /// A PNG header claiming 100000 x 100000 pixels and no pixel data at all: rejected from the
    /// header, with the claimed dimensions, before anything is allocated.
    #[test]
    fn too_many_pixels_from_the_header() {
        let mut bytes = png(1, 1, &[0, 0, 0]);
        bytes[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let err = decode_rgb(&bytes, DEFAULT_MAX_PIXELS).unwrap_err();
        assert_eq!(
            err,
            PreprocessError::TooManyPixels {
                width: 100_000,
                height: 100_000,
                max_pixels: DEFAULT_MAX_PIXELS
            }
        );
        // The limit is inclusive: a 3x2 image passes a 6-pixel limit and fails a 5-pixel one.
        let six = png(3, 2, &[0; 18]);
        assert!(decode_rgb(&six, 6).is_ok());
        assert!(matches!(
            decode_rgb(&six, 5),
            Err(PreprocessError::TooManyPixels {
                width: 3,
                height: 2,
                max_pixels: 5
            })
        ));
    }
}
