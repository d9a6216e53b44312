//! TUN: encapsulation toward the real server, like IPVS's
//! `ip_vs_tunnel_xmit{,_v6}` with its three tunnel types (ipvsadm's
//! `--tun-type`):
//!
//! - **ipip**: IPv4 in IPv4 (protocol 4), IPv6 in IPv6 (next header 41);
//! - **gue**: outer IP + UDP (to the real server's `--tun-port`) + the
//!   4-byte GUE header (version 0, no options, protocol 4 or 41), as
//!   `ipvs_gue_encap` builds it (Linux fou "gue");
//! - **gre**: outer IP + GRE (RFC 2784: 4 bytes, protocol type 0x0800 or
//!   0x86DD; 8 bytes with the checksum present when `--tun-csum`), as
//!   `ipvs_gre_encap` builds it.
//!
//! The outer family is the real server's, which may differ from the
//! packet's (IPVS's heterogeneous pools, Linux 3.18): IPv4 in IPv6 is next
//! header 4 for ipip, IPv6 in IPv4 protocol 41; GUE and GRE name the inner
//! protocol as usual. The frame's EtherType becomes the outer family's.

#![deny(clippy::indexing_slicing)]

use super::{check_mtu, ip_len, set_l2, ForwardError, L2Out, Translation, Verdict};
use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::{checksum, ethertype, ip_proto, ipv4, ipv6};
use core::net::IpAddr;

/// The outer header's fields the caller chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunParams {
    /// Outer source: the director's address (the real server's family).
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

/// The tunnel type of a real server and its options (ipvsadm's
/// `--tun-type`, `--tun-port`, `--tun-csum`/`--tun-nocsum`).
///
/// `--tun-remcsum` (GUE remote checksum offload) is not a separate
/// variant: IPVS adds the option only for packets whose inner checksum is
/// still to be computed (`CHECKSUM_PARTIAL`, locally generated), and a
/// forwarded packet's is always complete, so the kernel sends such a
/// packet exactly as with `--tun-nocsum`; control maps it to
/// `Gue { csum: false }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunEncap {
    /// IP in IP (the default).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation.
    Gue {
        /// UDP destination port (host order), the real server's fou port.
        port: u16,
        /// Fill the UDP checksum; without it the checksum is 0, for IPv6
        /// outer headers too (RFC 6935, what the kernel sends).
        csum: bool,
    },
    /// GRE.
    Gre {
        /// Include the GRE checksum (C bit and 4 more bytes).
        csum: bool,
    },
}

impl TunEncap {
    /// Length of the UDP header plus the GUE header.
    pub const GUE_LEN: usize = 8 + 4;
    /// Length of the GRE header without / with the checksum.
    pub const GRE_LEN: (usize, usize) = (4, 8);

    /// Bytes between the outer IP header and the inner packet.
    pub const fn header_len(self) -> usize {
        match self {
            TunEncap::Ipip => 0,
            TunEncap::Gue { .. } => Self::GUE_LEN,
            TunEncap::Gre { csum: false } => Self::GRE_LEN.0,
            TunEncap::Gre { csum: true } => Self::GRE_LEN.1,
        }
    }

    /// The whole overhead added to an inner packet by an outer header of
    /// the given family (outer IP header included): what the MTU check
    /// subtracts. The outer family is the real server's.
    pub const fn overhead(self, ipv6: bool) -> usize {
        let ip = if ipv6 {
            ipv6::HEADER_LEN
        } else {
            ipv4::HEADER_LEN
        };
        ip + self.header_len()
    }

    /// The ipvsadm name of the type.
    pub const fn name(self) -> &'static str {
        match self {
            TunEncap::Ipip => "ipip",
            TunEncap::Gue { .. } => "gue",
            TunEncap::Gre { .. } => "gre",
        }
    }
}

/// The first port of the range GUE source ports are drawn from (Linux's
/// default `ip_local_port_range`, which `udp_flow_src_port` uses).
pub const GUE_SPORT_MIN: u16 = 32768;
/// The end (exclusive) of that range.
pub const GUE_SPORT_MAX: u16 = 60999;

