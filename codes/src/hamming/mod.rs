//! Hamming distance kernels for packed codes (1..=512 bytes, see [`crate::code`]).
//!
//! One distance is `popcount(a XOR b)`; the work is in counting bits fast. There are several
//! paths because the best one depends on the CPU and on the code length:
//!
//! 1. **scalar** ([`hamming_scalar`]): bit by bit. Slow, obviously correct: the reference every
//!    other path is tested against.
//! 2. **portable**: `u64` words with `count_ones`, tail bytes one by one. Compiled for the
//!    baseline target, so on the default `x86_64` target (no `popcnt` instruction) `count_ones`
//!    is a ~12-instruction bit trick; on other architectures it is usually a native count.
//! 3. **popcnt** (x86-64): the same word loop compiled with `#[target_feature(enable =
//!    "popcnt")]`, so each word costs one `popcnt`. Best for short codes (64..256 bits), which
//!    are the common case.
//! 4. **avx2** (x86-64): Muła's nibble lookup (`vpshufb` + `vpsadbw`) on 32-byte blocks for long
//!    codes; below [`x86::AVX2_MIN_BYTES`] it uses the popcnt word loop, which is faster there.
//! 5. **avx512-vpopcntdq** (x86-64 with `avx512f` + `avx512vpopcntdq`): `vpopcntq` on 64-byte
//!    blocks, popcnt words for the tail and for codes under [`x86::AVX512_MIN_BYTES`].
//!
//! The dispatcher picks the best available path once (first call) and caches it in a
//! [`OnceLock`]; after that a call costs one load, one branch and one indirect call.
//! [`kernel_name`] says which path it chose. [`paths`] exposes each path on its own for tests
//! and benchmarks.
//!
//! [`within`] is the linear pass's inner loop: one query against a block of codes stored back
//! to back, keeping only the codes within a bound. Almost every code of a k-NN pass is beyond
//! the running k-th distance, so the kernel never materialises their distances: it compares
//! several codes per instruction with the bound (an AVX-512 or AVX2 mask) and only the rare
//! codes inside it cost a branch. The lengths of learned codes (8, 16 and 32 bytes) have
//! hand-written vector loops; other lengths filter blocks of [`hamming_many`] distances.
//!
//! [`hamming_many`] is the index's other inner loop: one query against a block of codes stored back
//! to back. The common lengths (8, 16 and 32 bytes; 64 too on the word paths) get loops with
//! the length fixed at compile time, which keep the query in registers and which LLVM
//! vectorises across codes when the path allows it (AVX2 lookup, AVX-512 `vpopcntq`): that is
//! where the SIMD paths win on short codes. Other lengths run the path's one-to-one kernel,
//! inlined, per code.

use std::fmt;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // the kernels: target-feature functions and unaligned SIMD loads
pub mod x86;

/// Reference implementation: counts differing bits one bit at a time.
///
/// # Panics
/// If `a` and `b` have different lengths.
pub fn hamming_scalar(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: codes of different lengths");
    let mut d = 0;
    for (x, y) in a.iter().zip(b) {
        for bit in 0..8 {
            d += u32::from(((x ^ y) >> bit) & 1);
        }
    }
    d
}

/// Number of bits that differ between `a` and `b`, with the fastest path for this CPU.
///
/// # Panics
/// If `a` and `b` have different lengths.
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: codes of different lengths");
    selected().hamming(a, b)
}

/// Number of set bits in `a`, with the fastest path for this CPU.
#[inline]
pub fn popcount(a: &[u8]) -> u32 {
    selected().popcount(a)
}

/// Distances from `query` to each code of a block: code `i` is
/// `codes[i * query.len()..(i + 1) * query.len()]`, its distance goes to `out[i]`.
///
/// # Panics
/// If `codes.len() != out.len() * query.len()`.
#[inline]
pub fn hamming_many(query: &[u8], codes: &[u8], out: &mut [u32]) {
    selected().hamming_many(query, codes, out)
}

