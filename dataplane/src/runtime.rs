//! The running dataplane: EAL, the packet pool, the ports (one RX and one
//! TX queue per worker), the handoff rings between every ordered pair of
//! workers, the pinned worker threads, and a relay thread that carries
//! events between them. The control thread drives it through
//! [`Runtime::publish`] and reads its counters; [`Runtime::shutdown`]
//! stops it in order: workers, then ports, then the pool, then EAL.

use crate::dpdk::{
    spawn_worker, Eal, EalArgs, LinkStatus, Mbuf, Mempool, Port, PortConfig, PortStats, Ring,
    WorkerHandle,
};
use crate::flow::{HashKey, Ownership};
use crate::idle::IdlePolicy;
use crate::neigh::NeighConfig;
use crate::pipeline::{ConnInfo, DumpRequest, Event, NeighEntry, Pipeline, PipelineConfig};
use crate::snapshot::{PortSnap, Snapshot};
use crate::stats::{Loss, RelayCounters, WorkerCounters};
use crate::wire::ethernet::MacAddr;
use crate::worker::{self, Channels, Command, LoopConfig, WorkerIo};

pub use crate::channel::{ConnInstaller, SyncEvents};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One port to open.
#[derive(Debug, Clone)]
pub struct PortSpec {
    /// Name (for listings and metrics).
    pub name: String,
    /// DPDK devargs or PCI address.
    pub device: String,
    /// IP MTU.
    pub mtu: u16,
    /// IPv4 address and prefix.
    pub v4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and prefix.
    pub v6: Option<(Ipv6Addr, u8)>,
    /// Name of a kernel TAP interface for this port's exception path
    /// (host traffic: ARP/ND, VRRP, SSH, BGP, ICMP to the port's
    /// addresses); None: such packets are dropped and counted.
    pub tap: Option<String>,
}

/// How to start.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// EAL arguments.
    pub eal: EalArgs,
    /// Ports, in index order.
    pub ports: Vec<PortSpec>,
    /// Worker count.
    pub workers: u16,
    /// Core of each worker (None: unpinned).
    pub worker_cores: Vec<Option<usize>>,
    /// IPv4 connections per worker.
    pub conns_v4: u32,
    /// IPv6 connections per worker.
    pub conns_v6: u32,
    /// Connections per worker and family that may carry a TCP sequence
    /// adjustment (0: a 128th of each table).
    pub seq_adj: u32,
    /// Mbufs in the pool.
    pub mbufs: u32,
    /// Service ids counted (highest id + 1).
    pub max_services: usize,
    /// Real-server ids counted (highest id + 1).
    pub max_reals: usize,
    /// What a worker does when its queues are empty.
    pub idle: IdlePolicy,
}

struct Worker {
    handle: Option<WorkerHandle<WorkerIo>>,
    ch: Channels,
}

/// The running dataplane.
pub struct Runtime {
    workers: Vec<Worker>,
    counters: Vec<Arc<WorkerCounters>>,
    current: Arc<Snapshot>,
    ports: Vec<Port>,
    taps: Vec<Port>,
    port_specs: Vec<PortSpec>,
    port_snaps: Vec<PortSnap>,
    relay: Option<std::thread::JoinHandle<()>>,
    stop_relay: Arc<AtomicBool>,
    sync_events: Arc<SyncEvents>,
    relay_counters: Arc<RelayCounters>,
    installer: ConnInstaller,
    pool: Arc<Mempool>,
    eal: Eal,
}

impl Runtime {
    /// Starts EAL, the ports and the workers. `build` makes the first
    /// snapshot once the ports' MACs are known.
    pub fn start(
        cfg: RuntimeConfig,
        build: impl FnOnce(&[PortSnap]) -> Result<Snapshot, String>,
    ) -> Result<Runtime, String> {
        let eal = Eal::init(&cfg.eal).map_err(|e| format!("EAL: {e}"))?;
        let pool = Self::pool(&eal, &cfg)?;
        let pcfg = Self::port_config(&cfg);
        let mut ports = Vec::new();
        for spec in &cfg.ports {
            ports.push(
                Port::open(&eal, &spec.device, &pcfg, &pool)
                    .map_err(|e| format!("port {}: {e}", spec.name))?,
            );
        }
        Self::start_on(&eal, pool, ports, cfg, build)
    }

