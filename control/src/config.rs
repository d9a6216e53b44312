//! The rvsd configuration file (TOML), validated whole before anything is
//! applied.
//!
//! [`parse`] and [`load`] return a [`Config`] only when the whole file is
//! valid; otherwise every problem found, each naming the file, the field
//! path (`service[1].real[0].weight`) and why. A structural error (TOML
//! syntax, an unknown key, a value of the wrong type) stops at the first
//! one, since nothing after it can be trusted; all semantic errors are
//! collected. [`Config::to_model`] turns a valid config into the
//! operator-visible [`Model`].

use crate::model::{
    Forward, LocalAddr, Model, Netmask, Origin, Protocol, RealServer, SchedFlags, Scheduler,
    Service, ServiceKey, Timeouts, MAX_TIMEOUT, MAX_WEIGHT,
};
use dataplane::fwmark::{Classifier, MarkRule};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::str::FromStr;

/// The whole rvsd config file.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DPDK EAL settings.
    pub eal: Eal,
    /// NIC ports (`[[port]]`).
    #[serde(default, rename = "port")]
    pub ports: Vec<Port>,
    /// Static routes (`[[route]]`).
    #[serde(default, rename = "route")]
    pub routes: Vec<Route>,
    /// Worker and connection-table settings.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// Virtual services (`[[service]]`).
    #[serde(default, rename = "service")]
    pub services: Vec<ServiceConf>,
    /// Firewall-mark classifier (`[[fwmark]]`): which packets carry which
    /// mark, for `fwmark = N` services (IPVS's `ipvsadm -f`).
    #[serde(default, rename = "fwmark")]
    pub fwmarks: Vec<FwmarkConf>,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: Metrics,
    /// The rvsadm control socket.
    #[serde(default)]
    pub control: Control,
    /// High availability (placeholder).
    #[serde(default)]
    pub ha: Ha,
    /// `[keepalived] conf = FILE`: that keepalived.conf's virtual servers
    /// are services too (see [`crate::health::keepalived`]).
    #[serde(default)]
    pub keepalived: Option<crate::health::keepalived::Source>,
    /// `[bgp]`: announce the VIPs through a stock BGP speaker (BIRD 2);
    /// absent: nothing is announced (see [`crate::bgp`]).
    #[serde(default)]
    pub bgp: Option<crate::bgp::BgpConf>,
}

/// `[eal]`: DPDK Environment Abstraction Layer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Eal {
    /// Cores to use: the first runs control, the others workers.
    pub cores: Vec<i64>,
    /// Use hugepages (false: `--no-huge`, for tests and veths).
    #[serde(default = "yes")]
    pub hugepages: bool,
    /// Memory to reserve in MB (`-m`).
    #[serde(default)]
    pub memory_mb: Option<i64>,
    /// Extra EAL arguments, passed as they are.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

fn yes() -> bool {
    true
}

/// `[[port]]`: one DPDK port.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// Name used by routes, laddrs and metrics labels.
    pub name: String,
    /// DPDK devargs (`net_af_packet0,iface=rvs-d0`), a PCI address, or
    /// `af_xdp:IFACE` for an AF_XDP port on a kernel interface
    /// (DPDK's `net_af_xdp`, one queue per worker; see [`AfXdp`]).
    pub device: String,
    /// Addresses with prefix (`198.18.0.1/24`, `2001:db8::1/64`).
    #[serde(default)]
    pub addresses: Vec<String>,
    /// MTU; 1500 when absent.
    #[serde(default)]
    pub mtu: Option<i64>,
    /// Kernel TAP interface for this port's exception path (ARP/ND, VRRP,
    /// SSH, BGP, ICMP to the port's own addresses go to the kernel there;
    /// what the kernel sends on it leaves through the port). Absent: such
    /// packets are dropped and counted.
    #[serde(default)]
    pub tap: Option<String>,
    /// Reverse-path filter for packets arriving here that match no
    /// connection, as Linux's `rp_filter`: `"strict"` (the default: the
    /// route back to the source must leave through this port), `"loose"`
    /// (some route back must exist) or `"off"`.
    #[serde(default)]
    pub rp_filter: Option<String>,
    /// Accept IPv4 packets with a loose or strict source route option
    /// (Linux `accept_source_route`; default false: dropped as
    /// `ipv4_source_route`).
    #[serde(default)]
    pub accept_source_route: bool,
    /// Learn neighbours from unsolicited ARP replies and gratuitous ARPs
    /// (Linux `arp_accept`; default false).
    #[serde(default)]
    pub arp_accept: bool,
    /// Let a gratuitous ARP change a known neighbour's MAC (default true,
    /// as Linux; false refuses it as `arp_mac_change_refused`).
    #[serde(default = "yes")]
    pub arp_garp_update: bool,
    /// Honour the override flag of unsolicited neighbour advertisements
    /// (RFC 4861, default true, as Linux; false: only an answer to our own
    /// solicitation changes a known MAC, others are refused as
    /// `nd_mac_change_refused`).
    #[serde(default = "yes")]
    pub nd_override: bool,
    /// `[port.af_xdp]`: settings of an `af_xdp:IFACE` port.
    #[serde(default)]
    pub af_xdp: Option<AfXdp>,
}

/// The prefix of [`Port::device`] that makes an AF_XDP port.
pub const AF_XDP_PREFIX: &str = "af_xdp:";

/// `[port.af_xdp]`: how an AF_XDP port (`device = "af_xdp:IFACE"`) uses
/// its interface. rvs opens one AF_XDP socket per worker, on the
/// interface's queues `start_queue` .. `start_queue + workers - 1`
/// (set the NIC's channels with `ethtool -L` and steer flows to them).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AfXdp {
    /// The first interface queue; 0 when absent.
    #[serde(default)]
    pub start_queue: Option<i64>,
    /// Preferred busy polling budget (packets per `SO_BUSY_POLL`
    /// round); 0 turns busy polling off. DPDK's default (64) when absent.
    #[serde(default)]
    pub busy_budget: Option<i64>,
    /// An XDP object file to load instead of libxdp's default program
    /// (which redirects every packet of the queue to rvs).
    #[serde(default)]
    pub xdp_prog: Option<String>,
    /// Copy mode even where the driver could do zero copy.
    #[serde(default)]
    pub force_copy: bool,
}

impl Port {
    /// The interface of an `af_xdp:IFACE` device.
    pub fn af_xdp_iface(&self) -> Option<&str> {
        self.device.trim().strip_prefix(AF_XDP_PREFIX)
    }

    /// The DPDK devargs of port number `index` with `queues` queues: the
    /// device as written, or for `af_xdp:IFACE` the `net_af_xdp` vdev.
    pub fn devargs(&self, index: usize, queues: usize) -> String {
        let Some(iface) = self.af_xdp_iface() else {
            return self.device.clone();
        };
        let x = self.af_xdp.clone().unwrap_or_default();
        let mut s = format!(
            "net_af_xdp{index},iface={iface},start_queue={},queue_count={queues}",
            x.start_queue.unwrap_or(0)
        );
        if let Some(b) = x.busy_budget {
            s.push_str(&format!(",busy_budget={b}"));
        }
        if let Some(p) = &x.xdp_prog {
            s.push_str(&format!(",xdp_prog={p}"));
        }
        if x.force_copy {
            s.push_str(",force_copy=1");
        }
        s
    }
}

/// Whether `name` can be a Linux interface name.
fn is_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `[[route]]`: a static route.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Destination prefix (`0.0.0.0/0`).
    pub prefix: String,
    /// Gateway; absent for an on-link route.
    #[serde(default)]
    pub via: Option<String>,
    /// Port name to send on.
    pub port: String,
}

