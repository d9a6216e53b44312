//! `rvs-perf flows`: the real worker loop ([`Runtime`], one worker pinned
//! to its core) between two `net_ring` port pairs, driven by the generator
//! of [`crate::gen`] on another core.
//!
//! Per point: a fresh runtime with a connection table sized for the point,
//! then for established flows a set-up phase (one SYN per flow until the
//! table holds them all or stops growing, then one ACK per flow so they
//! are ESTABLISHED), then the measurement at full speed (packets per second
//! from the director's RX counter of the client port), then latency at half
//! that rate.

use crate::gen::{self, Chooser, GenConfig, PeerIo, Phase, Shared};
use crate::hist::Hist;
use crate::pkt::{Fam, Template, TCP_ACK, TCP_PSH, TCP_SYN};
use crate::topo;
use dataplane::conn::FwdMode;
use dataplane::dpdk::{spawn_worker, tsc_hz, Burst, Eal, EalArgs, Mempool, Port};
use dataplane::runtime::{PortSpec, Runtime, RuntimeConfig};
use dataplane::stats::WorkerCounters;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frame sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// 64-byte frames (the smallest that holds the headers and the
    /// timestamp for IPv6: 82).
    B64,
    /// 7:4:1 of 64, 576 and 1500 bytes.
    Imix,
}

/// Flow popularity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pop {
    /// Every flow equally likely.
    Uniform,
    /// Zipf with this exponent.
    Zipf(f64),
}

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Packets of established connections.
    Established,
    /// SYNs of fresh connections.
    NewConn,
    /// Established traffic with this percentage of SYNs of fresh flows.
    Mix(u8),
}

/// One benchmark point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Address family.
    pub fam: Fam,
    /// Forwarding mode.
    pub mode: FwdMode,
    /// Frame sizes.
    pub size: Size,
    /// Flow popularity.
    pub pop: Pop,
    /// Established connections.
    pub flows: u32,
    /// Profile.
    pub kind: Kind,
}

impl Point {
    /// Short label.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            Kind::Established => format!("est {}", flows_label(self.flows)),
            Kind::NewConn => "new conns".to_string(),
            Kind::Mix(p) => format!("mix {} +{p}% new", flows_label(self.flows)),
        };
        let size = match self.size {
            Size::B64 => "64B",
            Size::Imix => "IMIX",
        };
        let pop = match self.pop {
            Pop::Uniform => "uniform".to_string(),
            Pop::Zipf(s) => format!("zipf{s}"),
        };
        format!(
            "{kind} {} {} {size} {pop}",
            topo::mode_name(self.mode),
            self.fam.name()
        )
    }
}

/// 1000 → "1K", 1000000 → "1M".
pub fn flows_label(n: u32) -> String {
    if n >= 1_000_000 && (n / 1_000_000) * 1_000_000 == n {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && (n / 1000) * 1000 == n {
        format!("{}K", n / 1000)
    } else {
        n.to_string()
    }
}

/// Run settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Measured seconds per point.
    pub seconds: f64,
    /// Warm-up seconds before measuring.
    pub warmup: f64,
    /// Seconds of latency measurement at half the point's peak (0: none).
    pub latency_secs: f64,
    /// Table capacity over the established flows (fraction).
    pub headroom: f64,
    /// Connection capacity for fresh connections (new-conn and mix).
    pub new_capacity: u32,
    /// The worker's core.
    pub worker_core: usize,
    /// The generator's core.
    pub gen_core: usize,
    /// Give up the set-up phase after this long.
    pub setup_timeout: Duration,
}

/// Latency figures in nanoseconds.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Offered rate (packets per second).
    pub rate_pps: f64,
    /// Samples.
    pub samples: u64,
    /// Median.
    pub p50_ns: f64,
    /// 99th percentile.
    pub p99_ns: f64,
    /// 99.9th percentile.
    pub p999_ns: f64,
    /// Largest.
    pub max_ns: f64,
}

