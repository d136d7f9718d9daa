//! [`Printer`]: the observer of the library's workflows that turns their events into log lines
//! on stderr, progress bars over epochs and spinners for long steps.

use ics_train::data::{ComposeOptions, ComposeSummary};
use ics_train::eval::ModelEval;
use ics_train::ics::{EpochLog, TrainConfig};
use ics_train::workflow::{Event, Observer, Task};
use indicatif::ProgressBar;

use super::ui;

/// Prints a workflow's events; one bar or spinner per running task.
#[derive(Default)]
pub struct Printer {
    bars: Vec<ProgressBar>,
}

impl Printer {
    /// A log line, above the current bar if one is drawn.
    pub fn line(&self, line: impl AsRef<str>) {
        match self.bars.last() {
            Some(bar) => ui::log_with(bar, line),
            None => ui::log(line),
        }
    }

    fn begin(&mut self, task: Task<'_>) -> ProgressBar {
        match task {
            Task::LoadSources => ui::spinner("loading Fashion-MNIST and MNIST sources"),
            Task::Compose { opts, out } => ui::spinner(format!(
                "composing {} canvases of {} px into {}",
                opts.train + opts.query + opts.database,
                opts.canvas,
                out.display()
            )),
            Task::ImportLite0 => ui::spinner("importing EfficientNet-Lite0"),
            Task::Train { tag, config } => {
                ui::bar(config.epochs as u64, &format!("{tag}train"), "epochs")
            }
            Task::Finetune {
                tag,
                config,
                device,
            } => {
                self.line(format!(
                    "{tag}fine-tuning {} ({device}), backbone lr x{}{}",
                    config.finetune.mode,
                    config.finetune.backbone_lr_scale,
                    if config.finetune.augment {
                        ", augmented"
                    } else {
                        ""
                    }
                ));
                ui::bar(config.epochs as u64, &format!("{tag}fine-tune"), "epochs")
            }
            Task::Cosine => ui::spinner("cosine ranking of the raw features"),
        }
    }
}

impl Observer for Printer {
    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Begin(task) => {
                let bar = self.begin(task);
                self.bars.push(bar);
            }
            Event::End => {
                if let Some(bar) = self.bars.pop() {
                    bar.finish_and_clear();
                }
            }
            Event::SourcesLoaded(s) => self.line(format!(
                "sources: {} instances of {} classes",
                s.len(),
                s.class_names().len()
            )),
            Event::Composed { summary, opts, out } => {
                for l in compose_lines(summary, opts, out) {
                    self.line(l);
                }
            }
            Event::Note(note) => self.line(note),
            Event::SplitLoaded(s) => {
                if s.skipped_unannotated > 0 {
                    self.line(format!(
                        "{}: {} images without annotations left out",
                        s.file.display(),
                        s.skipped_unannotated
                    ));
                }
            }
            Event::Features { split, extracted } => {
                let ex = extracted;
                let (n, d) = ex.features.dim();
                let name = split.name.name();
                let cache = ex
                    .cache_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "no cache".into());
                // Where ONNX Runtime ran, when --device asked for more than the CPU.
                let on = match &ex.provider {
                    Some((p, why)) if !why.ends_with("= cpu") => format!(" on {p} ({why})"),
                    _ => String::new(),
                };
                if ex.from_cache {
                    self.line(format!("features {name:>8}: {n} x {d} from cache {cache}"));
                } else {
                    let total = ex.preprocess_s + ex.inference_s;
                    let per = |s: f64| 1e3 * s / n.max(1) as f64;
                    self.line(format!(
                        "features {name:>8}: {n} x {d} in {} ({:.2} ms/image: preprocessing \
                         {:.2}, inference {:.2}){on}; cached in {cache}",
                        ui::duration(total),
                        per(total),
                        per(ex.preprocess_s),
                        per(ex.inference_s),
                    ));
                }
            }
            Event::Epoch {
                tag,
                log,
                config,
                r,
            } => {
                self.line(epoch_line(tag, log, config, r));
                if let Some(bar) = self.bars.last() {
                    bar.inc(1);
                }
            }
            Event::Trained {
                tag,
                config,
                model,
                images,
            } => {
                let total: f64 = model.history().iter().map(|e| e.seconds).sum();
                self.line(format!(
                    "{tag}trained {} {} bits, head {:?} ({} parameters), {} epochs on {} \
                     images in {}",
                    config.method.label(),
                    config.bits,
                    config.hidden,
                    model.head().parameter_count(),
                    config.epochs,
                    images,
                    ui::duration(total)
                ));
            }
            Event::Finetuned {
                tag,
                config,
                outcome: out,
                images,
            } => {
                let total: f64 = out.model.history().iter().map(|e| e.seconds).sum();
                self.line(format!(
                    "{tag}trained {} {} bits, head {:?}, backbone {} ({} parameters trained), \
                     {} epochs on {} images in {} (+{} preparing); forward + backward {} \
                     images/s",
                    config.method.label(),
                    config.bits,
                    config.hidden,
                    config.finetune.mode,
                    out.trained_parameters,
                    config.epochs,
                    images,
                    ui::duration(total),
                    ui::duration(out.prepare_seconds),
                    ics_train::eval::format_rate(out.images_per_second())
                ));
            }
            Event::NoAgreement {
                name,
                weights,
                train_images,
            } => self.line(format!(
                "{name}: weights are for {weights} training images, the train split has \
                 {train_images}: no weight-vs-area agreement"
            )),
            Event::Evaluated(e) => self.line(model_line(e)),
            Event::Agreement { name, report } => self.line(format!("{name}: {}", report.summary())),
            Event::Cosine { r, map } => {
                self.line(format!("cosine of the raw features: mAP@{r} {map:.4}"))
            }
        }
    }
}

