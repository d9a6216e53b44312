//! Hostile input through the whole packet path (issue 16, items 1-5):
//! each packet is dropped under its own named reason, changes no state
//! (no neighbour re-pointed, no connection created), and a legitimate
//! packet next to it still goes through. Byte buffers, no EAL.

mod common;

use common::*;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::neigh::{LearnPolicy, NeighOrigin, NeighState};
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::route::RouteTableBuilder;
use dataplane::sched::SchedKind;
use dataplane::snapshot::{PortGuard, Role, RpFilter, Service, Snapshot, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use etherparse::PacketBuilder;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const MAC_EVIL: [u8; 6] = [0x02, 0xee, 0xee, 0xee, 0xee, 0xee];
const S: u64 = 1_000_000_000;

#[derive(Default)]
struct Collect {
    tx: Vec<(u16, Vec<u8>)>,
    events: Vec<Event>,
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
    fn to_kernel(&mut self, _port: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        Err(pkt)
    }
}

fn nat_service() -> Service {
    service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 8080)],
        FwdMode::Nat,
    )
}

fn snap_with(guards: &[(u16, PortGuard)], services: Vec<Service>) -> Arc<Snapshot> {
    let mut b = SnapshotBuilder::new(1, ports(), routes()).role(Role::Master);
    for s in services {
        b = b.service(s);
    }
    for (p, g) in guards {
        b = b.guard(*p, *g);
    }
    Arc::new(b.build().expect("snapshot"))
}

fn pipeline(snap: Arc<Snapshot>) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        snap,
        HashKey::from_seed(7),
        counters.clone(),
    )
    .expect("pipeline");
    (p, counters)
}

fn drop_count(c: &WorkerCounters, name: &str) -> u64 {
    let d = c.drops();
    d.iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no drop reason {name}"))
        .1
}

/// Every drop reason that counted something, by name.
fn drops(c: &WorkerCounters) -> Vec<(&'static str, u64)> {
    c.drops().into_iter().filter(|d| d.1 != 0).collect()
}

fn arp_request(sender_mac: [u8; 6], sender_ip: &str, target_ip: &str) -> Vec<u8> {
    let s: Ipv4Addr = sender_ip.parse().expect("ip");
    let t: Ipv4Addr = target_ip.parse().expect("ip");
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&s.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&t.octets());
    f
}

/// A NAT director whose real server rs1 (198.19.0.11) was resolved the
/// regular way: a SYN, our ARP request, rs1's reply.
fn resolved(guards: &[(u16, PortGuard)]) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let (mut p, c) = pipeline(snap_with(guards, vec![nat_service()]));
    let mut out = Collect::default();
    let syn = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, true, false, b"");
    p.process(VecBuf::new(&syn), CLIENT_PORT, S, false, &mut out);
    let reply = arp_reply(MAC_RS1, "198.19.0.11", MAC_P1, "198.19.0.1");
    p.process(VecBuf::new(&reply), SERVER_PORT, S + 1, false, &mut out);
    let e = p.neigh().get(v4("198.19.0.11"), SERVER_PORT).expect("rs1");
    assert_eq!((e.mac, e.state), (MacAddr(MAC_RS1), NeighState::Reachable));
    assert_eq!(e.origin, NeighOrigin::Resolved);
    assert_eq!(c.neigh_changes.get(), 1, "the answer changed the table");
    assert_eq!(drops(&c), vec![], "nothing refused so far");
    out.tx.clear();
    (p, c, out)
}

/// Sends a new connection's SYN and returns the MAC it left for.
fn next_syn_goes_to(p: &mut Pipeline<VecBuf>, out: &mut Collect, sport: u16, now: u64) -> [u8; 6] {
    out.tx.clear();
    let syn = tcp4("198.18.0.10", sport, "198.18.0.100", 80, true, false, b"");
    p.process(VecBuf::new(&syn), CLIENT_PORT, now, false, out);
    let (port, f) = out.tx.last().expect("forwarded");
    assert_eq!(*port, SERVER_PORT);
    check_out(f).4
}

// ---- item 1: neighbour table poisoning -------------------------------------

