//! The operator-visible model: virtual services, real servers, timeouts,
//! counters and connection entries, as `ipvsadm` shows them.
//!
//! Every operation validates first and mutates only when everything is
//! valid, so a rejected command never leaves the model half-changed. Errors
//! carry the same text `ipvsadm` prints for the kernel's answer.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Longest timeout `ipvsadm` accepts, in seconds (31 days).
pub const MAX_TIMEOUT: u32 = 86400 * 31;
/// Persistence timeout `-p` uses when given without a value, in seconds:
/// ipvsadm's `IPVS_SVC_PERSISTENT_TIMEOUT` (6 × 60; the man page's 300 is
/// out of date, keepalived documents 360 too).
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Scheduler a service gets when `-s` is not given.
pub const DEFAULT_SCHEDULER: Scheduler = Scheduler::Wlc;
/// Largest real-server weight.
pub const MAX_WEIGHT: u32 = 65535;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP (`-t`).
    Tcp,
    /// UDP (`-u`).
    Udp,
}

impl Protocol {
    /// Upper-case name used in listings ("TCP", "UDP").
    pub fn upper(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
    /// Lower-case name used in configs and metrics labels' sources ("tcp").
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
    /// The `ipvsadm` switch selecting this protocol ("-t", "-u").
    pub fn switch(self) -> &'static str {
        match self {
            Protocol::Tcp => "-t",
            Protocol::Udp => "-u",
        }
    }
}

/// Forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forward {
    /// NAT (`-m`, "Masq").
    Masq,
    /// Direct routing (`-g`, "Route"), ipvsadm's default.
    Route,
    /// IPIP tunnelling (`-i`, "Tunnel").
    Tunnel,
    /// DPVS FullNAT (`-b` on a real server, "FullNat").
    FullNat,
}

impl Forward {
    /// Name in the listing's Forward column.
    pub fn column(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Route => "Route",
            Forward::Tunnel => "Tunnel",
            Forward::FullNat => "FullNat",
        }
    }
    /// The `ipvsadm` switch that selects it, as `-S` writes it.
    pub fn switch(self) -> &'static str {
        match self {
            Forward::Masq => "-m",
            Forward::Route => "-g",
            Forward::Tunnel => "-i",
            Forward::FullNat => "-b",
        }
    }
    /// Config-file name ("masq", "route", "tunnel", "fullnat").
    pub fn config_name(self) -> &'static str {
        match self {
            Forward::Masq => "masq",
            Forward::Route => "route",
            Forward::Tunnel => "tunnel",
            Forward::FullNat => "fullnat",
        }
    }
    /// Parses a config-file name; also accepts keepalived's NAT/DR/TUN.
    pub fn from_config_name(s: &str) -> Option<Forward> {
        match s {
            "masq" | "nat" | "NAT" => Some(Forward::Masq),
            "route" | "dr" | "DR" => Some(Forward::Route),
            "tunnel" | "tun" | "TUN" => Some(Forward::Tunnel),
            "fullnat" | "FNAT" => Some(Forward::FullNat),
            _ => None,
        }
    }
    /// Whether the real server must listen on the virtual port (DR, TUN).
    pub fn keeps_port(self) -> bool {
        matches!(self, Forward::Route | Forward::Tunnel)
    }
}

/// Tunnel type of a TUN real server (ipvsadm 1.31's `--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunType {
    /// IP in IP (the default).
    #[default]
    Ipip,
    /// Generic UDP Encapsulation (needs a port).
    Gue,
    /// GRE.
    Gre,
}

impl TunType {
    /// ipvsadm's name.
    pub fn name(self) -> &'static str {
        match self {
            TunType::Ipip => "ipip",
            TunType::Gue => "gue",
            TunType::Gre => "gre",
        }
    }
    /// Parses ipvsadm's name.
    pub fn from_name(s: &str) -> Option<TunType> {
        match s {
            "ipip" => Some(TunType::Ipip),
            "gue" => Some(TunType::Gue),
            "gre" => Some(TunType::Gre),
            _ => None,
        }
    }
}

/// Tunnel checksum option (`--tun-nocsum`, `--tun-csum`,
/// `--tun-remcsum`; IPVS's `tun_flags` 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunCsum {
    /// No checksum (the default).
    #[default]
    NoCsum,
    /// Checksum (GUE: UDP checksum; GRE: the GRE checksum).
    Csum,
    /// GUE remote checksum offload.
    RemCsum,
}

impl TunCsum {
    /// The ipvsadm option that sets it, without the dashes.
    pub fn option(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "tun-nocsum",
            TunCsum::Csum => "tun-csum",
            TunCsum::RemCsum => "tun-remcsum",
        }
    }
    /// The short form `--tun-info` shows ("-c", "+c", "r+c").
    pub fn info(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "-c",
            TunCsum::Csum => "+c",
            TunCsum::RemCsum => "r+c",
        }
    }
    /// The config-file name ("nocsum", "csum", "remcsum").
    pub fn config_name(self) -> &'static str {
        match self {
            TunCsum::NoCsum => "nocsum",
            TunCsum::Csum => "csum",
            TunCsum::RemCsum => "remcsum",
        }
    }
    /// Parses a config-file name (also keepalived's).
    pub fn from_config_name(s: &str) -> Option<TunCsum> {
        match s {
            "nocsum" => Some(TunCsum::NoCsum),
            "csum" => Some(TunCsum::Csum),
            "remcsum" => Some(TunCsum::RemCsum),
            _ => None,
        }
    }
}

/// How a TUN real server is tunnelled to: type, GUE port, checksum.
/// The default (ipip, no port, no checksum) is also what a real server of
/// another forwarding method has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Tunnel {
    /// Tunnel type.
    pub kind: TunType,
    /// GUE's UDP destination port (0: none; GUE needs one).
    pub port: u16,
    /// Checksum option.
    pub csum: TunCsum,
}

