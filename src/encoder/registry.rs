//! The model registry: the extension-owned table `ics_hash_private.ics_model_registry`
//! (sql/encoder.sql) and the SQL functions over it: `ics_model_load`, `ics_model_drop`,
//! `ics_encoder_info`, plus the lookups `ics_encode` makes (name -> sha256 once per query,
//! through the view `ics_models`; bytes once per backend, from the table itself).
//!
//! Loading validates everything that can be checked before the model is used: the bytes are
//! ONNX, the `ics_hash.*` contract is complete and consistent with the graph as written
//! (`ModelContract::from_onnx`), ONNX Runtime accepts the graph and sees the same inputs and
//! outputs, and one trial run on a blank item returns one row of exactly `bits` values. The
//! session built for that check stays in this backend's cache.
//!
//! All queries go through SPI (`pgrx::spi`, which closes the connection however the closure
//! ends) and name everything with its schema (the table's fixed one, the view's that of the
//! calling function, operators `pg_catalog`'s), so `search_path` does not matter. Loading and
//! dropping are `SECURITY DEFINER` and granted to superusers and the role `ics_hash_admin`
//! only. Two loads of one name at once: the second waits for the first's row (`ON CONFLICT`)
//! and fails with 42710 like any duplicate.
//!
//! Who reads what: the table's schema has no privileges for PUBLIC, so ordinary roles see the
//! metadata through `ics_models` only. `ics_encode` needs a model's bytes for any role: it reads
//! them as the table's owner in [`fetch_onnx`], the one elevated statement (see
//! [`as_registry_owner`] for why that is safe). Every model name an error repeats is cut to 80
//! characters ([`echo`]).

use std::ffi::CStr;

use ics_codes::code::to_hex;
use ics_encoder::contract::{ModelContract, ModelInput};
use ics_encoder::EncoderError;
use pgrx::datum::DatumWithOid;
use pgrx::heap_tuple::PgHeapTuple;
use pgrx::spi::{quote_identifier, Spi};
use pgrx::{pg_sys, AllocatedByRust, FromDatum, IntoDatum, PgSqlErrorCode};

use super::sessions;
use super::{gucs, OrRaise};
use crate::fmgr::{self, raise, sql_function};
use ics_codes::echo::echo;

/// Longest model name (PostgreSQL's identifier length).
pub const MAX_NAME_BYTES: usize = 63;

/// A model found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
}

/// The registry's schema: the extension's own, without privileges for PUBLIC.
pub const REGISTRY_SCHEMA: &CStr = c"ics_hash_private";
/// The registry table, in [`REGISTRY_SCHEMA`].
pub const REGISTRY_TABLE: &CStr = c"ics_model_registry";

/// The view `ics_models`, schema-qualified, for the extension the function `fcinfo` belongs
/// to (the view lives in the extension's schema, wherever that is).
///
/// # Safety
/// `fcinfo` is the current call's (its `flinfo` is read), of a function of this extension.
pub unsafe fn models_view(fcinfo: pg_sys::FunctionCallInfo) -> String {
    // SAFETY: `fcinfo` and its `flinfo` are the current call's (the caller's promise);
    // get_namespace_name returns NULL (checked) or a palloc'd C string, copied here.
    unsafe {
        let fn_oid = (*(*fcinfo).flinfo).fn_oid;
        let ns = pg_sys::get_func_namespace(fn_oid);
        let schema = pg_sys::get_namespace_name(ns);
        if schema.is_null() {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_SCHEMA_NAME,
                "cannot find the schema of the ics_hash extension",
                None,
            );
        }
        let schema = CStr::from_ptr(schema).to_string_lossy().into_owned();
        format!("{}.ics_models", quote_identifier(schema))
    }
}

