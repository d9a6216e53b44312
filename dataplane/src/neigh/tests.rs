//! Golden-packet and state-machine tests for neighbour handling. Input
//! frames are built by hand from the RFC 826 layout or with etherparse's
//! `PacketBuilder`, never with the code under test.

use super::*;
use crate::buf::VecBuf;
use crate::parse::parse;
use crate::wire::checksum;
use etherparse::{Icmpv6Type, PacketBuilder};

const PORT0_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
const PORT1_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x01, 0x01]);
const PEER_MAC: MacAddr = MacAddr([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const PEER_MAC2: MacAddr = MacAddr([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
const SEC: u64 = 1_000_000_000;

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addrs() -> OurAddrs {
    let a = |s: &str, port, class| OurAddr {
        addr: ip(s),
        port,
        class,
        answer: true,
    };
    OurAddrs::new([
        a("10.0.0.1", 0, AddrClass::Port),
        a("10.0.0.100", 0, AddrClass::Vip),
        a("10.0.0.50", 0, AddrClass::Local),
        a("192.168.1.1", 1, AddrClass::Port),
        a("fe80::1", 0, AddrClass::Port),
        a("2001:db8::1", 0, AddrClass::Port),
        a("2001:db8::100", 0, AddrClass::Vip),
    ])
}

fn cfg() -> NeighConfig {
    NeighConfig {
        capacity: 8,
        queue_per_neigh: 3,
        queue_total: 8,
        ..NeighConfig::default()
    }
}

fn neigh() -> Neigh<VecBuf> {
    Neigh::new(
        [
            PortInfo {
                mac: PORT0_MAC,
                tci: None,
                ipv4: Some(v4("10.0.0.1")),
                ipv6: Some(v6("fe80::1")),
            },
            PortInfo {
                mac: PORT1_MAC,
                tci: Some(0x0064),
                ipv4: Some(v4("192.168.1.1")),
                ipv6: None,
            },
        ],
        cfg(),
    )
}

/// An ARP frame laid out by hand (RFC 826), with an optional 802.1Q tag.
fn arp_frame(
    eth_dst: MacAddr,
    op: u16,
    sha: MacAddr,
    spa: Ipv4Addr,
    tha: MacAddr,
    tpa: Ipv4Addr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&eth_dst.0);
    v.extend_from_slice(&sha.0);
    if let Some(tci) = vlan {
        v.extend_from_slice(&[0x81, 0x00]);
        v.extend_from_slice(&tci.to_be_bytes());
    }
    v.extend_from_slice(&[0x08, 0x06]); // ethertype ARP
    v.extend_from_slice(&[0x00, 0x01, 0x08, 0x00, 0x06, 0x04]); // Ethernet, IPv4, 6, 4
    v.extend_from_slice(&op.to_be_bytes());
    v.extend_from_slice(&sha.0);
    v.extend_from_slice(&spa.octets());
    v.extend_from_slice(&tha.0);
    v.extend_from_slice(&tpa.octets());
    v
}

fn arp_request_for(tpa: &str, spa: &str, sha: MacAddr) -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        1,
        sha,
        v4(spa),
        MacAddr::ZERO,
        v4(tpa),
        None,
    )
}

fn arp_reply_from(spa: &str, sha: MacAddr, tpa: &str) -> Vec<u8> {
    arp_frame(PORT0_MAC, 2, sha, v4(spa), PORT0_MAC, v4(tpa), None)
}

fn handle_arp(
    n: &mut Neigh<VecBuf>,
    a: &OurAddrs,
    frame: &[u8],
    port: u16,
    now: u64,
) -> (Handled, VecBuf) {
    let mut b = VecBuf::from_slice(frame, 128, 128);
    let meta = parse(b.data()).unwrap();
    let h = n.handle_arp(a, &mut b, &meta, port, now);
    (h, b)
}

/// An NS or NA built with etherparse: Ethernet, IPv6 with `hop_limit`,
/// ICMPv6 `ty` with `flags` byte, target and an optional link-layer
/// option (type 1 for NS, 2 for NA).
#[allow(clippy::too_many_arguments)] // one argument per wire field, read side by side with the RFC
fn nd_frame(
    eth_src: MacAddr,
    eth_dst: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    ty: u8,
    flags: u8,
    target: Ipv6Addr,
    ll: Option<MacAddr>,
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(eth_src.0, eth_dst.0)
        .ipv6(src.octets(), dst.octets(), hop_limit)
        .icmpv6(Icmpv6Type::Unknown {
            type_u8: ty,
            code_u8: 0,
            bytes5to8: [flags, 0, 0, 0],
        });
    let mut payload = target.octets().to_vec();
    if let Some(m) = ll {
        payload.extend_from_slice(&[if ty == 135 { 1 } else { 2 }, 1]);
        payload.extend_from_slice(&m.0);
    }
    let mut v = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut v, &payload).unwrap();
    v
}

fn ns_for(target: &str, src: &str) -> Vec<u8> {
    let t = v6(target);
    let d = packets::solicited_node(t);
    nd_frame(
        PEER_MAC,
        packets::ipv6_multicast_mac(d),
        v6(src),
        d,
        255,
        135,
        0,
        t,
        Some(PEER_MAC),
    )
}

fn handle_nd(
    n: &mut Neigh<VecBuf>,
    a: &OurAddrs,
    frame: &[u8],
    port: u16,
    now: u64,
) -> (Handled, VecBuf) {
    let mut b = VecBuf::from_slice(frame, 128, 128);
    let meta = parse(b.data()).unwrap();
    let h = n.handle_nd(a, &mut b, &meta, port, now);
    (h, b)
}

/// A UDP packet to forward, with placeholder MACs.
fn data_packet(tag: u8) -> VecBuf {
    let b = PacketBuilder::ethernet2([0; 6], [0; 6])
        .ipv4([10, 0, 0, 1], [198, 51, 100, 7], 64)
        .udp(1000, 2000);
    let mut v = Vec::new();
    b.write(&mut v, &[tag]).unwrap();
    VecBuf::from_slice(&v, 128, 0)
}

