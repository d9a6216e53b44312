//! TUN through the worker's packet path: packets too big once
//! encapsulated, counted per tunnel type and action, with the exact MTU
//! the client is told; and real servers of the other address family
//! (IPVS's heterogeneous pools).

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::forward::TunEncap;
use dataplane::pipeline::{Pipeline, PipelineConfig};
use dataplane::sched::{RealId, SchedKind};
use dataplane::snapshot::{PortSnap, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use etherparse::{
    icmpv4::DestUnreachableHeader, Icmpv4Type, Icmpv6Type, IpHeaders, Ipv4Header, NetSlice,
    PacketBuilder, SlicedPacket, TransportSlice,
};
use std::net::IpAddr;
use std::sync::Arc;

const CLIENT4: &str = "198.18.0.10";
const VIP4: &str = "198.18.0.100";
const RS4: &str = "198.19.0.11";
const CLIENT6: &str = "2001:db8::10";
const VIP6: &str = "2001:db8::100";
const RS6: &str = "2001:db8:1::11";
const GUE_PORT: u16 = 6080;

/// The tunnel types with their overhead over IPv4 / IPv6 outer headers.
fn types() -> [(&'static str, TunEncap, usize, usize); 5] {
    [
        ("ipip", TunEncap::Ipip, 20, 40),
        (
            "gue",
            TunEncap::Gue {
                port: GUE_PORT,
                csum: false,
            },
            20 + 12,
            40 + 12,
        ),
        (
            "gue",
            TunEncap::Gue {
                port: GUE_PORT,
                csum: true,
            },
            20 + 12,
            40 + 12,
        ),
        ("gre", TunEncap::Gre { csum: false }, 24, 44),
        ("gre", TunEncap::Gre { csum: true }, 28, 48),
    ]
}

fn ports_mtu(mtu: u16) -> Vec<PortSnap> {
    ports()
        .into_iter()
        .map(|mut p| {
            p.mtu = mtu;
            p
        })
        .collect()
}

/// A director with one TUN service (`vip`:80) whose only real server is
/// `rs` with tunnel type `encap`, its MAC known; ports of `mtu` bytes.
fn director(
    vip: &str,
    rs: &str,
    encap: TunEncap,
    mtu: u16,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let svc = service(
        0,
        vip.parse().unwrap(),
        80,
        SchedKind::Rr,
        &[(rs.parse().unwrap(), 80)],
        FwdMode::Tun,
    );
    let snap: Snapshot = SnapshotBuilder::new(1, ports_mtu(mtu), routes())
        .service(svc)
        .tunnel(RealId(0), encap)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(4, 16, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        Arc::new(snap),
        HashKey::from_seed(7),
        counters.clone(),
    )
    .expect("pipeline");
    let mut out = Collect::default();
    p.learn(
        rs.parse().unwrap(),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        1_000_000_000,
        &mut out,
    );
    (p, counters, out)
}

/// A client → VIP TCP segment of exactly `ip_len` bytes of IP packet,
/// IPv4 with DF as given.
fn client_tcp(client: &str, vip: &str, cport: u16, flags: u8, ip_len: usize, df: bool) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_GW, MAC_P0);
    let (step, hdr) = match (
        client.parse::<IpAddr>().unwrap(),
        vip.parse::<IpAddr>().unwrap(),
    ) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h =
                Ipv4Header::new(0, 64, etherparse::IpNumber::TCP, s.octets(), d.octets()).unwrap();
            h.dont_fragment = df;
            (b.ip(IpHeaders::Ipv4(h, Default::default())), 20)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => (b.ipv6(s.octets(), d.octets(), 64), 40),
        _ => panic!("families"),
    };
    let mut t = step.tcp(cport, 80, 1000, 65535);
    if flags & SYN != 0 {
        t = t.syn();
    }
    if flags & ACK != 0 {
        t = t.ack(1);
    }
    let payload = vec![0x5a; ip_len - hdr - 20];
    let mut out = Vec::new();
    t.write(&mut out, &payload).unwrap();
    out
}

