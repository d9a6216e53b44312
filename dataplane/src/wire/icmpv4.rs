//! ICMP for IPv4 (RFC 792), including the original header quoted by error
//! messages.

#![deny(clippy::indexing_slicing)]

use super::checksum;
use super::{be16, ipv4, put16, Error, Field, Rest};

mod field {
    use super::{Field, Rest};
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQNO: Field = 6..8;
    pub const MTU: Field = 6..8;
    pub const PAYLOAD: Rest = 8..;
}

/// Length of the ICMP header (type, code, checksum, 4 bytes of rest).
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;
/// Offset of the echo identifier.
pub const ECHO_IDENT_OFFSET: usize = field::ECHO_IDENT.start;

/// ICMP message types rvs knows.
pub mod types {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable (code 4: fragmentation needed).
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;
}

/// Whether `ty` is an error message, which quotes the offending packet's
/// IPv4 header and its first 8 payload bytes.
pub fn is_error_type(ty: u8) -> bool {
    matches!(
        ty,
        types::DEST_UNREACHABLE
            | types::SOURCE_QUENCH
            | types::REDIRECT
            | types::TIME_EXCEEDED
            | types::PARAM_PROBLEM
    )
}

/// Whether `ty` is an echo request or reply (which carry id and sequence).
pub fn is_echo_type(ty: u8) -> bool {
    matches!(ty, types::ECHO_REQUEST | types::ECHO_REPLY)
}

/// A read/write view of an ICMP message.
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

    /// `Truncated` if the 8-byte header is not in the buffer. (The quoted
    /// packet of an error is checked by [`embedded`](Self::embedded).)
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
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

    /// Echo identifier (bytes 4..6, meaningful for echo messages).
    pub fn echo_ident(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number (bytes 6..8).
    pub fn echo_seq_no(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Next-hop MTU of a "fragmentation needed" message (bytes 6..8).
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.buffer.as_ref(), field::MTU.start)
    }

    /// Whether this is an error message.
    pub fn is_error(&self) -> bool {
        is_error_type(self.msg_type())
    }

    /// The bytes after the 8-byte header.
    // bounds: HEADER_LEN is checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD]
    }

    /// The quoted IPv4 packet of an error message, checked with
    /// [`ipv4::Packet::check_header_len`] and required to carry at least 8
    /// bytes after its header (the ports). `Unsupported` for non-errors.
    pub fn embedded(&self) -> Result<ipv4::Packet<&[u8]>, Error> {
        if !self.is_error() {
            return Err(Error::Unsupported);
        }
        let inner = ipv4::Packet::new_checked_header(self.payload())?;
        if inner.as_bytes().len() < inner.header_len() + 8 {
            return Err(Error::Truncated);
        }
        Ok(inner)
    }

    /// Whether the checksum over the whole message is valid.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(self.buffer.as_ref()) == 0
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

    /// Sets the echo sequence number (checksum not updated).
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::ECHO_SEQNO.start, v);
    }

    /// Sets the next-hop MTU (checksum not updated).
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::MTU.start, v);
    }

    /// The bytes after the header, writable (to rewrite a quoted packet).
    // bounds: HEADER_LEN is checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD]
    }

    /// Recomputes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    static ECHO: [u8; 12] = [8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'p', b'i', b'n', b'g'];

    #[test]
    fn echo() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.verify_checksum());
        assert_eq!(p.msg_type(), types::ECHO_REQUEST);
        assert_eq!(p.msg_code(), 0);
        assert_eq!(p.echo_ident(), 0x1234);
        assert_eq!(p.echo_seq_no(), 1);
        assert!(!p.is_error());
        assert_eq!(p.embedded(), Err(Error::Unsupported));
        assert_eq!(p.payload(), b"ping");
        let (h, _) = etherparse::Icmpv4Header::from_slice(&b).unwrap();
        assert_eq!(h.checksum, Packet::new_unchecked(&b[..]).checksum());
        assert_eq!(h.icmp_type.calc_checksum(&b[8..]), h.checksum);
    }

    #[test]
    fn error_with_quoted_header() {
        // Fragmentation needed (3/4, MTU 1400) quoting a TCP packet
        // 10.0.0.1:1234 -> 10.0.0.2:80.
        let mut b = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
        let mut ip = [0u8; 20];
        ipv4::Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 6,
            payload_len: 1480,
            ttl: 64,
            ident: 1,
            dont_frag: true,
        }
        .emit(&mut ip)
        .unwrap();
        b.extend_from_slice(&ip);
        b.extend_from_slice(&[0x04, 0xd2, 0x00, 0x50, 0, 0, 0, 1]);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.is_error());
        assert_eq!(p.next_hop_mtu(), 1400);
        let inner = p.embedded().unwrap();
        assert_eq!(inner.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(inner.total_len(), 1500);
        assert!(inner.verify_checksum());
        assert_eq!(&inner.payload()[..4], &[0x04, 0xd2, 0x00, 0x50]);
        // Shorter quotes are refused.
        for n in 8..36 {
            assert!(
                Packet::new_checked(&b[..n]).unwrap().embedded().is_err(),
                "len {n}"
            );
        }
        for n in 0..8 {
            assert_eq!(Packet::new_checked(&b[..n]), Err(Error::Truncated));
        }
    }
}
