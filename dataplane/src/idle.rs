//! What a worker does when its queues are empty: the idle policy.
//!
//! `poll` (the default, as DPVS and VPP on dedicated cores) polls again at
//! once, for ever. `adaptive` backs off the way DPDK's PMD power
//! management (`rte_power_pmd_mgmt`, pause mode) and l3fwd-power do: after
//! `empty_polls` consecutive loops in which no RX queue, TAP queue,
//! handoff ring or control command had anything, the next `pause_polls`
//! loops each begin with a CPU pause (`rte_pause`: the spin-loop hint),
//! then the worker sleeps between loops, 1 µs first and twice as long each
//! further empty loop, up to `max_sleep_ns`. The first loop with work
//! returns it to full polling (and the next back-off starts from 1 µs
//! again). A sleep gives the core to whatever else wants it (on a shared
//! machine: the kernel's softirqs, the client, the server); the price is up
//! to one sleep of latency for the first packet after a quiet spell.
//!
//! [`Backoff`] is the state machine, pure logic fed with "did this loop
//! find work?"; the worker loop does the pause or sleep it returns (never
//! past its next housekeeping round) and counts them.

/// The first sleep of a back-off, in nanoseconds (1 µs).
pub const FIRST_SLEEP_NS: u64 = 1_000;

/// How a worker polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdleMode {
    /// Poll for ever (a dedicated core).
    #[default]
    Poll,
    /// Back off when idle: pause, then sleep.
    Adaptive,
}

impl IdleMode {
    /// The config and listing name.
    pub fn name(self) -> &'static str {
        match self {
            IdleMode::Poll => "poll",
            IdleMode::Adaptive => "adaptive",
        }
    }
}

/// The idle policy of every worker (`[dataplane] idle*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdlePolicy {
    /// Poll or adaptive.
    pub mode: IdleMode,
    /// Consecutive empty loops polled at full speed before backing off.
    pub empty_polls: u32,
    /// Empty loops after those that begin with a CPU pause, before the
    /// first sleep.
    pub pause_polls: u32,
    /// The longest sleep, in nanoseconds (at least [`FIRST_SLEEP_NS`]).
    pub max_sleep_ns: u64,
}

impl Default for IdlePolicy {
    fn default() -> Self {
        IdlePolicy {
            mode: IdleMode::Poll,
            empty_polls: 256,
            pause_polls: 64,
            max_sleep_ns: 100_000,
        }
    }
}

/// What the worker does before its next loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Poll again at once.
    Poll,
    /// One CPU pause, then poll.
    Pause,
    /// Sleep this many nanoseconds, then poll.
    Sleep(u64),
}

/// One worker's back-off state.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: IdlePolicy,
    /// Consecutive empty loops (saturating).
    empty: u32,
    /// The next sleep.
    sleep_ns: u64,
}

