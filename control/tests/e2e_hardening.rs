//! End-to-end: a spoofed ARP reply from the server segment must not
//! re-point a real server (issue 16 item 1). rvsd on `net_af_packet`
//! ports in namespaces, kernel TCP at both ends; the attacker is another
//! real server's namespace sending raw frames.
//!
//! `cargo test -p control --test e2e_hardening`

mod e2e;

use std::time::Duration;

use e2e::netns::{self, plan, Mode, Topology};
use e2e::rvsd::{ep, serial, service, Conf, Rvsd};
use e2e::servers::{self, HTTP_PORT};

/// Sends `count` ARP replies out of `dev`: "`spa` is at `src_mac`", to
/// `dst_mac`/`tpa`.
const SPOOF: &str = r#"
import socket, struct, sys
dev, dst, src, spa, tpa, count = sys.argv[1:7]
mac = lambda m: bytes.fromhex(m.replace(":", ""))
f = (mac(dst) + mac(src) + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2)
     + mac(src) + socket.inet_aton(spa) + mac(dst) + socket.inet_aton(tpa))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
for _ in range(int(count)):
    s.send(f)
print("sent", count)
"#;

/// The `--neigh` line of `ip` on the server port, if any.
fn neigh_line(rvsd: &Rvsd, ip: &str) -> Option<String> {
    rvsd.ok(&["--neigh"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(ip))
        .map(str::to_string)
}

#[test]
fn spoofed_arp_reply_from_the_server_segment_does_not_repoint_a_real_server() {
    let test = "spoofed_arp_reply_from_the_server_segment_does_not_repoint_a_real_server";
    if netns::skip_unless_root(test) {
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let _srv = servers::start_all(&topo);
    let rs1 = &topo.servers[0];
    let evil = &topo.servers[2];
    let conf = Conf {
        services: service(
            "tcp",
            &ep(plan::VIP4, HTTP_PORT),
            "rr",
            "masq",
            "",
            &[(ep(&rs1.ip4, HTTP_PORT), 1)],
        ),
        ..Conf::default()
    };
    let rvsd = Rvsd::start(&topo, &conf);
    servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    let before = servers::http_get(&topo.client, None, plan::VIP4, HTTP_PORT, "/", 5);
    assert!(before
        .iter()
        .all(|r| r.ok && r.server.as_deref() == Some("rs1")));

    let rs1_mac = netns::mac_of(&rs1.ns, &rs1.dev);
    let evil_mac = netns::mac_of(&evil.ns, &evil.dev);
    let line = neigh_line(&rvsd, &rs1.ip4).expect("rs1 resolved");
    assert!(line.contains(&rs1_mac), "{line}");
    assert!(line.contains("resolved"), "origin shown: {line}");

    // rs3's namespace claims rs1's address, unicast to the director.
    let dir_mac = topo.server_port().mac.clone();
    let out = topo
        .exec(
            &evil.ns,
            &[
                "python3",
                "-c",
                SPOOF,
                &evil.dev,
                &dir_mac,
                &evil_mac,
                &rs1.ip4,
                plan::DIR_SRV4,
                "5",
            ],
        )
        .expect("spoof sent");
    assert!(out.contains("sent 5"), "{out}");

    // Every spoofed reply is refused and counted; rs1's entry is intact
    // and new connections still reach rs1.
    let mut refused = 0;
    for _ in 0..50 {
        refused = rvsd
            .drops()
            .1
            .iter()
            .filter(|(r, _)| r == "arp_mac_change_refused")
            .map(|(_, n)| *n)
            .sum::<u64>();
        if refused >= 5 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(refused, 5, "{}", rvsd.drops().0);
    let line = neigh_line(&rvsd, &rs1.ip4).expect("rs1 still there");
    assert!(
        line.contains(&rs1_mac) && !line.contains(&evil_mac),
        "{line}"
    );
    let after = servers::http_get(&topo.client, None, plan::VIP4, HTTP_PORT, "/", 10);
    for r in &after {
        assert!(r.ok && r.server.as_deref() == Some("rs1"), "{r:?}");
    }
    rvsd.check_counters(&["not_ours", "arp_mac_change_refused"]);
}
