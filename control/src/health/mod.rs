//! Health checks inside rvsd, with keepalived's checkers and semantics
//! (keepalived.conf(5)): TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK and
//! PING_CHECK per real server, `retry`/`delay_before_retry`/`delay_loop`,
//! `alpha`, `omega`, `inhibit_on_failure`, quorum with hysteresis and
//! `quorum_up`/`quorum_down`, the sorry server, `notify_up`/`notify_down`.
//!
//! Threads: every checker runs on its own thread ([`Monitor`]), blocking
//! only itself and only for as long as its `connect_timeout` (or
//! `misc_timeout`). A thread reports each attempt through a [`Sink`]; the
//! control thread folds the reports into [`Health`] and, on a verdict
//! change, edits its model exactly as keepalived edits IPVS: a failed real
//! server is removed (or kept with weight 0 under `inhibit_on_failure`), a
//! recovered one is put back at its weight; the change reaches the
//! workers through the ordinary snapshot path. Probes are kernel sockets
//! in rvsd's network namespace, so they leave through the exception path
//! (the port's TAP) from the director's own address, as keepalived's do.
//!
//! [`config`] reads the settings from rvsd's TOML, [`keepalived`] from a
//! keepalived.conf.

pub mod config;
pub mod keepalived;
pub mod probe;
pub mod state;

use self::probe::Outcome;
use self::state::{Checker, Quorum};
use crate::model::{Model, RealServer, ServiceKey};
use std::fmt::Write as _;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What a checker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// TCP_CHECK: a TCP connection is accepted.
    Tcp,
    /// HTTP_GET (SSL_GET with `tls`): `GET path`, the status in
    /// `status_codes` (any 2xx when empty) and the body's MD5 equal to
    /// `digest` when set.
    Http {
        /// URL path.
        path: String,
        /// Accepted status codes.
        status_codes: Vec<u16>,
        /// MD5 of the body, lower-case hex.
        digest: Option<String>,
        /// Host header (and the TLS server name).
        virtualhost: Option<String>,
        /// SSL_GET: the same over TLS.
        tls: bool,
    },
    /// UDP_CHECK: send `payload`; fail on an ICMP error (or no reply when
    /// `require_reply`; or a reply unlike `reply` when it is set).
    Udp {
        /// Datagram to send.
        payload: Vec<u8>,
        /// Only a reply passes.
        require_reply: bool,
        /// `require_reply <hex>`: what the reply must look like.
        reply: Option<UdpReply>,
    },
    /// MISC_CHECK: a command's exit code.
    Misc {
        /// Run with `sh -c`.
        command: String,
        /// Killed after this long.
        timeout: Duration,
        /// Exit codes 2..=255 set the weight.
        dynamic: bool,
    },
    /// PING_CHECK: an ICMP echo reply.
    Ping,
}

/// UDP_CHECK's `require_reply <hex>` with `min_reply_length` and
/// `max_reply_length`, judged as keepalived's check_udp.c does: the reply's
/// length must be within the bounds, and its first octets, as many as the
/// shorter of the reply and the expected data, must equal the expected
/// ones except where a nibble was written `x` (a wildcard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpReply {
    /// The expected first octets.
    pub data: Vec<u8>,
    /// Per octet of `data`, the wildcard bits (0x0f, 0xf0 or 0xff).
    pub mask: Vec<u8>,
    /// The shortest reply that passes (`min_reply_length`, default 0).
    pub min_len: u16,
    /// The longest reply that passes (`max_reply_length`, default 255).
    pub max_len: u16,
}

impl UdpReply {
    /// keepalived's default `max_reply_length`.
    pub const DEFAULT_MAX_LEN: u16 = 255;

