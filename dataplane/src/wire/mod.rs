//! Zero-copy header views, in smoltcp's style.
//!
//! Each protocol module has a `Packet<T: AsRef<[u8]>>` view over a byte
//! buffer. `Packet::new_checked` (or `new_unchecked` followed by
//! `check_len`) validates the lengths the view relies on; after it succeeds
//! no accessor panics, whatever the bytes say. Field offsets are named
//! ranges in a private `mod field`. Setters exist when `T: AsMut<[u8]>`, so
//! a NAT rewrite edits the packet in place. Small owned `Repr` types build
//! headers for tests, ARP/ND answers and encapsulation.
//!
//! Limits: one 802.1Q tag (no QinQ); ARP only for Ethernet/IPv4; IPv6
//! extension headers limited to hop-by-hop, routing, destination options
//! and fragment ([`ipv6::MAX_EXT_HEADERS`] at most); no IPv6 jumbograms.

#![deny(clippy::indexing_slicing)]

use core::ops::{Range, RangeFrom};

pub mod arp;
pub mod checksum;
pub mod ethernet;

pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod nat;
pub mod tcp;
pub mod udp;

/// A fixed-size field: a byte range inside a header.
pub(crate) type Field = Range<usize>;
/// A variable-size field: everything from an offset on.
pub(crate) type Rest = RangeFrom<usize>;

/// Why a header view refused a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Error {
    /// The buffer is shorter than the header (or than a length it states).
    Truncated,
    /// The IP version field does not match the view.
    BadVersion,
    /// A header-length field (IPv4 IHL, TCP data offset) is impossible.
    BadHeaderLen,
    /// A total-length field (IPv4 total length, IPv6 payload length, UDP
    /// length) is impossible.
    BadLength,
    /// More IPv6 extension headers than [`ipv6::MAX_EXT_HEADERS`].
    TooManyHeaders,
    /// A header this code does not walk (IPv6 AH/ESP), or an ARP/ND
    /// variant other than Ethernet/IPv4.
    Unsupported,
    /// Headers in an order the RFC forbids (IPv6 hop-by-hop not first).
    BadOrder,
    /// The operation needs the L4 header and this is a non-first fragment.
    Fragmented,
}

/// Ethertype values rvs knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// IP protocol numbers (IPv4 protocol, IPv6 next header) rvs knows.
pub mod ip_proto {
    /// IPv6 hop-by-hop options.
    pub const HOP_BY_HOP: u8 = 0;
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// IPv4 in IP (TUN forwarding).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IP.
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// Generic routing encapsulation (TUN forwarding, `--tun-type gre`).
    pub const GRE: u8 = 47;
    /// Encapsulating security payload.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMP for IPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NO_NEXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
}

// The helpers below never panic: the caller has checked the length (the
// views' `check_len` contract), and were it wrong they read zeros and write
// nothing rather than take the worker down on a hostile packet. The bounds
// check is the one indexing would do anyway.

/// Reads a big-endian u16 at `at` (0 if out of bounds).
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array(b, at))
}

/// Reads a big-endian u32 at `at` (0 if out of bounds).
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(array(b, at))
}

/// Writes a big-endian u16 at `at` (nothing if out of bounds).
#[inline]
pub(crate) fn put16(b: &mut [u8], at: usize, v: u16) {
    put(b, at, v.to_be_bytes());
}

/// Writes a big-endian u32 at `at` (nothing if out of bounds).
#[inline]
pub(crate) fn put32(b: &mut [u8], at: usize, v: u32) {
    put(b, at, v.to_be_bytes());
}

/// Copies a fixed-size array out of `b` at `at` (zeros if out of bounds).
#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    b.get(at..)
        .and_then(|s| s.first_chunk::<N>())
        .copied()
        .unwrap_or([0; N])
}

/// Writes a fixed-size array into `b` at `at` (nothing if out of bounds).
#[inline]
pub(crate) fn put<const N: usize>(b: &mut [u8], at: usize, v: [u8; N]) {
    if let Some(d) = b.get_mut(at..).and_then(|s| s.first_chunk_mut::<N>()) {
        *d = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller whose length check were wrong gets zeros and no write, not
    /// a panic (these helpers read untrusted packets).
    #[test]
    fn helpers_out_of_bounds_do_not_panic() {
        let b = [0x12u8, 0x34, 0x56];
        assert_eq!(be16(&b, 1), 0x3456);
        assert_eq!(be16(&b, 2), 0);
        assert_eq!(be16(&b, usize::MAX - 1), 0);
        assert_eq!(be32(&b, 0), 0);
        assert_eq!(array::<2>(&b, 4), [0, 0]);
        let mut w = [0u8; 3];
        put16(&mut w, 2, 0xffff);
        put32(&mut w, 0, 0xffff_ffff);
        assert_eq!(w, [0, 0, 0]);
        put16(&mut w, 1, 0xabcd);
        assert_eq!(w, [0, 0xab, 0xcd]);
    }
}
