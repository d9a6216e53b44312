//! ICMPv6 (RFC 4443) with neighbour solicitation and advertisement
//! (RFC 4861) and their link-layer address options.

#![deny(clippy::indexing_slicing)]

use super::checksum;
use super::ethernet::MacAddr;
use super::{be16, ip_proto, ipv6, put16, Error, Field, Rest};
use core::net::Ipv6Addr;

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const MTU: Field = 4..8;
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Field = 8..24;
    pub const ND_OPTIONS: Rest = 24..;
    pub const PAYLOAD: Rest = 8..;
}

/// Length of the ICMPv6 header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Length of an NS/NA message without options.
pub const ND_LEN: usize = field::ND_OPTIONS.start;
/// Offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Offset of the echo identifier.
pub const ECHO_IDENT_OFFSET: usize = field::ECHO_IDENT.start;

/// ICMPv6 message types rvs knows.
pub mod types {
    /// Destination unreachable.
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
}

/// Neighbour advertisement flags (the byte at offset 4).
pub mod nd_flags {
    /// Router.
    pub const ROUTER: u8 = 0x80;
    /// Solicited.
    pub const SOLICITED: u8 = 0x40;
    /// Override.
    pub const OVERRIDE: u8 = 0x20;
}

/// ND option: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// ND option: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;

/// Whether `ty` is an error message (quoting the offending packet).
pub fn is_error_type(ty: u8) -> bool {
    ty < 128
}

/// Whether `ty` is an echo request or reply.
pub fn is_echo_type(ty: u8) -> bool {
    matches!(ty, types::ECHO_REQUEST | types::ECHO_REPLY)
}

/// A read/write view of an ICMPv6 message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

/// An iterator over ND options as `(type, body)`, where `body` is the
/// option without its 2-byte type/length. Stops at the first malformed
/// option (length 0 or past the end); never allocates.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&ty, tail) = self.rest.split_first()?;
        let units = usize::from(*tail.first()?);
        let len = units * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        // len >= 8, so the option always has its two-byte header.
        Some((ty, opt.get(2..)?))
    }
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

    /// `Truncated` if the 8-byte header is not in the buffer, or if an
    /// NS/NA message is shorter than its 24 fixed bytes.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.is_nd() && len < ND_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    // bounds: fixed header field; `check_len` (the view's contract, see wire/mod.rs) verified the buffer holds the header.
    #[allow(clippy::indexing_slicing)]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    // bounds: fixed header field; `check_len` (the view's contract, see wire/mod.rs) verified the buffer holds the header.
    #[allow(clippy::indexing_slicing)]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// MTU of a "packet too big" message.
    pub fn mtu(&self) -> u32 {
        super::be32(self.buffer.as_ref(), field::MTU.start)
    }

    /// Whether this is an error message.
    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    /// Whether this is a neighbour solicitation or advertisement.
    pub fn is_nd(&self) -> bool {
        matches!(
            self.msg_type(),
            types::NEIGHBOR_SOLICIT | types::NEIGHBOR_ADVERT
        )
    }

    /// The bytes after the 8-byte header.
    // bounds: HEADER_LEN is checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }

    /// The quoted IPv6 packet of an error message (fixed header checked,
    /// at least 8 bytes after it). `Unsupported` for non-errors.
    pub fn embedded(&self) -> Result<ipv6::Packet<&[u8]>, Error> {
        if !self.is_error() {
            return Err(Error::Unsupported);
        }
        let inner = ipv6::Packet::new_checked_header(self.payload())?;
        if inner.as_bytes().len() < ipv6::HEADER_LEN + 8 {
            return Err(Error::Truncated);
        }
        Ok(inner)
    }

    /// NA flags (router, solicited, override); see [`nd_flags`].
    // bounds: ND_FLAGS (byte 4) lies in the 8-byte HEADER_LEN `check_len` verified (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn nd_flags(&self) -> u8 {
        self.buffer.as_ref()[field::ND_FLAGS] & 0xe0
    }

    /// Target address of an NS/NA; `None` for other messages.
    pub fn nd_target(&self) -> Option<Ipv6Addr> {
        let b = self.buffer.as_ref();
        (self.is_nd() && b.len() >= ND_LEN)
            .then(|| Ipv6Addr::from(super::array::<16>(b, field::ND_TARGET.start)))
    }

    /// The options of an NS/NA (empty for other messages).
    pub fn nd_options(&self) -> NdOptions<'_> {
        let b = self.buffer.as_ref();
        let rest = if self.is_nd() {
            b.get(field::ND_OPTIONS).unwrap_or(&[])
        } else {
            &[]
        };
        NdOptions { rest }
    }

    /// The Ethernet address in the first option of type `opt`
    /// ([`OPT_SOURCE_LL`] or [`OPT_TARGET_LL`]).
    pub fn nd_ll_addr(&self, opt: u8) -> Option<MacAddr> {
        self.nd_options()
            .find(|&(t, body)| t == opt && body.len() >= 6)
            .map(|(_, body)| MacAddr(super::array(body, 0)))
    }

    /// Whether the checksum is valid (the buffer must be exactly the
    /// message).
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, self.buffer.as_ref()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the message code.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Sets the echo identifier (checksum not updated).
    pub fn set_echo_ident(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_IDENT.start, v);
    }

    /// The bytes after the header, writable.
    // bounds: HEADER_LEN is checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }

    /// Recomputes the checksum with the IPv6 pseudo-header.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An owned neighbour solicitation or advertisement with an optional
/// link-layer address option, for answering and sending ND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdRepr {
    /// [`types::NEIGHBOR_SOLICIT`] or [`types::NEIGHBOR_ADVERT`].
    pub msg_type: u8,
    /// NA flags ([`nd_flags`]); ignored for NS.
    pub flags: u8,
    /// Target address.
    pub target: Ipv6Addr,
    /// Source (NS) or target (NA) link-layer address option.
    pub ll_addr: Option<MacAddr>,
}

