//! Helpers shared by the packet-path tests: a two-port topology, services,
//! packets built with etherparse, and output checks.
#![allow(dead_code)]

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::pipeline::{Event, Sink};
use dataplane::route::RouteTableBuilder;
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{PortSnap, Role, Service, Snapshot, SnapshotBuilder};
use dataplane::wire::ethernet::MacAddr;
use etherparse::{PacketBuilder, SlicedPacket};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

pub const CLIENT_PORT: u16 = 0;
pub const SERVER_PORT: u16 = 1;
pub const MAC_P0: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
pub const MAC_P1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
pub const MAC_GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];
pub const MAC_RS1: [u8; 6] = [0x02, 0, 0, 0, 0, 0x11];
pub const MAC_RS2: [u8; 6] = [0x02, 0, 0, 0, 0, 0x12];

pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().expect("addr"))
}
pub fn v6(s: &str) -> IpAddr {
    IpAddr::V6(s.parse::<Ipv6Addr>().expect("addr"))
}

pub fn service(
    id: u16,
    vip: IpAddr,
    vport: u16,
    kind: SchedKind,
    reals: &[(IpAddr, u16)],
    fwd: FwdMode,
) -> Service {
    let rs: Vec<RealServer> = reals
        .iter()
        .enumerate()
        .map(|(i, (a, p))| RealServer::new(u32::from(id) * 100 + i as u32, *a, *p, 1))
        .collect();
    let mh = ServiceSched::new(SchedConfig::new(SchedKind::Mh), rs.clone(), None, 1).expect("mh");
    Service {
        id,
        proto: 6,
        vip,
        vport,
        sched: ServiceSched::new(SchedConfig::new(kind), rs, None, 1).expect("sched"),
        fwd: vec![fwd; reals.len()].into_boxed_slice(),
        sorry_fwd: fwd,
        laddrs: vec![v4("198.19.0.250"), v6("2001:db8:1::250")].into_boxed_slice(),
        stateless: Some(mh),
        passive_check: false,
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
    }
}

pub fn routes() -> dataplane::route::RouteTable {
    RouteTableBuilder::new()
        .connected(CLIENT_PORT, v4("198.18.0.1"), 24)
        .connected(SERVER_PORT, v4("198.19.0.1"), 24)
        .connected(CLIENT_PORT, v6("2001:db8::1"), 64)
        .connected(SERVER_PORT, v6("2001:db8:1::1"), 64)
        .route(v4("0.0.0.0"), 0, CLIENT_PORT, Some(v4("198.18.0.254")))
        .build()
        .expect("routes")
}

pub fn ports() -> Vec<PortSnap> {
    vec![
        PortSnap {
            mac: MacAddr(MAC_P0),
            mtu: 1500,
            v4: Some(("198.18.0.1".parse().expect("a"), 24)),
            v6: Some(("2001:db8::1".parse().expect("a"), 64)),
        },
        PortSnap {
            mac: MacAddr(MAC_P1),
            mtu: 1500,
            v4: Some(("198.19.0.1".parse().expect("a"), 24)),
            v6: Some(("2001:db8:1::1".parse().expect("a"), 64)),
        },
    ]
}

pub fn snapshot(services: Vec<Service>, role: Role) -> Arc<Snapshot> {
    Arc::new(snapshot_on(ports(), services, role))
}

pub fn snapshot_on(ports: Vec<PortSnap>, services: Vec<Service>, role: Role) -> Snapshot {
    let routes = routes();
    let mut b = SnapshotBuilder::new(1, ports, routes).role(role);
    for s in services {
        b = b.service(s);
    }
    b.build().expect("snapshot")
}

pub fn tcp4(
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    syn: bool,
    ack: bool,
    payload: &[u8],
) -> Vec<u8> {
    let s: Ipv4Addr = src.parse().expect("src");
    let d: Ipv4Addr = dst.parse().expect("dst");
    let mut t = PacketBuilder::ethernet2(MAC_GW, MAC_P0)
        .ipv4(s.octets(), d.octets(), 64)
        .tcp(sport, dport, 1000, 65535);
    if syn {
        t = t.syn();
    }
    if ack {
        t = t.ack(1);
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).expect("build");
    out
}

