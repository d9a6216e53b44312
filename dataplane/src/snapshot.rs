//! The immutable configuration a worker runs on. Control builds a new
//! [`Snapshot`] for every change and publishes it to the workers as an
//! `Arc`; a worker swaps it in between bursts. Nothing in a snapshot is
//! ever mutated once published.

use crate::conn::{FwdMode, Timeouts};
use crate::fwmark::Classifier;
use crate::neigh::{AddrClass, LearnPolicy, OurAddr, OurAddrs, PortInfo};
use crate::route::RouteTable;
use crate::sched::ServiceSched;
use crate::wire::ethernet::MacAddr;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A small, fast, unkeyed hasher for control-built maps whose keys are
/// chosen by the operator (VIPs, real servers), never by clients.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

const FX_K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            for (d, b) in w.iter_mut().zip(c) {
                *d = *b;
            }
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(FX_K);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// (protocol, address, port): how a virtual service or a real server is
/// found.
pub type Endpoint = (u8, IpAddr, u16);

/// One virtual service.
#[derive(Debug)]
pub struct Service {
    /// Stable id assigned by control (indexes counters and connections).
    pub id: u16,
    /// IP protocol (6 TCP, 17 UDP).
    pub proto: u8,
    /// Virtual address.
    pub vip: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// The scheduler with its real servers (shared, immutable).
    pub sched: ServiceSched,
    /// Forwarding method per real server, parallel to `sched.reals()`.
    pub fwd: Box<[FwdMode]>,
    /// Forwarding method of the sorry server.
    pub sorry_fwd: FwdMode,
    /// FullNAT local address pool (IPv4 and IPv6 mixed; the family of the
    /// real server picks).
    pub laddrs: Box<[IpAddr]>,
    /// A Maglev table over the same real servers, for flows that find the
    /// connection table full (forwarded statelessly, Maglev's behaviour);
    /// `None` uses the service's own scheduler.
    pub stateless: Option<ServiceSched>,
    /// Passive health checking (DPVS's `dest-check`): report a real
    /// server that answers a SYN with RST, or lets a connection expire in
    /// the handshake, to control as [`crate::pipeline::Event::PassiveFail`].
    pub passive_check: bool,
    /// IPVS's `sloppy_tcp`: a TCP segment that is not a SYN and has no
    /// entry is scheduled (by a consistent scheduler: the same real server
    /// on every director) and creates an entry in the state the segment
    /// implies, so flows survive ECMP moving them between directors.
    pub sloppy_tcp: bool,
    /// IPVS's one-packet scheduling (`IP_VS_SVC_F_ONEPACKET`, ipvsadm
    /// `-o`): every UDP datagram is scheduled on its own and no connection
    /// entry is made (persistence templates still apply). NAT replies are
    /// reverse-translated statelessly ([`Snapshot::nat_reverse`]). Ignored
    /// for TCP and for FullNAT real servers (their local port needs an
    /// entry), as IPVS ignores it for TCP.
    pub ops: bool,
    /// SYN proxy (DPVS `-j enable`, config `synproxy`): a SYN to this TCP
    /// service is answered by rvs with a SYN cookie; only a valid ACK
    /// opens the connection to a real server
    /// ([`crate::forward::synproxy`]). NAT and FullNAT real servers.
    pub synproxy: bool,
    /// TOA (DPVS's TCP option 254): FullNAT TCP connections of this
    /// service carry the client's address and port to the real server in
    /// a TCP option ([`crate::forward::ToaState`]). Ignored for other
    /// forwarding methods and protocols.
    pub toa: bool,
    /// Proxy Protocol (config `proxy_protocol`, DPVS's `--proxy-protocol`):
    /// the header this service's FullNAT TCP connections get at the start
    /// of the client's stream ([`crate::forward::proxyproto`]).
    pub proxy_protocol: Option<crate::forward::PpVersion>,
}

impl Service {
    /// The forwarding method for real server index `i` (the sorry server
    /// when `i` is out of range).
    #[inline]
    pub fn fwd_of(&self, i: usize) -> FwdMode {
        self.fwd.get(i).copied().unwrap_or(self.sorry_fwd)
    }

