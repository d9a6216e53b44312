//! `rvsadm`: ipvsadm's command line, parsed into [`Command`] and executed
//! against a [`Model`].
//!
//! The syntax is ipvsadm's (popt rules: bundled short options such as
//! `-Ln`, `--long=value`, `-p` with an optional timeout), plus DPVS's
//! FullNAT additions (`-b`/`--fullnat` on real servers, `--add-laddr`,
//! `--del-laddr`, `--get-laddr`, `-z`, `-F`) and rvs's own listings
//! (`--ports`, `--neigh`, `--routes`, `--drops`, `--workers`). Error texts
//! are ipvsadm's.
//!
//! `-E` and `-e` replace, as ipvsadm and IPVS do: an option not given
//! takes its default (`-E`: wlc, no flags, not persistent, a full mask;
//! `-e`: `-g`, weight 1, no thresholds), it does not keep the old value.
//!
//! Differences from ipvsadm, on purpose: addresses and ports are numeric
//! only (no DNS or /etc/services look-ups, listings are always numeric);
//! `-R` is all-or-nothing (see [`restore`]); fwmark services are not
//! supported. rvs's `--origin` (with `-L` or `-S`) shows which services
//! the config file owns and which were made with rvsadm.

pub mod list;

use crate::model::{
    ConnEntry, Forward, LocalAddr, Model, ModelError, Netmask, Protocol, RealSpec, SchedFlags,
    ServiceKey, ServiceSpec, Timeouts, DEFAULT_PERSISTENT_TIMEOUT, DEFAULT_SCHEDULER,
    DIFFERENT_FAMILY, MAX_TIMEOUT,
};
use crate::model::{ProxyProtocol, TunCsum, TunType, Tunnel};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Program name used in messages.
pub const PROGRAM: &str = "rvsadm";

/// An error `rvsadm` prints on stderr before exiting with `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmError {
    /// The text, as ipvsadm words it.
    pub message: String,
    /// Exit status: 2 for bad arguments (ipvsadm's `fail(2, ...)`), 255 for
    /// a refused operation or a usage error (ipvsadm returns -1).
    pub status: i32,
}

impl AdmError {
    fn usage(msg: impl Into<String>) -> AdmError {
        AdmError {
            message: msg.into(),
            status: 2,
        }
    }
    fn op(e: ModelError) -> AdmError {
        AdmError {
            message: e.to_string(),
            status: 255,
        }
    }
    fn tryhelp() -> AdmError {
        AdmError {
            message: format!("Try `{PROGRAM} -h' or '{PROGRAM} --help' for more information."),
            status: 255,
        }
    }
}

impl fmt::Display for AdmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AdmError {}

/// What `-L`/`-l` should show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// `-n`: accepted; rvs always prints numbers.
    pub numeric: bool,
    /// `-c`: connection entries.
    pub connections: bool,
    /// `--timeout`: the timeout line.
    pub timeout: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--exact`: full numbers instead of K/M/G.
    pub exact: bool,
    /// `--nosort`: insertion order.
    pub nosort: bool,
    /// `--origin` (rvs): say after each service who made it (config or
    /// rvsadm); without it the listing is ipvsadm's, byte for byte.
    pub origin: bool,
    /// `-t`/`-u`: one service only.
    pub service: Option<ServiceKey>,
    /// `--tun-info`: each real server's tunnel type and options.
    pub tun_info: bool,
}

/// rvs's own listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extra {
    /// `--ports`: DPDK ports and their counters.
    Ports,
    /// `--neigh`: the neighbour (ARP/ND) table.
    Neigh,
    /// `--routes`: the route table.
    Routes,
    /// `--drops`: drop counters by reason.
    Drops,
    /// `--workers`: worker cores, queues and load.
    Workers,
}

/// Which sync daemon (`--start-daemon master|backup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DaemonState {
    /// Sends connection sync.
    Master,
    /// Receives connection sync.
    Backup,
}

/// The connection-sync daemon commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCmd {
    /// `--start-daemon STATE [--mcast-interface IF] [--syncid N]
    /// [--mcast-group A] [--mcast-port P] [--mcast-ttl T]`.
    Start {
        /// master or backup.
        state: DaemonState,
        /// `--mcast-interface`.
        interface: Option<String>,
        /// `--syncid`.
        syncid: Option<u8>,
        /// `--mcast-group`.
        group: Option<Ipv4Addr>,
        /// `--mcast-port`.
        port: Option<u16>,
        /// `--mcast-ttl`.
        ttl: Option<u32>,
    },
    /// `--stop-daemon STATE`.
    Stop(DaemonState),
    /// `-L --daemon`: ipvsadm's daemon listing.
    List,
    /// `--sync-stats`: rvs's sync counters.
    Stats,
    /// `--role master|backup|standalone` (rvs): who answers for the VIPs;
    /// what keepalived's notify scripts call on a VRRP transition.
    Role(String),
}

/// The spellings of `-L` (with `-n`) a daemon listing accepts.
const LIST_WORDS: [&str; 9] = [
    "-L",
    "-l",
    "--list",
    "-Ln",
    "-nL",
    "-ln",
    "-nl",
    "-n",
    "--numeric",
];

const SYNC_WORDS: [&str; 5] = [
    "--start-daemon",
    "--stop-daemon",
    "--daemon",
    "--sync-stats",
    "--role",
];

