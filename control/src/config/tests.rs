//! Config validation tests: the example configs load, and each class of
//! error gives its exact message (file, field path, why).

use super::*;
use crate::ipvsadm::list;

fn example(name: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../configs")
        .join(name);
    load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn example_configs_load_and_convert() {
    let nat = example("nat.toml").to_model();
    assert_eq!(
        list::save(&nat),
        "-A -t 198.18.0.100:80 -s wrr\n\
-a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 2\n\
-a -t 198.18.0.100:80 -r 198.19.0.3:8080 -m -w 1\n\
-A -t [2001:db8::100]:80 -s rr\n\
-a -t [2001:db8::100]:80 -r [2001:db8:1::2]:8080 -m -w 1\n"
    );
    assert_eq!(nat.conn_table_size, 65536);

    let dr = example("dr.toml").to_model();
    assert_eq!(
        list::save(&dr),
        "-A -t 198.18.0.100:80 -s wlc\n\
-a -t 198.18.0.100:80 -r 198.18.0.2:80 -g -w 1\n\
-a -t 198.18.0.100:80 -r 198.18.0.3:80 -g -w 3\n\
-A -u 198.18.0.100:53 -s sh -b sh-port\n\
-a -u 198.18.0.100:53 -r 198.18.0.2:53 -g -w 1\n"
    );

    let tun = example("tun.toml").to_model();
    assert_eq!(
        list::save(&tun),
        "-A -t 198.18.0.100:443 -s mh -p 600 -M 255.255.255.0 -b mh-fallback\n\
-a -t 198.18.0.100:443 -r 198.19.128.2:443 -i -w 1 --tun-type ipip\n\
-a -t 198.18.0.100:443 -r 198.19.128.3:443 -i -w 1 --tun-type ipip -x 10000 -y 8000\n"
    );

    let cfg = example("fullnat.toml");
    let fnat = cfg.to_model();
    assert_eq!(
        list::save(&fnat),
        "-A -t 198.18.0.100:80 -s lc\n\
-a -t 198.18.0.100:80 -r 198.19.0.2:8080 -b -w 1\n\
-a -t 198.18.0.100:80 -r 198.19.0.3:8080 -b -w 1\n\
--add-laddr -t 198.18.0.100:80 -z 198.19.0.10 -F d1\n\
--add-laddr -t 198.18.0.100:80 -z 198.19.0.11 -F d1\n\
-A -u [2001:db8::100]:53 -s rr\n\
-a -u [2001:db8::100]:53 -r [2001:db8:1::2]:53 -b -w 1\n\
--add-laddr -u [2001:db8::100]:53 -z [2001:db8:1::10] -F d1\n"
    );
    assert_eq!(cfg.port_cidrs()[1].1[0].to_string(), "198.19.0.1/24");
    // the saved rules restore into the same model
    let mut back = Model::new();
    crate::ipvsadm::restore(&mut back, &list::save(&fnat)).unwrap();
    assert_eq!(list::save(&back), list::save(&fnat));
}

const BASE: &str = r#"
[eal]
cores = [0, 1, 2]
hugepages = false
memory_mb = 256

[[port]]
name = "d0"
device = "net_af_packet0,iface=rvs-d0"
addresses = ["198.18.0.1/24"]

[dataplane]
workers = 2

[[service]]
protocol = "tcp"
address = "198.18.0.100:80"
scheduler = "rr"
forward = "masq"

  [[service.real]]
  address = "198.18.0.2:8080"

[[service]]
protocol = "tcp"
address = "198.18.0.101:80"
forward = "route"

  [[service.real]]
  address = "198.18.0.3"

  [[service.real]]
  address = "198.18.0.4"
"#;

fn errors(text: &str) -> Vec<String> {
    match parse(text, "bad.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn one_error(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    let v = errors(&BASE.replacen(from, to, 1));
    assert_eq!(v.len(), 1, "{v:#?}");
    v[0].clone()
}

#[test]
fn base_is_valid() {
    let m = parse(BASE, "base.toml").unwrap().to_model();
    assert_eq!(m.services.len(), 2);
}

#[test]
fn each_error_class_names_file_field_and_why() {
    let cases = [
        (
            "scheduler = \"rr\"",
            "scheduler = \"foo\"",
            "bad.toml: service[0].scheduler: unknown scheduler 'foo' (expected one of rr, wrr, lc, wlc, sed, nq, fo, ovf, lblc, lblcr, sh, dh, mh, twos)",
        ),
        (
            "address = \"198.18.0.3\"",
            "address = \"198.18.0.3\"\n  weight = 70000",
            "bad.toml: service[1].real[0].weight: weight must be 0..=65535, not 70000",
        ),
        (
            "address = \"198.18.0.4\"",
            "address = \"198.18.0.4\"\n  weight = -1",
            "bad.toml: service[1].real[1].weight: weight must be 0..=65535, not -1",
        ),
        (
            "address = \"198.18.0.101:80\"",
            "address = \"198.18.0.100:80\"",
            "bad.toml: service[1].address: duplicate service tcp 198.18.0.100:80 (also service[0])",
        ),
        (
            "address = \"198.18.0.3\"",
            "address = \"198.18.0.3:8080\"",
            "bad.toml: service[1].real[0].address: route-mode real server 198.18.0.3:8080 must use the virtual port 80 (route cannot change ports)",
        ),
        (
            "address = \"198.18.0.100:80\"",
            "address = \"198.18.0.300:80\"",
            "bad.toml: service[0].address: '198.18.0.300:80' is not VIP:port (e.g. 198.18.0.1:80 or [2001:db8::1]:80)",
        ),
        (
            "address = \"198.18.0.2:8080\"",
            "address = \"198.18.0.2:http\"",
            "bad.toml: service[0].real[0].address: '198.18.0.2:http' is not address[:port] (e.g. 198.19.0.2:8080 or [2001:db8::2]:80)",
        ),
        (
            "address = \"198.18.0.2:8080\"",
            "address = \"[2001:db8::2]:8080\"",
            "bad.toml: service[0].real[0].address: real server 2001:db8::2 is IPv6 but the VIP is IPv4 (only tunnel real servers may be of the other family)",
        ),
        (
            "addresses = [\"198.18.0.1/24\"]",
            "addresses = [\"198.18.0.1/33\"]",
            "bad.toml: port[0].addresses[0]: '198.18.0.1/33' is not an address with prefix (e.g. 198.18.0.1/24 or 2001:db8::1/64)",
        ),
        (
            "workers = 2",
            "workers = 3",
            "bad.toml: dataplane.workers: 3 workers need 4 cores in eal.cores (one for control), but it lists 3",
        ),
        (
            "workers = 2",
            "workers = 0",
            "bad.toml: dataplane.workers: must be at least 1, not 0",
        ),
        (
            "cores = [0, 1, 2]",
            "cores = [0, 1, 1]",
            "bad.toml: eal.cores[2]: core 1 is listed twice",
        ),
        (
            "protocol = \"tcp\"",
            "protocol = \"sctp\"",
            "bad.toml: service[0].protocol: unknown protocol 'sctp' (expected tcp or udp)",
        ),
        (
            "forward = \"masq\"",
            "forward = \"dsr\"",
            "bad.toml: service[0].forward: unknown forwarding method 'dsr' (expected masq, route, tunnel or fullnat)",
        ),
        (
            "forward = \"masq\"",
            "forward = \"fullnat\"",
            "bad.toml: service[0].laddrs: fullnat real servers need at least one local address",
        ),
        (
            "forward = \"masq\"",
            "forward = \"fullnat\"\nladdrs = [\"198.19.9.9\"]",
            "bad.toml: service[0].laddrs[0]: local address 198.19.9.9 is on no port's subnet",
        ),
        (
            "scheduler = \"rr\"",
            "scheduler = \"rr\"\nsched_flags = [\"sh-port\"]",
            "bad.toml: service[0].sched_flags[0]: flag 'sh-port' needs scheduler sh, not rr",
        ),
        (
            "scheduler = \"rr\"",
            "scheduler = \"sh\"\nsched_flags = [\"sh-bogus\"]",
            "bad.toml: service[0].sched_flags[0]: unknown scheduler flag 'sh-bogus' (expected sh-fallback, sh-port, mh-fallback or mh-port)",
        ),
        (
            "scheduler = \"rr\"",
            "scheduler = \"rr\"\npersistent = 0",
            "bad.toml: service[0].persistent: must be 1..=2678400 seconds, not 0",
        ),
        (
            "address = \"198.18.0.2:8080\"",
            "address = \"198.18.0.2:8080\"\n  u_threshold = 10\n  l_threshold = 20",
            "bad.toml: service[0].real[0].l_threshold: l_threshold 20 is above u_threshold 10",
        ),
        (
            "address = \"198.18.0.4\"",
            "address = \"198.18.0.3\"",
            "bad.toml: service[1].real[1].address: duplicate real server 198.18.0.3:80 (also real[0])",
        ),
        (
            "memory_mb = 256",
            "memory_mb = 256\n[metrics]\nlisten = \"localhost\"",
            "bad.toml: metrics.listen: 'localhost' is not address:port (e.g. 127.0.0.1:9090)",
        ),
        (
            "workers = 2",
            "workers = 2\nconn_table_size = 1000",
            "bad.toml: dataplane.conn_table_size: must be a power of two in 1024..=268435456, not 1000",
        ),
        (
            "memory_mb = 256",
            "memory_mb = 256\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"2001:db8::1\"\nport = \"d9\"",
            "",
        ),
    ];
    assert_eq!(
        fwm_errors("mark = 1\n", "mark = 0\n"),
        [
            "bad.toml: fwmark[0].mark: must be 1..=4294967295, not 0",
            "bad.toml: service[2].fwmark: mark 1 is not defined by any [[fwmark]] table",
        ]
    );
    for (from, to, want) in cases {
        if want.is_empty() {
            continue;
        }
        assert_eq!(one_error(from, to), want, "replacing {from} with {to}");
    }
    // two problems in one route, both reported
    let v = errors(&BASE.replacen(
        "memory_mb = 256",
        "memory_mb = 256\n[[route]]\nprefix = \"0.0.0.0/0\"\nvia = \"2001:db8::1\"\nport = \"d9\"",
        1,
    ));
    assert_eq!(
        v,
        [
            "bad.toml: route[0].via: gateway 2001:db8::1 is IPv6 but prefix 0.0.0.0/0 is IPv4",
            "bad.toml: route[0].port: unknown port 'd9' (ports: d0)",
        ]
    );
}

#[test]
fn all_errors_are_collected() {
    let text = BASE
        .replacen("scheduler = \"rr\"", "scheduler = \"foo\"", 1)
        .replacen(
            "address = \"198.18.0.3\"",
            "address = \"198.18.0.3\"\n  weight = 70000",
            1,
        )
        .replacen("workers = 2", "workers = 9", 1)
        .replacen(
            "address = \"198.18.0.101:80\"",
            "address = \"198.18.0.100:80\"",
            1,
        );
    assert_eq!(
        errors(&text),
        [
            "bad.toml: dataplane.workers: 9 workers need 10 cores in eal.cores (one for control), but it lists 3",
            "bad.toml: service[0].scheduler: unknown scheduler 'foo' (expected one of rr, wrr, lc, wlc, sed, nq, fo, ovf, lblc, lblcr, sh, dh, mh, twos)",
            "bad.toml: service[1].real[0].weight: weight must be 0..=65535, not 70000",
            "bad.toml: service[1].address: duplicate service tcp 198.18.0.100:80 (also service[0])",
        ]
    );
}

#[test]
fn structural_errors_name_the_field() {
    let v = errors(&BASE.replacen(
        "address = \"198.18.0.4\"",
        "address = \"198.18.0.4\"\n  wieght = 2",
        1,
    ));
    assert_eq!(v.len(), 1);
    assert!(
        v[0].starts_with("bad.toml: service[1].real[1].wieght: unknown field `wieght`, expected one of `address`, `forward`, `weight`, `u_threshold`, `l_threshold`"),
        "{}",
        v[0]
    );
    let v = errors(&BASE.replacen("workers = 2", "workers = \"two\"", 1));
    assert!(
        v[0].starts_with("bad.toml: dataplane.workers: invalid type: string \"two\", expected i64"),
        "{}",
        v[0]
    );
    let v = errors(&BASE.replacen("[[port]]", "[bogus]\nx = 1\n[[port]]", 1));
    assert!(
        v[0].starts_with("bad.toml: bogus: unknown field `bogus`"),
        "{}",
        v[0]
    );
    let v = errors("[eal\n");
    assert!(v[0].starts_with("bad.toml: "), "{}", v[0]);
}

#[test]
fn a_rejected_reload_leaves_the_running_model() {
    let running = parse(BASE, "rvsd.toml").unwrap().to_model();
    let snapshot = running.clone();
    let bad = BASE.replacen("scheduler = \"rr\"", "scheduler = \"foo\"", 1);
    // a daemon only swaps in a model from a config that parsed
    let next = parse(&bad, "rvsd.toml").map(|c| c.to_model());
    assert!(next.is_err());
    assert_eq!(running, snapshot);
}

#[test]
fn table_sizes_and_conn_reuse_mode_are_explicit_settings() {
    let c = parse(BASE, "ok.toml").unwrap();
    assert_eq!(c.dataplane.conn_table_size, 1 << 20, "documented default");
    assert_eq!(
        c.dataplane.conn_table_size_v6,
        1 << 18,
        "documented default"
    );
    assert_eq!(c.dataplane.conn_reuse_mode, 1, "IPVS's default");
    let c = parse(
        &BASE.replacen(
            "workers = 2",
            "workers = 2\nconn_table_size = 2048\nconn_table_size_v6 = 4096\nconn_reuse_mode = 0",
            1,
        ),
        "ok.toml",
    )
    .unwrap();
    assert_eq!(
        (
            c.dataplane.conn_table_size,
            c.dataplane.conn_table_size_v6,
            c.dataplane.conn_reuse_mode
        ),
        (2048, 4096, 0)
    );
    assert_eq!(
        one_error("workers = 2", "workers = 2\nconn_table_size_v6 = 3000"),
        "bad.toml: dataplane.conn_table_size_v6: must be a power of two in 1024..=268435456, not 3000"
    );
    assert_eq!(
        one_error("workers = 2", "workers = 2\nconn_reuse_mode = 4"),
        "bad.toml: dataplane.conn_reuse_mode: must be 0..=3 (IPVS's bitmap: 1 TIME_WAIT/CLOSE, 2 also FIN_WAIT without replies), not 4"
    );
}

#[test]
fn idle_policy_defaults_to_polling_and_adaptive_knobs_are_checked() {
    use dataplane::idle::{IdleMode, IdlePolicy};
    let c = parse(BASE, "ok.toml").unwrap();
    assert_eq!(c.dataplane.idle, "poll");
    assert_eq!(
        c.dataplane.idle_policy(),
        IdlePolicy {
            mode: IdleMode::Poll,
            empty_polls: 256,
            pause_polls: 64,
            max_sleep_ns: 100_000,
        }
    );
    let c = parse(
        &BASE.replacen(
            "workers = 2",
            "workers = 2\nidle = \"adaptive\"\nidle_empty_polls = 1000\nidle_pause_polls = 0\nidle_max_sleep_us = 1000",
            1,
        ),
        "ok.toml",
    )
    .unwrap();
    assert_eq!(
        c.dataplane.idle_policy(),
        IdlePolicy {
            mode: IdleMode::Adaptive,
            empty_polls: 1000,
            pause_polls: 0,
            max_sleep_ns: 1_000_000,
        }
    );
    for (to, want) in [
        (
            "idle = \"spin\"",
            "bad.toml: dataplane.idle: must be \"poll\" or \"adaptive\", not 'spin'",
        ),
        (
            "idle = \"adaptive\"\nidle_empty_polls = 0",
            "bad.toml: dataplane.idle_empty_polls: must be in 1..=1000000, not 0",
        ),
        (
            "idle_pause_polls = -1",
            "bad.toml: dataplane.idle_pause_polls: must be in 0..=1000000, not -1",
        ),
        (
            "idle = \"adaptive\"\nidle_max_sleep_us = 5000",
            "bad.toml: dataplane.idle_max_sleep_us: must be in 1..=1000 (µs; at most a tenth of the workers' 10 ms housekeeping period), not 5000",
        ),
        (
            "idle_max_sleep_us = 0",
            "bad.toml: dataplane.idle_max_sleep_us: must be in 1..=1000 (µs; at most a tenth of the workers' 10 ms housekeeping period), not 0",
        ),
    ] {
        assert_eq!(
            one_error("workers = 2", &format!("workers = 2\n{to}")),
            want,
            "{to}"
        );
    }
}

#[test]
fn port_input_checks_default_to_linux_and_are_validated() {
    let p = &parse(BASE, "base.toml").unwrap().ports[0];
    assert_eq!(p.rp_filter, None, "strict when absent");
    assert!(!p.accept_source_route && !p.arp_accept);
    assert!(p.arp_garp_update && p.nd_override);
    let with = BASE.replacen(
        "addresses = [\"198.18.0.1/24\"]",
        "addresses = [\"198.18.0.1/24\"]\nrp_filter = \"loose\"\naccept_source_route = true\narp_accept = true\narp_garp_update = false\nnd_override = false",
        1,
    );
    let p = &parse(&with, "x.toml").unwrap().ports[0];
    assert_eq!(p.rp_filter.as_deref(), Some("loose"));
    assert!(p.accept_source_route && p.arp_accept);
    assert!(!p.arp_garp_update && !p.nd_override);
    assert_eq!(
        one_error(
            "addresses = [\"198.18.0.1/24\"]",
            "addresses = [\"198.18.0.1/24\"]\nrp_filter = \"1\""
        ),
        "bad.toml: port[0].rp_filter: must be \"strict\", \"loose\" or \"off\", not '1'"
    );
}

#[test]
fn af_xdp_ports_become_net_af_xdp_vdevs_and_bad_settings_are_named() {
    let dev = "device = \"net_af_packet0,iface=rvs-d0\"";
    let cfg = parse(
        &BASE.replacen(
            dev,
            "device = \"af_xdp:ens5\"\naf_xdp = { start_queue = 4, busy_budget = 32, force_copy = true }",
            1,
        ),
        "x.toml",
    )
    .unwrap();
    assert_eq!(cfg.ports[0].af_xdp_iface(), Some("ens5"));
    assert_eq!(
        cfg.ports[0].devargs(3, 2),
        "net_af_xdp3,iface=ens5,start_queue=4,queue_count=2,busy_budget=32,force_copy=1"
    );
    let plain = parse(
        &BASE.replacen(dev, "device = \"af_xdp:veth1\"", 1),
        "x.toml",
    )
    .unwrap();
    assert_eq!(
        plain.ports[0].devargs(0, 1),
        "net_af_xdp0,iface=veth1,start_queue=0,queue_count=1"
    );
    // other devices pass through unchanged
    let base = parse(BASE, "x.toml").unwrap();
    assert_eq!(base.ports[0].devargs(0, 2), "net_af_packet0,iface=rvs-d0");

    for (to, want) in [
        (
            "device = \"af_xdp:\"",
            "bad.toml: port[0].device: 'af_xdp:': af_xdp:IFACE needs an interface name (1-15 letters, digits, '-', '_', '.')",
        ),
        (
            "device = \"af_xdp:a-very-long-interface\"",
            "bad.toml: port[0].device: 'af_xdp:a-very-long-interface': af_xdp:IFACE needs an interface name (1-15 letters, digits, '-', '_', '.')",
        ),
        (
            "device = \"net_af_xdp0,iface=x\"\naf_xdp = { start_queue = 1 }",
            "bad.toml: port[0].af_xdp: only for device = \"af_xdp:IFACE\", not 'net_af_xdp0,iface=x' (net_af_xdp devargs take their options inline)",
        ),
        (
            "device = \"af_xdp:ens5\"\naf_xdp = { start_queue = -1 }",
            "bad.toml: port[0].af_xdp.start_queue: must be 0..=1023, not -1",
        ),
        (
            "device = \"af_xdp:ens5\"\naf_xdp = { busy_budget = 70000 }",
            "bad.toml: port[0].af_xdp.busy_budget: must be 0 (off)..=65535, not 70000",
        ),
        (
            "device = \"af_xdp:ens5\"\naf_xdp = { xdp_prog = \"/nonexistent/prog.o\" }",
            "bad.toml: port[0].af_xdp.xdp_prog: '/nonexistent/prog.o' is not a file",
        ),
        (
            "device = \"af_xdp:ens5\"\naf_xdp = { xdp_prog = \"a,b\" }",
            "bad.toml: port[0].af_xdp.xdp_prog: 'a,b' must be a path to an XDP object file, without ',' or '='",
        ),
    ] {
        assert_eq!(one_error(dev, to), want, "{to}");
    }
}

#[test]
fn sloppy_tcp_is_validated_and_defaults_to_mh_over_dr() {
    assert_eq!(
        one_error(
            "protocol = \"tcp\"",
            "protocol = \"udp\"\nsloppy_tcp = true"
        ),
        "bad.toml: service[0].sloppy_tcp: only TCP services have TCP state to continue"
    );
    let v = errors(&BASE.replacen(
        "protocol = \"tcp\"",
        "protocol = \"tcp\"\nsloppy_tcp = \"yes\"",
        1,
    ));
    assert!(
        v.iter().any(|e| e.contains("service[0].sloppy_tcp")),
        "{v:#?}"
    );
    let m = parse(
        &BASE.replacen(
            "protocol = \"tcp\"",
            "protocol = \"tcp\"\nsloppy_tcp = false",
            1,
        ),
        "ok.toml",
    )
    .unwrap()
    .to_model();
    assert_eq!(m.services[0].sloppy_tcp, Some(false));
    assert_eq!(m.services[1].sloppy_tcp, None, "unset: the default");
}

#[test]
fn ops_only_for_udp_services() {
    assert_eq!(
        one_error("protocol = \"tcp\"", "protocol = \"tcp\"\nops = true"),
        "bad.toml: service[0].ops: one-packet scheduling is only for UDP services"
    );
    let v = errors(&BASE.replacen("protocol = \"tcp\"", "protocol = \"tcp\"\nops = 1", 1));
    assert!(v.iter().any(|e| e.contains("service[0].ops")), "{v:#?}");
    let m = parse(
        &BASE.replacen("protocol = \"tcp\"", "protocol = \"udp\"\nops = true", 1),
        "ok.toml",
    )
    .unwrap()
    .to_model();
    assert!(m.services[0].ops);
    assert!(!m.services[1].ops, "off by default");
}

#[test]
fn fwmark_example_loads_with_its_classifier() {
    let cfg = example("fwmark.toml");
    let m = cfg.to_model();
    assert_eq!(
        list::save(&m),
        "-A -f 1 -s wlc -p 300\n\
-a -f 1 -r 198.19.0.2:0 -m -w 1\n\
-a -f 1 -r 198.19.0.3:0 -m -w 1\n\
-A -f 2 -6 -s rr\n\
-a -f 2 -6 -r [2001:db8:1::2]:0 -m -w 1\n"
    );
    let c = cfg.classifier();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(c.classify(6, ip("198.18.0.100"), 80), Some(1));
    assert_eq!(c.classify(6, ip("198.18.0.100"), 443), Some(1));
    assert_eq!(c.classify(6, ip("198.18.0.100"), 8080), None);
    assert_eq!(c.classify(17, ip("198.18.0.100"), 443), None);
    assert_eq!(c.classify(6, ip("2001:db8::100"), 80), Some(2));
    // a fwmark service round-trips through rvsadm -S / -R
    let mut back = Model::new();
    crate::ipvsadm::restore(&mut back, &list::save(&m)).unwrap();
    assert_eq!(list::save(&back), list::save(&m));
}

const FWM: &str = r#"
[[fwmark]]
mark = 1

  [[fwmark.rule]]
  net = "198.18.0.100"
  proto = "tcp"
  ports = "80-81"

[[service]]
fwmark = 1
forward = "masq"

  [[service.real]]
  address = "198.18.0.2"
"#;

fn fwm_errors(from: &str, to: &str) -> Vec<String> {
    assert!(FWM.contains(from), "{from}");
    errors(&format!("{BASE}{}", FWM.replacen(from, to, 1)))
}

#[test]
fn fwmark_config_errors_name_the_field() {
    let ok = parse(&format!("{BASE}{FWM}"), "ok.toml").unwrap();
    assert_eq!(ok.to_model().services.len(), 3);
    let cases: &[(&str, &str, &str)] = &[
        (
            "net = \"198.18.0.100\"",
            "net = \"198.18.0.100/24\"",
            "bad.toml: fwmark[0].rule[0].net: 198.18.0.100/24 has host bits set",
        ),
        (
            "net = \"198.18.0.100\"",
            "net = \"198.18.0.0/33\"",
            "bad.toml: fwmark[0].rule[0].net: /33 is longer than 32 for IPv4",
        ),
        (
            "net = \"198.18.0.100\"",
            "net = \"vip\"",
            "bad.toml: fwmark[0].rule[0].net: 'vip' is not an address or network (e.g. 198.18.1.0/24 or 2001:db8::100)",
        ),
        (
            "proto = \"tcp\"",
            "proto = \"sctp\"",
            "bad.toml: fwmark[0].rule[0].proto: unknown protocol 'sctp' (expected tcp, udp or any)",
        ),
        (
            "ports = \"80-81\"",
            "ports = \"81-80\"",
            "bad.toml: fwmark[0].rule[0].ports: range 81-80 starts above its end",
        ),
        (
            "ports = \"80-81\"",
            "ports = \"http\"",
            "bad.toml: fwmark[0].rule[0].ports: 'http' is not a port or range (e.g. \"80\" or \"8000-8099\")",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 2\n",
            "bad.toml: service[2].fwmark: mark 2 is not defined by any [[fwmark]] table",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 0\n",
            "bad.toml: service[2].fwmark: must be 1..=4294967295, not 0",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 1\nfamily = \"ipv6\"\n",
            "bad.toml: service[2].family: mark 1 has no IPv6 rule in [[fwmark]], so this IPv6 service would never match (family = \"ipv4\" for the other family)",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 1\nfamily = \"inet7\"\n",
            "bad.toml: service[2].family: unknown family 'inet7' (expected ipv4 or ipv6)",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 1\naddress = \"198.18.0.100:80\"\n",
            "bad.toml: service[2].address: a fwmark service has no address: its [[fwmark]] rules say which packets it takes",
        ),
        (
            "fwmark = 1\n",
            "fwmark = 1\nprotocol = \"udp\"\n",
            "bad.toml: service[2].protocol: a fwmark service takes the protocols its [[fwmark]] rules match: leave protocol out",
        ),
        (
            "address = \"198.18.0.2\"",
            "address = \"[2001:db8::2]\"",
            "bad.toml: service[2].real[0].address: real server 2001:db8::2 is IPv6 but the VIP is IPv4 (only tunnel real servers may be of the other family)",
        ),
    ];
    assert_eq!(
        fwm_errors("mark = 1\n", "mark = 0\n"),
        [
            "bad.toml: fwmark[0].mark: must be 1..=4294967295, not 0",
            "bad.toml: service[2].fwmark: mark 1 is not defined by any [[fwmark]] table",
        ]
    );
    for (from, to, want) in cases {
        let v = fwm_errors(from, to);
        assert_eq!(v, [want.to_string()], "{from} -> {to}");
    }
    // a DR real server of a fwmark service may carry a port (for checks,
    // as keepalived writes it); DR forwards with the packet's port anyway
    let dr = FWM.replace(
        "forward = \"masq\"\n\n  [[service.real]]\n  address = \"198.18.0.2\"",
        "forward = \"route\"\n\n  [[service.real]]\n  address = \"198.18.0.2:80\"",
    );
    let m = parse(&format!("{BASE}{dr}"), "dr.toml").unwrap().to_model();
    assert!(list::save(&m).contains("-a -f 1 -r 198.18.0.2:80 -g -w 1\n"));
    // a mark in two tables, a table without rules, a duplicate service
    let two = format!("{BASE}{FWM}[[fwmark]]\nmark = 1\n[[fwmark.rule]]\nnet = \"198.18.0.101\"\n[[fwmark]]\nmark = 3\n[[service]]\nfwmark = 1\n[[service.real]]\naddress = \"198.18.0.3\"\n");
    assert_eq!(
        errors(&two),
        [
            "bad.toml: fwmark[1].mark: mark 1 is defined twice (also fwmark[0]): list all its rules in one table",
            "bad.toml: fwmark[2].rule: a mark needs at least one [[fwmark.rule]]",
            "bad.toml: service[3].fwmark: duplicate service fwmark 1 (also service[2])",
        ]
    );
    // an address service needs protocol and address; family is not for it
    let addr = format!("{BASE}[[service]]\nfamily = \"ipv6\"\n");
    assert_eq!(
        errors(&addr),
        [
            "bad.toml: service[2].family: 'ipv6' is only for fwmark services (an address service has its VIP's family)",
            "bad.toml: service[2].address: missing: give address = \"VIP:port\" or fwmark = MARK",
            "bad.toml: service[2].protocol: missing (tcp or udp; or fwmark = MARK for a fwmark service)",
            "bad.toml: service[2].address: '' is not VIP:port (e.g. 198.18.0.1:80 or [2001:db8::1]:80)",
        ]
    );
}

#[test]
fn tunnel_types_per_real_server() {
    // service[1] is route; make it tunnel with one server of each type
    let text = BASE.replacen("forward = \"route\"", "forward = \"tunnel\"", 1).replacen(
        "address = \"198.18.0.3\"",
        "address = \"198.18.0.3\"\n  tun_type = \"gue\"\n  tun_port = 6080\n  tun_flags = \"csum\"",
        1,
    );
    let text = text.replacen(
        "address = \"198.18.0.4\"",
        "address = \"198.18.0.4\"\n  tun_type = \"gre\"\n  tun_flags = \"csum\"\n\n  [[service.real]]\n  address = \"198.18.0.5\"",
        1,
    );
    let m = parse(&text, "tun.toml").unwrap().to_model();
    let tun = Model {
        services: vec![m.services[1].clone()],
        ..Model::new()
    };
    assert_eq!(
        list::save(&tun),
        "-A -t 198.18.0.101:80 -s wlc\n\
-a -t 198.18.0.101:80 -r 198.18.0.3:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
-a -t 198.18.0.101:80 -r 198.18.0.4:80 -i -w 1 --tun-type gre --tun-csum\n\
-a -t 198.18.0.101:80 -r 198.18.0.5:80 -i -w 1 --tun-type ipip\n"
    );
    // the dataplane's view of them
    let r = &m.services[1].reals;
    assert_eq!(
        r[0].tunnel.encap(),
        dataplane::forward::TunEncap::Gue {
            port: 6080,
            csum: true
        }
    );
    assert_eq!(
        r[1].tunnel.encap(),
        dataplane::forward::TunEncap::Gre { csum: true }
    );
    assert_eq!(r[2].tunnel.encap(), dataplane::forward::TunEncap::Ipip);
}

#[test]
fn tunnel_real_servers_may_be_of_the_other_family() {
    // service[1] (IPv4 VIP) made tunnel, one IPv6 real server per type;
    // IPVS's heterogeneous pools
    let text = BASE
        .replacen("forward = \"route\"", "forward = \"tunnel\"", 1)
        .replacen(
            "address = \"198.18.0.3\"",
            "address = \"[2001:db8::3]\"\n  tun_type = \"gue\"\n  tun_port = 6080",
            1,
        );
    let text = text.replacen("address = \"198.18.0.4\"", "address = \"2001:db8::4\"", 1);
    let m = parse(&text, "tun.toml").unwrap().to_model();
    let tun = Model {
        services: vec![m.services[1].clone()],
        ..Model::new()
    };
    assert_eq!(
        list::save(&tun),
        "-A -t 198.18.0.101:80 -s wlc\n\
-a -t 198.18.0.101:80 -r [2001:db8::3]:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum\n\
-a -t 198.18.0.101:80 -r [2001:db8::4]:80 -i -w 1 --tun-type ipip\n"
    );
    // one of them on another method: refused, the field named
    let text = text.replacen(
        "address = \"2001:db8::4\"",
        "address = \"2001:db8::4\"\n  forward = \"route\"",
        1,
    );
    assert_eq!(
        errors(&text),
        ["bad.toml: service[1].real[1].address: real server 2001:db8::4 is IPv6 but the VIP is IPv4 (only tunnel real servers may be of the other family)"]
    );
}

#[test]
fn tunnel_options_are_validated_by_field() {
    let tunnel = BASE.replacen("forward = \"route\"", "forward = \"tunnel\"", 1);
    let one = |base: &str, to: &str| -> String {
        let v = errors(&base.replacen(
            "address = \"198.18.0.3\"",
            &format!("address = \"198.18.0.3\"\n  {to}"),
            1,
        ));
        assert_eq!(v.len(), 1, "{to}: {v:#?}");
        v[0].clone()
    };
    for (to, want) in [
        (
            "tun_type = \"gue\"",
            "bad.toml: service[1].real[0].tun_type: gue tunnels need tun_port (the real server's GUE/fou UDP port)",
        ),
        (
            "tun_port = 6080",
            "bad.toml: service[1].real[0].tun_port: tun_port is only for gue tunnels (tun_type is ipip)",
        ),
        (
            "tun_type = \"gre\"\n  tun_port = 6080",
            "bad.toml: service[1].real[0].tun_port: tun_port is only for gue tunnels (tun_type is gre)",
        ),
        (
            "tun_type = \"gre\"\n  tun_flags = \"remcsum\"",
            "bad.toml: service[1].real[0].tun_flags: remcsum (remote checksum offload) is for gue tunnels only; gre takes nocsum or csum",
        ),
        (
            "tun_flags = \"csum\"",
            "bad.toml: service[1].real[0].tun_flags: ipip tunnels have no checksum option (tun_flags = \"csum\" needs gue or gre)",
        ),
        (
            "tun_type = \"vxlan\"",
            "bad.toml: service[1].real[0].tun_type: unknown tunnel type 'vxlan' (expected ipip, gue or gre)",
        ),
        (
            "tun_type = \"gue\"\n  tun_port = 70000",
            "bad.toml: service[1].real[0].tun_port: tun_port must be 1..=65535, not 70000",
        ),
        (
            "tun_type = \"gue\"\n  tun_port = 1\n  tun_flags = \"sometimes\"",
            "bad.toml: service[1].real[0].tun_flags: unknown tunnel flags 'sometimes' (expected nocsum, csum or remcsum)",
        ),
    ] {
        assert_eq!(one(&tunnel, to), want, "{to}");
    }
    // tunnel options on a route real server
    assert_eq!(
        one(BASE, "tun_type = \"gre\""),
        "bad.toml: service[1].real[0].tun_type: tunnel options need forward = \"tunnel\" (this real server is route)"
    );
    // the real server's own forward counts
    assert_eq!(
        one(&tunnel, "forward = \"route\"\n  tun_type = \"gre\""),
        "bad.toml: service[1].real[0].tun_type: tunnel options need forward = \"tunnel\" (this real server is route)"
    );
}

#[test]
fn synproxy_for_tcp_services_with_masq_or_fullnat_real_servers() {
    let m = parse(
        &BASE.replacen(
            "forward = \"masq\"",
            "forward = \"masq\"\nsynproxy = true",
            1,
        ),
        "ok.toml",
    )
    .unwrap()
    .to_model();
    assert!(m.services[0].synproxy);
    assert!(!m.services[1].synproxy, "off by default");
    assert_eq!(
        one_error("forward = \"route\"", "forward = \"route\"\nsynproxy = true"),
        "bad.toml: service[1].synproxy: the SYN proxy splices the handshake and must see the real server's replies: masq and fullnat real servers only"
    );
    let v = errors(&BASE.replacen(
        "protocol = \"tcp\"\naddress = \"198.18.0.100:80\"",
        "protocol = \"udp\"\naddress = \"198.18.0.100:80\"\nsynproxy = true",
        1,
    ));
    assert!(
        v.iter()
            .any(|e| e.contains("service[0].synproxy: the SYN proxy is only for TCP")),
        "{v:#?}"
    );
}

#[test]
fn synproxy_settings_are_checked_and_converted() {
    let text = BASE.replacen(
        "[dataplane]\nworkers = 2\n",
        "[dataplane]\nworkers = 2\n\n[dataplane.synproxy]\nmss = 1400\nttl = 60\nsack = false\nsyn_retries = 2\ndup_ack_limit = 5\nwscale = 0\ntimestamp = false\n",
        1,
    );
    let c = parse(&text, "ok.toml").unwrap();
    let s = c.dataplane.synproxy.conf();
    assert_eq!(
        (s.mss, s.ttl, s.sack, s.syn_retries, s.dup_ack_limit),
        (1400, 60, false, 2, 5)
    );
    let d = parse(BASE, "ok.toml").unwrap().dataplane.synproxy.conf();
    assert_eq!(d, dataplane::forward::synproxy::SynProxyConf::default());
    for (kv, field) in [
        (
            "mss = 100",
            "dataplane.synproxy.mss: must be in 536..=9000, not 100",
        ),
        (
            "ttl = 0",
            "dataplane.synproxy.ttl: must be in 1..=255, not 0",
        ),
        ("wscale = 7", "dataplane.synproxy.wscale: only 0"),
        (
            "timestamp = true",
            "dataplane.synproxy.timestamp: only false",
        ),
        (
            "syn_retries = 11",
            "dataplane.synproxy.syn_retries: must be in 0..=10",
        ),
    ] {
        let v = errors(&BASE.replacen(
            "[dataplane]\nworkers = 2\n",
            &format!("[dataplane]\nworkers = 2\n\n[dataplane.synproxy]\n{kv}\n"),
            1,
        ));
        assert!(v.iter().any(|e| e.contains(field)), "{kv}: {v:#?}");
    }
}

#[test]
fn toa_only_for_fullnat_tcp_services() {
    assert_eq!(
        one_error("forward = \"masq\"", "forward = \"masq\"\ntoa = true"),
        "bad.toml: service[0].toa: TOA is for fullnat real servers (only fullnat hides the client's address)"
    );
    assert_eq!(
        one_error(
            "protocol = \"tcp\"\naddress = \"198.18.0.100:80\"",
            "protocol = \"udp\"\naddress = \"198.18.0.100:80\"\ntoa = true"
        ),
        "bad.toml: service[0].toa: TOA is a TCP option: only for TCP services"
    );
    let v = errors(&BASE.replacen("forward = \"masq\"", "forward = \"masq\"\ntoa = 1", 1));
    assert!(v.iter().any(|e| e.contains("service[0].toa")), "{v:#?}");
    let m = parse(
        &BASE.replacen(
            "forward = \"masq\"",
            "forward = \"fullnat\"\nladdrs = [\"198.18.0.50\"]\ntoa = true",
            1,
        ),
        "ok.toml",
    )
    .unwrap()
    .to_model();
    assert!(m.services[0].toa);
    assert!(!m.services[1].toa, "off by default");
}

#[test]
fn proxy_protocol_needs_tcp_and_fullnat() {
    assert_eq!(
        one_error(
            "forward = \"masq\"",
            "forward = \"masq\"\nproxy_protocol = \"v1\""
        ),
        "bad.toml: service[0].proxy_protocol: Proxy Protocol needs fullnat real servers (real[0] is masq)"
    );
    let v = errors(&BASE.replacen(
        "forward = \"masq\"",
        "forward = \"masq\"\nproxy_protocol = \"v3\"",
        1,
    ));
    assert!(
        v.iter().any(|e| e.ends_with(
            "service[0].proxy_protocol: unknown proxy_protocol 'v3' (expected \"v1\" or \"v2\")"
        )),
        "{v:#?}"
    );
    let fnat = BASE.replacen(
        "forward = \"masq\"",
        "forward = \"fullnat\"\nladdrs = [\"198.18.0.50\"]\nproxy_protocol = \"v2\"",
        1,
    );
    let m = parse(&fnat, "ok.toml").unwrap().to_model();
    assert_eq!(
        m.services[0].proxy_protocol,
        Some(crate::model::ProxyProtocol::V2)
    );
    assert_eq!(m.services[1].proxy_protocol, None, "off by default");
    let udp = fnat.replacen("protocol = \"tcp\"", "protocol = \"udp\"", 1);
    let v = errors(&udp);
    assert!(
        v.iter()
            .any(|e| e
                .ends_with("service[0].proxy_protocol: Proxy Protocol is only for TCP services")),
        "{v:#?}"
    );
}

#[test]
fn synproxy_toa_and_proxy_protocol_are_not_combined() {
    let fnat = "forward = \"fullnat\"\nladdrs = [\"198.18.0.50\"]";
    for (extra, want) in [
        (
            "toa = true\nproxy_protocol = \"v1\"",
            "service[0].proxy_protocol: toa and proxy_protocol",
        ),
        (
            "synproxy = true\ntoa = true",
            "service[0].toa: synproxy and toa",
        ),
        (
            "synproxy = true\nproxy_protocol = \"v2\"",
            "service[0].proxy_protocol: synproxy and proxy_protocol",
        ),
    ] {
        assert_eq!(
            one_error("forward = \"masq\"", &format!("{fnat}\n{extra}")),
            format!("bad.toml: {want} are not combined on one service yet (each rewrites the connection's start): choose one"),
            "{extra}"
        );
    }
}

#[test]
fn seq_adj_conns_is_checked() {
    let with = |v: &str| {
        BASE.replacen(
            "[dataplane]\nworkers = 2\n",
            &format!("[dataplane]\nworkers = 2\nseq_adj_conns = {v}\n"),
            1,
        )
    };
    assert_eq!(
        parse(&with("65536"), "ok.toml")
            .unwrap()
            .dataplane
            .seq_adj_conns,
        65536
    );
    assert_eq!(parse(BASE, "ok.toml").unwrap().dataplane.seq_adj_conns, 0);
    let v = errors(&with("-1"));
    assert!(
        v.iter().any(|e| e.ends_with(
            "dataplane.seq_adj_conns: must be in 0..=268435456 (0: a 128th of each connection table), not -1"
        )),
        "{v:#?}"
    );
}
