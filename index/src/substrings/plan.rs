//! How a code is cut into substrings and how finely each table is addressed.
//!
//! - Substrings: `m` disjoint runs of consecutive bits covering the whole code (the first
//!   `bits % m` one bit longer). The paper's choice is m ~ bits / log2(n), which keeps about
//!   one code per substring value. Each table after the first stores every distinct code again,
//!   so m also sets the index's size: the default stays within [`SIZE_BUDGET`] times the packed
//!   codes and TIDs; `WITH (substrings = m)` overrides it.
//! - Slots: a table is sorted by its substring, and its directory records where each *slot*
//!   starts: the slot of a code is the first `slot_bits` bits of its substring. Slots are about
//!   half a page of records, so a probe reads one or two pages (PostgreSQL reads whole pages:
//!   finer slots would cost as many page reads and a larger directory).

/// Most substrings an index may have (`WITH (substrings = m)`).
pub const MAX_SUBSTRINGS: u32 = 16;
/// The default number of substrings keeps the index within this size, relative to the packed
/// codes and TIDs (with room left for directories and partly filled pages).
pub const SIZE_BUDGET: f64 = 2.3;
/// Most slot bits: a directory of 2^24 + 1 entries (64 MB) is the largest one we write.
pub const MAX_SLOT_BITS: u32 = 24;

/// One substring: bits `start .. start + bits` of the code (bit 0 = the most significant bit
/// of byte 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Substring {
    pub start: u32,
    pub bits: u32,
}

/// Cuts `code_bits` into `m` near-equal substrings (`1 <= m <= code_bits`).
pub fn split(code_bits: u32, m: u32) -> Vec<Substring> {
    assert!(m >= 1 && m <= code_bits, "1 <= m <= code_bits");
    let (base, longer) = (code_bits / m, code_bits % m);
    let mut start = 0;
    (0..m)
        .map(|i| {
            let bits = base + u32::from(i < longer);
            let s = Substring { start, bits };
            start += bits;
            s
        })
        .collect()
}

/// The default number of substrings for `rows` codes of `code_bits` bits: bits / log2(rows),
/// at most what [`SIZE_BUDGET`] allows, at least 1.
pub fn default_substrings(code_bits: u32, rows: u64) -> u32 {
    let nb = f64::from(code_bits / 8);
    let log_n = (rows.max(2) as f64).log2();
    let ideal = (f64::from(code_bits) / log_n).round().max(1.0) as u32;
    // Table 0 holds code + TID per row; each further table a code per distinct code.
    let row = nb + 6.0;
    let budget = (1.0 + ((SIZE_BUDGET - 1.0) * row / nb).floor()) as u32;
    ideal.min(budget).min(MAX_SUBSTRINGS).min(code_bits).max(1)
}

/// Slot bits for a table of `records` records, `per_page` to a page, whose substring has
/// `substring_bits` bits: about half a page of records per slot.
pub fn slot_bits(records: u64, per_page: usize, substring_bits: u32) -> u32 {
    let slots = (2 * records).div_ceil(per_page.max(1) as u64).max(1);
    let bits = 64 - (slots - 1).leading_zeros(); // ceil(log2(slots))
    bits.min(substring_bits).min(MAX_SLOT_BITS)
}

/// Bits `start .. start + len` of `code` as an integer, most significant first (`len <= 32`).
#[inline]
pub fn bits_at(code: &[u8], start: u32, len: u32) -> u32 {
    debug_assert!(len <= 32 && (start + len) as usize <= code.len() * 8);
    if len == 0 {
        return 0;
    }
    let first = (start / 8) as usize;
    let shift_in = start % 8;
    // Five bytes from the first hold shift_in + len <= 39 bits (assembled byte by byte: a
    // copy of a variable number of bytes would be a memcpy call in this hot loop).
    let mut w: u64 = 0;
    for k in 0..5 {
        w = (w << 8) | u64::from(code.get(first + k).copied().unwrap_or(0));
    }
    ((w << (24 + shift_in)) >> (64 - len)) as u32
}

