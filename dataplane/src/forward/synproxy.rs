//! SYN proxy: rvs answers a client's SYN itself with a SYN cookie and only
//! opens the connection to the real server when the client's ACK proves
//! the handshake (a spoofed SYN flood then creates no state at all).
//!
//! This module holds the pure parts; the pipeline glue is in
//! `pipeline/synproxy.rs`.
//!
//! - **Cookie** (Linux's `__cookie_v4_init_sequence` layout, SipHash-2-4
//!   keyed by a per-worker random secret): the top 8 bits are the epoch
//!   count (64 s per epoch), the low 24 bits a keyed hash of the 4-tuple
//!   and the epoch plus the encoded options, and the whole is offset by a
//!   second keyed hash of the 4-tuple and the client's ISN. The epoch key
//!   changes every 64 s (the count is hashed with the secret), so the
//!   secret in effect rotates; a cookie of the current and the previous
//!   epoch is accepted, an older one is *expired*, anything else
//!   *invalid*.
//! - **Encoded options**: the client's MSS as an index into Linux's table
//!   (IPv4 536/1300/1440/1460, IPv6 1220/1420/1440/8940) and whether it
//!   offered SACK (1 bit). rvs offers no window scale and no timestamps in
//!   its SYN-ACK, so neither half of the connection uses them (Linux can
//!   only encode window scale in the timestamp, and a timestamp from rvs
//!   would have to be translated for the life of the connection).
//! - **Pending table**: the connections whose SYN went to the real server
//!   and whose SYN-ACK has not come back, keyed by connection record, in a
//!   fixed window of probes (no allocation, no tombstones).
//!
//! Nothing here allocates or panics on any input.

#![deny(clippy::indexing_slicing)]

use crate::buf::PacketBuf;
use crate::wire::checksum::{l4_checksum_v4, l4_checksum_v6};
use crate::wire::{ip_proto, ipv4, ipv6, put16, put32, tcp};
use core::net::IpAddr;

/// Linux's IPv4 MSS table (`msstab` in net/ipv4/syncookies.c).
pub const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
/// Linux's IPv6 MSS table (`msstab` in net/ipv6/syncookies.c).
pub const MSS_V6: [u16; 4] = [1280 - 60, 1480 - 60, 1500 - 60, 9000 - 60];
/// Seconds per cookie epoch (the secret's rotation period).
pub const EPOCH_SECS: u64 = 64;
/// Epochs a cookie stays valid: the current one and the previous one.
pub const MAX_AGE: u32 = 2;
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// Data values a cookie can carry (2 bits MSS index, 1 bit SACK).
const DATA_VALUES: u32 = 8;

/// The SYN proxy's global settings (DPVS's `synproxy` block of dpvs.conf).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynProxyConf {
    /// MSS rvs advertises in its SYN-ACK to the client (DPVS
    /// `synack_options.mss`).
    pub mss: u16,
    /// TTL / hop limit of the SYN-ACK (DPVS `synack_options.ttl`).
    pub ttl: u8,
    /// Whether SACK is offered when the client offers it (DPVS
    /// `synack_options.sack`).
    pub sack: bool,
    /// SYNs sent to the real server again when the client's segments keep
    /// arriving and no SYN-ACK has come (DPVS `rs_syn_max_retry`).
    pub syn_retries: u8,
    /// Client segments dropped while the real server's SYN-ACK is awaited
    /// before rvs gives up and resets the client (DPVS
    /// `ack_storm_thresh`).
    pub dup_ack_limit: u8,
}

impl Default for SynProxyConf {
    fn default() -> Self {
        SynProxyConf {
            mss: 1452,
            ttl: 63,
            sack: true,
            syn_retries: 3,
            dup_ack_limit: 10,
        }
    }
}

/// The per-worker cookie secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CookieKeys {
    k0: [u64; 2],
    k1: [u64; 2],
}

