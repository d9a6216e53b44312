//! Connection sync: the LVS sync protocol v1 wire format byte for byte
//! (messages laid out as Linux `ip_vs_sync.c` builds them), malformed and
//! foreign messages, and master → wire → backup → failover on two
//! pipelines.

mod common;

use common::*;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::{FwdMode, TcpState};
use dataplane::flow::{HashKey, Ownership};
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::sched::SchedKind;
use dataplane::snapshot::{Role, Snapshot, SnapshotBuilder};
use dataplane::stats::{PathDrop, WorkerCounters};
use dataplane::sync::codec::*;
use dataplane::sync::{decode, max_mesg_len, owners, SyncParams};
use dataplane::wire::ethernet::MacAddr;
use etherparse::SlicedPacket;
use proptest::prelude::*;
use std::net::IpAddr;
use std::sync::Arc;

// ---------------------------------------------------------------- wire

/// One IPv4 entry, no options: struct ip_vs_sync_v4 (36 bytes).
#[rustfmt::skip]
const V4_ENTRY: [u8; 36] = [
    0x00,                   // type: 0 = IPv4
    0x06,                   // protocol: TCP
    0x00, 0x24,             // ver_size: version 0 | size 36
    0x00, 0x00, 0x00, 0x00, // flags: IP_VS_CONN_F_MASQ, active
    0x00, 0x01,             // state: IP_VS_TCP_S_ESTABLISHED
    0x9c, 0x40,             // cport 40000
    0x00, 0x50,             // vport 80
    0x1f, 0x90,             // dport 8080
    0x00, 0x00, 0x00, 0x00, // fwmark 0
    0x00, 0x00, 0x03, 0x84, // timeout 900 s
    198, 18, 0, 10,         // caddr
    198, 18, 0, 100,        // vaddr
    198, 19, 0, 11,         // daddr
];

fn header(syncid: u8, size: u16, nr: u8) -> Vec<u8> {
    // struct ip_vs_sync_mesg: reserved 0, syncid, size (BE), nr_conns,
    // version 1, spare 0
    let s = size.to_be_bytes();
    vec![0, syncid, s[0], s[1], nr, 1, 0, 0]
}

fn one_v4_message() -> Vec<u8> {
    let mut m = header(5, 44, 1);
    m.extend_from_slice(&V4_ENTRY);
    m
}

/// Two entries: IPv4 TCP with the sequence option (62 bytes, so 2 bytes
/// of padding follow), then IPv6 UDP with persistence-engine data and
/// name (83 bytes, the last entry: no padding).
fn two_entry_message() -> Vec<u8> {
    let mut m = header(5, 8 + 62 + 2 + 83, 2);
    #[rustfmt::skip]
    m.extend_from_slice(&[
        0x00, 0x06,             // IPv4, TCP
        0x00, 0x3e,             // size 62 = 36 + 2 + 24
        0x00, 0x00, 0x06, 0x00, // flags: MASQ | IN_SEQ | OUT_SEQ
        0x00, 0x04,             // state: FIN_WAIT
        0x9c, 0x41,             // cport 40001
        0x00, 0x50,             // vport 80
        0x1f, 0x90,             // dport 8080
        0x00, 0x00, 0x00, 0x00, // fwmark
        0x00, 0x00, 0x00, 0x78, // timeout 120
        198, 18, 0, 11,
        198, 18, 0, 100,
        198, 19, 0, 12,
        0x01, 24,               // IPVS_OPT_SEQ_DATA, length 24
        0, 0, 0, 1,  0, 0, 0, 2,  0, 0, 0, 3,  // in_seq: init, delta, prev
        0, 0, 0, 4,  0, 0, 0, 5,  0, 0, 0, 6,  // out_seq
        0x00, 0x00,             // padding to a 4-byte boundary
    ]);
    #[rustfmt::skip]
    m.extend_from_slice(&[
        0x01, 0x11,             // type: STYPE_F_INET6, UDP
        0x00, 0x53,             // size 83 = 72 + 2 + 4 + 2 + 3
        0x00, 0x00, 0x01, 0x83, // flags: DROUTE | NOOUTPUT | INACTIVE
        0x00, 0x00,             // state 0 (UDP)
        0x14, 0xe9,             // cport 5353
        0x00, 0x35,             // vport 53
        0x00, 0x35,             // dport 53
        0x00, 0x00, 0x00, 0x07, // fwmark 7
        0x00, 0x00, 0x01, 0x2c, // timeout 300
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,   // caddr
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0,   // vaddr
        0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11,   // daddr
        0x02, 4, b'a', b'b', b'c', b'd', // IPVS_OPT_PE_DATA
        0x03, 3, b's', b'i', b'p',       // IPVS_OPT_PE_NAME
    ]);
    m
}

