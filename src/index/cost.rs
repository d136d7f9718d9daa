//! The planner's cost estimate.
//!
//! `genericcostestimate` prices reading the matching fraction of the index. A k-NN scan
//! (ORDER BY code <~> q) finds its first rows after computing the distance to every centroid
//! and reading the lists nearest the query, so that is its startup cost; with LIMIT the
//! planner charges little more. Radius conditions get their selectivity from
//! `hamming_ball_sel`, so a large radius makes a sequential scan cheaper, as it is.

use pgrx::pg_sys;

/// Lists a k-NN search typically reads before its first rows.
const KNN_LISTS_READ: f64 = 2.0;

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
        let tuples = (*info).tuples.max(1.0);
        let index_pages = ((*info).pages as f64).max(1.0);
        let lists = tuples.sqrt().clamp(1.0, 4096.0);
        let centroid_cost = lists * pg_sys::cpu_operator_cost;
        let mut startup = costs.indexStartupCost + centroid_cost;
        if !(*path).indexorderbys.is_null() {
            // First rows: the nearest lists, read at random.
            let per_list = KNN_LISTS_READ / lists;
            startup += per_list * index_pages * costs.spc_random_page_cost
                + per_list * tuples * (pg_sys::cpu_index_tuple_cost + pg_sys::cpu_operator_cost);
        }
        *startup_cost = startup;
        *total_cost = (costs.indexTotalCost + centroid_cost).max(startup);
        *selectivity = costs.indexSelectivity;
        *correlation = 0.0;
        *pages = costs.numIndexPages;
    }
}
