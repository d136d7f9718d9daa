//! `ics-train sheet`: a contact sheet PNG of retrieval results, for a person to look at.
//!
//! The list is TSV, one tile a line, no header: `row<TAB>image_path<TAB>caption`. `row` is an
//! integer grouping tiles into rows (rows in order of first appearance, tiles in file order);
//! the first tile of a row is the query (blue border), the others its hits (thin grey
//! border). ` | ` in a caption is a line break. Blank lines and lines starting with `#` are
//! skipped. Relative image paths are taken from --root (default: the list file's folder).
//!
//! Images are decoded by `ics_encoder::preprocess` (JPEG, PNG, WebP, BMP, GIF; EXIF orientation
//! applied), fitted into `tile` x `tile` keeping their aspect (the encoder's one resampler,
//! `ics_encoder::resize`: triangle filter, antialiased when shrinking), letterboxed
//! on grey. Text uses the plot font ([`super::plots::init_font`]). Output: 8-bit RGB PNG.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, ensure, Context, Result};
use ics_encoder::decode::{decode_rgb, DEFAULT_MAX_PIXELS};
use ics_encoder::resize::resize_u8;
use plotters::prelude::*;
use rayon::prelude::*;

use super::plots::{init_font, write_rgb_png, FAMILY};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Tiles, one a line: `row<TAB>image_path<TAB>caption` (` | ` in a caption breaks the line).
    #[arg(long, value_name = "FILE")]
    pub list: PathBuf,
    /// The PNG to write.
    #[arg(long, value_name = "FILE.png")]
    pub out: PathBuf,
    /// Side of a tile's image area, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 128)]
    pub tile: u32,
    /// TrueType font for the text [default: DejaVu Sans of fonts-dejavu-core].
    #[arg(long, value_name = "FILE")]
    pub font: Option<PathBuf>,
    /// A title line at the top.
    #[arg(long, value_name = "TEXT")]
    pub title: Option<String>,
    /// Folder that the list's relative image paths are relative to [default: the list file's
    /// folder].
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

const MIN_TILE: u32 = 16;
const MAX_TILE: u32 = 1024;
/// Outer margin and the gap between tiles (room for the borders).
const MARGIN: u32 = 12;
const GAP: u32 = 12;
const QUERY_BORDER: u32 = 3;
const QUERY_COLOR: [u8; 3] = [31, 119, 180];
const HIT_COLOR: [u8; 3] = [150, 150, 150];
const LETTERBOX: [u8; 3] = [224, 224, 224];
const TITLE_PX: u32 = 20;

/// One line of the list.
struct Entry {
    line: usize,
    row: i64,
    path: PathBuf,
    caption: Vec<String>,
}

/// An image fitted into a tile (at most `tile` x `tile`), RGB.
struct Fitted {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(
        (MIN_TILE..=MAX_TILE).contains(&args.tile),
        "--tile must be between {MIN_TILE} and {MAX_TILE} pixels, not {}",
        args.tile
    );
    init_font(args.font.as_deref())?;
    let entries = read_list(&args.list, args.root.as_deref())?;
    let tile = args.tile;
    let fitted: Vec<Result<Fitted>> = entries
        .par_iter()
        .map(|e| load_tile(&args.list, e, tile))
        .collect();
    let fitted = fitted.into_iter().collect::<Result<Vec<_>>>()?;

