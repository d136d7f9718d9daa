//! The x86-64 paths. Each kernel function carries `#[target_feature]`, so it may only run on a
//! CPU with those features: the only way to reach one is through a [`Kernel`] that
//! [`paths::popcnt`], [`paths::avx2`] or [`paths::avx512`] built after
//! `is_x86_feature_detected!` said yes. That check is what every `unsafe` call below relies on.
//!
//! [`paths::popcnt`]: super::paths::popcnt
//! [`paths::avx2`]: super::paths::avx2
//! [`paths::avx512`]: super::paths::avx512

use core::arch::x86_64::*;

use super::{portable, Kernel};

/// Shortest code (bytes) for which the AVX2 nibble lookup is used. Measured on Zen 4: at 32
/// bytes it is no faster than popcnt words one-to-one and slower than the fixed-length loop
/// one-to-many; at 64 bytes and up it wins (about 1.4x at 64, 1.8x at 128).
pub const AVX2_MIN_BYTES: usize = 64;

/// Shortest code (bytes) handled with `vpopcntq`: one full 64-byte register. Shorter codes
/// (and the tail past the last full register) use popcnt words.
pub const AVX512_MIN_BYTES: usize = 64;

pub(super) fn popcnt() -> Option<Kernel> {
    if !is_x86_feature_detected!("popcnt") {
        return None;
    }
    Some(Kernel {
        name: "popcnt",
        // SAFETY: popcnt was detected just above.
        hamming: |a, b| unsafe { hamming_popcnt(a, b) },
        // SAFETY: popcnt was detected just above.
        popcount: |a| unsafe { popcount_popcnt(a) },
        // SAFETY: popcnt was detected just above.
        hamming_many: |q, c, o| unsafe { many_popcnt(q, c, o) },
        // SAFETY: popcnt was detected just above.
        nearest: |q, c, o| unsafe { nearest_popcnt(q, c, o) },
        // SAFETY: popcnt was detected just above.
        within: |q, c, b, o| unsafe { within_popcnt(q, c, b, o) },
    })
}

pub(super) fn avx2() -> Option<Kernel> {
    if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("popcnt")) {
        return None;
    }
    Some(Kernel {
        name: "avx2",
        // SAFETY: avx2 and popcnt were detected just above.
        hamming: |a, b| unsafe { hamming_avx2(a, b) },
        // SAFETY: avx2 and popcnt were detected just above.
        popcount: |a| unsafe { popcount_avx2(a) },
        // SAFETY: avx2 and popcnt were detected just above.
        hamming_many: |q, c, o| unsafe { many_avx2(q, c, o) },
        // SAFETY: avx2 and popcnt were detected just above.
        nearest: |q, c, o| unsafe { nearest_avx2(q, c, o) },
        // SAFETY: avx2 and popcnt were detected just above.
        within: |q, c, b, o| unsafe { within_avx2(q, c, b, o) },
    })
}

pub(super) fn avx512() -> Option<Kernel> {
    if !(is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vpopcntdq")
        && is_x86_feature_detected!("popcnt"))
    {
        return None;
    }
    Some(Kernel {
        name: "avx512-vpopcntdq",
        // SAFETY: avx512f, avx512vpopcntdq and popcnt were detected just above.
        hamming: |a, b| unsafe { hamming_avx512(a, b) },
        // SAFETY: avx512f, avx512vpopcntdq and popcnt were detected just above.
        popcount: |a| unsafe { popcount_avx512(a) },
        // SAFETY: avx512f, avx512vpopcntdq and popcnt were detected just above.
        hamming_many: |q, c, o| unsafe { many_avx512(q, c, o) },
        // SAFETY: avx512f, avx512vpopcntdq and popcnt were detected just above.
        nearest: |q, c, o| unsafe { nearest_avx512(q, c, o) },
        // SAFETY: avx512f, avx512vpopcntdq and popcnt were detected just above.
        within: |q, c, b, o| unsafe { within_avx512(q, c, b, o) },
    })
}

// --- popcnt: the portable word loops, compiled with the popcnt instruction ---

#[target_feature(enable = "popcnt")]
fn hamming_popcnt(a: &[u8], b: &[u8]) -> u32 {
    portable::hamming_words(a, b)
}

#[target_feature(enable = "popcnt")]
fn popcount_popcnt(a: &[u8]) -> u32 {
    portable::popcount_words(a)
}

