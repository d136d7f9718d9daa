//! Bad inputs give errors that name the file (and the line, for text formats), with exit
//! code 1; usage errors exit with 2. Uses a tiny foreign ONNX backbone so no Lite0 is needed.

mod cli_util;

use cli_util::{bin, fails, fresh_dir, ok, s, toy_backbone, write_png};

/// A list-file dataset of `n` 16-px images (all present) under `dir`; returns the list file.
fn dataset(dir: &std::path::Path, name: &str, n: u32, label_rows: &[&str]) -> std::path::PathBuf {
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let mut text = String::new();
    for i in 0..n {
        let p = img.join(format!("{name}{i}.png"));
        write_png(&p, 16, i);
        text.push_str(&format!(
            "img/{name}{i}.png {}\n",
            label_rows[i as usize % label_rows.len()]
        ));
    }
    let list = dir.join(format!("{name}.txt"));
    std::fs::write(&list, text).unwrap();
    list
}

#[test]
fn bad_data_errors_name_file_and_line() {
    let dir = fresh_dir("errors");
    let bb = toy_backbone(&dir);
    let bbs = s(&bb);
    let model = dir.join("m.icsm");
    let train = |list: &std::path::Path| {
        fails(&[
            "train",
            "--backbone",
            bbs,
            "--train",
            s(list),
            "--bits",
            "8",
            "--epochs",
            "1",
            "--hidden",
            "none",
            "--out",
            s(&model),
        ])
    };

    // Label count mismatch on line 3.
    let list = dataset(&dir, "mismatch", 4, &["1 0 0", "0 1 0"]);
    let mut text = std::fs::read_to_string(&list).unwrap();
    text = text.replacen("img/mismatch2.png 1 0 0", "img/mismatch2.png 1 0", 1);
    std::fs::write(&list, text).unwrap();
    let err = train(&list);
    assert!(
        err.contains(&format!("{}:3:", list.display())) && err.contains("label count mismatch"),
        "{err}"
    );

    // An empty label row on line 2.
    let list = dataset(&dir, "empty", 3, &["1 0", "0 0", "0 1"]);
    let err = train(&list);
    assert!(
        err.contains(&format!("{}:2:", list.display())) && err.contains("no label"),
        "{err}"
    );

    // A missing image on line 2.
    let list = dataset(&dir, "missing", 3, &["1 0", "0 1"]);
    std::fs::remove_file(dir.join("img/missing1.png")).unwrap();
    let err = train(&list);
    assert!(
        err.contains(&format!("{}:2:", list.display())) && err.contains("does not exist"),
        "{err}"
    );

    // An unreadable image on line 3: named with its list line by the feature extraction.
    let list = dataset(&dir, "corrupt", 4, &["1 0", "0 1"]);
    std::fs::write(dir.join("img/corrupt2.png"), b"\x89PNG\r\n\x1a\n garbage").unwrap();
    let err = fails(&["features", "--backbone", bbs, "--train", s(&list)]);
    assert!(
        err.contains(&format!("{}:3: image", list.display()))
            && err.contains("corrupt2.png")
            && err.to_lowercase().contains("png"),
        "{err}"
    );

    // Class names that do not match the label columns.
    let list = dataset(&dir, "names", 2, &["1 0", "0 1"]);
    let names = dir.join("class-names.txt");
    std::fs::write(&names, "a\nb\nc\n").unwrap();
    let err = fails(&[
        "features",
        "--backbone",
        bbs,
        "--train",
        s(&list),
        "--classes",
        s(&names),
    ]);
    assert!(
        err.contains(s(&names)) && err.contains("3 class names"),
        "{err}"
    );

    // An areas file naming an image the split does not have, on line 2.
    let areas = dir.join("areas.tsv");
    std::fs::write(
        &areas,
        "image\tclass\tpixel_area\tbox_area\nimg/other.png\t0\t10\t20\n",
    )
    .unwrap();
    let err = fails(&[
        "features",
        "--backbone",
        bbs,
        "--train",
        s(&list),
        "--train-areas",
        s(&areas),
    ]);
    assert!(err.contains(&format!("{}:2", areas.display())), "{err}");

    // A list file that does not exist.
    let err = fails(&[
        "features",
        "--backbone",
        bbs,
        "--train",
        "/nonexistent/list.txt",
    ]);
    assert!(err.contains("/nonexistent/list.txt"), "{err}");
}