/// Parses the sync-daemon commands; `Ok(None)` when `args` is not one.
fn parse_sync<S: AsRef<str>>(args: &[S]) -> Result<Option<SyncCmd>, AdmError> {
    let is_sync = args.iter().any(|a| {
        let a = a.as_ref();
        SYNC_WORDS
            .iter()
            .any(|w| a == *w || a.strip_prefix(w).is_some_and(|r| r.starts_with('=')))
    });
    if !is_sync {
        return Ok(None);
    }
    // (name, value) pairs; `--opt value` or `--opt=value`
    let mut opts: Vec<(String, Option<String>)> = Vec::new();
    let mut i = 0;
    let takes = |n: &str| {
        matches!(
            n,
            "--start-daemon"
                | "--stop-daemon"
                | "--role"
                | "--mcast-interface"
                | "--syncid"
                | "--mcast-group"
                | "--mcast-port"
                | "--mcast-ttl"
        )
    };
    while i < args.len() {
        let a = args[i].as_ref();
        i += 1;
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (a.to_string(), None),
        };
        let val = if takes(&name) {
            match inline {
                Some(v) => Some(v),
                None if i < args.len() => {
                    i += 1;
                    Some(args[i - 1].as_ref().to_string())
                }
                None => return Err(AdmError::usage(format!("{name}: missing argument"))),
            }
        } else {
            inline
        };
        opts.push((name, val));
    }
    let state = |v: &Option<String>, what: &str| match v.as_deref() {
        Some("master") => Ok(DaemonState::Master),
        Some("backup") => Ok(DaemonState::Backup),
        _ => Err(AdmError::usage(format!(
            "illegal {what} parameter specified"
        ))),
    };
    let only = |allowed: &[&str]| -> Result<(), AdmError> {
        match opts.iter().find(|(n, _)| !allowed.contains(&n.as_str())) {
            Some((n, _)) => Err(AdmError::usage(format!(
                "Illegal '{}' option with the daemon command",
                n.trim_start_matches('-')
            ))),
            None => Ok(()),
        }
    };
    let get = |n: &str| {
        opts.iter()
            .find(|(k, _)| k == n)
            .and_then(|(_, v)| v.clone())
    };
    let first = opts.first().map(|(n, _)| n.as_str()).unwrap_or("");
    match first {
        "--start-daemon" => {
            only(&[
                "--start-daemon",
                "--mcast-interface",
                "--syncid",
                "--mcast-group",
                "--mcast-port",
                "--mcast-ttl",
            ])?;
            let st = state(&opts[0].1, "start-daemon")?;
            let num = |n: &str, max: u64| -> Result<Option<u64>, AdmError> {
                match get(n) {
                    None => Ok(None),
                    Some(v) => number(&v, 0, max)
                        .map(Some)
                        .ok_or_else(|| AdmError::usage(format!("illegal {} specified", &n[2..]))),
                }
            };
            let group = match get("--mcast-group") {
                None => None,
                Some(g) => Some(
                    g.parse::<Ipv4Addr>()
                        .ok()
                        .filter(|a| a.is_multicast())
                        .ok_or_else(|| AdmError::usage("illegal mcast-group specified"))?,
                ),
            };
            Ok(Some(SyncCmd::Start {
                state: st,
                interface: get("--mcast-interface"),
                syncid: num("--syncid", 255)?.map(|n| n as u8),
                group,
                port: num("--mcast-port", 65535)?.map(|n| n as u16),
                ttl: num("--mcast-ttl", 255)?.map(|n| n as u32),
            }))
        }
        "--stop-daemon" => {
            only(&["--stop-daemon"])?;
            Ok(Some(SyncCmd::Stop(state(&opts[0].1, "stop-daemon")?)))
        }
        "--sync-stats" => {
            only(&["--sync-stats", "-n", "--numeric"])?;
            Ok(Some(SyncCmd::Stats))
        }
        "--role" => {
            only(&["--role"])?;
            match opts[0].1.as_deref() {
                Some(r @ ("master" | "backup" | "standalone")) => {
                    Ok(Some(SyncCmd::Role(r.to_string())))
                }
                _ => Err(AdmError::usage(
                    "illegal role specified (master, backup or standalone)",
                )),
            }
        }
        "-L" | "-l" | "--list" | "-Ln" | "-nL" | "-ln" | "-nl" | "-n" | "--numeric" => {
            if opts.iter().any(|(n, _)| n == "--sync-stats") {
                only(&[LIST_WORDS.as_slice(), &["--sync-stats"]].concat())?;
                return Ok(Some(SyncCmd::Stats));
            }
            only(&[LIST_WORDS.as_slice(), &["--daemon"]].concat())?;
            Ok(Some(SyncCmd::List))
        }
        _ => Err(AdmError::usage(
            "--daemon goes with -L; --start-daemon and --stop-daemon stand alone",
        )),
    }
}

/// One parsed `rvsadm` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `-A`.
    AddService(ServiceSpec),
    /// `-E`.
    EditService(ServiceSpec),
    /// `-D`.
    DeleteService(ServiceKey),
    /// `-a`.
    AddServer(ServiceKey, RealSpec),
    /// `-e`.
    EditServer(ServiceKey, RealSpec),
    /// `-d`.
    DeleteServer(ServiceKey, SocketAddr),
    /// `-C`.
    Clear,
    /// `-L`, `-l`, or no arguments at all.
    List(ListOptions),
    /// `-Z`, optionally for one service.
    Zero(Option<ServiceKey>),
    /// `-S`.
    Save {
        /// `-n` (accepted; always numeric).
        numeric: bool,
        /// `--origin` (rvs): a `# origin config|rvsadm` comment line
        /// before each service, which `-R` skips.
        origin: bool,
    },
    /// `-R`: rules on stdin.
    Restore,
    /// `--set tcp tcpfin udp`.
    SetTimeouts(Timeouts),
    /// `--add-laddr -t|u service -z addr -F ifname`.
    AddLaddr(ServiceKey, LocalAddr),
    /// `--del-laddr -t|u service -z addr -F ifname`.
    DelLaddr(ServiceKey, IpAddr),
    /// `--get-laddr [-t|u service]`.
    GetLaddr(Option<ServiceKey>),
    /// rvs's own listings.
    Extra(Extra),
    /// Connection-sync daemon commands.
    Sync(SyncCmd),
    /// `-h`.
    Help,
    /// `-v`.
    Version,
}

impl Command {
    /// Whether the command changes the model (the ones `-R` accepts).
    pub fn is_rule(&self) -> bool {
        matches!(
            self,
            Command::AddService(_)
                | Command::EditService(_)
                | Command::DeleteService(_)
                | Command::AddServer(..)
                | Command::EditServer(..)
                | Command::DeleteServer(..)
                | Command::Clear
                | Command::Zero(_)
                | Command::SetTimeouts(_)
                | Command::AddLaddr(..)
                | Command::DelLaddr(..)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Add,
    Edit,
    Del,
    Flush,
    List,
    AddDest,
    DelDest,
    EditDest,
    Timeout,
    Restore,
    Save,
    Zero,
    AddLaddr,
    DelLaddr,
    GetLaddr,
    Extra(Extra),
    Help,
    Version,
}

impl Cmd {
    fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::AddLaddr => "add-laddr",
            Cmd::DelLaddr => "del-laddr",
            Cmd::GetLaddr => "get-laddr",
            Cmd::Extra(Extra::Ports) => "ports",
            Cmd::Extra(Extra::Neigh) => "neigh",
            Cmd::Extra(Extra::Routes) => "routes",
            Cmd::Extra(Extra::Drops) => "drops",
            Cmd::Extra(Extra::Workers) => "workers",
            Cmd::Help => "help",
            Cmd::Version => "version",
        }
    }
}

