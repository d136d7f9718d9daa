//! The multi-label benchmark composer (`ics-train data compose`).
//!
//! No natural-image multi-label set (COCO, NUS-WIDE) is available offline, so the benchmark is
//! composed: each canvas gets 1-3 instances of distinct classes from the 20-class source pool
//! ([`super::source`]), pasted at random scales and positions without box overlap. Because the
//! composer draws every pixel, the per-class foreground area is known exactly, which is the
//! ground truth ICS's instance weights are checked against.
//!
//! Drawing, precisely:
//! - an instance is first cropped to the tight box of its pixels > 0, then resized bilinearly
//!   (half-pixel centres, edge-clamped, rounded to the nearest integer) so its longer side is a
//!   size drawn uniformly from `min_size..=max_size`, keeping the aspect ratio. Bilinear rather
//!   than nearest so large scales do not show blocky 28-px structure a backbone could key on;
//!   `min_size >= 14` keeps every source pixel within a sample's reach (no aliasing drop-outs);
//! - boxes (the resized rectangles) are placed at random positions with at least `gap` pixels
//!   between any two boxes. A layout that does not fit is redrawn (new sizes and positions, same
//!   instances); after 16 failures the size range shrinks towards `min_size` (recorded as a
//!   shrunk layout in the manifest), and as a last resort the instances are set in a row at
//!   `min_size`, which the option checks guarantee fits;
//! - the canvas is black (0) and each box's pixels are written, not blended: boxes do not
//!   overlap, so every pixel belongs to at most one instance;
//! - **pixel area** of (canvas, class) = number of pixels of that class's box whose drawn value
//!   is > 0, i.e. exactly the non-zero pixels of the saved PNG inside the box (PNG is lossless);
//!   **box area** = w * h of the box.
//!
//! Splits use disjoint source instances so no instance leaks from training into evaluation,
//! and query and database share none either (an identical instance in both would make
//! retrieval trivially easy): Fashion-MNIST train -> train; Fashion-MNIST test -> query (first
//! `query_fraction` of each class) and database (the rest); MNIST digits per class, in file
//! order -> train (first `mnist_train_fraction`), then query / database as above. Within a
//! split instances are drawn with replacement (20,000 database canvases need more draws than
//! there are held-out instances). The partition does not depend on the seed.
//!
//! Each canvas has its own ChaCha8 stream (seed, split, index), so output is byte-identical for
//! a seed whatever the thread count.
//!
//! Output folder:
//! ```text
//! manifest.json                     options, seed, class names, counts, definitions
//! classes.txt                       class names, one a line (label column order)
//! {train,query,database}.txt        HashNet list files: images/<split>/NNNNNN.png b_1 .. b_20
//! {split}_areas.tsv                 areas file (see super::areas): pixel and box area
//! {split}_instances.tsv             image, class, source_id, x, y, w, h, pixel_area per instance
//! images/{split}/NNNNNN.png         canvases (RGB, gray replicated; or grayscale)
//! ```

use super::areas::{read_areas, write_areas};
use super::dataset::{ClassAreas, Dataset, ImageRef};
use super::image::encode_gray_png;
use super::listfile::{read_class_names, read_list_file, write_class_names, write_list_file};
use super::source::{SourceOrigin, Sources, NUM_SOURCE_CLASSES, SOURCE_SIDE};
use anyhow::{bail, ensure, Context, Result};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Format name and version written to (and checked in) the manifest.
pub const MANIFEST_FORMAT: &str = "ics_hash composed multi-label benchmark";
pub const MANIFEST_VERSION: u32 = 1;
/// Header of the `{split}_instances.tsv` files.
pub const INSTANCES_HEADER: &str = "image\tclass\tsource_id\tx\ty\tw\th\tpixel_area";
/// Layout redraws at full size range before the range starts shrinking.
const FULL_RANGE_ATTEMPTS: u32 = 16;
/// Layout redraws in all before the row fallback.
const MAX_ATTEMPTS: u32 = 64;
/// Random positions tried per box within one layout attempt.
const POSITION_TRIES: u32 = 50;

