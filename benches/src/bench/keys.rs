//! Which key each request touches: uniform, zipfian or sequential over `0..keyspace`, and
//! the key's text (`key:000000000042`, the width redis-benchmark uses).

use super::rng::Rng;

/// The fewest digits a key number is written with, so keys have one length (as with
/// redis-benchmark's `key:__rand_int__`).
pub const KEY_MIN_DIGITS: usize = 12;

/// How keys are drawn from the keyspace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Distribution {
    /// Every key equally likely.
    Uniform,
    /// Key `k` (from 0) drawn with probability proportional to `1 / (k + 1)^skew`: key 0 is
    /// the hottest. YCSB's default skew is 0.99.
    Zipf { skew: f64 },
    /// Connection `c` of `C` touches keys `c, c + C, c + 2C, ...` (modulo the keyspace), so
    /// together the connections walk the keyspace in order and `keyspace` requests touch
    /// every key once.
    Sequential,
}

impl Distribution {
    pub fn name(&self) -> String {
        match self {
            Self::Uniform => "uniform".into(),
            Self::Zipf { skew } => format!("zipf (skew {skew})"),
            Self::Sequential => "sequential".into(),
        }
    }
}

/// Zipf sampling by rejection-inversion (Hörmann and Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", 1996), as in Apache Commons
/// RNG: constant setup and expected constant time per sample for any keyspace and any
/// skew > 0, where YCSB's method needs a pass over the whole keyspace to set up.
#[derive(Clone, Debug)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    s: f64,
}

impl Zipf {
    /// A sampler over `1..=n`. `n >= 1`, `exponent > 0`.
    pub fn new(n: u64, exponent: f64) -> Self {
        assert!(n >= 1 && exponent > 0.0 && exponent.is_finite());
        let mut z = Self {
            n: n as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            s: 0.0,
        };
        z.h_integral_x1 = z.h_integral(1.5) - 1.0;
        z.h_integral_n = z.h_integral(n as f64 + 0.5);
        z.s = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    /// A rank in `1..=n`; rank 1 is the most frequent.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.unit_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.s || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

/// The keyspace and distribution shared by all connections (read-only during a run).
#[derive(Clone, Debug)]
pub struct KeySpace {
    pub size: u64,
    pub distribution: Distribution,
    zipf: Option<Zipf>,
    prefix: Vec<u8>,
    digits: usize,
}

impl KeySpace {
    pub fn new(size: u64, distribution: Distribution, prefix: &str) -> Self {
        assert!(size >= 1);
        let zipf = match distribution {
            Distribution::Zipf { skew } => Some(Zipf::new(size, skew)),
            _ => None,
        };
        let digits = (size - 1).checked_ilog10().map_or(1, |d| d as usize + 1);
        Self {
            size,
            distribution,
            zipf,
            prefix: prefix.as_bytes().to_vec(),
            digits: digits.max(KEY_MIN_DIGITS),
        }
    }

    /// Bytes of every key's text.
    pub fn key_len(&self) -> usize {
        self.prefix.len() + self.digits
    }

    /// Appends key number `k`'s text.
    #[inline]
    pub fn write_key(&self, k: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.prefix);
        let mut digits = [b'0'; 20];
        let mut v = k;
        let mut i = digits.len();
        while v > 0 {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&digits[digits.len() - self.digits..]);
    }

    /// The per-connection cursor for connection `conn` of `conns`.
    pub fn cursor(&self, conn: u64, conns: u64) -> KeyCursor {
        KeyCursor {
            next: conn % self.size,
            stride: conns.max(1) % self.size,
        }
    }

    /// The next key number for a connection.
    #[inline]
    pub fn next_key(&self, cursor: &mut KeyCursor, rng: &mut Rng) -> u64 {
        match self.distribution {
            Distribution::Uniform => rng.below(self.size),
            Distribution::Zipf { .. } => self.zipf.as_ref().map_or(0, |z| z.sample(rng) - 1),
            Distribution::Sequential => {
                let k = cursor.next;
                // cursor.next < size and stride < size, so this neither overflows nor
                // leaves the keyspace.
                cursor.next += cursor.stride;
                if cursor.next >= self.size {
                    cursor.next -= self.size;
                }
                k
            }
        }
    }
}

/// Per-connection state of the sequential walk.
#[derive(Clone, Copy, Debug)]
pub struct KeyCursor {
    next: u64,
    stride: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(ks: &KeySpace, conns: u64, draws: u64) -> Vec<u64> {
        let mut hits = vec![0u64; ks.size as usize];
        for c in 0..conns {
            let mut rng = Rng::new(42, c);
            let mut cur = ks.cursor(c, conns);
            for _ in 0..draws / conns {
                hits[ks.next_key(&mut cur, &mut rng) as usize] += 1;
            }
        }
        hits
    }

