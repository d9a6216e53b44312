//! Config-keyed hashing for sh, dh, mh, persistence and locality tables.
//!
//! Every director instance given the same seed computes the same hashes,
//! so sh/dh/mh pick the same real server everywhere. Nothing here reads
//! process randomness. The mixer is a folded 64×64→128 multiply (the
//! wyhash "mum" step): fast, no tables, good avalanche for this use.

#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

#[inline]
fn mum(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

/// An address folded to two words plus a family tag, so IPv4 and IPv6
/// never collide by construction.
#[inline]
pub(crate) fn addr_words(addr: IpAddr) -> (u64, u64) {
    match addr {
        IpAddr::V4(a) => (u64::from(u32::from(a)), 4),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64, ((v >> 64) as u64) ^ 6)
        }
    }
}

/// A hash key derived from a service's configured seed and a domain tag
/// (one per use, so e.g. Maglev's offset and skip hashes are independent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKey {
    k0: u64,
    k1: u64,
}

impl HashKey {
    /// Derives the key for `domain` from `seed`.
    pub fn new(seed: u128, domain: u64) -> Self {
        let lo = seed as u64;
        let hi = (seed >> 64) as u64;
        let k0 = mum(lo ^ P0, domain.wrapping_add(P1));
        let k1 = mum(hi ^ P2, k0 ^ domain ^ P0);
        Self { k0, k1 }
    }

    /// Hashes an address, a port and an offset (sh/mh fallback probes).
    #[inline]
    pub fn hash(&self, addr: IpAddr, port: u16, offset: u32) -> u64 {
        let (lo, hi) = addr_words(addr);
        let a = mum(lo ^ self.k0, hi ^ self.k1 ^ P0);
        let b = (u64::from(port) << 32) | u64::from(offset);
        mum(a ^ b ^ P1, self.k1 ^ P2).wrapping_add(a)
    }

    /// Hashes two words (table keys already folded).
    #[inline]
    pub fn hash_words(&self, lo: u64, hi: u64) -> u64 {
        let a = mum(lo ^ self.k0, hi ^ self.k1 ^ P0);
        mum(a ^ P1, self.k1 ^ P2).wrapping_add(a)
    }
}

/// SplitMix64: the per-worker random source of `twos`, seeded from config
/// and the worker number (reproducible runs, no shared state).
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn same_seed_same_hash_other_seed_differs() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let k1 = HashKey::new(42, 1);
        let k2 = HashKey::new(42, 1);
        let k3 = HashKey::new(43, 1);
        let k4 = HashKey::new(42, 2);
        assert_eq!(k1.hash(a, 80, 0), k2.hash(a, 80, 0));
        assert_ne!(k1.hash(a, 80, 0), k3.hash(a, 80, 0));
        assert_ne!(k1.hash(a, 80, 0), k4.hash(a, 80, 0));
        assert_ne!(k1.hash(a, 80, 0), k1.hash(a, 81, 0));
        assert_ne!(k1.hash(a, 80, 0), k1.hash(a, 80, 1));
    }

    #[test]
    fn v4_and_mapped_v6_differ() {
        let k = HashKey::new(7, 0);
        let v4 = Ipv4Addr::new(1, 2, 3, 4);
        let v6: Ipv6Addr = v4.to_ipv6_mapped();
        assert_ne!(k.hash(IpAddr::V4(v4), 0, 0), k.hash(IpAddr::V6(v6), 0, 0));
    }
}