/// The three benchmark splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Query,
    Database,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Query, Split::Database];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Query => "query",
            Split::Database => "database",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Composer options; [`Default`] is the issue's benchmark.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComposeOptions {
    pub seed: u64,
    /// Canvas side in pixels.
    pub canvas: u32,
    /// Instances (= distinct classes) per canvas, inclusive range.
    pub min_instances: usize,
    pub max_instances: usize,
    /// Longer side of a pasted instance, inclusive range (>= 14, <= canvas).
    pub min_size: u32,
    pub max_size: u32,
    /// Minimum free pixels between two boxes.
    pub gap: u32,
    /// Canvases per split.
    pub train: usize,
    pub query: usize,
    pub database: usize,
    /// Save RGB (gray replicated) instead of single-channel PNG.
    pub rgb: bool,
    /// Share of each class's held-out instances that go to the query split.
    pub query_fraction: f64,
    /// Share of each digit class's MNIST instances that go to the train split.
    pub mnist_train_fraction: f64,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            seed: 0,
            canvas: 128,
            min_instances: 1,
            max_instances: 3,
            min_size: 28,
            max_size: 80,
            gap: 2,
            train: 10_000,
            query: 2_000,
            database: 20_000,
            rgb: true,
            query_fraction: 0.2,
            mnist_train_fraction: 0.5,
        }
    }
}

impl ComposeOptions {
    /// A small benchmark for tests: 64 px canvases, 200 / 50 / 200 canvases.
    pub fn small() -> Self {
        ComposeOptions {
            canvas: 64,
            min_size: 14,
            max_size: 40,
            train: 200,
            query: 50,
            database: 200,
            ..ComposeOptions::default()
        }
    }

    /// The area-test benchmark: 2-3 distinct classes per canvas and a wide scale spread, so
    /// instance shares differ enough for weight-vs-area agreement to be measurable.
    pub fn area_benchmark() -> Self {
        ComposeOptions {
            min_instances: 2,
            max_instances: 3,
            min_size: 20,
            max_size: 100,
            ..ComposeOptions::default()
        }
    }

    /// Canvases in a split.
    pub fn count(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Query => self.query,
            Split::Database => self.database,
        }
    }

    /// Checks the options before any work; messages name the option.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (16..=4096).contains(&self.canvas),
            "canvas {} must be in 16..=4096",
            self.canvas
        );
        ensure!(
            1 <= self.min_instances
                && self.min_instances <= self.max_instances
                && self.max_instances <= NUM_SOURCE_CLASSES,
            "instances {}..={} must satisfy 1 <= min <= max <= {NUM_SOURCE_CLASSES} (classes per canvas are distinct)",
            self.min_instances,
            self.max_instances
        );
        ensure!(
            14 <= self.min_size && self.min_size <= self.max_size && self.max_size <= self.canvas,
            "sizes {}..={} must satisfy 14 <= min <= max <= canvas {}",
            self.min_size,
            self.max_size,
            self.canvas
        );
        let row = self.max_instances as u64 * self.min_size as u64
            + (self.max_instances as u64 - 1) * self.gap as u64;
        ensure!(
            row <= self.canvas as u64,
            "{} instances of min_size {} with gap {} do not fit side by side in {} px",
            self.max_instances,
            self.min_size,
            self.gap,
            self.canvas
        );
        for (name, f) in [
            ("query_fraction", self.query_fraction),
            ("mnist_train_fraction", self.mnist_train_fraction),
        ] {
            ensure!(f > 0.0 && f < 1.0, "{name} {f} must be in (0, 1)");
        }
        ensure!(
            self.train + self.query + self.database > 0,
            "no canvases requested"
        );
        Ok(())
    }
}

/// Source instance ids available to each split, per class (ascending ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePools {
    pools: [Vec<Vec<u32>>; 3],
}