// ---- ARP ------------------------------------------------------------------

#[test]
fn arp_reply_golden() {
    let mut n = neigh();
    let a = addrs();
    let req = arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC);
    let (h, out) = handle_arp(&mut n, &a, &req, 0, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    #[rustfmt::skip]
    let golden: [u8; 42] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, // eth dst: the asker
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // eth src: port 0
        0x08, 0x06,                         // ARP
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, // Ethernet/IPv4
        0x00, 0x02,                         // reply
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 100, // sender: us, the VIP
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 2,   // target: the asker
    ];
    assert_eq!(out.data(), &golden);
    assert_eq!(n.counters.arp_requests_answered, 1);
    // The asker is not learned: rvs learns only what it resolves.
    assert_eq!((h.learned, h.changed, h.refused), (None, false, None));
    assert!(n.is_empty());
    assert_eq!(n.counters.learned, 0);
}

#[test]
fn arp_reply_keeps_vlan_tag_and_padding() {
    let mut n = neigh();
    let a = addrs();
    let mut req = arp_frame(
        MacAddr::BROADCAST,
        1,
        PEER_MAC,
        v4("192.168.1.9"),
        MacAddr::ZERO,
        v4("192.168.1.1"),
        Some(0x2064),
    );
    req.resize(64, 0); // minimum frame padding
    let (h, out) = handle_arp(&mut n, &a, &req, 1, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    let expect = {
        let mut v = arp_frame(
            PEER_MAC,
            2,
            PORT1_MAC,
            v4("192.168.1.1"),
            PEER_MAC,
            v4("192.168.1.9"),
            Some(0x2064),
        );
        v[6..12].copy_from_slice(&PORT1_MAC.0);
        v.resize(64, 0);
        v
    };
    assert_eq!(out.data(), &expect[..]);
}

#[test]
fn arp_not_ours_ignored() {
    let mut n = neigh();
    let a = addrs();
    // Not one of our addresses.
    let req = arp_request_for("10.0.0.77", "10.0.0.2", PEER_MAC);
    let (h, out) = handle_arp(&mut n, &a, &req, 0, 0);
    assert_eq!(h, Handled::verdict(Verdict::NotOurs));
    assert_eq!(out.data(), &req[..]);
    // Ours, but on port 0 while this arrived on port 1.
    let req = arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC);
    let (h, _) = handle_arp(&mut n, &a, &req, 1, 0);
    assert_eq!(h.verdict, Verdict::NotOurs);
    assert_eq!(n.counters.arp_not_ours, 2);
    assert_eq!(n.counters.arp_requests_answered, 0);
    assert!(n.is_empty(), "nothing learned from requests not for us");
}

#[test]
fn vip_answering_switched_off() {
    let mut n = neigh();
    let mut a = addrs();
    a.set_answering(AddrClass::Vip, false);
    let req = arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC);
    let (h, out) = handle_arp(&mut n, &a, &req, 0, 0);
    assert_eq!(h.verdict, Verdict::Consumed);
    assert_eq!(out.data(), &req[..], "buffer untouched");
    assert_eq!(n.counters.arp_requests_suppressed, 1);
    // The port's own address and local addresses are still answered.
    for t in ["10.0.0.1", "10.0.0.50"] {
        let req = arp_request_for(t, "10.0.0.2", PEER_MAC);
        assert_eq!(handle_arp(&mut n, &a, &req, 0, 0).0.verdict, Verdict::Reply);
    }
    // ND too.
    let ns = ns_for("2001:db8::100", "2001:db8::2");
    let (h, _) = handle_nd(&mut n, &a, &ns, 0, 0);
    assert_eq!(h.verdict, Verdict::Consumed);
    assert_eq!(n.counters.nd_solicits_suppressed, 1);
    a.set_answering(AddrClass::Vip, true);
    assert_eq!(handle_nd(&mut n, &a, &ns, 0, 0).0.verdict, Verdict::Reply);
    assert_eq!(handle_arp(&mut n, &a, &req, 0, 0).0.verdict, Verdict::Reply);
    // Per-address switch.
    let a = OurAddrs::new([OurAddr {
        addr: ip("10.0.0.100"),
        port: 0,
        class: AddrClass::Vip,
        answer: false,
    }]);
    let req = arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC);
    assert_eq!(
        handle_arp(&mut n, &a, &req, 0, 0).0.verdict,
        Verdict::Consumed
    );
}

#[test]
fn malformed_arp_counted() {
    let mut n = neigh();
    let a = addrs();
    let good = arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC);
    let mut bad_op = good.clone();
    bad_op[21] = 3;
    let multicast_sender =
        arp_request_for("10.0.0.100", "10.0.0.2", MacAddr([1, 0, 0x5e, 0, 0, 1]));
    let bcast_ip = arp_request_for("10.0.0.100", "255.255.255.255", PEER_MAC);
    let mcast_ip = arp_request_for("10.0.0.100", "224.0.0.1", PEER_MAC);
    for f in [&bad_op, &multicast_sender, &bcast_ip, &mcast_ip] {
        let (h, out) = handle_arp(&mut n, &a, f, 0, 0);
        assert_eq!(h.verdict, Verdict::Malformed);
        assert_eq!(out.data(), &f[..]);
    }
    // A meta that does not describe the buffer (truncated after parsing).
    let meta = parse(&good).unwrap();
    let mut short = VecBuf::new(&good[..30]);
    assert_eq!(
        n.handle_arp(&a, &mut short, &meta, 0, 0).verdict,
        Verdict::Malformed
    );
    assert_eq!(n.counters.arp_malformed, 5);
    assert_eq!(n.counters.arp_requests_answered, 0);
    assert!(n.is_empty());
}

