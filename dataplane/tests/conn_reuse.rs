//! Connection reuse (IPVS's `conn_reuse_mode`), the byte and connection
//! counters and template reports, on the worker's packet path with byte
//! buffers: exact sequences of real servers, counts and events.

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::{FwdMode, TcpState};
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, Pipeline, PipelineConfig};
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::sync::Arc;

const VIP: &str = "198.18.0.100";
const CLIENT: &str = "198.18.0.10";
const RS: [&str; 2] = ["198.19.0.11", "198.19.0.12"];

fn from_client(cport: u16, flags: u8) -> Vec<u8> {
    seg((MAC_GW, MAC_P0), CLIENT, cport, VIP, 80, flags, b"")
}

fn from_real(rs: usize, cport: u16, flags: u8) -> Vec<u8> {
    seg((MAC_RS1, MAC_P1), RS[rs], 80, CLIENT, cport, flags, b"")
}

/// A service on VIP:80 over RS with the given weights; real-server ids
/// stay the same across calls, as control keeps them over `-e`.
fn svc(kind: SchedKind, weights: [u32; 2], fwd: FwdMode) -> Service {
    let reals: Vec<RealServer> = RS
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (a, w))| RealServer::new(i as u32, v4(a), 80, w))
        .collect();
    Service {
        id: 0,
        proto: 6,
        vip: v4(VIP),
        vport: 80,
        sched: ServiceSched::new(SchedConfig::new(kind), reals, None, 1).expect("sched"),
        fwd: vec![fwd; 2].into_boxed_slice(),
        sorry_fwd: fwd,
        laddrs: Vec::new().into_boxed_slice(),
        stateless: None,
        passive_check: false,
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
    }
}

fn snap(s: Service, reuse_mode: u8, generation: u64) -> Arc<Snapshot> {
    Arc::new(
        SnapshotBuilder::new(generation, ports(), routes())
            .role(Role::Master)
            .conn_reuse_mode(reuse_mode)
            .service(s)
            .build()
            .expect("snapshot"),
    )
}

