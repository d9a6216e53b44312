//! Per-worker counters: written only by their worker, read and summed by
//! the control thread.
//!
//! Each counter is an `AtomicU64` that its single writer bumps with a
//! relaxed load and store (a plain `mov`, no locked instruction), so the
//! control thread can read it without a data race and the worker pays no
//! more than for a plain integer. Each worker's block is cache-line
//! aligned so that two workers never share a line.

use crate::forward::ForwardError;
use crate::parse::DropReason;
use std::sync::atomic::{AtomicU64, Ordering};

/// A single-writer counter.
#[derive(Debug, Default)]
#[repr(transparent)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (single writer only).
    #[inline(always)]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one (single writer only).
    #[inline(always)]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets the value (single writer only).
    #[inline(always)]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Reads the value (any thread).
    #[inline(always)]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Traffic through one virtual service or real server (IPVS's
/// `ip_vs_stats`: conns, inpkts, outpkts, inbytes, outbytes).
#[derive(Debug, Default)]
pub struct TrafficCounters {
    /// Connections scheduled.
    pub conns: Counter,
    /// Packets client → real server.
    pub inpkts: Counter,
    /// Packets real server → client.
    pub outpkts: Counter,
    /// Bytes client → real server.
    pub inbytes: Counter,
    /// Bytes real server → client.
    pub outbytes: Counter,
}

/// Plain copy of [`TrafficCounters`], summable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Connections.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
}

impl TrafficCounters {
    /// Reads a copy.
    pub fn read(&self) -> Traffic {
        Traffic {
            conns: self.conns.get(),
            inpkts: self.inpkts.get(),
            outpkts: self.outpkts.get(),
            inbytes: self.inbytes.get(),
            outbytes: self.outbytes.get(),
        }
    }
}

impl std::ops::AddAssign for Traffic {
    fn add_assign(&mut self, o: Traffic) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// RX/TX of one port on one worker.
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets sent.
    pub tx_packets: Counter,
    /// Bytes sent.
    pub tx_bytes: Counter,
    /// Packets the driver kept refusing (freed).
    pub tx_dropped: Counter,
}

/// Why a packet was dropped after it parsed: the packet path's own
/// reasons, next to the parser's [`DropReason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum PathDrop {
    /// Not for any VIP, local address or port address of ours.
    NotOurs,
    /// TCP segment without SYN and without a connection (IPVS drops it).
    TcpNoConn,
    /// No real server available and no sorry server.
    NoRealServer,
    /// Reply from a real server that matches no connection.
    ReplyNoConn,
    /// FullNAT: no free local port.
    NoLocalPort,
    /// No route to the destination.
    NoRoute,
    /// Next hop unresolved and its queue full.
    NeighQueueFull,
    /// Rewrite refused the packet. No longer counted: each refusal is
    /// counted under its own `fwd_*` name (see
    /// [`WorkerCounters::fwd_errors`]); kept so the indexes stay stable.
    RewriteFailed,
    /// Needs fragmenting (IPv4 without DF over the MTU); rvs does not
    /// fragment.
    NeedsFragmentation,
    /// Non-first fragment whose first fragment was never seen.
    FragUnknownFirst,
    /// Handoff ring to the owning worker was full.
    HandoffFull,
    /// Multi-segment mbuf (not handled).
    MultiSegment,
    /// This director is a backup and does not serve VIPs.
    Backup,
    /// ICMP error about no tracked connection.
    IcmpNoConn,
    /// Could not allocate a buffer for a generated packet.
    NoBuffer,
    /// Exception path over its rate limit.
    KernelRateLimited,
    /// FullNAT flow with no entry while the connection table is full: it
    /// cannot be forwarded statelessly (its local port is allocated per
    /// connection).
    FullNatTableFull,
}

