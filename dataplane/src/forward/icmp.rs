//! ICMP and ICMPv6 errors about a tracked connection: finding the flow in
//! the quoted packet, and translating outer header and quote together.
//!
//! The quote is the packet that caused the error, as the reporting node saw
//! it, so it travelled the other way from the error: an error arriving from
//! the client side quotes a reply (VIP → client), one arriving from the
//! real-server side quotes a request (client or laddr → RIP).
//!
//! The translation changes the outer addresses, the quoted addresses and
//! TCP/UDP ports (FullNAT: a quoted ICMP echo's identifier too), the quoted IPv4 header checksum, the quoted TCP/UDP
//! checksum when the quote holds it (updated incrementally, so a truncated
//! quote does not matter; IPVS leaves it stale, rvs makes the quote exactly
//! the packet the receiver sent), and the ICMP checksum, incrementally over
//! every changed word (IPVS recomputes it over the whole message; the
//! result is the same for a valid message and a corrupt one stays
//! corrupt).

#![deny(clippy::indexing_slicing)]

use super::{ip_mut, Endpoint, ForwardError};
use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::checksum::update;
use crate::wire::{be16, icmpv4, icmpv6, ip_proto, ipv4, ipv6, put16};
use core::net::IpAddr;

/// The flow of the packet quoted in an ICMP error, as that packet
/// travelled (the reverse of the error's own direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InnerFlow {
    /// L4 protocol of the quoted packet.
    pub proto: u8,
    /// Quoted source address.
    pub src: IpAddr,
    /// Quoted destination address.
    pub dst: IpAddr,
    /// Quoted TCP/UDP source port (ICMP echo: identifier; others: 0).
    pub src_port: u16,
    /// Quoted TCP/UDP destination port (ICMP echo: identifier; others: 0).
    pub dst_port: u16,
}

impl InnerFlow {
    /// The flow turned around: the tuple of a packet of the same
    /// connection travelling the way the ICMP error travels. Look the
    /// connection up with this, as if the error were such a packet.
    pub fn reversed(&self) -> InnerFlow {
        InnerFlow {
            proto: self.proto,
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
        }
    }
}

/// Where the quote's L4 header is.
struct Quote {
    /// Offset of the quote in the ICMP message (always 8).
    at: usize,
    /// Whether the quote is IPv6.
    v6: bool,
    /// L4 protocol.
    proto: u8,
    /// Offset of the L4 header from the start of the quote.
    l4: usize,
}

/// The ICMP message of the frame, and the checked quote inside it.
fn quote(msg: &[u8], v6: bool) -> Result<Quote, ForwardError> {
    let q = msg.get(8..).ok_or(ForwardError::BadIcmpQuote)?;
    let (proto, l4) = if v6 {
        let p = ipv6::Packet::new_checked_header(q).map_err(|_| ForwardError::BadIcmpQuote)?;
        let u = p.walk().map_err(|_| ForwardError::BadIcmpQuote)?;
        if u.frag.is_some_and(|f| f.offset != 0) {
            return Err(ForwardError::BadIcmpQuote);
        }
        (u.protocol, u.offset)
    } else {
        let p = ipv4::Packet::new_checked_header(q).map_err(|_| ForwardError::BadIcmpQuote)?;
        if p.frag_offset() != 0 {
            return Err(ForwardError::BadIcmpQuote);
        }
        (p.protocol(), p.header_len())
    };
    // The ports (and the ICMP echo identifier) are in the first 8 bytes.
    if q.len() < l4 + 8 {
        return Err(ForwardError::BadIcmpQuote);
    }
    Ok(Quote {
        at: 8,
        v6,
        proto,
        l4,
    })
}

