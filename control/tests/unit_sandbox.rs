//! rvsd under the sandbox of `scripts/rvsd.service`: the real binary and
//! the real EAL (`net_af_packet` ports on a veth pair in a network
//! namespace this test creates, a TAP exception interface) with exactly the
//! unit's `CapabilityBoundingSet=` and `NoNewPrivileges=` applied by
//! `setpriv`, and `$NOTIFY_SOCKET` pointing at this test, as systemd would
//! run it: it must report READY=1, reload on SIGHUP with
//! `RELOADING=1` + `MONOTONIC_USEC=` then READY=1, and stop on SIGTERM with
//! STOPPING=1 and exit 0. The same with one port on AF_XDP under the unit
//! plus its drop-in `scripts/rvsd-af_xdp.conf`.
//!
//! The build machines' PID 1 is not systemd, so the unit itself cannot be
//! started here; the file-system, device and system-call settings are
//! checked by `systemd-analyze verify` / `security --offline` in
//! `scripts/test-scripts.sh`, and the full start under systemd is the
//! manual check in the README ("Running rvsd under systemd").
//!
//! `cargo test -p control --test unit_sandbox`

mod e2e;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::netns::{self, run};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

fn script(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

/// The values of `key=` in the unit's `[Service]` section (one per line).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Capability number of a `CAP_*` name (the ones a unit may list here).
fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_ADMIN" => 12,
        "CAP_NET_RAW" => 13,
        "CAP_IPC_LOCK" => 14,
        "CAP_SYS_RAWIO" => 17,
        "CAP_SYS_ADMIN" => 21,
        "CAP_SYS_NICE" => 23,
        "CAP_SYS_RESOURCE" => 24,
        "CAP_PERFMON" => 38,
        "CAP_BPF" => 39,
        other => panic!("add {other} to cap_number"),
    }
}

/// Removes the test's temp dir and EAL runtime dir, also when it fails.
struct Cleanup(PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.1));
    }
}

/// A network namespace with a veth pair, deleted on drop.
struct Ns(String);

