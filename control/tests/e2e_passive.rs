//! End-to-end: passive health checking inside the real rvsd (issue 12
//! item 3). NAT service over three real servers with a TCP_CHECK whose
//! `delay_loop` is an hour, so after the first round no active check runs
//! during the test, and `passive_check` with a threshold of 2. rs2's HTTP
//! server is killed: its kernel answers the clients' SYNs with RST, the
//! worker reports it, and rs2 leaves the table (`-Ln`, `--health` reason
//! `passive: RST to SYN`) long before the next active check would.
//!
//! `cargo test -p control --test e2e_passive`

mod e2e;

use std::time::{Duration, Instant};

use e2e::netns::{self, plan, Mode, Proc, Topology};
use e2e::rvsd::{ep, serial, Rvsd};
use e2e::servers::{self, HTTP_PORT};

fn config(topo: &Topology, sock: &str, prefix: &str) -> String {
    let mut reals = String::new();
    for s in &topo.servers {
        reals.push_str(&format!(
            r#"  [[service.real]]
  address = "{a}"
  weight = 1
  [[service.real.check]]
  type = "TCP_CHECK"
  connect_timeout = 1
  retry = 0
"#,
            a = ep(&s.ip4, HTTP_PORT)
        ));
    }
    format!(
        r#"# written by e2e_passive
[eal]
cores = [0, 1]
hugepages = false
memory_mb = 256
extra_args = ["--no-pci", "--no-shconf", "--file-prefix={prefix}"]

[[port]]
name = "client"
device = "net_af_packet0,iface={ic},qpairs=1"
addresses = ["{c4}/24"]

[[port]]
name = "server"
device = "net_af_packet1,iface={is},qpairs=1"
addresses = ["{s4}/24"]
tap = "rvs-s"

[dataplane]
workers = 1
conn_table_size = 65536

[control]
socket = "{sock}"

[[service]]
protocol = "tcp"
address = "{vip}"
scheduler = "rr"
forward = "masq"
[service.health]
delay_loop = 3600
passive_check = true
passive_fail_threshold = 2
passive_window = 30
{reals}"#,
        ic = topo.client_port().iface,
        is = topo.server_port().iface,
        c4 = plan::DIR_CLI4,
        s4 = plan::DIR_SRV4,
        vip = ep(plan::VIP4, HTTP_PORT),
    )
}

#[test]
fn closed_port_is_marked_down_passively_before_the_active_check() {
    if netns::skip_unless_root("closed_port_is_marked_down_passively_before_the_active_check") {
        return;
    }
    let _serial = serial();
    let topo = Topology::build();
    topo.setup_servers(Mode::Nat).unwrap();
    let mut http: Vec<Proc> = topo
        .servers
        .iter()
        .map(|s| servers::start_http(&s.ns, &s.name, HTTP_PORT))
        .collect();
    let rvsd = Rvsd::start_text(&topo, &topo.director, "passive", |sock, prefix| {
        config(&topo, sock, prefix)
    });
    let rs2 = ep(&topo.servers[1].ip4, HTTP_PORT);
    servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}\nrvsd log:\n{}", rvsd.log()));
    assert!(rvsd.ok(&["-Ln"]).contains(&rs2));

    // rs2's port closes: its kernel answers SYNs with RST
    http[1].kill();
    let t0 = Instant::now();
    loop {
        // new connections through the VIP (round robin reaches rs2)
        let _ = servers::http_get(&topo.client, None, plan::VIP4, HTTP_PORT, "/", 6);
        let ln = rvsd.adm(&["-Ln"]).unwrap_or_default();
        if !ln.contains(&rs2) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "rs2 not marked down passively:\n{ln}\n--health:\n{}\nrvsd log:\n{}",
            rvsd.adm(&["--health"]).unwrap_or_default(),
            rvsd.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    println!(
        "passive detection (RST to SYN): {:.2} s, active check due in about 3600 s",
        t0.elapsed().as_secs_f64()
    );
    let h = rvsd.ok(&["--health"]);
    assert!(h.contains(&format!("-> {rs2} DOWN")), "{h}");
    assert!(h.contains("passive: RST to SYN"), "{h}");
    assert!(rvsd.log().contains(&format!("real server {rs2} is DOWN")));
    // the other two still serve every new connection
    for r in servers::http_get(&topo.client, None, plan::VIP4, HTTP_PORT, "/", 6) {
        assert!(r.ok, "request through the VIP failed: {r:?}");
        assert_ne!(r.server.as_deref(), Some("rs2"));
    }
}
