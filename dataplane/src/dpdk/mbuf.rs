//! Packet buffers: one mbuf, and a burst of them.

use dpdk_sys::rte_mbuf;
use std::marker::PhantomData;
use std::ptr::NonNull;

// The layout rvs reads directly (buf_addr, data_off, data_len, pkt_len) is
// DPDK's stable two-cache-line mbuf.
const _: () = assert!(std::mem::size_of::<rte_mbuf>() == 128);

/// One packet buffer, owned: freed back to its pool on drop.
///
/// `#[repr(transparent)]` over a non-null `rte_mbuf` pointer, so a slice of
/// `Mbuf` is a slice of `rte_mbuf *` and bursts cross the FFI boundary
/// without copying. `Send` (it can be handed to another core) but not
/// `Sync`. Only single-segment access is offered: `data()` is the first
/// segment.
#[repr(transparent)]
pub struct Mbuf {
    raw: NonNull<rte_mbuf>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: an Mbuf is the unique owner of its rte_mbuf; DPDK mbufs may be
// freed from any thread (mempools are MT-safe), so moving ownership is fine.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Wraps a raw mbuf pointer, taking ownership.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nothing else owns or frees.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: NonNull<rte_mbuf>) -> Self {
        Mbuf {
            raw,
            _not_sync: PhantomData,
        }
    }

    /// Gives up ownership without freeing.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }

    #[inline(always)]
    fn m(&self) -> &rte_mbuf {
        // SAFETY: raw is valid and owned by self for self's lifetime.
        unsafe { self.raw.as_ref() }
    }

    /// The packet bytes (first segment).
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's
        // data buffer (DPDK's invariant), which self owns.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// The packet bytes (first segment), writable.
    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in data(); &mut self gives exclusive access, and rvs
        // never creates indirect (shared) mbufs.
        unsafe {
            let m = self.raw.as_mut();
            std::slice::from_raw_parts_mut(
                (m.buf_addr as *mut u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }

    /// Bytes in the first segment.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.m().data_len as usize
    }

    /// True when the first segment holds no bytes.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total packet length over all segments.
    #[inline(always)]
    pub fn pkt_len(&self) -> u32 {
        self.m().pkt_len
    }

    /// Number of segments.
    #[inline(always)]
    pub fn segments(&self) -> u16 {
        self.m().nb_segs
    }

    /// Free bytes before the data (for encapsulation).
    #[inline(always)]
    pub fn headroom(&self) -> usize {
        self.m().data_off as usize
    }

    /// Free bytes after the data in the last segment.
    #[inline(always)]
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        (m.buf_len as usize).saturating_sub(m.data_off as usize + m.data_len as usize)
    }

    /// The port the packet arrived on.
    #[inline(always)]
    pub fn port(&self) -> u16 {
        self.m().port
    }

    /// Records the port the packet arrived on (as the packet path numbers
    /// ports), for a packet handed to another worker.
    #[inline(always)]
    pub fn set_port(&mut self, port: u16) {
        // SAFETY: raw is valid and &mut self gives exclusive access.
        unsafe { self.raw.as_mut().port = port };
    }

    /// The RSS hash the NIC computed (0 when it computed none).
    #[inline(always)]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: reading a u32 from the hash union is always defined.
        unsafe { self.m().__bindgen_anon_2.hash.rss }
    }

    /// Grows the packet at the front by `n` bytes; returns the new bytes, or
    /// None when the headroom is too small.
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_prepend checks room.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_prepend(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: DPDK returned a pointer to n fresh bytes at the front of
        // the data, inside the buffer self owns.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    /// Grows the packet at the end by `n` bytes; None when there is no room.
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_append checks room.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_append(self.raw.as_ptr(), n16) };
        if p.is_null() {
            return None;
        }
        // SAFETY: n fresh bytes at the end of the last segment, owned by self.
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }

    /// Removes `n` bytes from the front; false when the packet is shorter.
    pub fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_adj checks the length.
        !unsafe { dpdk_sys::rvs_pktmbuf_adj(self.raw.as_ptr(), n16) }.is_null()
    }

    /// Removes `n` bytes from the end; false when the packet is shorter.
    pub fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else {
            return false;
        };
        // SAFETY: self owns a valid mbuf; rte_pktmbuf_trim checks the length.
        unsafe { dpdk_sys::rvs_pktmbuf_trim(self.raw.as_ptr(), n16) == 0 }
    }

    /// Sets the packet to `bytes` (single segment). False when it does not
    /// fit in the buffer.
    pub fn set_bytes(&mut self, bytes: &[u8]) -> bool {
        let cur = self.len();
        if !self.trim(cur) {
            return false;
        }
        match self.append(bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

impl Drop for Mbuf {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: self owns the mbuf and is going away.
        unsafe { dpdk_sys::rvs_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf")
            .field("len", &self.len())
            .field("port", &self.port())
            .finish()
    }
}

/// Largest burst rvs moves at once.
pub const MAX_BURST: usize = 64;

/// Up to [`MAX_BURST`] owned mbufs, in order. What is left in a burst when
/// it is dropped or cleared is freed in bulk.
pub struct Burst {
    len: usize,
    ptrs: [*mut rte_mbuf; MAX_BURST],
}

// SAFETY: a Burst owns its mbufs exactly as Mbuf does.
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    pub const fn new() -> Self {
        Burst {
            len: 0,
            ptrs: [std::ptr::null_mut(); MAX_BURST],
        }
    }

    /// Mbufs held.
    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds none.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more fit.
    #[inline(always)]
    pub fn is_full(&self) -> bool {
        self.len == MAX_BURST
    }

    /// Free places.
    #[inline(always)]
    pub fn room(&self) -> usize {
        MAX_BURST - self.len
    }

    /// Appends an mbuf; gives it back when the burst is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.ptrs[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Removes the last mbuf.
    #[inline(always)]
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        let p = self.ptrs[self.len];
        // SAFETY: the first len pointers are valid owned mbufs; this one
        // just left the burst, so ownership moves to the Mbuf.
        NonNull::new(p).map(|nn| unsafe { Mbuf::from_raw(nn) })
    }

    /// The mbufs, in order.
    #[inline(always)]
    pub fn as_slice(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over a non-null *mut rte_mbuf,
        // and the first len pointers are valid, owned, non-null mbufs.
        unsafe { std::slice::from_raw_parts(self.ptrs.as_ptr() as *const Mbuf, self.len) }
    }

    /// The mbufs, in order, writable.
    #[inline(always)]
    pub fn as_mut_slice(&mut self) -> &mut [Mbuf] {
        // SAFETY: as in as_slice, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptrs.as_mut_ptr() as *mut Mbuf, self.len) }
    }

    /// Moves every mbuf out, in order.
    #[inline(always)]
    pub fn drain(&mut self) -> Drain<'_> {
        let len = self.len;
        self.len = 0;
        Drain {
            burst: self,
            next: 0,
            end: len,
        }
    }

    /// Frees every mbuf.
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: the first len pointers are owned mbufs, freed once here
            // and forgotten by setting len to 0.
            unsafe { dpdk_sys::rvs_pktmbuf_free_bulk(self.ptrs.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }

    /// Raw view for RX/TX/ring calls: pointer to the free tail and its room.
    #[inline(always)]
    pub(crate) fn tail_ptr(&mut self) -> (*mut *mut rte_mbuf, usize) {
        // SAFETY: len <= MAX_BURST, so the pointer stays inside the array.
        (
            unsafe { self.ptrs.as_mut_ptr().add(self.len) },
            MAX_BURST - self.len,
        )
    }

    /// Records that `n` more pointers were written at the tail.
    #[inline(always)]
    pub(crate) fn grew(&mut self, n: usize) {
        self.len = (self.len + n).min(MAX_BURST);
    }

    /// Raw pointer to the first mbuf.
    #[inline(always)]
    pub(crate) fn head_ptr(&mut self) -> *mut *mut rte_mbuf {
        self.ptrs.as_mut_ptr()
    }

    /// Forgets the first `n` mbufs (their ownership went elsewhere) and
    /// moves the rest to the front.
    #[inline(always)]
    pub(crate) fn consumed_front(&mut self, n: usize) {
        let n = n.min(self.len);
        if n == self.len {
            self.len = 0;
        } else if n > 0 {
            self.ptrs.copy_within(n..self.len, 0);
            self.len -= n;
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Iterator moving mbufs out of a [`Burst`]; those not taken are freed.
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    end: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline(always)]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next >= self.end {
            return None;
        }
        let p = self.burst.ptrs[self.next];
        self.next += 1;
        // SAFETY: pointers next..end were owned by the burst, which gave up
        // ownership (len = 0) when the drain began; each is yielded once.
        NonNull::new(p).map(|nn| unsafe { Mbuf::from_raw(nn) })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

impl crate::buf::PacketBuf for Mbuf {
    #[inline(always)]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }
    #[inline(always)]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }
    #[inline(always)]
    fn len(&self) -> usize {
        Mbuf::len(self)
    }
    #[inline(always)]
    fn headroom(&self) -> usize {
        Mbuf::headroom(self)
    }
    #[inline(always)]
    fn tailroom(&self) -> usize {
        Mbuf::tailroom(self)
    }
    #[inline(always)]
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::prepend(self, n)
    }
    #[inline(always)]
    fn adj(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }
    #[inline(always)]
    fn trim(&mut self, n: usize) -> bool {
        Mbuf::trim(self, n)
    }
    #[inline(always)]
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        Mbuf::append(self, n)
    }
    #[inline(always)]
    fn set_rx_port(&mut self, port: u16) {
        Mbuf::set_port(self, port);
    }
    #[inline(always)]
    fn rx_l4_csum(&self) -> crate::buf::RxCsum {
        use crate::buf::RxCsum;
        let f = self.m().ol_flags & u64::from(dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_MASK);
        // NONE (both bits): the data is intact though the field is not
        // filled in (e.g. a virtual device) - as good as GOOD.
        if f == u64::from(dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD)
            || f == u64::from(dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_NONE)
        {
            RxCsum::Good
        } else if f == u64::from(dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_BAD) {
            RxCsum::Bad
        } else {
            RxCsum::Unknown
        }
    }
}
