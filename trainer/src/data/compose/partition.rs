//! Which source instances each split may draw: the disjoint partition described in the
//! [module docs](super) (Fashion-MNIST train -> train; Fashion-MNIST test -> query /
//! database; MNIST digits divided by index), independent of the seed.

use super::options::Split;
use crate::data::source::{SourceOrigin, Sources, NUM_SOURCE_CLASSES};

/// Source instance ids available to each split, per class (ascending ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcePools {
    pools: [Vec<Vec<u32>>; 3],
}

impl SourcePools {
    /// The split partition described in the module docs. Blank instances (no pixel > 0) are
    /// left out: they would draw nothing.
    pub fn partition(
        sources: &Sources,
        query_fraction: f64,
        mnist_train_fraction: f64,
    ) -> SourcePools {
        let mut by_origin_class = std::collections::HashMap::<(SourceOrigin, u8), Vec<u32>>::new();
        for inst in sources.instances() {
            if inst.pixels.iter().any(|&v| v > 0) {
                by_origin_class
                    .entry((inst.origin, inst.class))
                    .or_default()
                    .push(inst.id);
            }
        }
        let mut pools: [Vec<Vec<u32>>; 3] =
            std::array::from_fn(|_| vec![Vec::new(); NUM_SOURCE_CLASSES]);
        let cut = |n: usize, f: f64| ((n as f64 * f).round() as usize).min(n);
        for ((origin, class), ids) in by_origin_class {
            let c = class as usize;
            let held_out: &[u32] = match origin {
                SourceOrigin::FashionTrain => {
                    pools[0][c].extend(&ids);
                    &[]
                }
                SourceOrigin::FashionTest => &ids,
                SourceOrigin::Mnist5k => {
                    let t = cut(ids.len(), mnist_train_fraction);
                    pools[0][c].extend(&ids[..t]);
                    &ids[t..]
                }
            };
            let q = cut(held_out.len(), query_fraction);
            pools[1][c].extend(&held_out[..q]);
            pools[2][c].extend(&held_out[q..]);
        }
        for split in pools.iter_mut() {
            for ids in split.iter_mut() {
                ids.sort_unstable(); // HashMap order must not leak into the output
            }
        }
        SourcePools { pools }
    }

    /// Per class, the instance ids a split may use.
    pub fn get(&self, split: Split) -> &[Vec<u32>] {
        &self.pools[split.index()]
    }

    /// Instances available to a split in all.
    pub fn size(&self, split: Split) -> usize {
        self.get(split).iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::synthetic_sources;
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn partition_is_disjoint_covers_all_and_drops_blanks() {
        let sources = synthetic_sources(10);
        let pools = SourcePools::partition(&sources, 0.2, 0.5);
        let mut seen = HashSet::new();
        for split in Split::ALL {
            for (c, ids) in pools.get(split).iter().enumerate() {
                assert!(!ids.is_empty(), "{split:?} class {c}");
                for &id in ids {
                    let inst = sources.get(id);
                    assert_eq!(inst.class as usize, c);
                    assert!(inst.pixels.iter().any(|&v| v > 0), "blank instance pooled");
                    assert!(seen.insert(id), "instance {id} in two pools");
                    let ok = !matches!(
                        (split, inst.origin),
                        (Split::Train, SourceOrigin::FashionTest)
                            | (Split::Query | Split::Database, SourceOrigin::FashionTrain)
                    );
                    assert!(ok, "{split:?} got {:?}", inst.origin);
                }
            }
        }
        let non_blank = sources
            .instances()
            .iter()
            .filter(|i| i.pixels.iter().any(|&v| v > 0))
            .count();
        assert_eq!(seen.len(), non_blank);
        // 10 MNIST per digit: 5 train, then of 5 held out round(1.0) = 1 query, 4 database.
        assert_eq!(pools.get(Split::Train)[15].len(), 5);
        assert_eq!(pools.get(Split::Query)[15].len(), 1);
        assert_eq!(pools.get(Split::Database)[15].len(), 4);
        // Fashion: 10 train (all), 10 test -> 2 query, 8 database.
        assert_eq!(pools.get(Split::Train)[3].len(), 10);
        assert_eq!(pools.get(Split::Query)[3].len(), 2);
        assert_eq!(pools.get(Split::Database)[3].len(), 8);
    }
}
