//! The ICS trainer as a library; `ics-train` is its command line.
//!
//! The optimisation, evaluation and export land with the trainer issue; today the crate only
//! wires the workspace and re-exports the shared code contract.

pub use ics_core::code;
