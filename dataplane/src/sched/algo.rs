//! The list-walking schedulers: rr, wrr, lc, wlc, sed, nq, fo, ovf, twos.
//!
//! Each walks the real servers in configuration order exactly as its IPVS
//! counterpart walks `svc->destinations`, with the same skip rules and
//! tie-breaks (the first server wins a tie). Products of overhead and
//! weight fit in `u64`: overhead < 2^41, weight <= 65535.

#![deny(clippy::indexing_slicing)]

use super::{RealServer, SplitMix64, WrrState};

#[inline]
fn weight(r: &RealServer) -> u64 {
    u64::from(r.weight)
}

/// `ip_vs_rr_schedule`: the next server after the cursor with weight > 0
/// and not overloaded, going round once.
pub(crate) fn rr(reals: &[RealServer], cursor: &mut Option<usize>) -> Option<usize> {
    let n = reals.len();
    let start = cursor.map_or(0, |c| c + 1);
    for k in 0..n {
        let i = (start + k) % n;
        if reals.get(i).is_some_and(RealServer::available) {
            *cursor = Some(i);
            return Some(i);
        }
    }
    None
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// `ip_vs_wrr_init_svc`: cursor at the head, gcd step, cw = mw.
pub(crate) fn wrr_init(reals: &[RealServer]) -> WrrState {
    let mut g = 0i64;
    let mut max = 0i64;
    for r in reals {
        let w = i64::from(r.weight);
        if w > 0 {
            g = if g > 0 { gcd(w, g) } else { w };
        }
        max = max.max(w);
    }
    let di = if g > 0 { g } else { 1 };
    let mw = max - (di - 1);
    WrrState {
        cl: None,
        cw: mw,
        mw,
        di,
    }
}

/// `ip_vs_wrr_dest_changed`: on a new generation the cursor goes back to
/// the head and gcd/max are recomputed; the current weight carries over
/// when it is still within (0, mw], rounded to the new gcd step.
pub(crate) fn wrr_changed(reals: &[RealServer], old: WrrState) -> WrrState {
    let mut st = wrr_init(reals);
    if old.cw > 0 && old.cw <= st.mw {
        st.cw = if st.di > 1 {
            (old.cw / st.di) * st.di + 1
        } else {
            old.cw
        };
    }
    st
}

/// `ip_vs_wrr_schedule`: continue after the last pick for a server whose
/// weight is at least the current weight; at the end of the list lower the
/// current weight by the gcd, wrapping to the max. Stops (None) once every
/// server was checked against weight >= 1, as IPVS's `last_pass`/`stop`.
pub(crate) fn wrr(reals: &[RealServer], st: &mut WrrState) -> Option<usize> {
    if st.mw <= 0 || reals.is_empty() {
        return None;
    }
    let n = reals.len();
    let last = st.cl;
    let mut pos = st.cl;
    let mut stop: Option<usize> = None;
    let mut last_pass = false;
    let mut restarted = false;
    // Bounded by IPVS's own termination argument: at most two descents
    // from mw to 1; the explicit cap makes that visible.
    let max_rounds = 2 * (st.mw / st.di.max(1)) + 4;
    for _ in 0..max_rounds {
        let mut i = pos.map_or(0, |p| p + 1);
        while i < n {
            if let Some(r) = reals.get(i) {
                if !r.counters.overloaded() && i64::from(r.weight) >= st.cw {
                    st.cl = Some(i);
                    return Some(i);
                }
            }
            if stop == Some(i) {
                st.cl = Some(i);
                return None;
            }
            i += 1;
        }
        pos = None;
        st.cw -= st.di;
        if st.cw <= 0 {
            st.cw = st.mw;
            if last_pass || last.is_none() {
                st.cl = None;
                return None;
            }
            restarted = true;
        }
        last_pass = st.cw <= st.di;
        if last_pass && restarted && last.is_some() {
            stop = last;
        }
    }
    st.cl = None;
    None
}

/// `ip_vs_lc_schedule`: least overhead among servers with weight > 0 and
/// not overloaded.
pub(crate) fn lc(reals: &[RealServer]) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, r) in reals.iter().enumerate() {
        if !r.available() {
            continue;
        }
        let doh = r.counters.overhead();
        if best.is_none_or(|(_, loh)| doh < loh) {
            best = Some((i, doh));
        }
    }
    best.map(|b| b.0)
}

