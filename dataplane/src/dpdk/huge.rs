//! Memory for per-worker tables sized by connection count (ARCHITECTURE
//! §5): DPDK hugepage memory on the worker's NUMA node when EAL has
//! hugepages, else an anonymous mapping advised with `MADV_HUGEPAGE`
//! (transparent huge pages), else ordinary heap pages. The table code stays
//! safe: it owns a [`HugeSlice`], which derefs to `&[T]` / `&mut [T]`.
//!
//! At 1M connections a table spans ~70 MB; on 4 KiB pages nearly every
//! lookup also misses the TLB (perf-floor `memlat`: 837–884 vs 1029–1451
//! cycles per dependent lookup on 2 MiB vs 4 KiB pages).

use super::Eal;
use std::alloc::Layout;
use std::fmt;
use std::ptr::NonNull;

/// A 2 MiB huge page.
const HUGE: usize = 2 << 20;

pub use crate::mem::Backing;

/// Where tables should get their memory: from the process (mmap/heap) or
/// from a running EAL on a NUMA socket.
#[derive(Clone, Debug, Default)]
pub struct TableMem {
    /// EAL, the socket, and whether EAL's memory is hugepages.
    dpdk: Option<(Eal, i32, bool)>,
    /// Never ask for transparent huge pages (benchmarks comparing page
    /// sizes).
    small_only: bool,
}

impl TableMem {
    /// Process memory only (tests, fuzzers, benches, no EAL).
    pub fn host() -> Self {
        TableMem::default()
    }

    /// Process memory on ordinary 4 KiB pages only: what tables got before
    /// they asked for huge pages, for benchmarks that compare the two.
    pub fn small_pages() -> Self {
        TableMem {
            dpdk: None,
            small_only: true,
        }
    }

    /// DPDK memory on `socket` (`None`: any socket, the caller's first)
    /// when this EAL has hugepages; process memory otherwise.
    pub fn dpdk(eal: &Eal, socket: Option<u32>) -> Self {
        let m = Self::dpdk_always(eal, socket);
        match m.dpdk {
            Some((_, _, true)) => m,
            _ => Self::host(),
        }
    }

    /// DPDK memory on `socket` even when EAL runs without hugepages
    /// (`--no-huge`: then it is EAL's ordinary memory, and
    /// [`HugeSlice::backing`] says so). For tests of the DPDK path.
    pub fn dpdk_always(eal: &Eal, socket: Option<u32>) -> Self {
        // SAFETY: EAL is initialised (we hold a handle); the call only reads
        // its configuration.
        let huge = unsafe { dpdk_sys::rte_eal_has_hugepages() } != 0;
        let socket = socket
            .and_then(|s| i32::try_from(s).ok())
            .unwrap_or(dpdk_sys::SOCKET_ID_ANY);
        TableMem {
            dpdk: Some((eal.clone(), socket, huge)),
            small_only: false,
        }
    }

    /// Whether allocations try DPDK memory first.
    pub fn uses_dpdk(&self) -> bool {
        self.dpdk.is_some()
    }
}

enum Owner {
    /// rte_malloc'd; the handle keeps EAL (and its memory) alive.
    Dpdk(#[allow(dead_code)] Eal),
    /// mmap'd, `len` bytes.
    Map(usize),
    /// std::alloc'd with this layout.
    Heap(Layout),
    /// Nothing allocated (zero bytes).
    Empty,
}

/// A fixed-length array of `T` allocated once, on huge pages where it can
/// be (see the module documentation), freed on drop.
pub struct HugeSlice<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    owner: Owner,
    backing: Backing,
}

