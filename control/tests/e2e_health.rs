//! End-to-end: health checks inside the real rvsd (issue 12). NAT service
//! on the VIP over three real servers, each with an HTTP_GET check
//! (`delay_loop` 1, `retry` 1, `delay_before_retry` 1, `connect_timeout`
//! 1); rs1 has `inhibit_on_failure`; the sorry server is a second HTTP
//! server on rs3:8080. The probes are kernel sockets in the director
//! namespace, whose only way to the server segment is the TAP of rvsd's
//! server port: they leave through the exception path from the director's
//! own address, as keepalived's do.
//!
//! The scenario, each step waiting (bounded) for the expected state:
//! 1. every check passes; long-lived connections through the VIP reach
//!    every server;
//! 2. rs2's HTTP server is killed: rs2 leaves the table (`-Ln`, metrics
//!    `rvs_realserver_up 0`), new connections avoid it, the established
//!    connections to rs1 and rs3 go on;
//! 3. rs3's HTTP packets are dropped with nftables in its namespace
//!    (input and output hooks): the check times out, rs3 leaves;
//! 4. rs1 answers 500: it stays listed with weight 0 (inhibit_on_failure),
//!    the quorum is lost and the sorry server answers new connections;
//! 5. everything is repaired: all three are back at weight 1 and serve.
//!
//! Printed: the detection time of each failure (from the fault to `-Ln`
//! showing it), against `delay_loop × retry + connect_timeout` plus one
//! `delay_loop` of phase. Nothing asserts a wall-clock time.
//!
//! `cargo test -p control --test e2e_health`

mod e2e;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use e2e::netns::{self, plan, Mode, Proc, Topology};
use e2e::rvsd::{ep, serial, Rvsd};
use e2e::servers::{self, Hold, HTTP_PORT};

const TAP_S: &str = "rvs-s";
const SORRY_PORT: u16 = 8080;

fn config(topo: &Topology, sock: &str, prefix: &str) -> String {
    let mut reals = String::new();
    for (i, s) in topo.servers.iter().enumerate() {
        let inhibit = if i == 0 {
            "  [service.real.health]\n  inhibit_on_failure = true\n"
        } else {
            ""
        };
        reals.push_str(&format!(
            r#"  [[service.real]]
  address = "{a}"
  weight = 1
{inhibit}  [[service.real.check]]
  type = "HTTP_GET"
  path = "/"
  status_code = [200]
  connect_timeout = 1
  retry = 1
  delay_before_retry = 1
"#,
            a = ep(&s.ip4, HTTP_PORT)
        ));
    }
    format!(
        r#"# written by e2e_health
[eal]
cores = [0, 1]
hugepages = false
memory_mb = 256
extra_args = ["--no-pci", "--no-shconf", "--file-prefix={prefix}"]

[[port]]
name = "client"
device = "net_af_packet0,iface={ic},qpairs=1"
addresses = ["{c4}/24"]

[[port]]
name = "server"
device = "net_af_packet1,iface={is},qpairs=1"
addresses = ["{s4}/24"]
tap = "{TAP_S}"

[dataplane]
workers = 1
conn_table_size = 65536

[metrics]
listen = "127.0.0.1:9109"

[control]
socket = "{sock}"

[[service]]
protocol = "tcp"
address = "{vip}"
scheduler = "rr"
forward = "masq"
sorry_server = "{sorry}"
[service.health]
delay_loop = 1
{reals}"#,
        ic = topo.client_port().iface,
        is = topo.server_port().iface,
        c4 = plan::DIR_CLI4,
        s4 = plan::DIR_SRV4,
        vip = ep(plan::VIP4, HTTP_PORT),
        sorry = ep(&topo.servers[2].ip4, SORRY_PORT),
    )
}

/// Waits (bounded) until `pred` holds for `rvsadm -Ln`; returns the
/// seconds it took, or panics with the listings.
fn wait_ln(rvsd: &Rvsd, what: &str, pred: impl Fn(&str) -> bool) -> f64 {
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(30);
    loop {
        let ln = rvsd.adm(&["-Ln"]).unwrap_or_default();
        if pred(&ln) {
            return t0.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            panic!(
                "{what}: not seen within 30 s\n-Ln:\n{ln}\n--health:\n{}",
                rvsd.adm(&["--health"]).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `-> addr weight` lines of the listing.
fn reals_of(ln: &str) -> Vec<(String, u32)> {
    ln.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"->") && f.get(1).is_some_and(|a| a.contains(':'))).then(|| {
                (
                    f[1].to_string(),
                    f.get(3).and_then(|w| w.parse().ok()).unwrap_or(999),
                )
            })
        })
        .collect()
}