    /// Parses keepalived's hex string (`read_hex_str`): pairs of hex digits,
    /// spaces and tabs between octets allowed, a lone digit before a space
    /// is one octet, `x`/`X` is a wildcard nibble. `None` when it holds
    /// anything else or nothing.
    pub fn parse_hex(s: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        fn nibble(c: u8) -> Option<(u8, u8)> {
            match c {
                b'x' | b'X' => Some((0, 0x0f)),
                _ => Some(((c as char).to_digit(16)? as u8, 0)),
            }
        }
        let b = s.as_bytes();
        let (mut data, mut mask) = (Vec::new(), Vec::new());
        let mut i = 0;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let Some(&c) = b.get(i) else { break };
            let (mut v, mut m) = nibble(c)?;
            i += 1;
            if let Some(&c2) = b.get(i).filter(|c| **c != b' ' && **c != b'\t') {
                let (v2, m2) = nibble(c2)?;
                v = v << 4 | v2;
                m = m << 4 | m2;
                i += 1;
            }
            data.push(v);
            mask.push(m);
        }
        (!data.is_empty()).then_some((data, mask))
    }

    /// `Err(why)` when `got` does not pass.
    pub fn judge(&self, got: &[u8]) -> Result<(), String> {
        let n = got.len();
        if n < usize::from(self.min_len) || n > usize::from(self.max_len) {
            return Err(format!(
                "reply of {n} bytes, not {}..={}",
                self.min_len, self.max_len
            ));
        }
        for (i, ((g, d), m)) in got.iter().zip(&self.data).zip(&self.mask).enumerate() {
            if (g ^ d) & !m != 0 {
                return Err(format!(
                    "reply octet {i} is {g:02x}, expected {d:02x} (mask {:02x})",
                    !m
                ));
            }
        }
        Ok(())
    }
}

impl CheckKind {
    /// keepalived's name of the checker.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http { tls: false, .. } => "HTTP_GET",
            CheckKind::Http { tls: true, .. } => "SSL_GET",
            CheckKind::Udp { .. } => "UDP_CHECK",
            CheckKind::Misc { .. } => "MISC_CHECK",
            CheckKind::Ping => "PING_CHECK",
        }
    }
}

/// One checker, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// What it checks.
    pub kind: CheckKind,
    /// `connect_ip`:`connect_port` (the real server's by default).
    pub target: SocketAddr,
    /// `bindto`:`bind_port`.
    pub bindto: Option<SocketAddr>,
    /// Bound on one attempt.
    pub connect_timeout: Duration,
    /// Between checks.
    pub delay_loop: Duration,
    /// Failed attempts retried before the checker goes down.
    pub retry: u32,
    /// Between retries.
    pub delay_before_retry: Duration,
    /// A random delay up to this before the first attempt.
    pub warmup: Duration,
    /// The service's Proxy Protocol: HTTP_GET and SSL_GET send the header
    /// (the check connection's own addresses) before the request, as the
    /// real server expects one on every connection.
    pub proxy_protocol: Option<crate::model::ProxyProtocol>,
}

/// A real server's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct RealPlan {
    /// The real server as configured (put back from it after removal).
    pub template: RealServer,
    /// Its configured weight.
    pub weight: u32,
    /// Its checkers; it is up when all of them are.
    pub checks: Vec<CheckSpec>,
    /// Weight 0 instead of removal.
    pub inhibit: bool,
    /// Run when it comes up.
    pub notify_up: Option<String>,
    /// Run when it goes down.
    pub notify_down: Option<String>,
}

/// A service's health settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// The service (None only in a plan of an invalid config).
    pub key: Option<ServiceKey>,
    /// Real servers start down.
    pub alpha: bool,
    /// `quorum_down` at shutdown.
    pub omega: bool,
    /// Minimum healthy weight.
    pub quorum: u64,
    /// Around the quorum.
    pub hysteresis: u64,
    /// Run when the quorum is gained.
    pub quorum_up: Option<String>,
    /// Run when the quorum is lost.
    pub quorum_down: Option<String>,
    /// The sorry server (also in the model, for the scheduler).
    pub sorry: Option<SocketAddr>,
    /// Real servers with checks.
    pub reals: Vec<RealPlan>,
    /// Passive checking (None: off).
    pub passive: Option<PassivePlan>,
}

/// A service's passive-check settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassivePlan {
    /// Failures within `window` that mark a server down.
    pub threshold: u32,
    /// The window.
    pub window: Duration,
    /// A server without active checks comes back this long after a
    /// passive verdict.
    pub recover: Duration,
}

