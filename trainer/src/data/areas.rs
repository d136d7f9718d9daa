//! The areas file: per (image, class) the ground-truth pixel area and box area, which the
//! weight-vs-area evaluation turns into instance shares.
//!
//! Tab-separated text, so it can be read with any tool and diffed:
//!
//! ```text
//! image<TAB>class<TAB>pixel_area<TAB>box_area
//! images/train/000000.png<TAB>3<TAB>412<TAB>900
//! ```
//!
//! `image` is the path as in the list file, `class` the 0-based label column. One row per
//! labelled (image, class); lines starting with `#` are comments. A separate file (rather than
//! extra list-file columns) keeps list files in the exact HashNet format other tools read.

use super::dataset::{ClassAreas, Dataset, ImageRef};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// The header line, checked on read.
pub const AREAS_HEADER: &str = "image\tclass\tpixel_area\tbox_area";

/// Writes the areas of every labelled (item, class) of `ds`, in item then class order.
pub fn write_areas(path: &Path, ds: &Dataset) -> Result<()> {
    let areas = ds
        .areas()
        .with_context(|| format!("split {} has no areas to write", ds.split()))?;
    let mut out = String::from(AREAS_HEADER);
    out.push('\n');
    for (i, item) in ds.items().iter().enumerate() {
        let ImageRef::Path(p) = item else {
            bail!(
                "{} is in memory: the areas file needs paths",
                ds.item_name(i)
            );
        };
        let name = p
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?;
        for k in ds.item_classes(i) {
            let _ = writeln!(
                out,
                "{name}\t{k}\t{}\t{}",
                areas.pixel[[i, k]],
                areas.boxed[[i, k]]
            );
        }
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads an areas file for the items of `ds` (matched by relative path). Every labelled
/// (item, class) must have exactly one row and no row may name an unknown image or an unlabelled
/// class; errors name the file and line.
pub fn read_areas(path: &Path, ds: &Dataset) -> Result<ClassAreas> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read areas file {}", path.display()))?;
    let src = path.display();
    let index: HashMap<&Path, usize> = ds
        .items()
        .iter()
        .enumerate()
        .filter_map(|(i, it)| match it {
            ImageRef::Path(p) => Some((p.as_path(), i)),
            ImageRef::Memory(_) => None,
        })
        .collect();
    let (n, c) = ds.labels().dim();
    let mut areas = ClassAreas::zeros(n, c);
    let mut seen = vec![false; n * c];
    let mut header = false;
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !header {
            if line.trim_end() != AREAS_HEADER {
                bail!("{src}:{lineno}: expected the header {AREAS_HEADER:?}");
            }
            header = true;
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 4 {
            bail!(
                "{src}:{lineno}: {} tab-separated fields, expected 4",
                f.len()
            );
        }
        let Some(&i) = index.get(Path::new(f[0])) else {
            bail!(
                "{src}:{lineno}: image {} is not in split {}",
                f[0],
                ds.split()
            );
        };
        let k: usize = f[1]
            .parse()
            .with_context(|| format!("{src}:{lineno}: class {:?} is not an index", f[1]))?;
        if k >= c || ds.labels()[[i, k]] == 0 {
            bail!(
                "{src}:{lineno}: image {} is not labelled with class {k}",
                f[0]
            );
        }
        if std::mem::replace(&mut seen[i * c + k], true) {
            bail!("{src}:{lineno}: second row for image {} class {k}", f[0]);
        }
        for (m, field, what) in [
            (&mut areas.pixel, f[2], "pixel_area"),
            (&mut areas.boxed, f[3], "box_area"),
        ] {
            let a: f64 = field
                .trim()
                .parse()
                .ok()
                .filter(|a: &f64| a.is_finite() && *a >= 0.0)
                .with_context(|| {
                    format!("{src}:{lineno}: {what} {field:?} is not a non-negative number")
                })?;
            m[[i, k]] = a;
        }
    }
    if !header {
        bail!("{src}: empty (no header)");
    }
    for i in 0..n {
        for k in ds.item_classes(i) {
            if !seen[i * c + k] {
                bail!("{src}: no row for {} class {k}", ds.item_name(i));
            }
        }
    }
    Ok(areas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::dataset::default_class_names;
    use crate::data::testutil::TempDir;
    use ndarray::array;
    use std::path::PathBuf;

    fn ds() -> Dataset {
        let items = ["a.png", "b.png"]
            .iter()
            .map(|p| ImageRef::Path(PathBuf::from(p)))
            .collect();
        Dataset::new(
            "s",
            "/r",
            items,
            array![[1, 0, 1], [0, 1, 0]],
            default_class_names(3),
        )
        .unwrap()
    }

    #[test]
    fn round_trips() {
        let dir = TempDir::new("areas");
        let areas = ClassAreas {
            pixel: array![[10.0, 0.0, 2.5], [0.0, 7.0, 0.0]],
            boxed: array![[16.0, 0.0, 9.0], [0.0, 64.0, 0.0]],
        };
        let ds = ds().with_areas(areas.clone()).unwrap();
        let p = dir.path().join("areas.tsv");
        write_areas(&p, &ds).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            text,
            format!("{AREAS_HEADER}\na.png\t0\t10\t16\na.png\t2\t2.5\t9\nb.png\t1\t7\t64\n")
        );
        assert_eq!(read_areas(&p, &ds).unwrap(), areas);
    }

    #[test]
    fn errors_name_file_and_line() {
        let dir = TempDir::new("areas-bad");
        let ds = ds();
        let cases = [
            ("a.png\t0\t1\t1\n", ":1:"),
            (
                "# c\nimage\tclass\tpixel_area\tbox_area\nz.png\t0\t1\t1\n",
                ":3:",
            ),
            (
                "image\tclass\tpixel_area\tbox_area\na.png\t1\t1\t1\n",
                ":2:",
            ),
            (
                "image\tclass\tpixel_area\tbox_area\na.png\t0\t-1\t1\n",
                ":2:",
            ),
            ("image\tclass\tpixel_area\tbox_area\na.png\t0\t1\n", ":2:"),
            (
                "image\tclass\tpixel_area\tbox_area\na.png\t0\t1\t1\na.png\t0\t1\t1\n",
                ":3:",
            ),
        ];
        for (j, (text, want)) in cases.iter().enumerate() {
            let p = dir.write(&format!("bad{j}.tsv"), text);
            let err = read_areas(&p, &ds).unwrap_err().to_string();
            assert!(err.contains(&format!("bad{j}.tsv{want}")), "{err}");
        }
        let p = dir.write(
            "short.tsv",
            "image\tclass\tpixel_area\tbox_area\na.png\t0\t1\t1\na.png\t2\t1\t1\n",
        );
        let err = read_areas(&p, &ds).unwrap_err().to_string();
        assert!(err.contains("b.png") && err.contains("class 1"), "{err}");
    }
}
