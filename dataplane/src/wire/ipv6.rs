//! IPv6 headers (RFC 8200) and the walk over extension headers to the
//! upper-layer header.

#![deny(clippy::indexing_slicing)]

use super::{be16, be32, ip_proto, put16, Error, Field};
use core::net::Ipv6Addr;

mod field {
    use super::Field;
    pub const VER_TC_FLOW: Field = 0..4;
    pub const LENGTH: Field = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Offset of the source address.
pub const SRC_ADDR_OFFSET: usize = field::SRC_ADDR.start;
/// Offset of the destination address.
pub const DST_ADDR_OFFSET: usize = field::DST_ADDR.start;
/// The most extension headers [`Packet::walk`] follows before refusing the
/// packet with [`Error::TooManyHeaders`].
pub const MAX_EXT_HEADERS: usize = 8;
/// Length of a fragment extension header.
pub const FRAG_HEADER_LEN: usize = 8;

/// What an IPv6 fragment header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragHeader {
    /// Identification.
    pub ident: u32,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
}

/// Where the upper-layer header of an IPv6 packet is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (next header of the last extension header).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if there is one. When its offset is non-zero
    /// the bytes at `offset` are not an upper-layer header.
    pub frag: Option<FragHeader>,
    /// The first routing header's type and segments left, if there is
    /// one (the caller decides what to refuse).
    pub routing: Option<RoutingHeader>,
}

/// The fields of a routing header (RFC 8200 4.4) the packet path decides
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingHeader {
    /// Routing type (0: the deprecated RH0, 2: Mobile IPv6, 4: SRH).
    pub kind: u8,
    /// Segments left.
    pub segments_left: u8,
}