/// Every check rvsd runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Services with health settings or checked real servers.
    pub services: Vec<ServicePlan>,
}

impl Plan {
    /// Number of checkers.
    pub fn checks(&self) -> usize {
        self.services
            .iter()
            .flat_map(|s| &s.reals)
            .map(|r| r.checks.len())
            .sum()
    }
}

/// Which checker a report is about: indices into the [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckId {
    /// Service index.
    pub svc: usize,
    /// Real server index in the service's plan.
    pub real: usize,
    /// Checker index.
    pub check: usize,
}

/// One attempt, from a checker thread.
#[derive(Debug, Clone)]
pub struct Report {
    /// The monitor that ran it (reports of a replaced one are ignored).
    pub generation: u64,
    /// Which checker.
    pub id: CheckId,
    /// What happened.
    pub outcome: Outcome,
    /// The checker's verdict changed to this (after its retries).
    pub changed: Option<bool>,
    /// When.
    pub at: SystemTime,
}

/// Where checker threads send their reports (the control thread's queue).
pub type Sink = Arc<dyn Fn(Report) + Send + Sync>;

/// The checker threads; dropping it stops them (each finishes at most
/// its current attempt).
pub struct Monitor {
    stops: Vec<Sender<()>>,
}

/// Stack of a checker thread: probes need little.
const CHECK_STACK: usize = 128 * 1024;

fn random_below(d: Duration, salt: u64) -> Duration {
    if d.is_zero() {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(salt);
    let frac = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    d.mul_f64(frac)
}

impl Monitor {
    /// Starts one thread per checker of `plan`; `up(id)` is each
    /// checker's starting verdict.
    pub fn start(
        plan: &Plan,
        generation: u64,
        up: impl Fn(CheckId) -> bool,
        sink: Sink,
    ) -> Result<Monitor, String> {
        let mut stops = Vec::new();
        for (si, s) in plan.services.iter().enumerate() {
            for (ri, r) in s.reals.iter().enumerate() {
                for (ci, c) in r.checks.iter().enumerate() {
                    let id = CheckId {
                        svc: si,
                        real: ri,
                        check: ci,
                    };
                    let (tx, rx) = mpsc::channel::<()>();
                    let spec = c.clone();
                    let sink = sink.clone();
                    let start_up = up(id);
                    std::thread::Builder::new()
                        .name("rvsd-check".into())
                        .stack_size(CHECK_STACK)
                        .spawn(move || {
                            let salt = (si as u64) << 40 | (ri as u64) << 20 | ci as u64;
                            let mut wait = random_below(spec.warmup, salt);
                            let mut checker = Checker::new(spec.retry, start_up);
                            loop {
                                match rx.recv_timeout(wait) {
                                    Err(RecvTimeoutError::Timeout) => {}
                                    _ => return,
                                }
                                let outcome = probe::run(&spec);
                                let step = checker.record(
                                    outcome.ok,
                                    spec.delay_loop,
                                    spec.delay_before_retry,
                                );
                                sink(Report {
                                    generation,
                                    id,
                                    outcome,
                                    changed: step.changed,
                                    at: SystemTime::now(),
                                });
                                wait = step.next;
                            }
                        })
                        .map_err(|e| format!("cannot start a checker thread: {e}"))?;
                    stops.push(tx);
                }
            }
        }
        Ok(Monitor { stops })
    }

    /// Number of checker threads.
    pub fn threads(&self) -> usize {
        self.stops.len()
    }
}

/// One checker's state as the control thread sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckState {
    /// Its verdict.
    pub up: bool,
    /// The last attempt.
    pub last: Option<Outcome>,
    /// When the last attempt ended.
    pub last_at: Option<SystemTime>,
    /// When the verdict last changed (None: never since start).
    pub changed_at: Option<SystemTime>,
    /// Attempts that passed.
    pub ok: u64,
    /// Attempts that failed.
    pub failed: u64,
    /// Verdict changes.
    pub transitions: u64,
}

