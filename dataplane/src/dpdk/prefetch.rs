//! Cache prefetch hints for the staged burst loop: touch a bucket or a
//! record line ahead of the packet that reads it, so the misses of a burst
//! overlap instead of following one another.
//!
//! It lives in `dataplane::dpdk`, the one place of the crate allowed
//! `unsafe`, and is also built without the `dpdk` feature (`lib.rs` then
//! declares a `dpdk` module holding only this one). It holds exactly one
//! `unsafe` call, the x86-64 prefetch instruction, which is a hint: it never
//! faults, never changes memory or program state, and is given only
//! addresses derived from a live reference. On other architectures the
//! functions do nothing.

/// Hints that the cache line holding the start of `r` will be read soon.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    line((r as *const T).cast::<u8>());
}

/// Hints that every cache line of `r` will be read soon: the first and,
/// for a value that may straddle two lines, the one holding its last byte.
#[inline(always)]
pub fn prefetch_all<T>(r: &T) {
    let p = (r as *const T).cast::<u8>();
    line(p);
    let n = core::mem::size_of::<T>();
    if n > 1 {
        // `wrapping_add` never dereferences: it names the last byte of `r`.
        line(p.wrapping_add(n - 1));
    }
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 is a hint with no architectural effect: it cannot
    // fault or write memory whatever the address, and `p` points into a
    // live value besides.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_is_only_a_hint() {
        let v = [7u64; 16];
        prefetch(&v);
        prefetch_all(&v);
        prefetch_all(&());
        assert_eq!(v, [7u64; 16]);
    }
}
