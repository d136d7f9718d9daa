//! Planner support for `hamming_within(code, q, r)`:
//! - as an index condition: rewritten to `code <@ hamming_ball(q, r)` when `code` is a mih
//!   index column and `q`, `r` do not depend on its table (the rewrite is exact: no recheck);
//! - its selectivity, and that of `<@` (`hamming_ball_sel`): the chance that a code lies
//!   within radius r of q if bits were independent and fair, a binomial tail.

use super::STRATEGY_WITHIN;
use crate::fmgr::{self, sql_function};
use crate::hashcode::ball;
use ics_index::selectivity::binomial_tail;
use pgrx::pg_sys;
use pgrx::{IntoDatum, PgList};

/// Selectivity when the radius or length is not known at plan time.
const DEFAULT_SELECTIVITY: f64 = 0.005;

/// A plan-time constant's value, if the expression folds to a non-NULL constant.
unsafe fn constant(
    root: *mut pg_sys::PlannerInfo,
    node: *mut pg_sys::Node,
) -> Option<pg_sys::Datum> {
    // SAFETY: `root` and `node` are the planner's; a folded Const is read by its tag.
    unsafe {
        let folded = pg_sys::estimate_expression_value(root, node);
        if (*folded).type_ == pg_sys::NodeTag::T_Const {
            let c = folded as *mut pg_sys::Const;
            if !(*c).constisnull {
                return Some((*c).constvalue);
            }
        }
        None
    }
}

/// Code length in bits from a `hashcode(n)` expression's typmod, if declared.
unsafe fn typmod_bits(node: *mut pg_sys::Node) -> Option<u32> {
    // SAFETY: `node` is a valid expression node of the planner's.
    let typmod = unsafe { pg_sys::exprTypmod(node) };
    (typmod > 0).then_some(typmod as u32)
}

/// Selectivity of hamming_within(code, q, r) from its argument list.
unsafe fn within_selectivity(root: *mut pg_sys::PlannerInfo, args: &PgList<pg_sys::Node>) -> f64 {
    // SAFETY: the argument list of a hamming_within call: (hashcode, hashcode, integer); a
    // constant query code is a hashcode varlena that lives as long as the plan.
    unsafe {
        let (Some(code), Some(q), Some(r)) = (args.get_ptr(0), args.get_ptr(1), args.get_ptr(2))
        else {
            return DEFAULT_SELECTIVITY;
        };
        let Some(radius) = constant(root, r).map(|d| d.value() as i32) else {
            return DEFAULT_SELECTIVITY;
        };
        let bits = typmod_bits(code).or_else(|| typmod_bits(q)).or_else(|| {
            constant(root, q).map(|d| crate::fmgr::varlena_bytes(d, &*root).len() as u32 * 8)
        });
        match bits {
            Some(bits) if radius >= 0 => binomial_tail(bits, radius as u32),
            _ => DEFAULT_SELECTIVITY,
        }
    }
}

sql_function! {
    /// `hamming_within_support(internal) -> internal`: the planner support function.
    fn hamming_within_support(fcinfo) -> Datum {
        // SAFETY: a planner support function gets one argument, a support request node; each
        // request kind is read as the struct its tag names.
        unsafe {
            let req = fmgr::arg(fcinfo, 0).cast_mut_ptr::<pg_sys::Node>();
            match (*req).type_ {
                pg_sys::NodeTag::T_SupportRequestSelectivity => {
                    let req = req as *mut pg_sys::SupportRequestSelectivity;
                    let args = PgList::<pg_sys::Node>::from_pg((*req).args);
                    (*req).selectivity = within_selectivity((*req).root, &args);
                    pg_sys::Datum::from(req)
                }
                pg_sys::NodeTag::T_SupportRequestIndexCondition => {
                    let req = req as *mut pg_sys::SupportRequestIndexCondition;
                    match index_condition(fcinfo, req) {
                        Some(list) => pg_sys::Datum::from(list),
                        None => pg_sys::Datum::from(0usize),
                    }
                }
                _ => pg_sys::Datum::from(0usize),
            }
        }
    }
}

