//! `ics_encode` and `ics_encode_batch`: image bytes (or a feature vector) in, `hashcode` out.
//!
//! The functions are STABLE: the model they use is looked up by name in the view `ics_models`
//! once per call site and query (the answer is kept in `fn_extra`, which lives as long as the
//! query's FmgrInfo), so `ORDER BY hamming(code, ics_encode($1)) LIMIT 10` encodes the query
//! image once and the planner can hand the code to the mih index. The session itself is
//! cached per backend ([`super::sessions`]).
//!
//! Per image: detoast, then `ics_encoder::batch::encode_images` (headers and a memory plan,
//! decode, EXIF, resize/crop, normalise, one ONNX Runtime run, check, pack). The batch form
//! decodes its images in parallel and runs the network once per `ics_hash.batch_size` images,
//! or fewer when `ics_hash.encoder_memory_limit` requires. Runs and decoding stop when the
//! statement is cancelled or times out.

use std::cell::RefCell;
use std::ffi::c_void;

use ics_encoder::batch::{encode_each, BatchError, BatchOptions, Encoded, OnError};
use ics_encoder::contract::ModelInput;
use ics_encoder::session::EncoderSession;
use ics_encoder::{memory, EncoderError, ErrorKind};
use pgrx::{pg_sys, FromDatum, PgMemoryContexts, PgSqlErrorCode};

use super::registry::{self, ModelRef};
use super::{gucs, interrupted};
use crate::fmgr::{self, raise, sql_function};
use crate::hashcode;

/// What a call site remembers for the rest of its query.
#[derive(Default)]
struct CallCache {
    /// The view `ics_models`, schema-qualified.
    view: Option<String>,
    /// (explicit name or the `ics_hash.model` value at lookup, resolved model)
    models: Vec<((bool, Option<String>), ModelRef)>,
}

/// Images larger than this are not remembered by [`LAST`].
const MEMO_MAX_BYTES: usize = 16 << 20;

/// The last image this backend encoded, see [`LAST`].
struct Memo {
    /// (model sha256, pixel limit)
    key: (String, u64),
    image: Vec<u8>,
    code: Vec<u8>,
}

thread_local! {
    /// The last image this backend encoded. The code is a function of the model's bytes and
    /// the image's bytes (the pixel limit only decides whether there is one), so it stays
    /// valid: a plan that evaluates `ics_encode($1)` once per row (a sequential scan sorted by
    /// `hamming(code, ics_encode($1))`, or the same call in the select list and the ORDER BY)
    /// runs the network once per query, not once per row or call site.
    static LAST: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// This call site's [`CallCache`], created on first use in `fn_extra`.
///
/// # Safety
/// `fcinfo` is the current call's, of one of this file's functions (so `fn_extra` is ours:
/// NULL or a `CallCache`). The reference lives as long as the query's FmgrInfo; the caller
/// uses it within the call and holds no other reference to the same cache.
unsafe fn call_cache<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a mut CallCache {
    // SAFETY: `flinfo` is the call's FmgrInfo (the caller's promise). Only this function sets
    // its `fn_extra`, to a CallCache moved into `fn_mcxt`, which lives as long as the FmgrInfo
    // and drops the cache when it is deleted; no other reference to it is live.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        if (*flinfo).fn_extra.is_null() {
            let ptr = PgMemoryContexts::For((*flinfo).fn_mcxt)
                .leak_and_drop_on_delete(CallCache::default());
            (*flinfo).fn_extra = ptr as *mut c_void;
        }
        &mut *((*flinfo).fn_extra as *mut CallCache)
    }
}

