//! keepalived.conf files, good and bad, read by rvsd and by the converter.

use super::*;
use crate::config;
use crate::health::{self, CheckKind};
use crate::model::Forward;
use std::time::Duration;

const RVSD_TOML: &str = r#"
[eal]
cores = [0, 1]
hugepages = false
memory_mb = 64
[[port]]
name = "client"
device = "net_null0"
addresses = ["198.18.0.1/24"]
[[port]]
name = "server"
device = "net_null1"
addresses = ["198.18.1.1/24", "198.18.3.1/24"]
[keepalived]
conf = "keepalived.conf"
"#;

/// A typical keepalived.conf: VRRP for keepalived, virtual servers for rvs.
const GOOD: &str = r#"
! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
   notification_email { ops@example.com }
}

vrrp_instance VI_1 {
    state MASTER
    interface rvs-client
    virtual_router_id 51
    priority 100
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    notify_master "/usr/sbin/rvsadm --role master"
}

virtual_server 198.18.0.100 80 {
    delay_loop 2
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    protocol TCP
    sorry_server 198.18.1.99 8080
    quorum 2
    hysteresis 1
    quorum_down "/usr/local/bin/page-oncall"

    real_server 198.18.1.11 8080 {
        weight 3
        uthreshold 100
        lthreshold 10
        inhibit_on_failure
        notify_down "/usr/local/bin/rs-down 11"
        HTTP_GET {
            url {
              path /health
              digest 5d41402abc4b2a76b9719d911017c592
              status_code 200
            }
            url {
              path /ready
              status_code 200-204
            }
            connect_timeout 3
            nb_get_retry 2
            delay_before_retry 1.5
        }
    }
    real_server 198.18.1.12 8080 {
        weight 1
        TCP_CHECK {
            connect_port 8081
            bindto 198.18.1.1
            connect_timeout 2
        }
    }
}

virtual_server_group WEB {
    198.18.0.110-111 443
}

virtual_server group WEB {
    lb_algo sh
    sh-port
    lb_kind DR
    alpha
    real_server 198.18.1.13 443 {
        TCP_CHECK {
            retry 3
        }
        PING_CHECK {
        }
    }
}

local_address_group LAG {
    198.18.3.10-11
}

virtual_server 198.18.0.120 53 {
    protocol UDP
    lb_kind FNAT
    laddr_group_name LAG
    real_server 198.18.1.14 53 {
        UDP_CHECK {
            payload 70696e67
            require_reply
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check-dns 198.18.1.14"
            misc_timeout 4
            misc_dynamic
        }
    }
}

virtual_server 198.18.0.121 53 {
    ops
    protocol UDP
    lb_kind NAT
    real_server 198.18.1.15 53 {
        UDP_CHECK {
            payload 70696e67
            require_reply 70 6f xX 67
            min_reply_length 4
        }
    }
}
"#;

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rvs-ka-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load_with(name: &str, ka: &str) -> Result<crate::config::Config, String> {
    let d = dir(name);
    std::fs::write(d.join("keepalived.conf"), ka).unwrap();
    std::fs::write(d.join("rvsd.toml"), RVSD_TOML).unwrap();
    let r = config::load(&d.join("rvsd.toml")).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&d);
    r
}