#[test]
fn parses_linux_v4_message() {
    let m = one_v4_message();
    let msg = decode(&m, 5).expect("valid");
    assert_eq!(msg.syncid, 5);
    assert_eq!(msg.entries.len(), 1);
    let e = msg.entries[0].expect("entry");
    let c = e.conn;
    assert_eq!(c.proto, 6);
    assert_eq!(c.fwd(), Some(FwdMode::Nat));
    assert_eq!(c.tcp_state(), TcpState::Established);
    assert_eq!((c.client, c.cport), (v4("198.18.0.10"), 40000));
    assert_eq!((c.vip, c.vport), (v4("198.18.0.100"), 80));
    assert_eq!((c.rip, c.rport), (v4("198.19.0.11"), 8080));
    assert_eq!((c.timeout, c.fwmark, c.local, c.seq), (900, 0, None, None));
    // sync id 0 on the backup accepts any
    assert!(decode(&m, 0).is_ok());
}

#[test]
fn encoder_reproduces_linux_v4_message() {
    let c = decode(&one_v4_message(), 5).expect("valid").entries[0]
        .expect("entry")
        .conn;
    let mut b = MessageBuilder::new(5, max_mesg_len(1500));
    assert!(b.push(&c));
    assert_eq!(b.bytes(), &one_v4_message()[..]);
    // and from a connection built by hand, as the workers do
    let mut c2 = c;
    c2.flags = SyncConn::flags_for(FwdMode::Nat, false, true);
    assert_eq!(c2, c);
}

#[test]
fn parses_and_reproduces_options_padding_and_v6() {
    let m = two_entry_message();
    let msg = decode(&m, 5).expect("valid");
    assert_eq!(msg.entries.len(), 2);
    let a = msg.entries[0].expect("v4");
    assert_eq!(a.conn.tcp_state(), TcpState::FinWait);
    assert_eq!(
        a.conn.seq,
        Some(SeqData {
            in_seq: [1, 2, 3],
            out_seq: [4, 5, 6]
        })
    );
    let b = msg.entries[1].expect("v6");
    assert_eq!(b.conn.proto, 17);
    assert_eq!(b.conn.fwd(), Some(FwdMode::Dr));
    assert_eq!(b.conn.flags, F_DROUTE | F_NOOUTPUT | F_INACTIVE);
    assert_eq!((b.conn.client, b.conn.cport), (v6("2001:db8::10"), 5353));
    assert_eq!((b.conn.vip, b.conn.vport), (v6("2001:db8::100"), 53));
    assert_eq!((b.conn.rip, b.conn.rport), (v6("2001:db8:1::11"), 53));
    assert_eq!((b.conn.fwmark, b.conn.timeout), (7, 300));
    assert_eq!(b.pe_data, Some(&b"abcd"[..]));
    assert_eq!(b.pe_name, Some(&b"sip"[..]));

    let mut out = MessageBuilder::new(5, max_mesg_len(1500));
    assert!(out.push(&a.conn));
    assert!(out.push_pe(&b.conn, b.pe_data, b.pe_name));
    assert_eq!(out.bytes(), &m[..]);
}