/// Runs `f`, a read of the registry table, as the table's owner; the caller's identity is back
/// when `f` returns or unwinds (and PostgreSQL restores it on abort anyway).
///
/// Why this is safe: `f` runs one fixed statement of ours in which every name is
/// schema-qualified (table, operator), with the caller's values passed as parameters, so
/// nothing the caller controls (search_path, objects in their schemas, the text of a query)
/// is looked up or run with the owner's rights; no trigger, rule or policy applies to a read of
/// that table, and only its owner (who is trusted) could add one. The switch is
/// `SECURITY_LOCAL_USERID_CHANGE` (SET ROLE and SET SESSION AUTHORIZATION refuse to run inside
/// it) plus `SECURITY_RESTRICTED_OPERATION` (no temporary objects, no session-state changes),
/// the way PostgreSQL itself runs maintenance code as a table's owner. The bytes go to the
/// session cache only; they are never returned to the caller.
fn as_registry_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: puts back the identity read below; a plain store that cannot fail.
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let (mut user, mut context) = (pg_sys::InvalidOid, 0i32);
    // SAFETY: reads the current identity into the two locals.
    unsafe { pg_sys::GetUserIdAndSecContext(&mut user, &mut context) };
    let _restore = Restore(user, context);
    let restricted = context
        | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
        | pg_sys::SECURITY_RESTRICTED_OPERATION as i32;
    // SAFETY: switches the current user for the statement in `f`; `_restore` switches back.
    unsafe { pg_sys::SetUserIdAndSecContext(owner, restricted) };
    f()
}

/// The registry table of this extension: its schema-qualified name, as SPI statements name
/// it, and its owner.
struct Registry {
    name: String,
    owner: pg_sys::Oid,
}

/// Finds the registry: in [`REGISTRY_SCHEMA`] since 0.2.0, or (a database still on 0.1.0's
/// SQL objects, between installing this library and `ALTER EXTENSION ics_hash UPDATE`) in the
/// extension's own schema, so encoding keeps working across the update. Only a table that is
/// a member of this extension counts: a table of that name that someone else created must
/// not be read (or trusted) as the registry. Raises 42P01 when there is none.
fn registry() -> Registry {
    // SAFETY: catalog lookups by name and OID (no privilege checks: the names are ours, not
    // the caller's); the relation is opened with AccessShareLock, which the statement that
    // follows takes anyway, and closed keeping the lock to the end of the transaction as a
    // query would; get_namespace_name returns NULL (checked) or a palloc'd C string.
    unsafe {
        let extension = pg_sys::get_extension_oid(c"ics_hash".as_ptr(), true);
        let member_in = |ns: pg_sys::Oid| -> Option<pg_sys::Oid> {
            if ns == pg_sys::InvalidOid || extension == pg_sys::InvalidOid {
                return None;
            }
            let rel = pg_sys::get_relname_relid(REGISTRY_TABLE.as_ptr(), ns);
            (rel != pg_sys::InvalidOid
                && pg_sys::getExtensionOfObject(pg_sys::RelationRelationId, rel) == extension)
                .then_some(rel)
        };
        let private = pg_sys::get_namespace_oid(REGISTRY_SCHEMA.as_ptr(), true);
        // The extension's own schema (PostgreSQL 15 exports no lookup for it), asked only on
        // the 0.1.0 path.
        let own = || {
            Spi::get_one::<pg_sys::Oid>(
                "SELECT extnamespace FROM pg_catalog.pg_extension \
                 WHERE extname OPERATOR(pg_catalog.=) 'ics_hash'",
            )
            .ok()
            .flatten()
            .unwrap_or(pg_sys::InvalidOid)
        };
        let Some((rel, ns)) = member_in(private).map(|rel| (rel, private)).or_else(|| {
            let own = own();
            member_in(own).map(|rel| (rel, own))
        }) else {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                "the ics_hash model registry does not exist",
                Some("Update the extension: ALTER EXTENSION ics_hash UPDATE."),
            );
        };
        let schema = pg_sys::get_namespace_name(ns);
        if schema.is_null() {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_SCHEMA_NAME,
                "cannot find the schema of the ics_hash model registry",
                None,
            );
        }
        let schema = CStr::from_ptr(schema).to_string_lossy().into_owned();
        let relation = pg_sys::relation_open(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let owner = (*(*relation).rd_rel).relowner;
        pg_sys::relation_close(relation, pg_sys::NoLock as pg_sys::LOCKMODE);
        Registry {
            name: format!(
                "{}.{}",
                quote_identifier(schema),
                REGISTRY_TABLE.to_string_lossy()
            ),
            owner,
        }
    }
}