fn weight_of(ln: &str, addr: &str) -> Option<u32> {
    reals_of(ln)
        .into_iter()
        .find(|(a, _)| a == addr)
        .map(|(_, w)| w)
}

/// Which servers answer `n` new connections through the VIP.
fn served_by(topo: &Topology, n: usize) -> BTreeSet<String> {
    servers::http_get(&topo.client, None, plan::VIP4, HTTP_PORT, "/", n)
        .into_iter()
        .map(|r| {
            assert!(r.ok, "request through the VIP failed: {r:?}");
            r.server.unwrap_or_default()
        })
        .collect()
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The `rvs_realserver_up` sample of a real server.
fn up_metric(rvsd: &Rvsd, ip: &str) -> Option<String> {
    let m = rvsd.scrape().unwrap_or_default();
    m.lines()
        .find(|l| {
            l.starts_with("rvs_realserver_up{") && l.contains(&format!("remote_address=\"{ip}\""))
        })
        .and_then(|l| l.rsplit(' ').next().map(str::to_string))
}

/// An HTTP server on port 80 that answers every request with 500.
fn start_http_500(ns: &str) -> Proc {
    let code = r#"
import http.server as h
class H(h.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500)
        self.send_header('Content-Length', '0')
        self.end_headers()
    def log_message(self, *a):
        pass
s = h.HTTPServer(('0.0.0.0', 80), H)
print('READY 80', flush=True)
s.serve_forever()
"#;
    let mut p = netns::spawn(ns, &["python3", "-c", code]);
    assert!(
        p.wait_line(Duration::from_secs(30), |l| l.starts_with("READY"))
            .is_some(),
        "500 server: {}",
        p.stderr()
    );
    p
}

/// The nftables table the test adds in a real server's namespace.
const NFT_TABLE: &str = "rvs_health_drop";

fn nft(ns: &str, args: &[&str]) -> String {
    let mut argv = vec!["nft"];
    argv.extend_from_slice(args);
    netns::exec(ns, &argv).unwrap_or_else(|e| panic!("nft {args:?} in {ns}: {e}"))
}

/// Drops every packet of `ns`'s HTTP service ([`HTTP_PORT`]), in and out,
/// counted: the real server becomes a black hole for clients and checker
/// alike. (Its other ports stay: rs3 also runs the sorry server.)
fn nft_drop_http(ns: &str) {
    nft(ns, &["add", "table", "inet", NFT_TABLE]);
    let port = HTTP_PORT.to_string();
    for (chain, dir) in [("input", "dport"), ("output", "sport")] {
        let spec = format!("{{ type filter hook {chain} priority 0; policy accept; }}");
        nft(ns, &["add", "chain", "inet", NFT_TABLE, chain, &spec]);
        nft(
            ns,
            &[
                "add", "rule", "inet", NFT_TABLE, chain, "tcp", dir, &port, "counter", "drop",
            ],
        );
    }
}

/// Packets the [`nft_drop_http`] rules dropped.
fn nft_dropped(ns: &str) -> u64 {
    let t = nft(ns, &["list", "table", "inet", NFT_TABLE]);
    t.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "packets")
        .filter_map(|w| w[1].parse::<u64>().ok())
        .sum()
}