#[test]
fn arp_probe_answered_not_learned() {
    let mut n = neigh();
    let a = addrs();
    let req = arp_request_for("10.0.0.1", "0.0.0.0", PEER_MAC);
    let (h, out) = handle_arp(&mut n, &a, &req, 0, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    assert!(h.learned.is_none());
    assert_eq!(&out.data()[38..42], &[0, 0, 0, 0]);
    assert!(n.is_empty());
}

#[test]
fn garp_golden_and_learning() {
    let n = neigh();
    let mut b = [0u8; packets::MAX_FRAME_LEN];
    let len = n.build_announce(ip("10.0.0.100"), 0, &mut b).unwrap();
    let golden = arp_frame(
        MacAddr::BROADCAST,
        1,
        PORT0_MAC,
        v4("10.0.0.100"),
        MacAddr::ZERO,
        v4("10.0.0.100"),
        None,
    );
    assert_eq!(&b[..len], &golden[..]);
    // Tagged on a tagged port.
    let len = n.build_announce(ip("192.168.1.1"), 1, &mut b).unwrap();
    let golden = arp_frame(
        MacAddr::BROADCAST,
        1,
        PORT1_MAC,
        v4("192.168.1.1"),
        MacAddr::ZERO,
        v4("192.168.1.1"),
        Some(0x0064),
    );
    assert_eq!(&b[..len], &golden[..]);
    assert!(n.build_announce(ip("10.0.0.1"), 7, &mut b).is_err());

    // Receiving: a GARP never creates an entry, but updates a known one.
    let mut n = neigh();
    let a = addrs();
    let garp = |mac| {
        arp_frame(
            MacAddr::BROADCAST,
            1,
            mac,
            v4("10.0.0.254"),
            MacAddr::ZERO,
            v4("10.0.0.254"),
            None,
        )
    };
    let (h, _) = handle_arp(&mut n, &a, &garp(PEER_MAC), 0, 0);
    assert_eq!(h.verdict, Verdict::NotOurs);
    assert_eq!(h.refused, Some(DropReason::ArpUnsolicited));
    assert!(n.is_empty());
    assert!(n.insert_static(ip("10.0.0.254"), 0, PEER_MAC, 0));
    let (h, _) = handle_arp(&mut n, &a, &garp(PEER_MAC2), 0, SEC);
    assert_eq!(h.learned.unwrap().mac, PEER_MAC2);
    assert!(h.changed);
    assert_eq!(
        n.get(ip("10.0.0.254"), 0).unwrap().origin,
        NeighOrigin::Garp
    );
    assert_eq!(n.lookup(ip("10.0.0.254"), 0), Some(PEER_MAC2));
    assert_eq!(n.get(ip("10.0.0.254"), 0).unwrap().state, NeighState::Stale);
    assert_eq!(n.counters.mac_changed, 1);
    // A gratuitous ARP reply does the same.
    let garp_reply = arp_frame(
        MacAddr::BROADCAST,
        2,
        PEER_MAC,
        v4("10.0.0.254"),
        MacAddr::BROADCAST,
        v4("10.0.0.254"),
        None,
    );
    handle_arp(&mut n, &a, &garp_reply, 0, 2 * SEC);
    assert_eq!(n.lookup(ip("10.0.0.254"), 0), Some(PEER_MAC));
}

// ---- ND -------------------------------------------------------------------

/// Checks an NA frame: IPv6 hop limit 255, checksum by full recomputation
/// and by etherparse; returns (eth dst, ip src, ip dst, flags, target,
/// TLLA).
fn check_na(frame: &[u8]) -> (MacAddr, Ipv6Addr, Ipv6Addr, u8, Ipv6Addr, MacAddr) {
    let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
    let Some(etherparse::NetSlice::Ipv6(ip6)) = p.net else {
        panic!("not IPv6")
    };
    let h = ip6.header();
    assert_eq!(h.hop_limit(), 255);
    let src = h.source_addr();
    let dst = h.destination_addr();
    let Some(etherparse::TransportSlice::Icmpv6(icmp)) = p.transport else {
        panic!("not ICMPv6")
    };
    let msg = icmp.slice();
    assert_eq!(msg.len(), 32);
    assert_eq!(usize::from(h.payload_length()), 32);
    // Full recomputation over the pseudo-header: the sum comes out 0.
    assert_eq!(checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, msg), 0);
    let mut zeroed = msg.to_vec();
    zeroed[2] = 0;
    zeroed[3] = 0;
    assert_eq!(
        checksum::l4_checksum_v6(src, dst, ip_proto::ICMPV6, &zeroed),
        u16::from_be_bytes([msg[2], msg[3]])
    );
    // etherparse agrees.
    let c = icmp
        .icmp_type()
        .calc_checksum(src.octets(), dst.octets(), &msg[8..])
        .unwrap();
    assert_eq!(c, icmp.checksum());
    assert_eq!((msg[0], msg[1]), (136, 0));
    assert_eq!(&msg[24..26], &[2, 1], "target link-layer option");
    let eth = MacAddr(frame[..6].try_into().unwrap());
    (
        eth,
        src,
        dst,
        msg[4],
        Ipv6Addr::from(<[u8; 16]>::try_from(&msg[8..24]).unwrap()),
        MacAddr(msg[26..32].try_into().unwrap()),
    )
}