impl Tunnel {
    /// Why this combination is refused, in ipvsadm 1.31's words and by its
    /// table (gue: port required, one checksum option; gre: no port, no
    /// remcsum; ipip: no options); `None` when it is valid.
    pub fn problem(&self) -> Option<String> {
        let t = self.kind.name();
        match self.kind {
            TunType::Gue if self.port == 0 => Some(format!(
                "You need to supply the 'tun-port' option for the '{t}' tunnel type"
            )),
            TunType::Ipip | TunType::Gre if self.port != 0 => Some(format!(
                "Illegal 'tun-port' option with the '{t}' tunnel type"
            )),
            TunType::Ipip if self.csum != TunCsum::NoCsum => Some(format!(
                "Illegal '{}' option with the '{t}' tunnel type",
                self.csum.option()
            )),
            TunType::Gre if self.csum == TunCsum::RemCsum => Some(format!(
                "Illegal 'tun-remcsum' option with the '{t}' tunnel type"
            )),
            _ => None,
        }
    }

    /// `--tun-info`'s column: "ipip", "gue:6080:-c", "gre:+c".
    pub fn info(&self) -> String {
        match self.kind {
            TunType::Ipip => "ipip".into(),
            TunType::Gue => format!("gue:{}:{}", self.port, self.csum.info()),
            TunType::Gre => format!("gre:{}", self.csum.info()),
        }
    }

    /// The options `-S` writes after `-w` (ipvsadm 1.31's
    /// `print_tunnel_rule`).
    pub fn rule(&self) -> String {
        match self.kind {
            TunType::Ipip => "--tun-type ipip".into(),
            TunType::Gue => format!(
                "--tun-type gue --tun-port {} --{}",
                self.port,
                self.csum.option()
            ),
            TunType::Gre => format!("--tun-type gre --{}", self.csum.option()),
        }
    }

    /// What the dataplane sends. Remote checksum offload only changes
    /// packets whose inner checksum is left to the receiver, which a
    /// forwarded packet's never is: IPVS then sends what `--tun-nocsum`
    /// sends, and so does rvs.
    pub fn encap(&self) -> dataplane::forward::TunEncap {
        use dataplane::forward::TunEncap;
        match self.kind {
            TunType::Ipip => TunEncap::Ipip,
            TunType::Gue => TunEncap::Gue {
                port: self.port,
                csum: self.csum == TunCsum::Csum,
            },
            TunType::Gre => TunEncap::Gre {
                csum: self.csum == TunCsum::Csum,
            },
        }
    }
}

/// LVS scheduling algorithms: the dataplane's own enum, so the model and
/// the workers share one list and nothing maps one to the other by name.
pub use dataplane::sched::SchedKind as Scheduler;

/// Scheduler flags (`ipvsadm --sched-flags`): only meaningful for sh and mh.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SchedFlags {
    /// sh: pick another server when the hashed one is unavailable.
    pub sh_fallback: bool,
    /// sh: include the source port in the hash.
    pub sh_port: bool,
    /// mh: pick another server when the hashed one is unavailable.
    pub mh_fallback: bool,
    /// mh: include the source port in the hash.
    pub mh_port: bool,
}

impl SchedFlags {
    /// True when no flag is set.
    pub fn is_empty(&self) -> bool {
        *self == SchedFlags::default()
    }

    /// Names of the set flags, in ipvsadm's order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.sh_fallback {
            v.push("sh-fallback");
        }
        if self.sh_port {
            v.push("sh-port");
        }
        if self.mh_fallback {
            v.push("mh-fallback");
        }
        if self.mh_port {
            v.push("mh-port");
        }
        v
    }

    /// Sets the flag called `name`; checks it suits `sched`.
    /// Errors are ipvsadm's: "invalid scheduler flag `x'" and
    /// "incompatible scheduler flag `x'".
    pub fn set(&mut self, name: &str, sched: &str) -> Result<(), String> {
        let (slot, needs) = match name {
            "sh-fallback" => (&mut self.sh_fallback, "sh"),
            "sh-port" => (&mut self.sh_port, "sh"),
            "mh-fallback" => (&mut self.mh_fallback, "mh"),
            "mh-port" => (&mut self.mh_port, "mh"),
            _ => return Err(format!("invalid scheduler flag `{name}'")),
        };
        if sched != needs {
            return Err(format!("incompatible scheduler flag `{name}'"));
        }
        *slot = true;
        Ok(())
    }

    /// Whether every set flag belongs to `sched`.
    pub fn fits(&self, sched: Scheduler) -> bool {
        let sh = self.sh_fallback || self.sh_port;
        let mh = self.mh_fallback || self.mh_port;
        (!sh || sched == Scheduler::Sh) && (!mh || sched == Scheduler::Mh)
    }
}

/// Persistence granularity: an IPv4 netmask or an IPv6 prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// IPv4 mask, 255.255.255.255 by default.
    V4(Ipv4Addr),
    /// IPv6 prefix length 1..=128, 128 by default.
    V6(u8),
}

impl Netmask {
    /// The default (one client address per entry) for an address family.
    pub fn full_for(addr: IpAddr) -> Netmask {
        match addr {
            IpAddr::V4(_) => Netmask::V4(Ipv4Addr::BROADCAST),
            IpAddr::V6(_) => Netmask::V6(128),
        }
    }
    /// Whether this is the default mask (ipvsadm omits it in listings).
    pub fn is_full(&self) -> bool {
        matches!(self, Netmask::V4(m) if *m == Ipv4Addr::BROADCAST)
            || matches!(self, Netmask::V6(128))
    }
    /// Whether the mask suits the family of `addr`.
    pub fn same_family(&self, addr: IpAddr) -> bool {
        matches!(
            (self, addr),
            (Netmask::V4(_), IpAddr::V4(_)) | (Netmask::V6(_), IpAddr::V6(_))
        )
    }
}

impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Netmask::V4(m) => write!(f, "{m}"),
            Netmask::V6(p) => write!(f, "{p}"),
        }
    }
}

/// What identifies a virtual service: protocol, VIP and port, or a
/// firewall mark and address family (`ipvsadm -f MARK [-6]`), as IPVS's
/// `ip_vs_service_user` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// TCP or UDP (TCP for fwmark services, as ipvsadm sets it; unused).
    pub proto: Protocol,
    /// Virtual IP and port; for a fwmark service the unspecified address
    /// of its family and port 0.
    pub addr: SocketAddr,
    /// Firewall mark, 0 for an address service.
    pub fwmark: u32,
}

impl ServiceKey {
    /// An address service (protocol, VIP:port).
    pub fn new(proto: Protocol, addr: SocketAddr) -> ServiceKey {
        ServiceKey {
            proto,
            addr,
            fwmark: 0,
        }
    }

    /// The fwmark service of `mark` for IPv4, or IPv6 with `v6`.
    pub fn fwmark(mark: u32, v6: bool) -> ServiceKey {
        let ip = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        ServiceKey {
            proto: Protocol::Tcp,
            addr: SocketAddr::new(ip, 0),
            fwmark: mark,
        }
    }

    /// True for a fwmark service.
    pub fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_fwmark() {
            let fam = if self.addr.is_ipv6() { " IPv6" } else { "" };
            return write!(f, "fwmark {}{fam}", self.fwmark);
        }
        write!(f, "{} {}", self.proto.lower(), self.addr)
    }
}

/// Traffic counters, as `ipvsadm --stats` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets client → server.
    pub inpkts: u64,
    /// Packets server → client.
    pub outpkts: u64,
    /// Bytes client → server.
    pub inbytes: u64,
    /// Bytes server → client.
    pub outbytes: u64,
}

impl Stats {
    /// Adds `o` to `self`, saturating.
    pub fn add(&mut self, o: &Stats) {
        self.conns = self.conns.saturating_add(o.conns);
        self.inpkts = self.inpkts.saturating_add(o.inpkts);
        self.outpkts = self.outpkts.saturating_add(o.outpkts);
        self.inbytes = self.inbytes.saturating_add(o.inbytes);
        self.outbytes = self.outbytes.saturating_add(o.outbytes);
    }
}

/// Rates per second, as `ipvsadm --rate` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rates {
    /// Connections per second.
    pub cps: u64,
    /// Packets per second client → server.
    pub inpps: u64,
    /// Packets per second server → client.
    pub outpps: u64,
    /// Bytes per second client → server.
    pub inbps: u64,
    /// Bytes per second server → client.
    pub outbps: u64,
}

/// A FullNAT local address (DPVS `--add-laddr -z ADDR -F IFNAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LocalAddr {
    /// The source address used towards real servers.
    pub addr: IpAddr,
    /// The port (interface) it lives on.
    pub ifname: String,
}

/// A real server (destination) of a virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Real server address and port.
    pub addr: SocketAddr,
    /// How packets reach it.
    pub forward: Forward,
    /// Scheduling weight, 0..=65535; 0 takes no new connections.
    pub weight: u32,
    /// Upper connection threshold; 0 means none.
    pub u_threshold: u32,
    /// Lower connection threshold; 0 means none.
    pub l_threshold: u32,
    /// Tunnel type and options (TUN only; the default otherwise).
    pub tunnel: Tunnel,
    /// Established connections now (filled by the daemon).
    pub active_conns: u32,
    /// Other connections now (filled by the daemon).
    pub inact_conns: u32,
    /// Persistence templates now (filled by the daemon).
    pub persist_conns: u32,
    /// Counters since creation or the last zero.
    pub stats: Stats,
    /// Current rates.
    pub rates: Rates,
}

impl RealServer {
    /// A real server with ipvsadm's defaults: weight 1, no thresholds.
    pub fn new(addr: SocketAddr, forward: Forward) -> RealServer {
        RealServer {
            addr,
            forward,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: Tunnel::default(),
            active_conns: 0,
            inact_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Rates::default(),
        }
    }
}

/// Who made a virtual service: what a reload (SIGHUP) may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Origin {
    /// Listed in the config file: a reload sets it to the file's version,
    /// or removes it when the file no longer lists it.
    Config,
    /// Made at run time (`rvsadm -A`, `-R`): a reload leaves it alone, as
    /// keepalived leaves IPVS services it did not create.
    #[default]
    Rvsadm,
}

impl Origin {
    /// The word `-L --origin` and `-S --origin` show ("config", "rvsadm").
    pub fn name(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Rvsadm => "rvsadm",
        }
    }
}

