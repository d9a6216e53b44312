//! PMTU discovery replies: ICMP "fragmentation needed" (type 3 code 4,
//! RFC 1191) and ICMPv6 "packet too big" (RFC 8201), built in place of the
//! packet that did not fit, as a router would.

#![deny(clippy::indexing_slicing)]

use super::{ip_len, ForwardError, Verdict};
use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::checksum::{checksum, l4_checksum_v6};
use crate::wire::ethernet::MacAddr;
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv4, ipv6, put16, put32};
use core::net::IpAddr;

/// Largest ICMPv4 error packet (RFC 1812 §4.3.2.3: the quote may fill the
/// reply up to 576 bytes).
pub const IPV4_ICMP_MAX_LEN: usize = 576;
/// Largest ICMPv6 error packet (RFC 4443 §2.4: the minimum IPv6 MTU).
pub const IPV6_ICMP_MAX_LEN: usize = 1280;
/// The smallest IPv4 MTU (RFC 791).
pub(super) const IPV4_MIN_MTU: usize = 68;
/// The smallest IPv6 MTU (RFC 8200).
pub(super) const IPV6_MIN_MTU: usize = 1280;
/// TTL / hop limit of the replies.
const REPLY_TTL: u8 = 64;

/// Turns the packet in `buf` (which did not fit; see [`Verdict::TooBig`])
/// into an ICMP "fragmentation needed" / ICMPv6 "packet too big" for its
/// sender, from `from` (the director's address on that side, same family),
/// quoting the packet as received, truncated so the reply stays within
/// 576 / 1280 bytes. The Ethernet header is turned around: destination ←
/// the packet's source MAC, source ← `own_mac`; a VLAN tag stays. Send the
/// result back out of the input port ([`Verdict::Reply`]).
///
/// Refused with [`ForwardError::IcmpNotAllowed`] (RFC 1812 §4.3.2.7) for
/// ICMP errors, non-first fragments and multicast, broadcast or
/// unspecified sources. The reply's IPv4 identification is 0 and DF is
/// clear; it uses 28 (IPv4) or 48 (IPv6) bytes of headroom.
// bounds: entry checks give 14 <= l2 and l2 + len <= buf.len(), so [6..12] is in the frame; after trim and prepend the frame is exactly l2 + hdr + quote bytes, so hdr..hdr + l2, ..12 and l2.. are in it, `ip` is `total` = hdr + quote bytes long, and ip[HEADER_LEN..total] is the ICMP message, at least its 8-byte header (hdr includes it).
#[allow(clippy::indexing_slicing)]
pub fn pmtu_reply<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    from: IpAddr,
    own_mac: MacAddr,
    mtu: u16,
) -> Result<Verdict, ForwardError> {
    let len = ip_len(meta)?;
    let l2 = usize::from(meta.l3_offset);
    if l2 + len > buf.len() || l2 < 14 {
        return Err(ForwardError::NotIp);
    }
    if meta.is_icmp_error() || meta.is_non_first_fragment() {
        return Err(ForwardError::IcmpNotAllowed);
    }
    let bad_src = match meta.src {
        IpAddr::V4(a) => a.is_multicast() || a.is_broadcast() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_multicast() || a.is_unspecified(),
    };
    if bad_src {
        return Err(ForwardError::IcmpNotAllowed);
    }
    let (hdr, max) = match (meta.l3, from) {
        (L3::Ipv4, IpAddr::V4(_)) => (ipv4::HEADER_LEN + icmpv4::HEADER_LEN, IPV4_ICMP_MAX_LEN),
        (L3::Ipv6, IpAddr::V6(_)) => (ipv6::HEADER_LEN + icmpv6::HEADER_LEN, IPV6_ICMP_MAX_LEN),
        _ => return Err(ForwardError::FamilyMismatch),
    };
    if buf.headroom() < hdr {
        return Err(ForwardError::NoHeadroom);
    }
    let quote = len.min(max - hdr);
    let sender_mac: [u8; 6] = {
        let mut m = [0u8; 6];
        m.copy_from_slice(&buf.data()[6..12]);
        m
    };
    let extra = buf.len() - (l2 + quote);
    buf.trim(extra);
    if buf.prepend(hdr).is_none() {
        return Err(ForwardError::NoHeadroom);
    }
    let d = buf.data_mut();
    d.copy_within(hdr..hdr + l2, 0);
    d[..6].copy_from_slice(&sender_mac);
    d[6..12].copy_from_slice(&own_mac.0);
    let total = hdr + quote;
    let ip = &mut d[l2..];
    match (from, meta.src) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let r = ipv4::Repr {
                src,
                dst,
                protocol: ip_proto::ICMP,
                payload_len: u16::try_from(total - ipv4::HEADER_LEN).unwrap_or(u16::MAX),
                ttl: REPLY_TTL,
                ident: 0,
                dont_frag: false,
            };
            r.emit(ip)?;
            let m = &mut ip[ipv4::HEADER_LEN..total];
            m[0] = icmpv4::types::DEST_UNREACHABLE;
            m[1] = 4; // fragmentation needed and DF set
            put16(m, 2, 0);
            put16(m, 4, 0);
            put16(m, 6, mtu);
            let c = checksum(m);
            put16(m, 2, c);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let r = ipv6::Repr {
                src,
                dst,
                next_header: ip_proto::ICMPV6,
                payload_len: u16::try_from(total - ipv6::HEADER_LEN).unwrap_or(u16::MAX),
                hop_limit: REPLY_TTL,
            };
            r.emit(ip)?;
            let m = &mut ip[ipv6::HEADER_LEN..total];
            m[0] = icmpv6::types::PACKET_TOO_BIG;
            m[1] = 0;
            put16(m, 2, 0);
            put32(m, 4, u32::from(mtu));
            let c = l4_checksum_v6(src, dst, ip_proto::ICMPV6, m);
            put16(m, 2, c);
        }
        // Checked above.
        _ => return Err(ForwardError::FamilyMismatch),
    }
    Ok(Verdict::Reply)
}
