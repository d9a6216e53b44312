//! A connection burst through the whole dataplane on DPDK (EAL, `net_ring`
//! ports, two workers, the relay thread): every sync report and every
//! persistence template reaches its destination at a rate the rings take,
//! and past it each loss is counted, never silent.

mod common;

use common::*;
use dataplane::conn::FwdMode;
use dataplane::dpdk::{Burst, Eal, EalArgs, Mbuf, Mempool, Port, RxQueue, TxQueue};
use dataplane::runtime::{PortSpec, Runtime, RuntimeConfig};
use dataplane::sched::{Persistence, RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service};
use dataplane::stats::{Loss, WorkerCounters};
use dataplane::sync::SyncParams;
use dataplane::wire::ethernet::MacAddr;
use etherparse::{PacketBuilder, SlicedPacket};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn udp(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_GW, MAC_P0)
        .ipv4(src.octets(), [198, 18, 0, 100], 64)
        .udp(sport, 53)
        .write(&mut out, b"q")
        .expect("build");
    out
}

/// Sends every frame, retrying while the ring is full (bounded).
fn send(tx: &mut TxQueue, pool: &Mempool, frames: &[Vec<u8>]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    for chunk in frames.chunks(32) {
        let mut b = Burst::new();
        for f in chunk {
            let mut m = pool.alloc().expect("mbuf");
            assert!(m.set_bytes(f));
            b.push(m).expect("room");
        }
        while !b.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the director stopped taking packets"
            );
            tx.send(&mut b);
            if !b.is_empty() {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

/// What reached the real servers: client → server address.
fn drain(rx: &mut [RxQueue], seen: &mut HashMap<(IpAddr, u16), IpAddr>) {
    for q in rx.iter_mut() {
        let mut b = Burst::new();
        q.rx_burst(&mut b);
        for m in b.drain() {
            let d = Mbuf::data(&m);
            let Ok(p) = SlicedPacket::from_ethernet(d) else {
                continue;
            };
            if let (
                Some(etherparse::NetSlice::Ipv4(ip)),
                Some(etherparse::TransportSlice::Udp(u)),
            ) = (p.net, p.transport)
            {
                let h = ip.header();
                seen.insert(
                    (IpAddr::V4(h.source_addr()), u.source_port()),
                    IpAddr::V4(h.destination_addr()),
                );
            }
        }
    }
}

fn client(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 1 + (i / 250) as u8, 1 + (i % 250) as u8)
}

fn losses(c: &[std::sync::Arc<WorkerCounters>]) -> u64 {
    c.iter()
        .flat_map(|w| w.losses())
        .map(|(_, n)| n)
        .sum::<u64>()
}

#[test]
fn connection_burst_loses_no_sync_report_or_template_silently() {
    let workers = 2u16;
    let eal = Eal::init(&EalArgs::test("burst", 256)).expect("EAL");
    let spec = |name: &str| PortSpec {
        name: name.into(),
        device: String::new(),
        mtu: 1500,
        v4: None,
        v6: None,
        tap: None,
    };
    let cfg = RuntimeConfig {
        eal: EalArgs::new(["unused"]),
        ports: vec![spec("client"), spec("server")],
        workers,
        worker_cores: vec![Some(0), Some(1)],
        conns_v4: 16384,
        conns_v6: 2048,
        seq_adj: 0,
        mbufs: 8191,
        max_services: 4,
        max_reals: 16,
        idle: Default::default(),
    };
    let pool = Runtime::pool(&eal, &cfg).expect("pool");
    let pcfg = Runtime::port_config(&cfg);
    let (dir_client, mut peer_client) = Port::ring_pair(&eal, "bc", &pcfg, &pool).expect("pair");
    let (dir_server, mut peer_server) = Port::ring_pair(&eal, "bs", &pcfg, &pool).expect("pair");
    let mut client_tx = peer_client.take_tx_queue(0).expect("tx");
    let mut server_rx: Vec<RxQueue> = (0..workers)
        .map(|q| peer_server.take_rx_queue(q).expect("rx"))
        .collect();
    // UDP service, persistent (templates), sync on every new connection.
    let reals = vec![
        RealServer::new(0, v4("198.19.0.11"), 53, 1),
        RealServer::new(1, v4("198.19.0.12"), 53, 1),
    ];
    let mut sc = SchedConfig::new(SchedKind::Rr);
    sc.persistence = Some(Persistence::new(300));
    let svc = Service {
        id: 0,
        proto: 17,
        vip: v4("198.18.0.100"),
        vport: 53,
        sched: ServiceSched::new(sc, reals, None, 1).expect("sched"),
        fwd: vec![FwdMode::Nat; 2].into_boxed_slice(),
        sorry_fwd: FwdMode::Nat,
        laddrs: Vec::new().into_boxed_slice(),
        stateless: None,
        passive_check: false,
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
    };
    let sync = SyncParams {
        threshold: 1,
        period: 0,
        refresh_period: 0,
        retries: 0,
    };
    let rt = Runtime::start_on(
        &eal,
        pool.clone(),
        vec![dir_client, dir_server],
        cfg,
        |ports| {
            let mut ps = common::ports();
            ps[0].mac = ports[0].mac;
            ps[1].mac = ports[1].mac;
            let mut b = dataplane::snapshot::SnapshotBuilder::new(1, ps, routes())
                .role(Role::Master)
                .sync(Some(sync))
                .service(svc);
            b = b.local_ports(1024, 65535);
            b.build().map_err(|e| format!("{e:?}"))
        },
    )
    .expect("runtime");
    for (ip, mac) in [("198.19.0.11", MAC_RS1), ("198.19.0.12", MAC_RS2)] {
        assert!(rt.learn(v4(ip), 1, MacAddr(mac)));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.neighbours().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        rt.neighbours().len(),
        4,
        "both servers known on both workers"
    );
    let c = rt.counters();
    assert_eq!(
        c.iter()
            .map(|w| (w.conn_capacity_v4.get(), w.conn_capacity_v6.get()))
            .collect::<Vec<_>>(),
        vec![(16384, 2048); 2],
        "each table has its configured size"
    );
    let events = rt.sync_events();
    let mut reports = 0u64;
    let take_reports = |n: &mut u64| {
        while events.queue.pop().is_some() {
            *n += 1;
        }
    };
    let mut seen = HashMap::new();

    // Phase 1: 2000 new connections from 250 clients (8 ports each) in
    // bursts of 100, at a rate the rings take (each burst waits for its
    // reports): none is lost. (250 templates: the per-worker template
    // table, 4-way sets, hashed by the service's fixed seed, evicts
    // none of them.)
    let n1 = 2000usize;
    let nc = 250usize;
    for chunk in 0..n1 / 100 {
        let frames: Vec<Vec<u8>> = (chunk * 100..(chunk + 1) * 100)
            .map(|i| udp(client(i % nc), 10000 + (i / nc) as u16))
            .collect();
        send(&mut client_tx, &pool, &frames);
        let want = ((chunk + 1) * 100) as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while reports < want && Instant::now() < deadline {
            take_reports(&mut reports);
            drain(&mut server_rx, &mut seen);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < n1 && Instant::now() < deadline {
        drain(&mut server_rx, &mut seen);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(reports, n1 as u64, "one sync report per connection");
    assert_eq!(events.overflow.load(Ordering::Relaxed), 0);
    assert_eq!(losses(c), 0, "nothing lost on a worker");
    for w in 0..workers as usize {
        for l in [Loss::NeighRelay, Loss::TemplateRelay] {
            assert_eq!(rt.relay_counters().get(w, l), 0, "{l:?} to worker {w}");
        }
    }
    let dropped: Vec<(&str, u64)> = c
        .iter()
        .flat_map(|w| w.drops())
        .filter(|d| d.1 > 0)
        .collect();
    assert_eq!(
        seen.len(),
        n1,
        "every connection reached a real server; drops {dropped:?}"
    );
    let first: HashMap<IpAddr, IpAddr> = seen.iter().map(|((c, _), rs)| (*c, *rs)).collect();
    assert_eq!(first.len(), nc);
    let split = seen
        .iter()
        .filter(|((cl, _), rs)| first.get(cl) != Some(*rs))
        .count();
    assert_eq!(split, 0, "each client kept one server on both workers");
    let conns: u64 = c.iter().map(|w| w.services[0].conns.get()).sum();
    assert_eq!(conns, n1 as u64);

    // Phase 2: every client again from another port; about half land on
    // the other worker, which knows the client's server only from the
    // relayed template.
    std::thread::sleep(Duration::from_millis(50));
    let frames: Vec<Vec<u8>> = (0..nc).map(|i| udp(client(i), 20000)).collect();
    let mut again = HashMap::new();
    for part in frames.chunks(100) {
        send(&mut client_tx, &pool, part);
        std::thread::sleep(Duration::from_millis(5));
        drain(&mut server_rx, &mut again);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while again.len() < nc && Instant::now() < deadline {
        drain(&mut server_rx, &mut again);
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(again.len(), nc);
    let moved = again
        .iter()
        .filter(|((cl, _), rs)| first.get(cl) != Some(*rs))
        .count();
    assert_eq!(moved, 0, "persistence holds on every worker");
    let cross: u64 = c.iter().map(|w| w.handoff_in.get()).sum();
    assert!(cross > 0, "some flows were handed between workers");
    take_reports(&mut reports);

    // Phase 3: a burst with no pause. Whatever the rings cannot take is
    // counted: reports received + sync queue overflow + reports lost on a
    // worker + packets dropped = packets sent.
    let before_reports = reports;
    let before_lost = c
        .iter()
        .map(|w| w.lost[Loss::SyncEvent.index()].get())
        .sum::<u64>();
    let drops_of = |c: &[std::sync::Arc<WorkerCounters>]| -> u64 {
        c.iter()
            .flat_map(|w| w.drops())
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    let before_drops = drops_of(c);
    let before_overflow = events.overflow.load(Ordering::Relaxed);
    let n3 = 3000usize;
    let frames: Vec<Vec<u8>> = (0..n3).map(|i| udp(client(i), 30000)).collect();
    send(&mut client_tx, &pool, &frames);
    let accounted = |reports: u64| {
        reports - before_reports
            + (events.overflow.load(Ordering::Relaxed) - before_overflow)
            + c.iter()
                .map(|w| w.lost[Loss::SyncEvent.index()].get())
                .sum::<u64>()
            - before_lost
            + drops_of(c)
            - before_drops
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while accounted(reports) < n3 as u64 && Instant::now() < deadline {
        take_reports(&mut reports);
        drain(&mut server_rx, &mut seen);
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    take_reports(&mut reports);
    assert_eq!(
        accounted(reports),
        n3 as u64,
        "every report delivered or counted"
    );
    eprintln!(
        "phase 3: {} reports, {} overflow, {} lost on workers",
        reports - before_reports,
        events.overflow.load(Ordering::Relaxed) - before_overflow,
        losses(c)
    );

    rt.shutdown();
    drop(peer_client);
    drop(peer_server);
    drop(server_rx);
    drop(client_tx);
}