impl SourcePools {
    /// The split partition described in the module docs. Blank instances (no pixel > 0) are
    /// left out: they would draw nothing.
    pub fn partition(
        sources: &Sources,
        query_fraction: f64,
        mnist_train_fraction: f64,
    ) -> SourcePools {
        let mut by_origin_class = std::collections::HashMap::<(SourceOrigin, u8), Vec<u32>>::new();
        for inst in sources.instances() {
            if inst.pixels.iter().any(|&v| v > 0) {
                by_origin_class
                    .entry((inst.origin, inst.class))
                    .or_default()
                    .push(inst.id);
            }
        }
        let mut pools: [Vec<Vec<u32>>; 3] =
            std::array::from_fn(|_| vec![Vec::new(); NUM_SOURCE_CLASSES]);
        let cut = |n: usize, f: f64| ((n as f64 * f).round() as usize).min(n);
        for ((origin, class), ids) in by_origin_class {
            let c = class as usize;
            let held_out: &[u32] = match origin {
                SourceOrigin::FashionTrain => {
                    pools[0][c].extend(&ids);
                    &[]
                }
                SourceOrigin::FashionTest => &ids,
                SourceOrigin::Mnist5k => {
                    let t = cut(ids.len(), mnist_train_fraction);
                    pools[0][c].extend(&ids[..t]);
                    &ids[t..]
                }
            };
            let q = cut(held_out.len(), query_fraction);
            pools[1][c].extend(&held_out[..q]);
            pools[2][c].extend(&held_out[q..]);
        }
        for split in pools.iter_mut() {
            for ids in split.iter_mut() {
                ids.sort_unstable(); // HashMap order must not leak into the output
            }
        }
        SourcePools { pools }
    }

    /// Per class, the instance ids a split may use.
    pub fn get(&self, split: Split) -> &[Vec<u32>] {
        &self.pools[split.index()]
    }

    /// Instances available to a split in all.
    pub fn size(&self, split: Split) -> usize {
        self.get(split).iter().map(Vec::len).sum()
    }
}

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

/// Bilinear resize with half-pixel centres, edge clamp, round to nearest.
fn resize_bilinear(crop: &Crop, w: u32, h: u32) -> Vec<u8> {
    let axis = |src: usize, dst: u32| -> Vec<(usize, usize, f32)> {
        let scale = src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let s = ((d as f32 + 0.5) * scale - 0.5).clamp(0.0, (src - 1) as f32);
                let i0 = s.floor() as usize;
                (i0, (i0 + 1).min(src - 1), s - i0 as f32)
            })
            .collect()
    };
    let (xs, ys) = (axis(crop.w, w), axis(crop.h, h));
    let mut out = Vec::with_capacity((w * h) as usize);
    for &(y0, y1, fy) in &ys {
        let (r0, r1) = (&crop.px[y0 * crop.w..], &crop.px[y1 * crop.w..]);
        for &(x0, x1, fx) in &xs {
            let top = r0[x0] as f32 * (1.0 - fx) + r0[x1] as f32 * fx;
            let bot = r1[x0] as f32 * (1.0 - fx) + r1[x1] as f32 * fx;
            out.push((top * (1.0 - fy) + bot * fy).round().clamp(0.0, 255.0) as u8);
        }
    }
    out
}

fn disjoint(a: (u32, u32, u32, u32), b: (u32, u32, u32, u32), gap: u32) -> bool {
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

/// Per-split numbers reported by [`compose`] and written to the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub split: Split,
    pub canvases: usize,
    /// Source instances the split may draw from.
    pub pool_instances: usize,
    /// Distinct source instances actually drawn.
    pub distinct_instances_used: usize,
    /// Canvases with 1, 2, 3, ... instances.
    pub instances_per_canvas: Vec<usize>,
    /// Canvases carrying each class.
    pub class_counts: Vec<usize>,
    /// Canvases whose layout needed the shrunk size range or the row fallback.
    pub shrunk_layouts: usize,
}

/// What [`compose`] did.
#[derive(Clone, Debug)]
pub struct ComposeSummary {
    pub out_dir: PathBuf,
    pub splits: Vec<SplitSummary>,
    /// Bytes of PNG written.
    pub png_bytes: u64,
    /// Wall time of the composition (sources already loaded).
    pub seconds: f64,
}

#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u32,
    options: ComposeOptions,
    class_names: Vec<String>,
    definitions: Definitions,
    splits: Vec<SplitSummary>,
}

#[derive(Serialize, Deserialize)]
struct Definitions {
    foreground: String,
    box_area: String,
    resize: String,
    partition: String,
}

