//! Network-namespace topologies for end-to-end tests.
//!
//! ```text
//!  client ns (-cl)                director ns (-dir)              real servers (-rs1..)
//!  eth0 198.18.0.10-13/24 ─┐      <tag>-dc (DPDK port 0)    ┌─ eth0 198.18.1.11/24 rs1
//!       2001:db8:0:1::10-13 │     <tag>-ds (DPDK port 1)    ├─ eth0 198.18.1.12/24 rs2
//!                           │        │          │           ├─ eth0 198.18.1.13/24 rs3
//!                     switch ns (-sw): bridge brc   bridge brs
//!                           │                               │
//!                           └──── router ns (-rt) ──────────┘
//!                         eth-c 198.18.0.254      eth-s 198.18.1.254
//! ```
//!
//! Every member namespace has one veth leg on a Linux bridge in the switch
//! namespace: `brc` is the client segment, `brs` the server segment (one L2
//! segment, as DR needs). The director's two legs (`<tag>-dc` on `brc`,
//! `<tag>-ds` on `brs`) live in the director namespace and are left for DPDK
//! `net_af_packet`: no kernel addresses, IPv6 disabled, link up. rvsd runs
//! inside that namespace (`ip netns exec <director> rvsd ...`, see
//! [`Topology::spawn`]), because af_packet opens the interface by name in the
//! namespace of the process. The router namespace is a plain kernel router
//! between the two segments: the return path of DR and TUN replies, which
//! bypass the director.
//!
//! Every kernel-side veth end has checksum offload off (`ethtool -K tx off rx
//! off tso off gso off gro off`) so the frames af_packet reads carry finished
//! checksums (a switch port without tx checksumming finishes them in
//! software even if a sender had offload on; `director_port_sees_finished_
//! checksums` proves it), no GSO/GRO super-frames appear, and no receiving
//! end claims hardware-verified checksums for what rvsd writes.
//! Bridges have multicast snooping off so IPv6 neighbour solicitations reach
//! the DPDK ports, which send no MLD reports.
//!
//! Names: the tag is `rv<pid hex>_<counter hex>` (11 characters at most;
//! namespaces `<tag>-cl`, `-dir`, `-sw`, `-rt`, `-rs1`..; director ports
//! `<tag>-dc`, `<tag>-ds`, 14 characters at most), so
//! tests in one process and in parallel processes never collide, interface
//! names stay within 15 characters, and [`sweep_stale`] can tell leftovers of
//! dead processes.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Every namespace and interface the harness makes starts with this.
pub const PREFIX: &str = "rv";

/// The address plan: constants every scenario shares.
pub mod plan {
    /// Client segment (bridge `brc`).
    pub const CLIENT_NET4: &str = "198.18.0.0/24";
    pub const CLIENT_NET6: &str = "2001:db8:0:1::/64";
    /// Server segment (bridge `brs`).
    pub const SERVER_NET4: &str = "198.18.1.0/24";
    pub const SERVER_NET6: &str = "2001:db8:0:2::/64";
    /// FullNAT local-address pool (routed by the real servers via
    /// [`DIR_SRV4`] / [`DIR_SRV6`]).
    pub const LOCAL_POOL4: &str = "198.18.3.0/24";
    pub const LOCAL_POOL6: &str = "2001:db8:0:3::/64";
    /// The director's address on its client port (the clients' default
    /// gateway).
    pub const DIR_CLI4: &str = "198.18.0.1";
    pub const DIR_CLI6: &str = "2001:db8:0:1::1";
    /// The director's address on its server port (NAT real servers' default
    /// gateway, FullNAT real servers' route to the local pool, TUN outer
    /// source).
    pub const DIR_SRV4: &str = "198.18.1.1";
    pub const DIR_SRV6: &str = "2001:db8:0:2::1";
    /// The virtual service addresses (on the client segment: the director
    /// answers ARP / NDP for them on its client port).
    pub const VIP4: &str = "198.18.0.100";
    pub const VIP6: &str = "2001:db8:0:1::100";
    /// The kernel router between the segments (DR/TUN return path).
    pub const RT_CLI4: &str = "198.18.0.254";
    pub const RT_CLI6: &str = "2001:db8:0:1::fe";
    pub const RT_SRV4: &str = "198.18.1.254";
    pub const RT_SRV6: &str = "2001:db8:0:2::fe";

