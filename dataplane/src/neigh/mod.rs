//! Neighbour handling: ARP (IPv4) and ND (IPv6) for the director's own
//! addresses, and resolution of next hops to MAC addresses.
//!
//! Each worker owns one [`Neigh`]: its neighbour table, the packets waiting
//! for resolution, and its [`NeighCounters`]. The addresses we answer for
//! are an [`OurAddrs`] the caller passes in (it lives in the snapshot).
//! The caller passes the time `now` into every call (nanoseconds, or any
//! monotonic tick, as long as [`NeighConfig`] uses the same unit); nothing
//! here reads a clock, allocates after [`Neigh::new`], or panics.
//!
//! The worker's use:
//! - ARP frame ([`L3::Arp`]): [`Neigh::handle_arp`];
//!   NS/NA (ICMPv6 types 135/136): [`Neigh::handle_nd`]. On
//!   [`Verdict::Reply`] the buffer now holds the answer: transmit it on the
//!   port it came from. When the result reports [`Learned`] with packets
//!   pending, [`Neigh::release`] hands them back, MAC written.
//! - A packet to forward: route lookup, then [`Neigh::output`] with the
//!   next hop. It comes back ready to send, is queued, or is handed back
//!   to be freed; a [`Solicit`] asks the caller to send an ARP request or
//!   NS, built by [`Neigh::build_solicit`] into a buffer it provides.
//! - Between bursts: [`Neigh::tick`] ages entries, retransmits
//!   solicitations and gives up on neighbours that never answered.
//! - Taking over a VIP: [`Neigh::build_announce`] (gratuitous ARP or
//!   unsolicited NA), as many times as the caller likes.
//!
//! Learning is Linux-strict (`arp_accept=0`, see [`LearnPolicy`]): an
//! entry is created only by an answer to a resolution of ours, only on the
//! port whose subnet or routes hold the address ([`Neigh::set_guard`]);
//! requests and solicitations teach nothing; a known MAC changes only by an
//! answer to our own probe, a gratuitous ARP or an unsolicited NA with the
//! override flag (each switchable per port). What a frame would have taught
//! but may not is reported in [`Handled::refused`] as a named
//! [`DropReason`], and the table is left as it was.
//!
//! Limits: Ethernet only; one IPv4 and one IPv6 source address per port
//! for solicitations; no DAD for our own addresses; no proxy ARP/ND; the
//! table's hash is not keyed (an attacker on the segment can only fill it
//! to capacity, which eviction of stale entries bounds).

mod addrs;
mod counters;
pub mod packets;
mod table;

pub use addrs::{AddrClass, OurAddr, OurAddrs};
pub use counters::NeighCounters;
pub use table::{NeighInfo, NeighOrigin, NeighState};

use crate::buf::PacketBuf;
use crate::parse::{DropReason, PacketMeta, L3};
use crate::route::RouteTable;
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::icmpv6::{self, nd_flags, types, NdRepr};
use crate::wire::{arp, ip_proto, ipv6, Error};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use table::{Entry, Table};

/// What neighbour handling needs to know about a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortInfo {
    /// The port's MAC: the source of everything sent, the answer in every
    /// reply.
    pub mac: MacAddr,
    /// 802.1Q TCI for frames built from scratch (solicitations,
    /// announcements); replies keep the tag of the request.
    pub tci: Option<u16>,
    /// Source address of ARP requests on this port (`None`: 0.0.0.0).
    pub ipv4: Option<Ipv4Addr>,
    /// Source address of neighbour solicitations on this port (usually
    /// its link-local address; `None`: no IPv6 resolution on this port).
    pub ipv6: Option<Ipv6Addr>,
}

/// Sizes and timers. Times are in the unit of `now`; the
/// [`Default`] values are in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    /// Most neighbours in the table.
    pub capacity: usize,
    /// Most packets waiting for one neighbour.
    pub queue_per_neigh: usize,
    /// Most packets waiting in all.
    pub queue_total: usize,
    /// How long a confirmation keeps an entry reachable (Linux
    /// `base_reachable_time`, 30 s).
    pub reachable_time: u64,
    /// How long an entry may stay stale before it is removed (Linux
    /// `gc_stale_time`, 60 s).
    pub stale_time: u64,
    /// Least time between two solicitations for one neighbour (1 s).
    pub retrans_time: u64,
    /// Unanswered solicitations after which a resolution fails, or a
    /// stale entry is removed (3).
    pub max_probes: u8,
}

/// One second in nanoseconds.
const SEC: u64 = 1_000_000_000;

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            capacity: 4096,
            queue_per_neigh: 8,
            queue_total: 1024,
            reachable_time: 30 * SEC,
            stale_time: 60 * SEC,
            retrans_time: SEC,
            max_probes: 3,
        }
    }
}

/// What ARP/ND may teach the neighbour table on one port. Learning is
/// Linux-strict (`arp_accept=0`): an entry is created only by an answer
/// to a resolution of ours, only on the port whose subnet or routes hold
/// the address; a known MAC changes only by an answer to our own probe,
/// or where these switches allow it. [`Default`] is Linux's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnPolicy {
    /// Create entries from unsolicited ARP replies and gratuitous ARPs
    /// (Linux `arp_accept=1`). Default off.
    pub arp_accept: bool,
    /// Let a gratuitous ARP change the MAC of a neighbour in the table (a
    /// router or real server failing over announces itself so; Linux
    /// does). Default on; off refuses them as `arp_mac_change_refused`.
    pub garp_update: bool,
    /// Honour the override flag of unsolicited neighbour advertisements
    /// (RFC 4861 7.2.5, as Linux). Default on; off lets only a solicited
    /// advertisement answering our own solicitation change a known MAC.
    pub nd_override: bool,
}

impl Default for LearnPolicy {
    fn default() -> Self {
        LearnPolicy {
            arp_accept: false,
            garp_update: true,
            nd_override: true,
        }
    }
}

