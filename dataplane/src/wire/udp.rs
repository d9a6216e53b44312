//! UDP headers (RFC 768).

#![deny(clippy::indexing_slicing)]

use super::checksum;
use super::{be16, ip_proto, put16, Error, Field};
use core::net::{Ipv4Addr, Ipv6Addr};

mod field {
    use super::Field;
    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of a UDP header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;
/// Offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM.start;

/// A read/write view of a UDP datagram.
///
/// After [`check_len`](Self::check_len) the header is in the buffer and the
/// length field is between 8 and the buffer length; after
/// [`check_header_len`](Self::check_header_len) (first fragments, quoted
/// headers) only the header is.
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

    /// `Truncated` if the 8-byte header is not in the buffer.
    pub fn check_header_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// [`check_header_len`](Self::check_header_len), then `BadLength` if
    /// the length field is below 8 or past the buffer.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header_len()?;
        let l = usize::from(self.len());
        if l < HEADER_LEN || l > self.buffer.as_ref().len() {
            return Err(Error::BadLength);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header and payload).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u16 {
        be16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Checksum field (0 over IPv4: no checksum).
    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Payload: up to the length field, or the buffer end if first.
    // bounds: end is clamped to HEADER_LEN..buffer length, and `check_len` verified HEADER_LEN fits.
    #[allow(clippy::indexing_slicing)]
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        let end = usize::from(self.len()).max(HEADER_LEN).min(b.len());
        &b[HEADER_LEN..end]
    }

    // bounds: end is clamped to HEADER_LEN..buffer length, and `check_len` verified HEADER_LEN fits.
    #[allow(clippy::indexing_slicing)]
    fn datagram(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[..usize::from(self.len()).max(HEADER_LEN).min(b.len())]
    }

    /// Whether the checksum is valid over IPv4 (a zero checksum is valid).
    pub fn verify_checksum_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0
            || checksum::l4_checksum_v4(src, dst, ip_proto::UDP, self.datagram()) == 0
    }

    /// Whether the checksum is valid over IPv6 (where zero is invalid).
    pub fn verify_checksum_v6(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        self.checksum() != 0
            && checksum::l4_checksum_v6(src, dst, ip_proto::UDP, self.datagram()) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port (checksum not updated; see [`super::nat`]).
    pub fn set_src_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }

    /// Sets the destination port (checksum not updated).
    pub fn set_dst_port(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        put16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Recomputes the checksum over IPv4 (a computed 0 is sent as 0xffff).
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v4(src, dst, ip_proto::UDP, self.datagram());
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Recomputes the checksum over IPv6 (a computed 0 is sent as 0xffff).
    pub fn fill_checksum_v6(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let c = checksum::l4_checksum_v6(src, dst, ip_proto::UDP, self.datagram());
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    static DATAGRAM: [u8; 12] = [
        0x13, 0x89, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'r', b'v', b's', 0,
    ];
    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!(p.src_port(), 5001);
        assert_eq!(p.dst_port(), 53);
        assert_eq!(p.len(), 12);
        assert_eq!(p.checksum(), 0);
        assert_eq!(p.payload(), b"rvs\0");
        assert!(p.verify_checksum_v4(SRC, DST));
    }

    #[test]
    fn construct_and_checksum() {
        let mut b = DATAGRAM;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(12);
        p.fill_checksum_v4(SRC, DST);
        assert!(p.verify_checksum_v4(SRC, DST));
        let h = etherparse::UdpHeader::from_slice(&b).unwrap().0;
        let c = h
            .calc_checksum_ipv4_raw(SRC.octets(), DST.octets(), &b[8..])
            .unwrap();
        assert_eq!(c, Packet::new_unchecked(&b[..]).checksum());
        let (s6, d6) = (SRC.to_ipv6_mapped(), DST.to_ipv6_mapped());
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum_v6(s6, d6);
        assert!(p.verify_checksum_v6(s6, d6));
        let c = h
            .calc_checksum_ipv6_raw(s6.octets(), d6.octets(), &b[8..])
            .unwrap();
        assert_eq!(c, Packet::new_unchecked(&b[..]).checksum());
    }

    #[test]
    fn malformed() {
        for n in 0..8 {
            assert_eq!(Packet::new_checked(&DATAGRAM[..n]), Err(Error::Truncated));
        }
        for n in 8..12 {
            assert_eq!(Packet::new_checked(&DATAGRAM[..n]), Err(Error::BadLength));
            assert!(Packet::new_checked_header(&DATAGRAM[..n]).is_ok());
        }
        let mut b = DATAGRAM;
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]), Err(Error::BadLength));
    }
}