/// Options, in ipvsadm's `optnames` order (which decides which error wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    Timeout,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Exact,
    Ops,
    SchedFlags,
    Laddr,
    Ifname,
    Origin,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
    Synproxy,
    Toa,
    ProxyProtocol,
}

const OPTS: [Opt; 32] = [
    Opt::Numeric,
    Opt::Connection,
    Opt::Service,
    Opt::Scheduler,
    Opt::Persistent,
    Opt::Netmask,
    Opt::Server,
    Opt::Forward,
    Opt::Weight,
    Opt::UThreshold,
    Opt::LThreshold,
    Opt::Timeout,
    Opt::Stats,
    Opt::Rate,
    Opt::Thresholds,
    Opt::PersistentConn,
    Opt::NoSort,
    Opt::Exact,
    Opt::Ops,
    Opt::SchedFlags,
    Opt::Laddr,
    Opt::Ifname,
    Opt::Origin,
    Opt::TunInfo,
    Opt::TunType,
    Opt::TunPort,
    Opt::TunNoCsum,
    Opt::TunCsum,
    Opt::TunRemCsum,
    Opt::Synproxy,
    Opt::Toa,
    Opt::ProxyProtocol,
];

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Numeric => "numeric",
            Opt::Connection => "connection",
            Opt::Service => "service-address",
            Opt::Scheduler => "scheduler",
            Opt::Persistent => "persistent",
            Opt::Netmask => "netmask",
            Opt::Server => "real-server",
            Opt::Forward => "forwarding-method",
            Opt::Weight => "weight",
            Opt::UThreshold => "u-threshold",
            Opt::LThreshold => "l-threshold",
            Opt::Timeout => "timeout",
            Opt::Stats => "stats",
            Opt::Rate => "rate",
            Opt::Thresholds => "thresholds",
            Opt::PersistentConn => "persistent-conn",
            Opt::NoSort => "nosort",
            Opt::Exact => "exact",
            Opt::Ops => "ops",
            Opt::SchedFlags => "sched-flags",
            Opt::Laddr => "local-address",
            Opt::Ifname => "ifname",
            Opt::Origin => "origin",
            Opt::TunInfo => "tun-info",
            Opt::TunType => "tun-type",
            Opt::TunPort => "tun-port",
            Opt::TunNoCsum => "tun-nocsum",
            Opt::TunCsum => "tun-csum",
            Opt::TunRemCsum => "tun-remcsum",
            Opt::Synproxy => "synproxy",
            Opt::Toa => "toa",
            Opt::ProxyProtocol => "proxy-protocol",
        }
    }
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The commands-versus-options table: '+' required, 'x' illegal,
/// '1' at most one of these, ' ' optional.
fn rule(cmd: Cmd, opt: Opt) -> char {
    use Opt::*;
    match cmd {
        Cmd::Add | Cmd::Edit => match opt {
            Service => '+',
            Scheduler | Persistent | Netmask | SchedFlags | Ops | Synproxy | Toa
            | ProxyProtocol => ' ',
            _ => 'x',
        },
        Cmd::Del => match opt {
            Service => '+',
            _ => 'x',
        },
        Cmd::List => match opt {
            Numeric | Stats | Rate | Thresholds | PersistentConn | NoSort | Exact | Origin
            | TunInfo => ' ',
            Connection | Service | Timeout => '1',
            _ => 'x',
        },
        Cmd::AddDest | Cmd::EditDest => match opt {
            Service | Server => '+',
            Forward | Weight | UThreshold | LThreshold => ' ',
            TunType | TunPort | TunNoCsum | TunCsum | TunRemCsum => ' ',
            _ => 'x',
        },
        Cmd::DelDest => match opt {
            Service | Server => '+',
            _ => 'x',
        },
        Cmd::Save => match opt {
            Numeric | Origin => ' ',
            _ => 'x',
        },
        Cmd::Extra(_) => match opt {
            Numeric => ' ',
            _ => 'x',
        },
        Cmd::Zero | Cmd::GetLaddr => match opt {
            Service => ' ',
            _ => 'x',
        },
        Cmd::AddLaddr | Cmd::DelLaddr => match opt {
            Service | Laddr | Ifname => '+',
            _ => 'x',
        },
        Cmd::Flush | Cmd::Timeout | Cmd::Restore | Cmd::Help | Cmd::Version => 'x',
    }
}

/// ipvsadm 1.31's checks of the tunnel options of `-a`/`-e`: only with
/// `-i`, then its `tunnel_types_v_options` table (tun-port, tun-nocsum,
/// tun-csum, tun-remcsum; '+' required, 'x' illegal, '1' one of):
/// ipip `x x x x`, gue `+ 1 1 1`, gre `x 1 1 x`.
fn tunnel_opt_check(fwd: Forward, t: &Tunnel, options: u32) -> Result<(), AdmError> {
    let tun_opts = [
        Opt::TunType,
        Opt::TunPort,
        Opt::TunNoCsum,
        Opt::TunCsum,
        Opt::TunRemCsum,
    ];
    if fwd != Forward::Tunnel && tun_opts.iter().any(|o| options & o.bit() != 0) {
        return Err(AdmError::usage(
            "Tunnel options conflict with forward method",
        ));
    }
    let table: [char; 4] = match t.kind {
        TunType::Ipip => ['x', 'x', 'x', 'x'],
        TunType::Gue => ['+', '1', '1', '1'],
        TunType::Gre => ['x', '1', '1', 'x'],
    };
    let name = t.kind.name();
    let mut last: Option<Opt> = None;
    let checked = [Opt::TunPort, Opt::TunNoCsum, Opt::TunCsum, Opt::TunRemCsum];
    for (opt, r) in checked.into_iter().zip(table) {
        if options & opt.bit() == 0 {
            if r == '+' {
                return Err(AdmError::usage(format!(
                    "You need to supply the '{}' option for the '{name}' tunnel type",
                    opt.name()
                )));
            }
        } else {
            if r == 'x' {
                return Err(AdmError::usage(format!(
                    "Illegal '{}' option with the '{name}' tunnel type",
                    opt.name()
                )));
            }
            if r == '1' {
                if let Some(prev) = last {
                    return Err(AdmError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{name}' tunnel type",
                        opt.name(),
                        prev.name()
                    )));
                }
                last = Some(opt);
            }
        }
    }
    Ok(())
}

