//! End-to-end TOA (issue 14 item 3): a FullNAT TCP service with
//! `toa = true` through the real rvsd (DPDK `net_af_packet` ports, kernel
//! TCP at both ends), IPv4 and IPv6. A packet capture on the real server's
//! interface (`scripts/e2e/capture.py`, a packet socket) shows, on every
//! connection from several client addresses and known source ports:
//! TCP option 254 in DPVS's format (length 8 / 20) carrying exactly the
//! client's address and port on the ACK completing the handshake and on
//! the first data segment, never on the SYN; the SYN's MSS lowered by the
//! option's length; every checksum right. The connections carry their
//! data (the kernel ignores the unknown option): HTTP answers and a 1 MiB
//! upload whose full-size segments all carry the option and still fit the
//! 1500-byte MTU. The TOA counters of the metrics saw it. (DPVS's `toa`
//! kernel module itself cannot be loaded here.)
//!
//! `cargo test -p control --test e2e_toa`

mod e2e;

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::netns::{self, plan, Mode, Topology};
use e2e::rvsd::{ep, serial, service, Conf, Rvsd};
use e2e::servers::{self, Capture, Captured, HTTP_PORT};

const BACKGROUND: &[&str] = &["not_ours"];
const LADDR4: &str = "198.18.3.10";
const LADDR6: &str = "2001:db8:0:3::10";
const UPLOAD: usize = 1 << 20;
const SYN: u64 = 0x02;
const RST: u64 = 0x04;
const ACK: u64 = 0x10;

/// The client endpoint as the TOA option names it.
fn toa_name(addr: &str, port: u16) -> String {
    ep(addr, port)
}

/// Segments of each connection the real server saw, keyed by the FullNAT
/// local port (its source port), client → real server only.
fn by_conn(caps: &[Captured], laddr: &str) -> BTreeMap<u64, Vec<Captured>> {
    let mut m: BTreeMap<u64, Vec<Captured>> = BTreeMap::new();
    for c in caps {
        if c.proto == "tcp" && c.src == laddr && c.dport == u64::from(HTTP_PORT) {
            m.entry(c.sport).or_default().push(c.clone());
        }
    }
    m
}

fn family(topo: &Topology, v6: bool) {
    let (vip, clients, laddr) = if v6 {
        (plan::VIP6, &topo.clients6, LADDR6)
    } else {
        (plan::VIP4, &topo.clients4, LADDR4)
    };
    let rs = &topo.servers[0];
    let rip = if v6 { &rs.ip6 } else { &rs.ip4 };
    let (olen, base_mss) = if v6 { (20u64, 1440u64) } else { (8, 1460) };
    let fam = if v6 { "IPv6" } else { "IPv4" };

    // Several clients, two source ports each: one connection per tuple.
    let cap = Capture::start(&rs.ns, &rs.dev, rip, 4000, 60);
    let mut want = Vec::new();
    for (i, src) in clients.iter().enumerate() {
        for k in 0..2u16 {
            let sport = 41000 + (i as u16) * 10 + k + if v6 { 500 } else { 0 };
            let r = servers::http_get_from_port(&topo.client, src, sport, vip, HTTP_PORT, 1);
            assert_eq!(r.len(), 1, "{fam} {src}:{sport}: {r:?}");
            assert!(r[0].ok, "{fam} {src}:{sport}: {r:?}");
            assert_eq!(r[0].body, format!("{}\n", rs.name), "{fam}: {r:?}");
            want.push(toa_name(src, sport));
        }
    }
    let caps = cap.finish(Duration::from_millis(1500));
    for c in &caps {
        assert!(c.l4_csum_ok && c.ip_csum_ok != Some(false), "{fam}: {c:?}");
    }
    let conns = by_conn(&caps, laddr);
    let mut seen = Vec::new();
    for (lport, segs) in &conns {
        let syn = segs
            .iter()
            .find(|s| s.flags & SYN != 0)
            .unwrap_or_else(|| panic!("{fam} lport {lport}: no SYN in {segs:?}"));
        assert_eq!(syn.toa, None, "{fam}: the SYN carries no TOA: {syn:?}");
        assert_eq!(
            syn.mss,
            Some(base_mss - olen),
            "{fam}: the SYN's MSS lowered by {olen}: {syn:?}"
        );
        let after: Vec<&Captured> = segs
            .iter()
            .filter(|s| s.flags & (SYN | RST) == 0 && s.flags & ACK != 0)
            .collect();
        let first = after
            .first()
            .unwrap_or_else(|| panic!("{fam} lport {lport}: no ACK in {segs:?}"));
        assert_eq!(first.payload, 0, "{fam}: the handshake ACK first: {segs:?}");
        let data = after
            .iter()
            .find(|s| s.payload > 0)
            .unwrap_or_else(|| panic!("{fam} lport {lport}: no data in {segs:?}"));
        for s in [first, data] {
            assert_eq!(s.toa_len, Some(olen), "{fam} lport {lport}: {s:?}");
        }
        assert_eq!(first.toa, data.toa, "{fam} lport {lport}");
        // Every segment that carries it names the same client.
        for s in &after {
            assert!(s.toa.is_none() || s.toa == first.toa, "{fam}: {s:?}");
        }
        seen.push(first.toa.clone().unwrap());
    }
    seen.sort();
    want.sort();
    assert_eq!(seen, want, "{fam}: the TOA of each connection");

    // Upload: the client's full-size segments all carry the option (the
    // real server sends no data until the end) and fit the MTU.
    let src = &clients[0];
    let cap = Capture::start(&rs.ns, &rs.dev, rip, 100_000, 90);
    let u = servers::upload(&topo.client, Some(src), vip, HTTP_PORT, UPLOAD, 3);
    assert!(u.ok, "{fam} upload: {u:?}");
    assert_eq!(u.len, UPLOAD as u64, "{fam} upload: {u:?}");
    let caps = cap.finish(Duration::from_millis(1500));
    let conns = by_conn(&caps, laddr);
    let full: Vec<&Captured> = conns
        .values()
        .flatten()
        .filter(|s| s.payload > 0 && s.toa.is_some())
        .collect();
    assert!(
        full.iter().any(|s| s.ip_len == 1500),
        "{fam}: full-size segments with TOA: {:?}",
        full.iter().map(|s| s.ip_len).max()
    );
    for s in &caps {
        assert!(s.ip_len <= 1500 && s.l4_csum_ok, "{fam}: {s:?}");
    }
    let prefix = if v6 {
        format!("[{src}]:")
    } else {
        format!("{src}:")
    };
    for s in &full {
        assert!(
            s.toa.as_deref().is_some_and(|t| t.starts_with(&prefix)),
            "{fam}: {s:?}"
        );
    }
}

