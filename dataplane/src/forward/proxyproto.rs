//! Proxy Protocol v1/v2 on FullNAT TCP services: the client's address and
//! port, and the VIP and virtual port it connected to, written at the
//! start of the client → real-server byte stream, so that a real server
//! behind FullNAT (which sees only rvs's local address) learns who the
//! client is (HAProxy's PROXY protocol, as nginx `listen ...
//! proxy_protocol` and haproxy `accept-proxy` read it).
//!
//! How it works (DPVS does the same job in `ip_vs_proxy_proto.c`):
//!
//! - **At the SYN** ([`conn_seq`]): the header's length is known (it
//!   depends only on the addresses and ports), and so is the sequence
//!   number of the client's first byte, ISN + 1. The connection gets the
//!   sequence delta `in_seq = {init_seq: ISN + 1, delta: header length,
//!   previous_delta: 0}` in the side table of adjusted connections. With
//!   [`super::SeqAdj`]'s semantics every client segment that starts after
//!   the first byte is shifted by the header's length, the segment that
//!   starts at it (and the bare ACK of the handshake) is not, and the
//!   server's acknowledgements and SACK edges are shifted back.
//! - **On a client segment that starts at ISN + 1 and occupies sequence
//!   space** (data, or a FIN) ([`on_segment`]): the header is inserted in
//!   front of its payload. This is the first data segment, the
//!   handshake's last ACK when it carries data, a FIN before any data (the
//!   real server then gets the header and the FIN), and every
//!   retransmission of any of them: the header is written again, so rvs
//!   keeps no "header sent" state and never retransmits anything itself.
//!   A bare ACK at ISN + 1 carries nothing and passes unchanged.
//! - **On the real server's SYN-ACK**: its MSS option is lowered by the
//!   header's length, so the client's first segment plus the header still
//!   fits the MSS the real server asked for (no segment is split, no
//!   second packet is made).
//!
//! The header is written into the packet's own buffer: the Ethernet, IP
//! and TCP headers move forward into the headroom (or, without headroom,
//! the payload moves back into the tailroom), the IP length grows, and
//! the TCP checksum is verified and then recomputed over the new segment
//! (a v1 header of odd length shifts the payload off its 16-bit words, so
//! no incremental update exists). Nothing allocates or panics; a segment
//! that cannot take the header is dropped and counted (the client
//! retransmits it).
//!
//! Limits: TCP only (no v2 over UDP); v2 carries no TLVs; a SYN carrying
//! data (TCP Fast Open) is forwarded as it is, so real servers must not
//! accept TFO data; the headers a client sends itself are not checked or
//! replaced (DPVS's "insecure" mode does not exist); a real server that
//! acknowledges part of the header only (never seen: the header and the
//! segment's data arrive in one segment) would show the client an ack of
//! bytes it did not send.

#![deny(clippy::indexing_slicing)]

use super::{ConnSeq, Endpoint, SeqAdj};
use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::{checksum, ip_proto, tcp};
use core::net::IpAddr;

/// Offset of the TCP data-offset byte.
const DATA_OFF: usize = 12;

/// Which Proxy Protocol header a service's real servers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PpVersion {
    /// Version 1: one text line, `PROXY TCP4 client vip cport vport\r\n`.
    V1,
    /// Version 2: the binary header (signature, PROXY command, TCP over
    /// IPv4 or IPv6, addresses and ports).
    V2,
}

impl PpVersion {
    /// The name in config and `rvsadm` (`v1`, `v2`).
    pub const fn name(self) -> &'static str {
        match self {
            PpVersion::V1 => "v1",
            PpVersion::V2 => "v2",
        }
    }

    /// From a config or `rvsadm` name (case-insensitive, as DPVS).
    pub fn from_name(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("v1") {
            Some(PpVersion::V1)
        } else if s.eq_ignore_ascii_case("v2") {
            Some(PpVersion::V2)
        } else {
            None
        }
    }

    fn other(self) -> Self {
        match self {
            PpVersion::V1 => PpVersion::V2,
            PpVersion::V2 => PpVersion::V1,
        }
    }
}

