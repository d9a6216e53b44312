//! The packet buffer trait that packet logic is written against.
//!
//! Production code runs on a DPDK mbuf (implemented in `dpdk`); tests,
//! fuzzers and benches use [`VecBuf`], a `Vec<u8>` laid out like an mbuf:
//! a fixed-size allocation whose packet data starts after some headroom and
//! ends before some tailroom. Every method that can run out of room returns
//! `None` or `false` instead of panicking, and none of them allocates.

/// A packet held in a buffer with headroom and tailroom, like a DPDK mbuf.
///
/// The packet is the contiguous byte range [`data`](PacketBuf::data);
/// encapsulation grows it at the front ([`prepend`](PacketBuf::prepend)),
/// decapsulation shrinks it there ([`adj`](PacketBuf::adj)).
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];

    /// The packet bytes, writable (for in-place rewrites).
    fn data_mut(&mut self) -> &mut [u8];

    /// The packet length in bytes.
    fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the packet holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Free bytes in front of the packet.
    fn headroom(&self) -> usize;

    /// Free bytes after the packet.
    fn tailroom(&self) -> usize;

    /// Grows the packet by `n` bytes at the front and returns those bytes
    /// (their content is unspecified), or `None` if the headroom is short.
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]>;

    /// Strips `n` bytes from the front; `false` (and no change) if the
    /// packet is shorter than `n`.
    fn adj(&mut self, n: usize) -> bool;

    /// Strips `n` bytes from the end; `false` (and no change) if the packet
    /// is shorter than `n`.
    fn trim(&mut self, n: usize) -> bool;

    /// Grows the packet by `n` bytes at the end and returns those bytes
    /// (their content is unspecified), or `None` if the tailroom is short.
    fn append(&mut self, n: usize) -> Option<&mut [u8]>;
    /// What the NIC found checking the L4 (TCP/UDP) checksum on receive;
    /// [`RxCsum::Unknown`] where it did not check (the default), and the
    /// packet path computes it itself.
    fn rx_l4_csum(&self) -> RxCsum {
        RxCsum::Unknown
    }
    /// Records the port the packet came in on, as the packet path numbers
    /// ports, before it is handed to another worker (which reads it back
    /// from the mbuf; a no-op where nothing reads it).
    fn set_rx_port(&mut self, _port: u16) {}
}

/// The NIC's verdict on a received packet's L4 checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxCsum {
    /// Not checked: compute it.
    Unknown,
    /// Checked and valid.
    Good,
    /// Checked and wrong.
    Bad,
}

/// Default headroom of a [`VecBuf`], the same as DPDK's
/// `RTE_PKTMBUF_HEADROOM`.
pub const DEFAULT_HEADROOM: usize = 128;

/// A `Vec<u8>`-backed [`PacketBuf`] for tests, fuzzers and benches.
///
/// The backing vector is allocated once, at construction, with the asked
/// headroom and tailroom; packet operations never reallocate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
}

impl VecBuf {
    /// An empty buffer with `headroom` bytes in front and `tailroom` bytes
    /// after.
    pub fn with_room(headroom: usize, tailroom: usize) -> Self {
        let total = headroom.saturating_add(tailroom);
        Self {
            storage: vec![0; total],
            start: headroom,
            end: headroom,
        }
    }

    /// A buffer holding a copy of `packet`, with `headroom` bytes in front
    /// and `tailroom` bytes after.
    pub fn from_slice(packet: &[u8], headroom: usize, tailroom: usize) -> Self {
        let mut storage = vec![0; headroom];
        storage.extend_from_slice(packet);
        storage.resize(storage.len().saturating_add(tailroom), 0);
        Self {
            storage,
            start: headroom,
            end: headroom.saturating_add(packet.len()),
        }
    }

    /// A buffer holding a copy of `packet` with [`DEFAULT_HEADROOM`] and no
    /// tailroom.
    pub fn new(packet: &[u8]) -> Self {
        Self::from_slice(packet, DEFAULT_HEADROOM, 0)
    }
}

impl PacketBuf for VecBuf {
    fn data(&self) -> &[u8] {
        self.storage.get(self.start..self.end).unwrap_or(&[])
    }

    fn data_mut(&mut self) -> &mut [u8] {
        self.storage
            .get_mut(self.start..self.end)
            .unwrap_or(&mut [])
    }

    fn headroom(&self) -> usize {
        self.start
    }

    fn tailroom(&self) -> usize {
        self.storage.len().saturating_sub(self.end)
    }

    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        self.storage.get_mut(start..start + n)
    }

    fn adj(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.start += n;
        true
    }

    fn trim(&mut self, n: usize) -> bool {
        if n > self.end - self.start {
            return false;
        }
        self.end -= n;
        true
    }

    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let end = self.end.checked_add(n)?;
        if end > self.storage.len() {
            return None;
        }
        let old = self.end;
        self.end = end;
        self.storage.get_mut(old..end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_and_adj_use_headroom() {
        let mut b = VecBuf::from_slice(&[1, 2, 3], 4, 0);
        assert_eq!(b.headroom(), 4);
        assert!(b.prepend(5).is_none());
        assert_eq!(b.data(), &[1, 2, 3]);
        b.prepend(2).unwrap().copy_from_slice(&[8, 9]);
        assert_eq!(b.data(), &[8, 9, 1, 2, 3]);
        assert_eq!(b.headroom(), 2);
        assert!(b.adj(3));
        assert_eq!(b.data(), &[2, 3]);
        assert!(!b.adj(3));
        assert!(b.adj(2));
        assert!(b.is_empty());
        assert!(!b.adj(1));
    }

    #[test]
    fn append_and_trim_use_tailroom() {
        let mut b = VecBuf::from_slice(&[1, 2], 0, 2);
        assert!(b.append(3).is_none());
        b.append(2).unwrap().copy_from_slice(&[3, 4]);
        assert_eq!(b.data(), &[1, 2, 3, 4]);
        assert!(b.append(1).is_none());
        assert!(!b.trim(5));
        assert!(b.trim(3));
        assert_eq!(b.data(), &[1]);
        b.data_mut()[0] = 7;
        assert_eq!(b.len(), 1);
        assert_eq!(b.data(), &[7]);
        assert!(b.prepend(usize::MAX).is_none());
        assert!(b.append(usize::MAX).is_none());
    }

    #[test]
    fn with_room_starts_empty() {
        let mut b = VecBuf::with_room(10, 10);
        assert_eq!(b.len(), 0);
        assert_eq!((b.headroom(), b.tailroom()), (10, 10));
        assert!(b.prepend(10).is_some());
        assert!(b.append(10).is_some());
        assert_eq!(b.len(), 20);
    }
}
