//! The rvsd and rvsadm binaries as processes: start from configs/nat.toml
//! (socket and metrics port moved to a temp dir and a free port), talk
//! through the control socket, signal, scrape, stop. rvsd runs on the mock
//! dataplane, which appends every model it receives to a record file
//! (`RVSD_MOCK_RECORD`), so each test can check what the dataplane got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");
const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");
const WAIT: Duration = Duration::from_secs(20);

fn nat_toml() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/nat.toml");
    std::fs::read_to_string(p).unwrap()
}

/// A fresh directory under /tmp (short: unix socket paths are limited).
fn temp_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "rvsd-t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Rvsd {
    child: Child,
    dir: PathBuf,
    config: PathBuf,
    sock: PathBuf,
    metrics: SocketAddr,
    record: PathBuf,
    log: Arc<Mutex<String>>,
    notify: UnixDatagram,
}

/// nat.toml with the control socket and the metrics port moved.
fn config_for(dir: &Path, metrics: SocketAddr) -> String {
    let sock = dir.join("run/rvsd.sock");
    let t = nat_toml()
        .replace(
            "socket = \"/run/rvs/rvsd.sock\"",
            &format!("socket = \"{}\"", sock.display()),
        )
        .replace(
            "listen = \"127.0.0.1:9090\"",
            &format!("listen = \"{metrics}\""),
        );
    assert!(t.contains(&sock.display().to_string()) && t.contains(&metrics.to_string()));
    t
}

impl Rvsd {
    fn start() -> Rvsd {
        let dir = temp_dir();
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.join("rvsd.toml");
        std::fs::write(&config, config_for(&dir, metrics)).unwrap();
        Rvsd::spawn(dir, config, metrics)
    }

    fn spawn(dir: PathBuf, config: PathBuf, metrics: SocketAddr) -> Rvsd {
        let notify_path = dir.join("notify.sock");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        notify.set_read_timeout(Some(WAIT)).unwrap();
        let record = dir.join("record.txt");
        let mut child = Command::new(RVSD)
            .arg("--config")
            .arg(&config)
            .env("NOTIFY_SOCKET", &notify_path)
            .env("RVSD_MOCK_RECORD", &record)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let d = Rvsd {
            child,
            sock: dir.join("run/rvsd.sock"),
            dir,
            config,
            metrics,
            record,
            log,
            notify,
        };
        d.wait_notify("READY=1");
        d
    }