/// The longest header: v1 over IPv6 with two full-length addresses and
/// five-digit ports is 104 bytes (the specification's bound is 107).
pub const MAX_HEADER_LEN: usize = 108;

/// The v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
];

/// A header built into a fixed buffer (no allocation).
#[derive(Clone, Copy)]
pub struct Header {
    buf: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl core::fmt::Debug for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Header").field(&self.bytes()).finish()
    }
}

impl Header {
    /// The header's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Its length.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether it is empty (never, for a built header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn put(&mut self, b: &[u8]) -> bool {
        let at = usize::from(self.len);
        let Some(dst) = self.buf.get_mut(at..at + b.len()) else {
            return false;
        };
        dst.copy_from_slice(b);
        self.len += b.len() as u8;
        true
    }
}

impl core::fmt::Write for Header {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        if self.put(s.as_bytes()) {
            Ok(())
        } else {
            Err(core::fmt::Error)
        }
    }
}

/// Builds the header for a connection from `client` to `vip` (both of one
/// family). `None` for mixed families.
pub fn header(v: PpVersion, client: Endpoint, vip: Endpoint) -> Option<Header> {
    let mut h = Header {
        buf: [0; MAX_HEADER_LEN],
        len: 0,
    };
    match v {
        PpVersion::V1 => {
            use core::fmt::Write;
            let fam = match (client.addr, vip.addr) {
                (IpAddr::V4(_), IpAddr::V4(_)) => "TCP4",
                (IpAddr::V6(_), IpAddr::V6(_)) => "TCP6",
                _ => return None,
            };
            write!(
                h,
                "PROXY {fam} {} {} {} {}\r\n",
                client.addr, vip.addr, client.port, vip.port
            )
            .ok()?;
        }
        PpVersion::V2 => {
            h.put(&V2_SIGNATURE);
            // Version 2, PROXY command.
            h.put(&[0x21]);
            match (client.addr, vip.addr) {
                (IpAddr::V4(c), IpAddr::V4(d)) => {
                    // AF_INET, STREAM; 12 bytes of addresses.
                    h.put(&[0x11, 0, 12]);
                    h.put(&c.octets());
                    h.put(&d.octets());
                }
                (IpAddr::V6(c), IpAddr::V6(d)) => {
                    // AF_INET6, STREAM; 36 bytes of addresses.
                    h.put(&[0x21, 0, 36]);
                    h.put(&c.octets());
                    h.put(&d.octets());
                }
                _ => return None,
            }
            h.put(&client.port.to_be_bytes());
            h.put(&vip.port.to_be_bytes());
        }
    }
    Some(h)
}

/// The sequence adjustment a Proxy Protocol connection starts with, from
/// its SYN's sequence number `syn_seq`: the client's stream grows by the
/// header's length from its first byte on. `None` for mixed families.
pub fn conn_seq(v: PpVersion, client: Endpoint, vip: Endpoint, syn_seq: u32) -> Option<ConnSeq> {
    let h = header(v, client, vip)?;
    Some(ConnSeq {
        in_seq: SeqAdj {
            init_seq: syn_seq.wrapping_add(1),
            delta: h.len() as u32,
            previous_delta: 0,
        },
        out_seq: SeqAdj::default(),
    })
}

/// Why a segment could not get its header (each a counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PpError {
    /// Neither headroom nor tailroom holds the header.
    NoRoom,
    /// The segment's TCP checksum is wrong (it is not rewritten into a
    /// valid one: dropped, the client retransmits).
    BadChecksum,
    /// Headers not as the parser described them, a fragment, or a length
    /// that would overflow.
    Malformed,
    /// The connection's delta is not the length of the header the service
    /// (or, after a reload changed it, the other version) would write.
    Mismatch,
}