fn director(s: Arc<Snapshot>) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let counters = Arc::new(WorkerCounters::new(4, 16, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        s,
        HashKey::from_seed(3),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    for (i, mac) in [MAC_RS1, MAC_RS2].into_iter().enumerate() {
        p.learn(v4(RS[i]), SERVER_PORT, MacAddr(mac), 0, &mut out);
    }
    p.learn(v4(CLIENT), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    p.learn(
        v6("2001:db8:1::11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    p.learn(
        v6("2001:db8::10"),
        CLIENT_PORT,
        MacAddr(MAC_GW),
        0,
        &mut out,
    );
    (p, counters, out)
}

/// Sends a client segment; returns the index of the real server it went
/// to (None: not forwarded to a real server).
fn client_seg(p: &mut Pipeline<VecBuf>, out: &mut Collect, cport: u16, flags: u8) -> Option<usize> {
    out.tx.clear();
    p.process(
        VecBuf::new(&from_client(cport, flags)),
        CLIENT_PORT,
        5_000_000_000,
        false,
        out,
    );
    let (port, f) = out.tx.first()?;
    if *port != SERVER_PORT {
        return None;
    }
    let (_, _, dst, _, mac) = check_out(f);
    if dst == v4(VIP) {
        // DR: only the destination MAC says which server
        return [MAC_RS1, MAC_RS2].iter().position(|m| *m == mac);
    }
    RS.iter().position(|r| v4(r) == dst)
}

fn real_seg(p: &mut Pipeline<VecBuf>, out: &mut Collect, rs: usize, cport: u16, flags: u8) {
    out.tx.clear();
    p.process(
        VecBuf::new(&from_real(rs, cport, flags)),
        SERVER_PORT,
        5_000_000_000,
        false,
        out,
    );
    assert_eq!(out.tx.len(), 1, "reply forwarded");
    assert_eq!(out.tx[0].0, CLIENT_PORT);
}

/// One whole NAT connection on client port `cport`: handshake, the server
/// closes first (HTTP with `Connection: close`), the client's FIN and last
/// ACK. Leaves the entry in TIME_WAIT; returns the real server it used.
fn nat_connection(p: &mut Pipeline<VecBuf>, out: &mut Collect, cport: u16) -> usize {
    let rs = client_seg(p, out, cport, SYN).expect("SYN forwarded");
    real_seg(p, out, rs, cport, SYN | ACK);
    assert_eq!(client_seg(p, out, cport, ACK), Some(rs));
    real_seg(p, out, rs, cport, FIN | ACK);
    assert_eq!(client_seg(p, out, cport, FIN | ACK), Some(rs));
    assert_eq!(client_seg(p, out, cport, ACK), Some(rs));
    rs
}

fn state_of(p: &Pipeline<VecBuf>, cport: u16) -> TcpState {
    let found: Vec<TcpState> = p
        .conns_v4()
        .iter()
        .filter(|(_, c)| c.cport() == cport)
        .map(|(_, c)| c.tcp_state())
        .collect();
    assert_eq!(found.len(), 1, "one entry for the tuple");
    found[0]
}

#[test]
fn reused_tuple_is_scheduled_afresh_counted_and_drained() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    // The same client port six times over: every SYN after the first finds
    // the previous connection in TIME_WAIT, expires it and is scheduled by
    // rr again.
    let mut seq = Vec::new();
    for _ in 0..6 {
        seq.push(nat_connection(&mut p, &mut out, 40000));
        assert_eq!(state_of(&p, 40000), TcpState::TimeWait);
    }
    assert_eq!(seq, vec![0, 1, 0, 1, 0, 1]);
    assert_eq!(
        c.services[0].conns.get(),
        6,
        "Conns counts every connection"
    );
    assert_eq!((c.reals[0].conns.get(), c.reals[1].conns.get()), (3, 3));
    assert_eq!(c.conn_reused.get(), 5);
    assert_eq!(p.conns_v4().len(), 1, "the old entries are gone");

    // `-e -w 0` on rs1 (ids kept): reused tuples never reach it.
    p.install(snap(svc(SchedKind::Rr, [0, 1], FwdMode::Nat), 1, 2));
    let mut drained = Vec::new();
    for _ in 0..4 {
        drained.push(nat_connection(&mut p, &mut out, 40000));
    }
    assert_eq!(drained, vec![1, 1, 1, 1]);
    assert_eq!(c.services[0].conns.get(), 10);
    assert_eq!((c.reals[0].conns.get(), c.reals[1].conns.get()), (3, 7));
    assert_eq!(c.conn_reused.get(), 9);
}

#[test]
fn a_syn_on_a_live_connection_is_not_rescheduled() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    assert_eq!(client_seg(&mut p, &mut out, 41000, SYN), Some(0));
    // a retransmitted SYN (SYN_RECV), then after the handshake a SYN on
    // the established connection: same server, no new connection
    assert_eq!(client_seg(&mut p, &mut out, 41000, SYN), Some(0));
    real_seg(&mut p, &mut out, 0, 41000, SYN | ACK);
    assert_eq!(client_seg(&mut p, &mut out, 41000, ACK), Some(0));
    assert_eq!(state_of(&p, 41000), TcpState::Established);
    assert_eq!(client_seg(&mut p, &mut out, 41000, SYN), Some(0));
    assert_eq!(c.services[0].conns.get(), 1);
    assert_eq!(c.conn_reused.get(), 0);
}

#[test]
fn reset_connection_in_close_is_rescheduled() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    assert_eq!(client_seg(&mut p, &mut out, 42000, SYN), Some(0));
    real_seg(&mut p, &mut out, 0, 42000, RST | ACK);
    assert_eq!(state_of(&p, 42000), TcpState::Close);
    assert_eq!(client_seg(&mut p, &mut out, 42000, SYN), Some(1));
    assert_eq!(c.services[0].conns.get(), 2);
    assert_eq!(c.conn_reused.get(), 1);
}