/// The code in `codes` (a block, as for [`hamming_many`]) nearest to `query`: its index
/// (the first among ties) and distance; `(0, u32::MAX)` for an empty block. `scratch` holds
/// the distances. The minimum search is compiled with the distance loop, so it is vectorised
/// too: this runs once per indexed row over every centroid of a mih index.
pub fn nearest(query: &[u8], codes: &[u8], scratch: &mut Vec<u32>) -> (usize, u32) {
    scratch.resize(codes.len() / query.len().max(1), 0);
    selected().nearest(query, codes, scratch)
}

/// The codes of `codes` (a block, as for [`hamming_many`]) within `bound` of `query`: each as
/// (its index in the block, its distance) appended to `out`, in block order.
///
/// # Panics
/// If `codes.len()` is not a multiple of `query.len()`.
#[inline]
pub fn within(query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
    selected().within(query, codes, bound, out)
}

/// Which path the dispatcher chose: `"avx512-vpopcntdq"`, `"avx2"`, `"popcnt"` or
/// `"portable"`.
pub fn kernel_name() -> &'static str {
    selected().name()
}

/// One path: a one-to-one distance, a popcount and a one-to-many loop compiled for the same
/// instruction set. Only obtainable through [`paths`], which hands out a SIMD path only when
/// the CPU has its instructions.
#[derive(Clone, Copy)]
pub struct Kernel {
    name: &'static str,
    hamming: fn(&[u8], &[u8]) -> u32,
    popcount: fn(&[u8]) -> u32,
    hamming_many: fn(&[u8], &[u8], &mut [u32]),
    nearest: NearestFn,
    within: WithinFn,
}

/// One-to-many distances into the slice, then the first minimum: (index, distance).
type NearestFn = fn(&[u8], &[u8], &mut [u32]) -> (usize, u32);
/// The codes within a bound: (index, distance) appended to the vector.
type WithinFn = fn(&[u8], &[u8], u32, &mut Vec<(u32, u32)>);

impl Kernel {
    /// The path's name, as [`kernel_name`] reports it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// As [`hamming`](fn@hamming), with this path. Panics if the lengths differ.
    #[inline]
    pub fn hamming(&self, a: &[u8], b: &[u8]) -> u32 {
        (self.hamming)(a, b)
    }

    /// As [`popcount`](fn@popcount), with this path.
    #[inline]
    pub fn popcount(&self, a: &[u8]) -> u32 {
        (self.popcount)(a)
    }

    /// As [`hamming_many`](fn@hamming_many), with this path. Panics if
    /// `codes.len() != out.len() * query.len()`.
    #[inline]
    pub fn hamming_many(&self, query: &[u8], codes: &[u8], out: &mut [u32]) {
        (self.hamming_many)(query, codes, out)
    }

    /// As [`nearest`](fn@nearest), with this path; `out` must have one slot per code.
    #[inline]
    pub fn nearest(&self, query: &[u8], codes: &[u8], out: &mut [u32]) -> (usize, u32) {
        (self.nearest)(query, codes, out)
    }

    /// As [`within`](fn@within), with this path. Panics if `codes.len()` is not a multiple of
    /// `query.len()`.
    #[inline]
    pub fn within(&self, query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
        (self.within)(query, codes, bound, out)
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Kernel").field(&self.name).finish()
    }
}

/// The dispatcher's choice, made on first use.
#[inline]
fn selected() -> &'static Kernel {
    static SELECTED: OnceLock<Kernel> = OnceLock::new();
    SELECTED.get_or_init(paths::best)
}

/// Each path on its own, for tests, benchmarks and diagnostics. The SIMD paths return `None`
/// where the CPU (or the target architecture) lacks their instructions.
pub mod paths {
    use super::{portable, Kernel};