/// `[dataplane]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dataplane {
    /// Number of worker cores.
    #[serde(default = "one")]
    pub workers: i64,
    /// IPv4 connections per worker (a power of two).
    #[serde(default = "default_table")]
    pub conn_table_size: i64,
    /// Connection timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsConf,
    /// IPv6 connections per worker (a power of two; its own table).
    #[serde(default = "default_table_v6")]
    pub conn_table_size_v6: i64,
    /// Connections per worker and family that may carry a TCP sequence
    /// adjustment at once (Proxy Protocol and SYN proxy connections,
    /// TIME_WAIT included; preallocated, about 40 bytes each). 0 (the
    /// default): a 128th of each connection table. Read at start.
    #[serde(default)]
    pub seq_adj_conns: i64,
    /// IPVS's `conn_reuse_mode` sysctl: 0 a SYN on the tuple of a finished
    /// connection reuses it; bit 1 (default) it expires the old entry in
    /// TIME_WAIT/CLOSE and is scheduled afresh; bit 2 also FIN_WAIT
    /// entries that never saw a reply (DR/TUN).
    #[serde(default = "one")]
    pub conn_reuse_mode: i64,
    /// The SYN proxy's settings (`[dataplane.synproxy]`, DPVS's
    /// `synproxy` block), for services with `synproxy = true`.
    #[serde(default)]
    pub synproxy: SynProxyConfig,
    /// What a worker does when its queues are empty: `"poll"` (default:
    /// poll for ever, a dedicated core) or `"adaptive"` (back off: pause,
    /// then sleep with a growing, bounded interval). Read at start.
    #[serde(default = "default_idle")]
    pub idle: String,
    /// `adaptive`: consecutive empty polls before backing off.
    #[serde(default = "default_idle_empty_polls")]
    pub idle_empty_polls: i64,
    /// `adaptive`: empty polls that pause the CPU before the first sleep.
    #[serde(default = "default_idle_pause_polls")]
    pub idle_pause_polls: i64,
    /// `adaptive`: the longest back-off sleep, in microseconds.
    #[serde(default = "default_idle_max_sleep_us")]
    pub idle_max_sleep_us: i64,
}

/// The longest `idle_max_sleep_us`: a tenth of a worker's housekeeping
/// period (10 ms), so sleeps never stretch timers, sync or commands.
pub const IDLE_MAX_SLEEP_US: i64 = 1000;

/// `[dataplane.synproxy]`: DPVS's `synproxy` settings. Read at start.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SynProxyConfig {
    /// MSS of rvs's SYN-ACK (DPVS `synack_options.mss`, 1452).
    #[serde(default)]
    pub mss: Option<i64>,
    /// TTL / hop limit of rvs's SYN-ACK (63).
    #[serde(default)]
    pub ttl: Option<i64>,
    /// Offer SACK when the client does (true).
    #[serde(default)]
    pub sack: Option<bool>,
    /// Window scale of the SYN-ACK: only 0 (none) is supported.
    #[serde(default)]
    pub wscale: Option<i64>,
    /// Timestamps in the SYN-ACK: only false is supported.
    #[serde(default)]
    pub timestamp: Option<bool>,
    /// SYNs sent to the real server again (DPVS `rs_syn_max_retry`, 3).
    #[serde(default)]
    pub syn_retries: Option<i64>,
    /// Client segments dropped while the real server's SYN-ACK is awaited
    /// before the client is reset (DPVS `ack_storm_thresh`, 10).
    #[serde(default)]
    pub dup_ack_limit: Option<i64>,
}

impl SynProxyConfig {
    /// The dataplane's settings (defaults for what is unset; call after
    /// validation).
    pub fn conf(&self) -> dataplane::forward::synproxy::SynProxyConf {
        let d = dataplane::forward::synproxy::SynProxyConf::default();
        dataplane::forward::synproxy::SynProxyConf {
            mss: self
                .mss
                .and_then(|v| u16::try_from(v).ok())
                .unwrap_or(d.mss),
            ttl: self.ttl.and_then(|v| u8::try_from(v).ok()).unwrap_or(d.ttl),
            sack: self.sack.unwrap_or(d.sack),
            syn_retries: self
                .syn_retries
                .and_then(|v| u8::try_from(v).ok())
                .unwrap_or(d.syn_retries),
            dup_ack_limit: self
                .dup_ack_limit
                .and_then(|v| u8::try_from(v).ok())
                .unwrap_or(d.dup_ack_limit),
        }
    }
}

fn one() -> i64 {
    1
}
fn default_idle() -> String {
    "poll".into()
}
fn default_idle_empty_polls() -> i64 {
    i64::from(dataplane::idle::IdlePolicy::default().empty_polls)
}
fn default_idle_pause_polls() -> i64 {
    i64::from(dataplane::idle::IdlePolicy::default().pause_polls)
}
fn default_idle_max_sleep_us() -> i64 {
    (dataplane::idle::IdlePolicy::default().max_sleep_ns / 1000) as i64
}
fn default_table() -> i64 {
    1 << 20
}
fn default_table_v6() -> i64 {
    1 << 18
}

impl Dataplane {
    /// The workers' idle policy (call after validation; out-of-range
    /// values are clamped).
    pub fn idle_policy(&self) -> dataplane::idle::IdlePolicy {
        use dataplane::idle::{IdleMode, IdlePolicy};
        IdlePolicy {
            mode: if self.idle == "adaptive" {
                IdleMode::Adaptive
            } else {
                IdleMode::Poll
            },
            empty_polls: u32::try_from(self.idle_empty_polls.clamp(1, 1_000_000)).unwrap_or(256),
            pause_polls: u32::try_from(self.idle_pause_polls.clamp(0, 1_000_000)).unwrap_or(0),
            max_sleep_ns: u64::try_from(self.idle_max_sleep_us.clamp(1, IDLE_MAX_SLEEP_US))
                .unwrap_or(100)
                * 1000,
        }
    }
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            workers: 1,
            conn_table_size: default_table(),
            timeouts: TimeoutsConf::default(),
            conn_table_size_v6: default_table_v6(),
            seq_adj_conns: 0,
            conn_reuse_mode: 1,
            synproxy: SynProxyConfig::default(),
            idle: default_idle(),
            idle_empty_polls: default_idle_empty_polls(),
            idle_pause_polls: default_idle_pause_polls(),
            idle_max_sleep_us: default_idle_max_sleep_us(),
        }
    }
}

/// `[dataplane.timeouts]`, as `ipvsadm --set`, in seconds.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConf {
    /// Established TCP (900).
    #[serde(default)]
    pub tcp: Option<i64>,
    /// TCP after FIN (120).
    #[serde(default)]
    pub tcp_fin: Option<i64>,
    /// UDP (300).
    #[serde(default)]
    pub udp: Option<i64>,
}

/// `[[fwmark]]`: one firewall mark and the rules that give it, in the
/// order they are tried (the first matching rule of all tables wins, as
/// the first matching `iptables -t mangle ... -j MARK` rule would).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FwmarkConf {
    /// The mark, 1..=4294967295.
    pub mark: i64,
    /// The rules (`[[fwmark.rule]]`).
    #[serde(default, rename = "rule")]
    pub rules: Vec<FwmarkRuleConf>,
}

/// `[[fwmark.rule]]`: packets to this destination get the mark.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FwmarkRuleConf {
    /// Destination network (`198.18.1.0/24`) or address (`198.18.1.1`).
    pub net: String,
    /// "tcp", "udp" or "any" (the default).
    #[serde(default)]
    pub proto: Option<String>,
    /// Destination port or range, `"80"` or `"80-81"`; every port when
    /// absent.
    #[serde(default)]
    pub ports: Option<String>,
}

/// `[[service]]`: a virtual service.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceConf {
    /// "tcp" or "udp" (not for fwmark services).
    #[serde(default)]
    pub protocol: String,
    /// VIP:port; IPv6 as `[2001:db8::1]:80` (not for fwmark services).
    #[serde(default)]
    pub address: String,
    /// A fwmark service (`ipvsadm -f MARK`): the packets the `[[fwmark]]`
    /// rules give this mark, instead of `protocol` and `address`.
    #[serde(default)]
    pub fwmark: Option<i64>,
    /// Address family of a fwmark service: "ipv4" (default) or "ipv6"
    /// (`ipvsadm -f MARK -6`).
    #[serde(default)]
    pub family: Option<String>,
    /// Scheduler name; wlc when absent.
    #[serde(default)]
    pub scheduler: Option<String>,
    /// Scheduler flags (sh-fallback, sh-port, mh-fallback, mh-port).
    #[serde(default)]
    pub sched_flags: Vec<String>,
    /// Persistence timeout in seconds.
    #[serde(default)]
    pub persistent: Option<i64>,
    /// Persistence netmask: dotted IPv4 mask or IPv6 prefix length.
    #[serde(default)]
    pub netmask: Option<String>,
    /// Default forwarding method of the real servers; "route" when absent.
    #[serde(default)]
    pub forward: Option<String>,
    /// FullNAT local addresses; each must be on a port's subnet.
    #[serde(default)]
    pub laddrs: Vec<String>,
    /// Real servers (`[[service.real]]`).
    #[serde(default, rename = "real")]
    pub reals: Vec<RealConf>,
    /// The scheduler's sorry server (`address[:port]`): takes new
    /// connections while no real server can.
    #[serde(default)]
    pub sorry_server: Option<String>,
    /// Health-check options (`[service.health]`, see [`crate::health::config`]).
    #[serde(default)]
    pub health: Option<crate::health::config::ServiceHealthConf>,
    /// IPVS's `sloppy_tcp`: schedule TCP segments that are not SYNs and
    /// have no connection entry. Default: on for mh over DR/TUN.
    #[serde(default)]
    pub sloppy_tcp: Option<bool>,
    /// One-packet scheduling (ipvsadm `-o`): every datagram of a UDP
    /// service is scheduled on its own, no connection entry is kept.
    #[serde(default)]
    pub ops: bool,
    /// SYN proxy (DPVS `-j enable`): rvs answers SYNs with a cookie and
    /// opens the real-server connection only on the client's valid ACK.
    /// TCP services with masq/fullnat real servers.
    #[serde(default)]
    pub synproxy: bool,
    /// TOA: FullNAT TCP connections carry the client's address and port
    /// to the real server as TCP option 254 (DPVS's `toa` module format).
    #[serde(default)]
    pub toa: bool,
    /// Proxy Protocol header to the real servers: "v1" or "v2" (TCP
    /// services whose real servers are all FullNAT).
    #[serde(default)]
    pub proxy_protocol: Option<String>,
    /// `announce = false`: never announce this service's VIP by BGP
    /// (default true when `[bgp]` is configured).
    #[serde(default)]
    pub announce: Option<bool>,
}

