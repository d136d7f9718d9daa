//! Many images through one session within a memory limit: headers first (each image's
//! decoding cost, nothing allocated), then chunks sized so that the input tensor, the images
//! being decoded and the network run together stay under the limit, each chunk decoded in
//! parallel into the input tensor and run once.
//!
//! A pipeline ([`Pipeline`]): while chunk k runs through the network on the caller's thread,
//! chunk k+1 is decoded on the pool, where the memory limit has room for both ([`Schedule`];
//! else one after the other). On a GPU the network waits for decoding otherwise.
//!
//! Decoding runs on a thread pool (one per thread count, per calling thread, started with
//! signals blocked) over byte slices the caller has already read: plain Rust memory, no call
//! into the caller. Every image checks the caller's [`Interrupt`] and the pipeline's cancelled
//! flag before it starts, so a cancel or a failure stops a batch within one image's decoding
//! time.
//!
//! An image that cannot be decoded fails the batch ([`OnError::Error`]) or gets no code
//! ([`OnError::Skip`]).

use std::cell::RefCell;
use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};

use crate::contract::ModelInput;
use crate::decode::decode_memory_bound;
use crate::preprocess::preprocess_into;
use rayon::prelude::*;

use crate::cancel::{Interrupt, POLL};
use crate::error::{Cause, EncoderError, ErrorKind};
use crate::image_error::PreprocessError;
use crate::memory;
use crate::session::EncoderSession;
use crate::signals::SignalsBlocked;

/// Bytes left free under the limit for what no plan sees (small buffers, bookkeeping).
pub const SLACK: usize = 2 << 20;

/// How to encode a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Most images in one network run.
    pub batch_size: usize,
    /// Threads that decode images.
    pub threads: usize,
    /// Largest image (width x height) decoded.
    pub max_pixels: u64,
    /// Bytes the encoder may hold in all: ONNX Runtime's (sessions and runs) plus the input
    /// tensor and the images being decoded.
    pub memory_limit: usize,
    pub interrupt: Option<Interrupt>,
}

/// A failed batch: the error and, when one image caused it, that image's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchError {
    pub index: Option<usize>,
    pub error: EncoderError,
}

impl From<EncoderError> for BatchError {
    fn from(error: EncoderError) -> Self {
        BatchError { index: None, error }
    }
}

fn interrupted() -> EncoderError {
    EncoderError::new(ErrorKind::Interrupted, "image decoding was interrupted")
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / (1 << 20) as f64)
}

/// The memory a chunk needs: `costs` are the decoding costs of its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkNeed {
    pub input: usize,
    pub decoding: usize,
    pub run: usize,
}

impl ChunkNeed {
    /// Peak bytes: the input tensor lives through both phases; decoding and the run do not
    /// overlap.
    pub fn total(&self) -> usize {
        self.input + self.decoding.max(self.run)
    }
}

/// What a chunk of images with decoding `costs` needs when `threads` decode at once and each
/// item has `item_bytes` of input and `out_bytes` of output.
pub fn chunk_need(
    session: &EncoderSession,
    costs: &[usize],
    threads: usize,
    item_bytes: usize,
    out_bytes: usize,
) -> ChunkNeed {
    let n = costs.len();
    let mut sorted: Vec<usize> = costs.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let decoding = sorted.iter().take(threads.max(1)).sum();
    ChunkNeed {
        input: n * item_bytes,
        decoding,
        run: session.profile.run_bytes(n) + n * out_bytes,
    }
}

/// Splits images with decoding `costs` into chunks of at most `batch_size` that fit
/// `available` bytes. Fails with the index of an image that does not fit on its own.
pub fn plan_chunks(
    costs: &[usize],
    batch_size: usize,
    available: usize,
    need: impl Fn(&[usize]) -> ChunkNeed,
) -> Result<Vec<Range<usize>>, (usize, ChunkNeed)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < costs.len() {
        let one = need(&costs[start..start + 1]);
        if one.total() > available {
            return Err((start, one));
        }
        let mut end = start + 1;
        while end < costs.len()
            && end - start < batch_size.max(1)
            && need(&costs[start..end + 1]).total() <= available
        {
            end += 1;
        }
        chunks.push(start..end);
        start = end;
    }
    Ok(chunks)
}

thread_local! {
    static POOL: RefCell<Option<(usize, rayon::ThreadPool)>> = const { RefCell::new(None) };
}