    /// Share of all hits that landed on the `top` most-hit keys.
    fn top_share(hits: &[u64], top: usize) -> f64 {
        let mut sorted = hits.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let total: u64 = sorted.iter().sum();
        sorted[..top].iter().sum::<u64>() as f64 / total as f64
    }

    #[test]
    fn keys_have_fixed_width() {
        let ks = KeySpace::new(1000, Distribution::Uniform, "key:");
        let mut out = Vec::new();
        ks.write_key(42, &mut out);
        assert_eq!(out, b"key:000000000042");
        assert_eq!(out.len(), ks.key_len());
        let wide = KeySpace::new(10_000_000_000_000, Distribution::Uniform, "");
        out.clear();
        wide.write_key(9_999_999_999_999, &mut out);
        assert_eq!(out, b"9999999999999");
        assert_eq!(wide.key_len(), 13);
    }

    #[test]
    fn sequential_covers_the_keyspace_once() {
        for (size, conns) in [(1000u64, 1u64), (1000, 8), (999, 10), (7, 3)] {
            let ks = KeySpace::new(size, Distribution::Sequential, "k");
            let mut hits = vec![0u32; size as usize];
            for c in 0..conns {
                let mut rng = Rng::new(1, c);
                let mut cur = ks.cursor(c, conns);
                // The quota split used by the generator: the first size % conns
                // connections take one more.
                let quota = size / conns + u64::from(c < size % conns);
                for _ in 0..quota {
                    hits[ks.next_key(&mut cur, &mut rng) as usize] += 1;
                }
            }
            assert!(
                hits.iter().all(|&h| h == 1),
                "size {size} conns {conns}: {hits:?}"
            );
        }
    }

    #[test]
    fn uniform_is_flat() {
        let ks = KeySpace::new(1000, Distribution::Uniform, "k");
        let hits = counts(&ks, 4, 200_000);
        // 1% of the keys take about 1% of the hits.
        let share = top_share(&hits, 10);
        assert!(share < 0.02, "{share}");
        assert!(hits.iter().all(|&h| h > 100), "every key is hit");
    }

    #[test]
    fn zipf_puts_most_hits_on_few_keys() {
        let ks = KeySpace::new(10_000, Distribution::Zipf { skew: 0.99 }, "k");
        let hits = counts(&ks, 4, 400_000);
        // Analytically, for skew 0.99 over 10 000 keys: key 0 takes ~10.2%, the top 1%
        // ~49%, the top 10% ~74%.
        let total: u64 = hits.iter().sum();
        let first = hits[0] as f64 / total as f64;
        assert!((0.09..0.115).contains(&first), "key 0 share {first}");
        let top1 = top_share(&hits, 100);
        assert!((0.45..0.53).contains(&top1), "top 1% share {top1}");
        assert!(hits[0] > hits[1] && hits[1] > hits[9] && hits[9] > hits[999]);
        // A steeper skew concentrates more.
        let steep = KeySpace::new(10_000, Distribution::Zipf { skew: 1.5 }, "k");
        let steep_hits = counts(&steep, 1, 100_000);
        assert!(top_share(&steep_hits, 100) > 0.9);
    }

    #[test]
    fn zipf_matches_the_exact_probabilities() {
        let n = 50u64;
        let skew = 0.8;
        let z = Zipf::new(n, skew);
        let mut rng = Rng::new(3, 0);
        let draws = 500_000;
        let mut hits = vec![0u64; n as usize];
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            hits[(k - 1) as usize] += 1;
        }
        let norm: f64 = (1..=n).map(|k| (k as f64).powf(-skew)).sum();
        for (i, &h) in hits.iter().enumerate() {
            let p = ((i + 1) as f64).powf(-skew) / norm;
            let got = h as f64 / f64::from(draws);
            assert!(
                (got - p).abs() < 0.004 + p * 0.05,
                "rank {}: {got} vs {p}",
                i + 1
            );
        }
    }

    #[test]
    fn zipf_edge_sizes() {
        let mut rng = Rng::new(0, 0);
        let one = Zipf::new(1, 0.99);
        assert!((0..100).all(|_| one.sample(&mut rng) == 1));
        let exact_one = Zipf::new(1000, 1.0);
        assert!((0..1000).all(|_| (1..=1000).contains(&exact_one.sample(&mut rng))));
        let huge = Zipf::new(1 << 40, 0.99);
        assert!((0..1000).all(|_| (1..=1 << 40).contains(&huge.sample(&mut rng))));
    }
}
