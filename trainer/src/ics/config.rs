//! Training parameters: one serialisable struct, validated before anything runs.
//!
//! The struct is written into the training report and (by the exporter) the model metadata,
//! so a run can be repeated from its report alone: every source of randomness derives from
//! [`TrainConfig::seed`]. Unknown keys in a JSON configuration are an error, not silently
//! ignored, because a misspelt `lambda_r` would otherwise train with the default.

use anyhow::{bail, ensure, Result};
use serde::{Deserialize, Serialize};

/// Which objective trains the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Instance-weighted central similarity: soft centroid `Σ_k w_ik c_k` with per-image
    /// weights learned on the label simplex (docs/method.md, ICS).
    Ics,
    /// The CSQ baseline: sign-binarised equal-weight centroid, ties broken by a random ±1
    /// vector drawn once per run (docs/method.md, CSQ).
    Csq,
    /// OrthoHash's multi-label loss: scaled-cosine softmax cross-entropy against the centres
    /// as a fixed codebook, with a margin on the labels, target `1/|L|` over the labels (or
    /// ICS's learned weights, [`OrthoHashParams::ics_weights`]).
    Orthohash,
}

impl Method {
    /// `ICS`, `CSQ`: how tables and plots name the method.
    pub fn label(self) -> &'static str {
        match self {
            Method::Ics => "ICS",
            Method::Csq => "CSQ",
            Method::Orthohash => "OrthoHash",
        }
    }

    /// `ics`, `csq`: how model names begin (`ics64`).
    pub fn prefix(self) -> &'static str {
        match self {
            Method::Ics => "ics",
            Method::Csq => "csq",
            Method::Orthohash => "ortho",
        }
    }
}

/// How the class hash centres are built (docs/method.md, CSQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CentreMethod {
    /// Exactly `bits/2` entries −1 per centre, redrawn until the minimum pairwise Hamming
    /// distance reaches the bound. Uses every bit whatever the class count.
    BalancedRandom,
    /// Sylvester Hadamard rows (row 0, all ones, skipped) whose indices span every index bit
    /// (rows `1..` with the missing powers of two last, see `centres::hadamard_rows`), so
    /// every bit carries information; `[H; −H]` when there are more classes than rows. Needs
    /// a power-of-two bit count. Kept for comparison with the published CSQ setup.
    Hadamard,
}

/// How the per-image weights are updated on each mini-batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightUpdate {
    /// `n_pgd` projected-gradient steps of size `eta` (the method as published).
    Pgd,
    /// The exact per-image optimum `softmax(−l(u_i, c_k)/λ_r)` over the image's labels: what
    /// PGD converges to, in one step.
    ClosedForm,
}

/// How much of the backbone a run trains (docs/method.md: fine-tuning back-propagates the
/// objective through the network). Written `none`, `top:N` or `all` (command line and JSON).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FinetuneMode {
    /// The backbone stays frozen: its features are computed once and the head learns on them.
    #[default]
    None,
    /// The last N MBConv stages and the head convolution train; the activations entering
    /// them are computed once and cached.
    Top(usize),
    /// Every layer trains, the stem included.
    All,
}

impl FinetuneMode {
    /// Whether the backbone trains at all.
    pub fn trains_backbone(self) -> bool {
        self != FinetuneMode::None
    }
}

impl std::fmt::Display for FinetuneMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FinetuneMode::None => f.write_str("none"),
            FinetuneMode::Top(n) => write!(f, "top:{n}"),
            FinetuneMode::All => f.write_str("all"),
        }
    }
}

impl std::str::FromStr for FinetuneMode {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "none" => return Ok(FinetuneMode::None),
            "all" => return Ok(FinetuneMode::All),
            _ => {}
        }
        let Some(n) = t.strip_prefix("top:") else {
            bail!("finetune mode {s:?}: expected none, top:N (N = MBConv stages to train) or all");
        };
        let n: usize = n.trim().parse().map_err(|_| {
            anyhow::anyhow!("finetune mode {s:?}: N of top:N must be a whole number of stages")
        })?;
        ensure!(
            n >= 1,
            "finetune mode {s:?}: top:N trains the last N MBConv stages, N >= 1 (use none to \
             keep the backbone frozen)"
        );
        Ok(FinetuneMode::Top(n))
    }
}

