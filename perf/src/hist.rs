//! A log-linear latency histogram in the manner of HdrHistogram: values
//! below 2^SUB_BITS are counted exactly; above, each power of two is split
//! into 2^(SUB_BITS-1) linear buckets, so every recorded value is kept to
//! within 1/2^(SUB_BITS-1) (0.2 %) of itself. Fixed size, no allocation
//! when recording.

const SUB_BITS: u32 = 10;
const SUB: u64 = 1 << SUB_BITS;
const HALF: u64 = SUB / 2;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * HALF) as usize;

/// Counts of values (any unit; rvs-perf records TSC cycles).
#[derive(Clone)]
pub struct Hist {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    min: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Hist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hist({} values, max {})", self.total, self.max)
    }
}

#[inline(always)]
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros(); // >= SUB_BITS
    let shift = msb + 1 - SUB_BITS;
    let sub = (v >> shift) - HALF; // 0..HALF
    (SUB + u64::from(shift - 1) * HALF + sub) as usize
}

/// The highest value that lands in bucket `i`.
fn value_of(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i - SUB) / HALF + 1;
    let sub = (i - SUB) % HALF + HALF;
    (((u128::from(sub) + 1) << shift) - 1).min(u128::from(u64::MAX)) as u64
}

impl Hist {
    /// Empty.
    pub fn new() -> Self {
        Hist {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            min: u64::MAX,
        }
    }

    /// Records one value.
    #[inline(always)]
    pub fn record(&mut self, v: u64) {
        if let Some(c) = self.counts.get_mut(index(v)) {
            *c += 1;
        }
        self.total += 1;
        self.max = self.max.max(v);
        self.min = self.min.min(v);
    }

    /// Values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// Smallest value recorded (0 when empty).
    pub fn min(&self) -> u64 {
        if self.total == 0 {
            0
        } else {
            self.min
        }
    }

    /// The value at quantile `q` (0..=1): the highest value equivalent to
    /// the bucket that holds it, never above the maximum recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let want = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want {
                return value_of(i).min(self.max);
            }
        }
        self.max
    }

    /// Clears it.
    pub fn reset(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
        self.min = u64::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..5_000_000u64).step_by(97) {
            let i = index(v);
            assert!(i >= last, "monotonic");
            last = i;
            assert!(i < BUCKETS);
            let hi = value_of(i);
            assert!(hi >= v, "{v} -> bucket {i} tops at {hi}");
            assert!((hi - v) as f64 <= v as f64 / HALF as f64 + 1.0);
        }
        for v in [u64::MAX / 3, u64::MAX] {
            assert!(index(v) < BUCKETS);
            assert!(value_of(index(v)) >= v);
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Hist::new();
        for v in 1..=10_000u64 {
            h.record(v * 10);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.003, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 99_000.0).abs() / 99_000.0 < 0.003, "{p99}");
        assert_eq!(h.quantile(1.0), 100_000);
        assert_eq!(h.len(), 10_000);
        assert_eq!(h.min(), 10);
        h.reset();
        assert!(h.is_empty());
        assert_eq!(h.quantile(0.5), 0);
    }
}