#[test]
fn conn_reuse_mode_0_keeps_the_old_entry() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 0, 1));
    let seq: Vec<usize> = (0..3)
        .map(|_| nat_connection(&mut p, &mut out, 40000))
        .collect();
    assert_eq!(seq, vec![0, 0, 0], "the SYN reuses the old entry");
    assert_eq!(c.services[0].conns.get(), 1);
    assert_eq!(c.conn_reused.get(), 0);
}

#[test]
fn dr_fin_wait_is_reused_only_with_mode_bit_2() {
    for (mode, want, conns) in [(1u8, Some(0), 1u64), (2, Some(1), 2), (3, Some(1), 2)] {
        let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Dr), mode, 1));
        // DR: the director sees the client only; FIN leaves FIN_WAIT with
        // no reply ever seen.
        assert_eq!(client_seg(&mut p, &mut out, 43000, SYN), Some(0));
        assert_eq!(client_seg(&mut p, &mut out, 43000, ACK), Some(0));
        assert_eq!(client_seg(&mut p, &mut out, 43000, FIN | ACK), Some(0));
        assert_eq!(state_of(&p, 43000), TcpState::FinWait);
        assert_eq!(
            client_seg(&mut p, &mut out, 43000, SYN),
            want,
            "conn_reuse_mode {mode}"
        );
        assert_eq!(c.services[0].conns.get(), conns, "conn_reuse_mode {mode}");
    }
}

/// IPVS counts the IP length of each packet (skb->len at the IP layer):
/// no Ethernet header, no Ethernet padding.
#[test]
fn byte_counters_count_the_ip_length() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    // SYN: 20 + 20 bytes of IP, in a 54-byte frame padded to 60.
    let mut syn = from_client(44000, SYN);
    assert_eq!(syn.len(), 54);
    syn.extend_from_slice(&[0; 6]);
    p.process(
        VecBuf::new(&syn),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1, "forwarded");
    real_seg(&mut p, &mut out, 0, 44000, SYN | ACK);
    // 100 bytes of data: 140 bytes of IP in a 154-byte frame.
    let data = seg((MAC_GW, MAC_P0), CLIENT, 44000, VIP, 80, ACK, &[7u8; 100]);
    assert_eq!(data.len(), 154);
    out.tx.clear();
    p.process(
        VecBuf::new(&data),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1, "forwarded");
    let s = c.services[0].read();
    assert_eq!((s.inpkts, s.inbytes), (2, 40 + 140));
    assert_eq!((s.outpkts, s.outbytes), (1, 40));
    let r = c.reals[0].read();
    assert_eq!((r.inbytes, r.outbytes), (180, 40));

    // IPv6: 40 + 20 bytes for a SYN.
    let s6 = Service {
        id: 1,
        vip: v6("2001:db8::100"),
        sched: ServiceSched::new(
            SchedConfig::new(SchedKind::Rr),
            vec![RealServer::new(10, v6("2001:db8:1::11"), 80, 1)],
            None,
            1,
        )
        .expect("sched"),
        fwd: vec![FwdMode::Nat].into_boxed_slice(),
        ..svc(SchedKind::Rr, [1, 1], FwdMode::Nat)
    };
    let snap6 = Arc::new(
        SnapshotBuilder::new(2, ports(), routes())
            .service(svc(SchedKind::Rr, [1, 1], FwdMode::Nat))
            .service(s6)
            .build()
            .expect("snapshot"),
    );
    p.install(snap6);
    let syn6 = seg(
        (MAC_GW, MAC_P0),
        "2001:db8::10",
        45000,
        "2001:db8::100",
        80,
        SYN,
        b"",
    );
    out.tx.clear();
    p.process(
        VecBuf::new(&syn6),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1, "forwarded");
    assert_eq!(c.services[1].read().inbytes, 60);
    assert_eq!(c.reals[10].read().inbytes, 60);
}