impl NdRepr {
    /// Reads a checked NS/NA; `Unsupported` for other messages.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Self, Error> {
        let target = p.nd_target().ok_or(Error::Unsupported)?;
        let opt = if p.msg_type() == types::NEIGHBOR_SOLICIT {
            OPT_SOURCE_LL
        } else {
            OPT_TARGET_LL
        };
        Ok(NdRepr {
            msg_type: p.msg_type(),
            flags: p.nd_flags(),
            target,
            ll_addr: p.nd_ll_addr(opt),
        })
    }

    /// Length of the message this repr emits.
    pub fn buffer_len(&self) -> usize {
        ND_LEN + if self.ll_addr.is_some() { 8 } else { 0 }
    }

    /// Writes the message at the start of `buf` with a valid checksum for
    /// the IPv6 addresses `src` and `dst`.
    // bounds: `b` is the `get_mut(..self.buffer_len())` prefix, and every field written lies below it (ND_LEN + 8 when a link-layer option is written).
    #[allow(clippy::indexing_slicing)]
    pub fn emit(&self, buf: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr) -> Result<(), Error> {
        let len = self.buffer_len();
        let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
        b.fill(0);
        b[field::TYPE] = self.msg_type;
        if self.msg_type == types::NEIGHBOR_ADVERT {
            b[field::ND_FLAGS] = self.flags & 0xe0;
        }
        b[field::ND_TARGET].copy_from_slice(&self.target.octets());
        if let Some(mac) = self.ll_addr {
            b[ND_LEN] = if self.msg_type == types::NEIGHBOR_SOLICIT {
                OPT_SOURCE_LL
            } else {
                OPT_TARGET_LL
            };
            b[ND_LEN + 1] = 1;
            b[ND_LEN + 2..ND_LEN + 8].copy_from_slice(&mac.0);
        }
        Packet::new_unchecked(b).fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
    const TARGET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
    const SOLICITED_NODE: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0x10);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x42]);

    /// NS for 2001:db8::10 with source link-layer option 02:00:00:00:00:42
    /// (checksum filled by the test).
    static NS: [u8; 32] = [
        135, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 1,
        1, 2, 0, 0, 0, 0, 0x42,
    ];

    #[test]
    fn neighbour_solicitation() {
        let mut b = NS;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(SRC, SOLICITED_NODE);
        assert!(p.verify_checksum(SRC, SOLICITED_NODE));
        assert!(p.is_nd());
        assert_eq!(p.nd_target(), Some(TARGET));
        assert_eq!(p.nd_ll_addr(OPT_SOURCE_LL), Some(MAC));
        assert_eq!(p.nd_ll_addr(OPT_TARGET_LL), None);
        let r = NdRepr::parse(&p).unwrap();
        assert_eq!(
            r,
            NdRepr {
                msg_type: types::NEIGHBOR_SOLICIT,
                flags: 0,
                target: TARGET,
                ll_addr: Some(MAC)
            }
        );
        let mut out = [0u8; 32];
        r.emit(&mut out, SRC, SOLICITED_NODE).unwrap();
        assert_eq!(out, b);
        // etherparse computes the same checksum.
        let (h, _) = etherparse::Icmpv6Header::from_slice(&b).unwrap();
        let c = h
            .icmp_type
            .calc_checksum(SRC.octets(), SOLICITED_NODE.octets(), &b[8..])
            .unwrap();
        assert_eq!(c, Packet::new_unchecked(&b[..]).checksum());
    }

    #[test]
    fn neighbour_advertisement() {
        let r = NdRepr {
            msg_type: types::NEIGHBOR_ADVERT,
            flags: nd_flags::SOLICITED | nd_flags::OVERRIDE,
            target: TARGET,
            ll_addr: Some(MAC),
        };
        let mut b = [0u8; 32];
        r.emit(&mut b, TARGET, SRC).unwrap();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(TARGET, SRC));
        assert_eq!(p.nd_flags(), 0x60);
        assert_eq!(NdRepr::parse(&p), Ok(r));
        assert!(r.emit(&mut [0u8; 31], TARGET, SRC).is_err());
    }

    #[test]
    fn malformed_options_stop_the_walk() {
        let mut b = NS;
        b[25] = 0; // option length 0
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_options().count(), 0);
        b[25] = 2; // runs past the end
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.nd_options().count(), 0);
        for n in 0..24 {
            assert_eq!(Packet::new_checked(&NS[..n]), Err(Error::Truncated));
        }
        let p = Packet::new_checked(&NS[..24]).unwrap();
        assert_eq!(p.nd_ll_addr(OPT_SOURCE_LL), None);
    }

    #[test]
    fn error_with_quoted_header() {
        let mut b = vec![types::PACKET_TOO_BIG, 0, 0, 0, 0, 0, 0x05, 0x00];
        let mut ip = [0u8; 40];
        ipv6::Repr {
            src: SRC,
            dst: TARGET,
            next_header: ip_proto::UDP,
            payload_len: 1452,
            hop_limit: 64,
        }
        .emit(&mut ip)
        .unwrap();
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0x04, 0xd2, 0x00, 0x35, 0x05, 0xac, 0, 0]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.mtu(), 1280);
        let inner = p.embedded().unwrap();
        assert_eq!(inner.dst_addr(), TARGET);
        assert_eq!(inner.next_header(), ip_proto::UDP);
        assert_eq!(&inner.payload()[..4], &[0x04, 0xd2, 0x00, 0x35]);
        for n in 8..56 {
            assert!(Packet::new_checked(&b[..n]).unwrap().embedded().is_err());
        }
    }
}
