//! keepalived.conf virtual servers as rvs configuration.
//!
//! rvsd reads the operator's keepalived.conf itself (`[keepalived] conf =
//! "/etc/keepalived/keepalived.conf"` in rvsd.toml): its `virtual_server`
//! blocks become `[[service]]`s with their `real_server`s and checkers,
//! and a SIGHUP re-reads it, so the one file keeps serving stock
//! keepalived for VRRP (`keepalived --vrrp`) and rvs for the virtual
//! servers, with nothing to convert or keep in step. `rvsadm
//! --import-keepalived FILE` prints the same services as TOML for those
//! who would rather leave keepalived.conf behind.
//!
//! Read: `virtual_server IP PORT` and `virtual_server group NAME`
//! (`virtual_server_group` with addresses and last-octet ranges),
//! `lb_algo`/`lvs_sched`, `lb_kind`/`lvs_method` NAT|DR|TUN|FNAT (DPVS's
//! `laddr_group_name` with `local_address_group`), `persistence_timeout`,
//! `persistence_granularity`, `protocol`, the sh/mh flags, `sorry_server`,
//! DPVS's `proxy_protocol v1|v2|disable`,
//! `quorum`, `hysteresis`, `quorum_up`/`quorum_down`, `alpha`, `omega`,
//! `inhibit_on_failure`, `real_server` with `weight`, `uthreshold`,
//! `lthreshold`, `notify_up`/`notify_down` and the checkers TCP_CHECK,
//! HTTP_GET and SSL_GET (each `url` a check), UDP_CHECK, MISC_CHECK,
//! PING_CHECK.
//! `global_defs`, `vrrp_*` and the other VRRP-side blocks are left to
//! keepalived. `virtual_server fwmark N` (with `ip_family inet6` for an
//! IPv6 mark) becomes a `fwmark = N` service, and so does each `fwmark N`
//! entry of a `virtual_server_group` (beside its address entries, with
//! the group's settings and real servers); the packets that carry the
//! mark are defined by rvsd.toml's `[[fwmark]]` tables, not by iptables.
//! Anything else rvs cannot honour (`ops` on TCP,
//! SMTP_CHECK, DNS_CHECK, `regex`, ...) is refused with the file,
//! the line and why; a file with any error contributes nothing.

use super::config::{CheckConf, RealHealthConf, RequireReply, Secs, ServiceHealthConf};
use crate::config::{ConfigError, RealConf, ServiceConf};
use crate::daemon::proto::Reply;
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// rvsadm's flag for the converter.
pub const IMPORT_FLAG: &str = "--import-keepalived";

/// `[keepalived]` in rvsd.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The keepalived.conf whose virtual servers rvsd runs (relative to
    /// rvsd.toml's directory when not absolute).
    pub conf: String,
}

/// Where an imported service and its real servers came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `file:line` of the virtual_server.
    pub at: String,
    /// The `virtual_server ...` words.
    pub what: String,
    /// `file:line` of each real_server.
    pub reals: Vec<String>,
}

/// The imported services with their origins, or every error.
pub type Imported = (Vec<ServiceConf>, Vec<Origin>);

#[derive(Debug, Clone)]
struct Node {
    words: Vec<String>,
    at: String,
    line: usize,
    file: String,
    children: Option<Vec<Node>>,
}

struct Errs(Vec<ConfigError>);

impl Errs {
    fn at(&mut self, n: &Node, msg: impl Into<String>) {
        self.0.push(ConfigError {
            file: n.file.clone(),
            field: format!("line {}", n.line),
            message: msg.into(),
        });
    }
}

/// Most nested includes followed.
const MAX_INCLUDE_DEPTH: usize = 8;

fn tokenize(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        let mut cur = String::new();
        let flush = |cur: &mut String, out: &mut Vec<(String, usize)>| {
            if !cur.is_empty() {
                out.push((std::mem::take(cur), i + 1));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' if cur.is_empty() => break,
                '"' => {
                    // a quoted word (may be empty, may hold spaces)
                    let mut q = String::new();
                    for c2 in chars.by_ref() {
                        if c2 == '"' {
                            break;
                        }
                        q.push(c2);
                    }
                    flush(&mut cur, &mut out);
                    out.push((format!("\"{q}"), i + 1));
                }
                '{' | '}' => {
                    flush(&mut cur, &mut out);
                    out.push((c.to_string(), i + 1));
                }
                c if c.is_whitespace() => flush(&mut cur, &mut out),
                c => cur.push(c),
            }
        }
        flush(&mut cur, &mut out);
        // a line ends a statement
        out.push(("\n".into(), i + 1));
    }
    out
}

/// Unquotes a word.
fn word(w: &str) -> &str {
    w.strip_prefix('"').unwrap_or(w)
}

fn parse_nodes(
    toks: &[(String, usize)],
    pos: &mut usize,
    file: &str,
    depth: usize,
    e: &mut Errs,
    nested: bool,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut line = 0;
    while *pos < toks.len() {
        let (t, l) = &toks[*pos];
        *pos += 1;
        match t.as_str() {
            "\n" => {
                if !words.is_empty() {
                    nodes.push(Node {
                        at: format!("{file}:{line}"),
                        words: std::mem::take(&mut words),
                        line,
                        file: file.into(),
                        children: None,
                    });
                }
            }
            "{" => {
                let start = if words.is_empty() { *l } else { line };
                let children = parse_nodes(toks, pos, file, depth, e, true);
                nodes.push(Node {
                    at: format!("{file}:{start}"),
                    words: std::mem::take(&mut words),
                    line: start,
                    file: file.into(),
                    children: Some(children),
                });
            }
            "}" => {
                if !words.is_empty() {
                    nodes.push(Node {
                        at: format!("{file}:{line}"),
                        words: std::mem::take(&mut words),
                        line,
                        file: file.into(),
                        children: None,
                    });
                }
                if nested {
                    return nodes;
                }
                e.0.push(ConfigError {
                    file: file.into(),
                    field: format!("line {l}"),
                    message: "'}' closes no block".into(),
                });
            }
            _ => {
                if words.is_empty() {
                    line = *l;
                }
                words.push(t.clone());
            }
        }
    }
    if nested {
        e.0.push(ConfigError {
            file: file.into(),
            field: format!("line {line}"),
            message: "a block is not closed (missing '}')".into(),
        });
    }
    let _ = depth;
    nodes
}