#[target_feature(enable = "popcnt")]
fn many_popcnt(query: &[u8], codes: &[u8], out: &mut [u32]) {
    portable::many_with(query, codes, out, 64, portable::hamming_words)
}

// --- AVX2: Muła's nibble lookup ---
//
// Each byte's count is the sum of two 16-entry table lookups (`vpshufb`) on its low and high
// nibbles; `vpsadbw` against zero then sums each 8 bytes into a 64-bit lane. No AVX2 popcount
// instruction exists, and this beats four scalar popcnts per 32 bytes once the codes are long.

#[target_feature(enable = "avx2")]
#[inline]
fn load32(bytes: &[u8; 32]) -> __m256i {
    // SAFETY: `bytes` is 32 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// Bit counts of `v`, as four 64-bit partial sums.
#[target_feature(enable = "avx2")]
#[inline]
fn popcount_256(v: __m256i) -> __m256i {
    #[rustfmt::skip]
    let lut = _mm256_setr_epi8(
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
        0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
    );
    let nibble = _mm256_set1_epi8(0x0f);
    let lo = _mm256_and_si256(v, nibble);
    let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
    let bytes = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
    _mm256_sad_epu8(bytes, _mm256_setzero_si256())
}

#[target_feature(enable = "avx2")]
#[inline]
fn sum_256(v: __m256i) -> u32 {
    let s = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    // At most 8 bits per byte of a slice: fits a u32 for any slice of under 512 MiB.
    (_mm_cvtsi128_si64(s) + _mm_extract_epi64::<1>(s)) as u32
}

/// Distance between whole 32-byte blocks (`a` and `b` of the same length).
#[target_feature(enable = "avx2")]
#[inline]
fn xor_count_256(a: &[[u8; 32]], b: &[[u8; 32]]) -> u32 {
    let mut total = _mm256_setzero_si256();
    for (x, y) in a.iter().zip(b) {
        let v = _mm256_xor_si256(load32(x), load32(y));
        total = _mm256_add_epi64(total, popcount_256(v));
    }
    sum_256(total)
}

#[target_feature(enable = "avx2,popcnt")]
fn hamming_avx2(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: codes of different lengths");
    if a.len() < AVX2_MIN_BYTES {
        return portable::hamming_words(a, b);
    }
    let (ab, at) = a.as_chunks::<32>();
    let (bb, bt) = b.as_chunks::<32>();
    xor_count_256(ab, bb) + portable::hamming_words(at, bt)
}

#[target_feature(enable = "avx2,popcnt")]
fn popcount_avx2(a: &[u8]) -> u32 {
    if a.len() < AVX2_MIN_BYTES {
        return portable::popcount_words(a);
    }
    let (ab, at) = a.as_chunks::<32>();
    let mut total = _mm256_setzero_si256();
    for x in ab {
        total = _mm256_add_epi64(total, popcount_256(load32(x)));
    }
    sum_256(total) + portable::popcount_words(at)
}

#[target_feature(enable = "avx2,popcnt")]
fn many_avx2(query: &[u8], codes: &[u8], out: &mut [u32]) {
    // Codes of AVX2_MIN_BYTES and more go through the vector one-to-one kernel.
    portable::many_with(query, codes, out, AVX2_MIN_BYTES - 1, |a, b| {
        // As in `hamming_avx2`, but inline here: a called kernel costs more than a short code.
        let (ab, at) = a.as_chunks::<32>();
        let (bb, bt) = b.as_chunks::<32>();
        xor_count_256(ab, bb) + portable::hamming_words(at, bt)
    })
}

// --- AVX-512: vpopcntq counts each 64-bit lane directly ---

#[target_feature(enable = "avx512f")]
#[inline]
fn load64(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: `bytes` is 64 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// Distance between whole 64-byte blocks (`a` and `b` of the same length).
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
#[inline]
fn xor_count_512(a: &[[u8; 64]], b: &[[u8; 64]]) -> u32 {
    let mut total = _mm512_setzero_si512();
    for (x, y) in a.iter().zip(b) {
        let v = _mm512_xor_si512(load64(x), load64(y));
        total = _mm512_add_epi64(total, _mm512_popcnt_epi64(v));
    }
    _mm512_reduce_add_epi64(total) as u32
}

#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn hamming_avx512(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(a.len(), b.len(), "hamming: codes of different lengths");
    if a.len() < AVX512_MIN_BYTES {
        return portable::hamming_words(a, b);
    }
    let (ab, at) = a.as_chunks::<64>();
    let (bb, bt) = b.as_chunks::<64>();
    xor_count_512(ab, bb) + portable::hamming_words(at, bt)
}

#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn popcount_avx512(a: &[u8]) -> u32 {
    if a.len() < AVX512_MIN_BYTES {
        return portable::popcount_words(a);
    }
    let (ab, at) = a.as_chunks::<64>();
    let mut total = _mm512_setzero_si512();
    for x in ab {
        total = _mm512_add_epi64(total, _mm512_popcnt_epi64(load64(x)));
    }
    _mm512_reduce_add_epi64(total) as u32 + portable::popcount_words(at)
}