#[test]
fn rvsd_reads_the_virtual_servers_of_a_keepalived_conf() {
    let cfg = load_with("good", GOOD).unwrap();
    let m = cfg.to_model();
    let keys: Vec<String> = m.services.iter().map(|s| s.key.to_string()).collect();
    assert_eq!(
        keys,
        [
            "tcp 198.18.0.100:80",
            "tcp 198.18.0.110:443",
            "tcp 198.18.0.111:443",
            "udp 198.18.0.120:53",
            "udp 198.18.0.121:53"
        ]
    );
    // `ops` (before `protocol UDP` in the block: order does not matter)
    assert_eq!(
        m.services.iter().map(|s| s.ops).collect::<Vec<_>>(),
        [false, false, false, false, true]
    );
    let web = &m.services[0];
    assert_eq!(web.scheduler.name(), "wrr");
    assert_eq!(web.persistent, Some(300));
    assert_eq!(web.reals[0].forward, Forward::Masq);
    assert_eq!(
        (
            web.reals[0].weight,
            web.reals[0].u_threshold,
            web.reals[0].l_threshold
        ),
        (3, 100, 10)
    );
    assert_eq!(
        web.sorry.as_ref().unwrap().addr.to_string(),
        "198.18.1.99:8080"
    );
    assert!(m.services[1].flags.sh_port);
    assert_eq!(m.services[1].reals[0].forward, Forward::Route);
    assert_eq!(m.services[3].reals[0].forward, Forward::FullNat);
    let la: Vec<String> = m.services[3]
        .laddrs
        .iter()
        .map(|l| l.addr.to_string())
        .collect();
    assert_eq!(la, ["198.18.3.10", "198.18.3.11"]);

    let plan = health::config::plan(&cfg);
    assert_eq!(plan.services.len(), 5);
    let s0 = &plan.services[0];
    assert_eq!((s0.quorum, s0.hysteresis), (2, 1));
    assert_eq!(
        s0.quorum_down.as_deref(),
        Some("/usr/local/bin/page-oncall")
    );
    let r = &s0.reals[0];
    assert!(r.inhibit);
    assert_eq!(r.notify_down.as_deref(), Some("/usr/local/bin/rs-down 11"));
    // each url is a check, with the checker's options
    assert_eq!(r.checks.len(), 2);
    assert_eq!(r.checks[0].retry, 2);
    assert_eq!(r.checks[0].connect_timeout, Duration::from_secs(3));
    assert_eq!(r.checks[0].delay_before_retry, Duration::from_millis(1500));
    assert_eq!(r.checks[0].delay_loop, Duration::from_secs(2));
    match &r.checks[1].kind {
        CheckKind::Http {
            path, status_codes, ..
        } => {
            assert_eq!(path, "/ready");
            assert_eq!(status_codes, &[200, 201, 202, 203, 204]);
        }
        k => panic!("{k:?}"),
    }
    let tcp = &s0.reals[1].checks[0];
    assert_eq!(tcp.target.to_string(), "198.18.1.12:8081");
    assert_eq!(tcp.bindto.unwrap().to_string(), "198.18.1.1:0");
    assert!(plan.services[1].alpha);
    assert_eq!(plan.services[1].reals[0].checks[1].kind, CheckKind::Ping);
    let udp = &plan.services[3].reals[0].checks;
    assert_eq!(
        udp[0].kind,
        CheckKind::Udp {
            payload: b"ping".to_vec(),
            require_reply: true,
            reply: None
        }
    );
    // require_reply with the expected octets (x: wildcard nibbles)
    assert_eq!(
        plan.services[4].reals[0].checks[0].kind,
        CheckKind::Udp {
            payload: b"ping".to_vec(),
            require_reply: true,
            reply: Some(crate::health::UdpReply {
                data: vec![0x70, 0x6f, 0x00, 0x67],
                mask: vec![0, 0, 0xff, 0],
                min_len: 4,
                max_len: 255
            })
        }
    );
    assert_eq!(
        udp[1].kind,
        CheckKind::Misc {
            command: "/usr/local/bin/check-dns 198.18.1.14".into(),
            timeout: Duration::from_secs(4),
            dynamic: true
        }
    );
}

