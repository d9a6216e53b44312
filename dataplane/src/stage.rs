//! The read-ahead stages of the burst path ([`crate::pipeline::Pipeline::process_burst`]):
//! for every packet of a round, the 5-tuple read where a plain IPv4/IPv6
//! TCP or UDP packet has it, its connection-table hash, and prefetches of
//! the bucket line and then of the record line. Nothing here decides
//! anything: the packet is parsed and checked in full afterwards, and the
//! hash is only reused when the parsed key is the one read here.

use crate::conn::ConnTable;
use crate::flow::{Family, FlowKey, V4, V6};
use crate::pipeline::BURST;
use std::net::{Ipv4Addr, Ipv6Addr};

const ETH_IPV4: [u8; 2] = [0x08, 0x00];
const ETH_IPV6: [u8; 2] = [0x86, 0xdd];
const TCP: u8 = 6;
const UDP: u8 = 17;

/// What stage 1 found for one slot of a round.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Found {
    /// Not a plain TCP/UDP packet: no lookup ahead.
    None,
    V4,
    V6,
}

/// Per-round scratch: one entry per packet slot, overwritten by every
/// round's stage 1 (allocated once per pipeline).
pub struct Stage {
    found: [Found; BURST],
    hash: [u64; BURST],
    /// The bucket value stage 2 followed (`ConnTable::NO_CANDIDATE` if none).
    cand: [u32; BURST],
    k4: [FlowKey<V4>; BURST],
    k6: [FlowKey<V6>; BURST],
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage {
    /// Empty scratch.
    pub fn new() -> Self {
        Stage {
            found: [Found::None; BURST],
            hash: [0; BURST],
            cand: [u32::MAX; BURST],
            k4: [FlowKey::new(0, V4::UNSPECIFIED, 0, V4::UNSPECIFIED, 0); BURST],
            k6: [FlowKey::new(0, V6::UNSPECIFIED, 0, V6::UNSPECIFIED, 0); BURST],
        }
    }

    /// Stage 1 for the packet in `slot` with bytes `data`: its 5-tuple and
    /// hash, and a prefetch of its first candidate bucket.
    #[inline(always)]
    pub fn peek(&mut self, slot: usize, data: &[u8], t4: &ConnTable<V4>, t6: &ConnTable<V6>) {
        let f = match peek4(data) {
            Some(k) => {
                let h = t4.hash(&k);
                t4.prefetch_bucket(h);
                self.set(slot, h);
                if let Some(e) = self.k4.get_mut(slot) {
                    *e = k;
                }
                Found::V4
            }
            None => match peek6(data) {
                Some(k) => {
                    let h = t6.hash(&k);
                    t6.prefetch_bucket(h);
                    self.set(slot, h);
                    if let Some(e) = self.k6.get_mut(slot) {
                        *e = k;
                    }
                    Found::V6
                }
                None => Found::None,
            },
        };
        if let Some(e) = self.found.get_mut(slot) {
            *e = f;
        }
    }

    #[inline(always)]
    fn set(&mut self, slot: usize, h: u64) {
        if let Some(e) = self.hash.get_mut(slot) {
            *e = h;
        }
    }

    /// Stage 2 for the first `n` slots: prefetch the record each bucket's
    /// signature names (the buckets were prefetched by stage 1).
    #[inline(always)]
    pub fn prefetch_records(&mut self, n: usize, t4: &ConnTable<V4>, t6: &ConnTable<V6>) {
        for ((f, h), c) in self
            .found
            .iter()
            .zip(&self.hash)
            .zip(&mut self.cand)
            .take(n)
        {
            *c = match f {
                Found::V4 => t4.prefetch_record(*h),
                Found::V6 => t6.prefetch_record(*h),
                Found::None => ConnTable::<V4>::NO_CANDIDATE,
            };
        }
    }

    /// The IPv4 key and hash stage 1 read for `slot`, if any.
    #[inline(always)]
    pub fn v4(&self, slot: usize) -> Option<(FlowKey<V4>, u64)> {
        match self.found.get(slot) {
            Some(Found::V4) => Some((*self.k4.get(slot)?, *self.hash.get(slot)?)),
            _ => None,
        }
    }

    /// The IPv6 key and hash stage 1 read for `slot`, if any.
    #[inline(always)]
    pub fn v6(&self, slot: usize) -> Option<(FlowKey<V6>, u64)> {
        match self.found.get(slot) {
            Some(Found::V6) => Some((*self.k6.get(slot)?, *self.hash.get(slot)?)),
            _ => None,
        }
    }

    /// The candidate record stage 2 followed for `slot`
    /// (`ConnTable::lookup_candidate`).
    #[inline(always)]
    pub fn candidate(&self, slot: usize) -> u32 {
        self.cand.get(slot).copied().unwrap_or(u32::MAX)
    }
}

#[inline(always)]
fn arr<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..at + N)?.try_into().ok()
}

