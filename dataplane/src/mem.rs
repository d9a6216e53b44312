//! Where per-worker tables sized by connection count get their memory.
//!
//! With the `dpdk` feature these are `dataplane::dpdk`'s [`HugeSlice`] and
//! [`TableMem`]: DPDK hugepages, transparent huge pages or the heap (all
//! the `unsafe` lives there). Without it (packet logic built and tested
//! with no DPDK) a safe heap-backed stand-in with the same interface, on
//! ordinary pages.

use std::fmt;

/// Where a table's memory came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Backing {
    /// Ordinary (4 KiB) pages: no hugepages in EAL and transparent huge
    /// pages unavailable, or a table smaller than one huge page.
    SmallPages = 0,
    /// An anonymous mapping advised with `MADV_HUGEPAGE` while transparent
    /// huge pages are `always` or `madvise`.
    TransparentHuge = 1,
    /// `rte_malloc_socket` from EAL's hugepage memory.
    DpdkHugepages = 2,
}

impl Backing {
    /// Short name for listings (`rvsadm --workers`).
    pub fn name(self) -> &'static str {
        match self {
            Backing::SmallPages => "4k-pages",
            Backing::TransparentHuge => "thp",
            Backing::DpdkHugepages => "hugepages",
        }
    }

    /// The value stored in a counter (see [`Backing::from_code`]).
    pub fn code(self) -> u64 {
        self as u64
    }

    /// The backing a counter value names (unknown values: small pages).
    pub fn from_code(c: u64) -> Backing {
        match c {
            2 => Backing::DpdkHugepages,
            1 => Backing::TransparentHuge,
            _ => Backing::SmallPages,
        }
    }

    /// Whether the memory is on huge pages (or asked for them).
    pub fn is_huge(self) -> bool {
        self != Backing::SmallPages
    }
}

impl fmt::Display for Backing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(feature = "dpdk")]
pub use crate::dpdk::{HugeSlice, TableMem};

#[cfg(not(feature = "dpdk"))]
pub use host::{HugeSlice, TableMem};

#[cfg(not(feature = "dpdk"))]
mod host {
    use super::Backing;

    /// Where tables get their memory: without DPDK, always the heap.
    #[derive(Clone, Debug, Default)]
    pub struct TableMem;

    impl TableMem {
        /// Process memory (the only kind without DPDK).
        pub fn host() -> Self {
            TableMem
        }

        /// Ordinary pages (the same as [`TableMem::host`] without DPDK).
        pub fn small_pages() -> Self {
            TableMem
        }

        /// Never DPDK memory without the `dpdk` feature.
        pub fn uses_dpdk(&self) -> bool {
            false
        }
    }

    /// A fixed-length array of `T` on the heap.
    #[derive(Debug)]
    pub struct HugeSlice<T: Copy>(Box<[T]>);

    impl<T: Copy> HugeSlice<T> {
        /// `len` copies of `fill`.
        pub fn new(_mem: &TableMem, len: usize, fill: T) -> Self {
            HugeSlice(vec![fill; len].into_boxed_slice())
        }

        /// Always ordinary pages.
        pub fn backing(&self) -> Backing {
            Backing::SmallPages
        }

        /// Never DPDK memory.
        pub fn is_dpdk(&self) -> bool {
            false
        }
    }

    impl<T: Copy> std::ops::Deref for HugeSlice<T> {
        type Target = [T];
        #[inline(always)]
        fn deref(&self) -> &[T] {
            &self.0
        }
    }

    impl<T: Copy> std::ops::DerefMut for HugeSlice<T> {
        #[inline(always)]
        fn deref_mut(&mut self) -> &mut [T] {
            &mut self.0
        }
    }
}