impl PathDrop {
    /// Every reason, in index order.
    pub const ALL: [PathDrop; 17] = [
        PathDrop::NotOurs,
        PathDrop::TcpNoConn,
        PathDrop::NoRealServer,
        PathDrop::ReplyNoConn,
        PathDrop::NoLocalPort,
        PathDrop::NoRoute,
        PathDrop::NeighQueueFull,
        PathDrop::RewriteFailed,
        PathDrop::NeedsFragmentation,
        PathDrop::FragUnknownFirst,
        PathDrop::HandoffFull,
        PathDrop::MultiSegment,
        PathDrop::Backup,
        PathDrop::IcmpNoConn,
        PathDrop::NoBuffer,
        PathDrop::KernelRateLimited,
        PathDrop::FullNatTableFull,
    ];
    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable snake_case name for listings and metrics.
    pub fn name(self) -> &'static str {
        match self {
            PathDrop::NotOurs => "not_ours",
            PathDrop::TcpNoConn => "tcp_no_conn",
            PathDrop::NoRealServer => "no_real_server",
            PathDrop::ReplyNoConn => "reply_no_conn",
            PathDrop::NoLocalPort => "no_local_port",
            PathDrop::NoRoute => "no_route",
            PathDrop::NeighQueueFull => "neigh_queue_full",
            PathDrop::RewriteFailed => "rewrite_failed",
            PathDrop::NeedsFragmentation => "needs_fragmentation",
            PathDrop::FragUnknownFirst => "frag_unknown_first",
            PathDrop::HandoffFull => "handoff_full",
            PathDrop::MultiSegment => "multi_segment",
            PathDrop::Backup => "backup_role",
            PathDrop::IcmpNoConn => "icmp_no_conn",
            PathDrop::NoBuffer => "no_buffer",
            PathDrop::KernelRateLimited => "kernel_rate_limited",
            PathDrop::FullNatTableFull => "fullnat_table_full",
        }
    }

    /// Index into [`PathDrop::ALL`].
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Something other than a packet that a worker could not pass on because
/// a ring was full: it is gone, and counted here by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Loss {
    /// A learned neighbour not reported to control (worker → control ring
    /// full): the other workers resolve it themselves.
    NeighEvent,
    /// A persistence template not reported (worker → control ring full):
    /// other workers may pick another real server for the client.
    TemplateEvent,
    /// A connection not reported for sync (worker → control ring full).
    SyncEvent,
    /// An old snapshot freed on the worker because the ring back to
    /// control was full.
    RetiredSnapshot,
    /// A synced connection (HA backup) the table refused.
    SyncInstall,
    /// A neighbour another worker learned, not relayed to this worker
    /// (its command ring was full).
    NeighRelay,
    /// A template another worker created, not relayed to this worker.
    TemplateRelay,
    /// A passive health-check failure not reported (worker → control ring
    /// full, or the relay's queue to control full).
    PassiveEvent,
}

impl Loss {
    /// Every kind, in index order.
    pub const ALL: [Loss; 8] = [
        Loss::NeighEvent,
        Loss::TemplateEvent,
        Loss::SyncEvent,
        Loss::RetiredSnapshot,
        Loss::SyncInstall,
        Loss::NeighRelay,
        Loss::TemplateRelay,
        Loss::PassiveEvent,
    ];
    /// Number of kinds.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable snake_case name for listings and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Loss::NeighEvent => "lost_neigh_event",
            Loss::TemplateEvent => "lost_template_event",
            Loss::SyncEvent => "lost_sync_event",
            Loss::RetiredSnapshot => "lost_retired_snapshot",
            Loss::SyncInstall => "lost_sync_install",
            Loss::NeighRelay => "lost_neigh_relay",
            Loss::TemplateRelay => "lost_template_relay",
            Loss::PassiveEvent => "lost_passive_event",
        }
    }

    /// Index into [`Loss::ALL`].
    #[inline(always)]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Losses of the relay thread (the single writer of these counters),
