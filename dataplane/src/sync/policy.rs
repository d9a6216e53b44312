//! When the master sends a connection: IPVS's `ip_vs_sync_conn_needed`
//! with the sysctls `sync_threshold` (threshold, period), `sync_period`,
//! `sync_refresh_period` and `sync_retries`.
//!
//! As in IPVS it is asked on every packet from the client (`pkts` is the
//! connection's count of such packets, 1 for the packet that created it):
//!
//! - TCP is only synced in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and
//!   TIME_WAIT; a change into one of these states other than ESTABLISHED
//!   is sent at once;
//! - otherwise, with `period > 0`, when `pkts % period == threshold` (the
//!   3rd packet and every 50 after with the defaults `3 50`); with
//!   `period == 0`, only when `pkts == threshold` unless refresh is on;
//! - with `refresh_period > 0`, a resend whose end time would change by
//!   less than `min(refresh_period, max(timeout / 2, 10 s))` is one of at
//!   most `retries` retries, spaced by at least `refresh_period / 8`.
//!
//! Time is in seconds (the connection table's ticks at 1 Hz).

#![deny(clippy::indexing_slicing)]

use crate::conn::TcpState;

const IPPROTO_TCP: u8 = 6;

/// The sync sysctls. Defaults are IPVS's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncParams {
    /// `sync_threshold[0]`: the packet that triggers the first sync.
    pub threshold: u32,
    /// `sync_threshold[1]` (`sync_period`): resend every this many packets.
    pub period: u32,
    /// `sync_refresh_period` in seconds (0: off).
    pub refresh_period: u32,
    /// `sync_retries` (0..=3).
    pub retries: u8,
}

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            threshold: 3,
            period: 50,
            refresh_period: 0,
            retries: 0,
        }
    }
}

/// Per-connection sync bookkeeping (IPVS's `in_pkts`, `old_state`,
/// `sync_endtime` with its retry count). Kept beside the connection table
/// only while sync is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncMark {
    /// Packets from the client so far.
    pub pkts: u32,
    /// End time announced by the last sync.
    pub endtime: u32,
    /// State at the last sync.
    pub old_state: u8,
    /// Retries of the current end time.
    pub retries: u8,
}

impl SyncMark {
    /// A fresh mark for a new connection.
    pub const NEW: SyncMark = SyncMark {
        pkts: 0,
        endtime: 0,
        old_state: 0,
        retries: 0,
    };
}

/// TCP states in which a connection is synced.
#[inline]
fn tcp_sync_state(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::Established
            | TcpState::FinWait
            | TcpState::Close
            | TcpState::CloseWait
            | TcpState::TimeWait
    )
}

impl SyncParams {
    /// Counts one packet from the client on a connection in `state`
    /// (timeout `timeout` seconds) at time `now`, and says whether to send
    /// it now (updating `m` as IPVS does when it sends).
    pub fn on_packet(
        &self,
        m: &mut SyncMark,
        proto: u8,
        state: TcpState,
        timeout: u32,
        now: u32,
    ) -> bool {
        m.pkts = m.pkts.wrapping_add(1);
        self.needed(m, proto, state, timeout, now)
    }

    /// `ip_vs_sync_conn_needed` for the packet count already in `m`.
    pub fn needed(
        &self,
        m: &mut SyncMark,
        proto: u8,
        state: TcpState,
        timeout: u32,
        now: u32,
    ) -> bool {
        let n = now.wrapping_add(timeout);
        let mut retries = 0u8;
        if proto == IPPROTO_TCP {
            if !tcp_sync_state(state) {
                return false;
            }
            // A change into a closing state is sent at once; a change into
            // ESTABLISHED still waits for the threshold/period rule (IPVS's
            // `force` only decides its cmpxchg race, absent here).
            if state as u8 != m.old_state && state != TcpState::Established {
                return self.set(m, state, n, 0);
            }
        }
        if self.refresh_period > 0 {
            let diff = n.wrapping_sub(m.endtime) as i32;
            let min_diff = (timeout >> 1).max(10);
            let lim = self.refresh_period.min(min_diff);
            if diff.unsigned_abs() < lim {
                if m.retries >= self.retries {
                    return false;
                }
                let earliest = m
                    .endtime
                    .wrapping_sub(timeout)
                    .wrapping_add(self.refresh_period >> 3);
                if (now.wrapping_sub(earliest) as i32) < 0 {
                    return false;
                }
                retries = m.retries + 1;
            }
        }
        if self.period > 0 {
            if m.pkts % self.period != self.threshold {
                return false;
            }
        } else if self.refresh_period == 0 && m.pkts != self.threshold {
            return false;
        }
        self.set(m, state, n, retries)
    }