#[test]
fn spoofed_unicast_arp_reply_does_not_repoint_a_real_server() {
    let (mut p, c, mut out) = resolved(&[]);
    // From the server segment, to our MAC, claiming rs1's address.
    let spoof = arp_reply(MAC_EVIL, "198.19.0.11", MAC_P1, "198.19.0.1");
    for i in 0..3 {
        p.process(VecBuf::new(&spoof), SERVER_PORT, 2 * S + i, false, &mut out);
    }
    assert_eq!(
        p.neigh().lookup(v4("198.19.0.11"), SERVER_PORT),
        Some(MacAddr(MAC_RS1))
    );
    assert_eq!(drops(&c), vec![("arp_mac_change_refused", 3)]);
    assert_eq!(drop_count(&c, "not_ours"), 0);
    assert_eq!(c.neigh_changes.get(), 1);
    assert!(out.events.len() == 1, "nothing relayed: {:?}", out.events);
    assert_eq!(next_syn_goes_to(&mut p, &mut out, 40001, 3 * S), MAC_RS1);
}

#[test]
fn unsolicited_arp_reply_creates_no_entry() {
    let (mut p, c) = pipeline(snap_with(&[], vec![nat_service()]));
    let mut out = Collect::default();
    let r = arp_reply(MAC_EVIL, "198.19.0.77", MAC_P1, "198.19.0.1");
    p.process(VecBuf::new(&r), SERVER_PORT, S, false, &mut out);
    assert!(p.neigh().is_empty());
    assert_eq!(drops(&c), vec![("arp_unsolicited", 1)]);
    assert_eq!(c.neigh_changes.get(), 0);
    // With arp_accept (Linux arp_accept=1) the same reply is learned,
    // stale, and says where it came from.
    let accept = PortGuard {
        learn: LearnPolicy {
            arp_accept: true,
            ..LearnPolicy::default()
        },
        ..PortGuard::default()
    };
    let (mut p, c) = pipeline(snap_with(&[(SERVER_PORT, accept)], vec![nat_service()]));
    p.process(VecBuf::new(&r), SERVER_PORT, S, false, &mut out);
    let e = p
        .neigh()
        .get(v4("198.19.0.77"), SERVER_PORT)
        .expect("learned");
    assert_eq!(
        (e.state, e.origin),
        (NeighState::Stale, NeighOrigin::Unsolicited)
    );
    assert_eq!(c.neigh_changes.get(), 1);
    assert_eq!(drops(&c), vec![]);
}

#[test]
fn arp_for_a_real_server_on_the_client_port_is_not_learned() {
    let (mut p, c, mut out) = resolved(&[]);
    // rs1's address answered on the client port (to our client-side
    // address and MAC).
    let r = arp_reply(MAC_EVIL, "198.19.0.11", MAC_P0, "198.18.0.1");
    p.process(VecBuf::new(&r), CLIENT_PORT, 2 * S, false, &mut out);
    assert!(p.neigh().get(v4("198.19.0.11"), CLIENT_PORT).is_none());
    // A gratuitous ARP for it there is refused the same way.
    let g = arp_request(MAC_EVIL, "198.19.0.11", "198.19.0.11");
    p.process(VecBuf::new(&g), CLIENT_PORT, 2 * S, false, &mut out);
    assert_eq!(drops(&c), vec![("arp_wrong_port", 2)]);
    assert_eq!(next_syn_goes_to(&mut p, &mut out, 40001, 3 * S), MAC_RS1);
}

#[test]
fn arp_request_with_a_real_server_as_sender_teaches_nothing() {
    let (mut p, c, mut out) = resolved(&[]);
    // "Who has 198.19.0.1? Tell 198.19.0.11 at MAC_EVIL": answered (to the
    // asker), but the claim is refused.
    let req = arp_request(MAC_EVIL, "198.19.0.11", "198.19.0.1");
    p.process(VecBuf::new(&req), SERVER_PORT, 2 * S, false, &mut out);
    let (port, answer) = out.tx.last().expect("answered");
    assert_eq!((*port, &answer[0..6]), (SERVER_PORT, &MAC_EVIL[..]));
    assert_eq!(drops(&c), vec![("arp_mac_change_refused", 1)]);
    assert_eq!(c.neigh_changes.get(), 1);
    assert_eq!(next_syn_goes_to(&mut p, &mut out, 40001, 3 * S), MAC_RS1);
}