#[test]
fn the_converter_prints_toml_that_means_the_same() {
    let d = dir("conv");
    let ka = d.join("keepalived.conf");
    std::fs::write(&ka, GOOD).unwrap();
    let out = import_command(&[ka.display().to_string()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("# virtual_server 198.18.0.100 80 ("),
        "{}",
        out.stdout
    );
    let base = RVSD_TOML.replace("[keepalived]\nconf = \"keepalived.conf\"\n", "");
    let converted = config::parse(&format!("{base}\n{}", out.stdout), "conv.toml")
        .unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    std::fs::write(d.join("rvsd.toml"), RVSD_TOML).unwrap();
    let direct = config::load(&d.join("rvsd.toml")).unwrap();
    assert_eq!(converted.to_model(), direct.to_model());
    assert_eq!(
        health::config::plan(&converted),
        health::config::plan(&direct)
    );
    let _ = std::fs::remove_dir_all(&d);

    let bad = import_command(&["/nonexistent/keepalived.conf".into()]);
    assert_eq!(bad.status, 1);
    assert!(
        bad.stderr
            .contains("/nonexistent/keepalived.conf: cannot read"),
        "{}",
        bad.stderr
    );
    assert_eq!(import_command(&[]).status, 2);
}

#[test]
fn includes_are_followed() {
    let d = dir("inc");
    std::fs::create_dir_all(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("keepalived.conf"),
        "global_defs {\n router_id x\n}\ninclude conf.d/*.conf\n",
    )
    .unwrap();
    std::fs::write(
        d.join("conf.d/a.conf"),
        "virtual_server 198.18.0.100 80 {\n lb_kind NAT\n real_server 198.18.1.11 80 {\n TCP_CHECK {\n }\n }\n}\n",
    )
    .unwrap();
    std::fs::write(d.join("conf.d/b.txt"), "this is not read\n").unwrap();
    std::fs::write(d.join("rvsd.toml"), RVSD_TOML).unwrap();
    let cfg = config::load(&d.join("rvsd.toml")).unwrap();
    assert_eq!(cfg.to_model().services.len(), 1);
    let _ = std::fs::remove_dir_all(&d);
}

/// Each bad construct: its text and what the error must say.
const BAD: &[(&str, &str)] = &[
    ("virtual_server 198.18.0.100 80 {\n lb_kind DR\n syn_proxy\n real_server 198.18.1.11 80 {\n }\n}\n", "synproxy): the SYN proxy splices the handshake and must see the real server's replies"),
    ("virtual_server 198.18.0.100 80 {\n ops\n}\n", "line 2: ops (one-packet scheduling) is only for UDP services"),
    ("virtual_server 198.18.0.100 80 {\n ops\n protocol TCP\n}\n", "line 2: ops (one-packet scheduling) is only for UDP services"),
    ("virtual_server 198.18.0.100 53 {\n protocol UDP\n lb_kind FNAT\n ops\n real_server 198.18.1.11 53 {\n }\n}\n", "ops): fullnat needs a connection entry for its local port"),
    ("virtual_server 198.18.0.100 80 {\n proxy_protocol v3\n}\n", "line 2: unknown proxy_protocol 'v3' (expected v1, v2 or disable)"),
    ("virtual_server 198.18.0.100 80 {\n lb_kind NAT\n proxy_protocol v1\n real_server 198.18.1.11 80 {\n }\n}\n", "proxy_protocol): Proxy Protocol needs fullnat real servers (real[0] is masq)"),
    ("virtual_server fwmark 0 {\n}\n", "line 1: '0' is not a firewall mark (1..=4294967295)"),
    ("virtual_server fwmark 1 {\n ip_family inet5\n}\n", "line 2: unknown ip_family 'inet5' (expected inet or inet6)"),
    ("virtual_server 198.18.0.100 80 {\n ip_family inet6\n}\n", "line 1: ip_family is only for fwmark virtual servers"),
    // rvsd.toml defines no [[fwmark]] for mark 7
    ("virtual_server fwmark 7 {\n real_server 198.18.1.11 80 {\n }\n}\n", "(virtual_server fwmark 7: fwmark): mark 7 is not defined by any [[fwmark]] table"),
    ("virtual_server 198.18.0.100 80 {\n protocol SCTP\n}\n", "line 2: protocol SCTP is not supported"),
    ("virtual_server 198.18.0.100 80 {\n lb_kind MAGIC\n}\n", "line 2: unknown lb_kind 'MAGIC'"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n SMTP_CHECK {\n }\n }\n}\n", "line 3: SMTP_CHECK is not supported"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n HTTP_GET {\n url {\n path /\n regex ^ok\n }\n }\n }\n}\n", "line 6: url regex is not supported"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n TCP_CHECK {\n connect_port x\n }\n }\n}\n", "line 4: connect_port 'x' is not a whole number"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n weight 1\n", "a block is not closed"),
    ("virtual_server 198.18.0.100 80 {\n}\n}\n", "line 3: '}' closes no block"),
    ("bogus_block {\n}\n", "line 1: unknown keyword 'bogus_block'"),
    ("virtual_server group NOPE {\n}\n", "line 1: virtual_server_group 'NOPE' is not defined"),
    ("virtual_server_group G {\n fwmark 0\n}\nvirtual_server group G {\n}\n", "line 2: '0' is not a firewall mark (1..=4294967295)"),
    ("virtual_server_group G {\n fwmark\n}\nvirtual_server group G {\n}\n", "line 2: expected 'fwmark MARK'"),
    ("virtual_server_group G {\n fwmark 1\n fwmark 1\n}\nvirtual_server group G {\n}\n", "line 3: fwmark 1 is listed twice in the group"),
    ("virtual_server_group G {\n fwmark 1\n 198.18.0.100 80\n}\nvirtual_server group G {\n ip_family inet6\n}\n", "line 5: ip_family inet6 does not match the group's address 198.18.0.100"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 {\n }\n}\n", "line 2: expected 'real_server IP PORT {'"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n HTTP_GET {\n url {\n status_code abc\n }\n }\n }\n}\n", "line 5: 'abc' is not a status code"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n MISC_CHECK {\n misc_path /bin/true\n user nobody\n }\n }\n}\n", "line 5: MISC_CHECK user is not supported"),
    // semantic errors found by rvs's own validation name the keepalived line
    ("virtual_server 198.18.0.100 80 {\n lb_kind DR\n real_server 198.18.1.11 8080 {\n }\n}\n", "keepalived.conf: line 3 (virtual_server 198.18.0.100 80: real_server.address): route-mode real server 198.18.1.11:8080 must use the virtual port 80"),
    ("virtual_server 198.18.0.100 80 {\n lb_algo bogus\n}\n", "keepalived.conf: line 1 (virtual_server 198.18.0.100 80: scheduler): unknown scheduler 'bogus'"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n HTTP_GET {\n url {\n digest xyz\n }\n }\n }\n}\n", "real_server.check[0].digest): 'xyz' is not an MD5 digest"),
    ("virtual_server 198.18.0.100 53 {\n protocol UDP\n real_server 198.18.1.11 53 {\n UDP_CHECK {\n require_reply 70 zz\n }\n }\n}\n", "real_server.check[0].require_reply): '70 zz' is not a hex string"),
    ("virtual_server 198.18.0.100 53 {\n protocol UDP\n real_server 198.18.1.11 53 {\n UDP_CHECK {\n require_reply 70\n min_reply_length 9\n max_reply_length 8\n }\n }\n}\n", "9 > max_reply_length 8: every reply would fail"),
    ("virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n TCP_CHECK {\n min_reply_length 4\n }\n }\n}\n", "line 4: 'min_reply_length' in a TCP_CHECK is not supported"),
];

