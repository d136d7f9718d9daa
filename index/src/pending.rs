//! Rows inserted but not yet written to the index (the extension buffers a backend's inserts
//! and writes them in batches; see its `src/index/pg_pending.rs`), with the bookkeeping that
//! subtransactions need: each row remembers the nesting level it was inserted at, a rolled-back
//! subtransaction drops its rows (their heap tuples are dead), a committed one hands them to
//! its parent.

use crate::format::Tid;

/// Buffered rows of one index: codes (contiguous), their heap TIDs and nesting levels; and
/// the TIDs (with levels) of rows whose code is NULL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PendingRows {
    code_bytes: usize,
    codes: Vec<u8>,
    tids: Vec<Tid>,
    levels: Vec<i32>,
    nulls: Vec<(Tid, i32)>,
}

impl PendingRows {
    pub fn new() -> PendingRows {
        PendingRows::default()
    }

    /// The length of every buffered code (`None`: no codes buffered).
    pub fn code_bytes(&self) -> Option<usize> {
        (!self.tids.is_empty()).then_some(self.code_bytes)
    }

    /// Buffers one row inserted at transaction nesting `level` (the caller checked that the
    /// length is [`PendingRows::code_bytes`], if any).
    pub fn push(&mut self, code: &[u8], tid: Tid, level: i32) {
        if self.tids.is_empty() {
            self.code_bytes = code.len();
        }
        assert_eq!(code.len(), self.code_bytes, "length checked by the caller");
        self.codes.extend_from_slice(code);
        self.tids.push(tid);
        self.levels.push(level);
    }

    /// Buffers one row whose code is NULL.
    pub fn push_null(&mut self, tid: Tid, level: i32) {
        self.nulls.push((tid, level));
    }

    /// Rows buffered, with and without codes.
    pub fn len(&self) -> usize {
        self.tids.len() + self.nulls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The TIDs of the buffered rows whose code is NULL.
    pub fn nulls(&self) -> Vec<Tid> {
        self.nulls.iter().map(|n| n.0).collect()
    }

    /// A subtransaction at `level` rolled back: its rows, and those of its children, go.
    pub fn abort_level(&mut self, level: i32) {
        self.nulls.retain(|n| n.1 < level);
        let nb = self.code_bytes;
        let keep: Vec<bool> = self.levels.iter().map(|&l| l < level).collect();
        let mut i = 0;
        self.codes.retain(|_| {
            let k = keep[i / nb];
            i += 1;
            k
        });
        let mut j = 0;
        self.tids.retain(|_| {
            j += 1;
            keep[j - 1]
        });
        self.levels.retain(|&l| l < level);
    }

    /// A subtransaction at `level` committed into its parent: its rows now live or die with
    /// the parent.
    pub fn commit_level(&mut self, level: i32) {
        let nulls = self.nulls.iter_mut().map(|n| &mut n.1);
        for l in self.levels.iter_mut().chain(nulls).filter(|l| **l >= level) {
            *l = level - 1;
        }
    }

    /// The codes (contiguous) and TIDs, for writing.
    pub fn rows(&self) -> (&[u8], &[Tid]) {
        (&self.codes, &self.tids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(i: u16) -> Tid {
        Tid {
            block: u32::from(i),
            offset: 1,
        }
    }

    #[test]
    fn subtransactions_drop_or_hand_over_their_rows() {
        let mut p = PendingRows::new();
        assert_eq!(p.code_bytes(), None);
        p.push(&[1, 1], tid(1), 1); // top level
        p.push_null(tid(10), 1);
        p.push(&[2, 2], tid(2), 2); // SAVEPOINT a
        p.push_null(tid(20), 2);
        p.push(&[3, 3], tid(3), 3); // SAVEPOINT b (inside a)
                                    // RELEASE b: its row now belongs to a.
        p.commit_level(3);
        p.push(&[4, 4], tid(4), 3); // a new SAVEPOINT c at level 3
        p.push_null(tid(40), 3);
        // ROLLBACK TO c: only c's rows go.
        p.abort_level(3);
        assert_eq!(
            p.rows(),
            (&[1, 1, 2, 2, 3, 3][..], &[tid(1), tid(2), tid(3)][..])
        );
        assert_eq!(p.nulls(), vec![tid(10), tid(20)]);
        // ROLLBACK TO a: a's rows, including b's handed-over one, go.
        p.abort_level(2);
        assert_eq!(p.rows(), (&[1, 1][..], &[tid(1)][..]));
        assert_eq!(p.nulls(), vec![tid(10)]);
        assert_eq!((p.len(), p.is_empty(), p.code_bytes()), (2, false, Some(2)));
        p.abort_level(1);
        assert!(p.is_empty());
        // A buffer of NULL codes only has no length.
        p.push_null(tid(5), 1);
        assert_eq!((p.len(), p.code_bytes()), (1, None));
    }
}