#[test]
fn gratuitous_arp_follows_linux_and_can_be_switched_off() {
    // Linux's default: a gratuitous ARP updates a known neighbour (a
    // real server or router failing over announces itself so).
    let (mut p, c, mut out) = resolved(&[]);
    let g = arp_request(MAC_RS2, "198.19.0.11", "198.19.0.11");
    p.process(VecBuf::new(&g), SERVER_PORT, 2 * S, false, &mut out);
    let e = p.neigh().get(v4("198.19.0.11"), SERVER_PORT).expect("rs1");
    assert_eq!((e.mac, e.origin), (MacAddr(MAC_RS2), NeighOrigin::Garp));
    assert_eq!(c.neigh_changes.get(), 2);
    assert_eq!(drops(&c), vec![]);
    // garp_update off: refused, counted, nothing changes.
    let strict = PortGuard {
        learn: LearnPolicy {
            garp_update: false,
            ..LearnPolicy::default()
        },
        ..PortGuard::default()
    };
    let (mut p, c, mut out) = resolved(&[(SERVER_PORT, strict)]);
    p.process(VecBuf::new(&g), SERVER_PORT, 2 * S, false, &mut out);
    assert_eq!(
        p.neigh().lookup(v4("198.19.0.11"), SERVER_PORT),
        Some(MacAddr(MAC_RS1))
    );
    assert_eq!(drops(&c), vec![("arp_mac_change_refused", 1)]);
    assert_eq!(c.neigh_changes.get(), 1);
}

/// A neighbour advertisement (RFC 4861 4.4) for `target` with `flags`
/// and a target link-layer option, built with etherparse.
fn na(src_mac: [u8; 6], target: &str, flags: u8, tlla: [u8; 6]) -> Vec<u8> {
    let t: Ipv6Addr = target.parse().expect("ip");
    let dst: Ipv6Addr = "ff02::1".parse().expect("ip");
    let mut body = vec![flags, 0, 0, 0];
    body.extend_from_slice(&t.octets());
    body.extend_from_slice(&[2, 1]);
    body.extend_from_slice(&tlla);
    let mut out = Vec::new();
    PacketBuilder::ethernet2(src_mac, [0x33, 0x33, 0, 0, 0, 1])
        .ipv6(t.octets(), dst.octets(), 255)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 136,
            code_u8: 0,
            bytes5to8: [flags, 0, 0, 0],
        })
        .write(&mut out, &body[4..])
        .expect("na");
    out
}

#[test]
fn unsolicited_na_with_override_follows_nd_override() {
    let rs = "2001:db8:1::11";
    for nd_override in [true, false] {
        let g = PortGuard {
            learn: LearnPolicy {
                nd_override,
                ..LearnPolicy::default()
            },
            ..PortGuard::default()
        };
        let (mut p, c) = pipeline(snap_with(&[(SERVER_PORT, g)], vec![nat_service()]));
        let mut out = Collect::default();
        p.learn(v6(rs), SERVER_PORT, MacAddr(MAC_RS1), S, &mut out);
        // Unsolicited (S=0), override (O=1), another MAC.
        let f = na(MAC_EVIL, rs, 0x20, MAC_EVIL);
        p.process(VecBuf::new(&f), SERVER_PORT, 2 * S, false, &mut out);
        let e = p.neigh().get(v6(rs), SERVER_PORT).expect("rs");
        if nd_override {
            assert_eq!((e.mac, e.origin), (MacAddr(MAC_EVIL), NeighOrigin::Advert));
            assert_eq!(c.neigh_changes.get(), 1);
            assert_eq!(drops(&c), vec![]);
        } else {
            assert_eq!(e.mac, MacAddr(MAC_RS1));
            assert_eq!(c.neigh_changes.get(), 0);
            assert_eq!(drops(&c), vec![("nd_mac_change_refused", 1)]);
        }
        // An unsolicited NA for an address nobody resolves: not learned.
        let f = na(MAC_EVIL, "2001:db8:1::99", 0x20, MAC_EVIL);
        p.process(VecBuf::new(&f), SERVER_PORT, 2 * S, false, &mut out);
        assert!(p.neigh().get(v6("2001:db8:1::99"), SERVER_PORT).is_none());
        assert_eq!(drop_count(&c, "nd_unsolicited"), 1);
        // An NA for a server-side address arriving on the client port.
        let f = na(MAC_EVIL, rs, 0x20, MAC_EVIL);
        p.process(VecBuf::new(&f), CLIENT_PORT, 2 * S, false, &mut out);
        assert_eq!(drop_count(&c, "nd_wrong_port"), 1);
        assert!(p.neigh().get(v6(rs), CLIENT_PORT).is_none());
    }
}

