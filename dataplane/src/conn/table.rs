//! The per-worker connection table (ARCHITECTURE §5).
//!
//! Layout, all allocated once in [`ConnTable::new`]:
//!
//! - `recs`: the records ([`Conn`]), 44 bytes each for IPv4. Free records
//!   are chained through their `next` link (LIFO free list).
//! - `buckets`: the index, 64-byte (one cache line) buckets of 10 entries,
//!   each a 16-bit hash signature and a 32-bit value (record index, top bit
//!   = direction). Each key has two candidate buckets (two-choice hashing);
//!   insert picks the emptier one, lookup probes the first and then the
//!   second. There are `ceil(2 * capacity / 7)` buckets, so a table full
//!   of NAT connections (two entries each) fills 70 % of the entries.
//! - `heads`: the timer wheel, one list head per slot plus one "pending"
//!   list for a slot being drained. Records are on a doubly linked list
//!   through their `next`/`prev` links (a link value is a record index,
//!   `capacity + slot` for a list head, or NIL).
//!
//! Time is a `u32` tick count chosen by the caller (`tick_hz` ticks per
//! second), compared with wrapping arithmetic so it may wrap.
//!
//! Timer invariant: a live record sits in a slot that the wheel reaches at a
//! tick no later than its `expires` (or at the next tick processed, if it is
//! already due). Extending an expiry (a packet refreshing the timeout) only
//! writes `expires`; the wheel re-files the record when it reaches the old
//! slot ("lazy re-filing"). Shortening one (RST → CLOSE) re-files at once.

use core::mem::size_of_val;

use super::seqside::SeqSide;
use crate::flow::{reduce, Family, FlowKey, HashKey, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP};
use crate::forward::ConnSeq;
use crate::mem::{Backing, HugeSlice, TableMem};

use super::record::{Conn, Direction, NewConn, NIL};
use super::state::{tcp_next_state, TcpDir, TcpState, Timeouts, TCP_STATES};

/// Entries in one 64-byte bucket.
pub const BUCKET_ENTRIES: usize = 10;

/// Top bit of an index value: the entry is for the reply direction.
const OUT_BIT: u32 = 1 << 31;
/// Largest capacity (record indices must leave the top bit free and room
/// for the wheel's list heads in the link space).
pub const MAX_CAPACITY: u32 = (1 << 30) - 1;
/// Largest number of wheel slots.
pub const MAX_WHEEL_SLOTS: u32 = 1 << 20;
/// Largest timeout in ticks (so wrapping comparisons stay exact).
const MAX_TIMEOUT_TICKS: u64 = (1 << 30) - 1;

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Bucket {
    val: [u32; BUCKET_ENTRIES],
    sig: [u16; BUCKET_ENTRIES],
    _pad: [u8; 4],
}

const EMPTY_BUCKET: Bucket = Bucket {
    val: [NIL; BUCKET_ENTRIES],
    sig: [0; BUCKET_ENTRIES],
    _pad: [0; 4],
};

/// Index of a record in its table. Valid until the record is removed or
/// expires; a stale index gives `None` from the accessors (or, if the
/// record was reused, another connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordIdx(u32);

impl RecordIdx {
    /// The index as an integer.
    #[inline]
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Why [`ConnTable::insert`] did not insert. On `Full` and `NoSlot` the
/// caller falls back to the stateless hash (both are counted in
/// [`ConnStats::full_fallbacks`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Every record is in use.
    Full,
    /// Both candidate index buckets of a key are full (rare below the
    /// design load).
    NoSlot,
    /// A connection with the same key (in this direction) already exists;
    /// for FullNAT, a local-port clash.
    Exists(Direction),
}

impl core::fmt::Display for InsertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InsertError::Full => f.write_str("connection table full"),
            InsertError::NoSlot => f.write_str("connection index buckets full"),
            InsertError::Exists(d) => write!(f, "connection already exists ({d:?} key)"),
        }
    }
}

impl std::error::Error for InsertError {}

