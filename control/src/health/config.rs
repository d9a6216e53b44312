//! Health-check settings in rvsd's TOML, their validation, and the
//! [`Plan`] the checker threads run.
//!
//! ```toml
//! [[service]]
//! sorry_server = "198.18.1.9:80"   # the scheduler's sorry server
//! [service.health]                 # keepalived's virtual_server options
//! delay_loop = 1
//! quorum = 1
//! [[service.real]]
//! address = "198.18.1.2:80"
//! [service.real.health]            # keepalived's real_server options
//! inhibit_on_failure = true
//! [[service.real.check]]           # one per checker
//! type = "HTTP_GET"
//! path = "/"
//! status_code = [200]
//! ```
//!
//! Durations are seconds (integer or decimal). Defaults are keepalived's.

use super::{CheckKind, CheckSpec, PassivePlan, Plan, RealPlan, ServicePlan, UdpReply};
use crate::config::{Config, ConfigError, RealConf, ServiceConf};
use crate::model::{Model, MAX_WEIGHT};
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A number of seconds, written as an integer or a decimal.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Secs {
    /// Whole seconds.
    Int(i64),
    /// Fractional seconds.
    Float(f64),
}

impl Secs {
    fn as_f64(self) -> f64 {
        match self {
            Secs::Int(i) => i as f64,
            Secs::Float(f) => f,
        }
    }
}

/// `[service.health]`: keepalived's virtual_server options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceHealthConf {
    /// Seconds between checks (60); a check's own `delay_loop` wins.
    #[serde(default)]
    pub delay_loop: Option<Secs>,
    /// Real servers start down until their first successful check.
    #[serde(default)]
    pub alpha: bool,
    /// Run `quorum_down` when rvsd stops or the service goes away.
    #[serde(default)]
    pub omega: bool,
    /// Minimum total weight of healthy real servers (1).
    #[serde(default)]
    pub quorum: Option<i64>,
    /// Hysteresis around the quorum (0).
    #[serde(default)]
    pub hysteresis: Option<i64>,
    /// Command run when the quorum is gained.
    #[serde(default)]
    pub quorum_up: Option<String>,
    /// Command run when the quorum is lost.
    #[serde(default)]
    pub quorum_down: Option<String>,
    /// keepalived's default for the real servers' `inhibit_on_failure`.
    #[serde(default)]
    pub inhibit_on_failure: bool,
    /// Accepted for keepalived compatibility: rvs's sorry server is the
    /// scheduler's, used only while no real server can take a connection,
    /// so it is never in the pool to be inhibited.
    #[serde(default)]
    pub sorry_server_inhibit: bool,
    /// Passive checking (DPVS's `dest-check`): the dataplane reports real
    /// servers that answer SYNs with RST or not at all (off).
    #[serde(default)]
    pub passive_check: bool,
    /// Passive failures within `passive_window` that mark a server down (3).
    #[serde(default)]
    pub passive_fail_threshold: Option<i64>,
    /// Seconds over which passive failures are counted (10).
    #[serde(default)]
    pub passive_window: Option<Secs>,
    /// Seconds after which a server marked down passively and without
    /// active checks is put back (30); with active checks, only their
    /// success brings it back.
    #[serde(default)]
    pub passive_recover: Option<Secs>,
}

/// `[service.real.health]`: keepalived's real_server options.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RealHealthConf {
    /// A failed server keeps its place with weight 0 instead of removal.
    #[serde(default)]
    pub inhibit_on_failure: Option<bool>,
    /// Command run when the server comes up.
    #[serde(default)]
    pub notify_up: Option<String>,
    /// Command run when the server goes down.
    #[serde(default)]
    pub notify_down: Option<String>,
}

/// UDP_CHECK's `require_reply`: a flag, or the expected reply.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum RequireReply {
    /// `true`: any reply passes; `false`: no reply is needed.
    Flag(bool),
    /// The reply's expected first octets, as a hex string.
    Bytes(String),
}

impl Default for RequireReply {
    fn default() -> Self {
        RequireReply::Flag(false)
    }
}

impl RequireReply {
    /// Whether a reply is needed.
    pub fn is_set(&self) -> bool {
        !matches!(self, RequireReply::Flag(false))
    }
}

