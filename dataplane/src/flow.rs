//! Flow keys, the keyed flow hash and flow ownership (ARCHITECTURE §4).
//!
//! A [`FlowKey`] is the 5-tuple of one direction of a connection. It is
//! generic over the address family ([`V4`], [`V6`]) so that everything built
//! on it (the connection table above all) is monomorphised per family and
//! IPv4 state stays small.
//!
//! Clients choose tuples, so every hash here is keyed with a per-process
//! random [`HashKey`] (a folded-multiply hash in the style of wyhash and
//! foldhash: fast, keyed, not cryptographic). Tests pass a fixed key so they
//! are deterministic.
//!
//! Ownership: every packet of a connection, in both directions, must be
//! handled by one worker. [`Ownership::owner`] is `hash(client address,
//! client port) mod N`; a NAT reply's destination *is* the client endpoint,
//! so the same call on the reply's destination gives the same worker. For
//! FullNAT the reply's destination is the local address and port, so the
//! local port is chosen such that [`Ownership::owns_local_port`] holds for
//! the creating worker ([`Ownership::local_ports`] lists the candidates).
//!
//! Ports are in host byte order throughout.

#![deny(clippy::indexing_slicing)]

use core::fmt::Debug;
use core::hash::{BuildHasher, Hash, Hasher};
use std::collections::hash_map::RandomState;
use std::net::{Ipv4Addr, Ipv6Addr};

/// IP protocol number of TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol number of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

mod sealed {
    pub trait Sealed {}
}

/// An address family: the type parameter that monomorphises flow keys and
/// connection tables. Implemented by [`V4`] and [`V6`] only.
pub trait Family: sealed::Sealed + Copy + Eq + Debug + Send + Sync + 'static {
    /// The address type of this family.
    type Addr: Copy + Eq + Hash + Debug + Send + Sync + 'static;
    /// The all-zeroes address (used for unused record fields).
    const UNSPECIFIED: Self::Addr;
    /// Short name for messages ("ipv4" / "ipv6").
    const NAME: &'static str;

    /// Keyed hash of a whole 5-tuple.
    fn hash_tuple(key: &HashKey, src: Self::Addr, dst: Self::Addr, ports: u32, proto: u8) -> u64;
    /// Keyed hash of one endpoint (address, port), used for ownership.
    fn hash_endpoint(key: &HashKey, addr: Self::Addr, port: u16) -> u64;
    /// The address as this family's type, if it is of this family.
    fn from_ip(a: std::net::IpAddr) -> Option<Self::Addr>;
    /// The address as a std `IpAddr`.
    fn to_ip(a: Self::Addr) -> std::net::IpAddr;
}

/// IPv4 family marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct V4;
/// IPv6 family marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct V6;

impl sealed::Sealed for V4 {}
impl sealed::Sealed for V6 {}

// Odd 64-bit constants (from wyhash) for the folded multiplies.
const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;
const P3: u64 = 0x5899_65cc_7537_4cc3;

/// Full 64x64→128 multiply, folded back to 64 bits by xor of the halves.
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl Family for V4 {
    type Addr = Ipv4Addr;
    const UNSPECIFIED: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
    const NAME: &'static str = "ipv4";

    #[inline(always)]
    fn from_ip(a: std::net::IpAddr) -> Option<Ipv4Addr> {
        match a {
            std::net::IpAddr::V4(v) => Some(v),
            std::net::IpAddr::V6(_) => None,
        }
    }

    #[inline(always)]
    fn to_ip(a: Ipv4Addr) -> std::net::IpAddr {
        std::net::IpAddr::V4(a)
    }

    #[inline(always)]
    fn hash_tuple(key: &HashKey, src: Ipv4Addr, dst: Ipv4Addr, ports: u32, proto: u8) -> u64 {
        let a = (u64::from(u32::from(src)) << 32) | u64::from(u32::from(dst));
        let b = (u64::from(ports) << 8) | u64::from(proto);
        let h = fold_mul(a ^ key.k[0], b ^ key.k[1]);
        fold_mul(h ^ key.k[2], P0 ^ key.k[3])
    }

    #[inline(always)]
    fn hash_endpoint(key: &HashKey, addr: Ipv4Addr, port: u16) -> u64 {
        let a = (u64::from(u32::from(addr)) << 16) | u64::from(port);
        let h = fold_mul(a ^ key.k[2], P1 ^ key.k[0]);
        fold_mul(h ^ key.k[3], P2 ^ key.k[1])
    }
}

