//! A model ready to encode: its contract (parsed from the bytes, which are proved
//! self-contained first), its operators checked ([`crate::operators`]), an ONNX Runtime session whose inputs and outputs were checked
//! against the contract, and a measured memory profile. [`EncoderSession::run`] is the one
//! path from an input tensor to packed codes: run (cancellable, within the memory limit),
//! check the output's shape and values, pack the signs.

use std::time::Instant;

use crate::contract::{ModelContract, ModelInput};
use ics_codes::code::pack_signs;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::cancel::{self, Interrupt};
use crate::error::{Cause, EncoderError, ErrorKind};
use crate::memory;
use crate::operators::{check_operators, OperatorPolicy};
use crate::runtime::{self, CudaOptions, ProviderSetting, Runtime, CUDA_PROVIDER};
use crate::signals::SignalsBlocked;

/// How to build a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    pub provider: ProviderSetting,
    /// The caller's name for the provider setting, for messages.
    pub provider_setting_name: &'static str,
    /// Intra-op threads (the caller bounds them).
    pub threads: usize,
    /// Bytes ONNX Runtime may hold in this process while the session is built and measured.
    pub memory_limit: usize,
}

/// What a session costs in [`crate::memory`]'s counting allocator, measured when it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryProfile {
    /// Bytes the session holds between runs (weights, prepacked kernels).
    pub resident: usize,
    /// Peak bytes a run allocates on top of `resident`, as `fixed + n * per_item` for n items.
    pub run_fixed: usize,
    pub run_per_item: usize,
}

impl MemoryProfile {
    /// Predicted peak bytes ONNX Runtime allocates for a run of `n` items.
    pub fn run_bytes(&self, n: usize) -> usize {
        self.run_fixed
            .saturating_add(n.saturating_mul(self.run_per_item))
    }
}

/// Seconds one ONNX Runtime run should take at most. A cancel, a statement timeout or a
/// terminate stops a run only between two nodes, so the longest node decides how long a stop
/// waits; a node's time grows with the items in its run, so runs are capped at the items the
/// trial runs at build say fit in this time ([`items_per_run`]).
pub const RUN_SECONDS: f64 = 0.25;

/// The most items one run may take when an item costs `per_item` seconds, so that a run stays
/// within `target` seconds: at least one (a single item's cost is bounded by the model's
/// allowed operators, [`crate::operators`]).
pub fn items_per_run(per_item: f64, target: f64) -> usize {
    if per_item.is_nan() || per_item <= 0.0 {
        return usize::MAX;
    }
    // `as` saturates: a tiny per-item cost gives usize::MAX.
    ((target / per_item).floor() as usize).max(1)
}

/// The spans of `n` items run by runs of at most `cap` items each (none for no items).
pub fn run_spans(n: usize, cap: usize) -> Vec<std::ops::Range<usize>> {
    let cap = cap.max(1);
    (0..n)
        .step_by(cap)
        .map(|start| start..(start + cap).min(n))
        .collect()
}

/// A model ready to run.
pub struct EncoderSession {
    pub contract: ModelContract,
    session: Session,
    /// [`runtime::CUDA_PROVIDER`] or [`runtime::CPU_PROVIDER`], and why.
    pub provider: &'static str,
    pub provider_reason: String,
    pub setting: ProviderSetting,
    pub threads: usize,
    /// A CUDA session's device memory arena limit in bytes (`None`: CPU, or no limit).
    pub device_memory_limit: Option<usize>,
    /// Milliseconds to build the session (parse, optimise, allocate, measure).
    pub load_ms: f64,
    pub profile: MemoryProfile,
    /// The most items one ONNX Runtime run takes ([`RUN_SECONDS`]); longer inputs run in
    /// several runs, with the same codes (items never see each other).
    pub max_items_per_run: usize,
    /// Seconds per item measured at build: the least of the trial runs' times over their
    /// items (fixed costs included, so at least the cost an item adds to a run).
    pub seconds_per_item: f64,
    pub runs: u64,
    pub items: u64,
    /// Operator types the model needed its policy for (outside
    /// [`crate::operators::ALLOWED`], or in a form only the policy accepts): a caller keeping
    /// sessions re-checks them against its policy of the moment.
    pub operators_beyond_list: Vec<String>,
}