/// The GUE UDP source port of a connection: a hash of the client and the
/// virtual service (the inner flow), mapped into
/// [`GUE_SPORT_MIN`]..[`GUE_SPORT_MAX`] as the kernel's
/// `udp_flow_src_port` does, so every packet of a flow (ICMP errors about
/// it included) has the same outer 5-tuple and real servers' RSS spreads
/// flows over their queues.
pub fn gue_source_port(t: &Translation) -> u16 {
    // FNV-1a over the inner flow's endpoints; cheap and well spread.
    let mut h: u32 = 0x811c_9dc5;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        }
    };
    for e in [t.client, t.vip] {
        match e.addr {
            IpAddr::V4(a) => eat(&a.octets()),
            IpAddr::V6(a) => eat(&a.octets()),
        }
        eat(&e.port.to_be_bytes());
    }
    let h = h ^ (h << 16);
    let span = u64::from(GUE_SPORT_MAX - GUE_SPORT_MIN);
    let off = (u64::from(h) * span) >> 32;
    GUE_SPORT_MIN + u16::try_from(off).unwrap_or(0)
}

/// Encapsulates the packet toward `t.rip.addr` with the tunnel type
/// `t.tun`, prepending the outer headers into the headroom; the Ethernet
/// header (VLAN tag kept) moves to the front and gets `out`'s MACs. The
/// outer header is of the real server's family (`t.rip.addr`, with
/// `p.src` of the same family), the packet's or the other one. The outer
/// IP header copies the inner TOS / traffic class (ECN included, RFC 6040
/// normal mode), the IPv6 flow label (IPv6 in IPv6; 0 otherwise), and
/// IPv4 DF (an IPv6 packet in IPv4 gets DF: IPv6 is never fragmented on
/// the path); the inner packet is unchanged. Ethernet padding after the
/// inner packet is dropped first.
///
/// If the encapsulated packet would exceed `out.mtu`, nothing changes and
/// the answer is [`Verdict::TooBig`] with the MTU less the overhead
/// ([`TunEncap::overhead`] of the outer family: 20 / 40 bytes for ipip,
/// 32 / 52 for GUE, 24 / 44 for GRE, 28 / 48 for GRE with checksum; the
/// reply is of the packet's family), or
/// [`ForwardError::NeedsFragmentation`].
// bounds: entry checks give 14 <= l2, ni <= inner and l2 + inner <= buf.len(), so d[l2..] holds the inner IP header (ni bytes); after trim and prepend the frame is exactly l2 + total + inner bytes (total = n + hl), so total..total + l2, l2 - 2..l2, l2..l2 + n and l2 + n.. are in it.
#[allow(clippy::indexing_slicing)]
pub fn tun<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    p: &TunParams,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    if t.rip.addr.is_ipv6() != p.src.is_ipv6() || meta.l3 == L3::Arp {
        return Err(ForwardError::FamilyMismatch);
    }
    let inner = ip_len(meta)?;
    let l2 = usize::from(meta.l3_offset);
    if l2 + inner > buf.len() || l2 < 14 {
        return Err(ForwardError::NotIp);
    }
    let v6 = meta.l3 == L3::Ipv6;
    let ni = if v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    if inner < ni {
        return Err(ForwardError::NotIp);
    }
    // The outer header: the real server's family.
    let outer_v6 = t.rip.addr.is_ipv6();
    let n = if outer_v6 {
        ipv6::HEADER_LEN
    } else {
        ipv4::HEADER_LEN
    };
    let hl = t.tun.header_len();
    let total = n + hl;
    if let Some(v) = check_mtu(buf, meta, total, out.mtu)? {
        return Ok(v);
    }
    if buf.headroom() < total {
        return Err(ForwardError::NoHeadroom);
    }
    // Inner fields the outer header copies.
    let d = buf.data();
    let (tos, flow, ttl, df) = if v6 {
        let h = ipv6::Packet::new_unchecked(&d[l2..]);
        // DF matters only for an IPv4 outer header.
        (h.traffic_class(), h.flow_label(), h.hop_limit(), true)
    } else {
        let h = ipv4::Packet::new_unchecked(&d[l2..]);
        (h.dscp_ecn(), 0, h.ttl(), h.dont_frag())
    };
    let (inner_proto, inner_ethertype) = if v6 {
        (ip_proto::IPV6, ethertype::IPV6)
    } else {
        (ip_proto::IPIP, ethertype::IPV4)
    };
    let outer_proto = match t.tun {
        TunEncap::Ipip => inner_proto,
        TunEncap::Gue { .. } => ip_proto::UDP,
        TunEncap::Gre { .. } => ip_proto::GRE,
    };
    let pad = buf.len() - (l2 + inner);
    buf.trim(pad);
    if buf.prepend(total).is_none() {
        return Err(ForwardError::NoHeadroom);
    }
    let d = buf.data_mut();
    d.copy_within(total..total + l2, 0);
    if outer_v6 != v6 {
        // The EtherType (after the VLAN tag, if any) names the outer
        // family.
        let et = if outer_v6 {
            ethertype::IPV6
        } else {
            ethertype::IPV4
        };
        d[l2 - 2..l2].copy_from_slice(&et.to_be_bytes());
    }
    // The tunnel header (between the outer IP header and the inner
    // packet), checksum fields zero for now.
    let tunnel_len = hl + inner;
    match t.tun {
        TunEncap::Ipip => {}
        TunEncap::Gue { port, .. } => {
            let u = &mut d[l2 + n..l2 + total];
            u[0..2].copy_from_slice(&gue_source_port(t).to_be_bytes());
            u[2..4].copy_from_slice(&port.to_be_bytes());
            let ulen = u16::try_from(tunnel_len).unwrap_or(u16::MAX);
            u[4..6].copy_from_slice(&ulen.to_be_bytes());
            // checksum, then GUE: version 0, C 0, hlen 0; the inner
            // protocol; no flags.
            u[6..12].copy_from_slice(&[0, 0, 0, inner_proto, 0, 0]);
        }
        TunEncap::Gre { csum } => {
            let g = &mut d[l2 + n..l2 + total];
            g[0] = if csum { 0x80 } else { 0 };
            g[1] = 0;
            g[2..4].copy_from_slice(&inner_ethertype.to_be_bytes());
            if csum {
                g[4..8].fill(0);
                let c = checksum::checksum(&d[l2 + n..]);
                d[l2 + n + 4..l2 + n + 6].copy_from_slice(&c.to_be_bytes());
            }
        }
    }
    let ttl = p.ttl.unwrap_or(ttl);
    match (p.src, t.rip.addr) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            if let TunEncap::Gue { csum: true, .. } = t.tun {
                let c = checksum::l4_checksum_v4(src, dst, ip_proto::UDP, &d[l2 + n..]);
                let c = if c == 0 { 0xffff } else { c };
                d[l2 + n + 6..l2 + n + 8].copy_from_slice(&c.to_be_bytes());
            }
            let mut h = ipv4::Packet::new_unchecked(&mut d[l2..l2 + n]);
            h.set_version_and_header_len(ipv4::HEADER_LEN);
            h.set_dscp_ecn(tos);
            h.set_total_len(u16::try_from(inner + total).unwrap_or(u16::MAX));
            h.set_ident(p.ident);
            h.set_frag(df, false, 0);
            h.set_ttl(ttl);
            h.set_protocol(outer_proto);
            h.set_src_addr(src);
            h.set_dst_addr(dst);
            h.fill_checksum();
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            if let TunEncap::Gue { csum: true, .. } = t.tun {
                let c = checksum::l4_checksum_v6(src, dst, ip_proto::UDP, &d[l2 + n..]);
                let c = if c == 0 { 0xffff } else { c };
                d[l2 + n + 6..l2 + n + 8].copy_from_slice(&c.to_be_bytes());
            }
            let mut h = ipv6::Packet::new_unchecked(&mut d[l2..l2 + n]);
            h.set_version_tc_flow(tos, flow);
            h.set_payload_len(u16::try_from(tunnel_len).unwrap_or(u16::MAX));
            h.set_next_header(outer_proto);
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
