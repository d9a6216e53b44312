//! `rvs-perf`: benchmarks for rvs, each against a baseline run by the same
//! command.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use dataplane::dpdk::{Eal, EalArgs};
use perf::stats::{median, mpps};
use perf::{fwd, testpmd};

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
    let tp_vdevs = vec![
        "net_null0,copy=1".to_string(),
        "net_null1,copy=1".to_string(),
    ];
    let rvs_vdevs = vec![
        "net_null_fwd0,copy=1".to_string(),
        "net_null_fwd1,copy=1".to_string(),
    ];
    let eal = match Eal::init(&EalArgs::test("perf-fwd", 512)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("rvs-perf: EAL: {e}");
            return 1;
        }
    };
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
        let tp = match testpmd::run("io", &tp_vdevs, core, warmup, seconds) {
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
