//! Table construction for the hashing schedulers (control thread only;
//! allocates): sh/dh weighted buckets and the Maglev lookup table.

#![deny(clippy::indexing_slicing)]

use super::{HashKey, RealServer, EMPTY, MH_MAX_TABLE};

/// Bitmap words for the largest Maglev table (131071 slots), a power of
/// two.
const USED_WORDS: usize = 2048;
const _: () = assert!(USED_WORDS * 64 > MH_MAX_TABLE as usize && USED_WORDS.is_power_of_two());

/// Trial division; table sizes are at most 131071.
pub(crate) fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let mut d = 2u32;
    while d * d <= n {
        if n.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// IPVS `ip_vs_sh_reassign`: walk the buckets, giving each server
/// `weight` consecutive buckets in turn (a weight-0 server still gets one,
/// which then reads as unavailable), wrapping round the list.
pub(crate) fn weighted_buckets(reals: &[RealServer], size: usize) -> Box<[u32]> {
    let mut table = vec![EMPTY; size].into_boxed_slice();
    if reals.is_empty() {
        return table;
    }
    let mut p = 0usize;
    let mut count = 0u32;
    for slot in table.iter_mut() {
        *slot = p as u32;
        count += 1;
        let w = reals.get(p).map_or(0, |r| r.weight);
        if count >= w {
            p = (p + 1) % reals.len();
            count = 0;
        }
    }
    table
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Turns per server in IPVS's weighted Maglev (`ip_vs_mh_permutate`):
/// `last_weight / gcd`, shifted right so the largest stays within
/// `2^(log2(m) / 2)` turns (IPVS: `IP_VS_MH_TAB_BITS`), at least 1 for a
/// non-zero weight.
fn turns(reals: &[RealServer], m: u32) -> Vec<u32> {
    let g = reals
        .iter()
        .map(|r| r.last_weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g == 0 { w } else { gcd(g, w) });
    if g == 0 {
        return vec![0; reals.len()];
    }
    let mw = reals.iter().map(|r| r.last_weight).max().unwrap_or(0) / g;
    let fls = 32 - mw.leading_zeros();
    let bits = (31 - m.leading_zeros()) / 2;
    let shift = fls.saturating_sub(bits);
    reals
        .iter()
        .map(|r| {
            let t = (r.last_weight / g) >> shift;
            if t == 0 {
                u32::from(r.last_weight != 0)
            } else {
                t
            }
        })
        .collect()
}

/// Reduction mod `m` by multiplication (Barrett): exact for any `a`.
#[derive(Clone, Copy)]
struct Barrett {
    m: u64,
    mu: u64,
}

impl Barrett {
    fn new(m: u32) -> Self {
        let m = u64::from(m.max(1));
        Self {
            m,
            mu: ((1u128 << 64) / u128::from(m)) as u64,
        }
    }

    #[inline]
    fn reduce(self, a: u64) -> u64 {
        let q = ((u128::from(a) * u128::from(self.mu)) >> 64) as u64;
        let r = a - q * self.m;
        if r >= self.m {
            r - self.m
        } else {
            r
        }
    }

    /// `a^-1 mod m` for prime `m` (Fermat: `a^(m-2)`); `m` < 2^17.
    fn inverse(self, a: u64) -> u64 {
        let (mut r, mut b, mut e) = (1u64, self.reduce(a), self.m - 2);
        while e > 0 {
            if e & 1 == 1 {
                r = self.reduce(r * b);
            }
            b = self.reduce(b * b);
            e >>= 1;
        }
        r
    }
}

/// One server's walk through its Maglev permutation.
#[derive(Clone, Copy)]
struct Walk {
    index: u32,
    next: u32,
    skip: u32,
    turns: u32,
    /// `skip^-1 mod m`, turning a distance into a number of steps;
    /// computed when first needed (0 until then).
    inv: u64,
}

/// The Maglev lookup table (IPVS `ip_vs_mh_populate`): each server walks
/// its permutation (offset, offset + skip, ... mod `m`), taking `turns`
/// free slots per round, until all `m` slots are filled.
///
/// Same result as probing slot after slot, faster: while the table is
/// mostly empty a server probes; once at most √m slots are free, it
/// takes the free slot fewest steps ahead of it in its permutation,
/// computed as `(slot - next) · skip⁻¹ mod m` (m is prime), instead of
/// probing through the ever longer runs of taken slots (the last few
/// hundred free slots would otherwise cost about half of all probes).
// bounds: `used` indexes are masked by `& (USED_WORDS - 1)` on a power-of-two array (see `used` below).
#[allow(clippy::indexing_slicing)]
pub(crate) fn maglev(reals: &[RealServer], m: u32, k_off: HashKey, k_skip: HashKey) -> Box<[u32]> {
    let size = m as usize;
    let mut table = vec![EMPTY; size].into_boxed_slice();
    let turns = turns(reals, m);
    if turns.iter().all(|&t| t == 0) || !(2..=MH_MAX_TABLE).contains(&m) {
        return table;
    }
    let bar = Barrett::new(m);
    let bar_skip = Barrett::new(m - 1);
    // Servers take their turns in address order, not list order: the
    // table must not depend on the order the config lists them in, so
    // every director builds the same one (IPVS walks its list order).
    let mut walks: Vec<Walk> = by_address(reals)
        .into_iter()
        .filter_map(|i| Some((i, reals.get(i)?, *turns.get(i)?)))
        .filter(|&(_, _, t)| t > 0)
        .map(|(i, r, t)| {
            let next = bar.reduce(k_off.hash(r.addr, r.port, 0)) as u32;
            let skip = bar_skip.reduce(k_skip.hash(r.addr, r.port, 0)) as u32 + 1;
            Walk {
                index: i as u32,
                next,
                skip,
                turns: t,
                inv: 0,
            }
        })
        .collect();
    // Free slots left when probing gives way to the free-slot scan: the
    // two cost the same around √m (m/k probes against k candidates).
    let tail = ((m as f64).sqrt() as usize).max(1);
    // One bit per slot; sized for the largest table so the index mask
    // below proves every access in bounds (no checks in the hot loop).
    let mut used = [0u64; USED_WORDS];
    let mut filled = 0usize;
    let (mut w, mut dt) = 'probe: loop {
        for (wi, walk) in walks.iter_mut().enumerate() {
            for t in 0..walk.turns {
                let mut c = walk.next;
                while used[(c >> 6) as usize & (USED_WORDS - 1)] & (1 << (c & 63)) != 0 {
                    // (c + skip) mod m without a branch: the wrap is taken
                    // about half the time, a branch would mispredict.
                    let t = c + walk.skip;
                    c = t.min(t.wrapping_sub(m));
                }
                walk.next = c;
                used[(c >> 6) as usize & (USED_WORDS - 1)] |= 1 << (c & 63);
                if let Some(slot) = table.get_mut(c as usize) {
                    *slot = walk.index;
                }
                filled += 1;
                if size - filled <= tail {
                    break 'probe if t + 1 < walk.turns {
                        (wi, t + 1)
                    } else {
                        (wi + 1, 0)
                    };
                }
            }
        }
    };
    let mut free: Vec<u32> = (0..m)
        .filter(|&c| used[(c >> 6) as usize & (USED_WORDS - 1)] & (1 << (c & 63)) == 0)
        .collect();
    while !free.is_empty() {
        let Some(walk) = walks.get_mut(w) else {
            w = 0;
            continue;
        };
        if walk.inv == 0 {
            walk.inv = bar.inverse(u64::from(walk.skip));
        }
        let mut best = (u64::MAX, 0usize);
        for (pos, &f) in free.iter().enumerate() {
            // (f - next) mod m, branch-free as above.
            let d = f.wrapping_sub(walk.next);
            let d = d.min(d.wrapping_add(m));
            let steps = bar.reduce(u64::from(d) * walk.inv);
            if steps < best.0 {
                best = (steps, pos);
            }
        }
        let c = free.swap_remove(best.1);
        walk.next = c;
        if let Some(slot) = table.get_mut(c as usize) {
            *slot = walk.index;
        }
        dt += 1;
        if dt >= walk.turns {
            dt = 0;
            w += 1;
        }
    }
    table
}

