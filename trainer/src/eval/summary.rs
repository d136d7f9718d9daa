//! What `ics-train eval` writes besides the plots: `report.json` ([`EvalSummary`]) and
//! `summary.md` ([`summary_markdown`]); and how reports write a duration and a rate.

use std::fmt::Write as _;

use serde::Serialize;

use super::report::ModelEval;

/// `report.json` of `ics-train eval`: the data, the backbone, and every model's evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSummary {
    /// The data, described ([`crate::data::DataSpec::describe`]).
    pub data: String,
    pub backbone: String,
    pub r: usize,
    pub queries: usize,
    pub database: usize,
    /// mAP@R of the raw features by cosine similarity, when asked for.
    pub cosine_map_at_r: Option<f64>,
    pub models: Vec<ModelEval>,
}

/// A markdown table of the evaluations, the cosine baseline, and each model's weight-vs-area
/// agreement (`summary.md`).
pub fn summary_markdown(evals: &[ModelEval], cosine: Option<f64>, r: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "| model | method | bits | mAP@{r} | random codes | precision r<=2 | train s |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|");
    for e in evals {
        if let Some(rr) = &e.report.retrieval {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.1} |",
                e.name,
                e.report.config.method.label(),
                rr.bits,
                rr.map_at_r,
                rr.random_codes_map_at_r,
                rr.precision_within_radius2,
                e.report.train_seconds
            );
        }
    }
    if let Some(c) = cosine {
        let _ = writeln!(
            s,
            "\nCosine ranking of the raw float features: mAP@{r} {c:.4}."
        );
    }
    for e in evals {
        if let Some(a) = &e.report.agreement {
            let _ = writeln!(s, "\n{}: {}.", e.name, a.summary());
        }
    }
    let _ = writeln!(s, "\nRanking: {}.", super::map::TIE_RULE);
    s
}

/// `1.23 s`, `4 min 05 s`.
pub fn format_duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.2} s")
    } else {
        let s = seconds.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    }
}

/// A rate (images per second, rows per second) with three significant digits and no
/// decimals it does not need: `1234`, `45.6`, `4.56`, `0.0456`.
pub fn format_rate(rate: f64) -> String {
    if !rate.is_finite() || rate <= 0.0 {
        return format!("{rate:.0}");
    }
    let decimals = (2 - rate.log10().floor() as i64).clamp(0, 6) as usize;
    let s = format!("{rate:.decimals$}");
    // 99.96 rounds up to 100.0: one digit too many.
    match s.split_once('.') {
        Some((whole, _)) if whole.trim_start_matches('-').len() >= 3 => format!("{rate:.0}"),
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{AgreementReport, RetrievalReport, TrainReport};
    use crate::ics::synthetic::make;
    use crate::ics::{train_silently, Method, TrainConfig};

    fn evaluation(method: Method, agreement: bool) -> ModelEval {
        let data = make(20, 4, 2, 1, 0.3, 1);
        let config = TrainConfig {
            bits: 16,
            method,
            hidden: vec![],
            epochs: 1,
            warmup_epochs: 0,
            ..TrainConfig::default()
        };
        let model = train_silently(data.features.view(), data.labels.view(), &config).unwrap();
        let mut report = TrainReport::new(&model);
        report.train_seconds = 2.0;
        report.retrieval = Some(RetrievalReport {
            bits: 16,
            r: 100,
            queries: 1,
            database: 1,
            map_at_r: 0.5,
            precision_within_radius2: 0.25,
            pr_curve: vec![],
            random_codes_map_at_r: 0.125,
            cosine_map_at_r: None,
            tie_rule: crate::eval::TIE_RULE.into(),
        });
        if agreement {
            report.agreement = Some(AgreementReport {
                images: 7,
                ..AgreementReport::default()
            });
        }
        ModelEval {
            name: format!("{}16", method.prefix()),
            file: None,
            report,
        }
    }

    #[test]
    fn summary_table_rows_and_notes() {
        let evals = [
            evaluation(Method::Ics, true),
            evaluation(Method::Csq, false),
        ];
        let md = summary_markdown(&evals, Some(0.4), 100);
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(
            lines[0],
            "| model | method | bits | mAP@100 | random codes | precision r<=2 | train s |"
        );
        assert_eq!(
            lines[2],
            "| ics16 | ICS | 16 | 0.5000 | 0.1250 | 0.2500 | 2.0 |"
        );
        assert!(lines[3].starts_with("| csq16 | CSQ | 16 |"), "{md}");
        assert!(md.contains("\nCosine ranking of the raw float features: mAP@100 0.4000.\n"));
        assert!(md.contains("\nics16: weights vs area shares on 7 multi-label images"));
        assert!(!md.contains("csq16: weights"));
        assert!(md.ends_with(
            "\nRanking: Hamming distance ascending, ties by database index ascending (stable).\n"
        ));
        assert!(!summary_markdown(&evals, None, 100).contains("Cosine"));
        // Methods by their names, never their Rust spelling.
        assert!(!md.contains("Ics") && !md.contains("Csq"), "{md}");
    }

    #[test]
    fn rates_read_well() {
        assert_eq!(format_rate(1234.567), "1235");
        assert_eq!(format_rate(123.456), "123");
        assert_eq!(format_rate(45.678), "45.7");
        assert_eq!(format_rate(4.5678), "4.57");
        assert_eq!(format_rate(0.045678), "0.0457");
        assert_eq!(format_rate(99.96), "100");
        assert_eq!(format_rate(0.0), "0");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(format_duration(1.234), "1.23 s");
        assert_eq!(format_duration(245.4), "4 min 05 s");
    }
}
