//! `ics_encode` and `ics_encode_batch`: image bytes (or a feature vector) in, `hashcode` out.
//!
//! The functions are STABLE: the model they use is looked up by name in the registry table
//! once per call site and query (the answer is kept in `fn_extra`, which lives as long as the
//! query's FmgrInfo), so `ORDER BY hamming(code, ics_encode($1)) LIMIT 10` encodes the query
//! image once and the planner can hand the code to the mih index. The session itself is
//! cached per backend ([`super::sessions`]).
//!
//! Per image: detoast, `ics_core::preprocess` (decode, EXIF, resize/crop, normalise), one
//! ONNX Runtime run, `ics_core::code::pack_signs`. The batch form decodes its images in
//! parallel ([`super::decode`]) and runs the network once per `ics_hash.batch_size` images.

use std::cell::RefCell;
use std::ffi::c_void;

use ics_core::contract::ModelInput;
use ics_core::preprocess::preprocess_into;
use pgrx::{pg_sys, FromDatum, PgMemoryContexts, PgSqlErrorCode};

use super::decode::preprocess_batch;
use super::registry::{self, ModelRef};
use super::sessions::{self, ReadyModel};
use super::{gucs, preprocess_error, EncoderError, OrRaise};
use crate::fmgr::{self, raise, sql_function};
use crate::hashcode;

/// What a call site remembers for the rest of its query.
#[derive(Default)]
struct CallCache {
    table: Option<String>,
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

unsafe fn call_cache<'a>(fcinfo: pg_sys::FunctionCallInfo) -> &'a mut CallCache {
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

/// The ready model named `name` (or the default model), resolved once per call site.
unsafe fn model_for(
    fcinfo: pg_sys::FunctionCallInfo,
    name: Option<&str>,
) -> Result<sessions::Entry, EncoderError> {
    let cache = unsafe { call_cache(fcinfo) };
    if cache.table.is_none() {
        cache.table = Some(unsafe { registry::registry_table(fcinfo) });
    }
    let table = cache.table.clone().expect("set above");
    let key = match name {
        Some(n) => (true, Some(n.to_string())),
        None => (false, gucs::model()),
    };
    let found = cache
        .models
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| m.clone());
    let m = match found {
        Some(m) => m,
        None => {
            let m = unsafe { registry::resolve(&table, name) }?;
            if cache.models.len() >= 8 {
                cache.models.remove(0);
            }
            cache.models.push((key, m.clone()));
            m
        }
    };
    unsafe { registry::ready(&table, &m) }
}

unsafe fn text_arg(fcinfo: pg_sys::FunctionCallInfo, n: usize) -> String {
    unsafe { String::from_datum(fmgr::arg(fcinfo, n), false).unwrap_or_default() }
}

/// The payload of a varlena datum (detoasted if it must be).
unsafe fn varlena_bytes<'a>(d: pg_sys::Datum) -> &'a [u8] {
    unsafe {
        let ptr = pg_sys::pg_detoast_datum_packed(d.cast_mut_ptr::<pg_sys::varlena>());
        pgrx::varlena::varlena_to_byte_slice(ptr)
    }
}

fn wrong_kind(model: &ReadyModel, given: &str) -> EncoderError {
    let (takes, hint) = match model.contract.input {
        ModelInput::Image(p) => (
            format!("images ({0}x{0} after preprocessing)", p.size),
            "Pass the image bytes: ics_encode(image bytea, model).",
        ),
        ModelInput::Features { dim } => (
            format!("feature vectors of {dim} values"),
            "Pass the features: ics_encode(features real[], model).",
        ),
    };
    EncoderError::new(
        PgSqlErrorCode::ERRCODE_WRONG_OBJECT_TYPE,
        format!("model \"{}\" takes {takes}, not {given}", model.name),
    )
    .hint(hint)
}

/// One image through `model`.
fn encode_one_image(model: &mut ReadyModel, bytes: &[u8]) -> Result<Vec<u8>, EncoderError> {
    let ModelInput::Image(p) = model.contract.input else {
        return Err(wrong_kind(model, "image bytes"));
    };
    let mut input = vec![0f32; p.output_len()];
    preprocess_into(bytes, &p, gucs::max_image_pixels(), &mut input)
        .map_err(|e| preprocess_error(&e))?;
    pgrx::check_for_interrupts!();
    model.run(&input, 1)
}

unsafe fn encode_image_call(fcinfo: pg_sys::FunctionCallInfo, name: Option<&str>) -> pg_sys::Datum {
    let entry = unsafe { model_for(fcinfo, name) }.or_raise();
    let bytes = unsafe { fmgr::arg_varlena_bytes(fcinfo, 0) };
    let mut model = entry.borrow_mut();
    let key = (model.sha256.clone(), gucs::max_image_pixels());
    let remembered = LAST.with_borrow(|last| match last {
        Some(m) if m.key == key && m.image.as_slice() == bytes => Some(m.code.clone()),
        _ => None,
    });
    if let Some(code) = remembered {
        return hashcode::code_datum(&code);
    }
    let code = encode_one_image(&mut model, bytes).or_raise();
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
        unsafe { encode_image_call(fcinfo, None) }
    }
}