/// `[[service.real]]`: a real server.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RealConf {
    /// Address, with port (the virtual port when absent).
    pub address: String,
    /// Forwarding method; the service's when absent.
    #[serde(default)]
    pub forward: Option<String>,
    /// Weight, 1 when absent.
    #[serde(default)]
    pub weight: Option<i64>,
    /// Upper connection threshold (0: none).
    #[serde(default)]
    pub u_threshold: Option<i64>,
    /// Lower connection threshold (0: none).
    #[serde(default)]
    pub l_threshold: Option<i64>,
    /// Tunnel type of a `tunnel` real server: "ipip" (default), "gue" or
    /// "gre" (ipvsadm's `--tun-type`).
    #[serde(default)]
    pub tun_type: Option<String>,
    /// GUE's UDP destination port (required for gue, refused otherwise).
    #[serde(default)]
    pub tun_port: Option<i64>,
    /// Tunnel checksum: "nocsum" (default), "csum" (gue, gre) or
    /// "remcsum" (gue).
    #[serde(default)]
    pub tun_flags: Option<String>,
    /// Health options (`[service.real.health]`).
    #[serde(default)]
    pub health: Option<crate::health::config::RealHealthConf>,
    /// Health checkers (`[[service.real.check]]`).
    #[serde(default, rename = "check")]
    pub checks: Vec<crate::health::config::CheckConf>,
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Address:port of the Prometheus endpoint.
    #[serde(default = "default_listen")]
    pub listen: String,
}

fn default_listen() -> String {
    "127.0.0.1:9090".into()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: default_listen(),
        }
    }
}

/// `[control]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Unix socket rvsadm talks to.
    #[serde(default = "default_socket")]
    pub socket: String,
}

fn default_socket() -> String {
    "/run/rvs/rvsd.sock".into()
}

impl Default for Control {
    fn default() -> Self {
        Control {
            socket: default_socket(),
        }
    }
}

/// `[ha]`: the director's role and connection synchronisation (the LVS
/// sync protocol v1, as `ipvsadm --start-daemon` and the IPVS sysctls
/// configure it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ha {
    /// "standalone", "master" or "backup".
    #[serde(default = "default_role")]
    pub role: String,
    /// Start the sync daemon of the role at start-up (master: send,
    /// backup: receive).
    #[serde(default)]
    pub sync: bool,
    /// Kernel interface the sync traffic uses (`--mcast-interface`): the
    /// multicast group is joined and sent on its IPv4 address.
    #[serde(default)]
    pub sync_interface: Option<String>,
    /// Sync id (`--syncid`); a backup with 0 accepts any.
    #[serde(default)]
    pub sync_id: u8,
    /// Multicast group (`--mcast-group`).
    #[serde(default = "default_sync_group")]
    pub sync_group: String,
    /// UDP port (`--mcast-port`).
    #[serde(default = "default_sync_port")]
    pub sync_port: u16,
    /// Multicast TTL (`--mcast-ttl`).
    #[serde(default = "default_sync_ttl")]
    pub sync_ttl: u32,
    /// Unicast instead of multicast: the peer's address (`ip` or
    /// `ip:port`).
    #[serde(default)]
    pub sync_peer: Option<String>,
    /// Local address to bind (overrides the interface's).
    #[serde(default)]
    pub sync_bind: Option<String>,
    /// MTU of the sync interface: the message size limit.
    #[serde(default = "default_sync_mtu")]
    pub sync_mtu: u16,
    /// `sync_threshold`: [threshold, period].
    #[serde(default = "default_sync_threshold")]
    pub sync_threshold: [u32; 2],
    /// `sync_refresh_period` in seconds (0: off).
    #[serde(default)]
    pub sync_refresh_period: u32,
    /// `sync_retries` (0..=3).
    #[serde(default)]
    pub sync_retries: u8,
    /// A message that is not full is sent after this long (IPVS: 2 s).
    #[serde(default = "default_sync_flush_ms")]
    pub sync_flush_ms: u64,
    /// Gratuitous ARP / unsolicited NA rounds when this director takes the
    /// VIPs over (keepalived's `vrrp_garp_master_repeat`), 1..=100.
    #[serde(default = "default_garp_repeat")]
    pub garp_master_repeat: u32,
    /// Milliseconds between those rounds (keepalived's
    /// `vrrp_garp_interval`-style spacing), 10..=60000.
    #[serde(default = "default_garp_interval_ms")]
    pub garp_master_interval_ms: u64,
}

fn default_garp_repeat() -> u32 {
    3
}

fn default_garp_interval_ms() -> u64 {
    1000
}

fn default_role() -> String {
    "standalone".into()
}
fn default_sync_group() -> String {
    "224.0.0.81".into()
}
fn default_sync_port() -> u16 {
    8848
}
fn default_sync_ttl() -> u32 {
    1
}
fn default_sync_mtu() -> u16 {
    1500
}
fn default_sync_threshold() -> [u32; 2] {
    [3, 50]
}
fn default_sync_flush_ms() -> u64 {
    2000
}

impl Default for Ha {
    fn default() -> Self {
        Ha {
            role: default_role(),
            sync: false,
            sync_interface: None,
            sync_id: 0,
            sync_group: default_sync_group(),
            sync_port: default_sync_port(),
            sync_ttl: default_sync_ttl(),
            sync_peer: None,
            sync_bind: None,
            sync_mtu: default_sync_mtu(),
            sync_threshold: default_sync_threshold(),
            sync_refresh_period: 0,
            sync_retries: 0,
            sync_flush_ms: default_sync_flush_ms(),
            garp_master_repeat: default_garp_repeat(),
            garp_master_interval_ms: default_garp_interval_ms(),
        }
    }
}

/// An address with a prefix length, `198.18.0.1/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (0..=32 or 0..=128).
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this prefix.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & m == u32::from(b) & m
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & m == u128::from(b) & m
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = ();
    fn from_str(s: &str) -> Result<Cidr, ()> {
        let (a, p) = s.split_once('/').ok_or(())?;
        let addr: IpAddr = a.parse().map_err(|_| ())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(());
        }
        let prefix: u8 = p.parse().map_err(|_| ())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as given to [`parse`] or [`load`].
    pub file: String,
    /// Field path, e.g. `service[1].real[0].weight` (may be empty).
    pub field: String,
    /// Why it is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.field, self.message)
        }
    }
}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.clone(),
            field: String::new(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    parse(&text, &file)
}