/// The SEQ_DATA option as the kernel lays out `struct
/// ip_vs_sync_conn_options` (six `__be32`: in_seq then out_seq, each
/// init_seq, delta, previous_delta), decoded into the deltas the packet
/// path applies, and encoded back to the same bytes.
#[test]
fn seq_data_option_carries_the_deltas_linux_compatible() {
    let mut m = header(9, 8 + 62, 1);
    let mut e = V4_ENTRY.to_vec();
    e[2..4].copy_from_slice(&62u16.to_be_bytes());
    e[6] = 0x06; // IN_SEQ | OUT_SEQ
    #[rustfmt::skip]
    e.extend_from_slice(&[
        0x01, 24,
        0xff, 0xff, 0xff, 0x00,  0x00, 0x00, 0x00, 0x26,  0x00, 0x00, 0x00, 0x00, // in
        0x80, 0x00, 0x00, 0x01,  0xff, 0xff, 0xff, 0xf0,  0x00, 0x00, 0x00, 0x08, // out
    ]);
    m.extend_from_slice(&e);
    let msg = decode(&m, 9).expect("valid");
    let c = msg.entries[0].expect("entry").conn;
    assert_eq!(c.flags & F_SEQ_MASK, F_SEQ_MASK);
    let s = c.seq.expect("seq option").conn_seq();
    assert_eq!(
        (s.in_seq.init_seq, s.in_seq.delta, s.in_seq.previous_delta),
        (0xffff_ff00, 38, 0)
    );
    assert_eq!(
        (
            s.out_seq.init_seq,
            s.out_seq.delta,
            s.out_seq.previous_delta
        ),
        (0x8000_0001, 0xffff_fff0, 8)
    );
    // A client segment just past the wrap gets the in delta.
    assert_eq!(s.in_seq.fix_seq(0x10), 0x36);
    assert_eq!(SeqData::from_conn_seq(&s), c.seq.expect("seq"));
    let mut out = MessageBuilder::new(9, max_mesg_len(1500));
    assert!(out.push(&c));
    assert_eq!(out.bytes(), &m[..]);

    // The encoder never sends the SEQ flags without the option.
    let mut bare = c;
    bare.seq = None;
    let mut out = MessageBuilder::new(9, max_mesg_len(1500));
    assert!(out.push(&bare));
    let back = decode(out.bytes(), 9).expect("valid");
    let b = back.entries[0].expect("entry").conn;
    assert_eq!((b.flags & F_SEQ_MASK, b.seq), (0, None));
}

#[test]
fn fullnat_local_travels_as_an_optional_rvs_option() {
    let c = SyncConn {
        proto: 6,
        flags: SyncConn::flags_for(FwdMode::FullNat, false, true),
        state: TcpState::Established as u16,
        client: v4("198.18.0.10"),
        cport: 40000,
        vip: v4("198.18.0.100"),
        vport: 80,
        rip: v4("198.19.0.11"),
        rport: 8080,
        local: Some((v4("198.19.0.250"), 1030)),
        fwmark: 0,
        timeout: 900,
        seq: None,
    };
    let mut b = MessageBuilder::new(5, 1444);
    assert!(b.push(&c));
    let mut want = header(5, 8 + 44, 1);
    want.extend_from_slice(&V4_ENTRY);
    want[8 + 3] = 44; // ver_size: 36 + 2 + 6
    #[rustfmt::skip]
    want.extend_from_slice(&[
        0x60, 6,                // RVS_OPT_FNAT_LOCAL | IPVS_OPT_F_PARAM, length 6
        198, 19, 0, 250,        // local address
        0x04, 0x06,             // local port 1030
    ]);
    assert_eq!(b.bytes(), &want[..]);
    let back = decode(b.bytes(), 5).expect("valid").entries[0].expect("entry");
    assert_eq!(back.conn, c);
    assert_eq!(back.conn.fwd(), Some(FwdMode::FullNat));
}

#[test]
fn unknown_options_optional_skipped_mandatory_skip_the_entry() {
    // entry 1: an unknown optional option (0x45) -> used;
    // entry 2: an unknown mandatory option (0x05) -> skipped alone.
    let mut m = header(5, 0, 2);
    for ty in [0x45u8, 0x05] {
        let mut e = V4_ENTRY.to_vec();
        e[3] = 36 + 2 + 2;
        e.extend_from_slice(&[ty, 2, 0xaa, 0xbb]);
        m.extend_from_slice(&e);
    }
    let n = m.len() as u16;
    m[2..4].copy_from_slice(&n.to_be_bytes());
    let msg = decode(&m, 5).expect("valid");
    assert!(msg.entries[0].is_ok());
    assert_eq!(msg.entries[1], Err(EntrySkip::UnknownMandatoryOption));
}