/// What became of an ARP/ND frame handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The buffer now holds the answer: transmit it on the port it came
    /// in on.
    Reply,
    /// For us and dealt with (learned from, or answering switched off):
    /// free it.
    Consumed,
    /// Not for one of our addresses on this port: the caller may pass it
    /// to the kernel or free it.
    NotOurs,
    /// Refused as malformed (counted): free it.
    Malformed,
}

/// A neighbour learned or updated by an ARP/ND frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    /// Its address.
    pub ip: IpAddr,
    /// The port it is on.
    pub port: u16,
    /// Its MAC.
    pub mac: MacAddr,
    /// Packets waiting for it: hand them out with [`Neigh::release`].
    pub pending: usize,
}

/// The result of [`Neigh::handle_arp`] and [`Neigh::handle_nd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handled {
    /// What to do with the frame.
    pub verdict: Verdict,
    /// A neighbour learned, confirmed or whose MAC changed, or an answer
    /// this table had not asked for (another worker may have): the
    /// caller relays it to the other workers, which take it only for a
    /// resolution of their own ([`Neigh::learn_relayed`]).
    pub learned: Option<Learned>,
    /// The frame changed this table (an entry created, resolved, or given
    /// a new MAC).
    pub changed: bool,
    /// What the frame said was refused, and why: the caller counts it.
    /// The table is unchanged.
    pub refused: Option<DropReason>,
}

impl Handled {
    fn verdict(verdict: Verdict) -> Self {
        Handled {
            verdict,
            learned: None,
            changed: false,
            refused: None,
        }
    }

    fn with(verdict: Verdict, t: Taught) -> Self {
        let mut h = Handled::verdict(verdict);
        match t {
            Taught::Changed(l) => {
                h.learned = Some(l);
                h.changed = true;
            }
            Taught::Confirmed(l) => h.learned = Some(l),
            Taught::Nothing => {}
            Taught::Refused(r) => h.refused = Some(r),
            Taught::Offered(l, r) => {
                h.learned = Some(l);
                h.refused = Some(r);
            }
        }
        h
    }
}

/// What a frame taught the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taught {
    /// An entry was created, resolved or given a new MAC.
    Changed(Learned),
    /// A known entry was confirmed, nothing else changed.
    Confirmed(Learned),
    /// Nothing to learn.
    Nothing,
    /// Refused (counted by the caller), table unchanged.
    Refused(DropReason),
    /// An answer to a resolution this table has no entry for: refused
    /// here, offered to the other workers.
    Offered(Learned, DropReason),
}

/// A request to send an ARP request or neighbour solicitation; build it
/// with [`Neigh::build_solicit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solicit {
    /// The address to resolve.
    pub target: IpAddr,
    /// The port to send on.
    pub port: u16,
    /// The known MAC for a unicast probe of a stale entry; `None` for a
    /// broadcast/multicast resolution.
    pub unicast: Option<MacAddr>,
}

/// What became of a packet handed to [`Neigh::output`].
#[derive(Debug)]
pub enum Output<T> {
    /// The next hop's MAC is known and written (destination, and the port
    /// MAC as source): transmit on the port.
    Send(T),
    /// Waiting for resolution; it will come back from [`Neigh::release`],
    /// or from [`Neigh::tick`] as dropped if resolution fails.
    Queued,
    /// Not sent (queue or table full, or not an Ethernet frame; counted):
    /// free it.
    Dropped(T),
}

/// The result of [`Neigh::output`].
#[derive(Debug)]
#[must_use]
pub struct OutputResult<T> {
    /// What became of the packet.
    pub output: Output<T>,
    /// A solicitation to send, if one is due.
    pub solicit: Option<Solicit>,
}

/// What [`Neigh::tick`] asks of the caller.
#[derive(Debug)]
pub enum TickEvent<T> {
    /// Send this solicitation (a retransmission).
    Solicit(Solicit),
    /// A packet whose resolution failed: free it.
    Dropped(T),
}

/// A worker's neighbour state: table, wait queues, counters.
#[derive(Debug)]
pub struct Neigh<T> {
    ports: Box<[PortInfo]>,
    /// Routes deciding which port an address may be learned on (`None`:
    /// any port, for tests of the state machine alone).
    routes: Option<RouteTable>,
    /// Learning switches per port (a port not listed: the default).
    policy: Box<[LearnPolicy]>,
    cfg: NeighConfig,
    table: Table<T>,
    /// Counters, written only by this worker.
    pub counters: NeighCounters,
}

/// Whether an IPv4 address may be a neighbour's (not multicast, not
/// limited broadcast).
fn ipv4_unicast(a: Ipv4Addr) -> bool {
    !a.is_multicast() && !a.is_broadcast()
}

/// How a frame updates a neighbour entry.
#[derive(Debug, Clone, Copy)]
struct LearnHow {
    /// Create the entry if absent.
    create: bool,
    /// The frame confirms reachability (a solicited answer).
    confirm: bool,
    /// The frame may replace a known MAC.
    override_mac: bool,
}

impl<T: PacketBuf> Neigh<T> {
    /// Neighbour state for the given ports (indexed by port number).
    /// Allocates the table and the packet pool.
    pub fn new(ports: impl IntoIterator<Item = PortInfo>, cfg: NeighConfig) -> Self {
        Neigh {
            ports: ports.into_iter().collect(),
            routes: None,
            policy: Box::new([]),
            cfg,
            table: Table::new(cfg.capacity, cfg.queue_total),
            counters: NeighCounters::default(),
        }
    }

    /// Sets the routes that decide on which port an address may be
    /// learned, and the learning switches of each port (by port index).
    /// Called when a snapshot is installed, not on the packet path.
    pub fn set_guard(&mut self, routes: RouteTable, policy: impl IntoIterator<Item = LearnPolicy>) {
        self.routes = Some(routes);
        self.policy = policy.into_iter().collect();
    }