    /// The packet pool `start` creates.
    pub fn pool(eal: &Eal, cfg: &RuntimeConfig) -> Result<Arc<Mempool>, String> {
        Mempool::new(eal, "rvs_pkt", cfg.mbufs.max(4095), 256, 2176)
            .map_err(|e| format!("mempool: {e}"))
    }

    /// The port configuration `start` uses: one RX and one TX queue per
    /// worker.
    pub fn port_config(cfg: &RuntimeConfig) -> PortConfig {
        let workers = cfg.workers.max(1);
        PortConfig {
            rx_queues: workers,
            tx_queues: workers,
            ..PortConfig::default()
        }
    }

    /// Starts on an initialised EAL and ports opened with
    /// [`Runtime::port_config`] (in `cfg.ports` order), their RX pool `pool`.
    pub fn start_on(
        eal: &Eal,
        pool: Arc<Mempool>,
        mut ports: Vec<Port>,
        cfg: RuntimeConfig,
        build: impl FnOnce(&[PortSnap]) -> Result<Snapshot, String>,
    ) -> Result<Runtime, String> {
        let eal = eal.clone();
        let workers = cfg.workers.max(1);
        let mut port_snaps = Vec::new();
        for (p, spec) in ports.iter().zip(&cfg.ports) {
            let mac = p.mac().map_err(|e| format!("port {}: {e}", spec.name))?;
            port_snaps.push(PortSnap {
                mac: MacAddr(mac),
                mtu: spec.mtu,
                v4: spec.v4,
                v6: spec.v6,
            });
        }
        // Exception-path TAPs: a kernel interface per port that asks for
        // one, with the port's MAC, one queue per worker.
        let mut taps: Vec<Option<Port>> = Vec::new();
        for (i, spec) in cfg.ports.iter().enumerate() {
            match (&spec.tap, port_snaps.get(i)) {
                (Some(name), Some(ps)) => {
                    let m = ps.mac.0;
                    let dev = format!(
                        "net_tap_rvs{i},iface={name},mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                        m[0], m[1], m[2], m[3], m[4], m[5]
                    );
                    let pc = PortConfig {
                        promiscuous: false,
                        ..Self::port_config(&cfg)
                    };
                    taps.push(Some(
                        Port::open(&eal, &dev, &pc, &pool)
                            .map_err(|e| format!("tap {name}: {e}"))?,
                    ));
                }
                _ => taps.push(None),
            }
        }
        let snap = Arc::new(build(&port_snaps)?);
        let flow_key = HashKey::random();
        let channels: Vec<Channels> = (0..workers).map(|_| Channels::new(1024)).collect();
        let counters: Vec<Arc<WorkerCounters>> = (0..workers)
            .map(|_| {
                Arc::new(WorkerCounters::new(
                    cfg.max_services,
                    cfg.max_reals,
                    ports.len(),
                    workers as usize,
                ))
            })
            .collect();
        // Handoff rings: rings[from][to].
        let mut producers: Vec<Vec<Option<crate::dpdk::Producer<Mbuf>>>> = Vec::new();
        let mut consumers: Vec<Vec<crate::dpdk::Consumer<Mbuf>>> =
            (0..workers).map(|_| Vec::new()).collect();
        for from in 0..workers {
            let mut row = Vec::new();
            for to in 0..workers {
                if from == to {
                    row.push(None);
                    continue;
                }
                let (p, c) = Ring::spsc::<Mbuf>(&eal, &format!("rvs_ho_{from}_{to}"), 2047)
                    .map_err(|e| format!("handoff ring: {e}"))?;
                row.push(Some(p));
                consumers[to as usize].push(c);
            }
            producers.push(row);
        }
        let mut started = Vec::new();
        for (w, (out, inn)) in producers.into_iter().zip(consumers).enumerate() {
            let mut pc = PipelineConfig::new(w as u16, workers, cfg.conns_v4, cfg.conns_v6);
            pc.seq_adj = cfg.seq_adj;
            pc.neigh = NeighConfig::default();
            // The worker's tables on its own NUMA node (hugepages when EAL
            // has them).
            let core = cfg.worker_cores.get(w).copied().flatten();
            let mem =
                crate::dpdk::TableMem::dpdk(&eal, core.and_then(crate::dpdk::numa_node_of_cpu));
            let pipe =
                Pipeline::<Mbuf>::new_in(&pc, snap.clone(), flow_key, counters[w].clone(), &mem)
                    .map_err(|e| format!("worker {w}: {e}"))?;
            let mut rx = Vec::new();
            let mut tx = Vec::new();
            for p in ports.iter_mut() {
                rx.push(p.take_rx_queue(w as u16).ok_or("RX queue taken")?);
                tx.push(p.take_tx_queue(w as u16).ok_or("TX queue taken")?);
            }
            let mut tap_tx = Vec::new();
            let mut tap_rx = Vec::new();
            for t in taps.iter_mut() {
                match t {
                    Some(t) => {
                        tap_tx.push(t.take_tx_queue(w as u16));
                        // Only worker 0 polls what the kernel sends.
                        tap_rx.push(if w == 0 { t.take_rx_queue(0) } else { None });
                    }
                    None => {
                        tap_tx.push(None);
                        tap_rx.push(None);
                    }
                }
            }
            let io = WorkerIo {
                rx,
                tx,
                handoff_in: inn,
                handoff_out: out,
                pool: pool.clone(),
                tap_tx,
                tap_rx,
            };
            let ch = channels[w].clone();
            let ctr = counters[w].clone();
            let lcfg = LoopConfig {
                idle: cfg.idle,
                ..LoopConfig::default()
            };
            let h = spawn_worker(&eal, &format!("rvs-w{w}"), core, move |_| {
                worker::run(pipe, io, ch, ctr, lcfg)
            })
            .map_err(|e| format!("worker {w}: {e}"))?;
            started.push(Worker {
                handle: Some(h),
                ch: channels[w].clone(),
            });
        }
        let stop_relay = Arc::new(AtomicBool::new(false));
        let sync_events = Arc::new(SyncEvents::new(65536));
        let installer = ConnInstaller::new(
            channels.iter().map(|c| c.commands.clone()).collect(),
            Ownership::new(flow_key, workers),
        );
        let relay_counters = Arc::new(RelayCounters::new(usize::from(workers)));
        let relay = {
            let stop = stop_relay.clone();
            let chans = channels.clone();
            let sync = sync_events.clone();
            let rc = relay_counters.clone();
            std::thread::Builder::new()
                .name("rvs-relay".into())
                .spawn(move || relay_loop(&chans, &sync, &rc, &stop))
                .map_err(|e| format!("relay thread: {e}"))?
        };
        Ok(Runtime {
            workers: started,
            counters,
            current: snap,
            ports,
            taps: taps.into_iter().flatten().collect(),
            port_specs: cfg.ports,
            port_snaps,
            relay: Some(relay),
            stop_relay,
            sync_events,
            relay_counters,
            installer,
            pool,
            eal,
        })
    }

