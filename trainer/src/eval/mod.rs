//! Evaluation of hash codes and learned weights (protocol in docs/method.md, evaluation).
//!
//! - [`labels`], [`set`]: label bit sets, an evaluation split (codes are
//!   [`crate::codes::PackedCodes`]).
//! - [`map`]: mAP@R by Hamming ranking with ties broken by database index.
//! - [`pr`]: precision within Hamming radius 2 and the precision-recall curve by radius.
//! - [`cosine`]: mAP@R of the raw features by cosine similarity (the float baseline).
//! - [`agreement`]: learned weights against ground-truth area shares; [`size_ratio`]: the
//!   same by how different the instance sizes of an image are.
//! - [`report`]: the JSON report of a run; [`summary`]: what `ics-train eval` writes (JSON and
//!   markdown); [`shares`]: the points of the weights-vs-area plot.

pub mod agreement;
pub mod cosine;
pub mod labels;
pub mod map;
pub mod pr;
pub mod report;
pub mod set;
pub mod shares;
pub mod size_ratio;
pub mod summary;

#[cfg(test)]
mod training_tests;

pub use agreement::{weight_area_agreement, AgreementReport};
pub use labels::LabelSets;
pub use map::{map_at_r, TIE_RULE};
pub use report::{ModelEval, RetrievalReport, TrainReport};
pub use set::EvalSet;
pub use shares::{share_points, SharePoints};
pub use summary::{format_duration, format_rate, summary_markdown, EvalSummary};