fn interface_error(message: String) -> EncoderError {
    EncoderError::new(ErrorKind::InvalidModel, format!("invalid model: {message}"))
        .because(Cause::Interface)
}

fn ort_error(what: &str, e: ort::Error) -> EncoderError {
    if memory::take_refused() {
        return over_limit(&format!("ONNX Runtime {what} ({e})"));
    }
    EncoderError::new(
        ErrorKind::Runtime,
        format!("ONNX Runtime {what} failed: {e}"),
    )
}

fn over_limit(what: &str) -> EncoderError {
    let s = memory::stats();
    EncoderError::new(
        ErrorKind::OutOfMemory,
        format!(
            "{what} needed more memory than the encoder's limit of {:.1} MB allows",
            s.limit as f64 / (1 << 20) as f64
        ),
    )
    .because(Cause::MemoryLimit { limit: s.limit })
}

impl EncoderSession {
    /// Parses and checks the contract of `bytes` (refusing external data), builds the session,
    /// checks its interface and measures its memory and time with blank runs (of one and two
    /// items, then two again), which also starts a CUDA provider's threads while signals are
    /// blocked.
    pub fn build(
        rt: &Runtime,
        bytes: &[u8],
        opts: SessionOptions,
    ) -> Result<EncoderSession, EncoderError> {
        Self::build_with(rt, bytes, opts, &CudaOptions::default())
    }

    /// [`EncoderSession::build`] on the caller's CUDA terms ([`CudaOptions`]: a refusal, an
    /// arena limit).
    pub fn build_with(
        rt: &Runtime,
        bytes: &[u8],
        opts: SessionOptions,
        cuda: &CudaOptions,
    ) -> Result<EncoderSession, EncoderError> {
        Self::build_checked(rt, bytes, opts, cuda, &OperatorPolicy::strict())
    }

    /// [`EncoderSession::build_with`] accepting the operators `policy` adds to
    /// [`crate::operators::ALLOWED`]. Every model's operators are checked before ONNX Runtime
    /// sees it ([`crate::operators`]: every run must be stoppable).
    pub fn build_checked(
        rt: &Runtime,
        bytes: &[u8],
        opts: SessionOptions,
        cuda: &CudaOptions,
        policy: &OperatorPolicy,
    ) -> Result<EncoderSession, EncoderError> {
        let (contract, model) =
            ModelContract::from_onnx(bytes).map_err(|e| EncoderError::from(&e))?;
        let operators_beyond_list =
            check_operators(&model, policy).map_err(|e| EncoderError::from(&e))?;
        drop(model);
        let started = Instant::now();
        memory::set_limit(opts.memory_limit);
        memory::take_refused();
        let before = memory::stats().live;
        let built = runtime::build_session_with(
            rt,
            bytes,
            opts.threads,
            opts.provider,
            opts.provider_setting_name,
            cuda,
        )
        .map_err(|e| {
            if memory::take_refused() {
                over_limit("loading the model's weights")
            } else {
                e
            }
        })?;
        let mut s = EncoderSession {
            contract,
            session: built.session,
            provider: built.provider,
            provider_reason: built.reason,
            setting: opts.provider,
            threads: opts.threads,
            device_memory_limit: built.device_memory_limit,
            load_ms: 0.0,
            profile: MemoryProfile::default(),
            max_items_per_run: usize::MAX,
            seconds_per_item: 0.0,
            runs: 0,
            items: 0,
            operators_beyond_list,
        };
        s.check_interface()?;
        let _blocked = SignalsBlocked::new();
        let (one, one_secs) = s.measure_run(1)?;
        let (two, two_secs) = s.measure_run(2)?;
        // Every run's time over its items is at least the cost of an item; the first runs
        // also pay one-time costs (first touches of memory, kernel choice, CUDA set-up), so a
        // third run, warm, gives the closest bound.
        let (_, warm_secs) = s.measure_run(2)?;
        s.seconds_per_item = one_secs.min(two_secs / 2.0).min(warm_secs / 2.0);
        s.max_items_per_run = items_per_run(s.seconds_per_item, RUN_SECONDS);
        let per_item = two.saturating_sub(one).max(one / 2);
        s.profile = MemoryProfile {
            resident: memory::stats().live.saturating_sub(before),
            run_fixed: one.saturating_sub(per_item),
            run_per_item: per_item,
        };
        s.runs = 0;
        s.items = 0;
        s.load_ms = started.elapsed().as_secs_f64() * 1e3;
        Ok(s)
    }