    /// The learning switches of `port`.
    fn policy(&self, port: u16) -> LearnPolicy {
        self.policy
            .get(usize::from(port))
            .copied()
            .unwrap_or_default()
    }

    /// Whether `ip` may be a neighbour on `port`: the port's subnet or
    /// routes hold it (IPv6 link-local addresses are on every link).
    fn on_port(&self, ip: IpAddr, port: u16) -> bool {
        if let IpAddr::V6(a) = ip {
            if a.segments()[0] & 0xffc0 == 0xfe80 {
                return true;
            }
        }
        match &self.routes {
            None => true,
            Some(r) => r.lookup(ip).is_some_and(|h| h.port == port),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &NeighConfig {
        &self.cfg
    }

    /// The port's description, if the port exists.
    pub fn port(&self, port: u16) -> Option<&PortInfo> {
        self.ports.get(usize::from(port))
    }

    /// The entry for (`ip`, `port`), if any.
    pub fn get(&self, ip: IpAddr, port: u16) -> Option<NeighInfo> {
        let i = self.table.find(ip, port)?;
        self.table.get(i).map(NeighInfo::from)
    }

    /// Every entry (for `rvsadm` and tests; not for the packet path).
    pub fn entries(&self) -> impl Iterator<Item = NeighInfo> + '_ {
        self.table.iter().map(NeighInfo::from)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Packets waiting for resolution, all neighbours together.
    pub fn queued(&self) -> usize {
        self.table.queued_total
    }

    /// The MAC to send to `ip` on `port` now, without queueing or
    /// soliciting (`None` unless reachable or stale).
    #[inline]
    pub fn lookup(&self, ip: IpAddr, port: u16) -> Option<MacAddr> {
        let e = self.table.get(self.table.find(ip, port)?)?;
        (e.state != NeighState::Incomplete).then_some(e.mac)
    }

    /// Adds or refreshes an entry, confirmed reachable now (it then ages
    /// like any other). `false` if the table is full.
    pub fn insert_static(&mut self, ip: IpAddr, port: u16, mac: MacAddr, now: u64) -> bool {
        let how = LearnHow {
            create: true,
            confirm: true,
            override_mac: true,
        };
        self.learn(ip, port, mac, now, how);
        match self.table.find(ip, port) {
            Some(i) => {
                if let Some(e) = self.table.get_mut(i) {
                    e.origin = NeighOrigin::Static;
                }
                true
            }
            None => false,
        }
    }

    /// An answer another worker received (relayed by control): taken only
    /// where this table is resolving or probing the neighbour (an entry
    /// incomplete, or probed since its last confirmation), or to confirm
    /// the MAC it already has. Never creates an entry. Returns whether the
    /// table changed.
    pub fn learn_relayed(&mut self, ip: IpAddr, port: u16, mac: MacAddr, now: u64) -> bool {
        let Some(i) = self.table.find(ip, port) else {
            return false;
        };
        let Some(e) = self.table.get(i).copied() else {
            return false;
        };
        if e.state != NeighState::Incomplete && e.mac == mac {
            self.confirm(i, now);
            return false;
        }
        if e.state != NeighState::Incomplete && e.probes == 0 {
            return false;
        }
        self.set_mac(i, mac, NeighState::Reachable, NeighOrigin::Relayed, now);
        true
    }

    // ---- strict learning ---------------------------------------------

    /// Marks the entry at `i` confirmed reachable now.
    fn confirm(&mut self, i: usize, now: u64) {
        if let Some(e) = self.table.get_mut(i) {
            if e.state != NeighState::Incomplete {
                e.state = NeighState::Reachable;
                e.confirmed = now;
                e.probes = 0;
            }
        }
    }

    /// Gives the entry at `i` a MAC (new or resolved) and a state, and
    /// counts it.
    fn set_mac(
        &mut self,
        i: usize,
        mac: MacAddr,
        state: NeighState,
        origin: NeighOrigin,
        now: u64,
    ) {
        let Some(e) = self.table.get_mut(i) else {
            return;
        };
        let was_known = e.state != NeighState::Incomplete;
        let changed = e.mac != mac;
        e.mac = mac;
        e.state = state;
        e.origin = origin;
        e.confirmed = now;
        e.stale_since = now;
        e.probes = 0;
        if was_known && changed {
            self.counters.mac_changed += 1;
        }
        self.counters.learned += 1;
    }

    /// What an answer (an ARP reply to us, a solicited NA) about `ip` on
    /// `port` teaches: it resolves an incomplete entry, confirms a known
    /// MAC, and replaces a known MAC only when we probed the neighbour
    /// since its last confirmation. `reachable`: the answer asserts
    /// reachability (unicast reply, solicited NA). `no_entry`: what to
    /// refuse with when nothing here asked (the answer is still offered
    /// to the other workers). `override_ok`: a different MAC may replace
    /// the known one when probing (ND's override flag; always for ARP).
    fn answer(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        now: u64,
        override_ok: bool,
        no_entry: DropReason,
    ) -> Taught {
        let Some(i) = self.table.find(ip, port) else {
            if self.policy(port).arp_accept && matches!(ip, IpAddr::V4(_)) {
                return self.create(ip, port, mac, NeighOrigin::Unsolicited, now);
            }
            let l = Learned {
                ip,
                port,
                mac,
                pending: 0,
            };
            return Taught::Offered(l, no_entry);
        };
        let Some(e) = self.table.get(i).copied() else {
            return Taught::Nothing;
        };
        if e.state == NeighState::Incomplete {
            self.set_mac(i, mac, NeighState::Reachable, NeighOrigin::Resolved, now);
            return self.learned_at(i).map_or(Taught::Nothing, Taught::Changed);
        }
        if e.mac == mac {
            self.confirm(i, now);
            return self
                .learned_at(i)
                .map_or(Taught::Nothing, Taught::Confirmed);
        }
        if e.probes > 0 && override_ok {
            self.set_mac(i, mac, NeighState::Reachable, NeighOrigin::Resolved, now);
            return self.learned_at(i).map_or(Taught::Nothing, Taught::Changed);
        }
        Taught::Refused(match ip {
            IpAddr::V4(_) => DropReason::ArpMacChangeRefused,
            IpAddr::V6(_) => DropReason::NdMacChangeRefused,
        })
    }

    /// Creates a stale entry (`arp_accept`, or a gratuitous ARP with it).
    fn create(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        origin: NeighOrigin,
        now: u64,
    ) -> Taught {
        let mut e = Entry::new(ip, port, mac, NeighState::Stale, now);
        e.origin = origin;
        match self.insert(e) {
            Some(i) => {
                self.counters.learned += 1;
                self.learned_at(i).map_or(Taught::Nothing, Taught::Changed)
            }
            None => Taught::Nothing,
        }
    }

    /// What an announcement (a gratuitous ARP, an unsolicited NA with the
    /// override flag) about `ip` on `port` teaches, when `allowed` by the
    /// port's switches: it resolves or updates an existing entry (stale:
    /// not a confirmation); it creates one only with `create`.
    fn announcement(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        now: u64,
        (allowed, create): (bool, bool),
        origin: NeighOrigin,
    ) -> Taught {
        let v4 = matches!(ip, IpAddr::V4(_));
        let Some(i) = self.table.find(ip, port) else {
            if create {
                return self.create(ip, port, mac, origin, now);
            }
            return Taught::Refused(if v4 {
                DropReason::ArpUnsolicited
            } else {
                DropReason::NdUnsolicited
            });
        };
        let Some(e) = self.table.get(i).copied() else {
            return Taught::Nothing;
        };
        if e.state != NeighState::Incomplete && e.mac == mac {
            return Taught::Nothing;
        }
        if !allowed {
            return Taught::Refused(if v4 {
                DropReason::ArpMacChangeRefused
            } else {
                DropReason::NdMacChangeRefused
            });
        }
        self.set_mac(i, mac, NeighState::Stale, origin, now);
        self.learned_at(i).map_or(Taught::Nothing, Taught::Changed)
    }

    /// What a request or solicitation from `ip` (answered or not) teaches:
    /// nothing (rvs learns only what it resolves), but a claim of another
    /// MAC for a known neighbour is refused, and counted.
    fn request_from(&self, ip: IpAddr, port: u16, mac: MacAddr) -> Taught {
        let known = self
            .table
            .find(ip, port)
            .and_then(|i| self.table.get(i))
            .filter(|e| e.state != NeighState::Incomplete);
        match known {
            Some(e) if e.mac != mac => Taught::Refused(match ip {
                IpAddr::V4(_) => DropReason::ArpMacChangeRefused,
                IpAddr::V6(_) => DropReason::NdMacChangeRefused,
            }),
            _ => Taught::Nothing,
        }
    }

    // ---- learning ------------------------------------------------------

    /// Applies what a frame says about `ip` on `port` (RFC 4861 7.2.5 and
    /// 7.3.3, the same rules for ARP with override always set).
    fn learn(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        now: u64,
        how: LearnHow,
    ) -> Option<Learned> {
        let i = match self.table.find(ip, port) {
            Some(i) => i,
            None => {
                if !how.create {
                    return None;
                }
                let state = if how.confirm {
                    NeighState::Reachable
                } else {
                    NeighState::Stale
                };
                let i = self.insert(Entry::new(ip, port, mac, state, now))?;
                self.counters.learned += 1;
                return self.learned_at(i);
            }
        };
        let e = self.table.get_mut(i)?;
        if e.state == NeighState::Incomplete {
            e.mac = mac;
            e.state = if how.confirm {
                NeighState::Reachable
            } else {
                NeighState::Stale
            };
            e.confirmed = now;
            e.stale_since = now;
            e.probes = 0;
            self.counters.learned += 1;
            return self.learned_at(i);
        }
        let changed = e.mac != mac;
        if changed && !how.override_mac {
            // RFC 4861 7.2.5: keep the MAC, but doubt it.
            if e.state == NeighState::Reachable {
                e.state = NeighState::Stale;
                e.stale_since = now;
            }
            return None;
        }
        if changed {
            e.mac = mac;
        }
        if how.confirm {
            e.state = NeighState::Reachable;
            e.confirmed = now;
            e.probes = 0;
        } else if changed {
            e.state = NeighState::Stale;
            e.stale_since = now;
            e.probes = 0;
        }
        if changed {
            self.counters.mac_changed += 1;
            self.counters.learned += 1;
            return self.learned_at(i);
        }
        if how.confirm {
            // Nothing new here, but an answer confirms the neighbour: report
            // it anyway, because with several workers the one that asked may
            // be another (RSS delivered the answer here) and only a report
            // gets relayed to it.
            return self.learned_at(i);
        }
        None
    }

    fn learned_at(&self, i: usize) -> Option<Learned> {
        self.table.get(i).map(|e| Learned {
            ip: e.ip,
            port: e.port,
            mac: e.mac,
            pending: e.q_len as usize,
        })
    }

    /// Inserts a new entry, evicting the longest-stale one if full.
    fn insert(&mut self, e: Entry) -> Option<usize> {
        if self.table.is_full() {
            match self.table.eviction_candidate() {
                Some(v) => {
                    self.table.remove(v);
                    self.counters.evicted += 1;
                }
                None => {
                    self.counters.table_full += 1;
                    return None;
                }
            }
        }
        self.table.insert(e)
    }

    // ---- ARP -----------------------------------------------------------

    /// Handles an ARP frame that arrived on `port` (`meta` from
    /// [`parse`](crate::parse::parse) of `buf`): answers requests for our
    /// addresses on this port in place, learns senders, and counts.
    pub fn handle_arp<B: PacketBuf + ?Sized>(
        &mut self,
        addrs: &OurAddrs,
        buf: &mut B,
        meta: &PacketMeta,
        port: u16,
        now: u64,
    ) -> Handled {
        let l3 = usize::from(meta.l3_offset);
        let parsed = buf
            .data()
            .get(l3..)
            .ok_or(Error::Truncated)
            .and_then(arp::Packet::new_checked)
            .and_then(|p| arp::Repr::parse(&p));
        let a = match parsed {
            Ok(a)
                if meta.l3 == L3::Arp
                    && matches!(a.operation, arp::OP_REQUEST | arp::OP_REPLY)
                    && a.sender_mac.is_unicast()
                    && a.sender_mac != MacAddr::ZERO
                    && ipv4_unicast(a.sender_ip) =>
            {
                a
            }
            _ => {
                self.counters.arp_malformed += 1;
                return Handled::verdict(Verdict::Malformed);
            }
        };
        let Some(port_info) = self.port(port).copied() else {
            self.counters.arp_not_ours += 1;
            return Handled::verdict(Verdict::NotOurs);
        };
        let sender = IpAddr::V4(a.sender_ip);
        if addrs.contains(sender) {
            // Someone else speaks for one of our addresses (the HA peer
            // taking a VIP over, or a misconfiguration): never learn our
            // own address as a neighbour.
            if a.sender_mac != port_info.mac {
                self.counters.addr_conflict += 1;
            }
            return Handled::verdict(Verdict::Consumed);
        }
        let probe = a.sender_ip.is_unspecified();
        let gratuitous = !probe && a.sender_ip == a.target_ip;
        let ours = addrs
            .get(IpAddr::V4(a.target_ip))
            .filter(|o| o.port == port)
            .copied();
        // Replies to the source address of our requests count as ours
        // even if that address is not in `addrs`.
        let reply_to_us =
            a.operation == arp::OP_REPLY && (ours.is_some() || port_info.ipv4 == Some(a.target_ip));
        // Whatever an ARP would teach about its sender, it teaches only on
        // the port whose subnet or routes hold the sender's address.
        let wrong_port = !probe && !self.on_port(sender, port);
        if reply_to_us && !gratuitous {
            self.counters.arp_replies_received += 1;
            if wrong_port {
                return Handled::with(Verdict::Consumed, Taught::Refused(DropReason::ArpWrongPort));
            }
            // A unicast reply asserts reachability; a broadcast one does
            // not, as in Linux, but it still answers.
            let t = self.answer(
                sender,
                port,
                a.sender_mac,
                now,
                true,
                DropReason::ArpUnsolicited,
            );
            return Handled::with(Verdict::Consumed, t);
        }
        match ours {
            Some(o) if !gratuitous && a.operation == arp::OP_REQUEST => {
                // A request teaches nothing: rvs resolves what it sends to.
                let taught = if probe {
                    Taught::Nothing
                } else {
                    self.request_from(sender, port, a.sender_mac)
                };
                if !addrs.should_answer(&o) {
                    self.counters.arp_requests_suppressed += 1;
                    return Handled::with(Verdict::Consumed, taught);
                }
                let reply = arp::Repr {
                    operation: arp::OP_REPLY,
                    sender_mac: port_info.mac,
                    sender_ip: a.target_ip,
                    target_mac: a.sender_mac,
                    target_ip: a.sender_ip,
                };
                let frame = buf.data_mut();
                let written = frame
                    .get_mut(l3..)
                    .map(|b| reply.emit(b).is_ok())
                    .unwrap_or(false)
                    && match ethernet::Frame::new_checked(&mut *frame) {
                        Ok(mut f) => {
                            f.set_dst_addr(a.sender_mac);
                            f.set_src_addr(port_info.mac);
                            true
                        }
                        Err(_) => false,
                    };
                if !written {
                    self.counters.arp_malformed += 1;
                    return Handled::verdict(Verdict::Malformed);
                }
                self.counters.arp_requests_answered += 1;
                Handled::with(Verdict::Reply, taught)
            }
            _ if gratuitous => {
                if wrong_port {
                    return Handled::with(
                        Verdict::NotOurs,
                        Taught::Refused(DropReason::ArpWrongPort),
                    );
                }
                // Announcements update what we know (if allowed); they
                // create only with `arp_accept`.
                let pol = self.policy(port);
                let t = self.announcement(
                    sender,
                    port,
                    a.sender_mac,
                    now,
                    (pol.garp_update, pol.arp_accept),
                    NeighOrigin::Garp,
                );
                Handled::with(Verdict::NotOurs, t)
            }
            _ => {
                self.counters.arp_not_ours += 1;
                Handled::verdict(Verdict::NotOurs)
            }
        }
    }

    // ---- ND ------------------------------------------------------------

    /// Handles a neighbour solicitation or advertisement that arrived on
    /// `port` (`meta` from [`parse`](crate::parse::parse) of `buf`):
    /// validates it (RFC 4861 7.1: hop limit 255, checksum, code 0,
    /// options), answers solicitations for our addresses on this port with
    /// a solicited advertisement written over the buffer, learns from
    /// source/target link-layer options, and counts. Other ICMPv6
    /// messages are [`Verdict::NotOurs`].
    pub fn handle_nd<B: PacketBuf + ?Sized>(
        &mut self,
        addrs: &OurAddrs,
        buf: &mut B,
        meta: &PacketMeta,
        port: u16,
        now: u64,
    ) -> Handled {
        let (IpAddr::V6(src), IpAddr::V6(dst)) = (meta.src, meta.dst) else {
            return Handled::verdict(Verdict::NotOurs);
        };
        if meta.l3 != L3::Ipv6
            || meta.l4_proto != ip_proto::ICMPV6
            || !matches!(
                meta.icmp_type,
                types::NEIGHBOR_SOLICIT | types::NEIGHBOR_ADVERT
            )
        {
            return Handled::verdict(Verdict::NotOurs);
        }
        if meta.is_fragment() {
            // RFC 6980: ND messages are never fragmented.
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        }
        if meta.ttl != packets::ND_HOP_LIMIT {
            self.counters.nd_bad_hop_limit += 1;
            return Handled::verdict(Verdict::Malformed);
        }
        let start = usize::from(meta.l4_offset);
        let end = start + usize::from(meta.l4_len);
        let Some(msg) = buf.data().get(start..end) else {
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        };
        let Ok(p) = icmpv6::Packet::new_checked(msg) else {
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        };
        if !p.verify_checksum(src, dst) {
            self.counters.nd_bad_checksum += 1;
            return Handled::verdict(Verdict::Malformed);
        }
        let opts_len: usize = p.nd_options().map(|(_, b)| b.len() + 2).sum();
        let Ok(nd) = NdRepr::parse(&p) else {
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        };
        let unspecified = src.is_unspecified();
        let bad = p.msg_code() != 0
            || !p.is_nd()
            || src.is_multicast()
            || opts_len != msg.len().saturating_sub(icmpv6::ND_LEN)
            || nd.target.is_multicast()
            || nd
                .ll_addr
                .is_some_and(|m| !m.is_unicast() || m == MacAddr::ZERO)
            || p.nd_options().any(|(t, b)| {
                matches!(t, icmpv6::OPT_SOURCE_LL | icmpv6::OPT_TARGET_LL) && b.len() < 6
            })
            || match nd.msg_type {
                // DAD: only to a solicited-node address, no SLLA.
                types::NEIGHBOR_SOLICIT => {
                    unspecified
                        && (nd.ll_addr.is_some() || dst != packets::solicited_node(nd.target))
                }
                // A solicited NA is never multicast.
                _ => dst.is_multicast() && nd.flags & nd_flags::SOLICITED != 0,
            };
        if bad {
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        }
        let frame_src = ethernet::Frame::new_checked(buf.data())
            .map(|f| f.src_addr())
            .unwrap_or(MacAddr::ZERO);
        if nd.msg_type == types::NEIGHBOR_ADVERT {
            return self.handle_na(addrs, &nd, port, now);
        }
        if addrs.contains(IpAddr::V6(src)) {
            self.counters.addr_conflict += 1;
            return Handled::verdict(Verdict::Consumed);
        }
        let ours = addrs
            .get(IpAddr::V6(nd.target))
            .filter(|o| o.port == port)
            .copied();
        let Some(o) = ours else {
            self.counters.nd_not_ours += 1;
            return Handled::verdict(Verdict::NotOurs);
        };
        // A solicitation teaches nothing (rvs resolves what it sends to);
        // a known neighbour claiming another MAC is refused.
        let taught = match nd.ll_addr {
            Some(mac) if !unspecified => self.request_from(IpAddr::V6(src), port, mac),
            _ => Taught::Nothing,
        };
        if !addrs.should_answer(&o) {
            self.counters.nd_solicits_suppressed += 1;
            return Handled::with(Verdict::Consumed, taught);
        }
        let Some(port_info) = self.port(port).copied() else {
            self.counters.nd_not_ours += 1;
            return Handled::verdict(Verdict::NotOurs);
        };
        // The answer: to the soliciting node, or to all nodes for DAD.
        let (reply_dst, dst_mac, flags) = if unspecified {
            let d = packets::ALL_NODES;
            (d, packets::ipv6_multicast_mac(d), nd_flags::OVERRIDE)
        } else {
            (
                src,
                nd.ll_addr.unwrap_or(frame_src),
                nd_flags::SOLICITED | nd_flags::OVERRIDE,
            )
        };
        let na = NdRepr {
            msg_type: types::NEIGHBOR_ADVERT,
            flags,
            target: nd.target,
            ll_addr: Some(port_info.mac),
        };
        if !write_na(
            buf,
            usize::from(meta.l3_offset),
            dst_mac,
            port_info.mac,
            nd.target,
            reply_dst,
            &na,
        ) {
            self.counters.nd_malformed += 1;
            return Handled::verdict(Verdict::Malformed);
        }
        self.counters.nd_solicits_answered += 1;
        Handled::with(Verdict::Reply, taught)
    }

    fn handle_na(&mut self, addrs: &OurAddrs, nd: &NdRepr, port: u16, now: u64) -> Handled {
        self.counters.nd_adverts_received += 1;
        let ip = IpAddr::V6(nd.target);
        if addrs.contains(ip) {
            // Someone else claims our address; nothing to learn.
            if nd.ll_addr != self.port(port).map(|p| p.mac) {
                self.counters.addr_conflict += 1;
            }
            return Handled::verdict(Verdict::Consumed);
        }
        let solicited = nd.flags & nd_flags::SOLICITED != 0;
        let override_flag = nd.flags & nd_flags::OVERRIDE != 0;
        if !self.on_port(ip, port) {
            return Handled::with(Verdict::Consumed, Taught::Refused(DropReason::NdWrongPort));
        }
        let known = self
            .table
            .find(ip, port)
            .and_then(|i| self.table.get(i))
            .map(|e| (e.state, e.mac));
        let Some(mac) = nd.ll_addr.or(match known {
            // Without a target link-layer option an NA can only confirm
            // the MAC we have.
            Some((state, m)) if state != NeighState::Incomplete => Some(m),
            _ => None,
        }) else {
            if known.is_none() {
                self.counters.nd_not_ours += 1;
                return Handled::verdict(Verdict::NotOurs);
            }
            return Handled::verdict(Verdict::Consumed);
        };
        let t = if solicited {
            // An answer: resolves, confirms, or (probing) replaces if O.
            self.answer(ip, port, mac, now, override_flag, DropReason::NdUnsolicited)
        } else {
            match known {
                None => {
                    self.counters.nd_not_ours += 1;
                    return Handled::with(
                        Verdict::NotOurs,
                        Taught::Refused(DropReason::NdUnsolicited),
                    );
                }
                Some((_, m)) if m == mac => Taught::Nothing,
                // RFC 4861 7.2.5: an unsolicited NA with O set replaces the
                // MAC (unless switched off); without O it changes nothing.
                Some((state, _)) if override_flag || state == NeighState::Incomplete => {
                    let allowed = state == NeighState::Incomplete || self.policy(port).nd_override;
                    self.announcement(ip, port, mac, now, (allowed, false), NeighOrigin::Advert)
                }
                Some(_) => Taught::Refused(DropReason::NdMacChangeRefused),
            }
        };
        Handled::with(Verdict::Consumed, t)
    }

    // ---- resolution ------------------------------------------------------

    /// Whether a solicitation for the entry at `i` is due (rate limit:
    /// one per `retrans_time`); if so records it.
    fn solicit_due(&mut self, i: usize, now: u64) -> Option<Solicit> {
        let retrans = self.cfg.retrans_time;
        let e = self.table.get_mut(i)?;
        if e.last_solicit
            .is_some_and(|t| now.saturating_sub(t) < retrans)
        {
            return None;
        }
        e.last_solicit = Some(now);
        e.probes = e.probes.saturating_add(1);
        let s = Solicit {
            target: e.ip,
            port: e.port,
            unicast: (e.state != NeighState::Incomplete).then_some(e.mac),
        };
        self.counters.solicits_sent += 1;
        Some(s)
    }

    /// The generation of the table: changes whenever an entry may have
    /// changed (learned, confirmed, aged, removed). An answer of
    /// [`reachable`](Self::reachable) stays exact while it is unchanged.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.table.generation()
    }

    /// For a reachable entry (`hop`, `port`): the neighbour's MAC, the
    /// port's MAC and the time from which [`output`](Self::output) would
    /// treat the entry as stale. Until then, and while the
    /// [`generation`](Self::generation) is unchanged, `output` of a frame
    /// to it does exactly [`write_macs`](Self::write_macs) and sends.
    pub fn reachable(&self, hop: IpAddr, port: u16) -> Option<(MacAddr, MacAddr, u64)> {
        let port_mac = self.port(port)?.mac;
        let e = self.table.get(self.table.find(hop, port)?)?;
        (e.state == NeighState::Reachable && self.cfg.reachable_time > 0).then(|| {
            (
                e.mac,
                port_mac,
                e.confirmed.saturating_add(self.cfg.reachable_time),
            )
        })
    }

    /// Writes the destination and source MAC of the Ethernet frame `pkt`
    /// (what [`output`](Self::output) does to a frame for a reachable
    /// neighbour).
    #[inline]
    pub fn write_macs<B: PacketBuf + ?Sized>(pkt: &mut B, dst: MacAddr, src: MacAddr) {
        write_macs(pkt, dst, src);
    }

    /// Sends `pkt` (an Ethernet frame) to the next hop `hop` on `port`:
    /// writes the MAC if known, else queues it and starts resolution.
    /// A stale entry is still used, and probed (unicast) at most once per
    /// `retrans_time`.
    pub fn output(&mut self, mut pkt: T, hop: IpAddr, port: u16, now: u64) -> OutputResult<T> {
        let Some(port_mac) = self.port(port).map(|p| p.mac) else {
            self.counters.bad_frame += 1;
            return OutputResult {
                output: Output::Dropped(pkt),
                solicit: None,
            };
        };
        if pkt.len() < ethernet::HEADER_LEN {
            self.counters.bad_frame += 1;
            return OutputResult {
                output: Output::Dropped(pkt),
                solicit: None,
            };
        }
        let reachable = self.cfg.reachable_time;
        let i = match self.table.find(hop, port) {
            Some(i) => i,
            None => {
                let e = Entry::new(hop, port, MacAddr::ZERO, NeighState::Incomplete, now);
                match self.insert(e) {
                    Some(i) => i,
                    None => {
                        return OutputResult {
                            output: Output::Dropped(pkt),
                            solicit: None,
                        }
                    }
                }
            }
        };
        // A reachable entry that stays so is only read: the table's
        // generation (and so every cached adjacency) is left alone.
        if let Some(e) = self.table.get(i) {
            if e.state == NeighState::Reachable && now.saturating_sub(e.confirmed) < reachable {
                write_macs(&mut pkt, e.mac, port_mac);
                return OutputResult {
                    output: Output::Send(pkt),
                    solicit: None,
                };
            }
        }
        let Some(e) = self.table.get_mut(i) else {
            return OutputResult {
                output: Output::Dropped(pkt),
                solicit: None,
            };
        };
        if e.state == NeighState::Reachable && now.saturating_sub(e.confirmed) >= reachable {
            e.state = NeighState::Stale;
            e.stale_since = e.confirmed.saturating_add(reachable);
            e.probes = 0;
        }
        match e.state {
            NeighState::Reachable => {
                write_macs(&mut pkt, e.mac, port_mac);
                OutputResult {
                    output: Output::Send(pkt),
                    solicit: None,
                }
            }
            NeighState::Stale => {
                write_macs(&mut pkt, e.mac, port_mac);
                OutputResult {
                    output: Output::Send(pkt),
                    solicit: self.solicit_due(i, now),
                }
            }
            NeighState::Incomplete => {
                let limit = self.cfg.queue_per_neigh;
                let output = match self.table.push(i, pkt, limit) {
                    Ok(()) => {
                        self.counters.queued += 1;
                        Output::Queued
                    }
                    Err(pkt) => {
                        self.counters.neigh_queue_full += 1;
                        Output::Dropped(pkt)
                    }
                };
                OutputResult {
                    output,
                    solicit: self.solicit_due(i, now),
                }
            }
        }
    }

    /// Hands every packet waiting for (`ip`, `port`) to `tx`, oldest
    /// first, with the neighbour's MAC and the port's MAC written. Does
    /// nothing unless the entry has a MAC. Returns how many.
    pub fn release(&mut self, ip: IpAddr, port: u16, mut tx: impl FnMut(T)) -> usize {
        let Some(port_mac) = self.port(port).map(|p| p.mac) else {
            return 0;
        };
        let Some(i) = self.table.find(ip, port) else {
            return 0;
        };
        let Some(mac) = self
            .table
            .get(i)
            .filter(|e| e.state != NeighState::Incomplete)
            .map(|e| e.mac)
        else {
            return 0;
        };
        let mut n = 0;
        while let Some(mut pkt) = self.table.pop(i) {
            write_macs(&mut pkt, mac, port_mac);
            tx(pkt);
            n += 1;
        }
        self.counters.released += n as u64;
        n
    }

    /// Ages the table at time `now`: reachable entries past the reachable
    /// time go stale; stale entries past the stale time, or whose probes
    /// went unanswered, are removed; incomplete entries get their
    /// solicitation retransmitted, or fail after `max_probes` (their
    /// packets come back as [`TickEvent::Dropped`]). Walks the whole table:
    /// call it between bursts, every few hundred milliseconds.
    pub fn tick(&mut self, now: u64, mut on_event: impl FnMut(TickEvent<T>)) {
        let cfg = self.cfg;
        let mut i = 0;
        while i < self.table.slot_count() {
            let Some(e) = self.table.get_mut(i) else {
                i += 1;
                continue;
            };
            if e.state == NeighState::Reachable
                && now.saturating_sub(e.confirmed) >= cfg.reachable_time
            {
                e.state = NeighState::Stale;
                e.stale_since = e.confirmed.saturating_add(cfg.reachable_time);
                e.probes = 0;
            }
            let probes_done = e.probes >= cfg.max_probes
                && e.last_solicit
                    .is_some_and(|t| now.saturating_sub(t) >= cfg.retrans_time);
            match e.state {
                NeighState::Reachable => {}
                NeighState::Stale => {
                    if probes_done || now.saturating_sub(e.stale_since) >= cfg.stale_time {
                        if probes_done {
                            self.counters.resolution_failed += 1;
                        } else {
                            self.counters.aged_out += 1;
                        }
                        self.table.remove(i);
                        // A later entry may have shifted into slot i.
                        continue;
                    }
                }
                NeighState::Incomplete => {
                    if probes_done {
                        self.counters.resolution_failed += 1;
                        while let Some(pkt) = self.table.pop(i) {
                            self.counters.queue_dropped_failed += 1;
                            on_event(TickEvent::Dropped(pkt));
                        }
                        self.table.remove(i);
                        continue;
                    }
                    if let Some(s) = self.solicit_due(i, now) {
                        on_event(TickEvent::Solicit(s));
                    }
                }
            }
            i += 1;
        }
    }

    // ---- building frames ---------------------------------------------------

    /// Builds the ARP request or neighbour solicitation `s` asks for into
    /// `buf` (at least [`packets::MAX_FRAME_LEN`] bytes) and returns its
    /// length. `Err(Unsupported)` for an unknown port or, for IPv6, a
    /// port without an IPv6 source address.
    pub fn build_solicit(&self, s: &Solicit, buf: &mut [u8]) -> Result<usize, Error> {
        let p = self.port(s.port).ok_or(Error::Unsupported)?;
        match s.target {
            IpAddr::V4(t) => packets::arp_request(
                buf,
                p.mac,
                p.ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED),
                t,
                s.unicast,
                p.tci,
            ),
            IpAddr::V6(t) => {
                let src = p.ipv6.ok_or(Error::Unsupported)?;
                packets::neighbor_solicit(buf, p.mac, src, t, s.unicast, p.tci)
            }
        }
    }