/// `[[service.real.check]]`: one checker.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckConf {
    /// TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK or PING_CHECK
    /// (also tcp, http, udp, misc, ping).
    #[serde(rename = "type")]
    pub kind: String,
    /// Address to probe (the real server's by default).
    #[serde(default)]
    pub connect_ip: Option<String>,
    /// Port to probe (the real server's by default).
    #[serde(default)]
    pub connect_port: Option<i64>,
    /// Source address of the probe.
    #[serde(default)]
    pub bindto: Option<String>,
    /// Source port of the probe.
    #[serde(default)]
    pub bind_port: Option<i64>,
    /// Seconds to connect and get an answer (5).
    #[serde(default)]
    pub connect_timeout: Option<Secs>,
    /// Seconds between checks (the service's, else 60).
    #[serde(default)]
    pub delay_loop: Option<Secs>,
    /// Failed attempts retried before the server is marked down
    /// (keepalived's `retry`, `nb_get_retry`; 1).
    #[serde(default)]
    pub retry: Option<i64>,
    /// Seconds between retries (1).
    #[serde(default)]
    pub delay_before_retry: Option<Secs>,
    /// At most this many seconds (random) before the first check (0).
    #[serde(default)]
    pub warmup: Option<Secs>,
    /// HTTP_GET: the URL path ("/").
    #[serde(default)]
    pub path: Option<String>,
    /// HTTP_GET: accepted status codes (any 2xx when empty).
    #[serde(default)]
    pub status_code: Vec<i64>,
    /// HTTP_GET: MD5 of the body, 32 hex digits.
    #[serde(default)]
    pub digest: Option<String>,
    /// HTTP_GET: the Host header (the connect address by default).
    #[serde(default)]
    pub virtualhost: Option<String>,
    /// UDP_CHECK: payload to send, as text.
    #[serde(default)]
    pub payload: Option<String>,
    /// UDP_CHECK: a reply is needed (else only an ICMP error fails):
    /// `true`, or the reply's expected first octets as keepalived's hex
    /// string (`"70 6f 6e 67"`, `x` a wildcard nibble).
    #[serde(default)]
    pub require_reply: RequireReply,
    /// UDP_CHECK with `require_reply = "<hex>"`: the shortest reply that
    /// passes (default 0).
    #[serde(default)]
    pub min_reply_length: Option<i64>,
    /// UDP_CHECK with `require_reply = "<hex>"`: the longest reply that
    /// passes (default 255, keepalived's).
    #[serde(default)]
    pub max_reply_length: Option<i64>,
    /// MISC_CHECK: the command (run with `sh -c`).
    #[serde(default)]
    pub misc_path: Option<String>,
    /// MISC_CHECK: seconds the command may run (delay_loop).
    #[serde(default)]
    pub misc_timeout: Option<Secs>,
    /// MISC_CHECK: exit 2..=255 sets the weight to code - 2.
    #[serde(default)]
    pub misc_dynamic: bool,
}

struct Errs<'a> {
    file: &'a str,
    list: Vec<ConfigError>,
}

impl Errs<'_> {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(ConfigError {
            file: self.file.into(),
            field: field.into(),
            message: message.into(),
        });
    }

    fn secs(&mut self, field: String, v: Option<Secs>, default: f64, min: f64) -> Duration {
        let Some(v) = v else {
            return Duration::from_secs_f64(default);
        };
        let x = v.as_f64();
        if !x.is_finite() || x < min || x > 86_400.0 {
            self.push(field, format!("must be {min}..=86400 seconds, not {x}"));
            return Duration::from_secs_f64(default);
        }
        Duration::from_secs_f64(x)
    }

    fn int(&mut self, field: String, v: Option<i64>, default: i64, lo: i64, hi: i64) -> i64 {
        match v {
            None => default,
            Some(x) if (lo..=hi).contains(&x) => x,
            Some(x) => {
                self.push(field, format!("must be {lo}..={hi}, not {x}"));
                default
            }
        }
    }
}

/// Parses a check type name (rvs's or keepalived's).
pub fn kind_name(s: &str) -> Option<&'static str> {
    Some(match s.to_ascii_uppercase().as_str() {
        "TCP" | "TCP_CHECK" => "TCP_CHECK",
        "HTTP" | "HTTP_GET" => "HTTP_GET",
        "SSL" | "SSL_GET" => "SSL_GET",
        "UDP" | "UDP_CHECK" => "UDP_CHECK",
        "MISC" | "MISC_CHECK" => "MISC_CHECK",
        "PING" | "PING_CHECK" | "ICMP_CHECK" => "PING_CHECK",
        _ => return None,
    })
}

/// Validates the health settings of every service; the errors name the
/// field path as the rest of the config does.
pub fn validate(cfg: &Config, file: &str) -> Vec<ConfigError> {
    let mut e = Errs {
        file,
        list: Vec::new(),
    };
    let model = cfg.to_model();
    build(cfg, &model, &mut e);
    e.list
}

