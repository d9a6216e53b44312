//! What one worker does with one packet, independent of DPDK: parse,
//! answer ARP/ND, check flow ownership (hand the packet to its owner),
//! look the connection up or schedule a new one, rewrite for the
//! forwarding method, route, resolve the next hop and hand the packet to a
//! [`Sink`] for transmission.
//!
//! It runs on any [`PacketBuf`]: DPDK mbufs in the worker loop, `VecBuf`
//! in tests and benches. Nothing here allocates or panics per packet; a
//! packet that is not forwarded is dropped with a named counter.

use crate::adj::{AdjCache, Adjacency};
use crate::buf::PacketBuf;
use crate::conn::{
    Activity, ConnConfig, ConnTable, Direction as ConnDir, FwdMode, InsertError, NewConn,
    RecordIdx, TcpState, Timeouts,
};
use crate::flow::{Family, FlowKey, HashKey, Ownership, IPPROTO_TCP, IPPROTO_UDP, V4, V6};
use crate::forward::{self, Direction, Endpoint, ForwardError, L2Out, Mode, TunParams, Verdict};
use crate::frag::{FragClass, FragTable};
use crate::neigh::{self, Neigh, NeighConfig, Output, TickEvent, Verdict as NVerdict};
use crate::parse::{parse_with, DropReason, PacketMeta, ParseOptions, L3};
use crate::sched::{Pick, PickInput, RealId, WorkerSched, WorkerSchedConfig};
use crate::snapshot::{Role, Service, Snapshot};
use crate::stage::Stage;
use crate::stats::{PathDrop, WorkerCounters};
use crate::sync::{SyncConn, SyncMark, SyncParams};
use crate::wire::ethernet::{MacAddr, HEADER_LEN as ETH_HEADER_LEN};
use std::net::IpAddr;
use std::sync::Arc;

mod fast;
mod synproxy;

const NS: u64 = 1_000_000_000;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_ACK: u8 = 0x10;

/// Where the pipeline's output goes. The worker loop implements it with
/// per-port TX bursts and handoff rings; tests collect into vectors.
pub trait Sink<B> {
    /// Transmit on `port`.
    fn tx(&mut self, port: u16, pkt: B);
    /// Hand to the worker that owns the flow; gives the packet back when
    /// the ring is full.
    fn handoff(&mut self, worker: u16, pkt: B) -> Result<(), B>;
    /// A fresh empty buffer for a generated packet (ARP request, ND).
    fn alloc(&mut self) -> Option<B>;
    /// Tells control something (neighbour learned).
    fn event(&mut self, ev: Event);
    /// Hands a packet for the host (not a service) to the kernel through
    /// the port's TAP interface; gives it back when there is none.
    fn to_kernel(&mut self, port: u16, pkt: B) -> Result<(), B> {
        let _ = port;
        Err(pkt)
    }
}

/// Worker → control events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A neighbour was learned or changed MAC; control tells every worker.
    NeighLearned {
        /// Its address.
        ip: IpAddr,
        /// Port it is on.
        port: u16,
        /// Its MAC.
        mac: MacAddr,
    },
    /// A new connection of a persistent service: the other workers adopt
    /// the template so the client keeps its real server on every core.
    Template {
        /// Service id.
        svc: u16,
        /// Client address (unmasked; each worker masks).
        client: IpAddr,
        /// Real-server id.
        rs: u32,
    },
    /// Connection sync (only while the snapshot enables it): a connection
    /// to send to the backup, by IPVS's threshold/period rules.
    Sync(SyncConn),
    /// Passive health checking (only for services with
    /// [`Service::passive_check`]): a real server failed a connection's
    /// handshake. At most one per real server per second per worker; the
    /// rest are counted in `passive_suppressed`.
    PassiveFail {
        /// Service id.
        svc: u16,
        /// Real-server id.
        rs: u32,
        /// What was seen.
        why: PassiveWhy,
    },
}

/// What a passive health check saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveWhy {
    /// The real server answered the client's SYN with RST (NAT, FullNAT:
    /// the director sees replies).
    RstToSyn,
    /// The connection expired in the handshake (SYN_RECV/SYN_SENT) with
    /// no reply from the real server ever seen.
    SynTimeout,
}

impl PassiveWhy {
    /// The reason an operator listing shows.
    pub fn reason(self) -> &'static str {
        match self {
            PassiveWhy::RstToSyn => "passive: RST to SYN",
            PassiveWhy::SynTimeout => "passive: SYN timeout",
        }
    }
}

/// Slots of the per-worker passive-report rate limiter (direct-mapped by
/// service and real server; a collision only lets one more report through).
const PASSIVE_SLOTS: usize = 256;

/// Per-worker rate limiter of [`Event::PassiveFail`]: at most one report
/// per real server per second. Preallocated; nothing allocates on the
/// packet path.
struct PassiveLimiter {
    /// (service << 32 | real server, tick of the last report); key
    /// `u64::MAX` is empty.
    slots: Box<[(u64, u32)]>,
}

impl PassiveLimiter {
    fn new() -> Self {
        PassiveLimiter {
            slots: vec![(u64::MAX, 0); PASSIVE_SLOTS].into_boxed_slice(),
        }
    }

    /// Whether a report for (`svc`, `rs`) at `tick` may go out (and
    /// records it if so).
    #[inline]
    fn allow(&mut self, svc: u16, rs: u32, tick: u32) -> bool {
        let key = (u64::from(svc) << 32) | u64::from(rs);
        let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as usize;
        let Some(slot) = self.slots.get_mut(h % PASSIVE_SLOTS) else {
            return false;
        };
        if slot.0 == key && slot.1 == tick {
            return false;
        }
        *slot = (key, tick);
        true
    }
}

/// Reports a passive failure for (`svc`, `rs`) if the service wants it
/// and the limiter lets it through; counted either way.
#[inline]
fn passive_fail<B>(
    snap: &Snapshot,
    lim: &mut PassiveLimiter,
    counters: &WorkerCounters,
    ev: (u16, u32, PassiveWhy),
    tick: u32,
    sink: &mut impl Sink<B>,
) {
    let (svc, rs, why) = ev;
    if !snap.service(svc).is_some_and(|s| s.passive_check) {
        return;
    }
    if lim.allow(svc, rs, tick) {
        counters.passive_reported.inc();
        sink.event(Event::PassiveFail { svc, rs, why });
    } else {
        counters.passive_suppressed.inc();
    }
}

/// Why [`Pipeline::install_conn`] did not install a synced connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallError {
    /// Addresses of mixed families.
    Family,
    /// A forwarding method rvs does not do.
    Forward,
    /// The connection table refused it.
    Table(InsertError),
    /// It carries a TCP sequence adjustment and the side table of
    /// adjusted connections is full (counted in `ConnStats::seq_full`):
    /// installing it without its deltas would corrupt its byte streams.
    SeqFull,
}

/// One connection as an operator listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnInfo {
    /// Protocol.
    pub proto: u8,
    /// Client endpoint.
    pub client: (IpAddr, u16),
    /// Virtual service endpoint.
    pub vip: (IpAddr, u16),
    /// Real server endpoint.
    pub rip: (IpAddr, u16),
    /// FullNAT local endpoint.
    pub local: Option<(IpAddr, u16)>,
    /// State name (IPVS's: ESTABLISHED, SYN_RECV, ..., UDP).
    pub state: &'static str,
    /// Seconds until it expires.
    pub expires_in: u32,
    /// Worker that owns it.
    pub worker: u16,
    /// Its TCP sequence adjustment, if it carries one.
    pub seq: Option<forward::ConnSeq>,
}

impl ConnInfo {
    fn of<F: Family>(
        c: &crate::conn::Conn<F>,
        now: u32,
        worker: u16,
        seq: Option<&forward::ConnSeq>,
    ) -> Self {
        ConnInfo {
            seq: seq.copied(),
            proto: c.proto(),
            client: (F::to_ip(c.client()), c.cport()),
            vip: (F::to_ip(c.vip()), c.vport()),
            rip: (F::to_ip(c.rip()), c.rport()),
            local: (c.fwd() == FwdMode::FullNat).then(|| (F::to_ip(c.local()), c.lport())),
            state: if c.is_tcp() {
                c.tcp_state().name()
            } else if c.proto() == 17 {
                "UDP"
            } else {
                "ICMP"
            },
            expires_in: c.expires().wrapping_sub(now).min(1 << 30),
            worker,
        }
    }
}

impl ConnInfo {
    /// The real server of a TUN connection to the other address family
    /// from the snapshot (the record holds none).
    fn with_tun_target<F: Family>(mut self, c: &crate::conn::Conn<F>, snap: &Snapshot) -> Self {
        if c.fwd() == FwdMode::Tun && c.rip() == F::UNSPECIFIED {
            if let Some(a) = tun_target(snap, c.svc(), c.rs()) {
                self.rip.0 = a;
            }
        }
        self
    }
}

/// A listing request (connections, neighbours) that every worker fills
/// between bursts; preallocated by control, so no allocation on a worker.
#[derive(Debug)]
pub struct DumpRequest<T> {
    /// Where workers put entries.
    pub out: crossbeam::queue::ArrayQueue<T>,
    /// Workers that have answered.
    pub done: std::sync::atomic::AtomicUsize,
}

