//! The staged burst path ([`Pipeline::process_burst`]) against the
//! packet-at-a-time path ([`Pipeline::process`]): two pipelines built
//! alike get the same packets, one a packet at a time, the other in
//! bursts of many sizes, and everything that comes out — transmitted
//! frames byte for byte, handoffs, frames to the kernel, events, in the
//! same order — and every counter must be identical. The bursts mix what
//! the fast path and the slow path take: new and established flows in
//! the same burst (a SYN and the ACK that must find its new connection),
//! ARP and ND (the answers to the director's own solicitations), ICMP
//! errors, fragments, handoff to and from another worker, replies, port
//! reuse after RST, garbage, IPv4 and IPv6, every forwarding mode.

mod common;

use common::*;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::forward::TunEncap;
use dataplane::parse::{parse, L3};
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::sched::{RealId, SchedKind};
use dataplane::snapshot::{Role, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use etherparse::{
    Icmpv4Type, Icmpv6Type, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, PacketBuilder,
};
use proptest::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

/// Everything a pipeline hands its sink, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Tx(u16, Vec<u8>),
    Handoff(u16, Vec<u8>),
    Kernel(u16, Vec<u8>),
    Event(String),
}

#[derive(Default)]
struct Log {
    out: Vec<Out>,
}

impl Sink<VecBuf> for Log {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        self.out.push(Out::Tx(port, pkt.data().to_vec()));
    }
    fn handoff(&mut self, worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        self.out.push(Out::Handoff(worker, pkt.data().to_vec()));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, ev: Event) {
        self.out.push(Out::Event(format!("{ev:?}")));
    }
    fn to_kernel(&mut self, port: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        // A TAP on the client port only: both outcomes of the exception
        // path are exercised.
        if port != CLIENT_PORT {
            return Err(pkt);
        }
        self.out.push(Out::Kernel(port, pkt.data().to_vec()));
        Ok(())
    }
}

/// One packet to feed: frame, port it came in on, whether another worker
/// handed it over.
#[derive(Debug, Clone)]
struct In {
    frame: Vec<u8>,
    port: u16,
    handoff: bool,
}

fn inp(frame: Vec<u8>, port: u16) -> In {
    In {
        frame,
        port,
        handoff: false,
    }
}

const VIP4: &str = "198.18.0.100";
const VIP6: &str = "2001:db8::100";
const RS4: [&str; 2] = ["198.19.0.11", "198.19.0.12"];
const RS6: [&str; 2] = ["2001:db8:1::11", "2001:db8:1::12"];

fn client(v6: bool, i: u16) -> String {
    if v6 {
        format!("2001:db8::{:x}", 0x10 + i)
    } else {
        format!("198.18.0.{}", 10 + i)
    }
}

/// Two pipelines (reference and staged) built alike.
struct Twin {
    reference: Pipeline<VecBuf>,
    staged: Pipeline<VecBuf>,
    c_ref: Arc<WorkerCounters>,
    c_st: Arc<WorkerCounters>,
    log_ref: Log,
    log_st: Log,
}

impl Twin {
    fn new(mode: FwdMode, workers: u16) -> Twin {
        let reals4: Vec<(IpAddr, u16)> = RS4.iter().map(|a| (v4(a), 8080)).collect();
        let reals6: Vec<(IpAddr, u16)> = RS6.iter().map(|a| (v6(a), 8080)).collect();
        // TUN mode with one worker: GUE and GRE, with and without
        // checksums, in both families (one per real server); with two,
        // ipip everywhere.
        let mut b = SnapshotBuilder::new(1, ports(), routes()).role(Role::Master);
        for s in [
            service(0, v4(VIP4), 80, SchedKind::Rr, &reals4, mode),
            service(1, v6(VIP6), 80, SchedKind::Rr, &reals6, mode),
        ] {
            b = b.service(s);
        }
        if workers == 1 {
            b = b
                .tunnel(
                    RealId(0),
                    TunEncap::Gue {
                        port: 6080,
                        csum: true,
                    },
                )
                .tunnel(RealId(1), TunEncap::Gre { csum: true })
                .tunnel(
                    RealId(100),
                    TunEncap::Gue {
                        port: 6080,
                        csum: false,
                    },
                )
                .tunnel(RealId(101), TunEncap::Gre { csum: false });
        }
        let snap = Arc::new(b.build().expect("snapshot"));
        let mk = || {
            let c = Arc::new(WorkerCounters::new(16, 4096, 2, workers as usize));
            let p = Pipeline::new(
                &PipelineConfig::new(0, workers, 1024, 1024),
                snap.clone(),
                HashKey::from_seed(7),
                c.clone(),
            )
            .expect("pipeline");
            (p, c)
        };
        let (reference, c_ref) = mk();
        let (staged, c_st) = mk();
        Twin {
            reference,
            staged,
            c_ref,
            c_st,
            log_ref: Log::default(),
            log_st: Log::default(),
        }
    }