#[test]
fn bad_keepalived_conf_is_refused_with_the_line() {
    for (text, want) in BAD {
        let err = match load_with("bad", text) {
            Ok(c) => panic!("accepted ({} services):\n{text}", c.services.len()),
            Err(e) => e,
        };
        assert!(err.contains(want), "want {want:?}\ngot {err}\nfor:\n{text}");
        assert!(err.contains("keepalived.conf"), "{err}");
    }
    // DPVS's `syn_proxy` on a NAT virtual server
    let sp = "virtual_server 198.18.0.100 80 {\n lb_kind NAT\n syn_proxy\n real_server 198.18.1.11 80 {\n }\n}\n";
    let m = load_with("synproxy", sp).unwrap().to_model();
    assert!(m.services[0].synproxy);
    // one bad virtual server: nothing of the file is applied
    let mixed = format!("{GOOD}\nvirtual_server 198.18.0.130 80 {{\n ops\n}}\n");
    assert!(load_with("mixed", &mixed).is_err());
}

#[test]
fn ssl_get_is_http_get_over_tls() {
    let ka = "virtual_server 198.18.0.100 443 {\n lb_kind NAT\n real_server 198.18.1.11 443 {\n SSL_GET {\n url {\n path /status\n digest 5d41402abc4b2a76b9719d911017c592\n }\n connect_timeout 2\n }\n }\n}\n";
    let cfg = load_with("ssl", ka).unwrap();
    let plan = health::config::plan(&cfg);
    let c = &plan.services[0].reals[0].checks[0];
    assert_eq!(c.kind.name(), "SSL_GET");
    assert_eq!(
        c.kind,
        CheckKind::Http {
            path: "/status".into(),
            status_codes: vec![],
            digest: Some("5d41402abc4b2a76b9719d911017c592".into()),
            virtualhost: None,
            tls: true
        }
    );
}