impl CookieKeys {
    /// A secret drawn from the operating system's randomness (std's
    /// `RandomState`).
    pub fn random() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let rs = std::collections::hash_map::RandomState::new();
        let mut w = [0u64; 4];
        for (i, x) in w.iter_mut().enumerate() {
            let mut h = rs.build_hasher();
            h.write_u64(0x5359_4e50_0000_0000 | i as u64);
            *x = h.finish();
        }
        CookieKeys {
            k0: [w[0], w[1]],
            k1: [w[2], w[3]],
        }
    }

    /// A fixed secret (golden tests).
    pub const fn from_seed(seed: u64) -> Self {
        CookieKeys {
            k0: [seed ^ 0x0123_4567_89ab_cdef, seed.rotate_left(13)],
            k1: [seed.rotate_left(29) ^ 0xfedc_ba98_7654_3210, !seed],
        }
    }
}

#[inline(always)]
fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}

/// SipHash-2-4 of a 40-byte message given as five little-endian words.
fn siphash24(k: [u64; 2], m: [u64; 5]) -> u64 {
    let mut v = [
        k[0] ^ 0x736f_6d65_7073_6575,
        k[1] ^ 0x646f_7261_6e64_6f6d,
        k[0] ^ 0x6c79_6765_6e65_7261,
        k[1] ^ 0x7465_6462_7974_6573,
    ];
    for w in m {
        v[3] ^= w;
        sipround(&mut v);
        sipround(&mut v);
        v[0] ^= w;
    }
    let b = 40u64 << 56;
    v[3] ^= b;
    sipround(&mut v);
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for _ in 0..4 {
        sipround(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u128::from(u32::from(v)),
        IpAddr::V6(v) => u128::from(v),
    }
}

/// The client's 4-tuple as the cookie sees it (the SYN's addresses and
/// ports: client → VIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuple {
    /// Client address.
    pub src: IpAddr,
    /// Virtual address.
    pub dst: IpAddr,
    /// Client port.
    pub sport: u16,
    /// Virtual port.
    pub dport: u16,
}

impl Tuple {
    fn hash(&self, k: [u64; 2], c: u32) -> u32 {
        let (s, d) = (bits(self.src), bits(self.dst));
        let ports = (u64::from(self.sport) << 48) | (u64::from(self.dport) << 32) | u64::from(c);
        siphash24(
            k,
            [
                s as u64,
                (s >> 64) as u64,
                d as u64,
                (d >> 64) as u64,
                ports,
            ],
        ) as u32
    }
}

/// What the cookie carries about the client's SYN.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieData {
    /// Index into [`MSS_V4`] / [`MSS_V6`].
    pub mss_idx: u8,
    /// The client offered SACK (and rvs accepted it).
    pub sack: bool,
}

impl CookieData {
    fn encode(self) -> u32 {
        u32::from(self.mss_idx & 3) | (u32::from(self.sack) << 2)
    }
    fn decode(v: u32) -> Self {
        CookieData {
            mss_idx: (v & 3) as u8,
            sack: v & 4 != 0,
        }
    }
    /// The MSS this index stands for.
    pub fn mss(self, v6: bool) -> u16 {
        let t = if v6 { &MSS_V6 } else { &MSS_V4 };
        t.get(usize::from(self.mss_idx)).copied().unwrap_or(536)
    }
    /// The largest table entry not above the client's `mss`.
    pub fn for_mss(mss: u16, v6: bool, sack: bool) -> Self {
        let t = if v6 { &MSS_V6 } else { &MSS_V4 };
        let mut idx = 0u8;
        for (i, m) in t.iter().enumerate() {
            if *m <= mss {
                idx = i as u8;
            }
        }
        CookieData { mss_idx: idx, sack }
    }
}

/// The epoch count (8 bits on the wire) at `now_s` seconds.
#[inline]
pub fn epoch(now_s: u64) -> u32 {
    (now_s / EPOCH_SECS) as u32
}