#[test]
fn nd_na_reply_golden() {
    let mut n = neigh();
    let a = addrs();
    let ns = ns_for("2001:db8::100", "2001:db8::2");
    let (h, out) = handle_nd(&mut n, &a, &ns, 0, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    assert_eq!(out.len(), 14 + 40 + 32);
    assert_eq!(&out.data()[6..14], &[2, 0, 0, 0, 0, 1, 0x86, 0xdd]);
    let (eth_dst, src, dst, flags, target, tlla) = check_na(out.data());
    assert_eq!(eth_dst, PEER_MAC);
    assert_eq!(src, v6("2001:db8::100"));
    assert_eq!(dst, v6("2001:db8::2"));
    assert_eq!(flags, 0x60, "solicited and override, not router");
    assert_eq!(target, v6("2001:db8::100"));
    assert_eq!(tlla, PORT0_MAC);
    // Golden bytes of the whole answer, built with etherparse.
    let golden = nd_frame(
        PORT0_MAC,
        PEER_MAC,
        v6("2001:db8::100"),
        v6("2001:db8::2"),
        255,
        136,
        0x60,
        v6("2001:db8::100"),
        Some(PORT0_MAC),
    );
    assert_eq!(out.data(), &golden[..]);
    assert_eq!(n.counters.nd_solicits_answered, 1);
    // The solicitor is not learned: rvs learns only what it resolves.
    assert_eq!((h.learned, h.changed, h.refused), (None, false, None));
    assert_eq!(n.lookup(ip("2001:db8::2"), 0), None);
}

#[test]
fn nd_ns_without_slla_grows_the_buffer() {
    let mut n = neigh();
    let a = addrs();
    // Unicast NS (a probe) with no source link-layer option: 24-byte
    // message, the answer needs 32.
    let ns = nd_frame(
        PEER_MAC2,
        PORT0_MAC,
        v6("2001:db8::3"),
        v6("2001:db8::1"),
        255,
        135,
        0,
        v6("2001:db8::1"),
        None,
    );
    let (h, out) = handle_nd(&mut n, &a, &ns, 0, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    assert!(h.learned.is_none());
    let (eth_dst, _, dst, flags, _, _) = check_na(out.data());
    assert_eq!((eth_dst, dst, flags), (PEER_MAC2, v6("2001:db8::3"), 0x60));
    // No tailroom: not answered, counted.
    let mut b = VecBuf::from_slice(&ns, 128, 0);
    let meta = parse(b.data()).unwrap();
    assert_eq!(
        n.handle_nd(&a, &mut b, &meta, 0, 0).verdict,
        Verdict::Malformed
    );
}

#[test]
fn nd_dad_answered_to_all_nodes() {
    let mut n = neigh();
    let a = addrs();
    let t = v6("2001:db8::100");
    let d = packets::solicited_node(t);
    let ns = nd_frame(
        PEER_MAC,
        packets::ipv6_multicast_mac(d),
        Ipv6Addr::UNSPECIFIED,
        d,
        255,
        135,
        0,
        t,
        None,
    );
    let (h, out) = handle_nd(&mut n, &a, &ns, 0, 0);
    assert_eq!(h.verdict, Verdict::Reply);
    let (eth_dst, _, dst, flags, _, _) = check_na(out.data());
    assert_eq!(eth_dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert_eq!(dst, packets::ALL_NODES);
    assert_eq!(flags, 0x20, "override only");
    assert!(n.is_empty());
}

#[test]
fn nd_bad_hop_limit_and_malformed() {
    let mut n = neigh();
    let a = addrs();
    let t = v6("2001:db8::100");
    let d = packets::solicited_node(t);
    let hop64 = nd_frame(
        PEER_MAC,
        packets::ipv6_multicast_mac(d),
        v6("2001:db8::2"),
        d,
        64,
        135,
        0,
        t,
        Some(PEER_MAC),
    );
    let (h, out) = handle_nd(&mut n, &a, &hop64, 0, 0);
    assert_eq!(h.verdict, Verdict::Malformed);
    assert_eq!(out.data(), &hop64[..]);
    assert_eq!(n.counters.nd_bad_hop_limit, 1);

    let good = ns_for("2001:db8::100", "2001:db8::2");
    let mut bad_sum = good.clone();
    bad_sum[14 + 40 + 2] ^= 0x01;
    assert_eq!(
        handle_nd(&mut n, &a, &bad_sum, 0, 0).0.verdict,
        Verdict::Malformed
    );
    assert_eq!(n.counters.nd_bad_checksum, 1);

    // Option length 0 (checksum fixed up so only the option is wrong).
    let fix = |mut f: Vec<u8>| {
        let s = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
        let d = packets::solicited_node(t);
        f[56] = 0;
        f[57] = 0;
        let c = checksum::l4_checksum_v6(s, d, ip_proto::ICMPV6, &f[54..]);
        f[56..58].copy_from_slice(&c.to_be_bytes());
        f
    };
    let mut zero_opt = good.clone();
    zero_opt[14 + 40 + 25] = 0;
    let mut code1 = good.clone();
    code1[14 + 40 + 1] = 1;
    let mut mcast_target = good.clone();
    mcast_target[14 + 40 + 8] = 0xff;
    let mut mcast_ll = good.clone();
    mcast_ll[14 + 40 + 26] = 0x01;
    let mut mcast_src = good.clone();
    mcast_src[14 + 8] = 0xff;
    for f in [zero_opt, code1, mcast_target, mcast_ll, mcast_src] {
        let f = fix(f);
        let (h, out) = handle_nd(&mut n, &a, &f, 0, 0);
        assert_eq!(h.verdict, Verdict::Malformed);
        assert_eq!(out.data(), &f[..]);
    }
    assert_eq!(n.counters.nd_malformed, 5);
    // NS for an address that is not ours.
    let other = ns_for("2001:db8::77", "2001:db8::2");
    assert_eq!(
        handle_nd(&mut n, &a, &other, 0, 0).0.verdict,
        Verdict::NotOurs
    );
    assert_eq!(n.counters.nd_not_ours, 1);
    assert_eq!(n.counters.nd_solicits_answered, 0);
    assert!(n.is_empty());
}

#[test]
fn ns_generation_and_unsolicited_na() {
    let n = neigh();
    let mut b = [0u8; packets::MAX_FRAME_LEN];
    let s = Solicit {
        target: ip("2001:db8::2"),
        port: 0,
        unicast: None,
    };
    let len = n.build_solicit(&s, &mut b).unwrap();
    let d = packets::solicited_node(v6("2001:db8::2"));
    let golden = nd_frame(
        PORT0_MAC,
        MacAddr([0x33, 0x33, 0xff, 0, 0, 2]),
        v6("fe80::1"),
        d,
        255,
        135,
        0,
        v6("2001:db8::2"),
        Some(PORT0_MAC),
    );
    assert_eq!(&b[..len], &golden[..]);
    // Unicast probe.
    let s = Solicit {
        unicast: Some(PEER_MAC),
        ..s
    };
    let len = n.build_solicit(&s, &mut b).unwrap();
    let golden = nd_frame(
        PORT0_MAC,
        PEER_MAC,
        v6("fe80::1"),
        v6("2001:db8::2"),
        255,
        135,
        0,
        v6("2001:db8::2"),
        Some(PORT0_MAC),
    );
    assert_eq!(&b[..len], &golden[..]);
    // Port 1 has no IPv6 source.
    let s = Solicit { port: 1, ..s };
    assert_eq!(n.build_solicit(&s, &mut b), Err(Error::Unsupported));
    // ARP request.
    let s = Solicit {
        target: ip("10.0.0.9"),
        port: 0,
        unicast: None,
    };
    let len = n.build_solicit(&s, &mut b).unwrap();
    let golden = arp_frame(
        MacAddr::BROADCAST,
        1,
        PORT0_MAC,
        v4("10.0.0.1"),
        MacAddr::ZERO,
        v4("10.0.0.9"),
        None,
    );
    assert_eq!(&b[..len], &golden[..]);
    // Unsolicited NA.
    let len = n.build_announce(ip("2001:db8::100"), 0, &mut b).unwrap();
    let (eth_dst, src, dst, flags, target, tlla) = check_na(&b[..len]);
    assert_eq!(eth_dst, MacAddr([0x33, 0x33, 0, 0, 0, 1]));
    assert_eq!(
        (src, dst, flags, target, tlla),
        (
            v6("2001:db8::100"),
            packets::ALL_NODES,
            0x20,
            v6("2001:db8::100"),
            PORT0_MAC
        )
    );
}

// ---- resolution -------------------------------------------------------------

fn payload_tag(b: &VecBuf) -> u8 {
    *b.data().last().unwrap()
}

#[test]
fn resolution_flow_queues_and_releases_in_order() {
    let mut n = neigh();
    let a = addrs();
    let hop = ip("10.0.0.254");
    // First packet: queued, one ARP request asked for.
    let r = n.output(data_packet(0), hop, 0, 0);
    assert!(matches!(r.output, Output::Queued));
    let s = r.solicit.unwrap();
    assert_eq!(
        s,
        Solicit {
            target: hop,
            port: 0,
            unicast: None
        }
    );
    let mut b = [0u8; packets::MAX_FRAME_LEN];
    let len = n.build_solicit(&s, &mut b).unwrap();
    assert_eq!(
        &b[..len],
        &arp_frame(
            MacAddr::BROADCAST,
            1,
            PORT0_MAC,
            v4("10.0.0.1"),
            MacAddr::ZERO,
            v4("10.0.0.254"),
            None
        )[..]
    );
    // Two more queue without a new request (rate limit), the rest drop.
    for tag in 1..5u8 {
        let r = n.output(data_packet(tag), hop, 0, SEC / 10 * u64::from(tag));
        assert!(r.solicit.is_none());
        match r.output {
            Output::Queued => assert!(tag < 3),
            Output::Dropped(p) => {
                assert!(tag >= 3);
                assert_eq!(payload_tag(&p), tag, "the newest is dropped");
            }
            Output::Send(_) => panic!("sent before resolution"),
        }
    }
    assert_eq!(n.counters.neigh_queue_full, 2);
    assert_eq!(n.counters.queued, 3);
    assert_eq!(n.counters.solicits_sent, 1);
    assert_eq!(n.queued(), 3);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Incomplete);
    assert_eq!(n.lookup(hop, 0), None);
    // The reply arrives.
    let (h, _) = handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.254", PEER_MAC, "10.0.0.1"),
        0,
        SEC / 2,
    );
    assert_eq!(h.verdict, Verdict::Consumed);
    let l = h.learned.unwrap();
    assert_eq!((l.ip, l.port, l.mac, l.pending), (hop, 0, PEER_MAC, 3));
    let mut sent = Vec::new();
    assert_eq!(n.release(l.ip, l.port, |p| sent.push(p)), 3);
    let tags: Vec<u8> = sent.iter().map(payload_tag).collect();
    assert_eq!(tags, [0, 1, 2]);
    for p in &sent {
        assert_eq!(&p.data()[..6], &PEER_MAC.0);
        assert_eq!(&p.data()[6..12], &PORT0_MAC.0);
        assert_eq!(&p.data()[12..], &data_packet(payload_tag(p)).data()[12..]);
    }
    assert_eq!(n.counters.released, 3);
    assert_eq!(n.queued(), 0);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    // From now on packets go straight out.
    let r = n.output(data_packet(9), hop, 0, SEC);
    assert!(r.solicit.is_none());
    let Output::Send(p) = r.output else {
        panic!("not sent")
    };
    assert_eq!(&p.data()[..6], &PEER_MAC.0);
    assert_eq!(n.release(hop, 0, |_| panic!("nothing left")), 0);
}

#[test]
fn resolution_by_neighbour_advertisement() {
    let mut n = neigh();
    let a = addrs();
    let hop = ip("2001:db8::2");
    let r = n.output(data_packet(0), hop, 0, 0);
    assert!(matches!(r.output, Output::Queued));
    assert!(r.solicit.is_some());
    // An unsolicited NA for a neighbour we are resolving resolves it
    // (stale); a solicited one confirms it.
    let na = nd_frame(
        PEER_MAC,
        PORT0_MAC,
        v6("2001:db8::2"),
        v6("fe80::1"),
        255,
        136,
        0x60,
        v6("2001:db8::2"),
        Some(PEER_MAC),
    );
    let (h, _) = handle_nd(&mut n, &a, &na, 0, SEC / 2);
    assert_eq!(h.verdict, Verdict::Consumed);
    assert_eq!(h.learned.unwrap().pending, 1);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    let mut got = 0;
    n.release(hop, 0, |p| {
        assert_eq!(&p.data()[..6], &PEER_MAC.0);
        got += 1;
    });
    assert_eq!(got, 1);
    // A solicited NA with a different MAC while nothing is probing it:
    // refused, nothing changes (with or without override).
    let na2 = nd_frame(
        PEER_MAC2,
        PORT0_MAC,
        v6("2001:db8::2"),
        v6("fe80::1"),
        255,
        136,
        0x40,
        v6("2001:db8::2"),
        Some(PEER_MAC2),
    );
    let (h, _) = handle_nd(&mut n, &a, &na2, 0, SEC);
    assert!(h.learned.is_none());
    assert_eq!(h.refused, Some(DropReason::NdMacChangeRefused));
    assert_eq!(n.lookup(hop, 0), Some(PEER_MAC));
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    let na3 = nd_frame(
        PEER_MAC2,
        PORT0_MAC,
        v6("2001:db8::2"),
        v6("fe80::1"),
        255,
        136,
        0x60,
        v6("2001:db8::2"),
        Some(PEER_MAC2),
    );
    let (h, _) = handle_nd(&mut n, &a, &na3, 0, SEC);
    assert_eq!(h.refused, Some(DropReason::NdMacChangeRefused));
    assert_eq!(n.lookup(hop, 0), Some(PEER_MAC));
    // Once the entry is stale and probed, the answer to the probe with
    // override replaces the MAC.
    let r = n.output(data_packet(1), hop, 0, 40 * SEC);
    assert!(matches!(r.output, Output::Send(_)));
    assert_eq!(r.solicit.map(|s| s.unicast), Some(Some(PEER_MAC)));
    let (h, _) = handle_nd(&mut n, &a, &na3, 0, 40 * SEC);
    assert!(h.changed);
    assert_eq!(n.lookup(hop, 0), Some(PEER_MAC2));
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    // An NA for someone we never asked about is not learned.
    let na4 = nd_frame(
        PEER_MAC,
        packets::ipv6_multicast_mac(packets::ALL_NODES),
        v6("2001:db8::9"),
        packets::ALL_NODES,
        255,
        136,
        0x20,
        v6("2001:db8::9"),
        Some(PEER_MAC),
    );
    let (h, _) = handle_nd(&mut n, &a, &na4, 0, SEC);
    assert_eq!(h.verdict, Verdict::NotOurs);
    assert_eq!(h.refused, Some(DropReason::NdUnsolicited));
    assert!(n.get(ip("2001:db8::9"), 0).is_none());
    assert_eq!(n.counters.nd_adverts_received, 5);
}

#[test]
fn solicitations_rate_limited_then_resolution_fails() {
    let mut n = neigh();
    let hop = ip("10.0.0.254");
    let r = n.output(data_packet(0), hop, 0, 0);
    assert!(r.solicit.is_some());
    let r = n.output(data_packet(1), hop, 0, SEC - 1);
    assert!(r.solicit.is_none(), "at most one per second");
    let mut events = Vec::new();
    let tick = |n: &mut Neigh<VecBuf>, now| {
        let mut ev = Vec::new();
        n.tick(now, |e| ev.push(e));
        ev
    };
    assert!(tick(&mut n, SEC / 2).is_empty());
    let r = n.output(data_packet(2), hop, 0, SEC);
    assert!(r.solicit.is_some(), "second request after a second");
    events.extend(tick(&mut n, SEC + SEC / 2)); // not due yet
    assert!(events.is_empty());
    let ev = tick(&mut n, 2 * SEC);
    assert!(
        matches!(ev.as_slice(), [TickEvent::Solicit(s)] if s.target == hop && s.unicast.is_none())
    );
    assert_eq!(n.counters.solicits_sent, 3);
    // Third probe unanswered for a retrans time: give up, packets back.
    assert!(tick(&mut n, 3 * SEC - 1).is_empty());
    let ev = tick(&mut n, 3 * SEC);
    let tags: Vec<u8> = ev
        .iter()
        .map(|e| match e {
            TickEvent::Dropped(p) => payload_tag(p),
            TickEvent::Solicit(_) => panic!("no more solicitations"),
        })
        .collect();
    assert_eq!(tags, [0, 1, 2]);
    assert_eq!(n.counters.resolution_failed, 1);
    assert_eq!(n.counters.queue_dropped_failed, 3);
    assert!(n.is_empty());
    assert_eq!(n.queued(), 0);
    // A new packet starts over.
    let r = n.output(data_packet(3), hop, 0, 4 * SEC);
    assert!(matches!(r.output, Output::Queued));
    assert!(r.solicit.is_some());
}

#[test]
fn aging_reachable_stale_removed() {
    let mut n = neigh();
    let a = addrs();
    let hop = ip("10.0.0.254");
    let _ = n.output(data_packet(0), hop, 0, 0);
    handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.254", PEER_MAC, "10.0.0.1"),
        0,
        0,
    );
    n.release(hop, 0, drop);
    let c = *n.config();
    let mut none = |_: TickEvent<VecBuf>| panic!("no events");
    n.tick(c.reachable_time - 1, &mut none);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    n.tick(c.reachable_time, &mut none);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Stale);
    // A stale entry is still used, and probed by unicast, once a second.
    let t = c.reachable_time + SEC;
    let r = n.output(data_packet(1), hop, 0, t);
    assert!(matches!(r.output, Output::Send(_)));
    assert_eq!(
        r.solicit,
        Some(Solicit {
            target: hop,
            port: 0,
            unicast: Some(PEER_MAC)
        })
    );
    assert!(n.output(data_packet(1), hop, 0, t + 1).solicit.is_none());
    // A reply confirms it again.
    handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.254", PEER_MAC, "10.0.0.1"),
        0,
        t + 2,
    );
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Reachable);
    // Left alone it goes stale, then is removed after the stale time.
    let stale_at = t + 2 + c.reachable_time;
    n.tick(stale_at, &mut none);
    assert_eq!(n.get(hop, 0).unwrap().state, NeighState::Stale);
    n.tick(stale_at + c.stale_time - 1, &mut none);
    assert!(n.get(hop, 0).is_some());
    n.tick(stale_at + c.stale_time, &mut none);
    assert!(n.get(hop, 0).is_none());
    assert_eq!(n.counters.aged_out, 1);
}

