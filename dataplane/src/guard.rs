//! Input checks the packet path makes before a packet may create state or
//! be forwarded: VLAN tags a port does not carry, martian sources and the
//! reverse-path filter (Linux `rp_filter`), and the L4 checksum of
//! packets that would create a connection. Each failure is a named
//! [`DropReason`]; nothing here allocates, panics or changes state.

use crate::buf::{PacketBuf, RxCsum};
use crate::neigh::AddrClass;
use crate::parse::{DropReason, PacketMeta};
use crate::snapshot::Snapshot;
use crate::wire::{checksum, ip_proto};
use core::net::IpAddr;

/// Whether a frame's VLAN tag (`meta.vlan`, a 12-bit id) is the one the
/// port carries (`port_tci`; `None`: the port is untagged). A tagged
/// frame on an untagged port, or with another VLAN, is refused: it must
/// not be forwarded with its tag still on.
#[inline]
pub fn vlan_ok(meta: &PacketMeta, port_tci: Option<u16>) -> bool {
    meta.vlan == port_tci.map(|t| t & 0x0fff)
}

/// Whether `a` can never be the source of a packet from a client
/// (Linux's martian sources): multicast, limited broadcast, loopback, or
/// unspecified (this last one except towards a multicast or broadcast
/// destination, as MLD and DHCP send).
fn martian(a: IpAddr, dst: IpAddr) -> bool {
    let group_dst = match dst {
        IpAddr::V4(d) => d.is_multicast() || d.is_broadcast(),
        IpAddr::V6(d) => d.is_multicast(),
    };
    match a {
        IpAddr::V4(s) => {
            s.is_multicast()
                || s.is_broadcast()
                || s.is_loopback()
                || (s.is_unspecified() && !group_dst)
        }
        IpAddr::V6(s) => s.is_multicast() || s.is_loopback() || (s.is_unspecified() && !group_dst),
    }
}

/// The source checks of a packet that arrived on `port` and matches no
/// connection: a martian source, or one of our own addresses as source (a
/// VIP: the land attack; a FullNAT local or port address), when the port
/// checks martians; then the port's reverse-path filter (IPv6 link-local
/// sources are on the link and pass). `None` when it passes.
#[inline]
pub fn source_check(snap: &Snapshot, meta: &PacketMeta, port: u16) -> Option<DropReason> {
    let g = snap.guard(port);
    let src = meta.src;
    if g.martians {
        let ours = snap.addrs.get(src).is_some_and(|a| {
            matches!(a.class, AddrClass::Vip | AddrClass::Local | AddrClass::Port)
        });
        if ours || martian(src, meta.dst) {
            return Some(DropReason::MartianSource);
        }
    }
    if let IpAddr::V6(s) = src {
        if s.segments()[0] & 0xffc0 == 0xfe80 || s.is_unspecified() {
            return None;
        }
    }
    if let IpAddr::V4(s) = src {
        if s.is_unspecified() {
            return None;
        }
    }
    (!snap.rp_ok(port, src, g.rp_filter)).then_some(DropReason::RpFilter)
}