/// A real server's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealState {
    /// All its checkers pass.
    pub up: bool,
    /// Weight while up (configured, or a `misc_dynamic` one).
    pub weight: u32,
    /// When it last changed.
    pub changed_at: Option<SystemTime>,
    /// Why it last changed.
    pub reason: String,
    /// Down by a passive verdict, until an active check passes (or, with
    /// no active checks, `passive_recover` has passed).
    pub passive_down: bool,
    /// Recent passive failures (within the service's window).
    pub passive_fails: std::collections::VecDeque<SystemTime>,
}

/// A verdict that changed, for the log and the notify scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A real server is up (true) or down (false).
    Real {
        /// Service index.
        svc: usize,
        /// Real index.
        real: usize,
        /// New state.
        up: bool,
    },
    /// A service's quorum is met (true) or lost (false).
    Quorum {
        /// Service index.
        svc: usize,
        /// New state.
        up: bool,
    },
    /// A `misc_dynamic` weight changed.
    Weight {
        /// Service index.
        svc: usize,
        /// Real index.
        real: usize,
    },
}

impl Transition {
    /// The service it concerns.
    pub fn svc(&self) -> usize {
        match *self {
            Transition::Real { svc, .. }
            | Transition::Quorum { svc, .. }
            | Transition::Weight { svc, .. } => svc,
        }
    }
}

/// Health state of every checked service, kept by the control thread.
pub struct Health {
    plan: Plan,
    generation: u64,
    checks: Vec<Vec<Vec<CheckState>>>,
    reals: Vec<Vec<RealState>>,
    quorum: Vec<Quorum>,
    monitor: Option<Monitor>,
}

/// Runs an operator's command (`notify_up`, `quorum_down`, ...) with
/// `sh -c`, without waiting for it: a helper thread reaps it.
pub fn run_script(cmd: &str) {
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .spawn();
    match child {
        Ok(mut c) => {
            let _ = std::thread::Builder::new()
                .name("rvsd-notify".into())
                .spawn(move || {
                    let _ = c.wait();
                });
        }
        Err(e) => crate::daemon::log::log(format!("health: cannot run '{cmd}': {e}")),
    }
}

fn ago(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => crate::daemon::log::timestamp(t),
        None => "-".into(),
    }
}

impl Health {
    /// The state of `plan` before any check: real servers up, or down
    /// under `alpha`; quorums judged from that.
    pub fn new(plan: Plan, generation: u64) -> Health {
        let mut h = Health {
            checks: Vec::new(),
            reals: Vec::new(),
            quorum: Vec::new(),
            generation,
            monitor: None,
            plan,
        };
        for s in &h.plan.services {
            let up = !s.alpha;
            h.checks.push(
                s.reals
                    .iter()
                    .map(|r| {
                        r.checks
                            .iter()
                            .map(|_| CheckState {
                                up,
                                ..CheckState::default()
                            })
                            .collect()
                    })
                    .collect(),
            );
            h.reals.push(
                s.reals
                    .iter()
                    .map(|r| RealState {
                        up,
                        weight: r.weight,
                        changed_at: None,
                        reason: if up {
                            "not checked yet".into()
                        } else {
                            "alpha: down until checked".into()
                        },
                        passive_down: false,
                        passive_fails: Default::default(),
                    })
                    .collect(),
            );
            h.quorum.push(Quorum { up: true });
        }
        for si in 0..h.plan.services.len() {
            let w = h.alive_weight(si);
            let s = &h.plan.services[si];
            h.quorum[si].eval(w, s.quorum, s.hysteresis);
        }
        h
    }

    /// Takes over the states of `old` for the checkers that did not
    /// change (a reload must not flap healthy servers).
    pub fn inherit(&mut self, old: &Health) {
        for (si, s) in self.plan.services.iter().enumerate() {
            let Some(oi) = old.plan.services.iter().position(|o| o.key == s.key) else {
                continue;
            };
            for (ri, r) in s.reals.iter().enumerate() {
                let o = &old.plan.services[oi];
                let Some(ori) = o
                    .reals
                    .iter()
                    .position(|x| x.template.addr == r.template.addr && x.checks == r.checks)
                else {
                    continue;
                };
                self.checks[si][ri] = old.checks[oi][ori].clone();
                let mut st = old.reals[oi][ori].clone();
                if o.reals[ori].weight != r.weight {
                    st.weight = r.weight;
                }
                self.reals[si][ri] = st;
            }
            self.quorum[si] = old.quorum[oi];
            let w = self.alive_weight(si);
            self.quorum[si].eval(w, s.quorum, s.hysteresis);
        }
    }

