//! `ics-train`: the trainer's command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") | Some("-V") => {
            println!("ics-train {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        None | Some("--help") | Some("-h") => {
            println!(
                "ics-train {}: trains ICS hash models for ics_hash.\n\n\
                 No subcommands yet: training, evaluation and export are being built.",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("ics-train: unknown command {other:?} (see --help)");
            ExitCode::from(2)
        }
    }
}