    /// The bit-by-bit reference.
    pub fn scalar() -> Kernel {
        Kernel {
            name: "scalar",
            hamming: super::hamming_scalar,
            popcount: portable::popcount_scalar,
            hamming_many: portable::many_scalar,
            nearest: |q, c, o| {
                portable::many_scalar(q, c, o);
                portable::argmin(o)
            },
            within: portable::within_scalar,
        }
    }

    /// `u64` words with `count_ones`, compiled for the baseline target.
    pub fn portable() -> Kernel {
        Kernel {
            name: "portable",
            hamming: portable::hamming,
            popcount: portable::popcount,
            hamming_many: portable::many,
            nearest: |q, c, o| {
                portable::many(q, c, o);
                portable::argmin(o)
            },
            within: |q, c, b, o| portable::within_blocks(q, c, 0, b, o, portable::many),
        }
    }

    /// The word loop compiled with `popcnt`.
    pub fn popcnt() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        return super::x86::popcnt();
        #[cfg(not(target_arch = "x86_64"))]
        return None;
    }

    /// AVX2 nibble lookup for long codes, popcnt words for short ones.
    pub fn avx2() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        return super::x86::avx2();
        #[cfg(not(target_arch = "x86_64"))]
        return None;
    }

    /// AVX-512 `vpopcntq` for long codes, popcnt words for short ones.
    pub fn avx512() -> Option<Kernel> {
        #[cfg(target_arch = "x86_64")]
        return super::x86::avx512();
        #[cfg(not(target_arch = "x86_64"))]
        return None;
    }

    /// Every path this CPU can run, the reference first.
    pub fn available() -> Vec<Kernel> {
        let mut all = vec![scalar(), portable()];
        all.extend(popcnt());
        all.extend(avx2());
        all.extend(avx512());
        all
    }

    /// The path the dispatcher uses: the most capable one available.
    pub fn best() -> Kernel {
        avx512()
            .or_else(avx2)
            .or_else(popcnt)
            .unwrap_or_else(portable)
    }
}

/// Word-wise loops. Each is `#[inline(always)]` so that a `#[target_feature]` caller compiles
/// it with its own instruction set (that is the whole popcnt path).
mod portable {
    /// Index of the first minimum and the minimum (`(0, u32::MAX)` when empty). A vectorised
    /// minimum, then a search for it 16 values at a time (a branch per value would cost more
    /// than all the distances).
    #[inline(always)]
    pub(super) fn argmin(values: &[u32]) -> (usize, u32) {
        let min = values.iter().copied().fold(u32::MAX, u32::min);
        for (c, chunk) in values.chunks(16).enumerate() {
            if chunk.iter().fold(false, |hit, &v| hit | (v == min)) {
                let at = chunk.iter().position(|&v| v == min).unwrap_or(0);
                return (c * 16 + at, min);
            }
        }
        (0, min)
    }

    /// Word `i` of a block; native byte order is fine since only the bit count matters.
    #[inline(always)]
    fn word(bytes: &[u8; 8]) -> u64 {
        u64::from_ne_bytes(*bytes)
    }

    #[inline(always)]
    pub(super) fn hamming_words(a: &[u8], b: &[u8]) -> u32 {
        assert_eq!(a.len(), b.len(), "hamming: codes of different lengths");
        let (aw, at) = a.as_chunks::<8>();
        let (bw, bt) = b.as_chunks::<8>();
        let mut d = 0;
        for (x, y) in aw.iter().zip(bw) {
            d += (word(x) ^ word(y)).count_ones();
        }
        for (x, y) in at.iter().zip(bt) {
            d += (x ^ y).count_ones();
        }
        d
    }

    #[inline(always)]
    pub(super) fn popcount_words(a: &[u8]) -> u32 {
        let (aw, at) = a.as_chunks::<8>();
        let mut d = 0;
        for x in aw {
            d += word(x).count_ones();
        }
        for x in at {
            d += x.count_ones();
        }
        d
    }