/// Refuses to write the registry in a read-only transaction or on a standby (25006), before
/// anything else: pgrx's SPI writes assign a transaction id first, which on a standby is an
/// internal error instead.
fn refuse_read_only(what: &str) {
    // SAFETY: plain reads of backend state (a global flag and the shared recovery state).
    let (read_only, recovery) = unsafe { (pg_sys::XactReadOnly, pg_sys::RecoveryInProgress()) };
    if read_only || recovery {
        let hint = if recovery {
            "This server is a standby: load and drop models on the primary; the registry reaches standbys through replication."
        } else {
            "Run it in a read-write transaction."
        };
        raise(
            PgSqlErrorCode::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("cannot execute {what} in a read-only transaction"),
            Some(hint),
        );
    }
}

/// Raises an SPI failure (the statements here are ours: a failure is an internal error).
fn spi_failed(e: pgrx::spi::SpiError, sql: &str) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        format!("SPI failed ({e}) running: {sql}"),
        None,
    )
}

/// Finds the model `ics_encode` should use: `name`, else `ics_hash.model`, else the only one.
/// Raises 42704 or 22023 when there is none or no single one.
pub fn resolve(view: &str, name: Option<&str>) -> ModelRef {
    let from_guc = name.is_none();
    let wanted = name.map(str::to_string).or_else(gucs::model);
    Spi::connect(|client| match &wanted {
        Some(n) => {
            let q = format!("SELECT sha256 FROM {view} WHERE name OPERATOR(pg_catalog.=) $1");
            let sha = client
                .select(q.as_str(), None, &[n.as_str().into()])
                .and_then(|t| {
                    if t.is_empty() {
                        Ok(None)
                    } else {
                        t.first().get_one::<String>()
                    }
                })
                .unwrap_or_else(|e| spi_failed(e, &q));
            match sha {
                Some(sha256) => ModelRef {
                    name: n.clone(),
                    sha256,
                },
                None => {
                    let how = if from_guc {
                        " (from ics_hash.model)"
                    } else {
                        ""
                    };
                    raise(
                        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                        format!("model \"{}\"{how} does not exist", echo(n)),
                        Some("SELECT name FROM ics_models lists the loaded models; ics_model_load(name, onnx) adds one."),
                    )
                }
            }
        }
        None => {
            let q = format!("SELECT name, sha256 FROM {view} ORDER BY name LIMIT 6");
            let rows: Vec<(String, String)> = client
                .select(q.as_str(), None, &[])
                .and_then(|t| {
                    t.map(|row| {
                        Ok((
                            row.get::<String>(1)?.unwrap_or_default(),
                            row.get::<String>(2)?.unwrap_or_default(),
                        ))
                    })
                    .collect()
                })
                .unwrap_or_else(|e| spi_failed(e, &q));
            match rows.len() {
                0 => raise(
                    PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                    "no model is loaded",
                    Some("Load one with SELECT ics_model_load('name', pg_read_binary_file('/path/model.onnx'))."),
                ),
                1 => {
                    let (name, sha256) = rows.into_iter().next().expect("one row");
                    ModelRef { name, sha256 }
                }
                n => {
                    let names: Vec<&str> = rows.iter().take(5).map(|(n, _)| n.as_str()).collect();
                    let more = if n > 5 { ", ..." } else { "" };
                    raise(
                        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                        format!(
                            "several models are loaded ({}{more}) and ics_hash.model is not set",
                            names.join(", ")
                        ),
                        Some("Pass the model name, e.g. ics_encode(img, 'name'), or SET ics_hash.model = 'name'."),
                    )
                }
            }
        }
    })
}

