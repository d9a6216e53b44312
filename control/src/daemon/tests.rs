//! The control thread's core against the mock dataplane.

use super::dataplane::{RealCounters, ServiceCounters};
use super::mock::{MockDataplane, MockHandle};
use super::*;
use crate::model::{Protocol, Stats};

const CONFIG: &str = r#"
[eal]
cores = [0, 1, 2, 3]

[[port]]
name = "d0"
device = "net_null0"
addresses = ["198.18.0.1/24"]

[dataplane]
workers = 2
conn_table_size = 1024

[[service]]
protocol = "tcp"
address = "198.18.0.100:80"
scheduler = "wrr"
forward = "masq"

  [[service.real]]
  address = "198.19.0.2:8080"
  weight = 2

[control]
socket = "/tmp/unused.sock"
"#;

fn daemon() -> (Daemon, MockHandle) {
    let cfg = config::parse(CONFIG, "test.toml").unwrap();
    let mock = MockDataplane::from_config(&cfg);
    let h = mock.handle();
    let d = Daemon::start(Path::new("/nonexistent.toml"), cfg, Box::new(mock)).unwrap();
    (d, h)
}

fn run(d: &mut Daemon, line: &str) -> Reply {
    d.handle(&Request {
        args: ipvsadm::split_line(line),
        stdin: String::new(),
    })
}

fn ok(d: &mut Daemon, line: &str) -> String {
    let r = run(d, line);
    assert_eq!(r.status, 0, "{line}: {}", r.stderr);
    r.stdout
}

fn key(s: &str) -> ServiceKey {
    ServiceKey {
        proto: Protocol::Tcp,
        addr: s.parse().unwrap(),
        fwmark: 0,
    }
}

#[test]
fn start_publishes_config() {
    let (d, h) = daemon();
    let st = h.lock();
    assert_eq!(st.applied.len(), 1);
    assert_eq!(st.applied[0], d.model().clone());
    assert_eq!(st.applied[0].services.len(), 1);
    assert_eq!(st.roles, vec![Role::Standalone]);
    assert_eq!(st.timeouts.len(), 1);
}

#[test]
fn rule_commands_reach_the_dataplane() {
    let (mut d, h) = daemon();
    ok(&mut d, "-A -t 198.18.0.9:80 -s wlc");
    ok(&mut d, "-a -t 198.18.0.9:80 -r 198.19.0.5:8080 -m -w 2");
    let last = h.lock().applied.last().unwrap().clone();
    assert_eq!(&last, d.model());
    let s = last.service(&key("198.18.0.9:80")).unwrap();
    assert_eq!(s.reals[0].weight, 2);
    assert!(ok(&mut d, "-Ln").contains("  -> 198.19.0.5:8080              Masq    2"));
    ok(&mut d, "-e -t 198.18.0.9:80 -r 198.19.0.5:8080 -m -w 5");
    assert_eq!(
        h.lock()
            .applied
            .last()
            .unwrap()
            .service(&key("198.18.0.9:80"))
            .unwrap()
            .reals[0]
            .weight,
        5
    );
    ok(&mut d, "-d -t 198.18.0.9:80 -r 198.19.0.5:8080");
    ok(&mut d, "-D -t 198.18.0.9:80");
    assert_eq!(h.lock().applied.last().unwrap().services.len(), 1);
    assert_eq!(h.lock().applied.len(), 6);
    // listings do not publish
    ok(&mut d, "-Ln");
    ok(&mut d, "-S");
    assert_eq!(h.lock().applied.len(), 6);
}

#[test]
fn refused_commands_change_nothing() {
    let (mut d, h) = daemon();
    let before = ok(&mut d, "-Ln");
    for (line, err) in [
        ("-A -t 198.18.0.9:80 -s nosuch", "Scheduler not found\n"),
        ("-A -t 198.18.0.100:80", "Service already exists\n"),
        (
            "-d -t 198.18.0.100:80 -r 198.19.0.9:8080",
            "No such destination\n",
        ),
        (
            "-A -t 300.1.1.1:80",
            "illegal virtual server address[:port] specified\n",
        ),
    ] {
        let r = run(&mut d, line);
        assert_ne!(r.status, 0, "{line}");
        assert_eq!(r.stderr, err, "{line}");
    }
    assert_eq!(ok(&mut d, "-Ln"), before);
    assert_eq!(h.lock().applied.len(), 1);
}

