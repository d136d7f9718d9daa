//! What a workflow tells its caller while it runs: tasks beginning and ending (for progress
//! bars and spinners) and results worth a line. The library prints nothing; the command line
//! implements [`Observer`] and prints.

use std::path::Path;

use crate::backbone::Extracted;
use crate::data::{ComposeOptions, ComposeSummary, LoadedSplit, Sources};
use crate::eval::{AgreementReport, ModelEval};
use crate::finetune::FinetuneOutcome;
use crate::ics::{EpochLog, IcsModel, TrainConfig};

/// A task that takes a while; [`Event::Begin`] and [`Event::End`] bracket it (tasks nest).
#[derive(Debug, Clone, Copy)]
pub enum Task<'a> {
    /// Loading the composer's source images.
    LoadSources,
    /// Composing a benchmark with `opts` into `out`.
    Compose {
        opts: &'a ComposeOptions,
        out: &'a Path,
    },
    /// Importing EfficientNet-Lite0 from its PyTorch weights.
    ImportLite0,
    /// Training a head on frozen features: `config.epochs` epochs, each an [`Event::Epoch`].
    /// `tag` prefixes the run's lines (`[ics64] `, or empty).
    Train {
        tag: &'a str,
        config: &'a TrainConfig,
    },
    /// Training the backbone with the head (`config.finetune`), epoch by epoch, on `device`
    /// (a description, `crate::finetune::device::Compute::describe`).
    Finetune {
        tag: &'a str,
        config: &'a TrainConfig,
        device: &'a str,
    },
    /// Ranking the raw features by cosine similarity.
    Cosine,
}

/// One thing that happened.
#[derive(Clone, Copy)]
pub enum Event<'a> {
    Begin(Task<'a>),
    /// The innermost task ended, whether it succeeded or not.
    End,
    /// The composer's sources are loaded.
    SourcesLoaded(&'a Sources),
    /// A benchmark was composed into `out`.
    Composed {
        summary: &'a ComposeSummary,
        opts: &'a ComposeOptions,
        out: &'a Path,
    },
    /// A line worth showing as it is (e.g. `--device auto` training on the CPU, and why).
    Note(&'a str),
    /// A split was loaded (a COCO split says how many images it left out).
    SplitLoaded(&'a LoadedSplit),
    /// Features of a split were extracted, or read from the cache.
    Features {
        split: &'a LoadedSplit,
        extracted: &'a Extracted,
    },
    /// An epoch of the current [`Task::Train`] or [`Task::Finetune`] ended; `r` is the R of
    /// its mAP@R, if evaluated.
    Epoch {
        tag: &'a str,
        log: &'a EpochLog,
        config: &'a TrainConfig,
        r: usize,
    },
    /// A head trained on frozen features of `images` training images.
    Trained {
        tag: &'a str,
        config: &'a TrainConfig,
        model: &'a IcsModel,
        images: usize,
    },
    /// A fine-tuning run ended on `images` training images.
    Finetuned {
        tag: &'a str,
        config: &'a TrainConfig,
        outcome: &'a FinetuneOutcome,
        images: usize,
    },
    /// A model's weights are not for the training split given (`weights` rows, the split has
    /// `train_images`): it is evaluated without the weight-vs-area agreement.
    NoAgreement {
        name: &'a str,
        weights: usize,
        train_images: usize,
    },
    /// A model was evaluated.
    Evaluated(&'a ModelEval),
    /// A model's weight-vs-area agreement, as `ics-train eval` reports it.
    Agreement {
        name: &'a str,
        report: &'a AgreementReport,
    },
    /// mAP@R of the raw features by cosine similarity (`ics-train eval --cosine`).
    Cosine {
        r: usize,
        map: f64,
    },
}

/// Receives a workflow's events.
pub trait Observer {
    fn event(&mut self, event: Event<'_>);
}

/// An observer that ignores everything (tests, callers that print nothing).
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn event(&mut self, _: Event<'_>) {}
}
