//! In-place address and port rewrites for NAT, with incremental checksum
//! updates (RFC 1624).
//!
//! Each function takes the IP packet (from its first header byte), checks
//! what it needs, and changes nothing if a check fails. The IPv4 header
//! checksum and the TCP/UDP (and ICMPv6) checksum are updated for the
//! address change through the pseudo-header, and for the port change. A UDP
//! checksum of zero ("none") stays zero. ICMP(v6) echo messages take the
//! "port" as their identifier. A non-first fragment has no L4 header: an
//! address-only rewrite works on it (the L4 checksum in the first fragment
//! was updated for the same address), a port rewrite is refused with
//! [`Error::Fragmented`].
//!
//! ICMP error messages about a connection need their quoted packet
//! translated too; that is the forwarding code's job (it uses these views).

#![deny(clippy::indexing_slicing)]

use super::checksum::{update, update128, update16, update32, update4};
use super::{be16, ip_proto, ipv4, ipv6, put16, tcp, udp, Error};
use super::{icmpv4, icmpv6};
use core::net::{Ipv4Addr, Ipv6Addr};

/// Which endpoint of a packet a rewrite changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Source address and port.
    Src,
    /// Destination address and port.
    Dst,
}

/// Where the L4 fields of a rewrite are, relative to the IP packet.
struct L4Plan {
    /// Offset of the L4 checksum.
    csum_at: usize,
    /// Offset of the port (or echo identifier) to change.
    port_at: Option<usize>,
    /// Whether the checksum covers the addresses (pseudo-header).
    pseudo: bool,
    /// Whether a zero checksum means "none" and is left alone (UDP).
    zero_is_none: bool,
}

/// Checks the L4 header at `l4_off` and says what to update.
fn plan(
    ip: &[u8],
    l4_off: usize,
    proto: u8,
    side: Side,
    port: bool,
    v6: bool,
) -> Result<Option<L4Plan>, Error> {
    let l4 = ip.get(l4_off..).ok_or(Error::Truncated)?;
    let port_at =
        |src: usize, dst: usize| port.then_some(l4_off + if side == Side::Src { src } else { dst });
    let p = match proto {
        ip_proto::TCP => {
            tcp::Packet::new_checked(l4)?;
            L4Plan {
                csum_at: l4_off + tcp::CHECKSUM_OFFSET,
                port_at: port_at(0, 2),
                pseudo: true,
                zero_is_none: false,
            }
        }
        ip_proto::UDP => {
            udp::Packet::new_checked_header(l4)?;
            L4Plan {
                csum_at: l4_off + udp::CHECKSUM_OFFSET,
                port_at: port_at(0, 2),
                pseudo: true,
                zero_is_none: true,
            }
        }
        ip_proto::ICMP if !v6 => {
            let m = icmpv4::Packet::new_checked(l4)?;
            if port && !icmpv4::is_echo_type(m.msg_type()) {
                return Err(Error::Unsupported);
            }
            L4Plan {
                csum_at: l4_off + icmpv4::CHECKSUM_OFFSET,
                port_at: port.then_some(l4_off + icmpv4::ECHO_IDENT_OFFSET),
                pseudo: false,
                zero_is_none: false,
            }
        }
        ip_proto::ICMPV6 if v6 => {
            let m = icmpv6::Packet::new_checked(l4)?;
            if port && !icmpv6::is_echo_type(m.msg_type()) {
                return Err(Error::Unsupported);
            }
            L4Plan {
                csum_at: l4_off + icmpv6::CHECKSUM_OFFSET,
                port_at: port.then_some(l4_off + icmpv6::ECHO_IDENT_OFFSET),
                pseudo: true,
                zero_is_none: false,
            }
        }
        _ if port => return Err(Error::Unsupported),
        _ => return Ok(None),
    };
    Ok(Some(p))
}

