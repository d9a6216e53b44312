//! The CPU cost of health checking: N real servers (default 1,000), each
//! with a TCP_CHECK (or HTTP_GET with `--http`) every `delay_loop` (1 s),
//! spread by `warmup` as keepalived spreads its checkers. The checkers
//! are rvsd's own (one thread each), their reports folded into the
//! health state on one "control" thread as rvsd does. The servers run in
//! a child process (100 listeners on 127.0.0.1, each standing for ten
//! real servers), so the figure is the checker side only: the CPU time of
//! this process over the run, as a share of one core. A benchmark, not a
//! test: it asserts nothing about time.
//!
//! `cargo bench -p control --bench health_checks -- [--reals N] [--secs S] [--http]`

use control::health::probe::Outcome;
use control::health::{CheckKind, CheckSpec, Health, Plan, RealPlan, Report, ServicePlan};
use control::model::{Forward, Protocol, RealServer, ServiceKey};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LISTENERS: usize = 100;

/// The child: listeners that accept, answer HTTP with 200, close.
fn serve() {
    let mut ports = Vec::new();
    let mut threads = Vec::new();
    for _ in 0..LISTENERS {
        let l = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind: {e}");
                std::process::exit(1);
            }
        };
        ports.push(l.local_addr().map(|a| a.port()).unwrap_or(0));
        threads.push(std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                let mut buf = [0u8; 1024];
                // an HTTP request gets an answer; a TCP_CHECK closes first
                if let Ok(n) = s.read(&mut buf) {
                    if n > 0 {
                        let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    }
                }
            }
        }));
    }
    let line: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    println!("PORTS {}", line.join(" "));
    let _ = std::io::stdout().flush();
    // until the parent closes our stdin
    let mut sink = String::new();
    let _ = std::io::stdin().read_to_string(&mut sink);
}

/// utime + stime of this process, in seconds (from /proc/self/stat).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // fields after the parenthesised command name
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let u: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let s: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (u + s) / tick
}

fn rss_mib() -> f64 {
    let st = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        serve();
        return;
    }
    let get = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let reals = get("--reals", 1000) as usize;
    let secs = get("--secs", 10);
    let http = args.iter().any(|a| a == "--http");

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--serve")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ports");
    let ports: Vec<u16> = line
        .trim()
        .strip_prefix("PORTS ")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    assert_eq!(ports.len(), LISTENERS, "server said {line:?}");

    let kind = if http {
        CheckKind::Http {
            path: "/".into(),
            status_codes: vec![200],
            digest: None,
            virtualhost: None,
            tls: false,
        }
    } else {
        CheckKind::Tcp
    };
    let key = ServiceKey {
        proto: Protocol::Tcp,
        addr: "198.18.0.100:80".parse().expect("vip"),
        fwmark: 0,
    };
    let mut plan = Plan::default();
    // 10 services of N/10 real servers (quorum and listings per service)
    let per = reals.div_ceil(10);
    for s in 0..reals.div_ceil(per) {
        let mut sp = ServicePlan {
            key: Some(ServiceKey {
                addr: SocketAddr::new(key.addr.ip(), 80 + s as u16),
                ..key
            }),
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            sorry: None,
            reals: Vec::new(),
            passive: None,
        };
        for i in s * per..((s + 1) * per).min(reals) {
            let target: SocketAddr = SocketAddr::new([127, 0, 0, 1].into(), ports[i % LISTENERS]);
            // distinct real-server addresses; the probe goes to the listener
            let addr = SocketAddr::new(
                [198, 18, (i / 250) as u8 + 1, (i % 250) as u8 + 2].into(),
                80,
            );
            sp.reals.push(RealPlan {
                template: RealServer::new(addr, Forward::Masq),
                weight: 1,
                checks: vec![CheckSpec {
                    kind: kind.clone(),
                    target,
                    bindto: None,
                    connect_timeout: Duration::from_secs(3),
                    delay_loop: Duration::from_secs(1),
                    retry: 1,
                    delay_before_retry: Duration::from_secs(1),
                    warmup: Duration::from_secs(1),
                    proxy_protocol: None,
                }],
                inhibit: false,
                notify_up: None,
                notify_down: None,
            });
        }
        plan.services.push(sp);
    }

    let (tx, rx) = mpsc::channel::<Report>();
    let mut health = Health::new(plan, 1);
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    health
        .start(Arc::new(move |r| {
            let _ = tx.send(r);
        }))
        .expect("checkers");
    // the control thread's share: fold every report in
    let deadline = t0 + Duration::from_secs(secs);
    let (mut ok, mut failed, mut transitions) = (0u64, 0u64, 0u64);
    let mut warm = None;
    while Instant::now() < deadline {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            let o: &Outcome = &r.outcome;
            if o.ok {
                ok += 1;
            } else {
                failed += 1;
            }
            transitions += health.on_report(&r).len() as u64;
        }
        // measure from after the warmup second: the steady state
        if warm.is_none() && t0.elapsed() >= Duration::from_secs(2) {
            warm = Some((Instant::now(), cpu_seconds(), ok + failed));
        }
    }
    let (tw, cw, nw) = warm.expect("ran past the warmup");
    let wall = tw.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cw;
    let checks = (ok + failed - nw) as f64;
    let threads = health.plan().checks();
    let rss = rss_mib();
    health.stop();
    drop(child.stdin.take());
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "health_checks: {reals} real servers, {} every 1 s, {threads} checker threads",
        if http { "HTTP_GET" } else { "TCP_CHECK" }
    );
    println!(
        "  steady state over {wall:.1} s: {:.0} checks/s ({ok} ok, {failed} failed in all, {transitions} transitions)",
        checks / wall
    );
    println!(
        "  checker CPU: {:.1} % of one core ({:.1} us per check), RSS {rss:.1} MiB; total CPU since start {:.2} s",
        100.0 * cpu / wall,
        1e6 * cpu / checks.max(1.0),
        cpu_seconds() - cpu0
    );
}