    /// Client address `i` (0-based): 198.18.0.10+i.
    pub fn client4(i: usize) -> String {
        format!("198.18.0.{}", 10 + i)
    }
    /// Client address `i` (0-based): 2001:db8:0:1::10+i (hex digits).
    pub fn client6(i: usize) -> String {
        format!("2001:db8:0:1::{:x}", 0x10 + i)
    }
    /// Real server `n` (1-based): 198.18.1.10+n.
    pub fn server4(n: usize) -> String {
        format!("198.18.1.{}", 10 + n)
    }
    /// Real server `n` (1-based): 2001:db8:0:2::10+n (hex digits).
    pub fn server6(n: usize) -> String {
        format!("2001:db8:0:2::{:x}", 0x10 + n)
    }
}

// ---------------------------------------------------------------------------
// Commands

/// What a command returned.
#[derive(Debug)]
pub struct Out {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Out {
    pub fn ok(&self) -> bool {
        self.status == Some(0) && !self.timed_out
    }
}

/// Runs `argv`, killing it after `timeout`; collects stdout and stderr.
pub fn run_timeout(argv: &[&str], timeout: Duration) -> Result<Out, String> {
    let mut child = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{argv:?}: {e}"))?;
    let so = reader(child.stdout.take());
    let se = reader(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code(),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                timed_out = true;
                break child.wait().ok().and_then(|s| s.code());
            }
            Ok(None) => thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("{argv:?}: {e}")),
        }
    };
    Ok(Out {
        status,
        stdout: so.join().unwrap_or_default(),
        stderr: se.join().unwrap_or_default(),
        timed_out,
    })
}

fn reader<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut r) = r {
            let _ = r.read_to_string(&mut s);
        }
        s
    })
}

/// Runs `argv` (60 s limit); its stdout, or an error naming the command,
/// its status and its stderr.
pub fn run(argv: &[&str]) -> Result<String, String> {
    let out = run_timeout(argv, Duration::from_secs(60))?;
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(format!(
            "{} failed ({}): {}{}",
            argv.join(" "),
            if out.timed_out {
                "timed out".to_string()
            } else {
                format!("status {:?}", out.status)
            },
            out.stderr.trim(),
            if out.stdout.trim().is_empty() {
                String::new()
            } else {
                format!(" / stdout: {}", out.stdout.trim())
            }
        ))
    }
}

/// [`run`] that panics on failure (set-up steps).
#[track_caller]
pub fn must(argv: &[&str]) -> String {
    run(argv).unwrap_or_else(|e| panic!("{e}"))
}

/// `ip netns exec <ns> argv...`: its stdout, or an error.
pub fn exec(ns: &str, argv: &[&str]) -> Result<String, String> {
    run(&netns_argv(ns, argv))
}

/// `ip netns exec <ns> argv...` with a time limit; the whole result.
pub fn exec_timeout(ns: &str, argv: &[&str], timeout: Duration) -> Result<Out, String> {
    run_timeout(&netns_argv(ns, argv), timeout)
}

fn netns_argv<'a>(ns: &'a str, argv: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["ip", "netns", "exec", ns];
    v.extend_from_slice(argv);
    v
}

/// `ip -n <ns> args...`, panicking on failure.
#[track_caller]
pub fn ip(ns: &str, args: &[&str]) -> String {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    must(&v)
}

/// `sysctl -w k=v ...` inside `ns`, panicking on failure.
#[track_caller]
pub fn sysctl(ns: &str, kv: &[(&str, &str)]) {
    let sets: Vec<String> = kv.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut argv = vec!["sysctl", "-q", "-w"];
    argv.extend(sets.iter().map(String::as_str));
    if let Err(e) = exec(ns, &argv) {
        panic!("{e}");
    }
}

/// Reads one sysctl inside `ns`.
pub fn sysctl_get(ns: &str, key: &str) -> Result<String, String> {
    exec(ns, &["sysctl", "-n", key]).map(|s| s.trim().to_string())
}

/// Whether this is a CI run (`CI` set and not `0`/`false`/empty), where a
/// test that cannot run must fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// Records that `test` cannot run here because of `reason`. In CI
/// ([`in_ci`]) it panics: there a test that cannot run fails. Elsewhere it
/// prints `SKIP test: reason` and appends the line to `$RVS_SKIP_LOG`
/// (`scripts/test.sh` sets it and counts those tests as skipped, not
/// passed, in its closing line). The caller returns right after.
pub fn skip(test: &str, reason: &str) {
    if in_ci() {
        panic!("{test} cannot run in CI: {reason}");
    }
    eprintln!("SKIP {test}: {reason}");
    if let Ok(path) = std::env::var("RVS_SKIP_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{test}: {reason}");
        }
    }
}