impl PpError {
    /// Every error.
    pub const ALL: [PpError; 4] = [
        PpError::NoRoom,
        PpError::BadChecksum,
        PpError::Malformed,
        PpError::Mismatch,
    ];

    /// The counter's name.
    pub const fn name(self) -> &'static str {
        match self {
            PpError::NoRoom => "no_room",
            PpError::BadChecksum => "bad_checksum",
            PpError::Malformed => "malformed",
            PpError::Mismatch => "mismatch",
        }
    }
}

/// What [`on_segment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpStep {
    /// Nothing to do for this segment.
    Pass,
    /// The SYN-ACK's MSS was lowered by the header's length.
    MssClamped,
    /// The header of this version was inserted; the packet now has this
    /// meta (lengths grown, offsets unchanged).
    Inserted(PpVersion, PacketMeta),
    /// The segment cannot be forwarded (it would corrupt the stream):
    /// drop it and count.
    Drop(PpError),
}

/// The step the forwarding path runs for a TCP segment of a connection
/// that carries a sequence adjustment, before the adjustment itself.
/// `version`: the service's setting now; `client`/`vip`: the connection's
/// endpoints; `inbound`: client → real server.
///
/// Only a connection whose `in_seq` was made by [`conn_seq`] (a delta and
/// no previous delta) is touched; cheap for any other segment (a compare
/// of the sequence number).
pub fn on_segment<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    s: &ConnSeq,
    version: Option<PpVersion>,
    client: Endpoint,
    vip: Endpoint,
    inbound: bool,
) -> PpStep {
    let a = &s.in_seq;
    if a.delta == 0 || a.previous_delta != 0 || !meta.has_l4 || meta.l4_proto != ip_proto::TCP {
        return PpStep::Pass;
    }
    let l4 = usize::from(meta.l4_offset);
    if !inbound {
        const SYNACK: u8 = tcp::flags::SYN | tcp::flags::ACK;
        if version.is_some() && meta.tcp_flags & SYNACK == SYNACK {
            let by = u16::try_from(a.delta).unwrap_or(u16::MAX);
            if clamp_mss(buf, meta, by) {
                return PpStep::MssClamped;
            }
        }
        return PpStep::Pass;
    }
    let Some(seq) = buf
        .data()
        .get(l4 + 4..l4 + 8)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
    else {
        return PpStep::Pass;
    };
    if seq != a.init_seq {
        return PpStep::Pass;
    }
    let f = meta.tcp_flags;
    if f & (tcp::flags::SYN | tcp::flags::RST) != 0 {
        return PpStep::Pass;
    }
    let Some(thl) = buf
        .data()
        .get(l4 + DATA_OFF)
        .map(|b| usize::from(b >> 4) * 4)
    else {
        return PpStep::Pass;
    };
    let payload = usize::from(meta.l4_len).saturating_sub(thl);
    if payload == 0 && f & tcp::flags::FIN == 0 {
        return PpStep::Pass;
    }
    // The version whose header has the length the connection was given:
    // the service's, else (a reload changed or removed it) the other one.
    let first = version.unwrap_or(PpVersion::V2);
    let h = [first, first.other()]
        .into_iter()
        .filter_map(|v| header(v, client, vip).map(|h| (v, h)))
        .find(|(_, h)| h.len() as u32 == a.delta);
    let Some((v, h)) = h else {
        return PpStep::Drop(PpError::Mismatch);
    };
    match insert(buf, meta, h.bytes()) {
        Ok(m) => PpStep::Inserted(v, m),
        Err(e) => PpStep::Drop(e),
    }
}