    /// One query against codes of exactly `L` bytes (`L` a multiple of 8): the query's words
    /// stay in registers and the inner loop is fully unrolled.
    #[inline(always)]
    fn many_fixed<const L: usize>(query: &[u8], codes: &[u8], out: &mut [u32]) {
        let query: &[u8; L] = query.try_into().expect("many_fixed: query length");
        let (q, _) = query.as_chunks::<8>();
        let (codes, _) = codes.as_chunks::<L>();
        for (code, o) in codes.iter().zip(out) {
            let (c, _) = code.as_chunks::<8>();
            let mut d = 0;
            for (x, y) in q.iter().zip(c) {
                d += (word(x) ^ word(y)).count_ones();
            }
            *o = d;
        }
    }

    /// The one-to-many loop shared by every path: specialised loops for the common lengths up
    /// to `fixed_max` bytes (the compiler vectorises them across codes where the instruction
    /// set allows), `one` (the path's one-to-one kernel) per code otherwise.
    #[inline(always)]
    pub(super) fn many_with(
        query: &[u8],
        codes: &[u8],
        out: &mut [u32],
        fixed_max: usize,
        one: impl Fn(&[u8], &[u8]) -> u32,
    ) {
        let len = query.len();
        assert_eq!(
            Some(codes.len()),
            out.len().checked_mul(len),
            "hamming_many: codes.len() must be out.len() * query.len()"
        );
        match len {
            // Zero-length codes are all at distance 0 (and chunking by 0 would panic).
            0 => out.fill(0),
            8 if fixed_max >= 8 => many_fixed::<8>(query, codes, out),
            16 if fixed_max >= 16 => many_fixed::<16>(query, codes, out),
            32 if fixed_max >= 32 => many_fixed::<32>(query, codes, out),
            64 if fixed_max >= 64 => many_fixed::<64>(query, codes, out),
            _ => {
                for (code, o) in codes.chunks_exact(len).zip(out) {
                    *o = one(query, code);
                }
            }
        }
    }

    pub(super) fn hamming(a: &[u8], b: &[u8]) -> u32 {
        hamming_words(a, b)
    }

    pub(super) fn popcount(a: &[u8]) -> u32 {
        popcount_words(a)
    }

    pub(super) fn many(query: &[u8], codes: &[u8], out: &mut [u32]) {
        many_with(query, codes, out, 64, hamming_words)
    }

    /// Codes per block of [`within_blocks`]: the distances stay in L1, and a block with no code
    /// within the bound is settled by one vectorised minimum.
    pub(super) const WITHIN_BLOCK: usize = 64;

    /// Checks a block's shape as [`super::within`] documents it (whole codes of the query's
    /// length; panics otherwise); false for zero-length codes, of which none is returned.
    #[inline(always)]
    pub(super) fn within_shape(query: &[u8], codes: &[u8]) -> bool {
        let len = query.len();
        if len == 0 {
            // Every zero-length code is at distance 0, and there is no telling how many.
            assert!(codes.is_empty(), "within: codes of length 0");
            return false;
        }
        assert_eq!(
            codes.len() % len,
            0,
            "within: codes.len() must be a multiple of query.len()"
        );
        true
    }

    /// [`super::within`] from a path's one-to-many loop: distances a block at a time, then the
    /// block's minimum against the bound, and only blocks that hold a code within it scanned.
    /// Positions are reported from `first` on (the codes of `codes` after `first` others).
    #[inline(always)]
    pub(super) fn within_blocks(
        query: &[u8],
        codes: &[u8],
        first: usize,
        bound: u32,
        out: &mut Vec<(u32, u32)>,
        many: impl Fn(&[u8], &[u8], &mut [u32]),
    ) {
        if !within_shape(query, codes) {
            return;
        }
        let len = query.len();
        let mut dist = [0u32; WITHIN_BLOCK];
        for (b, block) in codes.chunks(WITHIN_BLOCK * len).enumerate() {
            let n = block.len() / len;
            many(query, block, &mut dist[..n]);
            if dist[..n].iter().copied().fold(u32::MAX, u32::min) > bound {
                continue;
            }
            for (i, &d) in dist[..n].iter().enumerate() {
                if d <= bound {
                    out.push(((first + b * WITHIN_BLOCK + i) as u32, d));
                }
            }
        }
    }

