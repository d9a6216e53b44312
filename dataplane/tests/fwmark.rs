//! Firewall-mark services on the packet path (`ipvsadm -A -f MARK`): the
//! classifier's mark picks the service before (protocol, VIP, port) does,
//! one service covers every port of its mark, persistence sticks a client
//! to one real server across those ports, traffic the classifier does not
//! mark falls back to the address services, and IPv4 and IPv6 marks are
//! separate services as in IPVS.

mod common;

use common::*;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::fwmark::{Classifier, MarkRule};
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::sched::{Persistence, RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service, Snapshot, SnapshotBuilder, SnapshotError};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::net::IpAddr;
use std::sync::Arc;

const S: u64 = 1_000_000_000;
const VIP: &str = "198.18.0.100";
const VIP6: &str = "2001:db8::100";
const CLIENT: &str = "198.18.0.10";
const CLIENT6: &str = "2001:db8::10";
const RS1: &str = "198.19.0.11";
const RS2: &str = "198.19.0.12";
const RS1_6: &str = "2001:db8:1::11";
const RS2_6: &str = "2001:db8:1::12";

fn rule(mark: u32, net: &str, prefix: u8, ports: (u16, u16)) -> MarkRule {
    MarkRule {
        mark,
        net: net.parse().expect("net"),
        prefix,
        proto: Some(6),
        ports,
    }
}

/// Mark 1: TCP to VIP ports 80-81 and 443; mark 2: TCP to VIP6 ports 80
/// and 443; mark 3: VIP port 9000 (no service has it).
fn classifier() -> Classifier {
    Classifier::new(&[
        rule(1, VIP, 32, (80, 81)),
        rule(1, VIP, 32, (443, 443)),
        rule(2, VIP6, 128, (80, 80)),
        rule(2, VIP6, 128, (443, 443)),
        rule(3, VIP, 32, (9000, 9000)),
    ])
    .expect("rules")
}