#[test]
fn dataplane_refusal_keeps_the_old_model() {
    let (mut d, h) = daemon();
    let before = d.model().clone();
    h.lock().fail_next_apply = Some("ring full".into());
    let r = run(&mut d, "-A -t 198.18.0.9:80");
    assert_eq!(r.status, 255);
    assert!(r.stderr.contains("ring full"), "{}", r.stderr);
    assert_eq!(d.model(), &before);
    // timeouts were put back when the services were refused
    h.lock().fail_next_apply = Some("nope".into());
    let r = run(&mut d, "-R");
    assert_eq!(r.status, 0); // empty restore: nothing to publish
    let r = d.handle(&Request {
        args: vec!["-R".into()],
        stdin: "--set 10 20 30\n-A -t 198.18.0.9:80\n".into(),
    });
    assert_eq!(r.status, 255);
    assert_eq!(d.model(), &before);
    let t = h.lock().timeouts.clone();
    assert_eq!(t.last(), Some(&before.timeouts));
}

#[test]
fn save_clear_restore_round_trip() {
    let (mut d, h) = daemon();
    ok(&mut d, "-A -u [2001:db8::1]:53 -s sh -p 60");
    ok(
        &mut d,
        "-a -u [2001:db8::1]:53 -r [2001:db8:1::2]:53 -g -w 3",
    );
    let listing = ok(&mut d, "-Ln");
    let saved = ok(&mut d, "-S -n");
    ok(&mut d, "-C");
    assert_eq!(d.model().services.len(), 0);
    let r = d.handle(&Request {
        args: vec!["-R".into()],
        stdin: saved,
    });
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(ok(&mut d, "-Ln"), listing);
    assert_eq!(h.lock().applied.last().unwrap(), d.model());
}

/// The words of the first line of `text` starting with `start`.
fn words<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    let line = text.lines().find(|l| l.starts_with(start)).unwrap_or("");
    line.split_whitespace().collect()
}

#[test]
fn stats_rates_zero_and_metrics() {
    let (mut d, h) = daemon();
    let k = key("198.18.0.100:80");
    let real = "198.19.0.2:8080".parse().unwrap();
    let mut total = Stats::default();
    let set = |h: &MockHandle, s: Stats| {
        let mut st = h.lock();
        st.stats.services = vec![ServiceCounters { key: k, stats: s }];
        st.stats.reals = vec![RealCounters {
            service: k,
            addr: real,
            stats: s,
            active_conns: 7,
            inact_conns: 3,
            persist_conns: 0,
        }];
    };
    set(&h, total);
    d.sample_rates(); // starts the estimators
    for _ in 0..3 {
        total.conns += 100;
        total.inpkts += 1000;
        set(&h, total);
        d.sample_rates();
    }
    let stats = ok(&mut d, "-Ln --stats");
    assert!(stats.contains("     300     3000"), "{stats}");
    let rate = ok(&mut d, "-Ln --rate");
    // after three samples of 50 conn/s and 500 packets/s: 29 and 289
    // (the sequence in est.rs)
    assert_eq!(
        words(&rate, "TCP"),
        ["TCP", "198.18.0.100:80", "29", "289", "0", "0", "0"]
    );
    let plain = ok(&mut d, "-Ln");
    assert!(plain.contains("Masq    2      7          3"), "{plain}");
    let m = d.metrics();
    assert!(m.contains("node_ipvs_connections_total 300\n"), "{m}");
    assert!(m.contains("node_ipvs_backend_connections_active{"));
    assert!(m.contains("rvs_conn_table_capacity{worker=\"1\"} 1024\n"));
    ok(&mut d, "-Z -t 198.18.0.100:80");
    assert_eq!(h.lock().zeroed, vec![Some(k)]);
    let stats = ok(&mut d, "-Ln --stats");
    assert!(!stats.contains("3000"), "{stats}");
    let rate = ok(&mut d, "-Ln --rate");
    assert_eq!(
        words(&rate, "TCP"),
        ["TCP", "198.18.0.100:80", "0", "0", "0", "0", "0"]
    );
    let r = run(&mut d, "-Z -t 198.18.0.7:80");
    assert_eq!(r.stderr, "No such service\n");
}