/// A virtual service with its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Protocol, VIP and port.
    pub key: ServiceKey,
    /// Scheduling algorithm.
    pub scheduler: Scheduler,
    /// Scheduler flags.
    pub flags: SchedFlags,
    /// Persistence timeout in seconds, when persistent.
    pub persistent: Option<u32>,
    /// Persistence granularity.
    pub netmask: Netmask,
    /// FullNAT local address pool.
    pub laddrs: Vec<LocalAddr>,
    /// Real servers, in insertion order.
    pub reals: Vec<RealServer>,
    /// The scheduler's sorry server: new connections go to it while no
    /// real server can take them (config `sorry_server`).
    pub sorry: Option<RealServer>,
    /// Counters since creation or the last zero.
    pub stats: Stats,
    /// Current rates.
    pub rates: Rates,
    /// Who made it (the config file or rvsadm).
    pub origin: Origin,
    /// Passive health checking on the dataplane (`[service.health]`
    /// `passive_check`).
    pub passive_check: bool,
    /// IPVS's `sloppy_tcp` (config `sloppy_tcp`): `None` is the default,
    /// on for mh over DR/TUN, off otherwise.
    pub sloppy_tcp: Option<bool>,
    /// One-packet scheduling (IPVS `IP_VS_SVC_F_ONEPACKET`: ipvsadm `-o`,
    /// config `ops`, keepalived.conf `ops`): every datagram of a UDP
    /// service is scheduled on its own and no connection entry is made.
    pub ops: bool,
    /// Proxy Protocol (config `proxy_protocol`, rvsadm `--proxy-protocol`,
    /// keepalived.conf `proxy_protocol`, as DPVS): the header the real
    /// servers get at the start of each connection's stream. TCP services
    /// with FullNAT real servers only.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// TOA (config `toa`, rvsadm `--toa`): FullNAT TCP connections carry
    /// the client's address and port to the real server as TCP option
    /// 254, DPVS's format. TCP services only; acts on FullNAT real servers.
    pub toa: bool,
    /// SYN proxy (DPVS's `IP_VS_CONN_F_SYNPROXY`: rvsadm `-j enable`,
    /// config `synproxy`): rvs answers SYNs with a cookie and opens the
    /// real-server connection on the client's valid ACK. TCP services
    /// with masq and fullnat real servers only.
    pub synproxy: bool,
}

/// Why a service refuses more than one of SYN proxy, TOA and Proxy
/// Protocol: each rewrites the start of the connection on its own, and
/// together they are not tested (their deltas and options would have to
/// compose).
pub const ONE_STREAM_FEATURE: &str =
    "synproxy, toa and proxy_protocol are not combined on one service yet: choose one";

/// Why a SYN proxy service refuses a protocol.
pub const SYNPROXY_TCP_ONLY: &str = "the SYN proxy is only for TCP virtual services";
/// Why a SYN proxy service refuses a forwarding method.
pub const SYNPROXY_FORWARD: &str =
    "the SYN proxy splices the handshake and must see the real server's replies: masq and fullnat real servers only";

/// Whether a real server forwarded by `f` can serve a SYN proxy service.
pub fn synproxy_forward(f: Forward) -> bool {
    matches!(f, Forward::Masq | Forward::FullNat)
}

/// A Proxy Protocol version (the dataplane's type).
pub use dataplane::forward::PpVersion as ProxyProtocol;

impl Service {
    /// A service with defaults: wlc, not persistent, no real servers,
    /// made by rvsadm.
    pub fn new(key: ServiceKey) -> Service {
        Service {
            key,
            scheduler: DEFAULT_SCHEDULER,
            flags: SchedFlags::default(),
            persistent: None,
            netmask: Netmask::full_for(key.addr.ip()),
            laddrs: Vec::new(),
            reals: Vec::new(),
            sorry: None,
            stats: Stats::default(),
            rates: Rates::default(),
            origin: Origin::default(),
            passive_check: false,
            sloppy_tcp: None,
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        }
    }

    /// The real server at `addr`, if any.
    pub fn real(&self, addr: SocketAddr) -> Option<&RealServer> {
        self.reals.iter().find(|r| r.addr == addr)
    }
}

/// Connection timeouts (`ipvsadm --set tcp tcpfin udp`), in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: u32,
    /// TCP after FIN.
    pub tcp_fin: u32,
    /// UDP.
    pub udp: u32,
}

impl Default for Timeouts {
    /// The Linux IPVS defaults: 900 120 300.
    fn default() -> Self {
        Timeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        }
    }
}

/// One connection, for `ipvsadm -L -c`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnEntry {
    /// TCP or UDP.
    pub proto: Protocol,
    /// Seconds until it expires.
    pub expire_secs: u32,
    /// IPVS state name (ESTABLISHED, SYN_RECV, FIN_WAIT, UDP, ...).
    pub state: String,
    /// Client address.
    pub client: SocketAddr,
    /// Virtual service address.
    pub virt: SocketAddr,
    /// Real server address.
    pub dest: SocketAddr,
    /// TCP sequence deltas (client → server stream, server → client
    /// stream; modulo 2^32 shown signed) when the connection carries an
    /// adjustment; `-L -c` then appends `seqadj in:+N out:+M`.
    pub seq_delta: Option<(i32, i32)>,
}

/// An `ipvsadm`-style error: the text ipvsadm prints for the kernel's
/// answer to an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// Adding a service that exists.
    ServiceExists,
    /// Unknown scheduler name.
    SchedulerNotFound,
    /// Editing, deleting or zeroing a service that does not exist.
    NoSuchService,
    /// A real-server or local-address operation on a missing service.
    ServiceNotDefined,
    /// Adding a real server that exists.
    DestExists,
    /// Editing or deleting a real server that does not exist.
    NoSuchDest,
    /// Adding a local address that exists.
    LaddrExists,
    /// Deleting a local address that does not exist.
    NoSuchLaddr,
    /// Any other refused request; the text says why.
    Invalid(String),
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::ServiceExists => f.write_str("Service already exists"),
            ModelError::SchedulerNotFound => f.write_str("Scheduler not found"),
            ModelError::NoSuchService => f.write_str("No such service"),
            ModelError::ServiceNotDefined => f.write_str("Service not defined"),
            ModelError::DestExists => f.write_str("Destination already exists"),
            ModelError::NoSuchDest => f.write_str("No such destination"),
            ModelError::LaddrExists => f.write_str("Local address already exists"),
            ModelError::NoSuchLaddr => f.write_str("No such Local address"),
            ModelError::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ModelError {}