/// The ONNX bytes of the model whose sha256 is `sha256` (raises 42704 when it is gone), read
/// as the registry's owner: any role may encode, but only the owner may read the table.
pub fn fetch_onnx(sha256: &str) -> Vec<u8> {
    let registry = registry();
    let q = format!(
        "SELECT onnx FROM {} WHERE sha256 OPERATOR(pg_catalog.=) $1 LIMIT 1",
        registry.name
    );
    let bytes = as_registry_owner(registry.owner, || {
        Spi::connect(|client| {
            client
                .select(q.as_str(), None, &[sha256.into()])
                .and_then(|t| {
                    if t.is_empty() {
                        Ok(None)
                    } else {
                        t.first().get_one::<Vec<u8>>()
                    }
                })
                .unwrap_or_else(|e| spi_failed(e, &q))
        })
    });
    bytes.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("the model with sha256 {sha256} was dropped while in use"),
            None,
        )
    })
}

/// Runs `f` on the ready session of a resolved model (built once per backend).
pub fn with_ready<R>(
    m: &ModelRef,
    f: impl FnOnce(&mut ics_encoder::session::EncoderSession) -> R,
) -> Result<R, EncoderError> {
    sessions::with_session(&m.name, &m.sha256, || Ok(fetch_onnx(&m.sha256)), f)
}

/// The parsed contract as JSON (the registry's `contract` column).
pub fn contract_json(c: &ModelContract) -> serde_json::Value {
    let mut v = serde_json::json!({
        "contract_version": ics_encoder::contract::CONTRACT_VERSION,
        "bits": c.bits,
        "input_kind": c.input.kind(),
        "input_name": c.input_name,
        "output_name": c.output_name,
        "packing": ics_encoder::contract::PACKING_SIGN_MSB_FIRST,
        "centres": c.centres.iter().map(|x| to_hex(x)).collect::<Vec<_>>(),
        "trainer_version": c.trainer_version,
        "config_sha256": c.config_sha256,
        "backbone": c.backbone,
    });
    let obj = v.as_object_mut().expect("object");
    match &c.input {
        ModelInput::Image(p) => {
            obj.insert("image_size".into(), p.size.into());
            obj.insert("resize".into(), p.resize.as_str().into());
            obj.insert("resize_filter".into(), ics_encoder::resize::FILTER.into());
            obj.insert(
                "preprocess_version".into(),
                ics_encoder::preprocess::PIPELINE_VERSION.into(),
            );
            obj.insert("norm_mean".into(), serde_json::json!(p.mean));
            obj.insert("norm_std".into(), serde_json::json!(p.std));
        }
        ModelInput::Features { dim } => {
            obj.insert("feature_dim".into(), (*dim).into());
        }
    }
    v
}

/// What ics-train file the bytes are, if they are one (a safetensors file whose JSON header
/// carries the trainer's description), so that loading the trainer's model file says to export
/// it rather than that the ONNX is broken.
fn trainer_file_kind(bytes: &[u8]) -> Option<&'static str> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let header = bytes.get(8..8usize.checked_add(usize::try_from(len).ok()?)?)?;
    let has = |key: &[u8]| header.windows(key.len()).any(|w| w == key);
    if header.first() != Some(&b'{') || !has(b"__metadata__") {
        return None;
    }
    if has(b"ics_train.model") {
        Some("an ics-train model file (.icsm)")
    } else if has(b"ics_train") {
        Some("an ics-train tensor file (a checkpoint or feature cache)")
    } else {
        Some("a safetensors file")
    }
}

