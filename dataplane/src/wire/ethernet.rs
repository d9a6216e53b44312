//! Ethernet II frames, with at most one IEEE 802.1Q VLAN tag.

#![deny(clippy::indexing_slicing)]

use super::{be16, ethertype, put16, Error, Field, Rest};
use crate::buf::PacketBuf;
use core::fmt;

mod field {
    use super::{Field, Rest};
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const TYPE: Field = 12..14;
    /// The TCI of a tagged frame (PCP, DEI, VID).
    pub const TCI: Field = 14..16;
    /// The inner ethertype of a tagged frame.
    pub const INNER_TYPE: Field = 16..18;
    pub const PAYLOAD: Rest = 14..;
    pub const TAGGED_PAYLOAD: Rest = 18..;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = field::PAYLOAD.start;
/// Length of an 802.1Q-tagged Ethernet header.
pub const TAGGED_HEADER_LEN: usize = field::TAGGED_PAYLOAD.start;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A 48-bit Ethernet (MAC) address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Whether this is the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether the group bit is set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Whether this is a unicast address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// A read/write view of an Ethernet frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it; call [`check_len`](Self::check_len)
    /// before any accessor.
    pub const fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }

    /// Wraps a buffer and checks its length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let f = Self::new_unchecked(buffer);
        f.check_len()?;
        Ok(f)
    }

    /// Checks that the buffer holds the whole header, VLAN tag included if
    /// the outer ethertype says there is one.
    pub fn check_len(&self) -> Result<(), Error> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if be16(b, field::TYPE.start) == ethertype::VLAN && b.len() < TAGGED_HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr(super::array(self.buffer.as_ref(), field::DST.start))
    }

    /// Source address.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr(super::array(self.buffer.as_ref(), field::SRC.start))
    }

    /// The ethertype at offset 12 (0x8100 for a tagged frame).
    pub fn outer_ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::TYPE.start)
    }

    /// Whether the frame carries an 802.1Q tag.
    pub fn is_tagged(&self) -> bool {
        self.outer_ethertype() == ethertype::VLAN
    }

    /// The 802.1Q tag control information, if tagged.
    pub fn tci(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| be16(self.buffer.as_ref(), field::TCI.start))
    }

    /// The VLAN id (12 bits), if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.tci().map(|t| t & 0x0fff)
    }

    /// The ethertype of the payload (after the VLAN tag, if any).
    pub fn ethertype(&self) -> u16 {
        if self.is_tagged() {
            be16(self.buffer.as_ref(), field::INNER_TYPE.start)
        } else {
            self.outer_ethertype()
        }
    }

    /// Header length: 14, or 18 when tagged.
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload (L3 packet, and any Ethernet padding).
    // bounds: header_len() is 14 or 18, both checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0);
    }

    /// Sets the source address.
    // bounds: fixed header field, inside the header `check_len` verified (the view's contract, see wire/mod.rs).
    #[allow(clippy::indexing_slicing)]
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0);
    }

    /// Sets the payload ethertype (the inner one of a tagged frame).
    pub fn set_ethertype(&mut self, t: u16) {
        let at = if self.is_tagged() {
            field::INNER_TYPE.start
        } else {
            field::TYPE.start
        };
        put16(self.buffer.as_mut(), at, t);
    }

    /// Sets the VLAN id of a tagged frame, keeping PCP/DEI; `false` if the
    /// frame is untagged.
    pub fn set_vlan_id(&mut self, vid: u16) -> bool {
        match self.tci() {
            Some(tci) => {
                let tci = (tci & 0xf000) | (vid & 0x0fff);
                put16(self.buffer.as_mut(), field::TCI.start, tci);
                true
            }
            None => false,
        }
    }

    /// The payload, writable.
    // bounds: header_len() is 14 or 18, both checked by `check_len` (the view's contract).
    #[allow(clippy::indexing_slicing)]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
}

/// An owned Ethernet header, for building frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Destination address.
    pub dst: MacAddr,
    /// Source address.
    pub src: MacAddr,
    /// 802.1Q TCI (PCP, DEI, VID), if the frame is tagged.
    pub tci: Option<u16>,
    /// Payload ethertype.
    pub ethertype: u16,
}

impl Repr {
    /// Reads the header of a checked frame.
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Self {
        Repr {
            dst: f.dst_addr(),
            src: f.src_addr(),
            tci: f.tci(),
            ethertype: f.ethertype(),
        }
    }

