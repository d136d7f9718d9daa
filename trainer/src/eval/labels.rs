//! Label sets as bit sets, so "shares at least one label" is a few word ANDs.
//!
//! Relevance in multi-label retrieval (docs/method.md, evaluation) is tested once per (query,
//! database item) pair: 40 million times for 2,000 queries against 20,000 items, hence the
//! packed form.

use anyhow::{bail, Result};
use ndarray::ArrayView2;

/// The label set of each item, as `words` u64 per item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelSets {
    classes: usize,
    words: usize,
    bits: Vec<u64>,
}

impl LabelSets {
    /// From a multi-hot matrix (items, classes) of 0/1 (`u8` or `bool`). Any other value is an
    /// error naming its row and column. Items without labels are allowed here (a query with no
    /// label has no relevant item); training refuses them separately.
    pub fn from_multi_hot<L: Copy + Into<u8>>(labels: ArrayView2<L>) -> Result<LabelSets> {
        let (n, classes) = labels.dim();
        let words = classes.div_ceil(64).max(1);
        let mut bits = vec![0u64; n * words];
        for ((i, k), &v) in labels.indexed_iter() {
            match v.into() {
                0 => {}
                1 => bits[i * words + k / 64] |= 1 << (k % 64),
                other => bail!("label row {i}, column {k} is {other}: labels must be 0 or 1"),
            }
        }
        Ok(LabelSets {
            classes,
            words,
            bits,
        })
    }

    /// From label index lists.
    pub fn from_lists(lists: &[Vec<usize>], classes: usize) -> Result<LabelSets> {
        let words = classes.div_ceil(64).max(1);
        let mut bits = vec![0u64; lists.len() * words];
        for (i, l) in lists.iter().enumerate() {
            for &k in l {
                if k >= classes {
                    bail!("item {i} has label {k}, but there are only {classes} classes");
                }
                bits[i * words + k / 64] |= 1 << (k % 64);
            }
        }
        Ok(LabelSets {
            classes,
            words,
            bits,
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.bits.len() / self.words
    }
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }
    pub fn classes(&self) -> usize {
        self.classes
    }

    fn row(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// Whether item `i` of `self` and item `j` of `other` share a label.
    #[inline]
    pub fn shares_label(&self, i: usize, other: &LabelSets, j: usize) -> bool {
        self.row(i)
            .iter()
            .zip(other.row(j))
            .any(|(a, b)| a & b != 0)
    }

    /// Whether item `i` has label `k`.
    pub fn has(&self, i: usize, k: usize) -> bool {
        self.row(i)[k / 64] >> (k % 64) & 1 == 1
    }

    /// Number of labels of item `i`.
    pub fn count(&self, i: usize) -> usize {
        self.row(i).iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Label indices of item `i`, ascending.
    pub fn labels(&self, i: usize) -> Vec<usize> {
        (0..self.classes).filter(|&k| self.has(i, k)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn relevance_and_accessors() {
        // 70 classes: two words per item.
        let mut m = ndarray::Array2::<u8>::zeros((3, 70));
        m[[0, 1]] = 1;
        m[[0, 65]] = 1;
        m[[1, 65]] = 1;
        m[[2, 2]] = 1;
        let l = LabelSets::from_multi_hot(m.view()).unwrap();
        assert_eq!((l.len(), l.classes()), (3, 70));
        assert!(l.shares_label(0, &l, 1));
        assert!(!l.shares_label(0, &l, 2));
        assert_eq!(l.labels(0), vec![1, 65]);
        assert_eq!(l.count(0), 2);
        let from_lists = LabelSets::from_lists(&[vec![1, 65], vec![65], vec![2]], 70).unwrap();
        assert_eq!(from_lists, l);
        let b = LabelSets::from_multi_hot(array![[true, false], [false, false]].view()).unwrap();
        assert_eq!((b.count(0), b.count(1)), (1, 0));
        let e = LabelSets::from_multi_hot(array![[0u8, 1], [2, 0]].view()).unwrap_err();
        assert!(e.to_string().contains("row 1, column 0"), "{e}");
        assert!(LabelSets::from_lists(&[vec![3]], 3).is_err());
    }
}