/// NOTICE that a replaced model gives codes of another length: the codes stored with the old
/// one no longer compare with the new ones (a length mismatch is an error), nor fit their
/// `hashcode(n)` columns and indexes.
fn notice_relength(name: &str, old: i32, new: i32) {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        format!("model \"{}\" now gives {new}-bit codes; the model it replaces gave {old}-bit codes", echo(name)),
        "ics_hash",
    )
    .set_hint(format!(
        "Codes stored with the old model do not compare with the new ones: re-encode them and change hashcode({old}) columns to hashcode({new})."
    ))
    .report(pgrx::PgLogLevel::NOTICE);
}

fn check_name(name: &str) {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_NAME,
            format!("invalid model name \"{}\": it must have 1 to {MAX_NAME_BYTES} bytes and not be blank", echo(name)),
            Some("Choose a shorter name (at most 63 bytes, like an identifier)."),
        );
    }
}

sql_function! {
    /// `ics_model_load(name text, onnx bytea, replace boolean DEFAULT false) RETURNS ics_models`
    fn ics_model_load(fcinfo) -> Datum {
        refuse_read_only("ics_model_load()");
        // SAFETY: ics_model_load has three arguments (the default fills `replace`, so nargs
        // is 3) and is not STRICT: each null flag is read before its datum, and a non-NULL
        // argument 0 is text, argument 2 a boolean.
        let (name, replace) = unsafe {
            if (*fcinfo).args.as_slice(3)[0].isnull || (*fcinfo).args.as_slice(3)[1].isnull {
                raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "ics_model_load needs a name and the model bytes", None);
            }
            let name = String::from_datum(fmgr::arg(fcinfo, 0), false).unwrap_or_default();
            let replace = !(*fcinfo).args.as_slice(3)[2].isnull && fmgr::arg(fcinfo, 2).value() != 0;
            (name, replace)
        };
        check_name(&name);
        // SAFETY: argument 1 is a bytea, checked non-NULL above.
        let onnx = unsafe { fmgr::arg_varlena_bytes(&*fcinfo, 1) };
        if onnx.is_empty() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "invalid model: the ONNX bytes are empty", None);
        }
        if let Some(what) = trainer_file_kind(onnx) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_BINARY_REPRESENTATION,
                format!("invalid model: these bytes are {what}, not an exported ONNX model"),
                Some("Export it first: ics-train export --model FILE.icsm --out FILE.onnx, then load the .onnx file."),
            );
        }
        let sha256 = sessions::sha256_hex(onnx);

        // What ONNX Runtime makes of it: the bytes are self-contained, the contract holds,
        // the graph loads, its interface is the contract's, and trial runs give rows of
        // `bits` values (they also measure the model's memory).
        let built = sessions::build(&name, onnx)
            .map_err(|e| e.context(format!("cannot load model \"{}\"", echo(&name))))
            .or_raise();
        let contract = &built.session.contract;
        let contract_text = contract_json(contract).to_string();
        let (bits, kind) = (contract.bits as i32, contract.input.kind());

        // SAFETY: the current call's fcinfo.
        let view = unsafe { models_view(fcinfo) };
        // SAFETY: with noerr = false GetUserNameFromId raises rather than return NULL; the
        // name is palloc'd and copied here.
        let who = unsafe {
            let u = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
            CStr::from_ptr(u).to_string_lossy().into_owned()
        };
        let on_conflict = if replace {
            "DO UPDATE SET onnx = EXCLUDED.onnx, sha256 = EXCLUDED.sha256, bits = EXCLUDED.bits, \
             input_kind = EXCLUDED.input_kind, contract = EXCLUDED.contract, \
             created = EXCLUDED.created, created_by = EXCLUDED.created_by"
        } else {
            "DO NOTHING"
        };
        let table = registry().name;
        let insert = format!(
            "INSERT INTO {table} (name, onnx, sha256, bits, input_kind, contract, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) ON CONFLICT (name) {on_conflict}"
        );
        // The whole row, as one value of the view's row type (what the function returns).
        let select = format!("SELECT v FROM {view} AS v WHERE v.name OPERATOR(pg_catalog.=) $1");
        // The length of the codes the replaced model gave, to say when it changes.
        let before = format!("SELECT bits FROM {table} WHERE name OPERATOR(pg_catalog.=) $1");
        let row = Spi::connect_mut(|client| {
            let old_bits = if replace {
                client
                    .select(before.as_str(), None, &[name.as_str().into()])
                    .and_then(|t| t.first().get_one::<i32>())
                    .unwrap_or_else(|e| spi_failed(e, &before))
            } else {
                None
            };
            if let Some(old) = old_bits.filter(|&old| old != bits) {
                notice_relength(&name, old, bits);
            }
            let args: [DatumWithOid; 7] = [
                name.as_str().into(),
                onnx.into(),
                sha256.as_str().into(),
                bits.into(),
                kind.into(),
                contract_text.as_str().into(),
                who.as_str().into(),
            ];
            let written = client
                .update(insert.as_str(), None, &args)
                .unwrap_or_else(|e| spi_failed(e, &insert))
                .len();
            if written == 0 {
                fmgr::raise(
                    PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                    format!("model \"{}\" already exists", echo(&name)),
                    Some("Drop it with ics_model_drop(name) first, or pass replace => true."),
                );
            }
            // pgrx copies the row out of SPI's memory before the connection closes.
            client
                .select(select.as_str(), None, &[name.as_str().into()])
                .and_then(|t| t.first().get_one::<PgHeapTuple<'static, AllocatedByRust>>())
                .unwrap_or_else(|e| spi_failed(e, &select))
        });
        // Copied once more into the caller's memory context, as the function's result.
        let result = row
            .and_then(PgHeapTuple::into_composite_datum)
            .unwrap_or_else(|| spi_failed(pgrx::spi::SpiError::NoTupleTable, &select));
        sessions::insert(&sha256, &name, built);
        result
    }
}

