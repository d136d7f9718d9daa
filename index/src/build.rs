//! CREATE INDEX, whatever the strategy: two passes over the table's rows.
//!
//! Pass 1 ([`Build::sample`]) draws a reservoir sample of the codes and sorts aside the TIDs
//! of rows whose code is NULL. [`Build::choose`] then picks the strategy on the sample (by
//! measuring both, unless the options name one) and, for lists, trains the centroids. Pass 2
//! ([`Build::add`]) loads every row: into its list in batches sized from the memory budget, or
//! into an external sort (spilling beyond the budget) from which [`Build::finish`] writes the
//! substring tables. `finish` writes the NULL-code chain last. A table without codes gets the
//! strategy's empty index ([`build_empty`]) and needs no pass 2.
//!
//! The caller writes pages without WAL and logs the finished relation at the end, as
//! PostgreSQL's own index builds do.

use crate::format::{FormatError, Strategy, Tid};
use crate::lists::build::{batch_bytes_per_row, Builder};
use crate::options::{Options, Requested};
use crate::page::PAGE_SIZE;
use crate::relation::Relation;
use crate::sample::{LengthMismatch, Reservoir};
use crate::sort::Sorter;
use crate::spill::Spill;
use crate::strategy::choose;
use crate::substrings::build::{push_row, row_sorter, SortedRows};

/// Codes the strategy is chosen and the centroids are trained on (at most).
const SAMPLE_ROWS: usize = 65_536;
/// Fixed seed: the same table gives the same index.
const SEED: u64 = 0x1c5_4a54;
/// Rows of a lists batch, at least (whatever the budget).
const MIN_BATCH_ROWS: usize = 1024;

/// What a build is doing (for progress reports; the extension numbers them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Sampling,
    Choosing,
    Loading,
    WritingTables,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Sampling,
        Phase::Choosing,
        Phase::Loading,
        Phase::WritingTables,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Sampling => "sampling codes",
            Phase::Choosing => "choosing the strategy",
            Phase::Loading => "loading codes",
            Phase::WritingTables => "writing substring tables",
        }
    }
}

/// Where pass 2 puts rows.
enum Load<'a, R: Relation, S: Spill> {
    Lists(Builder<'a, R>),
    Substrings(Sorter<'a, S>, Vec<u8>),
}

/// One index build into an empty relation.
pub struct Build<'a, R: Relation, S: Spill> {
    rel: &'a R,
    spill: &'a S,
    budget: usize,
    options: Options,
    sample: Reservoir,
    nulls: Sorter<'a, S>,
    load: Option<Load<'a, R, S>>,
    rows: u64,
    chosen: String,
}

/// What a build wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSummary {
    pub strategy: Strategy,
    /// Rows with a code.
    pub rows: u64,
    /// Rows whose code is NULL.
    pub null_rows: u64,
    /// How the strategy was chosen and what was written (for the server's debug log).
    pub description: String,
}

impl<'a, R: Relation, S: Spill> Build<'a, R, S> {
    /// A build of codes of `code_bytes` into the empty `rel`, sorting in `budget` bytes of
    /// memory and spilling to `spill` beyond it.
    pub fn new(
        rel: &'a R,
        spill: &'a S,
        budget: usize,
        code_bytes: usize,
        options: Options,
    ) -> Self {
        Build {
            rel,
            spill,
            budget,
            options,
            sample: Reservoir::new(SAMPLE_ROWS, code_bytes, SEED),
            nulls: Sorter::new(spill, Tid::SIZE, budget / 4),
            load: None,
            rows: 0,
            chosen: String::new(),
        }
    }

    /// Pass 1: one row of the table (`None`: its code is NULL).
    pub fn sample(&mut self, code: Option<&[u8]>, tid: Tid) -> Result<(), LengthMismatch> {
        match code {
            Some(code) => self.sample.add(code),
            None => {
                self.nulls.push(&tid.to_bytes());
                Ok(())
            }
        }
    }