#[test]
fn failed_real_servers_leave_and_return() {
    if netns::skip_unless_root("failed_real_servers_leave_and_return") {
        return;
    }
    if let Err(e) = netns::run(&["nft", "--version"]) {
        // scripts/setup.sh installs nftables
        netns::skip(
            "failed_real_servers_leave_and_return",
            &format!("nft unavailable: {e}"),
        );
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let mut http: Vec<Proc> = topo
        .servers
        .iter()
        .map(|s| servers::start_http(&s.ns, &s.name, HTTP_PORT))
        .collect();
    let _sorry = servers::start_http(&topo.servers[2].ns, "sorry", SORRY_PORT);
    let rvsd = Rvsd::start_text(&topo, &topo.director, "health", |sock, prefix| {
        config(&topo, sock, prefix)
    });
    let rs: Vec<String> = topo.servers.iter().map(|s| ep(&s.ip4, HTTP_PORT)).collect();
    servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));

    // 1. every check passes, through the TAP
    let t0 = Instant::now();
    loop {
        let h = rvsd.ok(&["--health"]);
        if h.matches("last ok (HTTP 200)").count() == 3 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "checks did not pass:\n{h}\nrvsd log:\n{}",
            rvsd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served_by(&topo, 6), set(&["rs1", "rs2", "rs3"]));
    let holds: Vec<Hold> = (0..6)
        .map(|_| Hold::start(&topo.client, None, plan::VIP4, HTTP_PORT, 12))
        .collect();

    // 2. rs2's HTTP server dies: removed
    http[1].kill();
    let t_kill = wait_ln(&rvsd, "rs2 removed", |ln| {
        weight_of(ln, &rs[1]).is_none() && weight_of(ln, &rs[0]) == Some(1)
    });
    println!("detection, connection refused (rs2 killed): {t_kill:.2} s (bound 1 x 1 + 1 s, plus up to 1 s of phase)");
    assert_eq!(served_by(&topo, 6), set(&["rs1", "rs3"]));
    assert_eq!(up_metric(&rvsd, &topo.servers[1].ip4).as_deref(), Some("0"));
    assert_eq!(up_metric(&rvsd, &topo.servers[0].ip4).as_deref(), Some("1"));
    assert!(rvsd
        .log()
        .contains(&format!("real server {} is DOWN", rs[1])));
    // established connections to the other servers are untouched
    for h in holds {
        let server = h.server.clone();
        let r = h.finish();
        if server.as_deref() != Some("rs2") {
            assert!(r.ok, "connection to {server:?} broke: {r:?}");
        }
    }

    // 3. rs3's packets are dropped with nftables in its namespace (its
    // HTTP port, in and out): the check times out
    nft_drop_http(&topo.servers[2].ns);
    let t_drop = wait_ln(&rvsd, "rs3 removed", |ln| weight_of(ln, &rs[2]).is_none());
    println!("detection, timeout (rs3 packets dropped by nft): {t_drop:.2} s (bound 1 x 1 + 1 s, plus up to 1 s of phase)");
    let dropped = nft_dropped(&topo.servers[2].ns);
    assert!(dropped > 0, "nft dropped nothing in rs3");
    assert_eq!(up_metric(&rvsd, &topo.servers[2].ip4).as_deref(), Some("0"));
    assert_eq!(served_by(&topo, 4), set(&["rs1"]));

    // 4. rs1 answers 500: weight 0 (inhibit), quorum lost: the sorry server
    http[0].kill();
    let _bad = start_http_500(&topo.servers[0].ns);
    let t_500 = wait_ln(&rvsd, "rs1 weight 0", |ln| weight_of(ln, &rs[0]) == Some(0));
    println!("detection, HTTP 500 (rs1): {t_500:.2} s");
    assert_eq!(served_by(&topo, 3), set(&["sorry"]));
    let health = rvsd.ok(&["--health"]);
    assert!(health.contains("quorum DOWN"), "{health}");
    assert!(health.contains("HTTP 500"), "{health}");
    drop(_bad);

    // 5. repaired: all back at their weight
    http[0] = servers::start_http(&topo.servers[0].ns, "rs1", HTTP_PORT);
    http[1] = servers::start_http(&topo.servers[1].ns, "rs2", HTTP_PORT);
    nft(&topo.servers[2].ns, &["delete", "table", "inet", NFT_TABLE]);
    let t_back = wait_ln(&rvsd, "all back", |ln| {
        rs.iter().all(|a| weight_of(ln, a) == Some(1))
    });
    println!("recovery, all three: {t_back:.2} s");
    assert_eq!(served_by(&topo, 6), set(&["rs1", "rs2", "rs3"]));
    let health = rvsd.ok(&["--health"]);
    assert!(health.contains("quorum UP"), "{health}");
    let log = rvsd.log();
    assert!(log.contains("quorum lost"), "{log}");
    assert!(log.contains("quorum gained"), "{log}");
}

/// The operator's keepalived.conf, unchanged: VRRP for keepalived, the
/// virtual servers (NAT with TCP_CHECK, DR with HTTP_GET on the servers'
/// port 80) for rvs.
fn keepalived_conf(topo: &Topology, adm: &str) -> String {
    let mut nat_reals = String::new();
    let mut dr_reals = String::new();
    for s in &topo.servers {
        nat_reals.push_str(&format!(
            "    real_server {} {HTTP_PORT} {{\n        weight 1\n        TCP_CHECK {{\n            connect_timeout 1\n            retry 1\n            delay_before_retry 1\n        }}\n    }}\n",
            s.ip4
        ));
        dr_reals.push_str(&format!(
            "    real_server {} 8080 {{\n        HTTP_GET {{\n            connect_port 80\n            url {{\n              path /\n              status_code 200\n            }}\n        }}\n    }}\n",
            s.ip4
        ));
    }
    format!(
        r#"! keepalived.conf as it ran with kernel IPVS
global_defs {{
    router_id rvs_e2e
    script_user root
    enable_script_security
}}

vrrp_instance VI_1 {{
    state BACKUP
    interface rvs-c
    virtual_router_id 52
    priority 100
    advert_int 1
    notify_master "{adm} --role master"
    notify_backup "{adm} --role backup"
    notify_fault "{adm} --role backup"
}}

virtual_server {vip} {HTTP_PORT} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
{nat_reals}}}