/// Parses and validates config text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    let cfg: Config = toml::from_str(text).map_err(|e| {
        let (field, at) = match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                (
                    path_at(text, span.start),
                    format!(" (line {line}, column {col})"),
                )
            }
            None => (String::new(), String::new()),
        };
        ConfigErrors(vec![ConfigError {
            file: file.into(),
            field,
            message: format!("{}{at}", e.message().trim_end()),
        }])
    })?;
    let mut cfg = cfg;
    let imported = match &cfg.keepalived {
        None => None,
        Some(k) => {
            let path = match Path::new(file).parent() {
                Some(dir) if !Path::new(&k.conf).is_absolute() => dir.join(&k.conf),
                _ => Path::new(&k.conf).to_path_buf(),
            };
            let (svcs, origins) = crate::health::keepalived::load(&path).map_err(ConfigErrors)?;
            let base = cfg.services.len();
            cfg.services.extend(svcs);
            Some((base, origins))
        }
    };
    let (_, mut errors) = cfg.build(file);
    errors.extend(crate::health::config::validate(&cfg, file));
    if let Some((base, origins)) = &imported {
        crate::health::keepalived::relabel(&mut errors, *base, origins);
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        Err(ConfigErrors(errors))
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Best-effort field path of the key at `offset`: the enclosing table
/// header (with array indices) and the key on that line.
fn path_at(text: &str, offset: usize) -> String {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut table_path = String::new();
    let mut pos = 0;
    let mut key = String::new();
    for line in text.split_inclusive('\n') {
        let end = pos + line.len();
        let t = line.trim();
        let header = if let Some(h) = t.strip_prefix("[[").and_then(|h| h.split(']').next()) {
            Some((h.trim().to_string(), true))
        } else {
            t.strip_prefix('[')
                .and_then(|h| h.split(']').next())
                .map(|h| (h.trim().to_string(), false))
        };
        if offset >= end {
            if let Some((h, is_array)) = header {
                if is_array {
                    // a new [[a.b]] resets the counts of tables nested in it
                    counts.retain(|k, _| !k.starts_with(&format!("{h}.")));
                    let n = counts.entry(h.clone()).or_insert(0);
                    *n += 1;
                }
                table_path = indexed(&h, &counts);
            }
        } else {
            match header {
                // the error is about the table itself
                Some((h, _)) => return h,
                None => key = t.split('=').next().unwrap_or("").trim().to_string(),
            }
            break;
        }
        pos = end;
    }
    match (table_path.is_empty(), key.is_empty()) {
        (true, _) => key,
        (false, true) => table_path,
        (false, false) => format!("{table_path}.{key}"),
    }
}

/// `service.real` with counts → `service[1].real[0]`.
fn indexed(table: &str, counts: &HashMap<String, usize>) -> String {
    let mut out = String::new();
    let mut prefix = String::new();
    for part in table.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
            out.push('.');
        }
        prefix.push_str(part);
        out.push_str(part);
        if let Some(n) = counts.get(&prefix) {
            out.push_str(&format!("[{}]", n.saturating_sub(1)));
        }
    }
    out
}

/// Parses `VIP:port` (IPv6 in brackets). Port optional when `need_port` is false.
fn parse_endpoint(s: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    if let Some(inner) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        return inner.parse().ok().map(|ip| (ip, None));
    }
    s.parse::<IpAddr>().ok().map(|ip| (ip, None))
}

/// `[ha] sync_peer`: `ip` or `ip:port` (port `default_port` when absent).
/// Here, not in the sync daemon, so that the config depends on nothing in
/// the daemon (the daemon reads the config, never the reverse).
pub fn parse_peer(s: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    s.parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, default_port))
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
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

impl Config {
    /// The operator-visible model this config describes (services, real
    /// servers, timeouts, table size). Call on a config from [`parse`] or
    /// [`load`]; on an invalid one, invalid parts are left out.
    pub fn to_model(&self) -> Model {
        self.build("").0
    }

    /// Parsed addresses of each port, in config order (invalid ones left out).
    pub fn port_cidrs(&self) -> Vec<(String, Vec<Cidr>)> {
        self.ports
            .iter()
            .map(|p| {
                let c = p.addresses.iter().filter_map(|a| a.parse().ok()).collect();
                (p.name.clone(), c)
            })
            .collect()
    }

