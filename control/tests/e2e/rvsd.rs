//! rvsd (the real binary, DPDK dataplane on `net_af_packet` ports) in the
//! director namespace of a [`Topology`], and rvsadm talking to it.
//!
//! [`Rvsd::start`] writes a config into a temp dir (ports on the topology's
//! director veths, the [`plan`] addresses, `workers = 1`, no hugepages,
//! `--no-shconf`, a per-topology `--file-prefix`), starts rvsd with
//! [`Topology::spawn`] and waits until `rvsadm -Ln` answers. Dropping it
//! stops rvsd (SIGTERM, then SIGKILL), removes the temp dir and the EAL
//! runtime dir `/var/run/dpdk/rvs-<tag>`.
//!
//! Tests of one binary share two loaded cores with a busy-polling worker:
//! [`serial`] makes them take turns.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::netns::{plan, run, run_timeout, Proc, Topology};

/// The rvsd binary of this build.
pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
/// The rvsadm binary of this build.
pub const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

static SERIAL: Mutex<()> = Mutex::new(());

/// One rvsd at a time per test binary (a poisoned lock is fine: the test
/// that panicked cleaned up through its drops).
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a test's config adds to the base: services (TOML `[[service]]`
/// blocks) and extra addresses on the server port (FullNAT local pools).
#[derive(Clone, Debug, Default)]
pub struct Conf {
    pub services: String,
    pub server_port_extra: Vec<String>,
    pub workers: Option<u32>,
    /// Queue pairs per af_packet port (default 1; one per worker makes
    /// sense).
    pub qpairs: Option<u32>,
    /// `[dataplane] conn_table_size` and `conn_table_size_v6` (default
    /// 65536 and rvsd's default).
    pub conn_table: Option<u32>,
    /// `[dataplane] idle` ("poll" or "adaptive"; rvsd's default when
    /// None).
    pub idle: Option<String>,
}

/// A `[[service]]` block: `reals` are `(address, weight)`.
pub fn service(
    proto: &str,
    addr: &str,
    sched: &str,
    forward: &str,
    extra: &str,
    reals: &[(String, u32)],
) -> String {
    let mut s = format!(
        "\n[[service]]\nprotocol = \"{proto}\"\naddress = \"{addr}\"\nscheduler = \"{sched}\"\nforward = \"{forward}\"\n{extra}\n"
    );
    for (a, w) in reals {
        s.push_str(&format!(
            "  [[service.real]]\n  address = \"{a}\"\n  weight = {w}\n"
        ));
    }
    s
}