fn check_options(cmd: Cmd, options: u32) -> Result<(), AdmError> {
    let mut first_one: Option<Opt> = None;
    for opt in OPTS {
        let r = rule(cmd, opt);
        if options & opt.bit() == 0 {
            if r == '+' {
                return Err(AdmError::usage(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    opt.name(),
                    cmd.name()
                )));
            }
        } else {
            if r == 'x' {
                return Err(AdmError::usage(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt.name(),
                    cmd.name()
                )));
            }
            if r == '1' {
                if let Some(prev) = first_one {
                    return Err(AdmError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt.name(),
                        prev.name(),
                        cmd.name()
                    )));
                }
                first_one = Some(opt);
            }
        }
    }
    Ok(())
}

/// Long option table: (name, short tag, takes an argument).
/// Arg: 0 none, 1 required, 2 optional.
const LONG: &[(&str, char, u8)] = &[
    ("add-service", 'A', 0),
    ("edit-service", 'E', 0),
    ("delete-service", 'D', 0),
    ("clear", 'C', 0),
    ("list", 'L', 0),
    ("zero", 'Z', 0),
    ("add-server", 'a', 0),
    ("edit-server", 'e', 0),
    ("delete-server", 'd', 0),
    ("set", '\u{80}', 0),
    ("help", 'h', 0),
    ("version", 'v', 0),
    ("restore", 'R', 0),
    ("save", 'S', 0),
    ("add-laddr", 'P', 0),
    ("del-laddr", 'Q', 0),
    ("get-laddr", 'G', 0),
    ("tcp-service", 't', 1),
    ("udp-service", 'u', 1),
    ("fwmark-service", 'f', 1),
    ("ipv6", '6', 0),
    ("scheduler", 's', 1),
    ("persistent", 'p', 2),
    ("netmask", 'M', 1),
    ("real-server", 'r', 1),
    ("masquerading", 'm', 0),
    ("ipip", 'i', 0),
    ("gatewaying", 'g', 0),
    ("fullnat", '\u{81}', 0),
    ("sched-flags", '\u{82}', 1),
    ("ops", 'o', 0),
    ("synproxy", 'j', 1),
    ("weight", 'w', 1),
    ("u-threshold", 'x', 1),
    ("l-threshold", 'y', 1),
    ("numeric", 'n', 0),
    ("connection", 'c', 0),
    ("timeout", '\u{83}', 0),
    ("stats", '\u{84}', 0),
    ("rate", '\u{85}', 0),
    ("thresholds", '\u{86}', 0),
    ("persistent-conn", '\u{87}', 0),
    ("nosort", '\u{88}', 0),
    ("sort", '\u{89}', 0),
    ("exact", 'X', 0),
    ("laddr", 'z', 1),
    ("ifname", 'F', 1),
    ("ports", '\u{90}', 0),
    ("neigh", '\u{91}', 0),
    ("routes", '\u{92}', 0),
    ("drops", '\u{93}', 0),
    ("workers", '\u{94}', 0),
    ("origin", '\u{95}', 0),
    ("tun-info", '\u{a0}', 0),
    ("tun-type", '\u{a1}', 1),
    ("tun-port", '\u{a2}', 1),
    ("tun-nocsum", '\u{a3}', 0),
    ("tun-csum", '\u{a4}', 0),
    ("tun-remcsum", '\u{a5}', 0),
    ("toa", '\u{b0}', 0),
    ("proxy-protocol", '\u{a6}', 1),
];

/// Short options: (char, takes argument: 0 none, 1 required, 2 optional).
/// `-b` is resolved by the command (sched-flags on -A/-E, fullnat otherwise).
fn short_arg(c: char, cmd: Option<Cmd>) -> Option<u8> {
    Some(match c {
        'A' | 'E' | 'D' | 'C' | 'L' | 'l' | 'Z' | 'a' | 'e' | 'd' | 'h' | 'v' | 'R' | 'S' | 'P'
        | 'Q' | 'G' | 'm' | 'i' | 'g' | 'n' | 'c' | 'X' | 'o' => 0,
        '6' => 0,
        'f' => 1,
        't' | 'u' | 's' | 'M' | 'r' | 'w' | 'x' | 'y' | 'z' | 'F' | 'j' => 1,
        'p' => 2,
        'b' => {
            if matches!(cmd, Some(Cmd::Add | Cmd::Edit)) {
                1
            } else {
                0
            }
        }
        _ => return None,
    })
}

fn tag_command(tag: char) -> Option<Cmd> {
    Some(match tag {
        'A' => Cmd::Add,
        'E' => Cmd::Edit,
        'D' => Cmd::Del,
        'C' => Cmd::Flush,
        'L' | 'l' => Cmd::List,
        'Z' => Cmd::Zero,
        'a' => Cmd::AddDest,
        'e' => Cmd::EditDest,
        'd' => Cmd::DelDest,
        '\u{80}' => Cmd::Timeout,
        'h' => Cmd::Help,
        'v' => Cmd::Version,
        'R' => Cmd::Restore,
        'S' => Cmd::Save,
        'P' => Cmd::AddLaddr,
        'Q' => Cmd::DelLaddr,
        'G' => Cmd::GetLaddr,
        '\u{90}' => Cmd::Extra(Extra::Ports),
        '\u{91}' => Cmd::Extra(Extra::Neigh),
        '\u{92}' => Cmd::Extra(Extra::Routes),
        '\u{93}' => Cmd::Extra(Extra::Drops),
        '\u{94}' => Cmd::Extra(Extra::Workers),
        _ => return None,
    })
}

/// One option occurrence after tokenizing.
struct Occ {
    tag: char,
    arg: Option<String>,
}

/// A popt error: ipvsadm prints it and returns -1 (255), except on the
/// very first option, where it only prints the "Try ..." hint.
fn popt_error(seen: &[Occ], message: String) -> AdmError {
    if seen.is_empty() {
        AdmError::tryhelp()
    } else {
        AdmError {
            message,
            status: 255,
        }
    }
}

