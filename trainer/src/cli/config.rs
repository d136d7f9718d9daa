//! Training parameters shared by `train` and `bench`: the `--config` file, the flags that
//! override it, and the enums and parsers of their values.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use ics_train::ics::{CentreMethod, FinetuneMode, Method, TrainConfig, WeightUpdate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Instance-weighted central similarity (learned per-image weights over the labels).
    Ics,
    /// Central Similarity Quantization: the equal-weight, sign-binarised centroid baseline.
    Csq,
    /// OrthoHash's multi-label loss: scaled-cosine softmax cross-entropy against the centres
    /// with a margin, target 1/|L| (or ICS's learned weights with --orthohash-ics-weights).
    Orthohash,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Ics => Method::Ics,
            MethodArg::Csq => Method::Csq,
            MethodArg::Orthohash => Method::Orthohash,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CentresArg {
    /// Balanced random centres (K/2 bits set) with a checked minimum distance.
    BalancedRandom,
    /// Sylvester Hadamard rows spanning every index bit (power-of-two bits).
    Hadamard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WeightUpdateArg {
    /// --n-pgd projected-gradient steps of size --eta per mini-batch (the published method).
    Pgd,
    /// The exact per-image optimum, softmax(-loss / lambda_r), in one step.
    ClosedForm,
}

/// Training parameters; each flag overrides --config, which overrides the defaults.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigArgs {
    /// Training configuration JSON (fields of TrainConfig; unknown keys are an error).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Hidden layer widths, comma-separated, or "none" for one linear layer [default: 1024].
    #[arg(long, value_name = "W,W|none")]
    pub hidden: Option<String>,
    /// Dropout after each hidden ReLU [default: 0].
    #[arg(long, value_name = "P")]
    pub dropout: Option<f64>,
    /// Epochs [default: 30].
    #[arg(long, value_name = "N")]
    pub epochs: Option<usize>,
    /// Mini-batch size [default: 64].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 1e-3].
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Learning-rate factor every --lr-step-epochs [default: 0.7].
    #[arg(long, value_name = "F")]
    pub lr_decay: Option<f64>,
    /// Epochs between learning-rate decays [default: 10].
    #[arg(long, value_name = "N")]
    pub lr_step_epochs: Option<usize>,
    /// L2 penalty on weight matrices [default: 0].
    #[arg(long, value_name = "W")]
    pub weight_decay: Option<f64>,
    /// Entropy weight of the per-image weights (ICS; losses are means over bits) [default: 0.5].
    #[arg(long, value_name = "L")]
    pub lambda_r: Option<f64>,
    /// Quantisation weight on mean (|u|-1)^2 [default: 0.05].
    #[arg(long, value_name = "L")]
    pub lambda_q: Option<f64>,
    /// PGD step size on the weights [default: 0.1].
    #[arg(long, value_name = "ETA")]
    pub eta: Option<f64>,
    /// PGD steps per mini-batch [default: 1].
    #[arg(long, value_name = "N")]
    pub n_pgd: Option<usize>,
    /// How the per-image weights are updated [default: pgd].
    #[arg(long, value_enum)]
    pub weight_update: Option<WeightUpdateArg>,
    /// Epochs with uniform weights before they are learned (ICS) [default: 2].
    #[arg(long, value_name = "N")]
    pub warmup_epochs: Option<usize>,
    /// Hash centre construction [default: balanced-random].
    #[arg(long, value_enum)]
    pub centres: Option<CentresArg>,
    /// Minimum pairwise Hamming distance of balanced random centres [default: bits/4].
    #[arg(long, value_name = "D")]
    pub centre_min_distance: Option<usize>,
    /// Seed of every random choice [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Evaluate mAP@R every N epochs (and after the last) [default: 5].
    #[arg(long, value_name = "N")]
    pub eval_every: Option<usize>,
    /// Fine-tuning: the backbone's learning rate as a multiple of --lr [default: 0.2; CSQ's
    /// 0.05 suits its 90 epochs, 0.2 measured better for short CPU runs].
    #[arg(long, value_name = "F")]
    pub backbone_lr_scale: Option<f64>,
    /// Fine-tuning: augment training images (random crop by up to 1/8 of the side, edges
    /// replicated, and horizontal flip), drawn per image and epoch.
    #[arg(long)]
    pub augment: bool,
    /// OrthoHash: scale of the cosine logits [default: 8].
    #[arg(long, value_name = "S")]
    pub orthohash_scale: Option<f64>,
    /// OrthoHash: margin subtracted from the labels' cosines [default: 0.2].
    #[arg(long, value_name = "M")]
    pub orthohash_margin: Option<f64>,
    /// OrthoHash: learn ICS's per-image weights (--lambda-r, --eta, --weight-update,
    /// --warmup-epochs) and use them as the target instead of 1/|L|.
    #[arg(long)]
    pub orthohash_ics_weights: bool,
}