/// The model named `name` (or the default model), resolved once per call site and query.
///
/// # Safety
/// `fcinfo` is the current call's, of one of this file's functions (see [`call_cache`]).
unsafe fn model_for(fcinfo: pg_sys::FunctionCallInfo, name: Option<&str>) -> ModelRef {
    // SAFETY: the caller's promise is call_cache's; the borrow `cache` ends with this call.
    let cache = unsafe { call_cache(fcinfo) };
    if cache.view.is_none() {
        // SAFETY: `fcinfo` is the current call's.
        cache.view = Some(unsafe { registry::models_view(fcinfo) });
    }
    let view = cache.view.clone().expect("set above");
    let key = match name {
        Some(n) => (true, Some(n.to_string())),
        None => (false, gucs::model()),
    };
    let found = cache
        .models
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| m.clone());
    match found {
        Some(m) => m,
        None => {
            let m = registry::resolve(&view, name);
            if cache.models.len() >= 8 {
                cache.models.remove(0);
            }
            cache.models.push((key, m.clone()));
            m
        }
    }
}

/// Argument `n` as a Rust string (a copy).
///
/// # Safety
/// `fcinfo` is the current call's and argument `n` is a non-NULL `text`.
unsafe fn text_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> String {
    // SAFETY: a non-NULL text datum (the caller's promise); from_datum detoasts and copies it.
    unsafe { String::from_datum(fmgr::arg(fcinfo, n), false).unwrap_or_default() }
}