#[test]
fn toa_carries_client_address_v4_v6() {
    if netns::skip_unless_root("toa_carries_client_address_v4_v6") {
        return;
    }
    let _serial = serial();
    let topo = Topology::builder().servers(1).clients(4).build();
    topo.setup_servers(Mode::FullNat).unwrap();
    let _srv = servers::start_all(&topo);
    let mut conf = Conf::default();
    for (vip, laddr, rip) in [
        (plan::VIP4, LADDR4, &topo.servers[0].ip4),
        (plan::VIP6, LADDR6, &topo.servers[0].ip6),
    ] {
        conf.services.push_str(&service(
            "tcp",
            &ep(vip, HTTP_PORT),
            "rr",
            "fullnat",
            &format!("laddrs = [\"{laddr}\"]\ntoa = true"),
            &[(ep(rip, HTTP_PORT), 1)],
        ));
    }
    conf.server_port_extra = vec!["198.18.3.1/24".into(), "2001:db8:0:3::1/64".into()];
    let rvsd = Rvsd::start(&topo, &conf);
    for vip in [plan::VIP4, plan::VIP6] {
        servers::wait_tcp(&topo.client, vip, HTTP_PORT, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    }
    // The listing shows the flag; -S gives it back as --toa.
    let l = rvsd.ok(&["-Ln"]);
    assert!(
        l.contains(&format!("TCP  {}:80 rr toa\n", plan::VIP4)),
        "{l}"
    );
    let s = rvsd.ok(&["-Sn"]);
    assert!(
        s.contains(&format!("-A -t {}:80 -s rr --toa\n", plan::VIP4)),
        "{s}"
    );
    for v6 in [false, true] {
        family(&topo, v6);
    }
    let m = rvsd.scrape().unwrap();
    let count = |what: &str| -> u64 {
        let key = format!("rvs_toa_packets_total{{what=\"{what}\",worker=\"0\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{key} not in metrics:\n{m}"))
    };
    eprintln!(
        "toa added {} no_room {} mss_clamped {} evicted {}",
        count("added"),
        count("no_room"),
        count("mss_clamped"),
        count("evicted")
    );
    // 16 connections' handshake ACK and first data, and the uploads.
    assert!(count("added") >= 2 * 16 + 2 * 500, "{m}");
    // Each connection's SYN and SYN-ACK.
    assert!(count("mss_clamped") >= 2 * 18, "{m}");
    assert_eq!(count("no_room"), 0, "{m}");
    assert_eq!(count("evicted"), 0, "{m}");
    rvsd.check_counters(BACKGROUND);
}