/// `code <@ hamming_ball(q, r)` for `hamming_within(code, q, r)` (or `(q, code, r)`).
unsafe fn index_condition(
    fcinfo: pg_sys::FunctionCallInfo,
    req: *mut pg_sys::SupportRequestIndexCondition,
) -> Option<*mut pg_sys::List> {
    // SAFETY: the planner's index-condition request: `node` is the hamming_within call and
    // `indexarg` which of its arguments matched the index column; new nodes are palloc'd in
    // the planner's memory context.
    unsafe {
        let node = (*req).node;
        if (*node).type_ != pg_sys::NodeTag::T_FuncExpr
            || !((*req).indexarg == 0 || (*req).indexarg == 1)
        {
            return None;
        }
        let args = PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::FuncExpr)).args);
        let indexed = args.get_ptr((*req).indexarg as usize)?;
        let query = args.get_ptr(1 - (*req).indexarg as usize)?;
        let radius = args.get_ptr(2)?;
        if !pg_sys::is_pseudo_constant_for_index((*req).root, query, (*req).index)
            || !pg_sys::is_pseudo_constant_for_index((*req).root, radius, (*req).index)
        {
            return None;
        }
        // hamming_ball(hashcode, integer), in this extension's schema.
        let code_type = pg_sys::exprType(indexed);
        let schema =
            pg_sys::get_namespace_name(pg_sys::get_func_namespace((*(*fcinfo).flinfo).fn_oid));
        let mut name = PgList::<pg_sys::Node>::new();
        name.push(pg_sys::makeString(schema) as *mut pg_sys::Node);
        name.push(pg_sys::makeString(c"hamming_ball".as_ptr() as *mut _) as *mut pg_sys::Node);
        let arg_types = [code_type, pg_sys::INT4OID];
        let ball_fn = pg_sys::LookupFuncName(name.into_pg(), 2, arg_types.as_ptr(), true);
        if ball_fn == pg_sys::InvalidOid {
            return None;
        }
        let ball_type = pg_sys::get_func_rettype(ball_fn);
        let op = pg_sys::get_opfamily_member(
            (*req).opfamily,
            code_type,
            ball_type,
            STRATEGY_WITHIN as i16,
        );
        if op == pg_sys::InvalidOid {
            return None; // not a mih operator family
        }
        let mut ball_args = PgList::<pg_sys::Node>::new();
        ball_args.push(query);
        ball_args.push(radius);
        let ball_expr = pg_sys::makeFuncExpr(
            ball_fn,
            ball_type,
            ball_args.into_pg(),
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
            pg_sys::CoercionForm::COERCE_EXPLICIT_CALL,
        );
        let clause = pg_sys::make_opclause(
            op,
            pg_sys::BOOLOID,
            false,
            indexed as *mut pg_sys::Expr,
            ball_expr as *mut pg_sys::Expr,
            pg_sys::InvalidOid,
            pg_sys::InvalidOid,
        );
        (*req).lossy = false;
        let mut out = PgList::<pg_sys::Node>::new();
        out.push(clause as *mut pg_sys::Node);
        Some(out.into_pg())
    }
}

sql_function! {
    /// `hamming_ball_sel(internal, oid, internal, integer) -> float8`: restriction
    /// selectivity of `code <@ ball`.
    fn hamming_ball_sel(fcinfo) -> Datum {
        // SAFETY: a restriction estimator's arguments: (PlannerInfo, operator OID, argument
        // list, varRelid); the ball, when constant, is a hamming_ball varlena.
        unsafe {
            let root = fmgr::arg(fcinfo, 0).cast_mut_ptr::<pg_sys::PlannerInfo>();
            let args = PgList::<pg_sys::Node>::from_pg(fmgr::arg(fcinfo, 2).cast_mut_ptr());
            let sel = match args.get_ptr(1).and_then(|b| constant(root, b)) {
                Some(d) => {
                    let (radius, code) = ball::datum_parts(d, &*root);
                    binomial_tail(code.len() as u32 * 8, radius)
                }
                None => DEFAULT_SELECTIVITY,
            };
            sel.into_datum().expect("a float8 datum")
        }
    }
}