/// The checks `cfg` asks for (on a validated config).
pub fn plan(cfg: &Config) -> Plan {
    let mut e = Errs {
        file: "",
        list: Vec::new(),
    };
    let model = cfg.to_model();
    build(cfg, &model, &mut e)
}

fn build(cfg: &Config, model: &Model, e: &mut Errs<'_>) -> Plan {
    let mut plan = Plan::default();
    for (i, s) in cfg.services.iter().enumerate() {
        let f = format!("service[{i}]");
        // the service as the main validation built it (None: it has errors
        // reported there already)
        let built = crate::config::service_key_of(s).and_then(|k| model.service(&k));
        let sorry = match &s.sorry_server {
            None => None,
            Some(x) => match parse_addr(x, built.map(|b| b.key.addr.port())) {
                Some(a) => {
                    if let Some(b) = built {
                        if a.is_ipv4() != b.key.addr.is_ipv4() {
                            e.push(
                                format!("{f}.sorry_server"),
                                format!("sorry server {a} and the VIP are of different families"),
                            );
                        }
                    }
                    Some(a)
                }
                None => {
                    e.push(
                        format!("{f}.sorry_server"),
                        format!("'{x}' is not address[:port]"),
                    );
                    None
                }
            },
        };
        let h = s.health.clone().unwrap_or_default();
        let hf = format!("{f}.health");
        let svc_delay = e.secs(format!("{hf}.delay_loop"), h.delay_loop, 60.0, 0.01);
        let quorum = e.int(format!("{hf}.quorum"), h.quorum, 1, 1, i64::from(u32::MAX));
        let hysteresis = e.int(
            format!("{hf}.hysteresis"),
            h.hysteresis,
            0,
            0,
            i64::from(u32::MAX),
        );
        if hysteresis >= quorum && h.hysteresis.is_some() {
            e.push(
                format!("{hf}.hysteresis"),
                format!("must be below the quorum {quorum}, not {hysteresis}"),
            );
        }
        let passive = if h.passive_check {
            let threshold = e.int(
                format!("{hf}.passive_fail_threshold"),
                h.passive_fail_threshold,
                3,
                1,
                i64::from(u32::MAX),
            );
            let window = e.secs(format!("{hf}.passive_window"), h.passive_window, 10.0, 1.0);
            let recover = e.secs(
                format!("{hf}.passive_recover"),
                h.passive_recover,
                30.0,
                1.0,
            );
            Some(PassivePlan {
                threshold: threshold as u32,
                window,
                recover,
            })
        } else {
            for (name, set) in [
                ("passive_fail_threshold", h.passive_fail_threshold.is_some()),
                ("passive_window", h.passive_window.is_some()),
                ("passive_recover", h.passive_recover.is_some()),
            ] {
                if set {
                    e.push(format!("{hf}.{name}"), "needs passive_check = true");
                }
            }
            None
        };
        let mut sp = ServicePlan {
            passive,
            key: built.map(|b| b.key),
            alpha: h.alpha,
            omega: h.omega,
            quorum: quorum as u64,
            hysteresis: hysteresis as u64,
            quorum_up: h.quorum_up.clone(),
            quorum_down: h.quorum_down.clone(),
            sorry,
            reals: Vec::new(),
        };
        for (j, r) in s.reals.iter().enumerate() {
            let rf = format!("{f}.real[{j}]");
            let rs = built.and_then(|b| {
                crate::config::real_addr_of(r, b.key.addr).and_then(|a| b.real(a).cloned())
            });
            if let Some(mut rp) = real_plan(r, &rf, &h, svc_delay, rs, passive.is_some(), e) {
                // the real server expects a Proxy Protocol header (DPVS's
                // keepalived sends one in its HTTP checks too)
                let pp = built.and_then(|b| b.proxy_protocol);
                rp.checks.iter_mut().for_each(|c| c.proxy_protocol = pp);
                sp.reals.push(rp);
            }
        }
        if sp.key.is_some() {
            plan.services.push(sp);
        }
    }
    plan
}

fn parse_addr(s: &str, default_port: Option<u16>) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s)
        .parse::<IpAddr>()
        .ok()?;
    Some(SocketAddr::new(ip, default_port?))
}

