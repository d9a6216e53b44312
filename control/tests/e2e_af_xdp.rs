//! End to end on AF_XDP ports: the same NAT topology as `e2e_modes.rs`,
//! with rvsd's ports as `device = "af_xdp:IFACE"` (DPDK's `net_af_xdp` on
//! the director's veths, libxdp's default program) instead of af_packet.
//! Kernel TCP and UDP clients and real servers at both ends, IPv4 and
//! IPv6; the XDP program must be attached while rvsd runs and gone after.
//! Run twice: with the default idle policy (`poll`: the worker never
//! sleeps) and with `[dataplane] idle = "adaptive"` (it sleeps when idle
//! and still forwards everything).
//!
//! `cargo test -p control --test e2e_af_xdp`

mod e2e;

use std::collections::BTreeSet;
use std::time::Duration;

use e2e::netns::{self, plan, Mode, Topology};
use e2e::rvsd::{ep, serial, service, Conf, Rvsd};
use e2e::servers::{self, HTTP_PORT, UDP_PORT};

fn xdp_attached(topo: &Topology, iface: &str) -> bool {
    netns::ip(&topo.director, &["-d", "link", "show", "dev", iface]).contains("xdp")
}

#[test]
fn nat_over_af_xdp_ports() {
    nat_over_af_xdp("nat_over_af_xdp_ports", None);
}

#[test]
fn nat_over_af_xdp_ports_adaptive_idle() {
    nat_over_af_xdp("nat_over_af_xdp_ports_adaptive_idle", Some("adaptive"));
}

fn nat_over_af_xdp(test: &str, idle: Option<&str>) {
    if netns::skip_unless_root(test) {
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let _srv = servers::start_all(&topo);
    let mut conf = Conf {
        idle: idle.map(str::to_string),
        ..Conf::default()
    };
    for vip in [plan::VIP4, plan::VIP6] {
        for (proto, port) in [("tcp", HTTP_PORT), ("udp", UDP_PORT)] {
            let reals: Vec<(String, u32)> = topo
                .servers
                .iter()
                .map(|s| (ep(if vip.contains(':') { &s.ip6 } else { &s.ip4 }, port), 1))
                .collect();
            conf.services
                .push_str(&service(proto, &ep(vip, port), "rr", "masq", "", &reals));
        }
    }
    let mut rvsd = Rvsd::start_af_xdp(&topo, &conf);
    let text = std::fs::read_to_string(&rvsd.config).unwrap();
    assert!(text.contains("device = \"af_xdp:"), "{text}");
    for p in [topo.client_port(), topo.server_port()] {
        assert!(
            xdp_attached(&topo, &p.iface),
            "no XDP program on {}",
            p.iface
        );
    }
    for vip in [plan::VIP4, plan::VIP6] {
        servers::wait_tcp(&topo.client, vip, HTTP_PORT, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    }

    let all: BTreeSet<String> = topo.servers.iter().map(|s| s.name.clone()).collect();
    for (vip, src) in [
        (plan::VIP4, &topo.clients4[0]),
        (plan::VIP6, &topo.clients6[0]),
    ] {
        let res = servers::http_get(&topo.client, Some(src), vip, HTTP_PORT, "/", 6);
        assert_eq!(res.len(), 6);
        let mut seen = BTreeSet::new();
        for r in &res {
            assert!(r.ok, "af_xdp {vip}: {r:?}\nrvsd log:\n{}", rvsd.log());
            let name = r.server.clone().unwrap();
            assert_eq!(r.body, format!("{name}\n"));
            seen.insert(name);
        }
        assert_eq!(
            seen, all,
            "rr over af_xdp reaches every real server ({vip})"
        );

        let udp = servers::udp_echo(&topo.client, Some(src), vip, UDP_PORT, "xdp", 3);
        assert_eq!(udp.len(), 3);
        for (k, u) in udp.iter().enumerate() {
            assert!(u.ok && u.from.as_deref() == Some(vip), "udp {vip}: {u:?}");
            let name = u.server.clone().unwrap();
            assert_eq!(u.reply.as_deref(), Some(format!("{name}:xdp-{k}").as_str()));
        }
    }
    let stats = rvsd.ok(&["-Ln", "--stats", "--exact"]);
    assert!(
        stats.contains(&format!("TCP  {}", ep(plan::VIP4, HTTP_PORT))),
        "{stats}"
    );

    // The loop's accounting: loops and busy loops advance, and only the
    // adaptive policy sleeps (and then not all the time: it polls too).
    std::thread::sleep(Duration::from_millis(300));
    let (loops0, busy0, sleeps0, ms0) = (
        rvsd.workers_col("Loops"),
        rvsd.workers_col("Busy-loops"),
        rvsd.workers_col("Idle-sleeps"),
        rvsd.workers_col("Idle-ms"),
    );
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(1000));
    let (loops1, sleeps1, ms1) = (
        rvsd.workers_col("Loops"),
        rvsd.workers_col("Idle-sleeps"),
        rvsd.workers_col("Idle-ms"),
    );
    let wall_ms = t0.elapsed().as_millis() as u64;
    let workers = rvsd.ok(&["--workers"]);
    eprintln!("rvsadm --workers (idle {idle:?}, {wall_ms} ms without traffic):\n{workers}");
    assert!(loops1 > loops0 && busy0 > 0, "{workers}");
    assert!(busy0 < loops0, "empty polls are not busy loops:\n{workers}");
    let metrics = rvsd.scrape().unwrap();
    if idle == Some("adaptive") {
        // idle (no traffic) for a second: the worker slept most of it,
        // never longer than the wall clock (Idle-ms is rounded down)
        assert!(sleeps1 > sleeps0, "{workers}");
        assert!(
            ms1 - ms0 >= wall_ms / 2 && ms1 - ms0 <= wall_ms + 20,
            "slept {} ms of {wall_ms}:\n{workers}",
            ms1 - ms0
        );
        assert!(
            metrics.contains("rvs_worker_idle_sleeps_total{worker=\"0\"} ")
                && !metrics.contains("rvs_worker_idle_sleeps_total{worker=\"0\"} 0\n"),
            "{metrics}"
        );
    } else {
        assert_eq!((sleeps0, sleeps1, ms0, ms1), (0, 0, 0, 0), "{workers}");
        assert!(
            metrics.contains("rvs_worker_idle_sleeps_total{worker=\"0\"} 0\n"),
            "{metrics}"
        );
    }

    rvsd.stop();
    for p in [topo.client_port(), topo.server_port()] {
        assert!(
            !xdp_attached(&topo, &p.iface),
            "XDP program left on {} after rvsd stopped",
            p.iface
        );
    }
}