    /// Builds a gratuitous ARP (IPv4) or unsolicited neighbour
    /// advertisement (IPv6) announcing `addr` at `port`'s MAC into `buf`,
    /// and returns its length. How many and how often is the caller's
    /// choice.
    pub fn build_announce(&self, addr: IpAddr, port: u16, buf: &mut [u8]) -> Result<usize, Error> {
        let p = self.port(port).ok_or(Error::Unsupported)?;
        match addr {
            IpAddr::V4(a) => packets::gratuitous_arp(buf, p.mac, a, p.tci),
            IpAddr::V6(a) => packets::unsolicited_na(buf, p.mac, a, p.tci),
        }
    }
}

/// Writes destination and source MACs into an Ethernet frame (no-op on a
/// frame too short, which [`Neigh::output`] refuses before queueing).
fn write_macs<B: PacketBuf + ?Sized>(pkt: &mut B, dst: MacAddr, src: MacAddr) {
    if let Ok(mut f) = ethernet::Frame::new_checked(pkt.data_mut()) {
        f.set_dst_addr(dst);
        f.set_src_addr(src);
    }
}

/// Rewrites the NS frame in `buf` (IPv6 header at `l3`) into the NA `na`
/// from `src` to `dst`, resizing the buffer to exactly the answer. `false`
/// if the buffer cannot hold it.
fn write_na<B: PacketBuf + ?Sized>(
    buf: &mut B,
    l3: usize,
    dst_mac: MacAddr,
    src_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    na: &NdRepr,
) -> bool {
    let want = l3 + ipv6::HEADER_LEN + na.buffer_len();
    let have = buf.len();
    let sized = if have > want {
        buf.trim(have - want)
    } else {
        have == want || buf.append(want - have).is_some()
    };
    if !sized {
        return false;
    }
    let frame = buf.data_mut();
    match ethernet::Frame::new_checked(&mut *frame) {
        Ok(mut f) => {
            f.set_dst_addr(dst_mac);
            f.set_src_addr(src_mac);
        }
        Err(_) => return false,
    }
    frame
        .get_mut(l3..)
        .is_some_and(|b| packets::nd_l3(b, src, dst, na).is_ok())
}

#[cfg(test)]
mod tests;
