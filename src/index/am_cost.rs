//! `amcostestimate`: `genericcostestimate` prices reading the matching fraction of the index;
//! `ics_index::cost::estimate` adds what a k-NN scan does before its first row, from the
//! planner's cost settings and what the metapage records. Radius conditions get their
//! selectivity from `hamming_ball_sel`, so a large radius makes a sequential scan cheaper, as
//! it is.

use super::pg_relation::PgRelation;
use ics_index::cost::{estimate, CostInputs, Shape};
use pgrx::pg_sys;

/// What the metapage of the index `oid` says (`None` if it cannot be read: the scan will
/// say why).
///
/// # Safety
/// The planner holds a lock on the index.
unsafe fn shape_of(oid: pg_sys::Oid) -> Option<Shape> {
    // SAFETY: the planner locked the index; it is opened without another lock and closed.
    unsafe {
        let index = pg_sys::index_open(oid, pg_sys::NoLock as i32);
        let shape = Shape::of(&PgRelation::new(index));
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        shape
    }
}

#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn amcostestimate(
    root: *mut pg_sys::PlannerInfo,
    path: *mut pg_sys::IndexPath,
    loop_count: f64,
    startup_cost: *mut pg_sys::Cost,
    total_cost: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    // SAFETY: the planner passes valid root, path and output pointers; genericcostestimate
    // fills `costs`, and the outputs are written once each.
    unsafe {
        let mut costs = pg_sys::GenericCosts::default();
        pg_sys::genericcostestimate(root, path, loop_count, &mut costs);
        let info = (*path).indexinfo;
        let cost = estimate(
            shape_of((*info).indexoid),
            &CostInputs {
                generic_startup: costs.indexStartupCost,
                generic_total: costs.indexTotalCost,
                tuples: (*info).tuples,
                pages: (*info).pages as f64,
                // The rows the scan returns: the relation's estimate after its conditions
                // (hamming_within's support function estimates the radius), which the
                // generic figure, from the index condition with a parameter for the query,
                // can put at a third of the table.
                matching: costs.numIndexTuples.min((*(*info).rel).rows.max(1.0)),
                ordered: !(*path).indexorderbys.is_null(),
                random_page_cost: costs.spc_random_page_cost,
                seq_page_cost: pg_sys::seq_page_cost,
                cpu_operator_cost: pg_sys::cpu_operator_cost,
                cpu_index_tuple_cost: pg_sys::cpu_index_tuple_cost,
            },
        );
        *startup_cost = cost.startup;
        *total_cost = cost.total;
        // The share of the table the scan fetches, which the planner charges heap pages for:
        // for a radius scan at most the relation's estimate after its conditions (the generic
        // one, for an index condition whose query code is a parameter, is a default share
        // of the table: 33 million heap fetches charged for a radius 0 query at 100M rows).
        *selectivity = if (*path).indexorderbys.is_null() {
            let rel = (*info).rel;
            costs
                .indexSelectivity
                .min((*rel).rows.max(1.0) / (*rel).tuples.max(1.0))
        } else {
            costs.indexSelectivity
        };
        *correlation = 0.0;
        *pages = costs.numIndexPages;
    }
}