sql_function! {
    /// `ics_encode(image bytea, model text) RETURNS hashcode`
    fn ics_encode_image(fcinfo) -> Datum {
        let name = unsafe { text_arg(fcinfo, 1) };
        unsafe { encode_image_call(fcinfo, Some(&name)) }
    }
}

/// A deconstructed 1-D array: element datums, null flags, lower bound.
struct ArrayItems {
    datums: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    ndim: i32,
    lower: i32,
}

unsafe fn deconstruct(
    d: pg_sys::Datum,
    elem: pg_sys::Oid,
    len: i16,
    byval: bool,
    align: u8,
) -> ArrayItems {
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
        let name = unsafe { text_arg(fcinfo, 1) };
        let entry = unsafe { model_for(fcinfo, Some(&name)) }.or_raise();
        let mut model = entry.borrow_mut();
        let ModelInput::Features { dim } = model.contract.input else {
            wrong_kind(&model, "a feature vector").raise();
        };
        let items = unsafe { deconstruct(fmgr::arg(fcinfo, 0), pg_sys::FLOAT4OID, 4, true, b'i') };
        if items.ndim > 1 {
            raise(
                PgSqlErrorCode::ERRCODE_ARRAY_ELEMENT_ERROR,
                format!("features must be a one-dimensional array, not {} dimensions", items.ndim),
                None,
            );
        }
        if items.datums.len() != dim {
            raise(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!("model \"{}\" takes {dim} features, the array has {}", model.name, items.datums.len()),
                Some("Pass the feature vector the model was trained on (see input_size in ics_models)."),
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
        let code = model.run(&values, 1).or_raise();
        hashcode::code_datum(&code)
    }
}

/// The images of a batch through `model`: one code per non-NULL image, in order.
fn encode_images(
    model: &mut ReadyModel,
    images: &[(usize, &[u8])],
    lower: i32,
) -> Result<Vec<Vec<u8>>, EncoderError> {
    let ModelInput::Image(p) = model.contract.input else {
        return Err(wrong_kind(model, "image bytes"));
    };
    let batch = gucs::batch_size();
    let threads = gucs::intra_op_threads();
    let max_pixels = gucs::max_image_pixels();
    let item = p.output_len();
    let bytes_per_code = model.bits() / 8;
    let mut input = vec![0f32; batch.min(images.len()) * item];
    let mut codes = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch) {
        let slices: Vec<&[u8]> = chunk.iter().map(|(_, b)| *b).collect();
        let buf = &mut input[..chunk.len() * item];
        preprocess_batch(&slices, &p, max_pixels, threads, buf).map_err(|(i, e)| {
            preprocess_error(&e).context(format!(
                "image [{}] of the batch",
                chunk[i].0 as i32 + lower
            ))
        })?;
        pgrx::check_for_interrupts!();
        let packed = model.run(buf, chunk.len())?;
        codes.extend(packed.chunks_exact(bytes_per_code).map(<[u8]>::to_vec));
        pgrx::check_for_interrupts!();
    }
    Ok(codes)
}

unsafe fn encode_batch_call(fcinfo: pg_sys::FunctionCallInfo, name: Option<&str>) -> pg_sys::Datum {
    let entry = unsafe { model_for(fcinfo, name) }.or_raise();
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
        .map(|(i, (d, _))| (i, unsafe { varlena_bytes(*d) }))
        .collect();
    let codes = encode_images(&mut entry.borrow_mut(), &images, items.lower).or_raise();

    // hashcode[] with the input's subscripts; NULL where the image was NULL.
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
            datums[*i] = hashcode::code_datum(code);
            nulls[*i] = false;
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

sql_function! {
    /// `ics_encode_batch(images bytea[]) RETURNS hashcode[]`: the default model.
    fn ics_encode_batch_default(fcinfo) -> Datum {
        unsafe { encode_batch_call(fcinfo, None) }
    }
}

sql_function! {
    /// `ics_encode_batch(images bytea[], model text) RETURNS hashcode[]`
    fn ics_encode_batch(fcinfo) -> Datum {
        let name = unsafe { text_arg(fcinfo, 1) };
        unsafe { encode_batch_call(fcinfo, Some(&name)) }
    }
}
