//! `rvs-perf`: benchmarks for rvs, each against a baseline run by the same
//! command.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use dataplane::dpdk::{Eal, EalArgs};
use perf::flows::{Kind, Point, Pop, Settings, Size};
use perf::pkt::Fam;
use perf::report::{self, Baseline};
use perf::stats::{median, mpps};
use perf::{callgrind, flows, fwd, testpmd, topo};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "rvs-perf",
    about = "rvs benchmarks, reported as ratios to a baseline measured in the same run"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// RX→TX through rvs's safe DPDK layer vs `dpdk-testpmd --forward-mode=io`,
    /// both on two net_null (copy=1) ports with one forwarding core.
    Fwd {
        /// Measured one-second periods per round.
        #[arg(long, default_value_t = 5)]
        seconds: usize,
        /// Warm-up periods discarded per round.
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// Alternating rounds (testpmd, rvs, testpmd, rvs, ...).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// The forwarding core (both testpmd and rvs use it).
        #[arg(long, default_value_t = 1)]
        core: usize,
        /// Exit non-zero when rvs/testpmd falls below this ratio.
        #[arg(long)]
        min_ratio: Option<f64>,
    },
    /// The real worker loop (one worker on --worker-core) on two net_ring
    /// pairs, traffic from a generator/sink on --gen-core: established flows
    /// per concurrency, new connections, latency at half peak; testpmd io and
    /// 5tswap on net_null (copy=1) on the same core as the baseline.
    Flows(FlowsArgs),
    /// The established-flow packet path on VecBuf without EAL, for
    /// `valgrind --tool=callgrind --toggle-collect='*process_one*'`
    /// (perf/callgrind.sh runs it and prints instructions per packet).
    Callgrind {
        /// Established connections.
        #[arg(long, default_value = "1k", value_parser = parse_count)]
        flows: u32,
        /// Packets measured.
        #[arg(long, default_value_t = 200_000)]
        packets: u64,
        /// nat, dr, tun or fullnat.
        #[arg(long, default_value = "nat")]
        mode: String,
        /// v4 or v6.
        #[arg(long, default_value = "v4")]
        family: String,
        /// Frame length.
        #[arg(long, default_value_t = 64)]
        len: usize,
        /// Measure new connections (one SYN per new flow) instead of
        /// established ones.
        #[arg(long)]
        new: bool,
        /// Measure established connections that carry a TCP sequence
        /// adjustment (seq/ack deltas both ways).
        #[arg(long, conflicts_with_all = ["new", "toa"])]
        adjusted: bool,
        /// Measure a TOA service's client segments that get the option
        /// (first ACK / data before the server's data is acknowledged).
        #[arg(long, conflicts_with_all = ["new", "adjusted"])]
        toa: bool,
        /// Connection tables on ordinary 4 KiB pages (as before they asked
        /// for huge pages), to compare the two.
        #[arg(long)]
        small_pages: bool,
    },
    /// The packet path alone, natively: no EAL, packets in memory (VecBuf),
    /// in bursts of 64 through `Pipeline::process_burst` (the worker's staged
    /// path), for each (mode, family,
    /// flow count); on-CPU ns and TSC cycles per packet of the path less
    /// the harness. Compare with perf-floor's refpath (same work in C).
    Compute {
        /// Established-flow counts (k, m suffixes), comma separated.
        #[arg(long, default_value = "1k,1m", value_delimiter = ',', value_parser = parse_count)]
        flows: Vec<u32>,
        /// Forwarding modes: nat, dr, tun, fullnat.
        #[arg(long, default_value = "nat,dr,tun,fullnat", value_delimiter = ',')]
        modes: Vec<String>,
        /// Address families: v4, v6.
        #[arg(long, default_value = "v4,v6", value_delimiter = ',')]
        families: Vec<String>,
        /// Packets per point.
        #[arg(long, default_value_t = 2_000_000)]
        packets: u64,
        /// Also measure new connections (one SYN per fresh flow).
        #[arg(long)]
        new: bool,
        /// Connection tables on ordinary 4 KiB pages.
        #[arg(long)]
        small_pages: bool,
    },
}