/// Splits argv into option occurrences and positional arguments, popt-style.
fn tokenize<S: AsRef<str>>(args: &[S]) -> Result<(Vec<Occ>, Vec<String>), AdmError> {
    let mut occs = Vec::new();
    let mut rest = Vec::new();
    let mut cmd: Option<Cmd> = None;
    let mut i = 0;
    let mut only_positional = false;
    while i < args.len() {
        let tok = args[i].as_ref();
        i += 1;
        if only_positional || tok == "-" || !tok.starts_with('-') {
            rest.push(tok.to_string());
            continue;
        }
        if tok == "--" {
            only_positional = true;
            continue;
        }
        if let Some(long) = tok.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            let Some(&(_, tag, kind)) = LONG.iter().find(|(n, _, _)| *n == name) else {
                return Err(popt_error(&occs, format!("{tok}: unknown option")));
            };
            let arg = match (kind, inline) {
                (0, Some(_)) => {
                    return Err(popt_error(
                        &occs,
                        format!("{tok}: option does not take an argument"),
                    ))
                }
                (0, None) => None,
                (_, Some(v)) => Some(v),
                (1, None) => {
                    if i < args.len() {
                        i += 1;
                        Some(args[i - 1].as_ref().to_string())
                    } else {
                        return Err(popt_error(&occs, format!("{tok}: missing argument")));
                    }
                }
                (_, None) => {
                    if i < args.len() && !args[i].as_ref().starts_with('-') {
                        i += 1;
                        Some(args[i - 1].as_ref().to_string())
                    } else {
                        None
                    }
                }
            };
            if cmd.is_none() {
                cmd = tag_command(tag);
            }
            occs.push(Occ { tag, arg });
            continue;
        }
        // A cluster of short options.
        let chars: Vec<char> = tok[1..].chars().collect();
        let mut k = 0;
        while k < chars.len() {
            let c = chars[k];
            k += 1;
            let Some(kind) = short_arg(c, cmd) else {
                return Err(popt_error(&occs, format!("-{c}: unknown option")));
            };
            if cmd.is_none() {
                cmd = tag_command(c);
            }
            let tag = match c {
                'b' if kind == 1 => '\u{82}',
                'b' => '\u{81}',
                _ => c,
            };
            let arg = if kind == 0 {
                None
            } else if k < chars.len() {
                let v: String = chars[k..].iter().collect();
                k = chars.len();
                Some(v)
            } else if i < args.len() && (kind == 1 || !args[i].as_ref().starts_with('-')) {
                i += 1;
                Some(args[i - 1].as_ref().to_string())
            } else if kind == 1 {
                return Err(popt_error(&occs, format!("-{c}: missing argument")));
            } else {
                None
            };
            occs.push(Occ { tag, arg });
        }
    }
    Ok((occs, rest))
}

/// ipvsadm's `string_to_number`: decimal, whole string, within bounds.
fn number(s: &str, min: u64, max: u64) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (min..=max).contains(&n).then_some(n)
}

fn parse_timeout(s: &str, min: u32) -> Result<u32, AdmError> {
    number(s, u64::from(min), u64::from(MAX_TIMEOUT))
        .map(|n| n as u32)
        .ok_or_else(|| AdmError::usage(format!("invalid timeout value `{s}' specified")))
}

/// Parses `host[:port]`, `[v6]:port` or a bare IPv6 address, numerically.
/// Returns the address and the port when one was given.
pub fn parse_addr_port(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if s.is_empty() || s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some(inner) = s.strip_prefix('[') {
        let (a, p) = inner.split_once(']')?;
        let ip: Ipv6Addr = a.parse().ok()?;
        if p.is_empty() {
            // ipvsadm insists on a port after `]`; rvs also takes `[v6]`.
            return Some((IpAddr::V6(ip), None));
        }
        let p = p.strip_prefix(':')?;
        return Some((IpAddr::V6(ip), Some(number(p, 0, 65535)? as u16)));
    }
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        return Some((IpAddr::V6(ip), None));
    }
    match s.rsplit_once(':') {
        Some((a, p)) => {
            let ip: Ipv4Addr = a.parse().ok()?;
            Some((IpAddr::V4(ip), Some(number(p, 0, 65535)? as u16)))
        }
        None => Some((IpAddr::V4(s.parse().ok()?), None)),
    }
}