    /// Starts the checker threads.
    pub fn start(&mut self, sink: Sink) -> Result<(), String> {
        let checks = &self.checks;
        let m = Monitor::start(
            &self.plan,
            self.generation,
            |id| checks[id.svc][id.real][id.check].up,
            sink,
        )?;
        self.monitor = Some(m);
        Ok(())
    }

    /// The monitor generation (reports of others are ignored).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A real server's state.
    pub fn real(&self, svc: usize, real: usize) -> Option<&RealState> {
        self.reals.get(svc)?.get(real)
    }

    /// A service's quorum state.
    pub fn quorum_up(&self, svc: usize) -> Option<bool> {
        self.quorum.get(svc).map(|q| q.up)
    }

    fn alive_weight(&self, si: usize) -> u64 {
        self.reals[si]
            .iter()
            .filter(|r| r.up)
            .map(|r| u64::from(r.weight))
            .sum()
    }

    /// Folds one report in; returns what changed (empty for most).
    pub fn on_report(&mut self, r: &Report) -> Vec<Transition> {
        let mut out = Vec::new();
        if r.generation != self.generation {
            return out;
        }
        let CheckId { svc, real, check } = r.id;
        let Some(cs) = self
            .checks
            .get_mut(svc)
            .and_then(|x| x.get_mut(real))
            .and_then(|x| x.get_mut(check))
        else {
            return out;
        };
        if r.outcome.ok {
            cs.ok += 1;
        } else {
            cs.failed += 1;
        }
        cs.last = Some(r.outcome.clone());
        cs.last_at = Some(r.at);
        if let Some(up) = r.changed {
            if cs.up != up {
                cs.up = up;
                cs.changed_at = Some(r.at);
                cs.transitions += 1;
            }
        }
        let plan = &self.plan.services[svc].reals[real];
        let rs = &mut self.reals[svc][real];
        // a passive verdict holds until an active check passes
        if rs.passive_down && r.outcome.ok {
            rs.passive_down = false;
            rs.passive_fails.clear();
        }
        let all_up = !rs.passive_down && self.checks[svc][real].iter().all(|c| c.up);
        if let (true, Some(w)) = (r.outcome.ok, r.outcome.weight) {
            if w != rs.weight {
                rs.weight = w;
                if rs.up {
                    out.push(Transition::Weight { svc, real });
                }
            }
        } else if r.outcome.ok && r.outcome.weight.is_none() && rs.weight != plan.weight {
            // misc_dynamic exit 0: back to the configured weight
            if matches!(
                plan.checks[check].kind,
                CheckKind::Misc { dynamic: true, .. }
            ) {
                rs.weight = plan.weight;
                if rs.up {
                    out.push(Transition::Weight { svc, real });
                }
            }
        }
        if all_up != rs.up {
            rs.up = all_up;
            rs.changed_at = Some(r.at);
            rs.reason = format!(
                "{} {}: {}",
                plan.checks[check].kind.name(),
                plan.checks[check].target,
                r.outcome.reason
            );
            out.push(Transition::Real {
                svc,
                real,
                up: all_up,
            });
        }
        if !out.is_empty() {
            let w = self.alive_weight(svc);
            let s = &self.plan.services[svc];
            if let Some(up) = self.quorum[svc].eval(w, s.quorum, s.hysteresis) {
                out.push(Transition::Quorum { svc, up });
            }
        }
        out
    }

