//! The baseline: `dpdk-testpmd` on the same kind of virtual devices, run as
//! a child process by the same command, its periodic throughput parsed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One testpmd measurement.
#[derive(Debug, Clone)]
pub struct TestpmdRun {
    /// Forwarding mode (`io`, `5tswap`, `macswap`, ...).
    pub mode: String,
    /// Packets per second forwarded, all ports summed, per sample period.
    pub samples: Vec<f64>,
    /// On-CPU seconds of testpmd's forwarding thread per wall-clock second
    /// over the kept periods (None when it could not be read).
    pub cpu_share: Option<f64>,
}

/// Parses testpmd's periodic statistics: each period prints one block per
/// port with `Rx-pps:`; the ports of one period are summed. Returns one
/// figure per complete period.
pub fn parse_rx_pps(output: &str, ports: usize) -> Vec<f64> {
    let per_port: Vec<f64> = output
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix("Rx-pps:")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .collect();
    per_port
        .chunks_exact(ports.max(1))
        .map(|c| c.iter().sum())
        .collect()
}

/// Finds the testpmd binary (Debian's `dpdk-testpmd`, or `testpmd`).
pub fn find_testpmd() -> Option<String> {
    for name in ["dpdk-testpmd", "testpmd"] {
        let ok = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return Some(name.to_string());
        }
    }
    None
}

/// Runs testpmd with `--forward-mode=<mode>` on `vdevs` with its forwarding
/// core on `fwd_core`, discards `warmup` periods of one second and keeps
/// `periods` more. `extra` goes after testpmd's own options (e.g.
/// `--tx-first` for looped-back ports, which start empty).
pub fn run(
    mode: &str,
    vdevs: &[String],
    extra: &[&str],
    fwd_core: usize,
    warmup: usize,
    periods: usize,
) -> Result<TestpmdRun, String> {
    let bin = find_testpmd()
        .ok_or("dpdk-testpmd not found (install the `dpdk` package: scripts/setup.sh)")?;
    let prefix = format!(
        "rvsperf-tp-{}-{}-{}",
        std::process::id(),
        mode,
        vdevs
            .first()
            .map_or("", |v| v.split(',').next().unwrap_or(""))
    );
    let mut args: Vec<String> = vec![
        "-oL".into(),
        bin,
        "-l".into(),
        format!("0,{fwd_core}"),
        "--no-huge".into(),
        "-m".into(),
        "512".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "--file-prefix".into(),
        prefix.clone(),
    ];
    for v in vdevs {
        args.push("--vdev".into());
        args.push(v.clone());
    }
    args.extend(
        [
            "--",
            &format!("--forward-mode={mode}"),
            "--total-num-mbufs",
            "16384",
            "--stats-period",
            "1",
            "--burst",
            "32",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    // stdbuf: testpmd's stdout is a pipe here; make it line-buffered so the
    // periodic statistics arrive as they are printed.
    let mut child = Command::new("stdbuf")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting testpmd: {e}"))?;
    let stdout = child.stdout.take().ok_or("testpmd has no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut text = String::new();
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs((warmup + periods) as u64 + 30);
    let want = warmup + periods;
    let pid = child.id();
    let mut cpu_at: Option<(Instant, u64)> = None;
    let mut cpu_share = None;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => text.push_str(&line),
            Err(_) => break,
        }
        let got = parse_rx_pps(&text, vdevs.len()).len();
        if got == warmup && cpu_at.is_none() {
            cpu_at = crate::stats::thread_cpu_ns(Some(pid), "worker").map(|c| (Instant::now(), c));
        }
        if got >= want || Instant::now() > deadline {
            if let (Some((t0, c0)), Some(c1)) =
                (cpu_at, crate::stats::thread_cpu_ns(Some(pid), "worker"))
            {
                let wall = t0.elapsed().as_secs_f64();
                if wall > 0.0 {
                    cpu_share = Some((c1.saturating_sub(c0)) as f64 / 1e9 / wall);
                }
            }
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let all = parse_rx_pps(&text, vdevs.len());
    if all.len() < want {
        return Err(format!(
            "testpmd printed {} periods of statistics, wanted {want}",
            all.len()
        ));
    }
    Ok(TestpmdRun {
        mode: mode.into(),
        samples: all[warmup..want].to_vec(),
        cpu_share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_periodic_blocks() {
        let out = "  Throughput (since last show)\n  Rx-pps:     22503951          Rx-bps:            0\n  Tx-pps:     22503951          Tx-bps:            0\n\n  Rx-pps:     22503977          Rx-bps:            0\n  Tx-pps: 1\n  Rx-pps: 10\n  Rx-pps: 20\n  Rx-pps: 5\n";
        assert_eq!(parse_rx_pps(out, 2), vec![45007928.0, 30.0]);
        assert_eq!(parse_rx_pps(out, 1).len(), 5);
    }
}
