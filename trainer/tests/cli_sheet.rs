//! `ics-train sheet`: a contact sheet of 2 rows of small generated images; the PNG's size,
//! tiles showing their source pixels, borders, and errors naming the list file and line.

mod cli_util;

use std::path::Path;

use cli_util::{fails, fresh_dir, ok, s};

/// Layout constants of `cli/sheet.rs` (the test pins them: a change shows up here).
const MARGIN: u32 = 12;
const GAP: u32 = 12;

/// A `w` x `h` solid RGB PNG.
fn solid_png(path: &Path, w: u32, h: u32, rgb: [u8; 3]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&rgb.repeat((w * h) as usize)).unwrap();
}

/// A `side` x `side` solid JPEG.
fn solid_jpeg(path: &Path, side: u32, rgb: [u8; 3]) {
    let img = image::RgbImage::from_pixel(side, side, image::Rgb(rgb));
    img.save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// (width, height, RGB bytes) of a PNG.
fn read_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb, "an RGB PNG");
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn px(img: &(u32, u32, Vec<u8>), x: u32, y: u32) -> [u8; 3] {
    let o = ((y * img.0 + x) * 3) as usize;
    [img.2[o], img.2[o + 1], img.2[o + 2]]
}

fn close(a: [u8; 3], b: [u8; 3], tol: u8) -> bool {
    a.iter().zip(b).all(|(&x, y)| x.abs_diff(y) <= tol)
}

const RED: [u8; 3] = [220, 20, 20];
const GREEN: [u8; 3] = [20, 180, 40];
const BLUE: [u8; 3] = [30, 40, 200];
const YELLOW: [u8; 3] = [240, 220, 10];
const PURPLE: [u8; 3] = [120, 30, 150];

#[test]
fn sheet_has_one_row_per_query_with_captioned_tiles() {
    let dir = fresh_dir("sheet");
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    solid_png(&img.join("q1.png"), 20, 20, RED);
    solid_png(&img.join("h11.png"), 40, 20, GREEN); // wide: letterboxed top and bottom
    solid_jpeg(&img.join("h12.jpg"), 24, BLUE);
    solid_png(&img.join("q2.png"), 64, 64, YELLOW);
    solid_png(&img.join("h21.png"), 10, 30, PURPLE); // tall: letterboxed left and right
    let list = dir.join("tiles.tsv");
    std::fs::write(
        &list,
        "1\timg/q1.png\tquery 1 | shirt, bag\n\
         1\timg/h11.png\t#1 d=3 | shirt\n\
         \n\
         # a comment\n\
         2\timg/q2.png\tquery 2\n\
         1\timg/h12.jpg\t#2 d=5 | a caption far too long to fit under a tile of this size\n\
         2\timg/h21.png\t#1 d=0 | sneaker\n",
    )
    .unwrap();
    let out = dir.join("sheet.png");
    let tile = 64u32;
    let (_, err) = ok(&[
        "sheet",
        "--list",
        s(&list),
        "--out",
        s(&out),
        "--tile",
        &tile.to_string(),
        "--title",
        "ICS 64 bits: top hits",
    ]);
    assert!(err.contains("2 rows, 5 tiles"), "{err}");

    // Geometry as in cli/sheet.rs: 3 columns (row 1 has 3 tiles), 2 caption lines.
    let caption_px = (tile / 10).clamp(11, 18);
    let cell_h = tile + 6 + 2 * (caption_px + 4);
    let title_h = 20 + 14;
    let sheet = read_png(&out);
    assert_eq!(sheet.0, 2 * MARGIN + 3 * tile + 2 * GAP);
    assert_eq!(sheet.1, 2 * MARGIN + title_h + 2 * cell_h + GAP);

    let origin = |r: u32, c: u32| {
        (
            MARGIN + c * (tile + GAP),
            MARGIN + title_h + r * (cell_h + GAP),
        )
    };
    let centre = |r, c| {
        let (x, y) = origin(r, c);
        (x + tile / 2, y + tile / 2)
    };
    let check = |r, c, rgb, tol| {
        let (x, y) = centre(r, c);
        let got = px(&sheet, x, y);
        assert!(close(got, rgb, tol), "tile ({r}, {c}): {got:?} != {rgb:?}");
    };
    // Tiles show their images, rows grouped by the row field in file order.
    check(0, 0, RED, 0);
    check(0, 1, GREEN, 0);
    check(0, 2, BLUE, 6); // JPEG
    check(1, 0, YELLOW, 0);
    check(1, 1, PURPLE, 0);
    // Solid images fill the tile up to its corners (square sources) or are letterboxed.
    let (x, y) = origin(0, 0);
    assert_eq!(px(&sheet, x, y), RED);
    assert_eq!(px(&sheet, x + tile - 1, y + tile - 1), RED);
    let (x, y) = origin(0, 1);
    assert_ne!(
        px(&sheet, x + tile / 2, y + 2),
        GREEN,
        "wide image letterboxed"
    );
    assert_eq!(px(&sheet, x + 2, y + tile / 2), GREEN);
    let (x, y) = origin(1, 1);
    assert_ne!(
        px(&sheet, x + 2, y + tile / 2),
        PURPLE,
        "tall image letterboxed"
    );
    assert_eq!(px(&sheet, x + tile / 2, y + 2), PURPLE);
    // Row 2 has 2 tiles: its third cell stays white.
    let (x, y) = centre(1, 2);
    assert_eq!(px(&sheet, x, y), [255, 255, 255]);
    // The query has a coloured border, hits a grey one.
    let (x, y) = origin(0, 0);
    let q = px(&sheet, x - 2, y + tile / 2);
    assert!(q[2] > q[0] + 60, "blue query border: {q:?}");
    let (x, y) = origin(0, 1);
    let h = px(&sheet, x - 1, y + tile / 2);
    assert!(
        h[0] == h[1] && h[1] == h[2] && h[0] < 200,
        "grey hit border: {h:?}"
    );
    // Captions and the title put dark pixels under the tiles and at the top.
    let dark = |x0: u32, y0: u32, w: u32, h: u32| {
        (y0..y0 + h)
            .flat_map(|y| (x0..x0 + w).map(move |x| (x, y)))
            .filter(|&(x, y)| px(&sheet, x, y).iter().all(|&v| v < 128))
            .count()
    };
    let (x, y) = origin(0, 2);
    assert!(
        dark(x, y + tile + 2, tile, cell_h - tile - 2) > 20,
        "caption drawn"
    );
    assert!(
        dark(MARGIN, MARGIN, sheet.0 - 2 * MARGIN, title_h) > 50,
        "title drawn"
    );
    let (x, y) = origin(1, 2);
    assert_eq!(
        dark(x, y + tile + 2, tile, cell_h - tile - 2),
        0,
        "no caption for no tile"
    );
}