    /// Folds in one passive failure the dataplane saw for real server
    /// `real` of service `svc` at `at`; at `passive_fail_threshold`
    /// failures within `passive_window` the server goes down exactly as
    /// by a failed active check.
    pub fn on_passive(
        &mut self,
        svc: usize,
        real: usize,
        why: &str,
        at: SystemTime,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let Some(pp) = self.plan.services.get(svc).and_then(|s| s.passive) else {
            return out;
        };
        let Some(rs) = self.reals.get_mut(svc).and_then(|x| x.get_mut(real)) else {
            return out;
        };
        rs.passive_fails.push_back(at);
        while let Some(&t) = rs.passive_fails.front() {
            match at.duration_since(t) {
                Ok(d) if d > pp.window => {
                    rs.passive_fails.pop_front();
                }
                _ => break,
            }
        }
        if !rs.up || (rs.passive_fails.len() as u64) < u64::from(pp.threshold) {
            return out;
        }
        rs.up = false;
        rs.passive_down = true;
        rs.changed_at = Some(at);
        rs.reason = why.to_string();
        out.push(Transition::Real {
            svc,
            real,
            up: false,
        });
        let w = self.alive_weight(svc);
        let s = &self.plan.services[svc];
        if let Some(up) = self.quorum[svc].eval(w, s.quorum, s.hysteresis) {
            out.push(Transition::Quorum { svc, up });
        }
        out
    }

    /// Puts back the real servers that a passive verdict took down and
    /// that have no active check to bring them back, `passive_recover`
    /// after the verdict.
    pub fn passive_recover(&mut self, now: SystemTime) -> Vec<Transition> {
        let mut out = Vec::new();
        for svc in 0..self.plan.services.len() {
            let Some(pp) = self.plan.services[svc].passive else {
                continue;
            };
            let mut changed = false;
            for real in 0..self.reals[svc].len() {
                if !self.plan.services[svc].reals[real].checks.is_empty() {
                    continue;
                }
                let rs = &mut self.reals[svc][real];
                let due = rs
                    .changed_at
                    .and_then(|c| now.duration_since(c).ok())
                    .is_some_and(|d| d >= pp.recover);
                if rs.passive_down && due {
                    rs.passive_down = false;
                    rs.passive_fails.clear();
                    rs.up = true;
                    rs.changed_at = Some(now);
                    rs.reason = "passive: recover time passed".into();
                    out.push(Transition::Real {
                        svc,
                        real,
                        up: true,
                    });
                    changed = true;
                }
            }
            if changed {
                let w = self.alive_weight(svc);
                let s = &self.plan.services[svc];
                if let Some(up) = self.quorum[svc].eval(w, s.quorum, s.hysteresis) {
                    out.push(Transition::Quorum { svc, up });
                }
            }
        }
        out
    }

    /// The log line of a transition.
    pub fn describe(&self, t: &Transition) -> String {
        let s = &self.plan.services[t.svc()];
        let key = s.key.map(|k| k.to_string()).unwrap_or_default();
        match *t {
            Transition::Real { real, up, .. } => {
                let st = &self.reals[t.svc()][real];
                let rp = &s.reals[real];
                let effect = if up {
                    format!("back with weight {}", st.weight)
                } else if rp.inhibit {
                    "weight 0 (inhibit_on_failure)".into()
                } else {
                    "removed".into()
                };
                format!(
                    "health: {key} real server {} is {} ({}); {effect}",
                    rp.template.addr,
                    if up { "UP" } else { "DOWN" },
                    st.reason
                )
            }
            Transition::Quorum { up, .. } => format!(
                "health: {key} quorum {} (healthy weight {}, quorum {}, hysteresis {}){}",
                if up { "gained" } else { "lost" },
                self.alive_weight(t.svc()),
                s.quorum,
                s.hysteresis,
                match (up, s.sorry) {
                    (false, Some(a)) => format!("; sorry server {a} takes new connections"),
                    _ => String::new(),
                }
            ),
            Transition::Weight { real, .. } => format!(
                "health: {key} real server {} weight {} (misc_dynamic)",
                s.reals[real].template.addr,
                self.reals[t.svc()][real].weight
            ),
        }
    }