/// Why [`ConnTable::new`] refused a configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `capacity` is 0 or above [`MAX_CAPACITY`].
    Capacity(u32),
    /// `wheel_slots` is not a power of two or above [`MAX_WHEEL_SLOTS`].
    WheelSlots(u32),
    /// `tick_hz` is 0.
    TickHz,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigError::Capacity(c) => write!(f, "conn capacity {c}: must be 1..={MAX_CAPACITY}"),
            ConfigError::WheelSlots(s) => {
                write!(
                    f,
                    "conn wheel_slots {s}: must be 0 (auto) or a power of two <= {MAX_WHEEL_SLOTS}"
                )
            }
            ConfigError::TickHz => f.write_str("conn tick_hz must be at least 1"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Construction parameters of a [`ConnTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnConfig {
    /// Most connections the table holds.
    pub capacity: u32,
    /// Timer-wheel slots (a power of two), 0 for automatic
    /// (`capacity / 4` rounded up to a power of two, within 64..=65536).
    pub wheel_slots: u32,
    /// Ticks per second of the `now` the caller passes.
    pub tick_hz: u32,
    /// Initial timeouts.
    pub timeouts: Timeouts,
    /// Most connections that may carry a TCP sequence adjustment at once
    /// (the side table of [`crate::forward::ConnSeq`], preallocated; 0
    /// disables adjustment).
    pub seq_capacity: u32,
}

impl ConnConfig {
    /// A configuration with `capacity` records, automatic wheel size,
    /// 1-second ticks and IPVS default timeouts.
    pub fn new(capacity: u32) -> Self {
        Self {
            capacity,
            wheel_slots: 0,
            tick_hz: 1,
            timeouts: Timeouts::default(),
            seq_capacity: capacity / 128,
        }
    }
}

/// Per-table counters, written only by the owning worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnStats {
    /// Lookups.
    pub lookups: u64,
    /// Lookups that found a connection.
    pub hits: u64,
    /// Connections inserted.
    pub inserts: u64,
    /// Inserts refused because every record was in use.
    pub insert_full: u64,
    /// Inserts refused because both candidate buckets were full.
    pub insert_no_slot: u64,
    /// Inserts refused because the key already existed.
    pub insert_exists: u64,
    /// Connections removed by the caller.
    pub removes: u64,
    /// Connections expired by the timer wheel.
    pub expirations: u64,
    /// Records the wheel re-filed because their expiry had been extended.
    pub refiles: u64,
    /// Sequence adjustments refused because the side table was full.
    pub seq_full: u64,
}

impl ConnStats {
    /// New flows that fell back to stateless hashing because the table
    /// could not take them.
    pub fn full_fallbacks(&self) -> u64 {
        self.insert_full + self.insert_no_slot
    }
}

/// Whether active/inactive accounting changed with a state transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activity {
    /// No change.
    Unchanged,
    /// Inactive → active: real server's active +1, inactive −1.
    BecameActive,
    /// Active → inactive: real server's active −1, inactive +1.
    BecameInactive,
}

/// Result of [`ConnTable::update_state`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateChange {
    /// State before the packet (`None` for UDP/ICMP).
    pub from: TcpState,
    /// State after the packet.
    pub to: TcpState,
    /// Counter change for the real server.
    pub activity: Activity,
}

/// Timeout slot for UDP in the tick table.
const T_UDP: usize = TCP_STATES;
/// Timeout slot for ICMP in the tick table.
const T_ICMP: usize = TCP_STATES + 1;

/// `a` is strictly before `b` in wrapping tick arithmetic.
#[inline(always)]
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// A per-worker connection table for address family `F`. See the module
/// documentation for the layout.
#[derive(Debug)]
pub struct ConnTable<F: Family> {
    recs: HugeSlice<Conn<F>>,
    buckets: HugeSlice<Bucket>,
    heads: HugeSlice<u32>,
    nbuckets: u32,
    cap: u32,
    slot_mask: u32,
    pending: u32,
    /// Next tick the wheel will process.
    cursor: u32,
    free: u32,
    len: u32,
    key: HashKey,
    tick_hz: u32,
    timeouts: Timeouts,
    ticks: [u32; TCP_STATES + 2],
    stats: ConnStats,
    seqs: SeqSide,
}

impl<F: Family> ConnTable<F> {
    /// A table for `cfg.capacity` connections, with all memory allocated
    /// now. `key` is the process's flow-hash key. The wheel starts at tick
    /// 0; a first `now` far from 0 is fine.
    pub fn new(cfg: &ConnConfig, key: HashKey) -> Result<Self, ConfigError> {
        Self::with_mem(cfg, key, &TableMem::host())
    }

    /// [`ConnTable::new`] with the records, index and wheel allocated from
    /// `mem`: DPDK hugepages, transparent huge pages or ordinary pages, in
    /// that order of preference ([`ConnTable::backing`] says which).
    pub fn with_mem(cfg: &ConnConfig, key: HashKey, mem: &TableMem) -> Result<Self, ConfigError> {
        let cap = cfg.capacity;
        if cap == 0 || cap > MAX_CAPACITY {
            return Err(ConfigError::Capacity(cap));
        }
        if cfg.tick_hz == 0 {
            return Err(ConfigError::TickHz);
        }
        let slots = if cfg.wheel_slots == 0 {
            (cap / 4).clamp(64, 1 << 16).next_power_of_two()
        } else if cfg.wheel_slots.is_power_of_two() && cfg.wheel_slots <= MAX_WHEEL_SLOTS {
            cfg.wheel_slots
        } else {
            return Err(ConfigError::WheelSlots(cfg.wheel_slots));
        };
        let nbuckets = ((u64::from(cap) * 2).div_ceil(7)).max(2) as u32;
        let mut recs = HugeSlice::new(mem, cap as usize, Conn::<F>::EMPTY);
        for (i, r) in recs.iter_mut().enumerate() {
            r.next = if i + 1 < cap as usize {
                i as u32 + 1
            } else {
                NIL
            };
        }
        let mut t = Self {
            recs,
            buckets: HugeSlice::new(mem, nbuckets as usize, EMPTY_BUCKET),
            heads: HugeSlice::new(mem, slots as usize + 1, NIL),
            nbuckets,
            cap,
            slot_mask: slots - 1,
            pending: slots,
            cursor: 0,
            free: 0,
            len: 0,
            key,
            tick_hz: cfg.tick_hz,
            timeouts: cfg.timeouts,
            ticks: [0; TCP_STATES + 2],
            stats: ConnStats::default(),
            seqs: SeqSide::new(cfg.seq_capacity),
        };
        t.set_timeouts(&cfg.timeouts);
        Ok(t)
    }

    /// Replace the timeouts (seconds). Connections pick the new values up
    /// at their next packet, as in IPVS.
    pub fn set_timeouts(&mut self, t: &Timeouts) {
        self.timeouts = *t;
        let hz = u64::from(self.tick_hz);
        let conv = |s: u32| (u64::from(s) * hz).min(MAX_TIMEOUT_TICKS) as u32;
        for (d, s) in self.ticks.iter_mut().zip(t.tcp.iter()) {
            *d = conv(*s);
        }
        if let Some(d) = self.ticks.get_mut(T_UDP) {
            *d = conv(t.udp);
        }
        if let Some(d) = self.ticks.get_mut(T_ICMP) {
            *d = conv(t.icmp);
        }
    }

    /// The timeouts in force (seconds).
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// Most connections the table holds.
    pub fn capacity(&self) -> u32 {
        self.cap
    }

    /// Connections in the table.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether the table holds no connection.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The counters.
    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// Bytes allocated by the table (records, index, wheel); constant after
    /// construction.
    pub fn memory_bytes(&self) -> usize {
        size_of_val(&*self.recs)
            + size_of_val(&*self.buckets)
            + size_of_val(&*self.heads)
            + self.seqs.memory_bytes()
    }

    /// Where the records and the index live (the less huge of the two; the
    /// wheel is small).
    pub fn backing(&self) -> Backing {
        self.recs.backing().min(self.buckets.backing())
    }

    /// Number of index buckets.
    pub fn buckets(&self) -> u32 {
        self.nbuckets
    }

    /// Number of timer-wheel slots.
    pub fn wheel_slots(&self) -> u32 {
        self.slot_mask + 1
    }

    /// The flow-table hash of `key` (keyed with this table's key).
    #[inline(always)]
    pub fn hash(&self, key: &FlowKey<F>) -> u64 {
        key.hash(&self.key)
    }

    #[inline(always)]
    fn candidates(&self, h: u64) -> (usize, usize, u16) {
        let b1 = reduce(h, self.nbuckets) as usize;
        let b2 = reduce(h << 32, self.nbuckets) as usize;
        // Never 0: empty entries have signature 0 and never match.
        let sig = ((h as u16) ^ ((h >> 32) as u16)).max(1);
        (b1, b2, sig)
    }

    /// The first bucket a lookup of a key with hash `hash` reads, so a
    /// burst loop can touch it ahead of time (the second candidate,
    /// [`ConnTable::bucket_indices`], is read only on a miss in the first).
    #[inline(always)]
    pub fn bucket_index(&self, hash: u64) -> usize {
        reduce(hash, self.nbuckets) as usize
    }

    /// Both candidate buckets of a key with hash `hash`.
    #[inline(always)]
    pub fn bucket_indices(&self, hash: u64) -> [usize; 2] {
        let (b1, b2, _) = self.candidates(hash);
        [b1, b2]
    }

    /// Prefetches the first candidate bucket of a key with hash `hash`
    /// (stage 1 of the burst loop). Only a hint: nothing is read.
    #[inline(always)]
    pub fn prefetch_bucket(&self, hash: u64) {
        if let Some(b) = self.buckets.get(self.bucket_index(hash)) {
            crate::dpdk::prefetch::prefetch(b);
        }
    }

    /// Prefetches the record the first signature match in the first
    /// candidate bucket points to (stage 2 of the burst loop, after
    /// [`ConnTable::prefetch_bucket`] brought the bucket in). A hint only:
    /// the lookup that follows checks the key; a stale or wrong guess
    /// costs a wasted line, never a wrong answer.
    ///
    /// Returns the bucket value it followed ([`ConnTable::NO_CANDIDATE`]
    /// if none), for [`ConnTable::lookup_candidate`].
    #[inline(always)]
    pub fn prefetch_record(&self, hash: u64) -> u32 {
        let (b1, _, sig) = self.candidates(hash);
        let Some(bucket) = self.buckets.get(b1) else {
            return Self::NO_CANDIDATE;
        };
        let mut m = 0u32;
        for (i, s) in bucket.sig.iter().enumerate() {
            m |= u32::from(*s == sig) << i;
        }
        if m == 0 {
            return Self::NO_CANDIDATE;
        }
        let i = m.trailing_zeros() as usize;
        if let Some(&v) = bucket.val.get(i) {
            if let Some(c) = self.recs.get((v & !OUT_BIT) as usize) {
                crate::dpdk::prefetch::prefetch_all(c);
                return v;
            }
        }
        Self::NO_CANDIDATE
    }

    /// No candidate ([`ConnTable::prefetch_record`] found no signature).
    pub const NO_CANDIDATE: u32 = NIL;

    /// [`ConnTable::lookup_hashed`] given the candidate
    /// [`ConnTable::prefetch_record`] returned for the same hash, maybe
    /// several table changes ago: if that record is live and is `key`'s in
    /// the direction it names, it is the answer (a key belongs to one
    /// live connection at most: insert refuses a second), without reading
    /// the bucket again; otherwise the full lookup. The same answer and
    /// statistics as `lookup_hashed`.
    #[inline(always)]
    pub fn lookup_candidate(
        &mut self,
        key: &FlowKey<F>,
        hash: u64,
        cand: u32,
    ) -> Option<(RecordIdx, Direction)> {
        if cand != Self::NO_CANDIDATE {
            let r = cand & !OUT_BIT;
            let dir = if cand & OUT_BIT != 0 {
                Direction::Out
            } else {
                Direction::In
            };
            if let Some(c) = self.recs.get(r as usize) {
                if c.is_live() && c.matches(key, dir) {
                    self.stats.lookups += 1;
                    self.stats.hits += 1;
                    return Some((RecordIdx(r), dir));
                }
            }
        }
        self.lookup_hashed(key, hash)
    }

    #[inline(always)]
    fn probe(&self, b: usize, sig: u16, key: &FlowKey<F>) -> Option<(RecordIdx, Direction)> {
        let bucket = self.buckets.get(b)?;
        // Branch-free signature compare (vectorises), then visit matches.
        let mut m = 0u32;
        for (i, s) in bucket.sig.iter().enumerate() {
            m |= u32::from(*s == sig) << i;
        }
        while m != 0 {
            let i = m.trailing_zeros() as usize;
            m &= m - 1;
            let Some(&v) = bucket.val.get(i) else { break };
            let r = v & !OUT_BIT;
            let dir = if v & OUT_BIT != 0 {
                Direction::Out
            } else {
                Direction::In
            };
            if let Some(c) = self.recs.get(r as usize) {
                if c.matches(key, dir) {
                    return Some((RecordIdx(r), dir));
                }
            }
        }
        None
    }

    #[inline(always)]
    fn find(&self, key: &FlowKey<F>, h: u64) -> Option<(RecordIdx, Direction)> {
        let (b1, b2, sig) = self.candidates(h);
        match self.probe(b1, sig, key) {
            Some(x) => Some(x),
            None if b2 != b1 => self.probe(b2, sig, key),
            None => None,
        }
    }

    /// Look a packet's key up: the connection and which of its directions
    /// the packet travels.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey<F>) -> Option<(RecordIdx, Direction)> {
        let h = self.hash(key);
        self.lookup_hashed(key, h)
    }

    /// [`ConnTable::lookup`] with the hash already computed by
    /// [`ConnTable::hash`].
    #[inline]
    pub fn lookup_hashed(&mut self, key: &FlowKey<F>, hash: u64) -> Option<(RecordIdx, Direction)> {
        self.stats.lookups += 1;
        let r = self.find(key, hash);
        if r.is_some() {
            self.stats.hits += 1;
        }
        r
    }

    /// The connection at `idx`, if live.
    #[inline]
    pub fn get(&self, idx: RecordIdx) -> Option<&Conn<F>> {
        self.recs.get(idx.0 as usize).filter(|c| c.is_live())
    }

    /// The connection at `idx`, if live, for [`Conn::set_rs`] /
    /// [`Conn::set_svc`].
    #[inline]
    pub fn get_mut(&mut self, idx: RecordIdx) -> Option<&mut Conn<F>> {
        self.recs.get_mut(idx.0 as usize).filter(|c| c.is_live())
    }

    /// Live connections, in record order (for listings and flushes; not
    /// for the packet path).
    pub fn iter(&self) -> impl Iterator<Item = (RecordIdx, &Conn<F>)> + '_ {
        self.recs
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_live())
            .map(|(i, c)| (RecordIdx(i as u32), c))
    }

    fn index_add(&mut self, h: u64, val: u32) -> bool {
        let (b1, b2, sig) = self.candidates(h);
        let free_in = |b: &Bucket| b.val.iter().filter(|&&v| v == NIL).count();
        let (n1, n2) = match (self.buckets.get(b1), self.buckets.get(b2)) {
            (Some(x), Some(y)) => (free_in(x), free_in(y)),
            _ => return false,
        };
        let b = if n2 > n1 { b2 } else { b1 };
        let Some(bucket) = self.buckets.get_mut(b) else {
            return false;
        };
        for (v, s) in bucket.val.iter_mut().zip(bucket.sig.iter_mut()) {
            if *v == NIL {
                *v = val;
                *s = sig;
                return true;
            }
        }
        false
    }

    fn index_del(&mut self, h: u64, val: u32) {
        let (b1, b2, _) = self.candidates(h);
        for b in [b1, b2] {
            if let Some(bucket) = self.buckets.get_mut(b) {
                for (v, s) in bucket.val.iter_mut().zip(bucket.sig.iter_mut()) {
                    if *v == val {
                        *v = NIL;
                        *s = 0;
                        return;
                    }
                }
            }
        }
    }

    // ---- timer-wheel lists -------------------------------------------

    #[inline]
    fn set_next(&mut self, link: u32, v: u32) {
        if link >= self.cap {
            if let Some(h) = self.heads.get_mut((link - self.cap) as usize) {
                *h = v;
            }
        } else if let Some(r) = self.recs.get_mut(link as usize) {
            r.next = v;
        }
    }

    #[inline]
    fn set_prev(&mut self, r: u32, v: u32) {
        if let Some(c) = self.recs.get_mut(r as usize) {
            c.prev = v;
        }
    }

    fn unlink(&mut self, r: u32) {
        let Some(c) = self.recs.get(r as usize) else {
            return;
        };
        let (p, n) = (c.prev, c.next);
        if p == NIL {
            return;
        }
        self.set_next(p, n);
        if n != NIL {
            self.set_prev(n, p);
        }
    }

    fn push(&mut self, list: u32, r: u32) {
        let Some(&head) = self.heads.get(list as usize) else {
            return;
        };
        let sentinel = self.cap + list;
        if let Some(c) = self.recs.get_mut(r as usize) {
            c.next = head;
            c.prev = sentinel;
        }
        if head != NIL {
            self.set_prev(head, r);
        }
        if let Some(h) = self.heads.get_mut(list as usize) {
            *h = r;
        }
    }

    /// File live record `r` in the wheel for expiry tick `e`.
    fn file(&mut self, r: u32, e: u32) {
        let t = if before(e, self.cursor) {
            self.cursor
        } else {
            e
        };
        self.push(t & self.slot_mask, r);
    }

    #[inline]
    fn timeout_ticks(&self, c: &Conn<F>) -> u32 {
        match c.proto {
            IPPROTO_TCP => self.ticks.get(c.tcp_state() as usize),
            IPPROTO_ICMP | IPPROTO_ICMPV6 => self.ticks.get(T_ICMP),
            _ => self.ticks.get(T_UDP),
        }
        // the array holds every TCP state plus UDP and ICMP
        .copied()
        .unwrap_or(0)
    }

    /// Set the expiry of live record `r`: lazily when later than before,
    /// re-filing at once when earlier.
    fn set_expiry(&mut self, r: u32, e: u32) {
        let Some(c) = self.recs.get_mut(r as usize) else {
            return;
        };
        let old = c.expires;
        c.expires = e;
        if before(e, old) {
            self.unlink(r);
            self.file(r, e);
        }
    }

    // ---- packet-path operations --------------------------------------

    /// Create a connection: in state NONE (TCP), counted inactive, with
    /// the NONE (or UDP/ICMP) timeout from `now`. Both directions are
    /// indexed for NAT and FullNAT, the client→VIP one for DR and TUN.
    /// The caller then runs [`ConnTable::update_state`] for the packet that
    /// created it, as IPVS does.
    pub fn insert(&mut self, new: &NewConn<F>, now: u32) -> Result<RecordIdx, InsertError> {
        let in_key = new.in_key();
        let hin = self.hash(&in_key);
        if self.find(&in_key, hin).is_some() {
            self.stats.insert_exists += 1;
            return Err(InsertError::Exists(Direction::In));
        }
        let out = new.out_key().map(|k| (k, self.hash(&k)));
        if let Some((k, h)) = out {
            if k == in_key || self.find(&k, h).is_some() {
                self.stats.insert_exists += 1;
                return Err(InsertError::Exists(Direction::Out));
            }
        }
        let r = self.free;
        if r == NIL {
            self.stats.insert_full += 1;
            return Err(InsertError::Full);
        }
        if !self.index_add(hin, r) {
            self.stats.insert_no_slot += 1;
            return Err(InsertError::NoSlot);
        }
        if let Some((_, h)) = out {
            if !self.index_add(h, r | OUT_BIT) {
                self.index_del(hin, r);
                self.stats.insert_no_slot += 1;
                return Err(InsertError::NoSlot);
            }
        }
        let mut c = Conn::from_new(new);
        c.set_state(TcpState::None);
        let e = now.wrapping_add(self.timeout_ticks(&c));
        c.expires = e;
        let Some(slot) = self.recs.get_mut(r as usize) else {
            return Err(InsertError::Full);
        };
        self.free = slot.next;
        *slot = c;
        self.file(r, e);
        self.len += 1;
        self.stats.inserts += 1;
        Ok(RecordIdx(r))
    }

    /// Unindex, unlink and free live record `r`; returns its contents.
    fn release(&mut self, r: u32) -> Option<Conn<F>> {
        let c = *self.recs.get(r as usize).filter(|c| c.is_live())?;
        let hin = self.hash(&c.in_key());
        self.index_del(hin, r);
        if let Some(k) = c.out_key() {
            let h = self.hash(&k);
            self.index_del(h, r | OUT_BIT);
        }
        self.unlink(r);
        self.seqs.remove(r);
        let free = self.free;
        if let Some(slot) = self.recs.get_mut(r as usize) {
            slot.prev = NIL;
            slot.next = free;
        }
        self.free = r;
        self.len -= 1;
        Some(c)
    }

    /// The TCP sequence adjustment of a live connection, if it has one
    /// (one compare when no connection has one).
    #[inline]
    pub fn seq_adj(&self, idx: RecordIdx) -> Option<&ConnSeq> {
        self.seqs.get(idx.0)
    }

    /// Sets (or replaces) the sequence adjustment of live connection
    /// `idx`. `false` (counted in [`ConnStats::seq_full`]) when the side
    /// table is full; `false` uncounted when `idx` is not live.
    pub fn set_seq_adj(&mut self, idx: RecordIdx, s: ConnSeq) -> bool {
        if !self.recs.get(idx.0 as usize).is_some_and(|c| c.is_live()) {
            return false;
        }
        let ok = self.seqs.set(idx.0, s);
        if !ok {
            self.stats.seq_full += 1;
        }
        ok
    }

    /// Counts an adjustment refused for want of room (a caller that
    /// checked [`ConnTable::seq_adj_usage`] first).
    pub fn count_seq_full(&mut self) {
        self.stats.seq_full += 1;
    }

    /// Connections that carry a sequence adjustment, and the most that may.
    pub fn seq_adj_usage(&self) -> (u32, u32) {
        (self.seqs.len(), self.seqs.capacity())
    }

    /// Remove a connection now; returns what it held (for the caller's
    /// per-server counters), `None` if `idx` was not live.
    pub fn remove(&mut self, idx: RecordIdx) -> Option<Conn<F>> {
        let c = self.release(idx.0)?;
        self.stats.removes += 1;
        Some(c)
    }

    /// Refresh the expiry of a connection to `now` + its state's timeout
    /// without a state change (UDP/ICMP packets, or TCP segments the caller
    /// does not run through the state machine). `false` if not live.
    pub fn touch(&mut self, idx: RecordIdx, now: u32) -> bool {
        let Some(c) = self.get(idx) else { return false };
        let e = now.wrapping_add(self.timeout_ticks(c));
        self.set_expiry(idx.0, e);
        true
    }

    /// [`ConnTable::update_state`] for the commonest segment, inline: a
    /// TCP segment with ACK and without SYN, FIN or RST on an ESTABLISHED
    /// connection, which every table of the state machine keeps
    /// ESTABLISHED (so the activity is unchanged). It clears NOOUTPUT on a
    /// reply and refreshes the expiry exactly as `update_state` does, and
    /// returns `true`; for anything else it changes nothing and returns
    /// `false` (call `update_state`).
    #[inline(always)]
    pub fn refresh_established(
        &mut self,
        idx: RecordIdx,
        tcp_flags: u8,
        dir: Direction,
        now: u32,
    ) -> bool {
        const MASK: u8 = 0x01 | 0x02 | 0x04 | 0x10; // FIN SYN RST ACK
        if tcp_flags & MASK != 0x10 {
            return false;
        }
        let es = self
            .ticks
            .get(TcpState::Established as usize)
            .copied()
            .unwrap_or(0);
        let r = idx.0;
        let Some(c) = self.recs.get_mut(r as usize) else {
            return false;
        };
        if c.meta & super::record::META_STATE != TcpState::Established as u8
            || c.proto != IPPROTO_TCP
            || !c.is_live()
        {
            return false;
        }
        if dir == Direction::Out {
            c.meta &= !super::record::META_NOOUTPUT;
        }
        let e = now.wrapping_add(es);
        let old = c.expires;
        c.expires = e;
        if before(e, old) {
            self.unlink(r);
            self.file(r, e);
        }
        true
    }

    /// Run IPVS's TCP state machine for a segment with header flags
    /// `tcp_flags` travelling in `dir`, and refresh the expiry with the new
    /// state's timeout. The input-only table is used while no reply has
    /// been seen (DR/TUN always), and the first reply clears that, as with
    /// IPVS's NOOUTPUT flag. UDP/ICMP entries are just refreshed. `None` if
    /// `idx` is not live.
    pub fn update_state(
        &mut self,
        idx: RecordIdx,
        tcp_flags: u8,
        dir: Direction,
        now: u32,
    ) -> Option<StateChange> {
        let r = idx.0;
        let c = self.recs.get_mut(r as usize).filter(|c| c.is_live())?;
        let from = c.tcp_state();
        let mut change = StateChange {
            from,
            to: from,
            activity: Activity::Unchanged,
        };
        if c.proto == IPPROTO_TCP {
            let mut tdir = match dir {
                Direction::In => TcpDir::Input,
                Direction::Out => TcpDir::Output,
            };
            if c.no_output() {
                if dir == Direction::Out {
                    c.meta &= !super::record::META_NOOUTPUT;
                } else {
                    tdir = TcpDir::InputOnly;
                }
            }
            let to = tcp_next_state(from, tdir, tcp_flags);
            if to != from {
                if c.is_active() && !to.is_active() {
                    c.meta |= super::record::META_INACTIVE;
                    change.activity = Activity::BecameInactive;
                } else if !c.is_active() && to.is_active() {
                    c.meta &= !super::record::META_INACTIVE;
                    change.activity = Activity::BecameActive;
                }
                c.set_state(to);
            }
            change.to = to;
        }
        // The state's timeout, then the expiry as `set_expiry` sets it,
        // without copying the record.
        let t = match c.proto {
            IPPROTO_TCP => self.ticks.get(c.tcp_state() as usize),
            IPPROTO_ICMP | IPPROTO_ICMPV6 => self.ticks.get(T_ICMP),
            _ => self.ticks.get(T_UDP),
        }
        .copied()
        .unwrap_or(0);
        let e = now.wrapping_add(t);
        let old = c.expires;
        c.expires = e;
        if before(e, old) {
            self.unlink(r);
            self.file(r, e);
        }
        Some(change)
    }

    /// Give a connection the state a sync message carries (HA backup):
    /// state `to` (TCP; ignored for UDP/ICMP), the reply-not-seen flag,
    /// active/inactive accounting as [`ConnTable::update_state`] reports
    /// it, and an expiry `timeout_s` seconds from `now` (the state's own
    /// timeout when 0, as IPVS's backup does). `None` if not live.
    pub fn set_synced_state(
        &mut self,
        idx: RecordIdx,
        to: TcpState,
        no_output: bool,
        timeout_s: u32,
        now: u32,
    ) -> Option<StateChange> {
        let r = idx.0;
        let c = self.recs.get_mut(r as usize).filter(|c| c.is_live())?;
        let from = c.tcp_state();
        let mut change = StateChange {
            from,
            to: from,
            activity: Activity::Unchanged,
        };
        if c.proto == IPPROTO_TCP {
            if c.is_active() && !to.is_active() {
                c.meta |= super::record::META_INACTIVE;
                change.activity = Activity::BecameInactive;
            } else if !c.is_active() && to.is_active() {
                c.meta &= !super::record::META_INACTIVE;
                change.activity = Activity::BecameActive;
            }
            c.set_state(to);
            change.to = to;
        }
        if no_output {
            c.meta |= super::record::META_NOOUTPUT;
        } else if c.fwd().sees_replies() {
            c.meta &= !super::record::META_NOOUTPUT;
        }
        let c = *c;
        let ticks = if timeout_s == 0 {
            self.timeout_ticks(&c)
        } else {
            (u64::from(timeout_s) * u64::from(self.tick_hz)).min(MAX_TIMEOUT_TICKS) as u32
        };
        let e = now.wrapping_add(ticks);
        let old = c.expires;
        if let Some(rec) = self.recs.get_mut(r as usize) {
            rec.expires = e;
        }
        if e != old {
            self.unlink(r);
            self.file(r, e);
        }
        Some(change)
    }

    /// Expire connections due at `now`, visiting at most `budget` records
    /// (expired or re-filed) and at most one wheel turn of slots. Each
    /// expired connection is passed to `on_expire` (to update per-server
    /// counters) and then freed. Returns the number expired. Call it
    /// between bursts; leftover work carries over to the next call.
    pub fn expire<V>(&mut self, now: u32, budget: usize, mut on_expire: V) -> usize
    where
        V: FnMut(RecordIdx, &Conn<F>),
    {
        let slots = self.slot_mask.wrapping_add(1);
        // Far behind: one turn of the wheel visits every slot.
        if now.wrapping_sub(self.cursor) >= slots && !before(now, self.cursor) {
            self.cursor = now.wrapping_sub(slots).wrapping_add(1);
        }
        let mut work = 0usize;
        let mut expired = 0usize;
        while work < budget {
            let head = self
                .heads
                .get(self.pending as usize)
                .copied()
                .unwrap_or(NIL);
            if head == NIL {
                if before(now, self.cursor) {
                    break;
                }
                // Move the cursor's slot to the pending list and drain it.
                let s = (self.cursor & self.slot_mask) as usize;
                let list = self.heads.get(s).copied().unwrap_or(NIL);
                if let Some(h) = self.heads.get_mut(s) {
                    *h = NIL;
                }
                if let Some(h) = self.heads.get_mut(self.pending as usize) {
                    *h = list;
                }
                if list != NIL {
                    let sentinel = self.cap + self.pending;
                    self.set_prev(list, sentinel);
                }
                self.cursor = self.cursor.wrapping_add(1);
                continue;
            }
            work += 1;
            let Some(c) = self.recs.get(head as usize).copied() else {
                break;
            };
            if before(now, c.expires) {
                self.unlink(head);
                self.file(head, c.expires);
                self.stats.refiles += 1;
            } else {
                on_expire(RecordIdx(head), &c);
                self.release(head);
                self.stats.expirations += 1;
                expired += 1;
            }
        }
        expired
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // tests may index
mod tests;