#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn many_avx512(query: &[u8], codes: &[u8], out: &mut [u32]) {
    // Codes of AVX512_MIN_BYTES and more go through the vector one-to-one kernel (the fixed
    // 64-byte loop would be vectorised with gathers, which are slow).
    portable::many_with(query, codes, out, AVX512_MIN_BYTES - 1, |a, b| {
        // As in `hamming_avx512`, but inline here: a called kernel costs more than a short code.
        let (ab, at) = a.as_chunks::<64>();
        let (bb, bt) = b.as_chunks::<64>();
        xor_count_512(ab, bb) + portable::hamming_words(at, bt)
    })
}

// --- nearest: each path's one-to-many loop and the minimum search, compiled together ---

#[target_feature(enable = "popcnt")]
fn nearest_popcnt(query: &[u8], codes: &[u8], out: &mut [u32]) -> (usize, u32) {
    many_popcnt(query, codes, out);
    portable::argmin(out)
}

#[target_feature(enable = "avx2,popcnt")]
fn nearest_avx2(query: &[u8], codes: &[u8], out: &mut [u32]) -> (usize, u32) {
    many_avx2(query, codes, out);
    portable::argmin(out)
}

#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn nearest_avx512(query: &[u8], codes: &[u8], out: &mut [u32]) -> (usize, u32) {
    many_avx512(query, codes, out);
    portable::argmin(out)
}

// --- within: codes inside a bound, several codes per comparison ---
//
// The short lengths pack several codes into one register: the per-lane counts of a code's
// words are summed into its first lane, compared with the bound as a mask, and a group of
// registers whose masks are all empty (almost every group of a k-NN pass) costs one branch.
// Codes inside the bound are rare, and their distances are recounted with popcnt words.

/// Appends the codes of `mask` (bit i: code `first + i / lanes_per_code`) with their distances.
#[inline(always)]
fn push_mask(
    query: &[u8],
    codes: &[u8],
    first: usize,
    mut mask: u32,
    lanes_per_code: u32,
    out: &mut Vec<(u32, u32)>,
) {
    let len = query.len();
    while mask != 0 {
        let i = first + (mask.trailing_zeros() / lanes_per_code) as usize;
        mask &= mask - 1;
        let d = portable::hamming_words(query, &codes[i * len..(i + 1) * len]);
        out.push((i as u32, d));
    }
}

#[target_feature(enable = "popcnt")]
fn within_popcnt(query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
    portable::within_blocks(query, codes, 0, bound, out, |q, c, o| many_popcnt(q, c, o))
}

/// Codes per AVX2 group: four registers.
const AVX2_GROUP_BYTES: usize = 4 * 32;