/// The cookie (the SYN-ACK's sequence number) for the client's SYN with
/// sequence number `isn` on `t`, at epoch `count`.
pub fn make_cookie(keys: &CookieKeys, t: &Tuple, isn: u32, count: u32, d: CookieData) -> u32 {
    t.hash(keys.k0, 0)
        .wrapping_add(isn)
        .wrapping_add(count << COOKIE_BITS)
        .wrapping_add(t.hash(keys.k1, count & 0xff).wrapping_add(d.encode()) & COOKIE_MASK)
}

/// What a cookie check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieCheck {
    /// Made by this secret in the current or the previous epoch.
    Valid(CookieData),
    /// Made by this secret, but more than one epoch ago.
    Expired,
    /// Not a cookie of this secret for this tuple.
    Invalid,
}

/// Checks `cookie` (the ACK's acknowledgement number minus one) for the
/// client's `isn` (its sequence number minus one) at epoch `now`.
pub fn check_cookie(keys: &CookieKeys, t: &Tuple, isn: u32, cookie: u32, now: u32) -> CookieCheck {
    let v = cookie.wrapping_sub(t.hash(keys.k0, 0)).wrapping_sub(isn);
    let count = v >> COOKIE_BITS;
    let data = v.wrapping_sub(t.hash(keys.k1, count)) & COOKIE_MASK;
    if data >= DATA_VALUES {
        return CookieCheck::Invalid;
    }
    let age = now.wrapping_sub(count) & 0xff;
    if age >= MAX_AGE {
        return CookieCheck::Expired;
    }
    CookieCheck::Valid(CookieData::decode(data))
}

/// TCP option kinds read and written here.
mod opt {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const SACK_PERM: u8 = 4;
}

/// The MSS (536 when absent, RFC 9293) and SACK-permitted of a SYN's
/// option list; a malformed list stops the walk.
pub fn syn_options(opts: &[u8]) -> (u16, bool) {
    let (mut mss, mut sack) = (536u16, false);
    let mut i = 0usize;
    while let Some(&kind) = opts.get(i) {
        match kind {
            opt::EOL => break,
            opt::NOP => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else { break };
                let len = usize::from(len);
                if len < 2 {
                    break;
                }
                match (kind, opts.get(i + 2..i + len)) {
                    (opt::MSS, Some(&[a, b])) => mss = u16::from_be_bytes([a, b]),
                    (opt::SACK_PERM, Some(&[])) => sack = true,
                    (_, None) => break,
                    _ => {}
                }
                i += len;
            }
        }
    }
    (mss, sack)
}

/// The options of a SYN or SYN-ACK rvs writes: MSS, then NOP NOP
/// SACK-permitted when `sack`. Returns the buffer and its used length.
pub fn handshake_options(mss: u16, sack: bool) -> ([u8; 8], usize) {
    let m = mss.to_be_bytes();
    let mut o = [
        opt::MSS,
        4,
        m[0],
        m[1],
        opt::NOP,
        opt::NOP,
        opt::SACK_PERM,
        2,
    ];
    if sack {
        (o, 8)
    } else {
        o[4..].fill(0);
        (o, 4)
    }
}

/// A TCP segment for [`write_segment`] to build.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    /// Source address (same family as the packet).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flags.
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Options, a multiple of 4 bytes, at most 40.
    pub opts: &'a [u8],
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
}

/// Why a segment could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentError {
    /// Addresses of another family than the frame, or a frame shorter
    /// than its L2 header.
    Frame,
    /// Options not a multiple of 4 or longer than 40 bytes.
    Options,
    /// Not enough tailroom or headroom to grow the frame.
    NoRoom,
}