    /// A FullNAT local address of the same family as `rip`, chosen by
    /// `hash` when there are several.
    #[inline]
    pub fn laddr_for(&self, rip: IpAddr, hash: u64) -> Option<IpAddr> {
        let v4 = rip.is_ipv4();
        let n = self.laddrs.iter().filter(|a| a.is_ipv4() == v4).count();
        if n == 0 {
            return None;
        }
        let k = (hash % n as u64) as usize;
        self.laddrs
            .iter()
            .filter(|a| a.is_ipv4() == v4)
            .nth(k)
            .copied()
    }
}

/// A port as the packet path sees it.
#[derive(Debug, Clone)]
pub struct PortSnap {
    /// MAC address.
    pub mac: MacAddr,
    /// MTU (bytes of IP packet).
    pub mtu: u16,
    /// The port's IPv4 address and prefix, if any.
    pub v4: Option<(Ipv4Addr, u8)>,
    /// The port's IPv6 address and prefix, if any.
    pub v6: Option<(Ipv6Addr, u8)>,
}

/// Reverse-path filtering of a port, as Linux's `rp_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RpFilter {
    /// No check (`rp_filter=0`).
    Off,
    /// The route back to the source must leave through the port the
    /// packet came in on (`rp_filter=1`, the default).
    #[default]
    Strict,
    /// Some route back to the source must exist (`rp_filter=2`).
    Loose,
}

/// How a port treats input that could change state without being asked
/// for: reverse-path filter, source routes, martian sources, neighbour
/// learning. [`Default`] is Linux's defaults with `rp_filter` strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortGuard {
    /// Reverse-path filter for packets arriving on the port.
    pub rp_filter: RpFilter,
    /// Drop packets whose source can never be a client's (one of our
    /// addresses, multicast, broadcast, loopback, unspecified).
    pub martians: bool,
    /// Accept IPv4 source route options (Linux `accept_source_route`).
    pub accept_source_route: bool,
    /// What ARP/ND may teach the neighbour table on this port.
    pub learn: LearnPolicy,
}

impl Default for PortGuard {
    fn default() -> Self {
        PortGuard {
            rp_filter: RpFilter::Strict,
            martians: true,
            accept_source_route: false,
            learn: LearnPolicy::default(),
        }
    }
}

/// HA role: a backup holds configuration and connections but does not
/// answer for the VIPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves the VIPs.
    Master,
    /// Holds state, answers nothing for the VIPs, drops their traffic.
    Backup,
}

/// Everything a worker reads. Built by [`SnapshotBuilder`].
#[derive(Debug)]
pub struct Snapshot {
    /// Changes with every publication.
    pub generation: u64,
    services: Box<[Option<Service>]>,
    vips: FxMap<Endpoint, u16>,
    /// The firewall-mark classifier (`[[fwmark]]` rules).
    fwmark: Classifier,
    /// (mark, IPv6?) → id of the fwmark service (`ipvsadm -f MARK [-6]`).
    fwm: FxMap<(u32, bool), u16>,
    /// Real server (proto, RIP, rport) → service id, for NAT replies whose
    /// connection is gone (table full: stateless reverse NAT). Only
    /// unambiguous real servers are listed.
    nat_reverse: FxMap<Endpoint, (u16, u32)>,
    /// The ports, by port index.
    pub ports: Box<[PortSnap]>,
    /// Routes.
    pub routes: RouteTable,
    /// Addresses we own and answer ARP/ND for.
    pub addrs: OurAddrs,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// FullNAT local port range (inclusive).
    pub local_ports: (u16, u16),
    /// HA role.
    pub role: Role,
    /// Gratuitous ARP / unsolicited NA for addresses that appear (VIPs
    /// added, takeover as master): how many rounds, and nanoseconds between
    /// them (keepalived's `vrrp_garp_master_repeat` / `_refresh`).
    pub garp: (u8, u64),
    /// Connection sync (master side): workers report new connections and
    /// TCP state changes by IPVS's threshold/period rules when set.
    pub sync: Option<crate::sync::SyncParams>,
    /// IPVS's `conn_reuse_mode` sysctl (a bitmap, default 1): a SYN whose
    /// client tuple matches an old TCP connection expires that entry and
    /// is scheduled afresh when the entry is in TIME_WAIT or CLOSE (bit
    /// 1), or also in FIN_WAIT without replies seen, as DR/TUN leave
    /// connections (bit 2). 0: the SYN reuses the old entry.
    pub conn_reuse_mode: u8,
    /// Input checks per port (a port not listed gets the default).
    guards: Box<[PortGuard]>,
    /// Tunnel type per real-server id (TUN mode; an id not listed is
    /// ipip).
    tunnels: Box<[crate::forward::TunEncap]>,
    /// SYN proxy settings (for services with [`Service::synproxy`]).
    pub synproxy: crate::forward::synproxy::SynProxyConf,
}

