//! TUN: IP-in-IP encapsulation toward the real server (IPv4 in IPv4,
//! protocol 4; IPv6 in IPv6, next header 41), like IPVS's
//! `ip_vs_tunnel_xmit{,_v6}`.

#![deny(clippy::indexing_slicing)]

use super::{check_mtu, ip_len, same_family, set_l2, ForwardError, L2Out, Translation, Verdict};
use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::{ip_proto, ipv4, ipv6};
use core::net::IpAddr;

/// The outer header's fields the caller chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunParams {
    /// Outer source: the director's address (same family as the packet).
    pub src: IpAddr,
    /// Outer TTL / hop limit; `None` inherits the inner packet's.
    pub ttl: Option<u8>,
    /// Outer IPv4 identification (a per-worker counter; ignored for IPv6).
    pub ident: u16,
}

impl TunParams {
    /// The default outer TTL (IPVS uses the route's hop limit, 64 by
    /// default).
    pub const DEFAULT_TTL: u8 = 64;
}

/// Encapsulates the packet toward `t.rip.addr`, prepending the outer header
/// into the headroom; the Ethernet header (VLAN tag kept) moves to the
/// front and gets `out`'s MACs. The outer header copies the inner TOS /
/// traffic class (ECN included, RFC 6040 normal mode), the IPv6 flow label,
/// and IPv4 DF; the inner packet is unchanged. Ethernet padding after the
/// inner packet is dropped first.
///
/// If the encapsulated packet would exceed `out.mtu`, nothing changes and
/// the answer is [`Verdict::TooBig`] with the MTU less the 20 (40) bytes of
/// overhead, or [`ForwardError::NeedsFragmentation`].
// bounds: entry checks give 14 <= l2, n <= inner and l2 + inner <= buf.len(), so d[l2..] holds the inner IP header (n bytes); after trim and prepend the frame is exactly n + l2 + inner bytes, so n..n + l2 and l2..l2 + n are in it.
#[allow(clippy::indexing_slicing)]
pub fn tun<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    p: &TunParams,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    if !same_family(meta, t.rip.addr) || !same_family(meta, p.src) {
        return Err(ForwardError::FamilyMismatch);
    }
    let inner = ip_len(meta)?;
    let l2 = usize::from(meta.l3_offset);
    if l2 + inner > buf.len() || l2 < 14 {
        return Err(ForwardError::NotIp);
    }
    let n = match meta.l3 {
        L3::Ipv6 => ipv6::HEADER_LEN,
        _ => ipv4::HEADER_LEN,
    };
    if inner < n {
        return Err(ForwardError::NotIp);
    }
    if let Some(v) = check_mtu(buf, meta, n, out.mtu)? {
        return Ok(v);
    }
    if buf.headroom() < n {
        return Err(ForwardError::NoHeadroom);
    }
    // Inner fields the outer header copies.
    let d = buf.data();
    let (tos, flow, ttl, df) = match meta.l3 {
        L3::Ipv6 => {
            let h = ipv6::Packet::new_unchecked(&d[l2..]);
            (h.traffic_class(), h.flow_label(), h.hop_limit(), false)
        }
        _ => {
            let h = ipv4::Packet::new_unchecked(&d[l2..]);
            (h.dscp_ecn(), 0, h.ttl(), h.dont_frag())
        }
    };
    let pad = buf.len() - (l2 + inner);
    buf.trim(pad);
    if buf.prepend(n).is_none() {
        return Err(ForwardError::NoHeadroom);
    }
    let d = buf.data_mut();
    d.copy_within(n..n + l2, 0);
    let ttl = p.ttl.unwrap_or(ttl);
    let outer = &mut d[l2..l2 + n];
    match (p.src, t.rip.addr) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut h = ipv4::Packet::new_unchecked(outer);
            h.set_version_and_header_len(ipv4::HEADER_LEN);
            h.set_dscp_ecn(tos);
            h.set_total_len(u16::try_from(inner + n).unwrap_or(u16::MAX));
            h.set_ident(p.ident);
            h.set_frag(df, false, 0);
            h.set_ttl(ttl);
            h.set_protocol(ip_proto::IPIP);
            h.set_src_addr(src);
            h.set_dst_addr(dst);
            h.fill_checksum();
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut h = ipv6::Packet::new_unchecked(outer);
            h.set_version_tc_flow(tos, flow);
            h.set_payload_len(u16::try_from(inner).unwrap_or(u16::MAX));
            h.set_next_header(ip_proto::IPV6);
            h.set_hop_limit(ttl);
            h.set_src_addr(src);
            h.set_dst_addr(dst);
        }
        // Checked above.
        _ => return Err(ForwardError::FamilyMismatch),
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}