    /// The reference: every code's distance bit by bit, kept when within the bound.
    pub(super) fn within_scalar(query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
        if !within_shape(query, codes) {
            return;
        }
        for (i, code) in codes.chunks_exact(query.len()).enumerate() {
            let d = super::hamming_scalar(query, code);
            if d <= bound {
                out.push((i as u32, d));
            }
        }
    }

    pub(super) fn popcount_scalar(a: &[u8]) -> u32 {
        let mut n = 0;
        for x in a {
            for bit in 0..8 {
                n += u32::from((x >> bit) & 1);
            }
        }
        n
    }

    pub(super) fn many_scalar(query: &[u8], codes: &[u8], out: &mut [u32]) {
        let len = query.len();
        assert_eq!(
            Some(codes.len()),
            out.len().checked_mul(len),
            "hamming_many: codes.len() must be out.len() * query.len()"
        );
        if len == 0 {
            out.fill(0);
            return;
        }
        for (code, o) in codes.chunks_exact(len).zip(out) {
            *o = super::hamming_scalar(query, code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, RngCore, SeedableRng};
    use std::panic::{catch_unwind, AssertUnwindSafe};

    const MAX_LEN: usize = crate::code::MAX_BYTES;

    /// The SIMD paths that must run: `ICS_REQUIRE_SIMD` lists them (comma-separated; `avx512`
    /// means `avx512-vpopcntdq`, and each path implies the ones below it, so `avx512` also
    /// requires `avx2` and `popcnt`). scripts/test.sh sets it from the CPU's flags, so that a
    /// machine with AVX-512 cannot quietly test only the portable path.
    fn required_paths() -> Vec<&'static str> {
        let order = ["popcnt", "avx2", "avx512-vpopcntdq"];
        let wanted = std::env::var("ICS_REQUIRE_SIMD").unwrap_or_default();
        let mut top = None;
        for w in wanted.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let w = if w == "avx512" { "avx512-vpopcntdq" } else { w };
            let i = order.iter().position(|o| *o == w).unwrap_or_else(|| {
                panic!("ICS_REQUIRE_SIMD: unknown path {w:?} (one of {order:?}, or avx512)")
            });
            top = top.max(Some(i));
        }
        top.map_or(Vec::new(), |t| order[..=t].to_vec())
    }

    /// Every path to check against the reference: all but the reference itself. A SIMD path
    /// this CPU lacks is skipped with a note, unless `ICS_REQUIRE_SIMD` requires it (then the
    /// test fails). The paths run are printed.
    fn paths_under_test() -> Vec<Kernel> {
        let required = required_paths();
        let mut all = vec![paths::portable()];
        for (name, k) in [
            ("popcnt", paths::popcnt()),
            ("avx2", paths::avx2()),
            ("avx512-vpopcntdq", paths::avx512()),
        ] {
            match k {
                Some(k) => all.push(k),
                None if required.contains(&name) => panic!(
                    "ICS_REQUIRE_SIMD requires the {name} path, but this CPU (or target) lacks it"
                ),
                None => eprintln!("skipping the {name} path: this CPU (or target) lacks it"),
            }
        }
        eprintln!(
            "kernels tested against the scalar reference: {}",
            all.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        );
        all
    }

    fn random_bytes(rng: &mut SmallRng, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        rng.fill_bytes(&mut v);
        v
    }