    /// Feeds `pkts` to both: one at a time to the reference, in bursts of
    /// the sizes `chunks` cycles through to the staged one (a burst never
    /// mixes handed-over and received packets, as in the worker loop).
    /// Returns what this step produced, after checking both agree.
    fn step(&mut self, pkts: &[In], now_ns: u64, chunks: &[usize]) -> Vec<Out> {
        let before = self.log_ref.out.len();
        // Every other frame carries Ethernet padding to 60 bytes, as a NIC
        // delivers short frames (rewrites keep it, encapsulations drop it).
        let frames: Vec<Vec<u8>> = pkts
            .iter()
            .enumerate()
            .map(|(k, p)| {
                let mut f = p.frame.clone();
                if k % 2 == 1 && f.len() < 60 {
                    f.resize(60, 0);
                }
                f
            })
            .collect();
        for (p, f) in pkts.iter().zip(&frames) {
            self.reference.process(
                VecBuf::from_slice(f, 128, 64),
                p.port,
                now_ns,
                p.handoff,
                &mut self.log_ref,
            );
        }
        let mut i = 0;
        let mut c = 0;
        while i < pkts.len() {
            let want = chunks[c % chunks.len()].max(1);
            c += 1;
            let flag = pkts[i].handoff;
            let mut end = i;
            while end < pkts.len() && end - i < want && pkts[end].handoff == flag {
                end += 1;
            }
            let burst = pkts[i..end]
                .iter()
                .zip(&frames[i..end])
                .map(|(p, f)| (VecBuf::from_slice(f, 128, 64), p.port));
            self.staged
                .process_burst(burst, now_ns, flag, &mut self.log_st);
            i = end;
        }
        self.check();
        self.log_ref.out[before..].to_vec()
    }

    fn check(&self) {
        assert_eq!(
            self.log_ref.out.len(),
            self.log_st.out.len(),
            "output count"
        );
        for (k, (a, b)) in self.log_ref.out.iter().zip(&self.log_st.out).enumerate() {
            assert_eq!(a, b, "output {k} differs");
        }
        // Every counter agrees but the fast path's own (the reference
        // never takes it).
        assert_eq!(self.c_ref.fast_path.get(), 0);
        let fast = format!("fast_path: Counter({})", self.c_st.fast_path.get());
        assert_eq!(
            format!("{:?}", self.c_ref),
            format!("{:?}", self.c_st).replace(&fast, "fast_path: Counter(0)")
        );
        assert_eq!(
            self.reference.conns_v4().len(),
            self.staged.conns_v4().len()
        );
        assert_eq!(
            self.reference.conns_v6().len(),
            self.staged.conns_v6().len()
        );
        assert_eq!(
            format!("{:?}", self.reference.conns_v4().stats()),
            format!("{:?}", self.staged.conns_v4().stats())
        );
        assert_eq!(
            format!("{:?}", self.reference.conns_v6().stats()),
            format!("{:?}", self.staged.conns_v6().stats())
        );
    }
}