#[test]
fn relayed_answers_are_taken_only_for_a_resolution_of_ours() {
    let (mut p, c, mut out) = resolved(&[]);
    // Another worker saw an answer for rs1 with another MAC: this worker
    // is not probing rs1, so it keeps what it has.
    p.learn_relayed(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_EVIL),
        2 * S,
        &mut out,
    );
    assert_eq!(
        p.neigh().lookup(v4("198.19.0.11"), SERVER_PORT),
        Some(MacAddr(MAC_RS1))
    );
    // Nor does it create entries nobody here asked for.
    p.learn_relayed(
        v4("198.19.0.50"),
        SERVER_PORT,
        MacAddr(MAC_EVIL),
        2 * S,
        &mut out,
    );
    assert!(p.neigh().get(v4("198.19.0.50"), SERVER_PORT).is_none());
    assert_eq!(c.neigh_changes.get(), 1);
}

// ---- item 2: VLAN leak -------------------------------------------------------

#[test]
fn tagged_frames_on_an_untagged_port_are_dropped() {
    let (mut p, c, mut out) = resolved(&[]);
    for tag in [Some(100u16), None] {
        // 802.1Q and QinQ (0x88a8 outer, 0x8100 inner).
        let mut out_frame = Vec::new();
        let b = PacketBuilder::ethernet2(MAC_GW, MAC_P0);
        match tag {
            Some(v) => b
                .single_vlan(etherparse::VlanId::try_new(v).expect("vid"))
                .ipv4([198, 18, 0, 10], [198, 18, 0, 100], 64)
                .tcp(41000, 80, 1, 65535)
                .syn()
                .write(&mut out_frame, b""),
            None => b
                .double_vlan(
                    etherparse::VlanId::try_new(5).expect("vid"),
                    etherparse::VlanId::try_new(100).expect("vid"),
                )
                .ipv4([198, 18, 0, 10], [198, 18, 0, 100], 64)
                .tcp(41000, 80, 1, 65535)
                .syn()
                .write(&mut out_frame, b""),
        }
        .expect("frame");
        p.process(VecBuf::new(&out_frame), CLIENT_PORT, 2 * S, false, &mut out);
    }
    assert!(out.tx.is_empty(), "nothing forwarded with its tag on");
    assert_eq!(
        drops(&c),
        vec![("stacked_vlan", 1), ("vlan_not_on_port", 1)]
    );
    assert_eq!(p.conns_v4().len(), 1, "only the first, untagged connection");
}

// ---- item 3: martians and source routing -----------------------------------

#[test]
fn martian_and_reverse_path_sources_from_the_client_side_are_dropped() {
    let (mut p, c, mut out) = resolved(&[]);
    let conns = p.conns_v4().len();
    for (src, sport) in [
        ("198.18.0.100", 80),  // the VIP itself: land attack
        ("198.18.0.1", 1234),  // the director's own client-side address
        ("198.19.0.1", 1234),  // ... and its server-side address
        ("198.19.0.11", 8080), // a real server, from the client side
        ("127.0.0.1", 1234),   // loopback
        ("224.0.0.9", 1234),   // multicast
    ] {
        let syn = tcp4(src, sport, "198.18.0.100", 80, true, false, b"");
        p.process(VecBuf::new(&syn), CLIENT_PORT, 2 * S, false, &mut out);
    }
    assert!(out.tx.is_empty(), "{:?}", out.tx);
    assert_eq!(p.conns_v4().len(), conns, "no connection created");
    assert_eq!(drops(&c), vec![("martian_source", 5), ("rp_filter", 1)]);
    // rp_filter off on the client port lets the real server's address
    // through as a client (loose needs only some route).
    for mode in [RpFilter::Off, RpFilter::Loose] {
        let g = PortGuard {
            rp_filter: mode,
            ..PortGuard::default()
        };
        let (mut p, c, mut out) = resolved(&[(CLIENT_PORT, g)]);
        let syn = tcp4("198.19.0.11", 9000, "198.18.0.100", 80, true, false, b"");
        p.process(VecBuf::new(&syn), CLIENT_PORT, 2 * S, false, &mut out);
        assert_eq!(out.tx.len(), 1, "{mode:?}");
        assert_eq!(drops(&c), vec![]);
    }
}