impl Backoff {
    /// A worker that has just had work.
    pub fn new(policy: IdlePolicy) -> Backoff {
        Backoff {
            policy,
            empty: 0,
            sleep_ns: FIRST_SLEEP_NS,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &IdlePolicy {
        &self.policy
    }

    /// After a loop that found work (`work`) or not: what to do before the
    /// next one.
    #[inline]
    pub fn next(&mut self, work: bool) -> Idle {
        if self.policy.mode == IdleMode::Poll {
            return Idle::Poll;
        }
        if work {
            self.empty = 0;
            self.sleep_ns = FIRST_SLEEP_NS;
            return Idle::Poll;
        }
        self.empty = self.empty.saturating_add(1);
        let n = u64::from(self.empty);
        let polls = u64::from(self.policy.empty_polls);
        if n <= polls {
            return Idle::Poll;
        }
        if n <= polls + u64::from(self.policy.pause_polls) {
            return Idle::Pause;
        }
        let max = self.policy.max_sleep_ns.max(FIRST_SLEEP_NS);
        let s = self.sleep_ns.min(max);
        self.sleep_ns = s.saturating_mul(2).min(max);
        Idle::Sleep(s)
    }
}

/// A sleep of `want` ns cut so that it ends by `deadline` (the worker's
/// next housekeeping round, in the same clock as `now`): 0 when the
/// deadline is due.
#[inline]
pub fn bounded_sleep(want: u64, now: u64, deadline: u64) -> u64 {
    want.min(deadline.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adaptive(empty_polls: u32, pause_polls: u32, max_sleep_ns: u64) -> IdlePolicy {
        IdlePolicy {
            mode: IdleMode::Adaptive,
            empty_polls,
            pause_polls,
            max_sleep_ns,
        }
    }

    fn feed(b: &mut Backoff, work: &[bool]) -> Vec<Idle> {
        work.iter().map(|w| b.next(*w)).collect()
    }

    #[test]
    fn poll_never_backs_off() {
        let mut b = Backoff::new(IdlePolicy::default());
        assert_eq!(b.policy().mode, IdleMode::Poll);
        for _ in 0..100_000 {
            assert_eq!(b.next(false), Idle::Poll);
        }
        assert_eq!(b.next(true), Idle::Poll);
    }

    #[test]
    fn adaptive_polls_pauses_then_sleeps_doubling_to_the_cap() {
        let mut b = Backoff::new(adaptive(3, 2, 10_000));
        let got = feed(&mut b, &[false; 12]);
        use Idle::*;
        assert_eq!(
            got,
            vec![
                Poll,
                Poll,
                Poll,
                Pause,
                Pause,
                Sleep(1_000),
                Sleep(2_000),
                Sleep(4_000),
                Sleep(8_000),
                Sleep(10_000),
                Sleep(10_000),
                Sleep(10_000),
            ]
        );
    }

    #[test]
    fn first_packet_returns_to_full_polling_and_restarts_the_back_off() {
        let mut b = Backoff::new(adaptive(2, 1, 4_000));
        use Idle::*;
        assert_eq!(
            feed(&mut b, &[false, false, false, false, false, false]),
            vec![Poll, Poll, Pause, Sleep(1_000), Sleep(2_000), Sleep(4_000)]
        );
        // work: straight back to polling, the count starts again
        assert_eq!(
            feed(&mut b, &[true, false, false, false, false, true, false]),
            vec![Poll, Poll, Poll, Pause, Sleep(1_000), Poll, Poll]
        );
    }

    #[test]
    fn work_within_the_empty_polls_never_pauses() {
        let mut b = Backoff::new(adaptive(4, 4, 100_000));
        let mut seq = Vec::new();
        for _ in 0..1000 {
            seq.extend([false, false, false, true]);
        }
        assert!(feed(&mut b, &seq).iter().all(|i| *i == Idle::Poll));
    }

    #[test]
    fn no_pause_phase_and_a_cap_below_the_first_sleep() {
        // pause_polls 0: straight to sleeping; a cap under 1 µs is 1 µs
        let mut b = Backoff::new(adaptive(1, 0, 1));
        use Idle::*;
        assert_eq!(
            feed(&mut b, &[false, false, false, false]),
            vec![Poll, Sleep(1_000), Sleep(1_000), Sleep(1_000)]
        );
    }

    #[test]
    fn counts_saturate_without_wrapping_back_to_polling() {
        let mut b = Backoff::new(adaptive(u32::MAX, u32::MAX, 1_000));
        b.empty = u32::MAX - 1;
        // u32::MAX empty loops is still inside empty_polls, then it stays
        assert_eq!(b.next(false), Idle::Poll);
        assert_eq!(b.next(false), Idle::Poll);
        let mut b = Backoff::new(adaptive(0, 0, 2_000));
        b.empty = u32::MAX - 1;
        assert_eq!(b.next(false), Idle::Sleep(1_000));
        assert_eq!(b.next(false), Idle::Sleep(2_000));
        assert_eq!(b.next(false), Idle::Sleep(2_000));
    }

    #[test]
    fn sleeps_end_by_housekeeping() {
        assert_eq!(bounded_sleep(100_000, 0, 10_000_000), 100_000);
        assert_eq!(bounded_sleep(100_000, 9_950_000, 10_000_000), 50_000);
        assert_eq!(bounded_sleep(100_000, 10_000_000, 10_000_000), 0);
        assert_eq!(bounded_sleep(100_000, 10_000_001, 10_000_000), 0);
    }
}