/// `ip:port` or `[ip6]:port`.
pub fn ep(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// A running rvsd.
pub struct Rvsd {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub sock: String,
    pub metrics: String,
    pub director: String,
    prefix: String,
    proc: Option<Proc>,
    tag: String,
    iface_c: String,
    iface_s: String,
    /// Ports as `af_xdp:IFACE` instead of `net_af_packet` vdevs.
    af_xdp: bool,
}

impl Rvsd {
    /// Writes the config for `conf` and starts rvsd; panics (with rvsd's
    /// stderr) when it does not come up.
    pub fn start(topo: &Topology, conf: &Conf) -> Rvsd {
        Rvsd::start_ports(topo, conf, false)
    }

    /// [`Rvsd::start`] with AF_XDP ports (`device = "af_xdp:IFACE"`).
    pub fn start_af_xdp(topo: &Topology, conf: &Conf) -> Rvsd {
        Rvsd::start_ports(topo, conf, true)
    }

    fn start_ports(topo: &Topology, conf: &Conf, af_xdp: bool) -> Rvsd {
        let dir = std::env::temp_dir().join(format!("rvs-e2e-{}", topo.tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = format!("rvs-{}", topo.tag);
        let mut r = Rvsd {
            config: dir.join("rvsd.toml"),
            sock: dir.join("rvsd.sock").display().to_string(),
            metrics: "127.0.0.1:9109".into(),
            director: topo.director.clone(),
            dir,
            prefix,
            proc: None,
            tag: topo.tag.clone(),
            iface_c: topo.client_port().iface.clone(),
            iface_s: topo.server_port().iface.clone(),
            af_xdp,
        };
        r.write(conf);
        let cfg = r.config.display().to_string();
        let proc = topo.spawn(&topo.director, &[RVSD, "--config", &cfg]);
        r.proc = Some(proc);
        r.wait_ready();
        r
    }

    /// (Re)writes the config file for `conf` (a reload needs SIGHUP).
    pub fn write(&self, conf: &Conf) {
        let mut srv_addrs = vec![
            format!("\"{}/24\"", plan::DIR_SRV4),
            format!("\"{}/64\"", plan::DIR_SRV6),
        ];
        srv_addrs.extend(conf.server_port_extra.iter().map(|a| format!("\"{a}\"")));
        let text = format!(
            r#"# written by the e2e tests ({tag})
[eal]
cores = [{cores}]
hugepages = false
memory_mb = 256
extra_args = ["--no-pci", "--no-shconf", "--file-prefix={prefix}"]

[[port]]
name = "client"
device = "{dc}"
addresses = ["{c4}/24", "{c6}/64"]

[[port]]
name = "server"
device = "{ds}"
addresses = [{srv}]

[dataplane]
workers = {workers}
{tables}
{idle}

[metrics]
listen = "{metrics}"

[control]
socket = "{sock}"
{services}
"#,
            tag = self.tag,
            prefix = self.prefix,
            dc = self.device(0, &self.iface_c, conf),
            ds = self.device(1, &self.iface_s, conf),
            c4 = plan::DIR_CLI4,
            c6 = plan::DIR_CLI6,
            srv = srv_addrs.join(", "),
            workers = conf.workers.unwrap_or(1),
            tables = match conf.conn_table {
                None => "conn_table_size = 65536".to_string(),
                Some(t) => format!("conn_table_size = {t}\nconn_table_size_v6 = {t}"),
            },
            // control + one per worker; cores this machine lacks leave a
            // worker unpinned
            cores = (0..=conf.workers.unwrap_or(1))
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            idle = conf
                .idle
                .as_ref()
                .map(|i| format!("idle = \"{i}\""))
                .unwrap_or_default(),
            metrics = self.metrics,
            sock = self.sock,
            services = conf.services,
        );
        std::fs::write(&self.config, text).unwrap();
    }

    fn device(&self, n: usize, iface: &str, conf: &Conf) -> String {
        if self.af_xdp {
            format!("af_xdp:{iface}")
        } else {
            format!(
                "net_af_packet{n},iface={iface},qpairs={}",
                conf.qpairs.unwrap_or(1)
            )
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if self.adm(&["-Ln"]).is_ok() {
                return;
            }
            let p = self.proc.as_mut().unwrap();
            if !p.alive() || Instant::now() > deadline {
                let err = p.stderr();
                panic!("rvsd did not come up (alive {}):\n{err}", p.alive());
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// `rvsadm --socket <sock> args...`: stdout, or an error with stderr.
    pub fn adm(&self, args: &[&str]) -> Result<String, String> {
        let mut v = vec![RVSADM, "--socket", &self.sock];
        v.extend_from_slice(args);
        run(&v)
    }

    /// [`Rvsd::adm`] that must succeed.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        self.adm(args)
            .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", self.log()))
    }

    /// A column of `rvsadm --workers` (by its header), summed over the
    /// workers.
    pub fn workers_col(&self, name: &str) -> u64 {
        let w = self.ok(&["--workers"]);
        let head: Vec<&str> = w.lines().next().unwrap_or("").split_whitespace().collect();
        let i = head
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name}: {w}"));
        w.lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() == head.len())
            .map(|f| {
                f[i].parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name}: {w}"))
            })
            .sum()
    }

    /// rvsd's stderr so far.
    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.stderr()).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().unwrap().pid()
    }

    /// Whether rvsd is still running.
    pub fn alive(&mut self) -> bool {
        self.proc.as_mut().is_some_and(|p| p.alive())
    }

    /// Sends SIGHUP and waits until rvsd logged the reload's outcome
    /// ("reloaded ..." or "reload failed ..."). Returns the log it added.
    pub fn reload(&self) -> String {
        let before = self.log().len();
        run(&["kill", "-HUP", &self.pid().to_string()]).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let l = self.log();
            let new = l.get(before..).unwrap_or_default().to_string();
            if new.contains("reloaded ") || new.contains("reload failed") {
                // give the workers a moment to install the snapshot
                thread::sleep(Duration::from_millis(500));
                return new;
            }
            if Instant::now() > deadline {
                panic!("no reload outcome in rvsd's log:\n{l}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sums of the named `rvsadm --workers` columns over the workers.
    pub fn workers_sum(&self, cols: &[&str]) -> Vec<u64> {
        let w = self.ok(&["--workers"]);
        let mut lines = w.lines();
        let head: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let idx: Vec<usize> = cols
            .iter()
            .map(|c| {
                head.iter()
                    .position(|h| h == c)
                    .unwrap_or_else(|| panic!("no column {c}: {w}"))
            })
            .collect();
        let mut sums = vec![0u64; cols.len()];
        for l in lines {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() != head.len() {
                continue;
            }
            for (s, i) in sums.iter_mut().zip(&idx) {
                *s += f[*i].parse::<u64>().unwrap_or(0);
            }
        }
        sums
    }

    /// `rvsadm --drops`, as (reason, count) pairs with a non-zero count.
    pub fn drops(&self) -> (String, Vec<(String, u64)>) {
        let text = self.ok(&["--drops"]);
        let mut v = Vec::new();
        for l in text.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            // "reason worker packets"
            if f.len() >= 2 {
                if let Ok(n) = f[f.len() - 1].parse::<u64>() {
                    if n > 0 {
                        v.push((f[0].to_string(), n));
                    }
                }
            }
        }
        (text, v)
    }

    /// Checks the end-of-test invariants: every drop reason seen is in
    /// `allowed` (printing them all), and `-Ln --stats` shows traffic.
    #[track_caller]
    pub fn check_counters(&self, allowed: &[&str]) {
        let (text, drops) = self.drops();
        eprintln!("rvsadm --drops:\n{text}");
        let bad: Vec<_> = drops
            .iter()
            .filter(|(r, _)| !allowed.iter().any(|a| r.contains(a)))
            .collect();
        assert!(bad.is_empty(), "unexpected drops {bad:?}:\n{text}");
        let stats = self.ok(&["-Ln", "--stats", "--exact"]);
        eprintln!("rvsadm -Ln --stats:\n{stats}");
        let nonzero = stats
            .lines()
            .filter(|l| l.trim_start().starts_with("TCP") || l.trim_start().starts_with("UDP"))
            .any(|l| {
                l.split_whitespace()
                    .skip(2)
                    .any(|w| w.parse::<u64>().is_ok_and(|n| n > 0))
            });
        assert!(nonzero, "no service counted any traffic:\n{stats}");
    }

    /// The metrics page (scraped inside the director namespace).
    pub fn scrape(&self) -> Result<String, String> {
        let url = format!("http://{}/metrics", self.metrics);
        let out = run_timeout(
            &[
                "ip",
                "netns",
                "exec",
                &self.director,
                "curl",
                "-s",
                "-m",
                "10",
                &url,
            ],
            Duration::from_secs(20),
        )?;
        if out.ok() {
            Ok(out.stdout)
        } else {
            Err(format!("curl {url}: {out:?}"))
        }
    }

    /// Stops rvsd: SIGTERM, up to 15 s, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            if p.alive() {
                let _ = run(&["kill", "-TERM", &p.pid().to_string()]);
                let deadline = Instant::now() + Duration::from_secs(15);
                while p.alive() && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(50));
                }
            }
            p.kill();
        }
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if thread::panicking() {
            // what rvsd knew when the test failed
            for args in [
                &["--drops"][..],
                &["-Ln", "--stats", "--exact"],
                &["-Lnc"],
                &["--neigh"],
                &["--workers"],
            ] {
                eprintln!("rvsadm {args:?} (test failed):\n{:?}", self.adm(args));
            }
            eprintln!("rvsd log (test failed):\n{}", self.log());
        }
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.prefix));
    }
}

