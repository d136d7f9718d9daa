//! `ics-train`: the trainer's command line (see `cli` for the commands).

// No unsafe code in the trainer. `deny`, not `forbid`: ndarray's `s!` macro expands to an
// `allow(unsafe_code)` of its own, which `forbid` would refuse.
#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
