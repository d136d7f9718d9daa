//! DeepHash-pytorch / HashNet list files: one image a line, `relative/path.jpg b_1 ... b_C`
//! with b_k in {0, 1}, whitespace-separated, paths relative to a root folder (an absolute path
//! is used as is). This is the format the published COCO/NUS-WIDE splits are distributed in, so
//! users can train on them unchanged; the composer writes its splits in it too.
//!
//! The format has no class names; they come from a separate one-name-a-line file
//! ([`read_class_names`]) or default to `class 0`, `class 1`, ...

use super::dataset::{default_class_names, Dataset, ImageRef};
use anyhow::{bail, Context, Result};
use ndarray::Array2;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The parsed lines of a list file, before any file-system check.
#[derive(Clone, Debug, PartialEq)]
pub struct ListEntries {
    pub paths: Vec<PathBuf>,
    /// n x C multi-hot.
    pub labels: Array2<u8>,
    /// 1-based line number of each entry (blank lines are skipped), for later messages.
    pub lines: Vec<usize>,
}

/// Parses list-file text; `source` names the file in errors (`file:line: ...`).
pub fn parse_list(text: &str, source: &Path) -> Result<ListEntries> {
    let src = source.display();
    let mut paths = Vec::new();
    let mut flat = Vec::new();
    let mut lines = Vec::new();
    let mut width: Option<(usize, usize)> = None; // (C, line that set it)
    for (idx, line) in text.lines().enumerate() {
        let lineno = idx + 1;
        let mut toks = line.split_whitespace();
        let Some(path) = toks.next() else { continue };
        let start = flat.len();
        for (j, tok) in toks.enumerate() {
            match tok {
                "0" => flat.push(0u8),
                "1" => flat.push(1u8),
                _ => bail!(
                    "{src}:{lineno}: label {tok:?} in column {} is not 0 or 1",
                    j + 1
                ),
            }
        }
        let c = flat.len() - start;
        if c == 0 {
            bail!("{src}:{lineno}: expected `path b_1 ... b_C`, found only {path:?}");
        }
        match width {
            None => width = Some((c, lineno)),
            Some((w, first)) if w != c => {
                bail!("{src}:{lineno}: {c} labels, but line {first} has {w} (label count mismatch)")
            }
            _ => {}
        }
        if flat[start..].iter().all(|&b| b == 0) {
            bail!("{src}:{lineno}: {path} has no label set (every training image needs one)");
        }
        paths.push(PathBuf::from(path));
        lines.push(lineno);
    }
    let Some((c, _)) = width else {
        bail!("{src}: no entries");
    };
    let labels = Array2::from_shape_vec((paths.len(), c), flat).expect("rows have width c");
    Ok(ListEntries {
        paths,
        labels,
        lines,
    })
}

/// Reads a list file into a dataset whose root is `root`, checking that every image exists
/// (the error names the list file and line). Class names default to `class k`; use
/// [`Dataset::with_class_names`] with [`read_class_names`] to set real ones.
pub fn read_list_file(list: &Path, root: &Path, split: &str) -> Result<Dataset> {
    let text = std::fs::read_to_string(list)
        .with_context(|| format!("cannot read list file {}", list.display()))?;
    let entries = parse_list(&text, list)?;
    for (p, line) in entries.paths.iter().zip(&entries.lines) {
        let full = root.join(p);
        if !full.is_file() {
            bail!(
                "{}:{line}: image {} does not exist (root {})",
                list.display(),
                full.display(),
                root.display()
            );
        }
    }
    let c = entries.labels.ncols();
    let items = entries.paths.into_iter().map(ImageRef::Path).collect();
    Dataset::new(split, root, items, entries.labels, default_class_names(c))
        .with_context(|| format!("in list file {}", list.display()))
}