    /// The ports as snapshots see them (MACs included).
    pub fn port_snaps(&self) -> &[PortSnap] {
        &self.port_snaps
    }

    /// The ports' specs.
    pub fn port_specs(&self) -> &[PortSpec] {
        &self.port_specs
    }

    /// The snapshot last published.
    pub fn current(&self) -> &Arc<Snapshot> {
        &self.current
    }

    /// Connections the workers report for sync (while a snapshot
    /// enables it).
    pub fn sync_events(&self) -> Arc<SyncEvents> {
        self.sync_events.clone()
    }

    /// What the relay thread lost because a worker's command ring was
    /// full, by destination worker.
    pub fn relay_counters(&self) -> &RelayCounters {
        &self.relay_counters
    }

    /// Tells every worker a neighbour (as if one had learned it), as
    /// `ip neigh replace` does for the kernel. `false` if a worker's
    /// command ring stayed full.
    pub fn learn(&self, ip: std::net::IpAddr, port: u16, mac: MacAddr) -> bool {
        self.workers
            .iter()
            .all(|w| push_cmd(&w.ch, Command::Learn { ip, port, mac }).is_ok())
    }

    /// A handle that installs synced connections on their workers.
    pub fn installer(&self) -> ConnInstaller {
        self.installer.clone()
    }

    /// Every worker's counters.
    pub fn counters(&self) -> &[Arc<WorkerCounters>] {
        &self.counters
    }