#[test]
fn stale_entry_removed_when_probes_unanswered() {
    let mut n = neigh();
    let hop = ip("10.0.0.254");
    assert!(n.insert_static(hop, 0, PEER_MAC, 0));
    let c = *n.config();
    let mut t = c.reachable_time;
    for _ in 0..c.max_probes {
        let r = n.output(data_packet(0), hop, 0, t);
        assert!(r.solicit.is_some());
        t += c.retrans_time;
    }
    n.tick(t, |_| {});
    assert!(n.get(hop, 0).is_none());
    assert_eq!(n.counters.resolution_failed, 1);
}

#[test]
fn table_full_evicts_stale_then_refuses() {
    let mut n = neigh();
    let a = addrs();
    // Fill with neighbours resolved, then gone stale.
    for i in 0..8u8 {
        let spa = format!("10.0.0.{}", 10 + i);
        let _ = n.output(data_packet(i), ip(&spa), 0, u64::from(i));
        handle_arp(
            &mut n,
            &a,
            &arp_reply_from(&spa, PEER_MAC, "10.0.0.1"),
            0,
            u64::from(i),
        );
        n.release(ip(&spa), 0, |_| {});
    }
    let t = 31 * SEC;
    n.tick(t, |_| {});
    assert!(n.entries().all(|e| e.state == NeighState::Stale));
    assert_eq!(n.len(), 8);
    // A new next hop evicts the longest-stale one.
    let r = n.output(data_packet(0), ip("10.0.0.200"), 0, t + 100);
    assert!(matches!(r.output, Output::Queued));
    assert_eq!(n.counters.evicted, 1);
    assert!(n.get(ip("10.0.0.10"), 0).is_none());
    // Fill the rest with incomplete entries: nothing evictable.
    for i in 0..7u8 {
        let _ = n.output(data_packet(i), ip(&format!("10.0.1.{i}")), 0, t + 200);
    }
    assert_eq!(n.len(), 8);
    let r = n.output(data_packet(0), ip("10.0.2.1"), 0, t + 300);
    assert!(matches!(r.output, Output::Dropped(_)));
    assert!(r.solicit.is_none());
    assert_eq!(n.counters.table_full, 1);
    assert_eq!(n.counters.evicted, 8);
    // Total queue limit (8): the first incomplete got 1, then 7 more.
    assert_eq!(n.queued(), 8);
    let r = n.output(data_packet(0), ip("10.0.0.200"), 0, t + 400);
    assert!(matches!(r.output, Output::Dropped(_)));
    assert_eq!(n.counters.neigh_queue_full, 1);
}