/// Whether we can build topologies: root, `ip`, `python3`. `Some(reason)`
/// when not; tests report it with [`skip`] and return.
pub fn skip_reason() -> Option<String> {
    if std::env::var("RVS_E2E").as_deref() == Ok("0") {
        return Some("RVS_E2E=0".into());
    }
    match run(&["id", "-u"]) {
        Ok(uid) if uid.trim() == "0" => {}
        Ok(uid) => return Some(format!("needs root (uid {})", uid.trim())),
        Err(e) => return Some(e),
    }
    for tool in [
        ["ip", "-V"],
        ["python3", "--version"],
        ["ethtool", "--version"],
    ] {
        if let Err(e) = run(&tool) {
            return Some(format!("{} unavailable: {e}", tool[0]));
        }
    }
    None
}

/// Reports a skip ([`skip`]: a failure in CI) and returns true when the
/// harness can't run here.
pub fn skip_unless_root(test: &str) -> bool {
    match skip_reason() {
        Some(r) => {
            skip(test, &r);
            true
        }
        None => false,
    }
}

// ---------------------------------------------------------------------------
// Processes

/// A process started in a namespace; killed (SIGKILL) and reaped on drop.
/// Its stdout lines arrive on a channel ([`Proc::wait_line`]); its stderr is
/// kept for diagnostics ([`Proc::stderr`]).
pub struct Proc {
    pub name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every stdout line read so far (by `wait_line`).
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Waits until a stdout line satisfies `pred` and returns it; `None`
    /// at the deadline or when the process ended first.
    pub fn wait_line(&mut self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if pred(&l) {
                        return Some(l);
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    return None
                }
            }
        }
    }

    /// Waits for the process to exit (killing it at the deadline) and returns
    /// every stdout line it printed, including those already seen.
    pub fn finish(mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut all = std::mem::take(&mut self.seen);
        // The reader thread ends at EOF once the process is gone.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            all.push(l);
        }
        all
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// SIGKILL and reap now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `argv` inside `ns` (`ip netns exec` execs it, so the pid is the
/// program's own).
pub fn spawn(ns: &str, argv: &[&str]) -> Proc {
    let full = netns_argv(ns, argv);
    let mut child = Command::new(full[0])
        .args(&full[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {full:?}: {e}"));
    let (tx, rx) = channel();
    let out = child.stdout.take();
    thread::spawn(move || {
        if let Some(out) = out {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        }
    });
    let err_buf = Arc::new(Mutex::new(String::new()));
    let eb = err_buf.clone();
    let err = child.stderr.take();
    thread::spawn(move || {
        if let Some(err) = err {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if let Ok(mut b) = eb.lock() {
                    b.push_str(&l);
                    b.push('\n');
                }
            }
        }
    });
    Proc {
        name: argv.join(" "),
        child,
        lines: rx,
        seen: Vec::new(),
        stderr: err_buf,
    }
}

// ---------------------------------------------------------------------------
// Neighbours

/// One `ip neigh` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Neighbour {
    pub ip: String,
    pub dev: String,
    /// None for INCOMPLETE / FAILED entries.
    pub mac: Option<String>,
    pub state: String,
}

