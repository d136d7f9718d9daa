//! What the commands do between parsing their arguments and printing, as library calls:
//! loading a run's data and features, training (frozen features or fine-tuning) with the
//! model file and report, evaluating model files. Each step tells an [`Observer`] what it
//! is doing ([`events`]); the command line turns those events into log lines and progress
//! bars, so nothing here prints.
//!
//! - [`events`]: the events, the observer.
//! - [`mod@compose`]: loading the composer's sources, composing.
//! - [`features`]: loading splits, their features through the cache.
//! - [`training`]: training a head or fine-tuning, scoring a model, the `train` run.
//! - [`evaluation`]: the `eval` run.

pub mod compose;
pub mod evaluation;
pub mod events;
pub mod features;
pub mod training;

pub use compose::{compose_into, load_sources};
pub use evaluation::{EvalJob, Evaluation};
pub use events::{Event, Observer, Silent, Task};
pub use features::{features_of, load_eval_splits, load_split, FeatureSettings};
pub use training::{evaluate_model, finetune, report_path_for, train_head, TrainJob};
