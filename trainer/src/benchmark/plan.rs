//! What a benchmark run is asked to do ([`BenchPlan`]) and what its size implies: the
//! compositions ([`compose_options`]), the small run's head, the default work folder.

use std::path::PathBuf;

use anyhow::{anyhow, ensure, Result};
use ics_codes::code::check_bits;

use super::record::BenchSize;
use crate::data::{ComposeOptions, SourcePaths};
use crate::ics::{FinetuneMode, Method, TrainConfig};

/// One benchmark run: where it works and writes, what it trains and measures.
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub size: BenchSize,
    /// Output folder: the model files go to `out/models` (the command writes the rest).
    pub out: PathBuf,
    /// Work folder for the composed data, the backbone and the feature cache, reused by later
    /// runs ([`BenchSize::default_work`] when the command line gives none).
    pub work: PathBuf,
    /// Code lengths of the frozen rows (and of the fine-tuned rows unless `finetune_bits`).
    pub bits: Vec<usize>,
    /// R of mAP@R.
    pub r: usize,
    /// Training canvases of the area benchmark (default: by size).
    pub area_train: Option<usize>,
    /// Seed of the composed data.
    pub data_seed: u64,
    /// Methods of the frozen rows (ICS, and CSQ unless skipped).
    pub methods: Vec<Method>,
    /// Fine-tuning modes, each a row group: `none` (the head on frozen features), `top:N`,
    /// `all`.
    pub finetune: Vec<FinetuneMode>,
    /// Epochs of the fine-tuned rows (default: the configuration's).
    pub finetune_epochs: Option<usize>,
    /// Code lengths of the fine-tuned rows; empty: `bits`.
    pub finetune_bits: Vec<usize>,
    /// Methods of the fine-tuned rows; empty: `methods`.
    pub finetune_methods: Vec<Method>,
    /// Checkpoint folder of the fine-tuned rows (one subfolder per row).
    pub checkpoint_dir: Option<PathBuf>,
    /// Resume the fine-tuned rows whose checkpoint exists.
    pub resume: bool,
    /// Run the area benchmark.
    pub area: bool,
    /// The training configuration of every row ([`BenchSize::config`]).
    pub base: TrainConfig,
    /// EfficientNet-Lite0 PyTorch weights.
    pub pth: PathBuf,
    /// The composer's source images.
    pub sources: SourcePaths,
    /// Images per ONNX Runtime call, and its intra-op threads (0 = one per core).
    pub batch: usize,
    pub ort_threads: usize,
    /// Images of the extraction speed probe (default: by size).
    pub speed_sample: Option<usize>,
    /// Progress bars of feature extraction.
    pub progress: bool,
}

impl BenchPlan {
    /// Checks the code lengths (each a valid length, at least one), that there is a
    /// fine-tuning mode, and the fine-tuned rows' epochs; errors name the command's flags.
    pub fn check(&self) -> Result<()> {
        for &b in &self.bits {
            check_bits(b).map_err(|e| anyhow!("--bits {b}: {e}"))?;
        }
        ensure!(!self.bits.is_empty(), "--bits: no code length");
        ensure!(!self.finetune.is_empty(), "--finetune: no mode");
        for &b in &self.finetune_bits {
            check_bits(b).map_err(|e| anyhow!("--finetune-bits {b}: {e}"))?;
        }
        if let Some(e) = self.finetune_epochs {
            ensure!(e >= 1, "--finetune-epochs 0: must be >= 1");
        }
        Ok(())
    }
}

impl BenchSize {
    /// `.cache/bench/full` or `.cache/bench/small` (under the current folder).
    pub fn default_work(self) -> PathBuf {
        PathBuf::from(".cache/bench").join(match self {
            BenchSize::Full => "full",
            BenchSize::Small => "small",
        })
    }

    /// Images of the extraction speed probe: 512, small 64.
    pub fn speed_sample(self) -> usize {
        match self {
            BenchSize::Full => 512,
            BenchSize::Small => 64,
        }
    }

    /// The rows' training configuration from `config`: a small run gets a small head
    /// (hidden 128) and fewer epochs (20, learning-rate step 8) unless they were chosen
    /// (`hidden_chosen`, `epochs_chosen`); validated. A full run trains with `config`.
    pub fn config(
        self,
        mut config: TrainConfig,
        hidden_chosen: bool,
        epochs_chosen: bool,
    ) -> Result<TrainConfig> {
        if self == BenchSize::Small {
            // A small head and fewer epochs keep the test run (debug build) in seconds.
            if !hidden_chosen {
                config.hidden = vec![128];
            }
            if !epochs_chosen {
                config.epochs = 20;
                config.lr_step_epochs = 8;
            }
            config.validate()?;
        }
        Ok(config)
    }
}