/// `ip neigh show` in `ns` (both families), optionally for one device.
pub fn neighbours(ns: &str, dev: Option<&str>) -> Vec<Neighbour> {
    let mut args = vec!["-n", ns, "neigh", "show"];
    if let Some(d) = dev {
        args.extend_from_slice(&["dev", d]);
    }
    let mut argv = vec!["ip"];
    argv.extend_from_slice(&args);
    let text = run(&argv).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let ip = f.first()?.to_string();
            let get = |k: &str| {
                f.iter()
                    .position(|x| *x == k)
                    .and_then(|p| f.get(p + 1))
                    .map(|s| s.to_string())
            };
            Some(Neighbour {
                ip,
                dev: get("dev")
                    .or_else(|| dev.map(str::to_string))
                    .unwrap_or_default(),
                mac: get("lladdr"),
                state: f.last().map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// The MAC that `ns` learned for `ip` (None if unresolved).
pub fn neighbour_mac(ns: &str, ip: &str) -> Option<String> {
    neighbours(ns, None)
        .into_iter()
        .find(|n| n.ip == ip)
        .and_then(|n| n.mac)
}

/// The MAC address of `dev` in `ns`.
pub fn mac_of(ns: &str, dev: &str) -> String {
    let t = ip(ns, &["-o", "link", "show", "dev", dev]);
    let f: Vec<&str> = t.split_whitespace().collect();
    f.iter()
        .position(|x| *x == "link/ether")
        .and_then(|p| f.get(p + 1))
        .map(|s| s.to_string())
        .unwrap_or_else(|| panic!("no MAC for {dev} in {ns}: {t}"))
}

// ---------------------------------------------------------------------------
// Naming and sweeping

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn new_tag() -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    assert!(
        n < 0x100,
        "more than 256 topologies in one process would overflow interface names"
    );
    format!("{PREFIX}{:x}_{:x}", std::process::id(), n)
}

/// The pid encoded in a harness name (`rv<pid hex>_...`), if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (hex, tail) = rest.split_once('_')?;
    if hex.is_empty() || tail.is_empty() {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// Namespaces (from `ip netns list`) whose names start with `prefix`.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// Interfaces in the root namespace whose names start with `prefix`.
pub fn root_links_with_prefix(prefix: &str) -> Vec<String> {
    run(&["ip", "-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// Kills every process in `ns`, then deletes it (errors ignored: teardown).
fn destroy_namespace(ns: &str) {
    for _ in 0..3 {
        let pids = run(&["ip", "netns", "pids", ns]).unwrap_or_default();
        let pids: Vec<&str> = pids.split_whitespace().collect();
        if pids.is_empty() {
            break;
        }
        let mut argv = vec!["kill", "-9"];
        argv.extend(pids);
        let _ = run(&argv);
        thread::sleep(Duration::from_millis(50));
    }
    if let Err(e) = run(&["ip", "netns", "del", ns]) {
        if namespaces_with_prefix(ns).iter().any(|n| n == ns) {
            eprintln!("e2e teardown: {e}");
        }
    }
}

/// Removes the namespaces and root-namespace interfaces of harness runs
/// whose process is gone. Returns what it removed. [`Topology::build`] calls
/// it; a CI job may call it too.
pub fn sweep_stale() -> Vec<String> {
    let dead = |name: &str| {
        owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    let mut removed = Vec::new();
    for ns in namespaces_with_prefix(PREFIX) {
        if dead(&ns) {
            destroy_namespace(&ns);
            removed.push(ns);
        }
    }
    for link in root_links_with_prefix(PREFIX) {
        if dead(&link) && run(&["ip", "link", "del", &link]).is_ok() {
            removed.push(link);
        }
    }
    removed
}

// ---------------------------------------------------------------------------
// Topology

/// A real server of the topology.
#[derive(Clone, Debug)]
pub struct RealServer {
    /// "rs1", "rs2", ...: what its servers answer with.
    pub name: String,
    pub ns: String,
    pub dev: String,
    pub ip4: String,
    pub ip6: String,
}

/// One director port: the veth end DPDK `net_af_packet` opens.
#[derive(Clone, Debug)]
pub struct DirectorPort {
    /// The interface name, in the director namespace (`iface=` of the vdev).
    pub iface: String,
    pub mac: String,
    /// The director's own addresses on this port ([`plan::DIR_CLI4`] ...).
    /// Not configured in the kernel unless [`Topology::kernel_director`].
    pub ip4: String,
    pub ip6: String,
    pub prefix4: u8,
    pub prefix6: u8,
}

/// Real-server set-up for each forwarding mode (ARCHITECTURE.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Nat,
    Dr,
    Tun,
    FullNat,
}

/// Builds a [`Topology`].
#[derive(Clone, Debug)]
pub struct Builder {
    servers: usize,
    clients: usize,
    panic_after: Option<usize>,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            servers: 3,
            clients: 4,
            panic_after: None,
        }
    }
}

impl Builder {
    /// Number of real servers (1..=9), default 3.
    pub fn servers(mut self, n: usize) -> Self {
        assert!((1..=9).contains(&n));
        self.servers = n;
        self
    }
    /// Number of client addresses per family (1..=16), default 4.
    pub fn clients(mut self, n: usize) -> Self {
        assert!((1..=16).contains(&n));
        self.clients = n;
        self
    }
    /// Test hook: panic after creating `n` namespaces (teardown test).
    #[doc(hidden)]
    pub fn panic_after_namespaces(mut self, n: usize) -> Self {
        self.panic_after = Some(n);
        self
    }

    /// Creates the namespaces, bridges and veths. Panics on failure; what was
    /// made so far is torn down by the partly built topology's `Drop`.
    pub fn build(self) -> Topology {
        sweep_stale();
        let tag = new_tag();
        let mut t = Topology {
            client: format!("{tag}-cl"),
            director: format!("{tag}-dir"),
            switch: format!("{tag}-sw"),
            router: format!("{tag}-rt"),
            servers: (1..=self.servers)
                .map(|n| RealServer {
                    name: format!("rs{n}"),
                    ns: format!("{tag}-rs{n}"),
                    dev: "eth0".into(),
                    ip4: plan::server4(n),
                    ip6: plan::server6(n),
                })
                .collect(),
            clients4: (0..self.clients).map(plan::client4).collect(),
            clients6: (0..self.clients).map(plan::client6).collect(),
            ports: Vec::new(),
            namespaces: Vec::new(),
            tag,
        };
        let mut all = vec![
            t.switch.clone(),
            t.director.clone(),
            t.client.clone(),
            t.router.clone(),
        ];
        all.extend(t.servers.iter().map(|s| s.ns.clone()));
        for ns in &all {
            must(&["ip", "netns", "add", ns]);
            t.namespaces.push(ns.clone());
            if self.panic_after == Some(t.namespaces.len()) {
                panic!(
                    "injected panic after {} namespaces of {}",
                    t.namespaces.len(),
                    t.tag
                );
            }
            ip(ns, &["link", "set", "lo", "up"]);
        }
        t.setup_switch();
        t.setup_director();
        t.setup_client();
        t.setup_router();
        for i in 0..t.servers.len() {
            t.setup_server(i);
        }
        t
    }
}

/// A built topology; dropping it kills every process in its namespaces and
/// deletes them (and with them every veth), also when the test panics.
pub struct Topology {
    /// `rv<pid>_<n>`: the prefix of every name below.
    pub tag: String,
    pub client: String,
    pub director: String,
    pub switch: String,
    pub router: String,
    pub servers: Vec<RealServer>,
    /// Client addresses (all on the client namespace's `eth0`).
    pub clients4: Vec<String>,
    pub clients6: Vec<String>,
    ports: Vec<DirectorPort>,
    namespaces: Vec<String>,
}

/// The switch-namespace bridge ports facing the director's client and
/// server ports.
pub const SW_PORT_DIR_CLI: &str = "p-dir-c";
pub const SW_PORT_DIR_SRV: &str = "p-dir-s";

/// Device of the client (and of every real server) in its namespace.
pub const CLIENT_DEV: &str = "eth0";
/// Router legs.
pub const RT_CLI_DEV: &str = "eth-c";
pub const RT_SRV_DEV: &str = "eth-s";

/// Kernel IPv6 settings for an end host: no DAD delay, no router
/// solicitations or RA processing (less noise towards the DPDK ports).
const HOST_V6: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
    ("net.ipv6.conf.all.router_solicitations", "0"),
    ("net.ipv6.conf.default.router_solicitations", "0"),
];

impl Topology {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The default topology: 3 real servers, 4 client addresses per family.
    pub fn build() -> Topology {
        Builder::default().build()
    }

    /// Every namespace of this topology (switch, director, client, router,
    /// servers).
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// Director port 0: client segment.
    pub fn client_port(&self) -> &DirectorPort {
        &self.ports[0]
    }

    /// Director port 1: server segment.
    pub fn server_port(&self) -> &DirectorPort {
        &self.ports[1]
    }

    /// EAL `--vdev` arguments for the two director ports, DPDK port 0 = the
    /// client segment, port 1 = the server segment.
    pub fn dpdk_vdevs(&self) -> Vec<String> {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("--vdev=net_af_packet{i},iface={},qpairs=1", p.iface))
            .collect()
    }

    /// A veth between `ns`/`dev` and a port of `bridge` in the switch, both
    /// ends up, offloads off on both ends.
    fn attach(&self, ns: &str, dev: &str, bridge: &str, port: &str) {
        must(&[
            "ip",
            "link",
            "add",
            dev,
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            &self.switch,
        ]);
        ip(&self.switch, &["link", "set", port, "master", bridge, "up"]);
        for (n, d) in [(ns, dev), (self.switch.as_str(), port)] {
            exec(
                n,
                &[
                    "ethtool", "-K", d, "rx", "off", "tx", "off", "tso", "off", "gso", "off",
                    "gro", "off",
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        ip(ns, &["link", "set", dev, "up"]);
    }

    fn setup_switch(&mut self) {
        let sw = self.switch.clone();
        sysctl(
            &sw,
            &[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ],
        );
        for br in ["brc", "brs"] {
            ip(
                &sw,
                &[
                    "link",
                    "add",
                    br,
                    "type",
                    "bridge",
                    "stp_state",
                    "0",
                    "mcast_snooping",
                    "0",
                ],
            );
            ip(&sw, &["link", "set", br, "up"]);
        }
    }

    fn setup_director(&mut self) {
        let d = self.director.clone();
        // No kernel presence on the DPDK ports: IPv6 off (no RS, DAD, MLD),
        // no addresses, no forwarding.
        sysctl(
            &d,
            &[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ],
        );
        let dc = format!("{}-dc", self.tag);
        let ds = format!("{}-ds", self.tag);
        self.attach(&d, &dc, "brc", SW_PORT_DIR_CLI);
        self.attach(&d, &ds, "brs", SW_PORT_DIR_SRV);
        for (iface, ip4, ip6) in [
            (dc, plan::DIR_CLI4, plan::DIR_CLI6),
            (ds, plan::DIR_SRV4, plan::DIR_SRV6),
        ] {
            self.ports.push(DirectorPort {
                mac: mac_of(&d, &iface),
                iface,
                ip4: ip4.into(),
                ip6: ip6.into(),
                prefix4: 24,
                prefix6: 64,
            });
        }
    }

    fn setup_client(&mut self) {
        let c = self.client.clone();
        sysctl(&c, HOST_V6);
        self.attach(&c, CLIENT_DEV, "brc", "p-cl");
        for a in &self.clients4 {
            ip(&c, &["addr", "add", &format!("{a}/24"), "dev", CLIENT_DEV]);
        }
        for a in &self.clients6 {
            ip(
                &c,
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/64"),
                    "dev",
                    CLIENT_DEV,
                    "nodad",
                ],
            );
        }
        ip(&c, &["route", "add", "default", "via", plan::DIR_CLI4]);
        ip(
            &c,
            &["-6", "route", "add", "default", "via", plan::DIR_CLI6],
        );
    }

    fn setup_router(&mut self) {
        let r = self.router.clone();
        sysctl(&r, HOST_V6);
        sysctl(
            &r,
            &[
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv6.conf.all.forwarding", "1"),
                ("net.ipv4.conf.all.rp_filter", "0"),
                ("net.ipv4.conf.default.rp_filter", "0"),
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv4.conf.default.send_redirects", "0"),
            ],
        );
        self.attach(&r, RT_CLI_DEV, "brc", "p-rt-c");
        self.attach(&r, RT_SRV_DEV, "brs", "p-rt-s");
        ip(
            &r,
            &[
                "addr",
                "add",
                &format!("{}/24", plan::RT_CLI4),
                "dev",
                RT_CLI_DEV,
            ],
        );
        ip(
            &r,
            &[
                "addr",
                "add",
                &format!("{}/24", plan::RT_SRV4),
                "dev",
                RT_SRV_DEV,
            ],
        );
        ip(
            &r,
            &[
                "-6",
                "addr",
                "add",
                &format!("{}/64", plan::RT_CLI6),
                "dev",
                RT_CLI_DEV,
                "nodad",
            ],
        );
        ip(
            &r,
            &[
                "-6",
                "addr",
                "add",
                &format!("{}/64", plan::RT_SRV6),
                "dev",
                RT_SRV_DEV,
                "nodad",
            ],
        );
    }

    fn setup_server(&mut self, i: usize) {
        let s = self.servers[i].clone();
        sysctl(&s.ns, HOST_V6);
        self.attach(&s.ns, &s.dev, "brs", &format!("p-{}", s.name));
        ip(
            &s.ns,
            &["addr", "add", &format!("{}/24", s.ip4), "dev", &s.dev],
        );
        ip(
            &s.ns,
            &[
                "-6",
                "addr",
                "add",
                &format!("{}/64", s.ip6),
                "dev",
                &s.dev,
                "nodad",
            ],
        );
    }

    /// Makes the director namespace a plain kernel router (no DPDK): the
    /// [`plan`] addresses on both ports, IPv6 back on, forwarding on. For
    /// proving the harness (and for comparisons) without rvsd.
    pub fn kernel_director(&self) {
        let d = &self.director;
        let mut kv: Vec<(String, String)> = vec![
            ("net.ipv6.conf.all.disable_ipv6".into(), "0".into()),
            ("net.ipv6.conf.default.disable_ipv6".into(), "0".into()),
        ];
        for p in &self.ports {
            kv.push((
                format!("net.ipv6.conf.{}.disable_ipv6", p.iface),
                "0".into(),
            ));
            kv.push((format!("net.ipv6.conf.{}.accept_dad", p.iface), "0".into()));
        }
        kv.push(("net.ipv4.ip_forward".into(), "1".into()));
        kv.push(("net.ipv6.conf.all.forwarding".into(), "1".into()));
        let kv: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sysctl(d, &kv);
        for p in &self.ports {
            ip(
                d,
                &[
                    "addr",
                    "add",
                    &format!("{}/{}", p.ip4, p.prefix4),
                    "dev",
                    &p.iface,
                ],
            );
            ip(
                d,
                &[
                    "-6",
                    "addr",
                    "add",
                    &format!("{}/{}", p.ip6, p.prefix6),
                    "dev",
                    &p.iface,
                    "nodad",
                ],
            );
        }
    }

    /// Real-server set-up for `mode` on every server, with the [`plan`] VIPs
    /// and local pool. Err (nothing faked) when the kernel lacks what the
    /// mode needs (TUN without ipip / ip6_tunnel).
    pub fn setup_servers(&self, mode: Mode) -> Result<(), String> {
        for s in &self.servers {
            match mode {
                Mode::Nat => self.rs_nat(s),
                Mode::Dr => self.rs_dr(s, &[plan::VIP4, plan::VIP6]),
                Mode::Tun => self.rs_tun(s, &[plan::VIP4, plan::VIP6])?,
                Mode::FullNat => self.rs_fullnat(s, &[plan::LOCAL_POOL4, plan::LOCAL_POOL6]),
            }
        }
        Ok(())
    }

    fn default_via(&self, s: &RealServer, gw4: &str, gw6: &str) {
        ip(&s.ns, &["route", "replace", "default", "via", gw4]);
        ip(&s.ns, &["-6", "route", "replace", "default", "via", gw6]);
    }

    /// NAT: default route via the director's server port (replies must
    /// pass the director).
    pub fn rs_nat(&self, s: &RealServer) {
        self.default_via(s, plan::DIR_SRV4, plan::DIR_SRV6);
    }

    /// DR: each VIP on `lo`, `arp_ignore=1` / `arp_announce=2` (all and the
    /// interface) so the server never answers or announces ARP for it; the
    /// replies go straight to the client through the router.
    pub fn rs_dr(&self, s: &RealServer, vips: &[&str]) {
        self.no_arp_for_vips(s);
        for v in vips {
            add_host_addr(&s.ns, v, "lo");
        }
        self.default_via(s, plan::RT_SRV4, plan::RT_SRV6);
    }

    fn no_arp_for_vips(&self, s: &RealServer) {
        let (k1, k2) = (
            format!("net.ipv4.conf.{}.arp_ignore", s.dev),
            format!("net.ipv4.conf.{}.arp_announce", s.dev),
        );
        sysctl(
            &s.ns,
            &[
                ("net.ipv4.conf.all.arp_ignore", "1"),
                ("net.ipv4.conf.all.arp_announce", "2"),
                (&k1, "1"),
                (&k2, "2"),
            ],
        );
    }

    /// TUN: ipip (`tunl0`) and ip6ip6 (`ip6tnl0`) decapsulation up, the
    /// IPv4 VIPs on `tunl0`, the IPv6 VIPs on `lo`, `rp_filter=0` (the inner
    /// source is a client, not reachable via tunl0), the DR ARP settings,
    /// replies through the router. Err when the kernel has no ipip /
    /// ip6_tunnel (and `modprobe` can't load them).
    pub fn rs_tun(&self, s: &RealServer, vips: &[&str]) -> Result<(), String> {
        let has = |dev: &str| ip_ok(&s.ns, &["link", "show", dev]);
        if !has("tunl0") {
            let _ = run(&["modprobe", "ipip"]);
            if !has("tunl0") {
                let e = run(&["ip", "-n", &s.ns, "link", "add", "tunl0", "type", "ipip"])
                    .err()
                    .unwrap_or_default();
                if !has("tunl0") {
                    return Err(format!("no ipip decapsulation in this kernel (CONFIG_NET_IPIP; modprobe ipip failed): {e}"));
                }
            }
        }
        let want6 = vips.iter().any(|v| v.contains(':'));
        if want6 && !has("ip6tnl0") {
            let _ = run(&["modprobe", "ip6_tunnel"]);
            if !has("ip6tnl0") {
                return Err("no ip6ip6 decapsulation in this kernel (CONFIG_IPV6_TUNNEL; modprobe ip6_tunnel failed)".into());
            }
        }
        self.no_arp_for_vips(s);
        let mut kv = vec![
            ("net.ipv4.conf.all.rp_filter".to_string(), "0".to_string()),
            (
                "net.ipv4.conf.default.rp_filter".to_string(),
                "0".to_string(),
            ),
            ("net.ipv4.conf.tunl0.rp_filter".to_string(), "0".to_string()),
            (
                format!("net.ipv4.conf.{}.rp_filter", s.dev),
                "0".to_string(),
            ),
        ];
        if want6 {
            kv.push(("net.ipv6.conf.ip6tnl0.disable_ipv6".into(), "0".into()));
        }
        let kv: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        sysctl(&s.ns, &kv);
        ip(&s.ns, &["link", "set", "tunl0", "up"]);
        if want6 {
            ip(&s.ns, &["link", "set", "ip6tnl0", "up"]);
        }
        for v in vips {
            add_host_addr(&s.ns, v, if v.contains(':') { "lo" } else { "tunl0" });
        }
        self.default_via(s, plan::RT_SRV4, plan::RT_SRV6);
        Ok(())
    }

    /// FullNAT: routes to the local-address pools via the director's
    /// server port; everything else via the router.
    pub fn rs_fullnat(&self, s: &RealServer, pools: &[&str]) {
        for p in pools {
            let via = if p.contains(':') {
                plan::DIR_SRV6
            } else {
                plan::DIR_SRV4
            };
            let fam = if p.contains(':') { "-6" } else { "-4" };
            ip(&s.ns, &[fam, "route", "replace", p, "via", via]);
        }
        self.default_via(s, plan::RT_SRV4, plan::RT_SRV6);
    }

    /// `ip netns exec <ns> argv...`.
    pub fn exec(&self, ns: &str, argv: &[&str]) -> Result<String, String> {
        exec(ns, argv)
    }

    /// A process in `ns`, killed when the [`Proc`] drops (and, at the
    /// latest, when the topology drops). rvsd is started this way in the
    /// director namespace.
    pub fn spawn(&self, ns: &str, argv: &[&str]) -> Proc {
        spawn(ns, argv)
    }
}

/// Polls `f` every `every` until it holds; panics after `timeout` with
/// `what` and `diag()` (what the test knows about the state it waited in).
#[track_caller]
pub fn wait_for(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> bool,
    diag: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}\n{}", diag());
        }
        std::thread::sleep(every);
    }
}

/// Adds `addr` as a host address (/32 or /128) on `dev` in `ns`.
pub fn add_host_addr(ns: &str, addr: &str, dev: &str) {
    if addr.contains(':') {
        ip(
            ns,
            &[
                "-6",
                "addr",
                "add",
                &format!("{addr}/128"),
                "dev",
                dev,
                "nodad",
            ],
        );
    } else {
        ip(ns, &["addr", "add", &format!("{addr}/32"), "dev", dev]);
    }
}

fn ip_ok(ns: &str, args: &[&str]) -> bool {
    let mut v = vec!["ip", "-n", ns];
    v.extend_from_slice(args);
    run(&v).is_ok()
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            destroy_namespace(ns);
        }
        for link in root_links_with_prefix(&format!("{}-", self.tag)) {
            let _ = run(&["ip", "link", "del", &link]);
        }
    }
}