impl Serialize for FinetuneMode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FinetuneMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Fine-tuning parameters (used when [`Finetune::mode`] trains the backbone).
///
/// BatchNorm: folded into the convolutions with its ImageNet statistics, which stay frozen;
/// its scale and shift train as part of the folded convolution weights and biases. Batch
/// statistics of 32-64 composed images would be noisy and would shift the frozen layers'
/// cached activations out of step, and a folded network trains exactly the function the
/// exported ONNX graph computes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Finetune {
    pub mode: FinetuneMode,
    /// The backbone's learning rate as a multiple of the head's `lr`. CSQ uses 0.05 over 90
    /// epochs; for the few epochs that fit a CPU budget 0.2 measured better (EfficientNet-Lite0
    /// top:2, 6 epochs on 2,000 composed canvases, 64 bits: mAP@1000 0.757 against 0.696 with
    /// 0.05 and 0.578 for the frozen head).
    pub backbone_lr_scale: f64,
    /// Random crop (shift by up to 1/8 of the image, edges replicated) and horizontal flip
    /// of each training image, drawn per image and epoch.
    pub augment: bool,
}

impl Default for Finetune {
    fn default() -> Self {
        Finetune {
            mode: FinetuneMode::None,
            backbone_lr_scale: 0.2,
            augment: false,
        }
    }
}

impl Finetune {
    /// Default settings (what older configurations meant): not written into configuration
    /// JSON, so frozen-head configurations and their hashes stay as they were.
    pub fn is_default(&self) -> bool {
        *self == Finetune::default()
    }

    /// Checks the parameters on their own (the stage count is checked against the
    /// backbone's architecture when fine-tuning starts).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.backbone_lr_scale.is_finite() && self.backbone_lr_scale > 0.0,
            "finetune.backbone_lr_scale = {} must be finite and > 0",
            self.backbone_lr_scale
        );
        if let FinetuneMode::Top(n) = self.mode {
            ensure!(n >= 1, "finetune.mode = top:0: N must be >= 1");
        }
        ensure!(
            !self.augment || self.mode.trains_backbone(),
            "finetune.augment needs a fine-tuning mode (top:N or all): frozen features are \
             computed once, without augmentation"
        );
        Ok(())
    }
}

/// Parameters of [`Method::Orthohash`] (ignored by the other methods).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrthoHashParams {
    /// Scale `s` of the cosine logits (OrthoHash: 8).
    pub scale: f64,
    /// Margin `m` subtracted from the cosine of every label (OrthoHash: 0.2).
    pub margin: f64,
    /// Use ICS's learned per-image weights (the weight step of ICS, with `lambda_r`, `eta`,
    /// `weight_update` and `warmup_epochs`, on the centre losses) as the cross-entropy
    /// target instead of `1/|L|`.
    pub ics_weights: bool,
}

impl Default for OrthoHashParams {
    fn default() -> Self {
        OrthoHashParams {
            scale: 8.0,
            margin: 0.2,
            ics_weights: false,
        }
    }
}

impl OrthoHashParams {
    /// Not written into configuration JSON when default, so other methods' configurations
    /// stay as they were.
    pub fn is_default(&self) -> bool {
        *self == OrthoHashParams::default()
    }
}