impl Snapshot {
    /// The tunnel type of real server `rs` (its [`crate::sched::RealId`]):
    /// ipip unless the builder set another with
    /// [`SnapshotBuilder::tunnel`].
    #[inline]
    pub fn tunnel(&self, rs: u32) -> crate::forward::TunEncap {
        usize::try_from(rs)
            .ok()
            .and_then(|i| self.tunnels.get(i))
            .copied()
            .unwrap_or_default()
    }

    /// The input checks of `port`.
    #[inline]
    pub fn guard(&self, port: u16) -> PortGuard {
        self.guards
            .get(usize::from(port))
            .copied()
            .unwrap_or_default()
    }

    /// Whether `port` accepts IPv4 source routes (per packet, so cheaper
    /// than [`guard`](Self::guard)).
    #[inline(always)]
    pub fn accepts_source_route(&self, port: u16) -> bool {
        self.guards
            .get(usize::from(port))
            .is_some_and(|g| g.accept_source_route)
    }

    /// Whether `src`, arriving on `port`, passes the port's reverse-path
    /// filter.
    #[inline]
    pub fn rp_ok(&self, port: u16, src: IpAddr, mode: RpFilter) -> bool {
        match mode {
            RpFilter::Off => true,
            RpFilter::Loose => self.routes.lookup(src).is_some(),
            RpFilter::Strict => self.routes.lookup(src).is_some_and(|h| h.port == port),
        }
    }

    /// Addresses we answer for now (VIPs only as master), with their port.
    pub fn announced(&self) -> impl Iterator<Item = (IpAddr, u16)> + '_ {
        self.addrs
            .iter()
            .filter(|a| self.addrs.should_answer(a))
            .map(|a| (a.addr, a.port))
    }

    /// The service for a destination, in IPVS's order
    /// (`ip_vs_service_find`): the fwmark service of the mark the
    /// classifier gives the packet, if there is one for its family, else
    /// the (protocol, VIP, port) service. No classifier rules: one hash
    /// lookup, as before.
    #[inline]
    pub fn service_for(&self, proto: u8, dst: IpAddr, dport: u16) -> Option<&Service> {
        self.fwmark_service_for(proto, dst, dport)
            .or_else(|| self.addr_service_for(proto, dst, dport))
    }

    /// Whether a packet to (proto, dst, dport) is client → service, for
    /// the ownership decision: the same answer as
    /// [`service_for`](Self::service_for)`.is_some()`, but the
    /// (protocol, VIP, port) hash is tried first, so packets of those
    /// services never pay for classification.
    #[inline]
    pub fn to_service(&self, proto: u8, dst: IpAddr, dport: u16) -> bool {
        self.addr_service_for(proto, dst, dport).is_some()
            || self.fwmark_service_for(proto, dst, dport).is_some()
    }

    /// True when the snapshot has classifier rules.
    #[inline]
    pub fn has_fwmarks(&self) -> bool {
        !self.fwmark.is_empty()
    }

    /// The (protocol, VIP, port) service for a destination.
    #[inline]
    pub fn addr_service_for(&self, proto: u8, dst: IpAddr, dport: u16) -> Option<&Service> {
        let id = *self.vips.get(&(proto, dst, dport))?;
        self.service(id)
    }

    /// The fwmark service for a destination: the classifier's mark, then
    /// the service of that mark and the packet's address family.
    #[inline]
    pub fn fwmark_service_for(&self, proto: u8, dst: IpAddr, dport: u16) -> Option<&Service> {
        if self.fwmark.is_empty() {
            return None;
        }
        let mark = self.fwmark.classify(proto, dst, dport)?;
        self.fwmark_service(mark, dst.is_ipv6())
    }

    /// The fwmark service of `mark` for IPv4 or IPv6.
    #[inline]
    pub fn fwmark_service(&self, mark: u32, v6: bool) -> Option<&Service> {
        let id = *self.fwm.get(&(mark, v6))?;
        self.service(id)
    }

    /// The classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.fwmark
    }

    /// The service with stable id `id`.
    #[inline]
    pub fn service(&self, id: u16) -> Option<&Service> {
        self.services.get(id as usize)?.as_ref()
    }

    /// Every service.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().flatten()
    }

    /// Highest service id + 1.
    pub fn service_slots(&self) -> usize {
        self.services.len()
    }

    /// The NAT service whose real server is (proto, rip, rport), with that
    /// real server's id, if only one service uses it.
    #[inline]
    pub fn nat_reverse(&self, proto: u8, rip: IpAddr, rport: u16) -> Option<(&Service, u32)> {
        let (id, rs) = *self.nat_reverse.get(&(proto, rip, rport))?;
        Some((self.service(id)?, rs))
    }

    /// True when `addr` is a VIP of any service.
    #[inline]
    pub fn is_vip(&self, addr: IpAddr) -> bool {
        self.addrs
            .get(addr)
            .is_some_and(|a| a.class == AddrClass::Vip)
    }

    /// The neighbour view of the ports.
    pub fn port_infos(&self) -> Vec<PortInfo> {
        self.ports
            .iter()
            .map(|p| PortInfo {
                mac: p.mac,
                tci: None,
                ipv4: p.v4.map(|a| a.0),
                ipv6: p.v6.map(|a| a.0),
            })
            .collect()
    }

    /// The address of `port` in the family of `like` (the outer source of
    /// tunnelled packets, the source of generated ICMP errors).
    #[inline]
    pub fn port_addr(&self, port: u16, like: IpAddr) -> Option<IpAddr> {
        let p = self.ports.get(port as usize)?;
        match like {
            IpAddr::V4(_) => p.v4.map(|a| IpAddr::V4(a.0)),
            IpAddr::V6(_) => p.v6.map(|a| IpAddr::V6(a.0)),
        }
    }
}

