//! The whole dataplane on DPDK: EAL, `net_ring` port pairs with real
//! mbufs, two pinned workers, handoff rings, the neighbour relay, snapshot
//! publication and an orderly shutdown. The test plays the client and the
//! real servers on the far ends of the rings.

mod common;

use common::*;
use dataplane::conn::FwdMode;
use dataplane::dpdk::{Burst, Eal, EalArgs, Mbuf, Port, RxQueue, TxQueue};
use dataplane::runtime::{PortSpec, Runtime, RuntimeConfig};
use dataplane::sched::SchedKind;
use dataplane::snapshot::Role;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn send(tx: &mut TxQueue, pool: &dataplane::dpdk::Mempool, frames: &[Vec<u8>]) {
    for chunk in frames.chunks(32) {
        let mut b = Burst::new();
        for f in chunk {
            let mut m = pool.alloc().expect("mbuf");
            assert!(m.set_bytes(f));
            b.push(m).expect("room");
        }
        assert_eq!(tx.send(&mut b), chunk.len());
    }
}

/// Collects frames from every queue of a peer port until `done` says so or
/// the time runs out.
fn collect(rx: &mut [RxQueue], want: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !want(&got) {
        for q in rx.iter_mut() {
            let mut b = Burst::new();
            q.rx_burst(&mut b);
            for m in b.drain() {
                got.push(Mbuf::data(&m).to_vec());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    got
}

fn is_arp(f: &[u8]) -> bool {
    f.len() >= 14 && f[12..14] == [0x08, 0x06]
}

/// Neighbour traffic rather than forwarded data: ARP, and IPv6 (this test
/// forwards only IPv4; the client port's IPv6 address is announced by
/// unsolicited NAs, whose rounds can fall into a collection window when
/// the machine is loaded and the test runs slowly).
fn is_ctl(f: &[u8]) -> bool {
    is_arp(f) || (f.len() >= 14 && f[12..14] == [0x86, 0xdd])
}

/// An ARP request that asks for someone else (not a gratuitous ARP, whose
/// sender and target addresses are equal).
fn asks(f: &[u8], ip: [u8; 4]) -> bool {
    is_arp(f) && f.len() >= 42 && f[28..32] != f[38..42] && f[38..42] == ip
}

#[test]
fn two_workers_forward_nat_over_net_ring_with_handoff_and_arp() {
    let workers = 2u16;
    let eal = Eal::init(&EalArgs::test("runtime", 256)).expect("EAL");
    let cfg = RuntimeConfig {
        eal: EalArgs::new(["unused"]),
        ports: vec![
            PortSpec {
                name: "client".into(),
                device: String::new(),
                mtu: 1500,
                v4: None,
                v6: None,
                tap: None,
            },
            PortSpec {
                name: "server".into(),
                device: String::new(),
                mtu: 1500,
                v4: None,
                v6: None,
                tap: None,
            },
        ],
        workers,
        worker_cores: vec![Some(0), Some(1)],
        conns_v4: 4096,
        conns_v6: 1024,
        seq_adj: 0,
        mbufs: 8191,
        max_services: 16,
        max_reals: 4096,
        idle: Default::default(),
    };
    let pool = Runtime::pool(&eal, &cfg).expect("pool");
    let pcfg = Runtime::port_config(&cfg);
    let (dir_client, mut peer_client) = Port::ring_pair(&eal, "rtc", &pcfg, &pool).expect("pair");
    let (dir_server, mut peer_server) = Port::ring_pair(&eal, "rts", &pcfg, &pool).expect("pair");
    let mut client_tx = peer_client.take_tx_queue(0).expect("tx");
    let mut client_rx: Vec<RxQueue> = (0..workers)
        .map(|q| peer_client.take_rx_queue(q).expect("rx"))
        .collect();
    let mut server_tx = peer_server.take_tx_queue(0).expect("tx");
    let mut server_rx: Vec<RxQueue> = (0..workers)
        .map(|q| peer_server.take_rx_queue(q).expect("rx"))
        .collect();

    let rt = Runtime::start_on(
        &eal,
        pool.clone(),
        vec![dir_client, dir_server],
        cfg,
        |ports| {
            let mut ps = common::ports();
            ps[0].mac = ports[0].mac;
            ps[1].mac = ports[1].mac;
            Ok(snapshot_on(
                ps,
                vec![service(
                    0,
                    v4("198.18.0.100"),
                    80,
                    SchedKind::Rr,
                    &[(v4("198.19.0.11"), 8080)],
                    FwdMode::Nat,
                )],
                Role::Master,
            ))
        },
    )
    .expect("runtime");
    let dir_server_mac = rt.port_snaps()[1].mac.0;

    // 200 new connections, all arriving on queue 0 (worker 0): about half
    // belong to worker 1 and are handed over.
    let n = 200u16;
    let syns: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            tcp4(
                "198.18.0.10",
                10000 + i,
                "198.18.0.100",
                80,
                true,
                false,
                b"",
            )
        })
        .collect();
    send(&mut client_tx, &pool, &syns);

    // Each worker asks for the real server's MAC once.
    let arps = collect(&mut server_rx, |g| {
        g.iter().any(|f| asks(f, [198, 19, 0, 11]))
    });
    // Only ARP and neighbour discovery (announcements of the ports' own
    // addresses) before rs1 answers: no IPv4 data.
    assert!(
        !arps.iter().any(|f| f[12..14] == [0x08, 0x00]),
        "no data before rs1 answers"
    );
    // Let both workers finish the burst first (the queued and dropped
    // SYNs stop changing), so that no SYN meets a resolved neighbour: the
    // relay now reaches worker 1 within a loop iteration.
    let queue_drops = |rt: &Runtime| -> u64 {
        rt.counters()
            .iter()
            .map(|c| c.path_drops[dataplane::stats::PathDrop::NeighQueueFull.index()].get())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = u64::MAX;
    while Instant::now() < deadline {
        let handed = rt.counters()[0].handoff_out[1].get();
        let now = queue_drops(&rt) + handed;
        if now == last && rt.counters()[1].handoff_in.get() == handed {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(50));
    }
    // rs1 answers (to worker 0's queue); the relay tells worker 1.
    send(
        &mut server_tx,
        &pool,
        &[arp_reply(
            MAC_RS1,
            "198.19.0.11",
            dir_server_mac,
            "198.19.0.1",
        )],
    );

    // At most 8 packets per worker wait for resolution; the rest were
    // dropped (counted), and the clients retransmit.
    let first = collect(&mut server_rx, |g| {
        g.iter().filter(|f| !is_ctl(f)).count() >= 16
    });
    let queue_drops: u64 = rt
        .counters()
        .iter()
        .map(|c| c.path_drops[dataplane::stats::PathDrop::NeighQueueFull.index()].get())
        .sum();
    assert_eq!(
        first.iter().filter(|f| !is_ctl(f)).count() as u64 + queue_drops,
        u64::from(n)
    );
    send(&mut client_tx, &pool, &syns);
    let out = collect(&mut server_rx, |g| {
        g.iter().filter(|f| !is_ctl(f)).count() >= n as usize
    });
    let mut ports = HashSet::new();
    for f in first.iter().chain(out.iter()).filter(|f| !is_ctl(f)) {
        let (src, sport, dst, dport, mac) = check_out(f);
        assert_eq!(
            (src, dst, dport, mac),
            (v4("198.18.0.10"), v4("198.19.0.11"), 8080, MAC_RS1)
        );
        ports.insert(sport);
    }
    assert_eq!(
        ports.len(),
        n as usize,
        "every connection reached the real server"
    );

    // Replies come back on the server side and leave to the client
    // through the gateway (its MAC answered by the test).
    let replies: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            tcp4(
                "198.19.0.11",
                8080,
                "198.18.0.10",
                10000 + i,
                true,
                true,
                b"",
            )
        })
        .collect();
    send(&mut server_tx, &pool, &replies);
    let asked = collect(&mut client_rx, |g| {
        g.iter().any(|f| asks(f, [198, 18, 0, 10]))
    });
    assert!(asked.iter().any(|f| asks(f, [198, 18, 0, 10])));
    send(
        &mut client_tx,
        &pool,
        &[arp_reply(
            MAC_GW,
            "198.18.0.10",
            rt.port_snaps()[0].mac.0,
            "198.18.0.1",
        )],
    );
    // Both workers must know the gateway before the replies are sent
    // again (one learns it from the answer, the other through the relay;
    // on a loaded machine that can take longer than any fixed sleep).
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let gw = rt
            .neighbours()
            .iter()
            .filter(|(_, e)| e.ip == v4("198.18.0.10") && e.mac.0 == MAC_GW)
            .count();
        if gw == usize::from(workers) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    send(&mut server_tx, &pool, &replies);
    let back = collect(&mut client_rx, |g| {
        g.iter().filter(|f| !is_ctl(f)).count() >= n as usize + 8
    });
    let mut dports = HashSet::new();
    for f in back.iter().filter(|f| !is_ctl(f)) {
        let (src, sport, dst, dport, mac) = check_out(f);
        assert_eq!(
            (src, sport, dst, mac),
            (v4("198.18.0.100"), 80, v4("198.18.0.10"), MAC_GW)
        );
        dports.insert(dport);
    }
    assert_eq!(dports.len(), n as usize, "every reply reached the client");

    let c = rt.counters();
    let handed = c[0].handoff_out[1].get();
    // 800 packets arrived on queue 0 (SYNs twice, replies twice); about
    // half belong to worker 1.
    assert!(
        handed > 200 && handed < 600,
        "worker 0 handed about half to worker 1: {handed}"
    );
    // (the last handed replies may still be in worker 1's ring)
    let deadline = Instant::now() + Duration::from_secs(10);
    while c[1].handoff_in.get() < handed && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(c[1].handoff_in.get() >= handed);
    let entries: usize = rt.connections(10_000).len();
    assert_eq!(entries, n as usize);
    let conns: u64 = c.iter().map(|w| w.services[0].conns.get()).sum();
    assert_eq!(conns, u64::from(n));
    let _: IpAddr = v4("198.18.0.10");

    // Both workers know rs1: one learned it from the ARP reply, the other
    // through the relay.
    let neigh = rt.neighbours();
    let rs1: Vec<_> = neigh
        .iter()
        .filter(|(_, e)| e.ip == v4("198.19.0.11"))
        .collect();
    assert_eq!(rs1.len(), 2, "{neigh:?}");
    assert!(rs1.iter().all(|(_, e)| e.mac.0 == MAC_RS1 && e.port == 1));

    rt.shutdown();
    drop(peer_client);
    drop(peer_server);
    drop(client_rx);
    drop(server_rx);
    drop(client_tx);
    drop(server_tx);
}