virtual_server {vip} 8080 {{
    delay_loop 1
    lb_algo wlc
    lb_kind DR
    protocol TCP
{dr_reals}}}
"#,
        vip = plan::VIP4,
    )
}

#[test]
fn keepalived_conf_runs_unchanged_beside_stock_keepalived() {
    let test = "keepalived_conf_runs_unchanged_beside_stock_keepalived";
    if netns::skip_unless_root(test) {
        return;
    }
    if let Err(e) = netns::run(&["keepalived", "--version"]) {
        netns::skip(test, &format!("keepalived unavailable: {e}"));
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let mut http: Vec<Proc> = topo
        .servers
        .iter()
        .map(|s| servers::start_http(&s.ns, &s.name, HTTP_PORT))
        .collect();
    let dir = std::env::temp_dir().join(format!("rvs-e2e-{}-ka", topo.tag));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ka = dir.join("keepalived.conf");
    let rvsd = Rvsd::start_text(&topo, &topo.director, "ka", |sock, prefix| {
        let adm = format!("{} --socket {sock}", e2e::rvsd::RVSADM);
        std::fs::write(&ka, keepalived_conf(&topo, &adm)).unwrap();
        // rvsd.toml: what keepalived.conf cannot say, and the file itself
        let base = config(&topo, sock, prefix);
        let head = &base[..base.find("[[service]]").unwrap()];
        format!(
            "{}\n[ha]\nrole = \"backup\"\n\n[keepalived]\nconf = \"{}\"\n",
            head.replace(
                "addresses = [\"198.18.0.1/24\"]",
                "addresses = [\"198.18.0.1/24\"]\ntap = \"rvs-c\""
            ),
            ka.display()
        )
    });
    let ln = rvsd.ok(&["-Ln"]);
    assert!(ln.contains(&format!("TCP  {}:80 rr", plan::VIP4)), "{ln}");
    assert!(
        ln.contains(&format!("TCP  {}:8080 wlc", plan::VIP4)),
        "{ln}"
    );
    assert!(ln.contains("Route"), "{ln}");

    // keepalived for VRRP only, from the same file
    let p = |f: &str| dir.join(f).display().to_string();
    let (kp, vp, cp, cfg) = (
        p("ka.pid"),
        p("vrrp.pid"),
        p("chk.pid"),
        ka.display().to_string(),
    );
    let mut k = netns::spawn(
        &topo.director,
        &[
            "keepalived",
            "-n",
            "-l",
            "-G",
            "-D",
            "-P",
            "-f",
            &cfg,
            "-p",
            &kp,
            "-r",
            &vp,
            "-c",
            &cp,
        ],
    );
    // no peer: it becomes master, and its notify script makes rvsd master
    let t0 = Instant::now();
    while !rvsd.log().contains("role backup -> master") {
        assert!(
            k.alive() && t0.elapsed() < Duration::from_secs(40),
            "keepalived (alive {}) did not make rvsd master:\n{}\nrvsd:\n{}",
            k.alive(),
            k.stderr(),
            rvsd.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    assert_eq!(served_by(&topo, 6), set(&["rs1", "rs2", "rs3"]));

    // the file's TCP_CHECK runs in rvsd: a dead server leaves
    let rs1 = ep(&topo.servers[0].ip4, HTTP_PORT);
    http[0].kill();
    let t = wait_ln(&rvsd, "rs1 removed", |ln| {
        !ln.lines().any(|l| l.contains(&format!("-> {rs1} ")))
    });
    println!("keepalived.conf TCP_CHECK detection (rs1 killed): {t:.2} s");
    assert_eq!(served_by(&topo, 4), set(&["rs2", "rs3"]));
    http[0] = servers::start_http(&topo.servers[0].ns, "rs1", HTTP_PORT);
    wait_ln(&rvsd, "rs1 back", |ln| ln.contains(&format!("-> {rs1} ")));
    assert!(k.alive(), "keepalived exited:\n{}", k.stderr());
    let log = k.stderr();
    assert!(!log.contains("Can't initialize ipvs"), "{log}");
    k.kill();
    let _ = std::fs::remove_dir_all(&dir);
}
