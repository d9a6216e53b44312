//! A fixed-capacity, 4-way set-associative table keyed by a folded
//! address: the storage of persistence templates and lblc/lblcr entries.
//!
//! Allocated once; lookups and inserts never allocate. A full set evicts
//! its entry with the smallest `stamp` (the oldest or soonest-expiring).

#![deny(clippy::indexing_slicing)]

use super::HashKey;

/// Entries per set (a set of small entries stays within a cache line or
/// two).
const WAYS: usize = 4;

/// One entry.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slot<V> {
    pub(crate) used: bool,
    pub(crate) key: (u64, u64),
    /// Last use or expiry time, in seconds; the eviction order.
    pub(crate) stamp: u32,
    pub(crate) val: V,
}

/// The table.
#[derive(Debug)]
pub(crate) struct Assoc<V> {
    sets: Box<[[Slot<V>; WAYS]]>,
    hkey: HashKey,
}

impl<V: Copy + Default> Assoc<V> {
    /// A table with no capacity (inserts are dropped).
    pub(crate) fn empty() -> Self {
        Self {
            sets: Box::default(),
            hkey: HashKey::new(0, 0),
        }
    }

    /// Room for at least `capacity` entries (power-of-two sets).
    pub(crate) fn new(capacity: usize, hkey: HashKey) -> Self {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        let blank = Slot {
            used: false,
            key: (0, 0),
            stamp: 0,
            val: V::default(),
        };
        Self {
            sets: vec![[blank; WAYS]; sets].into_boxed_slice(),
            hkey,
        }
    }

    /// Entries the table can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    #[inline]
    fn set_mut(&mut self, key: (u64, u64)) -> Option<&mut [Slot<V>; WAYS]> {
        let n = self.sets.len() as u64;
        let i = self.hkey.hash_words(key.0, key.1).checked_rem(n)?;
        self.sets.get_mut(i as usize)
    }

    /// The live entry for `key`, if any.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: (u64, u64)) -> Option<&mut Slot<V>> {
        self.set_mut(key)?
            .iter_mut()
            .find(|s| s.used && s.key == key)
    }

    /// The slot to (over)write for `key`: its own entry, else a free or
    /// `dead` one, else the set's smallest stamp. Returns it marked used
    /// with `key`; the caller sets `stamp` and `val`. The previous content
    /// is returned as well when a live entry of another key was evicted.
    #[inline]
    pub(crate) fn slot_for(
        &mut self,
        key: (u64, u64),
        dead: impl Fn(&Slot<V>) -> bool,
    ) -> Option<(&mut Slot<V>, Option<Slot<V>>)> {
        let set = self.set_mut(key)?;
        let pos = set
            .iter()
            .position(|s| s.used && s.key == key)
            .or_else(|| set.iter().position(|s| !s.used || dead(s)))
            .or_else(|| {
                set.iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.stamp)
                    .map(|(i, _)| i)
            })?;
        let slot = set.get_mut(pos)?;
        let evicted = (slot.used && slot.key != key && !dead(slot)).then_some(*slot);
        if slot.key != key || !slot.used {
            slot.val = V::default();
        }
        slot.used = true;
        slot.key = key;
        Some((slot, evicted))
    }

    /// Every used entry (control-side inspection and tests).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Slot<V>> {
        self.sets.iter().flatten().filter(|s| s.used)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_find_and_evict_oldest() {
        let mut t: Assoc<u32> = Assoc::new(4, HashKey::new(1, 1)); // one set
        assert_eq!(t.capacity(), 4);
        for k in 0..4u64 {
            let (s, ev) = t.slot_for((k, 0), |_| false).unwrap();
            assert!(ev.is_none());
            s.stamp = 10 + k as u32;
            s.val = k as u32;
        }
        // Full: key 4 evicts the smallest stamp (key 0).
        let (s, ev) = t.slot_for((4, 0), |_| false).unwrap();
        assert_eq!(ev.unwrap().key, (0, 0));
        s.stamp = 20;
        assert!(t.get_mut((0, 0)).is_none());
        assert_eq!(t.get_mut((3, 0)).unwrap().val, 3);
        // Dead entries are reused before live ones are evicted.
        let (_, ev) = t.slot_for((5, 0), |s| s.stamp == 12).unwrap();
        assert!(ev.is_none());
        assert!(t.get_mut((2, 0)).is_none());
        assert_eq!(t.iter().count(), 4);
        // An empty table takes nothing.
        let mut e: Assoc<u32> = Assoc::empty();
        assert!(e.slot_for((1, 1), |_| false).is_none());
    }
}