/// Rewrites the frame in `buf` (its first `l2_len` bytes an Ethernet
/// header, kept, with the MACs exchanged when `swap_macs`) into exactly
/// one IP header with no options or extension headers and the TCP segment
/// `s` without payload, checksums filled in. The frame's EtherType must
/// already be the family of `s` (rvs only turns packets around or
/// rewrites them in their own family).
// bounds: the frame is resized to exactly l2 + ip + 20 + opts bytes
// before any index, l2 >= 12 checked, opts checked to fit 40 bytes.
#[allow(clippy::indexing_slicing)]
pub fn write_segment<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l2_len: usize,
    swap_macs: bool,
    s: &Segment<'_>,
) -> Result<(), SegmentError> {
    if !s.opts.len().is_multiple_of(4) || s.opts.len() > 40 {
        return Err(SegmentError::Options);
    }
    let ip_len = match (s.src, s.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => ipv4::HEADER_LEN,
        (IpAddr::V6(_), IpAddr::V6(_)) => ipv6::HEADER_LEN,
        _ => return Err(SegmentError::Frame),
    };
    if l2_len < 12 || buf.len() < l2_len {
        return Err(SegmentError::Frame);
    }
    let tcp_len = tcp::HEADER_LEN + s.opts.len();
    let total = l2_len + ip_len + tcp_len;
    let have = buf.len();
    if have > total {
        if !buf.trim(have - total) {
            return Err(SegmentError::Frame);
        }
    } else if have < total && buf.append(total - have).is_none() {
        // No tailroom: grow at the front and move the L2 header there
        // (everything after it is rewritten anyway).
        let n = total - have;
        if buf.prepend(n).is_none() {
            return Err(SegmentError::NoRoom);
        }
        let d = buf.data_mut();
        if d.len() < n + l2_len {
            return Err(SegmentError::Frame);
        }
        d.copy_within(n..n + l2_len, 0);
    }
    let d = buf.data_mut();
    if d.len() != total {
        return Err(SegmentError::Frame);
    }
    if swap_macs {
        let mut a = [0u8; 6];
        a.copy_from_slice(&d[0..6]);
        d.copy_within(6..12, 0);
        d[6..12].copy_from_slice(&a);
    }
    let (ip, seg) = d[l2_len..].split_at_mut(ip_len);
    let payload_len = tcp_len as u16;
    match (s.src, s.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
            src,
            dst,
            protocol: ip_proto::TCP,
            payload_len,
            ttl: s.ttl,
            ident: 0,
            dont_frag: true,
        }
        .emit(ip)
        .map_err(|_| SegmentError::Frame)?,
        (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6::Repr {
            src,
            dst,
            next_header: ip_proto::TCP,
            payload_len,
            hop_limit: s.ttl,
        }
        .emit(ip)
        .map_err(|_| SegmentError::Frame)?,
        _ => return Err(SegmentError::Frame),
    }
    put16(seg, 0, s.sport);
    put16(seg, 2, s.dport);
    put32(seg, 4, s.seq);
    put32(seg, 8, s.ack);
    seg[12] = ((tcp_len / 4) as u8) << 4;
    seg[13] = s.flags;
    put16(seg, 14, s.window);
    put16(seg, 16, 0);
    put16(seg, 18, 0);
    seg[tcp::HEADER_LEN..].copy_from_slice(s.opts);
    let c = match (s.src, s.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => l4_checksum_v4(a, b, ip_proto::TCP, seg),
        (IpAddr::V6(a), IpAddr::V6(b)) => l4_checksum_v6(a, b, ip_proto::TCP, seg),
        _ => return Err(SegmentError::Frame),
    };
    put16(seg, 16, c);
    Ok(())
}