/// Inserts `hdr` between the TCP header and the payload of the segment in
/// `buf`: IP length and checksum, TCP checksum (verified first) all made
/// right. Returns the packet's new meta. On error the packet is
/// unchanged.
pub fn insert<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    hdr: &[u8],
) -> Result<PacketMeta, PpError> {
    let n = hdr.len();
    if meta.is_fragment() || !meta.has_l4 || meta.l4_proto != ip_proto::TCP {
        return Err(PpError::Malformed);
    }
    let l3 = usize::from(meta.l3_offset);
    let l4 = usize::from(meta.l4_offset);
    let l4_len = usize::from(meta.l4_len);
    let end = l4 + l4_len;
    if end > buf.len() || l4 < l3 {
        return Err(PpError::Malformed);
    }
    let thl = buf
        .data()
        .get(l4 + DATA_OFF)
        .map(|b| usize::from(b >> 4) * 4)
        .ok_or(PpError::Malformed)?;
    if thl < tcp::HEADER_LEN || thl > l4_len {
        return Err(PpError::Malformed);
    }
    let new_payload_len =
        u16::try_from(usize::from(meta.ip_payload_len) + n).map_err(|_| PpError::Malformed)?;
    let new_l4_len = u16::try_from(l4_len + n).map_err(|_| PpError::Malformed)?;
    if meta.l3 == L3::Ipv4 && usize::from(new_payload_len) + (l4 - l3) > usize::from(u16::MAX) {
        return Err(PpError::Malformed);
    }
    // The checksum must be right before it is recomputed.
    if crate::guard::l4_checksum(buf, meta).is_some() {
        return Err(PpError::BadChecksum);
    }
    let split = l4 + thl;
    if buf.headroom() >= n {
        if buf.prepend(n).is_none() {
            return Err(PpError::NoRoom);
        }
        let d = buf.data_mut();
        d.copy_within(n..n + split, 0);
        if let Some(dst) = d.get_mut(split..split + n) {
            dst.copy_from_slice(hdr);
        }
    } else if buf.tailroom() >= n {
        let old = buf.len();
        if buf.append(n).is_none() {
            return Err(PpError::NoRoom);
        }
        let d = buf.data_mut();
        d.copy_within(split..old, split + n);
        if let Some(dst) = d.get_mut(split..split + n) {
            dst.copy_from_slice(hdr);
        }
    } else {
        return Err(PpError::NoRoom);
    }
    let mut m = *meta;
    m.ip_payload_len = new_payload_len;
    m.l4_len = new_l4_len;
    let d = buf.data_mut();
    match meta.l3 {
        L3::Ipv4 => {
            let total = (l4 - l3) as u16 + new_payload_len;
            if let Some(ip) = d.get_mut(l3..l4) {
                let old = [
                    ip.get(2).copied().unwrap_or(0),
                    ip.get(3).copied().unwrap_or(0),
                ];
                if let Some(t) = ip.get_mut(2..4) {
                    t.copy_from_slice(&total.to_be_bytes());
                }
                if let Some(c) = ip.get_mut(10..12) {
                    let hc = u16::from_be_bytes([
                        c.first().copied().unwrap_or(0),
                        c.get(1).copied().unwrap_or(0),
                    ]);
                    let nc = checksum::update16(hc, u16::from_be_bytes(old), total);
                    c.copy_from_slice(&nc.to_be_bytes());
                }
            }
        }
        L3::Ipv6 => {
            if let Some(p) = d.get_mut(l3 + 4..l3 + 6) {
                p.copy_from_slice(&new_payload_len.to_be_bytes());
            }
        }
        L3::Arp => return Err(PpError::Malformed),
    }
    let Some(seg) = d.get_mut(l4..l4 + usize::from(new_l4_len)) else {
        return Err(PpError::Malformed);
    };
    if let Some(c) = seg.get_mut(tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2) {
        c.copy_from_slice(&[0, 0]);
    }
    let sum = match (meta.src, meta.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => checksum::l4_checksum_v4(s, t, ip_proto::TCP, seg),
        (IpAddr::V6(s), IpAddr::V6(t)) => checksum::l4_checksum_v6(s, t, ip_proto::TCP, seg),
        _ => return Err(PpError::Malformed),
    };
    if let Some(c) = seg.get_mut(tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2) {
        c.copy_from_slice(&sum.to_be_bytes());
    }
    Ok(m)
}