    // Rows in order of first appearance; tiles (indices into entries) in file order.
    let mut rows: Vec<(i64, Vec<usize>)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        match rows.iter_mut().find(|(r, _)| *r == e.row) {
            Some((_, tiles)) => tiles.push(i),
            None => rows.push((e.row, vec![i])),
        }
    }
    let cols = rows.iter().map(|(_, t)| t.len()).max().unwrap_or(1) as u32;
    let lines = entries
        .iter()
        .map(|e| e.caption.len())
        .max()
        .unwrap_or(0)
        .max(1) as u32;

    let caption_px = (tile / 10).clamp(11, 18);
    let line_h = caption_px + 4;
    let cell_h = tile + 6 + lines * line_h;
    let title_h = if args.title.is_some() {
        TITLE_PX + 14
    } else {
        0
    };
    let width = 2 * MARGIN + cols * tile + (cols - 1) * GAP;
    let height = 2 * MARGIN + title_h + rows.len() as u32 * cell_h + (rows.len() as u32 - 1) * GAP;
    let mut buf = vec![255u8; (width as usize) * (height as usize) * 3];

    // Images and borders, straight into the buffer.
    let origin = |r: usize, c: usize| {
        (
            MARGIN + c as u32 * (tile + GAP),
            MARGIN + title_h + r as u32 * (cell_h + GAP),
        )
    };
    for (r, (_, tiles)) in rows.iter().enumerate() {
        for (c, &i) in tiles.iter().enumerate() {
            let (x, y) = origin(r, c);
            fill(&mut buf, width, x, y, tile, tile, LETTERBOX);
            let f = &fitted[i];
            blit(
                &mut buf,
                width,
                x + (tile - f.width) / 2,
                y + (tile - f.height) / 2,
                f,
            );
            if c == 0 {
                frame(&mut buf, width, x, y, tile, QUERY_BORDER, QUERY_COLOR);
            } else {
                frame(&mut buf, width, x, y, tile, 1, HIT_COLOR);
            }
        }
    }

    // Text.
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        let draw_err = |e: DrawingAreaErrorKind<_>| anyhow!("drawing the contact sheet: {e}");
        if let Some(title) = &args.title {
            let style = TextStyle::from((FAMILY, TITLE_PX).into_font()).color(&BLACK);
            let text = fit_text(&root, title, &style, width - 2 * MARGIN)?;
            root.draw_text(&text, &style, (MARGIN as i32, MARGIN as i32))
                .map_err(draw_err)?;
        }
        let style = TextStyle::from((FAMILY, caption_px).into_font()).color(&RGBColor(30, 30, 30));
        for (r, (_, tiles)) in rows.iter().enumerate() {
            for (c, &i) in tiles.iter().enumerate() {
                let (x, y) = origin(r, c);
                for (k, line) in entries[i].caption.iter().enumerate() {
                    let text = fit_text(&root, line, &style, tile)?;
                    let (tw, _) = root.estimate_text_size(&text, &style).map_err(draw_err)?;
                    let tx = x + tile.saturating_sub(tw) / 2;
                    let ty = y + tile + 6 + k as u32 * line_h;
                    root.draw_text(&text, &style, (tx as i32, ty as i32))
                        .map_err(draw_err)?;
                }
            }
        }
        root.present().map_err(draw_err)?;
    }
    write_rgb_png(&args.out, &buf, width, height)?;
    super::ui::log(format!(
        "wrote {} ({} rows, {} tiles, {width}x{height})",
        args.out.display(),
        rows.len(),
        entries.len()
    ));
    Ok(())
}

/// Parses the list; errors name the file and line.
fn read_list(list: &Path, root: Option<&Path>) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read the tile list {}", list.display()))?;
    let root = super::encode::list_root(list, root);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", list.display(), i + 1);
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.splitn(3, '\t');
        let row_field = fields.next().unwrap_or("").trim();
        let Some(path_field) = fields.next().map(str::trim).filter(|p| !p.is_empty()) else {
            bail!(
                "{}: expected `row<TAB>image_path<TAB>caption`, got {line:?}",
                at()
            );
        };
        let row: i64 = row_field.parse().map_err(|_| {
            anyhow!(
                "{}: the row {row_field:?} is not an integer (expected `row<TAB>image_path<TAB>caption`)",
                at()
            )
        })?;
        let caption = fields
            .next()
            .unwrap_or("")
            .replace('\t', " ")
            .split(" | ")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let path = root.join(path_field);
        ensure!(
            path.is_file(),
            "{}: image {} does not exist",
            at(),
            path.display()
        );
        out.push(Entry {
            line: i + 1,
            row,
            path,
            caption,
        });
    }
    ensure!(!out.is_empty(), "{}: no tiles in the list", list.display());
    Ok(out)
}

