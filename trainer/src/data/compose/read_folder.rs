//! Reading a composed folder back: a split as a [`Dataset`] (list file, class names, areas;
//! the manifest's format and version checked) and the `{split}_instances.tsv` rows.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};

use super::manifest::{Manifest, INSTANCES_HEADER, MANIFEST_FORMAT, MANIFEST_VERSION};
use crate::data::areas::read_areas;
use crate::data::dataset::Dataset;
use crate::data::listfile::{read_class_names, read_list_file};

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
    use crate::data::testutil::TempDir;

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
}