#[test]
fn reload_owns_only_what_the_file_lists() {
    let (mut d, h) = daemon();
    ok(&mut d, "-A -t 198.18.0.9:80 -s rr"); // made with rvsadm: kept
    ok(&mut d, "-a -t 198.18.0.9:80 -r 198.19.0.5:80 -g -w 3");
    ok(&mut d, "-A -t 198.18.0.10:80"); // made with rvsadm, then in the file
    let new = CONFIG
        .replace("weight = 2", "weight = 4")
        .replace("workers = 2", "workers = 3")
        + "\n[[service]]\nprotocol = \"udp\"\naddress = \"198.18.0.100:53\"\n"
        + "\n[[service]]\nprotocol = \"tcp\"\naddress = \"198.18.0.10:80\"\nscheduler = \"sh\"\n";
    let cfg = config::parse(&new, "new.toml").unwrap();
    let summary = d.reload_with(cfg).unwrap();
    assert!(
        summary.contains("1 service(s) added, 0 removed, 2 changed, 1 made with rvsadm kept"),
        "{summary}"
    );
    assert!(
        summary.contains("the file now owns tcp 198.18.0.10:80"),
        "{summary}"
    );
    assert!(summary.contains("dataplane.workers"), "{summary}");
    let m = h.lock().applied.last().unwrap().clone();
    assert_eq!(&m, d.model());
    assert_eq!(m.services.len(), 4);
    let kept = m.service(&key("198.18.0.9:80")).unwrap();
    assert_eq!(kept.origin, Origin::Rvsadm);
    assert_eq!(kept.reals[0].weight, 3);
    let taken = m.service(&key("198.18.0.10:80")).unwrap();
    assert_eq!(taken.origin, Origin::Config);
    assert_eq!(taken.scheduler.name(), "sh");
    assert_eq!(
        m.service(&key("198.18.0.100:80")).unwrap().reals[0].weight,
        4
    );
    assert_eq!(
        ok(&mut d, "-S --origin"),
        "# origin rvsadm\n-A -t 198.18.0.9:80 -s rr\n\
         -a -t 198.18.0.9:80 -r 198.19.0.5:80 -g -w 3\n\
         # origin config\n-A -t 198.18.0.10:80 -s sh\n\
         # origin config\n-A -t 198.18.0.100:80 -s wrr\n\
         -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 4\n\
         # origin config\n-A -u 198.18.0.100:53 -s wlc\n"
    );
    // a file without the service it made removes it; rvsadm's stays
    let cfg = config::parse(CONFIG, "new.toml").unwrap();
    let summary = d.reload_with(cfg).unwrap();
    assert!(
        summary.contains("0 service(s) added, 2 removed"),
        "{summary}"
    );
    assert!(d.model().service(&key("198.18.0.9:80")).is_some());
    // a bad file changes nothing
    let before = d.model().clone();
    let n = h.lock().applied.len();
    assert!(d.reload().unwrap_err().contains("/nonexistent.toml"));
    assert_eq!(d.model(), &before);
    assert_eq!(h.lock().applied.len(), n);
}