#[test]
fn strict_rp_filter_needs_a_route_back_through_the_port() {
    // No default route: a client nobody routes to is refused by strict
    // and loose filters, passed with the filter off.
    let routes = RouteTableBuilder::new()
        .connected(CLIENT_PORT, v4("198.18.0.1"), 24)
        .connected(SERVER_PORT, v4("198.19.0.1"), 24)
        .build()
        .expect("routes");
    for (mode, passes) in [
        (RpFilter::Strict, false),
        (RpFilter::Loose, false),
        (RpFilter::Off, true),
    ] {
        let g = PortGuard {
            rp_filter: mode,
            ..PortGuard::default()
        };
        let snap = SnapshotBuilder::new(1, ports(), routes.clone())
            .service(nat_service())
            .guard(CLIENT_PORT, g)
            .build()
            .expect("snapshot");
        let (mut p, c) = pipeline(Arc::new(snap));
        let mut out = Collect::default();
        p.learn(
            v4("198.19.0.11"),
            SERVER_PORT,
            MacAddr(MAC_RS1),
            0,
            &mut out,
        );
        let syn = tcp4("203.0.113.9", 9000, "198.18.0.100", 80, true, false, b"");
        p.process(VecBuf::new(&syn), CLIENT_PORT, S, false, &mut out);
        assert_eq!(out.tx.len(), usize::from(passes), "{mode:?}");
        assert_eq!(drop_count(&c, "rp_filter"), u64::from(!passes), "{mode:?}");
    }
}

/// A TCP SYN from a client to the VIP with IPv4 options `opts`.
fn syn_with_options(opts: &[u8]) -> Vec<u8> {
    let f = tcp4("198.18.0.10", 42000, "198.18.0.100", 80, true, false, b"");
    let mut g = f[..34].to_vec();
    g.extend_from_slice(opts);
    g.extend_from_slice(&f[34..]);
    g[14] = 0x45 + (opts.len() / 4) as u8;
    let total = (g.len() - 14) as u16;
    g[16..18].copy_from_slice(&total.to_be_bytes());
    g[24..26].copy_from_slice(&[0, 0]);
    let sum = dataplane::wire::checksum::checksum(&g[14..14 + 20 + opts.len()]);
    g[24..26].copy_from_slice(&sum.to_be_bytes());
    g
}

#[test]
fn ipv4_source_routes_are_dropped_unless_accepted() {
    // LSRR through 198.18.0.100, padded with a NOP; then SSRR.
    let lsrr = [1, 131, 7, 4, 198, 18, 0, 100];
    let ssrr = [1, 137, 7, 4, 198, 18, 0, 100];
    let (mut p, c, mut out) = resolved(&[]);
    let conns = p.conns_v4().len();
    for o in [lsrr, ssrr] {
        p.process(
            VecBuf::new(&syn_with_options(&o)),
            CLIENT_PORT,
            2 * S,
            false,
            &mut out,
        );
    }
    assert!(out.tx.is_empty());
    assert_eq!(p.conns_v4().len(), conns);
    assert_eq!(drops(&c), vec![("ipv4_source_route", 2)]);
    let g = PortGuard {
        accept_source_route: true,
        ..PortGuard::default()
    };
    let (mut p, c, mut out) = resolved(&[(CLIENT_PORT, g)]);
    p.process(
        VecBuf::new(&syn_with_options(&lsrr)),
        CLIENT_PORT,
        2 * S,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    assert_eq!(drops(&c), vec![]);
}

// ---- item 4: IPv6 type-0 routing headers -----------------------------------

/// A TCP SYN from a client to the IPv6 VIP behind a routing header of
/// `kind` with `left` segments left (one address).
fn syn6_with_routing(kind: u8, left: u8) -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::10".parse().expect("ip");
    let vip: Ipv6Addr = "2001:db8::100".parse().expect("ip");
    let mut tcp = Vec::new();
    PacketBuilder::ipv6(src.octets(), vip.octets(), 64)
        .tcp(43000, 80, 1, 65535)
        .syn()
        .write(&mut tcp, b"")
        .expect("tcp");
    let tcp = &tcp[40..];
    let mut rh = vec![6, 2, kind, left, 0, 0, 0, 0];
    rh.extend_from_slice(&vip.octets());
    let mut f = Vec::new();
    f.extend_from_slice(&MAC_P0);
    f.extend_from_slice(&MAC_GW);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&((rh.len() + tcp.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[43, 64]);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&rh);
    f.extend_from_slice(tcp);
    f
}

