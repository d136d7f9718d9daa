//! What a first-time user reads: the missing-weights error says where the weights are looked
//! for (`ICS_DATA_DIR`), methods are printed as "ICS"/"CSQ" (not Rust's `Ics`/`Csq`), and
//! "precision within Hamming radius 2" is explained where it is printed. Uses a tiny foreign
//! ONNX backbone so no Lite0 is needed.

mod cli_util;

use cli_util::{fresh_dir, ok, s, toy_backbone, write_png};

#[test]
fn missing_lite0_weights_name_ics_data_dir() {
    let dir = fresh_dir("messages-weights");
    let empty = dir.join("no-data-here");
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ics-train"))
        .env("ICS_DATA_DIR", &empty)
        .args(["--quiet", "backbone", "import", "--out"])
        .arg(dir.join("lite0.onnx"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ICS_DATA_DIR=/path/to/ics_hash/.cache/data"),
        "{err}"
    );
    assert!(err.contains("make setup") && err.contains("--pth"), "{err}");
}

#[test]
fn methods_print_as_ics_and_csq_and_radius_precision_is_explained() {
    let dir = fresh_dir("messages-names");
    let bb = toy_backbone(&dir);
    let img = dir.join("img");
    std::fs::create_dir_all(&img).unwrap();
    let mut list = String::new();
    for i in 0..24u32 {
        write_png(&img.join(format!("{i}.png")), 16, i);
        list.push_str(&format!(
            "img/{i}.png {}\n",
            ["1 0", "0 1", "1 1"][i as usize % 3]
        ));
    }
    let train = dir.join("train.txt");
    std::fs::write(&train, list).unwrap();
    let data = [
        "--train",
        s(&train),
        "--query",
        s(&train),
        "--database",
        s(&train),
    ];
    let mut logs = String::new();
    for method in ["ics", "csq"] {
        let model = dir.join(format!("{method}.icsm"));
        let mut args = vec!["train", "--backbone", s(&bb)];
        args.extend_from_slice(&data);
        args.extend_from_slice(&["--method", method, "--bits", "8", "--hidden", "none"]);
        args.extend_from_slice(&["--epochs", "3", "--r", "10", "--out", s(&model)]);
        logs.push_str(&ok(&args).1);
        let eval = dir.join(format!("eval-{method}"));
        let (_, err) = ok(&[
            "eval",
            "--model",
            s(&model),
            "--r",
            "10",
            "--no-plots",
            "--out",
            s(&eval),
        ]);
        logs.push_str(&err);
    }
    for name in [
        "trained ICS 8 bits",
        "trained CSQ 8 bits",
        ": ICS 8 bits: mAP@10",
        ": CSQ 8 bits: mAP@10",
    ] {
        assert!(logs.contains(name), "no '{name}' in:\n{logs}");
    }
    assert!(!logs.contains("Ics") && !logs.contains("Csq"), "{logs}");
    let explained = logs
        .lines()
        .filter(|l| l.contains("precision within Hamming radius 2"))
        .collect::<Vec<_>>();
    assert!(explained.len() >= 4, "{logs}");
    assert!(
        explained
            .iter()
            .all(|l| l.contains("share of database images within 2 bits")),
        "{logs}"
    );
}
