//! lblc and lblcr: per-worker caches from destination address to real
//! server(s), bounded, expiring after the service's `locality_expire_s`
//! (IPVS sysctls `lblc_expiration` / `lblcr_expiration`, 24 h).

#![deny(clippy::indexing_slicing)]

use std::net::IpAddr;

use super::algo::weighted_least;
use super::assoc::Assoc;
use super::hash::addr_words;
use super::{HashKey, RealId, RealServer, ServiceSched};

/// IPVS `is_overloaded` of lblc/lblcr: more active connections than its
/// weight while some server is below half its weight.
fn lb_overloaded(dest: &RealServer, reals: &[RealServer]) -> bool {
    u64::from(dest.counters.active()) > u64::from(dest.weight)
        && reals
            .iter()
            .any(|d| u64::from(d.counters.active()) * 2 < u64::from(d.weight))
}

/// `__ip_vs_lblc_schedule`: wlc over all servers.
fn schedule(reals: &[RealServer]) -> Option<usize> {
    weighted_least(reals.iter().enumerate(), |r| r.counters.overhead())
}

fn expired(stamp: u32, now: u32, expire: u32) -> bool {
    now.saturating_sub(stamp) > expire
}

/// lblc: one server per destination address.
#[derive(Debug)]
pub(crate) struct LblcTable {
    table: Assoc<u32>,
}

impl LblcTable {
    pub(crate) fn empty() -> Self {
        Self {
            table: Assoc::empty(),
        }
    }

    pub(crate) fn new(capacity: usize, key: HashKey) -> Self {
        Self {
            table: Assoc::new(capacity, key),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// `ip_vs_lblc_schedule`: the cached server if it has weight > 0 and
    /// is not lblc-overloaded (IPVS does not look at the threshold flag
    /// here), else wlc, cached.
    pub(crate) fn pick(&mut self, svc: &ServiceSched, daddr: IpAddr, now: u32) -> Option<usize> {
        let reals = svc.reals();
        let expire = svc.config().locality_expire_s;
        let key = addr_words(daddr);
        if let Some(s) = self.table.get_mut(key) {
            if !expired(s.stamp, now, expire) {
                s.stamp = now;
                if let Some(i) = svc.index_of(RealId(s.val)) {
                    if reals
                        .get(i)
                        .is_some_and(|d| d.weight > 0 && !lb_overloaded(d, reals))
                    {
                        return Some(i);
                    }
                }
            }
        }
        let i = schedule(reals)?;
        let id = reals.get(i)?.id;
        if let Some((s, _)) = self.table.slot_for(key, |s| expired(s.stamp, now, expire)) {
            s.val = id.0;
            s.stamp = now;
        }
        Some(i)
    }
}

/// Servers one lblcr entry may hold (IPVS's set is unbounded; a
/// destination rarely needs more than a few).
pub(crate) const SET_MAX: usize = 8;

/// An lblcr server set.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DestSet {
    ids: [u32; SET_MAX],
    len: u8,
    lastmod: u32,
}

impl DestSet {
    fn ids(&self) -> &[u32] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    fn insert(&mut self, id: RealId, now: u32) {
        if self.ids().contains(&id.0) {
            return;
        }
        if usize::from(self.len) < SET_MAX {
            if let Some(s) = self.ids.get_mut(usize::from(self.len)) {
                *s = id.0;
                self.len += 1;
            }
        } else if let Some(s) = self.ids.last_mut() {
            // Full: the newest member replaces the last one.
            *s = id.0;
        }
        self.lastmod = now;
    }

    fn erase(&mut self, id: u32, now: u32) {
        let n = usize::from(self.len);
        if let Some(p) = self.ids().iter().position(|&x| x == id) {
            if let Some(tail) = self.ids.get_mut(p..n) {
                tail.rotate_left(1);
            }
            self.len -= 1;
            self.lastmod = now;
        }
    }
}

/// `ip_vs_dest_set_min`: wlc within the set, members that left the
/// service skipped.
fn set_min(set: &DestSet, svc: &ServiceSched) -> Option<usize> {
    let reals = svc.reals();
    let members = set
        .ids()
        .iter()
        .filter_map(|&id| svc.index_of(RealId(id)))
        .filter_map(|i| reals.get(i).map(|r| (i, r)));
    weighted_least(members, |r| r.counters.overhead())
}

/// `ip_vs_dest_set_max`: the member with the highest overhead / weight
/// among those with weight > 0.
fn set_max(set: &DestSet, svc: &ServiceSched) -> Option<u32> {
    let reals = svc.reals();
    let mut most: Option<(u32, u64, u64)> = None;
    for &id in set.ids() {
        let Some(d) = svc.index_of(RealId(id)).and_then(|i| reals.get(i)) else {
            continue;
        };
        let (doh, dw) = (d.counters.overhead(), u64::from(d.weight));
        if dw == 0 {
            continue;
        }
        if most.is_none_or(|(_, moh, mw)| moh * dw < doh * mw) {
            most = Some((id, doh, dw));
        }
    }
    most.map(|m| m.0)
}

/// lblcr: a set of servers per destination address.
#[derive(Debug)]
pub(crate) struct LblcrTable {
    table: Assoc<DestSet>,
}

impl LblcrTable {
    pub(crate) fn empty() -> Self {
        Self {
            table: Assoc::empty(),
        }
    }

    pub(crate) fn new(capacity: usize, key: HashKey) -> Self {
        Self {
            table: Assoc::new(capacity, key),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// `ip_vs_lblcr_schedule`: the least-loaded member of the set; after
    /// `expire` seconds without change a set of several loses its most
    /// loaded member; when the member found is lblc-overloaded (or there
    /// is none) wlc picks a server that joins the set.
    pub(crate) fn pick(&mut self, svc: &ServiceSched, daddr: IpAddr, now: u32) -> Option<usize> {
        let reals = svc.reals();
        let expire = svc.config().locality_expire_s;
        let key = addr_words(daddr);
        if let Some(s) = self.table.get_mut(key) {
            if !expired(s.stamp, now, expire) {
                s.stamp = now;
                let set = &mut s.val;
                let dest = set_min(set, svc);
                if set.len > 1 && now.saturating_sub(set.lastmod) > expire {
                    if let Some(m) = set_max(set, svc) {
                        set.erase(m, now);
                    }
                }
                if let Some(i) = dest {
                    if reals.get(i).is_some_and(|d| !lb_overloaded(d, reals)) {
                        return Some(i);
                    }
                }
                let i = schedule(reals)?;
                set.insert(reals.get(i)?.id, now);
                return Some(i);
            }
        }
        let i = schedule(reals)?;
        let id = reals.get(i)?.id;
        if let Some((s, _)) = self.table.slot_for(key, |s| expired(s.stamp, now, expire)) {
            s.val = DestSet::default();
            s.val.insert(id, now);
            s.stamp = now;
        }
        Some(i)
    }
}