fn with_pool<R>(threads: usize, f: impl FnOnce(&rayon::ThreadPool) -> R) -> Option<R> {
    POOL.with_borrow_mut(|slot| {
        if slot.as_ref().map(|(n, _)| *n) != Some(threads) {
            *slot = None;
            let _blocked = SignalsBlocked::new();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("ics_hash decode {i}"))
                .build()
                .ok()?;
            *slot = Some((threads, pool));
        }
        slot.as_ref().map(|(_, pool)| f(pool))
    })
}

/// What an image that cannot be decoded does to its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// The batch fails with that image's error (the lowest such image's).
    #[default]
    Error,
    /// The image gets no code; the other images are encoded as if it were not there.
    Skip,
}

/// Whether `e` is an image's own failure: its bytes are not a decodable image, or its header
/// is refused (pixel limit, decoder limits). Errors of the model, of ONNX Runtime, of the
/// memory limit and interrupts are not.
pub fn is_undecodable(e: &EncoderError) -> bool {
    matches!(&*e.cause, Cause::Image(p) if !matches!(p, crate::image_error::PreprocessError::InvalidConfig(_)))
}

/// The order in which a batch's chunks are decoded and run.
///
/// Chunk k+1 is decoded (on the decoding pool) while chunk k runs through the network (on the
/// caller's thread) only when both fit the memory available together: chunk k's input tensor
/// and its run, chunk k+1's input tensor and its decoding. Where they do not (a limit too
/// small for two chunks at once), chunk k+1 is decoded after chunk k's run, in the order of a
/// batch without a pipeline, which always fits: every chunk fits on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub chunks: Vec<Range<usize>>,
    /// `overlapped[k]`: chunk k is decoded while chunk k-1 runs (never chunk 0).
    pub overlapped: Vec<bool>,
    /// `held[k]`: the bytes outside ONNX Runtime held while chunk k runs: its input tensor,
    /// and when chunk k+1 overlaps, that chunk's input tensor and decoding.
    pub held: Vec<usize>,
}

/// Plans the chunks of items with decoding `costs` (see [`plan_chunks`]) and which of them
/// overlap (see [`Schedule`]).
pub fn schedule(
    costs: &[usize],
    batch_size: usize,
    available: usize,
    need: impl Fn(&[usize]) -> ChunkNeed,
) -> Result<Schedule, (usize, ChunkNeed)> {
    let chunks = plan_chunks(costs, batch_size, available, &need)?;
    let needs: Vec<ChunkNeed> = chunks.iter().map(|c| need(&costs[c.clone()])).collect();
    let overlapped: Vec<bool> = (0..chunks.len())
        .map(|k| {
            k > 0
                && needs[k - 1]
                    .input
                    .saturating_add(needs[k - 1].run)
                    .saturating_add(needs[k].input)
                    .saturating_add(needs[k].decoding)
                    <= available
        })
        .collect();
    let held = (0..chunks.len())
        .map(|k| match overlapped.get(k + 1) {
            Some(true) => needs[k].input + needs[k + 1].input + needs[k + 1].decoding,
            _ => needs[k].input,
        })
        .collect();
    Ok(Schedule {
        chunks,
        overlapped,
        held,
    })
}

/// What a batch gave: the codes of the items that got one, and the items that could not be
/// decoded ([`OnError::Skip`]), with why, ascending.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoded {
    /// One code after another, for every item not in `undecodable`, in item order.
    pub codes: Vec<u8>,
    pub undecodable: Vec<(usize, EncoderError)>,
}

impl Encoded {
    /// The code of each of `n` items (None for an undecodable one), `bytes` bytes each.
    pub fn per_item(&self, n: usize, bytes: usize) -> Vec<Option<&[u8]>> {
        let mut codes = self.codes.chunks_exact(bytes.max(1));
        let mut failed = self.undecodable.iter().map(|(i, _)| *i).peekable();
        (0..n)
            .map(|i| {
                if failed.peek() == Some(&i) {
                    failed.next();
                    None
                } else {
                    codes.next()
                }
            })
            .collect()
    }
}

/// One chunk decoded: its input tensor (the decoded items first, packed) and, per item of the
/// chunk, its error.
struct Decoded {
    input: Vec<f32>,
    errors: Vec<Option<EncoderError>>,
}

