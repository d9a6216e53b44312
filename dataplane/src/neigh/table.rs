//! The fixed-capacity neighbour table and the pool of packets waiting for
//! resolution.
//!
//! The table is open addressing with linear probing over a power-of-two
//! slot array at least twice the capacity (so probe runs stay short), and
//! backward-shift deletion (no tombstones). The wait queues are singly
//! linked lists threaded through one preallocated pool of slots, shared by
//! all neighbours; a neighbour's list head, tail and length live in its
//! entry and move with it. Nothing here allocates after construction.

use crate::wire::ethernet::MacAddr;
use core::net::IpAddr;

/// "No slot" in the packet pool lists.
const NIL: u32 = u32::MAX;

/// The resolution state of a neighbour (RFC 4861 7.3.2, reduced).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighState {
    /// Solicited, no answer yet; packets wait in its queue.
    Incomplete,
    /// Confirmed recently (an answer to our solicitation).
    Reachable,
    /// Usable but not confirmed within the reachable time (or learned
    /// without confirmation); probed again when used.
    Stale,
}

/// Where a neighbour entry's MAC came from (shown by `rvsadm --neigh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NeighOrigin {
    /// Being resolved: no MAC yet.
    Resolving,
    /// An answer to our ARP request or neighbour solicitation.
    Resolved,
    /// A gratuitous ARP (an existing entry updated, or created with
    /// `arp_accept`).
    Garp,
    /// An unsolicited ARP reply accepted with `arp_accept`.
    Unsolicited,
    /// An unsolicited neighbour advertisement with the override flag.
    Advert,
    /// An answer another worker received for a resolution of ours.
    Relayed,
    /// Put in by the program ([`Neigh::insert_static`](super::Neigh::insert_static)).
    Static,
}

impl NeighOrigin {
    /// Lower-case name for listings.
    pub fn name(self) -> &'static str {
        match self {
            NeighOrigin::Resolving => "resolving",
            NeighOrigin::Resolved => "resolved",
            NeighOrigin::Garp => "garp",
            NeighOrigin::Unsolicited => "unsolicited",
            NeighOrigin::Advert => "advert",
            NeighOrigin::Relayed => "relayed",
            NeighOrigin::Static => "static",
        }
    }
}

/// One neighbour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub ip: IpAddr,
    pub port: u16,
    pub mac: MacAddr,
    pub state: NeighState,
    /// When last confirmed reachable (or learned, or created).
    pub confirmed: u64,
    /// When it became stale.
    pub stale_since: u64,
    /// When a solicitation was last asked for, if ever.
    pub last_solicit: Option<u64>,
    /// Solicitations since the last confirmation.
    pub probes: u8,
    /// Where its MAC came from.
    pub origin: NeighOrigin,
    q_head: u32,
    q_tail: u32,
    pub q_len: u32,
}

impl Entry {
    pub(crate) fn new(ip: IpAddr, port: u16, mac: MacAddr, state: NeighState, now: u64) -> Self {
        Entry {
            ip,
            port,
            mac,
            state,
            confirmed: now,
            stale_since: now,
            last_solicit: None,
            probes: 0,
            origin: if state == NeighState::Incomplete {
                NeighOrigin::Resolving
            } else {
                NeighOrigin::Static
            },
            q_head: NIL,
            q_tail: NIL,
            q_len: 0,
        }
    }
}

/// A public, copyable view of one neighbour entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighInfo {
    /// The neighbour's address.
    pub ip: IpAddr,
    /// The port it is reached on.
    pub port: u16,
    /// Its MAC (zero while incomplete).
    pub mac: MacAddr,
    /// Its state.
    pub state: NeighState,
    /// When it was last confirmed (or learned), in the caller's time unit.
    pub confirmed: u64,
    /// Packets waiting for it.
    pub queued: usize,
    /// Where its MAC came from.
    pub origin: NeighOrigin,
}

impl From<&Entry> for NeighInfo {
    fn from(e: &Entry) -> Self {
        NeighInfo {
            ip: e.ip,
            port: e.port,
            mac: e.mac,
            state: e.state,
            confirmed: e.confirmed,
            queued: e.q_len as usize,
            origin: e.origin,
        }
    }
}

/// A slot of the packet pool: a packet and the next slot of its list (or
/// of the free list).
#[derive(Debug)]
struct Node<T> {
    pkt: Option<T>,
    next: u32,
}