/// Whether an ICMP error is one rvs translates: IPv4 destination
/// unreachable (fragmentation needed included), time exceeded, parameter
/// problem; ICMPv6 destination unreachable, packet too big, time exceeded,
/// parameter problem.
fn translatable(meta: &PacketMeta) -> bool {
    match meta.l3 {
        L3::Ipv4 => matches!(
            meta.icmp_type,
            icmpv4::types::DEST_UNREACHABLE
                | icmpv4::types::TIME_EXCEEDED
                | icmpv4::types::PARAM_PROBLEM
        ),
        L3::Ipv6 => matches!(
            meta.icmp_type,
            icmpv6::types::DEST_UNREACHABLE
                | icmpv6::types::PACKET_TOO_BIG
                | icmpv6::types::TIME_EXCEEDED
                | icmpv6::types::PARAM_PROBLEM
        ),
        L3::Arp => false,
    }
}

/// The ICMP message of an error packet: offset in the frame and length.
fn message(meta: &PacketMeta) -> Result<(usize, usize), ForwardError> {
    if !meta.is_icmp_error() {
        return Err(ForwardError::Malformed);
    }
    if !translatable(meta) {
        return Err(ForwardError::IcmpUntranslatable);
    }
    Ok((usize::from(meta.l4_offset), usize::from(meta.l4_len)))
}

/// The flow of the packet quoted in the ICMP error `meta` describes (see
/// [`InnerFlow::reversed`] for the lookup). Errors: `Malformed` if it is
/// not an ICMP error, `IcmpUntranslatable` for redirects, source quench and
/// unknown ICMPv6 errors, `BadIcmpQuote` if the quote is a non-first
/// fragment or too short.
pub fn icmp_inner_flow(frame: &[u8], meta: &PacketMeta) -> Result<InnerFlow, ForwardError> {
    let (off, len) = message(meta)?;
    let msg = frame
        .get(off..off.saturating_add(len))
        .ok_or(ForwardError::Malformed)?;
    let v6 = meta.l3 == L3::Ipv6;
    let q = quote(msg, v6)?;
    let (src, dst) = if v6 {
        let p = ipv6::Packet::new_unchecked(msg.get(q.at..).ok_or(ForwardError::Malformed)?);
        (IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()))
    } else {
        let p = ipv4::Packet::new_unchecked(msg.get(q.at..).ok_or(ForwardError::Malformed)?);
        (IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()))
    };
    let l4 = q.at + q.l4;
    let (src_port, dst_port) = match q.proto {
        ip_proto::TCP | ip_proto::UDP => (be16(msg, l4), be16(msg, l4 + 2)),
        ip_proto::ICMP | ip_proto::ICMPV6 => (be16(msg, l4 + 4), be16(msg, l4 + 4)),
        _ => (0, 0),
    };
    Ok(InnerFlow {
        proto: q.proto,
        src,
        dst,
        src_port,
        dst_port,
    })
}

/// What a translation writes: outer addresses, quoted endpoints.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    outer_src: Option<IpAddr>,
    outer_dst: Option<IpAddr>,
    quote_src: Option<Endpoint>,
    quote_dst: Option<Endpoint>,
    /// FullNAT: the identifier of a quoted ICMP echo (the client side's
    /// "port").
    quote_echo: Option<u16>,
}

/// NAT, error from the client side about a reply VIP → client.
pub(super) fn nat_in_plan(t: &super::Translation) -> Plan {
    Plan {
        outer_src: None,
        outer_dst: Some(t.rip.addr),
        quote_src: Some(t.rip),
        quote_dst: None,
        quote_echo: None,
    }
}

/// NAT, error from the real-server side about a request client → RIP.
pub(super) fn nat_out_plan(t: &super::Translation) -> Plan {
    Plan {
        outer_src: Some(t.vip.addr),
        outer_dst: None,
        quote_src: None,
        quote_dst: Some(t.vip),
        quote_echo: None,
    }
}

/// FullNAT, error from the client side about a reply VIP → client.
pub(super) fn fullnat_in_plan(t: &super::Translation, l: Endpoint) -> Plan {
    Plan {
        outer_src: Some(l.addr),
        outer_dst: Some(t.rip.addr),
        quote_src: Some(t.rip),
        quote_dst: Some(l),
        quote_echo: Some(l.port),
    }
}

