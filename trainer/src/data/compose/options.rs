//! The benchmark's splits and the composer options ([`Default`]: the benchmark size;
//! presets for tests and the area benchmark), checked before any work.

use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

use crate::data::source::NUM_SOURCE_CLASSES;

/// The three benchmark splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Query,
    Database,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Query, Split::Database];

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Query => "query",
            Split::Database => "database",
        }
    }

    /// 0, 1, 2 in [`Split::ALL`] order (pool index, canvas stream).
    pub(super) fn index(self) -> usize {
        self as usize
    }
}

/// Composer options; [`Default`] is the benchmark size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComposeOptions {
    pub seed: u64,
    /// Canvas side in pixels.
    pub canvas: u32,
    /// Instances (= distinct classes) per canvas, inclusive range.
    pub min_instances: usize,
    pub max_instances: usize,
    /// Longer side of a pasted instance, inclusive range (>= 14, <= canvas).
    pub min_size: u32,
    pub max_size: u32,
    /// Minimum free pixels between two boxes.
    pub gap: u32,
    /// Canvases per split.
    pub train: usize,
    pub query: usize,
    pub database: usize,
    /// Save RGB (gray replicated) instead of single-channel PNG.
    pub rgb: bool,
    /// Share of each class's held-out instances that go to the query split.
    pub query_fraction: f64,
    /// Share of each digit class's MNIST instances that go to the train split.
    pub mnist_train_fraction: f64,
}

impl Default for ComposeOptions {
    fn default() -> Self {
        ComposeOptions {
            seed: 0,
            canvas: 128,
            min_instances: 1,
            max_instances: 3,
            min_size: 28,
            max_size: 80,
            gap: 2,
            train: 10_000,
            query: 2_000,
            database: 20_000,
            rgb: true,
            query_fraction: 0.2,
            mnist_train_fraction: 0.5,
        }
    }
}

impl ComposeOptions {
    /// A small benchmark for tests: 64 px canvases, 200 / 50 / 200 canvases.
    pub fn small() -> Self {
        ComposeOptions {
            canvas: 64,
            min_size: 14,
            max_size: 40,
            train: 200,
            query: 50,
            database: 200,
            ..ComposeOptions::default()
        }
    }

    /// The area-test benchmark: 2-3 distinct classes per canvas and a wide scale spread, so
    /// instance shares differ enough for weight-vs-area agreement to be measurable.
    pub fn area_benchmark() -> Self {
        ComposeOptions {
            min_instances: 2,
            max_instances: 3,
            min_size: 20,
            max_size: 100,
            ..ComposeOptions::default()
        }
    }

    /// Canvases in a split.
    pub fn count(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train,
            Split::Query => self.query,
            Split::Database => self.database,
        }
    }

    /// Checks the options before any work; messages name the option.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            (16..=4096).contains(&self.canvas),
            "canvas {} must be in 16..=4096",
            self.canvas
        );
        ensure!(
            1 <= self.min_instances
                && self.min_instances <= self.max_instances
                && self.max_instances <= NUM_SOURCE_CLASSES,
            "instances {}..={} must satisfy 1 <= min <= max <= {NUM_SOURCE_CLASSES} (classes per canvas are distinct)",
            self.min_instances,
            self.max_instances
        );
        ensure!(
            14 <= self.min_size && self.min_size <= self.max_size && self.max_size <= self.canvas,
            "sizes {}..={} must satisfy 14 <= min <= max <= canvas {}",
            self.min_size,
            self.max_size,
            self.canvas
        );
        let row = self.max_instances as u64 * self.min_size as u64
            + (self.max_instances as u64 - 1) * self.gap as u64;
        ensure!(
            row <= self.canvas as u64,
            "{} instances of min_size {} with gap {} do not fit side by side in {} px",
            self.max_instances,
            self.min_size,
            self.gap,
            self.canvas
        );
        for (name, f) in [
            ("query_fraction", self.query_fraction),
            ("mnist_train_fraction", self.mnist_train_fraction),
        ] {
            ensure!(f > 0.0 && f < 1.0, "{name} {f} must be in (0, 1)");
        }
        ensure!(
            self.train + self.query + self.database > 0,
            "no canvases requested"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        assert!(ComposeOptions::default().validate().is_ok());
        assert!(ComposeOptions::small().validate().is_ok());
        assert!(ComposeOptions::area_benchmark().validate().is_ok());
        let bad = [
            ComposeOptions {
                min_size: 10,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_size: 200,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                min_instances: 0,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_instances: 21,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                min_instances: 3,
                max_instances: 2,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                max_instances: 5,
                min_size: 28,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                query_fraction: 1.0,
                ..ComposeOptions::default()
            },
            ComposeOptions {
                train: 0,
                query: 0,
                database: 0,
                ..ComposeOptions::default()
            },
        ];
        for o in bad {
            assert!(o.validate().is_err(), "{o:?}");
        }
    }
}