/// The 5-tuple of an untagged IPv4 TCP/UDP packet with a 20-byte header
/// that is not a fragment.
#[inline(always)]
fn peek4(d: &[u8]) -> Option<FlowKey<V4>> {
    // Everything read below lies in the first 38 bytes: one length check,
    // the rest at constant offsets of a constant-length slice.
    let d = d.first_chunk::<38>()?;
    if arr::<2>(d, 12)? != ETH_IPV4 || *d.get(14)? != 0x45 {
        return None;
    }
    let frag = u16::from_be_bytes(arr(d, 20)?);
    let proto = *d.get(23)?;
    if frag & 0x3fff != 0 || (proto != TCP && proto != UDP) {
        return None;
    }
    let src = Ipv4Addr::from(arr::<4>(d, 26)?);
    let dst = Ipv4Addr::from(arr::<4>(d, 30)?);
    let sport = u16::from_be_bytes(arr(d, 34)?);
    let dport = u16::from_be_bytes(arr(d, 36)?);
    Some(FlowKey::new(proto, src, sport, dst, dport))
}

/// The 5-tuple of an untagged IPv6 TCP/UDP packet without extension
/// headers.
#[inline(always)]
fn peek6(d: &[u8]) -> Option<FlowKey<V6>> {
    // As `peek4`: the first 58 bytes hold all of it.
    let d = d.first_chunk::<58>()?;
    if arr::<2>(d, 12)? != ETH_IPV6 {
        return None;
    }
    let proto = *d.get(20)?;
    if proto != TCP && proto != UDP {
        return None;
    }
    let src = Ipv6Addr::from(arr::<16>(d, 22)?);
    let dst = Ipv6Addr::from(arr::<16>(d, 38)?);
    let sport = u16::from_be_bytes(arr(d, 54)?);
    let dport = u16::from_be_bytes(arr(d, 56)?);
    Some(FlowKey::new(proto, src, sport, dst, dport))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_only_plain_tcp_and_udp() {
        let mut f = vec![0u8; 60];
        f[12] = 0x08;
        f[14] = 0x45;
        f[23] = 6;
        f[26..30].copy_from_slice(&[198, 18, 0, 1]);
        f[30..34].copy_from_slice(&[198, 18, 0, 100]);
        f[34..36].copy_from_slice(&1234u16.to_be_bytes());
        f[36..38].copy_from_slice(&80u16.to_be_bytes());
        let k = peek4(&f).unwrap();
        assert_eq!(
            k,
            FlowKey::new(
                6,
                [198, 18, 0, 1].into(),
                1234,
                [198, 18, 0, 100].into(),
                80
            )
        );
        // fragments, ICMP, options, truncated, other ethertypes: nothing
        let mut g = f.clone();
        g[20] = 0x20; // MF
        assert!(peek4(&g).is_none());
        let mut g = f.clone();
        g[23] = 1;
        assert!(peek4(&g).is_none());
        let mut g = f.clone();
        g[14] = 0x46;
        assert!(peek4(&g).is_none());
        assert!(peek4(&f[..37]).is_none());
        assert!(peek6(&f).is_none());
        assert!(peek4(&[]).is_none() && peek6(&[0x86]).is_none());
    }
}
