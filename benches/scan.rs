//! The floor every index latency is measured against: one thread scanning the packed codes in
//! memory with the fastest Hamming kernel this CPU has (no database, no pages, no TIDs). A
//! k-NN query can never need more than one pass over the codes, so an index that is slower
//! than this scan has room to improve; one that is faster proves it skips codes.

use ics_codes::hamming::within;

/// Codes per kernel call: big enough that a call costs nothing against its codes, small
/// enough that the k-th distance found so far tightens the bound early.
const BLOCK: usize = 1024;

/// The `k` codes nearest `query` (ties by position), as (position, distance), nearest first.
/// `hits` is scratch space, reused between calls.
pub fn knn(query: &[u8], codes: &[u8], k: usize, hits: &mut Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    let nb = query.len();
    hits.clear();
    if k == 0 || nb == 0 {
        return Vec::new();
    }
    let mut bound = (nb * 8) as u32;
    let keep = (2 * k).max(64);
    for (b, block) in codes.chunks(BLOCK * nb).enumerate() {
        let start = hits.len();
        within(query, block, bound, hits);
        for h in &mut hits[start..] {
            h.0 += (b * BLOCK) as u32;
        }
        if hits.len() >= keep {
            hits.select_nth_unstable_by_key(k - 1, |h| h.1);
            bound = hits[k - 1].1;
            hits.retain(|h| h.1 <= bound);
        }
    }
    hits.sort_unstable_by_key(|h| (h.1, h.0));
    hits.truncate(k);
    hits.clone()
}

/// Number of codes within `radius` of `query` (the positions are collected, as a query must).
pub fn radius(query: &[u8], codes: &[u8], radius: u32, hits: &mut Vec<(u32, u32)>) -> usize {
    hits.clear();
    within(query, codes, radius, hits);
    hits.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gen::Spec;
    use ics_codes::hamming::hamming_scalar;

    fn brute(query: &[u8], codes: &[u8], k: usize) -> Vec<(u32, u32)> {
        let mut all: Vec<(u32, u32)> = codes
            .chunks_exact(query.len())
            .enumerate()
            .map(|(i, c)| (i as u32, hamming_scalar(query, c)))
            .collect();
        all.sort_by_key(|h| (h.1, h.0));
        all.truncate(k);
        all
    }

    #[test]
    fn knn_and_radius_equal_brute_force() {
        for (kind, bits) in [
            ("uniform", 64),
            ("multilabel", 64),
            ("clustered", 128),
            ("uniform", 40),
        ] {
            let mut spec = Spec::new(kind).unwrap();
            spec.bits = bits;
            let nb = bits / 8;
            let mut stream = spec.stream();
            let n = 5000 + 17;
            let mut codes = vec![0u8; n * nb];
            for c in codes.chunks_exact_mut(nb) {
                stream.next_into(c);
            }
            let mut query = vec![0u8; nb];
            let mut hits = Vec::new();
            for _ in 0..5 {
                stream.next_into(&mut query);
                for k in [1, 10, 100, 3000, n + 5] {
                    assert_eq!(
                        knn(&query, &codes, k, &mut hits),
                        brute(&query, &codes, k),
                        "{kind} {bits} k {k}"
                    );
                }
                for r in [0, 4, 8, 16, 32] {
                    let want = brute(&query, &codes, n).iter().filter(|h| h.1 <= r).count();
                    assert_eq!(
                        radius(&query, &codes, r, &mut hits),
                        want,
                        "{kind} {bits} r {r}"
                    );
                }
            }
        }
    }
}