/// Lowers the MSS option of the TCP segment in `buf` by `by` (not below
/// 536, the IPv4 default), updating the checksum incrementally. `false`
/// when it has no MSS option (the client then assumes 536 or 1220, which
/// leaves room) or nothing changed.
pub fn clamp_mss<B: PacketBuf + ?Sized>(buf: &mut B, meta: &PacketMeta, by: u16) -> bool {
    let l4 = usize::from(meta.l4_offset);
    let Some(seg) = buf.data_mut().get_mut(l4..l4 + usize::from(meta.l4_len)) else {
        return false;
    };
    let Some(thl) = seg.get(DATA_OFF).map(|b| usize::from(b >> 4) * 4) else {
        return false;
    };
    if thl > seg.len() {
        return false;
    }
    let mut p = tcp::HEADER_LEN;
    while p < thl {
        let Some(&kind) = seg.get(p) else {
            return false;
        };
        match kind {
            0 => return false,
            1 => {
                p += 1;
                continue;
            }
            _ => {}
        }
        let len = match seg.get(p + 1) {
            Some(&l) if l >= 2 && p + usize::from(l) <= thl => usize::from(l),
            _ => return false,
        };
        if kind == 2 && len == 4 {
            let Some(v) = seg.get(p + 2..p + 4) else {
                return false;
            };
            let old = u16::from_be_bytes([
                v.first().copied().unwrap_or(0),
                v.get(1).copied().unwrap_or(0),
            ]);
            let new = old.saturating_sub(by).max(536).min(old);
            if new == old {
                return false;
            }
            if let Some(w) = seg.get_mut(p + 2..p + 4) {
                w.copy_from_slice(&new.to_be_bytes());
            }
            if let Some(c) = seg.get_mut(tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2) {
                let hc = u16::from_be_bytes([
                    c.first().copied().unwrap_or(0),
                    c.get(1).copied().unwrap_or(0),
                ]);
                c.copy_from_slice(&checksum::update16(hc, old, new).to_be_bytes());
            }
            return true;
        }
        p += len;
    }
    false
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::parse::parse;
    use core::net::Ipv6Addr;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn ep(a: &str, p: u16) -> Endpoint {
        Endpoint::new(a.parse().unwrap(), p)
    }

    #[test]
    fn v1_headers_are_the_text_line() {
        let h = header(
            PpVersion::V1,
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
        )
        .unwrap();
        assert_eq!(h.bytes(), b"PROXY TCP4 198.18.0.10 198.18.1.1 40000 80\r\n");
        let h = header(
            PpVersion::V1,
            ep("2001:db8::10", 1),
            ep("2001:db8:1::1", 443),
        )
        .unwrap();
        assert_eq!(
            h.bytes(),
            b"PROXY TCP6 2001:db8::10 2001:db8:1::1 1 443\r\n"
        );
        // The longest: fits.
        let long = "2001:db88:ffff:ffff:ffff:ffff:ffff:ffff";
        let h = header(PpVersion::V1, ep(long, 65535), ep(long, 65535)).unwrap();
        assert_eq!(h.len(), 104);
        assert!(h.len() <= MAX_HEADER_LEN);
        assert!(header(PpVersion::V1, ep("198.18.0.1", 1), ep("2001:db8::1", 1)).is_none());
    }

    #[test]
    fn v2_headers_are_the_binary_layout() {
        let h = header(
            PpVersion::V2,
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
        )
        .unwrap();
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x11, 0, 12, 198, 18, 0, 10, 198, 18, 1, 1]);
        want.extend_from_slice(&40000u16.to_be_bytes());
        want.extend_from_slice(&80u16.to_be_bytes());
        assert_eq!(h.bytes(), &want[..]);
        assert_eq!(h.len(), 28);
        let c: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let v: Ipv6Addr = "2001:db8:1::1".parse().unwrap();
        let h = header(PpVersion::V2, ep("2001:db8::10", 5), ep("2001:db8:1::1", 6)).unwrap();
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[0x21, 0x21, 0, 36]);
        want.extend_from_slice(&c.octets());
        want.extend_from_slice(&v.octets());
        want.extend_from_slice(&[0, 5, 0, 6]);
        assert_eq!(h.bytes(), &want[..]);
        assert_eq!(h.len(), 52);
    }

    #[test]
    fn names_round_trip() {
        for v in [PpVersion::V1, PpVersion::V2] {
            assert_eq!(PpVersion::from_name(v.name()), Some(v));
        }
        assert_eq!(PpVersion::from_name("V2"), Some(PpVersion::V2));
        assert_eq!(PpVersion::from_name("v3"), None);
    }

    fn seg4(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([198, 18, 0, 10], [198, 18, 1, 1], 64)
            .tcp(40000, 80, seq, 65535)
            .ack(77);
        if flags & tcp::flags::FIN != 0 {
            b = b.fin();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn check(frame: &[u8]) -> (u32, Vec<u8>) {
        let s = SlicedPacket::from_ethernet(frame).unwrap();
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("tcp")
        };
        let Some(etherparse::NetSlice::Ipv4(ip)) = s.net else {
            panic!("v4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.calc_header_checksum(), h.header_checksum, "ip checksum");
        let want = t
            .calc_checksum_ipv4(ip.header().source(), ip.header().destination())
            .unwrap();
        assert_eq!(t.checksum(), want, "tcp checksum");
        (t.sequence_number(), t.payload().to_vec())
    }

    fn cs() -> ConnSeq {
        conn_seq(
            PpVersion::V1,
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
            999,
        )
        .unwrap()
    }

    #[test]
    fn first_segment_gets_the_header_by_headroom_or_tailroom() {
        let f = seg4(1000, 0, b"GET / HTTP/1.0\r\n\r\n");
        let m = parse(&f).unwrap();
        let hdr = b"PROXY TCP4 198.18.0.10 198.18.1.1 40000 80\r\n";
        for (head, tail) in [(128, 0), (0, 128)] {
            let mut b = VecBuf::from_slice(&f, head, tail);
            let st = on_segment(
                &mut b,
                &m,
                &cs(),
                Some(PpVersion::V1),
                ep("198.18.0.10", 40000),
                ep("198.18.1.1", 80),
                true,
            );
            let PpStep::Inserted(PpVersion::V1, nm) = st else {
                panic!("{st:?}")
            };
            assert_eq!(nm, parse(b.data()).unwrap(), "the new meta is the parse");
            let (seq, payload) = check(b.data());
            assert_eq!(seq, 1000);
            let mut want = hdr.to_vec();
            want.extend_from_slice(b"GET / HTTP/1.0\r\n\r\n");
            assert_eq!(payload, want);
        }
        // No room at all: refused, untouched.
        let mut b = VecBuf::from_slice(&f, 10, 10);
        let st = on_segment(
            &mut b,
            &m,
            &cs(),
            Some(PpVersion::V1),
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
            true,
        );
        assert_eq!(st, PpStep::Drop(PpError::NoRoom));
        assert_eq!(b.data(), &f[..]);
    }

    #[test]
    fn only_the_segment_at_the_first_byte_with_data_or_fin() {
        let c = cs();
        let (cl, vip) = (ep("198.18.0.10", 40000), ep("198.18.1.1", 80));
        // A bare ACK at the first byte, a later segment, an RST: untouched.
        for f in [seg4(1000, 0, b""), seg4(1100, 0, b"later")] {
            let m = parse(&f).unwrap();
            let mut b = VecBuf::new(&f);
            let st = on_segment(&mut b, &m, &c, Some(PpVersion::V1), cl, vip, true);
            assert_eq!(st, PpStep::Pass);
            assert_eq!(b.data(), &f[..]);
        }
        // A FIN before any data: header + FIN.
        let f = seg4(1000, tcp::flags::FIN, b"");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        let st = on_segment(&mut b, &m, &c, Some(PpVersion::V1), cl, vip, true);
        assert!(matches!(st, PpStep::Inserted(PpVersion::V1, _)), "{st:?}");
        let (_, payload) = check(b.data());
        assert_eq!(payload, header(PpVersion::V1, cl, vip).unwrap().bytes());
        // A reload switched the service to v2: the length decides (v1).
        let f = seg4(1000, 0, b"x");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        let st = on_segment(&mut b, &m, &c, Some(PpVersion::V2), cl, vip, true);
        assert!(matches!(st, PpStep::Inserted(PpVersion::V1, _)), "{st:?}");
        let mut b = VecBuf::new(&f);
        let st = on_segment(&mut b, &m, &c, None, cl, vip, true);
        assert!(matches!(st, PpStep::Inserted(PpVersion::V1, _)), "{st:?}");
        // A delta no header has: dropped.
        let mut odd = c;
        odd.in_seq.delta = 7;
        let mut b = VecBuf::new(&f);
        let st = on_segment(&mut b, &m, &odd, Some(PpVersion::V1), cl, vip, true);
        assert_eq!(st, PpStep::Drop(PpError::Mismatch));
        // A bad checksum is not made good.
        let mut bad = f.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let mut b = VecBuf::new(&bad);
        let st = on_segment(&mut b, &m, &c, Some(PpVersion::V1), cl, vip, true);
        assert_eq!(st, PpStep::Drop(PpError::BadChecksum));
        assert_eq!(b.data(), &bad[..]);
    }

    #[test]
    fn synack_mss_is_lowered_by_the_header() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([198, 18, 2, 2], [198, 18, 2, 1], 64)
            .tcp(80, 5000, 7, 65535)
            .syn()
            .ack(1000)
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut out, b"")
            .unwrap();
        let m = parse(&out).unwrap();
        let mut b = VecBuf::new(&out);
        let c = cs();
        let st = on_segment(
            &mut b,
            &m,
            &c,
            Some(PpVersion::V1),
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
            false,
        );
        assert_eq!(st, PpStep::MssClamped);
        let s = SlicedPacket::from_ethernet(b.data()).unwrap();
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!()
        };
        let mss = t.options_iterator().find_map(|o| match o {
            Ok(etherparse::TcpOptionElement::MaximumSegmentSize(v)) => Some(v),
            _ => None,
        });
        assert_eq!(mss, Some(1460 - c.in_seq.delta as u16));
        let want = t
            .calc_checksum_ipv4([198, 18, 2, 2], [198, 18, 2, 1])
            .unwrap();
        assert_eq!(t.checksum(), want);
        // Without a service setting (turned off): left alone.
        let mut b = VecBuf::new(&out);
        let st = on_segment(
            &mut b,
            &m,
            &c,
            None,
            ep("198.18.0.10", 40000),
            ep("198.18.1.1", 80),
            false,
        );
        assert_eq!(st, PpStep::Pass);
    }

    #[test]
    fn any_bytes_never_panic() {
        let f = seg4(1000, 0, b"hello");
        let m = parse(&f).unwrap();
        let c = cs();
        for cut in 0..f.len() {
            let mut b = VecBuf::from_slice(&f[..cut], 64, 64);
            let _ = on_segment(
                &mut b,
                &m,
                &c,
                Some(PpVersion::V1),
                ep("198.18.0.10", 1),
                ep("198.18.1.1", 2),
                true,
            );
            let _ = on_segment(
                &mut b,
                &m,
                &c,
                Some(PpVersion::V2),
                ep("198.18.0.10", 1),
                ep("198.18.1.1", 2),
                false,
            );
        }
    }
}
