//! The planner's cost estimate, from numbers the extension hands in (the generic estimate of
//! reading the matching fraction of the index, the planner's cost settings) and what the
//! metapage records.
//!
//! A k-NN scan (ORDER BY code <~> q) does work before its first row, which is its startup
//! cost; with LIMIT the planner charges little more:
//! - lists: the distance to every centroid, then the lists nearest the query;
//! - substring tables: the stages up to the neighbours, at worst one linear pass over table
//!   0's codes pages, read in order and compared several codes per instruction; half a pass
//!   is the typical share (learned codes are found by probing, uniform ones by the pass).
//!
//! A radius scan of substring tables reads a few slot pages per table and then the rows it
//! returns, never more than a linear pass: the generic estimate (every index page the
//! matching fraction of rows would take, at random) overstates it by orders of magnitude at
//! scale, and a plan that costly makes PostgreSQL compile its expressions (JIT, above
//! `jit_above_cost`) on every execution, which took 70 ms a query at 100 million rows.

use crate::format::{Meta, Strategy, META_BLOCK};
use crate::relation::Relation;

/// Lists a k-NN search typically reads before its first rows.
const KNN_LISTS_READ: f64 = 2.0;
/// Share of a linear pass a substring-tables k-NN search typically costs before its first rows.
const KNN_SUBSTRINGS_SHARE: f64 = 0.5;
/// Codes one operator's worth of CPU compares in a linear pass (the kernels compare 4 to 8
/// codes per instruction; the loop around them costs about as much again).
const CODES_PER_OPERATOR: f64 = 8.0;
/// Slot pages a radius scan reads per table (the slots of its radius, usually one page or two).
const RADIUS_SLOT_PAGES: f64 = 2.0;
/// Bytes of codes on a codes page (see `substrings::layout`).
const CODES_PAGE_BYTES: f64 = 8096.0;

/// What the estimate needs to know of the index: its strategy, and for lists how many the
/// metapage records.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    Lists { lists: u32 },
    Substrings { code_bytes: u32, tables: u32 },
}