/// A client segment to the VIP.
fn to_vip(v6: bool, i: u16, flags: u8, payload: &[u8]) -> In {
    let vip = if v6 { VIP6 } else { VIP4 };
    inp(
        seg(
            (MAC_GW, MAC_P0),
            &client(v6, i),
            10_000 + i,
            vip,
            80,
            flags,
            payload,
        ),
        CLIENT_PORT,
    )
}

/// An ICMP port unreachable from the client side's router about the
/// director's VIP → client packet of flow `i` (it belongs to that flow).
fn icmp_error(v6: bool, i: u16) -> In {
    let c = client(v6, i);
    let vip = if v6 { VIP6 } else { VIP4 };
    let quoted = seg((MAC_P0, MAC_GW), vip, 80, &c, 10_000 + i, ACK, b"");
    let quote = quoted[14..].get(..48).unwrap_or(&quoted[14..]).to_vec();
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(MAC_GW, MAC_P0);
    match (
        v4_or_6(if v6 { "2001:db8::fe" } else { "198.18.0.254" }),
        v4_or_6(vip),
    ) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b
            .ipv4(s.octets(), d.octets(), 64)
            .icmpv4(Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::Port,
            ))
            .write(&mut out, &quote)
            .expect("icmp"),
        (IpAddr::V6(s), IpAddr::V6(d)) => b
            .ipv6(s.octets(), d.octets(), 64)
            .icmpv6(Icmpv6Type::DestinationUnreachable(
                etherparse::icmpv6::DestUnreachableCode::Port,
            ))
            .write(&mut out, &quote)
            .expect("icmp"),
        _ => unreachable!(),
    }
    inp(out, CLIENT_PORT)
}

fn v4_or_6(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

/// An ICMP echo request to `dst` (a VIP or the port address: host traffic).
fn echo(v6: bool, dst: &str) -> In {
    let mut out = Vec::new();
    let b = PacketBuilder::ethernet2(MAC_GW, MAC_P0);
    match (v4_or_6(&client(v6, 9)), v4_or_6(dst)) {
        (IpAddr::V4(s), IpAddr::V4(d)) => b
            .ipv4(s.octets(), d.octets(), 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut out, b"ping")
            .expect("echo"),
        (IpAddr::V6(s), IpAddr::V6(d)) => b
            .ipv6(s.octets(), d.octets(), 64)
            .icmpv6_echo_request(7, 1)
            .write(&mut out, b"ping")
            .expect("echo"),
        _ => unreachable!(),
    }
    inp(out, CLIENT_PORT)
}

/// The two IPv4 fragments of a data segment of flow `i` (first: TCP
/// header and 4 bytes; second: the rest).
fn fragments(i: u16) -> [In; 2] {
    let whole = seg(
        (MAC_GW, MAC_P0),
        &client(false, i),
        10_000 + i,
        VIP4,
        80,
        ACK,
        &[0x5a; 36],
    );
    let l4 = &whole[34..];
    let s: std::net::Ipv4Addr = client(false, i).parse().expect("addr");
    let d: std::net::Ipv4Addr = VIP4.parse().expect("addr");
    let mk = |offset: u16, more: bool, data: &[u8]| {
        let mut h = Ipv4Header::new(0, 64, IpNumber::TCP, s.octets(), d.octets()).expect("hdr");
        h.identification = 0x4000 + i;
        h.more_fragments = more;
        h.fragment_offset = IpFragOffset::try_new(offset).expect("offset");
        let mut out = Vec::new();
        PacketBuilder::ethernet2(MAC_GW, MAC_P0)
            .ip(IpHeaders::Ipv4(h, Default::default()))
            .write(&mut out, IpNumber::TCP, data)
            .expect("frag");
        inp(out, CLIENT_PORT)
    };
    [mk(0, true, &l4[..24]), mk(3, false, &l4[24..])]
}

/// What a real server or gateway answers to the director's ARP request
/// or neighbour solicitation `sol` (sent on `port`), if it is one.
fn answer(port: u16, sol: &[u8]) -> Option<In> {
    let meta = parse(sol).ok()?;
    let mac = if port == SERVER_PORT { MAC_RS1 } else { MAC_GW };
    match (meta.l3, meta.src, meta.dst) {
        (L3::Arp, IpAddr::V4(spa), IpAddr::V4(tpa)) => {
            let mut v = Vec::new();
            v.extend_from_slice(&sol[6..12]);
            v.extend_from_slice(&mac);
            v.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 2]);
            v.extend_from_slice(&mac);
            v.extend_from_slice(&tpa.octets());
            v.extend_from_slice(&sol[6..12]);
            v.extend_from_slice(&spa.octets());
            Some(inp(v, port))
        }
        (L3::Ipv6, IpAddr::V6(src), _) if meta.l4_proto == 58 && meta.icmp_type == 135 => {
            let l4 = usize::from(meta.l4_offset);
            let target: [u8; 16] = sol.get(l4 + 8..l4 + 24)?.try_into().ok()?;
            let b = PacketBuilder::ethernet2(mac, sol[6..12].try_into().ok()?)
                .ipv6(target, src.octets(), 255)
                .icmpv6(Icmpv6Type::Unknown {
                    type_u8: 136,
                    code_u8: 0,
                    bytes5to8: [0x60, 0, 0, 0],
                });
            let mut payload = target.to_vec();
            payload.extend_from_slice(&[2, 1]);
            payload.extend_from_slice(&mac);
            let mut v = Vec::new();
            b.write(&mut v, &payload).ok()?;
            Some(inp(v, port))
        }
        _ => None,
    }
}

