//! The access method handler: capabilities and callbacks (wiring only).

use super::{am_build, am_cost, am_insert, am_options, am_scan, am_vacuum};
use crate::fmgr::sql_function;
use pgrx::pg_sys;
use pgrx::PgBox;

sql_function! {
    /// `mih_handler(internal) -> index_am_handler`
    fn mih_handler(_fcinfo) -> Datum {
        // SAFETY: a zeroed IndexAmRoutine node in the current memory context, as PostgreSQL
        // expects the handler to return.
        let mut am = unsafe { PgBox::<pg_sys::IndexAmRoutine>::alloc_node(pg_sys::NodeTag::T_IndexAmRoutine) };
        am.amstrategies = 2;
        am.amsupport = 0;
        am.amoptsprocnum = 0;
        am.amcanorder = false;
        am.amcanorderbyop = true; // ORDER BY code <~> q
        am.amcanbackward = false;
        am.amcanunique = false;
        am.amcanmulticol = false;
        am.amoptionalkey = true; // an ORDER BY alone is a valid scan
        am.amsearcharray = false;
        am.amsearchnulls = false; // NULL codes are not indexed
        am.amstorage = false;
        am.amclusterable = false;
        am.ampredlocks = false;
        am.amcanparallel = false;
        am.amcaninclude = false;
        am.amusemaintenanceworkmem = true;
        am.amparallelvacuumoptions = pg_sys::VACUUM_OPTION_PARALLEL_BULKDEL as u8;
        am.amkeytype = pg_sys::InvalidOid;

        am.ambuild = Some(am_build::ambuild);
        am.ambuildempty = Some(am_build::ambuildempty);
        am.aminsert = Some(am_insert::aminsert);
        am.ambulkdelete = Some(am_vacuum::ambulkdelete);
        am.amvacuumcleanup = Some(am_vacuum::amvacuumcleanup);
        am.amcanreturn = None;
        am.amcostestimate = Some(am_cost::amcostestimate);
        am.amoptions = Some(am_options::amoptions);
        am.amproperty = None;
        am.ambuildphasename = Some(am_build::ambuildphasename);
        am.amvalidate = Some(amvalidate);
        am.amadjustmembers = None;
        am.ambeginscan = Some(am_scan::ambeginscan);
        am.amrescan = Some(am_scan::amrescan);
        am.amgettuple = Some(am_scan::amgettuple);
        am.amgetbitmap = Some(am_scan::amgetbitmap);
        am.amendscan = Some(am_scan::amendscan);
        am.ammarkpos = None;
        am.amrestrpos = None;
        am.amestimateparallelscan = None;
        am.aminitparallelscan = None;
        am.amparallelrescan = None;
        pg_sys::Datum::from(am.into_pg())
    }
}

/// The operator class is defined by our own SQL script; nothing user-made to validate.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn amvalidate(_opclassoid: pg_sys::Oid) -> bool {
    true
}
