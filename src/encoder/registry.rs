//! The model registry: the extension-owned table `ics_model_registry` (sql/encoder.sql) and the
//! SQL functions over it: `ics_model_load`, `ics_model_drop`, `ics_encoder_info`, plus the
//! lookups `ics_encode` makes (name -> sha256 once per query, bytes once per backend).
//!
//! Loading validates everything that can be checked before the model is used: the bytes are
//! ONNX, the `ics_hash.*` contract is complete and consistent with the graph as written
//! (`ModelContract::from_onnx`), ONNX Runtime accepts the graph and sees the same inputs and
//! outputs, and one trial run on a blank item returns one row of exactly `bits` values. The
//! session built for that check stays in this backend's cache.
//!
//! All queries go through SPI against the schema the extension lives in (the schema of the
//! calling function), so `search_path` does not matter. Loading and dropping are
//! `SECURITY DEFINER` and granted to superusers and the role `ics_hash_admin` only.

use std::ffi::CStr;

use ics_core::code::to_hex;
use ics_core::contract::{ModelContract, ModelInput};
use pgrx::spi::quote_identifier;
use pgrx::{pg_sys, FromDatum, IntoDatum, PgSqlErrorCode};

use super::gucs;
use super::runtime;
use super::sessions::{self, ReadyModel};
use super::{contract_error, EncoderError, OrRaise};
use crate::fmgr::{self, raise, sql_function};

/// Longest model name (PostgreSQL's identifier length).
pub const MAX_NAME_BYTES: usize = 63;

/// A model found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub name: String,
    pub sha256: String,
}

/// The registry table, schema-qualified, for the extension the function `fcinfo` belongs to.
pub unsafe fn registry_table(fcinfo: pg_sys::FunctionCallInfo) -> String {
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
        format!("{}.ics_model_registry", quote_identifier(schema))
    }
}

/// One SPI statement; returns the number of rows processed. Must run between SPI_connect and
/// SPI_finish; results are in `SPI_tuptable`.
unsafe fn spi_exec(
    sql: &str,
    args: Vec<Option<pg_sys::Datum>>,
    types: &[pg_sys::Oid],
    read_only: bool,
) -> u64 {
    let c_sql = std::ffi::CString::new(sql).expect("no NUL in SQL");
    let mut values: Vec<pg_sys::Datum> = args
        .iter()
        .map(|a| a.unwrap_or(pg_sys::Datum::from(0)))
        .collect();
    let nulls: Vec<std::ffi::c_char> = args
        .iter()
        .map(|a| if a.is_some() { b' ' as _ } else { b'n' as _ })
        .collect();
    unsafe {
        let rc = pg_sys::SPI_execute_with_args(
            c_sql.as_ptr(),
            types.len() as i32,
            types.as_ptr().cast_mut(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            read_only,
            0,
        );
        if rc < 0 {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("SPI failed ({rc}) running: {sql}"),
                None,
            );
        }
        pg_sys::SPI_processed
    }
}

/// Column `col` (1-based) of result row `row` as a Rust value.
unsafe fn spi_get<T: FromDatum>(row: usize, col: i32) -> Option<T> {
    unsafe {
        let table = pg_sys::SPI_tuptable;
        let tuple = *(*table).vals.add(row);
        let mut isnull = false;
        let d = pg_sys::SPI_getbinval(tuple, (*table).tupdesc, col, &mut isnull);
        T::from_datum(d, isnull)
    }
}

struct SpiConnection;

impl SpiConnection {
    fn open() -> Self {
        // SAFETY: paired with SPI_finish in `close`; on ERROR, transaction abort cleans up.
        unsafe { pg_sys::SPI_connect() };
        SpiConnection
    }

    fn close(self) {
        // SAFETY: opened in `open`.
        unsafe { pg_sys::SPI_finish() };
    }
}

fn text(s: &str) -> Option<pg_sys::Datum> {
    s.into_datum()
}

/// Finds the model `ics_encode` should use: `name`, else `ics_hash.model`, else the only one.
pub unsafe fn resolve(table: &str, name: Option<&str>) -> Result<ModelRef, EncoderError> {
    let from_guc = name.is_none();
    let wanted = name.map(str::to_string).or_else(gucs::model);
    let spi = SpiConnection::open();
    let result = unsafe {
        match &wanted {
            Some(n) => {
                let q = format!("SELECT sha256 FROM {table} WHERE name = $1");
                let found = spi_exec(&q, vec![text(n)], &[pg_sys::TEXTOID], true);
                if found == 0 {
                    let how = if from_guc {
                        " (from ics_hash.model)"
                    } else {
                        ""
                    };
                    Err(EncoderError::new(
                        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                        format!("model \"{n}\"{how} does not exist"),
                    )
                    .hint("SELECT name FROM ics_models lists the loaded models; ics_model_load(name, onnx) adds one."))
                } else {
                    Ok(ModelRef {
                        name: n.clone(),
                        sha256: spi_get::<String>(0, 1).unwrap_or_default(),
                    })
                }
            }
            None => {
                let q = format!("SELECT name, sha256 FROM {table} ORDER BY name LIMIT 6");
                let found = spi_exec(&q, vec![], &[], true);
                match found {
                    0 => Err(EncoderError::new(
                        PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                        "no model is loaded",
                    )
                    .hint("Load one with SELECT ics_model_load('name', pg_read_binary_file('/path/model.onnx')).")),
                    1 => Ok(ModelRef {
                        name: spi_get::<String>(0, 1).unwrap_or_default(),
                        sha256: spi_get::<String>(0, 2).unwrap_or_default(),
                    }),
                    n => {
                        let names: Vec<String> = (0..n.min(5) as usize)
                            .filter_map(|i| spi_get::<String>(i, 1))
                            .collect();
                        let more = if n > 5 { ", ..." } else { "" };
                        Err(EncoderError::new(
                            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                            format!(
                                "several models are loaded ({}{more}) and ics_hash.model is not set",
                                names.join(", ")
                            ),
                        )
                        .hint("Pass the model name, e.g. ics_encode(img, 'name'), or SET ics_hash.model = 'name'."))
                    }
                }
            }
        }
    };
    spi.close();
    result
}

