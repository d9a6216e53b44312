//! TOA through the whole packet path (Pipeline on VecBuf): a FullNAT TCP
//! service with `toa` gives the real server, IPv4 and IPv6, a SYN whose MSS
//! is lowered by the option's length, a SYN-ACK back to the client lowered
//! the same, option 254 carrying the client's address and port on the
//! handshake's ACK and on data until the client acknowledges the real
//! server's data, and exact lengths and checksums after the FullNAT
//! rewrite; a service without it is untouched; a segment whose options
//! leave no room goes without, counted.

mod common;

use common::*;
use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Pipeline, PipelineConfig};
use dataplane::sched::SchedKind;
use dataplane::snapshot::Role;
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use etherparse::{SlicedPacket, TcpOptionElement, TransportSlice};
use std::net::IpAddr;
use std::sync::Arc;

struct Fam {
    client: &'static str,
    vip: &'static str,
    rip: &'static str,
    laddr: &'static str,
    olen: usize,
}

const F4: Fam = Fam {
    client: "198.18.0.10",
    vip: "198.18.0.100",
    rip: "198.19.0.11",
    laddr: "198.19.0.250",
    olen: 8,
};
const F6: Fam = Fam {
    client: "2001:db8::10",
    vip: "2001:db8::100",
    rip: "2001:db8:1::11",
    laddr: "2001:db8:1::250",
    olen: 20,
};

fn setup(f: &Fam, toa: bool) -> (Pipeline<VecBuf>, Arc<WorkerCounters>, Collect) {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let mut svc = service(
        0,
        ip(f.vip),
        80,
        SchedKind::Rr,
        &[(ip(f.rip), 8080)],
        FwdMode::FullNat,
    );
    svc.toa = toa;
    let snap = snapshot(vec![svc], Role::Master);
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, 1));
    let mut p = Pipeline::new(
        &PipelineConfig::new(0, 1, 1024, 1024),
        snap,
        HashKey::from_seed(7),
        counters.clone(),
    )
    .unwrap();
    let mut out = Collect::default();
    p.learn(ip(f.rip), SERVER_PORT, MacAddr(MAC_RS1), 0, &mut out);
    p.learn(ip(f.client), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    (p, counters, out)
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    macs: ([u8; 6], [u8; 6]),
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    opts: &[TcpOptionElement],
    payload: &[u8],
) -> Vec<u8> {
    let flags = if syn { SYN } else { 0 };
    tcp_frame(
        macs, src, sport, dst, dport, seq, ack, flags, 65535, opts, payload,
    )
}

/// What a transmitted segment holds: (checked addresses/ports, options,
/// payload, the MSS option, the TOA option's bytes).
struct Seen {
    lport: u16,
    dport: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
    mss: Option<u16>,
    toa: Option<Vec<u8>>,
    ip_len: usize,
}

fn seen(frame: &[u8]) -> Seen {
    let (_, sport, _, dport, _) = check_out(frame);
    let p = SlicedPacket::from_ethernet(frame).unwrap();
    let ip_len = frame.len() - 14;
    let Some(TransportSlice::Tcp(t)) = p.transport else {
        panic!("tcp")
    };
    let mut mss = None;
    let mut toa = None;
    for o in t.options_iterator() {
        if let Ok(TcpOptionElement::MaximumSegmentSize(m)) = o {
            mss = Some(m);
        }
    }
    let opts = t.options().to_vec();
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => break,
            1 => i += 1,
            k => {
                let n = opts[i + 1] as usize;
                if k == 254 {
                    toa = Some(opts[i..i + n].to_vec());
                }
                i += n;
            }
        }
    }
    Seen {
        lport: sport,
        dport,
        options: opts,
        payload: t.payload().to_vec(),
        mss,
        toa,
        ip_len,
    }
}

fn want_toa(f: &Fam, port: u16) -> Vec<u8> {
    let mut v = vec![254, f.olen as u8];
    v.extend_from_slice(&port.to_be_bytes());
    match f.client.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
    }
    v
}

fn one(p: &mut Pipeline<VecBuf>, out: &mut Collect, frame: &[u8], port: u16) -> Vec<u8> {
    out.tx.clear();
    p.process(VecBuf::new(frame), port, 1, false, out);
    assert_eq!(out.tx.len(), 1, "forwarded");
    out.tx[0].1.clone()
}