#[test]
fn entry_level_problems_skip_only_that_entry() {
    type Case = (fn(&mut [u8]), EntrySkip);
    let cases: [Case; 6] = [
        (|e| e[1] = 1, EntrySkip::UnknownProtocol),       // ICMP
        (|e| e[9] = 11, EntrySkip::BadState),             // TCP state 11
        (|e| e[6] = 0x10, EntrySkip::Template),           // IP_VS_CONN_F_TEMPLATE
        (|e| e[7] = 0x04, EntrySkip::UnsupportedForward), // BYPASS
        (|e| e[6] = 0x06, EntrySkip::SeqWithoutOption),   // IN_SEQ|OUT_SEQ, no option
        (|e| e[6] = 0x02, EntrySkip::SeqWithoutOption),   // OUT_SEQ alone
    ];
    for (f, why) in cases {
        let mut m = header(5, 8 + 36 + 36, 2);
        let mut bad = V4_ENTRY;
        f(&mut bad);
        m.extend_from_slice(&bad);
        m.extend_from_slice(&V4_ENTRY);
        let msg = decode(&m, 5).expect("message valid");
        assert_eq!(msg.entries[0], Err(why));
        assert!(msg.entries[1].is_ok());
    }
}

#[test]
fn malformed_and_foreign_messages_are_dropped_by_reason() {
    let good = one_v4_message();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = good.clone();
        f(&mut m);
        decode(&m, 5).err()
    };
    assert_eq!(with(&|_| {}), None);
    assert_eq!(with(&|m| m[1] = 6), Some(DecodeError::SyncId));
    assert_eq!(with(&|m| m[5] = 2), Some(DecodeError::BadVersion));
    assert_eq!(with(&|m| m[6] = 1), Some(DecodeError::BadVersion));
    assert_eq!(with(&|m| m[3] = 45), Some(DecodeError::BadSize));
    assert_eq!(with(&|m| m[3] = 40), Some(DecodeError::BadSize));
    assert_eq!(with(&|m| m.truncate(3)), Some(DecodeError::TooShort));
    // v0: struct ip_vs_sync_mesg_v0 { nr_conns, syncid, size } + 24-byte entries
    let mut v0 = vec![1, 5, 0, 28];
    v0.extend_from_slice(&[0; 24]);
    assert_eq!(decode(&v0, 5).err(), Some(DecodeError::V0));
    // nr_conns promises a second entry
    assert_eq!(with(&|m| m[4] = 2), Some(DecodeError::Truncated));
    // entry size past the end, below the fixed part, version bits set
    assert_eq!(with(&|m| m[11] = 40), Some(DecodeError::EntryOverrun));
    assert_eq!(with(&|m| m[11] = 20), Some(DecodeError::EntryTooShort));
    assert_eq!(with(&|m| m[10] = 0x10), Some(DecodeError::EntryVersion));
    assert_eq!(with(&|m| m[8] = 2), Some(DecodeError::BadType));
    // options: framing broken (zero length, running past the entry)
    let opt = |o: &[u8]| {
        let mut m = good.clone();
        m.extend_from_slice(o);
        m[11] = (36 + o.len()) as u8;
        let n = m.len() as u16;
        m[2..4].copy_from_slice(&n.to_be_bytes());
        decode(&m, 5).err()
    };
    assert_eq!(opt(&[0x45, 0]), Some(DecodeError::BadOption));
    assert_eq!(opt(&[0x45, 3, 0]), Some(DecodeError::BadOption));
    assert_eq!(opt(&[0x01, 2, 0, 0]), Some(DecodeError::BadOption)); // seq not 24
    assert_eq!(opt(&[0x45]), Some(DecodeError::BadOption));
    // every truncation of a valid message is refused, size patched or not
    let m = two_entry_message();
    for cut in 0..m.len() {
        assert!(decode(&m[..cut], 5).is_err(), "cut {cut}");
        let mut t = m[..cut].to_vec();
        if t.len() >= 4 {
            let n = t.len() as u16;
            t[2..4].copy_from_slice(&n.to_be_bytes());
            assert!(decode(&t, 5).is_err(), "patched cut {cut}");
        }
    }
}

#[test]
fn messages_fill_up_to_the_mtu_limit() {
    assert_eq!(max_mesg_len(1500), 4 + 24 * 60);
    assert_eq!(max_mesg_len(9000), 4 + 24 * 255);
    let c = decode(&one_v4_message(), 5).expect("valid").entries[0]
        .expect("entry")
        .conn;
    let mut b = MessageBuilder::new(1, max_mesg_len(1500));
    let mut n = 0;
    while b.push(&c) {
        n += 1;
    }
    // 8 + 36 * 39 = 1412 <= 1444 < 1448
    assert_eq!(n, 39);
    assert!(b.len() <= max_mesg_len(1500));
    let bytes = b.take();
    assert_eq!(decode(&bytes, 1).expect("valid").entries.len(), 39);
    assert!(b.is_empty());
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode(&bytes, 0);
        let _ = decode(&bytes, 5);
    }

    #[test]
    fn plausible_headers_never_panic(nr in 0u8..8, body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut m = header(5, 0, nr);
        m.extend_from_slice(&body);
        let n = m.len() as u16;
        m[2..4].copy_from_slice(&n.to_be_bytes());
        if let Ok(msg) = decode(&m, 5) {
            prop_assert!(msg.entries.len() == usize::from(nr));
        }
    }
}