/// Why a snapshot could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotError {
    /// Two services with the same (proto, VIP, port).
    DuplicateService(Endpoint),
    /// Two services with the same id.
    DuplicateId(u16),
    /// A service's `fwd` list does not match its real servers.
    FwdMismatch(u16),
    /// Two fwmark services with the same mark and family.
    DuplicateFwmark(u32, bool),
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::DuplicateService((p, a, port)) => {
                write!(f, "duplicate service proto {p} {a}:{port}")
            }
            SnapshotError::DuplicateId(id) => write!(f, "duplicate service id {id}"),
            SnapshotError::DuplicateFwmark(m, v6) => {
                let fam = if *v6 { " IPv6" } else { "" };
                write!(f, "duplicate fwmark service FWM {m}{fam}")
            }
            SnapshotError::FwdMismatch(id) => {
                write!(
                    f,
                    "service {id}: one forwarding method per real server needed"
                )
            }
        }
    }
}

impl std::error::Error for SnapshotError {}

/// Builds a [`Snapshot`].
#[derive(Debug)]
pub struct SnapshotBuilder {
    generation: u64,
    services: Vec<Service>,
    /// Which of `services` are fwmark services: (index, mark).
    fwm: Vec<(usize, u32)>,
    fwmark: Classifier,
    ports: Vec<PortSnap>,
    routes: RouteTable,
    extra_addrs: Vec<OurAddr>,
    timeouts: Timeouts,
    local_ports: (u16, u16),
    role: Role,
    garp: (u8, u64),
    sync: Option<crate::sync::SyncParams>,
    conn_reuse_mode: u8,
    guards: Vec<PortGuard>,
    tunnels: Vec<crate::forward::TunEncap>,
    synproxy: crate::forward::synproxy::SynProxyConf,
}

impl SnapshotBuilder {
    /// Starts a snapshot with `generation`, the ports and routes.
    pub fn new(generation: u64, ports: Vec<PortSnap>, routes: RouteTable) -> Self {
        SnapshotBuilder {
            generation,
            services: Vec::new(),
            fwm: Vec::new(),
            fwmark: Classifier::default(),
            ports,
            routes,
            extra_addrs: Vec::new(),
            timeouts: Timeouts::default(),
            local_ports: (1024, 65535),
            role: Role::Master,
            garp: (3, 1_000_000_000),
            sync: None,
            conn_reuse_mode: 1,
            guards: Vec::new(),
            tunnels: Vec::new(),
            synproxy: crate::forward::synproxy::SynProxyConf::default(),
        }
    }

