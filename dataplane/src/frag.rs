//! A fixed-capacity fragment table: which flow a fragment belongs to.
//!
//! Only the first fragment of a datagram carries the L4 header (the ports),
//! so the connection (and real server) of the following fragments is
//! remembered from the first, keyed by (source, destination, protocol,
//! identification). rvs does not reassemble: every fragment is forwarded
//! on its own, to the same real server as its first fragment.
//!
//! Behaviour and limits (documented like Katran's non-goals):
//!
//! - A non-first fragment whose first fragment was not seen (never, or so
//!   long ago that its entry expired or was evicted) is a miss,
//!   [`FragMiss::UnknownFirst`]: the caller drops it and counts
//!   `frag_unknown_first`. That includes fragments arriving *before* their
//!   first fragment (reordering): they are not buffered, so the datagram is
//!   lost and the sender retransmits. Buffering would need memory per
//!   datagram and invites fragment floods; IPVS avoids the question by
//!   reassembling in the kernel, Katran drops all fragments.
//! - An entry lives `timeout` after it was last used (first fragment or a
//!   follower); expiry is lazy (on lookup and on insert into a full bucket)
//!   plus [`FragTable::expire`] for a sweep between bursts. The last
//!   fragment does not remove the entry, since fragments may be reordered
//!   among themselves.
//! - The table is set-associative: 4 entries per bucket. Inserting into a
//!   bucket of live entries evicts the least recently used one
//!   ([`FragInsert::Evicted`], worth a counter).
//! - Memory is allocated once, in [`FragTable::new`]; nothing after.
//!   Time is whatever unit the caller uses for `now` and `timeout` (TSC
//!   cycles, milliseconds), consistently.

#![deny(clippy::indexing_slicing)]

use crate::parse::{PacketMeta, L3};
use core::net::IpAddr;

/// Entries per bucket.
const WAYS: usize = 4;

/// What identifies the fragments of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// L4 protocol (IPv6: the next header after the fragment header).
    pub proto: u8,
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub ident: u32,
}

impl FragKey {
    /// The key of a fragment, or `None` if the packet is not a fragment.
    pub fn from_meta(meta: &PacketMeta) -> Option<FragKey> {
        let f = meta.frag?;
        if meta.l3 == L3::Arp {
            return None;
        }
        Some(FragKey {
            src: meta.src,
            dst: meta.dst,
            proto: meta.l4_proto,
            ident: f.ident,
        })
    }

    fn hash(&self, seed: u64) -> u64 {
        fn words(a: IpAddr) -> (u64, u64) {
            match a {
                IpAddr::V4(a) => (u64::from(u32::from(a)), 0x4),
                IpAddr::V6(a) => {
                    let v = u128::from(a);
                    (v as u64, (v >> 64) as u64)
                }
            }
        }
        let (s0, s1) = words(self.src);
        let (d0, d1) = words(self.dst);
        let mut h = seed ^ (u64::from(self.ident) << 8 | u64::from(self.proto));
        for w in [s0, s1, d0, d1] {
            h = mix(h ^ w);
        }
        h
    }
}

/// splitmix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Where a packet stands with respect to fragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragClass {
    /// Not a fragment: look the flow up by its ports as usual.
    Whole,
    /// The first fragment (ports present): look up or create the
    /// connection as usual, then [`FragTable::insert`] what followers need.
    First(FragKey),
    /// A later fragment (no ports): [`FragTable::lookup`].
    NonFirst(FragKey),
}

/// Classifies a parsed packet.
pub fn classify(meta: &PacketMeta) -> FragClass {
    match (FragKey::from_meta(meta), meta.frag) {
        (Some(k), Some(f)) if f.is_first() => FragClass::First(k),
        (Some(k), Some(_)) => FragClass::NonFirst(k),
        _ => FragClass::Whole,
    }
}

/// Why a lookup found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragMiss {
    /// No live entry: the first fragment was never seen, or its entry
    /// expired or was evicted. Drop the fragment and count it.
    UnknownFirst,
}