#[target_feature(enable = "avx2,popcnt")]
fn within_avx2(query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
    let len = query.len();
    if len != 8 && len != 16 {
        return portable::within_blocks(query, codes, 0, bound, out, |q, c, o| many_avx2(q, c, o));
    }
    portable::within_shape(query, codes);
    let q = if len == 8 {
        _mm256_set1_epi64x(i64::from_ne_bytes(query.try_into().expect("8 bytes")))
    } else {
        let lo = i64::from_ne_bytes(query[..8].try_into().expect("8 bytes"));
        let hi = i64::from_ne_bytes(query[8..].try_into().expect("8 bytes"));
        _mm256_setr_epi64x(lo, hi, lo, hi)
    };
    let b = _mm256_set1_epi64x(i64::from(bound.min(i32::MAX as u32)));
    // Each 64-bit lane's count; for 16-byte codes the pair sum sits in both lanes of a code.
    let counts = |v: __m256i| {
        let c = popcount_256(_mm256_xor_si256(v, q));
        if len == 16 {
            _mm256_add_epi64(c, _mm256_shuffle_epi32::<0x4E>(c))
        } else {
            c
        }
    };
    // Lanes within the bound: not (count > bound); one lane per code kept.
    let keep_lanes: i32 = if len == 8 { 0b1111 } else { 0b0101 };
    let inside = |c: __m256i| {
        (!_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(c, b)))) & keep_lanes
    };
    let lanes_per_code = (len / 8) as u32;
    let per_reg = 32 / len;
    let (groups, rest) = codes.as_chunks::<AVX2_GROUP_BYTES>();
    for (g, group) in groups.iter().enumerate() {
        let (regs, _) = group.as_chunks::<32>();
        let m = [
            inside(counts(load32(&regs[0]))),
            inside(counts(load32(&regs[1]))),
            inside(counts(load32(&regs[2]))),
            inside(counts(load32(&regs[3]))),
        ];
        if (m[0] | m[1] | m[2] | m[3]) == 0 {
            continue;
        }
        for (r, &mask) in m.iter().enumerate() {
            let first = (g * 4 + r) * per_reg;
            push_mask(query, codes, first, mask as u32, lanes_per_code, out);
        }
    }
    let done = groups.len() * AVX2_GROUP_BYTES / len;
    portable::within_blocks(query, rest, done, bound, out, |q, c, o| many_avx2(q, c, o));
}

/// Codes per AVX-512 group: four registers.
const AVX512_GROUP_BYTES: usize = 4 * 64;

#[target_feature(enable = "avx512f,avx512vpopcntdq,popcnt")]
fn within_avx512(query: &[u8], codes: &[u8], bound: u32, out: &mut Vec<(u32, u32)>) {
    let len = query.len();
    if len != 8 && len != 16 && len != 32 {
        return portable::within_blocks(query, codes, 0, bound, out, |q, c, o| {
            many_avx512(q, c, o)
        });
    }
    portable::within_shape(query, codes);
    // The query repeated across the register, one copy per code.
    let mut rep = [0u8; 64];
    for chunk in rep.chunks_exact_mut(len) {
        chunk.copy_from_slice(query);
    }
    let q = load64(&rep);
    let b = _mm512_set1_epi64(i64::from(bound));
    // Each code's distance in its first lane (the other lanes of the code hold partial sums).
    let counts = |v: __m512i| {
        let c = _mm512_popcnt_epi64(_mm512_xor_si512(v, q));
        match len {
            8 => c,
            16 => _mm512_add_epi64(c, _mm512_shuffle_epi32::<0x4E>(c)),
            _ => {
                let pairs = _mm512_add_epi64(c, _mm512_shuffle_epi32::<0x4E>(c));
                _mm512_add_epi64(pairs, _mm512_permutex_epi64::<0x4E>(pairs))
            }
        }
    };
    let keep_lanes: u8 = match len {
        8 => 0xff,
        16 => 0x55,
        _ => 0x11,
    };
    let inside = |c: __m512i| _mm512_cmple_epu64_mask(c, b) & keep_lanes;
    let lanes_per_code = (len / 8) as u32;
    let per_reg = 64 / len;
    let (groups, rest) = codes.as_chunks::<AVX512_GROUP_BYTES>();
    for (g, group) in groups.iter().enumerate() {
        let (regs, _) = group.as_chunks::<64>();
        let m = [
            inside(counts(load64(&regs[0]))),
            inside(counts(load64(&regs[1]))),
            inside(counts(load64(&regs[2]))),
            inside(counts(load64(&regs[3]))),
        ];
        if (m[0] | m[1] | m[2] | m[3]) == 0 {
            continue;
        }
        for (r, &mask) in m.iter().enumerate() {
            let first = (g * 4 + r) * per_reg;
            push_mask(query, codes, first, u32::from(mask), lanes_per_code, out);
        }
    }
    let done = groups.len() * AVX512_GROUP_BYTES / len;
    portable::within_blocks(query, rest, done, bound, out, |q, c, o| {
        many_avx512(q, c, o)
    });
}
