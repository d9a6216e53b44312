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
use dataplane::pipeline::{ConnInfo, DumpRequest, Event, Pipeline, PipelineConfig};
use dataplane::sched::{RealId, SchedKind};
use dataplane::snapshot::{PortSnap, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::sync::SyncParams;
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
    director_sync(vip, rs, encap, mtu, None)
}

fn director_sync(
    vip: &str,
    rs: &str,
    encap: TunEncap,
    mtu: u16,
    sync: Option<SyncParams>,
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
        .sync(sync)
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

// ---- real servers of the other family (heterogeneous pools) ----

/// The outer header of a tunnelled frame: (EtherType, outer source,
/// outer destination, IPv4 protocol / IPv6 next header, offset of the
/// byte after the outer IP header).
fn outer(f: &[u8]) -> (u16, IpAddr, IpAddr, u8, usize) {
    let et = u16::from_be_bytes([f[12], f[13]]);
    if et == 0x86dd {
        let s: [u8; 16] = f[22..38].try_into().unwrap();
        let d: [u8; 16] = f[38..54].try_into().unwrap();
        (et, s.into(), d.into(), f[20], 54)
    } else {
        assert_eq!(et, 0x0800);
        let s: [u8; 4] = f[26..30].try_into().unwrap();
        let d: [u8; 4] = f[30..34].try_into().unwrap();
        assert_eq!(f[14], 0x45);
        assert_eq!(f[20] & 0x40, 0x40, "DF");
        assert_eq!(dataplane::wire::checksum::checksum(&f[14..34]), 0);
        (et, s.into(), d.into(), f[23], 34)
    }
}

#[test]
fn ipv4_service_with_an_ipv6_tunnel_real_server() {
    for (name, encap, _, o6) in types() {
        let what = format!("{encap:?}");
        let (mut p, c, mut out) = director(VIP4, RS6, encap, 1500);
        let now = 2_000_000_000;
        // The SYN: IPv4 inside IPv6 from the server port's IPv6 address.
        let syn = client_tcp(CLIENT4, VIP4, 41000, SYN, 60, true);
        p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{what}");
        let (port, f) = out.tx.remove(0);
        assert_eq!(port, SERVER_PORT);
        assert_eq!(&f[..6], &MAC_RS1);
        let (et, src, dst, proto, at) = outer(&f);
        assert_eq!(et, 0x86dd);
        assert_eq!(src, "2001:db8:1::1".parse::<IpAddr>().unwrap());
        assert_eq!(dst, RS6.parse::<IpAddr>().unwrap());
        let hl = o6 - 40;
        let want_proto = match encap {
            TunEncap::Ipip => 4,
            TunEncap::Gue { .. } => 17,
            TunEncap::Gre { .. } => 47,
        };
        assert_eq!(proto, want_proto, "{what}");
        match encap {
            TunEncap::Gue { port, .. } => {
                assert_eq!(&f[at + 2..at + 4], &port.to_be_bytes());
                assert_eq!(f[at + 9], 4, "GUE: inner protocol IPv4");
            }
            TunEncap::Gre { .. } => assert_eq!(&f[at + 2..at + 4], &[0x08, 0x00]),
            TunEncap::Ipip => {}
        }
        assert_eq!(
            &f[at + hl..],
            &syn[14..],
            "{what}: the client's packet inside"
        );
        // The established path finds the IPv6 address too.
        let ack = client_tcp(CLIENT4, VIP4, 41000, ACK, 100, true);
        p.process(VecBuf::new(&ack), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{what}");
        let (_, f) = out.tx.remove(0);
        assert_eq!(outer(&f).2, RS6.parse::<IpAddr>().unwrap());
        assert_eq!(&f[at + hl..], &ack[14..]);
        // Too big with IPv6's overhead: frag-needed (IPv4) with 1500 - 40
        // less the tunnel header.
        let big = client_tcp(CLIENT4, VIP4, 41000, ACK, 1500 - o6 + 1, true);
        p.process(VecBuf::new(&big), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{what}");
        let (port, icmp) = out.tx.remove(0);
        assert_eq!(port, CLIENT_PORT);
        assert_eq!(usize::from(icmp_mtu(&icmp, CLIENT4, &big)), 1500 - o6);
        only(&c, name, "icmp_sent", 1);
        // The listing shows the IPv6 real server.
        let req = DumpRequest::<ConnInfo>::new(8);
        p.dump(&req);
        let e = req.out.pop().expect("one connection");
        assert_eq!(e.rip, (RS6.parse().unwrap(), 80));
        assert_eq!(e.vip, (VIP4.parse().unwrap(), 80));
        assert!(req.out.pop().is_none());
        assert_eq!(c.reals[0].inpkts.get(), 3, "counted on the real server");
    }
}

#[test]
fn ipv6_service_with_an_ipv4_tunnel_real_server() {
    for (name, encap, o4, _) in types() {
        let what = format!("{encap:?}");
        let (mut p, c, mut out) = director(VIP6, RS4, encap, 1500);
        let now = 2_000_000_000;
        let syn = client_tcp(CLIENT6, VIP6, 41001, SYN, 80, true);
        p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{what}");
        let (_, f) = out.tx.remove(0);
        let (et, src, dst, proto, at) = outer(&f);
        assert_eq!(et, 0x0800);
        assert_eq!(src, "198.19.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(dst, RS4.parse::<IpAddr>().unwrap());
        let want_proto = match encap {
            TunEncap::Ipip => 41,
            TunEncap::Gue { .. } => 17,
            TunEncap::Gre { .. } => 47,
        };
        assert_eq!(proto, want_proto, "{what}");
        let hl = o4 - 20;
        match encap {
            TunEncap::Gue { .. } => assert_eq!(f[at + 9], 41, "GUE: inner protocol IPv6"),
            TunEncap::Gre { .. } => assert_eq!(&f[at + 2..at + 4], &[0x86, 0xdd]),
            TunEncap::Ipip => {}
        }
        assert_eq!(&f[at + hl..], &syn[14..]);
        // Packet-too-big (IPv6) with 1500 - 20 less the tunnel header.
        let big = client_tcp(CLIENT6, VIP6, 41001, ACK, 1500 - o4 + 1, true);
        p.process(VecBuf::new(&big), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{what}");
        assert_eq!(
            usize::from(icmp_mtu(&out.tx[0].1, CLIENT6, &big)),
            1500 - o4
        );
        only(&c, name, "icmp_sent", 1);
        out.tx.clear();
        let fits = client_tcp(CLIENT6, VIP6, 41001, ACK, 1500 - o4, true);
        p.process(VecBuf::new(&fits), CLIENT_PORT, now, false, &mut out);
        assert_eq!(out.tx[0].1.len(), 14 + 1500);
    }
}

/// LVS sync v1 carries one address family per connection, so a
/// connection to a real server of the other family is not synced
/// (Linux refuses sync daemons while such real servers exist): counted.
#[test]
fn mixed_family_connections_are_not_synced_and_counted() {
    let syncs = |o: &Collect| {
        o.events
            .iter()
            .filter(|e| matches!(e, Event::Sync(_)))
            .count()
    };
    for (rs, mixed) in [(RS4, false), (RS6, true)] {
        let (mut p, c, mut out) =
            director_sync(VIP4, rs, TunEncap::Ipip, 1500, Some(SyncParams::default()));
        let now = 2_000_000_000;
        // SYN, ACK, data: the third client packet reaches the threshold.
        for (flags, len) in [(SYN, 60), (ACK, 40), (ACK, 100)] {
            let seg = client_tcp(CLIENT4, VIP4, 42000, flags, len, true);
            p.process(VecBuf::new(&seg), CLIENT_PORT, now, false, &mut out);
        }
        assert_eq!(out.tx.len(), 3, "all forwarded");
        if mixed {
            assert_eq!(syncs(&out), 0);
            assert_eq!(c.sync_skipped_mixed.get(), 1);
        } else {
            assert_eq!(syncs(&out), 1, "the same-family control case syncs");
            assert_eq!(c.sync_skipped_mixed.get(), 0);
        }
    }
}

/// A mixed-family connection's real server is found through the
/// snapshot: once the real server has left the service its packets are
/// dropped as no_real_server (a same-family one keeps going on its
/// record).
#[test]
fn mixed_family_connection_without_its_real_server_is_dropped() {
    let (mut p, c, mut out) = director(VIP4, RS6, TunEncap::Ipip, 1500);
    let now = 2_000_000_000;
    let syn = client_tcp(CLIENT4, VIP4, 43000, SYN, 60, true);
    p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, &mut out);
    assert_eq!(out.tx.len(), 1);
    out.tx.clear();
    let other = service(
        0,
        VIP4.parse().unwrap(),
        80,
        SchedKind::Rr,
        &[("2001:db8:1::12".parse().unwrap(), 80)],
        FwdMode::Tun,
    );
    // The new server gets another id (101) as control would give it.
    let mut other = other;
    let rs = dataplane::sched::RealServer::new(101, "2001:db8:1::12".parse().unwrap(), 80, 1);
    other.sched = dataplane::sched::ServiceSched::new(
        dataplane::sched::SchedConfig::new(SchedKind::Rr),
        vec![rs],
        None,
        2,
    )
    .unwrap();
    let snap = SnapshotBuilder::new(2, ports(), routes())
        .service(other)
        .build()
        .unwrap();
    p.install(Arc::new(snap));
    let ack = client_tcp(CLIENT4, VIP4, 43000, ACK, 40, true);
    p.process(VecBuf::new(&ack), CLIENT_PORT, now, false, &mut out);
    assert!(out.tx.is_empty());
    assert!(
        c.drops().contains(&("no_real_server", 1)),
        "{:?}",
        c.drops()
    );
}

/// The staged burst path (and any fast path in it) tunnels a mixed-family
/// connection's packets to the real server's address too, never to the
/// unspecified address its record holds.
#[test]
fn mixed_family_connection_through_the_burst_path() {
    for (vip, rs, client) in [(VIP4, RS6, CLIENT4), (VIP6, RS4, CLIENT6)] {
        let (mut p, _, mut out) = director(vip, rs, TunEncap::Ipip, 1500);
        let now = 2_000_000_000;
        let syn = client_tcp(client, vip, 44000, SYN, 60, true);
        p.process_burst([(VecBuf::new(&syn), CLIENT_PORT)], now, false, &mut out);
        assert_eq!(out.tx.len(), 1);
        // The next bursts find the connection (and the cached adjacency).
        for round in 0..3 {
            let segs: Vec<Vec<u8>> = (0..4)
                .map(|_| client_tcp(client, vip, 44000, ACK, 100, true))
                .collect();
            out.tx.clear();
            p.process_burst(
                segs.iter().map(|s| (VecBuf::new(s), CLIENT_PORT)),
                now + round,
                false,
                &mut out,
            );
            assert_eq!(out.tx.len(), 4, "round {round}");
            for ((port, f), s) in out.tx.iter().zip(&segs) {
                assert_eq!(*port, SERVER_PORT);
                let (_, _, dst, proto, at) = outer(f);
                assert_eq!(dst, rs.parse::<IpAddr>().unwrap(), "round {round}");
                assert_eq!(proto, if rs.contains(':') { 4 } else { 41 });
                assert_eq!(&f[at..], &s[14..]);
            }
        }
    }
}