// ---------------------------------------------------------------------------
// Extra directors (HA)

/// An extra director namespace (HA pairs): its own veth pair into `brc` and
/// `brs`, left unaddressed for DPDK `net_af_packet` like the topology's
/// own director.
#[derive(Clone, Debug)]
pub struct Director {
    /// Namespace `<tag>-<id>`.
    pub ns: String,
    /// `<tag>-<id>c` on `brc` (DPDK port 0).
    pub client: DirectorPort,
    /// `<tag>-<id>s` on `brs` (DPDK port 1).
    pub server: DirectorPort,
}

impl Topology {
    /// Adds director namespace `<tag>-<id>` (`id`: 2 characters at most,
    /// e.g. "d1") with ports `<tag>-<id>c` / `<tag>-<id>s`; `cli4` / `srv4`
    /// are the addresses its rvsd will own on them (not configured in the
    /// kernel). Torn down with the topology.
    pub fn add_director(&mut self, id: &str, cli4: &str, srv4: &str) -> Director {
        assert!(
            id.len() <= 2,
            "director id '{id}' would overflow interface names"
        );
        let ns = format!("{}-{id}", self.tag);
        must(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        ip(&ns, &["link", "set", "lo", "up"]);
        sysctl(
            &ns,
            &[
                ("net.ipv6.conf.all.disable_ipv6", "1"),
                ("net.ipv6.conf.default.disable_ipv6", "1"),
            ],
        );
        let (dc, ds) = (format!("{}-{id}c", self.tag), format!("{}-{id}s", self.tag));
        self.attach(&ns, &dc, "brc", &format!("p-{id}-c"));
        self.attach(&ns, &ds, "brs", &format!("p-{id}-s"));
        let port = |iface: String, ip4: &str| DirectorPort {
            mac: mac_of(&ns, &iface),
            iface,
            ip4: ip4.into(),
            ip6: String::new(),
            prefix4: 24,
            prefix6: 64,
        };
        Director {
            client: port(dc, cli4),
            server: port(ds, srv4),
            ns,
        }
    }
}
