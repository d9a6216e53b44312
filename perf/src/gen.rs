//! The traffic generator and sink: one loop on one core that plays the
//! clients on the far end of the director's client-side `net_ring` port and
//! the real servers on the far end of its server-side port.
//!
//! Clients: packets are built from per-(kind, size) templates patched with
//! the flow's client address and port and the send TSC, in bursts of 32,
//! into recycled mbufs (what the sink received) or fresh ones. A burst the
//! director's RX ring refuses in part stays and is retried first (the
//! refusals are counted: the director is saturated). Real servers: every
//! frame is counted (and its latency recorded when asked) and recycled;
//! ARP requests and ND solicitations are answered.

use crate::hist::Hist;
use crate::pkt::{flow_endpoint, neigh_answer, stamp_of, Template};
use dataplane::dpdk::{tsc, tsc_hz, Burst, Mbuf, Mempool, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// What the generator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Nothing (the sink still drains).
    Idle = 0,
    /// One SYN per established flow, once.
    SynOnce = 1,
    /// One ACK per established flow, once.
    AckOnce = 2,
    /// ACK/data packets on the established flows.
    Data = 3,
    /// SYNs of fresh flows.
    NewConn = 4,
    /// Data on established flows with a share of SYNs of fresh flows.
    Mix = 5,
    /// Leave the loop.
    Stop = 9,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::SynOnce,
            2 => Phase::AckOnce,
            3 => Phase::Data,
            4 => Phase::NewConn,
            5 => Phase::Mix,
            9 => Phase::Stop,
            _ => Phase::Idle,
        }
    }
}

/// Shared between the generator core and the driver.
#[derive(Debug, Default)]
pub struct Shared {
    phase: AtomicU8,
    epoch: AtomicU64,
    /// Packets per second to send (0: as fast as the director takes them).
    rate: AtomicU64,
    /// The epoch of the once-phase that has sent everything.
    pub done_epoch: AtomicU64,
    /// Record latency at the sink.
    pub record: AtomicBool,
    /// Packets the director's RX ring took.
    pub sent: AtomicU64,
    /// Packets it refused (retried later): the director is saturated.
    pub refused: AtomicU64,
    /// Frames the sink received (neighbour requests excluded).
    pub sink_rx: AtomicU64,
    /// Neighbour requests answered.
    pub neigh: AtomicU64,
    /// Allocation failures (pool empty).
    pub no_mbuf: AtomicU64,
    /// The latency histogram (TSC cycles), filled when recording stops.
    pub hist: Mutex<Option<Hist>>,
}

impl Shared {
    /// Switches phase (and rate); the generator drops what it had built.
    /// Returns the phase's epoch (see [`Shared::once_done`]).
    pub fn set_phase(&self, p: Phase, rate: u64) -> u64 {
        self.rate.store(rate, Ordering::Relaxed);
        self.phase.store(p as u8, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Release) + 1
    }

    /// Whether the once-phase of `epoch` has sent everything.
    pub fn once_done(&self, epoch: u64) -> bool {
        self.done_epoch.load(Ordering::Acquire) == epoch
    }
}

/// The far ends of the director's two ports.
pub struct PeerIo {
    /// Clients → director.
    pub client_tx: TxQueue,
    /// Director → clients.
    pub client_rx: RxQueue,
    /// Real servers → director.
    pub server_tx: TxQueue,
    /// Director → real servers.
    pub server_rx: RxQueue,
}

/// How flows are picked in the data phases.
#[derive(Debug, Clone)]
pub enum Chooser {
    /// Uniform over 0..n.
    Uniform(u32),
    /// Precomputed samples (Zipf), picked uniformly.
    Table(Vec<u32>),
}

impl Chooser {
    /// Zipf(s) over 0..n by inverse transform of the continuous
    /// approximation, `samples` draws (a power of two).
    pub fn zipf(n: u32, s: f64, samples: usize, seed: u64) -> Chooser {
        let n_f = f64::from(n.max(1));
        let mut rng = seed | 1;
        let samples = samples.next_power_of_two();
        let mut v = Vec::with_capacity(samples);
        let one_minus = 1.0 - s;
        for _ in 0..samples {
            let u = (xorshift(&mut rng) >> 11) as f64 / (1u64 << 53) as f64;
            let x = if one_minus.abs() < 1e-9 {
                n_f.powf(u)
            } else {
                ((n_f.powf(one_minus) - 1.0) * u + 1.0).powf(1.0 / one_minus)
            };
            let rank = (x.floor() as u64).clamp(1, u64::from(n.max(1)));
            v.push((rank - 1) as u32);
        }
        Chooser::Table(v)
    }