/// Why a call cannot encode: the encoder's error, or a model of the other input kind.
enum Failure {
    Encoder(EncoderError),
    Batch(BatchError),
    WrongKind { takes: String, hint: &'static str },
}

impl From<EncoderError> for Failure {
    fn from(e: EncoderError) -> Self {
        Failure::Encoder(e)
    }
}

/// Raises a failure of the model `name`; `lower` is the batch array's lower bound.
fn raise_failure(f: Failure, name: &str, given: &str, lower: i32) -> ! {
    match f {
        Failure::Encoder(e) => super::raise(name_the_model(e, name)),
        Failure::Batch(BatchError { index, error }) => match index {
            Some(i) => {
                super::raise(error.context(format!("image [{}] of the batch", i as i32 + lower)))
            }
            None => super::raise(name_the_model(error, name)),
        },
        Failure::WrongKind { takes, hint } => raise(
            PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
            format!("model \"{name}\" takes {takes}, not {given}"),
            Some(hint),
        ),
    }
}

/// Errors about what a model computed ("produced NaN ...") name the model.
fn name_the_model(mut e: EncoderError, name: &str) -> EncoderError {
    if matches!(e.kind, ErrorKind::NotANumber | ErrorKind::BadOutput) {
        e.message = format!("model \"{name}\" {}", e.message);
    }
    e
}

fn wrong_kind(s: &EncoderSession) -> Failure {
    let (takes, hint) = match s.contract.input {
        ModelInput::Image(p) => (
            format!("images ({0}x{0} after preprocessing)", p.size),
            "Pass the image bytes: ics_encode(image bytea, model).",
        ),
        ModelInput::Features { dim } => (
            format!("feature vectors of {dim} values"),
            "Pass the features: ics_encode(features real[], model).",
        ),
    };
    Failure::WrongKind { takes, hint }
}

/// The batch settings of this call.
fn batch_options() -> BatchOptions {
    BatchOptions {
        batch_size: gucs::batch_size(),
        threads: gucs::decode_threads(),
        max_pixels: gucs::max_image_pixels(),
        memory_limit: gucs::encoder_memory_limit(),
        interrupt: Some(interrupted),
    }
}

/// A batch of images through the model `m`: each image's code, or none for an image that
/// cannot be decoded when `on_error` skips them.
fn encode_batch_with(
    m: &ModelRef,
    images: &[&[u8]],
    on_error: OnError,
) -> Result<Encoded, Failure> {
    let opts = batch_options();
    registry::with_ready(m, |s| {
        if !matches!(s.contract.input, ModelInput::Image(_)) {
            return Err(wrong_kind(s));
        }
        encode_each(s, images, &opts, on_error).map_err(Failure::Batch)
    })?
}

/// `ics_encode(image bytea [, model text [, on_error text]])` with the model `name` (None: the
/// default); with [`OnError::Skip`] an undecodable image gives NULL and a NOTICE.
///
/// # Safety
/// `fcinfo` is the current call of an `ics_encode(image ...)` function and argument 0 is a
/// non-NULL `bytea`.
unsafe fn encode_image_call(
    fcinfo: pg_sys::FunctionCallInfo,
    name: Option<&str>,
    on_error: OnError,
) -> pg_sys::Datum {
    // SAFETY: the current call of one of this file's functions.
    let m = unsafe { model_for(fcinfo, name) };
    // SAFETY: argument 0 is a non-NULL bytea, a varlena (the caller's promise).
    let bytes = unsafe { fmgr::arg_varlena_bytes(&*fcinfo, 0) };
    let key = (m.sha256.clone(), gucs::max_image_pixels());
    let remembered = LAST.with_borrow(|last| match last {
        Some(memo) if memo.key == key && memo.image.as_slice() == bytes => Some(memo.code.clone()),
        _ => None,
    });
    if let Some(code) = remembered {
        return hashcode::code_datum(&code);
    }
    let code = match encode_batch_with(&m, &[bytes], on_error) {
        Ok(Encoded {
            mut undecodable,
            codes,
        }) => match undecodable.pop() {
            None => codes,
            Some((_, error)) => {
                // on_error 'null': no code, and a NOTICE that says why.
                pgrx::pg_sys::panic::ErrorReport::new(
                    PgSqlErrorCode::ERRCODE_WARNING,
                    "ics_encode: the image could not be decoded; its code is NULL",
                    "ics_hash",
                )
                .set_detail(error.message)
                .report(pgrx::PgLogLevel::NOTICE);
                // SAFETY: this call's fcinfo (the caller's promise): a NULL result.
                unsafe { (*fcinfo).isnull = true };
                return pg_sys::Datum::from(0);
            }
        },
        Err(Failure::Batch(BatchError { error, .. })) => {
            super::raise(name_the_model(error, &m.name))
        }
        Err(f) => raise_failure(f, &m.name, "image bytes", 1),
    };
    if bytes.len() <= MEMO_MAX_BYTES {
        LAST.set(Some(Memo {
            key,
            image: bytes.to_vec(),
            code: code.clone(),
        }));
    }
    hashcode::code_datum(&code)
}

sql_function! {
    /// `ics_encode(image bytea) RETURNS hashcode`: the default model.
    fn ics_encode_image_default(fcinfo) -> Datum {
        // SAFETY: this call's fcinfo; the function is STRICT, so the image is not NULL.
        unsafe { encode_image_call(fcinfo, None, OnError::Error) }
    }
}

sql_function! {
    /// `ics_encode(image bytea, model text) RETURNS hashcode`
    fn ics_encode_image(fcinfo) -> Datum {
        // SAFETY: argument 1 is the model name, a non-NULL text: the function is STRICT.
        let name = unsafe { text_arg(fcinfo, 1) };
        // SAFETY: this call's fcinfo; STRICT, so the image is not NULL.
        unsafe { encode_image_call(fcinfo, Some(&name), OnError::Error) }
    }
}

sql_function! {
    /// `ics_encode(image bytea, model text, on_error text) RETURNS hashcode`, not STRICT: a
    /// NULL image gives NULL, a NULL model is the default model.
    fn ics_encode_image_on_error(fcinfo) -> Datum {
        // SAFETY: this call's fcinfo: three arguments, not STRICT.
        let Some((name, on_error)) = (unsafe { on_error_args(fcinfo) }) else {
            return pg_sys::Datum::from(0);
        };
        // SAFETY: this call's fcinfo; argument 0 is a non-NULL bytea (on_error_args checked).
        unsafe { encode_image_call(fcinfo, name.as_deref(), on_error) }
    }
}

/// A deconstructed 1-D array: element datums, null flags, lower bound.
struct ArrayItems {
    datums: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    ndim: i32,
    lower: i32,
}

/// The elements of the array `d`. By-reference element datums point into the (detoasted)
/// array, which lives in the current memory context.
///
/// # Safety
/// `d` is a non-NULL array datum whose element type is `elem`, with that type's length,
/// by-value flag and alignment.
unsafe fn deconstruct(
    d: pg_sys::Datum,
    elem: pg_sys::Oid,
    len: i16,
    byval: bool,
    align: u8,
) -> ArrayItems {
    // SAFETY: `d` is an array of `elem` (the caller's promise). pg_detoast_datum returns it
    // whole and readable; its lower bounds follow the header and the `ndim` dimensions
    // (ARR_LBOUND); deconstruct_array returns `n` datums and `n` null flags, palloc'd, which
    // are copied here.
    unsafe {
        let arr =
            pg_sys::pg_detoast_datum(d.cast_mut_ptr::<pg_sys::varlena>()) as *mut pg_sys::ArrayType;
        let ndim = (*arr).ndim;
        let lower = if ndim > 0 {
            *(arr as *const u8)
                .add(std::mem::size_of::<pg_sys::ArrayType>() + ndim as usize * 4)
                .cast::<i32>()
        } else {
            1
        };
        let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut n: i32 = 0;
        pg_sys::deconstruct_array(
            arr,
            elem,
            len as i32,
            byval,
            align as std::ffi::c_char,
            &mut elems,
            &mut nulls,
            &mut n,
        );
        let n = n.max(0) as usize;
        let datums = if n == 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(elems, n).to_vec()
        };
        let nulls = if n == 0 || nulls.is_null() {
            vec![false; n]
        } else {
            std::slice::from_raw_parts(nulls, n).to_vec()
        };
        ArrayItems {
            datums,
            nulls,
            ndim,
            lower,
        }
    }
}