/// `epoch  3/30 lr 1.0e-3 loss 0.41234 (centre 0.38120, quant 0.20110, weight entropy 0.512,
/// weights learned) mAP@1000 0.7123 1.42 s`; CSQ lines have no weight terms.
pub fn epoch_line(tag: &str, l: &EpochLog, config: &TrainConfig, r: usize) -> String {
    let epochs = config.epochs;
    let width = epochs.to_string().len();
    let map = l
        .map
        .map(|m| format!(" mAP@{r} {m:.4}"))
        .unwrap_or_default();
    let weights = match (config.learns_weights(), l.weights_updated) {
        (false, _) => String::new(),
        (true, true) => format!(", weight entropy {:.3}, weights learned", l.weight_entropy),
        (true, false) => format!(", weight entropy {:.3}, warm-up", l.weight_entropy),
    };
    let diag = l
        .diagnostics
        .as_ref()
        .filter(|d| d.images > 0)
        .map(|d| {
            let mut s = format!(
                " [{} multi-label: H/ln|L| {:.3} ± {:.3}, loss range {:.4}",
                d.images, d.entropy_mean, d.entropy_std, d.loss_range_mean
            );
            if let (Some(rho), Some(top1)) = (d.spearman, d.top1) {
                s += &format!(", vs areas Spearman {rho:.3} top-1 {top1:.3}");
            }
            s + "]"
        })
        .unwrap_or_default();
    format!(
        "{tag}epoch {:>width$}/{epochs} lr {:.1e} loss {:.5} (centre {:.5}, quant {:.5}{weights}){map}{diag} \
         {:.2} s",
        l.epoch, l.lr, l.loss, l.centre, l.quantization, l.seconds
    )
}

/// What "precision within Hamming radius 2" measures, printed beside it.
pub const RADIUS2: &str =
    "per query, the share of database images within 2 bits that share a label; 0 when none is";

/// `ics64: ICS 64 bits: mAP@1000 0.7123 (random codes ..), precision within Hamming radius 2 ..
/// (...)`: the method as tables name it, and what the radius precision is.
pub fn model_line(m: &ModelEval) -> String {
    let r = m.report.retrieval.as_ref().expect("evaluated");
    format!(
        "{}: {} {} bits: mAP@{} {:.4} (random codes {:.4}), precision within Hamming radius 2 \
         {:.4} ({RADIUS2})",
        m.name,
        m.report.config.method.label(),
        r.bits,
        r.r,
        r.map_at_r,
        r.random_codes_map_at_r,
        r.precision_within_radius2
    )
}

/// One line per composed split, then the total.
fn compose_lines(
    summary: &ComposeSummary,
    opts: &ComposeOptions,
    out: &std::path::Path,
) -> Vec<String> {
    let mut lines: Vec<String> = summary
        .splits
        .iter()
        .filter(|s| s.canvases > 0)
        .map(|s| {
            format!(
                "{:>8}: {:>6} canvases, instances per canvas {:?}, {} distinct source instances \
                 of {} available, {} shrunk layouts",
                s.split.name(),
                s.canvases,
                s.instances_per_canvas,
                s.distinct_instances_used,
                s.pool_instances,
                s.shrunk_layouts
            )
        })
        .collect();
    lines.push(format!(
        "composed {} canvases ({:.1} MB of PNG) in {} into {}",
        opts.train + opts.query + opts.database,
        summary.png_bytes as f64 / 1e6,
        ui::duration(summary.seconds),
        out.display()
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use ics_train::ics::{Method, WeightDiagnostics};

    #[test]
    fn epoch_lines_by_method() {
        let log = EpochLog {
            epoch: 3,
            lr: 1e-3,
            loss: 0.412345,
            centre: 0.3812,
            quantization: 0.2011,
            weight_entropy: 0.5123,
            weights_updated: true,
            map: Some(0.71234),
            seconds: 1.419,
            diagnostics: None,
        };
        let config = TrainConfig::default();
        assert_eq!(
            epoch_line("[ics64] ", &log, &config, 1000),
            "[ics64] epoch  3/30 lr 1.0e-3 loss 0.41235 (centre 0.38120, quant 0.20110, weight \
             entropy 0.512, weights learned) mAP@1000 0.7123 1.42 s"
        );
        let warm = EpochLog {
            weights_updated: false,
            map: None,
            ..log.clone()
        };
        assert!(epoch_line("", &warm, &config, 0).contains("entropy 0.512, warm-up) 1.42 s"));
        let csq = TrainConfig {
            method: Method::Csq,
            ..config.clone()
        };
        assert!(epoch_line("", &log, &csq, 10).contains("quant 0.20110) mAP@10 0.7123"));
        let diag = EpochLog {
            diagnostics: Some(WeightDiagnostics {
                images: 40,
                entropy_mean: 0.8512,
                entropy_std: 0.1,
                loss_range_mean: 0.01234,
                loss_range_std: 0.0,
                spearman: Some(0.35),
                top1: Some(0.6),
            }),
            ..log.clone()
        };
        assert!(epoch_line("", &diag, &config, 1000).contains(
            "mAP@1000 0.7123 [40 multi-label: H/ln|L| 0.851 ± 0.100, loss range 0.0123, \
             vs areas Spearman 0.350 top-1 0.600] 1.42 s"
        ));
    }
}