    /// Runs the notify scripts of a transition.
    pub fn notify(&self, t: &Transition) {
        let s = &self.plan.services[t.svc()];
        let cmd = match *t {
            Transition::Real { real, up: true, .. } => s.reals[real].notify_up.as_ref(),
            Transition::Real {
                real, up: false, ..
            } => s.reals[real].notify_down.as_ref(),
            Transition::Quorum { up: true, .. } => s.quorum_up.as_ref(),
            Transition::Quorum { up: false, .. } => s.quorum_down.as_ref(),
            Transition::Weight { .. } => None,
        };
        if let Some(c) = cmd {
            run_script(c);
        }
    }

    /// Makes service `svc` of `model` what its health says, as keepalived
    /// makes IPVS: healthy real servers at their weight, failed ones
    /// removed (weight 0 with `inhibit_on_failure`), and with the quorum
    /// lost and a sorry server set, every real server out so that the
    /// scheduler's sorry server takes the new connections.
    pub fn apply(&self, model: &mut Model, svc: usize) {
        let Some(sp) = self.plan.services.get(svc) else {
            return;
        };
        let Some(key) = sp.key else { return };
        let Some(service) = model.services.iter_mut().find(|s| s.key == key) else {
            return;
        };
        let sorry_mode = !self.quorum[svc].up && sp.sorry.is_some();
        for (ri, rp) in sp.reals.iter().enumerate() {
            let st = &self.reals[svc][ri];
            let want = if st.up && !sorry_mode {
                Some(st.weight)
            } else if rp.inhibit {
                Some(0)
            } else {
                None
            };
            let pos = service
                .reals
                .iter()
                .position(|r| r.addr == rp.template.addr);
            match (pos, want) {
                (Some(i), Some(w)) => service.reals[i].weight = w,
                (Some(i), None) => {
                    service.reals.remove(i);
                }
                (None, Some(w)) => {
                    let mut r = rp.template.clone();
                    r.weight = w;
                    service.reals.push(r);
                }
                (None, None) => {}
            }
        }
    }

    /// [`Health::apply`] for every service.
    pub fn apply_all(&self, model: &mut Model) {
        for si in 0..self.plan.services.len() {
            self.apply(model, si);
        }
    }

    /// Stops the checkers; with `omega`, runs `quorum_down` of the
    /// services whose quorum was up.
    pub fn stop(&mut self) {
        self.replace_by(&Plan::default());
    }

    /// Stops the checkers for a reload to `next`: `omega` runs
    /// `quorum_down` only for the services `next` no longer has.
    pub fn replace_by(&mut self, next: &Plan) {
        self.monitor = None;
        for (si, s) in self.plan.services.iter().enumerate() {
            let kept = next.services.iter().any(|n| n.key == s.key);
            if s.omega && self.quorum[si].up && !kept {
                if let Some(c) = &s.quorum_down {
                    run_script(c);
                }
            }
        }
    }

    /// `rvsadm --health`: each service's quorum, each real server's
    /// verdict and each check's state, last result, last change and reason.
    pub fn listing(&self) -> String {
        let mut out = String::new();
        if self.plan.services.is_empty() {
            out.push_str("no health checks configured\n");
            return out;
        }
        for (si, s) in self.plan.services.iter().enumerate() {
            let key = s.key.map(|k| k.to_string()).unwrap_or_default();
            let _ = write!(
                out,
                "{key} quorum {} (healthy weight {}, quorum {}, hysteresis {})",
                if self.quorum[si].up { "UP" } else { "DOWN" },
                self.alive_weight(si),
                s.quorum,
                s.hysteresis
            );
            if let Some(a) = s.sorry {
                let _ = write!(out, " sorry_server {a}");
            }
            out.push('\n');
            for (ri, rp) in s.reals.iter().enumerate() {
                let st = &self.reals[si][ri];
                let _ = writeln!(
                    out,
                    "  -> {} {} weight {}{} since {} ({})",
                    rp.template.addr,
                    if st.up { "UP" } else { "DOWN" },
                    st.weight,
                    if rp.inhibit {
                        " inhibit_on_failure"
                    } else {
                        ""
                    },
                    ago(st.changed_at),
                    st.reason
                );
                for (ci, c) in rp.checks.iter().enumerate() {
                    let cs = &self.checks[si][ri][ci];
                    let last = match &cs.last {
                        Some(o) => format!(
                            "{} ({}) at {}",
                            if o.ok { "ok" } else { "failed" },
                            o.reason,
                            ago(cs.last_at)
                        ),
                        None => "none yet".into(),
                    };
                    let _ = writeln!(
                        out,
                        "     {} {} {} last {last}; changed {}; {} ok, {} failed",
                        c.kind.name(),
                        c.target,
                        if cs.up { "UP" } else { "DOWN" },
                        ago(cs.changed_at),
                        cs.ok,
                        cs.failed
                    );
                }
            }
        }
        out
    }

