//! Composing the benchmark folder: every canvas of every split (in parallel, byte-identical
//! for a seed whatever the thread count), then the list, areas and instances files, the class
//! names and the manifest (layout in the [module docs](super)).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use ndarray::Array2;
use rayon::prelude::*;

use super::canvas::{compose_canvas, PlacedInstance, FULL_RANGE_ATTEMPTS};
use super::manifest::{
    Definitions, Manifest, SplitSummary, INSTANCES_HEADER, MANIFEST_FORMAT, MANIFEST_VERSION,
};
use super::options::{ComposeOptions, Split};
use super::partition::SourcePools;
use crate::data::areas::write_areas;
use crate::data::dataset::{ClassAreas, Dataset, ImageRef};
use crate::data::image::encode_gray_png;
use crate::data::listfile::{write_class_names, write_list_file};
use crate::data::source::{Sources, NUM_SOURCE_CLASSES};

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
            resize: "tight crop of pixels > 0, then the triangle filter (bilinear with half-pixel \
                     centres and edge clamp when enlarging, antialiased when shrinking; round to \
                     nearest) to longer side = size, aspect kept"
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

#[cfg(test)]
mod tests {
    use super::super::canvas::disjoint;
    use super::super::read_folder::{load_composed_split, read_instances, InstanceRow};
    use super::super::testutil::{synthetic_sources, tiny_opts};
    use super::*;
    use crate::data::dataset::AreaKind;
    use crate::data::source::{SourcePaths, FASHION_MNIST_DIR};
    use crate::data::testutil::{cache_file, offline_file, TempDir};
    use ics_encoder::decode::{decode_rgb, DEFAULT_MAX_PIXELS};
    use std::collections::{BTreeMap, HashSet};

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
                let img = decode_rgb(&std::fs::read(path).unwrap(), DEFAULT_MAX_PIXELS).unwrap();
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
                            let at = (y * opts.canvas + x) as usize * 3;
                            let [red, g, b] = [img.data[at], img.data[at + 1], img.data[at + 2]];
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
    fn compose_refuses_too_few_sources_and_a_busy_folder() {
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
    }
}
