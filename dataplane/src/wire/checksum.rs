//! The Internet checksum (RFC 1071), pseudo-header sums, and incremental
//! updates (RFC 1624).
//!
//! Sums are carried as unfolded `u64` ones'-complement partial sums so that
//! pieces (pseudo-header, header, payload) can be added with [`add`] and
//! folded once with [`fold`]. Every function here is allocation-free.

#![deny(clippy::indexing_slicing)]

use core::net::{Ipv4Addr, Ipv6Addr};

/// Ones'-complement addition of two partial sums (end-around carry).
#[inline]
pub fn add(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Folds a partial sum to 16 bits (not complemented).
#[inline]
pub fn fold(mut sum: u64) -> u16 {
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff_ffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// The ones'-complement partial sum of `data`, read as big-endian 16-bit
/// words (an odd last byte is padded with zero). Sums 8 bytes at a time.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // chunks_exact yields 8-byte chunks: the conversion cannot fail.
        if let Ok(w) = <[u8; 8]>::try_from(c) {
            acc = add(acc, u64::from_be_bytes(w));
        }
    }
    let mut rest = chunks.remainder().chunks_exact(2);
    for c in &mut rest {
        if let &[hi, lo] = c {
            acc = add(acc, u64::from(u16::from_be_bytes([hi, lo])));
        }
    }
    if let [last] = rest.remainder() {
        acc = add(acc, u64::from(*last) << 8);
    }
    acc
}

/// The Internet checksum of `data`: the complement of its folded sum.
/// Over data whose checksum field is already filled, a result of 0 means
/// the checksum is valid.
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Partial sum of the IPv4 pseudo-header (RFC 793/768): addresses,
/// protocol and L4 length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u64 {
    let s = u64::from(u32::from(src));
    let d = u64::from(u32::from(dst));
    add(add(s, d), u64::from(proto) + u64::from(len))
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1): addresses,
/// upper-layer length and next header.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, len: u32) -> u64 {
    let s = src.octets();
    let d = dst.octets();
    add(
        add(sum(&s), sum(&d)),
        u64::from(next_header) + u64::from(len),
    )
}

/// The checksum of an L4 segment (`l4`, checksum field included) over
/// IPv4: 0 when the stored checksum is valid, else (with the field zeroed)
/// the value to store.
#[inline]
pub fn l4_checksum_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> u16 {
    let len = u16::try_from(l4.len()).unwrap_or(u16::MAX);
    !fold(add(pseudo_header_v4(src, dst, proto, len), sum(l4)))
}

/// The checksum of an L4 segment (`l4`, checksum field included) over
/// IPv6; see [`l4_checksum_v4`].
#[inline]
pub fn l4_checksum_v6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, l4: &[u8]) -> u16 {
    let len = u32::try_from(l4.len()).unwrap_or(u32::MAX);
    !fold(add(pseudo_header_v6(src, dst, next_header, len), sum(l4)))
}

/// RFC 1624 eqn. 3 for any even-length field: the new checksum after the
/// bytes `old` of a checksummed area became `new` (same length; an odd
/// trailing byte is treated as padded with zero).
#[inline]
pub fn update(hc: u16, old: &[u8], new: &[u8]) -> u16 {
    // ~m is the complement of each old word; summing the words then
    // complementing the folded sum is the same in ones' complement.
    let not_old = u64::from(!fold(sum(old)));
    !fold(add(add(u64::from(!hc), not_old), sum(new)))
}

/// [`fold`] of a sum below 2^32 (the two 32-bit steps are no-ops there).
#[inline(always)]
fn fold32(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum as u16
}

/// RFC 1624 update for a 16-bit field: HC' = ~(~HC + ~m + m').
#[inline(always)]
pub fn update16(hc: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!hc) + u32::from(!old) + u32::from(new);
    !fold32(s)
}

/// RFC 1624 update for a 32-bit field (an IPv4 address).
#[inline(always)]
pub fn update32(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let o = u32::from_be_bytes(old);
    let n = u32::from_be_bytes(new);
    let s = u32::from(!hc) + (!(o >> 16) & 0xffff) + (!o & 0xffff) + (n >> 16) + (n & 0xffff);
    !fold32(s)
}

/// [`update`] for a 4-byte field, to the same bit (the sums of two words
/// never carry out of 32 bits, so the full-width steps are left out).
#[inline(always)]
pub fn update4(hc: u16, old: [u8; 4], new: [u8; 4]) -> u16 {
    let words = |a: [u8; 4]| {
        let v = u32::from_be_bytes(a);
        (v >> 16) + (v & 0xffff)
    };
    let not_old = u32::from(!fold32(words(old)));
    !fold32(u32::from(!hc) + not_old + words(new))
}