impl Family for V6 {
    type Addr = Ipv6Addr;
    const UNSPECIFIED: Ipv6Addr = Ipv6Addr::UNSPECIFIED;
    const NAME: &'static str = "ipv6";

    #[inline(always)]
    fn from_ip(a: std::net::IpAddr) -> Option<Ipv6Addr> {
        match a {
            std::net::IpAddr::V6(v) => Some(v),
            std::net::IpAddr::V4(_) => None,
        }
    }

    #[inline(always)]
    fn to_ip(a: Ipv6Addr) -> std::net::IpAddr {
        std::net::IpAddr::V6(a)
    }

    #[inline(always)]
    fn hash_tuple(key: &HashKey, src: Ipv6Addr, dst: Ipv6Addr, ports: u32, proto: u8) -> u64 {
        let s = u128::from(src);
        let d = u128::from(dst);
        let h1 = fold_mul((s as u64) ^ key.k[0], ((s >> 64) as u64) ^ key.k[1]);
        let h2 = fold_mul((d as u64) ^ key.k[2], ((d >> 64) as u64) ^ key.k[3]);
        let b = (u64::from(ports) << 8) | u64::from(proto);
        let h = fold_mul(h1 ^ P0 ^ b, h2 ^ P3);
        fold_mul(h ^ key.k[2], P0 ^ key.k[3])
    }

    #[inline(always)]
    fn hash_endpoint(key: &HashKey, addr: Ipv6Addr, port: u16) -> u64 {
        let a = u128::from(addr);
        let h = fold_mul((a as u64) ^ key.k[2], ((a >> 64) as u64) ^ key.k[0]);
        let h = fold_mul(h ^ u64::from(port) ^ P1, P2 ^ key.k[1]);
        fold_mul(h ^ key.k[3], P3)
    }
}

/// The secret key of every flow hash in this process.
///
/// Create it once at start-up with [`HashKey::random`] and hand copies to
/// every worker: ownership must agree across workers, so all of them use
/// the same key. Tests use [`HashKey::from_seed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashKey {
    k: [u64; 4],
}

impl HashKey {
    /// A key drawn from the operating system's randomness (through std's
    /// `RandomState`, which is seeded from it once per process).
    pub fn random() -> Self {
        let rs = RandomState::new();
        let mut k = [0u64; 4];
        for (i, w) in k.iter_mut().enumerate() {
            let mut h = rs.build_hasher();
            h.write_u64(i as u64);
            *w = h.finish();
        }
        Self { k }
    }

    /// A fixed key derived from `seed` (for tests and reproducible runs).
    pub const fn from_seed(seed: u64) -> Self {
        Self {
            k: [
                seed ^ P0,
                seed.rotate_left(17) ^ P1,
                seed.rotate_left(31) ^ P2,
                seed.rotate_left(47) ^ P3,
            ],
        }
    }
}

/// One direction of a flow: source and destination endpoints and the IP
/// protocol. Ports in host byte order (for ICMP the caller decides, e.g.
/// echo identifier as source port and 0 as destination).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey<F: Family> {
    /// Source address.
    pub src: F::Addr,
    /// Destination address.
    pub dst: F::Addr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// IP protocol number ([`IPPROTO_TCP`], [`IPPROTO_UDP`], ...).
    pub proto: u8,
}

