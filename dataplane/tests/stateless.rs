//! Full-table fallback and stateless continuation (issue 13): flows the
//! connection table has no entry for, on the worker's packet path with
//! byte buffers. Outputs are compared byte for byte with what a director
//! with room sends for the same packets.

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Pipeline, PipelineConfig};
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service, Snapshot, SnapshotBuilder};
use dataplane::stats::{PathDrop, WorkerCounters};
use dataplane::wire::ethernet::MacAddr;
use etherparse::PacketBuilder;
use std::net::IpAddr;
use std::sync::Arc;

/// Addresses of one family: VIP, client, real servers.
struct Fam {
    vip: &'static str,
    client: &'static str,
    rs: [&'static str; 3],
}

const F4: Fam = Fam {
    vip: "198.18.0.100",
    client: "198.18.0.10",
    rs: ["198.19.0.11", "198.19.0.12", "198.19.0.13"],
};
const F6: Fam = Fam {
    vip: "2001:db8::100",
    client: "2001:db8::10",
    rs: ["2001:db8:1::11", "2001:db8:1::12", "2001:db8:1::13"],
};
const RS_MACS: [[u8; 6]; 3] = [MAC_RS1, MAC_RS2, [0x02, 0, 0, 0, 0, 0x13]];

fn reals(f: &Fam, order: [usize; 3]) -> Vec<RealServer> {
    order
        .iter()
        .map(|&i| RealServer::new(i as u32, v4_or_6(f.rs[i]), 80, 1))
        .collect()
}

fn v4_or_6(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

/// A service on VIP:80 over three real servers (listed in `order`).
fn svc(f: &Fam, kind: SchedKind, fwd: FwdMode, order: [usize; 3]) -> Service {
    let mh =
        ServiceSched::new(SchedConfig::new(SchedKind::Mh), reals(f, order), None, 1).expect("mh");
    Service {
        id: 0,
        proto: 6,
        vip: v4_or_6(f.vip),
        vport: 80,
        sched: ServiceSched::new(SchedConfig::new(kind), reals(f, order), None, 1).expect("sched"),
        fwd: vec![fwd; 3].into_boxed_slice(),
        sorry_fwd: fwd,
        laddrs: vec![v4("198.19.0.250"), v6("2001:db8:1::250")].into_boxed_slice(),
        stateless: Some(mh),
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
        passive_check: false,
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

/// A director with `capacity` entries per family and hash key `seed`.
fn director(
    s: Arc<Snapshot>,
    capacity: u32,
    seed: u64,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let counters = Arc::new(WorkerCounters::new(4, 16, 3, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, capacity, capacity),
        s,
        HashKey::from_seed(seed),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    for f in [&F4, &F6] {
        for (i, mac) in RS_MACS.into_iter().enumerate() {
            p.learn(v4_or_6(f.rs[i]), SERVER_PORT, MacAddr(mac), 0, &mut out);
        }
        p.learn(v4_or_6(f.client), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    }
    (p, counters, out)
}

fn send(
    p: &mut Pipeline<VecBuf>,
    out: &mut Collect,
    frame: &[u8],
    port: u16,
) -> Vec<(u16, Vec<u8>)> {
    out.tx.clear();
    p.process(VecBuf::new(frame), port, 5_000_000_000, false, out);
    std::mem::take(&mut out.tx)
}

fn from_client(f: &Fam, cport: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    seg((MAC_GW, MAC_P0), f.client, cport, f.vip, 80, flags, payload)
}

fn from_real(f: &Fam, rs: usize, cport: u16, flags: u8) -> Vec<u8> {
    seg(
        (RS_MACS[rs], MAC_P1),
        f.rs[rs],
        80,
        f.client,
        cport,
        flags,
        b"",
    )
}

/// The real server a client packet went to (by its MAC: DR keeps the VIP).
fn real_of(tx: &[(u16, Vec<u8>)]) -> Option<usize> {
    let (port, frame) = tx.first()?;
    if *port != SERVER_PORT || tx.len() != 1 {
        return None;
    }
    let (_, _, _, _, mac) = check_out(frame);
    RS_MACS.iter().position(|m| *m == mac)
}

fn entries(p: &Pipeline<VecBuf>, v6: bool) -> (u32, u32) {
    if v6 {
        (p.conns_v6().len(), p.conns_v6().capacity())
    } else {
        (p.conns_v4().len(), p.conns_v4().capacity())
    }
}

/// Fills the table of `f`'s family with SYNs from other client ports.
fn fill(p: &mut Pipeline<VecBuf>, out: &mut Collect, f: &Fam) {
    let v6 = f.vip.contains(':');
    for cport in 10000..30000u16 {
        let (len, cap) = entries(p, v6);
        if len >= cap {
            return;
        }
        send(p, out, &from_client(f, cport, SYN, b""), CLIENT_PORT);
    }
    panic!("table never filled");
}

fn full_table_flow_completes(f: &Fam) {
    let v6 = f.vip.contains(':');
    let s = || snap(svc(f, SchedKind::Mh, FwdMode::Nat, [0, 1, 2]));
    let (mut full, counters, mut out) = director(s(), 64, 3);
    let (mut roomy, _, mut out2) = director(s(), 4096, 3);
    fill(&mut full, &mut out, f);
    let before = counters.stateless_fallbacks.get();
    let len = entries(&full, v6).0;
    let cport = 40000;
    let data = from_client(f, cport, ACK, b"GET / HTTP/1.0\r\n\r\n");
    let mut rs = None;
    for (frame, port) in [
        (from_client(f, cport, SYN, b""), CLIENT_PORT),
        (from_real(f, 0, cport, SYN | ACK), SERVER_PORT),
        (from_client(f, cport, ACK, b""), CLIENT_PORT),
        (data.clone(), CLIENT_PORT),
    ] {
        if port == SERVER_PORT {
            // the reply comes from the server the SYN went to
            let r = rs.expect("SYN forwarded");
            let frame = from_real(f, r, cport, SYN | ACK);
            let a = send(&mut full, &mut out, &frame, port);
            let b = send(&mut roomy, &mut out2, &frame, port);
            assert_eq!(a.len(), 1, "SYN-ACK reverse-NATed statelessly");
            assert_eq!(a[0].0, CLIENT_PORT);
            let (src, sport, dst, dport, _) = check_out(&a[0].1);
            assert_eq!(
                (src, sport, dst, dport),
                (v4_or_6(f.vip), 80, v4_or_6(f.client), cport)
            );
            assert_eq!(a, b, "byte-identical to a tracked connection");
            continue;
        }
        let a = send(&mut full, &mut out, &frame, port);
        let b = send(&mut roomy, &mut out2, &frame, port);
        let r = real_of(&a).expect("forwarded to a real server");
        assert_eq!(
            *rs.get_or_insert(r),
            r,
            "every packet to the same real server"
        );
        let (_, _, dst, dport, _) = check_out(&a[0].1);
        assert_eq!((dst, dport), (v4_or_6(f.rs[r]), 80));
        assert_eq!(a, b, "byte-identical to a tracked connection");
    }
    assert_eq!(entries(&full, v6).0, len, "no entry created");
    assert_eq!(
        counters.stateless_fallbacks.get() - before,
        3,
        "SYN, ACK, data counted"
    );
    assert_eq!(counters.path_drops[PathDrop::TcpNoConn.index()].get(), 0);
}

#[test]
fn full_table_forwards_every_packet_of_a_new_flow_v4() {
    full_table_flow_completes(&F4);
}

#[test]
fn full_table_forwards_every_packet_of_a_new_flow_v6() {
    full_table_flow_completes(&F6);
}

/// FullNAT needs a local port per connection: no stateless fallback, and
/// the drop has its own name.
#[test]
fn full_table_fullnat_is_dropped_and_counted() {
    let (mut p, counters, mut out) = director(
        snap(svc(&F4, SchedKind::Mh, FwdMode::FullNat, [0, 1, 2])),
        64,
        3,
    );
    fill(&mut p, &mut out, &F4);
    let tx = send(
        &mut p,
        &mut out,
        &from_client(&F4, 40000, SYN, b""),
        CLIENT_PORT,
    );
    let tx2 = send(
        &mut p,
        &mut out,
        &from_client(&F4, 40000, ACK, b""),
        CLIENT_PORT,
    );
    assert!(tx.is_empty() && tx2.is_empty());
    assert!(counters.path_drops[PathDrop::FullNatTableFull.index()].get() >= 2);
}

fn sloppy(f: &Fam, on: bool, order: [usize; 3]) -> Arc<Snapshot> {
    snap(Service {
        sloppy_tcp: on,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
        ..svc(f, SchedKind::Mh, FwdMode::Dr, order)
    })
}

fn state_of(p: &Pipeline<VecBuf>, cport: u16) -> Option<dataplane::conn::TcpState> {
    p.conns_v4()
        .iter()
        .find(|(_, c)| c.cport() == cport)
        .map(|(_, c)| c.tcp_state())
}

/// A mid-flow ACK with no entry on a sloppy DR/mh service goes to the
/// real server mh picks (the one its SYN would have gone to) and creates
/// an ESTABLISHED entry; the next packet uses that entry.
#[test]
fn sloppy_midflow_ack_is_scheduled_and_established() {
    let (mut a, counters, mut out) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 3);
    let (mut b, _, mut out2) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 3);
    for cport in 40000..40032u16 {
        let syn = real_of(&send(
            &mut b,
            &mut out2,
            &from_client(&F4, cport, SYN, b""),
            CLIENT_PORT,
        ));
        let data = from_client(&F4, cport, ACK, b"more data");
        let tx = send(&mut a, &mut out, &data, CLIENT_PORT);
        let r = real_of(&tx).expect("forwarded");
        assert_eq!(Some(r), syn, "the mh pick");
        // DR: only the Ethernet header changes
        let mut want = data.clone();
        want[..6].copy_from_slice(&RS_MACS[r]);
        want[6..12].copy_from_slice(&MAC_P1);
        assert_eq!(tx[0].1, want, "DR frame");
        assert_eq!(
            state_of(&a, cport),
            Some(dataplane::conn::TcpState::Established)
        );
        assert_eq!(
            real_of(&send(&mut a, &mut out, &data, CLIENT_PORT)),
            Some(r),
            "the entry keeps the flow"
        );
    }
    assert_eq!(counters.sloppy_conns.get(), 32);
    assert_eq!(counters.path_drops[PathDrop::TcpNoConn.index()].get(), 0);
}

/// FIN and RST create entries in FIN_WAIT and CLOSE.
#[test]
fn sloppy_fin_and_rst_imply_their_states() {
    let (mut a, _, mut out) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 3);
    let fin = send(
        &mut a,
        &mut out,
        &from_client(&F4, 41000, FIN | ACK, b""),
        CLIENT_PORT,
    );
    assert!(real_of(&fin).is_some());
    assert_eq!(
        state_of(&a, 41000),
        Some(dataplane::conn::TcpState::FinWait)
    );
    let rst = send(
        &mut a,
        &mut out,
        &from_client(&F4, 41001, RST, b""),
        CLIENT_PORT,
    );
    assert!(real_of(&rst).is_some());
    assert_eq!(state_of(&a, 41001), Some(dataplane::conn::TcpState::Close));
}

/// Without sloppy_tcp a mid-flow segment with no entry is dropped, as
/// IPVS does, while the table has room.
#[test]
fn non_sloppy_midflow_ack_is_dropped_tcp_no_conn() {
    let (mut a, counters, mut out) = director(sloppy(&F4, false, [0, 1, 2]), 4096, 3);
    let tx = send(
        &mut a,
        &mut out,
        &from_client(&F4, 40000, ACK, b"x"),
        CLIENT_PORT,
    );
    assert!(tx.is_empty());
    assert_eq!(counters.path_drops[PathDrop::TcpNoConn.index()].get(), 1);
    assert_eq!(counters.sloppy_conns.get(), 0);
    assert!(a.conns_v4().is_empty());
}

/// Two directors (different flow-table hash keys) send the same mid-flow
/// packet to the same real server, byte for byte: a flow ECMP moves
/// between them continues.
#[test]
fn two_directors_pick_the_same_real_server_midflow() {
    let (mut a, _, mut out) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 3);
    let (mut b, _, mut out2) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 0x5eed_1234);
    let mut seen = [false; 3];
    // mh hashes the client address (no mh-port): many clients
    for host in 20..84u8 {
        let client = format!("198.18.0.{host}");
        let data = seg(
            (MAC_GW, MAC_P0),
            &client,
            40000,
            F4.vip,
            80,
            ACK,
            b"payload",
        );
        let ta = send(&mut a, &mut out, &data, CLIENT_PORT);
        let tb = send(&mut b, &mut out2, &data, CLIENT_PORT);
        let r = real_of(&ta).expect("forwarded");
        seen[r] = true;
        assert_eq!(ta, tb, "identical on both directors");
    }
    assert_eq!(seen, [true; 3], "the flows spread over every real server");
}

/// The Maglev table does not depend on the order the real servers are
/// listed in: two orders, identical picks.
#[test]
fn maglev_picks_do_not_depend_on_real_server_order() {
    let (mut a, _, mut out) = director(sloppy(&F4, true, [0, 1, 2]), 4096, 3);
    let (mut b, _, mut out2) = director(sloppy(&F4, true, [2, 0, 1]), 4096, 3);
    // (skipping .100, the VIP)
    for host in (20..250u8).filter(|h| *h != 100) {
        let client = format!("198.18.0.{host}");
        let data = seg((MAC_GW, MAC_P0), &client, 40000, F4.vip, 80, ACK, b"");
        let ra = real_of(&send(&mut a, &mut out, &data, CLIENT_PORT));
        let rb = real_of(&send(&mut b, &mut out2, &data, CLIENT_PORT));
        assert!(ra.is_some());
        assert_eq!(ra, rb, "client {client}");
    }
}

fn udp4(cport: u16, payload: &[u8]) -> Vec<u8> {
    let s: std::net::Ipv4Addr = F4.client.parse().expect("client");
    let d: std::net::Ipv4Addr = F4.vip.parse().expect("vip");
    let mut out = Vec::new();
    PacketBuilder::ethernet2(MAC_GW, MAC_P0)
        .ipv4(s.octets(), d.octets(), 64)
        .udp(cport, 53)
        .write(&mut out, payload)
        .expect("build");
    out
}

/// UDP beyond capacity: every datagram of a flow with no entry goes to
/// the Maglev pick, byte-identical to a director with room.
#[test]
fn full_table_forwards_udp_statelessly() {
    let s = || {
        snap(Service {
            proto: 17,
            vport: 53,
            ..svc(&F4, SchedKind::Mh, FwdMode::Nat, [0, 1, 2])
        })
    };
    let (mut full, counters, mut out) = director(s(), 64, 3);
    let (mut roomy, _, mut out2) = director(s(), 4096, 3);
    for cport in 10000..30000u16 {
        if full.conns_v4().len() >= full.conns_v4().capacity() {
            break;
        }
        send(&mut full, &mut out, &udp4(cport, b"q"), CLIENT_PORT);
    }
    assert_eq!(full.conns_v4().len(), full.conns_v4().capacity());
    let before = counters.stateless_fallbacks.get();
    let mut rs = None;
    for payload in [&b"query one"[..], b"query two"] {
        let a = send(&mut full, &mut out, &udp4(40000, payload), CLIENT_PORT);
        let b = send(&mut roomy, &mut out2, &udp4(40000, payload), CLIENT_PORT);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, SERVER_PORT);
        let frame = &a[0].1;
        let r = RS_MACS
            .iter()
            .position(|m| frame.get(..6) == Some(&m[..]))
            .expect("to a real server");
        // NAT: the IPv4 destination is the real server
        let rip: std::net::Ipv4Addr = F4.rs[r].parse().expect("rip");
        assert_eq!(frame.get(30..34), Some(&rip.octets()[..]));
        assert_eq!(*rs.get_or_insert(r), r);
        assert_eq!(a, b, "byte-identical to a tracked flow");
    }
    assert_eq!(counters.stateless_fallbacks.get() - before, 2);
}