/// Everything a training run depends on besides its data.
///
/// Defaults, and why (numbers from the synthetic multi-label benchmark in the tests, where
/// object areas are known; timings for n = 10,000, d = 1280, K = 64 on 2 shared cores):
/// - `hidden = [1024]`, no dropout: on ReLU-warped features one hidden layer gains ~2.7 mAP
///   points over a single linear layer (0.890 vs 0.863) and dropout 0.5 costs ~1.3; an epoch
///   takes ~1.4 s, against ~0.15 s for linear and ~8 s for CSQ's `[2048, 2048]`, so 30 epochs
///   stay well under the 5-minute budget.
/// - `lambda_r = 0.5` with this reduction: below 0.1 the weights collapse onto one label
///   (KL(area ‖ w) of 1 to 10 nats against 0.28 for uniform weights); from 0.3 to 1 they
///   track the area shares, and 0.5 was the one value within 1.5 mAP points of the best and
///   better than uniform in KL on all three synthetic settings tried (0.3 and 1 each lost
///   2 to 3 mAP points on one of them). The 1e-3 of ICS-style code belongs to another
///   reduction and scale. PGD is stable while `eta · lambda_r · max |L_i| < 2`: up to 39
///   labels per image with these defaults.
/// - `eta = 0.1`, one PGD step per batch, 2 warm-up epochs, `lambda_q = 0.05`, Adam
///   `lr = 1e-3` decayed ×0.7 every 10 epochs, batch 64: CSQ's head settings; mAP settles
///   within 10 to 20 epochs, hence 30 epochs.
///
/// Loss reduction (it rescales `eta` and `lambda_r`): the centre loss `l(u, c)` and the
/// quantisation term are **means over the `bits` bits**, and the network objective is the
/// mean over the images of a mini-batch. The weight step works per image on
/// `l(u_i, c_k) + λ_r Σ_k w_ik ln w_ik`, with `l` the same mean over bits, so `l` lies in
/// `[0, ln 2]`-ish at initialisation and `lambda_r` is measured against that scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Code length K: a multiple of 8 from 8 to 4096.
    pub bits: usize,
    pub method: Method,
    pub centres: CentreMethod,
    /// Minimum pairwise Hamming distance the balanced random centres must reach;
    /// `None` means `bits / 4`.
    pub centre_min_distance: Option<usize>,
    /// Widths of the hidden layers (each followed by ReLU and dropout); empty means a single
    /// linear layer `d -> bits`. CSQ's head is `[2048, 2048]` (with dropout 0.5).
    pub hidden: Vec<usize>,
    /// Dropout probability after each hidden ReLU (CSQ: 0.5 after the first only; here the
    /// same rate after every hidden layer). Ignored with no hidden layers.
    pub dropout: f64,
    /// Entropy weight λ_r of the per-image weights (ICS only); must be > 0.
    pub lambda_r: f64,
    /// Quantisation weight λ_q on `mean_j (|u_j| − 1)²`.
    pub lambda_q: f64,
    /// PGD step size η on the weights.
    pub eta: f64,
    /// PGD steps per mini-batch (with [`WeightUpdate::Pgd`]).
    pub n_pgd: usize,
    pub weight_update: WeightUpdate,
    pub epochs: usize,
    pub batch_size: usize,
    /// Adam learning rate at epoch 0.
    pub lr: f64,
    /// Step decay: the learning rate is multiplied by `lr_decay` every `lr_step_epochs`.
    pub lr_decay: f64,
    pub lr_step_epochs: usize,
    /// L2 penalty added to the gradient of weight matrices (not biases), as torch's Adam does.
    pub weight_decay: f64,
    /// Epochs at the start during which the per-image weights stay uniform (ICS only).
    pub warmup_epochs: usize,
    pub seed: u64,
    /// With an evaluation set, compute mAP@R every this many epochs (and after the last).
    pub eval_every: usize,
    /// Fine-tuning of the backbone (default: none, the head on frozen features).
    #[serde(skip_serializing_if = "Finetune::is_default")]
    pub finetune: Finetune,
    /// Parameters of `method = orthohash`.
    #[serde(skip_serializing_if = "OrthoHashParams::is_default")]
    pub orthohash: OrthoHashParams,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            bits: 64,
            method: Method::Ics,
            centres: CentreMethod::BalancedRandom,
            centre_min_distance: None,
            hidden: vec![1024],
            dropout: 0.0,
            lambda_r: 0.5,
            lambda_q: 0.05,
            eta: 0.1,
            n_pgd: 1,
            weight_update: WeightUpdate::Pgd,
            epochs: 30,
            batch_size: 64,
            lr: 1e-3,
            lr_decay: 0.7,
            lr_step_epochs: 10,
            weight_decay: 0.0,
            warmup_epochs: 2,
            seed: 0,
            eval_every: 5,
            finetune: Finetune::default(),
            orthohash: OrthoHashParams::default(),
        }
    }
}