/// A request to add or edit a virtual service. `None` fields take the
/// default, on add and on edit alike: `-E` replaces the service's
/// settings as IPVS does (wlc, no flags, not persistent, a full mask).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Which service.
    pub key: ServiceKey,
    /// Scheduler name, checked by the model ("Scheduler not found").
    pub scheduler: Option<String>,
    /// Scheduler flags.
    pub flags: Option<SchedFlags>,
    /// Persistence timeout.
    pub persistent: Option<u32>,
    /// Persistence granularity.
    pub netmask: Option<Netmask>,
    /// One-packet scheduling (`-o`, UDP services only).
    pub ops: bool,
    /// SYN proxy (`-j enable`, TCP services with masq/fullnat real
    /// servers only).
    pub synproxy: bool,
    /// TOA (`--toa`, TCP services only).
    pub toa: bool,
    /// Proxy Protocol (`--proxy-protocol v1|v2`; TCP services with
    /// FullNAT real servers only). `None`: off.
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// A request to add or edit a real server. `None` fields take ipvsadm's
/// default (route, weight 1, thresholds 0), on add and on edit alike: `-e`
/// replaces the real server's settings as ipvsadm does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealSpec {
    /// Real server address and port.
    pub addr: SocketAddr,
    /// Forwarding method.
    pub forward: Option<Forward>,
    /// Weight.
    pub weight: Option<u32>,
    /// Upper threshold.
    pub u_threshold: Option<u32>,
    /// Lower threshold.
    pub l_threshold: Option<u32>,
    /// Tunnel type and options (`--tun-type` ...); ipvsadm sends them with
    /// every `-a`/`-e`, the default when not given.
    pub tunnel: Tunnel,
}

/// The whole operator-visible state: what `ipvsadm -L` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// Virtual services in insertion order (listings sort them).
    pub services: Vec<Service>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Connection table size shown in the listing header ("size=").
    pub conn_table_size: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            services: Vec::new(),
            timeouts: Timeouts::default(),
            conn_table_size: 4096,
        }
    }
}

/// ipvsadm's refusal of a real server of the other address family.
pub const DIFFERENT_FAMILY: &str = "Different address family is allowed only for tunneling servers";

fn family_mismatch(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() != b.is_ipv4()
}

impl Model {
    /// An empty model.
    pub fn new() -> Model {
        Model::default()
    }

    /// The service `key`, if any.
    pub fn service(&self, key: &ServiceKey) -> Option<&Service> {
        self.services.iter().find(|s| s.key == *key)
    }

    fn index(&self, key: &ServiceKey) -> Option<usize> {
        self.services.iter().position(|s| s.key == *key)
    }

    fn check_service_fields(spec: &ServiceSpec, s: &mut Service) -> Result<(), ModelError> {
        if let Some(name) = &spec.scheduler {
            s.scheduler = Scheduler::from_name(name).ok_or(ModelError::SchedulerNotFound)?;
        }
        if let Some(fl) = spec.flags {
            s.flags = fl;
        }
        if !s.flags.fits(s.scheduler) {
            let bad = s.flags.names().join(",");
            return Err(ModelError::Invalid(format!(
                "incompatible scheduler flag `{bad}'"
            )));
        }
        if let Some(t) = spec.persistent {
            if t == 0 || t > MAX_TIMEOUT {
                return Err(ModelError::Invalid(format!(
                    "invalid timeout value `{t}' specified"
                )));
            }
            s.persistent = Some(t);
        }
        if let Some(m) = spec.netmask {
            if !m.same_family(s.key.addr.ip()) || matches!(m, Netmask::V6(p) if p == 0 || p > 128) {
                return Err(ModelError::Invalid(
                    "illegal virtual server persistent mask specified".into(),
                ));
            }
            s.netmask = m;
        }
        if s.key.addr.port() == 0 && s.persistent.is_none() && !s.key.is_fwmark() {
            return Err(ModelError::Invalid(
                "Zero port specified for non-persistent service".into(),
            ));
        }
        if spec.ops && s.key.proto != Protocol::Udp {
            return Err(ModelError::Invalid(
                "One-Packet Scheduling is only for UDP virtual services".into(),
            ));
        }
        s.ops = spec.ops;
        if spec.synproxy {
            if s.key.proto != Protocol::Tcp && !s.key.is_fwmark() {
                return Err(ModelError::Invalid(SYNPROXY_TCP_ONLY.into()));
            }
            if s.reals.iter().any(|r| !synproxy_forward(r.forward)) {
                return Err(ModelError::Invalid(SYNPROXY_FORWARD.into()));
            }
        }
        s.synproxy = spec.synproxy;
        if spec.toa && s.key.proto != Protocol::Tcp {
            return Err(ModelError::Invalid(
                "TOA is only for TCP virtual services".into(),
            ));
        }
        s.toa = spec.toa;
        if let Some(v) = spec.proxy_protocol {
            if s.key.proto != Protocol::Tcp || s.key.is_fwmark() {
                return Err(ModelError::Invalid(
                    "Proxy Protocol is only for TCP virtual services".into(),
                ));
            }
            if let Some(r) = s.reals.iter().find(|r| r.forward != Forward::FullNat) {
                return Err(ModelError::Invalid(format!(
                    "Proxy Protocol needs FullNAT real servers ({} is {})",
                    r.addr,
                    r.forward.column()
                )));
            }
            s.proxy_protocol = Some(v);
        }
        if [s.synproxy, s.toa, s.proxy_protocol.is_some()]
            .iter()
            .filter(|on| **on)
            .count()
            > 1
        {
            return Err(ModelError::Invalid(ONE_STREAM_FEATURE.into()));
        }
        Ok(())
    }

    /// `ipvsadm -A`: adds a service.
    pub fn add_service(&mut self, spec: &ServiceSpec) -> Result<(), ModelError> {
        if self.index(&spec.key).is_some() {
            return Err(ModelError::ServiceExists);
        }
        let mut s = Service::new(spec.key);
        Self::check_service_fields(spec, &mut s)?;
        self.services.push(s);
        Ok(())
    }

