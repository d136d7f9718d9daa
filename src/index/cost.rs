//! The planner's cost estimate.
//!
//! `genericcostestimate` prices reading the matching fraction of the index. A k-NN scan
//! (ORDER BY code <~> q) does work before its first row, which is its startup cost; with
//! LIMIT the planner charges little more:
//! - lists: the distance to every centroid, then the lists nearest the query;
//! - substring tables: the stages up to the neighbours, at worst one linear pass over table
//!   0 (about half the index); a quarter of the index is the typical share.
//!
//! Radius conditions get their selectivity from `hamming_ball_sel`, so a large radius makes a
//! sequential scan cheaper, as it is. The strategy is read from the metapage.

use super::relation::PgRelation;
use ics_index::format::{Meta, Strategy, META_BLOCK};
use ics_index::relation::Relation;
use pgrx::pg_sys;

/// Lists a k-NN search typically reads before its first rows.
const KNN_LISTS_READ: f64 = 2.0;
/// Share of a substring-tables index a k-NN search typically reads before its first rows.
const KNN_SUBSTRINGS_SHARE: f64 = 0.25;

/// The strategy of the index `oid` (lists if its metapage cannot be read: the scan will say
/// why).
///
/// # Safety
/// The planner holds a lock on the index.
unsafe fn strategy_of(oid: pg_sys::Oid) -> Strategy {
    // SAFETY: the planner locked the index; it is opened without another lock and closed.
    unsafe {
        let index = pg_sys::index_open(oid, pg_sys::NoLock as i32);
        let strategy = {
            let rel = PgRelation::new(index);
            if rel.nblocks() == 0 {
                Strategy::Lists
            } else {
                Meta::read(&rel.read(META_BLOCK)).map_or(Strategy::Lists, |m| m.strategy)
            }
        };
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        strategy
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
        let tuples = (*info).tuples.max(1.0);
        let index_pages = ((*info).pages as f64).max(1.0);
        let per_code = pg_sys::cpu_index_tuple_cost + pg_sys::cpu_operator_cost;
        let (fixed, knn_share) = match strategy_of((*info).indexoid) {
            Strategy::Lists => {
                let lists = tuples.sqrt().clamp(1.0, 4096.0);
                (lists * pg_sys::cpu_operator_cost, KNN_LISTS_READ / lists)
            }
            Strategy::Substrings => (0.0, KNN_SUBSTRINGS_SHARE),
        };
        let mut startup = costs.indexStartupCost + fixed;
        if !(*path).indexorderbys.is_null() {
            // First rows: the share of the index read before them, at random.
            startup += knn_share * (index_pages * costs.spc_random_page_cost + tuples * per_code);
        }
        *startup_cost = startup;
        *total_cost = (costs.indexTotalCost + fixed).max(startup);
        *selectivity = costs.indexSelectivity;
        *correlation = 0.0;
        *pages = costs.numIndexPages;
    }
}