/// One point's figures.
#[derive(Debug, Clone)]
pub struct PointResult {
    /// The point.
    pub point: Point,
    /// Packets per second the worker received (client port RX).
    pub pps: f64,
    /// Packets per second it sent to the real servers.
    pub out_pps: f64,
    /// Packets per on-CPU second of the worker thread (what one core that
    /// is not shared would do, if the worker was kept busy).
    pub pps_cpu: f64,
    /// On-CPU seconds of the worker thread per wall-clock second.
    pub cpu_share: f64,
    /// The same for the generator thread.
    pub gen_cpu_share: f64,
    /// TSC cycles per packet: the worker's on-CPU time × tsc_hz / packets.
    pub cycles_per_pkt: f64,
    /// The same less the empty polls: on-CPU cycles minus
    /// (polls − packets) × the idle poll's cost, per packet. Polls that
    /// found packets number at most the packets, so this never removes
    /// work: an upper bound on the worker's cost per packet.
    pub busy_cycles_per_pkt: f64,
    /// tsc_hz / busy cycles per packet: what the worker could forward with
    /// its core to itself and always a packet waiting.
    pub capacity_pps: f64,
    /// Whether the worker was kept busy: the director's RX ring refused
    /// the generator and the worker's polls returned at least half a burst
    /// on average (so cycles/packet is its cost, not idle polling).
    pub saturated: bool,
    /// Packets per polling-loop iteration of the worker (up to
    /// `dataplane::dpdk::MAX_BURST` per port).
    pub pkts_per_loop: f64,
    /// On-CPU TSC cycles per empty polling iteration, measured while the
    /// worker was idle before set-up.
    pub idle_loop_cycles: f64,
    /// Refused sends per packet taken.
    pub refused_per_pkt: f64,
    /// Drops (parser and path) during the measurement.
    pub drops: u64,
    /// Fresh connections per second (new-conn and mix).
    pub new_conns_per_s: Option<f64>,
    /// New flows forwarded statelessly because the table was full.
    pub stateless_fallbacks: u64,
    /// Connections in the table at the end of set-up.
    pub conn_entries: u64,
    /// Table capacity (both families).
    pub conn_capacity: u64,
    /// Sampled connections in ESTABLISHED / sampled.
    pub established_sample: (usize, usize),
    /// Process RSS growth from before the runtime started to after set-up.
    pub rss_delta: u64,
    /// Set-up seconds.
    pub setup_secs: f64,
    /// Latency at half the peak rate.
    pub latency: Option<Latency>,
    /// Why no ratio may be drawn from this point (see [`plausibility`]),
    /// `None` when the measurement is sane.
    pub implausible: Option<String>,
}

/// Whether a measured window can carry a cycles/packet figure: `None` if
/// so, else why not. `packets` and `loops` are the worker's received
/// packets and polling iterations in the window, `cpu_share` its on-CPU
/// share of the window, `idle_loop_cycles` the cost of an empty poll
/// measured before set-up, `busy` the busy cycles per packet derived from
/// them. The worker publishes its loop counter only every 10 ms, so a
/// window with few loops (or a worker the scheduler starved) gives numbers
/// that are mostly rounding; an empty poll that costs under 5 or over
/// 20 000 cycles means the idle measurement itself was disturbed.
pub fn plausibility(
    packets: u64,
    loops: u64,
    cpu_share: f64,
    idle_loop_cycles: f64,
    busy: f64,
) -> Option<String> {
    if packets == 0 {
        return Some("no packets in the window".into());
    }
    if loops < 1_000 {
        return Some(format!("only {loops} polling loops in the window"));
    }
    if cpu_share < 0.10 {
        return Some(format!(
            "worker starved: on CPU {:.0} % of the window",
            cpu_share * 100.0
        ));
    }
    if !(5.0..=20_000.0).contains(&idle_loop_cycles) {
        return Some(format!(
            "empty-poll cost {idle_loop_cycles:.0} cycles is not sane"
        ));
    }
    if busy < 10.0 {
        return Some(format!("{busy:.1} busy cycles/packet is not plausible"));
    }
    None
}

/// The process's resident set size in bytes.
pub fn vm_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// EAL for the flow benchmarks.
pub fn eal(mem_mb: u32) -> Result<Eal, String> {
    Eal::init(&EalArgs::test("perf-flows", mem_mb)).map_err(|e| format!("EAL: {e}"))
}

#[derive(Debug, Clone, Copy, Default)]
struct Snap {
    t: Option<Instant>,
    rx: u64,
    tx: u64,
    drops: u64,
    conns: u64,
    fallbacks: u64,
    sent: u64,
    refused: u64,
    worker_cpu: u64,
    gen_cpu: u64,
    loops: u64,
}

fn snap(c: &WorkerCounters, sh: &Shared, sid: usize) -> Snap {
    Snap {
        t: Some(Instant::now()),
        rx: c.ports.first().map_or(0, |p| p.rx_packets.get()),
        tx: c.ports.get(1).map_or(0, |p| p.tx_packets.get()),
        drops: c.drops().iter().map(|d| d.1).sum(),
        conns: c.services.get(sid).map_or(0, |s| s.conns.get()),
        fallbacks: c.stateless_fallbacks.get(),
        sent: sh.sent.load(Ordering::Relaxed),
        refused: sh.refused.load(Ordering::Relaxed),
        worker_cpu: crate::stats::thread_cpu_ns(None, "rvs-w0").unwrap_or(0),
        gen_cpu: crate::stats::thread_cpu_ns(None, "rvs-gen").unwrap_or(0),
        loops: c.loops.get(),
    }
}

