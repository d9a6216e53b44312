//! Packet-buffer pools.

use super::{Burst, DpdkError, Eal, Mbuf};
use dpdk_sys::rte_mempool;
use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A pool of packet buffers (`rte_pktmbuf_pool_create`), freed on drop.
pub struct Mempool {
    raw: NonNull<rte_mempool>,
    name: String,
    size: u32,
    alloc_failures: AtomicU64,
    eal: Eal,
}

// SAFETY: DPDK mempools are multi-producer/multi-consumer safe; the pointer
// itself is never mutated by rvs.
unsafe impl Send for Mempool {}
// SAFETY: as above; shared use only goes through MT-safe DPDK calls and an
// atomic counter.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` mbufs with `data_room` bytes each (headroom
    /// included; `RTE_MBUF_DEFAULT_BUF_SIZE` is 2176) and a per-lcore cache
    /// of `cache` mbufs, on the caller's NUMA socket.
    pub fn new(
        eal: &Eal,
        name: &str,
        n: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Arc<Mempool>, DpdkError> {
        let c_name = CString::new(name).map_err(|_| {
            DpdkError::InvalidArgument(format!("mempool name {name:?} contains NUL"))
        })?;
        // SAFETY: EAL is initialised (we hold an Eal); the name is a valid C
        // string that DPDK copies.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                c_name.as_ptr(),
                n,
                cache,
                0,
                data_room,
                dpdk_sys::rte_socket_id() as i32,
            )
        };
        let raw = NonNull::new(raw)
            .ok_or_else(|| DpdkError::from_rte_errno("rte_pktmbuf_pool_create"))?;
        Ok(Arc::new(Mempool {
            raw,
            name: name.to_owned(),
            size: n,
            alloc_failures: AtomicU64::new(0),
            eal: eal.clone(),
        }))
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of mbufs the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The raw pool, for port set-up.
    pub(crate) fn as_ptr(&self) -> *mut rte_mempool {
        self.raw.as_ptr()
    }

    /// Allocates one mbuf (empty, default headroom). None when the pool is
    /// exhausted; that is counted in [`Mempool::alloc_failures`].
    #[inline]
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for self's lifetime.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_alloc(self.raw.as_ptr()) };
        match NonNull::new(p) {
            // SAFETY: a freshly allocated mbuf, owned by nobody else.
            Some(nn) => Some(unsafe { Mbuf::from_raw(nn) }),
            None => {
                self.alloc_failures.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Fills `burst` up to `n` more mbufs, all or nothing. False (counted)
    /// when the pool cannot supply them all.
    pub fn alloc_bulk(&self, burst: &mut Burst, n: usize) -> bool {
        let (tail, room) = burst.tail_ptr();
        let n = n.min(room);
        // SAFETY: tail points at room >= n writable slots; on success DPDK
        // writes n valid mbuf pointers there, which the burst then owns.
        let rc = unsafe { dpdk_sys::rvs_pktmbuf_alloc_bulk(self.raw.as_ptr(), tail, n as u32) };
        if rc == 0 {
            burst.grew(n);
            true
        } else {
            self.alloc_failures.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Allocations refused because the pool was empty.
    pub fn alloc_failures(&self) -> u64 {
        self.alloc_failures.load(Ordering::Relaxed)
    }

    /// Mbufs available (in the pool and the per-lcore caches).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { dpdk_sys::rvs_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently allocated.
    pub fn in_use(&self) -> u32 {
        // SAFETY: the pool is valid.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        if self.in_use() == 0 {
            // SAFETY: no mbuf of this pool is outstanding and no port uses it
            // any more (ports hold an Arc to the pool).
            unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
        } else {
            // Mbufs are still out: freeing the pool would leave them dangling.
            // Leak it, and keep EAL's memory mapped for the rest of the process.
            self.eal.pin_forever();
        }
    }
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name)
            .field("size", &self.size)
            .finish()
    }
}