/// The composition options of the main and the area benchmark; `area_train` overrides the
/// area benchmark's training canvases (full 10,000, small 200).
pub fn compose_options(
    size: BenchSize,
    seed: u64,
    area_train: Option<usize>,
) -> (ComposeOptions, ComposeOptions) {
    let main = match size {
        BenchSize::Full => ComposeOptions::default(),
        BenchSize::Small => ComposeOptions::small(),
    };
    let mut area = ComposeOptions::area_benchmark();
    if size == BenchSize::Small {
        area.canvas = 64;
        area.min_size = 14;
        area.max_size = 56;
    }
    area.train = area_train.unwrap_or(match size {
        BenchSize::Full => 10_000,
        BenchSize::Small => 200,
    });
    area.query = 0;
    area.database = 0;
    (
        ComposeOptions { seed, ..main },
        ComposeOptions {
            // A different seed stream from the main benchmark's canvases.
            seed: seed.wrapping_add(1),
            ..area
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small plan: ICS and CSQ at 16 and 32 bits, frozen only.
    pub(crate) fn plan() -> BenchPlan {
        BenchPlan {
            size: BenchSize::Small,
            out: "out".into(),
            work: "work".into(),
            bits: vec![16, 32],
            r: 100,
            area_train: None,
            data_seed: 0,
            methods: vec![Method::Ics, Method::Csq],
            finetune: vec![FinetuneMode::None],
            finetune_epochs: None,
            finetune_bits: vec![],
            finetune_methods: vec![],
            checkpoint_dir: None,
            resume: false,
            area: true,
            base: TrainConfig {
                epochs: 20,
                lr_step_epochs: 8,
                warmup_epochs: 2,
                ..TrainConfig::default()
            },
            pth: "lite0.pth".into(),
            sources: SourcePaths::new("f", "m"),
            batch: 32,
            ort_threads: 0,
            speed_sample: None,
            progress: false,
        }
    }

    #[test]
    fn small_runs_get_a_small_head_unless_chosen() {
        let base = TrainConfig::default();
        let full = BenchSize::Full.config(base.clone(), false, false).unwrap();
        assert_eq!(full, base);
        let small = BenchSize::Small.config(base.clone(), false, false).unwrap();
        assert_eq!(
            (small.hidden.clone(), small.epochs, small.lr_step_epochs),
            (vec![128], 20, 8)
        );
        let chosen = TrainConfig {
            hidden: vec![],
            epochs: 6,
            warmup_epochs: 1,
            ..base
        };
        let kept = BenchSize::Small.config(chosen.clone(), true, true).unwrap();
        assert_eq!(kept, chosen);
        assert_eq!(
            BenchSize::Small.default_work(),
            PathBuf::from(".cache/bench/small")
        );
        assert_eq!(BenchSize::Full.speed_sample(), 512);
    }

    #[test]
    fn plans_check_lengths_modes_and_epochs() {
        let ok = plan();
        ok.check().unwrap();
        let err = |p: BenchPlan| format!("{:#}", p.check().unwrap_err());
        let e = err(BenchPlan {
            bits: vec![16, 12],
            ..ok.clone()
        });
        assert!(e.starts_with("--bits 12: "), "{e}");
        let e = err(BenchPlan {
            bits: vec![],
            ..ok.clone()
        });
        assert_eq!(e, "--bits: no code length");
        let e = err(BenchPlan {
            finetune: vec![],
            ..ok.clone()
        });
        assert_eq!(e, "--finetune: no mode");
        let e = err(BenchPlan {
            finetune_bits: vec![0],
            ..ok.clone()
        });
        assert!(e.starts_with("--finetune-bits 0: "), "{e}");
        let e = err(BenchPlan {
            finetune_epochs: Some(0),
            ..ok.clone()
        });
        assert_eq!(e, "--finetune-epochs 0: must be >= 1");
        BenchPlan {
            finetune_epochs: Some(1),
            ..ok
        }
        .check()
        .unwrap();
    }

    #[test]
    fn small_benchmark_options_fit_their_canvases() {
        for size in [BenchSize::Full, BenchSize::Small] {
            let (main, area) = compose_options(size, 7, None);
            main.validate().unwrap();
            area.validate().unwrap();
            assert_eq!((main.seed, area.seed), (7, 8));
            assert_eq!((area.query, area.database), (0, 0));
            assert_eq!(area.min_instances, 2);
        }
        let (main, area) = compose_options(BenchSize::Small, 0, Some(33));
        assert_eq!((main.canvas, area.canvas, area.train), (64, 64, 33));
        let (_, area) = compose_options(BenchSize::Full, 0, None);
        assert_eq!(area.train, 10_000);
    }
}