/// by the worker that should have received what was lost.
#[derive(Debug)]
pub struct RelayCounters {
    /// `workers` × [`Loss::COUNT`] counters, row by destination worker.
    lost: Box<[Counter]>,
}

impl RelayCounters {
    /// Counters for `workers` workers.
    pub fn new(workers: usize) -> Self {
        RelayCounters {
            lost: boxed(workers * Loss::COUNT),
        }
    }

    /// Counts one loss for worker `to` (relay thread only).
    #[inline]
    pub fn lose(&self, to: usize, what: Loss) {
        if let Some(c) = self.lost.get(to * Loss::COUNT + what.index()) {
            c.inc();
        }
    }

    /// The count of `what` lost for worker `to`.
    pub fn get(&self, to: usize, what: Loss) -> u64 {
        self.lost
            .get(to * Loss::COUNT + what.index())
            .map_or(0, Counter::get)
    }
}

/// Everything one worker counts. Allocated once by control with fixed
/// sizes; the worker only writes, control only reads.
#[derive(Debug)]
#[repr(align(64))]
pub struct WorkerCounters {
    /// Per service (indexed by service id).
    pub services: Box<[TrafficCounters]>,
    /// Per real server (indexed by real-server id).
    pub reals: Box<[TrafficCounters]>,
    /// Per port.
    pub ports: Box<[PortCounters]>,
    /// Parser drops by reason.
    pub parse_drops: Box<[Counter]>,
    /// Packet-path drops by reason.
    pub path_drops: Box<[Counter]>,
    /// Packets handed to each other worker (indexed by destination).
    pub handoff_out: Box<[Counter]>,
    /// Packets received from other workers.
    pub handoff_in: Counter,
    /// Connections in this worker's tables.
    pub conn_entries: Counter,
    /// Capacity of this worker's tables.
    pub conn_capacity: Counter,
    /// Memory behind the bigger connection table
    /// ([`crate::dpdk::Backing::code`]).
    pub conn_backing: Counter,
    /// Packets (of any flow, SYN or not) forwarded statelessly by the
    /// service's Maglev table because the connection table was full.
    pub stateless_fallbacks: Counter,
    /// Connections created mid-flow by `sloppy_tcp` (a TCP segment other
    /// than a SYN with no entry, scheduled by the consistent hash).
    pub sloppy_conns: Counter,
    /// Datagrams of one-packet-scheduling services (`ops`) scheduled on
    /// their own, without a connection entry.
    pub ops_packets: Counter,
    /// NAT replies with no connection entry reverse-translated statelessly
    /// (one-packet scheduling, or a flow forwarded statelessly because the
    /// table was full).
    pub stateless_replies: Counter,
    /// Packets of established flows forwarded by the fast path
    /// (`pipeline::fast`, counted once per burst); every other packet took
    /// the general path.
    pub fast_path: Counter,
    /// ARP/ND requests answered.
    pub neigh_answered: Counter,
    /// Packets too big for their path answered with frag-needed /
    /// packet-too-big.
    pub pmtu_replies: Counter,
    /// Packets handed to the kernel (exception path).
    pub to_kernel: Counter,
    /// Packets the kernel sent out through a port.
    pub from_kernel: Counter,
    /// Snapshot generation this worker runs.
    pub generation: Counter,
    /// Polling iterations (liveness); refreshed every housekeeping round.
    pub loops: Counter,
    /// Polling iterations that found work (a packet on an RX, TAP or
    /// handoff queue, or a control command); `loops` minus these were
    /// empty.
    pub busy_loops: Counter,
    /// Back-off sleeps of the adaptive idle policy (`[dataplane] idle`).
    pub idle_sleeps: Counter,
    /// Time spent in those sleeps, in nanoseconds (measured, not asked
    /// for).
    pub idle_sleep_ns: Counter,
    /// Packets a rewrite refused, by [`ForwardError`] (indexed by the
    /// error's position in [`ForwardError::ALL`]).
    pub fwd_errors: Box<[Counter]>,
    /// Things lost because a ring was full, by [`Loss`] (worker side).
    pub lost: Box<[Counter]>,
    /// Old connections expired by a new SYN on their tuple (IPVS's
    /// `conn_reuse_mode`) and scheduled afresh.
    pub conn_reused: Counter,
    /// TCP segments whose sequence/ack numbers (and SACK edges) were
    /// adjusted for a connection carrying a delta.
    pub seq_adjusted: Counter,
    /// Adjusted segments whose option list was malformed (the SACK walk
    /// stopped there; seq/ack were still adjusted).
    pub seq_bad_options: Counter,
    /// IPv4 connections in this worker's table.
    pub conn_entries_v4: Counter,
    /// IPv6 connections in this worker's table.
    pub conn_entries_v6: Counter,
    /// Capacity of this worker's IPv4 table.
    pub conn_capacity_v4: Counter,
    /// Capacity of this worker's IPv6 table.
    pub conn_capacity_v6: Counter,
    /// ARP/ND frames (and relayed answers) that changed the neighbour
    /// table: an entry created, resolved or given a new MAC.
    pub neigh_changes: Counter,
    /// Passive health-check failures reported to control.
    pub passive_reported: Counter,
    /// Passive health-check failures not reported because the same real
    /// server was reported by this worker less than a second before.
    pub passive_suppressed: Counter,
    // TOA (client address as TCP option 254, `forward::toa`).
    /// Client → real-server segments that got the TOA option.
    pub toa_added: Counter,
    /// Segments that should have carried TOA and went without: their
    /// options left no room (or the buffer no headroom).
    pub toa_no_room: Counter,
    /// SYNs and SYN-ACKs of TOA connections whose MSS was lowered by the
    /// option's length.
    pub toa_mss_clamped: Counter,
    /// TOA-phase connections whose cache entry a newer connection took
    /// (they stop getting the option).
    pub toa_evicted: Counter,
    /// SYN proxy (issue 14 item 4): its own block.
    pub synproxy: SynProxyCounters,
    /// Proxy Protocol (`forward::proxyproto`): headers written, SYN-ACKs
    /// clamped, segments refused.
    pub pp: ProxyProtoCounters,
    /// Connections of TUN real servers of the other address family that
    /// LVS sync would have sent to the backup and did not (sync v1 carries
    /// one family per connection).
    pub sync_skipped_mixed: Counter,
    /// TUN packets too big for the path once encapsulated, by tunnel type
    /// and what was done (a breakdown of `pmtu_replies` and of the
    /// `needs_fragmentation` drops).
    pub tun_too_big: TunTooBigCounters,
}