/// A batch through decode and run, chunk after chunk, decoding chunk k+1 on a thread pool
/// while chunk k runs on the caller's thread where its [`Schedule`] allows.
///
/// Threads: the caller's thread runs the network and is the only one that calls `run` and
/// `interrupt`'s caller; the pool's threads call `decode` (and `interrupt`, which only reads
/// flags) and nothing of the caller's. The caller's thread checks `interrupt` between chunks
/// and every [`crate::cancel::POLL`] while it waits for a chunk's decoding; when it fires, or
/// when anything fails, a cancelled flag stops the decoders before their next item, and the
/// call returns only once no decoder is at work (the pool's scope ends with its jobs).
pub struct Pipeline<'a> {
    pub schedule: &'a Schedule,
    /// Values of one item's input.
    pub item_len: usize,
    /// Items decoded at once (the pool's threads).
    pub threads: usize,
    pub interrupt: Option<Interrupt>,
    pub on_error: OnError,
    /// Told of each input tensor the pipeline allocates (+bytes) and frees (-bytes); lets
    /// tests count the memory in flight.
    pub meter: Option<&'a (dyn Fn(isize) + Sync)>,
}

/// Sets its flag when dropped, also when unwinding.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Frees (and un-meters) an input tensor.
fn release(meter: Option<&(dyn Fn(isize) + Sync)>, buf: Vec<f32>) {
    if let Some(m) = meter {
        m(-((buf.capacity() * std::mem::size_of::<f32>()) as isize));
    }
    drop(buf);
}

impl Pipeline<'_> {
    /// Runs the batch: `decode(i, out)` preprocesses item i into `out` (on a pool thread; it
    /// must not call into the caller's runtime), `run(input, n, held)` runs the network on n
    /// items and returns their n codes, while `held` bytes outside it are in use (on the
    /// caller's thread). Item indices in errors are the schedule's.
    pub fn run<D, R>(&self, decode: D, mut run: R) -> Result<Encoded, BatchError>
    where
        D: Fn(usize, &mut [f32]) -> Result<(), EncoderError> + Sync,
        R: FnMut(&[f32], usize, usize) -> Result<Vec<u8>, EncoderError>,
    {
        let s = self.schedule;
        let items: usize = s.chunks.iter().map(|c| c.len()).sum();
        let cancelled = AtomicBool::new(false);
        let halt = || cancelled.load(Ordering::Relaxed) || self.interrupt.is_some_and(|f| f());
        let pooled = (self.threads > 1 && items > 1) || s.overlapped.iter().any(|&o| o);
        if pooled {
            let threads = self.threads.max(1);
            let done = with_pool(threads, |pool| {
                pool.in_place_scope(|scope| {
                    let (tx, rx) = mpsc::channel::<Decoded>();
                    let decode = &decode;
                    let halt = &halt;
                    let spawn = |k: usize, buf: Vec<f32>| {
                        let tx = tx.clone();
                        let range = s.chunks[k].clone();
                        let item_len = self.item_len;
                        scope.spawn(move |_| {
                            let _ = tx.send(decode_chunk(range, item_len, buf, decode, halt, true));
                        });
                    };
                    let wait = || loop {
                        match rx.recv_timeout(POLL) {
                            Ok(d) => return Ok(d),
                            Err(RecvTimeoutError::Timeout)
                                if self.interrupt.is_some_and(|f| f()) =>
                            {
                                return Err(BatchError::from(interrupted()))
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => {
                                return Err(EncoderError::new(
                                    ErrorKind::Internal,
                                    "a decoding job ended without its result",
                                )
                                .into())
                            }
                        }
                    };
                    // Whatever happens (a result, an error, a panic of `run`), the decoders
                    // stop before their next item; the scope returns once the job in flight
                    // has.
                    let _stop_decoders = SetOnDrop(&cancelled);
                    self.chunks(&mut run, spawn, wait)
                })
            });
            if let Some(r) = done {
                return r;
            }
            // No pool could be made (threads refused): everything on this thread.
        }
        let pending = RefCell::new(None);
        self.chunks(
            &mut run,
            |k, buf| {
                *pending.borrow_mut() = Some(decode_chunk(
                    s.chunks[k].clone(),
                    self.item_len,
                    buf,
                    &decode,
                    &halt,
                    false,
                ))
            },
            || {
                pending.borrow_mut().take().ok_or_else(|| {
                    EncoderError::new(ErrorKind::Internal, "no chunk decoded").into()
                })
            },
        )
    }

    /// The chunk loop: `start(k, buffer)` starts decoding chunk k into `buffer`, `wait()`
    /// returns the chunk being decoded. Only one chunk is decoded at a time.
    fn chunks<R>(
        &self,
        run: &mut R,
        start: impl Fn(usize, Vec<f32>),
        wait: impl Fn() -> Result<Decoded, BatchError>,
    ) -> Result<Encoded, BatchError>
    where
        R: FnMut(&[f32], usize, usize) -> Result<Vec<u8>, EncoderError>,
    {
        let s = self.schedule;
        let stop = || self.interrupt.is_some_and(|f| f());
        // An input tensor for chunk k: the spare one when it has exactly the size (so that
        // what is held is what was planned), else a new one.
        let meter = self.meter;
        let buffer = |k: usize, spare: Option<Vec<f32>>| {
            let want = s.chunks[k].len() * self.item_len;
            match spare {
                Some(b) if b.capacity() == want => b,
                other => {
                    if let Some(b) = other {
                        release(meter, b);
                    }
                    let b = Vec::<f32>::with_capacity(want);
                    if let Some(m) = meter {
                        m((b.capacity() * std::mem::size_of::<f32>()) as isize);
                    }
                    b
                }
            }
        };
        let mut out = Encoded::default();
        if s.chunks.is_empty() {
            return Ok(out);
        }
        if stop() {
            return Err(interrupted().into());
        }
        start(0, buffer(0, None));
        let mut spare: Option<Vec<f32>> = None;
        for (k, chunk) in s.chunks.iter().enumerate() {
            let Decoded { mut input, errors } = wait()?;
            // Errors first, in item order: an interrupt, a failure of the image's own, or
            // (OnError::Skip) images left without a code.
            let mut ok = 0;
            for (j, e) in errors.into_iter().enumerate() {
                match e {
                    None => {
                        if ok != j {
                            input.copy_within(
                                j * self.item_len..(j + 1) * self.item_len,
                                ok * self.item_len,
                            );
                        }
                        ok += 1;
                    }
                    Some(e) if e.kind == ErrorKind::Interrupted => {
                        release(meter, input);
                        return Err(e.into());
                    }
                    Some(e) if self.on_error == OnError::Skip && is_undecodable(&e) => {
                        out.undecodable.push((chunk.start + j, e));
                    }
                    Some(error) => {
                        release(meter, input);
                        return Err(BatchError {
                            index: Some(chunk.start + j),
                            error,
                        });
                    }
                }
            }
            let next = k + 1 < s.chunks.len();
            if next && s.overlapped[k + 1] {
                start(k + 1, buffer(k + 1, spare.take()));
            } else if let Some(b) = spare.take() {
                release(meter, b);
            }
            if stop() {
                release(meter, input);
                return Err(interrupted().into());
            }
            if ok > 0 {
                match run(&input[..ok * self.item_len], ok, s.held[k]) {
                    Ok(codes) => out.codes.extend_from_slice(&codes),
                    Err(e) => {
                        release(meter, input);
                        return Err(e.into());
                    }
                }
            }
            if next && !s.overlapped[k + 1] {
                // Sequential step: this chunk's tensor goes before the next is decoded.
                release(meter, input);
                start(k + 1, buffer(k + 1, None));
            } else if s.overlapped.get(k + 2) == Some(&true) {
                spare = Some(input);
            } else {
                release(meter, input);
            }
        }
        Ok(out)
    }
}