    /// Publishes a new snapshot to every worker. Workers swap it in
    /// between bursts; their old one comes back to the relay thread.
    pub fn publish(&mut self, snap: Snapshot) -> Result<(), String> {
        let snap = Arc::new(snap);
        for (i, w) in self.workers.iter().enumerate() {
            push_cmd(&w.ch, Command::Snapshot(snap.clone()))
                .map_err(|_| format!("worker {i} is not taking commands"))?;
        }
        self.current = snap;
        Ok(())
    }

    /// Collects up to `max` connections from every worker.
    pub fn connections(&self, max: usize) -> Vec<ConnInfo> {
        self.collect(max, Command::Dump)
    }

    /// Every worker's neighbour table (worker index, entry).
    pub fn neighbours(&self) -> Vec<NeighEntry> {
        let mut v = self.collect(65536, Command::DumpNeigh);
        v.sort_by_key(|(w, e)| (e.port, e.ip, *w));
        v
    }

    /// Asks every worker to fill a listing request and gathers the answers
    /// (waiting at most 2 s for slow workers).
    fn collect<T>(&self, max: usize, cmd: impl Fn(Arc<DumpRequest<T>>) -> Command) -> Vec<T> {
        let req = Arc::new(DumpRequest::new(max));
        let asked = self
            .workers
            .iter()
            .filter(|w| push_cmd(&w.ch, cmd(req.clone())).is_ok())
            .count();
        let deadline = Instant::now() + Duration::from_secs(2);
        while req.done.load(Ordering::Acquire) < asked && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::iter::from_fn(|| req.out.pop()).collect()
    }

    /// Port counters and link state, by port index.
    pub fn port_status(&self) -> Vec<(String, Option<PortStats>, Option<LinkStatus>)> {
        self.ports
            .iter()
            .zip(&self.port_specs)
            .map(|(p, s)| (s.name.clone(), p.stats().ok(), p.link().ok()))
            .collect()
    }

    /// Mbufs in use / pool size.
    pub fn pool_usage(&self) -> (u32, u32) {
        (self.pool.in_use(), self.pool.size())
    }

    /// The DPDK version.
    pub fn dpdk_version(&self) -> String {
        self.eal.version()
    }

    /// Stops the workers (they drain TX), then the ports, the pool and EAL.
    pub fn shutdown(mut self) {
        for w in &self.workers {
            let _ = push_cmd(&w.ch, Command::Stop);
        }
        for w in self.workers.iter_mut() {
            if let Some(h) = w.handle.take() {
                // The queues come back and are dropped here, before ports.
                let _ = h.join();
            }
        }
        self.stop_relay.store(true, Ordering::Relaxed);
        if let Some(r) = self.relay.take() {
            let _ = r.join();
        }
        for w in &self.workers {
            while w.ch.retired.pop().is_some() {}
            while w.ch.commands.pop().is_some() {}
        }
        self.taps.clear();
        self.ports.clear();
    }
}