#[test]
fn fwmark_virtual_servers_become_fwmark_services() {
    let d = dir("fwm");
    let ka = "virtual_server fwmark 1 {\n lb_algo wlc\n lb_kind DR\n protocol TCP\n persistence_timeout 300\n real_server 198.18.1.11 80 {\n  weight 2\n  TCP_CHECK {\n   connect_port 80\n  }\n }\n}\nvirtual_server fwmark 2 {\n ip_family inet6\n lb_algo rr\n lb_kind NAT\n real_server 2001:db8:1::11 8080 {\n }\n}\n";
    std::fs::write(d.join("keepalived.conf"), ka).unwrap();
    // the marks themselves: rvs's stand-in for the iptables MARK rules
    let marks = "[[fwmark]]\nmark = 1\n[[fwmark.rule]]\nnet = \"198.18.0.100\"\nproto = \"tcp\"\nports = \"80\"\n[[fwmark.rule]]\nnet = \"198.18.0.100\"\nproto = \"tcp\"\nports = \"443\"\n[[fwmark]]\nmark = 2\n[[fwmark.rule]]\nnet = \"2001:db8::100\"\n";
    let toml = format!("{RVSD_TOML}{marks}");
    std::fs::write(d.join("rvsd.toml"), &toml).unwrap();
    let cfg = config::load(&d.join("rvsd.toml")).unwrap_or_else(|e| panic!("{e}"));
    let m = cfg.to_model();
    assert_eq!(
        crate::ipvsadm::list::save(&m),
        "-A -f 1 -s wlc -p 300\n\
-a -f 1 -r 198.18.1.11:80 -g -w 2\n\
-A -f 2 -6 -s rr\n\
-a -f 2 -6 -r [2001:db8:1::11]:8080 -m -w 1\n"
    );
    // the converter writes fwmark = N (and family) and means the same
    let out = import_command(&[d.join("keepalived.conf").display().to_string()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("[[service]]\nfwmark = 1\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("[[service]]\nfwmark = 2\nfamily = \"ipv6\"\n"),
        "{}",
        out.stdout
    );
    let base = toml.replace("[keepalived]\nconf = \"keepalived.conf\"\n", "");
    let converted = config::parse(&format!("{base}\n{}", out.stdout), "conv.toml")
        .unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    assert_eq!(converted.to_model(), m);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn fwmark_entries_of_a_virtual_server_group_become_fwmark_services() {
    // keepalived.conf(5): a virtual_server_group lists "IP PORT",
    // "IP-RANGE PORT" and "fwmark N" entries; each is a service with the
    // group's settings and real servers (-S in rvs's listing order).
    let d = dir("fwmgrp");
    let ka = "virtual_server_group MIX {\n fwmark 1\n 198.18.0.110 80\n fwmark 3\n}\nvirtual_server group MIX {\n lb_algo rr\n lb_kind DR\n persistence_timeout 60\n real_server 198.18.1.11 80 {\n  weight 2\n }\n}\nvirtual_server_group V6 {\n fwmark 2\n}\nvirtual_server group V6 {\n ip_family inet6\n lb_kind NAT\n real_server 2001:db8:1::11 8080 {\n }\n}\n";
    std::fs::write(d.join("keepalived.conf"), ka).unwrap();
    let marks = "[[fwmark]]\nmark = 1\n[[fwmark.rule]]\nnet = \"198.18.0.100\"\nproto = \"tcp\"\nports = \"80\"\n[[fwmark]]\nmark = 3\n[[fwmark.rule]]\nnet = \"198.18.0.101\"\n[[fwmark]]\nmark = 2\n[[fwmark.rule]]\nnet = \"2001:db8::100\"\n";
    let toml = format!("{RVSD_TOML}{marks}");
    std::fs::write(d.join("rvsd.toml"), &toml).unwrap();
    let cfg = config::load(&d.join("rvsd.toml")).unwrap_or_else(|e| panic!("{e}"));
    let m = cfg.to_model();
    assert_eq!(
        crate::ipvsadm::list::save(&m),
        "-A -t 198.18.0.110:80 -s rr -p 60\n\
-a -t 198.18.0.110:80 -r 198.18.1.11:80 -g -w 2\n\
-A -f 1 -s rr -p 60\n\
-a -f 1 -r 198.18.1.11:80 -g -w 2\n\
-A -f 2 -6 -s wlc\n\
-a -f 2 -6 -r [2001:db8:1::11]:8080 -m -w 1\n\
-A -f 3 -s rr -p 60\n\
-a -f 3 -r 198.18.1.11:80 -g -w 2\n"
    );
    // the converter writes the same services
    let out = import_command(&[d.join("keepalived.conf").display().to_string()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let base = toml.replace("[keepalived]\nconf = \"keepalived.conf\"\n", "");
    let converted = config::parse(&format!("{base}\n{}", out.stdout), "conv.toml")
        .unwrap_or_else(|e| panic!("{e}\n{}", out.stdout));
    assert_eq!(converted.to_model(), m);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn lvs_method_tun_takes_keepalived_tunnel_types() {
    // keepalived.conf(5) of 2.2.7: lvs_method TUN [type {ipip|gue port NUM|gre}
    // [nocsum|csum|remcsum]], on the virtual_server (default of its real
    // servers) or on a real_server.
    let ka = "virtual_server 198.18.0.100 80 {\n lvs_method TUN type gue port 6080 csum\n real_server 198.18.1.11 80 {\n }\n real_server 198.18.1.12 80 {\n  lvs_method TUN type gre\n }\n real_server 198.18.1.13 80 {\n  lb_kind TUN type gre csum\n }\n real_server 198.18.1.14 80 {\n  lvs_method TUN\n }\n}\n";
    let m = load_with("tun", ka).unwrap().to_model();
    let mut one = crate::model::Model::new();
    one.services = m.services.clone();
    assert_eq!(
        crate::ipvsadm::list::save(&one),
        "-A -t 198.18.0.100:80 -s wlc\n\
-a -t 198.18.0.100:80 -r 198.18.1.11:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
-a -t 198.18.0.100:80 -r 198.18.1.12:80 -i -w 1 --tun-type gre --tun-nocsum\n\
-a -t 198.18.0.100:80 -r 198.18.1.13:80 -i -w 1 --tun-type gre --tun-csum\n\
-a -t 198.18.0.100:80 -r 198.18.1.14:80 -i -w 1 --tun-type ipip\n"
    );
    for (text, want) in [
        (
            "virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n  lvs_method TUN type gue\n }\n}\n",
            "real_server.tun_type): gue tunnels need tun_port",
        ),
        (
            "virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n  lvs_method TUN type gre remcsum\n }\n}\n",
            "real_server.tun_flags): remcsum (remote checksum offload) is for gue tunnels only",
        ),
        (
            "virtual_server 198.18.0.100 80 {\n real_server 198.18.1.11 80 {\n  lvs_method TUN type gue port x\n }\n}\n",
            "line 3: tunnel port 'x' is not a number",
        ),
        (
            "virtual_server 198.18.0.100 80 {\n lvs_method TUN type gre key 5\n}\n",
            "line 2: unknown TUN option 'key'",
        ),
    ] {
        let err = load_with("tunbad", text).unwrap_err();
        assert!(err.contains(want), "want {want:?}\ngot {err}");
    }
}