/// Indexes of `reals` ordered by (address, port): the order Maglev
/// servers take their turns in.
fn by_address(reals: &[RealServer]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..reals.len()).collect();
    order.sort_unstable_by_key(|&i| reals.get(i).map(|r| (r.addr, r.port)));
    order
}

/// The plain probing fill, kept as the reference the fast one is tested
/// against.
#[cfg(test)]
// bounds: a test-only reference; same masked `used` indexing as `maglev`, `c` < m = table size.
#[allow(clippy::indexing_slicing)]
fn maglev_reference(reals: &[RealServer], m: u32, k_off: HashKey, k_skip: HashKey) -> Box<[u32]> {
    let size = m as usize;
    let mut table = vec![EMPTY; size].into_boxed_slice();
    let turns = turns(reals, m);
    if turns.iter().all(|&t| t == 0) {
        return table;
    }
    let mut perm: Vec<(u32, u32, u32, u32)> = by_address(reals)
        .into_iter()
        .map(|i| {
            let (r, t) = (&reals[i], turns[i]);
            let off = (k_off.hash(r.addr, r.port, 0) % u64::from(m)) as u32;
            let skip = (k_skip.hash(r.addr, r.port, 0) % u64::from(m - 1)) as u32 + 1;
            (off, skip, t, i as u32)
        })
        .collect();
    let mut used = vec![false; size];
    let mut filled = 0usize;
    loop {
        for (next, skip, t, i) in perm.iter_mut() {
            for _ in 0..*t {
                let mut c = *next;
                while used[c as usize] {
                    c = (c + *skip) % m;
                }
                *next = c;
                used[c as usize] = true;
                table[c as usize] = *i;
                filled += 1;
                if filled == size {
                    return table;
                }
            }
        }
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
                let a = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i as u32 + 1));
                RealServer::new(i as u32, a, 80, w)
            })
            .collect()
    }

    #[test]
    fn primes() {
        assert!(is_prime(251) && is_prime(65537) && is_prime(131071));
        assert!(!is_prime(65536) && !is_prime(1) && !is_prime(255));
    }

    #[test]
    fn sh_buckets_follow_weights() {
        let t = weighted_buckets(&reals(&[2, 1, 0, 3]), 16);
        // 2 x A, 1 x B, 1 x C (weight 0 still takes one), 3 x D, wrap.
        assert_eq!(&t[..9], &[0, 0, 1, 2, 3, 3, 3, 0, 0]);
        assert!(weighted_buckets(&[], 8).iter().all(|&e| e == EMPTY));
    }

    #[test]
    fn maglev_fills_every_slot() {
        let k1 = HashKey::new(9, 2);
        let k2 = HashKey::new(9, 3);
        let t = maglev(&reals(&[1; 7]), 251, k1, k2);
        assert!(t.iter().all(|&e| (e as usize) < 7));
        let t = maglev(&reals(&[0, 0]), 251, k1, k2);
        assert!(t.iter().all(|&e| e == EMPTY));
    }

    #[test]
    fn maglev_fast_fill_matches_reference() {
        for (ws, m) in [
            (vec![1u32; 1000], 65_537u32),
            (vec![1; 3], 251),
            (vec![1, 2, 3, 0, 4], 4093),
            (vec![7; 40], 131_071),
            ((0..300).map(|i| 1 + i % 9).collect(), 16_381),
        ] {
            for seed in [1u128, 2] {
                let k1 = HashKey::new(seed, 2);
                let k2 = HashKey::new(seed, 3);
                let rs = reals(&ws);
                assert!(
                    maglev(&rs, m, k1, k2) == maglev_reference(&rs, m, k1, k2),
                    "N={} M={m}",
                    ws.len()
                );
            }
        }
    }

    #[test]
    fn inverse_mod_prime() {
        for (a, m) in [(1u64, 251u32), (250, 251), (12345, 65_537), (2, 131_071)] {
            let b = Barrett::new(m);
            assert_eq!(a * b.inverse(a) % u64::from(m), 1);
            assert_eq!(b.reduce(u64::MAX), u64::MAX % u64::from(m));
        }
    }

    #[test]
    fn maglev_turns_shift_large_weights() {
        let t = turns(&reals(&[65535, 1, 0]), 65537);
        assert_eq!(t[2], 0);
        assert_eq!(t[1], 1);
        assert!(t[0] <= 256, "{t:?}");
        assert_eq!(turns(&reals(&[4, 6]), 65537), vec![2, 3]);
    }
}