/// The slot of `code` in a table: the first `slot_bits` bits of its substring.
#[inline]
pub fn slot_of(code: &[u8], sub: Substring, slot_bits: u32) -> u32 {
    bits_at(code, sub.start, slot_bits)
}

/// The first 32 bits of `code`'s substring (zero-padded when shorter): the key tables after
/// the first are sorted by, whatever their slot bits turn out to be.
#[inline]
pub fn sort_key(code: &[u8], sub: Substring) -> u32 {
    let len = sub.bits.min(32);
    bits_at(code, sub.start, len) << (32 - len)
}

/// C(n, k), saturating.
pub fn binomial(n: u32, k: u32) -> u64 {
    if k > n {
        return 0;
    }
    let k = k.min(n - k);
    let mut c: u64 = 1;
    for i in 0..k {
        c = c.saturating_mul(u64::from(n - i)) / u64::from(i + 1);
    }
    c
}

/// P(Binomial(bits, 1/2) <= d): the share of uniform random codes within distance d of a
/// query (computed in log space: 2^-4096 underflows).
pub fn uniform_within(bits: u32, d: u32) -> f64 {
    if d >= bits {
        return 1.0;
    }
    let n = f64::from(bits);
    let mut log_c = 0.0;
    let mut sum = 0.0;
    for i in 0..=d {
        if i > 0 {
            log_c += (n - f64::from(i) + 1.0).ln() - f64::from(i).ln();
        }
        sum += (log_c - n * std::f64::consts::LN_2).exp();
    }
    sum.min(1.0)
}

/// The distance within which `rows` uniform random codes of `bits` bits hold `k` codes on
/// average: where a k-NN query over high-entropy codes finds its k-th neighbour.
pub fn uniform_knn_distance(bits: u32, rows: u64, k: u64) -> u32 {
    (0..=bits)
        .find(|&d| rows as f64 * uniform_within(bits, d) >= k as f64)
        .unwrap_or(bits)
}

