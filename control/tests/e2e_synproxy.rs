//! End-to-end SYN proxy (issue 14 item 4) through the real rvsd (FullNAT,
//! DPDK `net_af_packet` ports, kernel TCP at both ends): connections to a
//! `synproxy = true` service carry multi-megabyte byte-checked data both
//! ways; a bounded spoofed SYN flood from the client namespace (a python3
//! raw-socket sender, 20000 SYNs at a fixed 10000/s, sources only from
//! 198.19.0.0/16) leaves the connection table alone, an established
//! connection keeps exchanging data through it, and new legitimate
//! connections complete during it. The figures are printed.
//!
//! `cargo test -p control --test e2e_synproxy`

mod e2e;

use std::time::{Duration, Instant};

use e2e::netns::{self, plan, Mode, Topology, CLIENT_DEV};
use e2e::rvsd::{ep, serial, service, Conf, Rvsd};
use e2e::servers::{self, Hold, HTTP_PORT};

/// FullNAT local address (on the server port through `server_port_extra`).
const LADDR4: &str = "198.18.3.10";
const FLOOD_COUNT: u32 = 20_000;
const FLOOD_RATE: u32 = 10_000;
const BULK: usize = 4 << 20;
const UPLOAD: usize = 2 << 20;
/// The connection table per worker: below the flood. Every proxied
/// connection carries a sequence delta, and the side table of adjusted
/// connections holds 1/128 of the table (128 here) until their records
/// are freed.
const TABLE: u32 = 16384;

/// `flood.py DEV DST_MAC SRC_MAC VIP PORT COUNT RATE`: `COUNT` TCP SYNs
/// (valid checksums, MSS 1460) to VIP:PORT from spoofed sources in
/// 198.19.0.0/16 only, at `RATE` per second, out of `DEV`; prints
/// `{"sent": n, "ms": t}`. Bounded in count and (by the rate) in time.
const FLOOD: &str = r#"
import json, socket, struct, sys, time
dev, dst, src, vip, port, count, rate = sys.argv[1:8]
port, count, rate = int(port), int(count), int(rate)
assert count <= 65536
mac = lambda m: bytes.fromhex(m.replace(":", ""))
eth = mac(dst) + mac(src) + b"\x08\x00"
v = socket.inet_aton(vip)
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
frames = []
for i in range(count):
    sip = bytes([198, 19, (i >> 8) & 0xff, i & 0xff])
    sport = 1024 + (i * 7919) % 60000
    tcp = struct.pack("!HHIIBBHHH", sport, port, (i * 2654435761) & 0xffffffff, 0,
                      6 << 4, 0x02, 64240, 0, 0) + b"\x02\x04\x05\xb4"
    c = csum(sip + v + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xffff, 0x4000, 64, 6, 0, sip, v)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frames.append(eth + ip + tcp)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
t0 = time.monotonic()
sent = 0
chunk = max(1, rate // 100)
while sent < count:
    for f in frames[sent:sent + chunk]:
        for _ in range(100):
            try:
                s.send(f)
                break
            except OSError:
                time.sleep(0.001)
    sent = min(count, sent + chunk)
    d = t0 + sent / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
print(json.dumps({"sent": sent, "ms": int((time.monotonic() - t0) * 1000)}), flush=True)
"#;

/// A column of `rvsadm --workers`, summed over the workers.
fn workers_col(rvsd: &Rvsd, name: &str) -> u64 {
    let w = rvsd.ok(&["--workers"]);
    let head: Vec<&str> = w.lines().next().unwrap_or("").split_whitespace().collect();
    let i = head
        .iter()
        .position(|h| *h == name)
        .unwrap_or_else(|| panic!("{name}: {w}"));
    w.lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.first().is_some_and(|x| x.parse::<u32>().is_ok()) && f.len() == head.len())
        .map(|f| {
            f[i].parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}: {w}"))
        })
        .sum()
}

