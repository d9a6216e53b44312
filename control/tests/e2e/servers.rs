//! The test servers and clients (`scripts/e2e/*.py`, python3 stdlib only),
//! run in namespaces, with their JSON-lines output parsed into structs.

use std::time::Duration;

use super::json::{parse_lines, Obj};
use super::netns::{exec_timeout, spawn, Proc, RealServer, Topology};

/// Default ports of the test servers.
pub const HTTP_PORT: u16 = 80;
pub const UDP_PORT: u16 = 5353;

/// `scripts/e2e/<name>` as an absolute path.
pub fn script(name: &str) -> String {
    format!("{}/../scripts/e2e/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Starts `http_name_server.py <name>` (dual-stack) in `ns` and waits for
/// it to listen.
pub fn start_http(ns: &str, name: &str, port: u16) -> Proc {
    let p = port.to_string();
    let mut proc = spawn(
        ns,
        &[
            "python3",
            &script("http_name_server.py"),
            name,
            "--port",
            &p,
        ],
    );
    ready(&mut proc);
    proc
}

/// Starts `udp_echo.py <name>` (IPv4 and IPv6) in `ns` and waits for it to
/// be bound.
pub fn start_udp(ns: &str, name: &str, port: u16) -> Proc {
    let p = port.to_string();
    let mut proc = spawn(ns, &["python3", &script("udp_echo.py"), name, "--port", &p]);
    ready(&mut proc);
    proc
}

fn ready(proc: &mut Proc) {
    if proc
        .wait_line(Duration::from_secs(30), |l| l.starts_with("READY"))
        .is_none()
    {
        panic!("{} did not become ready: {}", proc.name, proc.stderr());
    }
}

/// Every real server's HTTP ([`HTTP_PORT`]) and UDP echo ([`UDP_PORT`])
/// server, answering with the server's name.
pub fn start_all(topo: &Topology) -> Vec<Proc> {
    let mut v = Vec::new();
    for s in &topo.servers {
        v.push(start_http(&s.ns, &s.name, HTTP_PORT));
        v.push(start_udp(&s.ns, &s.name, UDP_PORT));
    }
    v
}

/// Runs `client.py args...` in `ns` and parses its JSON lines.
pub fn client(ns: &str, args: &[&str], timeout: Duration) -> Vec<Obj> {
    let path = script("client.py");
    let mut argv = vec!["python3", path.as_str()];
    argv.extend_from_slice(args);
    let out = exec_timeout(ns, &argv, timeout).unwrap_or_else(|e| panic!("{e}"));
    if !out.ok() {
        panic!(
            "client.py {args:?} in {ns}: status {:?} timed_out {}: {}",
            out.status, out.timed_out, out.stderr
        );
    }
    parse_lines(&out.stdout)
}

fn with_source<'a>(mut args: Vec<&'a str>, source: Option<&'a str>) -> Vec<&'a str> {
    if let Some(s) = source {
        args.extend_from_slice(&["--source", s]);
    }
    args
}

/// One HTTP request's outcome.
#[derive(Clone, Debug)]
pub struct HttpResult {
    pub ok: bool,
    pub status: Option<u64>,
    /// The `X-Server` header: which real server answered.
    pub server: Option<String>,
    pub body: String,
    pub error: Option<String>,
}

/// `count` GETs of `path` from `source` (None: the kernel picks), each on a
/// new TCP connection.
pub fn http_get(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    path: &str,
    count: usize,
) -> Vec<HttpResult> {
    let (p, c) = (port.to_string(), count.to_string());
    let args = with_source(
        vec!["http", host, &p, "--path", path, "--count", &c],
        source,
    );
    client(ns, &args, Duration::from_secs(30 + 10 * count as u64))
        .iter()
        .map(|o| HttpResult {
            ok: o.bool("ok"),
            status: o.u64("status"),
            server: o.str("server").map(str::to_string),
            body: o.str("body").unwrap_or_default().to_string(),
            error: o.str("error").map(str::to_string),
        })
        .collect()
}

/// `count` GETs of `path`, each on a new TCP connection from the same
/// source address and port `sport` (the tuple reused each time).
pub fn http_get_from_port(
    ns: &str,
    source: &str,
    sport: u16,
    host: &str,
    port: u16,
    count: usize,
) -> Vec<HttpResult> {
    let (p, c, sp) = (port.to_string(), count.to_string(), sport.to_string());
    let args = vec![
        "http", host, &p, "--count", &c, "--source", source, "--sport", &sp,
    ];
    client(ns, &args, Duration::from_secs(30 + 10 * count as u64))
        .iter()
        .map(|o| HttpResult {
            ok: o.bool("ok"),
            status: o.u64("status"),
            server: o.str("server").map(str::to_string),
            body: o.str("body").unwrap_or_default().to_string(),
            error: o.str("error").map(str::to_string),
        })
        .collect()
}

/// A verified download.
#[derive(Clone, Debug)]
pub struct BytesResult {
    /// Right status, right length, every byte equal to the expected stream.
    pub ok: bool,
    pub server: Option<String>,
    pub len: u64,
    pub first_mismatch: Option<u64>,
    pub sha256: Option<String>,
    pub error: Option<String>,
}

/// GET /bytes/`n`?seed=`seed`, compared byte for byte by the client.
pub fn fetch_bytes(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    n: usize,
    seed: u64,
) -> BytesResult {
    fetch_bytes_paced(ns, source, host, port, n, seed, 0)
}

/// [`fetch_bytes`] with the server pacing the body at about `kbps` KiB/s
/// (0: as fast as it goes), so a transfer is in flight for a known while.
pub fn fetch_bytes_paced(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    n: usize,
    seed: u64,
    kbps: u64,
) -> BytesResult {
    let (p, n_s, seed_s, k) = (
        port.to_string(),
        n.to_string(),
        seed.to_string(),
        kbps.to_string(),
    );
    let args = with_source(
        vec![
            "bytes",
            host,
            &p,
            "--n",
            &n_s,
            "--seed",
            &seed_s,
            "--kbps",
            &k,
            "--timeout",
            "30",
        ],
        source,
    );
    let v = client(ns, &args, Duration::from_secs(180));
    let o = v
        .first()
        .unwrap_or_else(|| panic!("bytes client printed nothing"));
    BytesResult {
        ok: o.bool("ok"),
        server: o.str("server").map(str::to_string),
        len: o.u64("len").unwrap_or(0),
        first_mismatch: o.u64("first_mismatch"),
        sha256: o.str("sha256").map(str::to_string),
        error: o.str("error").map(str::to_string),
    }
}

/// A verified upload (client to server: the direction the director
/// forwards in every mode, full-size segments included).
#[derive(Clone, Debug)]
pub struct UploadResult {
    /// Right status, and the server received exactly the bytes sent.
    pub ok: bool,
    pub server: Option<String>,
    /// What the server received.
    pub len: u64,
    pub error: Option<String>,
}

/// POST /upload of the `n`-byte stream of `seed`; the server reports the
/// length and SHA-256 it received, the client compares.
pub fn upload(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    n: usize,
    seed: u64,
) -> UploadResult {
    let (p, n_s, seed_s) = (port.to_string(), n.to_string(), seed.to_string());
    let args = with_source(
        vec![
            "upload",
            host,
            &p,
            "--n",
            &n_s,
            "--seed",
            &seed_s,
            "--timeout",
            "30",
        ],
        source,
    );
    let v = client(ns, &args, Duration::from_secs(180));
    let o = v
        .first()
        .unwrap_or_else(|| panic!("upload client printed nothing"));
    UploadResult {
        ok: o.bool("ok"),
        server: o.str("server").map(str::to_string),
        len: o.u64("len").unwrap_or(0),
        error: o.str("error").map(str::to_string),
    }
}

/// One UDP echo exchange.
#[derive(Clone, Debug)]
pub struct UdpResult {
    pub ok: bool,
    pub reply: Option<String>,
    /// The name before the ':' of the reply.
    pub server: Option<String>,
    /// The source address of the reply (must be the address asked).
    pub from: Option<String>,
    pub error: Option<String>,
}

/// `count` datagrams "`payload`-i" to `host`:`port`, each retried a few
/// times.
pub fn udp_echo(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    payload: &str,
    count: usize,
) -> Vec<UdpResult> {
    udp_echo_spaced(ns, source, host, port, payload, count, 0.0)
}

/// [`udp_echo`] from one socket with `interval` seconds between datagrams
/// (connection-expiry checks).
pub fn udp_echo_spaced(
    ns: &str,
    source: Option<&str>,
    host: &str,
    port: u16,
    payload: &str,
    count: usize,
    interval: f64,
) -> Vec<UdpResult> {
    let (p, c, iv) = (port.to_string(), count.to_string(), interval.to_string());
    let args = with_source(
        vec![
            "udp",
            host,
            &p,
            "--count",
            &c,
            "--payload",
            payload,
            "--timeout",
            "2",
            "--interval",
            &iv,
        ],
        source,
    );
    let extra = (interval * count as f64) as u64;
    client(
        ns,
        &args,
        Duration::from_secs(30 + extra + 10 * count as u64),
    )
    .iter()
    .map(|o| UdpResult {
        ok: o.bool("ok"),
        reply: o.str("reply").map(str::to_string),
        server: o.str("server").map(str::to_string),
        from: o.str("from").map(str::to_string),
        error: o.str("error").map(str::to_string),
    })
    .collect()
}

/// Waits (inside `ns`, retrying) until `host`:`port` accepts TCP.
pub fn wait_tcp(ns: &str, host: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let (p, t) = (port.to_string(), timeout.as_secs().max(1).to_string());
    let v = client(
        ns,
        &["wait-tcp", host, &p, "--timeout", &t],
        timeout + Duration::from_secs(30),
    );
    match v.first() {
        Some(o) if o.bool("ok") => Ok(()),
        Some(o) => Err(format!(
            "{host}:{port} from {ns}: {}",
            o.str("error").unwrap_or("?")
        )),
        None => Err(format!("{host}:{port} from {ns}: no output")),
    }
}

/// A long-lived connection (GET /hold) running in the background.
pub struct Hold {
    proc: Proc,
    pub server: Option<String>,
}

/// The end of a [`Hold`].
#[derive(Clone, Debug)]
pub struct HoldResult {
    /// Open for the whole time, no reset, no early EOF.
    pub ok: bool,
    pub server: Option<String>,
    pub lines: u64,
    pub reset: bool,
    pub eof: bool,
    pub error: Option<String>,
}

impl Hold {
    /// Opens a connection that stays up for `secs` seconds; returns once
    /// the first tick arrived (panics if none within 30 s).
    pub fn start(ns: &str, source: Option<&str>, host: &str, port: u16, secs: u64) -> Hold {
        let path = script("client.py");
        let (p, s) = (port.to_string(), secs.to_string());
        let args = with_source(
            vec![
                "python3",
                &path,
                "hold",
                host,
                &p,
                "--secs",
                &s,
                "--timeout",
                "30",
            ],
            source,
        );
        let mut proc = spawn(ns, &args);
        let line = proc
            .wait_line(Duration::from_secs(40), |l| {
                l.contains("\"event\": \"connected\"") || l.contains("\"event\": \"done\"")
            })
            .unwrap_or_else(|| panic!("hold client did not connect: {}", proc.stderr()));
        let o = super::json::parse(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if o.str("event") != Some("connected") {
            panic!("hold client ended before connecting: {line}");
        }
        Hold {
            server: o.str("server").map(str::to_string),
            proc,
        }
    }

    /// Waits for the end of the hold period and reports.
    pub fn finish(self) -> HoldResult {
        let lines = self.proc.finish(Duration::from_secs(600));
        let text = lines.join("\n");
        let o = parse_lines(&text)
            .into_iter()
            .rfind(|o| o.str("event") == Some("done"))
            .unwrap_or_else(|| panic!("hold client printed no result: {text}"));
        HoldResult {
            ok: o.bool("ok"),
            server: o.str("server").map(str::to_string),
            lines: o.u64("lines").unwrap_or(0),
            reset: o.bool("reset"),
            eof: o.bool("eof"),
            error: o.str("error").map(str::to_string),
        }
    }
}

/// Broadcasts ARP who-has `target` out of `dev` in `ns` (sender IP
/// `source`) and returns the distinct MACs that answered.
pub fn arp_probe(ns: &str, dev: &str, target: &str, source: &str) -> Vec<String> {
    let path = script("arp_probe.py");
    let out = exec_timeout(
        ns,
        &["python3", &path, dev, target, "--source", source],
        Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let v = parse_lines(&out.stdout);
    let o = v
        .first()
        .unwrap_or_else(|| panic!("arp_probe printed nothing: {}", out.stderr));
    o.str("macs")
        .unwrap_or_default()
        .split(',')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Which real server (by name) a MAC belongs to, if any.
pub fn server_of_mac<'a>(topo: &'a Topology, mac: &str) -> Option<&'a RealServer> {
    topo.servers
        .iter()
        .find(|s| super::netns::mac_of(&s.ns, &s.dev) == mac)
}

/// A packet capture on an interface (`capture.py`, a packet socket: what
/// DPDK `net_af_packet` reads), checking every checksum.
pub struct Capture {
    proc: Proc,
}

/// One captured TCP/UDP packet.
#[derive(Clone, Debug)]
pub struct Captured {
    pub proto: String,
    pub src: String,
    /// None for IPv6.
    pub ip_csum_ok: Option<bool>,
    pub l4_csum_ok: bool,
    /// TCP only (0 / None otherwise): ports, flags, numbers, payload
    /// bytes, IP packet length, the MSS option and the TOA option (TCP
    /// option 254, `addr:port` / `[addr6]:port`) with its length.
    pub sport: u64,
    pub dport: u64,
    pub flags: u64,
    pub seq: u64,
    pub ack: u64,
    pub payload: u64,
    pub ip_len: u64,
    pub mss: Option<u64>,
    pub toa: Option<String>,
    pub toa_len: Option<u64>,
}

impl Capture {
    /// Starts capturing TCP/UDP packets to `dst` on `dev` in `ns`; returns
    /// once the socket is bound. Stops after `count` packets or `secs`.
    pub fn start(ns: &str, dev: &str, dst: &str, count: usize, secs: u64) -> Capture {
        let path = script("capture.py");
        let (c, t) = (count.to_string(), secs.to_string());
        let mut proc = spawn(
            ns,
            &["python3", &path, dev, dst, "--count", &c, "--timeout", &t],
        );
        ready(&mut proc);
        Capture { proc }
    }

    /// Waits for the capture to end; the packets seen.
    pub fn finish(self, timeout: Duration) -> Vec<Captured> {
        let text = self.proc.finish(timeout).join("\n");
        parse_lines(&text)
            .iter()
            .map(|o| Captured {
                proto: o.str("proto").unwrap_or_default().to_string(),
                src: o.str("src").unwrap_or_default().to_string(),
                ip_csum_ok: if o.is_null("ip_csum_ok") {
                    None
                } else {
                    Some(o.bool("ip_csum_ok"))
                },
                l4_csum_ok: o.bool("l4_csum_ok"),
                sport: o.u64("sport").unwrap_or(0),
                dport: o.u64("dport").unwrap_or(0),
                flags: o.u64("flags").unwrap_or(0),
                seq: o.u64("seq").unwrap_or(0),
                ack: o.u64("ack").unwrap_or(0),
                payload: o.u64("payload").unwrap_or(0),
                ip_len: o.u64("ip_len").unwrap_or(0),
                mss: o.u64("mss"),
                toa: o.str("toa").map(str::to_string),
                toa_len: o.u64("toa_len"),
            })
            .collect()
    }
}

/// TUN-mode real server without kernel ipip / ip6_tunnel: the DR set-up
/// (VIPs on `lo`, `arp_ignore=1` / `arp_announce=2`, replies via the
/// router), `rp_filter` off, and `scripts/e2e/ipip_decap.py` decapsulating
/// IPv4-in-IPv4 and IPv6-in-IPv6 into a TUN device. The decapsulator's
/// first lines report the outer and inner addresses of what it received
/// (`{"mode": "decap", ...}`). Err when `/dev/net/tun` is missing.
pub fn start_userspace_tun(topo: &Topology, s: &RealServer, vips: &[&str]) -> Result<Proc, String> {
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Err("/dev/net/tun is missing (no TUN devices)".into());
    }
    topo.rs_dr(s, vips);
    super::netns::sysctl(
        &s.ns,
        &[
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
            (&format!("net.ipv4.conf.{}.rp_filter", s.dev), "0"),
        ],
    );
    let mut proc = spawn(
        &s.ns,
        &["python3", &script("ipip_decap.py"), "--dev", "tunu0"],
    );
    if proc
        .wait_line(Duration::from_secs(30), |l| l.starts_with("READY"))
        .is_none()
    {
        return Err(format!("ipip_decap.py did not start: {}", proc.stderr()));
    }
    Ok(proc)
}

/// nginx as a real server behind a Proxy Protocol service: `listen PORT
/// proxy_protocol` (IPv4 and IPv6), `/pp` answered with
/// `$proxy_protocol_addr $proxy_protocol_port` (and `X-Server: NAME`),
/// the access log (`DIR/nginx-access.log`) starting with
/// `$proxy_protocol_addr`, everything else proxied unbuffered to the
/// harness's HTTP server on 127.0.0.1:`backend` (which must be running).
/// Brings `lo` up in `ns`; waits until nginx listens.
pub fn start_nginx_pp(
    ns: &str,
    name: &str,
    dir: &std::path::Path,
    port: u16,
    backend: u16,
) -> Proc {
    super::netns::ip(ns, &["link", "set", "lo", "up"]);
    std::fs::create_dir_all(dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, nginx_pp_conf(dir, name, port, backend)).unwrap();
    let c = conf.display().to_string();
    let d = dir.display().to_string();
    let p = spawn(ns, &["nginx", "-c", &c, "-p", &d]);
    for a in ["127.0.0.1", "::1"] {
        wait_tcp(ns, a, port, Duration::from_secs(20)).unwrap_or_else(|e| {
            panic!(
                "nginx in {ns} on {a}:{port}: {e}\n{}",
                std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
            )
        });
    }
    p
}

fn nginx_pp_conf(dir: &std::path::Path, name: &str, port: u16, backend: u16) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
user root;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log info;
events {{ worker_connections 256; }}
http {{
    log_format pp '$proxy_protocol_addr $proxy_protocol_port "$request"';
    access_log {d}/nginx-access.log pp;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {port} proxy_protocol;
        listen [::]:{port} proxy_protocol ipv6only=on;
        location = /pp {{
            default_type text/plain;
            add_header X-Server {name} always;
            return 200 "$proxy_protocol_addr $proxy_protocol_port\n";
        }}
        location / {{
            client_max_body_size 0;
            proxy_http_version 1.1;
            proxy_buffering off;
            proxy_request_buffering off;
            proxy_pass http://127.0.0.1:{backend};
        }}
    }}
}}
"#
    )
}