/// Decodes the items of `range` into `buf` (resized to fit), each after checking `halt`; with
/// `parallel`, on the current rayon pool. A panic while decoding an item is that item's error.
fn decode_chunk<D, H>(
    range: Range<usize>,
    item_len: usize,
    mut buf: Vec<f32>,
    decode: &D,
    halt: &H,
    parallel: bool,
) -> Decoded
where
    D: Fn(usize, &mut [f32]) -> Result<(), EncoderError> + Sync,
    H: Fn() -> bool + Sync,
{
    buf.clear();
    buf.resize(range.len() * item_len, 0.0);
    let one = |(j, out): (usize, &mut [f32])| -> Option<EncoderError> {
        if halt() {
            return Some(interrupted());
        }
        match std::panic::catch_unwind(AssertUnwindSafe(|| decode(range.start + j, out))) {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(EncoderError::new(
                ErrorKind::Internal,
                "decoding the image panicked",
            )),
        }
    };
    let errors = if parallel && range.len() > 1 {
        buf.par_chunks_mut(item_len.max(1))
            .enumerate()
            .map(one)
            .collect()
    } else {
        buf.chunks_mut(item_len.max(1))
            .enumerate()
            .map(one)
            .collect()
    };
    Decoded { input: buf, errors }
}

/// [`decode_memory_bound`] of every image, on the decoding pool for a batch (the JPEG structure
/// walk reads every byte: serially, it would hold up a GPU), checking `stop` before each image.
/// None when `stop` fired.
fn header_costs(
    images: &[&[u8]],
    max_pixels: u64,
    threads: usize,
    stop: &(dyn Fn() -> bool + Sync),
) -> Option<Vec<Result<u64, PreprocessError>>> {
    let one = |img: &&[u8]| (!stop()).then(|| decode_memory_bound(img, max_pixels));
    if threads > 1 && images.len() > 1 {
        if let Some(r) = with_pool(threads, |pool| {
            pool.install(|| images.par_iter().map(one).collect())
        }) {
            return r;
        }
    }
    images.iter().map(one).collect()
}

