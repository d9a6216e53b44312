//! rvs's DPDK telemetry commands, read the way `dpdk-telemetry.py` reads
//! them: a SOCK_SEQPACKET client (`scripts/e2e/telemetry_client.py`) on
//! `/var/run/dpdk/<prefix>/dpdk_telemetry.v2` of the real rvsd (real EAL,
//! `net_af_packet` ports on veths in a namespace this test creates, EAL
//! options as the end-to-end tests use them, `--no-shconf` included).
//!
//! `cargo test -p control --test telemetry`

mod e2e;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use e2e::netns::{self, run};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

fn client_py() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/e2e/telemetry_client.py")
        .display()
        .to_string()
}

/// Removes the test's temp dir and EAL runtime dir, also when it fails.
struct Cleanup(PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", self.1));
    }
}

/// A namespace with two veth pairs: c0 (198.18.0.10, the kernel) – u0
/// (rvsd port a), s0 – u1 (rvsd port b). Deleted on drop.
struct Ns(String);

impl Ns {
    fn new() -> Ns {
        let name = format!("rvstel{}", std::process::id());
        let _ = run(&["ip", "netns", "del", &name]);
        netns::must(&["ip", "netns", "add", &name]);
        let ns = Ns(name);
        for args in [
            &["link", "add", "c0", "type", "veth", "peer", "name", "u0"][..],
            &["link", "add", "s0", "type", "veth", "peer", "name", "u1"],
            &["addr", "add", "198.18.0.10/24", "dev", "c0"],
            &["link", "set", "c0", "up"],
            &["link", "set", "s0", "up"],
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

/// Runs the client: `(command, path) -> value` for every line.
fn query(sock: &str, cmds: &[&str]) -> BTreeMap<(String, String), String> {
    let py = client_py();
    let mut argv = vec!["python3", py.as_str(), sock];
    argv.extend_from_slice(cmds);
    let out = run(&argv).unwrap_or_else(|e| panic!("telemetry client: {e}"));
    out.lines()
        .filter_map(|l| {
            let (cmd, kv) = l.split_once('\t')?;
            let (k, v) = kv.split_once('=')?;
            Some(((cmd.to_string(), k.to_string()), v.to_string()))
        })
        .collect()
}

fn get<'a>(m: &'a BTreeMap<(String, String), String>, cmd: &str, key: &str) -> &'a str {
    m.get(&(cmd.to_string(), key.to_string()))
        .unwrap_or_else(|| panic!("{cmd} has no {key}; got {m:#?}"))
}

#[test]
fn telemetry_socket_serves_rvs_commands_next_to_ethdev() {
    let test = "telemetry_socket_serves_rvs_commands_next_to_ethdev";
    if netns::skip_unless_root(test) {
        return;
    }
    let pid = std::process::id();
    let dir: PathBuf = std::env::temp_dir().join(format!("rvstel-{pid}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = format!("rvstel{pid}");
    let _cleanup = Cleanup(dir.clone(), prefix.clone());
    let sock = dir.join("rvsd.sock").display().to_string();
    let cfg = dir.join("rvsd.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"[eal]
cores = [0, 1]
hugepages = false
memory_mb = 128
extra_args = ["--no-pci", "--no-shconf", "--file-prefix={prefix}"]

[[port]]
name = "a"
device = "net_af_packet0,iface=u0"
addresses = ["198.18.0.1/24"]

[[port]]
name = "b"
device = "net_af_packet1,iface=u1"
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
  weight = 3
"#
        ),
    )
    .unwrap();
    let ns = Ns::new();
    let cfg_s = cfg.display().to_string();
    let mut rvsd = netns::spawn(&ns.0, &[RVSD, "--config", &cfg_s]);
    let adm = |args: &[&str]| {
        let mut v = vec![RVSADM, "--socket", &sock];
        v.extend_from_slice(args);
        run(&v)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while adm(&["-Ln"]).is_err() {
        assert!(
            rvsd.alive() && Instant::now() < deadline,
            "rvsd did not come up:\n{}",
            rvsd.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let tel = format!("/var/run/dpdk/{prefix}/dpdk_telemetry.v2");
    assert!(
        Path::new(&tel).exists(),
        "no telemetry socket {tel}; log:\n{}",
        rvsd.stderr()
    );

    let svc = "tcp:198.18.0.100:80";
    let one = format!("/rvs/service,{svc}");
    let m = query(
        &tel,
        &["/", "/rvs/info", "/rvs/services", &one, "/rvs/drops"],
    );
    // listed next to DPDK's own commands
    let listed: Vec<&str> = m
        .iter()
        .filter(|((c, _), _)| c == "/")
        .map(|(_, v)| v.as_str())
        .collect();
    for c in [
        "/ethdev/stats",
        "/rvs/info",
        "/rvs/services",
        "/rvs/service",
        "/rvs/workers",
        "/rvs/drops",
    ] {
        assert!(listed.contains(&c), "{c} not in {listed:?}");
    }
    assert_eq!(get(&m, "/rvs/info", "role"), "standalone");
    assert_eq!(get(&m, "/rvs/info", "workers"), "1");
    assert_eq!(get(&m, "/rvs/info", "ports"), "2");
    assert_eq!(get(&m, "/rvs/info", "services"), "1");
    assert_eq!(get(&m, "/rvs/services", "0"), svc);
    assert_eq!(get(&m, &one, "scheduler"), "wrr");
    assert_eq!(get(&m, &one, "reals/0"), "198.18.1.2:80");
    assert_eq!(get(&m, &one, "weight/0"), "3");
    assert_eq!(get(&m, &one, "forward/0"), "Masq");
    // an unknown service is DPDK's null reply
    let m = query(&tel, &["/rvs/service,tcp:198.18.0.200:80"]);
    assert_eq!(get(&m, "/rvs/service,tcp:198.18.0.200:80", ""), "null");

    // a change through rvsadm shows at once (published on commit)
    adm(&[
        "-a",
        "-t",
        "198.18.0.100:80",
        "-r",
        "198.18.1.3:80",
        "-m",
        "-w",
        "5",
    ])
    .unwrap();
    let m = query(&tel, &[&one]);
    assert_eq!(get(&m, &one, "reals/1"), "198.18.1.3:80");
    assert_eq!(get(&m, &one, "weight/1"), "5");

    // traffic shows in /rvs/workers within a refresh (2 s) of arriving
    netns::exec_timeout(
        &ns.0,
        &["ping", "-c", "3", "-i", "0.2", "-W", "1", "198.18.0.1"],
        Duration::from_secs(10),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = query(&tel, &["/rvs/workers", "/ethdev/stats,0"]);
        let rx: u64 = get(&m, "/rvs/workers", "rx_packets/0").parse().unwrap();
        let eth_rx: u64 = get(&m, "/ethdev/stats,0", "ipackets").parse().unwrap();
        if rx >= 3 && eth_rx >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rx {rx}, ethdev {eth_rx}: {m:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let _ = run(&["kill", "-TERM", &rvsd.pid().to_string()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while rvsd.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(rvsd);
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