/// A read/write view of an IPv6 packet.
///
/// After [`check_len`](Self::check_len) the fixed header and the payload
/// length are in the buffer (which may be longer: Ethernet padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and runs [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Wraps a buffer and runs [`check_header_len`](Self::check_header_len).
    pub fn new_checked_header(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_header_len()?;
        Ok(p)
    }

    /// Checks the fixed header is in the buffer and the version is 6 (for
    /// headers quoted in ICMPv6 errors).
    pub fn check_header_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(())
    }

    /// [`check_header_len`](Self::check_header_len), then `BadLength` if
    /// the payload length runs past the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header_len()?;
        if HEADER_LEN + usize::from(self.payload_len()) > self.buffer.as_ref().len() {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The underlying buffer, borrowed.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version field (6).
    // bounds: fixed header field; `check_len` (the view's contract, see wire/mod.rs) verified the buffer holds the header.
    #[allow(clippy::indexing_slicing)]
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class.
    pub fn traffic_class(&self) -> u8 {
        ((be16(self.buffer.as_ref(), 0) >> 4) & 0xff) as u8
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        be32(self.buffer.as_ref(), field::VER_TC_FLOW.start) & 0x000f_ffff
    }

    /// Payload length field (extension headers included).
    pub fn payload_len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Next header field of the fixed header.
    // bounds: fixed header field; `check_len` (the view's contract, see wire/mod.rs) verified the buffer holds the header.
    #[allow(clippy::indexing_slicing)]
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    // bounds: fixed header field; `check_len` (the view's contract, see wire/mod.rs) verified the buffer holds the header.
    #[allow(clippy::indexing_slicing)]
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(super::array::<16>(
            self.buffer.as_ref(),
            field::SRC_ADDR.start,
        ))
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(super::array::<16>(
            self.buffer.as_ref(),
            field::DST_ADDR.start,
        ))
    }

    /// Payload end: the payload length, or the buffer end if that is first.
    fn end(&self) -> usize {
        (HEADER_LEN + usize::from(self.payload_len())).min(self.buffer.as_ref().len())
    }

    /// The payload (extension headers and upper layer).
    // bounds: end() is at least HEADER_LEN (checked by `check_header_len`) and at most the buffer length.
    #[allow(clippy::indexing_slicing)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.end()]
    }

    /// Walks the extension headers (hop-by-hop, routing, destination
    /// options, fragment) to the upper-layer header, inside the payload.
    ///
    /// Refuses: `Truncated` when an extension header runs past the payload,
    /// `TooManyHeaders` past [`MAX_EXT_HEADERS`], `Unsupported` for AH and
    /// ESP, `BadOrder` for a hop-by-hop header that is not first. Stops at
    /// a non-first fragment (its bytes are not an upper-layer header).
    pub fn walk(&self) -> Result<UpperLayer, Error> {
        let b = self.buffer.as_ref();
        let b = b.get(..self.end()).unwrap_or(b);
        let mut next = self.next_header();
        let mut off = HEADER_LEN;
        let mut frag = None;
        let mut routing = None;
        for i in 0..=MAX_EXT_HEADERS {
            let is_frag = next == ip_proto::IPV6_FRAG;
            match next {
                ip_proto::HOP_BY_HOP if i != 0 => return Err(Error::BadOrder),
                ip_proto::AH | ip_proto::ESP => return Err(Error::Unsupported),
                ip_proto::HOP_BY_HOP
                | ip_proto::IPV6_ROUTE
                | ip_proto::IPV6_OPTS
                | ip_proto::IPV6_FRAG => {}
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset: off,
                        frag,
                        routing,
                    })
                }
            }
            if i == MAX_EXT_HEADERS {
                break;
            }
            let len = if is_frag {
                FRAG_HEADER_LEN
            } else {
                let Some(&[_, hdr_ext_len]) = b.get(off..off + 2) else {
                    return Err(Error::Truncated);
                };
                (usize::from(hdr_ext_len) + 1) * 8
            };
            let h = b.get(off..off + len).ok_or(Error::Truncated)?;
            if next == ip_proto::IPV6_ROUTE && routing.is_none() {
                // next(1) len(1) type(1) segments left(1): len >= 8.
                if let [_, _, kind, segments_left, ..] = *h {
                    routing = Some(RoutingHeader {
                        kind,
                        segments_left,
                    });
                }
            }
            next = *h.first().ok_or(Error::Truncated)?;
            off += len;
            if is_frag {
                // next(1) reserved(1) offset:13|res:2|M:1 (2) ident(4)
                let f = FragHeader {
                    offset: be16(h, 2) >> 3,
                    more: be16(h, 2) & 1 != 0,
                    ident: be32(h, 4),
                };
                frag = Some(f);
                if f.offset != 0 {
                    return Ok(UpperLayer {
                        protocol: next,
                        offset: off,
                        frag,
                        routing,
                    });
                }
            }
        }
        Err(Error::TooManyHeaders)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, traffic class and flow label.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_version_tc_flow(&mut self, tc: u8, flow: u32) {
        let v = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&v.to_be_bytes());
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    /// Sets the next header of the fixed header.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    /// Sets the hop limit.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address (upper-layer checksum not updated; see
    /// [`super::nat`]).
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (upper-layer checksum not updated).
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, writable.
    // bounds: end() is at least HEADER_LEN (checked by `check_header_len`) and at most the buffer length.
    #[allow(clippy::indexing_slicing)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = self.end();
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }
}

