//! Persistence templates (`ipvsadm -p timeout -M netmask`), per worker.
//!
//! A template maps a client network (the client address masked by the
//! service's netmask) to a real server, so the client's next connections
//! go to the same server while the template lives. As in IPVS a template
//! is refreshed by every connection it serves, outlives its server's
//! weight going to 0 (unless `expire_quiescent`) and ignores the overload
//! flag; it dies when its server leaves the service or it times out.
//!
//! Fixed capacity, no allocation after construction, no clock reads: the
//! caller passes `now` in seconds.

#![deny(clippy::indexing_slicing)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::assoc::Assoc;
use super::hash::addr_words;
use super::{HashKey, Persistence, RealId, ServiceSched};

/// The client network a template is keyed by.
pub(crate) fn masked(p: &Persistence, client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(a) => {
            let bits = u32::from(p.netmask_v4.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let bits = u32::from(p.netmask_v6.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// One worker's persistence templates for one service.
#[derive(Debug)]
pub struct PersistTable {
    table: Assoc<u32>,
}

impl PersistTable {
    /// A table that holds nothing (services without persistence).
    pub fn empty() -> Self {
        Self {
            table: Assoc::empty(),
        }
    }

    /// A table for at least `capacity` templates, hashed with `key`.
    pub fn new(capacity: usize, key: HashKey) -> Self {
        Self {
            table: Assoc::new(capacity, key),
        }
    }

    /// Templates the table can hold.
    pub fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Live templates at `now` (inspection; walks the whole table).
    pub fn live(&self, now: u32) -> usize {
        self.table.iter().filter(|s| s.stamp > now).count()
    }

    /// The real server of a live template for `client`, without touching
    /// it (inspection and tests).
    pub fn peek(&mut self, p: &Persistence, client: IpAddr, now: u32) -> Option<RealId> {
        let (lo, hi) = addr_words(masked(p, client));
        let s = self.table.get_mut((lo, hi))?;
        (s.stamp > now).then_some(RealId(s.val))
    }

    /// IPVS `ip_vs_sched_persist` + `ip_vs_check_template`: the index of
    /// the real server of `client`'s live template, refreshing it; drops a
    /// template that is expired, whose server left the service, or (with
    /// `expire_quiescent`) whose server has weight 0.
    #[inline]
    pub(crate) fn lookup(
        &mut self,
        svc: &ServiceSched,
        p: &Persistence,
        client: IpAddr,
        now: u32,
    ) -> Option<usize> {
        let (lo, hi) = addr_words(masked(p, client));
        let s = self.table.get_mut((lo, hi))?;
        if s.stamp <= now {
            s.used = false;
            return None;
        }
        let found = svc.index_of(RealId(s.val)).filter(|&i| {
            svc.reals()
                .get(i)
                .is_some_and(|r| !(p.expire_quiescent && r.weight == 0))
        });
        match found {
            Some(i) => {
                s.stamp = now.saturating_add(p.timeout_s);
                Some(i)
            }
            None => {
                s.used = false;
                None
            }
        }
    }

    /// Records (or replaces) `client`'s template. A full bucket evicts its
    /// soonest-expiring template.
    #[inline]
    pub(crate) fn insert(&mut self, p: &Persistence, client: IpAddr, real: RealId, now: u32) {
        let key = addr_words(masked(p, client));
        if let Some((s, _)) = self.table.slot_for(key, |s| s.stamp <= now) {
            s.val = real.0;
            s.stamp = now.saturating_add(p.timeout_s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        let mut p = Persistence::new(60);
        let a: IpAddr = "192.0.2.77".parse().unwrap();
        assert_eq!(masked(&p, a), a);
        p.netmask_v4 = 24;
        assert_eq!(masked(&p, a), "192.0.2.0".parse::<IpAddr>().unwrap());
        p.netmask_v4 = 0;
        assert_eq!(masked(&p, a), "0.0.0.0".parse::<IpAddr>().unwrap());
        p.netmask_v6 = 64;
        let b: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        assert_eq!(masked(&p, b), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
    }
}