// ------------------------------------------------- master → backup

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
}

fn director(role: Role, sync: Option<SyncParams>) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let svc = service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 8080), (v4("198.19.0.12"), 8080)],
        FwdMode::Nat,
    );
    let snap = SnapshotBuilder::new(1, ports(), routes())
        .role(role)
        .sync(sync)
        .service(svc)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        Arc::new(snap),
        HashKey::random(),
        counters.clone(),
    )
    .expect("pipeline");
    (p, counters)
}

fn real_counts(snap: &Snapshot, rip: IpAddr) -> (u32, u32) {
    let s = snap.service(0).expect("svc");
    let r = s
        .sched
        .reals()
        .iter()
        .find(|r| r.addr == rip)
        .expect("real");
    (r.counters.active(), r.counters.inactive())
}

const S: u64 = 1_000_000_000;

#[test]
fn no_sync_events_unless_enabled() {
    let (mut m, _) = director(Role::Master, None);
    let mut out = Collect::default();
    for (i, (syn, ack)) in [(true, false), (false, true), (false, true), (false, true)]
        .into_iter()
        .enumerate()
    {
        let p = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, syn, ack, b"x");
        m.process(
            VecBuf::new(&p),
            CLIENT_PORT,
            (10 + i as u64) * S,
            false,
            &mut out,
        );
    }
    assert!(!out.events.iter().any(|e| matches!(e, Event::Sync(_))));
}