#[test]
fn sheet_errors_name_list_file_and_line() {
    let dir = fresh_dir("sheet-errors");
    solid_png(&dir.join("a.png"), 8, 8, RED);
    let out = dir.join("out.png");
    let run = |text: &str| {
        let list = dir.join("list.tsv");
        std::fs::write(&list, text).unwrap();
        let err = fails(&["sheet", "--list", s(&list), "--out", s(&out)]);
        (format!("{}:", list.display()), err)
    };

    let (at, err) = run("1\ta.png\tok\n1\tmissing.png\tgone\n");
    assert!(
        err.contains(&format!("{at}2:"))
            && err.contains("missing.png")
            && err.contains("does not exist"),
        "{err}"
    );

    std::fs::write(dir.join("bad.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let (at, err) = run("1\ta.png\tok\n\n2\tbad.png\tbroken\n");
    assert!(
        err.contains(&format!("{at}3:")) && err.contains("bad.png") && err.contains("decode"),
        "{err}"
    );

    let (at, err) = run("x\ta.png\tcap\n");
    assert!(
        err.contains(&format!("{at}1:")) && err.contains("not an integer"),
        "{err}"
    );

    let (at, err) = run("1\ta.png\n1 a.png cap\n");
    assert!(
        err.contains(&format!("{at}2:")) && err.contains("row<TAB>image_path"),
        "{err}"
    );

    let missing = dir.join("nope.tsv");
    let err = fails(&["sheet", "--list", s(&missing), "--out", s(&out)]);
    assert!(err.contains("nope.tsv"), "{err}");
    assert!(!out.exists(), "no output on errors");
}

#[test]
fn sheet_is_in_help() {
    let (top, _) = ok(&["--help"]);
    assert!(top.contains("sheet"), "{top}");
    let (text, _) = ok(&["sheet", "--help"]);
    for f in ["--list", "--out", "--tile", "--font", "--title", "--root"] {
        assert!(text.contains(f), "{f} missing from sheet --help:\n{text}");
    }
}