sql_function! {
    /// `ics_model_drop(name text, missing_ok boolean DEFAULT false) RETURNS boolean`
    fn ics_model_drop(fcinfo) -> Datum {
        refuse_read_only("ics_model_drop()");
        // SAFETY: ics_model_drop has two arguments (the default fills `missing_ok`) and is not
        // STRICT: each null flag is read before its datum; argument 0 is text, 1 a boolean.
        let (name, missing_ok) = unsafe {
            if (*fcinfo).args.as_slice(2)[0].isnull {
                raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "ics_model_drop needs a model name", None);
            }
            let name = String::from_datum(fmgr::arg(fcinfo, 0), false).unwrap_or_default();
            let missing_ok = !(*fcinfo).args.as_slice(2)[1].isnull && fmgr::arg(fcinfo, 1).value() != 0;
            (name, missing_ok)
        };
        let delete = format!(
            "DELETE FROM {} WHERE name OPERATOR(pg_catalog.=) $1 RETURNING sha256",
            registry().name
        );
        let dropped: Option<String> = Spi::connect_mut(|client| {
            client
                .update(delete.as_str(), None, &[name.as_str().into()])
                .and_then(|t| if t.is_empty() { Ok(None) } else { t.first().get_one::<String>() })
                .unwrap_or_else(|e| spi_failed(e, &delete))
        });
        match dropped {
            Some(sha) => {
                sessions::evict(&sha);
                fmgr::datum_bool(true)
            }
            None if missing_ok => {
                pgrx::notice!("model \"{}\" does not exist, skipping", echo(&name));
                fmgr::datum_bool(false)
            }
            None => raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("model \"{}\" does not exist", echo(&name)),
                Some("SELECT name FROM ics_models lists the loaded models."),
            ),
        }
    }
}

/// What `ics_encoder_info()` shows in place of a server file path to a role that is not a
/// superuser.
const HIDDEN_PATH: &str = "(shown to superusers only)";

