//! Terminal output: log lines on stderr, progress bars (indicatif; drawn only on a terminal,
//! and never with `--quiet`), durations.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// `1.23 s`, `4 min 05 s`.
pub use ics_train::eval::format_duration as duration;

static QUIET: AtomicBool = AtomicBool::new(false);

/// Turns progress bars off for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress bars are off.
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// One log line on stderr.
pub fn log(line: impl AsRef<str>) {
    eprintln!("{}", line.as_ref());
}

/// A log line printed above a progress bar (works whether the bar is drawn or hidden).
pub fn log_with(bar: &ProgressBar, line: impl AsRef<str>) {
    bar.suspend(|| eprintln!("{}", line.as_ref()));
}

/// A progress bar of `len` steps; `unit` names them ("epochs", "canvases").
pub fn bar(len: u64, prefix: &str, unit: &str) -> ProgressBar {
    if quiet() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{prefix} {{bar:40}} {{pos}}/{{len}} {unit} [{{elapsed_precise}}, eta {{eta}}]"
        ))
        .expect("valid template"),
    );
    bar
}

/// A spinner with a message and the elapsed time, for steps without a count.
pub fn spinner(msg: impl Into<String>) -> ProgressBar {
    if quiet() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed_precise}]")
            .expect("valid template"),
    );
    bar.set_message(msg.into());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