    /// Sets the SYN proxy's settings.
    pub fn synproxy(mut self, c: crate::forward::synproxy::SynProxyConf) -> Self {
        self.synproxy = c;
        self
    }

    /// Sets the tunnel type of real server `rs` (its
    /// [`crate::sched::RealId`]; others are ipip).
    pub fn tunnel(mut self, rs: crate::sched::RealId, t: crate::forward::TunEncap) -> Self {
        let i = rs.0 as usize;
        if t != crate::forward::TunEncap::Ipip || i < self.tunnels.len() {
            if self.tunnels.len() <= i {
                self.tunnels.resize(i + 1, crate::forward::TunEncap::Ipip);
            }
            if let Some(slot) = self.tunnels.get_mut(i) {
                *slot = t;
            }
        }
        self
    }

    /// IPVS's `conn_reuse_mode` (see [`Snapshot::conn_reuse_mode`]).
    pub fn conn_reuse_mode(mut self, mode: u8) -> Self {
        self.conn_reuse_mode = mode;
        self
    }

    /// Sets the input checks of `port` (others keep the default).
    pub fn guard(mut self, port: u16, g: PortGuard) -> Self {
        let i = usize::from(port);
        if self.guards.len() <= i {
            self.guards.resize(i + 1, PortGuard::default());
        }
        if let Some(slot) = self.guards.get_mut(i) {
            *slot = g;
        }
        self
    }

    /// Gratuitous ARP rounds and the interval between them (ms).
    pub fn garp(mut self, count: u8, interval_ms: u64) -> Self {
        self.garp = (count, interval_ms.saturating_mul(1_000_000));
        self
    }

    /// Adds a service.
    pub fn service(mut self, s: Service) -> Self {
        self.services.push(s);
        self
    }

    /// Adds a fwmark service (`ipvsadm -A -f mark [-6]`): found by the
    /// mark the classifier gives a packet of the family of `s.vip` (which
    /// is otherwise unused: the unspecified address of the family), never
    /// by address and port. Its `vport` is 0 and its real servers' port 0
    /// keeps the packet's port.
    pub fn fwmark_service(mut self, mark: u32, s: Service) -> Self {
        self.fwm.push((self.services.len(), mark));
        self.services.push(s);
        self
    }

    /// Sets the firewall-mark classifier.
    pub fn classifier(mut self, c: Classifier) -> Self {
        self.fwmark = c;
        self
    }

    /// Sets the timeouts.
    pub fn timeouts(mut self, t: Timeouts) -> Self {
        self.timeouts = t;
        self
    }

    /// Sets the FullNAT local port range.
    pub fn local_ports(mut self, lo: u16, hi: u16) -> Self {
        self.local_ports = (lo.min(hi), hi.max(lo));
        self
    }

    /// Sets the HA role.
    pub fn role(mut self, r: Role) -> Self {
        self.role = r;
        self
    }

    /// Turns connection-sync events on (`Some`) or off.
    pub fn sync(mut self, p: Option<crate::sync::SyncParams>) -> Self {
        self.sync = p;
        self
    }