impl Rvsd {
    /// Starts rvsd in namespace `ns` from a config the caller writes:
    /// `make(socket, file_prefix)` returns the whole TOML text (the socket
    /// path and the EAL `--file-prefix` are per `key`, so several rvsd of
    /// one topology don't collide). Waits until `rvsadm -Ln` answers.
    pub fn start_text(
        topo: &Topology,
        ns: &str,
        key: &str,
        make: impl FnOnce(&str, &str) -> String,
    ) -> Rvsd {
        let dir = std::env::temp_dir().join(format!("rvs-e2e-{}-{key}", topo.tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = format!("rvs-{}-{key}", topo.tag);
        let sock = dir.join("rvsd.sock").display().to_string();
        let mut r = Rvsd {
            config: dir.join("rvsd.toml"),
            sock: sock.clone(),
            metrics: "127.0.0.1:9109".into(),
            director: ns.to_string(),
            dir,
            prefix: prefix.clone(),
            proc: None,
            tag: topo.tag.clone(),
            iface_c: String::new(),
            iface_s: String::new(),
            af_xdp: false,
        };
        std::fs::write(&r.config, make(&sock, &prefix)).unwrap();
        let cfg = r.config.display().to_string();
        r.proc = Some(topo.spawn(ns, &[RVSD, "--config", &cfg]));
        r.wait_ready();
        r
    }
}