#[derive(clap::Args)]
struct FlowsArgs {
    /// Established-flow counts (k, m suffixes), comma separated.
    #[arg(long, default_value = "1k,100k,1m", value_delimiter = ',', value_parser = parse_count)]
    flows: Vec<u32>,
    /// Forwarding modes: nat, dr, tun, fullnat.
    #[arg(long, default_value = "nat", value_delimiter = ',')]
    modes: Vec<String>,
    /// Address families: v4, v6.
    #[arg(long, default_value = "v4", value_delimiter = ',')]
    families: Vec<String>,
    /// Frame sizes: 64, imix.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    sizes: Vec<String>,
    /// Flow popularity: uniform, zipf or zipf:<s> (default s 0.99).
    #[arg(long, default_value = "uniform", value_delimiter = ',')]
    popularity: Vec<String>,
    /// Skip the new-connection point.
    #[arg(long)]
    no_new_conn: bool,
    /// Also run a mix point per flow count: established traffic with this
    /// percentage of SYNs of fresh connections.
    #[arg(long)]
    mix: Option<u8>,
    /// Everything: 1K..10M, every mode, both families, both sizes, both
    /// popularities, mix 10% (long: about 15 minutes).
    #[arg(long)]
    full: bool,
    /// Measured seconds per point.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Warm-up seconds per point.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Latency seconds per point at half its peak (0: skip).
    #[arg(long, default_value_t = 1.0)]
    latency_seconds: f64,
    /// Measured seconds per testpmd baseline (0: skip the baselines).
    #[arg(long, default_value_t = 3)]
    baseline_seconds: usize,
    /// Table capacity above the established flows (fraction).
    #[arg(long, default_value_t = 0.125)]
    headroom: f64,
    /// Room for fresh connections in new-conn and mix points.
    #[arg(long, default_value = "8m", value_parser = parse_count)]
    new_capacity: u32,
    /// The worker's core.
    #[arg(long, default_value_t = 1)]
    worker_core: usize,
    /// The generator's core.
    #[arg(long, default_value_t = 0)]
    gen_core: usize,
    /// EAL memory (MB, no hugepages).
    #[arg(long, default_value_t = 1024)]
    mem_mb: u32,
    /// Write the results as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the results as a Markdown table.
    #[arg(long)]
    markdown: Option<std::path::PathBuf>,
    /// Write an SVG plot of throughput against concurrent flows.
    #[arg(long)]
    svg: Option<std::path::PathBuf>,
}

fn parse_count(s: &str) -> Result<u32, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = t.strip_suffix('m') {
        (n, 1_000_000f64)
    } else if let Some(n) = t.strip_suffix('k') {
        (n, 1000f64)
    } else {
        (t.as_str(), 1f64)
    };
    let v: f64 = num.parse().map_err(|_| format!("not a count: {s}"))?;
    let v = v * mul;
    if !(0.0..=4e9).contains(&v) {
        return Err(format!("out of range: {s}"));
    }
    Ok(v as u32)
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Fwd {
            seconds,
            warmup,
            rounds,
            core,
            min_ratio,
        } => run_fwd(seconds, warmup, rounds, core, min_ratio),
        Cmd::Flows(a) => run_flows(a),
        Cmd::Callgrind {
            flows,
            packets,
            mode,
            family,
            len,
            new,
            adjusted,
            toa,
            small_pages,
        } => {
            let kind = if new {
                callgrind::Kind::New
            } else if adjusted {
                callgrind::Kind::Adjusted
            } else if toa {
                callgrind::Kind::Toa
            } else {
                callgrind::Kind::Established
            };
            run_callgrind(flows, packets, &mode, &family, len, kind, small_pages)
        }
        Cmd::Compute {
            flows,
            modes,
            families,
            packets,
            new,
            small_pages,
        } => run_compute(&flows, &modes, &families, packets, new, small_pages),
    };
    std::process::exit(code);
}