sql_function! {
    /// `ics_encode(features real[], model text) RETURNS hashcode`
    fn ics_encode_features(fcinfo) -> Datum {
        // SAFETY: argument 1 is the model name, a non-NULL text: the function is STRICT.
        let name = unsafe { text_arg(fcinfo, 1) };
        // SAFETY: the current call of one of this file's functions.
        let m = unsafe { model_for(fcinfo, Some(&name)) };
        // SAFETY: argument 0 is a non-NULL real[] (STRICT): float4, 4 bytes, by value, 'i'.
        let items = unsafe { deconstruct(fmgr::arg(fcinfo, 0), pg_sys::FLOAT4OID, 4, true, b'i') };
        if items.ndim > 1 {
            raise(
                PgSqlErrorCode::ERRCODE_ARRAY_ELEMENT_ERROR,
                format!("features must be a one-dimensional array, not {} dimensions", items.ndim),
                None,
            );
        }
        if let Some(i) = items.nulls.iter().position(|&n| n) {
            raise(
                PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
                format!("feature {} is NULL", i as i32 + items.lower),
                None,
            );
        }
        let values: Vec<f32> = items.datums.iter().map(|d| f32::from_bits(d.value() as u32)).collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!("feature {} is {}: features must be finite", i as i32 + items.lower, values[i]),
                None,
            );
        }
        let limit = gucs::encoder_memory_limit();
        let outcome = registry::with_ready(&m, |s| {
            let ModelInput::Features { dim } = s.contract.input else {
                return Err(wrong_kind(s));
            };
            if values.len() != dim {
                return Ok(Err(dim));
            }
            memory::set_limit(limit);
            Ok(Ok(s.run(&values, 1, Some(interrupted))?))
        });
        let code = match outcome.map_err(Failure::Encoder).and_then(|r| r) {
            Ok(Ok(code)) => code,
            Ok(Err(dim)) => raise(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!("model \"{}\" takes {dim} features, the array has {}", m.name, values.len()),
                Some("Pass the feature vector the model was trained on (see input_size in ics_models)."),
            ),
            Err(f) => raise_failure(f, &m.name, "a feature vector", 1),
        };
        hashcode::code_datum(&code)
    }
}