/// Parses an argument vector (without the program name) in ipvsadm syntax.
/// An empty vector lists everything, as ipvsadm does.
pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Command, AdmError> {
    if args.is_empty() {
        return Ok(Command::List(ListOptions::default()));
    }
    if let Some(c) = parse_sync(args)? {
        return Ok(Command::Sync(c));
    }
    let (occs, rest) = tokenize(args)?;
    let Some(first) = occs.first() else {
        return Err(AdmError::tryhelp());
    };
    let Some(cmd) = tag_command(first.tag) else {
        return Err(AdmError::tryhelp());
    };

    let mut options = 0u32;
    let mut set = |o: Opt| -> Result<(), AdmError> {
        if options & o.bit() != 0 {
            return Err(AdmError::usage(format!(
                "multiple '{}' options specified",
                o.name()
            )));
        }
        options |= o.bit();
        Ok(())
    };

    let mut proto = Protocol::Tcp;
    let mut vip: Option<(IpAddr, Option<u16>)> = None;
    // -f MARK and -6 (after -f, as ipvsadm insists)
    let mut fwmark: Option<(u32, bool)> = None;
    let mut sched: Option<String> = None;
    let mut flag_names: Vec<String> = Vec::new();
    let mut persistent: Option<u32> = None;
    let mut ops = false;
    let mut synproxy = false;
    let mut toa = false;
    let mut proxy_protocol = None;
    let mut mask_arg: Option<String> = None;
    let mut rip: Option<(IpAddr, Option<u16>)> = None;
    let mut forward: Option<Forward> = None;
    let mut weight = None;
    let mut uthr = None;
    let mut lthr = None;
    let mut list = ListOptions::default();
    let mut laddr: Option<IpAddr> = None;
    let mut ifname: Option<String> = None;
    let mut tunnel = Tunnel::default();

    for (n, occ) in occs.iter().enumerate() {
        let arg = occ.arg.clone().unwrap_or_default();
        if n > 0 && tag_command(occ.tag).is_some() {
            return Err(AdmError::usage("multiple commands specified"));
        }
        match occ.tag {
            't' | 'u' => {
                set(Opt::Service)?;
                proto = if occ.tag == 't' {
                    Protocol::Tcp
                } else {
                    Protocol::Udp
                };
                vip = Some(parse_addr_port(&arg).ok_or_else(|| {
                    AdmError::usage("illegal virtual server address[:port] specified")
                })?);
            }
            'f' => {
                set(Opt::Service)?;
                let m = number(&arg, 1, u64::from(u32::MAX)).ok_or_else(|| {
                    AdmError::usage(format!("invalid fwmark value `{arg}' specified"))
                })?;
                fwmark = Some((m as u32, false));
            }
            '6' => match fwmark.as_mut() {
                Some(f) => f.1 = true,
                None => return Err(AdmError::usage("-6 used before -f")),
            },
            's' => {
                set(Opt::Scheduler)?;
                sched = Some(arg);
            }
            '\u{82}' => {
                set(Opt::SchedFlags)?;
                flag_names = arg.split(',').map(str::to_string).collect();
            }
            'p' => {
                set(Opt::Persistent)?;
                persistent = Some(match &occ.arg {
                    Some(a) => parse_timeout(a, 1)?,
                    None => DEFAULT_PERSISTENT_TIMEOUT,
                });
            }
            'o' => {
                set(Opt::Ops)?;
                ops = true;
            }
            // DPVS's ipvsadm: `-j enable|disable`
            'j' => {
                set(Opt::Synproxy)?;
                synproxy = match occ.arg.as_deref() {
                    Some("enable") => true,
                    Some("disable") => false,
                    _ => return Err(AdmError::usage("synproxy switch must be enable or disable")),
                };
            }
            '\u{b0}' => {
                set(Opt::Toa)?;
                toa = true;
            }
            '\u{a6}' => {
                // DPVS's --proxy-protocol v1|v2|disable
                set(Opt::ProxyProtocol)?;
                proxy_protocol = if arg.eq_ignore_ascii_case("disable") {
                    None
                } else {
                    Some(ProxyProtocol::from_name(&arg).ok_or_else(|| {
                        AdmError::usage(format!(
                            "invalid proxy-protocol `{arg}' specified (v1, v2 or disable)"
                        ))
                    })?)
                };
            }
            'M' => {
                set(Opt::Netmask)?;
                mask_arg = Some(arg);
            }
            'r' => {
                set(Opt::Server)?;
                rip = Some(parse_addr_port(&arg).ok_or_else(|| {
                    AdmError::usage("illegal real server address[:port] specified")
                })?);
            }
            'm' | 'i' | 'g' | '\u{81}' => {
                set(Opt::Forward)?;
                forward = Some(match occ.tag {
                    'm' => Forward::Masq,
                    'i' => Forward::Tunnel,
                    'g' => Forward::Route,
                    _ => Forward::FullNat,
                });
            }
            'w' => {
                set(Opt::Weight)?;
                weight = Some(
                    number(&arg, 0, 65535)
                        .ok_or_else(|| AdmError::usage("illegal weight specified"))?
                        as u32,
                );
            }
            'x' => {
                set(Opt::UThreshold)?;
                uthr = Some(
                    number(&arg, 0, i32::MAX as u64)
                        .ok_or_else(|| AdmError::usage("illegal u_threshold specified"))?
                        as u32,
                );
            }
            'y' => {
                set(Opt::LThreshold)?;
                lthr = Some(
                    number(&arg, 0, i32::MAX as u64)
                        .ok_or_else(|| AdmError::usage("illegal l_threshold specified"))?
                        as u32,
                );
            }
            'n' => {
                set(Opt::Numeric)?;
                list.numeric = true;
            }
            'c' => {
                set(Opt::Connection)?;
                list.connections = true;
            }
            '\u{83}' => {
                set(Opt::Timeout)?;
                list.timeout = true;
            }
            '\u{84}' => {
                set(Opt::Stats)?;
                list.stats = true;
            }
            '\u{85}' => {
                set(Opt::Rate)?;
                list.rate = true;
            }
            '\u{86}' => {
                set(Opt::Thresholds)?;
                list.thresholds = true;
            }
            '\u{87}' => {
                set(Opt::PersistentConn)?;
                list.persistent_conn = true;
            }
            '\u{88}' => {
                set(Opt::NoSort)?;
                list.nosort = true;
            }
            '\u{89}' => {}
            '\u{95}' => {
                set(Opt::Origin)?;
                list.origin = true;
            }
            'X' => {
                set(Opt::Exact)?;
                list.exact = true;
            }
            'z' => {
                set(Opt::Laddr)?;
                laddr = Some(
                    parse_addr_port(&arg)
                        .map(|(a, _)| a)
                        .ok_or_else(|| AdmError::usage("illegal local address"))?,
                );
            }
            'F' => {
                set(Opt::Ifname)?;
                ifname = Some(arg);
            }
            '\u{a0}' => {
                set(Opt::TunInfo)?;
                list.tun_info = true;
            }
            '\u{a1}' => {
                set(Opt::TunType)?;
                tunnel.kind = TunType::from_name(&arg)
                    .ok_or_else(|| AdmError::usage("illegal tunnel type specified"))?;
            }
            '\u{a2}' => {
                set(Opt::TunPort)?;
                tunnel.port = number(&arg, 1, 65535)
                    .ok_or_else(|| AdmError::usage("illegal tunnel port specified"))?
                    as u16;
            }
            '\u{a3}' => set(Opt::TunNoCsum)?,
            '\u{a4}' => {
                set(Opt::TunCsum)?;
                tunnel.csum = TunCsum::Csum;
            }
            '\u{a5}' => {
                set(Opt::TunRemCsum)?;
                tunnel.csum = TunCsum::RemCsum;
            }
            _ => {} // the command itself
        }
    }

    if cmd == Cmd::Help {
        return Ok(Command::Help);
    }
    if cmd == Cmd::Version {
        return Ok(Command::Version);
    }
    check_options(cmd, options)?;

    let timeouts = if cmd == Cmd::Timeout {
        if rest.len() < 3 {
            return Err(AdmError::usage("--set option requires 3 timeout values"));
        }
        Some(Timeouts {
            tcp: parse_timeout(&rest[0], 0)?,
            tcp_fin: parse_timeout(&rest[1], 0)?,
            udp: parse_timeout(&rest[2], 0)?,
        })
    } else {
        None
    };
    let extra_args = if cmd == Cmd::Timeout { 3 } else { 0 };
    if let Some(x) = rest.get(extra_args) {
        return Err(AdmError::usage(format!("unexpected argument {x}")));
    }

    let key = match fwmark {
        Some((m, v6)) => Some(ServiceKey::fwmark(m, v6)),
        None => {
            vip.map(|(ip, port)| ServiceKey::new(proto, SocketAddr::new(ip, port.unwrap_or(0))))
        }
    };

    let netmask = match (&mask_arg, key) {
        (None, _) => None,
        (Some(m), Some(k)) if k.addr.is_ipv6() => match m.parse::<u8>() {
            Ok(p) if (1..=128).contains(&p) => Some(Netmask::V6(p)),
            _ => return Err(AdmError::usage("illegal ipv6 netmask specified")),
        },
        (Some(m), _) => Some(Netmask::V4(m.parse().map_err(|_| {
            AdmError::usage("illegal virtual server persistent mask specified")
        })?)),
    };

    let flags = if options & Opt::SchedFlags.bit() != 0 {
        // ipvsadm checks flags against -s, or the default scheduler (also
        // for -E: an edit without -s makes the service wlc).
        let against = sched.as_deref().unwrap_or(DEFAULT_SCHEDULER.name());
        let mut f = SchedFlags::default();
        for name in &flag_names {
            f.set(name, against).map_err(AdmError::usage)?;
        }
        Some(f)
    } else {
        None
    };

    let need_key = || key.ok_or_else(AdmError::tryhelp);
    Ok(match cmd {
        Cmd::Add | Cmd::Edit => {
            let k = need_key()?;
            if k.addr.port() == 0 && persistent.is_none() && !k.is_fwmark() {
                return Err(AdmError::usage(
                    "Zero port specified for non-persistent service",
                ));
            }
            // ipvsadm 1.31 refuses it the same way (fwmark services, which
            // may carry UDP, are not supported by rvsadm).
            if ops && k.proto != Protocol::Udp {
                return Err(AdmError::usage(
                    "One-Packet Scheduling is only for UDP virtual services",
                ));
            }
            if synproxy && k.proto != Protocol::Tcp && !k.is_fwmark() {
                return Err(AdmError::usage(crate::model::SYNPROXY_TCP_ONLY));
            }
            if toa && k.proto != Protocol::Tcp {
                return Err(AdmError::usage("TOA is only for TCP virtual services"));
            }
            if proxy_protocol.is_some() && (k.proto != Protocol::Tcp || k.is_fwmark()) {
                return Err(AdmError::usage(
                    "Proxy Protocol is only for TCP virtual services",
                ));
            }
            // -E replaces like -A: what is not given takes the default
            let spec = ServiceSpec {
                key: k,
                scheduler: Some(sched.unwrap_or_else(|| DEFAULT_SCHEDULER.name().into())),
                flags,
                persistent,
                netmask,
                ops,
                synproxy,
                toa,
                proxy_protocol,
            };
            if cmd == Cmd::Add {
                Command::AddService(spec)
            } else {
                Command::EditService(spec)
            }
        }
        Cmd::Del => Command::DeleteService(need_key()?),
        Cmd::Flush => Command::Clear,
        Cmd::List => {
            if (list.connections || list.timeout)
                && (list.stats || list.rate || list.thresholds || list.origin)
                || (list.timeout && list.persistent_conn)
            {
                return Err(AdmError::usage("options conflicts in the list command"));
            }
            list.service = key;
            Command::List(list)
        }
        Cmd::AddDest | Cmd::EditDest | Cmd::DelDest => {
            let k = need_key()?;
            let (ip, port) = rip.ok_or_else(AdmError::tryhelp)?;
            // No port: the virtual port. DR and TUN always use the virtual port.
            let mut port = port.unwrap_or(k.addr.port());
            // -e replaces like -a: ipvsadm starts every command from
            // weight 1, -g and no thresholds; -d takes the port as given
            let fwd = forward.unwrap_or(Forward::Route);
            if fwd.keeps_port() && cmd != Cmd::DelDest {
                port = k.addr.port();
            }
            let addr = SocketAddr::new(ip, port);
            if cmd == Cmd::DelDest {
                Command::DeleteServer(k, addr)
            } else {
                if ip.is_ipv4() != k.addr.is_ipv4() && fwd != Forward::Tunnel {
                    return Err(AdmError::usage(DIFFERENT_FAMILY));
                }
                tunnel_opt_check(fwd, &tunnel, options)?;
                let spec = RealSpec {
                    addr,
                    forward: Some(fwd),
                    weight: Some(weight.unwrap_or(1)),
                    u_threshold: Some(uthr.unwrap_or(0)),
                    l_threshold: Some(lthr.unwrap_or(0)),
                    tunnel,
                };
                if cmd == Cmd::AddDest {
                    Command::AddServer(k, spec)
                } else {
                    Command::EditServer(k, spec)
                }
            }
        }
        Cmd::Timeout => Command::SetTimeouts(timeouts.unwrap_or_default()),
        Cmd::Restore => Command::Restore,
        Cmd::Save => Command::Save {
            numeric: list.numeric,
            origin: list.origin,
        },
        Cmd::Zero => Command::Zero(key),
        Cmd::AddLaddr | Cmd::DelLaddr => {
            let k = need_key()?;
            let a = laddr.ok_or_else(AdmError::tryhelp)?;
            if cmd == Cmd::AddLaddr {
                Command::AddLaddr(
                    k,
                    LocalAddr {
                        addr: a,
                        ifname: ifname.unwrap_or_default(),
                    },
                )
            } else {
                Command::DelLaddr(k, a)
            }
        }
        Cmd::GetLaddr => Command::GetLaddr(key),
        Cmd::Extra(e) => Command::Extra(e),
        Cmd::Help => Command::Help,
        Cmd::Version => Command::Version,
    })
}