/// The encoder's state in this backend (`ics_encoder_info()`). The server-side path of the
/// ONNX Runtime library (where it is loaded from, a pending one, a load error naming it) is
/// shown to superusers only: it is the server's file layout, and choosing it is theirs alone.
pub fn info() -> serde_json::Value {
    use ics_encoder::{memory, runtime};
    // SAFETY: reads the current user's catalog entry (a syscache lookup).
    let show_paths = unsafe { pg_sys::superuser() };
    let path = |p: &std::path::Path| {
        if show_paths {
            p.display().to_string()
        } else {
            HIDDEN_PATH.to_string()
        }
    };
    let choice = sessions::library_choice();
    let (gpu, gpu_detail) = runtime::gpu_present();
    let mem = memory::stats();
    let mut v = serde_json::json!({
        "execution_provider_setting": gucs::execution_provider().setting().as_str(),
        "intra_op_threads": gucs::intra_op_threads(),
        "intra_op_threads_setting": gucs::intra_op_threads_setting(),
        "max_intra_op_threads": gucs::max_intra_op_threads(),
        "decode_threads": gucs::decode_threads(),
        "batch_size": gucs::batch_size(),
        "max_image_pixels": gucs::max_image_pixels(),
        "session_cache_size": gucs::session_cache_size(),
        "encoder_memory_limit_bytes": gucs::encoder_memory_limit(),
        "onnxruntime_bytes": mem.live,
        "onnxruntime_bytes_kept_for_reuse": mem.kept,
        "onnxruntime_peak_bytes": mem.peak,
        "gpu_present": gpu,
        "gpu_detail": gpu_detail,
    });
    let obj = v.as_object_mut().expect("object");
    match sessions::runtime() {
        Ok(rt) => {
            let cuda = rt.has_provider(runtime::CUDA_PROVIDER);
            obj.insert("onnxruntime_loaded".into(), true.into());
            obj.insert("onnxruntime_library".into(), path(&rt.library).into());
            obj.insert("onnxruntime_library_source".into(), rt.source.into());
            obj.insert("onnxruntime_version".into(), rt.version.clone().into());
            obj.insert(
                "onnxruntime_load_ms".into(),
                ((rt.load_ms * 1000.0).round() / 1000.0).into(),
            );
            obj.insert("available_providers".into(), rt.providers.clone().into());
            obj.insert("cuda_provider_available".into(), cuda.into());
            let auto = if cuda && gpu {
                "CUDAExecutionProvider (unless it fails to start)"
            } else {
                runtime::CPU_PROVIDER
            };
            obj.insert("auto_selects".into(), auto.into());
            if let Some(p) = choice.path.filter(|p| *p != rt.library) {
                obj.insert(
                    "pending_library".into(),
                    format!(
                        "{} (from {}) applies to new connections",
                        path(&p),
                        choice.source
                    )
                    .into(),
                );
            }
        }
        Err(e) => {
            obj.insert("onnxruntime_loaded".into(), false.into());
            let mut message = e.message;
            if let Some(p) = choice.path.as_deref().filter(|_| !show_paths) {
                message = message.replace(&p.display().to_string(), HIDDEN_PATH);
            }
            obj.insert(
                "onnxruntime_library".into(),
                choice.path.as_deref().map(path).into(),
            );
            obj.insert("onnxruntime_library_source".into(), choice.source.into());
            obj.insert("error".into(), message.into());
        }
    }
    obj.insert("cuda_slots".into(), super::slots::describe());
    obj.insert(
        "cuda_memory_limit_bytes".into(),
        gucs::cuda_memory_limit().into(),
    );
    obj.insert("sessions".into(), sessions::describe_all().into());
    v
}

sql_function! {
    /// `ics_encoder_info() RETURNS jsonb`
    fn ics_encoder_info(_fcinfo) -> Datum {
        pgrx::JsonB(info()).into_datum().expect("jsonb datum")
    }
}