#[test]
fn reload_keeps_the_idle_policy_the_workers_started_with() {
    let (mut d, _h) = daemon();
    let new = CONFIG.replace(
        "workers = 2",
        "workers = 2\nidle = \"adaptive\"\nidle_max_sleep_us = 50",
    );
    let cfg = config::parse(&new, "new.toml").unwrap();
    let summary = d.reload_with(cfg).unwrap();
    assert!(
        summary.ends_with("; changes to dataplane.idle take effect only on restart"),
        "{summary}"
    );
    // the same file again: the policy it asks for is still not the running one
    let cfg = config::parse(&new, "new.toml").unwrap();
    assert!(d.reload_with(cfg).unwrap().contains("dataplane.idle"));
    // back to the file rvsd started with: nothing to note
    let cfg = config::parse(CONFIG, "new.toml").unwrap();
    assert!(!d.reload_with(cfg).unwrap().contains("restart"));
}

#[test]
fn extras_and_connections_come_from_the_dataplane() {
    let (mut d, h) = daemon();
    assert!(ok(&mut d, "--workers").contains("1024"));
    assert!(ok(&mut d, "--ports").contains("d0"));
    h.lock().conns = vec![crate::model::ConnEntry {
        proto: Protocol::Tcp,
        expire_secs: 890,
        state: "ESTABLISHED".into(),
        client: "198.18.0.50:40000".parse().unwrap(),
        virt: "198.18.0.100:80".parse().unwrap(),
        dest: "198.19.0.2:8080".parse().unwrap(),
        seq_delta: None,
    }];
    let c = ok(&mut d, "-Lnc");
    assert!(c.contains("ESTABLISHED"), "{c}");
    assert!(ok(&mut d, "-h").starts_with("Usage:"));
    d.shutdown();
    assert!(h.lock().shut_down);
}

#[test]
fn sync_daemons_start_list_and_stop() {
    let (mut d, _h) = daemon();
    assert_eq!(ok(&mut d, "-L --daemon"), "");
    assert!(ok(&mut d, "--sync-stats").contains("no sync daemon"));
    ok(&mut d, "--start-daemon master --syncid 7");
    assert_eq!(
        ok(&mut d, "-L --daemon"),
        "master sync daemon (mcast=, syncid=7)\n"
    );
    let again = run(&mut d, "--start-daemon master");
    assert_eq!(again.status, 255);
    assert!(again.stderr.contains("already running"));
    assert!(ok(&mut d, "--sync-stats").contains("sent: 0 messages"));
    ok(&mut d, "--stop-daemon master");
    assert_eq!(ok(&mut d, "-L --daemon"), "");
    let r = run(&mut d, "--stop-daemon master");
    assert_eq!(r.status, 255);
    assert!(r.stderr.contains("no master sync daemon"));
    d.shutdown();
}

#[test]
fn ha_sync_config_is_validated() {
    let bad = format!(
        "{CONFIG}\n[ha]\nrole = \"standalone\"\nsync = true\nsync_group = \"10.0.0.1\"\nsync_threshold = [50, 3]\nsync_retries = 4\n"
    );
    let errs = config::parse(&bad, "t.toml").unwrap_err().to_string();
    for f in [
        "ha.sync",
        "ha.sync_group",
        "ha.sync_threshold",
        "ha.sync_retries",
    ] {
        assert!(errs.contains(f), "{f}: {errs}");
    }
    let good = format!(
        "{CONFIG}\n[ha]\nrole = \"backup\"\nsync = false\nsync_interface = \"eth1\"\nsync_id = 3\nsync_peer = \"192.0.2.2\"\n"
    );
    let cfg = config::parse(&good, "t.toml").unwrap();
    let s = sync::SyncSettings::from_config(&cfg.ha);
    assert_eq!(s.syncid, 3);
    assert_eq!(s.peer, Some("192.0.2.2:8848".parse().unwrap()));
    assert_eq!(s.params, ::dataplane::sync::SyncParams::default());
}

#[test]
fn role_switches_by_hand_as_keepalived_notify_does() {
    let (mut d, h) = daemon();
    ok(&mut d, "--role backup");
    ok(&mut d, "--role backup"); // idempotent: notify scripts repeat themselves
    ok(&mut d, "--role master");
    assert_eq!(
        h.lock().roles,
        vec![Role::Standalone, Role::Backup, Role::Master]
    );
    let r = run(&mut d, "--role leader");
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("illegal role"), "{}", r.stderr);
    assert_eq!(h.lock().roles.len(), 3, "a refused command changes nothing");
    d.shutdown();
}