/// Every `bits`-bit mask with exactly `weight` bits set, in increasing order (Gosper's hack).
pub fn masks(bits: u32, weight: u32) -> impl Iterator<Item = u32> {
    let limit: u64 = 1 << bits;
    let mut next: Option<u64> = (weight <= bits).then(|| (1u64 << weight) - 1);
    std::iter::from_fn(move || {
        let v = next?;
        if v >= limit {
            return None;
        }
        next = if v == 0 {
            None
        } else {
            let c = v & v.wrapping_neg();
            let r = v + c;
            Some((((r ^ v) >> 2) / c) | r)
        };
        Some(v as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substrings_cover_the_code_once() {
        for bits in [8u32, 16, 64, 72, 128, 4096] {
            for m in 1..=bits.min(MAX_SUBSTRINGS) {
                let s = split(bits, m);
                assert_eq!(s.len() as u32, m);
                assert_eq!(s[0].start, 0);
                for w in s.windows(2) {
                    assert_eq!(w[0].start + w[0].bits, w[1].start);
                    assert!(w[0].bits >= w[1].bits && w[0].bits - w[1].bits <= 1);
                }
                assert_eq!(s[m as usize - 1].start + s[m as usize - 1].bits, bits);
            }
        }
    }

    #[test]
    fn default_substrings_follow_the_paper_within_the_size_budget() {
        // 64 bits: 1M rows -> 64/20 = 3.2 -> 3; 10M -> 2.75 -> 3; 1k rows -> 6.4, budget 3.
        assert_eq!(default_substrings(64, 1_000_000), 3);
        assert_eq!(default_substrings(64, 10_000_000), 3);
        assert_eq!(default_substrings(64, 1000), 3);
        // Longer codes: the budget binds (a further table costs a whole code per row).
        assert_eq!(default_substrings(128, 1_000_000), 2);
        assert_eq!(default_substrings(256, 1_000_000), 2);
        assert_eq!(default_substrings(32, 1_000_000), 2);
        assert_eq!(default_substrings(8, 1_000_000), 1);
        for bits in (8..=4096).step_by(8) {
            let m = default_substrings(bits, 1_000_000);
            let nb = f64::from(bits / 8);
            let size = (nb + 6.0 + f64::from(m - 1) * nb) / (nb + 6.0);
            assert!(size <= SIZE_BUDGET + 1e-9, "{bits} bits: m={m} size {size}");
        }
    }

    #[test]
    fn slot_bits_give_half_pages() {
        assert_eq!(slot_bits(0, 500, 20), 0);
        assert_eq!(slot_bits(250, 500, 20), 0);
        assert_eq!(slot_bits(1_000_000, 580, 21), 12); // 3449 slots -> 2^12
        assert_eq!(slot_bits(1_000_000, 580, 8), 8);
        assert_eq!(slot_bits(u64::MAX / 4, 1, 64), MAX_SLOT_BITS);
    }

    #[test]
    fn bits_at_reads_msb_first_at_any_offset() {
        let code = [0b1010_1100u8, 0b0101_0011, 0xff, 0x00, 0x81];
        assert_eq!(bits_at(&code, 0, 1), 1);
        assert_eq!(bits_at(&code, 1, 3), 0b010);
        assert_eq!(bits_at(&code, 4, 8), 0b1100_0101);
        assert_eq!(
            bits_at(&code, 0, 32),
            0b1010_1100_0101_0011_1111_1111_0000_0000
        );
        assert_eq!(
            bits_at(&code, 7, 32),
            0b0010_1001_1111_1111_1000_0000_0100_0000
        );
        assert_eq!(bits_at(&code, 39, 1), 1);
        assert_eq!(bits_at(&code, 5, 0), 0);
        // Against a bit-by-bit reference on every offset and length.
        let get = |i: u32| u32::from(code[(i / 8) as usize] >> (7 - i % 8) & 1);
        for start in 0..40 {
            for len in 0..=32.min(40 - start) {
                let want = (start..start + len).fold(0u32, |v, i| (v << 1) | get(i));
                assert_eq!(bits_at(&code, start, len), want, "{start}+{len}");
            }
        }
    }

    #[test]
    fn sort_keys_order_like_slots() {
        let sub = Substring { start: 3, bits: 12 };
        let a = [0b0001_0000u8, 0];
        let b = [0b0001_1000u8, 0];
        assert!(sort_key(&a, sub) < sort_key(&b, sub));
        assert_eq!(
            sort_key(&b, sub) >> 20,
            u32::from(bits_at(&b, 3, 12) != 0) * bits_at(&b, 3, 12)
        );
        assert_eq!(slot_of(&b, sub, 4), 0b1100);
    }

    #[test]
    fn uniform_neighbour_distances() {
        assert!((uniform_within(64, 32) - 0.549).abs() < 1e-3);
        assert_eq!(uniform_within(8, 8), 1.0);
        assert!((uniform_within(8, 0) - 1.0 / 256.0).abs() < 1e-12);
        // 10-NN of 1M and 10M uniform 64-bit codes: distance 15 and 14.
        assert_eq!(uniform_knn_distance(64, 1_000_000, 10), 15);
        assert_eq!(uniform_knn_distance(64, 10_000_000, 10), 14);
        assert_eq!(uniform_knn_distance(8, 1, 10), 8);
    }

    #[test]
    fn masks_enumerate_each_combination_once() {
        for bits in 0..=12u32 {
            for w in 0..=bits + 1 {
                let all: Vec<u32> = masks(bits, w).collect();
                assert_eq!(all.len() as u64, binomial(bits, w), "{bits} choose {w}");
                assert!(all.windows(2).all(|p| p[0] < p[1]));
                assert!(all
                    .iter()
                    .all(|m| m.count_ones() == w && u64::from(*m) < 1 << bits));
            }
        }
        assert_eq!(binomial(24, 12), 2_704_156);
        assert_eq!(binomial(3, 5), 0);
    }
}