/// `ics_encode_batch(images bytea[] [, model text [, on_error text]])` with the model `name`
/// (None: the default).
///
/// # Safety
/// `fcinfo` is the current call of an `ics_encode_batch` function, which returns `hashcode[]`,
/// and argument 0 is a non-NULL `bytea[]`.
unsafe fn encode_batch_call(
    fcinfo: pg_sys::FunctionCallInfo,
    name: Option<&str>,
    on_error: OnError,
) -> pg_sys::Datum {
    // SAFETY: the current call of one of this file's functions.
    let m = unsafe { model_for(fcinfo, name) };
    // SAFETY: argument 0 is a non-NULL bytea[] (the caller's promise): varlena elements,
    // aligned 'i'.
    let items = unsafe { deconstruct(fmgr::arg(fcinfo, 0), pg_sys::BYTEAOID, -1, false, b'i') };
    if items.ndim > 1 {
        raise(
            PgSqlErrorCode::ERRCODE_ARRAY_ELEMENT_ERROR,
            format!(
                "images must be a one-dimensional array, not {} dimensions",
                items.ndim
            ),
            None,
        );
    }
    let images: Vec<(usize, &[u8])> = items
        .datums
        .iter()
        .zip(&items.nulls)
        .enumerate()
        .filter(|(_, (_, null))| !**null)
        // SAFETY: a non-NULL bytea element is a varlena inside the detoasted array, which
        // lives in the call's memory context, longer than `items`.
        .map(|(i, (d, _))| (i, unsafe { fmgr::varlena_bytes(*d, &items) }))
        .collect();
    let slices: Vec<&[u8]> = images.iter().map(|(_, b)| *b).collect();
    // Subscripts of the input array, not positions among its non-NULL images.
    let subscript = |i: usize| images[i].0 as i32 + items.lower;
    let encoded = match encode_batch_with(&m, &slices, on_error) {
        Ok(encoded) => encoded,
        Err(Failure::Batch(BatchError {
            index: Some(i),
            error,
        })) => super::raise(error.context(format!("image [{}] of the batch", subscript(i)))),
        Err(f) => raise_failure(f, &m.name, "image bytes", items.lower),
    };
    if !encoded.undecodable.is_empty() {
        notice_undecodable(&encoded, images.len(), subscript);
    }
    let coded = images.len() - encoded.undecodable.len();
    let codes = encoded.per_item(images.len(), encoded.codes.len() / coded.max(1));

    // hashcode[] with the input's subscripts; NULL where the image was NULL.
    // SAFETY: `flinfo` is the call's; the function returns hashcode[], so `elem` is hashcode
    // and its length, by-value flag and alignment come from the catalog. `datums` and `nulls`
    // hold `n` entries, `dims` and `lbs` one (ndim 1); construct_md_array copies them (NULL
    // entries are skipped) into a new array in the current memory context.
    unsafe {
        let fn_oid = (*(*fcinfo).flinfo).fn_oid;
        let elem = pg_sys::get_element_type(pg_sys::get_func_rettype(fn_oid));
        let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
        pg_sys::get_typlenbyvalalign(elem, &mut len, &mut byval, &mut align);
        let n = items.datums.len();
        if n == 0 {
            return pg_sys::Datum::from(pg_sys::construct_empty_array(elem));
        }
        let mut datums = vec![pg_sys::Datum::from(0); n];
        let mut nulls = items.nulls.clone();
        for ((i, _), code) in images.iter().zip(&codes) {
            match code {
                Some(code) => {
                    datums[*i] = hashcode::code_datum(code);
                    nulls[*i] = false;
                }
                // An undecodable image (on_error 'null').
                None => nulls[*i] = true,
            }
        }
        let mut dims = [n as i32];
        let mut lbs = [items.lower];
        let arr = pg_sys::construct_md_array(
            datums.as_mut_ptr(),
            nulls.as_mut_ptr(),
            1,
            dims.as_mut_ptr(),
            lbs.as_mut_ptr(),
            elem,
            len as i32,
            byval,
            align,
        );
        pg_sys::Datum::from(arr)
    }
}