/// The ONNX bytes of the model whose sha256 is `sha256`.
pub unsafe fn fetch_onnx(table: &str, sha256: &str) -> Result<Vec<u8>, EncoderError> {
    let spi = SpiConnection::open();
    let q = format!("SELECT onnx FROM {table} WHERE sha256 = $1 LIMIT 1");
    let bytes = unsafe {
        if spi_exec(&q, vec![text(sha256)], &[pg_sys::TEXTOID], true) == 0 {
            None
        } else {
            spi_get::<Vec<u8>>(0, 1)
        }
    };
    spi.close();
    bytes.ok_or_else(|| {
        EncoderError::new(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            format!("the model with sha256 {sha256} was dropped while in use"),
        )
    })
}

/// The ready model for a resolved reference (building its session once per backend).
pub unsafe fn ready(table: &str, m: &ModelRef) -> Result<sessions::Entry, EncoderError> {
    sessions::get(&m.name, &m.sha256, || unsafe {
        fetch_onnx(table, &m.sha256)
    })
}

/// The parsed contract as JSON (the registry's `contract` column).
pub fn contract_json(c: &ModelContract) -> serde_json::Value {
    let mut v = serde_json::json!({
        "contract_version": ics_core::contract::CONTRACT_VERSION,
        "bits": c.bits,
        "input_kind": c.input.kind(),
        "input_name": c.input_name,
        "output_name": c.output_name,
        "packing": ics_core::contract::PACKING_SIGN_MSB_FIRST,
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
            obj.insert("resize_filter".into(), ics_core::preprocess::FILTER.into());
            obj.insert(
                "preprocess_version".into(),
                ics_core::preprocess::PIPELINE_VERSION.into(),
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

fn check_name(name: &str) {
    if name.trim().is_empty() || name.len() > MAX_NAME_BYTES {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_NAME,
            format!("invalid model name \"{name}\": it must have 1 to {MAX_NAME_BYTES} bytes and not be blank"),
            None,
        );
    }
}

sql_function! {
    /// `ics_model_load(name text, onnx bytea, replace boolean DEFAULT false) RETURNS ics_models`
    fn ics_model_load(fcinfo) -> Datum {
        let (name, replace) = unsafe {
            if (*fcinfo).args.as_slice(3)[0].isnull || (*fcinfo).args.as_slice(3)[1].isnull {
                raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "ics_model_load needs a name and the model bytes", None);
            }
            let name = String::from_datum(fmgr::arg(fcinfo, 0), false).unwrap_or_default();
            let replace = !(*fcinfo).args.as_slice(3)[2].isnull && fmgr::arg(fcinfo, 2).value() != 0;
            (name, replace)
        };
        check_name(&name);
        let onnx = unsafe { fmgr::arg_varlena_bytes(fcinfo, 1) };
        if onnx.is_empty() {
            raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, "invalid model: the ONNX bytes are empty", None);
        }
        let (contract, _) = ModelContract::from_onnx(onnx).map_err(|e| contract_error(&e)).or_raise();
        let sha256 = sessions::sha256_hex(onnx);

        // What ONNX Runtime makes of it: the graph loads, its interface is the contract's, and
        // a trial run gives one row of `bits` values.
        let mut model = ReadyModel::build(&name, &sha256, onnx, gucs::execution_provider(), gucs::intra_op_threads())
            .map_err(|e| e.context(format!("cannot load model \"{name}\"")))
            .or_raise();
        let blank = vec![0f32; model.item_len()];
        model
            .run(&blank, 1)
            .map_err(|e| e.context(format!("trial run of model \"{name}\"")))
            .or_raise();
        model.runs = 0;
        model.items = 0;

        let table = unsafe { registry_table(fcinfo) };
        let contract_text = contract_json(&contract).to_string();
        let who = unsafe {
            let u = pg_sys::GetUserNameFromId(pg_sys::GetOuterUserId(), false);
            CStr::from_ptr(u).to_string_lossy().into_owned()
        };
        let spi = SpiConnection::open();
        let result = unsafe {
            if replace {
                spi_exec(&format!("DELETE FROM {table} WHERE name = $1"), vec![text(&name)], &[pg_sys::TEXTOID], false);
            } else if spi_exec(&format!("SELECT 1 FROM {table} WHERE name = $1"), vec![text(&name)], &[pg_sys::TEXTOID], false) > 0 {
                fmgr::raise(
                    PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
                    format!("model \"{name}\" already exists"),
                    Some("Drop it with ics_model_drop(name) first, or pass replace => true."),
                );
            }
            spi_exec(
                &format!(
                    "INSERT INTO {table} (name, onnx, sha256, bits, input_kind, contract, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)"
                ),
                vec![
                    text(&name),
                    onnx.into_datum(),
                    text(&sha256),
                    (contract.bits as i32).into_datum(),
                    text(contract.input.kind()),
                    text(&contract_text),
                    text(&who),
                ],
                &[
                    pg_sys::TEXTOID,
                    pg_sys::BYTEAOID,
                    pg_sys::TEXTOID,
                    pg_sys::INT4OID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTOID,
                    pg_sys::TEXTOID,
                ],
                false,
            );
            let view = table.replace(".ics_model_registry", ".ics_models");
            spi_exec(&format!("SELECT * FROM {view} WHERE name = $1"), vec![text(&name)], &[pg_sys::TEXTOID], false);
            let tuptable = pg_sys::SPI_tuptable;
            let header = pg_sys::SPI_returntuple(*(*tuptable).vals, (*tuptable).tupdesc);
            pg_sys::Datum::from(header)
        };
        spi.close();
        sessions::insert(model);
        result
    }
}

sql_function! {
    /// `ics_model_drop(name text, missing_ok boolean DEFAULT false) RETURNS boolean`
    fn ics_model_drop(fcinfo) -> Datum {
        let (name, missing_ok) = unsafe {
            if (*fcinfo).args.as_slice(2)[0].isnull {
                raise(PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED, "ics_model_drop needs a model name", None);
            }
            let name = String::from_datum(fmgr::arg(fcinfo, 0), false).unwrap_or_default();
            let missing_ok = !(*fcinfo).args.as_slice(2)[1].isnull && fmgr::arg(fcinfo, 1).value() != 0;
            (name, missing_ok)
        };
        let table = unsafe { registry_table(fcinfo) };
        let spi = SpiConnection::open();
        let dropped: Option<String> = unsafe {
            if spi_exec(&format!("DELETE FROM {table} WHERE name = $1 RETURNING sha256"), vec![text(&name)], &[pg_sys::TEXTOID], false) > 0 {
                spi_get::<String>(0, 1)
            } else {
                None
            }
        };
        spi.close();
        match dropped {
            Some(sha) => {
                sessions::evict(&sha);
                fmgr::datum_bool(true)
            }
            None if missing_ok => {
                pgrx::notice!("model \"{name}\" does not exist, skipping");
                fmgr::datum_bool(false)
            }
            None => raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
                format!("model \"{name}\" does not exist"),
                Some("SELECT name FROM ics_models lists the loaded models."),
            ),
        }
    }
}