    /// Header length this repr emits.
    pub fn header_len(&self) -> usize {
        if self.tci.is_some() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header at the start of `buf`; `Err(Truncated)` if short.
    // bounds: `b` is the `get_mut(..self.header_len())` prefix, and every field written lies below it; DST and SRC are the first 12 bytes.
    #[allow(clippy::indexing_slicing)]
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), Error> {
        let b = buf.get_mut(..self.header_len()).ok_or(Error::Truncated)?;
        b[field::DST].copy_from_slice(&self.dst.0);
        b[field::SRC].copy_from_slice(&self.src.0);
        match self.tci {
            Some(tci) => {
                put16(b, field::TYPE.start, ethertype::VLAN);
                put16(b, field::TCI.start, tci);
                put16(b, field::INNER_TYPE.start, self.ethertype);
            }
            None => put16(b, field::TYPE.start, self.ethertype),
        }
        Ok(())
    }
}

/// Removes the 802.1Q tag of the frame in `buf` (moves the MAC addresses
/// forward and strips 4 bytes). Returns the TCI removed, or `None` (buffer
/// untouched) if the frame is not tagged or too short.
pub fn vlan_pop<B: PacketBuf + ?Sized>(buf: &mut B) -> Option<u16> {
    let tci = Frame::new_checked(buf.data()).ok()?.tci()?;
    buf.data_mut().copy_within(0..12, VLAN_TAG_LEN);
    buf.adj(VLAN_TAG_LEN).then_some(tci)
}

/// Inserts an 802.1Q tag with `tci` into the untagged frame in `buf`, using
/// 4 bytes of headroom. `false` (buffer untouched) if the frame is short,
/// already tagged, or there is no headroom.
pub fn vlan_push<B: PacketBuf + ?Sized>(buf: &mut B, tci: u16) -> bool {
    match Frame::new_checked(buf.data()) {
        Ok(f) if !f.is_tagged() => {}
        _ => return false,
    }
    if buf.prepend(VLAN_TAG_LEN).is_none() {
        return false;
    }
    let d = buf.data_mut();
    d.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
    put16(d, field::TYPE.start, ethertype::VLAN);
    put16(d, field::TCI.start, tci);
    true
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;

    static FRAME: [u8; 18] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, // src
        0x08, 0x00, // IPv4
        0xaa, 0xbb, 0xcc, 0xdd,
    ];

    static TAGGED: [u8; 22] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x81, 0x00, 0xa0,
        0x64, // PCP 5, VID 100
        0x86, 0xdd, 0xaa, 0xbb, 0xcc, 0xdd,
    ];

    #[test]
    fn deconstruct() {
        let f = Frame::new_checked(&FRAME[..]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 2]));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.header_len(), 14);
        assert_eq!(f.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);

        let t = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(t.vlan_id(), Some(100));
        assert_eq!(t.tci(), Some(0xa064));
        assert_eq!(t.ethertype(), ethertype::IPV6);
        assert_eq!(t.payload(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn construct() {
        let mut buf = [0u8; 22];
        let r = Repr::parse(&Frame::new_checked(&TAGGED[..]).unwrap());
        r.emit(&mut buf).unwrap();
        buf[18..].copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]);
        assert_eq!(buf, TAGGED);

        let mut f = Frame::new_checked(&mut buf[..]).unwrap();
        f.set_vlan_id(7);
        f.set_ethertype(ethertype::ARP);
        f.set_dst_addr(MacAddr::BROADCAST);
        assert_eq!(f.vlan_id(), Some(7));
        assert_eq!(f.tci(), Some(0xa007));
        assert_eq!(f.ethertype(), ethertype::ARP);
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(f.dst_addr().to_string(), "ff:ff:ff:ff:ff:ff");
    }

    #[test]
    fn truncated() {
        for n in 0..14 {
            assert_eq!(Frame::new_checked(&FRAME[..n]), Err(Error::Truncated));
        }
        for n in 14..18 {
            assert_eq!(Frame::new_checked(&TAGGED[..n]), Err(Error::Truncated));
        }
    }

    #[test]
    fn push_pop() {
        let mut b = VecBuf::new(&FRAME);
        assert!(vlan_pop(&mut b).is_none());
        assert!(vlan_push(&mut b, 0xa064));
        assert!(!vlan_push(&mut b, 1));
        let f = Frame::new_checked(b.data()).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), ethertype::IPV4);
        assert_eq!(f.payload(), &FRAME[14..]);
        assert_eq!(vlan_pop(&mut b), Some(0xa064));
        assert_eq!(b.data(), &FRAME);
        let mut no_room = VecBuf::from_slice(&FRAME, 0, 0);
        assert!(!vlan_push(&mut no_room, 1));
        assert_eq!(no_room.data(), &FRAME);
    }
}