    /// Random bytes with a random bit density, so that distances are not all near len * 4.
    fn random_biased(rng: &mut SmallRng, len: usize) -> Vec<u8> {
        let p: f64 = rng.gen();
        (0..len)
            .map(|_| (0..8).fold(0u8, |b, i| b | (u8::from(rng.gen_bool(p)) << i)))
            .collect()
    }

    fn reference_popcount(a: &[u8]) -> u32 {
        hamming_scalar(a, &vec![0; a.len()])
    }

    #[test]
    fn scalar_reference_is_right() {
        assert_eq!(hamming_scalar(&[], &[]), 0);
        assert_eq!(hamming_scalar(&[0b1010_0000], &[0b0110_0001]), 3);
        assert_eq!(hamming_scalar(&[0xff, 0x00], &[0x00, 0xff]), 16);
        assert_eq!(hamming_scalar(&[0x0f; 3], &[0x0f; 3]), 0);
        assert_eq!(paths::scalar().popcount(&[0x80, 0x01, 0xff]), 10);
    }

    #[test]
    fn every_path_matches_reference_at_every_length() {
        let mut rng = SmallRng::seed_from_u64(0x1c5_4a54);
        let kernels = paths_under_test();
        // Every supported length, then a few past it: the kernels take any length.
        let lengths = (1..=MAX_LEN).chain([513, 1000, 1031, 4096 + 7]);
        for len in lengths {
            for round in 0..4 {
                let (a, b) = if round % 2 == 0 {
                    (random_bytes(&mut rng, len), random_bytes(&mut rng, len))
                } else {
                    (random_biased(&mut rng, len), random_biased(&mut rng, len))
                };
                let want = hamming_scalar(&a, &b);
                let want_pop = reference_popcount(&a);
                for k in &kernels {
                    assert_eq!(k.hamming(&a, &b), want, "{k:?} hamming, len {len}");
                    assert_eq!(k.hamming(&b, &a), want, "{k:?} hamming swapped, len {len}");
                    assert_eq!(k.popcount(&a), want_pop, "{k:?} popcount, len {len}");
                }
                assert_eq!(hamming(&a, &b), want, "dispatched hamming, len {len}");
                assert_eq!(popcount(&a), want_pop, "dispatched popcount, len {len}");
            }
        }
    }

    #[test]
    fn all_zeros_and_all_ones() {
        for len in 0..=MAX_LEN {
            let zeros = vec![0u8; len];
            let ones = vec![0xffu8; len];
            let full = 8 * len as u32;
            for k in paths_under_test().iter().chain([&paths::scalar()]) {
                assert_eq!(k.hamming(&zeros, &zeros), 0, "{k:?} len {len}");
                assert_eq!(k.hamming(&ones, &ones), 0, "{k:?} len {len}");
                assert_eq!(k.hamming(&zeros, &ones), full, "{k:?} len {len}");
                assert_eq!(k.hamming(&ones, &zeros), full, "{k:?} len {len}");
                assert_eq!(k.popcount(&zeros), 0, "{k:?} len {len}");
                assert_eq!(k.popcount(&ones), full, "{k:?} len {len}");
            }
        }
    }

    #[test]
    fn single_differing_bit_at_every_position() {
        let mut rng = SmallRng::seed_from_u64(7);
        for len in [1, 7, 8, 9, 31, 32, 33, 63, 64, 65, 100, 128, 512] {
            let a = random_bytes(&mut rng, len);
            for bit in 0..8 * len {
                let mut b = a.clone();
                b[bit / 8] ^= 1 << (bit % 8);
                let mut one_hot = vec![0u8; len];
                one_hot[bit / 8] = 1 << (bit % 8);
                for k in paths_under_test().iter().chain([&paths::scalar()]) {
                    assert_eq!(k.hamming(&a, &b), 1, "{k:?} len {len} bit {bit}");
                    assert_eq!(k.popcount(&one_hot), 1, "{k:?} len {len} bit {bit}");
                }
            }
        }
    }

