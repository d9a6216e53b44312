//! The adjacency cache: per destination address, what
//! [`Pipeline::emit`](crate::pipeline::Pipeline) works out from the route
//! table and the neighbour table (output port, our MAC and MTU there, the
//! next hop's MAC, a tunnel's outer source), so an established packet does
//! no route or neighbour lookup (issue 11 item 4).
//!
//! Keyed by the address the packet is routed to (the real server for
//! client packets, the client for NAT replies), so both directions of a
//! connection hit it and connection records carry nothing extra. A slot is
//! exact while
//! - the snapshot (routes, ports) is the one it was filled under: the
//!   pipeline clears the cache when it installs a snapshot;
//! - the neighbour table's generation is the one it was filled at (any
//!   learn, confirmation, ageing or removal changes it);
//! - the time is before the neighbour entry would go stale.
//!
//! Otherwise the packet takes the full lookup, which fills the slot again.
//! Direct-mapped, a fixed array allocated once per worker: nothing is
//! allocated on the packet path, and a collision only costs a refill.

use crate::wire::ethernet::MacAddr;
use core::net::IpAddr;

/// Slots per worker (a power of two).
pub const SLOTS: usize = 1024;

/// What the lookups gave for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjacency {
    /// The destination address this is for.
    pub to: IpAddr,
    /// The next hop (the route's gateway, or `to` itself).
    pub hop: IpAddr,
    /// Output port.
    pub port: u16,
    /// IP MTU of the output port.
    pub mtu: u16,
    /// Our MAC on the port as the snapshot gives it (the rewrite's L2 source).
    pub src_mac: MacAddr,
    /// The next hop's MAC.
    pub dst_mac: MacAddr,
    /// Our MAC on the port as the neighbour table writes it.
    pub neigh_src_mac: MacAddr,
    /// Outer source address of a tunnelled packet (the port's address).
    pub tun_src: IpAddr,
    /// Neighbour table generation it was filled at.
    pub neigh_gen: u64,
    /// The neighbour entry goes stale at this time (ns).
    pub until_ns: u64,
}

/// A worker's adjacency cache.
#[derive(Debug)]
pub struct AdjCache {
    slots: Box<[Option<Adjacency>]>,
}

impl Default for AdjCache {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn slot_of(to: IpAddr) -> usize {
    let x = match to {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64)
        }
    };
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 54) as usize & (SLOTS - 1)
}

impl AdjCache {
    /// An empty cache (allocates its slots).
    pub fn new() -> Self {
        AdjCache {
            slots: vec![None; SLOTS].into_boxed_slice(),
        }
    }

    /// Forgets everything (a new snapshot: routes or ports may differ).
    pub fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = None);
    }

    /// The adjacency of `to`, if cached and still exact at neighbour
    /// generation `neigh_gen` and time `now_ns`.
    #[inline]
    pub fn get(&self, to: IpAddr, neigh_gen: u64, now_ns: u64) -> Option<&Adjacency> {
        match self.slots.get(slot_of(to)) {
            Some(Some(a)) if a.to == to && a.neigh_gen == neigh_gen && now_ns < a.until_ns => {
                Some(a)
            }
            _ => None,
        }
    }

    /// Stores `a` (replacing whatever shared its slot).
    #[inline]
    pub fn put(&mut self, a: Adjacency) {
        if let Some(s) = self.slots.get_mut(slot_of(a.to)) {
            *s = Some(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn adj(to: IpAddr, gen: u64, until: u64) -> Adjacency {
        Adjacency {
            to,
            hop: to,
            port: 1,
            mtu: 1500,
            src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            neigh_src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            tun_src: to,
            neigh_gen: gen,
            until_ns: until,
        }
    }

    #[test]
    fn hit_only_while_exact() {
        let mut c = AdjCache::new();
        let a = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
        let b = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        assert_eq!(c.get(a, 5, 0), None);
        c.put(adj(a, 5, 100));
        c.put(adj(b, 5, 100));
        assert_eq!(c.get(a, 5, 99), Some(&adj(a, 5, 100)));
        assert_eq!(c.get(b, 5, 0), Some(&adj(b, 5, 100)));
        // Neighbour table changed, or the entry would be stale by now.
        assert_eq!(c.get(a, 6, 99), None);
        assert_eq!(c.get(a, 5, 100), None);
        // Another address never gets a's slot's answer.
        let other = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3));
        assert_eq!(c.get(other, 5, 0), None);
        c.clear();
        assert_eq!(c.get(a, 5, 0), None);
        assert_eq!(c.get(b, 5, 0), None);
    }
}
