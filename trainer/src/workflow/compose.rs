//! Loading the composer's sources and composing a benchmark, observed.

use std::path::Path;

use anyhow::{Context, Result};

use super::events::{Event, Observer, Task};
use crate::data::{compose, ComposeOptions, ComposeSummary, SourcePaths, Sources};

/// The 20-class pool of source instances (Fashion-MNIST and MNIST digits).
pub fn load_sources(paths: &SourcePaths, obs: &mut dyn Observer) -> Result<Sources> {
    obs.event(Event::Begin(Task::LoadSources));
    let sources = Sources::load(paths).context(
        "loading the source images (`make setup` in the ics_hash checkout downloads them into \
         its .cache/data; from another folder set ICS_DATA_DIR=/path/to/ics_hash/.cache/data)",
    );
    obs.event(Event::End);
    let sources = sources?;
    obs.event(Event::SourcesLoaded(&sources));
    Ok(sources)
}

/// Composes the benchmark `opts` describes into `out` ([`compose`]).
pub fn compose_into(
    sources: &Sources,
    opts: &ComposeOptions,
    out: &Path,
    obs: &mut dyn Observer,
) -> Result<ComposeSummary> {
    obs.event(Event::Begin(Task::Compose { opts, out }));
    let summary = compose(sources, opts, out);
    obs.event(Event::End);
    let summary = summary?;
    obs.event(Event::Composed {
        summary: &summary,
        opts,
        out,
    });
    Ok(summary)
}