/// Splits one `-R` input line into arguments (whitespace, with simple
/// double or single quotes). Blank lines and `#` comments give nothing.
pub fn split_line(line: &str) -> Vec<String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    // `ipvsadm -S` output may be fed with the program name in front.
    if out
        .first()
        .is_some_and(|w| w == "ipvsadm" || w == PROGRAM || w.ends_with("/ipvsadm"))
    {
        out.remove(0);
    }
    out
}

/// Applies one rule command to the model.
pub fn apply(model: &mut Model, cmd: &Command) -> Result<(), AdmError> {
    match cmd {
        Command::AddService(s) => model.add_service(s),
        Command::EditService(s) => model.edit_service(s),
        Command::DeleteService(k) => model.delete_service(k),
        Command::AddServer(k, r) => model.add_real(k, r),
        Command::EditServer(k, r) => model.edit_real(k, r),
        Command::DeleteServer(k, a) => model.delete_real(k, *a),
        Command::Clear => {
            model.clear();
            Ok(())
        }
        Command::Zero(k) => model.zero(k.as_ref()),
        Command::SetTimeouts(t) => model.set_timeouts(*t),
        Command::AddLaddr(k, l) => model.add_laddr(k, l.clone()),
        Command::DelLaddr(k, a) => model.del_laddr(k, *a),
        _ => {
            return Err(AdmError {
                message: "not a rule command".into(),
                status: 255,
            })
        }
    }
    .map_err(AdmError::op)
}

