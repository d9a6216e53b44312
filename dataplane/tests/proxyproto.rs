//! Proxy Protocol on a FullNAT service through the whole packet path:
//! exact bytes of the client's first segment with the header (v1 and v2,
//! IPv4 and IPv6), of a later segment and of a server ACK, the SYN-ACK's
//! MSS, retransmission of the first segment, data on the handshake's last
//! ACK, a FIN before any data, and a backup that takes the connection
//! over with its delta (sync v1 SEQ_DATA).

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::forward::{proxyproto, Endpoint, PpVersion};
use dataplane::pipeline::{ConnInfo, DumpRequest, Event, Pipeline, PipelineConfig};
use dataplane::sched::SchedKind;
use dataplane::snapshot::{Role, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::sync::codec::MessageBuilder;
use dataplane::sync::{decode, SyncParams};
use dataplane::wire::ethernet::MacAddr;
use etherparse::{SlicedPacket, TcpOptionElement, TransportSlice};
use std::net::IpAddr;
use std::sync::Arc;

const S: u64 = 1_000_000_000;
const ISN: u32 = 0xffff_fff0; // the client's stream wraps the 32-bit space
const RS_ISN: u32 = 7000;

/// One family's addresses.
struct Fam {
    client: &'static str,
    vip: &'static str,
    rs: &'static str,
    laddr: &'static str,
}

const F4: Fam = Fam {
    client: "198.18.0.10",
    vip: "198.18.0.100",
    rs: "198.19.0.11",
    laddr: "198.19.0.250",
};
const F6: Fam = Fam {
    client: "2001:db8::10",
    vip: "2001:db8::100",
    rs: "2001:db8:1::11",
    laddr: "2001:db8:1::250",
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("addr")
}

/// A TCP frame with every field the test cares about.
#[allow(clippy::too_many_arguments)]
fn frame(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    flags: u8,
    opts: &[TcpOptionElement],
    payload: &[u8],
) -> Vec<u8> {
    tcp_frame(
        macs, src, sport, dst, dport, seq, ack, flags, 65535, opts, payload,
    )
}

fn director(
    role: Role,
    v: PpVersion,
    sync: Option<SyncParams>,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    director_with(role, v, sync, 0)
}

/// [`director`] with `seq_adj` adjusted connections per table (0: auto).
fn director_with(
    role: Role,
    v: PpVersion,
    sync: Option<SyncParams>,
    seq_adj: u32,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let mut s4 = service(
        0,
        ip(F4.vip),
        80,
        SchedKind::Rr,
        &[(ip(F4.rs), 80)],
        FwdMode::FullNat,
    );
    s4.proxy_protocol = Some(v);
    let mut s6 = service(
        1,
        ip(F6.vip),
        80,
        SchedKind::Rr,
        &[(ip(F6.rs), 80)],
        FwdMode::FullNat,
    );
    s6.proxy_protocol = Some(v);
    let snap = SnapshotBuilder::new(1, ports(), routes())
        .role(role)
        .sync(sync)
        .service(s4)
        .service(s6)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let mut pc = PipelineConfig::new(0, 1, 1024, 1024);
    pc.seq_adj = seq_adj;
    let mut p = Pipeline::new(&pc, Arc::new(snap), HashKey::from_seed(9), counters.clone())
        .expect("pipeline");
    let mut out = Collect::default();
    p.learn(ip(F4.rs), SERVER_PORT, MacAddr(MAC_RS1), 0, &mut out);
    p.learn(ip(F6.rs), SERVER_PORT, MacAddr(MAC_RS1), 0, &mut out);
    p.learn(ip(F4.client), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    p.learn(ip(F6.client), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    (p, counters)
}

fn conns(p: &Pipeline<VecBuf>) -> Vec<ConnInfo> {
    let req = DumpRequest::new(64);
    p.dump(&req);
    let mut v = Vec::new();
    while let Some(c) = req.out.pop() {
        v.push(c);
    }
    v
}

/// The one frame sent, with its checksums verified.
fn sent(out: &mut Collect) -> Vec<u8> {
    assert_eq!(out.tx.len(), 1, "one frame out");
    let f = out.tx.pop().expect("frame").1;
    check_out(&f);
    f
}

fn mss_of(f: &[u8]) -> Option<u16> {
    let s = SlicedPacket::from_ethernet(f).expect("parse");
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("tcp")
    };
    t.options_iterator().find_map(|o| match o {
        Ok(TcpOptionElement::MaximumSegmentSize(v)) => Some(v),
        _ => None,
    })
}

/// Runs one connection's handshake (`last_ack`: the data the client's
/// last ACK carries); returns the local port, the SYN-ACK the client got
/// and what the real server got for the last ACK.
fn handshake(
    p: &mut Pipeline<VecBuf>,
    f: &Fam,
    cport: u16,
    last_ack: &[u8],
) -> (u16, Vec<u8>, Vec<u8>) {
    let mut out = Collect::default();
    let syn = frame(
        (MAC_GW, MAC_P0),
        f.client,
        cport,
        f.vip,
        80,
        ISN,
        None,
        SYN,
        &[TcpOptionElement::MaximumSegmentSize(1460)],
        b"",
    );
    p.process(VecBuf::new(&syn), CLIENT_PORT, S, false, &mut out);
    let (_, lport, _, _, _) = check_out(&sent(&mut out));
    let synack = frame(
        (MAC_RS1, MAC_P1),
        f.rs,
        80,
        f.laddr,
        lport,
        RS_ISN,
        Some(ISN.wrapping_add(1)),
        SYN,
        &[TcpOptionElement::MaximumSegmentSize(1460)],
        b"",
    );
    p.process(VecBuf::new(&synack), SERVER_PORT, S, false, &mut out);
    let to_client = sent(&mut out);
    let ack = frame(
        (MAC_GW, MAC_P0),
        f.client,
        cport,
        f.vip,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        0,
        &[],
        last_ack,
    );
    p.process(VecBuf::new(&ack), CLIENT_PORT, S, false, &mut out);
    (lport, to_client, sent(&mut out))
}

fn golden(f: &Fam, v: PpVersion) {
    let (mut p, counters) = director(Role::Master, v, None);
    let cport = 40000;
    let hdr = proxyproto::header(
        v,
        Endpoint::new(ip(f.client), cport),
        Endpoint::new(ip(f.vip), 80),
    )
    .expect("header");
    let n = hdr.len() as u32;
    let (lport, synack, _) = handshake(&mut p, f, cport, b"");
    // The SYN-ACK reached the client with the MSS lowered by the header.
    assert_eq!(mss_of(&synack), Some(1460 - n as u16));
    let c = conns(&p);
    assert_eq!(c.len(), 1);
    let s = c[0]
        .seq
        .expect("a PP connection carries its delta from the SYN");
    assert_eq!(s.in_seq.words(), [ISN.wrapping_add(1), n, 0]);
    assert!(s.out_seq.is_identity());
    assert_eq!(counters.pp.mss_clamped.get(), 1);

    // The first data segment: the header in front of its payload, same
    // sequence number; exact bytes.
    let mut out = Collect::default();
    let data = b"GET / HTTP/1.0\r\n\r\n";
    let first = frame(
        (MAC_GW, MAC_P0),
        f.client,
        cport,
        f.vip,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        0,
        &[],
        data,
    );
    let want = frame(
        (MAC_P1, MAC_RS1),
        f.laddr,
        lport,
        f.rs,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        0,
        &[],
        &[hdr.bytes(), &data[..]].concat(),
    );
    p.process(VecBuf::new(&first), CLIENT_PORT, 2 * S, false, &mut out);
    assert_eq!(sent(&mut out), want, "first segment with the header");
    // Retransmitted: the header again, the same bytes.
    p.process(VecBuf::new(&first), CLIENT_PORT, 3 * S, false, &mut out);
    assert_eq!(sent(&mut out), want, "retransmission");
    let inserted = match v {
        PpVersion::V1 => &counters.pp.inserted_v1,
        PpVersion::V2 => &counters.pp.inserted_v2,
    };
    assert_eq!(inserted.get(), 2);

    // A later segment (its sequence number wraps): shifted by the header.
    let next = ISN.wrapping_add(1).wrapping_add(data.len() as u32);
    let later = frame(
        (MAC_GW, MAC_P0),
        f.client,
        cport,
        f.vip,
        80,
        next,
        Some(RS_ISN + 1),
        0,
        &[],
        b"more",
    );
    let want = frame(
        (MAC_P1, MAC_RS1),
        f.laddr,
        lport,
        f.rs,
        80,
        next.wrapping_add(n),
        Some(RS_ISN + 1),
        0,
        &[],
        b"more",
    );
    p.process(VecBuf::new(&later), CLIENT_PORT, 3 * S, false, &mut out);
    assert_eq!(sent(&mut out), want, "later segment");

    // The server's ACK of everything, with a SACK block: back in the
    // client's numbering.
    let acked = next.wrapping_add(4).wrapping_add(n);
    let sack = TcpOptionElement::SelectiveAcknowledgement(
        (acked.wrapping_add(100), acked.wrapping_add(200)),
        [None, None, None],
    );
    let rs_ack = frame(
        (MAC_RS1, MAC_P1),
        f.rs,
        80,
        f.laddr,
        lport,
        RS_ISN + 1,
        Some(acked),
        0,
        &[TcpOptionElement::Noop, TcpOptionElement::Noop, sack],
        b"HTTP/1.0 200 OK\r\n",
    );
    let back = acked.wrapping_sub(n);
    let want = frame(
        (MAC_P0, MAC_GW),
        f.vip,
        80,
        f.client,
        cport,
        RS_ISN + 1,
        Some(back),
        0,
        &[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(
                (back.wrapping_add(100), back.wrapping_add(200)),
                [None, None, None],
            ),
        ],
        b"HTTP/1.0 200 OK\r\n",
    );
    p.process(VecBuf::new(&rs_ack), SERVER_PORT, 3 * S, false, &mut out);
    assert_eq!(sent(&mut out), want, "server ACK");
}

#[test]
fn v1_over_ipv4_golden() {
    golden(&F4, PpVersion::V1);
}

#[test]
fn v2_over_ipv4_golden() {
    golden(&F4, PpVersion::V2);
}

#[test]
fn v1_over_ipv6_golden() {
    golden(&F6, PpVersion::V1);
}

#[test]
fn v2_over_ipv6_golden() {
    golden(&F6, PpVersion::V2);
}

#[test]
fn synack_mss_leaves_room_for_the_header() {
    for (f, v) in [(&F4, PpVersion::V1), (&F6, PpVersion::V2)] {
        let (mut p, _) = director(Role::Master, v, None);
        let hdr = proxyproto::header(
            v,
            Endpoint::new(ip(f.client), 1),
            Endpoint::new(ip(f.vip), 80),
        )
        .expect("header");
        let (_, synack, _) = handshake(&mut p, f, 1, b"");
        assert_eq!(mss_of(&synack), Some(1460 - hdr.len() as u16));
    }
}

#[test]
fn data_on_the_handshake_ack_gets_the_header() {
    let (mut p, counters) = director(Role::Master, PpVersion::V2, None);
    let hdr = proxyproto::header(
        PpVersion::V2,
        Endpoint::new(ip(F4.client), 41000),
        Endpoint::new(ip(F4.vip), 80),
    )
    .expect("header");
    let (_, _, to_rs) = handshake(&mut p, &F4, 41000, b"hello");
    let s = SlicedPacket::from_ethernet(&to_rs).expect("the ACK with data");
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("tcp")
    };
    assert_eq!(t.payload(), &[hdr.bytes(), b"hello"].concat()[..]);
    assert_eq!(t.sequence_number(), ISN.wrapping_add(1));
    assert_eq!(counters.pp.inserted_v2.get(), 1);
}

#[test]
fn fin_before_any_data_delivers_the_header_with_the_fin() {
    let (mut p, _) = director(Role::Master, PpVersion::V1, None);
    let (lport, _, _) = handshake(&mut p, &F6, 42000, b"");
    let hdr = proxyproto::header(
        PpVersion::V1,
        Endpoint::new(ip(F6.client), 42000),
        Endpoint::new(ip(F6.vip), 80),
    )
    .expect("header");
    let fin = frame(
        (MAC_GW, MAC_P0),
        F6.client,
        42000,
        F6.vip,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        FIN,
        &[],
        b"",
    );
    let want = frame(
        (MAC_P1, MAC_RS1),
        F6.laddr,
        lport,
        F6.rs,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        FIN,
        &[],
        hdr.bytes(),
    );
    let mut out = Collect::default();
    p.process(VecBuf::new(&fin), CLIENT_PORT, 2 * S, false, &mut out);
    assert_eq!(sent(&mut out), want);
    // The server's ACK of header and FIN is the client's FIN acked.
    let ack = frame(
        (MAC_RS1, MAC_P1),
        F6.rs,
        80,
        F6.laddr,
        lport,
        RS_ISN + 1,
        Some(ISN.wrapping_add(2).wrapping_add(hdr.len() as u32)),
        0,
        &[],
        b"",
    );
    p.process(VecBuf::new(&ack), SERVER_PORT, 2 * S, false, &mut out);
    let f = sent(&mut out);
    let s = SlicedPacket::from_ethernet(&f).expect("parse");
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("tcp")
    };
    assert_eq!(t.acknowledgment_number(), ISN.wrapping_add(2));
}