fn secs(d: f64) -> Duration {
    Duration::from_secs_f64(d.max(0.0))
}

/// Runs one point on a fresh runtime. `tag` makes the DPDK object names
/// unique within the process.
pub fn run_point(eal: &Eal, tag: usize, p: &Point, st: &Settings) -> Result<PointResult, String> {
    let sid = topo::service_id(p.fam);
    let est = match p.kind {
        Kind::NewConn => 0,
        _ => p.flows,
    };
    // Fresh connections need their own room; new-conn also warms the
    // neighbours up with a thousand connections first.
    let warm = if p.kind == Kind::NewConn { 1000 } else { est };
    let fresh = match p.kind {
        Kind::Established => 0,
        _ => st.new_capacity,
    };
    let cap = (f64::from(warm) * (1.0 + st.headroom)) as u64 + 1024 + u64::from(fresh);
    let cap = cap.min(u64::from(dataplane::conn::MAX_CAPACITY)) as u32;
    let (c4, c6) = match p.fam {
        Fam::V4 => (cap, 64),
        Fam::V6 => (64, cap),
    };
    let cfg = RuntimeConfig {
        eal: EalArgs::new(["unused"]),
        ports: ["client", "server"]
            .iter()
            .map(|n| PortSpec {
                name: (*n).into(),
                device: String::new(),
                mtu: 1500,
                v4: None,
                v6: None,
                tap: None,
            })
            .collect(),
        workers: 1,
        worker_cores: vec![Some(st.worker_core)],
        conns_v4: c4,
        conns_v6: c6,
        seq_adj: 0,
        mbufs: 32767,
        max_services: 4,
        max_reals: 512,
        idle: Default::default(),
    };
    let pool = Mempool::new(eal, &format!("pf{tag}"), 32767, 256, 2176)
        .map_err(|e| format!("mempool: {e}"))?;
    // Touch every mbuf once so the RSS delta below is the table's.
    {
        let mut held = Vec::new();
        loop {
            let mut b = Burst::new();
            if !pool.alloc_bulk(&mut b, 32) {
                break;
            }
            for m in b.as_mut_slice() {
                let _ = m.append(2000).map(|d| d.fill(0));
            }
            held.push(b);
        }
    }
    let pcfg = Runtime::port_config(&cfg);
    let (dir_c, mut peer_c) =
        Port::ring_pair(eal, &format!("c{tag}"), &pcfg, &pool).map_err(|e| e.to_string())?;
    let (dir_s, mut peer_s) =
        Port::ring_pair(eal, &format!("s{tag}"), &pcfg, &pool).map_err(|e| e.to_string())?;
    let io = PeerIo {
        client_tx: peer_c.take_tx_queue(0).ok_or("queue")?,
        client_rx: peer_c.take_rx_queue(0).ok_or("queue")?,
        server_tx: peer_s.take_tx_queue(0).ok_or("queue")?,
        server_rx: peer_s.take_rx_queue(0).ok_or("queue")?,
    };
    let rss0 = vm_rss();
    let mode = p.mode;
    let rt = Runtime::start_on(eal, pool.clone(), vec![dir_c, dir_s], cfg, |ps| {
        let macs = [ps[0].mac.0, ps[1].mac.0];
        topo::snapshot(topo::ports(macs), mode)
    })?;
    let dmac = rt.port_snaps()[0].mac.0;
    let vip = topo::vip(p.fam);
    let t = |flags: u8, len: usize| Template::tcp(p.fam, vip, topo::VPORT, flags, len, dmac);
    let (data, sizes) = match p.size {
        Size::B64 => (vec![t(TCP_ACK | TCP_PSH, 64)], vec![0u8]),
        Size::Imix => (
            vec![
                t(TCP_ACK | TCP_PSH, 64),
                t(TCP_ACK | TCP_PSH, 576),
                t(TCP_ACK | TCP_PSH, 1500),
            ],
            vec![0, 1, 0, 0, 1, 0, 2, 0, 1, 0, 0, 1],
        ),
    };
    let chooser = match p.pop {
        Pop::Uniform => Chooser::Uniform(est.max(1)),
        Pop::Zipf(s) => Chooser::zipf(est.max(1), s, 1 << 20, 0x5eed),
    };
    let gcfg = GenConfig {
        syn: t(TCP_SYN, 64),
        ack: t(TCP_ACK, 64),
        data,
        sizes,
        flows: warm,
        chooser,
        new_base: warm,
        mix_new_pct: match p.kind {
            Kind::Mix(x) => x,
            _ => 0,
        },
    };
    let sh = Arc::new(Shared::default());
    let gen = {
        let (sh, pool) = (sh.clone(), pool.clone());
        spawn_worker(eal, "rvs-gen", Some(st.gen_core), move |_| {
            gen::run(io, pool, gcfg, sh)
        })
        .map_err(|e| format!("generator: {e}"))?
    };
    let ctr = rt.counters()[0].clone();
    let result = drive(&rt, &ctr, &sh, p, st, warm, sid, rss0);
    // Tear down: stop sending, let the director and the sink drain, stop.
    sh.set_phase(Phase::Idle, 0);
    std::thread::sleep(Duration::from_millis(150));
    sh.set_phase(Phase::Stop, 0);
    let io = gen.join().map_err(|e| format!("generator: {e}"))?;
    rt.shutdown();
    if let Ok(mut io) = io {
        let mut b = Burst::new();
        while io.server_rx.rx_burst(&mut b) > 0 || io.client_rx.rx_burst(&mut b) > 0 {
            b.clear();
        }
    }
    drop(peer_c);
    drop(peer_s);
    result
}