    /// Waits for a notification datagram containing `what`.
    fn wait_notify(&self, what: &str) {
        let mut buf = [0u8; 512];
        loop {
            let n = match self.notify.recv(&mut buf) {
                Ok(n) => n,
                // a stop/continue of this process interrupts timed waits
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("no {what} from rvsd ({e}); log:\n{}", self.log()),
            };
            if String::from_utf8_lossy(&buf[..n]).contains(what) {
                return;
            }
        }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn wait_log(&self, what: &str) {
        let t = Instant::now();
        while !self.log().contains(what) {
            assert!(
                t.elapsed() < WAIT,
                "no {what:?} in the log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn adm(&self, args: &[&str]) -> Output {
        adm_at(&self.sock, args, None)
    }

    /// rvsadm that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.adm(args);
        assert!(
            o.status.success(),
            "rvsadm {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// The last model the mock dataplane received, as `-S` text.
    fn last_applied(&self) -> String {
        let text = std::fs::read_to_string(&self.record).unwrap();
        let i = text.rfind("# apply ").unwrap();
        let block = &text[i..];
        block[block.find('\n').unwrap() + 1..].to_string()
    }

    fn applied_count(&self) -> usize {
        std::fs::read_to_string(&self.record)
            .unwrap()
            .matches("# apply ")
            .count()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(
                t.elapsed() < WAIT,
                "rvsd did not exit; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn adm_at(sock: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(RVSADM)
        .args(args)
        .env("RVS_SOCKET", sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    c.wait_with_output().unwrap()
}

const NAT_LISTING: &str = "\
IP Virtual Server version 1.2.1 (size=65536)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  198.18.0.100:80 wrr
  -> 198.19.0.2:8080              Masq    2      0          0         
  -> 198.19.0.3:8080              Masq    1      0          0         
TCP  [2001:db8::100]:80 rr
  -> [2001:db8:1::2]:8080         Masq    1      0          0         
";

#[test]
fn commands_take_effect_in_the_listing_and_the_dataplane() {
    let d = Rvsd::start();
    d.wait_log("using the mock dataplane");
    assert_eq!(d.ok(&["-Ln"]), NAT_LISTING);
    assert_eq!(d.last_applied(), d.ok(&["-S", "-n"]));

    d.ok(&["-A", "-t", "198.18.0.9:80", "-s", "wlc"]);
    assert!(d.ok(&["-Ln"]).contains("TCP  198.18.0.9:80 wlc\n"));
    assert!(d.last_applied().contains("-A -t 198.18.0.9:80 -s wlc"));

    d.ok(&[
        "-a",
        "-t",
        "198.18.0.9:80",
        "-r",
        "198.19.0.7:8080",
        "-m",
        "-w",
        "2",
    ]);
    let l = d.ok(&["-Ln", "-t", "198.18.0.9:80"]);
    assert!(
        l.contains("  -> 198.19.0.7:8080              Masq    2"),
        "{l}"
    );
    assert!(d
        .last_applied()
        .contains("-a -t 198.18.0.9:80 -r 198.19.0.7:8080 -m -w 2"));

    d.ok(&[
        "-e",
        "-t",
        "198.18.0.9:80",
        "-r",
        "198.19.0.7:8080",
        "-m",
        "-w",
        "5",
    ]);
    assert!(d
        .ok(&["-Ln"])
        .contains("  -> 198.19.0.7:8080              Masq    5"));
    assert!(d.last_applied().contains("-r 198.19.0.7:8080 -m -w 5"));

    d.ok(&["-d", "-t", "198.18.0.9:80", "-r", "198.19.0.7:8080"]);
    assert!(!d.ok(&["-Ln"]).contains("198.19.0.7"));
    assert!(!d.last_applied().contains("198.19.0.7"));

    d.ok(&["-D", "-t", "198.18.0.9:80"]);
    assert_eq!(d.ok(&["-Ln"]), NAT_LISTING);
    assert_eq!(d.last_applied(), d.ok(&["-S", "-n"]));
    assert_eq!(d.applied_count(), 6);

    // rvs's own listings come from the dataplane
    assert!(d.ok(&["--ports"]).contains("d1"));
}

#[test]
fn refused_commands_report_and_change_nothing() {
    let d = Rvsd::start();
    for (args, status, err) in [
        (
            &["-A", "-t", "198.18.0.9:80", "-s", "nosuch"][..],
            255,
            "Scheduler not found\n",
        ),
        (
            &["-A", "-t", "198.18.0.100:80"],
            255,
            "Service already exists\n",
        ),
        (
            &["-d", "-t", "198.18.0.100:80", "-r", "198.19.0.99:8080"],
            255,
            "No such destination\n",
        ),
        (
            &["-a", "-t", "198.18.0.55:80", "-r", "198.19.0.2:8080"],
            255,
            "Service not defined\n",
        ),
        (
            &["-A", "-t", "198.18.0.300:80"],
            2,
            "illegal virtual server address[:port] specified\n",
        ),
        (
            &[
                "--add-laddr",
                "-t",
                "198.18.0.100:80",
                "-z",
                "198.18.0.50",
                "-F",
                "d9",
            ],
            255,
            "-F d9: unknown port 'd9' (ports: d0, d1)\n",
        ),
        (
            &[
                "--add-laddr",
                "-t",
                "198.18.0.100:80",
                "-z",
                "198.18.0.50",
                "-F",
                "d1",
            ],
            255,
            "-z 198.18.0.50: local address 198.18.0.50 is not on a subnet of port 'd1' \
             (198.19.0.1/24, 2001:db8:1::1/64)\n",
        ),
        (
            &[
                "-a",
                "-t",
                "198.18.0.100:80",
                "-r",
                "[2001:db8:1::9]:80",
                "-m",
            ],
            2,
            "Different address family is allowed only for tunneling servers\n",
        ),
    ] {
        let o = d.adm(args);
        assert_eq!(o.status.code(), Some(status), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&o.stderr), err, "{args:?}");
        assert!(o.stdout.is_empty());
    }
    assert_eq!(d.ok(&["-Ln"]), NAT_LISTING);
    assert_eq!(d.applied_count(), 1);
}

#[test]
fn save_clear_restore_gives_the_same_listing() {
    let d = Rvsd::start();
    d.ok(&["-A", "-u", "198.18.0.100:53", "-s", "sh", "-p", "120"]);
    d.ok(&[
        "-a",
        "-u",
        "198.18.0.100:53",
        "-r",
        "198.19.0.2:53",
        "-g",
        "-w",
        "3",
    ]);
    let before = d.ok(&["-Ln"]);
    let saved = d.ok(&["-S", "-n"]);
    d.ok(&["-C"]);
    assert_eq!(d.ok(&["-Ln"]).lines().count(), 3);
    let o = adm_at(&d.sock, &["-R"], Some(&saved));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(d.ok(&["-Ln"]), before);
    assert_eq!(d.last_applied(), saved);
    // a bad line in -R changes nothing
    let o = adm_at(
        &d.sock,
        &["-R"],
        Some("-C\n-A -t 198.18.0.1:80 -s nosuch\n"),
    );
    assert_eq!(o.status.code(), Some(255));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "line 2: Scheduler not found\n"
    );
    assert_eq!(d.ok(&["-Ln"]), before);
}

#[test]
fn sighup_applies_a_good_file_and_keeps_state_on_a_bad_one() {
    let d = Rvsd::start();
    // made with rvsadm, not in the file: a reload leaves it alone
    d.ok(&["-A", "-t", "198.18.0.9:80", "-s", "rr"]);
    d.ok(&["-a", "-t", "198.18.0.9:80", "-r", "198.19.0.9", "-w", "3"]);
    let good = std::fs::read_to_string(&d.config)
        .unwrap()
        .replace("weight = 2", "weight = 7")
        + "\n[[service]]\nprotocol = \"udp\"\naddress = \"198.18.0.100:53\"\nscheduler = \"rr\"\n";
    std::fs::write(&d.config, good).unwrap();
    d.signal("HUP");
    d.wait_notify("RELOADING=1\nMONOTONIC_USEC=");
    d.wait_notify("READY=1");
    let l = d.ok(&["-Ln"]);
    assert!(
        l.contains("  -> 198.19.0.2:8080              Masq    7"),
        "{l}"
    );
    assert!(l.contains("UDP  198.18.0.100:53 rr"), "{l}");
    assert!(
        l.contains(
            "TCP  198.18.0.9:80 rr\n  -> 198.19.0.9:80                Route   3      0          0         \n"
        ),
        "{l}"
    );
    assert_eq!(d.last_applied(), d.ok(&["-S", "-n"]));
    d.wait_log("1 service(s) added, 0 removed, 1 changed, 1 made with rvsadm kept");
    // who owns what: only with rvs's --origin
    let o = d.ok(&["-Ln", "--origin"]);
    assert!(o.contains("TCP  198.18.0.9:80 rr origin rvsadm\n"), "{o}");
    assert!(
        o.contains("TCP  198.18.0.100:80 wrr origin config\n"),
        "{o}"
    );
    assert!(o.contains("UDP  198.18.0.100:53 rr origin config\n"), "{o}");
    assert!(d
        .ok(&["-S", "--origin"])
        .contains("# origin rvsadm\n-A -t 198.18.0.9:80 -s rr\n"));

    let n = d.applied_count();
    std::fs::write(
        &d.config,
        nat_toml().replace("weight = 2", "weight = 70000"),
    )
    .unwrap();
    d.signal("HUP");
    d.wait_log("reload failed");
    d.wait_log("service[0].real[0].weight");
    assert_eq!(d.ok(&["-Ln"]), l);
    assert_eq!(d.applied_count(), n);
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = Rvsd::start();
    assert!(d.sock.exists());
    // a second rvsd on the same socket refuses to start
    let o = Command::new(RVSD)
        .arg("--config")
        .arg(&d.config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("another rvsd is running"));
    assert!(d.ok(&["-Ln"]).contains("198.18.0.100:80"));

    d.signal("TERM");
    d.wait_notify("STOPPING=1");
    let st = d.wait_exit();
    assert_eq!(st.code(), Some(0), "log:\n{}", d.log());
    assert!(!d.sock.exists());
    d.wait_log("stopped");
    // and rvsadm now says so, quickly
    let t = Instant::now();
    let o = d.adm(&["-Ln"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!(
            "rvsadm: cannot connect to rvsd at {}: No such file or directory (is rvsd running?)\n",
            d.sock.display()
        )
    );
}

#[test]
fn stale_socket_is_replaced() {
    let dir = temp_dir();
    let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.join("rvsd.toml");
    std::fs::write(&config, config_for(&dir, metrics)).unwrap();
    std::fs::create_dir_all(dir.join("run")).unwrap();
    let sock = dir.join("run/rvsd.sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    // nobody answers on it: rvsadm fails fast with the reason
    let o = adm_at(&sock, &["-Ln"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Connection refused (is rvsd running?)"));
    let d = Rvsd::spawn(dir, config, metrics);
    d.wait_log("removing stale control socket");
    assert_eq!(d.ok(&["-Ln"]), NAT_LISTING);
}

#[test]
fn rvsadm_without_a_daemon() {
    let t = Instant::now();
    let o = adm_at(Path::new("/nonexistent/rvsd.sock"), &["-Ln"], None);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "rvsadm: cannot connect to rvsd at /nonexistent/rvsd.sock: No such file or directory (is rvsd running?)\n"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // the default socket, when nothing names one
    let o = Command::new(RVSADM)
        .arg("-L")
        .env_remove("RVS_SOCKET")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rvsd at /run/rvs/rvsd.sock"));
    // -h and usage errors work offline
    let o = adm_at(Path::new("/nonexistent/rvsd.sock"), &["-h"], None);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("Usage:"));
    let o = adm_at(Path::new("/nonexistent/rvsd.sock"), &["-A"], None);
    assert_eq!(o.status.code(), Some(2));
    // --socket beats the environment
    let o = Command::new(RVSADM)
        .args(["--socket", "/nonexistent/other.sock", "-Ln"])
        .env("RVS_SOCKET", "/nonexistent/rvsd.sock")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("other.sock"));
}

#[test]
fn bad_config_and_check() {
    let dir = temp_dir();
    let good = dir.join("good.toml");
    std::fs::write(&good, config_for(&dir, "127.0.0.1:1".parse().unwrap())).unwrap();
    let o = Command::new(RVSD)
        .args(["--check", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("OK"));
    // --check starts nothing
    assert!(!dir.join("run/rvsd.sock").exists());

    let bad = dir.join("bad.toml");
    let text = nat_toml()
        .replace("weight = 2", "weight = 70000")
        .replace("scheduler = \"rr\"", "scheduler = \"nosuch\"");
    std::fs::write(&bad, text).unwrap();
    for check in [true, false] {
        let mut c = Command::new(RVSD);
        if check {
            c.arg("--check");
        }
        let o = c.arg("--config").arg(&bad).output().unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("service[0].real[0].weight"), "{err}");
        assert!(err.contains("service[1].scheduler"), "{err}");
        assert!(err.contains(&bad.display().to_string()), "{err}");
    }
    let o = Command::new(RVSD)
        .args(["--config", "/nonexistent/rvsd.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/rvsd.toml: cannot read"));
    let o = Command::new(RVSD).arg("--bogus").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 13: a bad `[bgp]` is refused whole, each error naming the field
/// and why (unknown speaker, bad ASN, bad neighbour).
#[test]
fn bad_bgp_config_is_refused() {
    let dir = temp_dir();
    let bad = dir.join("bad-bgp.toml");
    let text = format!(
        "{}\n[bgp]\nspeaker = \"exabgp\"\nlocal_as = 70000000000\nneighbor_as = 65000\n\
         neighbors = [\"not-an-address\"]\n",
        config_for(&dir, "127.0.0.1:1".parse().unwrap())
    );
    std::fs::write(&bad, text).unwrap();
    let o = Command::new(RVSD)
        .arg("--check")
        .arg("--config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    let f = bad.display().to_string();
    for want in [
        format!("{f}: bgp.speaker: unknown speaker 'exabgp' (rvs drives BIRD 2: \"bird\")"),
        format!("{f}: bgp.local_as: 70000000000 is not an AS number (1..=4294967294)"),
        format!("{f}: bgp.neighbors[0]: 'not-an-address' is not a unicast IPv4 or IPv6 address"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// A line-level check of Prometheus text format 0.0.4: comments are HELP
/// or TYPE with a valid name and type, samples are `name{labels} value`
/// with a known family, and each family's TYPE comes before its samples.
fn validate_prometheus(text: &str) -> Result<usize, String> {
    fn name_ok(s: &str) -> bool {
        let mut c = s.chars();
        matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
            && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
    }
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut typed = std::collections::HashSet::new();
    let mut samples = 0;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut w = rest.splitn(3, ' ');
            let (kw, name, arg) = (w.next(), w.next(), w.next());
            let name = name
                .filter(|n| name_ok(n))
                .ok_or(format!("bad comment {line:?}"))?;
            match (kw, arg) {
                (Some("HELP"), Some(_)) => {}
                (Some("TYPE"), Some("counter" | "gauge" | "untyped")) => {
                    if !typed.insert(name.to_string()) {
                        return Err(format!("TYPE twice for {name}"));
                    }
                }
                _ => return Err(format!("bad comment {line:?}")),
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or(format!("bad sample {line:?}"))?;
        value
            .parse::<f64>()
            .map_err(|_| format!("bad value {line:?}"))?;
        let name = match series.split_once('{') {
            Some((n, labels)) => {
                let labels = labels
                    .strip_suffix('}')
                    .ok_or(format!("bad labels {line:?}"))?;
                for kv in labels.split("\",").filter(|s| !s.is_empty()) {
                    let (k, v) = kv.split_once("=\"").ok_or(format!("bad label {line:?}"))?;
                    if !name_ok(k) || k.contains(':') || v.contains('\n') {
                        return Err(format!("bad label {line:?}"));
                    }
                }
                n
            }
            None => series,
        };
        if !name_ok(name) || !typed.contains(name) {
            return Err(format!("sample before its TYPE or bad name: {line:?}"));
        }
        samples += 1;
    }
    Ok(samples)
}

#[test]
fn metrics_endpoint() {
    let d = Rvsd::start();
    let (head, body) = http_get(d.metrics, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    let n = validate_prometheus(&body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert!(n > 10, "{body}");
    for family in [
        "node_ipvs_connections_total",
        "node_ipvs_incoming_packets_total",
        "node_ipvs_outgoing_bytes_total",
        "node_ipvs_backend_connections_active",
        "node_ipvs_backend_weight",
        "rvs_conn_table_capacity",
    ] {
        assert!(body.contains(&format!("# TYPE {family} ")), "{family}");
    }
    assert!(body.contains(
        "node_ipvs_backend_weight{local_address=\"198.18.0.100\",local_port=\"80\",\
         remote_address=\"198.19.0.2\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"} 2\n"
    ));
    assert!(body.contains("rvs_port_rx_packets_total{port=\"d1\",worker=\"1\"} 0\n"));
    // a change shows in the next scrape
    d.ok(&[
        "-e",
        "-t",
        "198.18.0.100:80",
        "-r",
        "198.19.0.2:8080",
        "-m",
        "-w",
        "9",
    ]);
    let (_, body) = http_get(d.metrics, "/metrics");
    assert!(body.contains("remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"} 9\n"));
    let (head, _) = http_get(d.metrics, "/");
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
}