#[test]
fn output_refuses_non_frames_and_unknown_ports() {
    let mut n = neigh();
    let r = n.output(VecBuf::new(&[0; 10]), ip("10.0.0.2"), 0, 0);
    assert!(matches!(r.output, Output::Dropped(_)));
    let r = n.output(data_packet(0), ip("10.0.0.2"), 9, 0);
    assert!(matches!(r.output, Output::Dropped(_)));
    assert_eq!(n.counters.bad_frame, 2);
    assert!(n.is_empty());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut n = neigh();
    let a = addrs();
    let seeds = [
        arp_request_for("10.0.0.100", "10.0.0.2", PEER_MAC),
        ns_for("2001:db8::100", "2001:db8::2"),
    ];
    let mut x: u32 = 1;
    for round in 0..4000u32 {
        let mut f = seeds[(round % 2) as usize].clone();
        for _ in 0..3 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let i = (x >> 8) as usize % f.len();
            f[i] = (x >> 24) as u8;
        }
        let cut = (x as usize) % (f.len() + 1);
        f.truncate(cut.max(f.len() - 8));
        let mut b = VecBuf::from_slice(&f, 64, (x % 16) as usize);
        if let Ok(meta) = parse(b.data()) {
            let _ = n.handle_arp(&a, &mut b, &meta, 0, u64::from(round));
            let _ = n.handle_nd(&a, &mut b, &meta, 0, u64::from(round));
        }
    }
}