fn handshake_and_data(f: &Fam) {
    let (mut p, counters, mut out) = setup(f, true);
    let cmac = (MAC_GW, MAC_P0);
    let smac = (MAC_RS1, MAC_P1);
    let mss = if f.olen == 8 { 1460 } else { 1440 };
    // SYN: MSS lowered by the option's length, no TOA.
    let syn = tcp(
        cmac,
        f.client,
        40001,
        f.vip,
        80,
        1000,
        None,
        true,
        &[TcpOptionElement::MaximumSegmentSize(mss)],
        b"",
    );
    let s = seen(&one(&mut p, &mut out, &syn, CLIENT_PORT));
    assert_eq!(s.dport, 8080);
    assert_eq!(s.mss, Some(mss - f.olen as u16));
    assert_eq!(s.toa, None);
    let lport = s.lport;
    // Its retransmission (the connection exists now): lowered the same.
    let s = seen(&one(&mut p, &mut out, &syn, CLIENT_PORT));
    assert_eq!((s.mss, s.lport), (Some(mss - f.olen as u16), lport));
    // SYN-ACK (ISN 5000): MSS lowered on its way to the client too.
    let sa = tcp(
        smac,
        f.rip,
        8080,
        f.laddr,
        lport,
        5000,
        Some(1001),
        true,
        &[TcpOptionElement::MaximumSegmentSize(1460)],
        b"",
    );
    let s = seen(&one(&mut p, &mut out, &sa, SERVER_PORT));
    assert_eq!((s.mss, s.dport), (Some(1460 - f.olen as u16), 40001));
    assert_eq!(counters.toa_mss_clamped.get(), 3);
    // The ACK completing the handshake: exactly the option, first.
    let ack = tcp(
        cmac,
        f.client,
        40001,
        f.vip,
        80,
        1001,
        Some(5001),
        false,
        &[],
        b"",
    );
    let s = seen(&one(&mut p, &mut out, &ack, CLIENT_PORT));
    assert_eq!(s.options, want_toa(f, 40001));
    assert_eq!(s.ip_len, ack.len() - 14 + f.olen);
    // The first data, with timestamps: the option, then the old options.
    let ts = [
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Timestamp(11, 22),
    ];
    let data = tcp(
        cmac,
        f.client,
        40001,
        f.vip,
        80,
        1001,
        Some(5001),
        false,
        &ts,
        b"GET /\r\n",
    );
    let s = seen(&one(&mut p, &mut out, &data, CLIENT_PORT));
    let mut want = want_toa(f, 40001);
    want.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 11, 0, 0, 0, 22]);
    assert_eq!(s.options, want);
    assert_eq!(s.payload, b"GET /\r\n");
    // A retransmission of it still gets it.
    let s = seen(&one(&mut p, &mut out, &data, CLIENT_PORT));
    assert_eq!(s.toa, Some(want_toa(f, 40001)));
    // Options full (36 bytes: 4 left): forwarded without, counted.
    let full = [
        TcpOptionElement::Timestamp(1, 2),
        TcpOptionElement::Timestamp(3, 4),
        TcpOptionElement::Timestamp(5, 6),
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
        TcpOptionElement::Noop,
    ];
    let d2 = tcp(
        cmac,
        f.client,
        40001,
        f.vip,
        80,
        1008,
        Some(5001),
        false,
        &full,
        b"x",
    );
    let s = seen(&one(&mut p, &mut out, &d2, CLIENT_PORT));
    assert_eq!(s.toa, None);
    assert_eq!(s.options.len(), 36);
    assert_eq!(counters.toa_no_room.get(), 1);
    // The server answers; the client acknowledges its data: no more TOA.
    let resp = tcp(
        smac,
        f.rip,
        8080,
        f.laddr,
        lport,
        5001,
        Some(1009),
        false,
        &[],
        b"200",
    );
    seen(&one(&mut p, &mut out, &resp, SERVER_PORT));
    let a2 = tcp(
        cmac,
        f.client,
        40001,
        f.vip,
        80,
        1009,
        Some(5004),
        false,
        &[],
        b"more",
    );
    let s = seen(&one(&mut p, &mut out, &a2, CLIENT_PORT));
    assert_eq!(s.toa, None);
    assert!(s.options.is_empty());
    let s = seen(&one(&mut p, &mut out, &ack, CLIENT_PORT));
    assert_eq!(s.toa, None, "the phase is over for good");
    assert_eq!(counters.toa_added.get(), 3);
    assert_eq!(counters.toa_evicted.get(), 0);
}

#[test]
fn toa_handshake_and_data_v4() {
    handshake_and_data(&F4);
}

#[test]
fn toa_handshake_and_data_v6() {
    handshake_and_data(&F6);
}

#[test]
fn without_toa_nothing_changes() {
    for f in [&F4, &F6] {
        let (mut p, counters, mut out) = setup(f, false);
        let syn = tcp(
            (MAC_GW, MAC_P0),
            f.client,
            40001,
            f.vip,
            80,
            1000,
            None,
            true,
            &[TcpOptionElement::MaximumSegmentSize(1460)],
            b"",
        );
        let s = seen(&one(&mut p, &mut out, &syn, CLIENT_PORT));
        assert_eq!(s.mss, Some(1460));
        let sa = tcp(
            (MAC_RS1, MAC_P1),
            f.rip,
            8080,
            f.laddr,
            s.lport,
            5000,
            Some(1001),
            true,
            &[TcpOptionElement::MaximumSegmentSize(1460)],
            b"",
        );
        assert_eq!(
            seen(&one(&mut p, &mut out, &sa, SERVER_PORT)).mss,
            Some(1460)
        );
        let ack = tcp(
            (MAC_GW, MAC_P0),
            f.client,
            40001,
            f.vip,
            80,
            1001,
            Some(5001),
            false,
            &[],
            b"x",
        );
        let s = seen(&one(&mut p, &mut out, &ack, CLIENT_PORT));
        assert!(s.options.is_empty() && s.toa.is_none());
        assert_eq!(counters.toa_added.get() + counters.toa_mss_clamped.get(), 0);
    }
}