    /// Peak bytes allocated by a run of `n` blank items, and its seconds.
    fn measure_run(&mut self, n: usize) -> Result<(usize, f64), EncoderError> {
        let input = vec![0f32; n * self.item_len()];
        let base = memory::stats().live;
        memory::reset_peak();
        let started = Instant::now();
        self.run(&input, n, None)
            .map_err(|e| e.context(format!("trial run of {n} blank item(s)")))?;
        let secs = started.elapsed().as_secs_f64();
        Ok((memory::stats().peak.saturating_sub(base), secs))
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
        check_outlet(
            inputs[0].name(),
            inputs[0].dtype(),
            &c.input_name,
            &self.input_shape(1),
            "input",
        )?;
        let outputs = self.session.outputs();
        let Some(out) = outputs.iter().find(|o| o.name() == c.output_name) else {
            return Err(interface_error(format!(
                "ONNX Runtime sees no output \"{}\" (outputs: {})",
                c.output_name,
                outputs
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

    /// The statistics of a CUDA session's device memory arena, as ONNX Runtime reports them
    /// (`InUse`, `TotalAllocated`, `MaxInUse`, `Limit`, ... in bytes or counts); `None` for a
    /// CPU session, an error message when ONNX Runtime has none to give.
    pub fn device_memory(&self) -> Option<Result<Vec<(String, String)>, String>> {
        (self.provider == CUDA_PROVIDER).then(|| runtime::device_arena_stats(&self.session))
    }

    pub fn bits(&self) -> usize {
        self.contract.bits
    }

    /// Values of one input item (3·S·S for an image model, D for a feature model).
    pub fn item_len(&self) -> usize {
        self.contract.input.item_len()
    }

    /// The graph input's dimensions for a batch of `n`.
    pub fn input_shape(&self, n: usize) -> Vec<usize> {
        match &self.contract.input {
            ModelInput::Image(p) => vec![n, 3, p.size as usize, p.size as usize],
            ModelInput::Features { dim } => vec![n, *dim],
        }
    }

    /// Runs the network on `n` items (`input` = n × [`EncoderSession::item_len`] values) and
    /// packs each output row: `n × bits/8` bytes, item after item. The run is terminated when
    /// `interrupt` fires ([`ErrorKind::Interrupted`]); an allocation over the memory limit
    /// fails it ([`ErrorKind::OutOfMemory`]).
    pub fn run(
        &mut self,
        input: &[f32],
        n: usize,
        interrupt: Option<Interrupt>,
    ) -> Result<Vec<u8>, EncoderError> {
        let bits = self.contract.bits;
        let values = self.run_values(input, n, interrupt)?;
        let mut codes = Vec::with_capacity(n * bits / 8);
        for row in values.chunks_exact(bits) {
            codes.extend_from_slice(&pack_signs(row));
        }
        Ok(codes)
    }

    /// [`EncoderSession::run`] before packing: the `n × bits` output values, checked (shape as
    /// the contract declares, no NaN). For callers that compare values, like an export check.
    pub fn run_values(
        &mut self,
        input: &[f32],
        n: usize,
        interrupt: Option<Interrupt>,
    ) -> Result<Vec<f32>, EncoderError> {
        if input.len() != n * self.item_len() {
            return Err(EncoderError::new(
                ErrorKind::Internal,
                format!(
                    "input of {} values for {n} items of {}",
                    input.len(),
                    self.item_len()
                ),
            ));
        }
        let bits = self.contract.bits;
        let item = self.item_len();
        let mut data = Vec::with_capacity(n * bits);
        for span in run_spans(n, self.max_items_per_run) {
            let part = &input[span.start * item..span.end * item];
            data.extend(self.run_once(part, span.len(), interrupt)?);
        }
        if let Some(pos) = data.iter().position(|v| v.is_nan()) {
            let (item, output) = (pos / bits, pos % bits);
            return Err(EncoderError::new(
                ErrorKind::NotANumber,
                format!(
                    "produced NaN (item {}, output {output}): a NaN has no sign to pack",
                    item + 1
                ),
            )
            .because(Cause::NotANumber { item, output }));
        }
        self.items += n as u64;
        Ok(data)
    }

    /// One ONNX Runtime run of `n` items: the output values, their count checked (NaN is
    /// checked by the caller, over all runs).
    fn run_once(
        &mut self,
        input: &[f32],
        n: usize,
        interrupt: Option<Interrupt>,
    ) -> Result<Vec<f32>, EncoderError> {
        let bits = self.contract.bits;
        let shape = self.input_shape(n);
        let input_name = self.contract.input_name.clone();
        let output_name = self.contract.output_name.clone();
        memory::take_refused();
        // A CUDA provider may start threads during a run: keep the caller's signals off them
        // (such runs are short; the caller checks for interrupts right after).
        let _blocked = (self.provider == CUDA_PROVIDER).then(SignalsBlocked::new);
        let session = &mut self.session;
        let (outcome, interrupted) = cancel::watched(interrupt, |options| {
            let tensor = TensorRef::from_array_view((shape, input))
                .map_err(|e| ort_error("input tensor", e))?;
            let outputs = session
                .run_with_options(ort::inputs![input_name.as_str() => tensor], options)
                .map_err(|e| ort_error("run", e))?;
            let value = outputs
                .get(&output_name)
                .ok_or_else(|| interface_error(format!("the run returned no \"{output_name}\"")))?;
            let (out_shape, data) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| ort_error("output extraction", e))?;
            Ok::<_, EncoderError>((out_shape.to_vec(), data.to_vec()))
        })?;
        if interrupted {
            return Err(EncoderError::new(
                ErrorKind::Interrupted,
                "the network run was interrupted",
            ));
        }
        let (out_shape, data) = outcome?;
        let rows_ok = out_shape.first() == Some(&(n as i64));
        if !rows_ok || data.len() != n * bits {
            return Err(EncoderError::new(
                ErrorKind::BadOutput,
                format!(
                    "returned an output of shape {out_shape:?} for {n} item(s); its contract declares {bits} bits per item"
                ),
            )
            .because(Cause::Output {
                shape: out_shape,
                items: n,
                bits,
            }));
        }
        self.runs += 1;
        Ok(data)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_keeps_a_run_within_its_time() {
        // 10 ms an item: 25 items in 0.25 s.
        assert_eq!(items_per_run(0.01, 0.25), 25);
        // A slow item still runs, alone.
        assert_eq!(items_per_run(3.0, 0.25), 1);
        // Unmeasurably fast (or not measured): no cap.
        assert_eq!(items_per_run(0.0, 0.25), usize::MAX);
        assert_eq!(items_per_run(f64::NAN, 0.25), usize::MAX);
        assert_eq!(items_per_run(1e-300, 0.25), usize::MAX);
    }

    #[test]
    fn spans_split_a_batch_in_order() {
        assert_eq!(run_spans(10, 3), vec![0..3, 3..6, 6..9, 9..10]);
        assert_eq!(run_spans(6, 3), vec![0..3, 3..6]);
        assert_eq!(run_spans(5, usize::MAX), vec![0..5]);
        assert_eq!(run_spans(4, 0), vec![0..1, 1..2, 2..3, 3..4]);
        assert!(run_spans(0, 3).is_empty());
    }
}