    /// Validates everything, collecting every error, and builds the model.
    fn build(&self, file: &str) -> (Model, Vec<ConfigError>) {
        let mut e = Errs {
            file,
            list: Vec::new(),
        };
        let mut model = Model::new();

        // [eal]
        if self.eal.cores.is_empty() {
            e.push("eal.cores", "must list at least one core");
        }
        for (i, c) in self.eal.cores.iter().enumerate() {
            if !(0..=1023).contains(c) {
                e.push(
                    format!("eal.cores[{i}]"),
                    format!("core {c} is not in 0..=1023"),
                );
            } else if self.eal.cores[..i].contains(c) {
                e.push(
                    format!("eal.cores[{i}]"),
                    format!("core {c} is listed twice"),
                );
            }
        }
        if let Some(m) = self.eal.memory_mb {
            if m <= 0 {
                e.push("eal.memory_mb", format!("must be positive, not {m}"));
            }
        } else if !self.eal.hugepages {
            e.push("eal.memory_mb", "is required when hugepages = false");
        }

        // [dataplane]
        let dp = &self.dataplane;
        if dp.workers < 1 {
            e.push(
                "dataplane.workers",
                format!("must be at least 1, not {}", dp.workers),
            );
        } else if !self.eal.cores.is_empty() && dp.workers + 1 > self.eal.cores.len() as i64 {
            e.push(
                "dataplane.workers",
                format!(
                    "{} workers need {} cores in eal.cores (one for control), but it lists {}",
                    dp.workers,
                    dp.workers + 1,
                    self.eal.cores.len()
                ),
            );
        }
        let t = dp.conn_table_size;
        if !(1024..=1 << 28).contains(&t) || t.count_ones() != 1 {
            e.push(
                "dataplane.conn_table_size",
                format!("must be a power of two in 1024..=268435456, not {t}"),
            );
        } else {
            model.conn_table_size = t as u64;
        }
        let t6 = dp.conn_table_size_v6;
        if !(1024..=1 << 28).contains(&t6) || t6.count_ones() != 1 {
            e.push(
                "dataplane.conn_table_size_v6",
                format!("must be a power of two in 1024..=268435456, not {t6}"),
            );
        }
        if !(0..=1 << 28).contains(&dp.seq_adj_conns) {
            e.push(
                "dataplane.seq_adj_conns",
                format!(
                    "must be in 0..=268435456 (0: a 128th of each connection table), not {}",
                    dp.seq_adj_conns
                ),
            );
        }
        if !(0..=3).contains(&dp.conn_reuse_mode) {
            e.push(
                "dataplane.conn_reuse_mode",
                format!(
                    "must be 0..=3 (IPVS's bitmap: 1 TIME_WAIT/CLOSE, 2 also FIN_WAIT without replies), not {}",
                    dp.conn_reuse_mode
                ),
            );
        }
        if !matches!(dp.idle.as_str(), "poll" | "adaptive") {
            e.push(
                "dataplane.idle",
                format!("must be \"poll\" or \"adaptive\", not '{}'", dp.idle),
            );
        }
        for (name, v, range, why) in [
            ("idle_empty_polls", dp.idle_empty_polls, 1..=1_000_000, ""),
            ("idle_pause_polls", dp.idle_pause_polls, 0..=1_000_000, ""),
            (
                "idle_max_sleep_us",
                dp.idle_max_sleep_us,
                1..=IDLE_MAX_SLEEP_US,
                " (µs; at most a tenth of the workers' 10 ms housekeeping period)",
            ),
        ] {
            if !range.contains(&v) {
                e.push(
                    format!("dataplane.{name}"),
                    format!(
                        "must be in {}..={}{why}, not {v}",
                        range.start(),
                        range.end()
                    ),
                );
            }
        }
        let sp = &dp.synproxy;
        for (name, v, range) in [
            ("mss", sp.mss, 536..=9000),
            ("ttl", sp.ttl, 1..=255),
            ("syn_retries", sp.syn_retries, 0..=10),
            ("dup_ack_limit", sp.dup_ack_limit, 1..=255),
        ] {
            if let Some(v) = v.filter(|v| !range.contains(v)) {
                e.push(
                    format!("dataplane.synproxy.{name}"),
                    format!("must be in {}..={}, not {v}", range.start(), range.end()),
                );
            }
        }
        if sp.wscale.is_some_and(|w| w != 0) {
            e.push(
                "dataplane.synproxy.wscale",
                "only 0: rvs's SYN-ACK offers no window scale (the real server's windows would need rescaling)",
            );
        }
        if sp.timestamp == Some(true) {
            e.push(
                "dataplane.synproxy.timestamp",
                "only false: rvs's SYN-ACK carries no timestamps (they would need translating for the life of the connection)",
            );
        }
        let mut timeouts = Timeouts::default();
        for (name, v, slot) in [
            ("tcp", dp.timeouts.tcp, &mut timeouts.tcp),
            ("tcp_fin", dp.timeouts.tcp_fin, &mut timeouts.tcp_fin),
            ("udp", dp.timeouts.udp, &mut timeouts.udp),
        ] {
            if let Some(v) = v {
                if (1..=i64::from(MAX_TIMEOUT)).contains(&v) {
                    *slot = v as u32;
                } else {
                    e.push(
                        format!("dataplane.timeouts.{name}"),
                        format!("must be 1..={MAX_TIMEOUT} seconds, not {v}"),
                    );
                }
            }
        }
        model.timeouts = timeouts;

        // [[port]]
        if self.ports.is_empty() {
            e.push("port", "at least one [[port]] is needed");
        }
        let mut subnets: Vec<(String, Cidr)> = Vec::new();
        for (i, p) in self.ports.iter().enumerate() {
            let f = format!("port[{i}]");
            if p.name.trim().is_empty() {
                e.push(format!("{f}.name"), "must not be empty");
            } else if let Some(j) = self.ports[..i].iter().position(|q| q.name == p.name) {
                e.push(
                    format!("{f}.name"),
                    format!("duplicate port name '{}' (also port[{j}])", p.name),
                );
            }
            if p.device.trim().is_empty() {
                e.push(
                    format!("{f}.device"),
                    "must be DPDK devargs (e.g. net_af_packet0,iface=rvs-d0) or a PCI address",
                );
            }
            if let Some(iface) = p.af_xdp_iface() {
                if !is_ifname(iface) {
                    e.push(
                        format!("{f}.device"),
                        format!(
                            "'{}': af_xdp:IFACE needs an interface name (1-15 letters, digits, '-', '_', '.')",
                            p.device
                        ),
                    );
                }
            }
            if let Some(x) = &p.af_xdp {
                if p.af_xdp_iface().is_none() {
                    e.push(
                        format!("{f}.af_xdp"),
                        format!(
                            "only for device = \"af_xdp:IFACE\", not '{}' (net_af_xdp devargs take their options inline)",
                            p.device
                        ),
                    );
                }
                if let Some(q) = x.start_queue {
                    if !(0..=1023).contains(&q) {
                        e.push(
                            format!("{f}.af_xdp.start_queue"),
                            format!("must be 0..=1023, not {q}"),
                        );
                    }
                }
                if let Some(b) = x.busy_budget {
                    if !(0..=65535).contains(&b) {
                        e.push(
                            format!("{f}.af_xdp.busy_budget"),
                            format!("must be 0 (off)..=65535, not {b}"),
                        );
                    }
                }
                if let Some(prog) = &x.xdp_prog {
                    if prog.is_empty() || prog.contains(',') || prog.contains('=') {
                        e.push(
                            format!("{f}.af_xdp.xdp_prog"),
                            format!(
                                "'{prog}' must be a path to an XDP object file, without ',' or '='"
                            ),
                        );
                    } else if !Path::new(prog).is_file() {
                        e.push(
                            format!("{f}.af_xdp.xdp_prog"),
                            format!("'{prog}' is not a file"),
                        );
                    }
                }
            }
            let mut has_v6 = false;
            for (j, a) in p.addresses.iter().enumerate() {
                match a.parse::<Cidr>() {
                    Ok(c) => {
                        has_v6 |= c.addr.is_ipv6();
                        subnets.push((p.name.clone(), c));
                    }
                    Err(()) => e.push(
                        format!("{f}.addresses[{j}]"),
                        format!(
                            "'{a}' is not an address with prefix (e.g. 198.18.0.1/24 or 2001:db8::1/64)"
                        ),
                    ),
                }
            }
            if let Some(t) = &p.tap {
                let ok_chars = t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
                if t.is_empty() || t.len() > 15 || !ok_chars {
                    e.push(
                        format!("{f}.tap"),
                        format!(
                            "'{t}' is not an interface name (1-15 letters, digits, '-', '_', '.')"
                        ),
                    );
                }
            }
            if let Some(r) = &p.rp_filter {
                if !matches!(r.as_str(), "strict" | "loose" | "off") {
                    e.push(
                        format!("{f}.rp_filter"),
                        format!("must be \"strict\", \"loose\" or \"off\", not '{r}'"),
                    );
                }
            }
            if let Some(m) = p.mtu {
                let min = if has_v6 { 1280 } else { 68 };
                if !(min..=9600).contains(&m) {
                    e.push(format!("{f}.mtu"), format!("must be {min}..=9600, not {m}"));
                }
            }
        }

        // [[route]]
        for (i, r) in self.routes.iter().enumerate() {
            let f = format!("route[{i}]");
            let prefix = r.prefix.parse::<Cidr>();
            if prefix.is_err() {
                e.push(
                    format!("{f}.prefix"),
                    format!(
                        "'{}' is not a prefix (e.g. 0.0.0.0/0 or 2001:db8::/32)",
                        r.prefix
                    ),
                );
            }
            if let Some(via) = &r.via {
                match via.parse::<IpAddr>() {
                    Ok(gw) => {
                        if let Ok(p) = prefix {
                            if family_mismatch(gw, p.addr) {
                                e.push(
                                    format!("{f}.via"),
                                    format!(
                                        "gateway {gw} is {} but prefix {p} is {}",
                                        family(gw),
                                        family(p.addr)
                                    ),
                                );
                            }
                        }
                    }
                    Err(_) => e.push(format!("{f}.via"), format!("'{via}' is not an address")),
                }
            }
            if !self.ports.iter().any(|p| p.name == r.port) {
                let names: Vec<&str> = self.ports.iter().map(|p| p.name.as_str()).collect();
                e.push(
                    format!("{f}.port"),
                    format!("unknown port '{}' (ports: {})", r.port, names.join(", ")),
                );
            }
        }

        // [[fwmark]]
        self.check_fwmarks(&mut e);

        // [[service]]
        let mut seen: Vec<(ServiceKey, usize)> = Vec::new();
        for (i, s) in self.services.iter().enumerate() {
            let built = self.build_service(i, s, &subnets, &mut e);
            // duplicates are found even when the service has other errors
            let Some(key) = service_key(s) else { continue };
            if let Some((_, j)) = seen.iter().find(|(k, _)| *k == key) {
                let field = if key.is_fwmark() { "fwmark" } else { "address" };
                e.push(
                    format!("service[{i}].{field}"),
                    format!("duplicate service {key} (also service[{j}])"),
                );
                continue;
            }
            seen.push((key, i));
            model.services.extend(built);
        }

        // [metrics], [control], [ha]
        if self.metrics.listen.parse::<SocketAddr>().is_err() {
            e.push(
                "metrics.listen",
                format!(
                    "'{}' is not address:port (e.g. 127.0.0.1:9090)",
                    self.metrics.listen
                ),
            );
        }
        if !self.control.socket.starts_with('/') {
            e.push(
                "control.socket",
                format!("'{}' must be an absolute path", self.control.socket),
            );
        }
        if !["standalone", "master", "backup"].contains(&self.ha.role.as_str()) {
            e.push(
                "ha.role",
                format!(
                    "unknown role '{}' (expected standalone, master or backup)",
                    self.ha.role
                ),
            );
        }
        if self.ha.sync && self.ha.role == "standalone" {
            e.push("ha.sync", "sync needs ha.role master or backup".to_string());
        }
        if !self
            .ha
            .sync_group
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_multicast())
        {
            e.push(
                "ha.sync_group",
                format!("'{}' is not an IPv4 multicast address", self.ha.sync_group),
            );
        }
        if let Some(p) = &self.ha.sync_peer {
            if parse_peer(p, self.ha.sync_port).is_none() {
                e.push("ha.sync_peer", format!("'{p}' is not ip or ip:port"));
            }
        }
        if let Some(b) = &self.ha.sync_bind {
            if b.parse::<IpAddr>().is_err() {
                e.push("ha.sync_bind", format!("'{b}' is not an address"));
            }
        }
        let [thr, period] = self.ha.sync_threshold;
        if period != 0 && thr >= period {
            e.push(
                "ha.sync_threshold",
                format!("threshold {thr} must be below the period {period} (or the period 0)"),
            );
        }
        if !(1..=100).contains(&self.ha.garp_master_repeat) {
            e.push(
                "ha.garp_master_repeat",
                format!("must be 1..=100, not {}", self.ha.garp_master_repeat),
            );
        }
        if !(10..=60_000).contains(&self.ha.garp_master_interval_ms) {
            e.push(
                "ha.garp_master_interval_ms",
                format!(
                    "must be 10..=60000, not {}",
                    self.ha.garp_master_interval_ms
                ),
            );
        }
        if self.ha.sync_retries > 3 {
            e.push("ha.sync_retries", "must be 0..=3".to_string());
        }
        if !(576..=9216).contains(&self.ha.sync_mtu) {
            e.push("ha.sync_mtu", "must be 576..=9216".to_string());
        }
        if let Some(b) = &self.bgp {
            for (field, why) in b.validate() {
                e.push(format!("bgp.{field}"), why);
            }
        }
        (model, e.list)
    }

    fn build_service(
        &self,
        i: usize,
        s: &ServiceConf,
        subnets: &[(String, Cidr)],
        e: &mut Errs<'_>,
    ) -> Option<Service> {
        let f = format!("service[{i}]");
        let before = e.list.len();
        let fwm = self.check_fwmark_service(&f, s, e);
        let proto = match s.protocol.as_str() {
            _ if s.fwmark.is_some() => Some(Protocol::Tcp),
            "tcp" | "TCP" => Some(Protocol::Tcp),
            "udp" | "UDP" => Some(Protocol::Udp),
            "" => {
                e.push(
                    format!("{f}.protocol"),
                    "missing (tcp or udp; or fwmark = MARK for a fwmark service)",
                );
                None
            }
            other => {
                e.push(
                    format!("{f}.protocol"),
                    format!("unknown protocol '{other}' (expected tcp or udp)"),
                );
                None
            }
        };
        let vip = match parse_endpoint(&s.address) {
            _ if s.fwmark.is_some() => fwm.map(|(m, v6)| ServiceKey::fwmark(m, v6).addr),
            Some((ip, Some(port))) => Some(SocketAddr::new(ip, port)),
            _ => {
                e.push(
                    format!("{f}.address"),
                    format!(
                        "'{}' is not VIP:port (e.g. 198.18.0.1:80 or [2001:db8::1]:80)",
                        s.address
                    ),
                );
                None
            }
        };
        let sched_name = s.scheduler.as_deref().unwrap_or("wlc");
        let sched = Scheduler::from_name(sched_name);
        if sched.is_none() {
            e.push(
                format!("{f}.scheduler"),
                format!(
                    "unknown scheduler '{sched_name}' (expected one of {})",
                    Scheduler::list()
                ),
            );
        }
        let mut flags = SchedFlags::default();
        for (j, name) in s.sched_flags.iter().enumerate() {
            if let Err(why) = flags.set(name, sched_name) {
                let msg = if why.starts_with("invalid") {
                    format!(
                        "unknown scheduler flag '{name}' (expected sh-fallback, sh-port, mh-fallback or mh-port)"
                    )
                } else {
                    format!(
                        "flag '{name}' needs scheduler {}, not {sched_name}",
                        &name[..2]
                    )
                };
                e.push(format!("{f}.sched_flags[{j}]"), msg);
            }
        }
        let persistent = match s.persistent {
            None => None,
            Some(t) if (1..=i64::from(MAX_TIMEOUT)).contains(&t) => Some(t as u32),
            Some(t) => {
                e.push(
                    format!("{f}.persistent"),
                    format!("must be 1..={MAX_TIMEOUT} seconds, not {t}"),
                );
                None
            }
        };
        if let Some(v) = vip.filter(|_| s.fwmark.is_none()) {
            if v.port() == 0 && s.persistent.is_none() {
                e.push(
                    format!("{f}.address"),
                    "port 0 (all ports) needs persistent to be set",
                );
            }
        }
        let mut netmask = vip.map(|v| Netmask::full_for(v.ip()));
        if let (Some(m), Some(v)) = (&s.netmask, vip) {
            let parsed = if v.is_ipv4() {
                m.parse().ok().map(Netmask::V4)
            } else {
                m.parse::<u8>()
                    .ok()
                    .filter(|p| (1..=128).contains(p))
                    .map(Netmask::V6)
            };
            match parsed {
                Some(n) => netmask = Some(n),
                None => e.push(
                    format!("{f}.netmask"),
                    format!(
                        "'{m}' is not a {} (e.g. {})",
                        if v.is_ipv4() {
                            "IPv4 netmask"
                        } else {
                            "IPv6 prefix length 1..=128"
                        },
                        if v.is_ipv4() { "255.255.255.0" } else { "64" }
                    ),
                ),
            }
        }
        let svc_forward = match s.forward.as_deref() {
            None => Some(Forward::Route),
            Some(x) => {
                let fw = Forward::from_config_name(x);
                if fw.is_none() {
                    e.push(format!("{f}.forward"), unknown_forward(x));
                }
                fw
            }
        };

        let mut laddrs: Vec<LocalAddr> = Vec::new();
        for (j, a) in s.laddrs.iter().enumerate() {
            let field = format!("{f}.laddrs[{j}]");
            match a.parse::<IpAddr>() {
                Err(_) => e.push(field, format!("'{a}' is not an address")),
                Ok(ip) if laddrs.iter().any(|l| l.addr == ip) => {
                    e.push(field, format!("local address {ip} is listed twice"))
                }
                Ok(ip) => match subnets.iter().find(|(_, c)| c.contains(ip)) {
                    Some((port, _)) => laddrs.push(LocalAddr {
                        addr: ip,
                        ifname: port.clone(),
                    }),
                    None => e.push(field, format!("local address {ip} is on no port's subnet")),
                },
            }
        }

        let mut reals: Vec<RealServer> = Vec::new();
        let mut fullnat = false;
        let mut synproxy_fwd_ok = true;
        let mut not_fullnat: Option<(usize, Forward)> = None;
        for (j, r) in s.reals.iter().enumerate() {
            let rf = format!("{f}.real[{j}]");
            let fw = match r.forward.as_deref() {
                None => svc_forward,
                Some(x) => {
                    let fw = Forward::from_config_name(x);
                    if fw.is_none() {
                        e.push(format!("{rf}.forward"), unknown_forward(x));
                    }
                    fw
                }
            };
            fullnat |= fw == Some(Forward::FullNat);
            synproxy_fwd_ok &= fw.is_none_or(crate::model::synproxy_forward);
            if let Some(x) = fw.filter(|x| *x != Forward::FullNat) {
                not_fullnat.get_or_insert((j, x));
            }
            let addr = match (parse_endpoint(&r.address), vip) {
                (None, _) => {
                    e.push(
                        format!("{rf}.address"),
                        format!(
                            "'{}' is not address[:port] (e.g. 198.19.0.2:8080 or [2001:db8::2]:80)",
                            r.address
                        ),
                    );
                    None
                }
                (Some((ip, port)), Some(v)) => {
                    // Only a tunnel reaches a real server of the other
                    // family (IPVS's heterogeneous pools).
                    if family_mismatch(ip, v.ip()) && fw != Some(Forward::Tunnel) {
                        e.push(
                            format!("{rf}.address"),
                            format!(
                                "real server {ip} is {} but the VIP is {} (only tunnel real servers may be of the other family)",
                                family(ip),
                                family(v.ip())
                            ),
                        );
                        None
                    } else {
                        let a = SocketAddr::new(ip, port.unwrap_or(v.port()));
                        if let Some(fw) = fw.filter(|fw| fw.keeps_port()) {
                            // a fwmark service's DR/TUN real server keeps
                            // the packet's port; a port given there is for
                            // health checks (keepalived writes one)
                            if a.port() != v.port() && s.fwmark.is_none() {
                                e.push(
                                    format!("{rf}.address"),
                                    format!(
                                        "{}-mode real server {a} must use the virtual port {} ({} cannot change ports)",
                                        fw.config_name(),
                                        v.port(),
                                        fw.config_name()
                                    ),
                                );
                            }
                        }
                        Some(a)
                    }
                }
                (Some(_), None) => None,
            };
            let weight = range(e, format!("{rf}.weight"), "weight", r.weight, 1, MAX_WEIGHT);
            let tunnel = real_tunnel(e, &rf, r, fw);
            let uthr = range(
                e,
                format!("{rf}.u_threshold"),
                "u_threshold",
                r.u_threshold,
                0,
                i32::MAX as u32,
            );
            let lthr = range(
                e,
                format!("{rf}.l_threshold"),
                "l_threshold",
                r.l_threshold,
                0,
                i32::MAX as u32,
            );
            if let (Some(u), Some(l)) = (uthr, lthr) {
                if u != 0 && l > u {
                    e.push(
                        format!("{rf}.l_threshold"),
                        format!("l_threshold {l} is above u_threshold {u}"),
                    );
                }
            }
            if let Some(a) = addr {
                if let Some(k) = reals.iter().position(|x| x.addr == a) {
                    e.push(
                        format!("{rf}.address"),
                        format!("duplicate real server {a} (also real[{k}])"),
                    );
                    continue;
                }
                if let (Some(fw), Some(w), Some(u), Some(l), Some(t)) =
                    (fw, weight, uthr, lthr, tunnel)
                {
                    let mut rs = RealServer::new(a, fw);
                    rs.weight = w;
                    rs.u_threshold = u;
                    rs.l_threshold = l;
                    rs.tunnel = t;
                    reals.push(rs);
                }
            }
        }
        if s.sloppy_tcp == Some(true) && proto.is_some_and(|p| p != Protocol::Tcp) {
            e.push(
                format!("{f}.sloppy_tcp"),
                "only TCP services have TCP state to continue",
            );
        }
        if s.ops && proto.is_some_and(|p| p != Protocol::Udp) {
            // ipvsadm 1.31 refuses -o for a TCP service; rvs does too
            // rather than accept a setting the kernel would ignore.
            e.push(
                format!("{f}.ops"),
                "one-packet scheduling is only for UDP services",
            );
        }
        if s.ops && fullnat {
            e.push(
                format!("{f}.ops"),
                "fullnat needs a connection entry for its local port",
            );
        }
        if s.synproxy && proto.is_some_and(|p| p != Protocol::Tcp) {
            e.push(format!("{f}.synproxy"), crate::model::SYNPROXY_TCP_ONLY);
        }
        if s.synproxy && !synproxy_fwd_ok {
            e.push(format!("{f}.synproxy"), crate::model::SYNPROXY_FORWARD);
        }
        if s.toa && proto.is_some_and(|p| p != Protocol::Tcp) {
            e.push(
                format!("{f}.toa"),
                "TOA is a TCP option: only for TCP services",
            );
        } else if s.toa && !fullnat {
            e.push(
                format!("{f}.toa"),
                "TOA is for fullnat real servers (only fullnat hides the client's address)",
            );
        }
        if s.sloppy_tcp == Some(true) && fullnat {
            e.push(
                format!("{f}.sloppy_tcp"),
                "fullnat cannot continue a connection it has no local port for",
            );
        }
        let proxy_protocol = match s.proxy_protocol.as_deref() {
            None => None,
            Some(x) => match crate::model::ProxyProtocol::from_name(x) {
                None => {
                    e.push(
                        format!("{f}.proxy_protocol"),
                        format!("unknown proxy_protocol '{x}' (expected \"v1\" or \"v2\")"),
                    );
                    None
                }
                Some(v) => {
                    if proto != Some(Protocol::Tcp) || s.fwmark.is_some() {
                        e.push(
                            format!("{f}.proxy_protocol"),
                            "Proxy Protocol is only for TCP services",
                        );
                    }
                    if let Some((j, fw)) = not_fullnat {
                        e.push(
                            format!("{f}.proxy_protocol"),
                            format!(
                                "Proxy Protocol needs fullnat real servers (real[{j}] is {})",
                                fw.config_name()
                            ),
                        );
                    }
                    Some(v)
                }
            },
        };
        // one of them per service (crate::model::ONE_STREAM_FEATURE)
        let set: Vec<&str> = [
            ("synproxy", s.synproxy),
            ("toa", s.toa),
            ("proxy_protocol", s.proxy_protocol.is_some()),
        ]
        .iter()
        .filter_map(|(n, on)| on.then_some(*n))
        .collect();
        if let [_, second, ..] = set[..] {
            e.push(
                format!("{f}.{second}"),
                format!(
                    "{} are not combined on one service yet (each rewrites the connection's start): choose one",
                    set.join(" and ")
                ),
            );
        }
        if fullnat && laddrs.is_empty() && s.laddrs.is_empty() {
            e.push(
                format!("{f}.laddrs"),
                "fullnat real servers need at least one local address",
            );
        }

        if e.list.len() != before {
            return None;
        }
        let key = match fwm {
            Some((m, v6)) => ServiceKey::fwmark(m, v6),
            None => ServiceKey::new(proto?, vip?),
        };
        // the sorry server is forwarded as the service's real servers are
        let sorry = match (s.sorry_server.as_deref().and_then(parse_endpoint), vip) {
            (Some((ip, port)), Some(v)) => {
                let fw = match (&s.forward, reals.first()) {
                    (None, Some(r)) => r.forward,
                    _ => svc_forward?,
                };
                Some(RealServer::new(
                    SocketAddr::new(ip, port.unwrap_or(v.port())),
                    fw,
                ))
            }
            _ => None,
        };
        Some(Service {
            sorry,
            scheduler: sched?,
            flags,
            persistent,
            netmask: netmask?,
            laddrs,
            reals,
            origin: Origin::Config,
            passive_check: s.health.as_ref().is_some_and(|h| h.passive_check),
            sloppy_tcp: s.sloppy_tcp,
            ops: s.ops,
            synproxy: s.synproxy,
            toa: s.toa,
            proxy_protocol,
            ..Service::new(key)
        })
    }
}