    /// Rows with a code pass 1 saw (what pass 2 will load).
    pub fn sampled_rows(&self) -> u64 {
        self.sample.seen()
    }

    /// Between the passes: chooses the strategy and starts it. False when the table has no
    /// codes: then no pass 2 is needed.
    pub fn choose(&mut self) -> bool {
        let nb = self.sample.code_bytes();
        let seen = self.sample.seen();
        if seen == 0 {
            return false;
        }
        let sample = std::mem::replace(&mut self.sample, Reservoir::new(1, nb, SEED));
        let codes = sample.into_codes();
        let rel = self.rel;
        let choice = choose(
            &codes,
            nb,
            seen,
            self.options.strategy,
            self.options.lists,
            self.options.substrings,
            SEED,
            &mut || rel.check_interrupts(),
        );
        drop(codes);
        self.chosen = format!(
            "strategy {} for {seen} rows (pages per sample query: lists {:?}, substrings {:?})",
            choice.strategy.name(),
            choice.lists_pages,
            choice.substrings_pages
        );
        self.load = Some(match choice.strategy {
            Strategy::Lists => {
                // Batches that fit the budget next to one open page per list.
                let kept_lists = choice.centroids.len() / nb;
                let batch_rows =
                    self.budget.saturating_sub(kept_lists * PAGE_SIZE) / batch_bytes_per_row(nb);
                Load::Lists(Builder::new(
                    self.rel,
                    choice.centroids,
                    nb,
                    batch_rows.max(MIN_BATCH_ROWS),
                ))
            }
            Strategy::Substrings => {
                Load::Substrings(row_sorter(self.spill, nb, self.budget), Vec::new())
            }
        });
        true
    }

