//! The planner's cost estimate, from numbers the extension hands in (the generic estimate of
//! reading the matching fraction of the index, the planner's cost settings) and what the
//! metapage records.
//!
//! A k-NN scan (ORDER BY code <~> q) does work before its first row, which is its startup
//! cost; with LIMIT the planner charges little more:
//! - lists: the distance to every centroid, then the lists nearest the query;
//! - substring tables: the stages up to the neighbours, at worst one linear pass over table
//!   0 (about half the index); a quarter of the index is the typical share.

use crate::format::{Meta, Strategy, META_BLOCK};
use crate::relation::Relation;

/// Lists a k-NN search typically reads before its first rows.
const KNN_LISTS_READ: f64 = 2.0;
/// Share of a substring-tables index a k-NN search typically reads before its first rows.
const KNN_SUBSTRINGS_SHARE: f64 = 0.25;

/// What the estimate needs to know of the index: its strategy, and for lists how many the
/// metapage records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Lists { lists: u32 },
    Substrings,
}

impl Shape {
    /// The index's shape from its metapage (`None` when it cannot be read: the scan will say
    /// why, and the planner gets the generic estimate meanwhile).
    pub fn of<R: Relation>(rel: &R) -> Option<Shape> {
        if rel.nblocks() == 0 {
            return None;
        }
        let meta = Meta::read(&rel.read(META_BLOCK)).ok()?;
        Some(match meta.strategy {
            Strategy::Lists => Shape::Lists { lists: meta.lists },
            Strategy::Substrings => Shape::Substrings,
        })
    }
}

/// The estimate's inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostInputs {
    /// `genericcostestimate`'s startup and total cost.
    pub generic_startup: f64,
    pub generic_total: f64,
    /// The index's rows and pages (as the planner knows them).
    pub tuples: f64,
    pub pages: f64,
    /// Whether the scan orders by distance (k-NN).
    pub ordered: bool,
    pub random_page_cost: f64,
    pub cpu_operator_cost: f64,
    pub cpu_index_tuple_cost: f64,
}

/// Startup and total cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    pub startup: f64,
    pub total: f64,
}

/// The cost of a scan of an index of `shape`.
pub fn estimate(shape: Option<Shape>, i: &CostInputs) -> Cost {
    let (fixed, knn_share) = match shape {
        Some(Shape::Lists { lists }) => {
            let lists = f64::from(lists.max(1));
            (
                lists * i.cpu_operator_cost,
                (KNN_LISTS_READ / lists).min(1.0),
            )
        }
        Some(Shape::Substrings) => (0.0, KNN_SUBSTRINGS_SHARE),
        None => (0.0, 0.0),
    };
    let mut startup = i.generic_startup + fixed;
    if i.ordered {
        // First rows: the share of the index read before them, at random.
        let per_code = i.cpu_index_tuple_cost + i.cpu_operator_cost;
        startup +=
            knn_share * (i.pages.max(1.0) * i.random_page_cost + i.tuples.max(1.0) * per_code);
    }
    Cost {
        startup,
        total: (i.generic_total + fixed).max(startup),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::MemRelation;

    #[test]
    fn costs_per_shape_and_scan_kind() {
        let base = CostInputs {
            generic_startup: 1.0,
            generic_total: 10.0,
            tuples: 10_000.0,
            pages: 100.0,
            ordered: false,
            random_page_cost: 4.0,
            cpu_operator_cost: 0.0025,
            cpu_index_tuple_cost: 0.005,
        };
        let knn = CostInputs {
            ordered: true,
            ..base
        };
        // Ordered: the share read before the first rows is (100 pages * 4 + 10,000 codes *
        // 0.0075) = 475, times 2/lists for lists, a quarter for substring tables.
        let lists = |lists| Some(Shape::Lists { lists });
        #[rustfmt::skip]
        let table: [(Option<Shape>, CostInputs, f64, f64); 7] = [
            // shape,          inputs, startup,                       total
            (lists(100),       base,   1.0 + 0.25,                    10.25),
            (lists(100),       knn,    1.0 + 0.25 + 475.0 * 0.02,     10.75),
            (lists(1),         knn,    1.0 + 0.0025 + 475.0,          476.0025),
            // An empty lists index (0 lists recorded) costs as one list.
            (lists(0),         knn,    1.0 + 0.0025 + 475.0,          476.0025),
            (Some(Shape::Substrings), base, 1.0,                      10.0),
            (Some(Shape::Substrings), knn,  1.0 + 475.0 / 4.0,        119.75),
            (None,             knn,    1.0,                           10.0),
        ];
        for (shape, inputs, startup, total) in table {
            let c = estimate(shape, &inputs);
            assert!(
                (c.startup - startup).abs() < 1e-9 && (c.total - total).abs() < 1e-9,
                "{shape:?} ordered {}: {c:?}, want {startup} / {total}",
                inputs.ordered
            );
        }
    }

    /// The list count comes from the metapage, whatever the row count says.
    #[test]
    fn the_shape_is_what_the_metapage_records() {
        let rel = MemRelation::new();
        assert_eq!(Shape::of(&rel), None);
        crate::lists::build::Builder::new(&rel, vec![0; 2 * 7], 2, 16).finish();
        assert_eq!(Shape::of(&rel), Some(Shape::Lists { lists: 7 }));
        let rel = MemRelation::new();
        crate::substrings::build::build_empty(&rel, 2);
        assert_eq!(Shape::of(&rel), Some(Shape::Substrings));
        *rel.write(META_BLOCK) = *crate::page::Page::zeroed();
        assert_eq!(Shape::of(&rel), None);
    }
}
