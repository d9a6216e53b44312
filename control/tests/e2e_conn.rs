//! End-to-end connection reuse through the real rvsd (NAT, DPDK
//! `net_af_packet` ports, kernel TCP at both ends): a client that opens
//! every connection from the same source port (as ab and wrk do once they
//! cycle through their ports) is scheduled afresh each time (IPVS's
//! `conn_reuse_mode = 1`), every connection is counted, and a real server
//! drained with `-e -w 0` gets none of the reused tuples. Also: the two
//! connection tables' sizes as `--workers` and `-Ln` show them.
//!
//! `cargo test -p control --test e2e_conn`

mod e2e;

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::netns::{self, plan, Mode, Topology};
use e2e::rvsd::{ep, serial, service, Conf, Rvsd};
use e2e::servers::{self, HttpResult, HTTP_PORT};

/// Drop reasons that ordinary background traffic produces.
const BACKGROUND: &[&str] = &["not_ours"];
const VPORT: u16 = 83;

fn vip(v6: bool) -> &'static str {
    if v6 {
        plan::VIP6
    } else {
        plan::VIP4
    }
}

fn rs_ep(topo: &Topology, v6: bool, n: usize, port: u16) -> String {
    let s = &topo.servers[n - 1];
    ep(if v6 { &s.ip6 } else { &s.ip4 }, port)
}

fn nat(topo: &Topology, v6: bool, vport: u16) -> String {
    let reals: Vec<(String, u32)> = (1..=3)
        .map(|n| (rs_ep(topo, v6, n, HTTP_PORT), 1))
        .collect();
    service("tcp", &ep(vip(v6), vport), "rr", "masq", "", &reals)
}

fn counts(res: &[HttpResult]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in res {
        assert!(r.ok, "{r:?}");
        *m.entry(r.server.clone().unwrap()).or_insert(0) += 1;
    }
    m
}

/// The Conns column of `-Ln --stats` for the service line `svc` or, with
/// `rip`, for that real server under it.
fn conns(listing: &str, svc: &str, rip: Option<&str>) -> u64 {
    let mut in_svc = false;
    for l in listing.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 3 && (f[0] == "TCP" || f[0] == "UDP") {
            in_svc = f[1] == svc;
            if in_svc && rip.is_none() {
                return f[2].parse().unwrap();
            }
        } else if in_svc && f.len() >= 3 && f[0] == "->" && Some(f[1]) == rip {
            return f[2].parse().unwrap();
        }
    }
    panic!("{svc} {rip:?} not in\n{listing}");
}

#[test]
fn reused_client_ports_are_rescheduled_counted_and_drained() {
    if netns::skip_unless_root("reused_client_ports_are_rescheduled_counted_and_drained") {
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let _srv = servers::start_all(&topo);
    let mut services = String::new();
    for v6 in [false, true] {
        services.push_str(&nat(&topo, v6, HTTP_PORT));
        services.push_str(&nat(&topo, v6, VPORT));
    }
    let rvsd = Rvsd::start(
        &topo,
        &Conf {
            services,
            ..Conf::default()
        },
    );
    for v6 in [false, true] {
        servers::wait_tcp(&topo.client, vip(v6), HTTP_PORT, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    }
    for v6 in [false, true] {
        let src = if v6 {
            &topo.clients6[0]
        } else {
            &topo.clients4[0]
        };
        let svc = ep(vip(v6), VPORT);
        let sport = if v6 { 46000 } else { 45000 };
        // 12 connections on one tuple: rr gives each server 4 (without
        // reuse handling all 12 went to the first one, counted once).
        let r = servers::http_get_from_port(&topo.client, src, sport, vip(v6), VPORT, 12);
        let c = counts(&r);
        assert_eq!(
            c.values().copied().collect::<Vec<_>>(),
            vec![4, 4, 4],
            "v6={v6}: {c:?}"
        );
        let stats = rvsd.ok(&["-Ln", "--stats"]);
        assert_eq!(conns(&stats, &svc, None), 12, "v6={v6}:\n{stats}");
        // drain rs1: the reused tuple never reaches it again
        let rs1 = rs_ep(&topo, v6, 1, HTTP_PORT);
        rvsd.ok(&["-e", "-t", &svc, "-r", &rs1, "-m", "-w", "0"]);
        let r = servers::http_get_from_port(&topo.client, src, sport, vip(v6), VPORT, 9);
        let c = counts(&r);
        assert!(!c.contains_key("rs1"), "v6={v6}: drained rs1 got {c:?}");
        assert_eq!(c.values().sum::<usize>(), 9);
        let stats = rvsd.ok(&["-Ln", "--stats"]);
        assert_eq!(conns(&stats, &svc, None), 21, "v6={v6}:\n{stats}");
        assert_eq!(conns(&stats, &svc, Some(&rs1)), 4, "v6={v6}:\n{stats}");
    }
    // the tables' sizes: conn_table_size (the harness's 65536) and the
    // documented IPv6 default, each worker; -Ln shows the IPv4 one
    let w = rvsd.ok(&["--workers"]);
    eprintln!("rvsadm --workers:\n{w}");
    let head: Vec<&str> = w.lines().next().unwrap_or("").split_whitespace().collect();
    let row: Vec<&str> = w.lines().nth(1).unwrap_or("").split_whitespace().collect();
    let col = |name: &str| {
        let i = head
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("{name}: {w}"));
        row[i]
    };
    assert_eq!(col("Capacity-v4"), "65536", "{w}");
    assert_eq!(col("Capacity-v6"), "262144", "{w}");
    assert!(col("Reused").parse::<u64>().unwrap() >= 2 * 20, "{w}");
    assert_eq!(col("Lost"), "0", "{w}");
    let l = rvsd.ok(&["-Ln"]);
    assert!(
        l.starts_with("IP Virtual Server version 1.2.1 (size=65536)\n"),
        "{l}"
    );
    let m = rvsd.scrape().unwrap();
    assert!(
        m.contains("rvs_conn_table_family_capacity{worker=\"0\",family=\"ipv6\"} 262144\n"),
        "{m}"
    );
    rvsd.check_counters(BACKGROUND);
}