/// Applies an L4 plan: checksum for the address (old → new) and the port.
/// Generic over the address length so each family's sums are unrolled.
#[inline]
fn apply<const N: usize>(
    ip: &mut [u8],
    plan: &L4Plan,
    old_addr: &[u8; N],
    new_addr: &[u8; N],
    port: Option<u16>,
) {
    let mut c = be16(ip, plan.csum_at);
    let skip = plan.zero_is_none && c == 0;
    if plan.pseudo && !skip {
        // N is a constant: one branch survives per family.
        c = match (
            <[u8; 4]>::try_from(&old_addr[..]),
            <[u8; 4]>::try_from(&new_addr[..]),
        ) {
            (Ok(o), Ok(n)) => update4(c, o, n),
            _ => update(c, old_addr, new_addr),
        };
    }
    if let (Some(at), Some(new)) = (plan.port_at, port) {
        if !skip {
            c = update16(c, be16(ip, at), new);
        }
        put16(ip, at, new);
    }
    if !skip {
        if plan.zero_is_none && c == 0 {
            c = 0xffff;
        }
        put16(ip, plan.csum_at, c);
    }
}

/// Rewrites the source or destination address (and port) of an IPv4
/// packet in place; see the module documentation.
pub fn rewrite_ipv4(
    ip: &mut [u8],
    side: Side,
    addr: Ipv4Addr,
    port: Option<u16>,
) -> Result<(), Error> {
    let p = ipv4::Packet::new_checked(&*ip)?;
    let non_first = p.frag_offset() != 0;
    if non_first && port.is_some() {
        return Err(Error::Fragmented);
    }
    let old = match side {
        Side::Src => p.src_addr(),
        Side::Dst => p.dst_addr(),
    };
    let plan = if non_first {
        None
    } else {
        // Only the IP payload (not Ethernet padding) is the L4 segment.
        let end = usize::from(p.total_len());
        plan(
            ip.get(..end).ok_or(Error::BadLength)?,
            p.header_len(),
            p.protocol(),
            side,
            port.is_some(),
            false,
        )?
    };
    let (old, new) = (old.octets(), addr.octets());
    if let Some(plan) = &plan {
        apply(ip, plan, &old, &new, port);
    }
    let at = match side {
        Side::Src => ipv4::SRC_ADDR_OFFSET,
        Side::Dst => ipv4::DST_ADDR_OFFSET,
    };
    // new_checked verified the 20-byte header, so this is always Some.
    if let Some(a) = ip.get_mut(at..at + 4) {
        a.copy_from_slice(&new);
    }
    let c = update32(be16(ip, ipv4::CHECKSUM_OFFSET), old, new);
    put16(ip, ipv4::CHECKSUM_OFFSET, c);
    Ok(())
}

/// Rewrites the destination of an IPv4 packet (NAT toward a real server).
pub fn rewrite_ipv4_dst(ip: &mut [u8], addr: Ipv4Addr, port: Option<u16>) -> Result<(), Error> {
    rewrite_ipv4(ip, Side::Dst, addr, port)
}

/// Rewrites the source of an IPv4 packet (NAT replies, FullNAT).
pub fn rewrite_ipv4_src(ip: &mut [u8], addr: Ipv4Addr, port: Option<u16>) -> Result<(), Error> {
    rewrite_ipv4(ip, Side::Src, addr, port)
}

/// Rewrites the source or destination address (and port) of an IPv6
/// packet in place, walking extension headers to the L4 header; see the
/// module documentation.
pub fn rewrite_ipv6(
    ip: &mut [u8],
    side: Side,
    addr: Ipv6Addr,
    port: Option<u16>,
) -> Result<(), Error> {
    let p = ipv6::Packet::new_checked(&*ip)?;
    let upper = p.walk()?;
    let non_first = upper.frag.is_some_and(|f| f.offset != 0);
    if non_first && port.is_some() {
        return Err(Error::Fragmented);
    }
    let old = match side {
        Side::Src => p.src_addr(),
        Side::Dst => p.dst_addr(),
    };
    let plan = if non_first {
        None
    } else {
        let end = ipv6::HEADER_LEN + usize::from(p.payload_len());
        plan(
            ip.get(..end).ok_or(Error::BadLength)?,
            upper.offset,
            upper.protocol,
            side,
            port.is_some(),
            true,
        )?
    };
    let (old, new) = (old.octets(), addr.octets());
    if let Some(plan) = &plan {
        apply(ip, plan, &old, &new, port);
    }
    let at = match side {
        Side::Src => ipv6::SRC_ADDR_OFFSET,
        Side::Dst => ipv6::DST_ADDR_OFFSET,
    };
    // new_checked verified the 40-byte header, so this is always Some.
    if let Some(a) = ip.get_mut(at..at + 16) {
        a.copy_from_slice(&new);
    }
    Ok(())
}