/// Composes the benchmark into `out_dir` (created; must be absent or empty).
pub fn compose(sources: &Sources, opts: &ComposeOptions, out_dir: &Path) -> Result<ComposeSummary> {
    opts.validate()?;
    let start = Instant::now();
    if out_dir.exists() {
        let mut entries = std::fs::read_dir(out_dir)
            .with_context(|| format!("cannot read output folder {}", out_dir.display()))?;
        ensure!(
            entries.next().is_none(),
            "output folder {} is not empty; choose a new one",
            out_dir.display()
        );
    }
    let pools = SourcePools::partition(sources, opts.query_fraction, opts.mnist_train_fraction);
    let names = sources.class_names().to_vec();
    // Every class must be drawable in every non-empty split, checked before writing anything.
    for split in Split::ALL {
        if opts.count(split) > 0 {
            if let Some(c) = pools.get(split).iter().position(Vec::is_empty) {
                bail!(
                    "split {} has no source instance of class {c} ({}): too few sources",
                    split.name(),
                    names[c]
                );
            }
        }
    }
    let mut splits = Vec::new();
    let mut png_bytes = 0u64;
    for split in Split::ALL {
        let n = opts.count(split);
        if n == 0 {
            // No list file for an empty split: a list file needs at least one entry.
            splits.push(split_summary(split, &pools, &[]));
            continue;
        }
        let rel_dir = PathBuf::from("images").join(split.name());
        let img_dir = out_dir.join(&rel_dir);
        std::fs::create_dir_all(&img_dir)
            .with_context(|| format!("cannot create {}", img_dir.display()))?;
        let canvases: Vec<(PathBuf, Vec<PlacedInstance>, u32, u64)> = (0..n)
            .into_par_iter()
            .map(|i| {
                let canvas = compose_canvas(sources, &pools, opts, split, i)?;
                let png = encode_gray_png(canvas.side, canvas.side, &canvas.pixels, opts.rgb)?;
                let rel = rel_dir.join(format!("{i:06}.png"));
                let full = out_dir.join(&rel);
                std::fs::write(&full, &png)
                    .with_context(|| format!("cannot write {}", full.display()))?;
                Ok((rel, canvas.instances, canvas.attempts, png.len() as u64))
            })
            .collect::<Result<_>>()?;

        let mut labels = Array2::<u8>::zeros((n, NUM_SOURCE_CLASSES));
        let mut areas = ClassAreas::zeros(n, NUM_SOURCE_CLASSES);
        let mut tsv = String::from(INSTANCES_HEADER);
        tsv.push('\n');
        for (i, (rel, insts, _, bytes)) in canvases.iter().enumerate() {
            png_bytes += bytes;
            for p in insts {
                let c = p.class as usize;
                labels[[i, c]] = 1;
                areas.pixel[[i, c]] = p.pixel_area as f64;
                areas.boxed[[i, c]] = p.box_area() as f64;
                let _ = writeln!(
                    tsv,
                    "{}\t{c}\t{}\t{}\t{}\t{}\t{}\t{}",
                    rel.display(),
                    p.source_id,
                    p.x,
                    p.y,
                    p.w,
                    p.h,
                    p.pixel_area
                );
            }
        }
        let items = canvases
            .iter()
            .map(|(rel, ..)| ImageRef::Path(rel.clone()))
            .collect();
        let ds =
            Dataset::new(split.name(), out_dir, items, labels, names.clone())?.with_areas(areas)?;
        write_list_file(&out_dir.join(format!("{}.txt", split.name())), &ds)?;
        write_areas(&out_dir.join(format!("{}_areas.tsv", split.name())), &ds)?;
        let ipath = out_dir.join(format!("{}_instances.tsv", split.name()));
        std::fs::write(&ipath, tsv).with_context(|| format!("cannot write {}", ipath.display()))?;
        let records: Vec<(&[PlacedInstance], u32)> = canvases
            .iter()
            .map(|(_, p, a, _)| (p.as_slice(), *a))
            .collect();
        splits.push(split_summary(split, &pools, &records));
    }
    write_class_names(&out_dir.join("classes.txt"), &names)?;
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: MANIFEST_VERSION,
        options: opts.clone(),
        class_names: names,
        definitions: Definitions {
            foreground: "pixel_area = pixels of the instance's box whose drawn value is > 0 \
                         (exactly the non-zero pixels of the saved PNG inside the box)"
                .into(),
            box_area: "w * h of the pasted instance's box".into(),
            resize: "tight crop of pixels > 0, then bilinear (half-pixel centres, edge clamp, \
                     round to nearest) to longer side = size, aspect kept"
                .into(),
            partition: "Fashion-MNIST train -> train; Fashion-MNIST test -> query (first \
                        query_fraction per class) / database; MNIST 5k per class in file order \
                        -> train (first mnist_train_fraction), then query / database"
                .into(),
        },
        splits: splits.clone(),
    };
    let mpath = out_dir.join("manifest.json");
    std::fs::write(&mpath, serde_json::to_string_pretty(&manifest)? + "\n")
        .with_context(|| format!("cannot write {}", mpath.display()))?;
    Ok(ComposeSummary {
        out_dir: out_dir.to_path_buf(),
        splits,
        png_bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

fn split_summary(
    split: Split,
    pools: &SourcePools,
    recs: &[(&[PlacedInstance], u32)],
) -> SplitSummary {
    let mut used: Vec<u32> = recs
        .iter()
        .flat_map(|(p, _)| p.iter().map(|i| i.source_id))
        .collect();
    used.sort_unstable();
    used.dedup();
    let max_k = recs.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let mut per_canvas = vec![0; max_k];
    let mut class_counts = vec![0; NUM_SOURCE_CLASSES];
    for (p, _) in recs {
        per_canvas[p.len() - 1] += 1;
        for i in *p {
            class_counts[i.class as usize] += 1;
        }
    }
    SplitSummary {
        split,
        canvases: recs.len(),
        pool_instances: pools.size(split),
        distinct_instances_used: used.len(),
        instances_per_canvas: per_canvas,
        class_counts,
        shrunk_layouts: recs
            .iter()
            .filter(|(_, a)| *a > FULL_RANGE_ATTEMPTS)
            .count(),
    }
}

/// Loads a composed split (list file, class names, areas) as a dataset rooted at `dir`.
pub fn load_composed_split(dir: &Path, split: &str) -> Result<Dataset> {
    let mpath = dir.join("manifest.json");
    let text = std::fs::read_to_string(&mpath).with_context(|| {
        format!(
            "cannot read {} (not a composed benchmark?)",
            mpath.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: bad manifest", mpath.display()))?;
    ensure!(
        manifest.format == MANIFEST_FORMAT && manifest.version == MANIFEST_VERSION,
        "{}: format {:?} version {}, expected {MANIFEST_FORMAT:?} version {MANIFEST_VERSION}",
        mpath.display(),
        manifest.format,
        manifest.version
    );
    let names = read_class_names(&dir.join("classes.txt"))?;
    let ds =
        read_list_file(&dir.join(format!("{split}.txt")), dir, split)?.with_class_names(names)?;
    let areas = read_areas(&dir.join(format!("{split}_areas.tsv")), &ds)?;
    ds.with_areas(areas)
}

/// One row of a `{split}_instances.tsv` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceRow {
    pub image: String,
    pub class: usize,
    pub source_id: u32,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    pub pixel_area: u32,
}

/// Reads a `{split}_instances.tsv` file; errors name the file and line.
pub fn read_instances(path: &Path) -> Result<Vec<InstanceRow>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read instances file {}", path.display()))?;
    let src = path.display();
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h == INSTANCES_HEADER => {}
        _ => bail!("{src}:1: expected the header {INSTANCES_HEADER:?}"),
    }
    let mut rows = Vec::new();
    for (idx, line) in lines {
        let lineno = idx + 1;
        let f: Vec<&str> = line.split('\t').collect();
        ensure!(
            f.len() == 8,
            "{src}:{lineno}: {} fields, expected 8",
            f.len()
        );
        let num = |j: usize| -> Result<u32> {
            f[j].parse().with_context(|| {
                format!("{src}:{lineno}: field {} {:?} is not a number", j + 1, f[j])
            })
        };
        rows.push(InstanceRow {
            image: f[0].to_string(),
            class: num(1)? as usize,
            source_id: num(2)?,
            x: num(3)?,
            y: num(4)?,
            w: num(5)?,
            h: num(6)?,
            pixel_area: num(7)?,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::AreaKind;
    use crate::data::image::read_png_rgb;
    use crate::data::source::{SourceInstance, SourcePaths, FASHION_MNIST_DIR, SOURCE_PIXELS};
    use crate::data::testutil::{cache_file, offline_file, TempDir};
    use std::collections::{BTreeMap, HashSet};

    /// A synthetic pool: per class, ellipses of random size and intensity in every origin
    /// (Fashion origins for classes 0-9, MNIST for 10-19), plus one blank instance per origin
    /// that the partition must drop.
    fn synthetic_sources(per_origin_class: usize) -> Sources {
        let mut rng = ChaCha8Rng::seed_from_u64(99);
        let mut out = Vec::new();
        for class in 0..NUM_SOURCE_CLASSES as u8 {
            let origins: &[SourceOrigin] = if class < 10 {
                &[SourceOrigin::FashionTrain, SourceOrigin::FashionTest]
            } else {
                &[SourceOrigin::Mnist5k]
            };
            for &origin in origins {
                for j in 0..=per_origin_class {
                    let mut pixels = [0u8; SOURCE_PIXELS];
                    if j > 0 {
                        let (cx, cy) = (rng.gen_range(10.0..18.0), rng.gen_range(10.0..18.0));
                        let (rx, ry): (f64, f64) =
                            (rng.gen_range(3.0..10.0), rng.gen_range(3.0..10.0));
                        for y in 0..SOURCE_SIDE {
                            for x in 0..SOURCE_SIDE {
                                let d =
                                    ((x as f64 - cx) / rx).powi(2) + ((y as f64 - cy) / ry).powi(2);
                                if d <= 1.0 {
                                    pixels[y * SOURCE_SIDE + x] = rng.gen_range(1..=255);
                                }
                            }
                        }
                    }
                    out.push(SourceInstance {
                        id: out.len() as u32,
                        class,
                        origin,
                        pixels,
                    });
                }
            }
        }
        Sources::from_instances(out).unwrap()
    }

    /// Checks everything a composed folder promises, against the PNGs themselves.
    fn check_composed(dir: &Path, sources: &Sources, opts: &ComposeOptions) {
        let pools = SourcePools::partition(sources, opts.query_fraction, opts.mnist_train_fraction);
        let mut used: Vec<HashSet<u32>> = Vec::new();
        for split in Split::ALL {
            let ds = load_composed_split(dir, split.name()).unwrap();
            assert_eq!(ds.len(), opts.count(split));
            assert_eq!(ds.class_names(), sources.class_names());
            let rows =
                read_instances(&dir.join(format!("{}_instances.tsv", split.name()))).unwrap();
            let mut by_image: BTreeMap<&str, Vec<&InstanceRow>> = BTreeMap::new();
            for r in &rows {
                by_image.entry(r.image.as_str()).or_default().push(r);
            }
            assert_eq!(by_image.len(), ds.len(), "every canvas has instances");
            let areas = ds.areas().unwrap();
            let paths = ds.image_paths().unwrap();
            let mut split_used = HashSet::new();
            for (i, path) in paths.iter().enumerate() {
                let rel = path.strip_prefix(dir).unwrap().to_str().unwrap();
                let insts = &by_image[rel];
                assert!((opts.min_instances..=opts.max_instances).contains(&insts.len()));
                // Labels = set of drawn classes; classes distinct.
                let classes: Vec<usize> = insts.iter().map(|r| r.class).collect();
                let mut sorted = classes.clone();
                sorted.dedup();
                assert_eq!(sorted, classes, "{rel}: classes distinct, ascending");
                assert_eq!(ds.item_classes(i), classes, "{rel}: labels");
                let img = read_png_rgb(path).unwrap();
                assert_eq!((img.width, img.height), (opts.canvas, opts.canvas));
                let mut covered = vec![false; (opts.canvas * opts.canvas) as usize];
                for (a, r) in insts.iter().enumerate() {
                    let src = sources.get(r.source_id);
                    assert_eq!(src.class as usize, r.class, "{rel}: source class");
                    assert!(pools.get(split)[r.class]
                        .binary_search(&r.source_id)
                        .is_ok());
                    split_used.insert(r.source_id);
                    assert!(r.x + r.w <= opts.canvas && r.y + r.h <= opts.canvas);
                    assert!(r.w.max(r.h) >= opts.min_size && r.w.max(r.h) <= opts.max_size);
                    for b in &insts[a + 1..] {
                        assert!(
                            disjoint((r.x, r.y, r.w, r.h), (b.x, b.y, b.w, b.h), opts.gap),
                            "{rel}: boxes overlap"
                        );
                    }
                    // Recount the instance's foreground in the decoded PNG.
                    let mut count = 0;
                    for y in r.y..r.y + r.h {
                        for x in r.x..r.x + r.w {
                            covered[(y * opts.canvas + x) as usize] = true;
                            let [red, g, b] = img.pixel(x, y);
                            assert!(red == g && g == b, "gray replicated");
                            count += u32::from(red > 0);
                        }
                    }
                    assert!(count > 0, "{rel}: class {} drew nothing", r.class);
                    assert_eq!(count, r.pixel_area, "{rel}: class {} pixel area", r.class);
                    assert_eq!(areas.pixel[[i, r.class]], count as f64);
                    assert_eq!(areas.boxed[[i, r.class]], (r.w * r.h) as f64);
                }
                for (p, &c) in covered.iter().enumerate() {
                    if !c {
                        assert_eq!(img.data[p * 3], 0, "{rel}: ink outside every box");
                    }
                }
            }
            used.push(split_used);
        }
        for a in 0..3 {
            for b in a + 1..3 {
                let shared: Vec<_> = used[a].intersection(&used[b]).collect();
                assert!(
                    shared.is_empty(),
                    "splits {a} and {b} share instances {shared:?}"
                );
            }
        }
    }

    fn tiny_opts() -> ComposeOptions {
        ComposeOptions {
            train: 40,
            query: 12,
            database: 30,
            seed: 5,
            ..ComposeOptions::small()
        }
    }

    #[test]
    fn composed_files_match_what_was_drawn() {
        let sources = synthetic_sources(6);
        let dir = TempDir::new("compose");
        let out = dir.path().join("bench");
        let opts = tiny_opts();
        let summary = compose(&sources, &opts, &out).unwrap();
        assert_eq!(summary.splits.len(), 3);
        assert_eq!(summary.splits[0].canvases, 40);
        check_composed(&out, &sources, &opts);
        // The list file is exactly the HashNet format: path then 20 labels.
        let text = std::fs::read_to_string(out.join("query.txt")).unwrap();
        let first = text.lines().next().unwrap();
        assert!(first.starts_with("images/query/000000.png "), "{first}");
        assert_eq!(first.split(' ').count(), 1 + NUM_SOURCE_CLASSES);
        // Grayscale output holds the same pixels.
        let gray_out = dir.path().join("gray");
        compose(
            &sources,
            &ComposeOptions {
                rgb: false,
                ..opts.clone()
            },
            &gray_out,
        )
        .unwrap();
        check_composed(&gray_out, &sources, &opts);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_differs() {
        let sources = synthetic_sources(6);
        let dir = TempDir::new("compose-repro");
        let opts = tiny_opts();
        let read_all = |root: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
            let mut out = BTreeMap::new();
            let mut stack = vec![root.to_path_buf()];
            while let Some(d) = stack.pop() {
                for e in std::fs::read_dir(&d).unwrap() {
                    let p = e.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else {
                        out.insert(
                            p.strip_prefix(root).unwrap().to_path_buf(),
                            std::fs::read(&p).unwrap(),
                        );
                    }
                }
            }
            out
        };
        compose(&sources, &opts, &dir.path().join("a")).unwrap();
        // A one-thread pool must give the same bytes as the parallel run.
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| compose(&sources, &opts, &dir.path().join("b")).unwrap());
        let other = ComposeOptions {
            seed: 6,
            ..opts.clone()
        };
        compose(&sources, &other, &dir.path().join("c")).unwrap();
        let (a, b, c) = (
            read_all(&dir.path().join("a")),
            read_all(&dir.path().join("b")),
            read_all(&dir.path().join("c")),
        );
        // manifest, classes, 3 x (list, areas, instances), and the PNGs.
        assert_eq!(a.len(), 11 + 40 + 12 + 30, "file count");
        assert!(a == b, "same seed must give identical files");
        assert_ne!(a.get(Path::new("train.txt")), c.get(Path::new("train.txt")));
        assert_ne!(
            a.get(Path::new("images/train/000000.png")),
            c.get(Path::new("images/train/000000.png"))
        );
    }

    #[test]
    fn partition_is_disjoint_covers_all_and_drops_blanks() {
        let sources = synthetic_sources(10);
        let pools = SourcePools::partition(&sources, 0.2, 0.5);
        let mut seen = HashSet::new();
        for split in Split::ALL {
            for (c, ids) in pools.get(split).iter().enumerate() {
                assert!(!ids.is_empty(), "{split:?} class {c}");
                for &id in ids {
                    let inst = sources.get(id);
                    assert_eq!(inst.class as usize, c);
                    assert!(inst.pixels.iter().any(|&v| v > 0), "blank instance pooled");
                    assert!(seen.insert(id), "instance {id} in two pools");
                    let ok = !matches!(
                        (split, inst.origin),
                        (Split::Train, SourceOrigin::FashionTest)
                            | (Split::Query | Split::Database, SourceOrigin::FashionTrain)
                    );
                    assert!(ok, "{split:?} got {:?}", inst.origin);
                }
            }
        }
        let non_blank = sources
            .instances()
            .iter()
            .filter(|i| i.pixels.iter().any(|&v| v > 0))
            .count();
        assert_eq!(seen.len(), non_blank);
        // 10 MNIST per digit: 5 train, then of 5 held out round(1.0) = 1 query, 4 database.
        assert_eq!(pools.get(Split::Train)[15].len(), 5);
        assert_eq!(pools.get(Split::Query)[15].len(), 1);
        assert_eq!(pools.get(Split::Database)[15].len(), 4);
        // Fashion: 10 train (all), 10 test -> 2 query, 8 database.
        assert_eq!(pools.get(Split::Train)[3].len(), 10);
        assert_eq!(pools.get(Split::Query)[3].len(), 2);
        assert_eq!(pools.get(Split::Database)[3].len(), 8);
    }

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

    #[test]
    fn options_are_validated_and_output_must_be_fresh() {
        assert!(ComposeOptions::default().validate().is_ok());
        assert!(ComposeOptions::small().validate().is_ok());
        assert!(ComposeOptions::area_benchmark().validate().is_ok());
        let bad = [
            ComposeOptions {
                min_size: 10,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_size: 200,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                min_instances: 0,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_instances: 21,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                min_instances: 3,
                max_instances: 2,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_instances: 5,
                min_size: 28,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                query_fraction: 1.0,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                train: 0,
                query: 0,
                database: 0,
                ..ComposeOptions::default()
            },
        ];
        for o in bad {
            assert!(o.validate().is_err(), "{o:?}");
        }
        // 4 digits a class: 2 train, 2 held out, round(0.4) = 0 for query.
        let sources = synthetic_sources(4);
        let dir = TempDir::new("compose-few");
        let err = compose(&sources, &tiny_opts(), &dir.path().join("o"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("split query") && err.contains("digit 0"),
            "{err}"
        );
        assert!(
            !dir.path().join("o/images/train").exists(),
            "nothing written"
        );
        let sources = synthetic_sources(6);
        let dir = TempDir::new("compose-busy");
        dir.write("old.txt", "x");
        let err = compose(&sources, &tiny_opts(), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not empty"), "{err}");
    }

    #[test]
    fn instances_file_errors_name_line() {
        let dir = TempDir::new("inst-bad");
        let p = dir.write(
            "i.tsv",
            format!("{INSTANCES_HEADER}\na.png\t1\t2\t3\t4\t5\t6\t7\na.png\t1\tx\t3\t4\t5\t6\t7\n"),
        );
        let err = read_instances(&p).unwrap_err().to_string();
        assert!(err.contains("i.tsv:3:"), "{err}");
        let p = dir.write("h.tsv", "nope\n");
        assert!(read_instances(&p)
            .unwrap_err()
            .to_string()
            .contains("h.tsv:1:"));
    }

    #[test]
    fn composes_from_the_offline_sources() {
        let paths = SourcePaths::new(FASHION_MNIST_DIR, cache_file("mnist_5k.csv.gz"));
        offline_file(paths.fashion_dir.join("train-images-idx3-ubyte.gz"));
        let sources = Sources::load(&paths).unwrap();
        let dir = TempDir::new("compose-real");
        let opts = ComposeOptions {
            train: 120,
            query: 30,
            database: 120,
            ..ComposeOptions::small()
        };
        let summary = compose(&sources, &opts, &dir.path().join("b")).unwrap();
        let pools = &summary.splits;
        assert_eq!(pools[0].pool_instances, 60_000 + 2_500);
        assert_eq!(pools[1].pool_instances, 2_000 + 500);
        assert_eq!(pools[2].pool_instances, 8_000 + 2_000);
        check_composed(&dir.path().join("b"), &sources, &opts);
        let ds = load_composed_split(&dir.path().join("b"), "train").unwrap();
        assert!(ds.area_shares(0, AreaKind::Pixel).is_some());
        assert_eq!(ds.load_all_rgb().unwrap().len(), 120);
    }
}
