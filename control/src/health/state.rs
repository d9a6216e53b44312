//! keepalived's state machines, as pure logic: a checker's retries, a
//! real server's verdict from its checkers, a service's quorum.

use std::time::Duration;

/// What one checker knows between its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checker {
    /// The checker's verdict.
    pub up: bool,
    /// Failed attempts so far in the current run of retries.
    pub retry_it: u32,
    /// Retries allowed before a failure counts.
    pub retry: u32,
}

/// What to do after recording a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The verdict changed to this.
    pub changed: Option<bool>,
    /// Wait this long before the next attempt.
    pub next: Duration,
}

impl Checker {
    /// A checker that starts up, or down (keepalived's `alpha`).
    pub fn new(retry: u32, up: bool) -> Checker {
        Checker {
            up,
            retry_it: 0,
            retry,
        }
    }

    /// Records one attempt, as keepalived's checker epilogue: a success
    /// marks the checker up at once; a failure of an up checker is
    /// retried `retry` times, `delay_before_retry` apart, before it marks
    /// the checker down; a down checker is tried again every
    /// `delay_loop`.
    pub fn record(&mut self, ok: bool, delay_loop: Duration, delay_before_retry: Duration) -> Step {
        if ok {
            self.retry_it = 0;
            let changed = (!self.up).then_some(true);
            self.up = true;
            return Step {
                changed,
                next: delay_loop,
            };
        }
        if self.up && self.retry_it < self.retry {
            self.retry_it += 1;
            return Step {
                changed: None,
                next: delay_before_retry,
            };
        }
        self.retry_it = 0;
        let changed = self.up.then_some(false);
        self.up = false;
        Step {
            changed,
            next: delay_loop,
        }
    }
}

/// A service's quorum state (keepalived's `quorum_state_up`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// Whether the quorum is met.
    pub up: bool,
}

impl Quorum {
    /// Evaluates the quorum against the total weight of the healthy real
    /// servers; returns the new state when it changed. It is gained at
    /// `quorum + hysteresis` and lost below `quorum - hysteresis` (or at
    /// no weight at all), so a server flapping at the edge does not flap
    /// the service.
    pub fn eval(&mut self, alive_weight: u64, quorum: u64, hysteresis: u64) -> Option<bool> {
        if !self.up && alive_weight >= quorum.saturating_add(hysteresis) {
            self.up = true;
            return Some(true);
        }
        if self.up && (alive_weight == 0 || alive_weight < quorum.saturating_sub(hysteresis)) {
            self.up = false;
            return Some(false);
        }
        None
    }
}

/// The weight a `misc_dynamic` exit code sets: 0 up at the configured
/// weight, 1 down, 2..=255 up at `code - 2`; other codes are failures.
pub fn misc_verdict(code: Option<i32>, dynamic: bool) -> (bool, Option<u32>) {
    match code {
        Some(0) => (true, None),
        Some(c) if dynamic && (2..=255).contains(&c) => (true, Some((c - 2) as u32)),
        _ => (false, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Duration = Duration::from_secs(6);
    const R: Duration = Duration::from_secs(1);

    #[test]
    fn retries_before_down_and_immediate_up() {
        let mut c = Checker::new(2, true);
        assert_eq!(
            c.record(false, L, R),
            Step {
                changed: None,
                next: R
            }
        );
        assert_eq!(
            c.record(false, L, R),
            Step {
                changed: None,
                next: R
            }
        );
        assert_eq!(
            c.record(false, L, R),
            Step {
                changed: Some(false),
                next: L
            }
        );
        // down: no retries, checked every delay_loop
        assert_eq!(
            c.record(false, L, R),
            Step {
                changed: None,
                next: L
            }
        );
        assert_eq!(
            c.record(true, L, R),
            Step {
                changed: Some(true),
                next: L
            }
        );
        // a success in the middle of retries resets them
        c.record(false, L, R);
        c.record(true, L, R);
        assert_eq!(c.retry_it, 0);
        assert_eq!(c.record(false, L, R).next, R);
    }

    #[test]
    fn retry_zero_and_alpha() {
        let mut c = Checker::new(0, true);
        assert_eq!(c.record(false, L, R).changed, Some(false));
        let mut a = Checker::new(3, false);
        assert_eq!(
            a.record(false, L, R),
            Step {
                changed: None,
                next: L
            }
        );
        assert_eq!(a.record(true, L, R).changed, Some(true));
    }

    #[test]
    fn quorum_with_hysteresis() {
        let mut q = Quorum { up: true };
        assert_eq!(q.eval(3, 3, 1), None);
        assert_eq!(q.eval(2, 3, 1), None);
        assert_eq!(q.eval(1, 3, 1), Some(false));
        assert_eq!(q.eval(3, 3, 1), None);
        assert_eq!(q.eval(4, 3, 1), Some(true));
        // quorum 1, no hysteresis: lost at zero weight
        let mut q = Quorum { up: true };
        assert_eq!(q.eval(0, 1, 0), Some(false));
        assert_eq!(q.eval(1, 1, 0), Some(true));
    }

    #[test]
    fn misc_codes() {
        assert_eq!(misc_verdict(Some(0), true), (true, None));
        assert_eq!(misc_verdict(Some(1), true), (false, None));
        assert_eq!(misc_verdict(Some(7), true), (true, Some(5)));
        assert_eq!(misc_verdict(Some(7), false), (false, None));
        assert_eq!(misc_verdict(None, true), (false, None));
    }
}