/// The encoder's state in this backend (`ics_encoder_info()`).
pub fn info() -> serde_json::Value {
    let (choice, source) = runtime::library_choice();
    let (gpu, gpu_detail) = runtime::gpu_present();
    let mut v = serde_json::json!({
        "execution_provider_setting": gucs::execution_provider().as_str(),
        "intra_op_threads": gucs::intra_op_threads(),
        "batch_size": gucs::batch_size(),
        "max_image_pixels": gucs::max_image_pixels(),
        "session_cache_size": gucs::session_cache_size(),
        "gpu_present": gpu,
        "gpu_detail": gpu_detail,
    });
    let obj = v.as_object_mut().expect("object");
    match runtime::get() {
        Ok(rt) => {
            let cuda = rt.has_provider(runtime::CUDA_PROVIDER);
            obj.insert("onnxruntime_loaded".into(), true.into());
            obj.insert(
                "onnxruntime_library".into(),
                rt.library.display().to_string().into(),
            );
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
            if let Some(p) = choice.filter(|p| *p != rt.library) {
                obj.insert(
                    "pending_library".into(),
                    format!("{} (from {source}) applies to new connections", p.display()).into(),
                );
            }
        }
        Err(e) => {
            obj.insert("onnxruntime_loaded".into(), false.into());
            obj.insert(
                "onnxruntime_library".into(),
                choice.map(|p| p.display().to_string()).into(),
            );
            obj.insert("onnxruntime_library_source".into(), source.into());
            obj.insert("error".into(), e.message.into());
        }
    }
    obj.insert("sessions".into(), sessions::describe_all().into());
    v
}

sql_function! {
    /// `ics_encoder_info() RETURNS jsonb`
    fn ics_encoder_info(_fcinfo) -> Datum {
        pgrx::JsonB(info()).into_datum().expect("jsonb datum")
    }
}