impl FragMiss {
    /// The stable counter name.
    pub const fn name(self) -> &'static str {
        match self {
            FragMiss::UnknownFirst => "frag_unknown_first",
        }
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FragInsert {
    /// A new entry in a free (or expired) slot.
    New,
    /// The key was there already (a duplicate first fragment): value and
    /// time refreshed.
    Refreshed,
    /// The bucket was full of live entries; the least recently used one
    /// was evicted.
    Evicted,
}

#[derive(Debug, Clone, Copy)]
struct Entry<V> {
    key: FragKey,
    value: V,
    seen: u64,
}

/// Fragment table: [`FragKey`] → `V` (the ports of the flow, the chosen
/// real server, a connection handle: whatever the caller needs to send
/// followers the same way). Fixed capacity, no allocation after
/// [`new`](FragTable::new).
#[derive(Debug, Clone)]
pub struct FragTable<V: Copy> {
    slots: Vec<Option<Entry<V>>>,
    buckets_mask: usize,
    timeout: u64,
    seed: u64,
}

impl<V: Copy> FragTable<V> {
    /// A table for at least `capacity` entries (rounded up to a power of
    /// two, at least 4), whose entries live `timeout` after last use;
    /// `seed` keys the hash (random per process, so senders cannot aim at
    /// a bucket).
    pub fn new(capacity: usize, timeout: u64, seed: u64) -> Self {
        let buckets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        FragTable {
            slots: vec![None; buckets * WAYS],
            buckets_mask: buckets - 1,
            timeout,
            seed,
        }
    }

    /// How many entries fit.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Entries present, live or not yet swept (a scan; for stats and
    /// tests).
    pub fn occupied(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn live(&self, e: &Entry<V>, now: u64) -> bool {
        now.saturating_sub(e.seen) < self.timeout
    }

    fn bucket(&self, key: &FragKey) -> core::ops::Range<usize> {
        let b = (key.hash(self.seed) as usize) & self.buckets_mask;
        b * WAYS..(b + 1) * WAYS
    }

    /// Remembers `value` for the datagram `key` (call on the first
    /// fragment).
    pub fn insert(&mut self, key: FragKey, value: V, now: u64) -> FragInsert {
        let range = self.bucket(&key);
        let timeout = self.timeout;
        let Some(slots) = self.slots.get_mut(range) else {
            return FragInsert::Evicted;
        };
        let new = Entry {
            key,
            value,
            seen: now,
        };
        if let Some(s) = slots
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|e| e.key == key))
        {
            *s = Some(new);
            return FragInsert::Refreshed;
        }
        let live = |s: &Option<Entry<V>>| {
            s.as_ref()
                .is_some_and(|e| now.saturating_sub(e.seen) < timeout)
        };
        if let Some(s) = slots.iter_mut().find(|s| !live(s)) {
            *s = Some(new);
            return FragInsert::New;
        }
        if let Some(s) = slots
            .iter_mut()
            .min_by_key(|s| s.as_ref().map_or(0, |e| e.seen))
        {
            *s = Some(new);
        }
        FragInsert::Evicted
    }

    /// The value remembered for `key` (call on a non-first fragment);
    /// refreshes the entry. An expired entry is removed and missed.
    pub fn lookup(&mut self, key: &FragKey, now: u64) -> Result<V, FragMiss> {
        let range = self.bucket(key);
        let timeout = self.timeout;
        let slots = self.slots.get_mut(range).ok_or(FragMiss::UnknownFirst)?;
        for s in slots.iter_mut() {
            match s {
                Some(e) if e.key == *key => {
                    if now.saturating_sub(e.seen) < timeout {
                        e.seen = now;
                        return Ok(e.value);
                    }
                    *s = None;
                    return Err(FragMiss::UnknownFirst);
                }
                _ => {}
            }
        }
        Err(FragMiss::UnknownFirst)
    }

    /// Forgets `key`; returns its value if it was there (live or not).
    pub fn remove(&mut self, key: &FragKey) -> Option<V> {
        let range = self.bucket(key);
        self.slots
            .get_mut(range)?
            .iter_mut()
            .find(|s| s.as_ref().is_some_and(|e| e.key == *key))
            .and_then(|s| s.take())
            .map(|e| e.value)
    }

