//! Rate estimation, as Linux IPVS does it (`net/netfilter/ipvs/ip_vs_est.c`).
//!
//! Every [`INTERVAL`] (2 s) the counters are sampled and each rate is
//! folded into an exponentially weighted moving average with weight
//! W = 2^-2: `avg += (rate - avg) / 4`, which averages over roughly the
//! last 8 seconds. Like the kernel, averages are kept in fixed point:
//! connections and packets per second scaled by 2^10, bytes per second by
//! 2^5. A 2-second delta therefore shifts left by 9 (resp. 4), not 10
//! (resp. 5), and reading rounds: `(avg + 0x1FF) >> 10`, `(avg + 0xF) >> 5`.

use crate::model::{Rates, Stats};
use std::time::Duration;

/// How often counters are sampled (IPVS: 2 seconds).
pub const INTERVAL: Duration = Duration::from_secs(2);

/// One estimator: the last sample and the scaled averages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Estimator {
    last: Stats,
    cps: i64,
    inpps: i64,
    outpps: i64,
    inbps: i64,
    outbps: i64,
}

/// One EWMA step: the delta over 2 s scaled by `shift`, folded in with W = 1/4.
fn step(avg: &mut i64, now: u64, last: u64, shift: u32) {
    let delta = now.saturating_sub(last);
    let rate = i64::try_from(delta.checked_shl(shift).unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
    // Arithmetic shift, as the kernel's `((s64)rate - (s64)avg) >> 2`.
    *avg = avg.saturating_add(rate.saturating_sub(*avg) >> 2);
}

fn read(avg: i64, round: i64, shift: u32) -> u64 {
    u64::try_from(avg.max(0).saturating_add(round) >> shift).unwrap_or(0)
}

impl Estimator {
    /// An estimator starting from counters `now` with all rates zero (so a
    /// service that already has traffic does not show a spike).
    pub fn new(now: &Stats) -> Estimator {
        Estimator {
            last: *now,
            ..Estimator::default()
        }
    }

    /// Folds in a sample taken [`INTERVAL`] after the previous one.
    pub fn sample(&mut self, now: &Stats) {
        let l = self.last;
        step(&mut self.cps, now.conns, l.conns, 9);
        step(&mut self.inpps, now.inpkts, l.inpkts, 9);
        step(&mut self.outpps, now.outpkts, l.outpkts, 9);
        step(&mut self.inbps, now.inbytes, l.inbytes, 4);
        step(&mut self.outbps, now.outbytes, l.outbytes, 4);
        self.last = *now;
    }

    /// The rates now, rounded as `ip_vs_read_estimator` does.
    pub fn rates(&self) -> Rates {
        Rates {
            cps: read(self.cps, 0x1FF, 10),
            inpps: read(self.inpps, 0x1FF, 10),
            outpps: read(self.outpps, 0x1FF, 10),
            inbps: read(self.inbps, 0xF, 5),
            outbps: read(self.outbps, 0xF, 5),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sequence worked out by hand from ip_vs_est.c's arithmetic.
    #[test]
    fn ewma_sequence_matches_ipvs() {
        let mut c = Stats::default();
        let mut e = Estimator::new(&c);
        // 100 connections and 1000 bytes in each 2-second interval:
        // 50 conn/s and 500 B/s.
        let mut seen = Vec::new();
        for _ in 0..4 {
            c.conns += 100;
            c.inbytes += 1000;
            e.sample(&c);
            let r = e.rates();
            seen.push((r.cps, r.inbps));
        }
        // cps avg: 12800, 22400, 29600, 35000 (scaled 2^10)
        // inbps avg: 4000, 7000, 9250, 10937 (scaled 2^5)
        assert_eq!(seen, vec![(12, 125), (22, 219), (29, 289), (34, 342)]);
        // traffic stops: avg += (0 - avg) >> 2 with a floor shift
        e.sample(&c);
        // cps: 35000 + (-35000 >> 2 = -8750) = 26250 -> (26250+511)>>10 = 26
        // inbps: 10937 + (-10937 >> 2 = -2735) = 8202 -> (8202+15)>>5 = 256
        assert_eq!((e.rates().cps, e.rates().inbps), (26, 256));
        // converges to the true rate, and decays to exactly zero
        for _ in 0..60 {
            c.inpkts += 2000;
            e.sample(&c);
        }
        assert_eq!(e.rates().inpps, 1000);
        for _ in 0..60 {
            e.sample(&c);
        }
        assert_eq!(e.rates(), Rates::default());
    }

    #[test]
    fn starts_from_current_counters_and_survives_going_backwards() {
        let big = Stats {
            conns: 1_000_000,
            inpkts: u64::MAX,
            ..Stats::default()
        };
        let mut e = Estimator::new(&big);
        e.sample(&big);
        assert_eq!(e.rates(), Rates::default());
        e.sample(&Stats::default());
        assert_eq!(e.rates(), Rates::default());
        e.sample(&big); // a huge jump saturates instead of overflowing
        assert!(e.rates().inpps > 0);
    }

    /// A known, steady rate is shown exactly once the average has settled,
    /// and each step on the way is the kernel's arithmetic.
    #[test]
    fn known_rates_are_shown_exactly() {
        // wrk-like rates: 9,000 and 22,000 connections per second, with
        // 10 packets and 1,000 bytes per connection each way.
        for cps in [9_000u64, 22_000, 1] {
            let mut c = Stats::default();
            let mut e = Estimator::new(&c);
            let mut want_avg: i64 = 0;
            // the error shrinks by 3/4 a sample: 100 samples settle even
            // 22 MB/s to the byte
            for i in 0..100 {
                c.conns += 2 * cps;
                c.inpkts += 2 * cps * 10;
                c.inbytes += 2 * cps * 1000;
                e.sample(&c);
                want_avg += ((cps << 10) as i64 - want_avg) >> 2;
                assert_eq!(
                    e.rates().cps,
                    ((want_avg + 0x1FF) >> 10) as u64,
                    "sample {i}"
                );
            }
            let r = e.rates();
            assert_eq!((r.cps, r.inpps, r.inbps), (cps, cps * 10, cps * 1000));
        }
    }
}
