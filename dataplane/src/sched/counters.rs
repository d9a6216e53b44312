//! Per-real-server connection counters and the overload flag, shared by
//! every worker without locks.
//!
//! IPVS definitions: a connection is *active* while it is a TCP connection
//! in ESTABLISHED; every other state (SYN_RECV, FIN_WAIT, TIME_WAIT, ...,
//! and every UDP or other non-TCP entry) counts as *inactive*.
//!
//! The overload flag follows IPVS's `IP_VS_DEST_F_OVERLOAD`: set when a new
//! connection brings active + inactive to at least the upper threshold,
//! cleared when a closing connection brings it below the lower threshold
//! (or below 3/4 of the upper one when the lower one is 0).

#![deny(clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Upper and lower connection thresholds of a real server (`ipvsadm -x`,
/// `-y`). Zero means "no threshold".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    /// `-x`: the server is overloaded once active + inactive reaches this.
    pub upper: u32,
    /// `-y`: an overloaded server is usable again below this; when 0, below
    /// 3/4 of `upper`.
    pub lower: u32,
}

/// Live counters of one real server, shared via `Arc` by the control
/// thread (which reads them) and every worker (which updates them).
///
/// Aligned to a cache line so two servers' counters never share one.
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct RealCounters {
    active: AtomicU32,
    inactive: AtomicU32,
    overloaded: AtomicBool,
}

fn dec(a: &AtomicU32) {
    // Saturating: a stray double close must not wrap to 4 billion.
    let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

impl RealCounters {
    /// Fresh counters: no connections, not overloaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Connections in TCP ESTABLISHED.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Connections in any other state, UDP included.
    pub fn inactive(&self) -> u32 {
        self.inactive.load(Ordering::Relaxed)
    }

    /// Active + inactive, IPVS's `ip_vs_dest_totalconns`.
    pub fn total(&self) -> u64 {
        u64::from(self.active()) + u64::from(self.inactive())
    }

    /// IPVS's `ip_vs_dest_conn_overhead`: active × 256 + inactive.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active()) << 8) + u64::from(self.inactive())
    }

    /// Whether `IP_VS_DEST_F_OVERLOAD` is set: no new connections.
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// A connection was bound to this server (IPVS `ip_vs_bind_dest`).
    /// `active` is true only for a TCP connection created in ESTABLISHED.
    pub fn conn_bound(&self, active: bool, th: Thresholds) {
        if active {
            self.active.fetch_add(1, Ordering::Relaxed);
        } else {
            self.inactive.fetch_add(1, Ordering::Relaxed);
        }
        if th.upper != 0 && self.total() >= u64::from(th.upper) {
            self.overloaded.store(true, Ordering::Relaxed);
        }
    }

    /// A connection left this server (IPVS `ip_vs_unbind_dest`); `active`
    /// is its state at the time it was freed.
    pub fn conn_unbound(&self, active: bool, th: Thresholds) {
        if active {
            dec(&self.active);
        } else {
            dec(&self.inactive);
        }
        let total = self.total();
        let clear = if th.lower != 0 {
            total < u64::from(th.lower)
        } else if th.upper != 0 {
            total * 4 < u64::from(th.upper) * 3
        } else {
            true
        };
        if clear {
            self.overloaded.store(false, Ordering::Relaxed);
        }
    }

    /// A TCP connection entered ESTABLISHED (inactive → active).
    pub fn conn_activated(&self) {
        dec(&self.inactive);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A TCP connection left ESTABLISHED (active → inactive).
    pub fn conn_deactivated(&self) {
        dec(&self.active);
        self.inactive.fetch_add(1, Ordering::Relaxed);
    }

    /// The thresholds were edited (IPVS `__ip_vs_update_dest`): the flag is
    /// cleared when the upper threshold is removed or raised.
    pub fn thresholds_changed(&self, old: Thresholds, new: Thresholds) {
        if new.upper == 0 || new.upper > old.upper {
            self.overloaded.store(false, Ordering::Relaxed);
        }
    }

    /// Sets the counts directly (tests, benches, state sync from a peer).
    pub fn set_counts(&self, active: u32, inactive: u32) {
        self.active.store(active, Ordering::Relaxed);
        self.inactive.store(inactive, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_to_a_cache_line() {
        assert_eq!(std::mem::align_of::<RealCounters>(), 64);
        assert_eq!(std::mem::size_of::<RealCounters>(), 64);
    }

    #[test]
    fn active_inactive_transitions() {
        let c = RealCounters::new();
        let th = Thresholds::default();
        c.conn_bound(false, th); // SYN_RECV
        assert_eq!((c.active(), c.inactive()), (0, 1));
        c.conn_activated(); // ESTABLISHED
        assert_eq!((c.active(), c.inactive()), (1, 0));
        assert_eq!(c.overhead(), 256);
        c.conn_deactivated(); // FIN_WAIT
        c.conn_unbound(false, th);
        assert_eq!((c.active(), c.inactive()), (0, 0));
        c.conn_unbound(false, th); // stray close saturates
        assert_eq!(c.inactive(), 0);
    }

    #[test]
    fn overload_with_lower_threshold() {
        let c = RealCounters::new();
        let th = Thresholds { upper: 4, lower: 2 };
        for _ in 0..3 {
            c.conn_bound(false, th);
        }
        assert!(!c.overloaded());
        c.conn_bound(true, th); // total 4 >= 4
        assert!(c.overloaded());
        c.conn_unbound(false, th); // 3, not < 2
        assert!(c.overloaded());
        c.conn_unbound(false, th); // 2, not < 2
        assert!(c.overloaded());
        c.conn_unbound(false, th); // 1 < 2
        assert!(!c.overloaded());
    }

    #[test]
    fn overload_without_lower_threshold_uses_three_quarters() {
        let c = RealCounters::new();
        let th = Thresholds { upper: 8, lower: 0 };
        for _ in 0..8 {
            c.conn_bound(false, th);
        }
        assert!(c.overloaded());
        c.conn_unbound(false, th); // 7: 28 < 24? no
        c.conn_unbound(false, th); // 6: 24 < 24? no
        assert!(c.overloaded());
        c.conn_unbound(false, th); // 5: 20 < 24
        assert!(!c.overloaded());
    }

    #[test]
    fn raising_upper_threshold_clears_flag() {
        let c = RealCounters::new();
        let th = Thresholds { upper: 1, lower: 0 };
        c.conn_bound(false, th);
        assert!(c.overloaded());
        c.thresholds_changed(th, Thresholds { upper: 1, lower: 1 });
        assert!(c.overloaded());
        c.thresholds_changed(
            th,
            Thresholds {
                upper: 10,
                lower: 0,
            },
        );
        assert!(!c.overloaded());
    }
}