    /// Removes every expired entry; returns how many. O(capacity): call it
    /// from a timer, not per packet.
    // bounds: `i` runs over 0..self.slots.len() and the table never changes size.
    #[allow(clippy::indexing_slicing)]
    pub fn expire(&mut self, now: u64) -> usize {
        let mut n = 0;
        for i in 0..self.slots.len() {
            let dead = match &self.slots[i] {
                Some(e) => !self.live(e, now),
                None => false,
            };
            if dead {
                self.slots[i] = None;
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use core::net::Ipv4Addr;

    fn key(i: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)),
            proto: 17,
            ident: i,
        }
    }

    #[test]
    fn first_then_followers() {
        let mut t: FragTable<(u16, u16)> = FragTable::new(16, 100, 7);
        assert_eq!(t.lookup(&key(1), 0), Err(FragMiss::UnknownFirst));
        assert_eq!(t.insert(key(1), (40000, 53), 10), FragInsert::New);
        assert_eq!(t.lookup(&key(1), 20), Ok((40000, 53)));
        assert_eq!(t.lookup(&key(1), 115), Ok((40000, 53)), "refreshed at 20");
        assert_eq!(t.lookup(&key(2), 20), Err(FragMiss::UnknownFirst));
        assert_eq!(t.insert(key(1), (1, 2), 30), FragInsert::Refreshed);
        assert_eq!(t.lookup(&key(1), 31), Ok((1, 2)));
        assert_eq!(t.remove(&key(1)), Some((1, 2)));
        assert_eq!(t.lookup(&key(1), 32), Err(FragMiss::UnknownFirst));
        assert_eq!(FragMiss::UnknownFirst.name(), "frag_unknown_first");
    }

    #[test]
    fn entries_expire() {
        let mut t: FragTable<u8> = FragTable::new(8, 100, 1);
        t.insert(key(1), 1, 0);
        t.insert(key(2), 2, 50);
        assert_eq!(t.lookup(&key(1), 100), Err(FragMiss::UnknownFirst));
        assert_eq!(t.occupied(), 1, "lookup removed the expired entry");
        assert_eq!(t.lookup(&key(2), 149), Ok(2));
        assert_eq!(t.expire(248), 0);
        assert_eq!(t.expire(249), 1);
        assert_eq!(t.occupied(), 0);
    }

    #[test]
    fn capacity_is_fixed_and_lru_evicts() {
        let mut t: FragTable<u32> = FragTable::new(5, 1000, 3);
        assert_eq!(t.capacity(), 8);
        let mut evicted = 0;
        for i in 0..100u32 {
            if t.insert(key(i), i, u64::from(i)) == FragInsert::Evicted {
                evicted += 1;
            }
        }
        assert_eq!(t.occupied(), 8);
        assert_eq!(evicted, 92);
        assert_eq!(t.capacity(), 8);
        // The most recent survives; old ones were evicted.
        assert_eq!(t.lookup(&key(99), 100), Ok(99));
        assert_eq!(t.lookup(&key(0), 100), Err(FragMiss::UnknownFirst));
        // Expired slots are reused without eviction.
        assert_eq!(t.insert(key(500), 500, 5000), FragInsert::New);
    }

    #[test]
    fn classify_fragments() {
        use etherparse::{IpFragOffset, IpNumber, Ipv4Header, PacketBuilder};
        let mk = |offset: u16, more: bool| {
            let mut h =
                Ipv4Header::new(8, 64, IpNumber::UDP, [10, 0, 0, 1], [192, 0, 2, 10]).unwrap();
            h.identification = 0x4242;
            h.more_fragments = more;
            h.fragment_offset = IpFragOffset::try_new(offset).unwrap();
            let mut out = Vec::new();
            PacketBuilder::ethernet2([2; 6], [4; 6])
                .ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
                .write(&mut out, IpNumber::UDP, &[0x9c, 0x40, 0, 53, 0, 8, 0, 0])
                .unwrap();
            parse(&out).unwrap()
        };
        let k = key(0x4242);
        assert_eq!(classify(&mk(0, true)), FragClass::First(k));
        assert_eq!(classify(&mk(3, true)), FragClass::NonFirst(k));
        assert_eq!(classify(&mk(3, false)), FragClass::NonFirst(k));
        assert_eq!(classify(&mk(0, false)), FragClass::Whole);
    }
}
