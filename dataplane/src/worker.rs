//! The polling loop of one worker core on DPDK: RX bursts from queue q of
//! every port, the [`Pipeline`]'s staged burst path per burst, per-port TX bursts flushed at
//! the end of every iteration (or when full), handoff rings to and from
//! the other workers, and between bursts: commands from control (new
//! snapshots, learned neighbours, stop) and housekeeping. Between loops the
//! idle policy ([`crate::idle`]) may pause or sleep when nothing came in.

use crate::dpdk::{
    set_timer_slack_ns, tsc, tsc_hz, Burst, Consumer, Mbuf, Mempool, Producer, RxQueue, TxQueue,
};
use crate::idle::{bounded_sleep, Backoff, Idle, IdleMode, IdlePolicy};
use crate::pipeline::{Event, Pipeline, Sink};
use crate::stats::{Loss, PathDrop, WorkerCounters};
use crossbeam::queue::ArrayQueue;
use std::sync::Arc;

pub use crate::channel::{Channels, Command};

/// The queues a worker owns: queue q of every port, and its ends of the
/// handoff rings.
pub struct WorkerIo {
    /// RX queue of each port, by port index.
    pub rx: Vec<RxQueue>,
    /// TX queue of each port, by port index.
    pub tx: Vec<TxQueue>,
    /// Handoff rings from every other worker.
    pub handoff_in: Vec<Consumer<Mbuf>>,
    /// Handoff rings to each worker (None for itself).
    pub handoff_out: Vec<Option<Producer<Mbuf>>>,
    /// Pool for generated packets.
    pub pool: Arc<Mempool>,
    /// TX queue of each port's kernel TAP (exception path), if any.
    pub tap_tx: Vec<Option<TxQueue>>,
    /// RX queue of each port's kernel TAP: what the kernel sends goes out
    /// of the port (polled by one worker only).
    pub tap_rx: Vec<Option<RxQueue>>,
}

struct MbufSink<'a> {
    txb: &'a mut [Burst],
    tx: &'a mut [TxQueue],
    tapb: &'a mut [Burst],
    taptx: &'a mut [Option<TxQueue>],
    handoff: &'a mut [Option<Producer<Mbuf>>],
    pool: &'a Mempool,
    events: &'a ArrayQueue<Event>,
    counters: &'a WorkerCounters,
}

impl MbufSink<'_> {
    #[inline]
    fn flush_port(&mut self, port: usize) {
        if let (Some(b), Some(q)) = (self.txb.get_mut(port), self.tx.get_mut(port)) {
            if !b.is_empty() {
                let before = q.stats().dropped;
                q.send(b);
                if let Some(c) = self.counters.ports.get(port) {
                    c.tx_dropped.add(q.stats().dropped - before);
                }
            }
        }
    }

    fn flush(&mut self) {
        for p in 0..self.txb.len() {
            self.flush_port(p);
        }
        for (b, q) in self.tapb.iter_mut().zip(self.taptx.iter_mut()) {
            if let Some(q) = q {
                if !b.is_empty() {
                    q.send(b);
                }
            }
        }
    }
}

impl Sink<Mbuf> for MbufSink<'_> {
    #[inline]
    fn tx(&mut self, port: u16, pkt: Mbuf) {
        let p = port as usize;
        if let Some(c) = self.counters.ports.get(p) {
            c.tx_packets.inc();
            c.tx_bytes.add(pkt.len() as u64);
        }
        let full = match self.txb.get_mut(p) {
            Some(b) => {
                if let Err(m) = b.push(pkt) {
                    drop(m);
                }
                b.is_full()
            }
            None => false,
        };
        if full {
            self.flush_port(p);
        }
    }

    #[inline]
    fn handoff(&mut self, worker: u16, pkt: Mbuf) -> Result<(), Mbuf> {
        match self.handoff.get_mut(worker as usize) {
            Some(Some(p)) => p.enqueue(pkt),
            _ => Err(pkt),
        }
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }

    fn event(&mut self, ev: Event) {
        push_event(self.events, self.counters, ev);
    }

    fn to_kernel(&mut self, port: u16, pkt: Mbuf) -> Result<(), Mbuf> {
        let p = port as usize;
        match (self.tapb.get_mut(p), self.taptx.get_mut(p)) {
            (Some(b), Some(Some(q))) => {
                b.push(pkt)?;
                if b.is_full() {
                    q.send(b);
                }
                Ok(())
            }
            _ => Err(pkt),
        }
    }
}

/// Puts `ev` on the ring to control; when the ring is full the event is
/// lost and counted by kind.
#[inline]
pub fn push_event(events: &ArrayQueue<Event>, counters: &WorkerCounters, ev: Event) {
    if let Err(ev) = events.push(ev) {
        counters.lose(match ev {
            Event::NeighLearned { .. } => Loss::NeighEvent,
            Event::Template { .. } => Loss::TemplateEvent,
            Event::Sync(_) => Loss::SyncEvent,
            Event::PassiveFail { .. } => Loss::PassiveEvent,
        });
    }
}

/// Loop settings.
#[derive(Debug, Clone, Copy)]
pub struct LoopConfig {
    /// Housekeeping period in nanoseconds.
    pub housekeeping_ns: u64,
    /// Connections expired at most per housekeeping round.
    pub expire_budget: usize,
    /// What to do when the queues are empty.
    pub idle: IdlePolicy,
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            housekeeping_ns: 10_000_000,
            expire_budget: 4096,
            idle: IdlePolicy::default(),
        }
    }
}