/// The tunnel options of real server `rf`, checked against its forwarding
/// method `fw` and against each other (ipvsadm 1.31's rules); `None`
/// after reporting what is wrong, each under its own field.
fn real_tunnel(
    e: &mut Errs<'_>,
    rf: &str,
    r: &RealConf,
    fw: Option<Forward>,
) -> Option<crate::model::Tunnel> {
    use crate::model::{TunCsum, TunType, Tunnel};
    let before = e.list.len();
    let given = [
        ("tun_type", r.tun_type.is_some()),
        ("tun_port", r.tun_port.is_some()),
        ("tun_flags", r.tun_flags.is_some()),
    ];
    if let Some(fw) = fw.filter(|f| *f != Forward::Tunnel) {
        for (name, _) in given.iter().filter(|(_, g)| *g) {
            e.push(
                format!("{rf}.{name}"),
                format!(
                    "tunnel options need forward = \"tunnel\" (this real server is {})",
                    fw.config_name()
                ),
            );
        }
        return (e.list.len() == before).then(Tunnel::default);
    }
    let mut t = Tunnel::default();
    if let Some(x) = &r.tun_type {
        match TunType::from_name(x) {
            Some(k) => t.kind = k,
            None => e.push(
                format!("{rf}.tun_type"),
                format!("unknown tunnel type '{x}' (expected ipip, gue or gre)"),
            ),
        }
    }
    if let Some(x) = &r.tun_flags {
        match TunCsum::from_config_name(x) {
            Some(c) => t.csum = c,
            None => e.push(
                format!("{rf}.tun_flags"),
                format!("unknown tunnel flags '{x}' (expected nocsum, csum or remcsum)"),
            ),
        }
    }
    match r.tun_port {
        Some(p) if !(1..=65535).contains(&p) => e.push(
            format!("{rf}.tun_port"),
            format!("tun_port must be 1..=65535, not {p}"),
        ),
        Some(p) => t.port = p as u16,
        None => {}
    }
    if e.list.len() != before {
        return None;
    }
    let kind = t.kind.name();
    match t.kind {
        TunType::Gue if t.port == 0 => e.push(
            format!("{rf}.tun_type"),
            "gue tunnels need tun_port (the real server's GUE/fou UDP port)",
        ),
        TunType::Ipip | TunType::Gre if t.port != 0 => e.push(
            format!("{rf}.tun_port"),
            format!("tun_port is only for gue tunnels (tun_type is {kind})"),
        ),
        TunType::Ipip if t.csum != TunCsum::NoCsum => e.push(
            format!("{rf}.tun_flags"),
            format!(
                "ipip tunnels have no checksum option (tun_flags = \"{}\" needs gue or gre)",
                t.csum.config_name()
            ),
        ),
        TunType::Gre if t.csum == TunCsum::RemCsum => e.push(
            format!("{rf}.tun_flags"),
            "remcsum (remote checksum offload) is for gue tunnels only; gre takes nocsum or csum",
        ),
        _ => {}
    }
    (e.list.len() == before).then_some(t)
}

