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
    /// Of the packets measured, those the established fast path forwarded.
    pub fast: u64,
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
    /// [`Kind::Established`] on connections that carry a TCP sequence
    /// adjustment (deltas in both directions, as Proxy Protocol or the
    /// SYN proxy leave them): the cost of an adjusted connection.
    Adjusted,
    /// [`Kind::Established`] on a TOA service's connections whose real
    /// server's SYN-ACK was seen and whose data the client has not
    /// acknowledged: every packet gets the TOA option (the first ACK and
    /// data segments of each connection).
    Toa,
}

impl Kind {
    /// The gate's name of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Established => "established",
            Kind::New => "new",
            Kind::Adjusted => "adjusted",
            Kind::Toa => "toa",
        }
    }
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
    let snap = Arc::new(topo::snapshot_with(
        topo::ports(macs),
        mode,
        kind == Kind::Toa,
    )?);
    let counters = Arc::new(WorkerCounters::new(4, 512, 2, 1));
    let fresh = match kind {
        Kind::Established | Kind::Adjusted | Kind::Toa => 0,
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
        counters.clone(),
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
    for i in 0..flows {
        p.process(mk(&syn, i), 0, now, false, &mut sink);
        sink.out.clear();
    }
    if kind == Kind::Toa {
        // The real servers' SYN-ACKs (ISN 0: the templates acknowledge 1).
        for b in syn_acks(&p, fam, macs[1]) {
            p.process(b, 1, now, false, &mut sink);
            sink.out.clear();
        }
    }
    for i in 0..flows {
        p.process(mk(&ack, i), 0, now, false, &mut sink);
        sink.out.clear();
    }
    // The flows the measured packets are drawn from: all of them, or those
    // the kind's state could be given to (the side table of adjusted
    // connections holds capacity / 128; TOA's cache is direct-mapped).
    let pool: Vec<u32> = match kind {
        Kind::Established | Kind::New => (0..flows).collect(),
        Kind::Adjusted => (0..flows)
            .filter(|&i| p.set_seq_adj(client_of(fam, i), (vip, topo::VPORT), ADJ))
            .collect(),
        Kind::Toa => (0..flows)
            .filter(|&i| {
                let b = mk(&data, i);
                let n = b.data().len();
                p.process(b, 0, now, false, &mut sink);
                let grew = sink.out.first().is_some_and(|o| o.data().len() > n);
                sink.out.clear();
                grew
            })
            .collect(),
    };
    if pool.is_empty() {
        return Err(format!("no flow for the {} case", kind.name()));
    }
    let pick = |rng: u64| -> u32 {
        let k = ((u128::from(rng) * pool.len() as u128) >> 64) as usize;
        pool.get(k).copied().unwrap_or(0)
    };
    // Buffers are built ahead in batches so the measured function only
    // processes.
    let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
    let mut forwarded = 0u64;
    let mut done = 0u64;
    let fast0 = counters.fast_path.get();
    let cpu0 = cpu_ns();
    let mut batch: Vec<VecBuf> = Vec::with_capacity(64);
    while done < packets {
        let n = (packets - done).min(64) as usize;
        for k in 0..n {
            match kind {
                Kind::Established | Kind::Adjusted | Kind::Toa => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    batch.push(mk(&data, pick(rng)));
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
    let fast = counters.fast_path.get() - fast0;
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
                Kind::Established | Kind::Adjusted | Kind::Toa => {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    batch.push(mk(&data, pick(rng)));
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
        fast,
        conns,
        backing,
        anon_huge_kb,
        ns_per_pkt: with.saturating_sub(without) as f64 / packets.max(1) as f64,
    })
}

/// The adjustment given to [`Kind::Adjusted`] connections: both streams
/// shifted (a 100-byte header inserted in the client's, 7 bytes in the
/// server's), every segment after the change point.
const ADJ: dataplane::forward::ConnSeq = dataplane::forward::ConnSeq {
    in_seq: dataplane::forward::SeqAdj {
        init_seq: 1,
        delta: 100,
        previous_delta: 0,
    },
    out_seq: dataplane::forward::SeqAdj {
        init_seq: 1,
        delta: 7,
        previous_delta: 0,
    },
};

/// The client endpoint of flow `i` (as the templates patch it).
fn client_of(fam: Fam, i: u32) -> (std::net::IpAddr, u16) {
    let a = match fam {
        Fam::V4 => std::net::IpAddr::V4(crate::pkt::client_v4(i)),
        Fam::V6 => std::net::IpAddr::V6(crate::pkt::client_v6(i)),
    };
    (a, flow_endpoint(i).1)
}

/// A SYN-ACK (ISN 0, no options) from each FullNAT connection's real
/// server to its local address and port, as frames for port 1.
fn syn_acks(p: &Pipeline<VecBuf>, fam: Fam, dir_mac: [u8; 6]) -> Vec<VecBuf> {
    use dataplane::flow::Family;
    use dataplane::wire::checksum;
    fn frame(
        src: std::net::IpAddr,
        sport: u16,
        dst: std::net::IpAddr,
        dport: u16,
        mac: [u8; 6],
    ) -> Vec<u8> {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&sport.to_be_bytes());
        tcp[2..4].copy_from_slice(&dport.to_be_bytes());
        tcp[8..12].copy_from_slice(&1001u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = TCP_SYN | TCP_ACK;
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
        let mut f = Vec::with_capacity(80);
        f.extend_from_slice(&mac);
        f.extend_from_slice(&crate::pkt::rs_mac(0x11));
        match (src, dst) {
            (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) => {
                let c = checksum::l4_checksum_v4(s, d, 6, &tcp);
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&[0x08, 0x00]);
                let mut ip = [0u8; 20];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&40u16.to_be_bytes());
                ip[6] = 0x40;
                ip[8] = 64;
                ip[9] = 6;
                ip[12..16].copy_from_slice(&s.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let c = checksum::checksum(&ip);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&ip);
            }
            (std::net::IpAddr::V6(s), std::net::IpAddr::V6(d)) => {
                let c = checksum::l4_checksum_v6(s, d, 6, &tcp);
                tcp[16..18].copy_from_slice(&c.to_be_bytes());
                f.extend_from_slice(&[0x86, 0xdd]);
                let mut ip = [0u8; 40];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&20u16.to_be_bytes());
                ip[6] = 6;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&s.octets());
                ip[24..40].copy_from_slice(&d.octets());
                f.extend_from_slice(&ip);
            }
            _ => {}
        }
        f.extend_from_slice(&tcp);
        f
    }
    fn all<F: Family>(t: &dataplane::conn::ConnTable<F>, mac: [u8; 6]) -> Vec<VecBuf> {
        t.iter()
            .map(|(_, c)| {
                let f = frame(
                    F::to_ip(c.rip()),
                    c.rport(),
                    F::to_ip(c.local()),
                    c.lport(),
                    mac,
                );
                VecBuf::from_slice(&f, 128, 64)
            })
            .collect()
    }
    match fam {
        Fam::V4 => all(p.conns_v4(), dir_mac),
        Fam::V6 => all(p.conns_v6(), dir_mac),
    }
}