fn run_fwd(
    seconds: usize,
    warmup: usize,
    rounds: usize,
    core: usize,
    min_ratio: Option<f64>,
) -> i32 {
    // The benchmark runs on a thread started before EAL: EAL pins the
    // thread that initialises it to the main lcore (core 0), and
    // `spawn_worker` only pins to a core within the spawning thread's
    // affinity, so a forwarding thread spawned from the main thread would
    // stay on core 0.
    let (tx, rx) = std::sync::mpsc::channel::<Eal>();
    let driver = std::thread::Builder::new()
        .name("rvs-perf-drive".into())
        .spawn(move || match rx.recv() {
            Ok(eal) => run_fwd_on(eal, seconds, warmup, rounds, core, min_ratio),
            Err(_) => 1,
        });
    let driver = match driver {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rvs-perf: driver thread: {e}");
            return 1;
        }
    };
    let eal = match Eal::init(&EalArgs::test("perf-fwd", 512)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rvs-perf: EAL: {e}");
            drop(tx);
            let _ = driver.join();
            return 1;
        }
    };
    let _ = tx.send(eal);
    driver.join().unwrap_or(1)
}

fn run_fwd_on(
    eal: Eal,
    seconds: usize,
    warmup: usize,
    rounds: usize,
    core: usize,
    min_ratio: Option<f64>,
) -> i32 {
    let tp_vdevs = vec![
        "net_null0,copy=1".to_string(),
        "net_null1,copy=1".to_string(),
    ];
    let rvs_vdevs = vec![
        "net_null_fwd0,copy=1".to_string(),
        "net_null_fwd1,copy=1".to_string(),
    ];
    let mut bench = match fwd::FwdBench::new(&eal, &rvs_vdevs) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("rvs-perf: {e}");
            return 1;
        }
    };
    println!(
        "rvs-perf fwd: {} over 2 x net_null (copy=1, 64 B), one forwarding core ({core}), burst {}",
        eal.version(),
        fwd::BURST
    );
    println!("baseline: dpdk-testpmd --forward-mode=io on the same devices; {rounds} alternating rounds of {seconds} s (+{warmup} s warm-up)");
    println!(
        "{:<7} {:>16} {:>16} {:>8}",
        "round", "testpmd io", "rvs safe layer", "ratio"
    );
    let (mut tp_all, mut rvs_all) = (Vec::new(), Vec::new());
    for r in 1..=rounds {
        let tp = match testpmd::run("io", &tp_vdevs, &[], core, warmup, seconds) {
            Ok(t) => median(&t.samples),
            Err(e) => {
                eprintln!("rvs-perf: baseline: {e}");
                return 1;
            }
        };
        let rv = match bench.run(core, warmup, seconds) {
            Ok(s) => median(&s),
            Err(e) => {
                eprintln!("rvs-perf: {e}");
                return 1;
            }
        };
        println!(
            "{:<7} {:>16} {:>16} {:>7.3}x",
            r,
            mpps(tp),
            mpps(rv),
            rv / tp
        );
        tp_all.push(tp);
        rvs_all.push(rv);
    }
    let (tp, rv) = (median(&tp_all), median(&rvs_all));
    let ratio = rv / tp;
    println!(
        "{:<7} {:>16} {:>16} {:>7.3}x",
        "median",
        mpps(tp),
        mpps(rv),
        ratio
    );
    match min_ratio {
        Some(min) if ratio < min => {
            println!("below the required {min:.2}x");
            2
        }
        _ => 0,
    }
}

fn parse_fam(s: &str) -> Option<Fam> {
    match s.to_ascii_lowercase().as_str() {
        "v4" | "ipv4" | "4" => Some(Fam::V4),
        "v6" | "ipv6" | "6" => Some(Fam::V6),
        _ => None,
    }
}

fn parse_size(s: &str) -> Option<Size> {
    match s.to_ascii_lowercase().as_str() {
        "64" => Some(Size::B64),
        "imix" => Some(Size::Imix),
        _ => None,
    }
}

fn parse_pop(s: &str) -> Option<Pop> {
    let s = s.to_ascii_lowercase();
    if s == "uniform" {
        return Some(Pop::Uniform);
    }
    let rest = s.strip_prefix("zipf")?;
    match rest.strip_prefix(':') {
        Some(x) => x.parse().ok().map(Pop::Zipf),
        None if rest.is_empty() => Some(Pop::Zipf(0.99)),
        None => None,
    }
}

