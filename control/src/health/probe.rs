//! One attempt of each checker, bounded in time by its
//! `connect_timeout` (MISC_CHECK: `misc_timeout`). Each attempt runs on
//! its checker's own thread, so a server that hangs delays nobody else.

use super::state::misc_verdict;
use super::{CheckKind, CheckSpec};
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Passed.
    pub ok: bool,
    /// Why, in a few words (`connection refused`, `HTTP 500`).
    pub reason: String,
    /// MISC_CHECK with `misc_dynamic`: the weight the script set.
    pub weight: Option<u32>,
}

fn pass(reason: impl Into<String>) -> Outcome {
    Outcome {
        ok: true,
        reason: reason.into(),
        weight: None,
    }
}

fn fail(reason: impl Into<String>) -> Outcome {
    Outcome {
        ok: false,
        reason: reason.into(),
        weight: None,
    }
}

/// How long an HTTP answer may be read (more is not kept).
const MAX_BODY: usize = 1 << 20;

/// Runs one attempt of `spec`.
pub fn run(spec: &CheckSpec) -> Outcome {
    match &spec.kind {
        CheckKind::Tcp => match connect(spec) {
            Ok(_) => pass("connected"),
            Err(e) => fail(e),
        },
        CheckKind::Http {
            path,
            status_codes,
            digest,
            virtualhost,
            tls,
        } => http(
            spec,
            path,
            status_codes,
            digest.as_deref(),
            virtualhost.as_deref(),
            *tls,
        ),
        CheckKind::Udp {
            payload,
            require_reply,
            reply,
        } => udp(spec, payload, *require_reply, reply.as_ref()),
        CheckKind::Misc {
            command,
            timeout,
            dynamic,
        } => misc(command, *timeout, *dynamic),
        CheckKind::Ping => ping(spec),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => "timeout".into(),
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        _ => {
            let s = e.to_string();
            match s.rfind(" (os error ") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

fn domain(a: &SocketAddr) -> Domain {
    if a.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

/// A TCP connection to the target within `connect_timeout`, from
/// `bindto` when set.
fn connect(spec: &CheckSpec) -> Result<TcpStream, String> {
    let s = Socket::new(domain(&spec.target), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if let Some(b) = spec.bindto {
        s.bind(&SockAddr::from(b))
            .map_err(|e| format!("bind {b}: {}", io_reason(&e)))?;
    }
    s.connect_timeout(&SockAddr::from(spec.target), spec.connect_timeout)
        .map_err(|e| io_reason(&e))?;
    Ok(s.into())
}

fn http(
    spec: &CheckSpec,
    path: &str,
    codes: &[u16],
    digest: Option<&str>,
    vhost: Option<&str>,
    tls: bool,
) -> Outcome {
    let start = Instant::now();
    let mut tcp = match connect(spec) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if let Some(v) = spec.proxy_protocol {
        // the header first, in the clear (before TLS), from this
        // connection's own endpoints
        let hdr = tcp.local_addr().ok().and_then(|l| {
            let ep = |a: SocketAddr| dataplane::forward::Endpoint::new(a.ip(), a.port());
            dataplane::forward::proxyproto::header(v, ep(l), ep(spec.target))
        });
        let Some(hdr) = hdr else {
            return fail("no Proxy Protocol header for this connection");
        };
        let _ = tcp.set_write_timeout(Some(spec.connect_timeout));
        if let Err(e) = tcp.write_all(hdr.bytes()) {
            return fail(format!("send: {}", io_reason(&e)));
        }
    }
    let host = match vhost {
        Some(h) => h.to_string(),
        None => match spec.target {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        },
    };
    // as keepalived's HTTP_GET: HTTP/1.0, the body read to the close
    let req = format!(
        "GET {path} HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    );
    let deadline = start + spec.connect_timeout;
    // the timeouts are set on a second handle of the same socket
    let timer = match tcp.try_clone() {
        Ok(t) => t,
        Err(e) => return fail(io_reason(&e)),
    };
    if tls {
        let name = match vhost {
            Some(h) => match ServerName::try_from(h.to_string()) {
                Ok(n) => n,
                Err(_) => return fail(format!("'{h}' is not a TLS server name")),
            },
            None => ServerName::IpAddress(spec.target.ip().into()),
        };
        let conn = match tls_config()
            .and_then(|c| ClientConnection::new(c, name).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => return fail(format!("TLS: {e}")),
        };
        let mut stream = StreamOwned::new(conn, tcp);
        exchange(&mut stream, &timer, &req, deadline, codes, digest, "TLS: ")
    } else {
        let mut stream = tcp;
        exchange(&mut stream, &timer, &req, deadline, codes, digest, "")
    }
}

/// Sends the request and judges the answer, all before `deadline`.
fn exchange(
    s: &mut (impl Read + Write),
    timer: &TcpStream,
    req: &str,
    deadline: Instant,
    codes: &[u16],
    digest: Option<&str>,
    what: &str,
) -> Outcome {
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let _ = timer.set_write_timeout(Some(left()));
    let _ = timer.set_read_timeout(Some(left()));
    if let Err(e) = s.write_all(req.as_bytes()).and_then(|()| s.flush()) {
        return match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => fail("timeout waiting for the answer"),
            _ => fail(format!("{what}send: {}", io_reason(&e))),
        };
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if Instant::now() >= deadline {
            return fail("timeout waiting for the answer");
        }
        let _ = timer.set_read_timeout(Some(left()));
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if buf.len() < MAX_BODY {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return fail("timeout waiting for the answer")
            }
            Err(e) => {
                if buf.is_empty() {
                    return fail(format!("{what}read: {}", io_reason(&e)));
                }
                // a close without TLS close_notify ends the body too
                break;
            }
        }
    }
    judge_http(&buf, codes, digest)
}

/// Accepts any certificate chain, as keepalived's SSL_GET does without a
/// CA; the handshake signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The TLS client settings of every SSL_GET (built once).
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map(|b| {
                    Arc::new(
                        b.dangerous()
                            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
                            .with_no_client_auth(),
                    )
                })
                .map_err(|e| e.to_string())
        })
        .clone()
}

/// Judges an HTTP answer: status line, status code, body digest.
pub fn judge_http(resp: &[u8], codes: &[u16], digest: Option<&str>) -> Outcome {
    let Some(head_end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        if resp.is_empty() {
            return fail("connection closed without an answer");
        }
        return fail("malformed HTTP answer");
    };
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let status_line = head.lines().next().unwrap_or("");
    let mut parts = status_line.split_whitespace();
    let code = match (
        parts.next(),
        parts.next().and_then(|c| c.parse::<u16>().ok()),
    ) {
        (Some(v), Some(c)) if v.starts_with("HTTP/") => c,
        _ => return fail(format!("malformed status line '{status_line}'")),
    };
    let code_ok = if codes.is_empty() {
        (200..300).contains(&code)
    } else {
        codes.contains(&code)
    };
    if !code_ok {
        return fail(format!("HTTP {code}"));
    }
    let body = &resp[head_end + 4..];
    if let Some(want) = digest {
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != want {
            return fail(format!("HTTP {code}, digest {got} is not {want}"));
        }
    }
    pass(format!("HTTP {code}"))
}

fn udp(
    spec: &CheckSpec,
    payload: &[u8],
    require_reply: bool,
    reply: Option<&super::UdpReply>,
) -> Outcome {
    let bind = spec.bindto.unwrap_or_else(|| {
        SocketAddr::new(
            if spec.target.is_ipv4() {
                IpAddr::from([0, 0, 0, 0])
            } else {
                IpAddr::from([0u16; 8])
            },
            0,
        )
    });
    let s = match UdpSocket::bind(bind) {
        Ok(s) => s,
        Err(e) => return fail(format!("bind {bind}: {}", io_reason(&e))),
    };
    if let Err(e) = s.connect(spec.target) {
        return fail(io_reason(&e));
    }
    let _ = s.set_read_timeout(Some(spec.connect_timeout));
    if let Err(e) = s.send(payload) {
        return fail(format!("send: {}", io_reason(&e)));
    }
    // keepalived reads at most max_reply_length + 1 octets: one more than
    // that is enough to know a reply is too long
    let mut buf = vec![0u8; reply.map_or(2048, |r| usize::from(r.max_len) + 1)];
    let deadline = Instant::now() + spec.connect_timeout;
    loop {
        match s.recv(&mut buf) {
            Ok(n) => {
                return match reply.map(|r| r.judge(buf.get(..n).unwrap_or_default())) {
                    None => pass("reply"),
                    Some(Ok(())) => pass("reply matches"),
                    Some(Err(why)) => fail(why),
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted && Instant::now() < deadline => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return if require_reply {
                    fail("no reply")
                } else {
                    pass("no ICMP error")
                };
            }
            Err(e) => return fail(io_reason(&e)),
        }
    }
}

/// Runs `command` with `sh -c`, killed after `timeout`.
fn misc(command: &str, timeout: Duration, dynamic: bool) -> Outcome {
    let mut child = match Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot run: {}", io_reason(&e))),
    };
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let code = st.code();
                let (ok, weight) = misc_verdict(code, dynamic);
                let reason = match code {
                    Some(c) => format!("exit {c}"),
                    None => "killed by a signal".into(),
                };
                return Outcome { ok, reason, weight };
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return fail("timeout (killed)");
            }
            Err(e) => return fail(format!("wait: {}", io_reason(&e))),
        }
    }
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMP (or ICMPv6) echo to the target: an unprivileged ping socket
/// when `net.ipv4.ping_group_range` allows it, else a raw socket (root).
fn ping(spec: &CheckSpec) -> Outcome {
    let v4 = spec.target.is_ipv4();
    let proto = if v4 {
        Protocol::ICMPV4
    } else {
        Protocol::ICMPV6
    };
    let (sock, raw) = match Socket::new(domain(&spec.target), Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(_) => match Socket::new(domain(&spec.target), Type::RAW, Some(proto)) {
            Ok(s) => (s, true),
            Err(e) => return fail(format!("no ICMP socket: {}", io_reason(&e))),
        },
    };
    if let Some(b) = spec.bindto {
        if let Err(e) = sock.bind(&SockAddr::from(SocketAddr::new(b.ip(), 0))) {
            return fail(format!("bind {}: {}", b.ip(), io_reason(&e)));
        }
    }
    let ident = (std::process::id() as u16) ^ spec.target.port();
    let seq: u16 = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        >> 8) as u16;
    let mut pkt = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    pkt.extend_from_slice(&ident.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"rvs health check");
    if v4 {
        let c = checksum(&pkt);
        pkt[2..4].copy_from_slice(&c.to_be_bytes());
    } // ICMPv6: the kernel fills the checksum
    let dst = SockAddr::from(SocketAddr::new(spec.target.ip(), 0));
    if let Err(e) = sock.send_to(&pkt, &dst) {
        return fail(format!("send: {}", io_reason(&e)));
    }
    let deadline = Instant::now() + spec.connect_timeout;
    let mut buf = [0u8; 1500];
    let mut r = &sock;
    for _ in 0..64 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = sock.set_read_timeout(Some(left));
        let n = match r.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return fail(io_reason(&e)),
        };
        // a raw IPv4 socket hands over the IP header too
        let icmp = if raw && v4 {
            let ihl = usize::from(buf[0] & 0x0f) * 4;
            if buf[0] >> 4 != 4 || n < ihl + 8 {
                continue;
            }
            if buf[12..16]
                != match spec.target.ip() {
                    IpAddr::V4(a) => a.octets(),
                    IpAddr::V6(_) => [0; 4],
                }
            {
                continue;
            }
            &buf[ihl..n]
        } else {
            &buf[..n.min(buf.len())]
        };
        if icmp.len() < 8 {
            continue;
        }
        let reply = if v4 { 0 } else { 129 };
        // ping sockets rewrite the identifier: match it on raw ones only
        let id_ok = !raw || icmp[4..6] == ident.to_be_bytes();
        if icmp[0] == reply && id_ok && icmp[6..8] == seq.to_be_bytes() {
            return pass("echo reply");
        }
    }
    fail("no echo reply")
}