/// Encodes `images` with `session`, pipelined (see [`Pipeline`]): per image, its code, or with
/// [`OnError::Skip`] none when it cannot be decoded. Indices in errors are the images'.
pub fn encode_each(
    session: &mut EncoderSession,
    images: &[&[u8]],
    opts: &BatchOptions,
    on_error: OnError,
) -> Result<Encoded, BatchError> {
    let ModelInput::Image(p) = session.contract.input else {
        return Err(EncoderError::new(ErrorKind::Internal, "not an image model").into());
    };
    let stop = || opts.interrupt.is_some_and(|f| f());
    // Headers: what decoding each image costs (and the header errors, in order).
    let threads = opts.threads.max(1);
    let headers = header_costs(images, opts.max_pixels, threads, &stop).ok_or_else(interrupted)?;
    let mut costs = Vec::with_capacity(images.len());
    let mut items = Vec::with_capacity(images.len());
    let mut undecodable = Vec::new();
    for (i, header) in headers.into_iter().enumerate() {
        match header {
            Ok(cost) => {
                costs.push(usize::try_from(cost).unwrap_or(usize::MAX));
                items.push(i);
            }
            Err(e) => {
                let error = EncoderError::from(&e);
                if on_error == OnError::Skip && is_undecodable(&error) {
                    undecodable.push((i, error));
                } else {
                    return Err(BatchError {
                        index: Some(i),
                        error,
                    });
                }
            }
        }
    }
    let item_bytes = p.output_len() * std::mem::size_of::<f32>();
    let out_bytes = session.bits() * std::mem::size_of::<f32>() + session.bits() / 8;
    memory::set_limit(opts.memory_limit);
    let held = memory::stats().live;
    let available = opts.memory_limit.saturating_sub(held).saturating_sub(SLACK);
    let plan = schedule(&costs, opts.batch_size, available, |c| {
        chunk_need(session, c, threads, item_bytes, out_bytes)
    })
    .map_err(|(i, need)| BatchError {
        index: Some(items[i]),
        error: EncoderError::new(
            ErrorKind::OutOfMemory,
            format!(
                "encoding this image needs {} (input {}, decoding {}, network run {}), more than the {} the encoder's memory limit of {} leaves",
                mib(need.total()),
                mib(need.input),
                mib(need.decoding),
                mib(need.run),
                mib(available),
                mib(opts.memory_limit)
            ),
        )
        .because(Cause::ImageMemory {
            need: need.total(),
            available,
            limit: opts.memory_limit,
        }),
    })?;
    let pipeline = Pipeline {
        schedule: &plan,
        item_len: p.output_len(),
        threads,
        interrupt: opts.interrupt,
        on_error,
        meter: None,
    };
    let max_pixels = opts.max_pixels;
    let limit = opts.memory_limit;
    let interrupt = opts.interrupt;
    let encoded = pipeline
        .run(
            |j, out| {
                preprocess_into(images[items[j]], &p, max_pixels, out)
                    .map_err(|e| EncoderError::from(&e))
            },
            |input, n, held| {
                // ONNX Runtime gets what the limit leaves beside the tensors and decoding
                // held outside it.
                memory::set_limit(limit.saturating_sub(held));
                let packed = session.run(input, n, interrupt);
                memory::set_limit(limit);
                packed
            },
        )
        .map_err(|e| BatchError {
            index: e.index.map(|j| items[j]),
            error: e.error,
        })?;
    undecodable.extend(encoded.undecodable.into_iter().map(|(j, e)| (items[j], e)));
    undecodable.sort_by_key(|(i, _)| *i);
    Ok(Encoded {
        codes: encoded.codes,
        undecodable,
    })
}