fn points(a: &FlowsArgs) -> Result<Vec<Point>, String> {
    let bad = |what: &str, v: &str| format!("unknown {what}: {v}");
    let (flows, modes, fams, sizes, pops, mix) = if a.full {
        (
            vec![1000, 100_000, 1_000_000, 10_000_000],
            vec!["nat", "dr", "tun", "fullnat"]
                .into_iter()
                .map(String::from)
                .collect(),
            vec!["v4".to_string(), "v6".to_string()],
            vec!["64".to_string(), "imix".to_string()],
            vec!["uniform".to_string(), "zipf".to_string()],
            Some(a.mix.unwrap_or(10)),
        )
    } else {
        (
            a.flows.clone(),
            a.modes.clone(),
            a.families.clone(),
            a.sizes.clone(),
            a.popularity.clone(),
            a.mix,
        )
    };
    let mut v = Vec::new();
    for m in &modes {
        let mode = topo::parse_mode(m).ok_or_else(|| bad("mode", m))?;
        for f in &fams {
            let fam = parse_fam(f).ok_or_else(|| bad("family", f))?;
            for sz in &sizes {
                let size = parse_size(sz).ok_or_else(|| bad("size", sz))?;
                for pp in &pops {
                    let pop = parse_pop(pp).ok_or_else(|| bad("popularity", pp))?;
                    for &n in &flows {
                        v.push(Point {
                            fam,
                            mode,
                            size,
                            pop,
                            flows: n,
                            kind: Kind::Established,
                        });
                        if let Some(x) = mix {
                            v.push(Point {
                                fam,
                                mode,
                                size,
                                pop,
                                flows: n,
                                kind: Kind::Mix(x),
                            });
                        }
                    }
                    if !a.no_new_conn && pop == Pop::Uniform {
                        v.push(Point {
                            fam,
                            mode,
                            size,
                            pop,
                            flows: 0,
                            kind: Kind::NewConn,
                        });
                    }
                }
            }
        }
    }
    Ok(v)
}

