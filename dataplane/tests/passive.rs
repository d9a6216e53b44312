//! Passive health checking (DPVS's `dest-check`) on the worker's packet
//! path with byte buffers: which handshakes a worker reports to control
//! as `Event::PassiveFail`, how often, and what it counts.

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, PassiveWhy, Pipeline, PipelineConfig};
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::sync::Arc;

impl Collect {
    fn passive(&self) -> Vec<(u16, u32, PassiveWhy)> {
        self.events
            .iter()
            .filter_map(|e| match *e {
                Event::PassiveFail { svc, rs, why } => Some((svc, rs, why)),
                _ => None,
            })
            .collect()
    }
}

const S: u64 = 1_000_000_000;

const VIP: &str = "198.18.0.100";
const CLIENT: &str = "198.18.0.10";
const RS: &str = "198.19.0.11";

/// A service on VIP:80 with one real server (id 7).
fn svc(fwd: FwdMode, passive: bool) -> Service {
    let reals = vec![RealServer::new(7, v4(RS), 80, 1)];
    Service {
        id: 3,
        proto: 6,
        vip: v4(VIP),
        vport: 80,
        sched: ServiceSched::new(SchedConfig::new(SchedKind::Rr), reals, None, 1).expect("sched"),
        fwd: vec![fwd].into_boxed_slice(),
        sorry_fwd: fwd,
        laddrs: Vec::new().into_boxed_slice(),
        stateless: None,
        passive_check: passive,
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
    }
}

fn snap(s: Service) -> Arc<Snapshot> {
    Arc::new(
        SnapshotBuilder::new(1, ports(), routes())
            .role(Role::Master)
            .service(s)
            .build()
            .expect("snapshot"),
    )
}