fn family_mismatch(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() != b.is_ipv4()
}

/// The key of a service config, when its protocol and address parse.
pub(crate) fn service_key_of(s: &ServiceConf) -> Option<ServiceKey> {
    service_key(s)
}

/// The address of a real server config under the VIP `vip`.
pub(crate) fn real_addr_of(r: &RealConf, vip: SocketAddr) -> Option<SocketAddr> {
    let (ip, port) = parse_endpoint(&r.address)?;
    Some(SocketAddr::new(ip, port.unwrap_or(vip.port())))
}

/// The services of `cfg` whose VIP is never announced by BGP
/// (`announce = false`).
pub fn bgp_opt_out(cfg: &Config) -> Vec<ServiceKey> {
    cfg.services
        .iter()
        .filter(|s| s.announce == Some(false))
        .filter_map(service_key)
        .collect()
}

fn service_key(s: &ServiceConf) -> Option<ServiceKey> {
    if let Some(m) = s.fwmark {
        let m = u32::try_from(m).ok().filter(|m| *m != 0)?;
        return Some(ServiceKey::fwmark(m, fwmark_family(s)?));
    }
    let proto = match s.protocol.as_str() {
        "tcp" | "TCP" => Protocol::Tcp,
        "udp" | "UDP" => Protocol::Udp,
        _ => return None,
    };
    match parse_endpoint(&s.address)? {
        (ip, Some(port)) => Some(ServiceKey {
            proto,
            addr: SocketAddr::new(ip, port),
            fwmark: 0,
        }),
        _ => None,
    }
}