/// FullNAT, error from the real-server side about a request laddr → RIP.
pub(super) fn fullnat_out_plan(t: &super::Translation) -> Plan {
    Plan {
        outer_src: Some(t.vip.addr),
        outer_dst: Some(t.client.addr),
        quote_src: Some(t.client),
        quote_dst: Some(t.vip),
        quote_echo: Some(t.client.port),
    }
}

/// Edits an ICMP message in place, keeping its checksum right word by word
/// (RFC 1624). Every offset edited is even, so words line up.
struct Editor<'a> {
    msg: &'a mut [u8],
    csum: u16,
}

impl Editor<'_> {
    fn set(&mut self, at: usize, new: &[u8]) {
        if let Some(old) = self.msg.get_mut(at..at + new.len()) {
            self.csum = update(self.csum, old, new);
            old.copy_from_slice(new);
        }
    }

    fn get<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(b) = self.msg.get(at..at + N) {
            out.copy_from_slice(b);
        }
        out
    }
}

/// Octets of an address (4 or 16 bytes used).
fn octets(a: IpAddr) -> ([u8; 16], usize) {
    let mut o = [0u8; 16];
    match a {
        IpAddr::V4(a) => {
            o[..4].copy_from_slice(&a.octets());
            (o, 4)
        }
        IpAddr::V6(a) => {
            o.copy_from_slice(&a.octets());
            (o, 16)
        }
    }
}

/// Rewrites one endpoint of the quote: address, IPv4 header checksum,
/// L4 checksum (pseudo-header and port, when quoted), port (TCP/UDP).
// bounds: `octets` returns n = 4 or 16 with a 16-byte array, so [..n] is in both arrays.
#[allow(clippy::indexing_slicing)]
fn quote_endpoint(ed: &mut Editor<'_>, q: &Quote, src: bool, e: Endpoint) {
    let (new, n) = octets(e.addr);
    let new = &new[..n];
    let addr_at = q.at
        + match (q.v6, src) {
            (false, true) => ipv4::SRC_ADDR_OFFSET,
            (false, false) => ipv4::DST_ADDR_OFFSET,
            (true, true) => ipv6::SRC_ADDR_OFFSET,
            (true, false) => ipv6::DST_ADDR_OFFSET,
        };
    let old: [u8; 16] = {
        let mut o = [0u8; 16];
        if let Some(b) = ed.msg.get(addr_at..addr_at + n) {
            o[..n].copy_from_slice(b);
        }
        o
    };
    let old = &old[..n];
    ed.set(addr_at, new);
    if !q.v6 {
        let at = q.at + ipv4::CHECKSUM_OFFSET;
        let c = update(u16::from_be_bytes(ed.get::<2>(at)), old, new);
        ed.set(at, &c.to_be_bytes());
    }
    let l4 = q.at + q.l4;
    let len = ed.msg.len();
    let (csum_at, port_at, zero_is_none) = match q.proto {
        ip_proto::TCP => (l4 + 16, Some(l4 + if src { 0 } else { 2 }), false),
        ip_proto::UDP => (l4 + 6, Some(l4 + if src { 0 } else { 2 }), true),
        // The ICMPv6 checksum covers the pseudo-header; the ICMP one not.
        ip_proto::ICMPV6 if q.v6 => (l4 + 2, None, false),
        _ => (usize::MAX, None, false),
    };
    let old_port = port_at.map(|at| ed.get::<2>(at));
    if csum_at.saturating_add(2) <= len {
        let mut c = u16::from_be_bytes(ed.get::<2>(csum_at));
        if !(zero_is_none && c == 0) {
            c = update(c, old, new);
            if let Some(op) = old_port {
                c = update(c, &op, &e.port.to_be_bytes());
            }
            if zero_is_none && c == 0 {
                c = 0xffff;
            }
            ed.set(csum_at, &c.to_be_bytes());
        }
    }
    if let Some(at) = port_at {
        ed.set(at, &e.port.to_be_bytes());
    }
}