    #[test]
    fn hamming_many_matches_hamming() {
        let mut rng = SmallRng::seed_from_u64(42);
        let lengths = [
            1, 2, 3, 4, 7, 8, 9, 16, 24, 32, 40, 48, 63, 64, 65, 96, 128, 512,
        ];
        let blocks = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100];
        let kernels: Vec<Kernel> = paths_under_test()
            .into_iter()
            .chain([paths::scalar()])
            .collect();
        for len in lengths {
            for n in blocks {
                let query = random_biased(&mut rng, len);
                let codes = random_biased(&mut rng, len * n);
                let want: Vec<u32> = codes
                    .chunks_exact(len)
                    .map(|c| hamming_scalar(&query, c))
                    .collect();
                for k in &kernels {
                    // Garbage first: every slot must be written.
                    let mut out = vec![u32::MAX; n];
                    k.hamming_many(&query, &codes, &mut out);
                    assert_eq!(out, want, "{k:?} len {len} block {n}");
                }
                let mut out = vec![u32::MAX; n];
                hamming_many(&query, &codes, &mut out);
                assert_eq!(out, want, "dispatched len {len} block {n}");
            }
        }
    }

    #[test]
    fn zero_length_codes_are_at_distance_zero() {
        for k in paths_under_test().iter().chain([&paths::scalar()]) {
            assert_eq!(k.hamming(&[], &[]), 0, "{k:?}");
            assert_eq!(k.popcount(&[]), 0, "{k:?}");
            let mut out = [7u32; 3];
            k.hamming_many(&[], &[], &mut out);
            assert_eq!(out, [0; 3], "{k:?}");
        }
    }

    #[test]
    fn every_path_panics_on_length_mismatch() {
        for k in paths_under_test().iter().chain([&paths::scalar()]) {
            for (la, lb) in [(8, 16), (64, 65), (128, 0), (1, 2)] {
                let (a, b) = (vec![0u8; la], vec![0u8; lb]);
                let r = catch_unwind(AssertUnwindSafe(|| k.hamming(&a, &b)));
                assert!(r.is_err(), "{k:?} accepted lengths {la} and {lb}");
            }
            for (len, codes, n) in [(8, 24, 2), (8, 24, 4), (8, 7, 1), (0, 1, 1), (64, 64, 0)] {
                let (q, c, mut out) = (vec![0u8; len], vec![0u8; codes], vec![0u32; n]);
                let r = catch_unwind(AssertUnwindSafe(|| k.hamming_many(&q, &c, &mut out)));
                assert!(
                    r.is_err(),
                    "{k:?} accepted {codes} code bytes for {n} x {len}"
                );
            }
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn hamming_panics_on_length_mismatch() {
        hamming(&[0; 8], &[0; 16]);
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn hamming_scalar_panics_on_length_mismatch() {
        hamming_scalar(&[0; 3], &[0; 2]);
    }

    #[test]
    #[should_panic(expected = "out.len() * query.len()")]
    fn hamming_many_panics_on_block_mismatch() {
        let mut out = [0u32; 3];
        hamming_many(&[0; 8], &[0; 16], &mut out);
    }

    #[test]
    fn nearest_is_the_first_minimum_on_every_path() {
        let mut rng = SmallRng::seed_from_u64(99);
        for len in [1usize, 2, 8, 16, 24, 32, 64, 100] {
            for n in [0usize, 1, 2, 7, 64, 1000] {
                let query = random_bytes(&mut rng, len);
                let mut codes = random_bytes(&mut rng, len * n);
                // Ties: a few copies of one code, so the first of them must win.
                if n > 10 {
                    let copy = codes[5 * len..6 * len].to_vec();
                    codes[8 * len..9 * len].copy_from_slice(&copy);
                    codes[9 * len..10 * len].copy_from_slice(&query);
                    codes[n * len - len..].copy_from_slice(&query);
                }
                let want = (0..n)
                    .map(|i| (hamming_scalar(&query, &codes[i * len..(i + 1) * len]), i))
                    .min()
                    .map(|(d, i)| (i, d))
                    .unwrap_or((0, u32::MAX));
                for k in paths::available() {
                    let mut out = vec![0; n];
                    assert_eq!(
                        k.nearest(&query, &codes, &mut out),
                        want,
                        "{} len {len} n {n}",
                        k.name()
                    );
                }
                let mut scratch = Vec::new();
                assert_eq!(nearest(&query, &codes, &mut scratch), want);
            }
        }
    }

    /// Every path's `within` against the bit-by-bit reference: the lengths with their own
    /// vector loops (8, 16, 32) and others, blocks that end inside a register group, bounds
    /// from nothing to everything, and codes planted at and around the bound.
    #[test]
    fn within_matches_reference_on_every_path() {
        let mut rng = SmallRng::seed_from_u64(0x1d5);
        let kernels: Vec<Kernel> = paths_under_test()
            .into_iter()
            .chain([paths::scalar()])
            .collect();
        for len in [1usize, 3, 8, 9, 16, 24, 32, 40, 64, 128] {
            for n in [
                0usize, 1, 3, 4, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 200, 1017,
            ] {
                let query = random_biased(&mut rng, len);
                let mut codes = random_biased(&mut rng, len * n);
                // Plant the query and near copies, so that small bounds have hits anywhere.
                for at in (0..n).step_by(7) {
                    let code = &mut codes[at * len..(at + 1) * len];
                    code.copy_from_slice(&query);
                    for _ in 0..(at % 4) {
                        code[rng.gen_range(0..len)] ^= 1 << rng.gen_range(0..8);
                    }
                }
                let dist: Vec<u32> = codes
                    .chunks_exact(len)
                    .map(|c| hamming_scalar(&query, c))
                    .collect();
                for bound in [0, 1, 2, 3, 4 * len as u32, 8 * len as u32, u32::MAX] {
                    let want: Vec<(u32, u32)> = (0..n)
                        .filter(|&i| dist[i] <= bound)
                        .map(|i| (i as u32, dist[i]))
                        .collect();
                    for k in &kernels {
                        // Earlier results stay: the kernel appends.
                        let mut out = vec![(7, 7)];
                        k.within(&query, &codes, bound, &mut out);
                        assert_eq!(out[0], (7, 7), "{k:?} len {len} n {n} bound {bound}");
                        assert_eq!(out[1..], want[..], "{k:?} len {len} n {n} bound {bound}");
                    }
                    let mut out = Vec::new();
                    within(&query, &codes, bound, &mut out);
                    assert_eq!(out, want, "dispatched len {len} n {n} bound {bound}");
                }
            }
        }
    }

    #[test]
    fn within_checks_the_block_shape() {
        for k in paths_under_test().iter().chain([&paths::scalar()]) {
            for (len, codes) in [(8, 12), (16, 40), (32, 33), (3, 4)] {
                let (q, c) = (vec![0u8; len], vec![0u8; codes]);
                let r = catch_unwind(AssertUnwindSafe(|| k.within(&q, &c, 3, &mut Vec::new())));
                assert!(
                    r.is_err(),
                    "{k:?} accepted {codes} code bytes of length {len}"
                );
            }
        }
    }

    #[test]
    fn dispatcher_picks_the_best_available_path() {
        let name = kernel_name();
        assert!(
            ["avx512-vpopcntdq", "avx2", "popcnt", "portable"].contains(&name),
            "{name}"
        );
        let expected = [paths::avx512(), paths::avx2(), paths::popcnt()]
            .into_iter()
            .flatten()
            .next()
            .map_or("portable", |k| k.name());
        assert_eq!(name, expected);
        eprintln!("dispatcher picks: {name}");
    }
}