/// The L4 checksum of a packet about to create a connection: the NIC's
/// verdict where it gave one, else computed over the segment. Only TCP
/// and UDP in an unfragmented packet are checked (a first fragment holds
/// part of the datagram only); a UDP checksum of zero means none over
/// IPv4 and is invalid over IPv6 (RFC 8200 8.1). `None` when it passes.
#[inline]
pub fn l4_checksum<B: PacketBuf + ?Sized>(pkt: &B, meta: &PacketMeta) -> Option<DropReason> {
    let bad = match meta.l4_proto {
        ip_proto::TCP => DropReason::BadTcpChecksum,
        ip_proto::UDP => DropReason::BadUdpChecksum,
        _ => return None,
    };
    if meta.is_fragment() || !meta.has_l4 {
        return None;
    }
    match pkt.rx_l4_csum() {
        RxCsum::Good => return None,
        RxCsum::Bad => return Some(bad),
        RxCsum::Unknown => {}
    }
    let start = usize::from(meta.l4_offset);
    let end = start + usize::from(meta.l4_len);
    let Some(l4) = pkt.data().get(start..end) else {
        return Some(bad);
    };
    if meta.l4_proto == ip_proto::UDP && l4.get(6..8) == Some(&[0, 0]) {
        return meta.src.is_ipv6().then_some(bad);
    }
    let sum = match (meta.src, meta.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::l4_checksum_v4(s, d, meta.l4_proto, l4),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::l4_checksum_v6(s, d, meta.l4_proto, l4),
        _ => return Some(bad),
    };
    (sum != 0).then_some(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::parse::parse;
    use etherparse::PacketBuilder;

    fn udp4(sum_zero: bool, corrupt: bool) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([198, 18, 0, 9], [198, 18, 0, 100], 64)
            .udp(40000, 53)
            .write(&mut out, b"query")
            .unwrap();
        if sum_zero {
            out[40] = 0;
            out[41] = 0;
        }
        if corrupt {
            let n = out.len();
            out[n - 1] ^= 0x55;
        }
        out
    }

    fn tcp6_syn(corrupt: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let s: std::net::Ipv6Addr = "2001:db8::9".parse().unwrap();
        let d: std::net::Ipv6Addr = "2001:db8::100".parse().unwrap();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(s.octets(), d.octets(), 64)
            .tcp(40000, 80, 1, 65535)
            .syn()
            .write(&mut out, b"")
            .unwrap();
        if corrupt {
            out[14 + 40 + 4] ^= 1; // sequence number
        }
        out
    }

    fn check(f: &[u8]) -> Option<DropReason> {
        let m = parse(f).unwrap();
        l4_checksum(&VecBuf::new(f), &m)
    }

    #[test]
    fn checksums_computed_when_the_nic_did_not() {
        assert_eq!(check(&udp4(false, false)), None);
        assert_eq!(check(&udp4(false, true)), Some(DropReason::BadUdpChecksum));
        // No checksum over IPv4 is allowed.
        assert_eq!(check(&udp4(true, true)), None);
        assert_eq!(check(&tcp6_syn(false)), None);
        assert_eq!(check(&tcp6_syn(true)), Some(DropReason::BadTcpChecksum));
    }

    #[test]
    fn zero_udp_checksum_over_ipv6_is_bad() {
        let mut out = Vec::new();
        let s: std::net::Ipv6Addr = "2001:db8::9".parse().unwrap();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv6(s.octets(), s.octets(), 64)
            .udp(1, 2)
            .write(&mut out, b"x")
            .unwrap();
        out[14 + 40 + 6] = 0;
        out[14 + 40 + 7] = 0;
        assert_eq!(check(&out), Some(DropReason::BadUdpChecksum));
    }

    /// A buffer whose NIC verdict is given.
    struct Nic(VecBuf, RxCsum);
    impl PacketBuf for Nic {
        fn data(&self) -> &[u8] {
            self.0.data()
        }
        fn data_mut(&mut self) -> &mut [u8] {
            self.0.data_mut()
        }
        fn headroom(&self) -> usize {
            self.0.headroom()
        }
        fn tailroom(&self) -> usize {
            self.0.tailroom()
        }
        fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
            self.0.prepend(n)
        }
        fn adj(&mut self, n: usize) -> bool {
            self.0.adj(n)
        }
        fn trim(&mut self, n: usize) -> bool {
            self.0.trim(n)
        }
        fn append(&mut self, n: usize) -> Option<&mut [u8]> {
            self.0.append(n)
        }
        fn rx_l4_csum(&self) -> RxCsum {
            self.1
        }
    }

    #[test]
    fn the_nic_verdict_wins() {
        let good = tcp6_syn(false);
        let bad = tcp6_syn(true);
        let m = parse(&good).unwrap();
        let nic = |f: &[u8], v| Nic(VecBuf::new(f), v);
        assert_eq!(
            l4_checksum(&nic(&good, RxCsum::Bad), &m),
            Some(DropReason::BadTcpChecksum)
        );
        assert_eq!(l4_checksum(&nic(&bad, RxCsum::Good), &m), None);
        assert_eq!(
            l4_checksum(&nic(&bad, RxCsum::Unknown), &m),
            Some(DropReason::BadTcpChecksum)
        );
    }

    #[test]
    fn vlan_must_match_the_port() {
        let mut m = parse(&udp4(false, false)).unwrap();
        assert!(vlan_ok(&m, None));
        m.vlan = Some(100);
        assert!(!vlan_ok(&m, None));
        assert!(vlan_ok(&m, Some(0x2064)));
        assert!(!vlan_ok(&m, Some(101)));
    }
}
