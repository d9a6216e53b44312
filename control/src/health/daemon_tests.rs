//! Health verdicts through the control thread's core (mock dataplane):
//! a failed check changes what is published, `rvsadm --health`, `-Ln` and
//! the metrics show it, and a reload keeps the verdicts.

use crate::config;
use crate::daemon::mock::MockDataplane;
use crate::daemon::proto::Request;
use crate::daemon::Daemon;
use crate::health::Report;
use std::net::TcpListener;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn config_text(up_port: u16, down_port: u16) -> String {
    format!(
        r#"
[eal]
cores = [0, 1]
[[port]]
name = "d0"
device = "net_null0"
addresses = ["198.18.0.1/24"]
[dataplane]
workers = 1
conn_table_size = 1024
[control]
socket = "/tmp/unused.sock"
[[service]]
protocol = "tcp"
address = "198.18.0.100:80"
forward = "masq"
[service.health]
delay_loop = 0.1
  [[service.real]]
  address = "198.19.0.2:8080"
  [[service.real.check]]
  type = "TCP_CHECK"
  connect_ip = "127.0.0.1"
  connect_port = {up_port}
  retry = 0
  [[service.real]]
  address = "198.19.0.3:8080"
  [[service.real.check]]
  type = "TCP_CHECK"
  connect_ip = "127.0.0.1"
  connect_port = {down_port}
  retry = 0
"#
    )
}

fn ask(d: &mut Daemon, args: &[&str]) -> String {
    let r = d.handle(&Request {
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: String::new(),
    });
    assert_eq!(r.status, 0, "{args:?}: {}", r.stderr);
    r.stdout
}

#[test]
fn a_failed_check_is_published_listed_and_survives_a_reload() {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let down = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = config_text(up.local_addr().unwrap().port(), down.port());
    let cfg = config::parse(&text, "t.toml").unwrap();
    let mock = MockDataplane::from_config(&cfg);
    let h = mock.handle();
    let mut d = Daemon::start(Path::new("/nonexistent.toml"), cfg.clone(), Box::new(mock)).unwrap();
    let (tx, rx) = mpsc::channel::<Report>();
    d.start_health(Arc::new(move |r| {
        let _ = tx.send(r);
    }))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while d.model().services[0].reals.len() == 2 {
        assert!(
            Instant::now() < deadline,
            "no verdict:\n{}",
            d.health().listing()
        );
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            d.on_health(&r);
        }
    }
    let reals: Vec<String> = d.model().services[0]
        .reals
        .iter()
        .map(|r| r.addr.to_string())
        .collect();
    assert_eq!(reals, ["198.19.0.2:8080"]);
    // published to the dataplane through the ordinary path
    let last = h.lock().applied.last().cloned().unwrap();
    assert_eq!(last.services[0].reals.len(), 1);
    let ln = ask(&mut d, &["-Ln"]);
    assert!(!ln.contains("198.19.0.3"), "{ln}");
    let health = ask(&mut d, &["--health"]);
    assert!(health.contains("-> 198.19.0.3:8080 DOWN"), "{health}");
    assert!(health.contains("connection refused"), "{health}");
    assert!(health.contains("-> 198.19.0.2:8080 UP"), "{health}");
    let m = d.metrics();
    assert!(
        m.contains("remote_address=\"198.19.0.3\",remote_port=\"8080\"} 0"),
        "{m}"
    );
    // a reload of the same file keeps the verdict: the failed one stays out
    let n = h.lock().applied.len();
    d.reload_with(cfg).unwrap();
    assert_eq!(d.model().services[0].reals.len(), 1);
    assert!(h.lock().applied.len() <= n + 1);
    if let Some(m) = h.lock().applied.last() {
        assert_eq!(m.services[0].reals.len(), 1);
    }
    assert!(ask(&mut d, &["--health"]).contains("-> 198.19.0.3:8080 DOWN"));
    drop(up);
    d.shutdown();
}

#[test]
fn passive_failures_reported_by_the_dataplane_mark_down_until_a_check_passes() {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = up.local_addr().unwrap().port();
    // a long delay_loop: the active check would not see a failure soon
    let text = config_text(port, port).replace(
        "delay_loop = 0.1",
        "delay_loop = 3600\npassive_check = true\npassive_fail_threshold = 2",
    );
    let cfg = config::parse(&text, "t.toml").unwrap();
    let mock = MockDataplane::from_config(&cfg);
    let h = mock.handle();
    let mut d = Daemon::start(Path::new("/nonexistent.toml"), cfg, Box::new(mock)).unwrap();
    assert!(h.lock().applied.last().unwrap().services[0].passive_check);
    let key = d.model().services[0].key;
    let rs: std::net::SocketAddr = "198.19.0.3:8080".parse().unwrap();
    h.lock().passive.push((key, rs, "passive: RST to SYN"));
    d.poll_passive();
    assert_eq!(d.model().services[0].reals.len(), 2, "below the threshold");
    h.lock().passive.push((key, rs, "passive: RST to SYN"));
    d.poll_passive();
    let reals: Vec<String> = d.model().services[0]
        .reals
        .iter()
        .map(|r| r.addr.to_string())
        .collect();
    assert_eq!(reals, ["198.19.0.2:8080"]);
    let last = h.lock().applied.last().cloned().unwrap();
    assert_eq!(last.services[0].reals.len(), 1);
    let health = ask(&mut d, &["--health"]);
    assert!(health.contains("-> 198.19.0.3:8080 DOWN"), "{health}");
    assert!(health.contains("passive: RST to SYN"), "{health}");
    // the active check's success brings it back
    let ok = Report {
        generation: d.health().generation(),
        id: crate::health::CheckId {
            svc: 0,
            real: 1,
            check: 0,
        },
        outcome: crate::health::probe::Outcome {
            ok: true,
            reason: "connected".into(),
            weight: None,
        },
        changed: None,
        at: std::time::SystemTime::now(),
    };
    d.on_health(&ok);
    assert_eq!(d.model().services[0].reals.len(), 2);
    drop(up);
    d.shutdown();
}
