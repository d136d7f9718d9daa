//! Many images through one session within a memory limit: headers first (each image's
//! decoding cost, nothing allocated), then chunks sized so that the input tensor, the images
//! being decoded and the network run together stay under the limit, each chunk decoded in
//! parallel into the input tensor and run once.
//!
//! Decoding runs on a thread pool (one per thread count, per process, started with signals
//! blocked) over byte slices the caller has already read: plain Rust memory, no call into the
//! caller. Every image checks the caller's [`Interrupt`] before it starts, so a cancel stops a
//! batch within one image's decoding time.

use std::cell::RefCell;

use crate::contract::ModelInput;
use crate::decode::decode_memory_bound;
use crate::preprocess::{preprocess_into, Preprocess};
use rayon::prelude::*;

use crate::cancel::Interrupt;
use crate::error::{Cause, EncoderError, ErrorKind};
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
) -> Result<Vec<std::ops::Range<usize>>, (usize, ChunkNeed)> {
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

/// Preprocesses `images` into `out` (`images.len() × p.output_len()` values) with up to
/// `threads` threads, checking `interrupt` before each image. On failure, the first failing
/// image (lowest index) and its error.
pub fn preprocess_batch(
    images: &[&[u8]],
    p: &Preprocess,
    max_pixels: u64,
    threads: usize,
    interrupt: Option<Interrupt>,
    out: &mut [f32],
) -> Result<(), (usize, EncoderError)> {
    let item = p.output_len();
    assert_eq!(out.len(), images.len() * item, "output buffer size");
    let one = |(i, (img, o)): (usize, (&&[u8], &mut [f32]))| {
        if interrupt.is_some_and(|f| f()) {
            return Err((i, interrupted()));
        }
        preprocess_into(img, p, max_pixels, o).map_err(|e| (i, EncoderError::from(&e)))
    };
    if threads > 1 && images.len() > 1 {
        let results = with_pool(threads, |pool| {
            pool.install(|| {
                images
                    .par_iter()
                    .zip(out.par_chunks_mut(item))
                    .enumerate()
                    .map(one)
                    .collect::<Vec<_>>()
            })
        });
        if let Some(results) = results {
            return results.into_iter().collect();
        }
        // No pool could be made (threads refused): decode on this thread.
    }
    images
        .iter()
        .zip(out.chunks_mut(item))
        .enumerate()
        .try_for_each(one)
}

/// Encodes `images` with `session`: `images.len() × bits/8` bytes of codes, image after image.
pub fn encode_images(
    session: &mut EncoderSession,
    images: &[&[u8]],
    opts: &BatchOptions,
) -> Result<Vec<u8>, BatchError> {
    let ModelInput::Image(p) = session.contract.input else {
        return Err(EncoderError::new(ErrorKind::Internal, "not an image model").into());
    };
    let stop = || opts.interrupt.is_some_and(|f| f());
    // Headers: what decoding each image costs (and the header errors, in order).
    let mut costs = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        if i % 64 == 0 && stop() {
            return Err(interrupted().into());
        }
        let cost = decode_memory_bound(img, opts.max_pixels).map_err(|e| BatchError {
            index: Some(i),
            error: EncoderError::from(&e),
        })?;
        costs.push(usize::try_from(cost).unwrap_or(usize::MAX));
    }
    let item_bytes = p.output_len() * std::mem::size_of::<f32>();
    let out_bytes = session.bits() * std::mem::size_of::<f32>() + session.bits() / 8;
    let threads = opts.threads.max(1);
    memory::set_limit(opts.memory_limit);
    let held = memory::stats().live;
    let available = opts.memory_limit.saturating_sub(held).saturating_sub(SLACK);
    let chunks = plan_chunks(&costs, opts.batch_size, available, |c| {
        chunk_need(session, c, threads, item_bytes, out_bytes)
    })
    .map_err(|(i, need)| BatchError {
        index: Some(i),
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
    let bytes_per_code = session.bits() / 8;
    let mut codes = Vec::with_capacity(images.len() * bytes_per_code);
    let mut input: Vec<f32> = Vec::new();
    for chunk in chunks {
        let n = chunk.len();
        input.clear();
        input.resize(n * p.output_len(), 0.0);
        preprocess_batch(
            &images[chunk.clone()],
            &p,
            opts.max_pixels,
            threads,
            opts.interrupt,
            &mut input,
        )
        .map_err(|(i, error)| BatchError {
            index: (error.kind != ErrorKind::Interrupted).then_some(chunk.start + i),
            error,
        })?;
        if stop() {
            return Err(interrupted().into());
        }
        // ONNX Runtime gets what the limit leaves beside the input tensor.
        memory::set_limit(opts.memory_limit.saturating_sub(n * item_bytes));
        let packed = session.run(&input, n, opts.interrupt);
        memory::set_limit(opts.memory_limit);
        codes.extend_from_slice(&packed?);
    }
    Ok(codes)
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
}