fn real_plan(
    r: &RealConf,
    rf: &str,
    h: &ServiceHealthConf,
    svc_delay: Duration,
    rs: Option<crate::model::RealServer>,
    passive: bool,
    e: &mut Errs<'_>,
) -> Option<RealPlan> {
    let rh = r.health.clone().unwrap_or_default();
    if r.checks.is_empty() && r.health.is_some() {
        // notify scripts without a checker would never run
        e.push(
            format!("{rf}.health"),
            "needs at least one [[service.real.check]]",
        );
    }
    let mut checks = Vec::new();
    for (k, c) in r.checks.iter().enumerate() {
        if let Some(spec) = check_spec(c, &format!("{rf}.check[{k}]"), svc_delay, rs.as_ref(), e) {
            checks.push(spec);
        }
    }
    let rs = rs?;
    if checks.is_empty() && !passive {
        return None;
    }
    Some(RealPlan {
        weight: rs.weight,
        template: rs,
        checks,
        inhibit: rh.inhibit_on_failure.unwrap_or(h.inhibit_on_failure),
        notify_up: rh.notify_up,
        notify_down: rh.notify_down,
    })
}

fn check_spec(
    c: &CheckConf,
    cf: &str,
    svc_delay: Duration,
    rs: Option<&crate::model::RealServer>,
    e: &mut Errs<'_>,
) -> Option<CheckSpec> {
    let before = e.list.len();
    let name = kind_name(&c.kind);
    if name.is_none() {
        e.push(
            format!("{cf}.type"),
            format!(
                "unknown check type '{}' (expected TCP_CHECK, HTTP_GET, SSL_GET, UDP_CHECK, MISC_CHECK or PING_CHECK)",
                c.kind
            ),
        );
    }
    let ip = match &c.connect_ip {
        None => rs.map(|r| r.addr.ip()),
        Some(x) => match x.parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                e.push(
                    format!("{cf}.connect_ip"),
                    format!("'{x}' is not an address"),
                );
                None
            }
        },
    };
    let port = e.int(
        format!("{cf}.connect_port"),
        c.connect_port,
        i64::from(rs.map_or(0, |r| r.addr.port())),
        0,
        65535,
    ) as u16;
    let bindto = match &c.bindto {
        None => None,
        Some(x) => match x.parse::<IpAddr>() {
            Ok(b) => {
                if ip.is_some_and(|ip| ip.is_ipv4() != b.is_ipv4()) {
                    e.push(
                        format!("{cf}.bindto"),
                        format!("{b} and the address probed are of different families"),
                    );
                }
                Some(b)
            }
            Err(_) => {
                e.push(format!("{cf}.bindto"), format!("'{x}' is not an address"));
                None
            }
        },
    };
    let bind_port = e.int(format!("{cf}.bind_port"), c.bind_port, 0, 0, 65535) as u16;
    let connect_timeout = e.secs(
        format!("{cf}.connect_timeout"),
        c.connect_timeout,
        5.0,
        0.01,
    );
    let delay_loop = match c.delay_loop {
        None => svc_delay,
        d => e.secs(format!("{cf}.delay_loop"), d, 60.0, 0.01),
    };
    let retry = e.int(format!("{cf}.retry"), c.retry, 1, 0, 1000) as u32;
    let delay_before_retry = e.secs(
        format!("{cf}.delay_before_retry"),
        c.delay_before_retry,
        1.0,
        0.0,
    );
    let warmup = e.secs(format!("{cf}.warmup"), c.warmup, 0.0, 0.0);
    let http_only = |e: &mut Errs<'_>, set: bool, what: &str| {
        if set && name != Some("HTTP_GET") && name != Some("SSL_GET") {
            e.push(format!("{cf}.{what}"), "only HTTP_GET takes it");
        }
    };
    http_only(e, c.path.is_some(), "path");
    http_only(e, !c.status_code.is_empty(), "status_code");
    http_only(e, c.digest.is_some(), "digest");
    http_only(e, c.virtualhost.is_some(), "virtualhost");
    let misc = name == Some("MISC_CHECK");
    for (set, what) in [
        (c.misc_path.is_some(), "misc_path"),
        (c.misc_timeout.is_some(), "misc_timeout"),
        (c.misc_dynamic, "misc_dynamic"),
    ] {
        if set && !misc {
            e.push(format!("{cf}.{what}"), "only MISC_CHECK takes it");
        }
    }
    if (c.payload.is_some() || c.require_reply.is_set()) && name != Some("UDP_CHECK") {
        e.push(
            format!("{cf}.payload"),
            "only UDP_CHECK takes payload and require_reply",
        );
    }
    let reply_len = |e: &mut Errs<'_>, v: Option<i64>, what: &str, default: u16| {
        let Some(n) = v else { return default };
        if name != Some("UDP_CHECK") {
            e.push(format!("{cf}.{what}"), "only UDP_CHECK takes it");
            return default;
        }
        u16::try_from(n).unwrap_or_else(|_| {
            e.push(
                format!("{cf}.{what}"),
                format!("must be 0..=65535, not {n}"),
            );
            default
        })
    };
    let min_len = reply_len(e, c.min_reply_length, "min_reply_length", 0);
    let max_len = reply_len(
        e,
        c.max_reply_length,
        "max_reply_length",
        UdpReply::DEFAULT_MAX_LEN,
    );
    let reply = match &c.require_reply {
        RequireReply::Bytes(h) => match UdpReply::parse_hex(h) {
            Some((data, mask)) => {
                if min_len > max_len {
                    e.push(
                        format!("{cf}.min_reply_length"),
                        format!("{min_len} > max_reply_length {max_len}: every reply would fail"),
                    );
                }
                Some(UdpReply {
                    data,
                    mask,
                    min_len,
                    max_len,
                })
            }
            None => {
                e.push(
                    format!("{cf}.require_reply"),
                    format!("'{h}' is not a hex string (hex digits, x for a wildcard nibble, spaces between octets)"),
                );
                None
            }
        },
        // keepalived judges the length only when it compares data
        RequireReply::Flag(_) => None,
    };
    let mut codes = Vec::new();
    for (k, s) in c.status_code.iter().enumerate() {
        if (100..=599).contains(s) {
            codes.push(*s as u16);
        } else {
            e.push(
                format!("{cf}.status_code[{k}]"),
                format!("{s} is not an HTTP status (100..=599)"),
            );
        }
    }
    if let Some(d) = &c.digest {
        if d.len() != 32 || !d.chars().all(|ch| ch.is_ascii_hexdigit()) {
            e.push(
                format!("{cf}.digest"),
                format!("'{d}' is not an MD5 digest (32 hex digits)"),
            );
        }
    }
    let kind = match name {
        Some("TCP_CHECK") => Some(CheckKind::Tcp),
        Some("HTTP_GET" | "SSL_GET") => {
            let path = c.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') || path.chars().any(|ch| ch.is_ascii_whitespace()) {
                e.push(
                    format!("{cf}.path"),
                    format!("'{path}' is not a URL path (starts with '/', no spaces)"),
                );
            }
            Some(CheckKind::Http {
                path,
                status_codes: codes,
                digest: c.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                virtualhost: c.virtualhost.clone(),
                tls: name == Some("SSL_GET"),
            })
        }
        Some("UDP_CHECK") => Some(CheckKind::Udp {
            payload: c.payload.clone().unwrap_or_default().into_bytes(),
            require_reply: c.require_reply.is_set(),
            reply,
        }),
        Some("MISC_CHECK") => {
            let path = c.misc_path.clone().unwrap_or_default();
            if path.trim().is_empty() {
                e.push(format!("{cf}.misc_path"), "MISC_CHECK needs misc_path");
            }
            let timeout = match c.misc_timeout {
                None => delay_loop,
                t => e.secs(format!("{cf}.misc_timeout"), t, 60.0, 0.01),
            };
            Some(CheckKind::Misc {
                command: path,
                timeout,
                dynamic: c.misc_dynamic,
            })
        }
        Some("PING_CHECK") => Some(CheckKind::Ping),
        _ => None,
    };
    if port == 0
        && matches!(
            kind,
            Some(CheckKind::Tcp | CheckKind::Http { .. } | CheckKind::Udp { .. })
        )
    {
        e.push(
            format!("{cf}.connect_port"),
            "the real server has port 0: set connect_port",
        );
    }
    if e.list.len() != before {
        return None;
    }
    Some(CheckSpec {
        kind: kind?,
        target: SocketAddr::new(ip?, port),
        bindto: bindto.map(|b| SocketAddr::new(b, bind_port)),
        connect_timeout,
        delay_loop,
        retry,
        delay_before_retry,
        warmup,
        proxy_protocol: None,
    })
}

/// The largest weight a `misc_dynamic` exit code can set.
pub const MAX_DYNAMIC_WEIGHT: u32 = 253;
const _: () = assert!(MAX_DYNAMIC_WEIGHT <= MAX_WEIGHT);

/// Whether a service config has anything for the health checker.
pub fn has_health(s: &ServiceConf) -> bool {
    s.health.is_some() || s.reals.iter().any(|r| !r.checks.is_empty())
}