/// A full table still counts every new connection (IPVS's table has no
/// limit): the SYNs forwarded statelessly are in Conns and the traffic.
#[test]
fn stateless_fallback_connections_are_counted() {
    let counters = Arc::new(WorkerCounters::new(4, 16, 2, 1));
    let s = Service {
        stateless: Some(
            ServiceSched::new(
                SchedConfig::new(SchedKind::Mh),
                RS.iter()
                    .enumerate()
                    .map(|(i, a)| RealServer::new(i as u32, v4(a), 80, 1))
                    .collect(),
                None,
                1,
            )
            .expect("mh"),
        ),
        ..svc(SchedKind::Rr, [1, 1], FwdMode::Nat)
    };
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 64, 64),
        snap(s, 1, 1),
        HashKey::from_seed(3),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    for (i, mac) in [MAC_RS1, MAC_RS2].into_iter().enumerate() {
        p.learn(v4(RS[i]), SERVER_PORT, MacAddr(mac), 0, &mut out);
    }
    let n = 200u16;
    for i in 0..n {
        assert!(
            client_seg(&mut p, &mut out, 20000 + i, SYN).is_some(),
            "SYN {i} forwarded"
        );
    }
    let fallbacks = counters.stateless_fallbacks.get();
    assert!(fallbacks > 0, "the table filled");
    assert_eq!(u64::from(p.conns_v4().len()) + fallbacks, u64::from(n));
    let t = counters.services[0].read();
    assert_eq!((t.conns, t.inpkts, t.inbytes), (200, 200, 200 * 40));
    let r = counters.reals[0].read().conns + counters.reals[1].read().conns;
    assert_eq!(r, 200);
}

/// Every new connection of a persistent service reports its template, so
/// the relay can give it to the other workers.
#[test]
fn persistent_connections_report_their_template() {
    use dataplane::sched::Persistence;
    let mut sc = SchedConfig::new(SchedKind::Rr);
    sc.persistence = Some(Persistence::new(300));
    let s = Service {
        sched: ServiceSched::new(
            sc,
            RS.iter()
                .enumerate()
                .map(|(i, a)| RealServer::new(i as u32, v4(a), 80, 1))
                .collect(),
            None,
            1,
        )
        .expect("sched"),
        ..svc(SchedKind::Rr, [1, 1], FwdMode::Nat)
    };
    let (mut p, _, mut out) = director(snap(s, 1, 1));
    out.events.clear();
    for cport in [46000, 46001] {
        assert_eq!(client_seg(&mut p, &mut out, cport, SYN), Some(0));
    }
    let templates: Vec<Event> = out
        .events
        .iter()
        .filter(|e| matches!(e, Event::Template { .. }))
        .copied()
        .collect();
    let t = Event::Template {
        svc: 0,
        client: v4(CLIENT),
        rs: 0,
    };
    assert_eq!(templates, vec![t, t]);
    // and none for a service without persistence
    let (mut p, _, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    out.events.clear();
    assert_eq!(client_seg(&mut p, &mut out, 46000, SYN), Some(0));
    assert!(out.events.is_empty(), "{:?}", out.events);
}

/// A refused rewrite is counted under its own reason, not as
/// `rewrite_failed`: TUN with no headroom for the outer header.
#[test]
fn rewrite_refusals_have_their_own_counter() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Tun), 1, 1));
    out.tx.clear();
    let syn = from_client(47000, SYN);
    p.process(
        VecBuf::from_slice(&syn, 0, 0),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty(), "not sent");
    let d = c.drops();
    assert!(d.contains(&("fwd_no_headroom", 1)), "{d:?}");
    assert!(d.contains(&("rewrite_failed", 0)), "{d:?}");
    let total: u64 = d.iter().map(|x| x.1).sum();
    assert_eq!(total, 1, "counted once: {d:?}");
    // with headroom the same SYN is encapsulated (IPv4 in IPv4)
    let syn = from_client(47001, SYN);
    p.process(
        VecBuf::new(&syn),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    let f = &out.tx[0].1;
    assert_eq!((f[12], f[13], f[23]), (0x08, 0x00, 4), "IPIP");
    assert_eq!(&f[34..], &syn[14..], "the client's packet inside");
}