#[test]
fn synced_connection_survives_failover() {
    let (mut master, _) = director(Role::Master, Some(SyncParams::default()));
    let mut out = Collect::default();
    master.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    master.learn(
        v4("198.19.0.12"),
        SERVER_PORT,
        MacAddr(MAC_RS2),
        0,
        &mut out,
    );
    // SYN (packet 1), ACK (2: ESTABLISHED), data (3: threshold) from the
    // client; the server's SYN-ACK in between.
    let c = "198.18.0.10";
    let syn = tcp4(c, 40000, "198.18.0.100", 80, true, false, b"");
    master.process(VecBuf::new(&syn), CLIENT_PORT, 10 * S, false, &mut out);
    let (_, fwd) = out.tx.last().expect("SYN forwarded").clone();
    let (_, _, rip, rport, _) = check_out(&fwd);
    let synack = tcp4(&rip.to_string(), rport, c, 40000, true, true, b"");
    master.process(VecBuf::new(&synack), SERVER_PORT, 10 * S, false, &mut out);
    let ack = tcp4(c, 40000, "198.18.0.100", 80, false, true, b"");
    master.process(VecBuf::new(&ack), CLIENT_PORT, 11 * S, false, &mut out);
    let syncs = |o: &Collect| {
        o.events
            .iter()
            .filter_map(|e| match e {
                Event::Sync(c) => Some(*c),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(syncs(&out).is_empty(), "not before the 3rd client packet");
    let data = tcp4(c, 40000, "198.18.0.100", 80, false, true, b"GET /");
    master.process(VecBuf::new(&data), CLIENT_PORT, 12 * S, false, &mut out);
    let sent = syncs(&out);
    assert_eq!(sent.len(), 1);
    let sc = sent[0];
    assert_eq!(sc.tcp_state(), TcpState::Established);
    assert_eq!((sc.rip, sc.rport), (rip, rport));
    assert_eq!(sc.timeout, 900);

    // over the wire
    let mut b = MessageBuilder::new(9, max_mesg_len(1500));
    assert!(b.push(&sc));
    let bytes = b.take();
    let msg = decode(&bytes, 9).expect("valid");

    // the backup installs it on the owner of the client endpoint
    let (mut backup, bc) = director(Role::Backup, None);
    let own = Ownership::new(HashKey::random(), 4);
    let (owner, second) = owners(&own, &sc);
    assert!(owner < 4 && second.is_none());
    for e in &msg.entries {
        backup
            .install_conn(&e.expect("entry").conn, 13 * S, true)
            .expect("installed");
    }
    let conns: Vec<_> = backup.conns_v4().iter().map(|(_, c)| *c).collect();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].tcp_state(), TcpState::Established);
    assert!(conns[0].is_active());
    assert_eq!(conns[0].expires(), 13 + 900);
    assert_eq!(real_counts(backup.snapshot(), rip), (1, 0));
    // a second sync of the same connection updates, never duplicates
    backup.install_conn(&sc, 14 * S, true).expect("again");
    assert_eq!(backup.conns_v4().len(), 1);
    assert_eq!(real_counts(backup.snapshot(), rip), (1, 0));

    // a backup drops the VIP's new flows...
    let mut bout = Collect::default();
    let other = tcp4("198.18.0.99", 1234, "198.18.0.100", 80, true, false, b"");
    backup.process(VecBuf::new(&other), CLIENT_PORT, 15 * S, false, &mut bout);
    assert_eq!(
        bc.drops()
            .into_iter()
            .find(|(r, _)| *r == PathDrop::Backup.name())
            .map(|x| x.1),
        Some(1)
    );

    // failover: the backup becomes master and forwards a mid-connection
    // ACK to the same real server, no SYN seen.
    let svc = service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 8080), (v4("198.19.0.12"), 8080)],
        FwdMode::Nat,
    );
    let promoted = SnapshotBuilder::new(2, ports(), routes())
        .role(Role::Master)
        .service(svc)
        .build()
        .expect("snapshot");
    backup.install(Arc::new(promoted));
    backup.learn(rip, SERVER_PORT, MacAddr(MAC_RS1), 15 * S, &mut bout);
    bout.tx.clear();
    let mid = tcp4(c, 40000, "198.18.0.100", 80, false, true, b"more");
    backup.process(VecBuf::new(&mid), CLIENT_PORT, 16 * S, false, &mut bout);
    assert_eq!(bout.tx.len(), 1, "forwarded");
    let (port, pkt) = &bout.tx[0];
    assert_eq!(*port, SERVER_PORT);
    let (src, sport, dst, dport, _) = check_out(pkt);
    assert_eq!((src, sport), (v4(c), 40000));
    assert_eq!((dst, dport), (rip, rport));

    // without the sync, the same ACK would have been dropped
    let (mut cold, cc) = director(Role::Master, None);
    let mut cout = Collect::default();
    cold.process(VecBuf::new(&mid), CLIENT_PORT, 16 * S, false, &mut cout);
    assert!(cout.tx.is_empty());
    assert_eq!(
        cc.drops()
            .into_iter()
            .find(|(r, _)| *r == PathDrop::TcpNoConn.name())
            .map(|x| x.1),
        Some(1)
    );
}

#[test]
fn master_reports_on_the_threshold_and_period_packets() {
    let (mut m, _) = director(Role::Master, Some(SyncParams::default()));
    let mut out = Collect::default();
    m.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    m.learn(
        v4("198.19.0.12"),
        SERVER_PORT,
        MacAddr(MAC_RS2),
        0,
        &mut out,
    );
    let mut at = Vec::new();
    for n in 1..=120u64 {
        let p = tcp4(
            "198.18.0.20",
            41000,
            "198.18.0.100",
            80,
            n == 1,
            n > 1,
            b"d",
        );
        let before = out.events.len();
        m.process(VecBuf::new(&p), CLIENT_PORT, (20 + n) * S, false, &mut out);
        if out.events[before..]
            .iter()
            .any(|e| matches!(e, Event::Sync(_)))
        {
            at.push(n);
        }
    }
    // client packets 3, 53, 103 (SYN = 1): sync_threshold "3 50"
    assert_eq!(at, vec![3, 53, 103]);
}

