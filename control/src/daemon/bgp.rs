//! The BIRD driver: a thread that makes BIRD announce what the control
//! thread wants (see [`crate::bgp`] for the design).
//!
//! The control thread computes the set of VIPs to announce after every
//! change and hands it to [`Speaker::set`], which never blocks. The
//! thread writes the include file (a temporary file renamed over it, so
//! BIRD never reads half of one) and runs `birdc configure` with a time
//! limit; when that fails (BIRD not running yet, a config error of the
//! operator's) it logs the reason once and retries every second. What
//! BIRD confirmed is the *announced* set that `rvsadm --bgp` and the
//! metrics show.
//!
//! With `manage = true` the same thread runs BIRD itself: it writes the
//! include file, starts `setpriv --pdeathsig TERM -- bird -f -c
//! <bird_conf>` and restarts it (at most once a second) when it exits.
//! The death signal is the point: the kernel sends BIRD SIGTERM when the
//! thread that started it ends, and every thread ends when rvsd dies,
//! SIGKILL and crashes included, so BIRD shuts its sessions down (a BGP
//! Cease to every router) and the routers withdraw the director's VIPs
//! at once. On a clean stop the thread ends after the VIPs are withdrawn
//! and [`Speaker::stop`] reaps BIRD.

use super::log::log;
use crate::bgp::{self, BgpConf};
use std::collections::BTreeSet;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest a `birdc configure` may take before it is killed.
const BIRDC_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// Longest a managed BIRD may take to stop after its SIGTERM.
const BIRD_STOP: Duration = Duration::from_secs(5);
/// Longest to wait for a managed BIRD's control socket at its start.
const BIRD_START: Duration = Duration::from_secs(3);
/// BIRD's control socket when `socket` is not set.
const BIRD_SOCKET: &str = "/run/bird/bird.ctl";

#[derive(Default)]
struct State {
    /// What the control thread wants announced, and its generation.
    want: BTreeSet<IpAddr>,
    want_gen: u64,
    /// What BIRD confirmed (None: nothing confirmed yet), for generation
    /// `done_gen`.
    announced: Option<BTreeSet<IpAddr>>,
    done_gen: u64,
    /// The last failure, until an attempt succeeds.
    error: Option<String>,
    /// VIPs withdrawn so far (each VIP each time).
    withdrawals: u64,
    /// Successful `birdc configure` runs.
    reconfigs: u64,
    stop: bool,
}