impl Shape {
    /// The index's shape from its metapage (`None` when it cannot be read: the scan will say
    /// why, and the planner gets the generic estimate meanwhile).
    pub fn of<R: Relation>(rel: &R) -> Option<Shape> {
        if rel.nblocks() == 0 {
            return None;
        }
        let page = rel.read(META_BLOCK);
        let meta = Meta::read(&page).ok()?;
        Some(match meta.strategy {
            Strategy::Lists => Shape::Lists { lists: meta.lists },
            Strategy::Substrings => Shape::Substrings {
                code_bytes: meta.code_bytes,
                tables: crate::substrings::layout::SubMeta::read(&page)
                    .map_or(1, |s| s.tables.len() as u32),
            },
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
    /// Index rows the generic estimate expects the scan's conditions to match.
    pub matching: f64,
    /// Whether the scan orders by distance (k-NN).
    pub ordered: bool,
    pub random_page_cost: f64,
    pub seq_page_cost: f64,
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
    if let Some(Shape::Substrings { code_bytes, tables }) = shape {
        return substrings(code_bytes, tables, i);
    }
    let (fixed, knn_share) = match shape {
        Some(Shape::Lists { lists }) => {
            let lists = f64::from(lists.max(1));
            (
                lists * i.cpu_operator_cost,
                (KNN_LISTS_READ / lists).min(1.0),
            )
        }
        _ => (0.0, 0.0),
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

/// Substring tables: a k-NN scan's startup is a share of one linear pass over the codes
/// pages; a radius scan costs its slot pages and a page per matching row, at most a pass and
/// those rows' pages.
fn substrings(code_bytes: u32, tables: u32, i: &CostInputs) -> Cost {
    let per_page = (CODES_PAGE_BYTES / f64::from(code_bytes.max(1)))
        .floor()
        .max(1.0);
    let tuples = i.tuples.max(1.0);
    let pass = (tuples / per_page).ceil() * i.seq_page_cost
        + tuples * i.cpu_operator_cost / CODES_PER_OPERATOR;
    let per_row = i.random_page_cost + i.cpu_index_tuple_cost + i.cpu_operator_cost;
    let matching = i.matching.clamp(0.0, tuples);
    if i.ordered {
        let startup = i.generic_startup + KNN_SUBSTRINGS_SHARE * pass;
        // Every further row: its TID page, as a radius scan's rows.
        return Cost {
            startup,
            total: startup + pass * (1.0 - KNN_SUBSTRINGS_SHARE) + tuples * i.cpu_index_tuple_cost,
        };
    }
    let slots = f64::from(tables.max(1)) * RADIUS_SLOT_PAGES * i.random_page_cost;
    let probe = slots + matching * per_row;
    let linear = pass + matching * per_row;
    let startup = i.generic_startup;
    Cost {
        startup,
        total: (startup + probe.min(linear)).min(i.generic_total.max(startup)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relation::MemRelation;

    fn inputs(ordered: bool) -> CostInputs {
        CostInputs {
            generic_startup: 1.0,
            generic_total: 10.0,
            tuples: 10_000.0,
            pages: 100.0,
            matching: 50.0,
            ordered,
            random_page_cost: 4.0,
            seq_page_cost: 1.0,
            cpu_operator_cost: 0.0025,
            cpu_index_tuple_cost: 0.005,
        }
    }

    #[test]
    fn costs_of_lists_per_scan_kind() {
        let (base, knn) = (inputs(false), inputs(true));
        // Ordered: the share read before the first rows is (100 pages * 4 + 10,000 codes *
        // 0.0075) = 475, times 2/lists.
        let lists = |lists| Some(Shape::Lists { lists });
        #[rustfmt::skip]
        let table: [(Option<Shape>, CostInputs, f64, f64); 5] = [
            // shape,          inputs, startup,                       total
            (lists(100),       base,   1.0 + 0.25,                    10.25),
            (lists(100),       knn,    1.0 + 0.25 + 475.0 * 0.02,     10.75),
            (lists(1),         knn,    1.0 + 0.0025 + 475.0,          476.0025),
            // An empty lists index (0 lists recorded) costs as one list.
            (lists(0),         knn,    1.0 + 0.0025 + 475.0,          476.0025),
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

    /// Substring tables, at the scale where the generic estimate went wrong: 100M 64-bit codes
    /// in 370,000 index pages, with the generic figures PostgreSQL 15 gave a radius query.
    #[test]
    fn costs_of_substring_tables_stay_near_the_work_at_scale() {
        let shape = Some(Shape::Substrings {
            code_bytes: 8,
            tables: 2,
        });
        let big = |ordered, matching| CostInputs {
            generic_startup: 0.0,
            generic_total: 1_368_166.0,
            tuples: 1e8,
            pages: 370_000.0,
            matching,
            ..inputs(ordered)
        };
        // A pass: 98,815 codes pages + 1e8 codes * 0.0025 / 8 = 130,065.
        let pass = 98_815.0 + 31_250.0;
        let knn = estimate(shape, &big(true, 1e8));
        assert!((knn.startup - pass / 2.0).abs() < 1e-6, "{knn:?}");
        // Below PostgreSQL's default jit_above_cost (100,000): no JIT for a k-NN query.
        assert!(knn.startup < 100_000.0);
        // Radius: the slot pages and a page per matching row, far below the generic figure.
        let r0 = estimate(shape, &big(false, 10.0));
        assert!(
            (r0.total - (2.0 * 2.0 * 4.0 + 10.0 * 4.0075)).abs() < 1e-6,
            "{r0:?}"
        );
        // Many matching rows: never more than a pass and their pages.
        let wide = estimate(shape, &big(false, 1e6));
        assert!(wide.total <= pass + 1e6 * 4.0075 + 1e-6, "{wide:?}");
        // Never above the generic estimate either (small indexes).
        let small = estimate(shape, &inputs(false));
        assert!(small.total <= 10.0, "{small:?}");
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
        assert_eq!(
            Shape::of(&rel),
            Some(Shape::Substrings {
                code_bytes: 2,
                tables: 0
            })
        );
        *rel.write(META_BLOCK) = *crate::page::Page::zeroed();
        assert_eq!(Shape::of(&rel), None);
    }
}