/// `-R`: reads ipvsadm command lines (as `-S` writes them), parses and
/// applies all of them to a copy of the model, and replaces the model only
/// if every line succeeded. Errors name the line: "line 3: Service already
/// exists". Returns the number of commands applied.
///
/// This is rvs's choice, not ipvsadm's: ipvsadm applies each line as it
/// reads it, so the lines before a bad one stay applied (a syntax error
/// stops there; a refused operation is reported and the next line runs).
/// All-or-nothing keeps the rule that nothing is ever half-applied, and
/// lets `-R` replace a rule set atomically (`-C` as its first line).
pub fn restore(model: &mut Model, input: &str) -> Result<usize, AdmError> {
    let mut cmds = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let args = split_line(line);
        if args.is_empty() {
            continue;
        }
        let at = |e: AdmError| AdmError {
            message: format!("line {}: {}", n + 1, e.message),
            status: e.status,
        };
        let cmd = parse(&args).map_err(at)?;
        if !cmd.is_rule() {
            return Err(at(AdmError::usage(
                "only rule commands (-A -E -D -a -e -d -C -Z --set) can be restored",
            )));
        }
        cmds.push((n + 1, cmd));
    }
    let mut next = model.clone();
    for (n, cmd) in &cmds {
        apply(&mut next, cmd).map_err(|e| AdmError {
            message: format!("line {n}: {}", e.message),
            status: e.status,
        })?;
    }
    *model = next;
    Ok(cmds.len())
}

/// What executing a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Text for stdout (may be empty).
    Text(String),
    /// An rvs listing the daemon renders from runtime state.
    Extra(Extra),
}

/// Runs one command: rule commands change `model`, listings render it.
/// `conns` feeds `-L -c`; `stdin` is the input for `-R`.
pub fn execute(
    model: &mut Model,
    cmd: &Command,
    conns: &[ConnEntry],
    stdin: &str,
) -> Result<Outcome, AdmError> {
    let text = match cmd {
        Command::List(o) => list::list(model, o, conns)?,
        Command::Save { origin, .. } => list::save_with(model, *origin),
        Command::Restore => {
            restore(model, stdin)?;
            String::new()
        }
        Command::GetLaddr(k) => list::laddrs(model, k.as_ref())?,
        Command::Extra(e) => return Ok(Outcome::Extra(*e)),
        // answered by rvsd (the daemon holds the sync threads)
        Command::Sync(_) => String::new(),
        Command::Help => usage(),
        Command::Version => format!(
            "{PROGRAM} {} (ipvsadm-compatible)\n",
            env!("CARGO_PKG_VERSION")
        ),
        rule => {
            apply(model, rule)?;
            String::new()
        }
    };
    Ok(Outcome::Text(text))
}

/// The `-h` text.
pub fn usage() -> String {
    let p = PROGRAM;
    format!(
        "Usage:
  {p} -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask] [-o] [-b sched-flags]
  {p} -D -t|u service-address
  {p} -C
  {p} -R
  {p} -S [-n] [--origin]
  {p} -a|e -t|u service-address -r server-address [options]
  {p} -d -t|u service-address -r server-address
  {p} -L|l [options]
  {p} -Z [-t|u service-address]
  {p} --set tcp tcpfin udp
  {p} --add-laddr|--del-laddr -t|u service-address -z local-address -F ifname
  {p} --get-laddr [-t|u service-address]
  {p} --ports|--neigh|--routes|--drops|--workers
  {p} --start-daemon master|backup [--mcast-interface ifname] [--syncid sid]
  {p} --stop-daemon master|backup
  {p} -L --daemon | --sync-stats
  {p} -h\n
Options:
  --tcp-service  -t service-address   service-address is host[:port]
  --udp-service  -u service-address   service-address is host[:port]
  --fwmark-service  -f fwmark         fwmark is an integer greater than zero
                                      (rvs: marks come from [[fwmark]] rules)
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of {scheds},
                                      the default scheduler is wlc.
  --sched-flags  -b flags             sh-fallback, sh-port, mh-fallback, mh-port
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --ops          -o                   one-packet scheduling (UDP services)
  --synproxy     -j enable|disable    TCP SYN proxy (DPVS; masq/fullnat real servers)
  --toa                               TOA: client address as TCP option 254
                                      (FullNAT TCP services, DPVS's toa module)
  --proxy-protocol v1|v2|disable      Proxy Protocol header to FullNAT real servers (TCP services)
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --fullnat      -b                   fullnat (with -a|-e)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --laddr        -z local-address     FullNAT local address
  --ifname       -F ifname            port of the local address
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --numeric      -n                   numeric output of addresses and ports
  --origin                            (rvs) with -L or -S: who made each service,
                                      config (the file) or rvsadm

Differences from ipvsadm:
  -R applies all lines or none: a bad line (its number is printed) leaves
     the running rules untouched; ipvsadm applies line by line and keeps
     the lines before a bad one. A -C first line replaces the rule set.
  A reload (SIGHUP) replaces only the services the config file lists;
     services made with rvsadm stay (see --origin).
  -E and -e replace, as in ipvsadm: options not given take their defaults
     (-E: wlc, not persistent; -e: -g, weight 1, no thresholds).\n",
        scheds = crate::model::Scheduler::list()
    )
}

#[cfg(test)]
mod tests;