#[test]
fn fullnat_connection_installs_with_its_local_endpoint() {
    // owners(): the client's owner, plus the local port's owner when it
    // is another worker (that copy is not counted).
    let own = Ownership::new(HashKey::from_seed(3), 4);
    let mut sc = SyncConn {
        proto: 6,
        flags: SyncConn::flags_for(FwdMode::FullNat, false, true),
        state: TcpState::Established as u16,
        client: v4("198.18.0.10"),
        cport: 40000,
        vip: v4("198.18.0.100"),
        vport: 80,
        rip: v4("198.19.0.11"),
        rport: 8080,
        local: Some((v4("198.19.0.250"), 1024)),
        fwmark: 0,
        timeout: 900,
        seq: None,
    };
    let (first, _) = owners(&own, &sc);
    let lport = (1024..2048)
        .find(|p| own.owner::<dataplane::flow::V4>("198.19.0.250".parse().expect("a"), *p) != first)
        .expect("some port on another worker");
    sc.local = Some((v4("198.19.0.250"), lport));
    let (o1, o2) = owners(&own, &sc);
    assert_eq!(o1, first);
    assert_eq!(
        o2,
        Some(own.owner::<dataplane::flow::V4>("198.19.0.250".parse().expect("a"), lport))
    );

    // Through the wire and onto a FullNAT backup: the reply to the local
    // endpoint is translated back to VIP → client.
    let mut b = MessageBuilder::new(1, 1444);
    assert!(b.push(&sc));
    let got = decode(b.bytes(), 1).expect("valid").entries[0]
        .expect("entry")
        .conn;
    let svc = service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 8080)],
        FwdMode::FullNat,
    );
    let snap = SnapshotBuilder::new(1, ports(), routes())
        .role(Role::Backup)
        .service(svc)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let mut backup: Pipeline<VecBuf> = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        Arc::new(snap),
        HashKey::random(),
        counters,
    )
    .expect("pipeline");
    backup.install_conn(&got, S, true).expect("installed");
    let c = *backup.conns_v4().iter().next().expect("one").1;
    assert_eq!(c.fwd(), FwdMode::FullNat);
    assert_eq!(
        (c.local(), c.lport()),
        ("198.19.0.250".parse().expect("a"), lport)
    );
    assert_eq!(real_counts(backup.snapshot(), v4("198.19.0.11")), (1, 0));
    let mut out = Collect::default();
    backup.learn(v4("198.18.0.10"), CLIENT_PORT, MacAddr(MAC_GW), S, &mut out);
    let reply = tcp4(
        "198.19.0.11",
        8080,
        "198.19.0.250",
        lport,
        false,
        true,
        b"ok",
    );
    backup.process(VecBuf::new(&reply), SERVER_PORT, 2 * S, false, &mut out);
    assert_eq!(out.tx.len(), 1);
    let (src, sport, dst, dport, _) = check_out(&out.tx[0].1);
    assert_eq!(
        (src, sport, dst, dport),
        (v4("198.18.0.100"), 80, v4("198.18.0.10"), 40000)
    );
}

/// seq/ack of a TCP frame (etherparse; `check_out` verified its checksums).
fn seq_ack(frame: &[u8]) -> (u32, u32) {
    let p = SlicedPacket::from_ethernet(frame).expect("parses");
    match p.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            (t.sequence_number(), t.acknowledgment_number())
        }
        _ => panic!("not tcp"),
    }
}