/// The running driver.
pub struct Speaker {
    cfg: BgpConf,
    shared: Arc<(Mutex<State>, Condvar)>,
    /// Returns the managed BIRD, if any, when it ends.
    thread: Option<JoinHandle<Option<Child>>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Speaker {
    /// Starts the driver; the first thing it does is write the include
    /// file with `want` (BIRD starting later reads it as it is).
    pub fn start(cfg: BgpConf, want: BTreeSet<IpAddr>) -> Result<Speaker, String> {
        let shared = Arc::new((
            Mutex::new(State {
                want,
                want_gen: 1,
                ..State::default()
            }),
            Condvar::new(),
        ));
        let thread = std::thread::Builder::new()
            .name("rvsd-bgp".into())
            .spawn({
                let shared = shared.clone();
                let cfg = cfg.clone();
                move || drive(&cfg, &shared)
            })
            .map_err(|e| format!("cannot start thread rvsd-bgp: {e}"))?;
        Ok(Speaker {
            cfg,
            shared,
            thread: Some(thread),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BgpConf {
        &self.cfg
    }

    /// Asks for `want` to be announced (and nothing else); returns at once.
    pub fn set(&self, want: BTreeSet<IpAddr>) {
        let (m, cv) = &*self.shared;
        let mut s = lock(m);
        if s.want != want {
            s.want = want;
            s.want_gen += 1;
            cv.notify_all();
        }
    }

    /// Waits until BIRD confirmed the last [`Speaker::set`], at most
    /// `timeout`; returns whether it did, and the last error if not.
    pub fn wait(&self, timeout: Duration) -> Result<(), String> {
        let (m, cv) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut s = lock(m);
        while s.done_gen != s.want_gen {
            let now = Instant::now();
            if now >= deadline {
                return Err(s
                    .error
                    .clone()
                    .unwrap_or_else(|| "birdc has not answered yet".into()));
            }
            s = cv
                .wait_timeout(s, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        Ok(())
    }

    /// What BIRD confirmed announcing (empty before the first success).
    pub fn announced(&self) -> BTreeSet<IpAddr> {
        lock(&self.shared.0).announced.clone().unwrap_or_default()
    }

    /// The `rvsadm --bgp` listing: the speaker, then one line per VIP.
    pub fn listing(&self, vips: &BTreeSet<IpAddr>, reason: &str) -> String {
        let s = lock(&self.shared.0);
        let announced = s.announced.clone().unwrap_or_default();
        let mut out = format!(
            "speaker bird, include {}, {}\n",
            self.cfg.include,
            match (&s.error, s.done_gen == s.want_gen) {
                (Some(e), _) => format!("birdc failing: {e}"),
                (None, true) => "in sync".to_string(),
                (None, false) => "updating".to_string(),
            }
        );
        out.push_str(&format!("state: {reason}\n"));
        for ip in vips.iter().chain(announced.difference(vips)) {
            let (a, w) = (announced.contains(ip), s.want.contains(ip));
            let what = match (a, w) {
                (true, true) => "announced",
                (false, false) => "withdrawn",
                (false, true) => "announcing",
                (true, false) => "withdrawing",
            };
            out.push_str(&format!("{ip} {what}\n"));
        }
        out
    }

    /// Prometheus lines: `rvs_bgp_announced{vip}` for every VIP in
    /// `vips` (and every one still announced), the withdraw and
    /// reconfiguration counters, whether birdc is failing.
    pub fn metrics(&self, vips: &BTreeSet<IpAddr>) -> String {
        let s = lock(&self.shared.0);
        let announced = s.announced.clone().unwrap_or_default();
        let mut out = String::from(
            "# HELP rvs_bgp_announced Whether BIRD announces the VIP (1) or not (0).\n\
             # TYPE rvs_bgp_announced gauge\n",
        );
        for ip in vips.iter().chain(announced.difference(vips)) {
            out.push_str(&format!(
                "rvs_bgp_announced{{vip=\"{ip}\"}} {}\n",
                u8::from(announced.contains(ip))
            ));
        }
        out.push_str(&format!(
            "# HELP rvs_bgp_withdrawals_total VIPs withdrawn (each VIP each time).\n\
             # TYPE rvs_bgp_withdrawals_total counter\n\
             rvs_bgp_withdrawals_total {}\n\
             # HELP rvs_bgp_reconfigurations_total Successful birdc configure runs.\n\
             # TYPE rvs_bgp_reconfigurations_total counter\n\
             rvs_bgp_reconfigurations_total {}\n\
             # HELP rvs_bgp_speaker_errors Whether the last birdc configure failed (1).\n\
             # TYPE rvs_bgp_speaker_errors gauge\n\
             rvs_bgp_speaker_errors {}\n",
            s.withdrawals,
            s.reconfigs,
            u8::from(s.error.is_some())
        ));
        out
    }

    /// Stops the thread (after its current attempt); a managed BIRD gets
    /// its SIGTERM as the thread ends and is waited for, at most
    /// [`BIRD_STOP`] before it is killed.
    pub fn stop(mut self) {
        {
            let (m, cv) = &*self.shared;
            lock(m).stop = true;
            cv.notify_all();
        }
        let Some(mut bird) = self.thread.take().and_then(|t| t.join().ok()).flatten() else {
            return;
        };
        let deadline = Instant::now() + BIRD_STOP;
        loop {
            match bird.try_wait() {
                Ok(Some(st)) => {
                    log(format!("bgp: BIRD (pid {}) stopped: {st}", bird.id()));
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    log(format!(
                        "bgp: BIRD (pid {}) did not stop within {} s of its SIGTERM; killing it",
                        bird.id(),
                        BIRD_STOP.as_secs()
                    ));
                    let _ = bird.kill();
                    let _ = bird.wait();
                    return;
                }
            }
        }
    }
}

/// A managed BIRD: started if there is none or it exited (logged).
fn supervise(cfg: &BgpConf, bird: &mut Option<Child>, want: &BTreeSet<IpAddr>) {
    if let Some(b) = bird {
        match b.try_wait() {
            Ok(None) => return,
            Ok(Some(st)) => log(format!(
                "bgp: BIRD (pid {}) exited: {st}; restarting it",
                b.id()
            )),
            Err(e) => log(format!("bgp: BIRD (pid {}): {e}; restarting it", b.id())),
        }
        *bird = None;
    } else if let Err(e) = write_include(cfg, want) {
        // the first start: BIRD reads the include file as it starts
        log(format!("bgp: {e}"));
    }
    let sock = cfg.socket.as_deref().unwrap_or(BIRD_SOCKET);
    let conf = cfg.bird_conf.as_deref().unwrap_or_default();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--pdeathsig", "TERM", "--", &cfg.bird, "-f", "-c", conf]);
    if cfg.socket.is_some() {
        cmd.args(["-s", sock]);
    }
    match cmd.stdin(Stdio::null()).spawn() {
        Ok(child) => {
            log(format!(
                "bgp: started BIRD (pid {}): {} -f -c {conf} (stopped with rvsd)",
                child.id(),
                cfg.bird
            ));
            *bird = Some(child);
            // its socket, so that the first `birdc configure` finds it
            let deadline = Instant::now() + BIRD_START;
            while !Path::new(sock).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(e) => log(format!(
            "bgp: cannot start BIRD (setpriv --pdeathsig TERM -- {}): {e}; retrying every second",
            cfg.bird
        )),
    }
}

/// The thread: apply each new generation until it sticks (and, with
/// `manage`, keep BIRD running, looking at it every second); returns the
/// managed BIRD.
fn drive(cfg: &BgpConf, shared: &(Mutex<State>, Condvar)) -> Option<Child> {
    let (m, cv) = shared;
    let mut bird: Option<Child> = None;
    loop {
        if cfg.manage {
            let want = lock(m).want.clone();
            supervise(cfg, &mut bird, &want);
        }
        let (want, gen) = {
            let mut s = lock(m);
            if s.stop {
                return bird;
            }
            if s.want_gen == s.done_gen {
                s = if cfg.manage {
                    cv.wait_timeout(s, RETRY)
                        .map(|(g, _)| g)
                        .unwrap_or_else(|e| e.into_inner().0)
                } else {
                    cv.wait(s)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                };
                continue;
            }
            (s.want.clone(), s.want_gen)
        };
        let failed = match apply(cfg, &want) {
            Ok(()) => {
                let mut s = lock(m);
                let old = s.announced.take().unwrap_or_default();
                s.withdrawals += old.difference(&want).count() as u64;
                s.reconfigs += 1;
                let list: Vec<String> = want.iter().map(ToString::to_string).collect();
                log(format!(
                    "bgp: BIRD announces {}",
                    if list.is_empty() {
                        "no VIP".to_string()
                    } else {
                        list.join(", ")
                    }
                ));
                s.announced = Some(want);
                s.done_gen = gen;
                s.error = None;
                cv.notify_all();
                false
            }
            Err(e) => {
                let mut s = lock(m);
                if s.error.as_deref() != Some(e.as_str()) {
                    log(format!("bgp: {e} (retrying every second)"));
                }
                s.error = Some(e);
                cv.notify_all();
                true
            }
        };
        if failed {
            let s = lock(m);
            if !s.stop {
                let _ = cv.wait_timeout(s, RETRY);
            }
        }
    }
}

/// Writes the include file (a temporary file renamed over it) unless it
/// already says `want`.
fn write_include(cfg: &BgpConf, want: &BTreeSet<IpAddr>) -> Result<(), String> {
    let path = Path::new(&cfg.include);
    let text = bgp::include_text(cfg, want);
    if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
        let tmp = path.with_extension("rvsd-tmp");
        std::fs::write(&tmp, &text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes the include file and runs `birdc configure`.
fn apply(cfg: &BgpConf, want: &BTreeSet<IpAddr>) -> Result<(), String> {
    write_include(cfg, want)?;
    let mut cmd = Command::new(&cfg.birdc);
    if let Some(s) = &cfg.socket {
        cmd.arg("-s").arg(s);
    }
    let mut child = cmd
        .arg("configure")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cfg.birdc))?;
    let deadline = Instant::now() + BIRDC_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} configure did not answer within {} s",
                    cfg.birdc,
                    BIRDC_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("{} configure: {e}", cfg.birdc)),
        }
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut out);
    }
    if status.success() && out.contains("Reconfigur") {
        return Ok(());
    }
    // birdc's own words, without its greeting
    let why: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("BIRD ") && !l.starts_with("Reading"))
        .collect();
    Err(format!(
        "{} configure failed ({status}): {}",
        cfg.birdc,
        why.join("; ")
    ))
}