/// The NOTICE of a batch in which `encoded.undecodable` images of `n` got NULL codes: how
/// many, and the first few by subscript with why. A NOTICE, as for the rows `COPY ... ON_ERROR
/// ignore` skips: the caller asked for NULLs, and the codes of the others are good.
fn notice_undecodable(encoded: &Encoded, n: usize, subscript: impl Fn(usize) -> i32) {
    const SHOWN: usize = 3;
    let failed = &encoded.undecodable;
    let mut detail: Vec<String> = failed
        .iter()
        .take(SHOWN)
        .map(|(i, e)| format!("image [{}]: {}", subscript(*i), e.message))
        .collect();
    if failed.len() > SHOWN {
        detail.push(format!("and {} more", failed.len() - SHOWN));
    }
    let images = |k: usize| if k == 1 { "image" } else { "images" };
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_WARNING,
        format!(
            "ics_encode_batch: {} of {n} {} could not be decoded; their codes are NULL",
            failed.len(),
            images(n)
        ),
        "ics_hash",
    )
    .set_detail(detail.join("; "))
    .report(pgrx::PgLogLevel::NOTICE);
}

sql_function! {
    /// `ics_encode_batch(images bytea[]) RETURNS hashcode[]`: the default model.
    fn ics_encode_batch_default(fcinfo) -> Datum {
        // SAFETY: this call's fcinfo; the function is STRICT, so the array is not NULL.
        unsafe { encode_batch_call(fcinfo, None, OnError::Error) }
    }
}

sql_function! {
    /// `ics_encode_batch(images bytea[], model text) RETURNS hashcode[]`
    fn ics_encode_batch(fcinfo) -> Datum {
        // SAFETY: argument 1 is the model name, a non-NULL text: the function is STRICT.
        let name = unsafe { text_arg(fcinfo, 1) };
        // SAFETY: this call's fcinfo; STRICT, so the array is not NULL.
        unsafe { encode_batch_call(fcinfo, Some(&name), OnError::Error) }
    }
}

/// The `on_error` argument of `ics_encode` and `ics_encode_batch`: `'error'` or `'null'`
/// (case-insensitive).
/// The arguments of a three-argument, not STRICT `ics_encode*(input, model, on_error)` call:
/// `None`, with the call's result set to NULL, when the input is NULL; else the model name
/// (`None`: the default model) and the parsed `on_error`.
///
/// # Safety
/// `fcinfo` is such a call's: argument 0 of any type, arguments 1 and 2 texts or NULL.
unsafe fn on_error_args(fcinfo: pg_sys::FunctionCallInfo) -> Option<(Option<String>, OnError)> {
    // SAFETY: each null flag is read before its datum; a non-NULL argument 1 or 2 is a text.
    let (input_null, name, on_error) = unsafe {
        let args = (*fcinfo).args.as_slice(3);
        let text = |n: usize| (!args[n].isnull).then(|| text_arg(fcinfo, n));
        (args[0].isnull, text(1), text(2))
    };
    let on_error = parse_on_error(on_error.as_deref());
    if input_null {
        // SAFETY: this call's fcinfo: a NULL result.
        unsafe { (*fcinfo).isnull = true };
        return None;
    }
    Some((name, on_error))
}

fn parse_on_error(value: Option<&str>) -> OnError {
    const HINT: &str = "on_error is 'error' (an undecodable image fails the call, as without on_error) or 'null' (it gets a NULL code).";
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        Some(v) if v == "error" => OnError::Error,
        Some(v) if v == "null" => OnError::Skip,
        Some(_) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!(
                "invalid on_error value \"{}\"",
                value
                    .unwrap_or_default()
                    .chars()
                    .take(40)
                    .collect::<String>()
            ),
            Some(HINT),
        ),
        None => raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            "on_error must not be NULL",
            Some(HINT),
        ),
    }
}

sql_function! {
    /// `ics_encode_batch(images bytea[], model text, on_error text) RETURNS hashcode[]`, not
    /// STRICT: NULL images give NULL, a NULL model is the default model.
    fn ics_encode_batch_on_error(fcinfo) -> Datum {
        // SAFETY: this call's fcinfo: three arguments, not STRICT.
        let Some((name, on_error)) = (unsafe { on_error_args(fcinfo) }) else {
            return pg_sys::Datum::from(0);
        };
        // SAFETY: this call's fcinfo; argument 0 is a non-NULL bytea[] (on_error_args checked).
        unsafe { encode_batch_call(fcinfo, name.as_deref(), on_error) }
    }
}