fn read_tree(path: &Path, depth: usize, e: &mut Errs) -> Vec<Node> {
    let file = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(err) => {
            e.0.push(ConfigError {
                file,
                field: String::new(),
                message: format!("cannot read: {err}"),
            });
            return Vec::new();
        }
    };
    let toks = tokenize(&text);
    let mut pos = 0;
    let nodes = parse_nodes(&toks, &mut pos, &file, depth, e, false);
    expand_includes(nodes, path, depth, e)
}

/// keepalived's `include FILE` (a `*` in the file name matches any run
/// of characters), relative to the including file.
fn expand_includes(nodes: Vec<Node>, path: &Path, depth: usize, e: &mut Errs) -> Vec<Node> {
    let mut out = Vec::new();
    for n in nodes {
        if n.words.first().map(String::as_str) != Some("include") || n.children.is_some() {
            out.push(n);
            continue;
        }
        let Some(pat) = n.words.get(1).map(|w| word(w).to_string()) else {
            e.at(&n, "include needs a file");
            continue;
        };
        if depth >= MAX_INCLUDE_DEPTH {
            e.at(
                &n,
                format!("include nested deeper than {MAX_INCLUDE_DEPTH}"),
            );
            continue;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let full = if Path::new(&pat).is_absolute() {
            PathBuf::from(&pat)
        } else {
            base.join(&pat)
        };
        let files = match full.file_name().map(|f| f.to_string_lossy().to_string()) {
            Some(name) if name.contains('*') => {
                let dir = full.parent().unwrap_or(Path::new("."));
                let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
                let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map(|rd| {
                        rd.filter_map(|d| d.ok())
                            .map(|d| d.path())
                            .filter(|p| {
                                p.file_name().is_some_and(|f| {
                                    let f = f.to_string_lossy();
                                    f.len() >= pre.len() + post.len()
                                        && f.starts_with(pre)
                                        && f.ends_with(post)
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            }
            _ => vec![full],
        };
        for f in files {
            out.extend(read_tree(&f, depth + 1, e));
        }
    }
    out
}

fn is_ignored_top(name: &str) -> bool {
    name.starts_with("vrrp_")
        || name.starts_with("static_")
        || name.starts_with("track_")
        || name.starts_with("net_namespace")
        || matches!(
            name,
            "global_defs"
                | "garp_group"
                | "linkbeat_interfaces"
                | "instance"
                | "use_pid_dir"
                | "bfd_instance"
        )
}

/// Reads the virtual servers of a keepalived.conf (and its includes).
pub fn load(path: &Path) -> Result<Imported, Vec<ConfigError>> {
    let mut e = Errs(Vec::new());
    let tree = read_tree(path, 0, &mut e);
    let out = convert(&tree, &mut e);
    if e.0.is_empty() {
        Ok(out)
    } else {
        Err(e.0)
    }
}

/// Reads keepalived.conf text (`file` names it in errors; includes are
/// relative to the current directory).
pub fn parse_text(text: &str, file: &str) -> Result<Imported, Vec<ConfigError>> {
    let mut e = Errs(Vec::new());
    let toks = tokenize(text);
    let mut pos = 0;
    let nodes = parse_nodes(&toks, &mut pos, file, 0, &mut e, false);
    let tree = expand_includes(nodes, Path::new(file), 0, &mut e);
    let out = convert(&tree, &mut e);
    if e.0.is_empty() {
        Ok(out)
    } else {
        Err(e.0)
    }
}

fn convert(tree: &[Node], e: &mut Errs) -> Imported {
    let mut groups: Vec<(String, &Node)> = Vec::new();
    let mut laddr_groups: Vec<(String, &Node)> = Vec::new();
    for n in tree {
        let name = n.words.first().map(String::as_str).unwrap_or("");
        match name {
            "virtual_server_group" | "local_address_group" => {
                let Some(g) = n.words.get(1) else {
                    e.at(n, format!("{name} needs a name"));
                    continue;
                };
                if n.children.is_none() {
                    e.at(n, format!("{name} {g} needs a {{ block }}"));
                    continue;
                }
                if name == "virtual_server_group" {
                    groups.push((g.clone(), n));
                } else {
                    laddr_groups.push((g.clone(), n));
                }
            }
            _ => {}
        }
    }
    let mut services = Vec::new();
    let mut origins = Vec::new();
    for n in tree {
        let name = n.words.first().map(String::as_str).unwrap_or("");
        match name {
            "virtual_server" => {
                for (s, o) in virtual_server(n, &groups, &laddr_groups, e) {
                    services.push(s);
                    origins.push(o);
                }
            }
            "virtual_server_group" | "local_address_group" => {}
            n2 if is_ignored_top(n2) => {}
            other => e.at(
                n,
                format!("unknown keyword '{other}' (rvs reads virtual_server, virtual_server_group and local_address_group; VRRP parts are left to keepalived)"),
            ),
        }
    }
    (services, origins)
}

fn parse_ip(w: &str) -> Option<IpAddr> {
    w.parse().ok()
}

fn ep(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// `IP` or `IP-LAST` (last-octet or last-group range) → addresses.
fn expand_range(w: &str) -> Option<Vec<IpAddr>> {
    if let Some(ip) = parse_ip(w) {
        return Some(vec![ip]);
    }
    let (first, last) = w.rsplit_once('-')?;
    let ip = parse_ip(first)?;
    match ip {
        IpAddr::V4(a) => {
            let end: u8 = last.parse().ok()?;
            let o = a.octets();
            (end >= o[3]).then(|| {
                (o[3]..=end)
                    .map(|x| IpAddr::from([o[0], o[1], o[2], x]))
                    .collect()
            })
        }
        IpAddr::V6(a) => {
            let end = u16::from_str_radix(last, 16).ok()?;
            let mut s = a.segments();
            let start = s[7];
            (end >= start).then(|| {
                (start..=end)
                    .map(|x| {
                        s[7] = x;
                        IpAddr::from(s)
                    })
                    .collect()
            })
        }
    }
}

fn arg<'a>(n: &'a Node, i: usize, e: &mut Errs, what: &str) -> Option<&'a str> {
    match n.words.get(i) {
        Some(w) => Some(word(w)),
        None => {
            e.at(n, format!("{} needs {what}", n.words[0]));
            None
        }
    }
}

fn int_arg(n: &Node, e: &mut Errs) -> Option<i64> {
    let w = arg(n, 1, e, "a number")?;
    match w.parse::<i64>() {
        Ok(v) => Some(v),
        Err(_) => {
            e.at(n, format!("{} '{w}' is not a whole number", n.words[0]));
            None
        }
    }
}

fn secs_arg(n: &Node, e: &mut Errs) -> Option<Secs> {
    let w = arg(n, 1, e, "a number of seconds")?;
    if let Ok(i) = w.parse::<i64>() {
        return Some(Secs::Int(i));
    }
    match w.parse::<f64>() {
        Ok(f) => Some(Secs::Float(f)),
        Err(_) => {
            e.at(
                n,
                format!("{} '{w}' is not a number of seconds", n.words[0]),
            );
            None
        }
    }
}

/// The rest of the line as one command (keepalived takes the quoted
/// string or the words).
fn command_arg(n: &Node, e: &mut Errs) -> Option<String> {
    if n.words.len() < 2 {
        e.at(n, format!("{} needs a command", n.words[0]));
        return None;
    }
    Some(
        n.words[1..]
            .iter()
            .map(|w| word(w))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn no_block(n: &Node, e: &mut Errs) -> bool {
    if n.children.is_some() {
        e.at(n, format!("{} takes no block", n.words[0]));
        return false;
    }
    true
}

/// Defaults a virtual_server gives its checkers.
#[derive(Default, Clone)]
struct CheckDefaults {
    delay_loop: Option<Secs>,
    connect_timeout: Option<Secs>,
    retry: Option<i64>,
    delay_before_retry: Option<Secs>,
    warmup: Option<Secs>,
    virtualhost: Option<String>,
}

impl CheckDefaults {
    /// Takes a defaults keyword; false when `n` is not one.
    fn take(&mut self, n: &Node, e: &mut Errs) -> bool {
        match n.words[0].as_str() {
            "delay_loop" => self.delay_loop = secs_arg(n, e),
            "connect_timeout" => self.connect_timeout = secs_arg(n, e),
            "retry" | "nb_get_retry" => self.retry = int_arg(n, e),
            "delay_before_retry" => self.delay_before_retry = secs_arg(n, e),
            "warmup" => self.warmup = secs_arg(n, e),
            "virtualhost" => self.virtualhost = arg(n, 1, e, "a host name").map(String::from),
            _ => return false,
        }
        true
    }
}

fn virtual_server(
    n: &Node,
    groups: &[(String, &Node)],
    laddr_groups: &[(String, &Node)],
    e: &mut Errs,
) -> Vec<(ServiceConf, Origin)> {
    let before = e.0.len();
    let what = n
        .words
        .iter()
        .map(|w| word(w))
        .collect::<Vec<_>>()
        .join(" ");
    let Some(children) = &n.children else {
        e.at(n, format!("{what} needs a {{ block }}"));
        return Vec::new();
    };
    // the service addresses
    let mut addrs: Vec<(IpAddr, String)> = Vec::new();
    // firewall marks: `virtual_server fwmark N`, or `fwmark N` entries of
    // a virtual_server_group (each becomes a fwmark service)
    let mut marks: Vec<i64> = Vec::new();
    match (
        n.words.get(1).map(String::as_str),
        n.words.get(2),
        n.words.len(),
    ) {
        (Some("fwmark"), Some(m), 3) => match m.parse::<u32>() {
            Ok(v) if v != 0 => marks.push(i64::from(v)),
            _ => e.at(n, format!("'{m}' is not a firewall mark (1..=4294967295)")),
        },
        (Some("fwmark"), _, _) => e.at(n, "expected 'virtual_server fwmark MARK'"),
        (Some("group"), Some(g), 3) => match groups.iter().find(|(name, _)| name == g) {
            None => e.at(n, format!("virtual_server_group '{g}' is not defined")),
            Some((_, gn)) => {
                for m in gn.children.as_deref().unwrap_or(&[]) {
                    match (m.words.first(), m.words.get(1), m.words.len()) {
                        (Some(f), mk, len) if f == "fwmark" => match (mk, len) {
                            (Some(mk), 2) => match mk.parse::<u32>() {
                                Ok(v) if v != 0 && !marks.contains(&i64::from(v)) => {
                                    marks.push(i64::from(v))
                                }
                                Ok(v) if v != 0 => {
                                    e.at(m, format!("fwmark {v} is listed twice in the group"))
                                }
                                _ => e.at(
                                    m,
                                    format!("'{mk}' is not a firewall mark (1..=4294967295)"),
                                ),
                            },
                            _ => e.at(m, "expected 'fwmark MARK'"),
                        },
                        (Some(a), Some(p), 2) => match expand_range(a) {
                            Some(v) => addrs.extend(v.into_iter().map(|ip| (ip, p.clone()))),
                            None => e.at(
                                m,
                                format!("'{a}' is not an address or range (e.g. 198.18.0.1-5)"),
                            ),
                        },
                        _ => e.at(m, "expected 'IP PORT' or 'IP-RANGE PORT'"),
                    }
                }
            }
        },
        (Some(ip), Some(port), 3) => match parse_ip(ip) {
            Some(a) => addrs.push((a, port.clone())),
            None => e.at(n, format!("'{ip}' is not an IP address")),
        },
        _ => e.at(
            n,
            "expected 'virtual_server IP PORT' or 'virtual_server group NAME'",
        ),
    }
    for (_, p) in &addrs {
        if p.parse::<u16>().is_err() {
            e.at(n, format!("'{p}' is not a port"));
        }
    }
    let mut svc = ServiceConf {
        protocol: "tcp".into(),
        address: String::new(),
        fwmark: None,
        family: None,
        scheduler: None,
        sched_flags: Vec::new(),
        persistent: None,
        netmask: None,
        forward: None,
        laddrs: Vec::new(),
        reals: Vec::new(),
        sorry_server: None,
        health: None,
        sloppy_tcp: None,
        ops: false,
        synproxy: false,
        toa: false,
        proxy_protocol: None,
        announce: None,
    };
    let mut ops_at: Option<&Node> = None;
    let mut health = ServiceHealthConf::default();
    let mut any_health = false;
    let mut defaults = CheckDefaults::default();
    let mut real_nodes = Vec::new();
    let mut svc_tunnel = TunWords::default();
    for c in children {
        let k = c.words[0].as_str();
        if k == "real_server" {
            real_nodes.push(c);
            continue;
        }
        if !no_block(c, e) {
            continue;
        }
        if defaults.take(c, e) {
            if k == "delay_loop" {
                health.delay_loop = defaults.delay_loop;
                any_health = true;
            }
            continue;
        }
        match k {
            "lb_algo" | "lvs_sched" => {
                svc.scheduler = arg(c, 1, e, "a scheduler").map(String::from)
            }
            "lb_kind" | "lvs_method" => {
                let m = arg(c, 1, e, "NAT, DR, TUN or FNAT").unwrap_or("");
                match m.to_ascii_uppercase().as_str() {
                    "NAT" => svc.forward = Some("masq".into()),
                    "DR" => svc.forward = Some("route".into()),
                    "TUN" => {
                        svc.forward = Some("tunnel".into());
                        svc_tunnel = tun_words(c, e);
                    }
                    "FNAT" => svc.forward = Some("fullnat".into()),
                    "" => {}
                    _ => e.at(
                        c,
                        format!("unknown {k} '{m}' (expected NAT, DR, TUN or FNAT)"),
                    ),
                }
            }
            "persistence_timeout" => svc.persistent = Some(int_arg(c, e).unwrap_or(360)),
            "persistence_granularity" => {
                svc.netmask =
                    arg(c, 1, e, "a netmask").map(|m| m.trim_start_matches('/').to_string())
            }
            "protocol" => {
                let p = arg(c, 1, e, "TCP or UDP").unwrap_or("TCP");
                match p.to_ascii_uppercase().as_str() {
                    "TCP" | "UDP" => svc.protocol = p.to_ascii_lowercase(),
                    _ => e.at(
                        c,
                        format!("protocol {p} is not supported by rvs (TCP or UDP)"),
                    ),
                }
            }
            // the family of a fwmark service (keepalived's ip_family)
            "ip_family" => match arg(c, 1, e, "inet or inet6").unwrap_or("") {
                "inet" => svc.family = Some("ipv4".into()),
                "inet6" => svc.family = Some("ipv6".into()),
                "" => {}
                x => e.at(
                    c,
                    format!("unknown ip_family '{x}' (expected inet or inet6)"),
                ),
            },
            "sh-port" | "sh-fallback" | "mh-port" | "mh-fallback" => svc.sched_flags.push(k.into()),
            "hashed" | "flag-1" | "flag-2" | "flag-3" => {
                let f = match k {
                    "flag-1" => "sh-fallback",
                    "flag-2" => "sh-port",
                    _ => "",
                };
                if f.is_empty() {
                    e.at(c, format!("scheduler flag {k} is not supported by rvs"));
                } else {
                    svc.sched_flags.push(f.into());
                }
            }
            "ops" => {
                svc.ops = true;
                ops_at = Some(c);
            }
            // DPVS's keepalived: the virtual server's SYN proxy
            "syn_proxy" => svc.synproxy = true,
            // DPVS's keepalived: proxy_protocol v1|v2|disable
            "proxy_protocol" => {
                let v = arg(c, 1, e, "v1, v2 or disable").unwrap_or("");
                match v.to_ascii_lowercase().as_str() {
                    "v1" | "v2" => svc.proxy_protocol = Some(v.to_ascii_lowercase()),
                    "disable" => svc.proxy_protocol = None,
                    "" => {}
                    _ => e.at(
                        c,
                        format!("unknown proxy_protocol '{v}' (expected v1, v2 or disable)"),
                    ),
                }
            }
            "sorry_server" => match (c.words.get(1).and_then(|w| parse_ip(w)), c.words.get(2)) {
                (Some(ip), Some(p)) => svc.sorry_server = Some(ep(ip, p)),
                _ => e.at(c, "expected 'sorry_server IP PORT'"),
            },
            "sorry_server_inhibit" => {
                health.sorry_server_inhibit = true;
                any_health = true;
            }
            "alpha" => {
                health.alpha = true;
                any_health = true;
            }
            "omega" => {
                health.omega = true;
                any_health = true;
            }
            "inhibit_on_failure" => {
                health.inhibit_on_failure = true;
                any_health = true;
            }
            "quorum" => {
                health.quorum = int_arg(c, e);
                any_health = true;
            }
            "hysteresis" => {
                health.hysteresis = int_arg(c, e);
                any_health = true;
            }
            "quorum_up" => {
                health.quorum_up = command_arg(c, e);
                any_health = true;
            }
            "quorum_down" => {
                health.quorum_down = command_arg(c, e);
                any_health = true;
            }
            "laddr_group_name" => {
                let g = arg(c, 1, e, "a local_address_group name").unwrap_or("");
                match laddr_groups.iter().find(|(name, _)| name == g) {
                    None if g.is_empty() => {}
                    None => e.at(c, format!("local_address_group '{g}' is not defined")),
                    Some((_, gn)) => {
                        for m in gn.children.as_deref().unwrap_or(&[]) {
                            // DPVS: "IP [DEVICE]"
                            match m.words.first().and_then(|w| expand_range(w)) {
                                Some(v) => {
                                    svc.laddrs.extend(v.into_iter().map(|ip| ip.to_string()))
                                }
                                None => e.at(m, "expected a local address (IP or IP-RANGE)"),
                            }
                        }
                    }
                }
            }
            // mail alerts and VRRP-tied suspension are keepalived's business
            "smtp_alert" | "ha_suspend" => {}
            other => e.at(
                c,
                format!("'{other}' in a virtual_server is not supported by rvs"),
            ),
        }
    }
    // keepalived sets IP_VS_SVC_F_ONEPACKET only for UDP services and
    // silently drops `ops` elsewhere; ipvsadm refuses -o on TCP. rvs
    // refuses it too, so that nobody believes a TCP service is scheduled
    // per packet.
    if let (Some(c), false) = (ops_at, svc.protocol == "udp") {
        e.at(
            c,
            "ops (one-packet scheduling) is only for UDP services (protocol UDP)",
        );
    }
    let mut reals_at = Vec::new();
    for r in real_nodes {
        if let Some(mut rc) = real_server(r, &health, &defaults, e) {
            // the virtual_server's `lvs_method TUN type ...` for real
            // servers without their own lvs_method
            if rc.forward.is_none() && svc.forward.as_deref() == Some("tunnel") {
                (rc.tun_type, rc.tun_port, rc.tun_flags) = svc_tunnel.clone();
            }
            svc.reals.push(rc);
            reals_at.push(r.at.clone());
        }
    }
    if any_health {
        svc.health = Some(health);
    }
    if e.0.len() != before {
        return Vec::new();
    }
    if let Some(f) = svc.family.as_deref() {
        if marks.is_empty() {
            e.at(n, "ip_family is only for fwmark virtual servers");
            return Vec::new();
        }
        // in a group it names the marks' family; its addresses keep theirs
        // but must agree, as keepalived checks
        let v6 = f == "ipv6";
        if let Some((ip, _)) = addrs.iter().find(|(ip, _)| ip.is_ipv6() != v6) {
            e.at(
                n,
                format!(
                    "ip_family {} does not match the group's address {ip}",
                    if v6 { "inet6" } else { "inet" }
                ),
            );
            return Vec::new();
        }
    }
    let origin = || Origin {
        at: n.at.clone(),
        what: what.clone(),
        reals: reals_at.clone(),
    };
    let mut out: Vec<(ServiceConf, Origin)> = marks
        .iter()
        .map(|&m| {
            // a fwmark service: its protocols come from the [[fwmark]] rules
            let mut s = svc.clone();
            s.fwmark = Some(m);
            s.protocol = String::new();
            (s, origin())
        })
        .collect();
    svc.family = None;
    out.extend(addrs.into_iter().map(|(ip, port)| {
        let mut s = svc.clone();
        s.address = ep(ip, &port);
        (s, origin())
    }));
    out
}

/// `tun_type`, `tun_port`, `tun_flags` as [`RealConf`] takes them.
type TunWords = (Option<String>, Option<i64>, Option<String>);

/// keepalived's tunnel options after `lvs_method TUN` (keepalived.conf(5)
/// of 2.2.7: `TUN [type {ipip|gue port NUM|gre} [nocsum|csum|remcsum]]`);
/// whether they fit each other is checked by the config's own validation
/// (`service[i].real[j].tun_*`).
fn tun_words(n: &Node, e: &mut Errs) -> TunWords {
    let mut t: TunWords = (None, None, None);
    let mut w = n.words.iter().skip(2).map(|w| word(w));
    while let Some(x) = w.next() {
        match x {
            "type" => match w.next() {
                Some(ty) => t.0 = Some(ty.to_string()),
                None => e.at(n, "'type' needs ipip, gue or gre"),
            },
            "port" => match w.next().map(|p| (p, p.parse::<i64>())) {
                Some((_, Ok(p))) => t.1 = Some(p),
                Some((p, Err(_))) => e.at(n, format!("tunnel port '{p}' is not a number")),
                None => e.at(n, "'port' needs a number"),
            },
            "nocsum" | "csum" | "remcsum" => t.2 = Some(x.to_string()),
            other => e.at(
                n,
                format!(
                    "unknown TUN option '{other}' (expected type, port, nocsum, csum or remcsum)"
                ),
            ),
        }
    }
    t
}

fn real_server(
    n: &Node,
    _h: &ServiceHealthConf,
    defaults: &CheckDefaults,
    e: &mut Errs,
) -> Option<RealConf> {
    let (ip, port) = match (
        n.words.get(1).and_then(|w| parse_ip(w)),
        n.words.get(2),
        n.words.len(),
    ) {
        (Some(ip), Some(p), 3) if p.parse::<u16>().is_ok() => (ip, p.clone()),
        _ => {
            e.at(n, "expected 'real_server IP PORT {'");
            return None;
        }
    };
    let mut r = RealConf {
        address: ep(ip, &port),
        forward: None,
        weight: None,
        u_threshold: None,
        l_threshold: None,
        tun_type: None,
        tun_port: None,
        tun_flags: None,
        health: None,
        checks: Vec::new(),
    };
    let mut rh = RealHealthConf::default();
    let mut any = false;
    let mut d = defaults.clone();
    let children = n.children.as_deref().unwrap_or(&[]);
    // real_server-level defaults come first, whatever their order
    for c in children {
        if c.children.is_none() && d.take(c, e) {}
    }
    for c in children {
        let k = c.words[0].as_str();
        if c.children.is_some() {
            match k {
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "UDP_CHECK" | "MISC_CHECK"
                | "PING_CHECK" | "ICMP_CHECK" => r.checks.extend(checker(c, &d, e)),
                "SMTP_CHECK" | "DNS_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                    e.at(c, format!("{k} is not supported by rvs"))
                }
                _ => e.at(c, format!("'{k}' in a real_server is not supported by rvs")),
            }
            continue;
        }
        match k {
            "delay_loop" | "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry"
            | "warmup" | "virtualhost" => {}
            "weight" => r.weight = int_arg(c, e),
            "uthreshold" => r.u_threshold = int_arg(c, e),
            "lthreshold" => r.l_threshold = int_arg(c, e),
            "lb_kind" | "lvs_method" => {
                let m = arg(c, 1, e, "NAT, DR or TUN").unwrap_or("");
                r.forward = match m.to_ascii_uppercase().as_str() {
                    "NAT" => Some("masq".into()),
                    "DR" => Some("route".into()),
                    "TUN" => {
                        (r.tun_type, r.tun_port, r.tun_flags) = tun_words(c, e);
                        Some("tunnel".into())
                    }
                    "FNAT" => Some("fullnat".into()),
                    _ => {
                        e.at(c, format!("unknown {k} '{m}'"));
                        None
                    }
                }
            }
            "inhibit_on_failure" => {
                rh.inhibit_on_failure = Some(true);
                any = true;
            }
            "notify_up" => {
                rh.notify_up = command_arg(c, e);
                any = true;
            }
            "notify_down" => {
                rh.notify_down = command_arg(c, e);
                any = true;
            }
            "smtp_alert" => {}
            other => e.at(
                c,
                format!("'{other}' in a real_server is not supported by rvs"),
            ),
        }
    }
    if any {
        if r.checks.is_empty() {
            // keepalived runs no notify scripts without a checker either
            return Some(r);
        }
        r.health = Some(rh);
    }
    Some(r)
}

fn base_check(kind: &str, d: &CheckDefaults) -> CheckConf {
    CheckConf {
        kind: kind.into(),
        delay_loop: d.delay_loop,
        connect_timeout: d.connect_timeout,
        retry: d.retry,
        delay_before_retry: d.delay_before_retry,
        warmup: d.warmup,
        ..CheckConf::default()
    }
}

fn status_codes(n: &Node, e: &mut Errs) -> Vec<i64> {
    let mut out = Vec::new();
    for w in &n.words[1..] {
        let w = word(w);
        let range = w
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<i64>().ok()?, b.parse::<i64>().ok()?)));
        match (w.parse::<i64>(), range) {
            (Ok(c), _) => out.push(c),
            (_, Some((a, b))) if a <= b && b - a < 500 => out.extend(a..=b),
            _ => e.at(
                n,
                format!("'{w}' is not a status code or range (e.g. 200 or 200-299)"),
            ),
        }
    }
    if out.is_empty() {
        e.at(n, "status_code needs a code");
    }
    out
}

fn checker(n: &Node, d: &CheckDefaults, e: &mut Errs) -> Vec<CheckConf> {
    let kind = match n.words[0].as_str() {
        "ICMP_CHECK" => "PING_CHECK",
        k => k,
    };
    let mut c = base_check(kind, d);
    let mut urls: Vec<CheckConf> = Vec::new();
    let is = |k: &str| kind == k || (k == "HTTP_GET" && kind == "SSL_GET");
    for o in n.children.as_deref().unwrap_or(&[]) {
        let k = o.words[0].as_str();
        if k == "url" && is("HTTP_GET") {
            let mut u = CheckConf::default();
            for p in o.children.as_deref().unwrap_or(&[]) {
                match p.words[0].as_str() {
                    "path" => u.path = arg(p, 1, e, "a path").map(String::from),
                    "digest" => u.digest = arg(p, 1, e, "an MD5 digest").map(String::from),
                    "status_code" => u.status_code = status_codes(p, e),
                    "virtualhost" => u.virtualhost = arg(p, 1, e, "a host name").map(String::from),
                    "regex" | "regex_no_match" | "regex_options" | "regex_stack"
                    | "regex_min_offset" | "regex_max_offset" => e.at(
                        p,
                        format!(
                            "url {} is not supported by rvs (status_code and digest are)",
                            p.words[0]
                        ),
                    ),
                    other => e.at(p, format!("'{other}' in a url is not supported by rvs")),
                }
            }
            urls.push(u);
            continue;
        }
        if !no_block(o, e) {
            continue;
        }
        match k {
            "connect_ip" => c.connect_ip = arg(o, 1, e, "an address").map(String::from),
            "connect_port" => c.connect_port = int_arg(o, e),
            "bindto" => c.bindto = arg(o, 1, e, "an address").map(String::from),
            "bind_port" => c.bind_port = int_arg(o, e),
            "connect_timeout" => c.connect_timeout = secs_arg(o, e),
            "delay_loop" => c.delay_loop = secs_arg(o, e),
            "retry" | "nb_get_retry" => c.retry = int_arg(o, e),
            "delay_before_retry" => c.delay_before_retry = secs_arg(o, e),
            "warmup" => c.warmup = secs_arg(o, e),
            "virtualhost" if is("HTTP_GET") => {
                c.virtualhost = arg(o, 1, e, "a host name").map(String::from)
            }
            // rvs speaks HTTP/1.0 with Connection: close, which every
            // server accepts
            "http_protocol" if is("HTTP_GET") => {}
            "misc_path" if is("MISC_CHECK") => c.misc_path = command_arg(o, e),
            "misc_timeout" if is("MISC_CHECK") => c.misc_timeout = secs_arg(o, e),
            "misc_dynamic" if is("MISC_CHECK") => c.misc_dynamic = true,
            "user" if is("MISC_CHECK") => e.at(
                o,
                "MISC_CHECK user is not supported by rvs (scripts run as rvsd's user)",
            ),
            "payload" if is("UDP_CHECK") => match hex(arg(o, 1, e, "hex bytes").unwrap_or("")) {
                Some(p) => c.payload = Some(p),
                None => e.at(o, "payload must be hex bytes that form UTF-8 text in rvs"),
            },
            // keepalived joins the rest of the line into one hex string
            "require_reply" if is("UDP_CHECK") => {
                c.require_reply = if o.words.len() > 1 {
                    RequireReply::Bytes(o.words[1..].join(" "))
                } else {
                    RequireReply::Flag(true)
                }
            }
            "min_reply_length" if is("UDP_CHECK") => c.min_reply_length = int_arg(o, e),
            "max_reply_length" if is("UDP_CHECK") => c.max_reply_length = int_arg(o, e),
            "fwmark" | "bind_if" | "source_ip" => e.at(o, format!("{k} is not supported by rvs")),
            other => e.at(o, format!("'{other}' in a {kind} is not supported by rvs")),
        }
    }
    if is("HTTP_GET") {
        if urls.is_empty() {
            // keepalived needs a url; rvs's default is "/"
            return vec![c];
        }
        let vh = c.virtualhost.clone().or_else(|| d.virtualhost.clone());
        return urls
            .into_iter()
            .map(|u| CheckConf {
                path: u.path.or(Some("/".into())),
                digest: u.digest,
                status_code: u.status_code,
                virtualhost: u.virtualhost.or(vh.clone()),
                ..c.clone()
            })
            .collect();
    }
    vec![c]
}

fn hex(s: &str) -> Option<String> {
    let s = s.trim_start_matches("0x");
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// Rewrites errors about imported services (`service[i]...` at or after
/// `base`) so they name the keepalived file and line.
pub fn relabel(errors: &mut [ConfigError], base: usize, origins: &[Origin]) {
    for err in errors.iter_mut() {
        let Some(rest) = err.field.strip_prefix("service[") else {
            continue;
        };
        let Some((idx, tail)) = rest.split_once(']') else {
            continue;
        };
        let Some(i) = idx.parse::<usize>().ok().filter(|i| *i >= base) else {
            continue;
        };
        let Some(o) = origins.get(i - base) else {
            continue;
        };
        let mut at = o.at.clone();
        let mut field = tail.trim_start_matches('.').to_string();
        if let Some(r) = field.strip_prefix("real[") {
            if let Some((j, t)) = r.split_once(']') {
                if let Some(ra) = j.parse::<usize>().ok().and_then(|j| o.reals.get(j)) {
                    at = ra.clone();
                    field = format!("real_server{t}");
                }
            }
        }
        let (file, line) = at.rsplit_once(':').unwrap_or((&at, ""));
        err.file = file.to_string();
        err.field = format!(
            "line {line} ({}{}{field})",
            o.what,
            if field.is_empty() { "" } else { ": " }
        );
    }
}

fn q(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn secs(s: Secs) -> String {
    match s {
        Secs::Int(i) => i.to_string(),
        Secs::Float(f) => f.to_string(),
    }
}

/// The services as rvsd.toml `[[service]]` tables.
pub fn to_toml(services: &[ServiceConf], origins: &[Origin]) -> String {
    let mut o = String::new();
    for (i, s) in services.iter().enumerate() {
        if let Some(or) = origins.get(i) {
            let _ = writeln!(o, "# {} ({})", or.what, or.at);
        }
        match s.fwmark {
            Some(m) => {
                let _ = writeln!(o, "[[service]]\nfwmark = {m}");
                if let Some(f) = &s.family {
                    let _ = writeln!(o, "family = {}", q(f));
                }
            }
            None => {
                let _ = writeln!(
                    o,
                    "[[service]]\nprotocol = {}\naddress = {}",
                    q(&s.protocol),
                    q(&s.address)
                );
            }
        }
        if let Some(x) = &s.scheduler {
            let _ = writeln!(o, "scheduler = {}", q(x));
        }
        if !s.sched_flags.is_empty() {
            let f: Vec<String> = s.sched_flags.iter().map(|x| q(x)).collect();
            let _ = writeln!(o, "sched_flags = [{}]", f.join(", "));
        }
        if let Some(p) = s.persistent {
            let _ = writeln!(o, "persistent = {p}");
        }
        if let Some(x) = &s.netmask {
            let _ = writeln!(o, "netmask = {}", q(x));
        }
        if let Some(x) = &s.forward {
            let _ = writeln!(o, "forward = {}", q(x));
        }
        if !s.laddrs.is_empty() {
            let f: Vec<String> = s.laddrs.iter().map(|x| q(x)).collect();
            let _ = writeln!(o, "laddrs = [{}]", f.join(", "));
        }
        if let Some(x) = &s.sorry_server {
            let _ = writeln!(o, "sorry_server = {}", q(x));
        }
        if s.toa {
            o.push_str("toa = true\n");
        }
        if s.ops {
            o.push_str("ops = true\n");
        }
        if s.synproxy {
            o.push_str("synproxy = true\n");
        }
        if let Some(x) = &s.proxy_protocol {
            let _ = writeln!(o, "proxy_protocol = {}", q(x));
        }
        if let Some(h) = &s.health {
            o.push_str("[service.health]\n");
            if let Some(d) = h.delay_loop {
                let _ = writeln!(o, "delay_loop = {}", secs(d));
            }
            for (set, name) in [
                (h.alpha, "alpha"),
                (h.omega, "omega"),
                (h.inhibit_on_failure, "inhibit_on_failure"),
                (h.sorry_server_inhibit, "sorry_server_inhibit"),
            ] {
                if set {
                    let _ = writeln!(o, "{name} = true");
                }
            }
            if let Some(x) = h.quorum {
                let _ = writeln!(o, "quorum = {x}");
            }
            if let Some(x) = h.hysteresis {
                let _ = writeln!(o, "hysteresis = {x}");
            }
            if let Some(x) = &h.quorum_up {
                let _ = writeln!(o, "quorum_up = {}", q(x));
            }
            if let Some(x) = &h.quorum_down {
                let _ = writeln!(o, "quorum_down = {}", q(x));
            }
        }
        for r in &s.reals {
            let _ = writeln!(o, "[[service.real]]\naddress = {}", q(&r.address));
            if let Some(x) = &r.forward {
                let _ = writeln!(o, "forward = {}", q(x));
            }
            for (v, name) in [
                (r.weight, "weight"),
                (r.u_threshold, "u_threshold"),
                (r.l_threshold, "l_threshold"),
            ] {
                if let Some(v) = v {
                    let _ = writeln!(o, "{name} = {v}");
                }
            }
            if let Some(h) = &r.health {
                o.push_str("[service.real.health]\n");
                if let Some(x) = h.inhibit_on_failure {
                    let _ = writeln!(o, "inhibit_on_failure = {x}");
                }
                if let Some(x) = &h.notify_up {
                    let _ = writeln!(o, "notify_up = {}", q(x));
                }
                if let Some(x) = &h.notify_down {
                    let _ = writeln!(o, "notify_down = {}", q(x));
                }
            }
            for c in &r.checks {
                let _ = writeln!(o, "[[service.real.check]]\ntype = {}", q(&c.kind));
                for (v, name) in [
                    (&c.connect_ip, "connect_ip"),
                    (&c.bindto, "bindto"),
                    (&c.path, "path"),
                    (&c.digest, "digest"),
                    (&c.virtualhost, "virtualhost"),
                    (&c.payload, "payload"),
                    (&c.misc_path, "misc_path"),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(o, "{name} = {}", q(v));
                    }
                }
                for (v, name) in [
                    (c.connect_port, "connect_port"),
                    (c.bind_port, "bind_port"),
                    (c.retry, "retry"),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(o, "{name} = {v}");
                    }
                }
                for (v, name) in [
                    (c.connect_timeout, "connect_timeout"),
                    (c.delay_loop, "delay_loop"),
                    (c.delay_before_retry, "delay_before_retry"),
                    (c.warmup, "warmup"),
                    (c.misc_timeout, "misc_timeout"),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(o, "{name} = {}", secs(v));
                    }
                }
                if !c.status_code.is_empty() {
                    let v: Vec<String> = c.status_code.iter().map(|x| x.to_string()).collect();
                    let _ = writeln!(o, "status_code = [{}]", v.join(", "));
                }
                match &c.require_reply {
                    RequireReply::Flag(false) => {}
                    RequireReply::Flag(true) => o.push_str("require_reply = true\n"),
                    RequireReply::Bytes(h) => {
                        let _ = writeln!(o, "require_reply = {}", q(h));
                    }
                }
                for (v, name) in [
                    (c.min_reply_length, "min_reply_length"),
                    (c.max_reply_length, "max_reply_length"),
                ] {
                    if let Some(v) = v {
                        let _ = writeln!(o, "{name} = {v}");
                    }
                }
                if c.misc_dynamic {
                    o.push_str("misc_dynamic = true\n");
                }
            }
        }
        o.push('\n');
    }
    o
}

/// `rvsadm --import-keepalived FILE`: the file's virtual servers as
/// rvsd.toml `[[service]]` tables on stdout, or every error (exit 1).
pub fn import_command(args: &[String]) -> Reply {
    let [file] = args else {
        return Reply {
            status: 2,
            stdout: String::new(),
            stderr: format!("{IMPORT_FLAG} needs exactly one file\n"),
        };
    };
    match load(Path::new(file)) {
        Ok((services, origins)) => Reply {
            status: 0,
            stdout: format!(
                "# rvsd.toml services imported from {file} by rvsadm {IMPORT_FLAG}\n\
                 # (add [eal] and [[port]]; or let rvsd read the file: [keepalived] conf = \"{file}\")\n\n{}",
                to_toml(&services, &origins)
            ),
            stderr: String::new(),
        },
        Err(errs) => Reply {
            status: 1,
            stdout: String::new(),
            stderr: errs.iter().map(|e| format!("{e}\n")).collect(),
        },
    }
}

#[cfg(test)]
#[path = "keepalived_tests.rs"]
mod tests;