#[test]
fn garp_settings_are_validated_like_keepalived_ones() {
    let bad = format!(
        "{CONFIG}\n[ha]\nrole = \"backup\"\ngarp_master_repeat = 0\ngarp_master_interval_ms = 5\n"
    );
    let errs = config::parse(&bad, "t.toml").unwrap_err().to_string();
    assert!(
        errs.contains("t.toml: ha.garp_master_repeat: must be 1..=100, not 0"),
        "{errs}"
    );
    assert!(
        errs.contains("t.toml: ha.garp_master_interval_ms: must be 10..=60000, not 5"),
        "{errs}"
    );
    let good = format!("{CONFIG}\n[ha]\nrole = \"backup\"\ngarp_master_repeat = 5\ngarp_master_interval_ms = 200\n");
    let cfg = config::parse(&good, "t.toml").unwrap();
    assert_eq!(
        (cfg.ha.garp_master_repeat, cfg.ha.garp_master_interval_ms),
        (5, 200)
    );
}

#[test]
fn add_laddr_is_checked_like_the_config_file() {
    let (mut d, h) = daemon();
    let n = h.lock().applied.len();
    for (line, err) in [
        (
            "--add-laddr -t 198.18.0.100:80 -z 198.18.0.50 -F nosuch",
            "-F nosuch: unknown port 'nosuch' (ports: d0)\n",
        ),
        (
            "--add-laddr -t 198.18.0.100:80 -z 203.0.113.1 -F d0",
            "-z 203.0.113.1: local address 203.0.113.1 is not on a subnet of port 'd0' (198.18.0.1/24)\n",
        ),
        (
            "--add-laddr -t 198.18.0.100:80 -z 2001:db8::5 -F d0",
            "-z 2001:db8::5: local address 2001:db8::5 is not on a subnet of port 'd0' (198.18.0.1/24)\n",
        ),
    ] {
        let r = run(&mut d, line);
        assert_eq!((r.status, r.stderr.as_str()), (255, err), "{line}");
    }
    // -R names the line, and applies nothing
    let r = d.handle(&Request {
        args: vec!["-R".into()],
        stdin: "-A -t 198.18.0.9:80\n--add-laddr -t 198.18.0.9:80 -z 198.19.9.9 -F d0\n".into(),
    });
    assert_eq!(r.status, 255);
    assert_eq!(
        r.stderr,
        "line 2: -z 198.19.9.9: local address 198.19.9.9 is not on a subnet of port 'd0' (198.18.0.1/24)\n"
    );
    assert_eq!(h.lock().applied.len(), n);
    assert!(d.model().service(&key("198.18.0.9:80")).is_none());
    // a good one goes through
    ok(
        &mut d,
        "--add-laddr -t 198.18.0.100:80 -z 198.18.0.50 -F d0",
    );
    assert_eq!(
        d.model().service(&key("198.18.0.100:80")).unwrap().laddrs[0].addr,
        "198.18.0.50".parse::<std::net::IpAddr>().unwrap()
    );
}

/// `--rate` against a known rate: counters that grow by exactly 22,000
/// connections/s (sampled every 2 s, as the server loop does) show 22000
/// CPS once the IPVS average has settled.
#[test]
fn rate_listing_shows_a_known_rate() {
    let (mut d, h) = daemon();
    let k = key("198.18.0.100:80");
    let mut total = Stats::default();
    let set = |h: &MockHandle, s: Stats| {
        h.lock().stats.services = vec![ServiceCounters { key: k, stats: s }];
    };
    set(&h, total);
    d.sample_rates();
    for _ in 0..60 {
        total.conns += 44_000;
        total.inpkts += 440_000;
        total.outpkts += 220_000;
        set(&h, total);
        d.sample_rates();
    }
    let rate = ok(&mut d, "-Ln --rate");
    assert_eq!(
        words(&rate, "TCP"),
        [
            "TCP",
            "198.18.0.100:80",
            "22000",
            "220000",
            "110000",
            "0",
            "0"
        ]
    );
}

