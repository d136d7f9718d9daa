//! Step 6: what the run writes besides the model files and the plots: `bench.json` (the
//! [`BenchReport`]) and `bench.md` ([`markdown`]: the table, the area results, the targets).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::record::{BenchReport, Extraction};
use super::targets::{find, modes};
use crate::eval::{format_duration, ModelEval};
use crate::ics::{FinetuneMode, Method};

/// The files written, and the markdown (the command prints it).
pub struct Written {
    pub json: PathBuf,
    pub markdown_file: PathBuf,
    pub markdown: String,
}

/// Writes `out/bench.json` and `out/bench.md`.
pub fn write_report(report: &BenchReport, out: &Path) -> Result<Written> {
    let markdown = markdown(report);
    let json = out.join("bench.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)? + "\n")
        .with_context(|| format!("cannot write {}", json.display()))?;
    let markdown_file = out.join("bench.md");
    std::fs::write(&markdown_file, &markdown)
        .with_context(|| format!("cannot write {}", markdown_file.display()))?;
    Ok(Written {
        json,
        markdown_file,
        markdown,
    })
}

/// The markdown of `bench.md` (also printed): the table, the area results, the targets.
pub fn markdown(b: &BenchReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## ics-train bench ({:?}): {} train / {} query / {} database, {}, mAP@{}\n",
        b.size, b.train_images, b.queries, b.database, b.backbone, b.r
    );
    let _ = writeln!(s, "Ranking: {}.\n", crate::eval::TIE_RULE);
    let mut bits: Vec<usize> = b
        .models
        .iter()
        .filter_map(|m| m.report.retrieval.as_ref().map(|r| r.bits))
        .collect();
    bits.sort_unstable();
    bits.dedup();
    let _ = writeln!(
        s,
        "| backbone | bits | ICS mAP | CSQ mAP | ICS - CSQ (points) | random codes | ICS train s | CSQ train s |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in modes(&b.models) {
        let label = match mode {
            FinetuneMode::None => "frozen (head only)".to_string(),
            m => format!("fine-tuned {m}"),
        };
        for &k in &bits {
            let i = find(&b.models, mode, Method::Ics, k);
            let c = find(&b.models, mode, Method::Csq, k);
            if i.is_none() && c.is_none() {
                continue;
            }
            let f = |m: Option<&ModelEval>| {
                m.and_then(|m| m.map())
                    .map_or("-".into(), |v| format!("{v:.4}"))
            };
            let secs = |m: Option<&ModelEval>| {
                m.map_or("-".into(), |m| format!("{:.1}", m.report.train_seconds))
            };
            let diff = match (i.and_then(|m| m.map()), c.and_then(|m| m.map())) {
                (Some(a), Some(b)) => format!("{:+.2}", 100.0 * (a - b)),
                _ => "-".into(),
            };
            let random = i
                .or(c)
                .and_then(|m| m.report.retrieval.as_ref())
                .map_or("-".into(), |r| format!("{:.4}", r.random_codes_map_at_r));
            let _ = writeln!(
                s,
                "| {label} | {k} | {} | {} | {diff} | {random} | {} | {} |",
                f(i),
                f(c),
                secs(i),
                secs(c)
            );
        }
    }
    if b.models
        .iter()
        .any(|m| m.report.config.method == Method::Orthohash)
    {
        let _ = writeln!(
            s,
            "\n| backbone | bits | OrthoHash mAP | ICS - OrthoHash (points) |\n|---|---:|---:|---:|"
        );
        for mode in modes(&b.models) {
            let label = match mode {
                FinetuneMode::None => "frozen (head only)".to_string(),
                m => format!("fine-tuned {m}"),
            };
            for &k in &bits {
                let Some(o) = find(&b.models, mode, Method::Orthohash, k).and_then(|m| m.map())
                else {
                    continue;
                };
                let diff = find(&b.models, mode, Method::Ics, k)
                    .and_then(|m| m.map())
                    .map_or("-".into(), |i| format!("{:+.2}", 100.0 * (i - o)));
                let _ = writeln!(s, "| {label} | {k} | {o:.4} | {diff} |");
            }
        }
    }
    if !b.finetune_runs.is_empty() {
        let _ = writeln!(
            s,
            "\nFine-tuning runs (backbone and head trained together; images/s through the \
             trained part's forward + backward passes):\n"
        );
        let _ = writeln!(
            s,
            "| model | mode | images | px | epochs | trained parameters | images/s fwd+bwd | network s | inputs s | preparing s | epochs s | total s |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &b.finetune_runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
                r.name,
                r.mode,
                r.train_images,
                r.image_size,
                r.epochs,
                r.trained_parameters,
                crate::eval::format_rate(r.images_per_second),
                r.network_seconds,
                r.input_seconds,
                r.prepare_seconds,
                r.train_seconds,
                r.total_seconds()
            );
        }
        for m in b
            .models
            .iter()
            .filter(|m| m.report.config.finetune.mode.trains_backbone())
        {
            if let Some(a) = &m.report.agreement {
                let _ = writeln!(
                    s,
                    "\n{}: weights vs pixel-area shares on its {} multi-label training canvases: \
                     Spearman {:.3} (uniform {:.3}), top-1 {:.3}.",
                    m.name,
                    a.images,
                    a.raw.learned.spearman,
                    a.raw.uniform.spearman,
                    a.raw.learned.top1
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\nCosine ranking of the raw {}-d float features: mAP@{} **{:.4}**.",
        b.feature_dim, b.r, b.cosine_map_at_r
    );
    if let Some(a) = &b.area {
        let _ = writeln!(
            s,
            "\nWeight vs area share ({} area-benchmark training images with 2-3 labels, ICS {} \
             bits, trained in {:.1} s):\n",
            a.pixel.images, a.bits, a.train_seconds
        );
        let _ = writeln!(
            s,
            "| areas | Spearman learned | Spearman uniform | top-1 learned | top-1 uniform | KL learned | KL uniform |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
        for (name, r) in [
            ("pixel, raw", &a.pixel.raw),
            ("pixel, class-normalised", &a.pixel.class_normalised),
            ("box, raw", &a.boxed.raw),
            ("box, class-normalised", &a.boxed.class_normalised),
        ] {
            let _ = writeln!(
                s,
                "| {name} | {:.3} | {:.3} | {:.3} | {:.3} | {:.4} | {:.4} |",
                r.learned.spearman,
                r.uniform.spearman,
                r.learned.top1,
                r.uniform.top1,
                r.learned.kl,
                r.uniform.kl
            );
        }
        let _ = writeln!(
            s,
            "\nSpearman (learned weights vs pixel-area shares) by the smallest area ratio between \
             a canvas's instances:\n"
        );
        let _ = writeln!(s, "| area ratio | canvases | Spearman |");
        let _ = writeln!(s, "|---|---:|---:|");
        for b in a.by_size_ratio.iter().chain([&a.different_sizes]) {
            let range = match b.max_ratio {
                Some(hi) => format!("{:.2} - {hi:.2}", b.min_ratio),
                None => format!(">= {:.2}", b.min_ratio),
            };
            let _ = writeln!(s, "| {range} | {} | {:.3} |", b.images, b.spearman);
        }
    }
    let fs = &b.feature_speed;
    let _ = writeln!(
        s,
        "\nFeature extraction: {:.2} ms/image (preprocessing {:.2}, inference {:.2}) on {} fresh \
         images.",
        fs.ms_per_image, fs.preprocess_ms_per_image, fs.inference_ms_per_image, fs.images
    );
    let fresh: Vec<&Extraction> = b.extractions.iter().filter(|e| !e.from_cache).collect();
    if !fresh.is_empty() {
        let n: usize = fresh.iter().map(|e| e.images).sum();
        let secs: f64 = fresh.iter().map(|e| e.seconds).sum();
        let _ = writeln!(
            s,
            "This run extracted {n} images in {:.1} s ({:.2} ms/image); the rest came from the \
             cache.",
            secs,
            1e3 * secs / n.max(1) as f64
        );
    }
    let c = &b.base_config;
    let _ = writeln!(
        s,
        "\nConfiguration (both methods): head {:?}, {} epochs, batch {}, lr {} x{} every {} \
         epochs, lambda_q {}, lambda_r {} (ICS), warm-up {} epochs, {:?} weights, {:?} centres, \
         seed {}.",
        c.hidden,
        c.epochs,
        c.batch_size,
        c.lr,
        c.lr_decay,
        c.lr_step_epochs,
        c.lambda_q,
        c.lambda_r,
        c.warmup_epochs,
        c.weight_update,
        c.centres,
        c.seed
    );
    if let Some(m) = b
        .models
        .iter()
        .find(|m| m.report.config.finetune.mode.trains_backbone())
    {
        let c = &m.report.config;
        let _ = writeln!(
            s,
            "Fine-tuned rows: {} epochs (evaluated after the last), backbone learning rate \
             x{} of the head's, BatchNorm frozen (folded), augmentation {}.",
            c.epochs,
            c.finetune.backbone_lr_scale,
            if c.finetune.augment { "on" } else { "off" }
        );
    }
    let _ = writeln!(s, "\n| target | wanted | measured | met |");
    let _ = writeln!(s, "|---|---|---|---|");
    for t in &b.targets {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            t.name,
            t.wanted,
            t.measured,
            if t.met { "yes" } else { "**no**" }
        );
    }
    let _ = writeln!(
        s,
        "\nTotal wall time: {}.",
        format_duration(b.total_seconds)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::benchmark::record::BenchSize;
    use crate::benchmark::targets::targets;
    use crate::benchmark::targets::tests::{evaluation, finetune_run, speed};
    use crate::ics::TrainConfig;

    fn report(
        models: Vec<ModelEval>,
        finetune_runs: Vec<crate::benchmark::FinetuneRun>,
    ) -> BenchReport {
        let speed = speed(7.0);
        BenchReport {
            size: BenchSize::Small,
            trainer_version: "0.1.0".into(),
            backbone: "lite0".into(),
            data: "work/data".into(),
            area_data: None,
            r: 10,
            train_images: 200,
            queries: 50,
            database: 200,
            feature_dim: 1280,
            targets: targets(&models, 0.65, None, &speed, &finetune_runs),
            feature_speed: speed,
            extractions: vec![
                Extraction {
                    split: "train".into(),
                    images: 100,
                    from_cache: false,
                    seconds: 1.0,
                },
                Extraction {
                    split: "query".into(),
                    images: 50,
                    from_cache: true,
                    seconds: 0.0,
                },
            ],
            cosine_map_at_r: 0.65,
            base_config: TrainConfig::default(),
            models,
            finetune_runs,
            area: None,
            total_seconds: 245.4,
        }
    }

    #[test]
    fn the_table_the_baseline_and_the_targets() {
        let models = vec![
            evaluation(Method::Ics, 0.80, 12.0),
            evaluation(Method::Csq, 0.78, 11.0),
        ];
        let md = markdown(&report(models, vec![]));
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "## ics-train bench (Small): 200 train / 50 query / 200 database, lite0, mAP@10"
        );
        assert_eq!(
            lines[2],
            "Ranking: Hamming distance ascending, ties by database index ascending (stable)."
        );
        assert!(
            md.contains(
                "\n| frozen (head only) | 16 | 0.8000 | 0.7800 | +2.00 | 0.1000 | 12.0 | 11.0 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("raw 1280-d float features: mAP@10 **0.6500**."),
            "{md}"
        );
        assert!(
            md.contains("This run extracted 100 images in 1.0 s (10.00 ms/image)"),
            "{md}"
        );
        assert!(
            md.contains(
                "\n| ICS >= CSQ + 1.5 points at 16 bits | >= 0.7950 | 0.8000 (+2.00 points) | yes |\n"
            ),
            "{md}"
        );
        assert!(md.ends_with("\nTotal wall time: 4 min 05 s.\n"), "{md}");
        assert!(!md.contains("Fine-tuning runs") && !md.contains("Weight vs area"));
        assert!(!md.contains("Fine-tuned rows"));
    }

    #[test]
    fn orthohash_rows_get_their_difference_table() {
        let models = vec![
            evaluation(Method::Ics, 0.80, 12.0),
            evaluation(Method::Csq, 0.78, 11.0),
        ];
        assert!(!markdown(&report(models.clone(), vec![])).contains("OrthoHash"));
        let mut with = models;
        with.push(evaluation(Method::Orthohash, 0.75, 13.0));
        let md = markdown(&report(with, vec![]));
        assert!(
            md.contains(
                "\n| backbone | bits | OrthoHash mAP | ICS - OrthoHash (points) |\n|---|---:|---:|---:|\n| frozen (head only) | 16 | 0.7500 | +5.00 |\n"
            ),
            "{md}"
        );
    }

    #[test]
    fn finetuned_rows_get_their_group_and_run_table() {
        let mut tuned = evaluation(Method::Ics, 0.90, 900.0);
        tuned.report.config.finetune.mode = FinetuneMode::Top(2);
        tuned.report.config.epochs = 4;
        let models = vec![evaluation(Method::Ics, 0.70, 12.0), tuned];
        let runs = vec![finetune_run("ics16-top2", "top:2", 600.0)];
        let md = markdown(&report(models, runs));
        // The frozen group first, then the fine-tuned one; no CSQ: dashes.
        let frozen = md
            .find("| frozen (head only) | 16 | 0.7000 | - | - |")
            .unwrap();
        let tuned = md
            .find("| fine-tuned top:2 | 16 | 0.9000 | - | - |")
            .unwrap();
        assert!(frozen < tuned, "{md}");
        assert!(
            md.contains(
                "\n| ics16-top2 | top:2 | 10000 | 128 | 4 | 1 | 50.0 | 600.0 | 0.0 | 60.0 | 600.0 | 660.0 |\n"
            ),
            "{md}"
        );
        assert!(
            md.contains("Fine-tuned rows: 4 epochs (evaluated after the last)"),
            "{md}"
        );
        assert!(
            md.contains("| ics16-top2 fine-tuning (top:2, 10000 images at 128 px"),
            "{md}"
        );
        // A failed target is marked.
        assert!(md.contains("| **no** |"), "{md}");
    }
}