/// The MTU of the ICMP frag-needed / packet-too-big in `frame`, after
/// checking it goes from the client port's address to `client` and quotes
/// the start of `orig`.
fn icmp_mtu(frame: &[u8], client: &str, orig: &[u8]) -> u16 {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    let (src, dst): (IpAddr, IpAddr) = match &p.net {
        Some(NetSlice::Ipv4(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        Some(NetSlice::Ipv6(ip)) => (
            ip.header().source_addr().into(),
            ip.header().destination_addr().into(),
        ),
        _ => panic!("not IP"),
    };
    assert_eq!(dst, client.parse::<IpAddr>().unwrap());
    let want_src: IpAddr = if dst.is_ipv4() {
        "198.18.0.1".parse().unwrap()
    } else {
        "2001:db8::1".parse().unwrap()
    };
    assert_eq!(src, want_src, "from the client port's address");
    match p.transport {
        Some(TransportSlice::Icmpv4(i)) => {
            assert_eq!(&i.payload()[..28], &orig[14..42], "quote");
            match i.icmp_type() {
                Icmpv4Type::DestinationUnreachable(
                    DestUnreachableHeader::FragmentationNeeded { next_hop_mtu },
                ) => next_hop_mtu,
                t => panic!("not frag-needed: {t:?}"),
            }
        }
        Some(TransportSlice::Icmpv6(i)) => {
            assert_eq!(&i.payload()[..48], &orig[14..62], "quote");
            match i.icmp_type() {
                Icmpv6Type::PacketTooBig { mtu } => u16::try_from(mtu).unwrap(),
                t => panic!("not packet-too-big: {t:?}"),
            }
        }
        _ => panic!("not ICMP"),
    }
}

/// Every tunnel counter but (`ty`, `action`) is 0, that one is `n`.
fn only(c: &WorkerCounters, ty: &str, action: &str, n: u64) {
    for (t, a, v) in c.tun_too_big.named() {
        let want = if (t, a) == (ty, action) { n } else { 0 };
        assert_eq!(v, want, "{t}/{a}");
    }
}

#[test]
fn too_big_once_encapsulated_is_counted_per_tunnel_type() {
    for (name, encap, o4, o6) in types() {
        for v6 in [false, true] {
            let (client, vip, rs) = if v6 {
                (CLIENT6, VIP6, RS6)
            } else {
                (CLIENT4, VIP4, RS4)
            };
            let overhead = if v6 { o6 } else { o4 };
            let what = format!("{encap:?} v6={v6}");
            let (mut p, c, mut out) = director(vip, rs, encap, 1500);
            let now = 2_000_000_000;
            // The SYN opens the connection and is tunnelled.
            let syn = client_tcp(client, vip, 40000, SYN, 60, true);
            p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, &mut out);
            assert_eq!(out.tx.len(), 1, "{what}");
            assert_eq!(out.tx[0].0, SERVER_PORT);
            out.tx.clear();
            // Exactly the MTU once encapsulated: sent, 1500 bytes of IP.
            let fits = client_tcp(client, vip, 40000, ACK, 1500 - overhead, true);
            p.process(VecBuf::new(&fits), CLIENT_PORT, now, false, &mut out);
            assert_eq!(out.tx.len(), 1, "{what}");
            assert_eq!(out.tx[0].1.len(), 14 + 1500, "{what}");
            assert_eq!(&out.tx[0].1[14 + overhead..], &fits[14..], "{what}");
            out.tx.clear();
            only(&c, name, "icmp_sent", 0);
            // One byte more with DF (IPv6: always): the client is told
            // the MTU less this tunnel's overhead.
            let big = client_tcp(client, vip, 40000, ACK, 1500 - overhead + 1, true);
            p.process(VecBuf::new(&big), CLIENT_PORT, now, false, &mut out);
            assert_eq!(out.tx.len(), 1, "{what}");
            let (port, icmp) = &out.tx[0];
            assert_eq!(*port, CLIENT_PORT, "{what}");
            assert_eq!(
                usize::from(icmp_mtu(icmp, client, &big)),
                1500 - overhead,
                "{what}"
            );
            assert_eq!(&icmp[..6], &MAC_GW, "back to the sender's MAC");
            out.tx.clear();
            only(&c, name, "icmp_sent", 1);
            assert_eq!(c.pmtu_replies.get(), 1, "{what}");
            let frag = c.drops();
            assert!(frag.contains(&("needs_fragmentation", 0)), "{what}");
            if !v6 {
                // Without DF: dropped, counted under the type and as
                // needs_fragmentation.
                let nodf = client_tcp(client, vip, 40000, ACK, 1500 - overhead + 1, false);
                p.process(VecBuf::new(&nodf), CLIENT_PORT, now, false, &mut out);
                assert!(out.tx.is_empty(), "{what}");
                assert_eq!(c.tun_too_big.get(name, "dropped"), 1, "{what}");
                assert_eq!(c.tun_too_big.get(name, "icmp_sent"), 1, "{what}");
                assert!(c.drops().contains(&("needs_fragmentation", 1)), "{what}");
                assert_eq!(c.pmtu_replies.get(), 1, "{what}");
            }
        }
    }
}

/// IPv6 at the minimum MTU cannot be told to go smaller: a 1280-byte
/// packet that does not fit a 1300-byte link once tunnelled is dropped,
/// counted under its tunnel type.
#[test]
fn ipv6_at_the_minimum_mtu_is_dropped_per_tunnel_type() {
    for (name, encap, _, _) in types() {
        let (mut p, c, mut out) = director(VIP6, RS6, encap, 1300);
        let now = 2_000_000_000;
        let syn = client_tcp(CLIENT6, VIP6, 40001, SYN, 60, true);
        p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1);
        out.tx.clear();
        let min = client_tcp(CLIENT6, VIP6, 40001, ACK, 1280, true);
        p.process(VecBuf::new(&min), CLIENT_PORT, now, false, &mut out);
        assert!(out.tx.is_empty(), "{encap:?}");
        only(&c, name, "dropped", 1);
        assert!(c.drops().contains(&("needs_fragmentation", 1)));
        assert_eq!(c.pmtu_replies.get(), 0);
        // A bigger one can be told: 1300 less the overhead is under the
        // minimum, so the reply says 1280.
        let big = client_tcp(CLIENT6, VIP6, 40001, ACK, 1290, true);
        p.process(VecBuf::new(&big), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{encap:?}");
        assert_eq!(icmp_mtu(&out.tx[0].1, CLIENT6, &big), 1280);
        assert_eq!(c.tun_too_big.get(name, "icmp_sent"), 1);
    }
}

/// Other forwarding methods never count under a tunnel type.
#[test]
fn nat_too_big_is_not_a_tunnel_count() {
    let svc = service(
        0,
        VIP4.parse().unwrap(),
        80,
        SchedKind::Rr,
        &[(RS4.parse().unwrap(), 80)],
        FwdMode::Dr,
    );
    let snap = SnapshotBuilder::new(1, ports_mtu(1400), routes())
        .service(svc)
        .build()
        .unwrap();
    let counters = Arc::new(WorkerCounters::new(4, 16, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        Arc::new(snap),
        HashKey::from_seed(7),
        counters.clone(),
    )
    .unwrap();
    let mut out = Collect::default();
    p.learn(
        RS4.parse().unwrap(),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        1_000_000_000,
        &mut out,
    );
    let big = client_tcp(CLIENT4, VIP4, 40002, SYN, 1401, true);
    p.process(
        VecBuf::new(&big),
        CLIENT_PORT,
        2_000_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    assert_eq!(icmp_mtu(&out.tx[0].1, CLIENT4, &big), 1400);
    assert_eq!(counters.pmtu_replies.get(), 1);
    for (t, a, v) in counters.tun_too_big.named() {
        assert_eq!(v, 0, "{t}/{a}");
    }
}