pub fn arp_reply(
    sender_mac: [u8; 6],
    sender_ip: &str,
    target_mac: [u8; 6],
    target_ip: &str,
) -> Vec<u8> {
    let s: Ipv4Addr = sender_ip.parse().expect("ip");
    let t: Ipv4Addr = target_ip.parse().expect("ip");
    let mut f = Vec::new();
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&target_mac);
    f.extend_from_slice(&t.octets());
    f
}

/// Destination IP and port, destination MAC, and valid checksums.
pub fn check_out(frame: &[u8]) -> (IpAddr, u16, IpAddr, u16, [u8; 6]) {
    let p = SlicedPacket::from_ethernet(frame).expect("etherparse parses the output");
    let (src, dst) = match p.net {
        Some(etherparse::NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            let mut hh = h.to_header();
            hh.header_checksum = hh.calc_header_checksum();
            assert_eq!(
                hh.header_checksum,
                h.header_checksum(),
                "IPv4 header checksum"
            );
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
            )
        }
        Some(etherparse::NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
            )
        }
        _ => panic!("not IP"),
    };
    let (sport, dport) = match p.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            let want = match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    t.to_header()
                        .calc_checksum_ipv4_raw(s.octets(), d.octets(), t.payload())
                }
                (IpAddr::V6(s), IpAddr::V6(d)) => {
                    t.to_header()
                        .calc_checksum_ipv6_raw(s.octets(), d.octets(), t.payload())
                }
                _ => panic!("mixed"),
            }
            .expect("checksum");
            assert_eq!(t.checksum(), want, "TCP checksum");
            (t.source_port(), t.destination_port())
        }
        _ => panic!("not TCP: {frame:02x?}"),
    };
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&frame[..6]);
    let _ = src;
    (src, sport, dst, dport, mac)
}

/// A sink that keeps what the pipeline transmits and the events it emits;
/// handoffs are refused (one worker).
#[derive(Default)]
pub struct Collect {
    pub tx: Vec<(u16, Vec<u8>)>,
    pub events: Vec<Event>,
}

impl Sink<VecBuf> for Collect {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        self.tx.push((port, pkt.data().to_vec()));
    }
    fn handoff(&mut self, _worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        Err(pkt)
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, ev: Event) {
        self.events.push(ev);
    }
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

/// A TCP segment with exactly `flags`, from `src` to `dst` (Ethernet
/// addresses of the side it comes from).
#[allow(clippy::too_many_arguments)]
pub fn seg(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1);
    let mut t = match (src.parse::<IpAddr>(), dst.parse::<IpAddr>()) {
        (Ok(IpAddr::V4(s)), Ok(IpAddr::V4(d))) => b.ipv4(s.octets(), d.octets(), 64),
        (Ok(IpAddr::V6(s)), Ok(IpAddr::V6(d))) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("addresses"),
    }
    .tcp(sport, dport, 1000, 65535);
    if flags & SYN != 0 {
        t = t.syn();
    }
    if flags & ACK != 0 {
        t = t.ack(1);
    }
    if flags & FIN != 0 {
        t = t.fin();
    }
    if flags & RST != 0 {
        t = t.rst();
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).expect("build");
    out
}

/// A TCP frame with exact numbers: SYN, FIN and RST from `flags`, ACK when
/// `ack` is given, the window and the options as given.
#[allow(clippy::too_many_arguments, dead_code)]
pub fn tcp_frame(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    window: u16,
    opts: &[etherparse::TcpOptionElement],
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(macs.0, macs.1);
    let mut t = match (
        src.parse::<IpAddr>().expect("addr"),
        dst.parse::<IpAddr>().expect("addr"),
    ) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => b.ipv6(s.octets(), d.octets(), 64),
        _ => panic!("families"),
    }
    .tcp(sport, dport, seq, window);
    if flags & SYN != 0 {
        t = t.syn();
    }
    if let Some(a) = ack {
        t = t.ack(a);
    }
    if flags & FIN != 0 {
        t = t.fin();
    }
    if flags & RST != 0 {
        t = t.rst();
    }
    if !opts.is_empty() {
        t = t.options(opts).expect("options");
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).expect("build");
    out
}