#[test]
fn ipv6_type0_routing_headers_are_refused_always() {
    let mut svc = nat_service();
    svc.vip = v6("2001:db8::100");
    let (mut p, c) = pipeline(snap_with(&[], vec![svc]));
    let mut out = Collect::default();
    for left in [0, 1, 2] {
        p.process(
            VecBuf::new(&syn6_with_routing(0, left)),
            CLIENT_PORT,
            S,
            false,
            &mut out,
        );
    }
    p.process(
        VecBuf::new(&syn6_with_routing(4, 1)),
        CLIENT_PORT,
        S,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty());
    assert_eq!(
        drops(&c),
        vec![("ipv6_routing_type0", 3), ("ipv6_routing_segments_left", 1)]
    );
}

// ---- item 5: checksums of packets that create state ------------------------

#[test]
fn syn_with_a_bad_checksum_creates_no_connection() {
    let (mut p, c, mut out) = resolved(&[]);
    let conns = p.conns_v4().len();
    let mut syn = tcp4("198.18.0.10", 44000, "198.18.0.100", 80, true, false, b"");
    syn[14 + 20 + 16] ^= 0x01; // the TCP checksum
    p.process(VecBuf::new(&syn), CLIENT_PORT, 2 * S, false, &mut out);
    assert!(out.tx.is_empty());
    assert_eq!(p.conns_v4().len(), conns);
    assert_eq!(drops(&c), vec![("bad_tcp_checksum", 1)]);
    // The same SYN with its checksum right is scheduled.
    syn[14 + 20 + 16] ^= 0x01;
    p.process(VecBuf::new(&syn), CLIENT_PORT, 2 * S, false, &mut out);
    assert_eq!(out.tx.len(), 1);
    assert_eq!(p.conns_v4().len(), conns + 1);
}

#[test]
fn first_udp_datagram_with_a_bad_checksum_creates_no_connection() {
    let mut svc = nat_service();
    svc.proto = 17;
    svc.vport = 53;
    let (mut p, c) = pipeline(snap_with(&[], vec![svc]));
    let mut out = Collect::default();
    p.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    let udp = |corrupt: bool, zero: bool| {
        let mut f = Vec::new();
        PacketBuilder::ethernet2(MAC_GW, MAC_P0)
            .ipv4([198, 18, 0, 10], [198, 18, 0, 100], 64)
            .udp(45000, 53)
            .write(&mut f, b"query")
            .expect("udp");
        if zero {
            f[40] = 0;
            f[41] = 0;
        }
        if corrupt {
            let n = f.len();
            f[n - 1] ^= 0x20;
        }
        f
    };
    p.process(
        VecBuf::new(&udp(true, false)),
        CLIENT_PORT,
        S,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty());
    assert_eq!(p.conns_v4().len(), 0);
    assert_eq!(drops(&c), vec![("bad_udp_checksum", 1)]);
    // No checksum at all is allowed over IPv4.
    p.process(
        VecBuf::new(&udp(true, true)),
        CLIENT_PORT,
        S,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    assert_eq!(p.conns_v4().len(), 1);
}