impl TrainConfig {
    /// Checks every parameter on its own, with an error naming the parameter and its value.
    /// Data-dependent checks (label rows, the PGD stability bound) happen in training.
    pub fn validate(&self) -> Result<()> {
        if let Err(e) = ics_codes::code::check_bits(self.bits) {
            bail!("bits: {e}");
        }
        if self.centres == CentreMethod::Hadamard {
            ensure!(
                self.bits.is_power_of_two(),
                "bits = {}: Hadamard centres need a power of two",
                self.bits
            );
        }
        if let Some(d) = self.centre_min_distance {
            ensure!(
                d <= self.bits,
                "centre_min_distance = {d} exceeds bits = {}",
                self.bits
            );
        }
        for (i, &w) in self.hidden.iter().enumerate() {
            ensure!(w >= 1, "hidden[{i}] = 0: a layer needs at least one unit");
        }
        ensure!(
            (0.0..1.0).contains(&self.dropout),
            "dropout = {} must be in [0, 1)",
            self.dropout
        );
        ensure!(
            self.lambda_r.is_finite() && self.lambda_r > 0.0,
            "lambda_r = {} must be finite and > 0 (the entropy term keeps weights off the \
             simplex vertices; a large value keeps them uniform)",
            self.lambda_r
        );
        ensure!(
            self.lambda_q.is_finite() && self.lambda_q >= 0.0,
            "lambda_q = {} must be finite and >= 0",
            self.lambda_q
        );
        ensure!(
            self.eta.is_finite() && self.eta > 0.0,
            "eta = {} must be finite and > 0",
            self.eta
        );
        ensure!(
            self.orthohash.scale.is_finite() && self.orthohash.scale > 0.0,
            "orthohash.scale = {} must be finite and > 0",
            self.orthohash.scale
        );
        ensure!(
            self.orthohash.margin.is_finite() && self.orthohash.margin >= 0.0,
            "orthohash.margin = {} must be finite and >= 0",
            self.orthohash.margin
        );
        if self.learns_weights() && self.weight_update == WeightUpdate::Pgd {
            ensure!(
                self.n_pgd >= 1,
                "n_pgd = 0: use warmup_epochs = epochs to keep the weights uniform"
            );
        }
        ensure!(self.epochs >= 1, "epochs = 0: train at least one epoch");
        ensure!(self.batch_size >= 1, "batch_size = 0: must be >= 1");
        ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "lr = {} must be finite and > 0",
            self.lr
        );
        ensure!(
            self.lr_decay.is_finite() && self.lr_decay > 0.0 && self.lr_decay <= 1.0,
            "lr_decay = {} must be in (0, 1]",
            self.lr_decay
        );
        ensure!(self.lr_step_epochs >= 1, "lr_step_epochs = 0: must be >= 1");
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "weight_decay = {} must be finite and >= 0",
            self.weight_decay
        );
        ensure!(
            self.warmup_epochs <= self.epochs,
            "warmup_epochs = {} exceeds epochs = {}",
            self.warmup_epochs,
            self.epochs
        );
        ensure!(self.eval_every >= 1, "eval_every = 0: must be >= 1");
        self.finetune.validate()
    }

    /// Whether the run learns per-image weights (ICS, or OrthoHash with ICS's weights).
    pub fn learns_weights(&self) -> bool {
        match self.method {
            Method::Ics => true,
            Method::Csq => false,
            Method::Orthohash => self.orthohash.ics_weights,
        }
    }

    /// The backbone's learning rate during `epoch` (the head's times the fine-tuning scale).
    pub fn backbone_lr_at(&self, epoch: usize) -> f64 {
        self.lr_at(epoch) * self.finetune.backbone_lr_scale
    }

    /// The centre distance bound in force: the configured one or `bits / 4`.
    pub fn min_centre_distance(&self) -> usize {
        self.centre_min_distance.unwrap_or(self.bits / 4)
    }

    /// Learning rate during `epoch` (0-based): `lr · lr_decay^(epoch / lr_step_epochs)`.
    pub fn lr_at(&self, epoch: usize) -> f64 {
        self.lr * self.lr_decay.powi((epoch / self.lr_step_epochs) as i32)
    }
}

/// Independent random streams derived from one seed, so that adding draws to one use (say,
/// dropout) never changes another (the centres).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Centres = 1,
    Init = 2,
    Shuffle = 3,
    Dropout = 4,
    TieBreak = 5,
    /// Augmentation draws of a fine-tuning source (per image and epoch).
    Augment = 6,
}