#[test]
fn conflicts_counted_never_learned() {
    let mut n = neigh();
    let a = addrs();
    // The HA peer announces our VIP: not learned, counted.
    let garp = arp_frame(
        MacAddr::BROADCAST,
        1,
        PEER_MAC,
        v4("10.0.0.100"),
        MacAddr::ZERO,
        v4("10.0.0.100"),
        None,
    );
    let (h, out) = handle_arp(&mut n, &a, &garp, 0, 0);
    assert_eq!(h, Handled::verdict(Verdict::Consumed));
    assert_eq!(out.data(), &garp[..]);
    // A request from someone using our port address.
    let req = arp_request_for("10.0.0.100", "10.0.0.1", PEER_MAC);
    assert_eq!(
        handle_arp(&mut n, &a, &req, 0, 0).0.verdict,
        Verdict::Consumed
    );
    // Our own GARP looped back is not a conflict.
    let mut b = [0u8; packets::MAX_FRAME_LEN];
    let len = n.build_announce(ip("10.0.0.100"), 0, &mut b).unwrap();
    handle_arp(&mut n, &a, &b[..len], 0, 0);
    // ND: an NA for our VIP from another MAC, an NS from our address.
    let na = nd_frame(
        PEER_MAC,
        MacAddr([0x33, 0x33, 0, 0, 0, 1]),
        v6("2001:db8::100"),
        packets::ALL_NODES,
        255,
        136,
        0x20,
        v6("2001:db8::100"),
        Some(PEER_MAC),
    );
    assert_eq!(
        handle_nd(&mut n, &a, &na, 0, 0).0.verdict,
        Verdict::Consumed
    );
    let ns = ns_for("2001:db8::100", "2001:db8::1");
    assert_eq!(
        handle_nd(&mut n, &a, &ns, 0, 0).0.verdict,
        Verdict::Consumed
    );
    assert_eq!(n.counters.addr_conflict, 4);
    assert_eq!(n.counters.arp_requests_answered, 0);
    assert_eq!(n.counters.nd_solicits_answered, 0);
    assert!(n.is_empty());
}