/// A service with two real servers (ids id*100, id*100+1), rr, optionally
/// persistent.
fn svc(
    id: u16,
    vip: IpAddr,
    vport: u16,
    reals: [(&str, u16); 2],
    fwd: FwdMode,
    p: bool,
) -> Service {
    let rs: Vec<RealServer> = reals
        .iter()
        .enumerate()
        .map(|(i, (a, port))| {
            RealServer::new(
                u32::from(id) * 100 + i as u32,
                a.parse().expect("a"),
                *port,
                1,
            )
        })
        .collect();
    let mut c = SchedConfig::new(SchedKind::Rr);
    if p {
        c.persistence = Some(Persistence::new(300));
    }
    Service {
        id,
        proto: 6,
        vip,
        vport,
        sched: ServiceSched::new(c, rs, None, 1).expect("sched"),
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

/// FWM 1 (id 1, IPv4), FWM 2 IPv6 (id 2), and the address services
/// TCP VIP:8080 (id 5) and TCP VIP:80 (id 6, shadowed by FWM 1).
fn snap(fwd: FwdMode, persistent: bool) -> Arc<Snapshot> {
    let any4 = v4("0.0.0.0");
    let any6 = v6("::");
    Arc::new(
        SnapshotBuilder::new(1, ports(), routes())
            .role(Role::Master)
            .classifier(classifier())
            .fwmark_service(1, svc(1, any4, 0, [(RS1, 0), (RS2, 0)], fwd, persistent))
            .fwmark_service(
                2,
                svc(2, any6, 0, [(RS1_6, 0), (RS2_6, 0)], fwd, persistent),
            )
            .service(svc(
                5,
                v4(VIP),
                8080,
                [(RS1, 8080), (RS2, 8080)],
                fwd,
                false,
            ))
            .service(svc(6, v4(VIP), 80, [(RS1, 80), (RS2, 80)], fwd, false))
            .build()
            .expect("snapshot"),
    )
}

fn director(
    snap: Arc<Snapshot>,
    worker: u16,
    workers: u16,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let counters = Arc::new(WorkerCounters::new(8, 1024, 2, usize::from(workers)));
    let mut p = Pipeline::new(
        &PipelineConfig::new(worker, workers, 1024, 1024),
        snap,
        HashKey::from_seed(3),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    for (a, m) in [
        (RS1, MAC_RS1),
        (RS2, MAC_RS2),
        (RS1_6, MAC_RS1),
        (RS2_6, MAC_RS2),
    ] {
        p.learn(a.parse().expect("a"), SERVER_PORT, MacAddr(m), 0, &mut out);
    }
    for a in [CLIENT, CLIENT6] {
        p.learn(
            a.parse().expect("a"),
            CLIENT_PORT,
            MacAddr(MAC_GW),
            0,
            &mut out,
        );
    }
    (p, counters)
}

/// Sends a client SYN; returns where it went (RIP, port).
fn syn(p: &mut Pipeline<VecBuf>, client: &str, cport: u16, vip: &str, vport: u16) -> (IpAddr, u16) {
    let mut out = Collect::default();
    let f = seg((MAC_GW, MAC_P0), client, cport, vip, vport, SYN, b"");
    p.process(VecBuf::new(&f), CLIENT_PORT, 5 * S, false, &mut out);
    assert_eq!(out.tx.len(), 1, "SYN to {vip}:{vport} forwarded");
    assert_eq!(out.tx[0].0, SERVER_PORT);
    let (dst, dport) = dest(&out.tx[0].1);
    (dst, dport)
}

/// Destination address and port of an output frame (IPv4 or IPv6, TCP).
fn dest(frame: &[u8]) -> (IpAddr, u16) {
    let (_, _, dst, dport, _) = check_out(frame);
    (dst, dport)
}

fn conns(c: &WorkerCounters, id: usize) -> u64 {
    c.services.get(id).map_or(0, |s| s.read().conns)
}

#[test]
fn two_ports_of_one_mark_are_one_service_and_nat_port_0_keeps_the_port() {
    let (mut p, c) = director(snap(FwdMode::Nat, false), 0, 1);
    let a = syn(&mut p, CLIENT, 40000, VIP, 80);
    let b = syn(&mut p, CLIENT, 40001, VIP, 443);
    let d = syn(&mut p, CLIENT, 40002, VIP, 81);
    // one service (rr over its two servers), each connection keeps the
    // port it was sent to: NAT real servers with port 0
    assert_eq!(a, (v4(RS1), 80));
    assert_eq!(b, (v4(RS2), 443));
    assert_eq!(d, (v4(RS1), 81));
    assert_eq!(conns(&c, 1), 3);
    // FWM 1 shadows the address service TCP VIP:80 (IPVS looks marked
    // packets up among the fwmark services first)
    assert_eq!(conns(&c, 6), 0);
}

#[test]
fn dr_real_servers_keep_the_destination_port() {
    let (mut p, c) = director(snap(FwdMode::Dr, false), 0, 1);
    assert_eq!(syn(&mut p, CLIENT, 40000, VIP, 443), (v4(VIP), 443));
    assert_eq!(syn(&mut p, CLIENT, 40001, VIP, 80), (v4(VIP), 80));
    assert_eq!(conns(&c, 1), 2);
}

#[test]
fn persistence_is_per_mark_across_its_ports() {
    let (mut p, c) = director(snap(FwdMode::Nat, true), 0, 1);
    let first = syn(&mut p, CLIENT, 40000, VIP, 80).0;
    // rr without persistence would alternate; the template keyed by the
    // mark's service keeps the client on one server on every port
    for (cport, vport) in [(40001, 443), (40002, 81), (40003, 80), (40004, 443)] {
        assert_eq!(
            syn(&mut p, CLIENT, cport, VIP, vport).0,
            first,
            "port {vport}"
        );
    }
    assert_eq!(conns(&c, 1), 5);
    // another client starts its own template: rr moves on
    let other = syn(&mut p, "198.18.0.11", 40000, VIP, 443).0;
    assert_ne!(other, first);
}

#[test]
fn unmarked_traffic_falls_back_to_address_services() {
    let (mut p, c) = director(snap(FwdMode::Nat, false), 0, 1);
    // VIP:8080 is not marked: its address service takes it
    assert_eq!(syn(&mut p, CLIENT, 40000, VIP, 8080), (v4(RS1), 8080));
    assert_eq!(conns(&c, 5), 1);
    assert_eq!(conns(&c, 1), 0);
    // mark 3 has no service: the packet is looked up by address, finds
    // none, and is counted as not ours
    let mut out = Collect::default();
    let f = seg((MAC_GW, MAC_P0), CLIENT, 40001, VIP, 9000, SYN, b"");
    p.process(VecBuf::new(&f), CLIENT_PORT, 5 * S, false, &mut out);
    assert!(out.tx.is_empty());
    // UDP to a TCP-only mark's port is not marked either
    let s = p.snapshot();
    assert!(s.service_for(17, v4(VIP), 80).is_none());
    assert_eq!(s.service_for(6, v4(VIP), 80).map(|s| s.id), Some(1));
    assert_eq!(s.addr_service_for(6, v4(VIP), 80).map(|s| s.id), Some(6));
}

#[test]
fn ipv6_marks_are_their_own_services() {
    let (mut p, c) = director(snap(FwdMode::Nat, true), 0, 1);
    let first = syn(&mut p, CLIENT6, 40000, VIP6, 80);
    assert_eq!(first.1, 80);
    assert_eq!(syn(&mut p, CLIENT6, 40001, VIP6, 443), (first.0, 443));
    assert!(first.0.is_ipv6());
    assert_eq!(conns(&c, 2), 2);
    assert_eq!(conns(&c, 1), 0);
    let s = p.snapshot();
    assert_eq!(s.fwmark_service(2, true).map(|s| s.id), Some(2));
    assert!(s.fwmark_service(2, false).is_none());
}

#[test]
fn host_rules_are_announced_and_duplicates_refused() {
    let s = snap(FwdMode::Nat, false);
    assert!(s.is_vip(v4(VIP)));
    assert!(s.is_vip(v6(VIP6)));
    let dup = SnapshotBuilder::new(1, ports(), routes())
        .classifier(classifier())
        .fwmark_service(
            1,
            svc(
                1,
                v4("0.0.0.0"),
                0,
                [(RS1, 0), (RS2, 0)],
                FwdMode::Nat,
                false,
            ),
        )
        .fwmark_service(
            1,
            svc(
                2,
                v4("0.0.0.0"),
                0,
                [(RS1, 0), (RS2, 0)],
                FwdMode::Nat,
                false,
            ),
        )
        .build()
        .unwrap_err();
    assert_eq!(dup, SnapshotError::DuplicateFwmark(1, false));
    assert_eq!(dup.to_string(), "duplicate fwmark service FWM 1");
}

/// Two workers: the sink keeps handoffs so the test delivers them.
#[derive(Default)]
struct Handoffs {
    tx: Vec<(u16, Vec<u8>)>,
    handed: Vec<(u16, Vec<u8>)>,
}

impl Sink<VecBuf> for Handoffs {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        self.tx.push((port, pkt.data().to_vec()));
    }
    fn handoff(&mut self, worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        self.handed.push((worker, pkt.data().to_vec()));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, _ev: Event) {}
}

/// Delivers `frame` to worker `w` of `ps`, following handoffs; returns
/// the worker that transmitted and what.
fn deliver(ps: &mut [Pipeline<VecBuf>], w: usize, frame: &[u8], port: u16) -> (usize, Vec<u8>) {
    let mut out = Handoffs::default();
    ps[w].process(VecBuf::new(frame), port, 5 * S, false, &mut out);
    if let Some((to, f)) = out.handed.pop() {
        let to = usize::from(to);
        let mut out2 = Handoffs::default();
        let mut b = VecBuf::new(&f);
        b.set_rx_port(port);
        ps[to].process(b, port, 5 * S, true, &mut out2);
        assert_eq!(out2.tx.len(), 1, "owner forwards it");
        return (to, out2.tx.remove(0).1);
    }
    assert_eq!(out.tx.len(), 1, "forwarded");
    (w, out.tx.remove(0).1)
}

#[test]
fn with_two_workers_nat_replies_of_a_fwmark_service_meet_their_connection() {
    let s = snap(FwdMode::Nat, false);
    let (p0, _) = director(s.clone(), 0, 2);
    let (p1, _) = director(s, 1, 2);
    let mut ps = [p0, p1];
    for (cport, vport) in [(40000u16, 80u16), (40001, 443), (40002, 81), (40003, 443)] {
        // the SYN arrives on either worker; its owner (by the client
        // endpoint) creates the connection
        let syn = seg((MAC_GW, MAC_P0), CLIENT, cport, VIP, vport, SYN, b"");
        let (owner, out) = deliver(&mut ps, usize::from(cport % 2), &syn, CLIENT_PORT);
        let (rip, rport) = dest(&out);
        assert_eq!(rport, vport);
        // the real server's reply arrives on the other worker and is
        // handed to the owner, which reverses the NAT
        let rs = rip.to_string();
        let reply = seg((MAC_RS1, MAC_P1), &rs, rport, CLIENT, cport, SYN | ACK, b"");
        let (w, back) = deliver(&mut ps, 1 - owner, &reply, SERVER_PORT);
        assert_eq!(w, owner);
        let (src, sport, dst, dport, _) = check_out(&back);
        assert_eq!(
            (src, sport, dst, dport),
            (v4(VIP), vport, v4(CLIENT), cport)
        );
    }
}