    #[inline]
    fn set(&self, m: &mut SyncMark, state: TcpState, n: u32, retries: u8) -> bool {
        m.old_state = state as u8;
        m.endtime = n;
        m.retries = retries;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn triggers(p: &SyncParams, proto: u8, state: TcpState, n: u32) -> Vec<u32> {
        let mut m = SyncMark::NEW;
        (1..=n)
            .filter(|_| p.on_packet(&mut m, proto, state, 900, 100))
            .collect()
    }

    #[test]
    fn default_threshold_and_period() {
        let p = SyncParams::default();
        // UDP: the 3rd packet and every 50 after.
        assert_eq!(triggers(&p, 17, TcpState::None, 160), vec![3, 53, 103, 153]);
        // TCP established all along: the same packets.
        assert_eq!(
            triggers(&p, 6, TcpState::Established, 160),
            vec![3, 53, 103, 153]
        );
        // TCP in a state that is never synced.
        assert!(triggers(&p, 6, TcpState::SynRecv, 160).is_empty());
    }

    #[test]
    fn period_zero_syncs_once() {
        let p = SyncParams {
            threshold: 3,
            period: 0,
            ..SyncParams::default()
        };
        assert_eq!(triggers(&p, 17, TcpState::None, 200), vec![3]);
    }

    #[test]
    fn tcp_state_changes() {
        let p = SyncParams::default();
        let mut m = SyncMark::NEW;
        // SYN (1, SYN_RECV): no; ACK (2, ESTABLISHED): forced but the
        // period rule still applies (IPVS); first data (3): sent.
        assert!(!p.on_packet(&mut m, 6, TcpState::SynRecv, 60, 0));
        assert!(!p.on_packet(&mut m, 6, TcpState::Established, 900, 0));
        assert!(p.on_packet(&mut m, 6, TcpState::Established, 900, 0));
        for _ in 4..=20 {
            assert!(!p.on_packet(&mut m, 6, TcpState::Established, 900, 1));
        }
        // FIN (21, CLOSE_WAIT / FIN_WAIT): sent at once, once.
        assert!(p.on_packet(&mut m, 6, TcpState::FinWait, 120, 2));
        assert!(!p.on_packet(&mut m, 6, TcpState::FinWait, 120, 2));
        assert!(p.on_packet(&mut m, 6, TcpState::TimeWait, 120, 3));
        // Back to the period rule within TIME_WAIT: packet 53.
        let mut sent = Vec::new();
        for i in 24..=60 {
            if p.on_packet(&mut m, 6, TcpState::TimeWait, 120, 3) {
                sent.push(i);
            }
        }
        assert_eq!(sent, vec![53]);
    }

    #[test]
    fn refresh_period_and_retries() {
        // sync_period 0 with refresh: sent when the end time moved by at
        // least the refresh period (capped by half the timeout).
        let p = SyncParams {
            threshold: 3,
            period: 0,
            refresh_period: 60,
            retries: 0,
        };
        let mut m = SyncMark::NEW;
        assert!(p.on_packet(&mut m, 17, TcpState::None, 300, 1000));
        assert!(!p.on_packet(&mut m, 17, TcpState::None, 300, 1030));
        assert!(!p.on_packet(&mut m, 17, TcpState::None, 300, 1059));
        assert!(p.on_packet(&mut m, 17, TcpState::None, 300, 1060));
        // With one retry: a near-identical end time is resent once, no
        // sooner than refresh/8 seconds after the last sync.
        let p = SyncParams { retries: 1, ..p };
        let mut m = SyncMark::NEW;
        assert!(p.on_packet(&mut m, 17, TcpState::None, 300, 1000));
        assert!(!p.on_packet(&mut m, 17, TcpState::None, 300, 1005));
        assert!(p.on_packet(&mut m, 17, TcpState::None, 300, 1008));
        assert!(!p.on_packet(&mut m, 17, TcpState::None, 300, 1020));
    }
}