#[test]
fn reply_to_port_source_address_resolves() {
    // The port's address is not among `addrs`, but our requests use it as
    // their source: replies to it still resolve.
    let mut n = neigh();
    let a = OurAddrs::new([]);
    let hop = ip("10.0.0.254");
    let _ = n.output(data_packet(0), hop, 0, 0);
    let (h, _) = handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.254", PEER_MAC, "10.0.0.1"),
        0,
        1,
    );
    assert_eq!(h.verdict, Verdict::Consumed);
    assert_eq!(h.learned.unwrap().pending, 1);
    // A reply sent to our MAC for a neighbour this worker never asked
    // about is not learned here (refused as unsolicited), but offered:
    // with several workers, RSS may deliver the answer to a worker other
    // than the one that asked, and control relays it to the others, which
    // take it only for a resolution of their own.
    let (h, _) = handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.9", PEER_MAC, "10.0.0.1"),
        0,
        1,
    );
    assert_eq!(h.learned.map(|l| l.pending), Some(0));
    assert_eq!(
        (h.changed, h.refused),
        (false, Some(DropReason::ArpUnsolicited))
    );
    assert!(n.get(ip("10.0.0.9"), 0).is_none());
    assert_eq!(n.counters.arp_replies_received, 2);
}

// ---- strict learning --------------------------------------------------------

/// Port 0 holds 10.0.0.0/24 and 2001:db8::/64, port 1 192.168.1.0/24.
fn guarded(policy: LearnPolicy) -> Neigh<VecBuf> {
    let mut n = neigh();
    let routes = crate::route::RouteTableBuilder::new()
        .connected(0, ip("10.0.0.1"), 24)
        .connected(0, ip("2001:db8::1"), 64)
        .connected(1, ip("192.168.1.1"), 24)
        .build()
        .unwrap();
    n.set_guard(routes, [policy, policy]);
    n
}

#[test]
fn answers_are_learned_only_on_the_port_that_holds_the_address() {
    let mut n = guarded(LearnPolicy::default());
    let a = addrs();
    // We resolve 10.0.0.9 on port 0; its answer arrives on port 1.
    let _ = n.output(data_packet(0), ip("10.0.0.9"), 0, 0);
    let reply = arp_frame(
        PORT1_MAC,
        2,
        PEER_MAC,
        v4("10.0.0.9"),
        PORT1_MAC,
        v4("192.168.1.1"),
        None,
    );
    let (h, _) = handle_arp(&mut n, &a, &reply, 1, 1);
    assert_eq!(
        (h.refused, h.changed),
        (Some(DropReason::ArpWrongPort), false)
    );
    assert!(n.get(ip("10.0.0.9"), 1).is_none());
    assert_eq!(
        n.get(ip("10.0.0.9"), 0).unwrap().state,
        NeighState::Incomplete
    );
    // On port 0 it resolves.
    let (h, _) = handle_arp(
        &mut n,
        &a,
        &arp_reply_from("10.0.0.9", PEER_MAC, "10.0.0.1"),
        0,
        2,
    );
    assert!(h.changed && h.refused.is_none());
    assert_eq!(
        n.get(ip("10.0.0.9"), 0).unwrap().origin,
        NeighOrigin::Resolved
    );
    // Link-local IPv6 is on every link: an NA answering our NS resolves.
    let hop = ip("fe80::2");
    let _ = n.output(data_packet(1), hop, 0, 3);
    let na = nd_frame(
        PEER_MAC,
        PORT0_MAC,
        v6("fe80::2"),
        v6("fe80::1"),
        255,
        136,
        0x60,
        v6("fe80::2"),
        Some(PEER_MAC),
    );
    let (h, _) = handle_nd(&mut n, &a, &na, 0, 4);
    assert!(h.changed, "{h:?}");
    assert_eq!(n.lookup(hop, 0), Some(PEER_MAC));
}

#[test]
fn a_solicitation_from_a_known_neighbour_with_another_mac_is_refused() {
    let mut n = guarded(LearnPolicy::default());
    let a = addrs();
    assert!(n.insert_static(ip("2001:db8::2"), 0, PEER_MAC2, 0));
    // NS for our VIP from 2001:db8::2 with PEER_MAC as SLLA: answered, but
    // the claim is refused and the entry keeps its MAC.
    let (h, _) = handle_nd(&mut n, &a, &ns_for("2001:db8::100", "2001:db8::2"), 0, 1);
    assert_eq!(h.verdict, Verdict::Reply);
    assert_eq!(h.refused, Some(DropReason::NdMacChangeRefused));
    assert_eq!(n.lookup(ip("2001:db8::2"), 0), Some(PEER_MAC2));
    assert_eq!(
        n.get(ip("2001:db8::2"), 0).unwrap().origin,
        NeighOrigin::Static
    );
}

#[test]
fn relayed_answers_resolve_only_what_is_being_resolved() {
    let mut n = guarded(LearnPolicy::default());
    let hop = ip("10.0.0.9");
    assert!(
        !n.learn_relayed(hop, 0, PEER_MAC, 0),
        "nothing asked: nothing created"
    );
    assert!(n.is_empty());
    let _ = n.output(data_packet(0), hop, 0, 0);
    assert!(n.learn_relayed(hop, 0, PEER_MAC, 1));
    let e = n.get(hop, 0).unwrap();
    assert_eq!(
        (e.mac, e.state, e.origin),
        (PEER_MAC, NeighState::Reachable, NeighOrigin::Relayed)
    );
    // Known and not probed: another MAC is not taken.
    assert!(!n.learn_relayed(hop, 0, PEER_MAC2, 2));
    assert_eq!(n.lookup(hop, 0), Some(PEER_MAC));
}