impl<F: Family> FlowKey<F> {
    /// A key from its parts.
    #[inline]
    pub fn new(proto: u8, src: F::Addr, sport: u16, dst: F::Addr, dport: u16) -> Self {
        Self {
            src,
            dst,
            sport,
            dport,
            proto,
        }
    }

    /// The key of the opposite direction (source and destination swapped).
    #[inline]
    pub fn reversed(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            proto: self.proto,
        }
    }

    /// Keyed 64-bit hash of this key.
    #[inline(always)]
    pub fn hash(&self, key: &HashKey) -> u64 {
        let ports = (u32::from(self.sport) << 16) | u32::from(self.dport);
        F::hash_tuple(key, self.src, self.dst, ports, self.proto)
    }
}

/// Maps a 64-bit hash to `0..n` without a division (Lemire's multiply-shift
/// on the high 32 bits). `n` must fit in 32 bits; returns 0 when `n == 0`.
#[inline(always)]
pub fn reduce(hash: u64, n: u32) -> u32 {
    (((hash >> 32) * u64::from(n)) >> 32) as u32
}

/// The ownership function shared by all workers: which worker handles a
/// flow, given its client endpoint (or, for FullNAT replies, its local
/// endpoint).
#[derive(Clone, Copy, Debug)]
pub struct Ownership {
    key: HashKey,
    workers: u16,
}