/// The master's sync report of a PP connection carries the delta; a
/// backup installs it and, once master, writes the header into the
/// retransmitted first segment and shifts later ones.
#[test]
fn a_backup_takes_over_an_adjusted_connection() {
    let (mut m, _) = director(Role::Master, PpVersion::V2, Some(SyncParams::default()));
    let mut out = Collect::default();
    let syn = frame(
        (MAC_GW, MAC_P0),
        F4.client,
        43000,
        F4.vip,
        80,
        ISN,
        None,
        SYN,
        &[],
        b"",
    );
    m.process(VecBuf::new(&syn), CLIENT_PORT, S, false, &mut out);
    let mut reports = Vec::new();
    for n in 0..3u32 {
        let a = frame(
            (MAC_GW, MAC_P0),
            F4.client,
            43000,
            F4.vip,
            80,
            ISN.wrapping_add(1),
            Some(RS_ISN + 1),
            0,
            &[],
            b"",
        );
        m.process(
            VecBuf::new(&a),
            CLIENT_PORT,
            (2 + u64::from(n)) * S,
            false,
            &mut out,
        );
    }
    for e in &out.events {
        if let Event::Sync(c) = e {
            reports.push(*c);
        }
    }
    let r = reports.last().expect("a sync report");
    let hdr = proxyproto::header(
        PpVersion::V2,
        Endpoint::new(ip(F4.client), 43000),
        Endpoint::new(ip(F4.vip), 80),
    )
    .expect("header");
    let sd = r.seq.expect("SEQ_DATA");
    assert_eq!(sd.in_seq, [ISN.wrapping_add(1), hdr.len() as u32, 0]);
    let mut b = MessageBuilder::new(1, 1444);
    assert!(b.push(r));
    let got = decode(b.bytes(), 1).expect("valid").entries[0]
        .expect("entry")
        .conn;

    let (mut backup, counters) = director(Role::Backup, PpVersion::V2, None);
    backup.install_conn(&got, 5 * S, true).expect("installed");
    let c = conns(&backup);
    assert_eq!(c[0].seq.map(|s| s.in_seq.words()), Some(sd.in_seq));
    // Failover: the backup becomes master.
    let (master_again, _) = director(Role::Master, PpVersion::V2, None);
    backup.install(master_again.snapshot().clone());
    let lport = c[0].local.expect("fullnat").1;
    let first = frame(
        (MAC_GW, MAC_P0),
        F4.client,
        43000,
        F4.vip,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        0,
        &[],
        b"abc",
    );
    let mut out = Collect::default();
    backup.process(VecBuf::new(&first), CLIENT_PORT, 6 * S, false, &mut out);
    let want = frame(
        (MAC_P1, MAC_RS1),
        F4.laddr,
        lport,
        F4.rs,
        80,
        ISN.wrapping_add(1),
        Some(RS_ISN + 1),
        0,
        &[],
        &[hdr.bytes(), b"abc"].concat(),
    );
    assert_eq!(sent(&mut out), want);
    assert_eq!(counters.pp.inserted_v2.get(), 1);
    let later = frame(
        (MAC_GW, MAC_P0),
        F4.client,
        43000,
        F4.vip,
        80,
        ISN.wrapping_add(4),
        Some(RS_ISN + 1),
        0,
        &[],
        b"d",
    );
    backup.process(VecBuf::new(&later), CLIENT_PORT, 6 * S, false, &mut out);
    let f = sent(&mut out);
    let s = SlicedPacket::from_ethernet(&f).expect("parse");
    let Some(TransportSlice::Tcp(t)) = s.transport else {
        panic!("tcp")
    };
    assert_eq!(
        t.sequence_number(),
        ISN.wrapping_add(4).wrapping_add(hdr.len() as u32)
    );
}