/// The real server's answer to a frame the director sent it: addresses
/// and ports swapped, from the server's side (NAT and FullNAT, where the
/// director sees both directions).
fn reply_to(frame: &[u8], flags: u8) -> Option<In> {
    let meta = parse(frame).ok()?;
    if meta.l4_proto != 6 || meta.frag.is_some() {
        return None;
    }
    let (s, d) = (meta.src.to_string(), meta.dst.to_string());
    Some(inp(
        seg(
            (MAC_RS1, MAC_P1),
            &d,
            meta.dst_port,
            &s,
            meta.src_port,
            flags,
            b"ok",
        ),
        SERVER_PORT,
    ))
}

fn interleave(a: Vec<In>, b: Vec<In>) -> Vec<In> {
    let mut out = Vec::new();
    let mut a = a.into_iter();
    let mut b = b.into_iter();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

const CHUNKS: [&[usize]; 4] = [&[1], &[32], &[64, 3, 1, 33], &[7, 200, 2]];

/// The scenario: bursts that mix everything, step by step, each step's
/// input derived from what came out of the step before.
fn scenario(mode: FwdMode, workers: u16, chunks: &[usize]) -> Vec<Out> {
    let mut t = Twin::new(mode, workers);
    let mut all = Vec::new();
    let now = 5_000_000_000u64;
    // Step 1: SYNs of six flows per family and, in the same burst, the
    // ACK and data that must find the connection the SYN just created;
    // an ICMP error of a flow, fragments, host traffic, garbage.
    let mut s1 = Vec::new();
    for v6 in [false, true] {
        for i in 0..6u16 {
            s1.push(to_vip(v6, i, SYN, b""));
            if i < 4 {
                s1.push(to_vip(v6, i, ACK, b""));
                s1.push(to_vip(v6, i, ACK, b"data"));
            }
        }
        s1.push(icmp_error(v6, 0));
        s1.push(echo(v6, if v6 { VIP6 } else { VIP4 }));
        s1.push(echo(v6, if v6 { "2001:db8::1" } else { "198.18.0.1" }));
        s1.push(to_vip(v6, 5, ACK, b"after"));
    }
    s1.extend(fragments(1));
    s1.extend(fragments(7)); // no connection
    s1.push(inp(vec![0xff; 13], CLIENT_PORT));
    s1.push(inp(
        seg(
            (MAC_GW, MAC_P0),
            "198.18.0.9",
            1,
            "203.0.113.1",
            80,
            SYN,
            b"",
        ),
        CLIENT_PORT,
    ));
    let out1 = t.step(&s1, now, chunks);
    all.extend(out1.iter().cloned());

    // Step 2: the answers to every solicitation, mixed with more traffic
    // of the same flows (some queued behind the resolution), a RST and a
    // new SYN on the same tuple, FINs.
    let answers: Vec<In> = out1
        .iter()
        .filter_map(|o| match o {
            Out::Tx(p, f) => answer(*p, f),
            _ => None,
        })
        .collect();
    let mut more = Vec::new();
    for v6 in [false, true] {
        for i in 0..6u16 {
            more.push(to_vip(v6, i, ACK, b"more"));
        }
        more.push(to_vip(v6, 2, RST, b""));
        more.push(to_vip(v6, 2, SYN, b""));
        more.push(to_vip(v6, 2, ACK, b""));
        more.push(to_vip(v6, 3, FIN | ACK, b""));
        more.push(icmp_error(v6, 1));
    }
    more.extend(fragments(0));
    let s2 = interleave(answers, more);
    let out2 = t.step(&s2, now + 1_000_000, chunks);
    all.extend(out2.iter().cloned());

    // Step 3: the servers' replies to what reached them (both directions
    // in one burst), client packets, and packets handed over by the other
    // worker (the ones this worker handed off, fed back as its peer's).
    let mut replies = Vec::new();
    let mut handed = Vec::new();
    for o in out1.iter().chain(&out2) {
        match o {
            Out::Tx(p, f)
                if *p == SERVER_PORT && matches!(mode, FwdMode::Nat | FwdMode::FullNat) =>
            {
                replies.extend(reply_to(f, ACK));
            }
            Out::Handoff(_, f) => handed.push(In {
                frame: f.clone(),
                port: CLIENT_PORT,
                handoff: true,
            }),
            _ => {}
        }
    }
    let mut client_side = Vec::new();
    for v6 in [false, true] {
        for i in 0..6u16 {
            client_side.push(to_vip(v6, i, ACK, b"again"));
        }
    }
    let mut s3 = interleave(replies, client_side);
    let mid = s3.len() / 2;
    s3.splice(mid..mid, handed);
    let out3 = t.step(&s3, now + 2_000_000, chunks);
    all.extend(out3.iter().cloned());

    // Step 4: the clients answer the director's solicitations for them
    // (replies were queued behind them), more replies in the same bursts.
    let answers: Vec<In> = out3
        .iter()
        .filter_map(|o| match o {
            Out::Tx(p, f) => answer(*p, f),
            _ => None,
        })
        .collect();
    let replies: Vec<In> = out1
        .iter()
        .chain(&out2)
        .filter_map(|o| match o {
            Out::Tx(p, f)
                if *p == SERVER_PORT && matches!(mode, FwdMode::Nat | FwdMode::FullNat) =>
            {
                reply_to(f, ACK | FIN)
            }
            _ => None,
        })
        .collect();
    let s4 = interleave(answers, replies);
    all.extend(t.step(&s4, now + 3_000_000, chunks));
    // The established packets of steps 3 and 4 (their next hops known by
    // then) took the fast path; the output above is the general path's
    // all the same.
    let fast = t.c_st.fast_path.get();
    assert!(fast >= 6, "{mode:?}/{workers}: {fast} fast-path packets");
    all
}

#[test]
fn staged_bursts_give_the_packet_at_a_time_output_in_every_mode() {
    for mode in [FwdMode::Nat, FwdMode::Dr, FwdMode::Tun, FwdMode::FullNat] {
        for workers in [1u16, 2] {
            let mut first: Option<Vec<Out>> = None;
            for chunks in CHUNKS {
                let out = scenario(mode, workers, chunks);
                // The scenario reaches what it is about: frames to the
                // servers, learned neighbours, handoffs with two workers.
                let tx_rs = out
                    .iter()
                    .filter(|o| matches!(o, Out::Tx(p, _) if *p == SERVER_PORT))
                    .count();
                assert!(tx_rs >= 20, "{mode:?}/{workers}: {tx_rs} frames to servers");
                assert!(out
                    .iter()
                    .any(|o| matches!(o, Out::Event(e) if e.starts_with("NeighLearned"))));
                if workers == 2 {
                    assert!(out.iter().any(|o| matches!(o, Out::Handoff(..))));
                }
                if mode == FwdMode::Tun {
                    // Every tunnel type of both families went out.
                    let mut outer: Vec<(u8, u8)> = out
                        .iter()
                        .filter_map(|o| match o {
                            Out::Tx(p, f) if *p == SERVER_PORT && f.len() > 23 => {
                                Some(if f[12] == 0x86 {
                                    (6, f[20])
                                } else {
                                    (4, f[23])
                                })
                            }
                            _ => None,
                        })
                        .collect();
                    outer.sort_unstable();
                    outer.dedup();
                    let types: &[(u8, u8)] = if workers == 1 {
                        &[(4, 17), (4, 47), (6, 17), (6, 47)]
                    } else {
                        &[(4, 4), (6, 41)]
                    };
                    for &want in types {
                        assert!(
                            outer.contains(&want),
                            "{workers}: outer {want:?} in {outer:?}"
                        );
                    }
                }
                if matches!(mode, FwdMode::Nat | FwdMode::FullNat) {
                    let to_client = out
                        .iter()
                        .filter(|o| matches!(o, Out::Tx(p, _) if *p == CLIENT_PORT))
                        .count();
                    assert!(to_client >= 10, "{mode:?}: {to_client} replies");
                }
                // Burst sizes change nothing at all.
                match &first {
                    None => first = Some(out),
                    Some(f) => assert_eq!(f, &out, "{mode:?}/{workers}: burst sizes differ"),
                }
            }
        }
    }
}

/// A pool of frames a random burst draws from.
fn pool() -> Vec<In> {
    let mut p = Vec::new();
    for v6 in [false, true] {
        for i in 0..4u16 {
            for flags in [SYN, ACK, FIN | ACK, RST] {
                p.push(to_vip(v6, i, flags, b""));
            }
            p.push(to_vip(v6, i, ACK, b"payload"));
            p.push(icmp_error(v6, i));
        }
        p.push(echo(v6, if v6 { VIP6 } else { VIP4 }));
        let rs = if v6 { RS6[0] } else { RS4[0] };
        let c = client(v6, 0);
        for port in [8080, 8081] {
            p.push(inp(
                seg((MAC_RS1, MAC_P1), rs, port, &c, 10_000, ACK, b"r"),
                SERVER_PORT,
            ));
        }
    }
    // Unsolicited answers from the servers (learned or refused).
    let arp = arp_reply(MAC_RS1, RS4[0], MAC_P1, "198.19.0.1");
    p.push(inp(arp, SERVER_PORT));
    p.extend(fragments(0));
    p.extend(fragments(2));
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_bursts_match_packet_at_a_time(
        mode in 0usize..4,
        workers in 1u16..3,
        picks in prop::collection::vec((0usize..1000, any::<bool>(), 0usize..80, any::<u8>()), 1..300),
        chunks in prop::collection::vec(1usize..80, 1..6),
    ) {
        let mode = [FwdMode::Nat, FwdMode::Dr, FwdMode::Tun, FwdMode::FullNat][mode];
        let pool = pool();
        let mut t = Twin::new(mode, workers);
        let mut pkts = Vec::new();
        for (k, handoff, at, byte) in picks {
            let mut p = pool[k % pool.len()].clone();
            p.handoff = handoff && workers == 2;
            // Now and then a byte changed: whatever it parses as, both
            // paths must agree.
            if byte > 240 {
                let at = at % p.frame.len();
                p.frame[at] ^= byte;
            }
            pkts.push(p);
        }
        // Two steps, so that the second sees connections and neighbours
        // the first created.
        let (a, b) = pkts.split_at(pkts.len() / 2);
        t.step(a, 1_000_000_000, &chunks);
        t.step(b, 1_500_000_000, &chunks);
    }
}