/// Writes a dataset's file items and labels as a list file (paths relative to its root).
/// Paths with whitespace cannot be represented and are an error, as are in-memory items.
pub fn write_list_file(path: &Path, ds: &Dataset) -> Result<()> {
    let mut out = String::with_capacity(ds.len() * (24 + 2 * ds.num_classes()));
    for (i, item) in ds.items().iter().enumerate() {
        let ImageRef::Path(p) = item else {
            bail!("{} is in memory: a list file needs paths", ds.item_name(i));
        };
        let s = p
            .to_str()
            .with_context(|| format!("{} is not UTF-8", p.display()))?;
        if s.is_empty() || s.chars().any(char::is_whitespace) {
            bail!("{}: path {s:?} is empty or has whitespace", ds.item_name(i));
        }
        out.push_str(s);
        for &b in ds.labels().row(i) {
            let _ = write!(out, " {b}");
        }
        out.push('\n');
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads class names, one a line (column order); trailing blank lines are ignored.
pub fn read_class_names(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read class names {}", path.display()))?;
    let names: Vec<String> = text
        .trim_end()
        .lines()
        .map(|l| l.trim().to_string())
        .collect();
    if let Some(i) = names.iter().position(String::is_empty) {
        bail!("{}:{}: empty class name", path.display(), i + 1);
    }
    if names.is_empty() {
        bail!("{}: no class names", path.display());
    }
    Ok(names)
}

/// Writes class names one a line.
pub fn write_class_names(path: &Path, names: &[String]) -> Result<()> {
    if let Some(n) = names
        .iter()
        .find(|n| n.trim().is_empty() || n.contains('\n'))
    {
        bail!("class name {n:?} cannot be written one a line");
    }
    let mut text = names.join("\n");
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::TempDir;
    use ndarray::array;

    fn err_of(text: &str) -> String {
        format!(
            "{:#}",
            parse_list(text, Path::new("lists/train.txt")).unwrap_err()
        )
    }

    #[test]
    fn parses_and_skips_blank_lines() {
        let e = parse_list("a/1.jpg 0 1 1\n\n  b/2.jpg 1 0 0  \n", Path::new("x")).unwrap();
        assert_eq!(
            e.paths,
            vec![PathBuf::from("a/1.jpg"), PathBuf::from("b/2.jpg")]
        );
        assert_eq!(e.labels, array![[0, 1, 1], [1, 0, 0]]);
        assert_eq!(e.lines, vec![1, 3]);
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = err_of("a.jpg 0 1\nb.jpg 1 0\nc.jpg 1 0 1\n");
        assert!(
            err.contains("lists/train.txt:3:") && err.contains("mismatch"),
            "{err}"
        );
        let err = err_of("a.jpg 0 1\nb.jpg 0 0\n");
        assert!(
            err.contains("lists/train.txt:2:") && err.contains("no label"),
            "{err}"
        );
        let err = err_of("a.jpg 0 1\n\nb.jpg 0 2\n");
        assert!(
            err.contains("lists/train.txt:3:") && err.contains("\"2\""),
            "{err}"
        );
        let err = err_of("a.jpg 0 1\nb.jpg\n");
        assert!(err.contains("lists/train.txt:2:"), "{err}");
        let err = err_of("a.jpg 0 1.0\n");
        assert!(
            err.contains("lists/train.txt:1:") && err.contains("1.0"),
            "{err}"
        );
        let err = err_of("\n\n");
        assert!(err.contains("no entries"), "{err}");
    }

    #[test]
    fn missing_image_names_list_line() {
        let dir = TempDir::new("list-missing");
        dir.write("img/a.png", b"x");
        let list = dir.write("train.txt", "img/a.png 1 0\nimg/b.png 0 1\n");
        let err = format!(
            "{:#}",
            read_list_file(&list, dir.path(), "train").unwrap_err()
        );
        assert!(
            err.contains("train.txt:2:") && err.contains("img/b.png"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            read_list_file(&dir.path().join("nope.txt"), dir.path(), "train").unwrap_err()
        );
        assert!(err.contains("nope.txt"), "{err}");
    }

    #[test]
    fn round_trips_with_class_names() {
        let dir = TempDir::new("list-rt");
        dir.write("img/a.png", b"x");
        dir.write("img/b.png", b"x");
        let list = dir.write("train.txt", "img/a.png 1 0 1\nimg/b.png 0 1 0\n");
        let names = vec![
            "Ankle boot".to_string(),
            "digit 3".into(),
            "T-shirt/top".into(),
        ];
        dir.write("classes.txt", names.join("\n") + "\n");
        let ds = read_list_file(&list, dir.path(), "train")
            .unwrap()
            .with_class_names(read_class_names(&dir.path().join("classes.txt")).unwrap())
            .unwrap();
        assert_eq!(ds.class_names(), names.as_slice());
        assert_eq!(ds.item_classes(0), vec![0, 2]);
        let out = dir.path().join("copy.txt");
        write_list_file(&out, &ds).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            std::fs::read_to_string(&list).unwrap()
        );
        write_class_names(&dir.path().join("c2.txt"), &names).unwrap();
        assert_eq!(read_class_names(&dir.path().join("c2.txt")).unwrap(), names);
        let bad = dir.write("bad.txt", "a\n\nb\n");
        let err = read_class_names(&bad).unwrap_err().to_string();
        assert!(err.contains("bad.txt:2:"), "{err}");
    }
}
