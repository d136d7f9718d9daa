//! The multi-label benchmark composer (`ics-train data compose`).
//!
//! No natural-image multi-label set (COCO, NUS-WIDE) is available offline, so the benchmark is
//! composed: each canvas gets 1-3 instances of distinct classes from the 20-class source pool
//! ([`crate::data::source`]), pasted at random scales and positions without box overlap. Because the
//! composer draws every pixel, the per-class foreground area is known exactly, which is the
//! ground truth ICS's instance weights are checked against.
//!
//! Drawing, precisely:
//! - an instance is first cropped to the tight box of its pixels > 0, then resized with the
//!   encoder's triangle filter (`ics_encoder::resize`: bilinear with half-pixel centres and
//!   clamped edges when enlarging, antialiased when shrinking; rounded to the nearest integer)
//!   so its longer side is a size drawn uniformly from `min_size..=max_size`, keeping the
//!   aspect ratio. Bilinear rather than nearest so large scales do not show blocky 28-px
//!   structure a backbone could key on;
//! - boxes (the resized rectangles) are placed at random positions with at least `gap` pixels
//!   between any two boxes. A layout that does not fit is redrawn (new sizes and positions, same
//!   instances); after 16 failures the size range shrinks towards `min_size` (recorded as a
//!   shrunk layout in the manifest), and as a last resort the instances are set in a row at
//!   `min_size`, which the option checks guarantee fits;
//! - the canvas is black (0) and each box's pixels are written, not blended: boxes do not
//!   overlap, so every pixel belongs to at most one instance;
//! - **pixel area** of (canvas, class) = number of pixels of that class's box whose drawn value
//!   is > 0, i.e. exactly the non-zero pixels of the saved PNG inside the box (PNG is lossless);
//!   **box area** = w * h of the box.
//!
//! Splits use disjoint source instances so no instance leaks from training into evaluation,
//! and query and database share none either (an identical instance in both would make
//! retrieval trivially easy): Fashion-MNIST train -> train; Fashion-MNIST test -> query (first
//! `query_fraction` of each class) and database (the rest); MNIST digits per class, in file
//! order -> train (first `mnist_train_fraction`), then query / database as above. Within a
//! split instances are drawn with replacement (20,000 database canvases need more draws than
//! there are held-out instances). The partition does not depend on the seed.
//!
//! Each canvas has its own ChaCha8 stream (seed, split, index), so output is byte-identical for
//! a seed whatever the thread count.
//!
//! Output folder:
//! ```text
//! manifest.json                     options, seed, class names, counts, definitions
//! classes.txt                       class names, one a line (label column order)
//! {train,query,database}.txt        HashNet list files: images/<split>/NNNNNN.png b_1 .. b_20
//! {split}_areas.tsv                 areas file (see data::areas): pixel and box area
//! {split}_instances.tsv             image, class, source_id, x, y, w, h, pixel_area per instance
//! images/{split}/NNNNNN.png         canvases (RGB, gray replicated; or grayscale)
//! ```
//!
//! One file per job:
//! - [`options`]: the splits and the composer options, with their checks;
//! - [`partition`]: which source instances each split may draw (disjoint pools);
//! - [`canvas`]: drawing one canvas (crop, resize, layout, exact areas);
//! - [`write_folder`]: composing every canvas of every split into the folder above;
//! - [`manifest`]: what the folder records about itself (`manifest.json`, the instances
//!   header);
//! - [`read_folder`]: reading a composed folder back (splits as datasets, instances files).

pub mod canvas;
pub mod manifest;
pub mod options;
pub mod partition;
pub mod read_folder;
pub mod write_folder;

#[cfg(test)]
mod testutil;

pub use canvas::{compose_canvas, Canvas, PlacedInstance};
pub use manifest::{SplitSummary, INSTANCES_HEADER, MANIFEST_FORMAT, MANIFEST_VERSION};
pub use options::{ComposeOptions, Split};
pub use partition::SourcePools;
pub use read_folder::{load_composed_split, read_instances, InstanceRow};
pub use write_folder::{compose, ComposeSummary};
