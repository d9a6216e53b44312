//! The side table of sequence-adjusted connections.
//!
//! Connection records are sized for the cache (44 B for IPv4, see the
//! table's B/slot tests) and almost no connection carries a TCP sequence
//! delta, so the 24-byte [`ConnSeq`] does not live in the record. It lives
//! here, keyed by record index, in a fixed-capacity open-addressing table
//! (linear probing, backward-shift deletion: no tombstones) allocated once
//! when the connection table is built. The connection table removes the
//! entry when it frees the record, so a reused record never inherits a
//! stale delta. When the side table is empty — every deployment that uses
//! no feature needing adjustment — a lookup is one compare.
//!
//! Full: the insert is refused and the caller counts it (the connection
//! then cannot be adjusted; the feature that wanted the delta must not
//! change the stream).

use crate::forward::ConnSeq;

const EMPTY: u32 = u32::MAX;

/// Fixed-capacity map from record index to [`ConnSeq`].
#[derive(Debug)]
pub(crate) struct SeqSide {
    keys: Box<[u32]>,
    vals: Box<[ConnSeq]>,
    mask: usize,
    len: u32,
    max: u32,
}

impl SeqSide {
    /// Room for `max` adjusted connections (0 disables the table). Slots
    /// are a power of two at least `max * 4 / 3` so probes stay short.
    pub(crate) fn new(max: u32) -> Self {
        let slots = if max == 0 {
            1
        } else {
            (u64::from(max) * 4 / 3 + 1).next_power_of_two() as usize
        };
        SeqSide {
            keys: vec![EMPTY; slots].into_boxed_slice(),
            vals: vec![ConnSeq::default(); slots].into_boxed_slice(),
            mask: slots - 1,
            len: 0,
            max,
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> u32 {
        self.len
    }

    /// Most entries it takes.
    pub(crate) fn capacity(&self) -> u32 {
        self.max
    }

    /// Bytes of preallocated storage.
    pub(crate) fn memory_bytes(&self) -> usize {
        core::mem::size_of_val(&*self.keys) + core::mem::size_of_val(&*self.vals)
    }

    #[inline]
    fn home(&self, r: u32) -> usize {
        // Record indices are dense; a multiplicative spread keeps runs of
        // neighbours from clustering.
        (r.wrapping_mul(0x9e37_79b1) as usize) & self.mask
    }

    fn slot_of(&self, r: u32) -> Option<usize> {
        let mut i = self.home(r);
        for _ in 0..=self.mask {
            match self.keys.get(i).copied() {
                Some(k) if k == r => return Some(i),
                Some(EMPTY) | None => return None,
                _ => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// The adjustment of record `r`, if it has one.
    #[inline]
    pub(crate) fn get(&self, r: u32) -> Option<&ConnSeq> {
        if self.len == 0 {
            return None;
        }
        self.slot_of(r).and_then(|i| self.vals.get(i))
    }

    /// Sets (or replaces) the adjustment of record `r`; `false` when the
    /// table is full (nothing changed).
    pub(crate) fn set(&mut self, r: u32, s: ConnSeq) -> bool {
        if r == EMPTY {
            return false;
        }
        if let Some(i) = self.slot_of(r) {
            if let Some(v) = self.vals.get_mut(i) {
                *v = s;
            }
            return true;
        }
        if self.len >= self.max {
            return false;
        }
        let mut i = self.home(r);
        loop {
            match self.keys.get(i).copied() {
                Some(EMPTY) => break,
                Some(_) => i = (i + 1) & self.mask,
                None => return false,
            }
        }
        if let (Some(k), Some(v)) = (self.keys.get_mut(i), self.vals.get_mut(i)) {
            *k = r;
            *v = s;
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// Removes the adjustment of record `r` (no-op without one).
    pub(crate) fn remove(&mut self, r: u32) {
        if self.len == 0 {
            return;
        }
        let Some(mut hole) = self.slot_of(r) else {
            return;
        };
        // Backward-shift: pull later members of the probe run into the
        // hole when their home does not lie strictly between hole and them.
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let k = match self.keys.get(j).copied() {
                Some(EMPTY) | None => break,
                Some(k) => k,
            };
            let h = self.home(k);
            let between = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !between {
                let v = self.vals.get(j).copied().unwrap_or_default();
                if let (Some(kh), Some(vh)) = (self.keys.get_mut(hole), self.vals.get_mut(hole)) {
                    *kh = k;
                    *vh = v;
                }
                hole = j;
            }
        }
        if let Some(kh) = self.keys.get_mut(hole) {
            *kh = EMPTY;
        }
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::SeqAdj;
    use std::collections::HashMap;

    fn cs(n: u32) -> ConnSeq {
        ConnSeq {
            in_seq: SeqAdj {
                init_seq: n,
                delta: n ^ 0x55,
                previous_delta: 1,
            },
            out_seq: SeqAdj::default(),
        }
    }

    #[test]
    fn empty_table_finds_nothing_and_disabled_refuses() {
        let t = SeqSide::new(16);
        assert_eq!(t.get(0), None);
        let mut off = SeqSide::new(0);
        assert!(!off.set(1, cs(1)));
        assert_eq!(off.get(1), None);
    }

    #[test]
    fn set_replace_remove_and_full() {
        let mut t = SeqSide::new(4);
        for r in 0..4 {
            assert!(t.set(r * 7, cs(r)));
        }
        assert!(!t.set(99, cs(99)), "full");
        assert!(t.set(7, cs(70)), "replace works when full");
        assert_eq!(t.get(7), Some(&cs(70)));
        t.remove(7);
        assert_eq!(t.get(7), None);
        assert_eq!(t.len(), 3);
        assert!(t.set(99, cs(99)));
        assert_eq!(t.get(99), Some(&cs(99)));
    }

    #[test]
    fn matches_a_model_under_random_churn() {
        let mut t = SeqSide::new(200);
        let mut m: HashMap<u32, ConnSeq> = HashMap::new();
        let mut x: u64 = 0x1234_5678;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let r = (x % 600) as u32;
            if x & 0x100 == 0 {
                let ok = t.set(r, cs(r.wrapping_add(x as u32)));
                if ok {
                    m.insert(r, cs(r.wrapping_add(x as u32)));
                } else {
                    assert_eq!(m.len(), 200);
                    assert!(!m.contains_key(&r));
                }
            } else {
                t.remove(r);
                m.remove(&r);
            }
            assert_eq!(t.len() as usize, m.len());
        }
        for r in 0..600 {
            assert_eq!(t.get(r), m.get(&r), "record {r}");
        }
    }
}
