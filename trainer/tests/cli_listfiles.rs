//! The README's "use it on your own images" path: plain list files (`path b_1 ... b_C`) and a
//! class-names file instead of a composed benchmark folder, through features, train, eval and
//! export. The list files are the ones `data compose` writes, moved to another folder, so the
//! image paths resolve through --image-root as a user's own would.
//!
//! Needs scripts/setup.sh's offline data and ONNX Runtime.

mod cli_util;

use cli_util::{data_file, fresh_dir, ok, s};

#[test]
fn list_files_through_features_train_eval_export() {
    let dir = fresh_dir("listfiles");
    let data = dir.join("data");
    ok(&[
        "data",
        "compose",
        "--size",
        "small",
        "--canvas",
        "64",
        "--train",
        "120",
        "--query",
        "20",
        "--database",
        "80",
        "--seed",
        "9",
        "--out",
        s(&data),
    ]);
    // The user's own layout: list files in one folder, images under another.
    let lists = dir.join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    for f in ["train.txt", "query.txt", "database.txt", "classes.txt"] {
        std::fs::copy(data.join(f), lists.join(f)).unwrap();
    }
    let bb = dir.join("lite0.onnx");
    ok(&[
        "backbone",
        "import",
        "--pth",
        s(&data_file("efficientnet-lite0-57934424.pth")),
        "--size",
        "64",
        "--out",
        s(&bb),
    ]);
    let (train, query, database, classes) = (
        lists.join("train.txt"),
        lists.join("query.txt"),
        lists.join("database.txt"),
        lists.join("classes.txt"),
    );
    let splits = [
        "--train",
        s(&train),
        "--query",
        s(&query),
        "--database",
        s(&database),
        "--classes",
        s(&classes),
        "--image-root",
        s(&data),
    ];
    let with = |head: &[&str], tail: &[&str]| -> Vec<String> {
        head.iter()
            .chain(splits.iter())
            .chain(tail.iter())
            .map(|a| a.to_string())
            .collect()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(&refs)
    };
    run(with(&["features", "--backbone", s(&bb)], &[]));
    let model = dir.join("mine.icsm");
    let (_, log) = run(with(
        &["train", "--backbone", s(&bb)],
        &[
            "--bits",
            "32",
            "--hidden",
            "none",
            "--epochs",
            "6",
            "--r",
            "50",
            "--out",
            s(&model),
        ],
    ));
    assert!(
        log.contains("epoch  6/6") || log.contains("epoch 6/6"),
        "{log}"
    );
    assert!(model.is_file());
    let eval = dir.join("eval");
    run(with(
        &["eval", "--model", s(&model)],
        &["--r", "50", "--no-plots", "--out", s(&eval)],
    ));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("report.json")).unwrap()).unwrap();
    let retrieval = &report["models"][0]["report"]["retrieval"];
    assert_eq!(retrieval["queries"].as_u64(), Some(20), "{report}");
    assert_eq!(retrieval["database"].as_u64(), Some(80), "{report}");
    assert!(retrieval["map_at_r"].as_f64().unwrap() > 0.0);
    let onnx = dir.join("mine.onnx");
    ok(&["export", "--model", s(&model), "--out", s(&onnx)]);
    assert!(onnx.is_file());
}