/// Decodes an image and fits it into the tile.
fn load_tile(list: &Path, e: &Entry, tile: u32) -> Result<Fitted> {
    let at = || format!("{}:{}: image {}", list.display(), e.line, e.path.display());
    let bytes = std::fs::read(&e.path).with_context(|| format!("{}: cannot read it", at()))?;
    let img = decode_rgb(&bytes, DEFAULT_MAX_PIXELS)
        .map_err(|err| anyhow!("{}: cannot decode it: {err}", at()))?;
    let scale = (tile as f64 / img.width as f64).min(tile as f64 / img.height as f64);
    let w = ((img.width as f64 * scale).round() as u32).clamp(1, tile);
    let h = ((img.height as f64 * scale).round() as u32).clamp(1, tile);
    Ok(resize(&img.data, img.width, img.height, w, h))
}

/// `resize::resize_u8` (the encoder's one resampler) into a tile.
fn resize(data: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Fitted {
    Fitted {
        width: dw,
        height: dh,
        data: resize_u8(data, 3, sw, sh, dw, dh),
    }
}

/// Fills a rectangle of the `width`-wide RGB buffer (clipped to the buffer).
fn fill(buf: &mut [u8], width: u32, x: u32, y: u32, w: u32, h: u32, rgb: [u8; 3]) {
    let height = buf.len() as u32 / (width * 3);
    for yy in y..(y + h).min(height) {
        for xx in x..(x + w).min(width) {
            let o = ((yy * width + xx) * 3) as usize;
            buf[o..o + 3].copy_from_slice(&rgb);
        }
    }
}

/// Copies a fitted image into the buffer at (x, y).
fn blit(buf: &mut [u8], width: u32, x: u32, y: u32, img: &Fitted) {
    let row = img.width as usize * 3;
    for r in 0..img.height as usize {
        let o = ((y as usize + r) * width as usize + x as usize) * 3;
        buf[o..o + row].copy_from_slice(&img.data[r * row..(r + 1) * row]);
    }
}

/// A `thick`-pixel border just outside the `tile` x `tile` square at (x, y).
fn frame(buf: &mut [u8], width: u32, x: u32, y: u32, tile: u32, thick: u32, rgb: [u8; 3]) {
    let (x0, y0, outer) = (x - thick, y - thick, tile + 2 * thick);
    fill(buf, width, x0, y0, outer, thick, rgb);
    fill(buf, width, x0, y + tile, outer, thick, rgb);
    fill(buf, width, x0, y0, thick, outer, rgb);
    fill(buf, width, x + tile, y0, thick, outer, rgb);
}

/// `text`, cut with an ellipsis where it is wider than `max` pixels.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    style: &TextStyle,
    max: u32,
) -> Result<String> {
    let width = |t: &str| {
        area.estimate_text_size(t, style)
            .map(|(w, _)| w)
            .map_err(|e| anyhow!("measuring text: {e}"))
    };
    if width(text)? <= max {
        return Ok(text.to_string());
    }
    let chars: Vec<char> = text.chars().collect();
    for n in (0..chars.len()).rev() {
        let cut = format!("{}…", chars[..n].iter().collect::<String>().trim_end());
        if width(&cut)? <= max {
            return Ok(cut);
        }
    }
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_resized_rgb_images() {
        // 4x2 -> 2x1: grey stays grey in all three channels (the filter's numbers are tested
        // in ics_encoder::resize).
        let mut data = Vec::new();
        for v in [0u8, 100, 200, 255, 0, 100, 200, 255] {
            data.extend([v, v, v]);
        }
        let out = resize(&data, 4, 2, 2, 1);
        assert_eq!((out.width, out.height, out.data.len()), (2, 1, 6));
        assert!(out.data.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
        assert!(out.data[0] < out.data[3]);
        // Enlarging a solid image keeps it solid.
        let solid = [10u8, 20, 30].repeat(3 * 5);
        let big = resize(&solid, 3, 5, 7, 11);
        assert!(big.data.chunks(3).all(|p| p == [10, 20, 30]));
    }
}
