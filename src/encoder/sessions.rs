//! The per-backend cache of ready models: an ONNX Runtime session plus the model's contract,
//! keyed by the model's identity (the sha256 of its bytes) and the settings the session was
//! built with (execution provider, thread count). Bounded by `ics_hash.session_cache_size`
//! (least recently used out). A model re-loaded under the same name has other bytes, hence
//! another key: a backend never runs stale weights, and a dropped model simply ages out.
//!
//! The cache lives on the backend's thread (`thread_local!`); ONNX Runtime's pool threads only
//! ever see the plain buffers handed to [`ReadyModel::run`].

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use ics_core::code::{pack_signs, to_hex};
use ics_core::contract::{ModelContract, ModelInput};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};
use pgrx::PgSqlErrorCode;

use super::gucs::{self, ExecutionProvider};
use super::runtime::{self, SignalsBlocked};
use super::{contract_error, EncoderError};

/// A model ready to run in this backend.
pub struct ReadyModel {
    /// 64 lowercase hex digits: the identity of the bytes.
    pub sha256: String,
    /// The name it was first resolved by (informational: several names may share bytes).
    pub name: String,
    pub contract: ModelContract,
    session: Session,
    /// The provider the session runs on, and why.
    pub provider: &'static str,
    pub provider_reason: String,
    pub setting: ExecutionProvider,
    pub threads: usize,
    /// Milliseconds to build the session (parse, optimise, allocate).
    pub load_ms: f64,
    pub runs: u64,
    pub items: u64,
    last_used: u64,
}

/// The graph input's dimensions for a batch of `n`.
fn input_shape(contract: &ModelContract, n: usize) -> Vec<usize> {
    match &contract.input {
        ModelInput::Image(p) => vec![n, 3, p.size as usize, p.size as usize],
        ModelInput::Features { dim } => vec![n, *dim],
    }
}

fn interface_error(message: String) -> EncoderError {
    EncoderError::new(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid model: {message}"),
    )
    .hint("The ONNX graph's inputs and outputs must be what its ics_hash.* metadata declares; re-export the model with ics-train.")
}

impl ReadyModel {
    /// Parses the contract from `bytes`, loads the runtime and builds the session.
    pub fn build(
        name: &str,
        sha256: &str,
        bytes: &[u8],
        setting: ExecutionProvider,
        threads: usize,
    ) -> Result<ReadyModel, EncoderError> {
        let (contract, _) = ModelContract::from_onnx(bytes).map_err(|e| contract_error(&e))?;
        let rt = runtime::get()?;
        let started = Instant::now();
        let built = runtime::build_session(rt, bytes, threads, setting)?;
        let model = ReadyModel {
            sha256: sha256.to_string(),
            name: name.to_string(),
            contract,
            session: built.session,
            provider: built.provider,
            provider_reason: built.reason,
            setting,
            threads,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            runs: 0,
            items: 0,
            last_used: 0,
        };
        model.check_interface()?;
        Ok(model)
    }

