//! `rvs-perf callgrind`: the established-flow packet path (or, with
//! `--new`, the new-connection path: one SYN per new flow) without EAL, on
//! `VecBuf`, for instruction counts that repeat exactly from run to run.
//! Every packet goes through [`process_one`] (bursts of 64, as the worker's
//! staged burst path takes them), which nothing else calls, so
//! `valgrind --tool=callgrind --toggle-collect='*process_one*'` counts the
//! packet path alone (the harness refills buffers outside it).

use crate::pkt::{flow_endpoint, Fam, Template, TCP_ACK, TCP_PSH, TCP_SYN};
use crate::topo;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::dpdk::{Backing, TableMem};
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::sync::Arc;

/// Collects transmitted buffers into preallocated room; the harness
/// empties it outside the measured function.
pub struct Collect {
    /// Transmitted buffers.
    pub out: Vec<VecBuf>,
}

impl Sink<VecBuf> for Collect {
    #[inline]
    fn tx(&mut self, _port: u16, pkt: VecBuf) {
        if self.out.len() < self.out.capacity() {
            self.out.push(pkt);
        }
    }
    fn handoff(&mut self, _worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        Err(pkt)
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, _ev: Event) {}
}

/// One RX burst through the pipeline's staged burst path (the worker's
/// call): the function callgrind collects. The burst is left empty.
#[inline(never)]
pub fn process_one(
    p: &mut Pipeline<VecBuf>,
    burst: &mut Vec<VecBuf>,
    now_ns: u64,
    sink: &mut Collect,
) {
    p.process_burst(burst.drain(..).map(|b| (b, 0)), now_ns, false, sink);
}

/// This thread's on-CPU nanoseconds.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The process's AnonHugePages in kB (0 where /proc does not say).
fn anon_huge_kb() -> u64 {
    std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|s| {
            let l = s.lines().find(|l| l.starts_with("AnonHugePages:"))?;
            l.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// What a run did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Packets measured.
    pub packets: u64,
    /// Packets that came out.
    pub forwarded: u64,
    /// Connections in the table.
    pub conns: u32,
    /// Memory behind the IPv4 connection table.
    pub backing: Backing,
    /// The process's AnonHugePages (kB) after set-up.
    pub anon_huge_kb: u64,
    /// On-CPU nanoseconds per packet of the measured loop less the same
    /// loop without [`process_one`] (native runs only; meaningless under
    /// valgrind).
    pub ns_per_pkt: f64,
}

/// Which packets the measured loop sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ACK/data packets of established connections, drawn uniformly.
    Established,
    /// One SYN per flow never seen before (each creates a connection).
    New,
}

/// Sets up `flows` established connections, then sends `packets` packets
/// through [`process_one`]: ACK/data packets drawn uniformly (fixed seed)
/// from those connections, or (`Kind::New`) SYNs of `packets` further
/// flows, each a new connection.
pub fn run(
    fam: Fam,
    mode: FwdMode,
    flows: u32,
    packets: u64,
    len: usize,
    kind: Kind,
    small_pages: bool,
) -> Result<Outcome, String> {
    let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
    let snap = Arc::new(topo::snapshot(topo::ports(macs), mode)?);
    let counters = Arc::new(WorkerCounters::new(4, 512, 2, 1));
    let fresh = match kind {
        Kind::Established => 0,
        Kind::New => u32::try_from(packets).map_err(|_| "too many packets for --new")?,
    };
    let total = flows
        .checked_add(fresh)
        .filter(|t| *t < u32::MAX / 2)
        .ok_or("too many flows")?;
    let cap = total + total / 8 + 1024;
    let mem = if small_pages {
        TableMem::small_pages()
    } else {
        TableMem::host()
    };
    let mut p = Pipeline::<VecBuf>::new_in(
        &PipelineConfig::new(0, 1, cap, cap),
        snap,
        HashKey::from_seed(7),
        counters,
        &mem,
    )
    .map_err(|e| e.to_string())?;
    let mut sink = Collect {
        out: Vec::with_capacity(64),
    };
    let now = 1_000_000_000u64;
    for (ip, mac) in topo::reals(fam) {
        p.learn(ip, 1, MacAddr(mac), now, &mut sink);
    }
    let vip = topo::vip(fam);
    let syn = Template::tcp(fam, vip, topo::VPORT, TCP_SYN, 64, macs[0]);
    let ack = Template::tcp(fam, vip, topo::VPORT, TCP_ACK, 64, macs[0]);
    let data = Template::tcp(fam, vip, topo::VPORT, TCP_ACK | TCP_PSH, len, macs[0]);
    let mk = |t: &Template, i: u32| {
        let mut v = t.bytes.clone();
        let (a, port) = flow_endpoint(i);
        t.patch(&mut v, a, port, 0);
        VecBuf::from_slice(&v, 128, 64)
    };
    for t in [&syn, &ack] {
        for i in 0..flows {
            p.process(mk(t, i), 0, now, false, &mut sink);
            sink.out.clear();
        }
    }
    // Buffers are built ahead in batches so the measured function only
    // processes.
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut forwarded = 0u64;
    let mut done = 0u64;
    let cpu0 = cpu_ns();
    let mut batch: Vec<VecBuf> = Vec::with_capacity(64);
    while done < packets {
        let n = (packets - done).min(64) as usize;
        for k in 0..n {
            match kind {
                Kind::Established => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = ((u128::from(rng) * u128::from(flows.max(1))) >> 64) as u32;
                    batch.push(mk(&data, i));
                }
                Kind::New => batch.push(mk(&syn, flows + (done as usize + k) as u32)),
            }
        }
        process_one(&mut p, &mut batch, now, &mut sink);
        forwarded += sink.out.len() as u64;
        sink.out.clear();
        done += n as u64;
    }
    let with = cpu_ns().saturating_sub(cpu0);
    let conns = p.conns_v4().len() + p.conns_v6().len();
    let backing = p.conns_v4().backing();
    let anon_huge_kb = anon_huge_kb();
    // The same buffers built and dropped without processing.
    let cpu1 = cpu_ns();
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut kept = 0usize;
    let mut left = packets;
    while left > 0 {
        let n = left.min(64) as usize;
        for k in 0..n {
            match kind {
                Kind::Established => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let i = ((u128::from(rng) * u128::from(flows.max(1))) >> 64) as u32;
                    batch.push(mk(&data, i));
                }
                Kind::New => {
                    let i = flows + (packets - left) as u32 + k as u32;
                    batch.push(mk(&syn, i));
                }
            }
        }
        kept += batch.iter().map(|b| b.data().len()).sum::<usize>() & 1;
        batch.clear();
        left -= n as u64;
    }
    let without = cpu_ns().saturating_sub(cpu1);
    let _ = (kept, sink.out.first().map(|b| b.data().len()));
    Ok(Outcome {
        packets,
        forwarded,
        conns,
        backing,
        anon_huge_kb,
        ns_per_pkt: with.saturating_sub(without) as f64 / packets.max(1) as f64,
    })
}