fn run_flows(a: FlowsArgs) -> i32 {
    let pts = match points(&a) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rvs-perf: {e}");
            return 2;
        }
    };
    let st = Settings {
        seconds: a.seconds,
        warmup: a.warmup,
        latency_secs: a.latency_seconds,
        headroom: a.headroom,
        new_capacity: a.new_capacity,
        worker_core: a.worker_core,
        gen_core: a.gen_core,
        setup_timeout: Duration::from_secs(300),
    };
    // Baselines first, while nothing of ours polls the core.
    let mut base = Baseline::default();
    if a.baseline_seconds > 0 {
        let vdevs = vec![
            "net_null0,copy=1".to_string(),
            "net_null1,copy=1".to_string(),
        ];
        // net_null (copy=1) for io and 5tswap; then 5tswap on two net_ring
        // ports looped back onto themselves (each TX ring is its RX ring),
        // primed with --tx-first: no packet copy and no generator, the
        // cheapest ring path a worker on rings could have.
        let ring = vec!["net_ring0".to_string(), "net_ring1".to_string()];
        for (mode, vd, extra, name) in [
            ("io", &vdevs, &[][..], "io"),
            ("5tswap", &vdevs, &[][..], "5tswap"),
            ("5tswap", &ring, &["--tx-first"][..], "5tswap-ring"),
        ] {
            eprintln!(
                "rvs-perf: baseline dpdk-testpmd --forward-mode={mode} ({name}) on core {}",
                a.worker_core
            );
            match testpmd::run(mode, vd, extra, a.worker_core, 1, a.baseline_seconds) {
                Ok(t) => {
                    let v = median(&t.samples);
                    match name {
                        "io" => {
                            base.io = v;
                            base.io_share = t.cpu_share;
                        }
                        "5tswap" => {
                            base.swap = v;
                            base.swap_share = t.cpu_share;
                        }
                        _ => {
                            base.swap_ring = v;
                            base.swap_ring_share = t.cpu_share;
                        }
                    }
                }
                Err(e) => eprintln!("rvs-perf: baseline {name}: {e} (ratios left out)"),
            }
        }
    }
    // The points run on a thread started before EAL: EAL pins the thread
    // that initialises it to the main lcore (core 0), threads inherit that
    // mask, and `spawn_worker` only pins to a core within the spawning
    // thread's mask, so a worker spawned from the main thread would stay on
    // core 0 next to the generator.
    let (tx, rx) = std::sync::mpsc::channel::<dataplane::dpdk::Eal>();
    let driver = {
        let pts = pts.clone();
        let st = st.clone();
        std::thread::Builder::new()
            .name("rvs-perf-drive".into())
            .spawn(move || {
                let Ok(eal) = rx.recv() else {
                    return (Vec::new(), 0usize);
                };
                let mut res = Vec::new();
                let mut failed = 0;
                for (i, p) in pts.iter().enumerate() {
                    eprintln!("rvs-perf: [{}/{}] {}", i + 1, pts.len(), p.label());
                    match flows::run_point(&eal, i, p, &st) {
                        Ok(r) => {
                            print_point(&r, base);
                            res.push(r);
                        }
                        Err(e) => {
                            eprintln!("rvs-perf: {}: {e}", p.label());
                            failed += 1;
                        }
                    }
                }
                (res, failed)
            })
    };
    let driver = match driver {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rvs-perf: driver thread: {e}");
            return 1;
        }
    };
    let eal = match flows::eal(a.mem_mb) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rvs-perf: {e}");
            return 1;
        }
    };
    let header = format!(
        "rvs-perf flows: {}, worker on core {}, generator on core {}, {} s per point (+{} s warm-up), TSC {:.3} GHz",
        eal.version(),
        a.worker_core,
        a.gen_core,
        a.seconds,
        a.warmup,
        dataplane::dpdk::tsc_hz() as f64 / 1e9
    );
    println!("{header}");
    println!(
        "baseline: testpmd io {} ({} per CPU-s), 5tswap {} ({} per CPU-s)",
        mpps(base.io),
        mpps(base.io_cpu()),
        mpps(base.swap),
        mpps(base.swap_cpu())
    );
    let _ = tx.send(eal.clone());
    let (res, failed) = driver.join().unwrap_or_default();
    let targets = report::targets(&res, base);
    let md = report::markdown(&res, base, &targets, &header);
    println!("\n{md}");
    let meta = [
        ("tool", "rvs-perf flows".to_string()),
        ("header", header.clone()),
        ("cycles_method", "tsc_hz / director client-port RX packets per second; the worker's cost per packet when saturated (the generator's sends were refused), an upper bound otherwise".to_string()),
        ("latency_method", "TSC stamped into the last 8 bytes of each frame at send, read by the sink after the director forwarded it; generator rate-limited to half the point's peak".to_string()),
        ("memory_method", "process VmRSS growth from before the runtime started to after set-up, divided by the table capacity".to_string()),
    ];
    let write = |path: &Option<std::path::PathBuf>, text: &str| {
        if let Some(p) = path {
            if let Err(e) = std::fs::write(p, text) {
                eprintln!("rvs-perf: {}: {e}", p.display());
            }
        }
    };
    write(&a.json, &report::json(&res, base, &targets, &meta));
    write(&a.markdown, &md);
    write(&a.svg, &report::svg(&res, base));
    drop(eal);
    i32::from(failed > 0)
}

/// TSC ticks per second, from the TSC over a 200 ms sleep (the TSC runs
/// at a constant rate, so the machine's load does not matter).
fn tsc_hz_measured() -> f64 {
    let t0 = std::time::Instant::now();
    let c0 = dataplane::dpdk::tsc();
    std::thread::sleep(Duration::from_millis(200));
    let c1 = dataplane::dpdk::tsc();
    c1.wrapping_sub(c0) as f64 / t0.elapsed().as_secs_f64()
}