// SAFETY: HugeSlice owns its elements exclusively, like Box<[T]>; the EAL
// handle it may hold is Send + Sync.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// SAFETY: shared access only hands out &[T], like Box<[T]>.
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy> HugeSlice<T> {
    /// `len` copies of `fill`. Tries, in order: DPDK memory (when `mem`
    /// says so), a `MADV_HUGEPAGE` mapping (when transparent huge pages are
    /// not `never` and the array spans at least one huge page), the heap.
    /// Aborts like `vec!` when no memory is left at all.
    pub fn new(mem: &TableMem, len: usize, fill: T) -> Self {
        let Some(bytes) = len
            .checked_mul(size_of::<T>())
            .filter(|b| *b <= isize::MAX as usize)
        else {
            // Same as `vec!` with an impossible size.
            std::alloc::handle_alloc_error(Layout::new::<T>())
        };
        let align = align_of::<T>().max(64);
        let (ptr, owner, backing) = if bytes == 0 {
            (
                NonNull::<T>::dangling().cast::<u8>(),
                Owner::Empty,
                Backing::SmallPages,
            )
        } else if let Some(p) = mem
            .dpdk
            .as_ref()
            .and_then(|(eal, s, huge)| dpdk_alloc(eal, *s, *huge, bytes, align))
        {
            p
        } else if let Some(p) = (bytes >= HUGE && !mem.small_only && thp_available())
            .then(|| map_huge(bytes))
            .flatten()
        {
            p
        } else {
            heap(bytes, align)
        };
        let ptr = ptr.cast::<T>();
        for i in 0..len {
            // SAFETY: ptr is valid for `len` elements of T, aligned (every
            // allocation above is aligned to at least align_of::<T>()), and
            // slot i is written exactly once before any read.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        HugeSlice {
            ptr,
            len,
            owner,
            backing,
        }
    }

    /// Where the memory came from.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Whether the memory came from DPDK (`rte_malloc_socket`).
    pub fn is_dpdk(&self) -> bool {
        matches!(self.owner, Owner::Dpdk(_))
    }
}

fn dpdk_alloc(
    eal: &Eal,
    socket: i32,
    huge: bool,
    bytes: usize,
    align: usize,
) -> Option<(NonNull<u8>, Owner, Backing)> {
    let align = u32::try_from(align).ok()?;
    // SAFETY: EAL is initialised (the caller holds a handle); a null type
    // name is allowed; the result is checked for null.
    let p = unsafe { dpdk_sys::rte_malloc_socket(std::ptr::null(), bytes, align, socket) };
    let p = NonNull::new(p.cast::<u8>())?;
    let backing = if huge {
        Backing::DpdkHugepages
    } else {
        Backing::SmallPages
    };
    Some((p, Owner::Dpdk(eal.clone()), backing))
}

/// Whether transparent huge pages may back an madvised mapping.
fn thp_available() -> bool {
    std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        .map(|s| !s.contains("[never]"))
        .unwrap_or(false)
}

/// An anonymous mapping of `bytes` (rounded up to huge pages), aligned to a
/// huge page so the kernel can back all of it with 2 MiB pages, advised
/// `MADV_HUGEPAGE`.
fn map_huge(bytes: usize) -> Option<(NonNull<u8>, Owner, Backing)> {
    let len = bytes.checked_next_multiple_of(HUGE)?;
    let over = len.checked_add(HUGE)?;
    // SAFETY: a fresh private anonymous mapping; no existing memory is
    // touched. The result is checked against MAP_FAILED.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            over,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return None;
    }
    let start = (base as usize).next_multiple_of(HUGE);
    let head = start - base as usize;
    let tail = over - head - len;
    // SAFETY: both ranges lie inside the mapping just made and outside
    // [start, start + len), which is what is kept; munmap of a zero length
    // is skipped.
    unsafe {
        if head > 0 {
            libc::munmap(base, head);
        }
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
    }
    // SAFETY: [start, start + len) is mapped by us; madvise only changes
    // how the kernel backs it. A failure leaves ordinary pages.
    let advised =
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE) } == 0;
    let backing = if advised {
        Backing::TransparentHuge
    } else {
        Backing::SmallPages
    };
    Some((NonNull::new(start as *mut u8)?, Owner::Map(len), backing))
}

fn heap(bytes: usize, align: usize) -> (NonNull<u8>, Owner, Backing) {
    let Ok(layout) = Layout::from_size_align(bytes, align) else {
        std::alloc::handle_alloc_error(Layout::new::<u8>())
    };
    // SAFETY: layout has a non-zero size (bytes > 0 here).
    let p = unsafe { std::alloc::alloc(layout) };
    match NonNull::new(p) {
        Some(p) => (p, Owner::Heap(layout), Backing::SmallPages),
        None => std::alloc::handle_alloc_error(layout),
    }
}