/// A backup installs a connection with its SEQ_DATA deltas and applies
/// them to both directions in the packet path, across the wrap of the
/// sequence space, with valid checksums.
#[test]
fn synced_sequence_deltas_are_installed_and_applied() {
    let seq = SeqData {
        // client stream: +8 after 0xffff_fff0 (so the server's ack 1 is
        // past the adjusted boundary 0xffff_fff8 and maps to 0xffff_fff9)
        in_seq: [0xffff_fff0, 8, 0],
        // server stream: +0x200 after 0xffff_ff00, previous delta 5
        out_seq: [0xffff_ff00, 0x200, 5],
    };
    let sc = SyncConn {
        proto: 6,
        flags: SyncConn::flags_for(FwdMode::FullNat, false, true) | F_SEQ_MASK,
        state: TcpState::Established as u16,
        client: v4("198.18.0.10"),
        cport: 40000,
        vip: v4("198.18.0.100"),
        vport: 80,
        rip: v4("198.19.0.11"),
        rport: 8080,
        local: Some((v4("198.19.0.250"), 1024)),
        fwmark: 0,
        timeout: 900,
        seq: Some(seq),
    };
    let mut b = MessageBuilder::new(1, 1444);
    assert!(b.push(&sc));
    let got = decode(b.bytes(), 1).expect("valid").entries[0]
        .expect("entry")
        .conn;
    assert_eq!(got.seq, Some(seq));
    let svc = service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 8080)],
        FwdMode::FullNat,
    );
    let snap = SnapshotBuilder::new(1, ports(), routes())
        .role(Role::Backup)
        .service(svc)
        .build()
        .expect("snapshot");
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let mut backup: Pipeline<VecBuf> = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        Arc::new(snap),
        HashKey::random(),
        counters.clone(),
    )
    .expect("pipeline");
    backup.install_conn(&got, S, true).expect("installed");
    let mut out = Collect::default();
    backup.learn(v4("198.18.0.10"), CLIENT_PORT, MacAddr(MAC_GW), S, &mut out);
    backup.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        S,
        &mut out,
    );

    // Server → client: seq 1000 + 0x200, ack 1 - 8 (wraps).
    let reply = tcp4(
        "198.19.0.11",
        8080,
        "198.19.0.250",
        1024,
        false,
        true,
        b"ok",
    );
    backup.process(VecBuf::new(&reply), SERVER_PORT, 2 * S, false, &mut out);
    assert_eq!(out.tx.len(), 1);
    let (src, sport, dst, dport, _) = check_out(&out.tx[0].1);
    assert_eq!(
        (src, sport, dst, dport),
        (v4("198.18.0.100"), 80, v4("198.18.0.10"), 40000)
    );
    assert_eq!(seq_ack(&out.tx[0].1), (1000 + 0x200, 0xffff_fff9));

    // Client → server: seq 1000 + 8; ack 1 is not past the server
    // boundary 0x100, so previous_delta 5 applies: 1 - 5 wraps.
    let req = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, false, true, b"hi");
    backup.process(VecBuf::new(&req), CLIENT_PORT, 3 * S, false, &mut out);
    assert_eq!(out.tx.len(), 2);
    let (src, sport, dst, dport, _) = check_out(&out.tx[1].1);
    assert_eq!(
        (src, sport, dst, dport),
        (v4("198.19.0.250"), 1024, v4("198.19.0.11"), 8080)
    );
    assert_eq!(seq_ack(&out.tx[1].1), (1008, 0xffff_fffc));
    assert_eq!(counters.seq_adjusted.get(), 2);

    // The side table holds it under the record's index.
    let (idx, _) = backup.conns_v4().iter().next().expect("one");
    assert_eq!(
        backup.conns_v4().seq_adj(idx).copied(),
        Some(seq.conn_seq())
    );
    assert_eq!(backup.conns_v4().seq_adj_usage().0, 1);
}

/// A master whose connection carries deltas reports them in its sync
/// messages (SEQ_DATA with IN_SEQ|OUT_SEQ), and adjusts its own packets.
#[test]
fn master_sync_reports_carry_the_deltas() {
    let (mut m, counters) = director(Role::Master, Some(SyncParams::default()));
    let mut out = Collect::default();
    m.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    m.learn(
        v4("198.19.0.12"),
        SERVER_PORT,
        MacAddr(MAC_RS2),
        0,
        &mut out,
    );
    let seq = SeqData {
        in_seq: [500, 28, 0],
        out_seq: [0, 0, 0],
    };
    let mut reports = Vec::new();
    for n in 1..=3u64 {
        let p = tcp4(
            "198.18.0.20",
            41000,
            "198.18.0.100",
            80,
            n == 1,
            n > 1,
            b"d",
        );
        m.process(VecBuf::new(&p), CLIENT_PORT, (20 + n) * S, false, &mut out);
        if n == 1 {
            assert!(m.set_seq_adj(
                (v4("198.18.0.20"), 41000),
                (v4("198.18.0.100"), 80),
                seq.conn_seq()
            ));
        }
    }
    for e in &out.events {
        if let Event::Sync(c) = e {
            reports.push(*c);
        }
    }
    assert_eq!(reports.len(), 1, "third client packet syncs");
    assert_eq!(reports[0].seq, Some(seq));
    assert_eq!(reports[0].flags & F_SEQ_MASK, F_SEQ_MASK);
    // Through the encoder and decoder unchanged.
    let mut b = MessageBuilder::new(1, 1444);
    assert!(b.push(&reports[0]));
    let got = decode(b.bytes(), 1).expect("valid").entries[0].expect("entry");
    assert_eq!(got.conn.seq, Some(seq));
    // Packets 2 and 3 (seq 1000, after init_seq 500) went out at 1028.
    assert_eq!(counters.seq_adjusted.get(), 2);
    let last = &out.tx.last().expect("sent").1;
    check_out(last);
    assert_eq!(seq_ack(last).0, 1028);
    // No such connection: refused.
    assert!(!m.set_seq_adj(
        (v4("198.18.0.21"), 1),
        (v4("198.18.0.100"), 80),
        seq.conn_seq()
    ));
}