    #[inline(always)]
    fn pick(&self, rng: &mut u64) -> u32 {
        let r = xorshift(rng);
        match self {
            Chooser::Uniform(n) => ((u128::from(r) * u128::from(*n)) >> 64) as u32,
            Chooser::Table(t) => t[(r as usize) & (t.len() - 1)],
        }
    }
}

#[inline(always)]
fn xorshift(s: &mut u64) -> u64 {
    let mut x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// The generator's templates and flow space.
pub struct GenConfig {
    /// SYN template.
    pub syn: Template,
    /// ACK template (set-up).
    pub ack: Template,
    /// Data templates, by size class.
    pub data: Vec<Template>,
    /// Size classes in sending order (indices into `data`), cycled.
    pub sizes: Vec<u8>,
    /// Established flows.
    pub flows: u32,
    /// Flow popularity in the data phases.
    pub chooser: Chooser,
    /// First index of fresh flows (NewConn, Mix).
    pub new_base: u32,
    /// Percent of SYNs in the mix phase.
    pub mix_new_pct: u8,
}

const BURST: usize = 32;

/// Runs the generator/sink loop until [`Phase::Stop`]; gives the queues
/// back.
pub fn run(mut io: PeerIo, pool: Arc<Mempool>, cfg: GenConfig, sh: Arc<Shared>) -> PeerIo {
    let hz = tsc_hz().max(1);
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut gb = Burst::new();
    let mut rb = Burst::new();
    let mut recycle = Burst::new();
    let mut replies = Burst::new();
    let mut hist = Hist::new();
    let mut recording = false;
    let mut epoch = 0u64;
    let mut phase = Phase::Idle;
    let mut rate = 0u64;
    let mut cursor: u32 = 0;
    let mut next_new = cfg.new_base;
    let mut size_i = 0usize;
    let mut phase_t0 = tsc();
    let mut phase_sent: u64 = 0;
    let (mut sent, mut refused, mut sink_rx, mut neigh, mut no_mbuf) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut iter: u64 = 0;
    loop {
        iter = iter.wrapping_add(1);
        // Sink: the real servers.
        if io.server_rx.rx_burst(&mut rb) > 0 {
            let now = tsc();
            for m in rb.drain() {
                let d = m.data();
                if is_neigh(d) {
                    answer(&pool, d, &mut replies, &mut neigh);
                    continue;
                }
                sink_rx += 1;
                if recording {
                    if let Some(s) = stamp_of(d) {
                        hist.record(now.wrapping_sub(s));
                    }
                }
                if m.headroom() >= 128 && !recycle.is_full() {
                    let _ = recycle.push(m);
                }
            }
            if !replies.is_empty() {
                io.server_tx.send(&mut replies);
            }
            sh.sink_rx.store(sink_rx, Ordering::Relaxed);
            sh.neigh.store(neigh, Ordering::Relaxed);
        }
        // The client side only hears ARP for the gateway (replies are not
        // generated); answer it and drop the rest.
        if iter & 15 == 0 && io.client_rx.rx_burst(&mut rb) > 0 {
            for m in rb.drain() {
                if is_neigh(m.data()) {
                    answer(&pool, m.data(), &mut replies, &mut neigh);
                }
            }
            if !replies.is_empty() {
                io.client_tx.send(&mut replies);
            }
        }
        // Control.
        let e = sh.epoch.load(Ordering::Acquire);
        if e != epoch {
            epoch = e;
            phase = Phase::from_u8(sh.phase.load(Ordering::Relaxed));
            rate = sh.rate.load(Ordering::Relaxed);
            gb.clear();
            cursor = 0;
            phase_t0 = tsc();
            phase_sent = 0;
            if phase == Phase::Stop {
                break;
            }
        }
        let rec = sh.record.load(Ordering::Relaxed);
        if rec != recording {
            if rec {
                hist.reset();
            } else if let Ok(mut h) = sh.hist.lock() {
                *h = Some(hist.clone());
            }
            recording = rec;
        }
        if phase == Phase::Idle {
            continue;
        }
        // Generator: build a burst when the last one is gone.
        if gb.is_empty() {
            let mut want = BURST;
            if rate > 0 {
                let allowed = (u128::from(tsc().wrapping_sub(phase_t0)) * u128::from(rate)
                    / u128::from(hz)) as u64;
                want = (allowed.saturating_sub(phase_sent) as usize).min(BURST);
            }
            if matches!(phase, Phase::SynOnce | Phase::AckOnce) {
                let left = cfg.flows.saturating_sub(cursor) as usize;
                want = want.min(left);
                if left == 0 {
                    sh.done_epoch.store(epoch, Ordering::Release);
                }
            }
            if want == 0 {
                continue;
            }
            while gb.len() < want {
                match recycle.pop() {
                    Some(m) => {
                        let _ = gb.push(m);
                    }
                    None => break,
                }
            }
            let have = gb.len();
            if have < want && !pool.alloc_bulk(&mut gb, want - have) {
                no_mbuf += 1;
                sh.no_mbuf.store(no_mbuf, Ordering::Relaxed);
                if gb.is_empty() {
                    continue;
                }
            }
            let stamp = tsc();
            for m in gb.as_mut_slice() {
                let (t, flow) = match phase {
                    Phase::SynOnce => {
                        cursor += 1;
                        (&cfg.syn, cursor - 1)
                    }
                    Phase::AckOnce => {
                        cursor += 1;
                        (&cfg.ack, cursor - 1)
                    }
                    Phase::NewConn => {
                        next_new = next_new.wrapping_add(1);
                        (&cfg.syn, next_new - 1)
                    }
                    Phase::Mix if (xorshift(&mut rng) % 100) < u64::from(cfg.mix_new_pct) => {
                        next_new = next_new.wrapping_add(1);
                        (&cfg.syn, next_new - 1)
                    }
                    _ => {
                        size_i += 1;
                        if size_i >= cfg.sizes.len() {
                            size_i = 0;
                        }
                        let t = &cfg.data[cfg.sizes[size_i] as usize];
                        (t, cfg.chooser.pick(&mut rng))
                    }
                };
                fill(m, t, flow, stamp);
            }
        }
        let n = io.client_tx.tx_burst(&mut gb);
        sent += n as u64;
        phase_sent += n as u64;
        if !gb.is_empty() {
            refused += gb.len() as u64;
            sh.refused.store(refused, Ordering::Relaxed);
        }
        sh.sent.store(sent, Ordering::Relaxed);
    }
    drop(gb);
    drop(recycle);
    io
}

#[inline(always)]
fn fill(m: &mut Mbuf, t: &Template, flow: u32, stamp: u64) {
    let (a, p) = flow_endpoint(flow);
    if m.set_bytes(&t.bytes) {
        t.patch(m.data_mut(), a, p, stamp);
    }
}

#[inline(always)]
fn is_neigh(d: &[u8]) -> bool {
    d.len() >= 14
        && (d[12..14] == [0x08, 0x06]
            || (d[12..14] == [0x86, 0xdd] && d.len() > 54 && d[20] == 58 && d[54] == 135))
}

fn answer(pool: &Mempool, d: &[u8], out: &mut Burst, count: &mut u64) {
    if let Some(r) = neigh_answer(d) {
        if let Some(mut m) = pool.alloc() {
            if m.set_bytes(&r) && out.push(m).is_ok() {
                *count += 1;
            }
        }
    }
}

/// TSC cycles to nanoseconds.
pub fn cycles_to_ns(c: u64) -> f64 {
    c as f64 * 1e9 / tsc_hz().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_and_in_range() {
        let Chooser::Table(t) = Chooser::zipf(1000, 0.99, 1 << 16, 7) else {
            panic!("table")
        };
        assert!(t.iter().all(|&i| i < 1000));
        let head = t.iter().filter(|&&i| i < 10).count() as f64 / t.len() as f64;
        assert!(head > 0.25, "top 1% of flows get {head}");
        let mut rng = 1;
        let u = Chooser::Uniform(1000);
        let head = (0..100_000).filter(|_| u.pick(&mut rng) < 10).count();
        assert!(head < 2000, "uniform head {head}");
    }
}