    /// Pass 2: one row with a code.
    pub fn add(&mut self, code: &[u8], tid: Tid) -> Result<(), LengthMismatch> {
        let nb = self.sample.code_bytes();
        if code.len() != nb {
            return Err(LengthMismatch {
                expected: nb,
                found: code.len(),
            });
        }
        match self.load.as_mut().expect("choose() before add()") {
            Load::Lists(b) => b.add(code, tid),
            Load::Substrings(sorter, scratch) => push_row(sorter, code, tid, scratch),
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows pass 2 loaded so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Writes what is left: the lists' last pages and directory or the substring tables (or
    /// the empty index of a table without codes), then the NULL-code chain.
    pub fn finish(self, progress: &mut dyn FnMut(Phase)) -> Result<BuildSummary, FormatError> {
        let rel = self.rel;
        let nb = self.sample.code_bytes();
        let (strategy, rows, description) = match self.load {
            None => {
                let strategy = build_empty(rel, nb, self.options.strategy);
                (strategy, 0, format!("an empty {} index", strategy.name()))
            }
            Some(Load::Lists(builder)) => {
                let s = builder.finish();
                let text = format!(
                    "{}; built {} rows into {} entries on {} pages, {} lists ({} non-empty, largest radius {})",
                    self.chosen, s.rows, s.entries, s.data_pages, s.lists, s.nonempty_lists, s.max_radius
                );
                (Strategy::Lists, s.rows, text)
            }
            Some(Load::Substrings(sorter, _)) => {
                progress(Phase::WritingTables);
                let spilled = sorter.spilled_runs();
                let mut rows = SortedRows {
                    sorted: sorter.finish(),
                    code_bytes: nb,
                };
                let written = crate::substrings::build::build(
                    rel,
                    self.spill,
                    self.budget,
                    nb,
                    self.options.substrings,
                    self.rows,
                    &mut rows,
                    &mut || rel.check_interrupts(),
                );
                let text = format!(
                    "{}; built {} rows ({} distinct codes) into {} substring tables on {} pages ({} sorted runs spilled)",
                    self.chosen,
                    written.rows,
                    written.distinct,
                    written.tables.len(),
                    written.pages.len() + written.map_blocks.len() + 1,
                    spilled
                );
                (Strategy::Substrings, written.rows, text)
            }
        };
        // The NULL-code chain, after the strategy's pages (their build wrote the metapage).
        let mut nulls = self.nulls.finish();
        let null_rows = crate::nulls::build(rel, &mut || {
            let mut batch = Vec::new();
            while batch.len() < crate::nulls::CAPACITY {
                match nulls.next_record() {
                    Some(r) => batch.push(Tid::from_bytes(r)),
                    None => break,
                }
            }
            (!batch.is_empty()).then_some(batch)
        })?;
        Ok(BuildSummary {
            strategy,
            rows,
            null_rows,
            description,
        })
    }
}

/// Writes an index without rows (a table without codes, or the init fork of an unlogged
/// index): substring tables unless lists were asked for. Returns the strategy written.
pub fn build_empty<R: Relation>(rel: &R, code_bytes: usize, requested: Requested) -> Strategy {
    match requested {
        Requested::Lists => {
            crate::lists::build::build_empty(rel, code_bytes);
            Strategy::Lists
        }
        Requested::Auto | Requested::Substrings => {
            crate::substrings::build::build_empty(rel, code_bytes);
            Strategy::Substrings
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::open::open;
    use crate::relation::MemRelation;
    use crate::spill::MemSpill;
    use crate::verify::verify;

    fn tid(i: u32) -> Tid {
        Tid {
            block: i / 100,
            offset: (i % 100 + 1) as u16,
        }
    }

    /// Both passes, as the extension drives them, for each strategy and for a table of NULL
    /// codes only; the lists' batches are small enough (budget) to flush many times.
    #[test]
    fn a_build_of_both_passes_writes_every_row_of_either_strategy() {
        let codes: Vec<[u8; 4]> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> (i % 3)).to_be_bytes())
            .collect();
        for (requested, want) in [
            (Requested::Lists, Strategy::Lists),
            (Requested::Substrings, Strategy::Substrings),
        ] {
            let rel = MemRelation::new();
            let options = Options {
                strategy: requested,
                ..Options::default()
            };
            let mut b = Build::new(&rel, &MemSpill, 64 * 1024, 4, options);
            let row = |i: usize| (!i.is_multiple_of(10)).then_some(&codes[i][..]);
            for i in 0..codes.len() {
                b.sample(row(i), tid(i as u32)).unwrap();
            }
            assert_eq!(b.sampled_rows(), 4500);
            assert!(b.choose());
            for i in 0..codes.len() {
                if let Some(c) = row(i) {
                    b.add(c, tid(i as u32)).unwrap();
                }
            }
            assert_eq!(
                b.add(&[1], tid(0)),
                Err(LengthMismatch {
                    expected: 4,
                    found: 1
                })
            );
            let mut phases = Vec::new();
            let s = b.finish(&mut |p| phases.push(p)).unwrap();
            assert_eq!((s.strategy, s.rows, s.null_rows), (want, 4500, 500));
            assert_eq!(
                phases.contains(&Phase::WritingTables),
                want == Strategy::Substrings
            );
            assert_eq!(open(&rel).unwrap().strategy(), want);
            let report = verify(&rel, &MemSpill, 1 << 20, false).unwrap();
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            assert_eq!(report.tids, 4500);
        }
        let rel = MemRelation::new();
        let mut b = Build::new(&rel, &MemSpill, 1 << 20, 8, Options::default());
        b.sample(None, tid(1)).unwrap();
        assert!(!b.choose());
        let s = b.finish(&mut |_| {}).unwrap();
        assert_eq!(
            (s.strategy, s.rows, s.null_rows),
            (Strategy::Substrings, 0, 1)
        );
        assert_eq!(open(&rel).unwrap().code_bytes(), 8);
    }
}