#[test]
fn bad_files_are_named() {
    let dir = fresh_dir("badfiles");
    let list = dir.join("l.txt");
    write_png(&dir.join("a.png"), 16, 1);
    std::fs::write(&list, "a.png 1 0\n").unwrap();

    // Missing backbone file.
    let err = fails(&[
        "train",
        "--backbone",
        "/nonexistent/bb.onnx",
        "--train",
        s(&list),
        "--out",
        s(&dir.join("m.icsm")),
    ]);
    assert!(
        err.contains("/nonexistent/bb.onnx") && err.contains("backbone import"),
        "{err}"
    );

    // An ONNX file that is not a backbone file (no import metadata), and garbage.
    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"not a model at all").unwrap();
    let err = fails(&["features", "--backbone", s(&garbage), "--train", s(&list)]);
    assert!(err.contains(s(&garbage)), "{err}");

    // A model file that is not one.
    let err = fails(&[
        "export",
        "--model",
        s(&garbage),
        "--out",
        s(&dir.join("x.onnx")),
    ]);
    assert!(
        err.contains(s(&garbage)) && err.contains("not an ics-train model file"),
        "{err}"
    );
    // encode with an ONNX file without the model contract.
    let toy = toy_backbone(&dir);
    let err = fails(&["encode", "--model", s(&toy), s(&dir.join("a.png"))]);
    assert!(err.contains(s(&toy)) && err.contains("ics_hash."), "{err}");

    // A training configuration with a misspelt key.
    let cfg = dir.join("cfg.json");
    std::fs::write(&cfg, r#"{"lamda_r": 1.0}"#).unwrap();
    let err = fails(&[
        "train",
        "--backbone",
        s(&toy),
        "--train",
        s(&list),
        "--config",
        s(&cfg),
        "--out",
        s(&dir.join("m.icsm")),
    ]);
    assert!(err.contains(s(&cfg)) && err.contains("lamda_r"), "{err}");

    // Invalid parameters are refused by name before any work.
    let err = fails(&[
        "train",
        "--backbone",
        s(&toy),
        "--train",
        s(&list),
        "--bits",
        "12",
        "--out",
        s(&dir.join("m.icsm")),
    ]);
    assert!(err.contains("bits"), "{err}");

    // The composer refuses a non-empty output folder.
    let err = fails(&["data", "compose", "--size", "small", "--out", s(&dir)]);
    assert!(err.contains(s(&dir)) && err.contains("not empty"), "{err}");

    // Usage errors: clap's exit code 2.
    let out = bin().args(["train", "--no-such-flag"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin().arg("no-such-command").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_explains_every_command() {
    let (top, _) = ok(&["--help"]);
    for c in [
        "data", "backbone", "features", "train", "eval", "export", "encode", "bench",
    ] {
        assert!(top.contains(c), "{c} missing from --help:\n{top}");
    }
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["data", "compose"],
            &["--out", "--size", "--canvas", "--train", "--seed"],
        ),
        (
            &["backbone", "import"],
            &["--pth", "--backbone", "--feature-output", "--size"],
        ),
        (
            &["features"],
            &["--backbone", "--data", "--cache-dir", "--splits"],
        ),
        (
            &["train"],
            &[
                "--method",
                "--bits",
                "--lambda-r",
                "--hidden",
                "--epochs",
                "--config",
                "--out",
            ],
        ),
        (
            &["eval"],
            &["--model", "--cosine", "--codes", "--out", "--font"],
        ),
        (&["export"], &["--model", "--head-only", "--check", "--out"]),
        (
            &["encode"],
            &["--model", "--list", "--features", "--format"],
        ),
        (
            &["bench"],
            &["--small", "--bits", "--work", "--area-train", "--out"],
        ),
    ];
    for (cmd, flags) in cases {
        let mut args = cmd.to_vec();
        args.push("--help");
        let (text, _) = ok(&args);
        for f in *flags {
            assert!(text.contains(f), "{f} missing from {cmd:?} --help:\n{text}");
        }
    }
}
