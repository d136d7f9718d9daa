//! An external sort of fixed-size byte records in their byte order (memcmp), in bounded
//! memory: records are sorted in memory up to the budget, spilled as sorted runs, and merged.
//!
//! Records are compared as whole byte strings, so callers put the sort key first (big-endian
//! integers and codes compare bytewise in their numeric order). Written here rather than
//! borrowed: PostgreSQL's tuplesort would tie the algorithm to the backend, and the crates
//! that sort on disk sort typed values with serialisation, not raw fixed-size records.

use crate::spill::{Spill, SpillFile};

/// Records read back from a spilled run at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;

pub struct Sorter<'s, S: Spill> {
    spill: &'s S,
    record: usize,
    budget_records: usize,
    buf: Vec<u8>,
    runs: Vec<S::File>,
    records: u64,
}

/// Sorts the records of `buf` (each `record` bytes) in place.
pub fn sort_records(buf: &mut Vec<u8>, record: usize) {
    let n = buf.len() / record;
    if n < 2 {
        return;
    }
    let rec = |i: u32| &buf[i as usize * record..(i as usize + 1) * record];
    // (first 8 bytes big-endian, index): integer sorts are several times faster than slice
    // comparisons; runs of equal prefixes are ordered fully afterwards.
    let prefix = |i: u32| {
        let r = rec(i);
        let mut k = [0u8; 8];
        let m = record.min(8);
        k[..m].copy_from_slice(&r[..m]);
        u64::from_be_bytes(k)
    };
    let mut order: Vec<(u64, u32)> = (0..n as u32).map(|i| (prefix(i), i)).collect();
    order.sort_unstable();
    if record > 8 {
        for run in order.chunk_by_mut(|a, b| a.0 == b.0) {
            if run.len() > 1 {
                run.sort_unstable_by(|a, b| rec(a.1).cmp(rec(b.1)));
            }
        }
    }
    let mut out = Vec::with_capacity(buf.len());
    for &(_, i) in &order {
        out.extend_from_slice(rec(i));
    }
    *buf = out;
}

impl<'s, S: Spill> Sorter<'s, S> {
    /// A sorter of `record`-byte records holding at most about `budget_bytes` in memory.
    pub fn new(spill: &'s S, record: usize, budget_bytes: usize) -> Self {
        assert!(record > 0);
        // The in-memory sort needs the buffer twice (and 12 bytes a record of order).
        let budget_records = (budget_bytes / (2 * record + 12)).max(1024);
        Sorter {
            spill,
            record,
            budget_records,
            buf: Vec::new(),
            runs: Vec::new(),
            records: 0,
        }
    }

    pub fn push(&mut self, record: &[u8]) {
        debug_assert_eq!(record.len(), self.record);
        self.buf.extend_from_slice(record);
        self.records += 1;
        if self.buf.len() >= self.budget_records * self.record {
            self.spill_run();
        }
    }

    /// Records pushed so far.
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Sorted runs written to temporary files so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn spill_run(&mut self) {
        sort_records(&mut self.buf, self.record);
        let mut f = self.spill.create();
        f.write_all(&self.buf);
        f.rewind();
        self.runs.push(f);
        self.buf.clear();
    }

    /// The records in order.
    pub fn finish(mut self) -> Sorted<S::File> {
        if self.runs.is_empty() {
            sort_records(&mut self.buf, self.record);
            return Sorted {
                record: self.record,
                memory: self.buf,
                at: 0,
                runs: Vec::new(),
                current: None,
            };
        }
        if !self.buf.is_empty() {
            self.spill_run();
        }
        let chunk = (READ_CHUNK_BYTES / self.record).max(1) * self.record;
        let runs = self
            .runs
            .into_iter()
            .map(|file| {
                let mut r = RunReader {
                    file,
                    buf: vec![0; chunk],
                    len: 0,
                    at: 0,
                };
                r.fill(self.record);
                r
            })
            .collect();
        Sorted {
            record: self.record,
            memory: Vec::new(),
            at: 0,
            runs,
            current: None,
        }
    }
}

struct RunReader<F> {
    file: F,
    buf: Vec<u8>,
    len: usize,
    at: usize,
}

impl<F: SpillFile> RunReader<F> {
    fn fill(&mut self, record: usize) {
        self.len = self.file.read_into(&mut self.buf);
        assert!(
            self.len.is_multiple_of(record),
            "a spilled run holds whole records"
        );
        self.at = 0;
    }

    fn head(&self, record: usize) -> Option<&[u8]> {
        (self.at < self.len).then(|| &self.buf[self.at..self.at + record])
    }
}

/// Sorted records, one at a time ([`Sorted::next_record`]).
pub struct Sorted<F> {
    record: usize,
    memory: Vec<u8>,
    at: usize,
    runs: Vec<RunReader<F>>,
    /// The run the last record came from (advanced on the next call).
    current: Option<usize>,
}

impl<F: SpillFile> Sorted<F> {
    /// The next record in order, or `None` at the end.
    pub fn next_record(&mut self) -> Option<&[u8]> {
        let rs = self.record;
        if self.runs.is_empty() {
            if self.at >= self.memory.len() {
                return None;
            }
            self.at += rs;
            return Some(&self.memory[self.at - rs..self.at]);
        }
        if let Some(i) = self.current.take() {
            let r = &mut self.runs[i];
            r.at += rs;
            if r.at >= r.len {
                r.fill(rs);
            }
        }
        // The smallest head among the runs (few runs: a linear scan beats a heap's upkeep).
        let mut best: Option<usize> = None;
        for i in 0..self.runs.len() {
            if let Some(h) = self.runs[i].head(rs) {
                if best.is_none_or(|b| h < self.runs[b].head(rs).unwrap()) {
                    best = Some(i);
                }
            }
        }
        let i = best?;
        self.current = Some(i);
        self.runs[i].head(rs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::MemSpill;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    fn drain<F: SpillFile>(mut s: Sorted<F>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(r) = s.next_record() {
            out.push(r.to_vec());
        }
        out
    }

    #[test]
    fn sorts_in_memory_and_across_spilled_runs_alike() {
        let mut rng = SmallRng::seed_from_u64(1);
        for record in [1usize, 3, 8, 14, 40] {
            let n = 20_000;
            // Few distinct prefixes, so the tie-breaking path runs too.
            let recs: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    let mut r: Vec<u8> = (0..record).map(|_| rng.gen()).collect();
                    r[0] &= 3;
                    r
                })
                .collect();
            let mut want = recs.clone();
            want.sort();
            for budget in [usize::MAX / 4, 30_000] {
                let spill = MemSpill;
                let mut s = Sorter::new(&spill, record, budget);
                for r in &recs {
                    s.push(r);
                }
                assert_eq!(s.len(), n as u64);
                let spilled = s.spilled_runs();
                if budget < 100_000 {
                    assert!(spilled > 1, "record {record}: {spilled} runs");
                } else {
                    assert_eq!(spilled, 0);
                }
                assert_eq!(drain(s.finish()), want, "record {record}, budget {budget}");
            }
        }
    }

    #[test]
    fn empty_and_single() {
        let spill = MemSpill;
        let s = Sorter::new(&spill, 4, 1 << 20);
        assert!(s.is_empty());
        assert!(drain(s.finish()).is_empty());
        let mut s = Sorter::new(&spill, 4, 1 << 20);
        s.push(&[1, 2, 3, 4]);
        assert_eq!(drain(s.finish()), vec![vec![1, 2, 3, 4]]);
    }
}
