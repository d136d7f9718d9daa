//! Helpers of the `cli_*` tests: run the `ics-train` binary, fresh folders, small inputs.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ics_train::data::image::encode_gray_png;
use ics_train::onnx::save_model;

/// This repository's offline data folder (filled by scripts/setup.sh). Tests run from the
/// crate folder, so the binary is told where it is (`ICS_DATA_DIR`) rather than finding
/// `.cache/data` under its current folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/data")
}

/// The binary under test, with `ICS_DATA_DIR` set to [`data_dir`].
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ics-train"));
    c.env(ics_train::data::source::DATA_DIR_ENV, data_dir());
    c
}

fn show(args: &[&str], out: &Output) -> String {
    format!(
        "ics-train {}\nexit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `ics-train args` (quiet), asserts success; (stdout, stderr).
pub fn ok(args: &[&str]) -> (String, String) {
    let out = bin().arg("--quiet").args(args).output().expect("runs");
    assert!(out.status.success(), "{}", show(args, &out));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `ics-train args`, asserts failure with exit code 1 and an `error:` line; stderr.
pub fn fails(args: &[&str]) -> String {
    let out = bin().arg("--quiet").args(args).output().expect("runs");
    assert_eq!(out.status.code(), Some(1), "{}", show(args, &out));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("error: "), "{}", show(args, &out));
    err
}

/// A fresh, empty folder for one test, removed when the test passes (kept when it fails, to
/// look at).
pub fn fresh_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("ics-cli-{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    TestDir(dir)
}

/// See [`fresh_dir`].
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test paths")
}

/// A gray PNG of `side` x `side` with a bright square whose position depends on `seed`.
pub fn write_png(path: &Path, side: u32, seed: u32) {
    let mut px = vec![0u8; (side * side) as usize];
    let (x0, y0) = (seed % (side / 2), (seed * 7) % (side / 2));
    for y in y0..y0 + side / 2 {
        for x in x0..x0 + side / 2 {
            px[(y * side + x) as usize] = 200;
        }
    }
    std::fs::write(path, encode_gray_png(side, side, &px, true).unwrap()).unwrap();
}

/// The toy backbone at 8 x 8 (features `pooled`, N x 3 x 1 x 1) imported with `backbone
/// import`; returns the backbone file.
pub fn toy_backbone(dir: &Path) -> PathBuf {
    let onnx = dir.join("toy.onnx");
    save_model(&ics_train::onnx::toy::toy_backbone(8), &onnx).unwrap();
    let out = dir.join("toy-backbone.onnx");
    ok(&[
        "backbone",
        "import",
        "--backbone",
        s(&onnx),
        "--feature-output",
        "pooled",
        "--size",
        "8",
        "--out",
        s(&out),
    ]);
    out
}

/// Where scripts/setup.sh puts the offline data; a missing file fails with a hint.
pub fn data_file(name: &str) -> PathBuf {
    let p = data_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/setup.sh (it downloads the offline data)",
        p.display()
    );
    p
}
