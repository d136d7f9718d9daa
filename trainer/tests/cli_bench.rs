//! `ics-train bench --small` end to end: composes both benchmarks, imports Lite0, extracts
//! features, trains ICS and CSQ, and writes the JSON report, the markdown table and the plots;
//! a second run reuses the composed data and the feature cache.
//!
//! Needs scripts/setup.sh's offline data and ONNX Runtime.

mod cli_util;

use cli_util::{fresh_dir, ok, s};

#[test]
fn small_bench_writes_report_table_and_plots() {
    let dir = fresh_dir("bench");
    let work = dir.join("work");
    let out = dir.join("out");
    let args = [
        "bench",
        "--small",
        "--bits",
        "16,32",
        "--hidden",
        "none",
        "--epochs",
        "6",
        "--work",
        s(&work),
        "--out",
        s(&out),
    ];
    let (stdout, log) = ok(&args);
    // The markdown table is printed and written.
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(stdout.contains(&md), "stdout lacks the table:\n{stdout}");
    for row in [
        "| 16 | ",
        "| 32 | ",
        "Cosine ranking",
        "Spearman learned",
        "| target |",
        "Ranking: Hamming distance ascending, ties by database index",
    ] {
        assert!(md.contains(row), "{row} missing from bench.md:\n{md}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(v["train_images"], 200);
    assert_eq!(v["queries"], 50);
    assert_eq!(v["database"], 200);
    assert_eq!(v["models"].as_array().unwrap().len(), 4);
    assert!(v["feature_speed"]["ms_per_image"].as_f64().unwrap() > 0.0);
    let area = &v["area"]["pixel"];
    assert_eq!(area["images"], 200, "{area}");
    assert_eq!(area["raw"]["uniform"]["spearman"], 0.0, "{area}");
    for t in v["targets"].as_array().unwrap() {
        assert!(t["met"].is_boolean() && t["measured"].is_string(), "{t}");
    }
    for m in v["models"].as_array().unwrap() {
        let r = &m["report"]["retrieval"];
        assert!(
            r["map_at_r"].as_f64().unwrap() > r["random_codes_map_at_r"].as_f64().unwrap(),
            "{} does not beat random codes",
            m["name"]
        );
        // Per-epoch weight diagnostics, with the areas of the composed training canvases.
        let d = &m["report"]["epochs"][0]["diagnostics"];
        assert!(d["images"].as_u64().unwrap() > 0, "{d}");
        assert!(
            d["spearman"].is_f64() && d["loss_range_mean"].is_f64(),
            "{d}"
        );
        let file = m["file"].as_str().unwrap();
        assert!(std::path::Path::new(file).is_file(), "{file}");
    }
    for p in [
        "map_vs_bits.png",
        "pr_curves.png",
        "weights_vs_area.png",
        "dynamics_ics16.png",
    ] {
        let bytes = std::fs::read(out.join(p)).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{p}");
    }
    assert!(
        log.contains("composed") && log.contains("cached in"),
        "{log}"
    );

    // Second run: data and features are reused.
    let (_, log) = ok(&args);
    assert_eq!(
        log.matches("reusing the composed benchmark").count(),
        2,
        "{log}"
    );
    assert_eq!(log.matches("from cache").count(), 4, "{log}");
    assert!(!log.contains("cached in"), "{log}");
}