#[test]
fn a_full_side_table_refuses_new_pp_connections() {
    // 1024 records: room for 8 adjusted connections.
    let (mut p, counters) = director(Role::Master, PpVersion::V1, None);
    let out = syns(&mut p, 1000..1020);
    assert_eq!(out.tx.len(), 8);
    assert_eq!(counters.pp.side_full.get(), 12);
    assert_eq!(
        conns(&p).len(),
        8,
        "refused connections leave nothing behind"
    );
}

#[test]
fn the_side_table_takes_the_configured_number_of_adjusted_connections() {
    // [dataplane] seq_adj_conns = 16: twice the automatic 1024 / 128
    let (mut p, counters) = director_with(Role::Master, PpVersion::V1, None, 16);
    assert_eq!(p.conns_v4().seq_adj_usage(), (0, 16));
    assert_eq!(p.conns_v6().seq_adj_usage(), (0, 16));
    let out = syns(&mut p, 1000..1020);
    assert_eq!(out.tx.len(), 16);
    assert_eq!(counters.pp.side_full.get(), 4);
    // never more than the table holds
    let (p, _) = director_with(Role::Master, PpVersion::V1, None, 1 << 20);
    assert_eq!(p.conns_v4().seq_adj_usage().1, 1024);
}

/// SYNs from the v4 client's ports `ports` to the v4 VIP, and what left.
fn syns(p: &mut Pipeline<VecBuf>, ports: std::ops::Range<u16>) -> Collect {
    let mut out = Collect::default();
    for cport in ports {
        let syn = frame(
            (MAC_GW, MAC_P0),
            F4.client,
            cport,
            F4.vip,
            80,
            ISN,
            None,
            SYN,
            &[],
            b"",
        );
        p.process(VecBuf::new(&syn), CLIENT_PORT, S, false, &mut out);
    }
    out
}