impl<T> DumpRequest<T> {
    /// Room for `n` entries.
    pub fn new(n: usize) -> Self {
        DumpRequest {
            out: crossbeam::queue::ArrayQueue::new(n.max(1)),
            done: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Puts the entries in until full, then marks this worker as done.
    fn fill(&self, entries: impl Iterator<Item = T>) {
        for e in entries {
            if self.out.push(e).is_err() {
                break;
            }
        }
        self.done.fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}

/// One neighbour entry of one worker.
pub type NeighEntry = (u16, crate::neigh::NeighInfo);

/// Sizes of one worker's tables.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    /// This worker's index.
    pub worker: u16,
    /// Number of workers.
    pub workers: u16,
    /// IPv4 connection table capacity.
    pub conns_v4: u32,
    /// IPv6 connection table capacity.
    pub conns_v6: u32,
    /// Neighbour table.
    pub neigh: NeighConfig,
    /// Fragment table capacity.
    pub frags: usize,
    /// Persistence templates per service.
    pub persist_per_service: usize,
    /// Most packets per second handed to the kernel (exception path).
    pub kernel_pps: u32,
    /// Most connections per table (each family) that carry a TCP sequence
    /// adjustment (Proxy Protocol, SYN proxy); 0: a 128th of the table.
    pub seq_adj: u32,
}

impl PipelineConfig {
    /// A worker `worker` of `workers` with the given table sizes.
    pub fn new(worker: u16, workers: u16, conns_v4: u32, conns_v6: u32) -> Self {
        PipelineConfig {
            worker,
            workers,
            conns_v4,
            conns_v6,
            neigh: NeighConfig::default(),
            frags: 4096,
            persist_per_service: 4096,
            kernel_pps: 20_000,
            seq_adj: 0,
        }
    }
}

/// Why a pipeline could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineError(pub String);

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PipelineError {}

/// Picks the table of an address family.
trait Tables: Family {
    fn table(st: &mut State) -> &mut ConnTable<Self>;
    /// What stage 1 of a burst read for the packet in `slot`: its key and
    /// hash, if it was a plain packet of this family.
    fn staged(stage: &Stage, slot: usize) -> Option<(FlowKey<Self>, u64)>;
    fn marks(st: &mut State) -> &mut Vec<SyncMark>;
}
impl Tables for V4 {
    #[inline(always)]
    fn table(st: &mut State) -> &mut ConnTable<V4> {
        &mut st.conns4
    }
    #[inline(always)]
    fn staged(stage: &Stage, slot: usize) -> Option<(FlowKey<V4>, u64)> {
        stage.v4(slot)
    }
    #[inline(always)]
    fn marks(st: &mut State) -> &mut Vec<SyncMark> {
        &mut st.sync4
    }
}
impl Tables for V6 {
    #[inline(always)]
    fn table(st: &mut State) -> &mut ConnTable<V6> {
        &mut st.conns6
    }
    #[inline(always)]
    fn staged(stage: &Stage, slot: usize) -> Option<(FlowKey<V6>, u64)> {
        stage.v6(slot)
    }
    #[inline(always)]
    fn marks(st: &mut State) -> &mut Vec<SyncMark> {
        &mut st.sync6
    }
}

/// The mutable per-worker state (everything but the snapshot).
struct State {
    worker: u16,
    own: Ownership,
    conns4: ConnTable<V4>,
    conns6: ConnTable<V6>,
    /// Per-record sync bookkeeping, allocated when a snapshot first
    /// enables sync (empty otherwise).
    sync4: Vec<SyncMark>,
    sync6: Vec<SyncMark>,
    scheds: Vec<Option<WorkerSched>>,
    fallbacks: Vec<Option<WorkerSched>>,
    frags: FragTable<(u16, u16)>,
    counters: Arc<WorkerCounters>,
    sched_cfg: WorkerSchedConfig,
    lport_cursor: u16,
    tun_ident: u16,
    now_ns: u64,
    /// Token bucket for the exception path (packets to the kernel).
    kernel_tokens: u32,
    kernel_rate: u32,
    passive: PassiveLimiter,
    /// Scratch of the staged burst path (allocated once).
    stage: Box<Stage>,
    /// Route + neighbour answers per destination (`crate::adj`).
    adj: AdjCache,
    /// SYN proxy: cookie secret and pending handshakes.
    syn: synproxy::SynState,
    /// TOA: on when a service has it; connections in their TOA phase.
    toa: forward::ToaState,
}

/// One worker's packet path.
pub struct Pipeline<B> {
    snap: Arc<Snapshot>,
    st: State,
    neigh: Neigh<B>,
    /// Addresses to announce (gratuitous ARP / unsolicited NA), rounds
    /// left and when the next round is due. Worker 0 announces.
    announce: Vec<(IpAddr, u16)>,
    announce_rounds: u8,
    announce_next: u64,
}

/// Packets handled per stage round of [`Pipeline::process_burst`] (a
/// DPDK RX burst).
pub const BURST: usize = 32;

fn fwd_mode(m: FwdMode) -> Mode {
    match m {
        FwdMode::Nat => Mode::Nat,
        FwdMode::Dr => Mode::Dr,
        FwdMode::Tun => Mode::Tun,
        FwdMode::FullNat => Mode::FullNat,
    }
}

impl<B: PacketBuf> Pipeline<B> {
    /// Builds a worker's tables for `snap`. `flow_key` must be the same for
    /// every worker (it decides ownership); each table gets its own random
    /// key.
    pub fn new(
        cfg: &PipelineConfig,
        snap: Arc<Snapshot>,
        flow_key: HashKey,
        counters: Arc<WorkerCounters>,
    ) -> Result<Self, PipelineError> {
        Self::new_in(cfg, snap, flow_key, counters, &crate::mem::TableMem::host())
    }

    /// [`Pipeline::new`] with the connection tables allocated from `mem`
    /// (hugepages where it can; `counters.conn_backing` says what the
    /// bigger table got).
    pub fn new_in(
        cfg: &PipelineConfig,
        snap: Arc<Snapshot>,
        flow_key: HashKey,
        counters: Arc<WorkerCounters>,
        mem: &crate::mem::TableMem,
    ) -> Result<Self, PipelineError> {
        let mk = |cap: u32| {
            let mut c = ConnConfig::new(cap.max(64));
            c.timeouts = snap.timeouts;
            if cfg.seq_adj > 0 {
                c.seq_capacity = cfg.seq_adj.min(c.capacity);
            }
            c
        };
        let conns4 = ConnTable::with_mem(&mk(cfg.conns_v4), HashKey::random(), mem)
            .map_err(|e| PipelineError(format!("{e:?}")))?;
        let conns6 = ConnTable::with_mem(&mk(cfg.conns_v6), HashKey::random(), mem)
            .map_err(|e| PipelineError(format!("{e:?}")))?;
        let backing = if conns4.memory_bytes() >= conns6.memory_bytes() {
            conns4.backing()
        } else {
            conns6.backing()
        };
        counters.conn_backing.set(backing.code());
        counters
            .conn_capacity
            .set(u64::from(conns4.capacity()) + u64::from(conns6.capacity()));
        counters.conn_capacity_v4.set(u64::from(conns4.capacity()));
        counters.conn_capacity_v6.set(u64::from(conns6.capacity()));
        let neigh = Neigh::new(snap.port_infos(), cfg.neigh);
        let mut p = Pipeline {
            st: State {
                worker: cfg.worker,
                own: Ownership::new(flow_key, cfg.workers.max(1)),
                conns4,
                conns6,
                sync4: Vec::new(),
                sync6: Vec::new(),
                scheds: Vec::new(),
                fallbacks: Vec::new(),
                frags: FragTable::new(cfg.frags.max(16), 2 * NS, 0x5eed ^ u64::from(cfg.worker)),
                counters,
                sched_cfg: WorkerSchedConfig {
                    worker: u32::from(cfg.worker),
                    persist_capacity: cfg.persist_per_service,
                    locality_capacity: 4096,
                },
                lport_cursor: 0,
                tun_ident: 0,
                now_ns: 0,
                kernel_tokens: cfg.kernel_pps,
                kernel_rate: cfg.kernel_pps,
                passive: PassiveLimiter::new(),
                stage: Box::new(Stage::new()),
                adj: AdjCache::new(),
                syn: synproxy::SynState::new(),
                toa: forward::ToaState::new(),
            },
            neigh,
            snap: snap.clone(),
            announce: Vec::new(),
            announce_rounds: 0,
            announce_next: 0,
        };
        p.install(snap);
        // Coming up: announce everything we answer for.
        p.announce = p.snap.announced().collect();
        p.announce_rounds = if cfg.worker == 0 { p.snap.garp.0 } else { 0 };
        Ok(p)
    }

    /// The snapshot in use.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snap
    }

    /// Gives connection `client` → `vip` (its client-side tuple, TCP) a
    /// sequence adjustment: what a feature that changes a stream's length
    /// (Proxy Protocol, SYN proxy) records. `false` when there is no such
    /// connection or the side table is full (counted).
    pub fn set_seq_adj(
        &mut self,
        client: (IpAddr, u16),
        vip: (IpAddr, u16),
        s: forward::ConnSeq,
    ) -> bool {
        fn set<F: Tables>(
            st: &mut State,
            c: (IpAddr, u16),
            v: (IpAddr, u16),
            s: forward::ConnSeq,
        ) -> bool {
            let (Some(ca), Some(va)) = (F::from_ip(c.0), F::from_ip(v.0)) else {
                return false;
            };
            let key = crate::flow::FlowKey::<F>::new(IPPROTO_TCP, ca, c.1, va, v.1);
            let table = F::table(st);
            match table.lookup(&key) {
                Some((idx, ConnDir::In)) => table.set_seq_adj(idx, s),
                _ => false,
            }
        }
        match client.0 {
            IpAddr::V4(_) => set::<V4>(&mut self.st, client, vip, s),
            IpAddr::V6(_) => set::<V6>(&mut self.st, client, vip, s),
        }
    }

    /// The IPv4 connection table.
    pub fn conns_v4(&self) -> &ConnTable<V4> {
        &self.st.conns4
    }

    /// The IPv6 connection table.
    pub fn conns_v6(&self) -> &ConnTable<V6> {
        &self.st.conns6
    }

    /// The neighbour state.
    pub fn neigh(&self) -> &Neigh<B> {
        &self.neigh
    }

    /// Swaps in a new snapshot (between bursts; may allocate per-service
    /// scheduler state). Returns the old one so the caller can hand it
    /// back to control to free.
    pub fn install(&mut self, snap: Arc<Snapshot>) -> Arc<Snapshot> {
        // Routes and ports may differ: no cached adjacency survives.
        self.st.adj.clear();
        let slots = snap.service_slots();
        if self.st.scheds.len() < slots {
            self.st.scheds.resize_with(slots, || None);
            self.st.fallbacks.resize_with(slots, || None);
        }
        for s in snap.services() {
            let i = s.id as usize;
            match self.st.scheds.get_mut(i) {
                Some(Some(ws)) => ws.prepare(&s.sched),
                Some(slot) => *slot = Some(WorkerSched::new(&s.sched, self.st.sched_cfg)),
                None => {}
            }
            if let Some(fb) = &s.stateless {
                match self.st.fallbacks.get_mut(i) {
                    Some(Some(ws)) => ws.prepare(fb),
                    Some(slot) => *slot = Some(WorkerSched::new(fb, self.st.sched_cfg)),
                    None => {}
                }
            }
        }
        self.st.conns4.set_timeouts(&snap.timeouts);
        self.st.conns6.set_timeouts(&snap.timeouts);
        self.st.toa.set_enabled(snap.services().any(|s| s.toa));
        self.neigh.set_guard(
            snap.routes.clone(),
            (0..snap.ports.len()).map(|p| snap.guard(p as u16).learn),
        );
        if snap.sync.is_some() && self.st.sync4.is_empty() {
            self.st.sync4 = vec![SyncMark::NEW; self.st.conns4.capacity() as usize];
            self.st.sync6 = vec![SyncMark::NEW; self.st.conns6.capacity() as usize];
        }
        self.st.counters.generation.set(snap.generation);
        if self.st.worker == 0 {
            // New VIPs, or VIPs we now answer for (takeover as master).
            let old = &self.snap;
            let fresh: Vec<(IpAddr, u16)> = snap
                .announced()
                .filter(|(a, _)| !old.announced().any(|(b, _)| b == *a))
                .collect();
            if !fresh.is_empty() {
                self.announce = fresh;
                self.announce_rounds = snap.garp.0;
                self.announce_next = 0;
            }
        }
        std::mem::replace(&mut self.snap, snap)
    }

    /// Copies this worker's connections into `req` (as many as fit).
    pub fn dump(&self, req: &DumpRequest<ConnInfo>) {
        let now = (self.st.now_ns / NS) as u32;
        let w = self.st.worker;
        let (t4, t6) = (&self.st.conns4, &self.st.conns6);
        let snap = &*self.snap;
        let v4 = t4
            .iter()
            .map(|(i, c)| ConnInfo::of(c, now, w, t4.seq_adj(i)).with_tun_target(c, snap));
        req.fill(
            v4.chain(
                t6.iter()
                    .map(|(i, c)| ConnInfo::of(c, now, w, t6.seq_adj(i)).with_tun_target(c, snap)),
            ),
        );
    }

    /// Copies this worker's neighbour table into `req`.
    pub fn dump_neigh(&self, req: &DumpRequest<NeighEntry>) {
        req.fill(self.neigh.entries().map(|e| (self.st.worker, e)));
    }

    /// A static neighbour (tests, benches, operator-set entries): remember
    /// it, confirmed now, and release what waits for it.
    pub fn learn(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        now_ns: u64,
        sink: &mut impl Sink<B>,
    ) {
        self.neigh.insert_static(ip, port, mac, now_ns);
        self.neigh.release(ip, port, |p| sink.tx(port, p));
    }

    /// A neighbour another worker learned (relayed by control): taken only
    /// where this worker is resolving or probing it, so an unsolicited
    /// answer another worker saw never creates or re-points an entry
    /// here; then release what waits for it.
    pub fn learn_relayed(
        &mut self,
        ip: IpAddr,
        port: u16,
        mac: MacAddr,
        now_ns: u64,
        sink: &mut impl Sink<B>,
    ) {
        if self.neigh.learn_relayed(ip, port, mac, now_ns) {
            self.st.counters.neigh_changes.inc();
        }
        self.neigh.release(ip, port, |p| sink.tx(port, p));
    }

    /// A persistence template another worker created.
    pub fn adopt_template(&mut self, svc: u16, client: IpAddr, rs: u32, now_ns: u64) {
        let snap = &*self.snap;
        if let (Some(s), Some(Some(ws))) = (snap.service(svc), self.st.scheds.get_mut(svc as usize))
        {
            ws.adopt_template(&s.sched, client, RealId(rs), (now_ns / NS) as u32);
        }
    }

    /// Installs (or updates) a connection a sync message carried (HA
    /// backup): the same record the master has, with its state, its
    /// timeout from now, and the real server's active/inactive counters
    /// updated when `count` (the copy a FullNAT connection gets on the
    /// worker that owns its local port is not counted). The service and
    /// real server are looked up by address in this snapshot; a
    /// connection whose service or server is unknown here is installed
    /// without counters, as IPVS does.
    pub fn install_conn(
        &mut self,
        sc: &SyncConn,
        now_ns: u64,
        count: bool,
    ) -> Result<(), InstallError> {
        self.st.now_ns = now_ns;
        match sc.client {
            IpAddr::V4(_) => self.install_fam::<V4>(sc, count),
            IpAddr::V6(_) => self.install_fam::<V6>(sc, count),
        }
    }

    fn install_fam<F: Tables>(&mut self, sc: &SyncConn, count: bool) -> Result<(), InstallError> {
        let fam = |a: IpAddr| F::from_ip(a).ok_or(InstallError::Family);
        let (client, vip, rip) = (fam(sc.client)?, fam(sc.vip)?, fam(sc.rip)?);
        let (local, lport) = match sc.local {
            Some((a, p)) => (fam(a)?, p),
            None => (F::UNSPECIFIED, 0),
        };
        let fwd = sc.fwd().ok_or(InstallError::Forward)?;
        let snap = self.snap.clone();
        let (mut svc_id, mut rs) = (u16::MAX, u32::MAX);
        if count {
            if let Some(s) = snap.service_for(sc.proto, sc.vip, sc.vport) {
                svc_id = s.id;
                let same = |r: &&crate::sched::RealServer| {
                    r.addr == sc.rip && (r.port == sc.rport || r.port == 0)
                };
                let found = s.sched.reals().iter().find(same);
                if let Some(r) = found.or(s.sched.sorry().filter(same)) {
                    rs = r.id.0;
                }
            }
        }
        let nc = NewConn::<F> {
            proto: sc.proto,
            fwd,
            client,
            cport: sc.cport,
            vip,
            vport: sc.vport,
            rip,
            rport: sc.rport,
            local,
            lport,
            rs,
            svc: svc_id,
        };
        let tick = (self.st.now_ns / NS) as u32;
        let table = F::table(&mut self.st);
        let existing = match table.lookup(&nc.in_key()) {
            Some((idx, ConnDir::In)) => table.get(idx).copied().map(|c| (idx, c)),
            _ => None,
        };
        // Refuse before changing anything when the deltas cannot be kept.
        if sc.seq.is_some() {
            let (used, max) = table.seq_adj_usage();
            let has = existing.is_some_and(|(idx, _)| table.seq_adj(idx).is_some());
            if !has && used >= max {
                table.count_seq_full();
                return Err(InstallError::SeqFull);
            }
        }
        let idx = match existing {
            Some((idx, c))
                if c.rip() == rip
                    && c.rport() == sc.rport
                    && c.fwd() == fwd
                    && c.local() == local
                    && c.lport() == lport =>
            {
                idx
            }
            other => {
                // A different connection with this client tuple (the
                // master reused it): replace it.
                if let Some((idx, _)) = other {
                    if let Some(old) = table.remove(idx) {
                        unbind(&snap, old.svc(), old.rs(), old.is_active());
                    }
                }
                let idx = table.insert(&nc, tick).map_err(InstallError::Table)?;
                if let Some(r) = real_of(&snap, svc_id, rs) {
                    r.counters.conn_bound(false, r.thresholds);
                }
                idx
            }
        };
        let no_output = sc.flags & crate::sync::codec::F_NOOUTPUT != 0;
        if let Some(ch) = table.set_synced_state(idx, sc.tcp_state(), no_output, sc.timeout, tick) {
            activity(&snap, svc_id, rs, ch.activity);
        }
        if let Some(s) = sc.seq {
            // Room was checked above; a replaced record freed its own.
            table.set_seq_adj(idx, s.conn_seq());
        }
        if let Some(m) = F::marks(&mut self.st).get_mut(idx.get() as usize) {
            *m = SyncMark::NEW;
        }
        Ok(())
    }

    /// Periodic work between bursts: connection expiry (bounded by
    /// `budget`), neighbour aging and retransmissions, fragment expiry,
    /// occupancy counters.
    pub fn housekeeping(&mut self, now_ns: u64, budget: usize, sink: &mut impl Sink<B>) {
        self.st.now_ns = now_ns;
        let refill = (self.st.kernel_rate / 100).max(1);
        self.st.kernel_tokens = self
            .st
            .kernel_tokens
            .saturating_add(refill)
            .min(self.st.kernel_rate);
        let tick = (now_ns / NS) as u32;
        let snap = &*self.snap;
        let st = &mut self.st;
        let (lim, counters) = (&mut st.passive, &*st.counters);
        st.conns4.expire(tick, budget, |_, c| {
            if let Some(ev) = syn_timeout(c) {
                passive_fail(snap, lim, counters, ev, tick, sink);
            }
            unbind(snap, c.svc(), c.rs(), c.is_active())
        });
        st.conns6.expire(tick, budget, |_, c| {
            if let Some(ev) = syn_timeout(c) {
                passive_fail(snap, lim, counters, ev, tick, sink);
            }
            unbind(snap, c.svc(), c.rs(), c.is_active())
        });
        st.frags.expire(now_ns);
        st.counters
            .conn_entries
            .set(u64::from(st.conns4.len()) + u64::from(st.conns6.len()));
        st.counters.conn_entries_v4.set(u64::from(st.conns4.len()));
        st.counters.conn_entries_v6.set(u64::from(st.conns6.len()));
        let mut solicits = [None; 16];
        let mut n = 0;
        self.neigh.tick(now_ns, |ev| match ev {
            TickEvent::Solicit(s) => {
                if let Some(slot) = solicits.get_mut(n) {
                    *slot = Some(s);
                    n += 1;
                }
            }
            TickEvent::Dropped(p) => {
                st.counters.path_drop(PathDrop::NeighQueueFull);
                drop(p);
            }
        });
        for s in solicits.into_iter().flatten() {
            send_solicit(&self.neigh, &self.st.counters, s, sink);
        }
        if self.announce_rounds > 0 && now_ns >= self.announce_next {
            self.announce_rounds -= 1;
            self.announce_next = now_ns.saturating_add(self.snap.garp.1);
            for (addr, port) in self.announce.iter().copied() {
                let Some(mut b) = sink.alloc() else {
                    self.st.counters.path_drop(PathDrop::NoBuffer);
                    continue;
                };
                let n = match b.append(neigh::packets::MAX_FRAME_LEN) {
                    Some(buf) => self.neigh.build_announce(addr, port, buf).ok(),
                    None => None,
                };
                match n {
                    Some(n) if b.trim(neigh::packets::MAX_FRAME_LEN - n) => sink.tx(port, b),
                    _ => self.st.counters.path_drop(PathDrop::NoBuffer),
                }
            }
        }
    }

    /// Processes one packet received on `in_port`. `from_handoff` is set
    /// for packets another worker handed over (they are never handed on).
    /// The same as a [`Pipeline::process_burst`] of one packet.
    #[inline]
    pub fn process(
        &mut self,
        pkt: B,
        in_port: u16,
        now_ns: u64,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) {
        self.st.now_ns = now_ns;
        self.packet(pkt, in_port, from_handoff, None, None, sink);
    }

    /// Processes a burst of packets, each with the port it came in on, in
    /// rounds of up to [`BURST`] packets staged as in VPP's lb node and
    /// DPDK's l3fwd: (1) read each packet's 5-tuple where it sits at fixed
    /// offsets (plain IPv4/IPv6 TCP or UDP, unfragmented), hash it and
    /// prefetch its connection bucket; (2) prefetch the record the
    /// bucket's signature names; (3) handle every packet in burst order
    /// exactly as [`Pipeline::process`] does, the lookup reusing the hash
    /// of stage 1 when the parsed key is the one stage 1 read. Stages 1
    /// and 2 only read ahead, so the outcome (frames, their order,
    /// counters, tables) is that of processing the packets one at a time:
    /// a connection packet i creates is found by packet j > i, and no
    /// packet overtakes another. The worker calls it for every RX burst
    /// and for the packets other workers hand over (`from_handoff`).
    pub fn process_burst(
        &mut self,
        pkts: impl IntoIterator<Item = (B, u16)>,
        now_ns: u64,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) {
        self.st.now_ns = now_ns;
        let mut it = pkts.into_iter();
        loop {
            let mut bufs: [Option<B>; BURST] = [const { None }; BURST];
            let mut ports = [0u16; BURST];
            let mut n = 0usize;
            for (i, (b, p)) in bufs.iter_mut().zip(ports.iter_mut()).enumerate() {
                let Some((pkt, port)) = it.next() else { break };
                self.st
                    .stage
                    .peek(i, pkt.data(), &self.st.conns4, &self.st.conns6);
                *b = Some(pkt);
                *p = port;
                n = i + 1;
            }
            if n == 0 {
                return;
            }
            self.st
                .stage
                .prefetch_records(n, &self.st.conns4, &self.st.conns6);
            let mut fast = 0u64;
            for (i, (b, p)) in bufs.iter_mut().zip(ports).take(n).enumerate() {
                if let Some(pkt) = b.take() {
                    // Established flows that need only their rewrite take
                    // the fast path (pipeline::fast); everything else, and
                    // whatever it gives back, the general one.
                    match self.fast(pkt, i, from_handoff, sink) {
                        Ok(()) => fast += 1,
                        Err((pkt, pre)) => self.packet(pkt, p, from_handoff, Some(i), pre, sink),
                    }
                }
            }
            self.st.counters.fast_path.add(fast);
            if n < BURST {
                return;
            }
        }
    }

    /// One packet, after the prefetch stages (`slot`: its place in the
    /// staged round, `None` outside one; `pre`: the connection lookup the
    /// fast path already made for it).
    #[inline(always)]
    fn packet(
        &mut self,
        mut pkt: B,
        in_port: u16,
        from_handoff: bool,
        slot: Option<usize>,
        pre: Option<Option<(RecordIdx, ConnDir)>>,
        sink: &mut impl Sink<B>,
    ) {
        let now_ns = self.st.now_ns;
        let opts = ParseOptions {
            accept_source_route: self.snap.accepts_source_route(in_port),
            ..ParseOptions::default()
        };
        let meta = match parse_with(pkt.data(), opts) {
            Ok(m) => m,
            Err(r) => {
                self.st.counters.parse_drop(r);
                return;
            }
        };
        if meta.vlan.is_some()
            && !crate::guard::vlan_ok(&meta, self.neigh.port(in_port).and_then(|p| p.tci))
        {
            self.st.counters.parse_drop(DropReason::VlanNotOnPort);
            return;
        }
        match meta.l3 {
            L3::Arp => {
                let h = self
                    .neigh
                    .handle_arp(&self.snap.addrs, &mut pkt, &meta, in_port, now_ns);
                self.after_neigh(pkt, h, in_port, sink);
            }
            L3::Ipv6
                if meta.l4_proto == 58
                    && (133..=137).contains(&meta.icmp_type)
                    && !meta.is_icmp_error() =>
            {
                let h = self
                    .neigh
                    .handle_nd(&self.snap.addrs, &mut pkt, &meta, in_port, now_ns);
                self.after_neigh(pkt, h, in_port, sink);
            }
            L3::Ipv4 => self.ip::<V4>(pkt, &meta, slot, pre, in_port, from_handoff, sink),
            L3::Ipv6 => self.ip::<V6>(pkt, &meta, slot, pre, in_port, from_handoff, sink),
        }
    }

    /// The exception path: to the kernel through the port's TAP, within
    /// the rate limit; otherwise dropped as not ours.
    fn kernel(&mut self, pkt: B, port: u16, sink: &mut impl Sink<B>) {
        if self.st.kernel_tokens == 0 {
            self.st.counters.path_drop(PathDrop::KernelRateLimited);
            return;
        }
        match sink.to_kernel(port, pkt) {
            Ok(()) => {
                self.st.kernel_tokens -= 1;
                self.st.counters.to_kernel.inc();
            }
            Err(p) => {
                drop(p);
                self.st.counters.path_drop(PathDrop::NotOurs);
            }
        }
    }

    fn after_neigh(&mut self, pkt: B, h: neigh::Handled, in_port: u16, sink: &mut impl Sink<B>) {
        if h.changed {
            self.st.counters.neigh_changes.inc();
        }
        // An answer this worker did not ask for is offered to the others
        // (`learned` set): with several workers another one may be
        // resolving it, so it is a refusal only where there is no other.
        let offered = h.learned.is_some() && self.st.own.workers() > 1;
        if let Some(r) = h.refused.filter(|_| !offered) {
            self.st.counters.parse_drop(r);
        }
        match h.verdict {
            NVerdict::Reply => {
                self.st.counters.neigh_answered.inc();
                sink.tx(in_port, pkt);
            }
            // Dealt with (learned from, or refused and counted above): the
            // kernel behind a TAP may see it too; without one it is
            // freed, and is not a `not_ours` drop.
            NVerdict::Consumed | NVerdict::NotOurs
                if h.verdict == NVerdict::Consumed || h.refused.is_some() || h.changed =>
            {
                if self.st.kernel_tokens > 0 {
                    if let Ok(()) = sink.to_kernel(in_port, pkt) {
                        self.st.kernel_tokens -= 1;
                        self.st.counters.to_kernel.inc();
                    }
                }
            }
            NVerdict::NotOurs | NVerdict::Consumed => self.kernel(pkt, in_port, sink),
            NVerdict::Malformed => {}
        }
        if let Some(l) = h.learned {
            sink.event(Event::NeighLearned {
                ip: l.ip,
                port: l.port,
                mac: l.mac,
            });
            self.neigh.release(l.ip, l.port, |p| sink.tx(l.port, p));
        }
    }

    fn drop_pkt(&self, r: PathDrop) {
        self.st.counters.path_drop(r);
    }

    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn ip<F: Tables>(
        &mut self,
        pkt: B,
        meta: &PacketMeta,
        slot: Option<usize>,
        pre: Option<Option<(RecordIdx, ConnDir)>>,
        in_port: u16,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) {
        // The flow this packet belongs to: its own ports, the ports of its
        // first fragment, or for an ICMP error the quoted flow turned around.
        let icmp_error = meta.is_icmp_error();
        let (proto, src, sport, dst, dport) = if icmp_error {
            match forward::icmp_inner_flow(pkt.data(), meta) {
                Ok(inner) => {
                    let r = inner.reversed();
                    (r.proto, r.src, r.src_port, r.dst, r.dst_port)
                }
                Err(_) => return self.drop_pkt(PathDrop::IcmpNoConn),
            }
        } else {
            match crate::frag::classify(meta) {
                FragClass::Whole => (
                    meta.l4_proto,
                    meta.src,
                    meta.src_port,
                    meta.dst,
                    meta.dst_port,
                ),
                FragClass::First(k) => {
                    let _ = self
                        .st
                        .frags
                        .insert(k, (meta.src_port, meta.dst_port), self.st.now_ns);
                    (
                        meta.l4_proto,
                        meta.src,
                        meta.src_port,
                        meta.dst,
                        meta.dst_port,
                    )
                }
                FragClass::NonFirst(k) => {
                    let ports = self.st.frags.lookup(&k, self.st.now_ns).ok();
                    match ports {
                        Some((s, d)) => (meta.l4_proto, meta.src, s, meta.dst, d),
                        None => return self.drop_pkt(PathDrop::FragUnknownFirst),
                    }
                }
            }
        };
        let (Some(fsrc), Some(fdst)) = (F::from_ip(src), F::from_ip(dst)) else {
            return self.drop_pkt(PathDrop::NotOurs);
        };
        let snap = &*self.snap;
        // The service is looked up only where it decides something: the
        // owner (several workers) and a connection miss. An established
        // packet on one worker goes straight to the connection table.
        // Ownership needs only whether it is client→service: the
        // (protocol, VIP, port) hash first, the fwmark classifier only on
        // a miss, so established packets of address services never pay
        // for classification.
        let multi = self.st.own.workers() > 1;
        let to_svc = multi && snap.to_service(proto, dst, dport);

        // Ownership: client→VIP by the client endpoint; anything else (NAT
        // replies to the client, FullNAT replies to a local port) by its
        // destination endpoint.
        if !from_handoff && multi {
            let owner = if to_svc {
                self.st.own.owner::<F>(fsrc, sport)
            } else {
                self.st.own.owner::<F>(fdst, dport)
            };
            if owner != self.st.worker {
                let mut pkt = pkt;
                // The owner checks the source against this port.
                pkt.set_rx_port(in_port);
                let c = self.st.counters.handoff_out.get(owner as usize);
                match sink.handoff(owner, pkt) {
                    Ok(()) => {
                        if let Some(c) = c {
                            c.inc();
                        }
                    }
                    Err(p) => {
                        drop(p);
                        self.drop_pkt(PathDrop::HandoffFull);
                    }
                }
                return;
            }
        }
        if from_handoff {
            self.st.counters.handoff_in.inc();
        }

        let key = FlowKey::<F>::new(proto, fsrc, sport, fdst, dport);
        let tick = (self.st.now_ns / NS) as u32;
        let bytes = ip_len(meta);
        // Stage 1 of a burst hashed the 5-tuple it read; it is this
        // packet's flow when the keys agree (not for ICMP errors and
        // fragments, which stage 1 leaves alone).
        let staged = slot.and_then(|i| F::staged(&self.st.stage, i));
        let table = F::table(&mut self.st);
        let mut found = match (pre, staged) {
            // The fast path looked it up (a plain packet: the same key).
            (Some(f), _) => f,
            (None, Some((k, h))) if k == key => table.lookup_hashed(&key, h),
            _ => table.lookup(&key),
        };
        if let Some((idx, ConnDir::In)) = found {
            // A new SYN on the tuple of a finished connection (the client
            // reused its port): IPVS's conn_reuse_mode expires the old
            // entry and schedules the SYN afresh, so it is counted as a
            // new connection and a drained server gets no new ones. Only
            // a segment that may create a connection (SYN without ACK and
            // RST) expires anything.
            let reuse = proto == IPPROTO_TCP
                && !icmp_error
                && meta.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN
                && table
                    .get(idx)
                    .is_some_and(|c| reuse_expected(c, snap.conn_reuse_mode));
            if reuse {
                // It is about to change state (expire the old entry, then
                // create one): the checks a new connection passes come
                // first, so a forged SYN changes nothing.
                if let Some(r) = crate::guard::l4_checksum(&pkt, meta)
                    .or_else(|| crate::guard::source_check(snap, meta, in_port))
                {
                    return self.st.counters.parse_drop(r);
                }
                let table = F::table(&mut self.st);
                if let Some(old) = table.remove(idx) {
                    unbind(snap, old.svc(), old.rs(), old.is_active());
                    self.st.counters.conn_reused.inc();
                }
                found = None;
            }
        }
        let table = F::table(&mut self.st);
        if let Some((idx, dir)) = found {
            let Some(c) = table.get(idx) else {
                return self.drop_pkt(PathDrop::ReplyNoConn);
            };
            let mut t = forward::Translation {
                mode: fwd_mode(c.fwd()),
                client: Endpoint::new(F::to_ip(c.client()), c.cport()),
                vip: Endpoint::new(F::to_ip(c.vip()), c.vport()),
                rip: Endpoint::new(F::to_ip(c.rip()), c.rport()),
                laddr: (c.fwd() == FwdMode::FullNat)
                    .then(|| Endpoint::new(F::to_ip(c.local()), c.lport())),
                tun: snap.tunnel(c.rs()),
            };
            let (svc_id, rs) = (c.svc(), c.rs());
            if c.fwd() == FwdMode::Tun && c.rip() == F::UNSPECIFIED {
                // A TUN real server of the other family: its address is
                // the snapshot's (the record holds this family's only).
                match tun_target(snap, svc_id, rs) {
                    Some(a) => t.rip.addr = a,
                    None => return self.drop_pkt(PathDrop::NoRealServer),
                }
            }
            let prev = c.tcp_state();
            if !icmp_error {
                if proto == IPPROTO_TCP {
                    if let Some(ch) = table.update_state(idx, meta.tcp_flags, dir, tick) {
                        activity(snap, svc_id, rs, ch.activity);
                    }
                    // Passive check: the server's answer to the client's
                    // SYN (the connection still in SYN_RECV) is a RST.
                    if dir == ConnDir::Out
                        && meta.tcp_flags & TCP_RST != 0
                        && prev == TcpState::SynRecv
                    {
                        let ev = (svc_id, rs, PassiveWhy::RstToSyn);
                        let (lim, counters) = (&mut self.st.passive, &*self.st.counters);
                        passive_fail(snap, lim, counters, ev, tick, sink);
                    }
                } else {
                    table.touch(idx, tick);
                }
            }
            let out = dir == ConnDir::Out;
            count_traffic(&self.st.counters, svc_id, rs, out, bytes);
            if let (Some(sp), false, false) = (&snap.sync, out, icmp_error) {
                sync_check::<F, B>(&mut self.st, sp, &snap.timeouts, idx, false, sink);
            }
            let mut pkt = pkt;
            let mut pp_meta = None;
            if proto == IPPROTO_TCP && !icmp_error {
                if !self.st.syn.idle() {
                    match self.synproxy_conn::<F>(pkt, meta, idx, out, &t, in_port, sink) {
                        Some(p) => pkt = p,
                        None => return,
                    }
                }
                if let Some(s) = F::table(&mut self.st).seq_adj(idx).copied() {
                    // Proxy Protocol: the header goes into the client's
                    // first segment (forward::proxyproto).
                    let pp = self.snap.service(svc_id).and_then(|v| v.proxy_protocol);
                    match forward::proxyproto::on_segment(
                        &mut pkt, meta, &s, pp, t.client, t.vip, !out,
                    ) {
                        forward::proxyproto::PpStep::Pass => {}
                        forward::proxyproto::PpStep::MssClamped => {
                            self.st.counters.pp.mss_clamped.inc()
                        }
                        forward::proxyproto::PpStep::Inserted(v, m) => {
                            match v {
                                forward::PpVersion::V1 => self.st.counters.pp.inserted_v1.inc(),
                                forward::PpVersion::V2 => self.st.counters.pp.inserted_v2.inc(),
                            }
                            pp_meta = Some(m);
                        }
                        forward::proxyproto::PpStep::Drop(e) => return self.st.counters.pp.fail(e),
                    }
                    let meta = pp_meta.as_ref().unwrap_or(meta);
                    if let Some(r) = forward::seq_adjust_packet(&mut pkt, meta, &s, !out) {
                        self.st.counters.seq_adjusted.inc();
                        if r.bad_options {
                            self.st.counters.seq_bad_options.inc();
                        }
                    }
                }
            }
            let meta = pp_meta.as_ref().unwrap_or(meta);
            let d = if out { Direction::Out } else { Direction::In };
            if self.st.toa.enabled() {
                let c = (&t, svc_id, idx.get(), out);
                let (toa, counters) = (&mut self.st.toa, &*self.st.counters);
                if let Some(m) =
                    forward::toa_established(toa, counters, &self.snap, &mut pkt, meta, c)
                {
                    return self.emit(pkt, &m, &t, d, in_port, sink);
                }
            }
            return self.emit(pkt, meta, &t, d, in_port, sink);
        }
        if icmp_error {
            return self.drop_pkt(PathDrop::IcmpNoConn);
        }
        // No connection: before anything may create state or be sent on,
        // the source must be plausible for the port it came in on.
        if let Some(r) = crate::guard::source_check(snap, meta, in_port) {
            return self.st.counters.parse_drop(r);
        }
        // A miss: the service in IPVS's order (fwmark first, then
        // protocol/VIP/port).
        let svc = if multi && !to_svc {
            None
        } else {
            snap.service_for(proto, dst, dport)
        };
        let Some(svc) = svc else {
            // A reply from a NAT real server without a connection (table
            // full, flow forwarded statelessly; one-packet scheduling):
            // reverse NAT statelessly, counted.
            if let Some((s, rs)) = snap.nat_reverse(proto, src, sport) {
                self.st.counters.stateless_replies.inc();
                count_traffic(&self.st.counters, s.id, rs, true, bytes);
                let t = forward::Translation {
                    mode: Mode::Nat,
                    client: Endpoint::new(dst, dport),
                    vip: Endpoint::new(s.vip, s.vport),
                    rip: Endpoint::new(src, sport),
                    laddr: None,
                    tun: forward::TunEncap::Ipip,
                };
                return self.emit(pkt, meta, &t, Direction::Out, in_port, sink);
            }
            // For the host (its own addresses, multicast such as VRRP,
            // link-local): the exception path to the kernel.
            let host = match meta.dst {
                IpAddr::V4(a) => a.is_multicast() || a.is_broadcast(),
                IpAddr::V6(a) => a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80,
            } || snap
                .addrs
                .get(meta.dst)
                .is_some_and(|a| a.class == crate::neigh::AddrClass::Port);
            if host {
                return self.kernel(pkt, in_port, sink);
            }
            let r = if snap.addrs.contains(dst) {
                PathDrop::ReplyNoConn
            } else {
                PathDrop::NotOurs
            };
            return self.drop_pkt(r);
        };
        if snap.role == Role::Backup {
            return self.drop_pkt(PathDrop::Backup);
        }
        if proto == IPPROTO_TCP && svc.synproxy {
            return self.synproxy_miss::<F>(pkt, meta, svc_id_of(svc), key, in_port, sink);
        }
        if proto == IPPROTO_TCP && (meta.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN {
            // Mid-flow with no entry. A full table never breaks a flow:
            // its SYN went out by the service's Maglev table, so every
            // later packet does too (Maglev's behaviour).
            // With IPVS's sloppy_tcp the service's (consistent) scheduler
            // picks and an entry is created in the state the segment
            // implies: flows moved here by ECMP continue.
            if svc.sloppy_tcp {
                if let Some(r) = crate::guard::l4_checksum(&pkt, meta) {
                    return self.st.counters.parse_drop(r);
                }
                return self.new_conn::<F>(pkt, meta, svc_id_of(svc), key, true, in_port, sink);
            }
            let table = F::table(&mut self.st);
            if table.len() >= table.capacity() {
                return self.stateless_fwd::<F>(
                    pkt,
                    meta,
                    svc_id_of(svc),
                    key,
                    None,
                    in_port,
                    sink,
                );
            }
            return self.drop_pkt(PathDrop::TcpNoConn);
        }
        // It would create a connection: its checksum must be right (IPVS
        // checks it in NAT mode; rvs for every mode).
        if let Some(r) = crate::guard::l4_checksum(&pkt, meta) {
            return self.st.counters.parse_drop(r);
        }
        self.new_conn::<F>(pkt, meta, svc_id_of(svc), key, false, in_port, sink);
    }

    /// Schedules a new flow and creates its entry. `midflow`: a TCP
    /// segment that is not a SYN on a `sloppy_tcp` service; its entry
    /// starts in the state the segment implies (ESTABLISHED for an ACK,
    /// FIN_WAIT for a FIN, CLOSE for a RST), as IPVS's sloppy mode does.
    #[allow(clippy::too_many_arguments)]
    fn new_conn<F: Tables>(
        &mut self,
        pkt: B,
        meta: &PacketMeta,
        svc_id: u16,
        key: FlowKey<F>,
        midflow: bool,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) {
        // Borrowed, not cloned: an `Arc` clone per connection would be an
        // atomic on the line every worker's snapshot count shares.
        let snap: &Snapshot = &self.snap;
        let Some(svc) = snap.service(svc_id) else {
            return self.drop_pkt(PathDrop::NotOurs);
        };
        let input = PickInput {
            client: F::to_ip(key.src),
            client_port: key.sport,
            vip: F::to_ip(key.dst),
            vport: key.dport,
            proto: key.proto,
        };
        let now_s = (self.st.now_ns / NS) as u32;
        let Some(Some(ws)) = self.st.scheds.get_mut(svc_id as usize) else {
            return self.drop_pkt(PathDrop::NoRealServer);
        };
        let mut picked = None;
        let (real, fwd) = match ws.schedule(&svc.sched, &input, now_s) {
            Pick::Real(i) => match svc.sched.reals().get(i) {
                Some(r) => {
                    picked = Some(i);
                    (r, svc.fwd_of(i))
                }
                None => return self.drop_pkt(PathDrop::NoRealServer),
            },
            Pick::Sorry => match svc.sched.sorry() {
                Some(r) => (r, svc.sorry_fwd),
                None => return self.drop_pkt(PathDrop::NoRealServer),
            },
            Pick::Unavailable => return self.drop_pkt(PathDrop::NoRealServer),
        };
        let rip = match F::from_ip(real.addr) {
            Some(a) => a,
            // A TUN real server of the other family (IPVS's heterogeneous
            // pools): the record cannot hold its address and keeps the
            // unspecified one; the connection's packets find the address
            // by its real-server id ([`tun_target`]).
            None if fwd == FwdMode::Tun => F::UNSPECIFIED,
            None => return self.drop_pkt(PathDrop::NoRealServer),
        };
        // Port 0 (fwmark services) keeps the packet's port; DR and TUN
        // never change it (a port on their real server is for checks).
        let rport = if real.port == 0 || matches!(fwd, FwdMode::Dr | FwdMode::Tun) {
            key.dport
        } else {
            real.port
        };
        if svc.ops && key.proto == IPPROTO_UDP && fwd != FwdMode::FullNat {
            // IPVS's one-packet scheduling: the datagram is a connection
            // of its own (counted as one) that is never hashed, so the
            // next datagram of the flow is scheduled again. A persistence
            // template (made by `schedule` above) still holds the client.
            if svc.sched.config().persistence.is_some() {
                sink.event(Event::Template {
                    svc: svc_id,
                    client: F::to_ip(key.src),
                    rs: real.id.0,
                });
            }
            self.st.counters.ops_packets.inc();
            for c in [
                self.st.counters.services.get(svc_id as usize),
                self.st.counters.reals.get(real.id.0 as usize),
            ]
            .into_iter()
            .flatten()
            {
                c.conns.inc();
            }
            count_traffic(&self.st.counters, svc_id, real.id.0, false, ip_len(meta));
            let t = forward::Translation {
                mode: fwd_mode(fwd),
                client: Endpoint::new(F::to_ip(key.src), key.sport),
                vip: Endpoint::new(F::to_ip(key.dst), key.dport),
                rip: Endpoint::new(real.addr, rport),
                laddr: None,
                tun: snap.tunnel(real.id.0),
            };
            return self.emit(pkt, meta, &t, Direction::In, in_port, sink);
        }
        let mut nc = NewConn::<F> {
            proto: key.proto,
            fwd,
            client: key.src,
            cport: key.sport,
            vip: key.dst,
            vport: key.dport,
            rip,
            rport,
            local: F::UNSPECIFIED,
            lport: 0,
            rs: real.id.0,
            svc: svc_id,
        };
        let tick = (self.st.now_ns / NS) as u32;
        let mut attempts = if fwd == FwdMode::FullNat { 8 } else { 1 };
        let mut freed = false;
        let inserted = loop {
            if fwd == FwdMode::FullNat {
                let h = F::hash_endpoint(&HashKey::from_seed(0), key.src, key.sport);
                let Some(l) = svc.laddr_for(real.addr, h).and_then(F::from_ip) else {
                    return self.drop_pkt(PathDrop::NoLocalPort);
                };
                let Some(p) = next_lport::<F>(&mut self.st, l, snap.local_ports) else {
                    return self.drop_pkt(PathDrop::NoLocalPort);
                };
                nc.local = l;
                nc.lport = p;
            }
            let table = F::table(&mut self.st);
            match table.insert(&nc, tick) {
                Ok(idx) => break Some(idx),
                Err(InsertError::Exists(ConnDir::Out)) if fwd != FwdMode::FullNat && !freed => {
                    // The reply tuple (RIP:rport → client) is still held by
                    // a finished connection of another service on the same
                    // real server port (the client reused its port): that
                    // entry is expired, as the real server reuses its
                    // TIME_WAIT tuple. A live one keeps it (the new SYN is
                    // refused: replies could not be told apart).
                    freed = true;
                    let old = nc
                        .out_key()
                        .and_then(|k| table.lookup(&k))
                        .filter(|(_, d)| *d == ConnDir::Out)
                        .map(|(i, _)| i)
                        .filter(|i| table.get(*i).is_some_and(finished));
                    let Some(old) = old.and_then(|i| table.remove(i)) else {
                        return self.drop_pkt(PathDrop::NoLocalPort);
                    };
                    unbind(snap, old.svc(), old.rs(), old.is_active());
                    self.st.counters.conn_reused.inc();
                }
                Err(InsertError::Exists(_)) if attempts > 1 => attempts -= 1,
                Err(InsertError::Exists(_)) => return self.drop_pkt(PathDrop::NoLocalPort),
                Err(InsertError::Full | InsertError::NoSlot) => break None,
            }
        };
        let t = forward::Translation {
            mode: fwd_mode(fwd),
            client: Endpoint::new(F::to_ip(key.src), key.sport),
            vip: Endpoint::new(F::to_ip(key.dst), key.dport),
            rip: Endpoint::new(real.addr, rport),
            laddr: (fwd == FwdMode::FullNat).then(|| Endpoint::new(F::to_ip(nc.local), nc.lport)),
            tun: snap.tunnel(real.id.0),
        };
        match inserted {
            Some(idx) => {
                real.counters.conn_bound(false, real.thresholds);
                if svc.sched.config().persistence.is_some() {
                    // The other workers adopt (or refresh) the template, so
                    // the client keeps its real server on every core.
                    sink.event(Event::Template {
                        svc: svc_id,
                        client: F::to_ip(key.src),
                        rs: real.id.0,
                    });
                }
                let table = F::table(&mut self.st);
                // Proxy Protocol: the connection's stream grows by the
                // header from its first byte (forward::proxyproto).
                if let (Some(v), false, FwdMode::FullNat) = (svc.proxy_protocol, midflow, fwd) {
                    if !pp_start(table, idx, &pkt, meta, v, &t) {
                        if let Some(old) = table.remove(idx) {
                            unbind(snap, old.svc(), old.rs(), old.is_active());
                        }
                        return self.st.counters.pp.side_full.inc();
                    }
                }
                if midflow {
                    let f = meta.tcp_flags;
                    let to = if f & TCP_RST != 0 {
                        crate::conn::TcpState::Close
                    } else if f & TCP_FIN != 0 {
                        crate::conn::TcpState::FinWait
                    } else {
                        crate::conn::TcpState::Established
                    };
                    let no_output = table.get(idx).is_some_and(|c| c.no_output());
                    if let Some(ch) = table.set_synced_state(idx, to, no_output, 0, tick) {
                        activity(snap, svc_id, real.id.0, ch.activity);
                    }
                    self.st.counters.sloppy_conns.inc();
                } else if key.proto == IPPROTO_TCP {
                    if let Some(ch) = table.update_state(idx, meta.tcp_flags, ConnDir::In, tick) {
                        activity(snap, svc_id, real.id.0, ch.activity);
                    }
                }
                if let Some(sp) = &snap.sync {
                    sync_check::<F, B>(&mut self.st, sp, &snap.timeouts, idx, true, sink);
                }
                if let Some(c) = self.st.counters.services.get(svc_id as usize) {
                    c.conns.inc();
                }
                if let Some(c) = self.st.counters.reals.get(real.id.0 as usize) {
                    c.conns.inc();
                }
                count_traffic(&self.st.counters, svc_id, real.id.0, false, ip_len(meta));
                let mut pkt = pkt;
                if svc.toa {
                    forward::toa_new_conn(&self.st.counters, fwd, &mut pkt, meta);
                }
                self.emit(pkt, meta, &t, Direction::In, in_port, sink);
            }
            None => self.stateless_fwd::<F>(pkt, meta, svc_id, key, picked, in_port, sink),
        }
    }

    /// Forwards a packet of a flow the connection table has no room for,
    /// by the service's Maglev table (`Service::stateless`), so every
    /// packet of the flow, SYN or not, reaches the same real server on
    /// every director without state. Counted in `stateless_fallbacks`;
    /// NAT replies come back through [`Snapshot::nat_reverse`]. FullNAT
    /// cannot work without state (its local port is allocated per
    /// connection): dropped as `fullnat_table_full`. Without a Maglev
    /// table, `fallback` (the scheduler's pick for a new flow, an index
    /// into the service's real servers) is used; mid-flow packets have
    /// none and are dropped as `no_real_server`.
    #[allow(clippy::too_many_arguments)]
    fn stateless_fwd<F: Tables>(
        &mut self,
        pkt: B,
        meta: &PacketMeta,
        svc_id: u16,
        key: FlowKey<F>,
        fallback: Option<usize>,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) {
        let snap: &Snapshot = &self.snap;
        let Some(svc) = snap.service(svc_id) else {
            return self.drop_pkt(PathDrop::NotOurs);
        };
        let input = PickInput {
            client: F::to_ip(key.src),
            client_port: key.sport,
            vip: F::to_ip(key.dst),
            vport: key.dport,
            proto: key.proto,
        };
        let now_s = (self.st.now_ns / NS) as u32;
        let pick = match (
            svc.stateless.as_ref(),
            self.st.fallbacks.get_mut(svc_id as usize),
        ) {
            (Some(fb), Some(Some(ws))) => ws
                .pick(fb, &input, now_s)
                .and_then(|i| fb.reals().get(i).map(|r| (r, svc.fwd_of(i)))),
            _ => fallback.and_then(|i| svc.sched.reals().get(i).map(|r| (r, svc.fwd_of(i)))),
        };
        let Some((r, fwd)) = pick else {
            return self.drop_pkt(PathDrop::NoRealServer);
        };
        if fwd == FwdMode::FullNat {
            return self.drop_pkt(PathDrop::FullNatTableFull);
        }
        self.st.counters.stateless_fallbacks.inc();
        // Still a connection IPVS would count (its table has no size
        // limit): a TCP SYN counts as one, and every packet as traffic,
        // so Conns and --rate stay right while the table is full.
        if key.proto == IPPROTO_TCP && meta.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST) == TCP_SYN {
            for c in [
                self.st.counters.services.get(svc_id as usize),
                self.st.counters.reals.get(r.id.0 as usize),
            ]
            .into_iter()
            .flatten()
            {
                c.conns.inc();
            }
        }
        count_traffic(&self.st.counters, svc_id, r.id.0, false, ip_len(meta));
        let t = forward::Translation {
            mode: fwd_mode(fwd),
            client: Endpoint::new(F::to_ip(key.src), key.sport),
            vip: Endpoint::new(F::to_ip(key.dst), key.dport),
            rip: Endpoint::new(r.addr, if r.port == 0 { key.dport } else { r.port }),
            laddr: None,
            tun: snap.tunnel(r.id.0),
        };
        self.emit(pkt, meta, &t, Direction::In, in_port, sink);
    }

    /// Rewrites, routes and sends one packet of a connection.
    fn emit(
        &mut self,
        mut pkt: B,
        meta: &PacketMeta,
        t: &forward::Translation,
        dir: Direction,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) {
        let snap = &*self.snap;
        let to = match dir {
            Direction::In => t.rip.addr,
            Direction::Out => t.client.addr,
        };
        let now = self.st.now_ns;
        // The adjacency cache answers for an established flow's
        // destination without a route or neighbour lookup (crate::adj);
        // a miss takes both, and fills it after the neighbour output.
        let cached = self.st.adj.get(to, self.neigh.generation(), now).copied();
        let (hop_addr, hop_port, out, tun_src) = match &cached {
            Some(a) => (
                a.hop,
                a.port,
                L2Out {
                    src_mac: a.src_mac,
                    dst_mac: MacAddr::ZERO,
                    mtu: a.mtu,
                },
                a.tun_src,
            ),
            None => {
                let Some(hop) = snap.routes.lookup(to) else {
                    return self.drop_pkt(PathDrop::NoRoute);
                };
                let Some(port) = snap.ports.get(hop.port as usize) else {
                    return self.drop_pkt(PathDrop::NoRoute);
                };
                let out = L2Out {
                    src_mac: port.mac,
                    dst_mac: MacAddr::ZERO,
                    mtu: port.mtu,
                };
                let tun_src = snap.port_addr(hop.port, to).unwrap_or(to);
                (hop.addr, hop.port, out, tun_src)
            }
        };
        // The outer header's fields are only worked out for tunnelled
        // packets; the other modes never read them.
        let tunnel = if t.mode == Mode::Tun {
            self.st.tun_ident = self.st.tun_ident.wrapping_add(1);
            TunParams {
                src: tun_src,
                ttl: Some(TunParams::DEFAULT_TTL),
                ident: self.st.tun_ident,
            }
        } else {
            TunParams {
                src: to,
                ttl: None,
                ident: 0,
            }
        };
        match forward::forward(&mut pkt, meta, t, dir, &out, &tunnel) {
            Ok(Verdict::Transmit) => {
                if let Some(a) = cached.filter(|_| pkt.len() >= ETH_HEADER_LEN) {
                    // Exactly what the neighbour output does for a
                    // reachable entry.
                    Neigh::<B>::write_macs(&mut pkt, a.dst_mac, a.neigh_src_mac);
                    return sink.tx(a.port, pkt);
                }
                let r = self.neigh.output(pkt, hop_addr, hop_port, now);
                match r.output {
                    Output::Send(p) => {
                        sink.tx(hop_port, p);
                        if r.solicit.is_none() {
                            if let Some((dst_mac, neigh_src_mac, until_ns)) =
                                self.neigh.reachable(hop_addr, hop_port)
                            {
                                self.st.adj.put(Adjacency {
                                    to,
                                    hop: hop_addr,
                                    port: hop_port,
                                    mtu: out.mtu,
                                    src_mac: out.src_mac,
                                    dst_mac,
                                    neigh_src_mac,
                                    tun_src,
                                    neigh_gen: self.neigh.generation(),
                                    until_ns,
                                });
                            }
                        }
                    }
                    Output::Queued => {}
                    Output::Dropped(p) => {
                        drop(p);
                        self.drop_pkt(PathDrop::NeighQueueFull);
                    }
                }
                if let Some(s) = r.solicit {
                    send_solicit(&self.neigh, &self.st.counters, s, sink);
                }
            }
            Ok(Verdict::TooBig { mtu }) => {
                let sent = match (
                    snap.port_addr(in_port, meta.src),
                    snap.ports.get(in_port as usize),
                ) {
                    (Some(from), Some(inp)) => {
                        forward::pmtu_reply(&mut pkt, meta, from, inp.mac, mtu).is_ok()
                    }
                    _ => false,
                };
                if t.mode == Mode::Tun {
                    self.st.counters.tun_too_big.count(t.tun, sent);
                }
                if sent {
                    self.st.counters.pmtu_replies.inc();
                    sink.tx(in_port, pkt)
                } else {
                    self.drop_pkt(PathDrop::NeedsFragmentation)
                }
            }
            Ok(Verdict::Reply) => sink.tx(in_port, pkt),
            Err(ForwardError::NeedsFragmentation) => {
                if t.mode == Mode::Tun {
                    self.st.counters.tun_too_big.count(t.tun, false);
                }
                self.drop_pkt(PathDrop::NeedsFragmentation)
            }
            Err(e) => self.st.counters.fwd_error(e),
        }
    }
}

/// The next local port (in `range`) whose replies come back to this
/// worker.
fn next_lport<F: Family>(st: &mut State, laddr: F::Addr, range: (u16, u16)) -> Option<u16> {
    let (lo, hi) = range;
    let span = u32::from(hi - lo) + 1;
    let tries = 64 * u32::from(st.own.workers());
    for _ in 0..tries.min(span) {
        st.lport_cursor = st.lport_cursor.wrapping_add(1);
        let p = lo + (u32::from(st.lport_cursor) % span) as u16;
        if st.own.owns_local_port::<F>(laddr, p, st.worker) {
            return Some(p);
        }
    }
    None
}

/// Counts a client packet of connection `idx` for sync and reports the
/// connection when IPVS's rules say so (`fresh`: the packet created it).
#[inline]
fn sync_check<F: Tables, B>(
    st: &mut State,
    sp: &SyncParams,
    t: &Timeouts,
    idx: RecordIdx,
    fresh: bool,
    sink: &mut impl Sink<B>,
) {
    let now = (st.now_ns / NS) as u32;
    let Some(c) = F::table(st).get(idx).copied() else {
        return;
    };
    let seq = F::table(st).seq_adj(idx).copied();
    let timeout = match c.proto() {
        IPPROTO_TCP => t.tcp(c.tcp_state()),
        17 => t.udp,
        _ => return,
    };
    let Some(m) = F::marks(st).get_mut(idx.get() as usize) else {
        return;
    };
    if fresh {
        *m = SyncMark::NEW;
    }
    if sp.on_packet(m, c.proto(), c.tcp_state(), timeout, now) {
        if c.fwd() == FwdMode::Tun && c.rip() == F::UNSPECIFIED {
            // A real server of the other family: LVS sync v1 carries one
            // family per connection (Linux refuses sync daemons while
            // such real servers exist); not sent, counted.
            st.counters.sync_skipped_mixed.inc();
            return;
        }
        let mut sc = sync_conn_of(&c, timeout);
        if let Some(s) = seq {
            sc.seq = Some(crate::sync::SeqData::from_conn_seq(&s));
            sc.flags |= crate::sync::codec::F_SEQ_MASK;
        }
        sink.event(Event::Sync(sc));
    }
}

/// Gives a new connection of a Proxy Protocol service (its SYN in `pkt`)
/// the sequence delta of its header; `false` when the side table of
/// adjusted connections is full (a SYN that is not TCP changes nothing).
fn pp_start<F: Family, B: PacketBuf>(
    table: &mut ConnTable<F>,
    idx: RecordIdx,
    pkt: &B,
    meta: &PacketMeta,
    v: forward::PpVersion,
    t: &forward::Translation,
) -> bool {
    if meta.l4_proto != IPPROTO_TCP || meta.tcp_flags & (TCP_SYN | TCP_ACK) != TCP_SYN {
        return true;
    }
    let at = usize::from(meta.l4_offset) + 4;
    let Some(seq) = pkt
        .data()
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
    else {
        return true;
    };
    match forward::proxyproto::conn_seq(v, t.client, t.vip, u32::from_be_bytes(seq)) {
        Some(cs) => table.set_seq_adj(idx, cs),
        None => true,
    }
}

/// What the sync protocol carries for a connection.
pub fn sync_conn_of<F: Family>(c: &crate::conn::Conn<F>, timeout: u32) -> SyncConn {
    let fwd = c.fwd();
    SyncConn {
        proto: c.proto(),
        flags: SyncConn::flags_for(fwd, c.no_output(), c.is_active()),
        state: c.tcp_state() as u16,
        client: F::to_ip(c.client()),
        cport: c.cport(),
        vip: F::to_ip(c.vip()),
        vport: c.vport(),
        rip: F::to_ip(c.rip()),
        rport: c.rport(),
        local: (fwd == FwdMode::FullNat).then(|| (F::to_ip(c.local()), c.lport())),
        fwmark: 0,
        timeout,
        seq: None,
    }
}

fn svc_id_of(s: &Service) -> u16 {
    s.id
}

fn send_solicit<B: PacketBuf>(
    neigh: &Neigh<B>,
    counters: &WorkerCounters,
    s: neigh::Solicit,
    sink: &mut impl Sink<B>,
) {
    let Some(mut b) = sink.alloc() else {
        counters.path_drop(PathDrop::NoBuffer);
        return;
    };
    let n = match b.append(neigh::packets::MAX_FRAME_LEN) {
        Some(buf) => neigh.build_solicit(&s, buf).ok(),
        None => None,
    };
    match n {
        Some(n) if b.trim(neigh::packets::MAX_FRAME_LEN - n) => sink.tx(s.port, b),
        _ => counters.path_drop(PathDrop::NoBuffer),
    }
}

/// The bytes IPVS counts for a packet: its IP length (headers and
/// payload, no Ethernet header, no Ethernet padding).
#[inline]
fn ip_len(meta: &PacketMeta) -> u64 {
    u64::from(meta.l4_offset.saturating_sub(meta.l3_offset)) + u64::from(meta.l4_len)
}

/// Whether a new SYN on connection `c`'s client tuple starts a new
/// connection rather than reusing `c` (Linux `is_new_conn_expected`):
/// TCP in TIME_WAIT or CLOSE with `mode` bit 1, or in FIN_WAIT with no
/// reply ever seen (DR/TUN) with bit 2.
#[inline]
fn reuse_expected<F: Family>(c: &crate::conn::Conn<F>, mode: u8) -> bool {
    use crate::conn::TcpState;
    if mode == 0 || !c.is_tcp() {
        return false;
    }
    match c.tcp_state() {
        TcpState::TimeWait | TcpState::Close => true,
        TcpState::FinWait => mode & 2 != 0 && c.no_output(),
        _ => false,
    }
}

/// A TCP connection that has ended (TIME_WAIT or CLOSE): its tuples may
/// be taken over by a new connection.
fn finished<F: Family>(c: &crate::conn::Conn<F>) -> bool {
    use crate::conn::TcpState;
    c.is_tcp() && matches!(c.tcp_state(), TcpState::TimeWait | TcpState::Close)
}

#[inline]
fn count_traffic(c: &WorkerCounters, svc: u16, rs: u32, out: bool, bytes: u64) {
    for t in [c.services.get(svc as usize), c.reals.get(rs as usize)]
        .into_iter()
        .flatten()
    {
        if out {
            t.outpkts.inc();
            t.outbytes.add(bytes);
        } else {
            t.inpkts.inc();
            t.inbytes.add(bytes);
        }
    }
}

/// The address of real server `rs` of service `svc` in the snapshot: for
/// TUN connections to a real server of the other family, whose record
/// holds the unspecified address. `None` once the real server has left
/// the service.
#[inline]
fn tun_target(snap: &Snapshot, svc: u16, rs: u32) -> Option<IpAddr> {
    real_of(snap, svc, rs).map(|r| r.addr)
}

fn real_of(snap: &Snapshot, svc: u16, rs: u32) -> Option<&crate::sched::RealServer> {
    let s = snap.service(svc)?;
    let i = s.sched.index_of(RealId(rs))?;
    s.sched
        .reals()
        .get(i)
        .or(s.sched.sorry().filter(|r| r.id.0 == rs))
}

#[inline]
fn activity(snap: &Snapshot, svc: u16, rs: u32, a: Activity) {
    if a == Activity::Unchanged {
        return;
    }
    if let Some(r) = real_of(snap, svc, rs) {
        match a {
            Activity::BecameActive => r.counters.conn_activated(),
            Activity::BecameInactive => r.counters.conn_deactivated(),
            Activity::Unchanged => {}
        }
    }
}

/// A TCP connection that expires in the handshake without the real
/// server ever having answered (no reply seen: always so for DR/TUN,
/// where the director sees none) is a passive SYN-timeout failure.
#[inline]
fn syn_timeout<F: Family>(c: &crate::conn::Conn<F>) -> Option<(u16, u32, PassiveWhy)> {
    (c.is_tcp() && matches!(c.tcp_state(), TcpState::SynRecv | TcpState::SynSent) && c.no_output())
        .then(|| (c.svc(), c.rs(), PassiveWhy::SynTimeout))
}

fn unbind(snap: &Snapshot, svc: u16, rs: u32, active: bool) {
    if let Some(r) = real_of(snap, svc, rs) {
        r.counters.conn_unbound(active, r.thresholds);
    }
}