// ---- TUN: packets too big once encapsulated ----

/// TUN packets that did not fit the output MTU with their tunnel's
/// overhead, by tunnel type (ipip, gue, gre) and action: `icmp_sent`
/// (frag-needed / packet-too-big sent to the client with the MTU less the
/// overhead) or `dropped` (IPv4 without DF, an ICMP error, an IPv6 packet
/// at the minimum MTU, or no reply could be built). Each packet is also
/// counted in `pmtu_replies` or in the `needs_fragmentation` drops.
#[derive(Debug, Default)]
pub struct TunTooBigCounters {
    /// Indexed by `type * 2 + (0 sent, 1 dropped)`, types in
    /// [`TunTooBigCounters::TYPES`] order.
    counts: [Counter; 6],
}

impl TunTooBigCounters {
    /// Tunnel type names, in index order (ipvsadm's `--tun-type` names).
    pub const TYPES: [&'static str; 3] = ["ipip", "gue", "gre"];
    /// Action names, in index order.
    pub const ACTIONS: [&'static str; 2] = ["icmp_sent", "dropped"];

    /// Counts one packet of tunnel type `encap`: `sent` when the client
    /// was told, otherwise dropped.
    #[inline]
    pub fn count(&self, encap: crate::forward::TunEncap, sent: bool) {
        let t = match encap {
            crate::forward::TunEncap::Ipip => 0,
            crate::forward::TunEncap::Gue { .. } => 1,
            crate::forward::TunEncap::Gre { .. } => 2,
        };
        if let Some(c) = self.counts.get(t * 2 + usize::from(!sent)) {
            c.inc();
        }
    }

    /// The count for (`tun_type`, `action`) by name (0 for unknown names).
    pub fn get(&self, tun_type: &str, action: &str) -> u64 {
        let t = Self::TYPES.iter().position(|x| *x == tun_type);
        let a = Self::ACTIONS.iter().position(|x| *x == action);
        match (t, a) {
            (Some(t), Some(a)) => self.counts.get(t * 2 + a).map_or(0, Counter::get),
            _ => 0,
        }
    }

    /// `(type, action, value)` of every counter, types then actions in
    /// index order.
    pub fn named(&self) -> [(&'static str, &'static str, u64); 6] {
        let mut out = [("", "", 0); 6];
        let names = Self::TYPES
            .iter()
            .flat_map(|t| Self::ACTIONS.iter().map(move |a| (*t, *a)));
        for ((o, (t, a)), c) in out.iter_mut().zip(names).zip(self.counts.iter()) {
            *o = (t, a, c.get());
        }
        out
    }
}

// --- SYN proxy counters (issue 14 item 4) ---

/// What the SYN proxy did on one worker.
#[derive(Debug, Default)]
pub struct SynProxyCounters {
    /// SYN-ACKs with a cookie sent for SYNs to a `synproxy` service.
    pub cookies_sent: Counter,
    /// ACKs whose cookie was valid (a connection was opened).
    pub cookies_valid: Counter,
    /// ACKs (no connection) whose cookie was not one of ours: dropped.
    pub cookies_invalid: Counter,
    /// ACKs whose cookie was ours but older than the previous epoch:
    /// dropped.
    pub cookies_expired: Counter,
    /// SYNs sent to the real server again while its SYN-ACK was awaited.
    pub rs_syn_retries: Counter,
    /// Client segments dropped while the real server's SYN-ACK was
    /// awaited (the client retransmits them).
    pub held_drops: Counter,
    /// RSTs during the proxied handshake: from the real server (the
    /// client is reset) or from the client.
    pub handshake_rsts: Counter,
    /// RST/FIN (and other non-SYN, non-ACK) segments with no connection
    /// to a `synproxy` service: dropped, nothing reaches a real server.
    pub no_conn_drops: Counter,
    /// Handshakes spliced (the real server's SYN-ACK answered, the delta
    /// set).
    pub spliced: Counter,
    /// Valid cookies whose handshake could not be tracked (pending table
    /// or sequence side table full): the client is reset.
    pub table_full: Counter,
    /// Handshakes given up after too many client segments or SYN retries
    /// (the client is reset).
    pub given_up: Counter,
}

impl SynProxyCounters {
    /// Every counter with the name the metrics and `rvsadm` use.
    pub fn named(&self) -> [(&'static str, u64); 11] {
        [
            ("cookies_sent", self.cookies_sent.get()),
            ("cookies_valid", self.cookies_valid.get()),
            ("cookies_invalid", self.cookies_invalid.get()),
            ("cookies_expired", self.cookies_expired.get()),
            ("rs_syn_retries", self.rs_syn_retries.get()),
            ("held_drops", self.held_drops.get()),
            ("handshake_rsts", self.handshake_rsts.get()),
            ("no_conn_drops", self.no_conn_drops.get()),
            ("spliced", self.spliced.get()),
            ("table_full", self.table_full.get()),
            ("given_up", self.given_up.get()),
        ]
    }
}

// ---- Proxy Protocol (pp14) ----

/// What the Proxy Protocol step did, per worker.
#[derive(Debug, Default)]
pub struct ProxyProtoCounters {
    /// v1 headers written into a client's first segment (a retransmission
    /// of that segment gets it again and is counted again).
    pub inserted_v1: Counter,
    /// v2 headers written.
    pub inserted_v2: Counter,
    /// Real servers' SYN-ACKs whose MSS was lowered by the header length.
    pub mss_clamped: Counter,
    /// New connections of a Proxy Protocol service refused because the
    /// side table of adjusted connections was full (their SYN dropped).
    pub side_full: Counter,
    /// First segments dropped, by [`crate::forward::proxyproto::PpError`]
    /// (indexed by its position in `PpError::ALL`).
    pub failed: [Counter; 4],
}

impl ProxyProtoCounters {
    /// Counts a refused segment.
    #[inline]
    pub fn fail(&self, e: crate::forward::proxyproto::PpError) {
        let i = crate::forward::proxyproto::PpError::ALL
            .iter()
            .position(|x| *x == e)
            .unwrap_or(0);
        if let Some(c) = self.failed.get(i) {
            c.inc();
        }
    }

    /// `(name, value)` of every counter, for metrics.
    pub fn all(&self) -> Vec<(&'static str, u64)> {
        let mut v = vec![
            ("inserted_v1", self.inserted_v1.get()),
            ("inserted_v2", self.inserted_v2.get()),
            ("mss_clamped", self.mss_clamped.get()),
            ("side_full", self.side_full.get()),
        ];
        for (e, c) in crate::forward::proxyproto::PpError::ALL
            .iter()
            .zip(self.failed.iter())
        {
            v.push((e.name(), c.get()));
        }
        v
    }
}

fn boxed<T: Default>(n: usize) -> Box<[T]> {
    (0..n).map(|_| T::default()).collect()
}

impl WorkerCounters {
    /// Counters for `services` service ids, `reals` real-server ids,
    /// `ports` ports and `workers` workers.
    pub fn new(services: usize, reals: usize, ports: usize, workers: usize) -> Self {
        WorkerCounters {
            services: boxed(services),
            reals: boxed(reals),
            ports: boxed(ports),
            parse_drops: boxed(DropReason::COUNT),
            path_drops: boxed(PathDrop::COUNT),
            handoff_out: boxed(workers),
            handoff_in: Counter::default(),
            conn_entries: Counter::default(),
            conn_capacity: Counter::default(),
            conn_backing: Counter::default(),
            stateless_fallbacks: Counter::default(),
            sloppy_conns: Counter::default(),
            ops_packets: Counter::default(),
            stateless_replies: Counter::default(),
            fast_path: Counter::default(),
            neigh_answered: Counter::default(),
            pmtu_replies: Counter::default(),
            to_kernel: Counter::default(),
            from_kernel: Counter::default(),
            generation: Counter::default(),
            loops: Counter::default(),
            busy_loops: Counter::default(),
            idle_sleeps: Counter::default(),
            idle_sleep_ns: Counter::default(),
            fwd_errors: boxed(ForwardError::COUNT),
            lost: boxed(Loss::COUNT),
            conn_reused: Counter::default(),
            seq_adjusted: Counter::default(),
            seq_bad_options: Counter::default(),
            conn_entries_v4: Counter::default(),
            conn_entries_v6: Counter::default(),
            conn_capacity_v4: Counter::default(),
            conn_capacity_v6: Counter::default(),
            neigh_changes: Counter::default(),
            passive_reported: Counter::default(),
            passive_suppressed: Counter::default(),
            synproxy: SynProxyCounters::default(),
            toa_added: Counter::default(),
            toa_no_room: Counter::default(),
            toa_mss_clamped: Counter::default(),
            toa_evicted: Counter::default(),
            pp: ProxyProtoCounters::default(),
            tun_too_big: TunTooBigCounters::default(),
            sync_skipped_mixed: Counter::default(),
        }
    }

    /// Counts a parser drop.
    #[inline(always)]
    pub fn parse_drop(&self, r: DropReason) {
        if let Some(c) = self.parse_drops.get(r.index()) {
            c.inc();
        }
    }

    /// Counts a packet-path drop.
    #[inline(always)]
    pub fn path_drop(&self, r: PathDrop) {
        if let Some(c) = self.path_drops.get(r.index()) {
            c.inc();
        }
    }

    /// Counts a packet a rewrite refused.
    #[inline]
    pub fn fwd_error(&self, e: ForwardError) {
        if let Some(c) = self.fwd_errors.get(e as usize) {
            c.inc();
        }
    }

    /// Counts something lost because a ring was full.
    #[inline]
    pub fn lose(&self, what: Loss) {
        if let Some(c) = self.lost.get(what.index()) {
            c.inc();
        }
    }

    /// Losses by name (worker side).
    pub fn losses(&self) -> Vec<(&'static str, u64)> {
        Loss::ALL
            .iter()
            .map(|l| (l.name(), self.lost.get(l.index()).map_or(0, Counter::get)))
            .collect()
    }

    /// All drops by name, parser and path reasons together.
    pub fn drops(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = DropReason::ALL
            .iter()
            .map(|r| {
                (
                    r.name(),
                    self.parse_drops.get(r.index()).map_or(0, Counter::get),
                )
            })
            .collect();
        v.extend(PathDrop::ALL.iter().map(|r| {
            (
                r.name(),
                self.path_drops.get(r.index()).map_or(0, Counter::get),
            )
        }));
        v.extend(ForwardError::ALL.iter().map(|e| {
            (
                e.name(),
                self.fwd_errors.get(*e as usize).map_or(0, Counter::get),
            )
        }));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_and_name_every_reason() {
        let c = WorkerCounters::new(4, 8, 2, 2);
        c.path_drop(PathDrop::NoRoute);
        c.path_drop(PathDrop::NoRoute);
        c.parse_drop(DropReason::ALL[0]);
        c.services[1].conns.inc();
        c.services[1].inbytes.add(1500);
        let d = c.drops();
        assert_eq!(
            d.len(),
            DropReason::COUNT + PathDrop::COUNT + ForwardError::COUNT
        );
        assert!(d.contains(&("no_route", 2)));
        assert!(d.contains(&(DropReason::ALL[0].name(), 1)));
        let t = c.services[1].read();
        assert_eq!((t.conns, t.inbytes), (1, 1500));
        let names: std::collections::HashSet<_> = d.iter().map(|x| x.0).collect();
        assert_eq!(names.len(), d.len(), "names are unique");
        for (i, r) in PathDrop::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }

    #[test]
    fn forward_errors_and_losses_have_their_own_names() {
        let c = WorkerCounters::new(1, 1, 1, 2);
        for (i, e) in ForwardError::ALL.iter().enumerate() {
            assert_eq!(*e as usize, i, "ALL is in declaration order");
        }
        c.fwd_error(ForwardError::NoHeadroom);
        c.fwd_error(ForwardError::NoHeadroom);
        c.fwd_error(ForwardError::WrongMode);
        let d = c.drops();
        assert!(d.contains(&("fwd_no_headroom", 2)));
        assert!(d.contains(&("fwd_wrong_mode", 1)));
        assert!(d.contains(&("rewrite_failed", 0)));
        for (i, l) in Loss::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
        }
        c.lose(Loss::SyncEvent);
        assert!(c.losses().contains(&("lost_sync_event", 1)));
        assert_eq!(c.losses().len(), Loss::COUNT);
        let r = RelayCounters::new(2);
        r.lose(1, Loss::TemplateRelay);
        r.lose(5, Loss::TemplateRelay); // no such worker: ignored
        assert_eq!(r.get(1, Loss::TemplateRelay), 1);
        assert_eq!(r.get(0, Loss::TemplateRelay), 0);
    }
}