/// Only a segment that may open a connection expires an old one: a
/// SYN+ACK or SYN+RST from the client on a TIME_WAIT tuple changes
/// nothing.
#[test]
fn only_a_plain_syn_expires_an_old_entry() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    assert_eq!(nat_connection(&mut p, &mut out, 48000), 0);
    for flags in [SYN | ACK, SYN | RST] {
        client_seg(&mut p, &mut out, 48000, flags);
        assert_eq!(c.conn_reused.get(), 0, "flags {flags:#x}");
        assert_eq!(c.services[0].conns.get(), 1);
    }
}

/// Two NAT services on the same real-server port: a client port reused
/// for the second service meets the first connection's reply tuple
/// (RIP:80 → client:port). A finished connection gives it up; a live one
/// keeps it and the new SYN is refused (counted).
#[test]
fn reply_tuple_of_a_finished_connection_is_taken_over() {
    let only_rs1 = |id: u16, vport: u16, rid: u32| Service {
        id,
        vport,
        sched: ServiceSched::new(
            SchedConfig::new(SchedKind::Rr),
            vec![RealServer::new(rid, v4(RS[0]), 80, 1)],
            None,
            1,
        )
        .expect("sched"),
        fwd: vec![FwdMode::Nat].into_boxed_slice(),
        ..svc(SchedKind::Rr, [1, 1], FwdMode::Nat)
    };
    let s = Arc::new(
        SnapshotBuilder::new(1, ports(), routes())
            .service(only_rs1(0, 80, 0))
            .service(only_rs1(1, 81, 5))
            .build()
            .expect("snapshot"),
    );
    let (mut p, c, mut out) = director(s);
    let to81 = |flags| seg((MAC_GW, MAC_P0), CLIENT, 49000, VIP, 81, flags, b"");
    // a finished connection to :80 from port 49000
    assert_eq!(nat_connection(&mut p, &mut out, 49000), 0);
    out.tx.clear();
    p.process(
        VecBuf::new(&to81(SYN)),
        CLIENT_PORT,
        6_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1, "the SYN to :81 is forwarded");
    assert_eq!(check_out(&out.tx[0].1).2, v4(RS[0]));
    // the reply is the :81 connection's
    real_seg(&mut p, &mut out, 0, 49000, SYN | ACK);
    let (src, sport, _, _, _) = check_out(&out.tx[0].1);
    assert_eq!((src, sport), (v4(VIP), 81));
    assert_eq!(
        (c.services[0].conns.get(), c.services[1].conns.get()),
        (1, 1)
    );
    assert_eq!(c.conn_reused.get(), 1);

    // now that one is live: a SYN from the same port to :80 is refused
    let (mut p, c, mut out) = director(p.snapshot().clone());
    assert!(client_seg(&mut p, &mut out, 49000, SYN).is_some());
    real_seg(&mut p, &mut out, 0, 49000, SYN | ACK);
    out.tx.clear();
    p.process(
        VecBuf::new(&to81(SYN)),
        CLIENT_PORT,
        6_000_000_000,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty(), "refused");
    assert!(c.drops().contains(&("no_local_port", 1)));
    // and the live connection goes on
    assert_eq!(client_seg(&mut p, &mut out, 49000, ACK), Some(0));
}