/// The hash table of entries plus the packet pool.
#[derive(Debug)]
pub(crate) struct Table<T> {
    slots: Box<[Option<Entry>]>,
    shift: u32,
    len: usize,
    capacity: usize,
    pool: Box<[Node<T>]>,
    free: u32,
    pub queued_total: usize,
    /// Bumped by every access that may change an entry (`get_mut`,
    /// `insert`, `remove`): a copy of an entry taken at generation `g`
    /// is still exact while the generation is `g` (the adjacency cache,
    /// `crate::adj`, relies on it).
    generation: u64,
}

/// Mixes an address and port into 64 bits (multiplicative hashing; the
/// top bits index the slots).
#[inline]
fn hash(ip: IpAddr, port: u16) -> u64 {
    let x = match ip {
        IpAddr::V4(a) => u64::from(u32::from(a)),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ (1 << 63)
        }
    };
    (x ^ (u64::from(port) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl<T> Table<T> {
    /// A table for `capacity` entries (at least 1) and `queue_total`
    /// waiting packets.
    pub fn new(capacity: usize, queue_total: usize) -> Self {
        let capacity = capacity.clamp(1, 1 << 30);
        let nslots = (capacity * 2).next_power_of_two().max(2);
        let shift = 64 - nslots.trailing_zeros();
        let queue_total = queue_total.min((NIL - 1) as usize);
        let pool = (0..queue_total)
            .map(|i| Node {
                pkt: None,
                next: if i + 1 < queue_total {
                    (i + 1) as u32
                } else {
                    NIL
                },
            })
            .collect();
        Table {
            slots: (0..nslots).map(|_| None).collect(),
            shift,
            len: 0,
            capacity,
            pool,
            free: if queue_total > 0 { 0 } else { NIL },
            queued_total: 0,
            generation: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[inline]
    fn home(&self, ip: IpAddr, port: u16) -> usize {
        (hash(ip, port) >> self.shift) as usize & self.mask()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no more entries fit.
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    /// Number of slot positions (for iteration by index).
    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The slot index of (`ip`, `port`).
    #[inline]
    pub fn find(&self, ip: IpAddr, port: u16) -> Option<usize> {
        let mask = self.mask();
        let mut i = self.home(ip, port);
        loop {
            match self.slots.get(i)? {
                None => return None,
                Some(e) if e.ip == ip && e.port == port => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    /// The entry at slot `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&Entry> {
        self.slots.get(i)?.as_ref()
    }

    /// The generation: changes whenever an entry may have changed.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The entry at slot `i`, writable.
    #[inline]
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Entry> {
        self.generation = self.generation.wrapping_add(1);
        self.slots.get_mut(i)?.as_mut()
    }

    /// Inserts a new entry (the caller checked it is absent and the table
    /// not full); returns its slot, or `None` if full.
    pub fn insert(&mut self, e: Entry) -> Option<usize> {
        self.generation = self.generation.wrapping_add(1);
        if self.is_full() {
            return None;
        }
        let mask = self.mask();
        let mut i = self.home(e.ip, e.port);
        for _ in 0..self.slots.len() {
            let s = self.slots.get_mut(i)?;
            if s.is_none() {
                *s = Some(e);
                self.len += 1;
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Removes the entry at slot `i` (its queue must be empty: see
    /// [`pop`](Self::pop)), shifting later entries of its probe run back.
    pub fn remove(&mut self, i: usize) -> Option<Entry> {
        self.generation = self.generation.wrapping_add(1);
        let mask = self.mask();
        let removed = self.slots.get_mut(i)?.take()?;
        self.len -= 1;
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(Some(e)) = self.slots.get(j) else {
                break;
            };
            let h = self.home(e.ip, e.port);
            // Move e into the hole unless its home lies cyclically in
            // (hole, j].
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                let moved = self.slots.get_mut(j).and_then(Option::take);
                if let Some(s) = self.slots.get_mut(hole) {
                    *s = moved;
                }
                hole = j;
            }
        }
        Some(removed)
    }

    /// Appends `pkt` to the queue of the entry at slot `i`; gives it back
    /// if the pool is empty or the entry's queue holds `per_limit`.
    pub fn push(&mut self, i: usize, pkt: T, per_limit: usize) -> Result<(), T> {
        let free = self.free;
        let Some(e) = self.slots.get(i).and_then(Option::as_ref) else {
            return Err(pkt);
        };
        if e.q_len as usize >= per_limit || free == NIL {
            return Err(pkt);
        }
        let tail = e.q_tail;
        let Some(node) = self.pool.get_mut(free as usize) else {
            return Err(pkt);
        };
        self.free = node.next;
        node.pkt = Some(pkt);
        node.next = NIL;
        if let Some(t) = self.pool.get_mut(tail as usize) {
            t.next = free;
        }
        if let Some(e) = self.get_mut(i) {
            if e.q_head == NIL {
                e.q_head = free;
            }
            e.q_tail = free;
            e.q_len += 1;
        }
        self.queued_total += 1;
        Ok(())
    }

    /// Takes the oldest packet queued for the entry at slot `i`.
    pub fn pop(&mut self, i: usize) -> Option<T> {
        let e = self.slots.get(i)?.as_ref()?;
        let head = e.q_head;
        let node = self.pool.get_mut(head as usize)?;
        let pkt = node.pkt.take();
        let next = node.next;
        node.next = self.free;
        self.free = head;
        if let Some(e) = self.get_mut(i) {
            e.q_head = next;
            if next == NIL {
                e.q_tail = NIL;
            }
            e.q_len = e.q_len.saturating_sub(1);
        }
        self.queued_total = self.queued_total.saturating_sub(1);
        pkt
    }

    /// The slot of the entry to evict for a new one: the stale entry with
    /// nothing queued that went stale first. `None` if there is none.
    pub fn eviction_candidate(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i, e)))
            .filter(|(_, e)| e.state == NeighState::Stale && e.q_len == 0)
            .min_by_key(|(_, e)| e.stale_since)
            .map(|(i, _)| i)
    }

    /// Every entry.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().filter_map(Option::as_ref)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn e(n: u32) -> Entry {
        Entry::new(
            IpAddr::V4(Ipv4Addr::from(n)),
            0,
            MacAddr::ZERO,
            NeighState::Stale,
            u64::from(n),
        )
    }

    #[test]
    fn insert_find_remove_many() {
        let mut t: Table<u32> = Table::new(100, 10);
        for n in 0..100 {
            assert!(t.insert(e(n)).is_some());
        }
        assert!(t.is_full());
        assert!(t.insert(e(1000)).is_none());
        // Remove every third, the rest stay findable.
        for n in (0..100).step_by(3) {
            let i = t.find(IpAddr::V4(Ipv4Addr::from(n)), 0).unwrap();
            assert_eq!(t.remove(i).unwrap().ip, IpAddr::V4(Ipv4Addr::from(n)));
        }
        for n in 0..100 {
            let found = t.find(IpAddr::V4(Ipv4Addr::from(n)), 0).is_some();
            assert_eq!(found, n % 3 != 0, "{n}");
            assert!(t.find(IpAddr::V4(Ipv4Addr::from(n)), 1).is_none());
        }
        assert_eq!(t.len(), 66);
        assert_eq!(t.iter().count(), 66);
        // The oldest stale entry is the first to go.
        let i = t.eviction_candidate().unwrap();
        assert_eq!(t.get(i).unwrap().ip, IpAddr::V4(Ipv4Addr::from(1)));
    }

    #[test]
    fn queues_share_the_pool() {
        let mut t: Table<u32> = Table::new(4, 5);
        let a = t.insert(e(1)).unwrap();
        let b = t.insert(e(2)).unwrap();
        assert_eq!(t.push(a, 10, 3), Ok(()));
        assert_eq!(t.push(b, 20, 3), Ok(()));
        assert_eq!(t.push(a, 11, 3), Ok(()));
        assert_eq!(t.push(a, 12, 3), Ok(()));
        assert_eq!(t.push(a, 13, 3), Err(13)); // per-neighbour limit
        assert_eq!(t.push(b, 21, 3), Ok(()));
        assert_eq!(t.push(b, 22, 3), Err(22)); // pool empty
        assert_eq!(t.queued_total, 5);
        assert_eq!(t.pop(a), Some(10));
        assert_eq!(t.push(b, 22, 3), Ok(()));
        assert_eq!((t.pop(a), t.pop(a), t.pop(a)), (Some(11), Some(12), None));
        assert_eq!(t.get(a).unwrap().q_len, 0);
        assert_eq!(t.push(a, 14, 3), Ok(()));
        assert_eq!(t.pop(a), Some(14));
        assert_eq!(
            (t.pop(b), t.pop(b), t.pop(b)),
            (Some(20), Some(21), Some(22))
        );
        assert_eq!(t.pop(b), None);
        assert_eq!(t.queued_total, 0);
        // No pool at all.
        let mut t: Table<u32> = Table::new(1, 0);
        let a = t.insert(e(1)).unwrap();
        assert_eq!(t.push(a, 1, 8), Err(1));
    }
}
