//! One-packet scheduling (IPVS `IP_VS_SVC_F_ONEPACKET`, ipvsadm `-o`) on
//! the worker's packet path with byte buffers: every datagram of a UDP
//! service is scheduled on its own, no connection entry is made, each
//! datagram counts as a connection, persistence templates still hold the
//! client, and NAT replies are reverse-translated statelessly.

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, Pipeline, PipelineConfig};
use dataplane::sched::{Persistence, RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{Role, Service, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use std::net::IpAddr;
use std::sync::Arc;

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
const PORT: u16 = 53;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

/// A UDP service on VIP:53 over three NAT real servers (ids 0, 1, 2).
fn svc(f: &Fam, kind: SchedKind, ops: bool, persist: bool) -> Service {
    let reals: Vec<RealServer> = (0..3)
        .map(|i| RealServer::new(i as u32, ip(f.rs[i]), PORT, 1))
        .collect();
    let mut cfg = SchedConfig::new(kind);
    if persist {
        cfg.persistence = Some(Persistence::new(300));
    }
    Service {
        id: 0,
        proto: 17,
        vip: ip(f.vip),
        vport: PORT,
        sched: ServiceSched::new(cfg, reals, None, 1).expect("sched"),
        fwd: vec![FwdMode::Nat; 3].into_boxed_slice(),
        sorry_fwd: FwdMode::Nat,
        laddrs: Vec::new().into_boxed_slice(),
        stateless: None,
        passive_check: false,
        sloppy_tcp: false,
        ops,
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

fn director(s: Arc<Snapshot>) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let counters = Arc::new(WorkerCounters::new(4, 16, 3, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        s,
        HashKey::from_seed(7),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    for f in [&F4, &F6] {
        for (i, mac) in RS_MACS.into_iter().enumerate() {
            p.learn(ip(f.rs[i]), SERVER_PORT, MacAddr(mac), 0, &mut out);
        }
        p.learn(ip(f.client), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    }
    (p, counters, out)
}

fn udp(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    data: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1);
    let b = match (ip(src), ip(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("families"),
    };
    let mut out = Vec::new();
    b.udp(sport, dport).write(&mut out, data).expect("build");
    out
}

fn from_client(f: &Fam, cport: u16, data: &[u8]) -> Vec<u8> {
    udp((MAC_GW, MAC_P0), f.client, cport, f.vip, PORT, data)
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

/// (src, sport, dst, dport, payload) of a UDP frame, its checksums checked.
fn udp_out(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16, Vec<u8>) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses the output");
    let (src, dst) = match &p.net {
        Some(etherparse::NetSlice::Ipv4(h)) => {
            let h = h.header();
            let mut hh = h.to_header();
            hh.header_checksum = hh.calc_header_checksum();
            assert_eq!(hh.header_checksum, h.header_checksum(), "IPv4 checksum");
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
            )
        }
        Some(etherparse::NetSlice::Ipv6(h)) => {
            let h = h.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
            )
        }
        _ => panic!("not IP"),
    };
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("not UDP")
    };
    let want = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            u.to_header()
                .calc_checksum_ipv4_raw(s.octets(), d.octets(), u.payload())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            u.to_header()
                .calc_checksum_ipv6_raw(s.octets(), d.octets(), u.payload())
        }
        _ => panic!("mixed"),
    }
    .expect("checksum");
    assert_eq!(u.checksum(), want, "UDP checksum");
    (
        src,
        u.source_port(),
        dst,
        u.destination_port(),
        u.payload().to_vec(),
    )
}

/// The real server (index) a client datagram went to.
fn real_of(tx: &[(u16, Vec<u8>)]) -> usize {
    assert_eq!(tx.len(), 1, "one datagram out");
    assert_eq!(tx[0].0, SERVER_PORT);
    RS_MACS
        .iter()
        .position(|m| tx[0].1[..6] == m[..])
        .expect("a real server's MAC")
}

fn entries(p: &Pipeline<VecBuf>) -> u32 {
    p.conns_v4().len() + p.conns_v6().len()
}

fn two_datagrams_of_one_flow_go_to_two_servers(f: &Fam) {
    let (mut p, c, mut out) = director(snap(svc(f, SchedKind::Rr, true, false)));
    let (mut plain, _, mut out2) = director(snap(svc(f, SchedKind::Rr, false, false)));
    let cport = 40000;
    let mut seen = Vec::new();
    for (n, data) in [&b"query-1"[..], b"query-2", b"query-3"].iter().enumerate() {
        let frame = from_client(f, cport, data);
        let a = send(&mut p, &mut out, &frame, CLIENT_PORT);
        let r = real_of(&a);
        let (src, sport, dst, dport, payload) = udp_out(&a[0].1);
        assert_eq!(
            (src, sport, dst, dport, payload.as_slice()),
            (ip(f.client), cport, ip(f.rs[r]), PORT, *data),
            "datagram {n}: NAT to its own real server"
        );
        let b = send(&mut plain, &mut out2, &frame, CLIENT_PORT);
        if n == 0 {
            // the first datagram: the same pick and the same bytes as a
            // service that keeps an entry
            assert_eq!(a, b, "byte-identical to the tracked datagram");
        } else {
            assert_eq!(real_of(&b), seen[0], "without ops the flow sticks");
        }
        seen.push(r);
    }
    assert_eq!(seen, [0, 1, 2], "rr: a new decision for every datagram");
    assert_eq!(entries(&p), 0, "no connection entry is hashed");
    assert_eq!(entries(&plain), 1);
    assert_eq!(c.ops_packets.get(), 3);
    assert_eq!(
        c.services[0].conns.get(),
        3,
        "each datagram is a connection"
    );
    assert_eq!(c.services[0].inpkts.get(), 3);
    for r in 0..3 {
        assert_eq!(c.reals[r].conns.get(), 1, "real {r}");
    }

    // the replies: reverse NAT without an entry, counted
    for r in [1usize, 2] {
        let reply = udp(
            (RS_MACS[r], MAC_P1),
            f.rs[r],
            PORT,
            f.client,
            cport,
            b"answer",
        );
        let a = send(&mut p, &mut out, &reply, SERVER_PORT);
        assert_eq!(a.len(), 1, "reply forwarded");
        assert_eq!(a[0].0, CLIENT_PORT);
        assert_eq!(a[0].1[..6], MAC_GW[..]);
        let (src, sport, dst, dport, payload) = udp_out(&a[0].1);
        assert_eq!(
            (src, sport, dst, dport, payload.as_slice()),
            (ip(f.vip), PORT, ip(f.client), cport, &b"answer"[..])
        );
        // byte for byte what the tracked service sends for its own reply
        // (its entry points at real 0, so build that one from real 0)
        if r == 1 {
            let reply0 = udp(
                (RS_MACS[0], MAC_P1),
                f.rs[0],
                PORT,
                f.client,
                cport,
                b"answer",
            );
            let b = send(&mut plain, &mut out2, &reply0, SERVER_PORT);
            assert_eq!(a, b, "stateless reply == tracked reply");
        }
    }
    assert_eq!(c.stateless_replies.get(), 2);
    assert_eq!(c.services[0].outpkts.get(), 2);
    assert_eq!(c.reals[1].outpkts.get(), 1);
    assert_eq!(c.reals[2].outpkts.get(), 1);
    assert_eq!(c.reals[0].outpkts.get(), 0);
    assert_eq!(entries(&p), 0);
}

#[test]
fn ops_schedules_every_datagram_v4() {
    two_datagrams_of_one_flow_go_to_two_servers(&F4);
}

#[test]
fn ops_schedules_every_datagram_v6() {
    two_datagrams_of_one_flow_go_to_two_servers(&F6);
}

/// With persistence the template still holds the client on one real
/// server (IPVS makes the template before the one-packet connection), and
/// the other workers are told about it; still no connection entry.
#[test]
fn ops_keeps_persistence_templates() {
    for f in [&F4, &F6] {
        let (mut p, c, mut out) = director(snap(svc(f, SchedKind::Rr, true, true)));
        let mut seen = Vec::new();
        for cport in [40000u16, 40001, 40002] {
            out.events.clear();
            let a = send(&mut p, &mut out, &from_client(f, cport, b"q"), CLIENT_PORT);
            let r = real_of(&a);
            seen.push(r);
            assert!(
                out.events.contains(&Event::Template {
                    svc: 0,
                    client: ip(f.client),
                    rs: r as u32,
                }),
                "{:?}",
                out.events
            );
        }
        assert_eq!(seen, [seen[0]; 3], "one client, one real server");
        assert_eq!(entries(&p), 0);
        assert_eq!(c.ops_packets.get(), 3);
        assert_eq!(c.services[0].conns.get(), 3);
    }
}

/// `ops` set on a TCP service (the daemon never does; the model refuses
/// it) changes nothing: IPVS applies one-packet scheduling to UDP only.
#[test]
fn ops_is_ignored_for_tcp() {
    let mut s = svc(&F4, SchedKind::Rr, true, false);
    s.proto = 6;
    let (mut p, c, mut out) = director(snap(s));
    let syn = seg((MAC_GW, MAC_P0), F4.client, 40000, F4.vip, PORT, SYN, b"");
    let a = send(&mut p, &mut out, &syn, CLIENT_PORT);
    assert_eq!(a.len(), 1);
    assert_eq!(entries(&p), 1, "a TCP connection gets its entry");
    assert_eq!(c.ops_packets.get(), 0);
}
