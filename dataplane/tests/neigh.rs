//! Route lookup and neighbour resolution together, through the public API
//! only, the way a worker drives them: route → output → solicitation on
//! the wire → the answer parsed and handled → queued packets released.

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::neigh::{
    packets, AddrClass, Neigh, NeighConfig, OurAddr, OurAddrs, Output, PortInfo, Verdict,
};
use dataplane::parse::{parse, L3};
use dataplane::route::RouteTableBuilder;
use dataplane::wire::ethernet::MacAddr;
use dataplane::wire::{icmpv6, ip_proto};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAC0: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
const MAC1: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
const GW_MAC: MacAddr = MacAddr([0x52, 0x54, 0, 0, 0, 0xfe]);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn frame(dst: IpAddr) -> VecBuf {
    let b = etherparse::PacketBuilder::ethernet2([0; 6], [0; 6]);
    let mut v = Vec::new();
    match dst {
        IpAddr::V4(d) => b
            .ipv4([10, 0, 0, 1], d.octets(), 64)
            .udp(1, 2)
            .write(&mut v, b"x")
            .unwrap(),
        IpAddr::V6(d) => b
            .ipv6(ip6("2001:db8::1").octets(), d.octets(), 64)
            .udp(1, 2)
            .write(&mut v, b"x")
            .unwrap(),
    }
    VecBuf::from_slice(&v, 128, 64)
}

fn ip6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Plays the gateway: answers the solicitation frame `sol` as a real
/// neighbour would (ARP reply or solicited NA), built with etherparse or
/// by hand.
fn gateway_answers(sol: &[u8]) -> Vec<u8> {
    let meta = parse(sol).unwrap();
    match (meta.l3, meta.src, meta.dst) {
        (L3::Arp, IpAddr::V4(spa), IpAddr::V4(tpa)) => {
            let mut v = Vec::new();
            v.extend_from_slice(&sol[6..12]);
            v.extend_from_slice(&GW_MAC.0);
            v.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
            v.extend_from_slice(&GW_MAC.0);
            v.extend_from_slice(&tpa.octets());
            v.extend_from_slice(&sol[6..12]);
            v.extend_from_slice(&spa.octets());
            v
        }
        (L3::Ipv6, IpAddr::V6(src), _) => {
            assert_eq!(meta.ttl, 255);
            assert_eq!(meta.icmp_type, icmpv6::types::NEIGHBOR_SOLICIT);
            let l4 = usize::from(meta.l4_offset);
            let target: [u8; 16] = sol[l4 + 8..l4 + 24].try_into().unwrap();
            let b = etherparse::PacketBuilder::ethernet2(GW_MAC.0, sol[6..12].try_into().unwrap())
                .ipv6(target, src.octets(), 255)
                .icmpv6(etherparse::Icmpv6Type::Unknown {
                    type_u8: icmpv6::types::NEIGHBOR_ADVERT,
                    code_u8: 0,
                    bytes5to8: [0x60, 0, 0, 0],
                });
            let mut payload = target.to_vec();
            payload.extend_from_slice(&[icmpv6::OPT_TARGET_LL, 1]);
            payload.extend_from_slice(&GW_MAC.0);
            let mut v = Vec::new();
            b.write(&mut v, &payload).unwrap();
            v
        }
        other => panic!("not a solicitation: {other:?}"),
    }
}

#[test]
fn route_resolve_release() {
    let mut rb = RouteTableBuilder::new();
    rb.connected(0, ip("10.0.0.1"), 24)
        .connected(1, ip("192.168.1.1"), 24)
        .connected(1, ip("2001:db8::1"), 64)
        .route(ip("0.0.0.0"), 0, 1, Some(ip("192.168.1.254")))
        .route(ip("::"), 0, 1, Some(ip("fe80::fe")));
    let routes = rb.build().unwrap();
    let addrs = OurAddrs::new([
        OurAddr {
            addr: ip("192.168.1.1"),
            port: 1,
            class: AddrClass::Port,
            answer: true,
        },
        OurAddr {
            addr: ip("fe80::1"),
            port: 1,
            class: AddrClass::Port,
            answer: true,
        },
    ]);
    let ports = [
        PortInfo {
            mac: MAC0,
            tci: None,
            ipv4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ipv6: None,
        },
        PortInfo {
            mac: MAC1,
            tci: None,
            ipv4: Some(Ipv4Addr::new(192, 168, 1, 1)),
            ipv6: Some(ip6("fe80::1")),
        },
    ];
    let mut neigh: Neigh<VecBuf> = Neigh::new(ports, NeighConfig::default());

    for (i, dst) in [ip("203.0.113.9"), ip("2001:db8:ffff::9")]
        .into_iter()
        .enumerate()
    {
        let hop = routes.lookup(dst).unwrap();
        assert_eq!(hop.port, 1);
        assert!(!hop.connected);
        let now = i as u64 * 1_000_000;
        let r = neigh.output(frame(dst), hop.addr, hop.port, now);
        assert!(matches!(r.output, Output::Queued));
        let r2 = neigh.output(frame(dst), hop.addr, hop.port, now + 1);
        assert!(matches!(r2.output, Output::Queued));
        assert!(r2.solicit.is_none());
        // The solicitation goes on the wire, the gateway answers.
        let mut sol = VecBuf::with_room(0, packets::MAX_FRAME_LEN);
        let len = {
            let b = sol.append(packets::MAX_FRAME_LEN).unwrap();
            neigh.build_solicit(&r.solicit.unwrap(), b).unwrap()
        };
        assert!(sol.trim(packets::MAX_FRAME_LEN - len));
        let answer = gateway_answers(sol.data());
        let mut ab = VecBuf::from_slice(&answer, 128, 64);
        let meta = parse(ab.data()).unwrap();
        let h = if meta.l3 == L3::Arp {
            neigh.handle_arp(&addrs, &mut ab, &meta, 1, now + 2)
        } else {
            assert_eq!(meta.l4_proto, ip_proto::ICMPV6);
            neigh.handle_nd(&addrs, &mut ab, &meta, 1, now + 2)
        };
        assert_eq!(h.verdict, Verdict::Consumed);
        let l = h.learned.unwrap();
        assert_eq!((l.mac, l.pending), (GW_MAC, 2));
        let mut out = Vec::new();
        neigh.release(l.ip, l.port, |p| out.push(p));
        assert_eq!(out.len(), 2);
        for p in out {
            assert_eq!(&p.data()[..12], &[GW_MAC.0, MAC1.0].concat()[..]);
            let e = etherparse::SlicedPacket::from_ethernet(p.data()).unwrap();
            assert!(e.transport.is_some());
        }
        assert_eq!(neigh.lookup(hop.addr, 1), Some(GW_MAC));
    }
    assert_eq!(neigh.counters.released, 4);
    assert_eq!(neigh.counters.solicits_sent, 2);
}