impl<T: Copy> std::ops::Deref for HugeSlice<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: ptr points to `len` initialised, aligned elements owned by
        // self (dangling but aligned when len == 0, which is allowed).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> std::ops::DerefMut for HugeSlice<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in deref; &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        let p = self.ptr.as_ptr().cast::<u8>();
        match &self.owner {
            // SAFETY: p came from rte_malloc_socket and EAL is still up
            // (self holds a handle until after this call).
            Owner::Dpdk(_) => unsafe { dpdk_sys::rte_free(p.cast()) },
            // SAFETY: p and len are exactly the range map_huge kept.
            Owner::Map(len) => unsafe {
                libc::munmap(p.cast(), *len);
            },
            // SAFETY: p was allocated with this layout by std::alloc.
            Owner::Heap(layout) => unsafe { std::alloc::dealloc(p, *layout) },
            Owner::Empty => {}
        }
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for HugeSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HugeSlice")
            .field("len", &self.len)
            .field("backing", &self.backing)
            .finish_non_exhaustive()
    }
}

/// The NUMA node of CPU `cpu` (from sysfs), for allocating a worker's
/// tables on its own node; `None` where sysfs does not say.
pub fn numa_node_of_cpu(cpu: usize) -> Option<u32> {
    let dir = std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{cpu}")).ok()?;
    dir.filter_map(Result::ok)
        .find_map(|e| e.file_name().to_str()?.strip_prefix("node")?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_arrays_live_on_the_heap_and_are_filled() {
        let mut s = HugeSlice::new(&TableMem::host(), 1000, 7u32);
        assert_eq!(s.backing(), Backing::SmallPages);
        assert_eq!(s.len(), 1000);
        assert!(s.iter().all(|&x| x == 7));
        s[999] = 8;
        assert_eq!(s[999], 8);
        assert_eq!(s.as_ptr() as usize % 64, 0);
        let e = HugeSlice::new(&TableMem::host(), 0, 1u8);
        assert!(e.is_empty());
    }

    #[test]
    fn large_arrays_ask_for_huge_pages_when_the_kernel_offers_them() {
        let n = 3 * HUGE / 4;
        let mut s = HugeSlice::new(&TableMem::host(), n, 0xabcd_u32);
        if thp_available() {
            assert_eq!(s.backing(), Backing::TransparentHuge);
            assert_eq!(s.as_ptr() as usize % HUGE, 0);
        } else {
            assert_eq!(s.backing(), Backing::SmallPages);
        }
        assert!(s.iter().all(|&x| x == 0xabcd));
        s[n - 1] = 1;
        assert_eq!(s[n - 1], 1);
    }

    /// AnonHugePages (kB) of the mapping holding address `a`, from
    /// /proc/self/smaps.
    fn anon_huge_kb_at(a: usize) -> Option<u64> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = lo <= a && a < hi;
                        continue;
                    }
                }
            }
            if inside {
                if let Some(v) = line.strip_prefix("AnonHugePages:") {
                    return v.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        None
    }

    /// What a 64 MiB table gets: a plain `vec!` (the old allocation) and a
    /// host HugeSlice, each touched in full. Prints both (run with
    /// --nocapture); asserts only what the kernel settings promise.
    #[test]
    fn a_64_mib_table_gets_huge_pages_where_a_vec_does_not() {
        let n = (64 << 20) / 4;
        let v = vec![u32::MAX; n];
        let h = HugeSlice::new(&TableMem::host(), n, u32::MAX);
        let small = HugeSlice::new(&TableMem::small_pages(), 1 << 20, 0u32);
        assert_eq!(small.backing(), Backing::SmallPages);
        let vk = anon_huge_kb_at(v.as_ptr() as usize + (32 << 20));
        let hk = anon_huge_kb_at(h.as_ptr() as usize + (32 << 20));
        println!(
            "64 MiB table: vec! AnonHugePages {vk:?} kB, HugeSlice ({}) AnonHugePages {hk:?} kB",
            h.backing()
        );
        assert_eq!(h.backing().is_huge(), thp_available());
        assert!(h.iter().all(|&x| x == u32::MAX) && v.iter().all(|&x| x == u32::MAX));
    }

    #[test]
    fn cpu_0_has_a_numa_node_where_sysfs_lists_one() {
        let listed = std::fs::read_dir("/sys/devices/system/cpu/cpu0")
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| e.file_name().to_string_lossy().starts_with("node"))
            })
            .unwrap_or(false);
        assert_eq!(numa_node_of_cpu(0).is_some(), listed);
        assert_eq!(numa_node_of_cpu(1 << 20), None);
    }

    #[test]
    fn backing_codes_round_trip() {
        for b in [
            Backing::SmallPages,
            Backing::TransparentHuge,
            Backing::DpdkHugepages,
        ] {
            assert_eq!(Backing::from_code(b.code()), b);
        }
        assert_eq!(Backing::from_code(99), Backing::SmallPages);
    }
}
