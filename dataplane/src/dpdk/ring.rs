//! Typed `rte_ring`s: lock-free single-producer/single-consumer queues of
//! owned objects (mbufs for the worker handoff, boxed messages).

use super::{Burst, DpdkError, Eal, Mbuf};
use std::cell::Cell;
use std::ffi::{c_void, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

mod sealed {
    pub trait Sealed {}
}

/// An object that travels through a ring as one pointer. Sealed: only
/// [`Mbuf`] and `Box<T>` are ring items.
pub trait RingItem: Send + sealed::Sealed {
    #[doc(hidden)]
    fn into_ptr(self) -> *mut c_void;
    #[doc(hidden)]
    /// # Safety
    /// `p` came from `into_ptr` of the same type and is used once.
    unsafe fn from_ptr(p: *mut c_void) -> Option<Self>
    where
        Self: Sized;
}

impl sealed::Sealed for Mbuf {}
impl RingItem for Mbuf {
    fn into_ptr(self) -> *mut c_void {
        self.into_raw() as *mut c_void
    }
    unsafe fn from_ptr(p: *mut c_void) -> Option<Self> {
        // SAFETY: the caller guarantees p came from Mbuf::into_ptr.
        NonNull::new(p as *mut dpdk_sys::rte_mbuf).map(|nn| unsafe { Mbuf::from_raw(nn) })
    }
}

impl<T: Send> sealed::Sealed for Box<T> {}
impl<T: Send> RingItem for Box<T> {
    fn into_ptr(self) -> *mut c_void {
        Box::into_raw(self) as *mut c_void
    }
    unsafe fn from_ptr(p: *mut c_void) -> Option<Self> {
        if p.is_null() {
            return None;
        }
        // SAFETY: the caller guarantees p came from Box::into_raw of a T.
        Some(unsafe { Box::from_raw(p as *mut T) })
    }
}

struct RingInner<T: RingItem> {
    raw: NonNull<dpdk_sys::rte_ring>,
    _eal: Eal,
    _t: PhantomData<T>,
}

// SAFETY: the ring is an MT-safe DPDK object; the items it holds are Send.
unsafe impl<T: RingItem> Send for RingInner<T> {}
// SAFETY: shared access is only through the SP/SC handles, one each.
unsafe impl<T: RingItem> Sync for RingInner<T> {}

impl<T: RingItem> Drop for RingInner<T> {
    fn drop(&mut self) {
        // Both handles are gone: drain what is left, then free the ring.
        let mut p: *mut c_void = std::ptr::null_mut();
        loop {
            // SAFETY: no handle is left, so this is the only user.
            let n = unsafe {
                dpdk_sys::rvs_ring_dequeue_burst(self.raw.as_ptr(), &mut p, 1, std::ptr::null_mut())
            };
            if n == 0 {
                break;
            }
            // SAFETY: everything in the ring was put there by into_ptr of T.
            drop(unsafe { T::from_ptr(p) });
        }
        // SAFETY: created by rte_ring_create, freed once.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}

/// Constructor for ring handle pairs.
pub struct Ring;

impl Ring {
    /// Creates a single-producer/single-consumer ring with room for
    /// `capacity` items (rounded up to a power of two, minus one).
    pub fn spsc<T: RingItem>(
        eal: &Eal,
        name: &str,
        capacity: u32,
    ) -> Result<(Producer<T>, Consumer<T>), DpdkError> {
        let size = (capacity + 1).next_power_of_two();
        let c_name = CString::new(name)
            .map_err(|_| DpdkError::InvalidArgument(format!("ring name {name:?} contains NUL")))?;
        // SAFETY: valid name; EAL initialised.
        let raw = unsafe {
            dpdk_sys::rte_ring_create(
                c_name.as_ptr(),
                size,
                dpdk_sys::rte_socket_id() as i32,
                dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| DpdkError::from_rte_errno("rte_ring_create"))?;
        let inner = Arc::new(RingInner {
            raw,
            _eal: eal.clone(),
            _t: PhantomData,
        });
        Ok((
            Producer {
                inner: inner.clone(),
                _not_sync: PhantomData,
            },
            Consumer {
                inner,
                _not_sync: PhantomData,
            },
        ))
    }
}

/// The one producer of a ring: `Send`, not `Sync`.
pub struct Producer<T: RingItem> {
    inner: Arc<RingInner<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T: RingItem> Producer<T> {
    /// Enqueues one item; gives it back when the ring is full.
    #[inline]
    pub fn enqueue(&mut self, item: T) -> Result<(), T> {
        let p = item.into_ptr();
        // SAFETY: single producer (this handle); p is one valid object.
        let n = unsafe {
            dpdk_sys::rvs_ring_enqueue_burst(self.inner.raw.as_ptr(), &p, 1, std::ptr::null_mut())
        };
        if n == 1 {
            Ok(())
        } else {
            // SAFETY: p came from into_ptr just above and was not enqueued.
            unsafe { T::from_ptr(p) }.map_or(Ok(()), Err)
        }
    }

    /// Items in the ring now.
    pub fn len(&self) -> usize {
        // SAFETY: reading the count is MT-safe.
        unsafe { dpdk_sys::rvs_ring_count(self.inner.raw.as_ptr()) as usize }
    }

    /// True when the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Producer<Mbuf> {
    /// Moves as many mbufs from the front of `burst` into the ring as fit;
    /// the rest stay in the burst. Returns how many moved.
    #[inline]
    pub fn enqueue_burst(&mut self, burst: &mut Burst) -> usize {
        let len = burst.len();
        // SAFETY: single producer; the first len pointers are owned mbufs;
        // the ring takes the first n, which the burst forgets.
        let n = unsafe {
            dpdk_sys::rvs_ring_enqueue_burst(
                self.inner.raw.as_ptr(),
                burst.head_ptr() as *const *mut c_void,
                len as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        burst.consumed_front(n);
        n
    }
}

/// The one consumer of a ring: `Send`, not `Sync`.
pub struct Consumer<T: RingItem> {
    inner: Arc<RingInner<T>>,
    _not_sync: PhantomData<Cell<()>>,
}

impl<T: RingItem> Consumer<T> {
    /// Dequeues one item.
    #[inline]
    pub fn dequeue(&mut self) -> Option<T> {
        let mut p: *mut c_void = std::ptr::null_mut();
        // SAFETY: single consumer (this handle); p is a valid out-slot.
        let n = unsafe {
            dpdk_sys::rvs_ring_dequeue_burst(
                self.inner.raw.as_ptr(),
                &mut p,
                1,
                std::ptr::null_mut(),
            )
        };
        if n == 1 {
            // SAFETY: the item was enqueued by into_ptr of T and leaves once.
            unsafe { T::from_ptr(p) }
        } else {
            None
        }
    }
}

impl Consumer<Mbuf> {
    /// Dequeues into the free tail of `burst`; returns how many.
    #[inline]
    pub fn dequeue_burst(&mut self, burst: &mut Burst) -> usize {
        let (tail, room) = burst.tail_ptr();
        // SAFETY: single consumer; tail has room slots; the mbufs dequeued
        // were enqueued as owned mbufs and now belong to the burst.
        let n = unsafe {
            dpdk_sys::rvs_ring_dequeue_burst(
                self.inner.raw.as_ptr(),
                tail as *mut *mut c_void,
                room as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        burst.grew(n);
        n
    }
}