    /// Builds it: indexes services, collects the addresses to answer for
    /// (port addresses, VIPs on the port their route says, FullNAT local
    /// addresses).
    pub fn build(self) -> Result<Snapshot, SnapshotError> {
        let max_id = self
            .services
            .iter()
            .map(|s| s.id as usize + 1)
            .max()
            .unwrap_or(0);
        let mut services: Vec<Option<Service>> = (0..max_id).map(|_| None).collect();
        let mut vips: FxMap<Endpoint, u16> = FxMap::default();
        let mut reverse_count: FxMap<Endpoint, (u16, u32, u32)> = FxMap::default();
        let mut addrs: Vec<OurAddr> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.ports.iter().enumerate() {
            for a in [p.v4.map(|a| IpAddr::V4(a.0)), p.v6.map(|a| IpAddr::V6(a.0))]
                .into_iter()
                .flatten()
            {
                if seen.insert(a) {
                    addrs.push(OurAddr {
                        addr: a,
                        port: i as u16,
                        class: AddrClass::Port,
                        answer: true,
                    });
                }
            }
        }
        let mut fwm: FxMap<(u32, bool), u16> = FxMap::default();
        for (n, s) in self.services.into_iter().enumerate() {
            if s.fwd.len() != s.sched.reals().len() {
                return Err(SnapshotError::FwdMismatch(s.id));
            }
            if let Some(&(_, mark)) = self.fwm.iter().find(|(i, _)| *i == n) {
                // A fwmark service: found by mark, announced by the
                // classifier's host rules (below), no stateless reverse
                // NAT (it has no single VIP:port to put back).
                let v6 = s.vip.is_ipv6();
                if fwm.insert((mark, v6), s.id).is_some() {
                    return Err(SnapshotError::DuplicateFwmark(mark, v6));
                }
                for (m, a) in self.fwmark.hosts() {
                    if m == mark && a.is_ipv6() == v6 && seen.insert(a) {
                        addrs.push(OurAddr {
                            addr: a,
                            port: self.routes.lookup(a).map_or(0, |h| h.port),
                            class: AddrClass::Vip,
                            answer: self.role == Role::Master,
                        });
                    }
                }
                for l in s.laddrs.iter() {
                    let lport = self.routes.lookup(*l).map_or(0, |h| h.port);
                    if seen.insert(*l) {
                        addrs.push(OurAddr {
                            addr: *l,
                            port: lport,
                            class: AddrClass::Local,
                            answer: self.role == Role::Master,
                        });
                    }
                }
                let id = s.id as usize;
                match services.get_mut(id) {
                    Some(slot @ None) => *slot = Some(s),
                    _ => return Err(SnapshotError::DuplicateId(s.id)),
                }
                continue;
            }
            let key = (s.proto, s.vip, s.vport);
            if vips.insert(key, s.id).is_some() {
                return Err(SnapshotError::DuplicateService(key));
            }
            for (i, r) in s.sched.reals().iter().enumerate() {
                if s.fwd.get(i) == Some(&FwdMode::Nat) {
                    let e = reverse_count
                        .entry((s.proto, r.addr, r.port))
                        .or_insert((s.id, r.id.0, 0));
                    e.2 += 1;
                }
            }
            // A VIP is answered on the port its address routes out of (the
            // client side); a VIP no route covers is answered on port 0.
            let vport_idx = self.routes.lookup(s.vip).map_or(0, |h| h.port);
            if seen.insert(s.vip) {
                addrs.push(OurAddr {
                    addr: s.vip,
                    port: vport_idx,
                    class: AddrClass::Vip,
                    answer: self.role == Role::Master,
                });
            }
            for l in s.laddrs.iter() {
                let lport = self.routes.lookup(*l).map_or(0, |h| h.port);
                if seen.insert(*l) {
                    addrs.push(OurAddr {
                        addr: *l,
                        port: lport,
                        class: AddrClass::Local,
                        // FullNAT local addresses move with the VIPs: the
                        // real servers' replies must reach the master.
                        answer: self.role == Role::Master,
                    });
                }
            }
            let id = s.id as usize;
            match services.get_mut(id) {
                Some(slot @ None) => *slot = Some(s),
                _ => return Err(SnapshotError::DuplicateId(s.id)),
            }
        }
        addrs.extend(self.extra_addrs);
        let nat_reverse = reverse_count
            .into_iter()
            .filter(|(_, (_, _, n))| *n == 1)
            .map(|(k, (id, rs, _))| (k, (id, rs)))
            .collect();
        Ok(Snapshot {
            generation: self.generation,
            services: services.into_boxed_slice(),
            vips,
            fwmark: self.fwmark,
            fwm,
            nat_reverse,
            ports: self.ports.into_boxed_slice(),
            routes: self.routes,
            addrs: OurAddrs::new(addrs),
            timeouts: self.timeouts,
            local_ports: self.local_ports,
            role: self.role,
            garp: self.garp,
            sync: self.sync,
            conn_reuse_mode: self.conn_reuse_mode,
            guards: self.guards.into_boxed_slice(),
            tunnels: self.tunnels.into_boxed_slice(),
            synproxy: self.synproxy,
        })
    }
}
