//! Decoding and preprocessing a batch of images in parallel for `ics_encode_batch`.
//!
//! The work is `ics_core::preprocess` on byte slices the backend has already detoasted, into
//! one preallocated NCHW buffer: plain Rust memory, no PostgreSQL call, no palloc, so it may
//! run on other threads while the backend's thread waits. The pool (rayon, one per backend,
//! `ics_hash.intra_op_threads` threads) is created with all signals blocked, so its threads
//! never take PostgreSQL's signals.

use std::cell::RefCell;

use ics_core::preprocess::{preprocess_into, Preprocess, PreprocessError};
use rayon::prelude::*;

use super::runtime::SignalsBlocked;

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
/// `threads` threads. On failure, the first failing image (lowest index) and its error.
pub fn preprocess_batch(
    images: &[&[u8]],
    p: &Preprocess,
    max_pixels: u64,
    threads: usize,
    out: &mut [f32],
) -> Result<(), (usize, PreprocessError)> {
    let item = p.output_len();
    assert_eq!(out.len(), images.len() * item, "output buffer size");
    let one = |(i, (img, o)): (usize, (&&[u8], &mut [f32]))| {
        preprocess_into(img, p, max_pixels, o).map_err(|e| (i, e))
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
