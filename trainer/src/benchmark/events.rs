//! What a benchmark run tells its caller besides the workflow events (composition, features,
//! training, evaluation: [`crate::workflow::Event`]).

use std::path::Path;

use super::record::{AreaResult, BenchSize, FeatureSpeed};
use crate::workflow::Observer;

/// A benchmark step's result worth a line.
#[derive(Clone, Copy)]
pub enum BenchEvent<'a> {
    /// The run starts: its work and output folders exist.
    Start {
        size: BenchSize,
        work: &'a Path,
        out: &'a Path,
    },
    /// `dir` holds the benchmark composed with the same options: it is reused.
    ReusingComposed { dir: &'a Path },
    /// EfficientNet-Lite0 was imported to the backbone file `path`.
    BackboneImported {
        description: &'a str,
        path: &'a Path,
    },
    /// The extraction speed on fresh `canvas` px images.
    FeatureSpeed {
        speed: &'a FeatureSpeed,
        canvas: u32,
    },
    /// mAP@R of the raw `feature_dim`-d features by cosine similarity, computed in `seconds`.
    Cosine {
        feature_dim: usize,
        r: usize,
        map: f64,
        seconds: f64,
    },
    /// The area benchmark's result.
    Area(&'a AreaResult),
}

/// Receives a benchmark run's events.
pub trait BenchObserver: Observer {
    fn bench(&mut self, event: BenchEvent<'_>);
}