    /// Prometheus families: `rvs_realserver_up`, `rvs_health_checks_total`,
    /// `rvs_health_transitions_total`, `rvs_service_quorum_up`, with
    /// node_exporter's IPVS labels.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let labels = |key: &ServiceKey, real: Option<SocketAddr>| {
            let mut l = if key.is_fwmark() {
                // as node_exporter labels a fwmark service (see metrics)
                format!(
                    "local_address=\"\",local_port=\"0\",proto=\"FWM\",local_mark=\"{:08X}\"",
                    key.fwmark
                )
            } else {
                format!(
                    "local_address=\"{}\",local_port=\"{}\",proto=\"{}\"",
                    key.addr.ip(),
                    key.addr.port(),
                    key.proto.upper()
                )
            };
            if let Some(r) = real {
                let _ = write!(
                    l,
                    ",remote_address=\"{}\",remote_port=\"{}\"",
                    r.ip(),
                    r.port()
                );
            }
            l
        };
        out.push_str(
            "# HELP rvs_realserver_up Whether every health check of the real server passes.\n\
             # TYPE rvs_realserver_up gauge\n",
        );
        for (si, s) in self.plan.services.iter().enumerate() {
            let Some(k) = s.key else { continue };
            for (ri, rp) in s.reals.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "rvs_realserver_up{{{}}} {}",
                    labels(&k, Some(rp.template.addr)),
                    u8::from(self.reals[si][ri].up)
                );
            }
        }
        out.push_str(
            "# HELP rvs_health_checks_total Health-check attempts by checker and result.\n\
             # TYPE rvs_health_checks_total counter\n",
        );
        let mut trans = String::new();
        for (si, s) in self.plan.services.iter().enumerate() {
            let Some(k) = s.key else { continue };
            for (ri, rp) in s.reals.iter().enumerate() {
                for (ci, c) in rp.checks.iter().enumerate() {
                    let cs = &self.checks[si][ri][ci];
                    let l = format!(
                        "{},check=\"{}\",check_index=\"{ci}\"",
                        labels(&k, Some(rp.template.addr)),
                        c.kind.name()
                    );
                    let _ = writeln!(
                        out,
                        "rvs_health_checks_total{{{l},result=\"ok\"}} {}",
                        cs.ok
                    );
                    let _ = writeln!(
                        out,
                        "rvs_health_checks_total{{{l},result=\"failed\"}} {}",
                        cs.failed
                    );
                    let _ = writeln!(
                        trans,
                        "rvs_health_transitions_total{{{l}}} {}",
                        cs.transitions
                    );
                }
            }
        }
        out.push_str(
            "# HELP rvs_health_transitions_total Changes of a checker's verdict.\n\
             # TYPE rvs_health_transitions_total counter\n",
        );
        out.push_str(&trans);
        out.push_str(
            "# HELP rvs_service_quorum_up Whether the service's healthy weight meets its quorum.\n\
             # TYPE rvs_service_quorum_up gauge\n",
        );
        for (si, s) in self.plan.services.iter().enumerate() {
            let Some(k) = s.key else { continue };
            let _ = writeln!(
                out,
                "rvs_service_quorum_up{{{}}} {}",
                labels(&k, None),
                u8::from(self.quorum[si].up)
            );
        }
        out
    }
}

#[cfg(test)]
mod daemon_tests;
#[cfg(test)]
mod tests;
