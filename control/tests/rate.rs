//! `--rate` end to end without a network: connections through the
//! worker's packet path (byte buffers, no EAL) with clients reusing their
//! ports as wrk and ab do, counted and fed to rvsd's IPVS estimator every
//! 2 s of packet time. The rate shown must be the rate sent.

use control::daemon::est::Estimator;
use control::model::Stats;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::route::RouteTableBuilder;
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{PortSnap, Role, Service, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

const MAC_P0: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_P1: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC_CLIENT: [u8; 6] = [2, 0, 0, 0, 0, 0xaa];
const MAC_RS: [u8; 6] = [2, 0, 0, 0, 0, 0x11];
const CLIENT: [u8; 4] = [198, 18, 0, 10];
const VIP: [u8; 4] = [198, 18, 0, 100];
const RS: [u8; 4] = [198, 19, 0, 11];
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const ACK: u8 = 0x10;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for ch in data.chunks(2) {
        let hi = u32::from(ch[0]) << 8;
        acc += hi | ch.get(1).map_or(0, |b| u32::from(*b));
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// An Ethernet + IPv4 + TCP segment (no payload) with valid checksums.
fn segment(
    macs: ([u8; 6], [u8; 6]),
    src: ([u8; 4], u16),
    dst: ([u8; 4], u16),
    flags: u8,
) -> Vec<u8> {
    let mut f = Vec::with_capacity(54);
    f.extend_from_slice(&macs.1);
    f.extend_from_slice(&macs.0);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.0);
    ip[16..20].copy_from_slice(&dst.0);
    let c = fold(sum16(&ip, 0));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let mut tcp = [0u8; 20];
    tcp[0..2].copy_from_slice(&src.1.to_be_bytes());
    tcp[2..4].copy_from_slice(&dst.1.to_be_bytes());
    tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
    if flags & ACK != 0 {
        tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
    }
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.0);
    pseudo.extend_from_slice(&dst.0);
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    let c = fold(sum16(&tcp, sum16(&pseudo, 0)));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&tcp);
    f
}

#[derive(Default)]
struct Count {
    to_server: u64,
    to_client: u64,
}

impl Sink<VecBuf> for Count {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        use dataplane::buf::PacketBuf;
        if pkt.data().get(12..14) != Some(&[0x08, 0x00][..]) {
            return; // ARP (neighbour probes), not a segment
        }
        if port == 1 {
            self.to_server += 1;
        } else {
            self.to_client += 1;
        }
    }
    fn handoff(&mut self, _worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        Err(pkt)
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, _ev: Event) {}
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn director(reuse_mode: u8) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let ports = vec![
        PortSnap {
            mac: MacAddr(MAC_P0),
            mtu: 1500,
            v4: Some((Ipv4Addr::new(198, 18, 0, 1), 24)),
            v6: None,
        },
        PortSnap {
            mac: MacAddr(MAC_P1),
            mtu: 1500,
            v4: Some((Ipv4Addr::new(198, 19, 0, 1), 24)),
            v6: None,
        },
    ];
    let routes = RouteTableBuilder::new()
        .connected(0, v4([198, 18, 0, 1]), 24)
        .connected(1, v4([198, 19, 0, 1]), 24)
        .build()
        .expect("routes");
    let svc = Service {
        id: 0,
        proto: 6,
        vip: v4(VIP),
        vport: 80,
        sched: ServiceSched::new(
            SchedConfig::new(SchedKind::Rr),
            vec![RealServer::new(0, v4(RS), 8080, 1)],
            None,
            1,
        )
        .expect("sched"),
        fwd: vec![FwdMode::Nat].into_boxed_slice(),
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
    let snap = SnapshotBuilder::new(1, ports, routes)
        .role(Role::Master)
        .conn_reuse_mode(reuse_mode)
        .service(svc)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(1, 1, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 4096, 1024),
        Arc::new(snap),
        HashKey::from_seed(9),
        counters.clone(),
    )
    .expect("pipeline");
    let mut sink = Count::default();
    p.learn(v4(RS), 1, MacAddr(MAC_RS), 0, &mut sink);
    p.learn(v4(CLIENT), 0, MacAddr(MAC_CLIENT), 0, &mut sink);
    (p, counters)
}

/// One HTTP/1.0-style connection from client port `cport`: handshake,
/// the server closes first, the client's FIN and last ACK.
fn connection(p: &mut Pipeline<VecBuf>, sink: &mut Count, cport: u16, now: u64) {
    let cl = (MAC_CLIENT, MAC_P0);
    let sv = (MAC_RS, MAC_P1);
    let c = (CLIENT, cport);
    let v = (VIP, 80);
    let r = (RS, 8080);
    for (from_client, flags) in [
        (true, SYN),
        (false, SYN | ACK),
        (true, ACK),
        (false, FIN | ACK),
        (true, FIN | ACK),
        (true, ACK),
    ] {
        let (f, port) = if from_client {
            (segment(cl, c, v, flags), 0)
        } else {
            (segment(sv, r, c, flags), 1)
        };
        p.process(VecBuf::new(&f), port, now, false, sink);
    }
}

fn stats(c: &WorkerCounters) -> Stats {
    let t = c.services[0].read();
    Stats {
        conns: t.conns,
        inpkts: t.inpkts,
        outpkts: t.outpkts,
        inbytes: t.inbytes,
        outbytes: t.outbytes,
    }
}

/// 400 connections every 2 s (200/s) from 50 client ports, so each port
/// is reused 8 times per interval while its old entry sits in TIME_WAIT
/// (as wrk with `Connection: close` does): `--rate` shows 200 CPS, 800
/// packets/s in, 400 out, and IP bytes (40 per segment).
fn run(reuse_mode: u8) -> (Arc<WorkerCounters>, Count, Estimator) {
    let (mut p, counters) = director(reuse_mode);
    let mut sink = Count::default();
    let mut est = Estimator::new(&stats(&counters));
    let second = 1_000_000_000u64;
    let mut now = 10 * second;
    for _interval in 0..40 {
        for i in 0..400u16 {
            connection(&mut p, &mut sink, 30000 + i % 50, now);
        }
        now += 2 * second;
        est.sample(&stats(&counters));
    }
    (counters, sink, est)
}

#[test]
fn rate_of_connections_through_the_pipeline_with_port_reuse() {
    let (counters, sink, est) = run(1);
    assert_eq!(
        sink.to_server,
        40 * 400 * 4,
        "every client segment forwarded"
    );
    assert_eq!(
        sink.to_client,
        40 * 400 * 2,
        "every server segment forwarded"
    );
    let s = stats(&counters);
    assert_eq!(s.conns, 40 * 400, "Conns counts every connection");
    let r = est.rates();
    assert_eq!(
        (r.cps, r.inpps, r.outpps, r.inbps, r.outbps),
        (200, 800, 400, 800 * 40, 400 * 40)
    );
}

/// The cause of the low `--rate` reported in issue 16: with the old
/// behaviour (a SYN reusing the TIME_WAIT entry, `conn_reuse_mode = 0`)
/// only the first connection of each port is counted, so the rate falls
/// to zero while the traffic goes on.
#[test]
fn without_conn_reuse_the_rate_collapses() {
    let (counters, sink, est) = run(0);
    assert_eq!(sink.to_server, 40 * 400 * 4, "the traffic still flows");
    assert_eq!(stats(&counters).conns, 50, "one per client port");
    assert_eq!(est.rates().cps, 0);
}