/// The family of a fwmark service config: IPv6?
fn fwmark_family(s: &ServiceConf) -> Option<bool> {
    match s.family.as_deref() {
        None | Some("ipv4" | "inet") => Some(false),
        Some("ipv6" | "inet6") => Some(true),
        Some(_) => None,
    }
}

/// `ports = "80"` or `"80-81"`.
fn parse_ports(p: &str) -> Option<(u16, u16)> {
    let num = |x: &str| -> Option<u16> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        x.parse().ok()
    };
    match p.split_once('-') {
        Some((a, b)) => Some((num(a)?, num(b)?)),
        None => num(p).map(|x| (x, x)),
    }
}

impl Config {
    /// The compiled `[[fwmark]]` rules, in file order (invalid rules left
    /// out; call on a config from [`parse`] or [`load`]).
    pub fn classifier(&self) -> Classifier {
        let rules: Vec<MarkRule> = self
            .fwmarks
            .iter()
            .flat_map(|t| {
                t.rules
                    .iter()
                    .filter_map(move |r| mark_rule(t.mark, r).ok())
            })
            .collect();
        Classifier::new(&rules).unwrap_or_default()
    }

    fn check_fwmarks(&self, e: &mut Errs<'_>) {
        for (i, t) in self.fwmarks.iter().enumerate() {
            let f = format!("fwmark[{i}]");
            if !(1..=i64::from(u32::MAX)).contains(&t.mark) {
                e.push(
                    format!("{f}.mark"),
                    format!("must be 1..=4294967295, not {}", t.mark),
                );
            } else if let Some(j) = self.fwmarks[..i].iter().position(|o| o.mark == t.mark) {
                e.push(
                    format!("{f}.mark"),
                    format!(
                        "mark {} is defined twice (also fwmark[{j}]): list all its rules in one table",
                        t.mark
                    ),
                );
            }
            if t.rules.is_empty() {
                e.push(
                    format!("{f}.rule"),
                    "a mark needs at least one [[fwmark.rule]]",
                );
            }
            for (j, r) in t.rules.iter().enumerate() {
                if let Err((field, why)) = mark_rule(t.mark.max(1), r) {
                    e.push(format!("{f}.rule[{j}].{field}"), why);
                }
            }
        }
    }

    /// Checks the fwmark fields of service `f`; returns (mark, IPv6?) for
    /// a valid fwmark service.
    fn check_fwmark_service(
        &self,
        f: &str,
        s: &ServiceConf,
        e: &mut Errs<'_>,
    ) -> Option<(u32, bool)> {
        let Some(m) = s.fwmark else {
            if let Some(fam) = &s.family {
                e.push(
                    format!("{f}.family"),
                    format!("'{fam}' is only for fwmark services (an address service has its VIP's family)"),
                );
            }
            if s.address.is_empty() {
                e.push(
                    format!("{f}.address"),
                    "missing: give address = \"VIP:port\" or fwmark = MARK",
                );
            }
            return None;
        };
        let before = e.list.len();
        let mark = u32::try_from(m).ok().filter(|m| *m != 0);
        if mark.is_none() {
            e.push(
                format!("{f}.fwmark"),
                format!("must be 1..=4294967295, not {m}"),
            );
        }
        if !s.address.is_empty() {
            e.push(
                format!("{f}.address"),
                "a fwmark service has no address: its [[fwmark]] rules say which packets it takes",
            );
        }
        if !s.protocol.is_empty() {
            e.push(
                format!("{f}.protocol"),
                "a fwmark service takes the protocols its [[fwmark]] rules match: leave protocol out",
            );
        }
        let v6 = fwmark_family(s);
        if v6.is_none() {
            e.push(
                format!("{f}.family"),
                format!(
                    "unknown family '{}' (expected ipv4 or ipv6)",
                    s.family.as_deref().unwrap_or("")
                ),
            );
        }
        if let (Some(mark), Some(v6)) = (mark, v6) {
            let tables: Vec<&FwmarkConf> = self
                .fwmarks
                .iter()
                .filter(|t| t.mark == i64::from(mark))
                .collect();
            let nets: Vec<IpAddr> = tables
                .iter()
                .flat_map(|t| t.rules.iter().filter_map(|r| parse_net(&r.net)))
                .map(|(a, _)| a)
                .collect();
            let fam = if v6 { "IPv6" } else { "IPv4" };
            if tables.is_empty() {
                e.push(
                    format!("{f}.fwmark"),
                    format!("mark {mark} is not defined by any [[fwmark]] table"),
                );
            } else if !nets.is_empty() && !nets.iter().any(|a| a.is_ipv6() == v6) {
                // (an unparsable rule is reported on its own)
                e.push(
                    format!("{f}.family"),
                    format!(
                        "mark {mark} has no {fam} rule in [[fwmark]], so this {fam} service would never match (family = \"{}\" for the other family)",
                        if v6 { "ipv4" } else { "ipv6" }
                    ),
                );
            }
        }
        if e.list.len() != before {
            return None;
        }
        Some((mark?, v6?))
    }
}

/// `net = "198.18.1.0/24"` or a bare address (a host rule).
fn parse_net(n: &str) -> Option<(IpAddr, u8)> {
    if let Ok(a) = n.parse::<IpAddr>() {
        return Some((a, if a.is_ipv4() { 32 } else { 128 }));
    }
    let (a, p) = n.split_once('/')?;
    let a: IpAddr = a.parse().ok()?;
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) || p.len() > 3 {
        return None;
    }
    Some((a, p.parse().ok()?))
}

/// One `[[fwmark.rule]]` as a classifier rule, or (field, why).
fn mark_rule(mark: i64, r: &FwmarkRuleConf) -> Result<MarkRule, (&'static str, String)> {
    let (net, prefix) = parse_net(&r.net).ok_or_else(|| {
        (
            "net",
            format!(
                "'{}' is not an address or network (e.g. 198.18.1.0/24 or 2001:db8::100)",
                r.net
            ),
        )
    })?;
    let proto = match r.proto.as_deref() {
        None | Some("any") => None,
        Some("tcp" | "TCP") => Some(6),
        Some("udp" | "UDP") => Some(17),
        Some(x) => {
            return Err((
                "proto",
                format!("unknown protocol '{x}' (expected tcp, udp or any)"),
            ))
        }
    };
    let ports = match r.ports.as_deref() {
        None => (0, 65535),
        Some(p) => parse_ports(p).ok_or_else(|| {
            (
                "ports",
                format!("'{p}' is not a port or range (e.g. \"80\" or \"8000-8099\")"),
            )
        })?,
    };
    let rule = MarkRule {
        mark: u32::try_from(mark).unwrap_or(1).max(1),
        net,
        prefix,
        proto,
        ports,
    };
    Classifier::new(&[rule]).map_err(|e| {
        // the prefix is written in `net`
        let field = if e.field == "prefix" { "net" } else { e.field };
        (field, e.why)
    })?;
    Ok(rule)
}

fn unknown_forward(x: &str) -> String {
    format!("unknown forwarding method '{x}' (expected masq, route, tunnel or fullnat)")
}

fn range(
    e: &mut Errs<'_>,
    field: String,
    what: &str,
    v: Option<i64>,
    default: u32,
    max: u32,
) -> Option<u32> {
    match v {
        None => Some(default),
        Some(x) if (0..=i64::from(max)).contains(&x) => Some(x as u32),
        Some(x) => {
            e.push(field, format!("{what} must be 0..={max}, not {x}"));
            None
        }
    }
}

#[cfg(test)]
mod tests;