/// Encodes `images` with `session`: `images.len() × bits/8` bytes of codes, image after image;
/// an image that cannot be decoded fails the batch.
pub fn encode_images(
    session: &mut EncoderSession,
    images: &[&[u8]],
    opts: &BatchOptions,
) -> Result<Vec<u8>, BatchError> {
    encode_each(session, images, opts, OnError::Error).map(|e| e.codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(costs: &[usize]) -> ChunkNeed {
        // 10 bytes of input per item, a run of 100 + 20 per item, two decoding threads.
        let mut sorted = costs.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        ChunkNeed {
            input: 10 * costs.len(),
            decoding: sorted.iter().take(2).sum(),
            run: 100 + 20 * costs.len(),
        }
    }

    #[test]
    fn chunks_fit_the_budget_and_the_batch_size() {
        let costs = vec![5; 10];
        // 10 items: input 100, run 300: 400 in all.
        let whole = plan_chunks(&costs, 32, 400, need).unwrap();
        assert_eq!((whole.len(), whole[0].clone()), (1, 0..10));
        assert_eq!(
            plan_chunks(&costs, 4, 400, need),
            Ok(vec![0..4, 4..8, 8..10])
        );
        // 190 allows n with 10n + 100 + 20n <= 190: n = 3.
        assert_eq!(
            plan_chunks(&costs, 32, 190, need),
            Ok(vec![0..3, 3..6, 6..9, 9..10])
        );
        let chunks = plan_chunks(&costs, 3, 1000, need).unwrap();
        assert!(chunks.iter().all(|c| c.len() <= 3));
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 10);
    }

    #[test]
    fn a_large_image_gets_a_chunk_of_its_own_or_an_error() {
        // Image 2 costs 500 to decode: alone it needs 10 + 500; with a neighbour, 525 or more.
        let costs = vec![5, 5, 500, 5];
        assert_eq!(
            plan_chunks(&costs, 32, 520, need),
            Ok(vec![0..2, 2..3, 3..4])
        );
        let (i, n) = plan_chunks(&costs, 32, 400, need).unwrap_err();
        assert_eq!(i, 2);
        assert_eq!(n.total(), 510);
    }

    // The pipeline, without ONNX Runtime: items decode to their own index, a "run" returns
    // each item's first value as its code, and counters stand for memory.

    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    const ITEM: usize = 4;

    /// Memory in flight (bytes) and its peak.
    #[derive(Default)]
    struct Meter {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    impl Meter {
        fn add(&self, d: isize) {
            let now = if d >= 0 {
                self.now.fetch_add(d as usize, Ordering::SeqCst) + d as usize
            } else {
                self.now.fetch_sub((-d) as usize, Ordering::SeqCst) - (-d) as usize
            };
            self.peak.fetch_max(now, Ordering::SeqCst);
        }
    }

    /// The planning model of the pipeline tests: input 16 bytes per item (ITEM f32s), a run of
    /// 100 + 20 per item, `threads` images decoding at once.
    fn model(costs: &[usize], threads: usize) -> ChunkNeed {
        let mut sorted = costs.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        ChunkNeed {
            input: ITEM * 4 * costs.len(),
            decoding: sorted.iter().take(threads).sum(),
            run: 100 + 20 * costs.len(),
        }
    }

    /// Decodes item i as [i, i, i, i]; fails items in `bad` as corrupt images.
    fn fill(i: usize, out: &mut [f32], bad: &[usize]) -> Result<(), EncoderError> {
        if bad.contains(&i) {
            return Err(EncoderError::from(
                &crate::image_error::PreprocessError::Corrupt {
                    format: "PNG".into(),
                    detail: format!("item {i}"),
                },
            ));
        }
        out.fill(i as f32);
        Ok(())
    }

    /// A run's codes: each item's first value, as 2 bytes.
    fn codes_of(input: &[f32], n: usize) -> Vec<u8> {
        assert_eq!(input.len(), n * ITEM);
        input
            .chunks_exact(ITEM)
            .flat_map(|x| (x[0] as u16).to_le_bytes())
            .collect()
    }

    fn pipeline(s: &Schedule, threads: usize, on_error: OnError) -> Pipeline<'_> {
        Pipeline {
            schedule: s,
            item_len: ITEM,
            threads,
            interrupt: None,
            on_error,
            meter: None,
        }
    }

    fn items_of(e: &Encoded) -> Vec<u16> {
        e.codes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn the_pipeline_keeps_the_order_whatever_the_threads() {
        let costs = vec![5; 100];
        for threads in [1, 2, 3, 8] {
            let s = schedule(&costs, 7, usize::MAX, |c| model(c, threads)).unwrap();
            assert_eq!(s.chunks.len(), 15);
            assert!(
                s.overlapped[1..].iter().all(|&o| o),
                "a large limit overlaps every chunk"
            );
            let runs = Mutex::new(Vec::new());
            let out = pipeline(&s, threads, OnError::Error)
                .run(
                    |i, o| fill(i, o, &[]),
                    |input, n, _| {
                        runs.lock().unwrap().push(n);
                        Ok(codes_of(input, n))
                    },
                )
                .unwrap();
            assert_eq!(
                items_of(&out),
                (0..100).collect::<Vec<u16>>(),
                "{threads} threads"
            );
            assert_eq!(runs.into_inner().unwrap().iter().sum::<usize>(), 100);
            assert!(out.undecodable.is_empty());
        }
    }

    #[test]
    fn an_undecodable_item_fails_the_batch_or_gets_no_code() {
        let costs = vec![5; 40];
        let s = schedule(&costs, 7, usize::MAX, |c| model(c, 2)).unwrap();
        // Items 23 and 25 are in chunk 3 (21..28): chunks 0-2 run, then the error names 23.
        let runs = AtomicUsize::new(0);
        let err = pipeline(&s, 2, OnError::Error)
            .run(
                |i, o| fill(i, o, &[25, 23]),
                |input, n, _| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(codes_of(input, n))
                },
            )
            .unwrap_err();
        assert_eq!(err.index, Some(23));
        assert_eq!(err.error.kind, ErrorKind::InvalidBinary);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        // Skip: every other item keeps its place.
        let out = pipeline(&s, 2, OnError::Skip)
            .run(
                |i, o| fill(i, o, &[25, 23, 0, 39]),
                |input, n, _| Ok(codes_of(input, n)),
            )
            .unwrap();
        let want: Vec<u16> = (0..40).filter(|i| ![0, 23, 25, 39].contains(i)).collect();
        assert_eq!(items_of(&out), want);
        let failed: Vec<usize> = out.undecodable.iter().map(|(i, _)| *i).collect();
        assert_eq!(failed, vec![0, 23, 25, 39]);
        let per = out.per_item(40, 2);
        assert!(per[0].is_none() && per[23].is_none() && per[39].is_none());
        assert_eq!(per[24], Some(&[24u8, 0][..]));
        // A whole chunk of undecodable items runs nothing for it.
        let bad: Vec<usize> = (7..14).collect();
        let runs = AtomicUsize::new(0);
        let out = pipeline(&s, 2, OnError::Skip)
            .run(
                |i, o| fill(i, o, &bad),
                |input, n, _| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(codes_of(input, n))
                },
            )
            .unwrap();
        assert_eq!(out.undecodable.len(), 7);
        assert_eq!(runs.load(Ordering::SeqCst), 5);
        // What is not the image's own (here: a panic, an internal error) fails the batch
        // even with Skip.
        let err = pipeline(&s, 2, OnError::Skip)
            .run(
                |i, o| {
                    if i == 9 {
                        panic!("a decoder bug");
                    }
                    fill(i, o, &[])
                },
                |input, n, _| Ok(codes_of(input, n)),
            )
            .unwrap_err();
        assert_eq!((err.index, err.error.kind), (Some(9), ErrorKind::Internal));
    }

    #[test]
    fn a_failed_run_stops_the_batch_and_its_decoders() {
        let costs = vec![5; 70];
        let s = schedule(&costs, 7, usize::MAX, |c| model(c, 3)).unwrap();
        let decoding = AtomicUsize::new(0);
        let decoded = AtomicUsize::new(0);
        let runs = AtomicUsize::new(0);
        let err = pipeline(&s, 3, OnError::Error)
            .run(
                |i, o| {
                    decoding.fetch_add(1, Ordering::SeqCst);
                    decoded.fetch_add(1, Ordering::SeqCst);
                    let r = fill(i, o, &[]);
                    decoding.fetch_sub(1, Ordering::SeqCst);
                    r
                },
                |input, n, _| {
                    if runs.fetch_add(1, Ordering::SeqCst) == 2 {
                        return Err(EncoderError::new(ErrorKind::Runtime, "run failed"));
                    }
                    Ok(codes_of(input, n))
                },
            )
            .unwrap_err();
        assert_eq!((err.index, err.error.kind), (None, ErrorKind::Runtime));
        // Chunks 0-2 decoded, and at most chunk 3 (overlapping the failed run) after them.
        assert!(
            decoded.load(Ordering::SeqCst) <= 28,
            "{}",
            decoded.load(Ordering::SeqCst)
        );
        assert_eq!(
            decoding.load(Ordering::SeqCst),
            0,
            "no decoder at work after the call"
        );
    }

    #[test]
    fn the_memory_in_flight_stays_within_the_plan() {
        // Costs of 1 to 400 bytes; limits from room for one small chunk to room for all.
        let costs: Vec<usize> = (0..120).map(|i| 1 + (i * 7919) % 400).collect();
        for threads in [1, 2, 4] {
            for available in [1_000, 1_500, 2_500, 5_000, 20_000] {
                let need = |c: &[usize]| model(c, threads);
                let s = schedule(&costs, 16, available, need).unwrap();
                let meter = Meter::default();
                let metered = |d: isize| meter.add(d);
                let p = Pipeline {
                    meter: Some(&metered),
                    ..pipeline(&s, threads, OnError::Error)
                };
                let held_ok = AtomicBool::new(true);
                let out = p
                    .run(
                        |i, o| {
                            meter.add(costs[i] as isize);
                            let r = fill(i, o, &[]);
                            meter.add(-(costs[i] as isize));
                            r
                        },
                        |input, n, held| {
                            // What the pipeline says it holds covers what is held outside
                            // the run (tensors and decoding in flight).
                            if meter.now.load(Ordering::SeqCst) > held {
                                held_ok.store(false, Ordering::SeqCst);
                            }
                            let run = (100 + 20 * n) as isize;
                            meter.add(run);
                            let c = codes_of(input, n);
                            meter.add(-run);
                            Ok(c)
                        },
                    )
                    .unwrap();
                assert_eq!(items_of(&out).len(), 120);
                let peak = meter.peak.load(Ordering::SeqCst);
                assert!(
                    peak <= available,
                    "{threads} threads, {available}: peak {peak}"
                );
                assert!(
                    held_ok.load(Ordering::SeqCst),
                    "{threads} threads, {available}"
                );
                assert_eq!(meter.now.load(Ordering::SeqCst), 0, "every tensor freed");
                let overlaps = s.overlapped.iter().filter(|&&o| o).count();
                if available >= 20_000 {
                    assert_eq!(overlaps, s.chunks.len() - 1);
                }
            }
        }
        // A limit with room for one chunk but not two: chunks of 12 (16 * 12 + 400 <= 600),
        // none overlapping (192 + 340 + 192 + 400 > 600), still every code in order.
        let costs = vec![400; 50];
        let s = schedule(&costs, 64, 600, |c| model(c, 1)).unwrap();
        assert_eq!(s.chunks[0], 0..12);
        assert!(s.overlapped.iter().all(|&o| !o));
        let out = pipeline(&s, 1, OnError::Error)
            .run(|i, o| fill(i, o, &[]), |input, n, _| Ok(codes_of(input, n)))
            .unwrap();
        assert_eq!(items_of(&out), (0..50).collect::<Vec<u16>>());
    }

    static CANCEL: AtomicBool = AtomicBool::new(false);
    fn cancel_requested() -> bool {
        CANCEL.load(Ordering::SeqCst)
    }

    #[test]
    fn a_cancel_stops_the_pipeline_within_a_chunk() {
        let costs = vec![5; 200];
        let threads = 3;
        let s = schedule(&costs, 8, usize::MAX, |c| model(c, threads)).unwrap();
        // The cancel arrives while item 50 (chunk 6) decodes, then while the pipeline waits
        // for a slow decoder, then while a run is in progress.
        for (when, slow) in [(50, false), (50, true), (1000, false)] {
            CANCEL.store(false, Ordering::SeqCst);
            let after = AtomicUsize::new(0);
            let decoding = AtomicUsize::new(0);
            let runs_after = AtomicUsize::new(0);
            let p = Pipeline {
                interrupt: Some(cancel_requested),
                ..pipeline(&s, threads, OnError::Error)
            };
            let err = p
                .run(
                    |i, o| {
                        decoding.fetch_add(1, Ordering::SeqCst);
                        if CANCEL.load(Ordering::SeqCst) {
                            after.fetch_add(1, Ordering::SeqCst);
                        }
                        if i == when {
                            CANCEL.store(true, Ordering::SeqCst);
                            if slow {
                                std::thread::sleep(std::time::Duration::from_millis(50));
                            }
                        }
                        let r = fill(i, o, &[]);
                        decoding.fetch_sub(1, Ordering::SeqCst);
                        r
                    },
                    |input, n, _| {
                        if CANCEL.load(Ordering::SeqCst) {
                            runs_after.fetch_add(1, Ordering::SeqCst);
                        }
                        if when == 1000 && input[0] == 80.0 {
                            CANCEL.store(true, Ordering::SeqCst);
                        }
                        Ok(codes_of(input, n))
                    },
                )
                .unwrap_err();
            assert_eq!((err.index, err.error.kind), (None, ErrorKind::Interrupted));
            // Each decoding thread finishes at most the item it had started.
            assert!(
                after.load(Ordering::SeqCst) <= threads,
                "{when} {slow}: {}",
                after.load(Ordering::SeqCst)
            );
            // (a run that started as the cancel came is terminated by the run watcher)
            assert!(
                runs_after.load(Ordering::SeqCst) <= 1,
                "no run after the cancel"
            );
            assert_eq!(
                decoding.load(Ordering::SeqCst),
                0,
                "no decoder at work after the call"
            );
        }
        CANCEL.store(false, Ordering::SeqCst);
    }
}