    /// Checks the contract against the inputs and outputs ONNX Runtime reports for the graph.
    pub fn check_interface(&self) -> Result<(), EncoderError> {
        let c = &self.contract;
        let inputs = self.session.inputs();
        if inputs.len() != 1 {
            return Err(interface_error(format!(
                "ONNX Runtime sees {} graph inputs ({}), the contract feeds one",
                inputs.len(),
                inputs
                    .iter()
                    .map(|i| i.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let want_in = input_shape(c, 1);
        check_outlet(
            inputs[0].name(),
            inputs[0].dtype(),
            &c.input_name,
            &want_in,
            "input",
        )?;
        let Some(out) = self
            .session
            .outputs()
            .iter()
            .find(|o| o.name() == c.output_name)
        else {
            return Err(interface_error(format!(
                "ONNX Runtime sees no output \"{}\" (outputs: {})",
                c.output_name,
                self.session
                    .outputs()
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        check_outlet(
            out.name(),
            out.dtype(),
            &c.output_name,
            &[1, c.bits],
            "output",
        )
    }

    pub fn bits(&self) -> usize {
        self.contract.bits
    }

    /// Values of one input item (3·S·S for an image model, D for a feature model).
    pub fn item_len(&self) -> usize {
        self.contract.input.item_len()
    }

    /// Runs the network on `n` items (`input` = n × [`ReadyModel::item_len`] values) and packs
    /// each output row: `n × bits/8` bytes, item after item.
    pub fn run(&mut self, input: &[f32], n: usize) -> Result<Vec<u8>, EncoderError> {
        debug_assert_eq!(input.len(), n * self.item_len());
        let bits = self.contract.bits;
        let shape = input_shape(&self.contract, n);
        let ort_error = |what: &str, e: ort::Error| {
            EncoderError::new(
                PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION,
                format!("ONNX Runtime {what} failed: {e}"),
            )
        };
        let _blocked = SignalsBlocked::new();
        let tensor =
            TensorRef::from_array_view((shape, input)).map_err(|e| ort_error("input tensor", e))?;
        let outputs = self
            .session
            .run(ort::inputs![self.contract.input_name.as_str() => tensor])
            .map_err(|e| ort_error("run", e))?;
        let value = outputs.get(&self.contract.output_name).ok_or_else(|| {
            interface_error(format!(
                "the run returned no \"{}\"",
                self.contract.output_name
            ))
        })?;
        let (out_shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| ort_error("output extraction", e))?;
        let rows_ok = out_shape.first() == Some(&(n as i64));
        if !rows_ok || data.len() != n * bits {
            return Err(EncoderError::new(
                PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
                format!(
                    "model \"{}\" returned an output of shape {:?} for {n} item(s); its contract declares {bits} bits per item",
                    self.name,
                    &out_shape[..]
                ),
            )
            .hint("The model's graph does not compute what its metadata declares; re-export it with ics-train."));
        }
        if let Some(pos) = data.iter().position(|v| v.is_nan()) {
            return Err(EncoderError::new(
                PgSqlErrorCode::ERRCODE_FLOATING_POINT_EXCEPTION,
                format!(
                    "model \"{}\" produced NaN (item {}, output {}): a NaN has no sign to pack",
                    self.name,
                    pos / bits + 1,
                    pos % bits
                ),
            )
            .hint("Check the input values and the model's weights."));
        }
        let mut codes = Vec::with_capacity(n * bits / 8);
        for row in data.chunks_exact(bits) {
            codes.extend_from_slice(&pack_signs(row));
        }
        self.runs += 1;
        self.items += n as u64;
        Ok(codes)
    }

    /// A description for `ics_encoder_info()`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.name,
            "sha256": self.sha256,
            "bits": self.contract.bits,
            "input_kind": self.contract.input.kind(),
            "execution_provider": self.provider,
            "reason": self.provider_reason,
            "setting": self.setting.as_str(),
            "intra_op_threads": self.threads,
            "load_ms": (self.load_ms * 1000.0).round() / 1000.0,
            "runs": self.runs,
            "items": self.items,
        })
    }
}

fn check_outlet(
    name: &str,
    dtype: &ValueType,
    want_name: &str,
    want_dims: &[usize],
    role: &str,
) -> Result<(), EncoderError> {
    if name != want_name {
        return Err(interface_error(format!(
            "ONNX Runtime sees the graph {role} \"{name}\", the contract names \"{want_name}\""
        )));
    }
    if dtype.tensor_type() != Some(TensorElementType::Float32) {
        return Err(interface_error(format!(
            "graph {role} \"{name}\" is {dtype}, not a float tensor"
        )));
    }
    if let Some(shape) = dtype.tensor_shape() {
        let fits = shape.len() == want_dims.len()
            && shape
                .iter()
                .zip(want_dims)
                .skip(1)
                .all(|(&got, &want)| got < 0 || got as usize == want);
        if !fits {
            return Err(interface_error(format!(
                "graph {role} \"{name}\" has shape {shape}, the contract says N x {}",
                want_dims[1..]
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(" x ")
            )));
        }
    }
    Ok(())
}

pub type Entry = Rc<RefCell<ReadyModel>>;

struct Cache {
    entries: Vec<Entry>,
    clock: u64,
}

thread_local! {
    static CACHE: RefCell<Cache> = const { RefCell::new(Cache { entries: Vec::new(), clock: 0 }) };
}

/// The ready model for `sha256` under the current settings, building it (with the bytes from
/// `fetch`) when it is not cached.
pub fn get(
    name: &str,
    sha256: &str,
    fetch: impl FnOnce() -> Result<Vec<u8>, EncoderError>,
) -> Result<Entry, EncoderError> {
    let setting = gucs::execution_provider();
    let threads = gucs::intra_op_threads();
    let found = CACHE.with_borrow_mut(|c| {
        c.clock += 1;
        let clock = c.clock;
        c.entries
            .iter()
            .find(|e| {
                let m = e.borrow();
                m.sha256 == sha256 && m.setting == setting && m.threads == threads
            })
            .inspect(|e| e.borrow_mut().last_used = clock)
            .cloned()
    });
    if let Some(e) = found {
        return Ok(e);
    }
    let bytes = fetch()?;
    let model = ReadyModel::build(name, sha256, &bytes, setting, threads)?;
    pgrx::debug1!(
        "ics_hash: model \"{}\" (sha256 {}) runs on {} with {} intra-op thread(s) ({})",
        model.name,
        &model.sha256[..12],
        model.provider,
        threads,
        model.provider_reason
    );
    Ok(insert(model))
}

/// Adds a model to the cache (evicting the least recently used beyond the bound).
pub fn insert(mut model: ReadyModel) -> Entry {
    let limit = gucs::session_cache_size();
    CACHE.with_borrow_mut(|c| {
        c.clock += 1;
        model.last_used = c.clock;
        c.entries.retain(|e| {
            let m = e.borrow();
            !(m.sha256 == model.sha256 && m.setting == model.setting && m.threads == model.threads)
        });
        while c.entries.len() >= limit {
            let oldest = c
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.borrow().last_used)
                .map(|(i, _)| i)
                .expect("non-empty");
            c.entries.remove(oldest);
        }
        let entry = Rc::new(RefCell::new(model));
        c.entries.push(entry.clone());
        entry
    })
}

/// Drops every cached session of the model with this sha256 (after `ics_model_drop`).
pub fn evict(sha256: &str) {
    CACHE.with_borrow_mut(|c| c.entries.retain(|e| e.borrow().sha256 != sha256));
}

/// Descriptions of the cached models, most recently used first.
pub fn describe_all() -> Vec<serde_json::Value> {
    CACHE.with_borrow(|c| {
        let mut v: Vec<_> = c.entries.iter().collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.borrow().last_used));
        v.iter().map(|e| e.borrow().describe()).collect()
    })
}

/// sha256 in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    to_hex(&Sha256::digest(bytes))
}