/// Runs the polling loop until [`Command::Stop`]; returns the queues so the
/// caller can drop them in order (workers before ports).
pub fn run(
    mut pipe: Pipeline<Mbuf>,
    mut io: WorkerIo,
    ch: Channels,
    counters: Arc<WorkerCounters>,
    cfg: LoopConfig,
) -> WorkerIo {
    let hz = tsc_hz().max(1);
    let t0 = tsc();
    let ns = |t: u64| ((u128::from(t.wrapping_sub(t0)) * 1_000_000_000) / u128::from(hz)) as u64;
    let nports = io.rx.len();
    let mut txb: Vec<Burst> = (0..io.tx.len()).map(|_| Burst::new()).collect();
    let mut tapb: Vec<Burst> = (0..io.tap_tx.len()).map(|_| Burst::new()).collect();
    let mut rxb = Burst::new();
    let mut next_house = 0u64;
    let mut loops: u64 = 0;
    let mut busy_loops: u64 = 0;
    let mut backoff = Backoff::new(cfg.idle);
    if cfg.idle.mode == IdleMode::Adaptive {
        // without this a 1 µs back-off sleep lasts the default 50 µs slack
        set_timer_slack_ns(1_000);
    }
    loop {
        let now = ns(tsc());
        let mut work = false;
        {
            let mut sink = MbufSink {
                txb: &mut txb,
                tx: &mut io.tx,
                tapb: &mut tapb,
                taptx: &mut io.tap_tx,
                handoff: &mut io.handoff_out,
                pool: &io.pool,
                events: &ch.events,
                counters: &counters,
            };
            for p in 0..nports {
                let Some(q) = io.rx.get_mut(p) else { continue };
                if q.rx_burst(&mut rxb) == 0 {
                    continue;
                }
                work = true;
                if let Some(c) = counters.ports.get(p) {
                    c.rx_packets.add(rxb.len() as u64);
                    c.rx_bytes
                        .add(rxb.as_slice().iter().map(|m| m.len() as u64).sum());
                }
                let single = rxb.drain().filter(|m| {
                    let one = m.segments() <= 1;
                    if !one {
                        counters.path_drop(PathDrop::MultiSegment);
                    }
                    one
                });
                pipe.process_burst(single.map(|m| (m, p as u16)), now, false, &mut sink);
            }
            for (p, q) in io.tap_rx.iter_mut().enumerate() {
                let Some(q) = q else { continue };
                if q.rx_burst(&mut rxb) == 0 {
                    continue;
                }
                work = true;
                counters.from_kernel.add(rxb.len() as u64);
                for m in rxb.drain() {
                    sink.tx(p as u16, m);
                }
            }
            for c in io.handoff_in.iter_mut() {
                if c.dequeue_burst(&mut rxb) == 0 {
                    continue;
                }
                work = true;
                let handed = rxb.drain().map(|m| {
                    let port = m.port();
                    (m, port)
                });
                pipe.process_burst(handed, now, true, &mut sink);
            }
            sink.flush();

            loops += 1;
            // Commands every iteration: relayed neighbours, templates and
            // synced connections must not wait for housekeeping, or they
            // pile up in the ring at high connection rates.
            let mut stop = false;
            while let Some(cmd) = ch.commands.pop() {
                work = true;
                match cmd {
                    Command::Snapshot(s) => {
                        // The old snapshot goes back to control, which
                        // frees it; only if control stopped draining is
                        // it dropped here (and counted).
                        if ch.retired.push(pipe.install(s)).is_err() {
                            counters.lose(Loss::RetiredSnapshot);
                        }
                    }
                    Command::Learn { ip, port, mac } => pipe.learn(ip, port, mac, now, &mut sink),
                    Command::Relayed { ip, port, mac } => {
                        pipe.learn_relayed(ip, port, mac, now, &mut sink)
                    }
                    Command::Dump(req) => pipe.dump(&req),
                    Command::DumpNeigh(req) => pipe.dump_neigh(&req),
                    Command::InstallConn { conn, count } => {
                        // a refused install (table full) is not retried:
                        // the next sync of it will be; it is counted
                        if pipe.install_conn(&conn, now, count).is_err() {
                            counters.lose(Loss::SyncInstall);
                        }
                    }
                    Command::Template { svc, client, rs } => {
                        pipe.adopt_template(svc, client, rs, now)
                    }
                    Command::Stop => stop = true,
                }
            }
            if stop {
                sink.flush();
                break;
            }
            if work {
                busy_loops += 1;
            }
            if now >= next_house {
                next_house = now + cfg.housekeeping_ns;
                counters.loops.set(loops);
                counters.busy_loops.set(busy_loops);
                pipe.housekeeping(now, cfg.expire_budget, &mut sink);
                sink.flush();
            }
        }
        match backoff.next(work) {
            Idle::Poll => {}
            Idle::Pause => std::hint::spin_loop(),
            Idle::Sleep(want) => {
                // never past the next housekeeping round (timers, sync)
                let t = tsc();
                let d = bounded_sleep(want, ns(t), next_house);
                if d > 0 {
                    std::thread::sleep(std::time::Duration::from_nanos(d));
                    counters.idle_sleeps.inc();
                    counters.idle_sleep_ns.add(ns(tsc()).saturating_sub(ns(t)));
                }
            }
        }
    }
    io
}