/// Rewrites the identifier of a quoted ICMP(v6) echo and its checksum
/// (both within the 8 quoted bytes); other quoted protocols are left alone.
fn quote_echo_ident(ed: &mut Editor<'_>, q: &Quote, id: u16) {
    let l4 = q.at + q.l4;
    let ty = ed.get::<1>(l4)[0];
    let echo = match (q.v6, q.proto) {
        (false, ip_proto::ICMP) => icmpv4::is_echo_type(ty),
        (true, ip_proto::ICMPV6) => icmpv6::is_echo_type(ty),
        _ => false,
    };
    if !echo {
        return;
    }
    let old = ed.get::<2>(l4 + 4);
    let c = update(
        u16::from_be_bytes(ed.get::<2>(l4 + 2)),
        &old,
        &id.to_be_bytes(),
    );
    ed.set(l4 + 2, &c.to_be_bytes());
    ed.set(l4 + 4, &id.to_be_bytes());
}

/// Rewrites an outer address; for IPv6 the ICMPv6 checksum follows the
/// pseudo-header change.
fn outer_addr(ip: &mut [u8], ed: &mut Editor<'_>, v6: bool, src: bool, a: IpAddr) {
    match (v6, a) {
        (false, IpAddr::V4(a)) => {
            let at = if src {
                ipv4::SRC_ADDR_OFFSET
            } else {
                ipv4::DST_ADDR_OFFSET
            };
            let new = a.octets();
            if let Some(old) = ip.get_mut(at..at + 4) {
                let mut o = [0u8; 4];
                o.copy_from_slice(old);
                old.copy_from_slice(&new);
                let c = crate::wire::checksum::update32(be16(ip, ipv4::CHECKSUM_OFFSET), o, new);
                put16(ip, ipv4::CHECKSUM_OFFSET, c);
            }
        }
        (true, IpAddr::V6(a)) => {
            let at = if src {
                ipv6::SRC_ADDR_OFFSET
            } else {
                ipv6::DST_ADDR_OFFSET
            };
            let new = a.octets();
            if let Some(old) = ip.get_mut(at..at + 16) {
                ed.csum = update(ed.csum, old, &new);
                old.copy_from_slice(&new);
            }
        }
        _ => {}
    }
}

/// Translates an ICMP error in place by `plan`. The packet is checked
/// before anything is written.
pub(super) fn translate<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    plan: &Plan,
) -> Result<(), ForwardError> {
    let (off, len) = message(meta)?;
    let v6 = meta.l3 == L3::Ipv6;
    let l3 = usize::from(meta.l3_offset);
    let rel = off.checked_sub(l3).ok_or(ForwardError::Malformed)?;
    let ip = ip_mut(buf, meta)?;
    let (hdr, rest) = ip.split_at_mut(rel.min(ip.len()));
    let msg = rest.get_mut(..len).ok_or(ForwardError::Malformed)?;
    let q = quote(msg, v6)?;
    // The quote must be the same family as the outer packet.
    let fam = |a: IpAddr| a.is_ipv6() == v6;
    let addrs = [
        plan.outer_src,
        plan.outer_dst,
        plan.quote_src.map(|e| e.addr),
        plan.quote_dst.map(|e| e.addr),
    ];
    if !addrs.iter().flatten().all(|a| fam(*a)) {
        return Err(ForwardError::FamilyMismatch);
    }
    let csum = be16(msg, 2);
    let mut ed = Editor { msg, csum };
    if let Some(a) = plan.outer_src {
        outer_addr(hdr, &mut ed, v6, true, a);
    }
    if let Some(a) = plan.outer_dst {
        outer_addr(hdr, &mut ed, v6, false, a);
    }
    if let Some(e) = plan.quote_src {
        quote_endpoint(&mut ed, &q, true, e);
    }
    if let Some(e) = plan.quote_dst {
        quote_endpoint(&mut ed, &q, false, e);
    }
    if let Some(id) = plan.quote_echo {
        quote_echo_ident(&mut ed, &q, id);
    }
    let c = ed.csum;
    put16(ed.msg, 2, c);
    Ok(())
}