/// A SYN that would expire a finished connection passes the checks a new
/// connection passes first: with a bad TCP checksum it is dropped and
/// counted, and the old entry stays (a forged SYN changes nothing).
#[test]
fn a_bad_checksum_syn_does_not_expire_an_old_entry() {
    let (mut p, c, mut out) = director(snap(svc(SchedKind::Rr, [1, 1], FwdMode::Nat), 1, 1));
    nat_connection(&mut p, &mut out, 42000);
    assert_eq!(state_of(&p, 42000), TcpState::TimeWait);
    let mut syn = from_client(42000, SYN);
    let n = syn.len();
    // TCP checksum: Ethernet 14 + IPv4 20 + offset 16 in the TCP header
    syn[14 + 20 + 16] ^= 0x5a;
    assert_eq!(n, 14 + 20 + 20);
    out.tx.clear();
    p.process(
        VecBuf::new(&syn),
        CLIENT_PORT,
        5_000_000_000,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty(), "not forwarded");
    assert_eq!(state_of(&p, 42000), TcpState::TimeWait, "old entry kept");
    assert_eq!(c.conn_reused.get(), 0);
    let bad: u64 = c
        .drops()
        .into_iter()
        .filter(|d| d.0 == "bad_tcp_checksum")
        .map(|d| d.1)
        .sum();
    assert_eq!(bad, 1);
    // the same SYN with a right checksum reuses the tuple
    assert!(client_seg(&mut p, &mut out, 42000, SYN).is_some());
    assert_eq!(c.conn_reused.get(), 1);
}

/// Each real server's tunnel type (`SnapshotBuilder::tunnel`) is what its
/// packets leave with, for a new connection and for its later packets
/// (found in the connection table): GUE to one, GRE to the other.
#[test]
fn each_real_server_gets_its_own_tunnel_type() {
    use dataplane::forward::TunEncap;
    use dataplane::sched::RealId;
    let s = Arc::new(
        SnapshotBuilder::new(1, ports(), routes())
            .role(Role::Master)
            .service(svc(SchedKind::Rr, [1, 1], FwdMode::Tun))
            .tunnel(
                RealId(0),
                TunEncap::Gue {
                    port: 6080,
                    csum: true,
                },
            )
            .tunnel(RealId(1), TunEncap::Gre { csum: false })
            .build()
            .expect("snapshot"),
    );
    assert_eq!(s.tunnel(7), TunEncap::Ipip, "an id not set is ipip");
    let (mut p, _, mut out) = director(s);
    let mut sport = None;
    for (cport, flags) in [(47100, SYN), (47101, SYN), (47100, ACK), (47101, ACK)] {
        out.tx.clear();
        let pkt = from_client(cport, flags);
        p.process(
            VecBuf::new(&pkt),
            CLIENT_PORT,
            1_000_000_000,
            false,
            &mut out,
        );
        assert_eq!(out.tx.len(), 1, "{cport} {flags:#x}");
        let f = &out.tx[0].1;
        match f[23] {
            17 => {
                // UDP to 6080, GUE version 0 carrying IPv4, then the packet
                assert_eq!(&f[36..38], &6080u16.to_be_bytes());
                assert_ne!(&f[40..42], &[0, 0], "UDP checksum filled");
                assert_eq!(&f[42..46], &[0, 4, 0, 0]);
                assert_eq!(&f[46..], &pkt[14..]);
                // one flow, one source port
                let sp = u16::from_be_bytes([f[34], f[35]]);
                assert_eq!(*sport.get_or_insert(sp), sp);
                assert_eq!(cport, 47100, "rr: the first server is GUE");
            }
            47 => {
                assert_eq!(&f[34..38], &[0, 0, 0x08, 0x00], "GRE, no checksum");
                assert_eq!(&f[38..], &pkt[14..]);
                assert_eq!(cport, 47101, "rr: the second server is GRE");
            }
            x => panic!("outer protocol {x}"),
        }
    }
}