/// RFC 1624 update for a 128-bit field (an IPv6 address): [`update`]'s
/// steps, in its order, on two 8-byte words (so to the same bit), inline.
#[inline(always)]
pub fn update128(hc: u16, old: [u8; 16], new: [u8; 16]) -> u16 {
    let sum16 = |a: [u8; 16]| {
        let (hi, lo) = a.split_at(8);
        let w = |b: &[u8]| <[u8; 8]>::try_from(b).map_or(0, u64::from_be_bytes);
        add(add(0, w(hi)), w(lo))
    };
    let not_old = u64::from(!fold(sum16(old)));
    !fold(add(add(u64::from(!hc), not_old), sum16(new)))
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The textbook 16-bit-at-a-time sum, as the oracle for [`sum`].
    fn naive(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            s += u32::from(w);
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: sum of 0001 f203 f4f5 f6f7 is ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&d)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header with checksum b861.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0);
        h[10] = 0;
        h[11] = 0;
        assert_eq!(checksum(&h), 0xb861);
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285, HC' = 0x0000.
        assert_eq!(update16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    proptest! {
        #[test]
        fn sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(checksum(&data), naive(&data));
        }

        #[test]
        fn incremental_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 34..80),
            at in 0usize..8,
            new16 in any::<u16>(),
            new32 in any::<[u8; 4]>(),
            new128 in any::<[u8; 16]>(),
        ) {
            // Put a valid checksum in bytes 0..2, then edit fields after it.
            data[0] = 0;
            data[1] = 0;
            let c = checksum(&data);
            data[0..2].copy_from_slice(&c.to_be_bytes());
            prop_assume!(checksum(&data) == 0);
            let at = 2 + 2 * at;

            let old16 = u16::from_be_bytes([data[at], data[at + 1]]);
            data[at..at + 2].copy_from_slice(&new16.to_be_bytes());
            let hc = update16(u16::from_be_bytes([data[0], data[1]]), old16, new16);
            data[0..2].copy_from_slice(&hc.to_be_bytes());
            prop_assert_eq!(checksum(&data), 0);
            let mut z = data.clone();
            z[0] = 0; z[1] = 0;
            prop_assert_eq!(hc, checksum(&z));

            let old32: [u8; 4] = data[at..at + 4].try_into().unwrap();
            data[at..at + 4].copy_from_slice(&new32);
            let hc = update32(hc, old32, new32);
            data[0..2].copy_from_slice(&hc.to_be_bytes());
            let mut z = data.clone();
            z[0] = 0; z[1] = 0;
            prop_assert_eq!(hc, checksum(&z));

            let old128: [u8; 16] = data[at..at + 16].try_into().unwrap();
            data[at..at + 16].copy_from_slice(&new128);
            let hc = update128(hc, old128, new128);
            data[0..2].copy_from_slice(&hc.to_be_bytes());
            let mut z = data.clone();
            z[0] = 0; z[1] = 0;
            prop_assert_eq!(hc, checksum(&z));
        }

        #[test]
        fn update4_is_update(hc in any::<u16>(), old in any::<[u8; 4]>(), new in any::<[u8; 4]>()) {
            prop_assert_eq!(update4(hc, old, new), update(hc, &old, &new));
        }

        #[test]
        fn narrow_updates_match_the_wide_fold(hc in any::<u16>(), o in any::<u32>(), n in any::<u32>()) {
            let (o16, n16) = (o as u16, n as u16);
            let wide16 = !fold(u64::from(!hc) + u64::from(!o16) + u64::from(n16));
            prop_assert_eq!(update16(hc, o16, n16), wide16);
            let wide32 = !fold(
                u64::from(!hc)
                    + u64::from(!(o >> 16) & 0xffff)
                    + u64::from(!o & 0xffff)
                    + u64::from(n >> 16)
                    + u64::from(n & 0xffff),
            );
            prop_assert_eq!(update32(hc, o.to_be_bytes(), n.to_be_bytes()), wide32);
        }
    }

    proptest! {
        /// The inline 16-byte update is `update` to the bit (the checked
        /// and the fast IPv6 rewrites use one each).
        #[test]
        fn update128_is_update(hc: u16, old: [u8; 16], new: [u8; 16]) {
            prop_assert_eq!(update128(hc, old, new), update(hc, &old, &new));
        }
    }
}