/// The weighted-least walk shared by wlc and sed (and lblc/lblcr's
/// scheduling step): the first available server, then any later
/// non-overloaded one with `loh * dw > doh * lw`.
#[inline]
pub(crate) fn weighted_least<'a, I, F>(it: I, overhead: F) -> Option<usize>
where
    I: Iterator<Item = (usize, &'a RealServer)>,
    F: Fn(&RealServer) -> u64,
{
    let mut least: Option<(usize, u64, u64)> = None;
    for (i, r) in it {
        match least {
            None => {
                if r.available() {
                    least = Some((i, overhead(r), weight(r)));
                }
            }
            Some((_, loh, lw)) => {
                if r.counters.overloaded() {
                    continue;
                }
                let doh = overhead(r);
                if loh * weight(r) > doh * lw {
                    least = Some((i, doh, weight(r)));
                }
            }
        }
    }
    least.map(|l| l.0)
}

/// `ip_vs_wlc_schedule`: least overhead / weight.
pub(crate) fn wlc(reals: &[RealServer]) -> Option<usize> {
    weighted_least(reals.iter().enumerate(), |r| r.counters.overhead())
}

/// `ip_vs_sed_schedule`: least (active + 1) / weight.
pub(crate) fn sed(reals: &[RealServer]) -> Option<usize> {
    weighted_least(reals.iter().enumerate(), |r| {
        u64::from(r.counters.active()) + 1
    })
}

/// `ip_vs_nq_schedule`: the first idle (no active connections) server,
/// else least (active + 1) / weight.
pub(crate) fn nq(reals: &[RealServer]) -> Option<usize> {
    let mut least: Option<(usize, u64, u64)> = None;
    for (i, r) in reals.iter().enumerate() {
        if !r.available() {
            continue;
        }
        let active = u64::from(r.counters.active());
        if active == 0 {
            return Some(i);
        }
        let doh = active + 1;
        if least.is_none_or(|(_, loh, lw)| loh * weight(r) > doh * lw) {
            least = Some((i, doh, weight(r)));
        }
    }
    least.map(|l| l.0)
}

/// `ip_vs_fo_schedule`: the first non-overloaded server of the highest
/// weight (> 0).
pub(crate) fn fo(reals: &[RealServer]) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut hw = 0u32;
    for (i, r) in reals.iter().enumerate() {
        if !r.counters.overloaded() && r.weight > hw {
            best = Some(i);
            hw = r.weight;
        }
    }
    best
}

/// `ip_vs_ovf_schedule`: the first highest-weight server, not overloaded,
/// with weight > 0 and active connections not above its weight.
pub(crate) fn ovf(reals: &[RealServer]) -> Option<usize> {
    let mut best: Option<(usize, u32)> = None;
    for (i, r) in reals.iter().enumerate() {
        let w = r.weight;
        if r.counters.overloaded() || r.counters.active() > w || w == 0 {
            continue;
        }
        if best.is_none_or(|(_, hw)| w > hw) {
            best = Some((i, w));
        }
    }
    best.map(|b| b.0)
}

