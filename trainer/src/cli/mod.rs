//! The `ics-train` command line: one file per command, on top of the `ics_train` library.
//! Commands parse their arguments, call the library and print; file formats, the export and
//! the metrics are the library's.
//!
//! | command | what it does |
//! |---|---|
//! | `data compose` | composes the multi-label benchmark ([`compose`]) |
//! | `backbone import` | EfficientNet-Lite0 from its `.pth`, or any ONNX backbone, to a backbone file ([`backbone`]) |
//! | `features` | extracts (and caches) backbone features of a dataset ([`features`]) |
//! | `train` | trains an ICS or CSQ hash head (on frozen features, or fine-tuning the backbone with `--finetune`), writes a model file and a JSON report ([`train`]) |
//! | `eval` | mAP@R, PR curves, weight-vs-area agreement; JSON, markdown and PNG plots ([`eval`]) |
//! | `export` | one ONNX file (backbone + head, or head alone) with the model contract, checked ([`export`]) |
//! | `encode` | hash codes of images with an exported model, as hex ([`encode`]) |
//! | `bench` | the quality and speed benchmark ([`bench`]) |
//! | `sheet` | a contact sheet PNG: one row per query, its image then its hits, captioned ([`sheet`]) |
//!
//! Logs go to stderr (one line per step or epoch); results meant for other programs (codes)
//! go to stdout or files. Errors are printed with their whole context chain and exit code 1.

pub mod backbone;
pub mod bench;
pub mod compose;
pub mod config;
pub mod data;
pub mod encode;
pub mod eval;
pub mod export;
pub mod features;
pub mod plots;
pub mod printer;
pub mod sheet;
pub mod train;
pub mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ics-train: trains ICS (Instance-weighted Central Similarity) hash models for ics_hash.
///
/// Typical pipeline (each step writes files the next one reads):
///
///   ics-train data compose --out demo/data --size demo
///   ics-train backbone import --out demo/lite0-128.onnx
///   ics-train features --backbone demo/lite0-128.onnx --data demo/data
///   ics-train train --backbone demo/lite0-128.onnx --data demo/data --bits 64 --out demo/ics64.icsm
///   ics-train eval --model demo/ics64.icsm --out demo/eval
///   ics-train export --model demo/ics64.icsm --out demo/ics64.onnx
///   ics-train encode --model demo/ics64.onnx image1.png image2.jpg
///
/// Environment:
///
///   ICS_DATA_DIR    the offline data folder (Lite0 weights, MNIST digits) that default paths
///                   point into [default: .cache/data under the current folder]
///   ORT_DYLIB_PATH  the ONNX Runtime library [default: the one scripts/setup.sh installs]
#[derive(Debug, Parser)]
#[command(name = "ics-train", version, verbatim_doc_comment)]
pub struct Cli {
    /// No progress bars (log lines are still printed to stderr).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Threads for the trainer's own parallel work (0 = one per core). ONNX Runtime threads
    /// are set separately with --ort-threads.
    #[arg(long, global = true, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Datasets: compose the multi-label benchmark.
    #[command(subcommand)]
    Data(DataCommand),
    /// Backbones: import EfficientNet-Lite0 or an ONNX model as the feature extractor.
    #[command(subcommand)]
    Backbone(BackboneCommand),
    /// Extract backbone features of a dataset's splits into the feature cache.
    Features(features::Args),
    /// Train a hash head (ICS, or the CSQ baseline) on cached backbone features, or with the
    /// backbone fine-tuned along (--finetune top:N|all).
    Train(train::Args),
    /// Evaluate model files: mAP@R, PR curves, weight-vs-area agreement, plots.
    Eval(eval::Args),
    /// Export a model file to one ONNX file carrying the model contract, and check it.
    Export(export::Args),
    /// Hash codes of images (or feature rows) with an exported ONNX model, as hex.
    Encode(encode::Args),
    /// The benchmark: composed data, Lite0 features, ICS vs CSQ at several lengths, cosine
    /// baseline, weight-vs-area agreement; JSON, markdown table and PNG plots.
    Bench(bench::Args),
    /// A contact sheet PNG: one row per query (its image, then its hits), each tile captioned.
    Sheet(sheet::Args),
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Compose the 20-class Fashion-MNIST + MNIST multi-label benchmark (canvases with 1-3
    /// pasted instances, exact per-class areas).
    Compose(compose::Args),
}

#[derive(Debug, Subcommand)]
pub enum BackboneCommand {
    /// Write a backbone file: EfficientNet-Lite0 converted from its PyTorch weights (default),
    /// or any ONNX model with --backbone FILE --feature-output NAME.
    Import(backbone::Args),
}

/// Parses the command line, runs the command, prints errors; the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    ui::set_quiet(cli.quiet);
    if cli.threads > 0 {
        // Fails only if a pool exists already, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(cli.threads)
            .build_global();
    }
    let started = std::time::Instant::now();
    let result = match cli.command {
        Command::Data(DataCommand::Compose(a)) => compose::run(a),
        Command::Backbone(BackboneCommand::Import(a)) => backbone::run(a),
        Command::Features(a) => features::run(a),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Export(a) => export::run(a),
        Command::Encode(a) => encode::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Sheet(a) => sheet::run(a),
    };
    match result {
        Ok(()) => {
            ui::log(format!(
                "done in {}",
                ui::duration(started.elapsed().as_secs_f64())
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