fn run_compute(
    flows: &[u32],
    modes: &[String],
    families: &[String],
    packets: u64,
    new: bool,
    small_pages: bool,
) -> i32 {
    let hz = tsc_hz_measured();
    println!(
        "compute: the packet path alone (VecBuf, no EAL), {packets} packets per point, TSC {:.3} GHz; on-CPU time, noisy where the machine is shared",
        hz / 1e9
    );
    let mut kinds = vec![callgrind::Kind::Established];
    if new {
        kinds.push(callgrind::Kind::New);
    }
    let mut rc = 0;
    for m in modes {
        for f in families {
            let (Some(mode), Some(fam)) = (topo::parse_mode(m), parse_fam(f)) else {
                eprintln!("rvs-perf: unknown mode {m} or family {f}");
                return 2;
            };
            for &n in flows {
                for &k in &kinds {
                    match callgrind::run(fam, mode, n, packets, 64, k, small_pages) {
                        Ok(o) => println!(
                            "{:<8} {:<5} {:<12} {:>9} flows: {:>7.1} ns/pkt = {:>6.0} cycles/pkt (table on {}, fast path {:.0} %)",
                            topo::mode_name(mode),
                            fam.name(),
                            if k == callgrind::Kind::New { "new conn" } else { "established" },
                            n,
                            o.ns_per_pkt,
                            o.ns_per_pkt * hz / 1e9,
                            o.backing,
                            100.0 * o.fast as f64 / o.packets.max(1) as f64
                        ),
                        Err(e) => {
                            eprintln!("rvs-perf: {e}");
                            rc = 1;
                        }
                    }
                }
            }
        }
    }
    rc
}

fn run_callgrind(
    flows: u32,
    packets: u64,
    mode: &str,
    family: &str,
    len: usize,
    kind: callgrind::Kind,
    small_pages: bool,
) -> i32 {
    let (Some(mode), Some(fam)) = (topo::parse_mode(mode), parse_fam(family)) else {
        eprintln!("rvs-perf: unknown mode or family");
        return 2;
    };
    match callgrind::run(fam, mode, flows, packets, len, kind, small_pages) {
        Ok(o) => {
            println!(
                "callgrind: {} {} packets, {} connections in the table after ({} {}), {} forwarded; table on {} (AnonHugePages {} kB); natively {:.1} on-CPU ns/packet in process_one (loop with it less loop without)",
                o.packets,
                if kind == callgrind::Kind::New {
                    "new-connection (SYN)"
                } else {
                    kind.name()
                },
                o.conns,
                topo::mode_name(mode),
                fam.name(),
                o.forwarded,
                o.backing,
                o.anon_huge_kb,
                o.ns_per_pkt
            );
            i32::from(o.forwarded != o.packets)
        }
        Err(e) => {
            eprintln!("rvs-perf: {e}");
            1
        }
    }
}

fn print_point(r: &flows::PointResult, base: Baseline) {
    let p = &r.point;
    let lat = r.latency.as_ref().map_or(String::new(), |l| {
        format!(
            ", latency at {:.2} Mpps p50/p99/p99.9 {:.1}/{:.1}/{:.1} µs",
            l.rate_pps / 1e6,
            l.p50_ns / 1e3,
            l.p99_ns / 1e3,
            l.p999_ns / 1e3
        )
    });
    let nc = r
        .new_conns_per_s
        .map_or(String::new(), |v| format!(", {:.2} M new conn/s", v / 1e6));
    println!(
        "{:<40} {:>11} wall, {:>11} per CPU-s (CPU {:.2}/{:.2}, {:.1} pkts/poll, idle poll {:.0} cyc) {:>6} {:>5.0} busy cyc/pkt = {:.2} Mpps capacity{}{}{}, conns {}/{}, drops {}",
        p.label(),
        mpps(r.pps),
        mpps(r.pps_cpu),
        r.cpu_share,
        r.gen_cpu_share,
        r.pkts_per_loop,
        r.idle_loop_cycles,
        match &r.implausible {
            Some(why) => format!("no ratio ({why})"),
            None if base.swap > 0.0 => format!("{:.2}x", r.capacity_pps / base.swap_cpu()),
            None => "-".into(),
        },
        r.busy_cycles_per_pkt,
        r.capacity_pps / 1e6,
        if r.saturated { "" } else { " (not saturated)" },
        nc,
        lat,
        r.conn_entries,
        r.conn_capacity,
        r.drops
    );
}