/// A SYN proxy counter as `rvsadm --drops` lists it (0 when not listed).
fn synproxy(rvsd: &Rvsd, what: &str) -> u64 {
    let name = format!("synproxy_{what}");
    rvsd.drops()
        .1
        .iter()
        .filter(|(r, _)| *r == name)
        .map(|(_, n)| *n)
        .sum()
}

#[test]
fn synproxy_keeps_a_spoofed_syn_flood_off_the_table() {
    scenario("synproxy_keeps_a_spoofed_syn_flood_off_the_table", 1);
}

/// The same with two workers and two queues per port: SYNs, ACKs and the
/// real servers' replies handed to the owning worker.
#[test]
fn synproxy_with_two_workers_and_handoff() {
    scenario("synproxy_with_two_workers_and_handoff", 2);
}

fn scenario(test: &str, workers: u32) {
    if netns::skip_unless_root(test) {
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::FullNat).unwrap();
    let _srv = servers::start_all(&topo);
    let reals: Vec<(String, u32)> = topo
        .servers
        .iter()
        .map(|s| (ep(&s.ip4, HTTP_PORT), 1))
        .collect();
    let mut services = service(
        "tcp",
        &ep(plan::VIP4, HTTP_PORT),
        "rr",
        "fullnat",
        &format!("laddrs = [\"{LADDR4}\"]\nsynproxy = true"),
        &reals,
    );
    // The spoofed sources are routed back out of the client port (the
    // reverse-path check passes them, as a router upstream would).
    services.push_str(&format!(
        "\n[[route]]\nprefix = \"198.19.0.0/16\"\nvia = \"{}\"\nport = \"client\"\n",
        plan::RT_CLI4
    ));
    // `..Conf::default()` though every field is given today: fields the
    // harness gains (other tests' needs) keep their defaults here.
    #[allow(clippy::needless_update)]
    let conf = Conf {
        services,
        server_port_extra: vec!["198.18.3.1/24".into()],
        conn_table: Some(TABLE),
        workers: Some(workers),
        qpairs: Some(workers),
        ..Conf::default()
    };
    let rvsd = Rvsd::start(&topo, &conf);
    servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    let l = rvsd.ok(&["-Ln"]);
    assert!(
        l.contains(&format!("TCP  {}:{HTTP_PORT} rr synproxy\n", plan::VIP4)),
        "{l}"
    );
    assert!(synproxy(&rvsd, "cookies_sent") >= 1, "{}", rvsd.drops().0);

    // One small request from every client address first: rvs turns the
    // SYN-ACK around without its neighbour table, so the first reply of a
    // real server to a client address is what makes the director resolve
    // it (a first window bigger than the 8-packet neighbour queue would
    // lose its tail to neigh_queue_full and be retransmitted).
    let c = &topo.clients4;
    for src in c {
        let r = servers::http_get(&topo.client, Some(src), plan::VIP4, HTTP_PORT, "/", 1);
        assert!(r.iter().all(|r| r.ok), "{src}: {r:?}");
    }
    // Multi-megabyte, byte for byte, both ways, through spliced
    // connections.
    let b = servers::fetch_bytes(&topo.client, Some(&c[0]), plan::VIP4, HTTP_PORT, BULK, 7);
    assert!(b.ok && b.len == BULK as u64, "4 MiB download: {b:?}");
    let u = servers::upload(&topo.client, Some(&c[1]), plan::VIP4, HTTP_PORT, UPLOAD, 5);
    assert!(u.ok && u.len == UPLOAD as u64, "2 MiB upload: {u:?}");

    // An established connection that must keep exchanging data.
    let hold = Hold::start(&topo.client, Some(&c[2]), plan::VIP4, HTTP_PORT, 12);
    let conns_before = workers_col(&rvsd, "Conns-v4");
    let sent_before = synproxy(&rvsd, "cookies_sent");

    // The flood, from the client namespace's own interface.
    let client_mac = netns::mac_of(&topo.client, CLIENT_DEV);
    let dir_mac = topo.client_port().mac.clone();
    let (cnt, rate, port) = (
        FLOOD_COUNT.to_string(),
        FLOOD_RATE.to_string(),
        HTTP_PORT.to_string(),
    );
    let mut flood = netns::spawn(
        &topo.client,
        &[
            "python3",
            "-c",
            FLOOD,
            CLIENT_DEV,
            &dir_mac,
            &client_mac,
            plan::VIP4,
            &port,
            &cnt,
            &rate,
        ],
    );
    // Legitimate new connections while it runs (bounded: 40 rounds).
    let t0 = Instant::now();
    let (mut tried, mut ok, mut max_conns) = (0usize, 0usize, conns_before);
    for round in 0..40 {
        if !flood.alive() && round >= 4 {
            break;
        }
        let src = &c[1 + round % 3];
        let r = servers::http_get(&topo.client, Some(src), plan::VIP4, HTTP_PORT, "/", 2);
        tried += r.len();
        ok += r.iter().filter(|r| r.ok).count();
        max_conns = max_conns.max(workers_col(&rvsd, "Conns-v4"));
    }
    let during = t0.elapsed();
    let out = flood.finish(Duration::from_secs(60));
    let line = out
        .iter()
        .find(|l| l.contains("\"sent\""))
        .unwrap_or_else(|| panic!("flood printed nothing: {out:?}"));
    let f = e2e::json::parse(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let sent = f.u64("sent").unwrap_or(0);
    let ms = f.u64("ms").unwrap_or(0).max(1);
    assert_eq!(sent, u64::from(FLOOD_COUNT), "{line}");
    // Let the last SYNs be answered before reading the counters.
    let mut cookies = 0;
    for _ in 0..50 {
        cookies = synproxy(&rvsd, "cookies_sent") - sent_before;
        if cookies >= sent {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    max_conns = max_conns.max(workers_col(&rvsd, "Conns-v4"));
    let held = hold.finish();
    let after = servers::fetch_bytes(&topo.client, Some(&c[3]), plan::VIP4, HTTP_PORT, BULK, 9);

    eprintln!(
        "{workers} worker(s): SYN flood: {sent} spoofed SYNs in {ms} ms ({} /s, target {FLOOD_RATE}/s); \
         cookies sent meanwhile (flood and legitimate) {cookies}; connection table (capacity {TABLE} per worker) \
         {conns_before} before, at most {max_conns} during; legitimate connections \
         during the flood {ok}/{tried} in {:.1} s; hold ok {} ({} lines)",
        sent * 1000 / ms,
        during.as_secs_f64(),
        held.ok,
        held.lines
    );
    eprintln!("rvsadm --drops:\n{}", rvsd.drops().0);

    // Every spoofed SYN was answered statelessly: none of them is in the
    // table, which only holds the legitimate connections.
    assert!(
        cookies * 10 >= sent * 9,
        "only {cookies} of {sent} SYNs answered"
    );
    assert!(
        max_conns <= conns_before + tried as u64 + 8,
        "the table grew with the flood: {max_conns} (before {conns_before}, {tried} legitimate)"
    );
    assert_eq!(ok, tried, "legitimate connections failed during the flood");
    assert!(tried >= 8, "too few legitimate connections tried: {tried}");
    assert!(held.ok && !held.reset && held.lines > 0, "{held:?}");
    assert!(
        after.ok && after.len == BULK as u64,
        "after the flood: {after:?}"
    );
    assert!(synproxy(&rvsd, "spliced") >= tried as u64 + 3 + c.len() as u64);
    assert_eq!(synproxy(&rvsd, "cookies_invalid"), 0);
    // With two workers the neighbour answers for a resolution one worker
    // started can land on the other's queue (the known two-worker
    // neighbour problem e2e_ops.rs describes): a few packets waiting for
    // ARP overflow there. Not the SYN proxy's; every connection above
    // completed regardless.
    let allowed: &[&str] = if workers > 1 {
        &["not_ours", "synproxy_", "neigh_queue_full"]
    } else {
        &["not_ours", "synproxy_"]
    };
    rvsd.check_counters(allowed);
}