impl Ns {
    fn new(tag: &str) -> Ns {
        let name = format!("rvsunit{}{tag}", std::process::id());
        let _ = run(&["ip", "netns", "del", &name]);
        netns::must(&["ip", "netns", "add", &name]);
        let ns = Ns(name);
        for args in [
            &["link", "add", "u0", "type", "veth", "peer", "name", "u1"][..],
            &["link", "set", "u0", "up"],
            &["link", "set", "u1", "up"],
            &["link", "set", "lo", "up"],
        ] {
            let mut v = vec!["ip", "-n", &ns.0];
            v.extend_from_slice(args);
            netns::must(&v);
        }
        ns
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

fn config(dir: &Path, prefix: &str, weight: u32, port_b: &str) -> String {
    format!(
        r#"# written by control/tests/unit_sandbox.rs
[eal]
cores = [0, 1]
hugepages = false
memory_mb = 128
extra_args = ["--no-pci", "--file-prefix={prefix}"]

[[port]]
name = "a"
device = "net_af_packet0,iface=u0"
addresses = ["198.18.0.1/24"]
tap = "rvsu-tap"

[[port]]
name = "b"
device = "{port_b}"
addresses = ["198.18.1.1/24"]

[dataplane]
workers = 1
conn_table_size = 4096

[metrics]
listen = "127.0.0.1:9090"

[control]
socket = "{sock}"

[[service]]
protocol = "tcp"
address = "198.18.0.100:80"
scheduler = "wrr"
forward = "masq"

  [[service.real]]
  address = "198.18.1.2:80"
  weight = {weight}
"#,
        sock = dir.join("rvsd.sock").display()
    )
}

struct Notify(UnixDatagram);

impl Notify {
    /// Waits for a datagram containing `what`; returns it.
    fn wait(&self, what: &str, rvsd: &netns::Proc) -> String {
        let mut buf = [0u8; 512];
        loop {
            match self.0.recv(&mut buf) {
                Ok(n) => {
                    let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if m.contains(what) {
                        return m;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("no {what:?} from rvsd ({e}); log:\n{}", rvsd.stderr()),
            }
        }
    }
}

/// `Name:\tvalue` from /proc/PID/status.
fn status_field(pid: u32, name: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{name} not in /proc/{pid}/status"))
        .trim()
        .to_string()
}

#[test]
fn rvsd_starts_reloads_and_stops_under_the_units_capabilities() {
    let test = "rvsd_starts_reloads_and_stops_under_the_units_capabilities";
    under_the_unit(test, &["rvsd.service"], "net_af_packet1,iface=u1", "a");
}

#[test]
fn af_xdp_ports_work_under_the_unit_with_its_af_xdp_drop_in() {
    let test = "af_xdp_ports_work_under_the_unit_with_its_af_xdp_drop_in";
    under_the_unit(
        test,
        &["rvsd.service", "rvsd-af_xdp.conf"],
        "af_xdp:u1",
        "x",
    );
}

/// rvsd with port b on `port_b`, under the capabilities of `files` (a
/// unit and its drop-ins: bounding-set lines accumulate, as in systemd).
fn under_the_unit(test: &str, files: &[&str], port_b: &str, tag: &str) {
    if netns::skip_unless_root(test) {
        return;
    }
    if let Err(e) = run(&["setpriv", "--version"]) {
        netns::skip(test, &format!("setpriv (util-linux) unavailable: {e}"));
        return;
    }
    let unit = script(files[0]);
    let mut caps: Vec<String> = Vec::new();
    for f in files {
        for v in unit_values(&script(f), "CapabilityBoundingSet") {
            caps.extend(v.split_whitespace().map(str::to_string));
        }
    }
    caps.sort();
    caps.dedup();
    assert!(!caps.is_empty(), "the unit must bound capabilities");
    assert_eq!(unit_values(&unit, "NoNewPrivileges"), ["yes"]);
    let want_mask: u64 = caps.iter().map(|c| 1u64 << cap_number(c)).sum();
    let bounding = format!(
        "-all,{}",
        caps.iter()
            .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
            .collect::<Vec<_>>()
            .join(",")
    );

    let dir: PathBuf = std::env::temp_dir().join(format!("rvsunit-{}{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = format!("rvsunit{}{tag}", std::process::id());
    let _cleanup = Cleanup(dir.clone(), prefix.clone());
    let cfg = dir.join("rvsd.toml");
    std::fs::write(&cfg, config(&dir, &prefix, 1, port_b)).unwrap();
    let notify_path = dir.join("notify.sock");
    let notify = Notify(UnixDatagram::bind(&notify_path).unwrap());
    notify
        .0
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();

    let ns = Ns::new(tag);
    let env_notify = format!("NOTIFY_SOCKET={}", notify_path.display());
    let cfg_s = cfg.display().to_string();
    // env and setpriv exec, so the process keeps its pid through to rvsd
    let mut rvsd = netns::spawn(
        &ns.0,
        &[
            "env",
            &env_notify,
            "setpriv",
            &format!("--bounding-set={bounding}"),
            "--inh-caps=-all",
            "--no-new-privs",
            RVSD,
            "--config",
            &cfg_s,
        ],
    );
    notify.wait("READY=1", &rvsd);
    let pid = rvsd.pid();
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "rvsd"
    );
    let eff = u64::from_str_radix(&status_field(pid, "CapEff"), 16).unwrap();
    let bnd = u64::from_str_radix(&status_field(pid, "CapBnd"), 16).unwrap();
    assert_eq!(bnd, want_mask, "bounding set {caps:?}");
    assert_eq!(eff, want_mask, "effective set {caps:?}");
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");

    let sock = dir.join("rvsd.sock").display().to_string();
    let adm = |args: &[&str]| {
        let mut v = vec![RVSADM, "--socket", &sock];
        v.extend_from_slice(args);
        run(&v).unwrap_or_else(|e| panic!("rvsadm {args:?}: {e}"))
    };
    let l = adm(&["-Ln"]);
    assert!(l.contains("TCP  198.18.0.100:80 wrr"), "{l}");
    assert!(l.contains("Masq    1"), "{l}");
    // the TAP exception interface exists in the namespace
    netns::must(&["ip", "-n", &ns.0, "link", "show", "rvsu-tap"]);

    // reload: systemd's RELOADING=1 with the monotonic time, then READY=1
    std::fs::write(&cfg, config(&dir, &prefix, 5, port_b)).unwrap();
    netns::must(&["kill", "-HUP", &pid.to_string()]);
    let m = notify.wait("RELOADING=1", &rvsd);
    let usec: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {m:?}"))
        .parse()
        .unwrap();
    assert!(usec > 0);
    notify.wait("READY=1", &rvsd);
    let l = adm(&["-Ln"]);
    assert!(l.contains("Masq    5"), "{l}");

    // stop
    netns::must(&["kill", "-TERM", &pid.to_string()]);
    notify.wait("STOPPING=1", &rvsd);
    let deadline = Instant::now() + Duration::from_secs(30);
    while rvsd.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!rvsd.alive(), "rvsd did not stop; log:\n{}", rvsd.stderr());
    let log = rvsd.stderr();
    assert!(log.contains("stopped"), "{log}");
    assert!(!Path::new(&sock).exists());
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
