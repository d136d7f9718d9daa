//! Centroids for the index's lists: k-modes, the Hamming-space k-means (assign each code to
//! its nearest centroid; each centroid bit becomes the majority bit of its members).
//!
//! The centroids only need to be *good*, never exact: search is exact whatever they are,
//! because each list records a covering radius around its centroid. Good centroids make the
//! radii small, so searches skip most lists. Learned hash codes cluster tightly around the
//! class centres, which is where this pays off most.

use ics_codes::hamming::nearest;

/// Deterministic xorshift64*: the build must not depend on a random source that differs
/// between runs (REINDEX gives the same index for the same table).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Trains up to `k` centroids on `sample` (packed codes of `nb` bytes each, contiguous).
/// Returns distinct centroids (duplicates and empty clusters are dropped), at least one.
/// `check` runs every few thousand rows (to honour a cancel request).
pub fn train(
    sample: &[u8],
    nb: usize,
    k: usize,
    iterations: usize,
    seed: u64,
    check: &mut dyn FnMut(),
) -> Vec<u8> {
    let n = sample.len() / nb;
    assert!(n > 0 && k > 0, "k-modes needs codes and k >= 1");
    let code = |i: usize| &sample[i * nb..(i + 1) * nb];
    let mut rng = Rng::new(seed);

    // Seeds: distinct codes drawn from the sample.
    let mut centroids: Vec<u8> = Vec::with_capacity(k * nb);
    let mut seen = std::collections::HashSet::new();
    let mut tries = 0;
    while centroids.len() / nb < k.min(n) && tries < 4 * k + n {
        let c = code(rng.below(n));
        if seen.insert(c.to_vec()) {
            centroids.extend_from_slice(c);
        }
        tries += 1;
    }

    let bits = nb * 8;
    let mut assignment = vec![0usize; n];
    let mut scratch = Vec::new();
    for _ in 0..iterations {
        let k_now = centroids.len() / nb;
        let mut changed = 0;
        for (i, a) in assignment.iter_mut().enumerate() {
            if i % 4096 == 0 {
                check();
            }
            let (best, _) = nearest(code(i), &centroids, &mut scratch);
            if *a != best {
                changed += 1;
                *a = best;
            }
        }
        // Majority vote per bit; ties keep the old bit (stable).
        let mut ones = vec![0u32; k_now * bits];
        let mut sizes = vec![0u32; k_now];
        for (i, &a) in assignment.iter().enumerate() {
            sizes[a] += 1;
            let counts = &mut ones[a * bits..(a + 1) * bits];
            for (byte_index, &byte) in code(i).iter().enumerate() {
                for bit in 0..8 {
                    counts[byte_index * 8 + bit] += u32::from((byte >> (7 - bit)) & 1);
                }
            }
        }
        for c in 0..k_now {
            if sizes[c] == 0 {
                // Empty cluster: restart it on a random sample code.
                let j = rng.below(n);
                centroids[c * nb..(c + 1) * nb].copy_from_slice(code(j));
                continue;
            }
            let counts = &ones[c * bits..(c + 1) * bits];
            let centroid = &mut centroids[c * nb..(c + 1) * nb];
            for (b, &count) in counts.iter().enumerate() {
                let mask = 0x80u8 >> (b % 8);
                if 2 * count > sizes[c] {
                    centroid[b / 8] |= mask;
                } else if 2 * count < sizes[c] {
                    centroid[b / 8] &= !mask;
                }
            }
        }
        if changed == 0 {
            break;
        }
    }

    // Drop duplicates and clusters nobody is nearest to.
    let k_now = centroids.len() / nb;
    let mut used = vec![false; k_now];
    for i in 0..n {
        used[nearest(code(i), &centroids, &mut scratch).0] = true;
    }
    let mut out = Vec::with_capacity(centroids.len());
    let mut kept = std::collections::HashSet::new();
    for c in 0..k_now {
        let centroid = &centroids[c * nb..(c + 1) * nb];
        if used[c] && kept.insert(centroid.to_vec()) {
            out.extend_from_slice(centroid);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_clear_clusters() {
        // Three centres far apart, members with one flipped bit each.
        let centres: [[u8; 2]; 3] = [[0x00, 0x00], [0xff, 0x00], [0x0f, 0xf0]];
        let mut sample = Vec::new();
        for (i, c) in centres.iter().enumerate() {
            for bit in 0..16 {
                let mut code = *c;
                code[bit / 8] ^= 0x80 >> (bit % 8);
                if (bit + i) % 3 != 0 {
                    sample.extend_from_slice(&code);
                }
            }
            sample.extend_from_slice(c);
        }
        let centroids = train(&sample, 2, 3, 10, 7, &mut || {});
        let mut found: Vec<[u8; 2]> = centroids.chunks_exact(2).map(|c| [c[0], c[1]]).collect();
        found.sort();
        let mut want = centres.to_vec();
        want.sort();
        assert_eq!(found, want);
    }

    #[test]
    fn deterministic_distinct_and_bounded() {
        let mut rng = Rng::new(1);
        let sample: Vec<u8> = (0..8 * 500).map(|_| rng.next_u64() as u8).collect();
        let a = train(&sample, 8, 16, 5, 42, &mut || {});
        let b = train(&sample, 8, 16, 5, 42, &mut || {});
        assert_eq!(a, b);
        let k = a.len() / 8;
        assert!((1..=16).contains(&k));
        let set: std::collections::HashSet<&[u8]> = a.chunks_exact(8).collect();
        assert_eq!(set.len(), k);
        // k larger than the number of distinct codes.
        let few = [1u8, 1, 2, 2, 1];
        let c = train(&few, 1, 10, 5, 3, &mut || {});
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn nearest_prefers_lowest_index_on_ties() {
        let centroids = [0b1100_0000u8, 0b0011_0000, 0b1100_0000];
        let mut s = Vec::new();
        assert_eq!(nearest(&[0b1100_0000], &centroids, &mut s), (0, 0));
        assert_eq!(nearest(&[0b1111_0000], &centroids, &mut s), (0, 2));
        assert_eq!(nearest(&[0b0011_0001], &centroids, &mut s), (1, 1));
    }
}