/// A ChaCha8 generator for `stream` of `seed`.
pub(crate) fn rng(seed: u64, stream: Stream) -> rand_chacha::ChaCha8Rng {
    use rand::SeedableRng;
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream as u64);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_json() {
        let c = TrainConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        // Partial JSON fills in defaults; unknown keys are refused.
        let partial: TrainConfig =
            serde_json::from_str(r#"{"bits": 32, "method": "csq"}"#).unwrap();
        assert_eq!((partial.bits, partial.method), (32, Method::Csq));
        assert!(serde_json::from_str::<TrainConfig>(r#"{"lamda_r": 1.0}"#).is_err());
    }

    #[test]
    fn invalid_parameters_are_refused_by_name() {
        let bad: Vec<(TrainConfig, &str)> = vec![
            (
                TrainConfig {
                    bits: 12,
                    ..Default::default()
                },
                "bits",
            ),
            (
                TrainConfig {
                    bits: 0,
                    ..Default::default()
                },
                "bits",
            ),
            (
                TrainConfig {
                    bits: 8192,
                    ..Default::default()
                },
                "bits",
            ),
            (
                TrainConfig {
                    bits: 24,
                    centres: CentreMethod::Hadamard,
                    ..Default::default()
                },
                "Hadamard",
            ),
            (
                TrainConfig {
                    lambda_r: 0.0,
                    ..Default::default()
                },
                "lambda_r",
            ),
            (
                TrainConfig {
                    lambda_r: f64::NAN,
                    ..Default::default()
                },
                "lambda_r",
            ),
            (
                TrainConfig {
                    lambda_q: -1.0,
                    ..Default::default()
                },
                "lambda_q",
            ),
            (
                TrainConfig {
                    eta: 0.0,
                    ..Default::default()
                },
                "eta",
            ),
            (
                TrainConfig {
                    n_pgd: 0,
                    ..Default::default()
                },
                "n_pgd",
            ),
            (
                TrainConfig {
                    batch_size: 0,
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                TrainConfig {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                TrainConfig {
                    lr: 0.0,
                    ..Default::default()
                },
                "lr",
            ),
            (
                TrainConfig {
                    lr_decay: 1.5,
                    ..Default::default()
                },
                "lr_decay",
            ),
            (
                TrainConfig {
                    dropout: 1.0,
                    ..Default::default()
                },
                "dropout",
            ),
            (
                TrainConfig {
                    hidden: vec![16, 0],
                    ..Default::default()
                },
                "hidden[1]",
            ),
            (
                TrainConfig {
                    warmup_epochs: 99,
                    ..Default::default()
                },
                "warmup_epochs",
            ),
            (
                TrainConfig {
                    centre_min_distance: Some(65),
                    ..Default::default()
                },
                "centre_min",
            ),
        ];
        for (c, name) in bad {
            let e = c.validate().expect_err(name).to_string();
            assert!(e.contains(name), "error {e:?} does not name {name}");
        }
        // n_pgd = 0 is fine where PGD does not run.
        TrainConfig {
            n_pgd: 0,
            method: Method::Csq,
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn finetune_modes_parse_and_bad_ones_say_why() {
        for (text, mode) in [
            ("none", FinetuneMode::None),
            ("all", FinetuneMode::All),
            ("top:2", FinetuneMode::Top(2)),
            (" TOP:7 ", FinetuneMode::Top(7)),
        ] {
            let m: FinetuneMode = text.parse().unwrap();
            assert_eq!(m, mode);
            assert_eq!(m.to_string().parse::<FinetuneMode>().unwrap(), m);
        }
        for (text, says) in [
            ("top:0", "N >= 1"),
            ("top:x", "whole number"),
            ("top:-1", "whole number"),
            ("top", "expected none, top:N"),
            ("everything", "expected none, top:N"),
            ("", "expected none, top:N"),
        ] {
            let e = text.parse::<FinetuneMode>().unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        // JSON: a string; defaults are not written, so frozen configurations are unchanged.
        let c = TrainConfig::default();
        assert!(!serde_json::to_string(&c).unwrap().contains("finetune"));
        let json = r#"{"finetune": {"mode": "top:3", "augment": true}}"#;
        let c: TrainConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c.finetune.mode, FinetuneMode::Top(3));
        assert_eq!(c.finetune.backbone_lr_scale, 0.2);
        c.validate().unwrap();
        let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert!(serde_json::from_str::<TrainConfig>(r#"{"finetune": {"mode": "top:0"}}"#).is_err());
        // Augmentation without fine-tuning, a zero backbone rate: refused by name.
        let mut c = TrainConfig::default();
        c.finetune.augment = true;
        assert!(c.validate().unwrap_err().to_string().contains("augment"));
        let mut c = TrainConfig::default();
        c.finetune.backbone_lr_scale = 0.0;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("backbone_lr_scale"));
        assert!((TrainConfig::default().backbone_lr_at(0) - 2e-4).abs() < 1e-12);
    }

    #[test]
    fn step_decay_schedule() {
        let c = TrainConfig {
            lr: 1.0,
            lr_decay: 0.5,
            lr_step_epochs: 3,
            ..Default::default()
        };
        let lrs: Vec<f64> = (0..7).map(|e| c.lr_at(e)).collect();
        assert_eq!(lrs, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]);
    }
}