/// Rewrites the destination of an IPv6 packet.
pub fn rewrite_ipv6_dst(ip: &mut [u8], addr: Ipv6Addr, port: Option<u16>) -> Result<(), Error> {
    rewrite_ipv6(ip, Side::Dst, addr, port)
}

/// Rewrites the source of an IPv6 packet.
pub fn rewrite_ipv6_src(ip: &mut [u8], addr: Ipv6Addr, port: Option<u16>) -> Result<(), Error> {
    rewrite_ipv6(ip, Side::Src, addr, port)
}

/// The rewrite of [`rewrite_ipv4`] / [`rewrite_ipv6`] for a packet the
/// caller has already checked (the established fast path,
/// `crate::pipeline` `fast`): an unfragmented IPv4 packet with a 20-byte
/// header, or an IPv6 packet without extension headers, carrying TCP
/// (`tcp`) or UDP whose header lies inside the IP payload, starting at
/// `l3` in `frame`. The same checksum steps in the same order, so the
/// bytes are those of the checked functions (the staged-path tests
/// compare the two on every mode). Nothing is re-validated; offsets
/// outside `frame` read zeros and write nothing, as everywhere in
/// `wire`.
#[inline(always)]
pub(crate) fn rewrite_plain<const N: usize>(
    frame: &mut [u8],
    l3: usize,
    side: Side,
    new: [u8; N],
    port: u16,
    tcp: bool,
) {
    let v4 = N == 4;
    let (src_at, dst_at, l4) = if v4 {
        (
            ipv4::SRC_ADDR_OFFSET,
            ipv4::DST_ADDR_OFFSET,
            ipv4::HEADER_LEN,
        )
    } else {
        (
            ipv6::SRC_ADDR_OFFSET,
            ipv6::DST_ADDR_OFFSET,
            ipv6::HEADER_LEN,
        )
    };
    let (addr_at, port_at) = match side {
        Side::Src => (l3 + src_at, l3 + l4),
        Side::Dst => (l3 + dst_at, l3 + l4 + 2),
    };
    let csum_at = l3
        + l4
        + if tcp {
            tcp::CHECKSUM_OFFSET
        } else {
            udp::CHECKSUM_OFFSET
        };
    let old: [u8; N] = super::array(frame, addr_at);
    let mut c = be16(frame, csum_at);
    // A UDP checksum of zero is "none" and stays so (see `apply`).
    let skip = !tcp && c == 0;
    if !skip {
        c = match (<[u8; 4]>::try_from(&old[..]), <[u8; 4]>::try_from(&new[..])) {
            (Ok(o), Ok(n)) => update4(c, o, n),
            _ => match (
                <[u8; 16]>::try_from(&old[..]),
                <[u8; 16]>::try_from(&new[..]),
            ) {
                (Ok(o), Ok(n)) => update128(c, o, n),
                _ => update(c, &old, &new),
            },
        };
        c = update16(c, be16(frame, port_at), port);
    }
    put16(frame, port_at, port);
    if !skip {
        if !tcp && c == 0 {
            c = 0xffff;
        }
        put16(frame, csum_at, c);
    }
    super::put(frame, addr_at, new);
    if let (Ok(o), Ok(n)) = (<[u8; 4]>::try_from(&old[..]), <[u8; 4]>::try_from(&new[..])) {
        let at = l3 + ipv4::CHECKSUM_OFFSET;
        put16(frame, at, update32(be16(frame, at), o, n));
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    use proptest::prelude::*;

    /// Checks every checksum of an IP packet with etherparse, and that our
    /// own full recompute agrees.
    fn assert_checksums(ip: &[u8]) {
        let sp = SlicedPacket::from_ip(ip).unwrap();
        let (s4, d4, s6, d6) = match &sp.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                assert_eq!(h.to_header().calc_header_checksum(), h.header_checksum());
                assert!(ipv4::Packet::new_checked(ip).unwrap().verify_checksum());
                let (s, d) = (h.source_addr(), h.destination_addr());
                (
                    s.octets(),
                    d.octets(),
                    s.to_ipv6_mapped(),
                    d.to_ipv6_mapped(),
                )
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let (s, d) = (h.source_addr(), h.destination_addr());
                ([0; 4], [0; 4], s, d)
            }
            _ => panic!("not IP"),
        };
        let v4 = matches!(sp.net, Some(NetSlice::Ipv4(_)));
        match &sp.transport {
            Some(TransportSlice::Tcp(t)) => {
                let c = if v4 {
                    t.calc_checksum_ipv4(s4, d4).unwrap()
                } else {
                    t.calc_checksum_ipv6(s6.octets(), d6.octets()).unwrap()
                };
                assert_eq!(c, t.checksum());
                let p = tcp::Packet::new_checked(t.slice()).unwrap();
                if v4 {
                    assert!(p.verify_checksum_v4(s4.into(), d4.into()));
                } else {
                    assert!(p.verify_checksum_v6(s6, d6));
                }
            }
            Some(TransportSlice::Udp(u)) => {
                if u.checksum() != 0 {
                    let h = u.to_header();
                    let c = if v4 {
                        h.calc_checksum_ipv4_raw(s4, d4, u.payload()).unwrap()
                    } else {
                        h.calc_checksum_ipv6_raw(s6.octets(), d6.octets(), u.payload())
                            .unwrap()
                    };
                    assert_eq!(c, u.checksum());
                }
            }
            Some(TransportSlice::Icmpv4(i)) => {
                assert_eq!(
                    i.header().icmp_type.calc_checksum(i.payload()),
                    i.checksum()
                );
            }
            Some(TransportSlice::Icmpv6(i)) => {
                assert!(i.is_checksum_valid(s6.octets(), d6.octets()));
            }
            None => panic!("no transport"),
        }
    }

    fn v4_packet(kind: u8, payload: &[u8], udp_zero: bool) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [192, 0, 2, 10], 64);
        let mut out = Vec::new();
        match kind {
            0 => b
                .tcp(40000, 80, 1, 1000)
                .syn()
                .write(&mut out, payload)
                .unwrap(),
            1 => b.udp(40000, 53).write(&mut out, payload).unwrap(),
            _ => b
                .icmpv4_echo_request(0x1234, 1)
                .write(&mut out, payload)
                .unwrap(),
        }
        if udp_zero && kind == 1 {
            out[26] = 0;
            out[27] = 0;
        }
        out
    }

    fn v6_packet(kind: u8, payload: &[u8]) -> Vec<u8> {
        let src = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1).octets();
        let dst = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 10).octets();
        let b = PacketBuilder::ipv6(src, dst, 64);
        let mut out = Vec::new();
        match kind {
            0 => b
                .tcp(40000, 80, 1, 1000)
                .ack(5)
                .write(&mut out, payload)
                .unwrap(),
            1 => b.udp(40000, 53).write(&mut out, payload).unwrap(),
            _ => b
                .icmpv6_echo_request(0x1234, 1)
                .write(&mut out, payload)
                .unwrap(),
        }
        out
    }

    #[test]
    fn ipv4_nat_round_trip() {
        for kind in 0..3 {
            let orig = v4_packet(kind, b"hello", false);
            let mut p = orig.clone();
            let rip = Ipv4Addr::new(172, 16, 0, 5);
            rewrite_ipv4_dst(&mut p, rip, Some(8080)).unwrap();
            assert_checksums(&p);
            let v = ipv4::Packet::new_checked(&p[..]).unwrap();
            assert_eq!(v.dst_addr(), rip);
            rewrite_ipv4_src(&mut p, Ipv4Addr::new(172, 16, 0, 1), Some(5555)).unwrap();
            assert_checksums(&p);
            // Back to the original.
            rewrite_ipv4_dst(
                &mut p,
                Ipv4Addr::new(192, 0, 2, 10),
                Some([80, 53, 0x1234][usize::from(kind)]),
            )
            .unwrap();
            rewrite_ipv4_src(
                &mut p,
                Ipv4Addr::new(10, 0, 0, 1),
                Some(if kind == 2 { 0x1234 } else { 40000 }),
            )
            .unwrap();
            assert_eq!(p, orig, "kind {kind}");
        }
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let mut p = v4_packet(1, b"x", true);
        rewrite_ipv4_dst(&mut p, Ipv4Addr::new(172, 16, 0, 5), Some(5353)).unwrap();
        assert_eq!(&p[26..28], &[0, 0]);
        assert_eq!(&p[22..24], &5353u16.to_be_bytes());
        assert_checksums(&p);
    }

    #[test]
    fn ipv6_nat_round_trip() {
        for kind in 0..3 {
            let orig = v6_packet(kind, b"hello!");
            let mut p = orig.clone();
            let rip = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 5);
            rewrite_ipv6_dst(&mut p, rip, Some(8080)).unwrap();
            assert_checksums(&p);
            rewrite_ipv6_src(&mut p, Ipv6Addr::LOCALHOST, None).unwrap();
            assert_checksums(&p);
            let v = ipv6::Packet::new_checked(&p[..]).unwrap();
            assert_eq!((v.src_addr(), v.dst_addr()), (Ipv6Addr::LOCALHOST, rip));
        }
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        // Port rewrite of a non-first fragment.
        let mut p = v4_packet(0, b"data", false);
        {
            let mut v = ipv4::Packet::new_unchecked(&mut p[..]);
            v.set_frag(false, false, 10);
            v.fill_checksum();
        }
        let before = p.clone();
        assert_eq!(
            rewrite_ipv4_dst(&mut p, Ipv4Addr::BROADCAST, Some(1)),
            Err(Error::Fragmented)
        );
        assert_eq!(p, before);
        // Address only works, and keeps the IP checksum right.
        rewrite_ipv4_dst(&mut p, Ipv4Addr::new(1, 2, 3, 4), None).unwrap();
        assert!(ipv4::Packet::new_checked(&p[..]).unwrap().verify_checksum());
        // Truncated TCP header.
        let mut p = v4_packet(0, b"", false);
        p.truncate(30);
        p[3] = 30;
        ipv4::Packet::new_unchecked(&mut p[..]).fill_checksum();
        let before = p.clone();
        assert_eq!(
            rewrite_ipv4_dst(&mut p, Ipv4Addr::BROADCAST, Some(1)),
            Err(Error::Truncated)
        );
        assert_eq!(p, before);
    }

    #[test]
    fn parse_then_rewrite_on_a_packet_buffer() {
        use crate::buf::{PacketBuf, VecBuf};
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&v4_packet(0, b"GET /", false));
        let mut buf = VecBuf::new(&frame);
        let m = crate::parse::parse(buf.data()).unwrap();
        let l3 = usize::from(m.l3_offset);
        rewrite_ipv4_dst(
            &mut buf.data_mut()[l3..],
            Ipv4Addr::new(172, 16, 0, 9),
            Some(8080),
        )
        .unwrap();
        let m2 = crate::parse::parse(buf.data()).unwrap();
        assert_eq!(m2.dst, core::net::IpAddr::from([172, 16, 0, 9]));
        assert_eq!((m2.src_port, m2.dst_port), (m.src_port, 8080));
        assert_checksums(&buf.data()[l3..]);
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..120),
            port in proptest::option::of(any::<u16>()),
            v4_first in any::<bool>(),
        ) {
            let mut d = data.clone();
            if v4_first && !d.is_empty() {
                d[0] = 0x45;
            }
            let before = d.clone();
            let r = rewrite_ipv4(&mut d, Side::Dst, Ipv4Addr::LOCALHOST, port);
            if r.is_err() {
                prop_assert_eq!(&d, &before);
            }
            let mut d = data;
            if !d.is_empty() {
                d[0] = 0x60;
            }
            let before = d.clone();
            let r = rewrite_ipv6(&mut d, Side::Src, Ipv6Addr::LOCALHOST, port);
            if r.is_err() {
                prop_assert_eq!(&d, &before);
            }
        }

        #[test]
        fn v4_incremental_equals_recompute(
            kind in 0u8..3,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            dst in any::<[u8; 4]>(),
            src in any::<[u8; 4]>(),
            dport in any::<u16>(),
            sport in any::<u16>(),
        ) {
            let mut p = v4_packet(kind, &payload, false);
            rewrite_ipv4_dst(&mut p, dst.into(), Some(dport)).unwrap();
            rewrite_ipv4_src(&mut p, src.into(), Some(sport)).unwrap();
            assert_checksums(&p);
        }

        #[test]
        fn v6_incremental_equals_recompute(
            kind in 0u8..3,
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            dst in any::<[u8; 16]>(),
            src in any::<[u8; 16]>(),
            dport in any::<u16>(),
            sport in any::<u16>(),
        ) {
            let mut p = v6_packet(kind, &payload);
            rewrite_ipv6_dst(&mut p, dst.into(), Some(dport)).unwrap();
            rewrite_ipv6_src(&mut p, src.into(), Some(sport)).unwrap();
            assert_checksums(&p);
        }
    }
}