/// A connection whose SYN went to the real server and whose SYN-ACK is
/// awaited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    /// Which connection (record index and family) — a guard against a
    /// reused record: the client port and a hash of the client address.
    pub fp: u32,
    /// The ISN rvs gave the client (the cookie).
    pub cookie_isn: u32,
    /// The client's ISN.
    pub client_isn: u32,
    /// When the last SYN went to the real server (seconds).
    pub syn_at: u32,
    /// When the handshake started (seconds).
    pub since: u32,
    /// The client's window (unscaled), for the ACK to the real server.
    pub window: u16,
    /// What the cookie carried.
    pub data: CookieData,
    /// SYNs sent again.
    pub retries: u8,
    /// Client segments dropped while waiting.
    pub drops: u8,
}

const EMPTY: u32 = u32::MAX;
/// Slots probed for a key.
const PROBES: usize = 8;
/// Seconds after which a pending handshake is abandoned (its slot may be
/// taken; the connection itself expires by its SYN_RECV timeout).
pub const PENDING_STALE_SECS: u32 = 30;

/// Fixed-capacity table of [`Pending`] handshakes keyed by connection
/// record (`idx | family << 31`).
#[derive(Debug)]
pub struct PendingTable {
    keys: Box<[u32]>,
    vals: Box<[Pending]>,
    mask: usize,
    len: u32,
}

impl PendingTable {
    /// Room for about `slots` handshakes in progress (rounded up to a
    /// power of two, at least [`PROBES`]).
    pub fn new(slots: usize) -> Self {
        let n = slots.max(PROBES).next_power_of_two();
        PendingTable {
            keys: vec![EMPTY; n].into_boxed_slice(),
            vals: vec![Pending::default(); n].into_boxed_slice(),
            mask: n - 1,
            len: 0,
        }
    }

    /// Entries held (stale ones included until they are found or taken).
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no handshake is pending (the established path's one
    /// compare).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, key: u32) -> usize {
        (key.wrapping_mul(0x9e37_79b1) as usize) & self.mask
    }

    fn slot_of(&self, key: u32) -> Option<usize> {
        let h = self.home(key);
        (0..PROBES)
            .map(|i| (h + i) & self.mask)
            .find(|&i| self.keys.get(i) == Some(&key))
    }

    /// The handshake of `key`, if one is pending with fingerprint `fp`
    /// (an entry of a reused record is dropped).
    #[inline]
    pub fn get(&mut self, key: u32, fp: u32) -> Option<Pending> {
        let i = self.slot_of(key)?;
        let v = self.vals.get(i).copied()?;
        if v.fp != fp {
            self.remove(key);
            return None;
        }
        Some(v)
    }

    /// Updates the entry of `key`.
    pub fn update(&mut self, key: u32, p: Pending) {
        if let Some(v) = self.slot_of(key).and_then(|i| self.vals.get_mut(i)) {
            *v = p;
        }
    }

    /// Records a handshake; `false` when every slot of its probe window
    /// holds a live one.
    pub fn insert(&mut self, key: u32, p: Pending, now: u32) -> bool {
        if key == EMPTY {
            return false;
        }
        let h = self.home(key);
        let mut free = None;
        for i in (0..PROBES).map(|i| (h + i) & self.mask) {
            let (Some(&k), Some(v)) = (self.keys.get(i), self.vals.get(i)) else {
                continue;
            };
            if k == key {
                free = Some((i, false));
                break;
            }
            if free.is_none() && k == EMPTY {
                free = Some((i, true));
            } else if free.is_none() && now.wrapping_sub(v.since) > PENDING_STALE_SECS {
                free = Some((i, false));
            }
        }
        let Some((i, fresh)) = free else {
            return false;
        };
        if let (Some(k), Some(v)) = (self.keys.get_mut(i), self.vals.get_mut(i)) {
            *k = key;
            *v = p;
            if fresh {
                self.len += 1;
            }
            return true;
        }
        false
    }

    /// Forgets the handshake of `key`.
    pub fn remove(&mut self, key: u32) {
        if let Some(i) = self.slot_of(key) {
            if let Some(k) = self.keys.get_mut(i) {
                *k = EMPTY;
                self.len = self.len.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests;