impl Ownership {
    /// Ownership over `workers` workers (treated as 1 when 0).
    pub fn new(key: HashKey, workers: u16) -> Self {
        Self {
            key,
            workers: workers.max(1),
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// The worker that owns the endpoint (`addr`, `port`): for client→VIP
    /// packets the source endpoint, for NAT replies the destination (the
    /// same client endpoint), for FullNAT replies the destination (local
    /// address and port).
    #[inline(always)]
    pub fn owner<F: Family>(&self, addr: F::Addr, port: u16) -> u16 {
        reduce(
            F::hash_endpoint(&self.key, addr, port),
            u32::from(self.workers),
        ) as u16
    }

    /// Whether FullNAT local port `lport` on local address `laddr` belongs
    /// to `worker`, i.e. replies to it will be steered to that worker.
    #[inline]
    pub fn owns_local_port<F: Family>(&self, laddr: F::Addr, lport: u16, worker: u16) -> bool {
        self.owner::<F>(laddr, lport) == worker
    }

    /// The ports in `lo..=hi` on `laddr` that `worker` may use as FullNAT
    /// local ports (about 1/N of the range). A port pool builds its
    /// per-worker free list from this once, at configuration time.
    pub fn local_ports<F: Family>(
        &self,
        laddr: F::Addr,
        lo: u16,
        hi: u16,
        worker: u16,
    ) -> impl Iterator<Item = u16> + '_ {
        (lo..=hi).filter(move |&p| self.owns_local_port::<F>(laddr, p, worker))
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn v4(a: u32) -> Ipv4Addr {
        Ipv4Addr::from(a)
    }

    #[test]
    fn hash_is_keyed_and_deterministic() {
        let k1 = HashKey::from_seed(1);
        let k2 = HashKey::from_seed(2);
        let key = FlowKey::<V4>::new(IPPROTO_TCP, v4(0x0a00_0001), 1234, v4(0xc0a8_0001), 80);
        assert_eq!(key.hash(&k1), key.hash(&k1));
        assert_ne!(key.hash(&k1), key.hash(&k2));
        assert_ne!(key.hash(&k1), key.reversed().hash(&k1));
        let r1 = HashKey::random();
        let r2 = HashKey::random();
        assert_ne!(r1, r2);
    }

    #[test]
    fn hash_spreads_sequential_ports() {
        // 64K sequential source ports from one client must spread over
        // 1024 buckets roughly evenly.
        let k = HashKey::from_seed(7);
        let mut counts = vec![0u32; 1024];
        for p in 0..=u16::MAX {
            let key = FlowKey::<V4>::new(IPPROTO_TCP, v4(0x0a00_0001), p, v4(0xc0a8_0001), 80);
            counts[reduce(key.hash(&k), 1024) as usize] += 1;
        }
        let max = counts.iter().copied().max().unwrap_or(0);
        let min = counts.iter().copied().min().unwrap_or(0);
        assert!(max < 110 && min > 20, "min {min} max {max}");
        let k6 = FlowKey::<V6>::new(
            IPPROTO_UDP,
            Ipv6Addr::LOCALHOST,
            1,
            Ipv6Addr::UNSPECIFIED,
            2,
        );
        assert_ne!(k6.hash(&k), k6.reversed().hash(&k));
    }

    #[test]
    fn nat_reply_maps_to_same_worker() {
        let own = Ownership::new(HashKey::from_seed(3), 8);
        for i in 0..10_000u32 {
            let client = v4(0x0a00_0000 + i);
            let cport = (i as u16).wrapping_mul(7919);
            let vip = v4(0xc0a8_0001);
            let rip = v4(0xac10_0000 + (i % 13));
            let request = FlowKey::<V4>::new(IPPROTO_TCP, client, cport, vip, 80);
            let reply = FlowKey::<V4>::new(IPPROTO_TCP, rip, 8080, client, cport);
            let w_in = own.owner::<V4>(request.src, request.sport);
            let w_out = own.owner::<V4>(reply.dst, reply.dport);
            assert_eq!(w_in, w_out);
            assert!(w_in < 8);
        }
        let own6 = Ownership::new(HashKey::from_seed(3), 3);
        let c6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(own6.owner::<V6>(c6, 5555), own6.owner::<V6>(c6, 5555));
        assert!(own6.owner::<V6>(c6, 5555) < 3);
    }

    #[test]
    fn workers_are_balanced() {
        let own = Ownership::new(HashKey::from_seed(11), 4);
        let mut counts = [0u32; 4];
        for i in 0..40_000u32 {
            counts[own.owner::<V4>(v4(0x0a00_0000 + i / 7), (i % 7) as u16 + 40000) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn fullnat_local_ports_are_owned_by_creator() {
        let own = Ownership::new(HashKey::from_seed(5), 6);
        let laddr = v4(0x0a01_0001);
        let mut total = 0usize;
        for w in 0..6u16 {
            let ports: Vec<u16> = own.local_ports::<V4>(laddr, 1024, 65535, w).collect();
            // About 1/6 of 64512 ports each.
            assert!(
                ports.len() > 9_500 && ports.len() < 12_000,
                "{}",
                ports.len()
            );
            for &p in &ports {
                // A reply RIP:rport → laddr:p is owned by the creating worker.
                let reply = FlowKey::<V4>::new(IPPROTO_TCP, v4(0xac10_0001), 80, laddr, p);
                assert_eq!(own.owner::<V4>(reply.dst, reply.dport), w);
                assert!(own.owns_local_port::<V4>(laddr, p, w));
                assert!(!own.owns_local_port::<V4>(laddr, p, (w + 1) % 6));
            }
            total += ports.len();
        }
        assert_eq!(total, 65535 - 1024 + 1);
        let l6: Ipv6Addr = "fd00::10".parse().unwrap();
        for p in own.local_ports::<V6>(l6, 2000, 3000, 2) {
            assert_eq!(own.owner::<V6>(l6, p), 2);
        }
    }

    #[test]
    fn single_worker_owns_everything() {
        let own = Ownership::new(HashKey::from_seed(9), 0);
        assert_eq!(own.workers(), 1);
        assert_eq!(own.owner::<V4>(v4(1), 2), 0);
        assert_eq!(reduce(u64::MAX, 0), 0);
        assert_eq!(reduce(u64::MAX, 5), 4);
    }
}