fn director(fwd: FwdMode, passive: bool) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let counters = Arc::new(WorkerCounters::new(8, 16, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        snap(svc(fwd, passive)),
        HashKey::from_seed(3),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    p.learn(v4(RS), SERVER_PORT, MacAddr(MAC_RS1), 0, &mut out);
    p.learn(v4(CLIENT), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    out.events.clear();
    (p, counters, out)
}

fn client(p: &mut Pipeline<VecBuf>, out: &mut Collect, cport: u16, flags: u8, t: u64) {
    out.tx.clear();
    let f = seg((MAC_GW, MAC_P0), CLIENT, cport, VIP, 80, flags, b"");
    p.process(VecBuf::new(&f), CLIENT_PORT, t, false, out);
    assert_eq!(out.tx.len(), 1, "client segment forwarded");
    assert_eq!(out.tx[0].0, SERVER_PORT);
}

fn real(p: &mut Pipeline<VecBuf>, out: &mut Collect, cport: u16, flags: u8, t: u64) {
    out.tx.clear();
    let f = seg((MAC_RS1, MAC_P1), RS, 80, CLIENT, cport, flags, b"");
    p.process(VecBuf::new(&f), SERVER_PORT, t, false, out);
    assert_eq!(out.tx.len(), 1, "reply forwarded to the client");
    assert_eq!(out.tx[0].0, CLIENT_PORT);
}

#[test]
fn rst_answering_a_syn_emits_exactly_one_event() {
    let (mut p, c, mut out) = director(FwdMode::Nat, true);
    client(&mut p, &mut out, 40000, SYN, 5 * S);
    real(&mut p, &mut out, 40000, RST | ACK, 5 * S);
    assert_eq!(out.passive(), vec![(3, 7, PassiveWhy::RstToSyn)]);
    assert_eq!(c.passive_reported.get(), 1);
    assert_eq!(c.passive_suppressed.get(), 0);
    // the RST is still forwarded to the client unchanged in meaning, and
    // the closed connection expiring later reports nothing more
    p.housekeeping(500 * S, 1024, &mut out);
    assert_eq!(out.passive().len(), 1);
}

#[test]
fn rst_on_an_established_connection_is_no_failure() {
    let (mut p, c, mut out) = director(FwdMode::Nat, true);
    client(&mut p, &mut out, 40001, SYN, 5 * S);
    real(&mut p, &mut out, 40001, SYN | ACK, 5 * S);
    client(&mut p, &mut out, 40001, ACK, 5 * S);
    real(&mut p, &mut out, 40001, RST | ACK, 6 * S);
    p.housekeeping(500 * S, 1024, &mut out);
    assert!(out.passive().is_empty());
    assert_eq!(c.passive_reported.get(), 0);
}

#[test]
fn syn_timeout_emits_one_event_on_expiry() {
    // DR: the director sees no replies; a client retransmits its SYN and
    // gives up.
    let (mut p, c, mut out) = director(FwdMode::Dr, true);
    client(&mut p, &mut out, 40002, SYN, 5 * S);
    client(&mut p, &mut out, 40002, SYN, 6 * S);
    p.housekeeping(7 * S, 1024, &mut out);
    assert!(out.passive().is_empty(), "not before it expires");
    p.housekeeping(500 * S, 1024, &mut out);
    assert_eq!(out.passive(), vec![(3, 7, PassiveWhy::SynTimeout)]);
    assert_eq!(c.passive_reported.get(), 1);
    assert_eq!(p.conns_v4().len(), 0);
}

#[test]
fn established_dr_connection_expiring_is_no_failure() {
    let (mut p, _c, mut out) = director(FwdMode::Dr, true);
    client(&mut p, &mut out, 40003, SYN, 5 * S);
    client(&mut p, &mut out, 40003, ACK, 5 * S);
    p.housekeeping(100_000 * S, 1024, &mut out);
    assert_eq!(p.conns_v4().len(), 0);
    assert!(out.passive().is_empty());
}

#[test]
fn nat_handshake_left_by_the_client_is_no_failure() {
    // The server answered (SYN-ACK seen), the client never completed: not
    // the server's fault, so no SYN-timeout report.
    let (mut p, c, mut out) = director(FwdMode::Nat, true);
    client(&mut p, &mut out, 40004, SYN, 5 * S);
    real(&mut p, &mut out, 40004, SYN | ACK, 5 * S);
    p.housekeeping(500 * S, 1024, &mut out);
    assert_eq!(p.conns_v4().len(), 0);
    assert!(out.passive().is_empty());
    assert_eq!(c.passive_reported.get() + c.passive_suppressed.get(), 0);
}

#[test]
fn flag_off_emits_none() {
    let (mut p, c, mut out) = director(FwdMode::Nat, false);
    client(&mut p, &mut out, 40005, SYN, 5 * S);
    real(&mut p, &mut out, 40005, RST | ACK, 5 * S);
    let (mut q, d, mut out2) = director(FwdMode::Dr, false);
    client(&mut q, &mut out2, 40006, SYN, 5 * S);
    p.housekeeping(500 * S, 1024, &mut out);
    q.housekeeping(500 * S, 1024, &mut out2);
    assert_eq!(q.conns_v4().len(), 0, "the SYN_RECV entry did expire");
    assert!(out.passive().is_empty());
    assert!(out2.passive().is_empty());
    for k in [c, d] {
        assert_eq!(k.passive_reported.get(), 0);
        assert_eq!(k.passive_suppressed.get(), 0);
    }
}

#[test]
fn rate_limit_counts_suppressed_reports() {
    let (mut p, c, mut out) = director(FwdMode::Nat, true);
    // a flood of refused connections within one second: one report
    for cport in 41000..41010 {
        client(
            &mut p,
            &mut out,
            cport,
            SYN,
            5 * S + u64::from(cport) * 1000,
        );
        real(
            &mut p,
            &mut out,
            cport,
            RST | ACK,
            5 * S + u64::from(cport) * 1000,
        );
    }
    assert_eq!(out.passive().len(), 1);
    assert_eq!(c.passive_reported.get(), 1);
    assert_eq!(c.passive_suppressed.get(), 9);
    // the next second, one more
    client(&mut p, &mut out, 42000, SYN, 6 * S);
    real(&mut p, &mut out, 42000, RST | ACK, 6 * S);
    assert_eq!(out.passive().len(), 2);
    assert_eq!(c.passive_reported.get(), 2);
    assert_eq!(c.passive_suppressed.get(), 9);
    // timeouts share the limit: DR entries all expiring in one round
    let (mut q, d, mut out2) = director(FwdMode::Dr, true);
    for cport in 43000..43005 {
        client(&mut q, &mut out2, cport, SYN, 5 * S);
    }
    q.housekeeping(500 * S, 1024, &mut out2);
    assert_eq!(out2.passive(), vec![(3, 7, PassiveWhy::SynTimeout)]);
    assert_eq!(d.passive_reported.get(), 1);
    assert_eq!(d.passive_suppressed.get(), 4);
}