/// The announce rules of `[bgp]` (issue 13), against the mock dataplane
/// and a stand-in for birdc (a script that says "Reconfigured" and
/// records each call): which VIPs the include file lists after each
/// change, and what `rvsadm --bgp`, `--drain` and the metrics say. The
/// real BIRD is in control/tests/e2e_bgp.rs.
#[test]
fn bgp_announce_rules() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;
    let dir = std::env::temp_dir().join(format!("rvsd-bgp-unit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let birdc = dir.join("birdc");
    let calls = dir.join("calls");
    std::fs::write(
        &birdc,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\necho 'BIRD 2.0.12 ready.'\necho Reconfigured\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&birdc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let include = dir.join("rvs.conf");
    let text = format!(
        "{CONFIG}\n[bgp]\nspeaker = \"bird\"\ninclude = \"{}\"\nbirdc = \"{}\"\nsocket = \"/x/bird.ctl\"\n\
         \n[[service]]\nprotocol = \"tcp\"\naddress = \"198.18.0.101:80\"\nforward = \"masq\"\nannounce = false\n\
         \x20 [[service.real]]\n  address = \"198.19.0.2:8080\"\n",
        include.display(),
        birdc.display()
    );
    let cfg = config::parse(&text, "test.toml").unwrap();
    let mock = MockDataplane::from_config(&cfg);
    let mut d = Daemon::start(Path::new("/nonexistent.toml"), cfg, Box::new(mock)).unwrap();
    let wait = |d: &Daemon| {
        d.bgp
            .as_ref()
            .unwrap()
            .wait(Duration::from_secs(10))
            .unwrap()
    };
    let routes = || -> Vec<String> {
        std::fs::read_to_string(&include)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.trim_start().starts_with("route "))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let vip = "route 198.18.0.100/32 blackhole;";
    wait(&d);
    // standalone, a real server of weight 2; .101 opted out
    assert_eq!(routes(), [vip]);
    let l = ok(&mut d, "--bgp");
    assert!(l.contains("198.18.0.100 announced\n"), "{l}");
    assert!(l.contains("198.18.0.101 withdrawn\n"), "{l}");
    assert!(d
        .metrics()
        .contains("rvs_bgp_announced{vip=\"198.18.0.100\"} 1\n"));
    // no usable real server: weight 0 withdraws, weight back announces
    ok(&mut d, "-e -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 0");
    wait(&d);
    assert!(routes().is_empty());
    ok(&mut d, "-e -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 1");
    wait(&d);
    assert_eq!(routes(), [vip]);
    // backup withdraws, master announces
    ok(&mut d, "--role backup");
    wait(&d);
    assert!(routes().is_empty());
    ok(&mut d, "--role master");
    wait(&d);
    assert_eq!(routes(), [vip]);
    // drain on / off, confirmed by the (stand-in) speaker
    assert_eq!(ok(&mut d, "--drain on"), "drained: every VIP withdrawn\n");
    assert!(routes().is_empty());
    assert!(ok(&mut d, "--bgp").contains("drained"));
    // a change while drained announces nothing
    ok(&mut d, "-e -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 3");
    wait(&d);
    assert!(routes().is_empty());
    assert_eq!(ok(&mut d, "--drain off"), "announcing: 198.18.0.100\n");
    assert_eq!(routes(), [vip]);
    assert_eq!(run(&mut d, "--drain maybe").status, 2);
    let m = d.metrics();
    assert!(m.contains("rvs_bgp_withdrawals_total 3\n"), "{m}");
    assert!(m.contains("rvs_bgp_speaker_errors 0\n"), "{m}");
    // SIGTERM: withdrawn first, then the drain time
    assert_eq!(d.begin_stop(), Some(Duration::from_secs(5)));
    assert!(routes().is_empty());
    let c = std::fs::read_to_string(&calls).unwrap();
    assert!(c.lines().all(|l| l == "-s /x/bird.ctl configure"), "{c}");
    d.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