fn push_cmd(ch: &Channels, mut cmd: Command) -> Result<(), Command> {
    for _ in 0..2000 {
        match ch.commands.push(cmd) {
            Ok(()) => return Ok(()),
            Err(c) => {
                cmd = c;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    Err(cmd)
}

/// Relays learned neighbours to every other worker, collects sync
/// events for control, and frees retired snapshots, so none of this
/// happens on a worker core.
fn relay_loop(chans: &[Channels], sync: &SyncEvents, lost: &RelayCounters, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        relay_once(chans, sync, lost);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// One pass of the relay: empties every worker's event and retired rings.
/// What cannot be passed on (sync queue or a worker's command ring full)
/// is counted: sync reports in [`SyncEvents::overflow`], relays in `lost`
/// under the worker that missed them.
pub fn relay_once(chans: &[Channels], sync: &SyncEvents, lost: &RelayCounters) {
    for (i, ch) in chans.iter().enumerate() {
        while ch.retired.pop().is_some() {}
        while let Some(ev) = ch.events.pop() {
            let what = match ev {
                Event::Sync(c) => {
                    if sync.queue.push(c).is_err() {
                        sync.overflow.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                Event::PassiveFail { svc, rs, why } => {
                    if sync.passive.push((svc, rs, why)).is_err() {
                        lost.lose(i, Loss::PassiveEvent);
                    }
                    continue;
                }
                Event::NeighLearned { .. } => Loss::NeighRelay,
                Event::Template { .. } => Loss::TemplateRelay,
            };
            for (j, other) in chans.iter().enumerate() {
                if i == j {
                    continue;
                }
                let cmd = match ev {
                    Event::NeighLearned { ip, port, mac } => Command::Relayed { ip, port, mac },
                    Event::Template { svc, client, rs } => Command::Template { svc, client, rs },
                    Event::Sync(_) | Event::PassiveFail { .. } => continue,
                };
                if other.commands.push(cmd).is_err() {
                    lost.lose(j, what);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::SyncConn;
    use std::net::IpAddr;

    fn template(i: u32) -> Event {
        Event::Template {
            svc: 1,
            client: IpAddr::V4(Ipv4Addr::new(198, 18, 0, (i % 250) as u8)),
            rs: i,
        }
    }

    fn sync_conn(i: u16) -> SyncConn {
        SyncConn {
            proto: 6,
            flags: 0,
            state: 1,
            client: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)),
            cport: i,
            vip: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
            vport: 80,
            rip: IpAddr::V4(Ipv4Addr::new(198, 19, 0, 11)),
            rport: 80,
            local: None,
            fwmark: 0,
            timeout: 900,
            seq: None,
        }
    }

    /// At a rate the rings take, every template reaches the other worker
    /// and every sync report the queue; past it, each loss is counted
    /// where it happened, so sent = delivered + counted, exactly.
    #[test]
    fn relay_delivers_what_fits_and_counts_every_loss() {
        let chans = [Channels::new(8), Channels::new(8)];
        let sync = SyncEvents::new(4);
        let lost = RelayCounters::new(2);
        let wc = WorkerCounters::new(1, 1, 1, 2);
        // Worker 0 reports 5 templates and 3 syncs: all fit.
        for i in 0..5 {
            worker::push_event(&chans[0].events, &wc, template(i));
        }
        for i in 0..3 {
            worker::push_event(&chans[0].events, &wc, Event::Sync(sync_conn(i)));
        }
        assert_eq!(wc.losses().iter().map(|l| l.1).sum::<u64>(), 0);
        relay_once(&chans, &sync, &lost);
        let mut got = Vec::new();
        while let Some(c) = chans[1].commands.pop() {
            if let Command::Template { rs, .. } = c {
                got.push(rs);
            }
        }
        assert_eq!(got, vec![0, 1, 2, 3, 4], "in order, none lost");
        assert!(chans[0].commands.pop().is_none(), "not sent back to 0");
        assert_eq!(sync.queue.len(), 3);
        assert_eq!(sync.overflow.load(Ordering::Relaxed), 0);
        assert_eq!(lost.get(1, Loss::TemplateRelay), 0);

        // A burst past every ring: the event ring (8) takes 8 of 12, the
        // command ring of worker 1 (8) takes 8 of those, the sync queue
        // (4, 3 used) takes 1 more.
        for i in 0..10 {
            worker::push_event(&chans[0].events, &wc, template(100 + i));
        }
        for i in 0..2 {
            worker::push_event(&chans[0].events, &wc, Event::Sync(sync_conn(10 + i)));
        }
        assert_eq!(wc.lost[Loss::TemplateEvent.index()].get(), 2);
        assert_eq!(wc.lost[Loss::SyncEvent.index()].get(), 2);
        relay_once(&chans, &sync, &lost);
        assert_eq!(chans[1].commands.len(), 8);
        assert_eq!(lost.get(1, Loss::TemplateRelay), 0);
        // Worker 1's ring is full now: two more templates are lost there.
        worker::push_event(&chans[0].events, &wc, template(200));
        worker::push_event(&chans[0].events, &wc, template(201));
        relay_once(&chans, &sync, &lost);
        assert_eq!(lost.get(1, Loss::TemplateRelay), 2);
        assert_eq!(lost.get(0, Loss::TemplateRelay), 0);
        // sync queue overflow is counted too
        for i in 0..3 {
            worker::push_event(&chans[1].events, &wc, Event::Sync(sync_conn(20 + i)));
        }
        relay_once(&chans, &sync, &lost);
        assert_eq!(sync.queue.len(), 4);
        assert_eq!(sync.overflow.load(Ordering::Relaxed), 2);
    }
}