#[allow(clippy::too_many_arguments)]
fn drive(
    rt: &Runtime,
    ctr: &WorkerCounters,
    sh: &Shared,
    p: &Point,
    st: &Settings,
    warm: u32,
    sid: usize,
    rss0: u64,
) -> Result<PointResult, String> {
    let hz = tsc_hz().max(1) as f64;
    let label = p.label();
    // The cost of an empty poll: the worker idles until set-up starts.
    std::thread::sleep(Duration::from_millis(50));
    let i0 = snap(ctr, sh, sid);
    std::thread::sleep(Duration::from_millis(300));
    let i1 = snap(ctr, sh, sid);
    let idle_loop_cycles = if i1.loops > i0.loops {
        (i1.worker_cpu - i0.worker_cpu) as f64 * hz / 1e9 / (i1.loops - i0.loops) as f64
    } else {
        0.0
    };
    let t0 = Instant::now();
    // Set-up: one SYN per flow, until the table holds them or stops growing.
    if warm > 0 {
        let e = sh.set_phase(Phase::SynOnce, 0);
        let (mut last, mut since, mut tick) = (0u64, Instant::now(), Instant::now());
        loop {
            std::thread::sleep(Duration::from_millis(20));
            let n = ctr.conn_entries.get();
            if n != last {
                last = n;
                since = Instant::now();
            }
            let done = sh.once_done(e);
            if done && (n >= u64::from(warm) || since.elapsed() > Duration::from_millis(300)) {
                break;
            }
            if t0.elapsed() > st.setup_timeout {
                return Err(format!(
                    "{label}: set-up timed out at {n}/{warm} connections"
                ));
            }
            if tick.elapsed() > Duration::from_secs(1) {
                tick = Instant::now();
                eprintln!("  [{label}] set-up: {n}/{warm} connections");
            }
        }
        let e = sh.set_phase(Phase::AckOnce, 0);
        while !sh.once_done(e) {
            if t0.elapsed() > st.setup_timeout {
                return Err(format!("{label}: ACK phase timed out"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the director drain its RX ring.
        let mut last = snap(ctr, sh, sid).rx;
        loop {
            std::thread::sleep(Duration::from_millis(30));
            let n = snap(ctr, sh, sid).rx;
            if n == last {
                break;
            }
            last = n;
        }
    }
    let setup_secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(20));
    let conn_entries = ctr.conn_entries.get();
    let conn_capacity = ctr.conn_capacity.get();
    let rss_delta = vm_rss().saturating_sub(rss0);
    let established_sample = if p.kind == Kind::NewConn {
        (0, 0)
    } else {
        let sample = rt.connections(20_000);
        let e = sample.iter().filter(|c| c.state == "ESTABLISHED").count();
        (e, sample.len())
    };
    // Peak.
    let phase = match p.kind {
        Kind::Established => Phase::Data,
        Kind::NewConn => Phase::NewConn,
        Kind::Mix(_) => Phase::Mix,
    };
    sh.set_phase(phase, 0);
    std::thread::sleep(secs(st.warmup));
    let a = snap(ctr, sh, sid);
    std::thread::sleep(secs(st.seconds));
    let b = snap(ctr, sh, sid);
    let dt = match (a.t, b.t) {
        (Some(x), Some(y)) => y.duration_since(x).as_secs_f64(),
        _ => 1.0,
    };
    let pps = (b.rx - a.rx) as f64 / dt;
    let cpu_s = (b.worker_cpu - a.worker_cpu) as f64 / 1e9;
    let cpu_share = cpu_s / dt;
    let gen_cpu_share = (b.gen_cpu - a.gen_cpu) as f64 / 1e9 / dt;
    let pps_cpu = if cpu_s > 0.0 {
        (b.rx - a.rx) as f64 / cpu_s
    } else {
        0.0
    };
    let pkts_per_loop = (b.rx - a.rx) as f64 / (b.loops.saturating_sub(a.loops)).max(1) as f64;
    let busy = {
        let rx = (b.rx - a.rx) as f64;
        let empty = (b.loops.saturating_sub(a.loops) as f64 - rx).max(0.0);
        let cyc = cpu_s * hz - empty * idle_loop_cycles;
        if rx > 0.0 {
            cyc.max(0.0) / rx
        } else {
            0.0
        }
    };
    let out_pps = (b.tx - a.tx) as f64 / dt;
    let refused = b.refused - a.refused;
    let sent = (b.sent - a.sent).max(1);
    let new_conns_per_s = (p.kind != Kind::Established).then(|| (b.conns - a.conns) as f64 / dt);
    // Latency at half the peak, on the same traffic.
    let latency = if st.latency_secs > 0.0 && pps > 0.0 {
        let rate = (pps / 2.0) as u64;
        sh.set_phase(phase, rate);
        std::thread::sleep(Duration::from_millis(300));
        let s0 = sh.sink_rx.load(Ordering::Relaxed);
        let t1 = Instant::now();
        sh.record.store(true, Ordering::Relaxed);
        std::thread::sleep(secs(st.latency_secs));
        sh.record.store(false, Ordering::Relaxed);
        let got = (sh.sink_rx.load(Ordering::Relaxed) - s0) as f64 / t1.elapsed().as_secs_f64();
        let mut h: Option<Hist> = None;
        for _ in 0..200 {
            if let Some(x) = sh.hist.lock().ok().and_then(|mut g| g.take()) {
                h = Some(x);
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        h.map(|h| {
            let ns = |c: u64| c as f64 * 1e9 / hz;
            Latency {
                rate_pps: got,
                samples: h.len(),
                p50_ns: ns(h.quantile(0.5)),
                p99_ns: ns(h.quantile(0.99)),
                p999_ns: ns(h.quantile(0.999)),
                max_ns: ns(h.max()),
            }
        })
    } else {
        None
    };
    Ok(PointResult {
        point: *p,
        pps,
        out_pps,
        pps_cpu,
        cpu_share,
        gen_cpu_share,
        cycles_per_pkt: if pps_cpu > 0.0 { hz / pps_cpu } else { 0.0 },
        busy_cycles_per_pkt: busy,
        capacity_pps: if busy > 0.0 { hz / busy } else { 0.0 },
        saturated: refused as f64 > 0.001 * sent as f64 && pkts_per_loop >= 16.0,
        pkts_per_loop,
        idle_loop_cycles,
        refused_per_pkt: refused as f64 / sent as f64,
        drops: b.drops - a.drops,
        new_conns_per_s,
        stateless_fallbacks: b.fallbacks - a.fallbacks,
        conn_entries,
        conn_capacity,
        established_sample,
        rss_delta,
        setup_secs,
        implausible: plausibility(
            b.rx - a.rx,
            b.loops.saturating_sub(a.loops),
            cpu_share,
            idle_loop_cycles,
            busy,
        ),
        latency,
    })
}

#[cfg(test)]
mod plausibility_tests {
    use super::plausibility;

    #[test]
    fn sane_windows_pass_and_each_kind_of_bad_one_is_named() {
        assert_eq!(plausibility(10_000_000, 200_000, 0.9, 60.0, 300.0), None);
        let bad = [
            plausibility(0, 200_000, 0.9, 60.0, 300.0),
            plausibility(10_000_000, 50, 0.9, 60.0, 300.0),
            plausibility(10_000_000, 200_000, 0.02, 60.0, 300.0),
            plausibility(10_000_000, 200_000, 0.9, 0.0, 300.0),
            plausibility(10_000_000, 200_000, 0.9, 1e6, 300.0),
            plausibility(10_000_000, 200_000, 0.9, 60.0, 0.0),
        ];
        for (i, b) in bad.iter().enumerate() {
            assert!(b.is_some(), "case {i}");
        }
        assert!(bad[2].as_deref().unwrap_or("").contains("starved"));
    }
}
