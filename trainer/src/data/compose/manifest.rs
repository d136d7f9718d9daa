//! What a composed folder records about itself: `manifest.json` (format and version, the
//! options, class names, the definitions of the areas, per-split numbers) and the header of
//! the `{split}_instances.tsv` files.

use serde::{Deserialize, Serialize};

use super::options::{ComposeOptions, Split};

/// Format name and version written to (and checked in) the manifest.
pub const MANIFEST_FORMAT: &str = "ics_hash composed multi-label benchmark";
pub const MANIFEST_VERSION: u32 = 1;
/// Header of the `{split}_instances.tsv` files.
pub const INSTANCES_HEADER: &str = "image\tclass\tsource_id\tx\ty\tw\th\tpixel_area";

/// Per-split numbers reported by [`compose`](super::compose) and written to the manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitSummary {
    pub split: Split,
    pub canvases: usize,
    /// Source instances the split may draw from.
    pub pool_instances: usize,
    /// Distinct source instances actually drawn.
    pub distinct_instances_used: usize,
    /// Canvases with 1, 2, 3, ... instances.
    pub instances_per_canvas: Vec<usize>,
    /// Canvases carrying each class.
    pub class_counts: Vec<usize>,
    /// Canvases whose layout needed the shrunk size range or the row fallback.
    pub shrunk_layouts: usize,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Manifest {
    pub(super) format: String,
    pub(super) version: u32,
    pub(super) options: ComposeOptions,
    pub(super) class_names: Vec<String>,
    pub(super) definitions: Definitions,
    pub(super) splits: Vec<SplitSummary>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct Definitions {
    pub(super) foreground: String,
    pub(super) box_area: String,
    pub(super) resize: String,
    pub(super) partition: String,
}