/// `ip_vs_twos_schedule`: two servers drawn with probability by weight
/// (IPVS draws in `[0, total]`, so the first server gets one extra
/// chance), then the one with the lower overhead / weight; the first draw
/// wins ties.
pub(crate) fn twos(reals: &[RealServer], rng: &mut SplitMix64) -> Option<usize> {
    let mut total = 0u64;
    let mut last = None;
    for (i, r) in reals.iter().enumerate() {
        if r.available() {
            total += weight(r);
            last = Some(i);
        }
    }
    let last = last?;
    total += 1;
    let r1 = rng.next_u64() % total;
    let r2 = rng.next_u64() % total;
    let (mut rw1, mut rw2) = (r1 as i64, r2 as i64);
    let mut c1: Option<(usize, u64, u64)> = None;
    let mut c2: Option<(usize, u64, u64)> = None;
    for (i, r) in reals.iter().enumerate() {
        if !r.available() {
            continue;
        }
        let w = weight(r);
        rw1 -= w as i64;
        rw2 -= w as i64;
        if rw1 <= 0 && c1.is_none() {
            c1 = Some((i, w, r.counters.overhead()));
        }
        if rw2 <= 0 && c2.is_none() {
            c2 = Some((i, w, r.counters.overhead()));
        }
        if c1.is_some() && c2.is_some() {
            break;
        }
    }
    match (c1, c2) {
        (Some((_, w1, oh1)), Some((i2, w2, oh2))) if w2 * oh1 > w1 * oh2 => Some(i2),
        (Some((i1, _, _)), _) => Some(i1),
        (None, _) => Some(last),
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn reals(ws: &[u32]) -> Vec<RealServer> {
        ws.iter()
            .enumerate()
            .map(|(i, &w)| {
                RealServer::new(
                    i as u32,
                    IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)),
                    80,
                    w,
                )
            })
            .collect()
    }

    fn counts(rs: &[RealServer], c: &[(u32, u32)]) {
        for (r, &(a, i)) in rs.iter().zip(c) {
            r.counters.set_counts(a, i);
        }
    }

    fn seq(rs: &[RealServer], n: usize) -> String {
        let mut st = wrr_init(rs);
        (0..n)
            .map(|_| wrr(rs, &mut st).map_or('-', |i| (b'A' + i as u8) as char))
            .collect()
    }

    #[test]
    fn rr_order_skips_quiesced_and_overloaded() {
        let rs = reals(&[1, 1, 0, 1]);
        let mut c = None;
        let got: Vec<_> = (0..6).map(|_| rr(&rs, &mut c)).collect();
        assert_eq!(got, [0, 1, 3, 0, 1, 3].map(Some));
        rs[1]
            .counters
            .conn_bound(false, crate::sched::Thresholds { upper: 1, lower: 0 });
        let got: Vec<_> = (0..4).map(|_| rr(&rs, &mut c)).collect();
        assert_eq!(got, [0, 3, 0, 3].map(Some));
        assert_eq!(rr(&reals(&[0, 0]), &mut None), None);
        assert_eq!(rr(&[], &mut None), None);
    }

    #[test]
    fn wrr_ipvs_sequence_4_3_2() {
        // cw=4: A | cw=3: A B | cw=2: A B C | cw=1: A B C | wrap.
        assert_eq!(seq(&reals(&[4, 3, 2]), 18), "AABABCABCAABABCABC");
    }

    #[test]
    fn wrr_gcd_step() {
        // gcd 2, mw = 6 - 1 = 5: cw 5: A | 3: A B | 1: A B C.
        assert_eq!(seq(&reals(&[6, 4, 2]), 12), "AABABCAABABC");
        // Equal weights degenerate to rr.
        assert_eq!(seq(&reals(&[5, 5, 5]), 6), "ABCABC");
    }

    #[test]
    fn wrr_dest_changed_keeps_cw() {
        let old = WrrState {
            cl: Some(1),
            cw: 4,
            mw: 4,
            di: 1,
        };
        // gcd 2: cw rounded to the step, (4 / 2) * 2 + 1 = 5 <= mw 5.
        let st = wrr_changed(&reals(&[6, 4, 2]), old);
        assert_eq!((st.cl, st.cw, st.mw, st.di), (None, 5, 5, 2));
        // cw above the new mw, or 0: back to mw.
        let st = wrr_changed(&reals(&[2, 1]), old);
        assert_eq!((st.cw, st.mw), (2, 2));
        let st = wrr_changed(&reals(&[3, 1]), WrrState::default());
        assert_eq!((st.cw, st.mw), (3, 3));
    }

    #[test]
    fn wrr_zero_weight_and_all_overloaded() {
        assert_eq!(seq(&reals(&[2, 0, 1]), 6), "AACAAC");
        assert_eq!(seq(&reals(&[0, 0]), 3), "---");
        let rs = reals(&[3, 2]);
        let th = crate::sched::Thresholds { upper: 1, lower: 0 };
        rs[0].counters.conn_bound(false, th);
        rs[1].counters.conn_bound(false, th);
        let mut st = wrr_init(&rs);
        assert_eq!(wrr(&rs, &mut st), None);
        // Also from a mid-list cursor.
        st.cl = Some(0);
        st.cw = 2;
        assert_eq!(wrr(&rs, &mut st), None);
        rs[1].counters.conn_unbound(false, th);
        assert_eq!(wrr(&rs, &mut st), Some(1));
    }

    #[test]
    fn lc_by_overhead() {
        let rs = reals(&[1, 1, 1]);
        // overheads: 1*256+0=256, 0*256+300=300, 1*256+1=257.
        counts(&rs, &[(1, 0), (0, 300), (1, 1)]);
        assert_eq!(lc(&rs), Some(0));
        counts(&rs, &[(1, 0), (0, 200), (1, 1)]);
        assert_eq!(lc(&rs), Some(1));
        // Ties go to the first.
        counts(&rs, &[(0, 5), (0, 5), (0, 5)]);
        assert_eq!(lc(&rs), Some(0));
        let rs0 = reals(&[0, 1]);
        counts(&rs0, &[(0, 0), (9, 9)]);
        assert_eq!(lc(&rs0), Some(1));
    }

    #[test]
    fn wlc_by_overhead_over_weight() {
        let rs = reals(&[1, 3, 2]);
        // A: 256/1, B: (2*256+10)=522/3=174, C: (1*256+100)=356/2=178.
        counts(&rs, &[(1, 0), (2, 10), (1, 100)]);
        assert_eq!(wlc(&rs), Some(1));
        // B: (2*256+40)=552/3=184 > C 178.
        counts(&rs, &[(1, 0), (2, 40), (1, 100)]);
        assert_eq!(wlc(&rs), Some(2));
        // All idle: first.
        counts(&rs, &[(0, 0), (0, 0), (0, 0)]);
        assert_eq!(wlc(&rs), Some(0));
    }

    #[test]
    fn sed_and_nq() {
        let rs = reals(&[1, 3, 1]);
        // sed: (a+1)/w: A (1+1)/1=2, B (4+1)/3=1.67, C (0+1)/1=1.
        counts(&rs, &[(1, 0), (4, 0), (0, 50)]);
        assert_eq!(sed(&rs), Some(2));
        // nq: C is idle (no active) -> C immediately.
        assert_eq!(nq(&rs), Some(2));
        // Nobody idle: A 3/1, B 5/3, C 2/1 -> B.
        counts(&rs, &[(2, 0), (4, 0), (1, 0)]);
        assert_eq!(sed(&rs), Some(1));
        assert_eq!(nq(&rs), Some(1));
        // Inactive connections do not count for sed/nq; sed prefers B
        // ((1+1)/3 < (0+1)/1) where nq takes the idle A at once.
        counts(&rs, &[(0, 1000), (1, 0), (1, 0)]);
        assert_eq!(sed(&rs), Some(1));
        assert_eq!(nq(&rs), Some(0));
        // nq: first idle server wins even with a lower weight.
        counts(&rs, &[(5, 0), (0, 0), (0, 0)]);
        assert_eq!(nq(&rs), Some(1));
    }

    #[test]
    fn fo_and_ovf() {
        let rs = reals(&[2, 5, 5, 1]);
        assert_eq!(fo(&rs), Some(1));
        let th = crate::sched::Thresholds { upper: 1, lower: 0 };
        rs[1].counters.conn_bound(false, th);
        assert_eq!(fo(&rs), Some(2));
        assert_eq!(fo(&reals(&[0, 0])), None);

        let rs = reals(&[2, 5, 1]);
        counts(&rs, &[(0, 0), (5, 0), (0, 0)]);
        assert_eq!(ovf(&rs), Some(1)); // active == weight still allowed
        counts(&rs, &[(0, 0), (6, 0), (0, 0)]);
        assert_eq!(ovf(&rs), Some(0));
        counts(&rs, &[(3, 0), (6, 0), (1, 0)]);
        assert_eq!(ovf(&rs), Some(2));
        counts(&rs, &[(3, 0), (6, 0), (2, 0)]);
        assert_eq!(ovf(&rs), None);
    }

    #[test]
    fn twos_prefers_less_loaded_and_skips_weight_zero() {
        let rs = reals(&[10, 10, 0]);
        counts(&rs, &[(100, 0), (0, 0), (0, 0)]);
        let mut rng = SplitMix64::new(1);
        let mut hits = [0u32; 3];
        for _ in 0..10_000 {
            if let Some(i) = twos(&rs, &mut rng) {
                hits[i] += 1;
            }
        }
        assert_eq!(hits[2], 0);
        // A is only picked when both draws land on A: (11/21)^2 = 27%.
        assert!(hits[1] > 6_500, "{hits:?}");
        assert_eq!(twos(&reals(&[0]), &mut rng), None);
    }
}