/// Parses `--hidden`: `1024`, `2048,2048`, `none` (or empty).
pub fn parse_hidden(s: &str) -> Result<Vec<usize>> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .with_context(|| format!("--hidden: {w:?} is not a layer width"))
        })
        .collect()
}

impl ConfigArgs {
    /// The configuration: defaults, then --config, then the flags, then `bits`, `method` and
    /// the fine-tuning mode when given; validated.
    pub fn build(
        &self,
        bits: Option<usize>,
        method: Option<Method>,
        finetune: Option<FinetuneMode>,
    ) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read configuration {}", p.display()))?;
                serde_json::from_str::<TrainConfig>(&text)
                    .with_context(|| format!("configuration {}", p.display()))?
            }
            None => TrainConfig::default(),
        };
        macro_rules! set {
            ($($f:ident),*) => {$( if let Some(v) = self.$f { c.$f = v; } )*};
        }
        set!(
            dropout,
            epochs,
            batch_size,
            lr,
            lr_decay,
            lr_step_epochs,
            weight_decay,
            lambda_r,
            lambda_q,
            eta,
            n_pgd,
            warmup_epochs,
            seed,
            eval_every
        );
        if let Some(b) = bits {
            c.bits = b;
        }
        if let Some(m) = method {
            c.method = m;
        }
        if let Some(h) = &self.hidden {
            c.hidden = parse_hidden(h)?;
        }
        if let Some(w) = self.weight_update {
            c.weight_update = match w {
                WeightUpdateArg::Pgd => WeightUpdate::Pgd,
                WeightUpdateArg::ClosedForm => WeightUpdate::ClosedForm,
            };
        }
        if let Some(ct) = self.centres {
            c.centres = match ct {
                CentresArg::BalancedRandom => CentreMethod::BalancedRandom,
                CentresArg::Hadamard => CentreMethod::Hadamard,
            };
        }
        if self.warmup_epochs.is_none() && c.warmup_epochs >= c.epochs {
            // A short run (--epochs 2) with the default warm-up: keep at least one epoch of
            // weight learning rather than refusing.
            c.warmup_epochs = c.epochs.saturating_sub(1);
        }
        if self.centre_min_distance.is_some() {
            c.centre_min_distance = self.centre_min_distance;
        }
        if let Some(m) = finetune {
            c.finetune.mode = m;
        }
        if let Some(f) = self.backbone_lr_scale {
            c.finetune.backbone_lr_scale = f;
        }
        if self.augment {
            c.finetune.augment = true;
        }
        if let Some(v) = self.orthohash_scale {
            c.orthohash.scale = v;
        }
        if let Some(v) = self.orthohash_margin {
            c.orthohash.margin = v;
        }
        if self.orthohash_ics_weights {
            c.orthohash.ics_weights = true;
        }
        c.validate().context("training configuration")?;
        Ok(c)
    }
}

/// `--finetune`: `none`, `top:N` or `all`.
pub fn parse_finetune(s: &str) -> Result<FinetuneMode> {
    s.parse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_layers_parse() {
        assert_eq!(parse_hidden("1024").unwrap(), [1024]);
        assert_eq!(parse_hidden(" 2048, 512 ").unwrap(), [2048, 512]);
        assert!(parse_hidden("none").unwrap().is_empty());
        assert!(parse_hidden("").unwrap().is_empty());
        let err = format!("{:#}", parse_hidden("64,x").unwrap_err());
        assert!(err.contains("\"x\" is not a layer width"), "{err}");
    }

    #[test]
    fn flags_override_the_defaults() {
        let args = ConfigArgs {
            epochs: Some(2),
            hidden: Some("none".into()),
            weight_update: Some(WeightUpdateArg::ClosedForm),
            augment: true,
            ..ConfigArgs::default()
        };
        let c = args
            .build(
                Some(16),
                Some(MethodArg::Csq.into()),
                Some(FinetuneMode::All),
            )
            .unwrap();
        assert_eq!((c.bits, c.method, c.epochs), (16, Method::Csq, 2));
        assert!(c.hidden.is_empty() && c.finetune.augment);
        assert_eq!(c.finetune.mode, FinetuneMode::All);
        assert_eq!(c.weight_update, WeightUpdate::ClosedForm);
        // A short run keeps one epoch of weight learning after the default warm-up.
        assert_eq!(c.warmup_epochs, 1);
        // A warm-up given is kept (all epochs: uniform weights), and then must fit.
        let args = ConfigArgs {
            warmup_epochs: Some(2),
            ..args
        };
        let c = args.build(None, None, Some(FinetuneMode::All)).unwrap();
        assert_eq!((c.epochs, c.warmup_epochs), (2, 2));
        let args = ConfigArgs {
            warmup_epochs: Some(3),
            ..args
        };
        let err = format!(
            "{:#}",
            args.build(None, None, Some(FinetuneMode::All)).unwrap_err()
        );
        assert!(
            err.starts_with("training configuration") && err.contains("warmup_epochs = 3"),
            "{err}"
        );
        assert_eq!(parse_finetune("top:2").unwrap(), FinetuneMode::Top(2));
    }
}