    /// `ipvsadm -E`: replaces the settings of a service, as IPVS does:
    /// whatever the spec leaves out takes its default (wlc, no scheduler
    /// flags, not persistent, a full mask). Real servers, local addresses,
    /// counters and the origin stay.
    pub fn edit_service(&mut self, spec: &ServiceSpec) -> Result<(), ModelError> {
        let i = self.index(&spec.key).ok_or(ModelError::NoSuchService)?;
        let old = &self.services[i];
        let mut s = Service {
            laddrs: old.laddrs.clone(),
            reals: old.reals.clone(),
            stats: old.stats,
            rates: old.rates,
            origin: old.origin,
            passive_check: old.passive_check,
            sloppy_tcp: old.sloppy_tcp,
            ..Service::new(spec.key)
        };
        Self::check_service_fields(spec, &mut s)?;
        self.services[i] = s;
        Ok(())
    }

    /// `ipvsadm -D`: deletes a service and its real servers.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::NoSuchService)?;
        self.services.remove(i);
        Ok(())
    }

    fn check_real(svc: &Service, r: &RealServer) -> Result<(), ModelError> {
        if svc.synproxy && !synproxy_forward(r.forward) {
            return Err(ModelError::Invalid(SYNPROXY_FORWARD.into()));
        }
        if family_mismatch(svc.key.addr.ip(), r.addr.ip()) && r.forward != Forward::Tunnel {
            // ipvsadm's and the kernel's check: only a tunnel can carry a
            // packet to a real server of the other family (IPVS's
            // heterogeneous pools, Linux 3.18)
            return Err(ModelError::Invalid(DIFFERENT_FAMILY.into()));
        }
        if r.weight > MAX_WEIGHT {
            return Err(ModelError::Invalid("illegal weight specified".into()));
        }
        if r.forward != Forward::Tunnel && r.tunnel != Tunnel::default() {
            return Err(ModelError::Invalid(
                "Tunnel options conflict with forward method".into(),
            ));
        }
        if let Some(p) = r.tunnel.problem() {
            return Err(ModelError::Invalid(p));
        }
        if svc.proxy_protocol.is_some() && r.forward != Forward::FullNat {
            return Err(ModelError::Invalid(format!(
                "Proxy Protocol needs FullNAT real servers ({} would be {})",
                r.addr,
                r.forward.column()
            )));
        }
        if r.u_threshold != 0 && r.l_threshold > r.u_threshold {
            return Err(ModelError::Invalid(
                "Numerical result out of range (lower threshold above upper threshold)".into(),
            ));
        }
        if r.forward.keeps_port() && r.addr.port() != svc.key.addr.port() {
            return Err(ModelError::Invalid(format!(
                "{} real server {} must use the virtual port {}",
                r.forward.column(),
                r.addr,
                svc.key.addr.port()
            )));
        }
        Ok(())
    }

    fn apply_real(spec: &RealSpec, r: &mut RealServer) {
        if let Some(f) = spec.forward {
            r.forward = f;
        }
        if let Some(w) = spec.weight {
            r.weight = w;
        }
        if let Some(x) = spec.u_threshold {
            r.u_threshold = x;
        }
        if let Some(y) = spec.l_threshold {
            r.l_threshold = y;
        }
        r.tunnel = spec.tunnel;
    }

    /// `ipvsadm -a`: adds a real server to a service.
    pub fn add_real(&mut self, key: &ServiceKey, spec: &RealSpec) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::ServiceNotDefined)?;
        let svc = &self.services[i];
        if svc.real(spec.addr).is_some() {
            return Err(ModelError::DestExists);
        }
        let mut r = RealServer::new(spec.addr, Forward::Route);
        Self::apply_real(spec, &mut r);
        Self::check_real(svc, &r)?;
        self.services[i].reals.push(r);
        Ok(())
    }

    /// `ipvsadm -e`: replaces the settings of a real server, as ipvsadm
    /// does: what the spec leaves out takes its default (route, weight 1,
    /// no thresholds). Counters and connection gauges stay.
    pub fn edit_real(&mut self, key: &ServiceKey, spec: &RealSpec) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::ServiceNotDefined)?;
        let svc = &self.services[i];
        let j = svc
            .reals
            .iter()
            .position(|r| r.addr == spec.addr)
            .ok_or(ModelError::NoSuchDest)?;
        let old = &svc.reals[j];
        let mut r = RealServer {
            active_conns: old.active_conns,
            inact_conns: old.inact_conns,
            persist_conns: old.persist_conns,
            stats: old.stats,
            rates: old.rates,
            ..RealServer::new(spec.addr, Forward::Route)
        };
        Self::apply_real(spec, &mut r);
        Self::check_real(svc, &r)?;
        self.services[i].reals[j] = r;
        Ok(())
    }

    /// `ipvsadm -d`: removes a real server from a service.
    pub fn delete_real(&mut self, key: &ServiceKey, addr: SocketAddr) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::ServiceNotDefined)?;
        let j = self.services[i]
            .reals
            .iter()
            .position(|r| r.addr == addr)
            .ok_or(ModelError::NoSuchDest)?;
        self.services[i].reals.remove(j);
        Ok(())
    }

    /// `ipvsadm -C`: removes every service.
    pub fn clear(&mut self) {
        self.services.clear();
    }

    /// `ipvsadm -Z`: zeroes the counters of one service or all.
    pub fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), ModelError> {
        let zero = |s: &mut Service| {
            s.stats = Stats::default();
            s.rates = Rates::default();
            for r in &mut s.reals {
                r.stats = Stats::default();
                r.rates = Rates::default();
            }
        };
        match key {
            Some(k) => {
                let i = self.index(k).ok_or(ModelError::NoSuchService)?;
                zero(&mut self.services[i]);
            }
            None => self.services.iter_mut().for_each(zero),
        }
        Ok(())
    }

    /// `ipvsadm --set tcp tcpfin udp`. Zero keeps the current value, as in IPVS.
    pub fn set_timeouts(&mut self, t: Timeouts) -> Result<(), ModelError> {
        if t.tcp > MAX_TIMEOUT || t.tcp_fin > MAX_TIMEOUT || t.udp > MAX_TIMEOUT {
            return Err(ModelError::Invalid(
                "Invalid operation.  Possibly wrong module version, address not unicast, ..."
                    .into(),
            ));
        }
        if t.tcp != 0 {
            self.timeouts.tcp = t.tcp;
        }
        if t.tcp_fin != 0 {
            self.timeouts.tcp_fin = t.tcp_fin;
        }
        if t.udp != 0 {
            self.timeouts.udp = t.udp;
        }
        Ok(())
    }

    /// DPVS `--add-laddr`: adds a FullNAT local address to a service.
    pub fn add_laddr(&mut self, key: &ServiceKey, laddr: LocalAddr) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::ServiceNotDefined)?;
        if self.services[i].laddrs.iter().any(|l| l.addr == laddr.addr) {
            return Err(ModelError::LaddrExists);
        }
        self.services[i].laddrs.push(laddr);
        Ok(())
    }

    /// DPVS `--del-laddr`: removes a FullNAT local address.
    pub fn del_laddr(&mut self, key: &ServiceKey, addr: IpAddr) -> Result<(), ModelError> {
        let i = self.index(key).ok_or(ModelError::ServiceNotDefined)?;
        let j = self.services[i]
            .laddrs
            .iter()
            .position(|l| l.addr == addr)
            .ok_or(ModelError::NoSuchLaddr)?;
        self.services[i].laddrs.remove(j);
        Ok(())
    }

    /// Services sorted as ipvsadm lists them (`ipvs_cmp_services`: address
    /// family, so every IPv4 service before any IPv6 one, then protocol,
    /// address, port), each with its real servers sorted by address and port.
    pub fn sorted(&self) -> Vec<Service> {
        let mut v = self.services.clone();
        // ipvsadm's ipvs_cmp_services: fwmark first (address services,
        // mark 0, before fwmark services), then family, protocol, address
        v.sort_by_key(|s| {
            (
                s.key.fwmark,
                s.key.addr.is_ipv6(),
                s.key.proto,
                s.key.addr.ip(),
                s.key.addr.port(),
            )
        });
        for s in &mut v {
            s.reals.sort_by_key(|r| (r.addr.ip(), r.addr.port()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ServiceKey {
        ServiceKey {
            proto: Protocol::Tcp,
            addr: s.parse().unwrap(),
            fwmark: 0,
        }
    }
    fn spec(k: ServiceKey, sched: &str) -> ServiceSpec {
        ServiceSpec {
            key: k,
            scheduler: Some(sched.into()),
            flags: None,
            persistent: None,
            netmask: None,
            ops: false,
            synproxy: false,
            toa: false,
            proxy_protocol: None,
        }
    }
    fn real(a: &str, f: Forward, w: u32) -> RealSpec {
        RealSpec {
            addr: a.parse().unwrap(),
            forward: Some(f),
            weight: Some(w),
            u_threshold: None,
            l_threshold: None,
            tunnel: Default::default(),
        }
    }

    #[test]
    fn errors_leave_model_untouched() {
        let mut m = Model::new();
        let k = key("198.18.0.1:80");
        m.add_service(&spec(k, "rr")).unwrap();
        m.add_real(&k, &real("198.19.0.2:80", Forward::Masq, 1))
            .unwrap();
        let before = m.clone();
        assert_eq!(
            m.add_service(&spec(k, "rr")).unwrap_err().to_string(),
            "Service already exists"
        );
        assert_eq!(
            m.add_service(&spec(key("198.18.0.2:80"), "foo"))
                .unwrap_err()
                .to_string(),
            "Scheduler not found"
        );
        assert_eq!(
            m.edit_service(&spec(k, "foo")).unwrap_err().to_string(),
            "Scheduler not found"
        );
        assert_eq!(
            m.add_real(&k, &real("198.19.0.2:80", Forward::Masq, 1))
                .unwrap_err()
                .to_string(),
            "Destination already exists"
        );
        assert_eq!(
            m.add_real(
                &key("198.18.0.9:80"),
                &real("198.19.0.2:80", Forward::Masq, 1)
            )
            .unwrap_err()
            .to_string(),
            "Service not defined"
        );
        assert_eq!(
            m.delete_real(&k, "198.19.0.3:80".parse().unwrap())
                .unwrap_err()
                .to_string(),
            "No such destination"
        );
        assert_eq!(
            m.edit_real(&k, &real("198.19.0.2:80", Forward::Masq, 70000))
                .unwrap_err()
                .to_string(),
            "illegal weight specified"
        );
        assert_eq!(
            m.add_real(&k, &real("198.19.0.3:81", Forward::Route, 1))
                .unwrap_err()
                .to_string(),
            "Route real server 198.19.0.3:81 must use the virtual port 80"
        );
        assert_eq!(
            m.delete_service(&key("198.18.0.9:80"))
                .unwrap_err()
                .to_string(),
            "No such service"
        );
        assert_eq!(m, before);
    }

    #[test]
    fn edit_replaces_like_ipvs() {
        let mut m = Model::new();
        let k = key("198.18.0.1:80");
        m.add_service(&ServiceSpec {
            persistent: Some(600),
            netmask: Some(Netmask::V4("255.255.255.0".parse().unwrap())),
            flags: Some(SchedFlags {
                sh_port: true,
                ..Default::default()
            }),
            ..spec(k, "sh")
        })
        .unwrap();
        m.add_real(
            &k,
            &RealSpec {
                u_threshold: Some(100),
                l_threshold: Some(50),
                ..real("198.19.0.2:8080", Forward::Masq, 5)
            },
        )
        .unwrap();
        m.services[0].reals[0].active_conns = 3;
        // -E -t VIP -s rr: persistence, mask and flags go back to defaults
        m.edit_service(&spec(k, "rr")).unwrap();
        let s = m.service(&k).unwrap();
        assert_eq!(s.scheduler, Scheduler::Rr);
        assert_eq!(s.persistent, None);
        assert!(s.netmask.is_full());
        assert!(s.flags.is_empty());
        assert_eq!(s.reals.len(), 1, "real servers stay");
        // -E without -s: wlc, as ipvsadm fills in DEF_SCHED
        m.edit_service(&ServiceSpec {
            scheduler: None,
            ..spec(k, "x")
        })
        .unwrap();
        assert_eq!(m.service(&k).unwrap().scheduler, Scheduler::Wlc);
        // -e with only -w: route, no thresholds (the port must then be the
        // virtual port, so a NAT server on another port is refused)
        let a: SocketAddr = "198.19.0.2:8080".parse().unwrap();
        let only_weight = RealSpec {
            addr: a,
            forward: None,
            weight: Some(7),
            u_threshold: None,
            l_threshold: None,
            tunnel: Default::default(),
        };
        assert!(m.edit_real(&k, &only_weight).is_err());
        m.edit_real(
            &k,
            &RealSpec {
                forward: Some(Forward::Masq),
                weight: None,
                ..only_weight
            },
        )
        .unwrap();
        let r = m.service(&k).unwrap().real(a).unwrap();
        assert_eq!(
            (r.forward, r.weight, r.u_threshold, r.l_threshold),
            (Forward::Masq, 1, 0, 0)
        );
        assert_eq!(r.active_conns, 3, "gauges stay");
    }

    #[test]
    fn v4_services_list_before_v6_ones() {
        let mut m = Model::new();
        for (p, a) in [
            (Protocol::Udp, "[2001:db8::1]:53"),
            (Protocol::Tcp, "[2001:db8::1]:80"),
            (Protocol::Udp, "198.18.0.1:53"),
            (Protocol::Tcp, "198.18.0.2:80"),
        ] {
            let k = ServiceKey {
                proto: p,
                addr: a.parse().unwrap(),
                fwmark: 0,
            };
            m.add_service(&spec(k, "rr")).unwrap();
        }
        let order: Vec<String> = m.sorted().iter().map(|s| s.key.to_string()).collect();
        assert_eq!(
            order,
            [
                "tcp 198.18.0.2:80",
                "udp 198.18.0.1:53",
                "tcp [2001:db8::1]:80",
                "udp [2001:db8::1]:53"
            ]
        );
    }

    #[test]
    fn one_scheduler_enum_for_model_and_dataplane() {
        // the same type: what the model holds is what the workers run
        let k: dataplane::sched::SchedKind = Scheduler::Mh;
        assert_eq!(k.name(), "mh");
        for s in Scheduler::ALL {
            assert_eq!(Scheduler::from_name(s.name()), Some(s));
        }
        assert_eq!(Scheduler::from_name("nosuch"), None);
        assert_eq!(
            Scheduler::list(),
            "rr, wrr, lc, wlc, sed, nq, fo, ovf, lblc, lblcr, sh, dh, mh, twos"
        );
    }

    #[test]
    fn other_family_needs_a_tunnel() {
        let mut m = Model::new();
        let k = key("198.18.0.1:80");
        m.add_service(&spec(k, "rr")).unwrap();
        assert_eq!(
            m.add_real(&k, &real("[2001:db8::2]:80", Forward::Masq, 1))
                .unwrap_err()
                .to_string(),
            "Different address family is allowed only for tunneling servers"
        );
    }

    #[test]
    fn tunnel_options_are_checked_by_the_model_too() {
        // what reaches the model other than through ipvsadm's parser (the
        // control socket, -R) gets ipvsadm's checks as well
        let mut m = Model::new();
        let k = key("198.18.0.1:80");
        m.add_service(&spec(k, "rr")).unwrap();
        let gue = |port: u16, csum: TunCsum| Tunnel {
            kind: TunType::Gue,
            port,
            csum,
        };
        for (f, t, want) in [
            (
                Forward::Masq,
                gue(6080, TunCsum::NoCsum),
                "Tunnel options conflict with forward method",
            ),
            (
                Forward::Tunnel,
                gue(0, TunCsum::Csum),
                "You need to supply the 'tun-port' option for the 'gue' tunnel type",
            ),
            (
                Forward::Tunnel,
                Tunnel {
                    kind: TunType::Gre,
                    port: 0,
                    csum: TunCsum::RemCsum,
                },
                "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
            ),
        ] {
            let r = RealSpec {
                tunnel: t,
                ..real("198.19.0.2:80", f, 1)
            };
            let e = m.add_real(&k, &r).unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert!(m.services[0].reals.is_empty());
        let r = RealSpec {
            tunnel: gue(6080, TunCsum::RemCsum),
            ..real("198.19.0.2:80", Forward::Tunnel, 1)
        };
        m.add_real(&k, &r).unwrap();
        let t = m.services[0].reals[0].tunnel;
        assert_eq!(
            (t.info(), t.rule()),
            (
                "gue:6080:r+c".to_string(),
                "--tun-type gue --tun-port 6080 --tun-remcsum".to_string()
            )
        );
        // remote checksum offload sends what nocsum sends (see Tunnel::encap)
        assert_eq!(
            t.encap(),
            dataplane::forward::TunEncap::Gue {
                port: 6080,
                csum: false
            }
        );
    }
}