/// An owned fixed IPv6 header, for building packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: u8,
    /// Payload length.
    pub payload_len: u16,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Repr {
    /// Writes the 40-byte fixed header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let b = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
        let mut p = Packet::new_unchecked(b);
        p.set_version_tc_flow(0, 0);
        p.set_payload_len(self.payload_len);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
        Ok(())
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A fixed header followed by `ext` (raw extension-header bytes) and
    /// `tail`, with the payload length set.
    fn packet(next: u8, ext: &[u8], tail: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; HEADER_LEN];
        Repr {
            src: SRC,
            dst: DST,
            next_header: next,
            payload_len: (ext.len() + tail.len()) as u16,
            hop_limit: 64,
        }
        .emit(&mut v)
        .unwrap();
        v.extend_from_slice(ext);
        v.extend_from_slice(tail);
        v
    }

    #[test]
    fn deconstruct() {
        let v = packet(ip_proto::UDP, &[], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), ip_proto::UDP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), SRC);
        assert_eq!(p.dst_addr(), DST);
        assert_eq!(p.traffic_class(), 0);
        assert_eq!(p.flow_label(), 0);
        assert_eq!(
            p.walk(),
            Ok(UpperLayer {
                protocol: ip_proto::UDP,
                offset: 40,
                frag: None,
                routing: None,
            })
        );
        let e = etherparse::Ipv6HeaderSlice::from_slice(&v).unwrap();
        assert_eq!(e.source_addr(), SRC);
        assert_eq!(e.payload_length(), 8);
    }

    #[test]
    fn walk_extension_headers() {
        // hop-by-hop (8) -> dest opts (16) -> routing (8) -> frag -> TCP
        let mut ext = vec![ip_proto::IPV6_OPTS, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[ip_proto::IPV6_ROUTE, 1]);
        ext.extend_from_slice(&[0; 14]);
        ext.extend_from_slice(&[ip_proto::IPV6_FRAG, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[ip_proto::TCP, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        let v = packet(ip_proto::HOP_BY_HOP, &ext, &[0; 20]);
        let p = Packet::new_checked(&v[..]).unwrap();
        let u = p.walk().unwrap();
        assert_eq!(u.protocol, ip_proto::TCP);
        assert_eq!(u.offset, 40 + 40);
        assert_eq!(
            u.routing,
            Some(RoutingHeader {
                kind: 0,
                segments_left: 0
            })
        );
        assert_eq!(
            u.frag,
            Some(FragHeader {
                ident: 0xdeadbeef,
                offset: 0,
                more: true
            })
        );
        // Every truncation of the extension chain is refused.
        for n in 0..ext.len() {
            let v = packet(ip_proto::HOP_BY_HOP, &ext[..n], &[]);
            let p = Packet::new_checked(&v[..]).unwrap();
            assert_eq!(p.walk(), Err(Error::Truncated), "ext len {n}");
        }
    }

    #[test]
    fn non_first_fragment_stops_the_walk() {
        let ext = [ip_proto::UDP, 0, 0x05, 0x48, 0, 0, 0, 7]; // offset 169, M=0
        let v = packet(ip_proto::IPV6_FRAG, &ext, &[0; 3]);
        let u = Packet::new_checked(&v[..]).unwrap().walk().unwrap();
        assert_eq!(u.protocol, ip_proto::UDP);
        assert_eq!(u.offset, 48);
        assert_eq!(
            u.frag,
            Some(FragHeader {
                ident: 7,
                offset: 169,
                more: false
            })
        );
    }

    #[test]
    fn refused_chains() {
        let ah = packet(ip_proto::AH, &[ip_proto::TCP, 1, 0, 0, 0, 0, 0, 0], &[]);
        let p = Packet::new_checked(&ah[..]).unwrap();
        assert_eq!(p.walk(), Err(Error::Unsupported));

        let ext = [
            ip_proto::HOP_BY_HOP,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            ip_proto::TCP,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        let v = packet(ip_proto::IPV6_OPTS, &ext, &[]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.walk(), Err(Error::BadOrder));

        let one = [ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0];
        let mut ext = one.repeat(MAX_EXT_HEADERS);
        let v = packet(ip_proto::IPV6_OPTS, &ext, &[]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.walk(), Err(Error::TooManyHeaders));
        // Exactly MAX_EXT_HEADERS is fine.
        let last = ext.len() - 8;
        ext[last] = ip_proto::UDP;
        let v = packet(ip_proto::IPV6_OPTS, &ext, &[]);
        let p = Packet::new_checked(&v[..]).unwrap();
        assert_eq!(p.walk().unwrap().offset, 40 + 8 * MAX_EXT_HEADERS);
    }

    #[test]
    fn malformed() {
        let v = packet(ip_proto::UDP, &[], &[0; 8]);
        for n in 0..40 {
            assert_eq!(Packet::new_checked(&v[..n]), Err(Error::Truncated));
        }
        for n in 40..48 {
            assert_eq!(Packet::new_checked(&v[..n]), Err(Error::BadLength));
        }
        let mut bad = v.clone();
        bad[0] = 0x40;
        assert_eq!(Packet::new_checked(&bad[..]), Err(Error::BadVersion));
    }
}
