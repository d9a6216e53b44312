//! Reports of `rvs-perf flows`: a text/Markdown table, JSON, and an SVG
//! plot of throughput against concurrent flows. Written by hand (no
//! serialisation crates needed for this much).

use crate::flows::{flows_label, Kind, PointResult, Size};
use crate::pkt::Fam;
use crate::topo;
use dataplane::conn::FwdMode;
use std::fmt::Write as _;

/// The baseline figures (packets per second, 0 when not measured).
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    /// testpmd io.
    pub io: f64,
    /// testpmd 5tswap.
    pub swap: f64,
    /// On-CPU share of testpmd's forwarding thread in the io run.
    pub io_share: Option<f64>,
    /// The same in the 5tswap run.
    pub swap_share: Option<f64>,
    /// testpmd 5tswap on two looped-back net_ring ports (`--tx-first`).
    pub swap_ring: f64,
    /// On-CPU share of its forwarding thread.
    pub swap_ring_share: Option<f64>,
}

impl Baseline {
    /// io packets per on-CPU second (wall figure when the share is unknown).
    pub fn io_cpu(&self) -> f64 {
        per_cpu(self.io, self.io_share)
    }
    /// 5tswap packets per on-CPU second.
    pub fn swap_cpu(&self) -> f64 {
        per_cpu(self.swap, self.swap_share)
    }
    /// 5tswap on looped-back rings, packets per on-CPU second.
    pub fn swap_ring_cpu(&self) -> f64 {
        per_cpu(self.swap_ring, self.swap_ring_share)
    }
}

fn per_cpu(v: f64, share: Option<f64>) -> f64 {
    match share {
        Some(s) if s > 0.05 => v / s.min(1.0),
        _ => v,
    }
}

/// One target and whether it was met.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is asked.
    pub name: String,
    /// What was measured.
    pub value: String,
    /// Met, not met, or not measured (None).
    pub met: Option<bool>,
}

fn ratio(v: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| v / b)
}

/// The capacity ratio of `r` to baseline `b`, or none when the
/// measurement is implausible (starved worker, too few loops, idle-poll
/// cost not sane; see [`crate::flows::plausibility`]).
fn point_ratio(r: &PointResult, b: f64) -> Option<f64> {
    r.implausible
        .is_none()
        .then(|| ratio(r.capacity_pps, b))
        .flatten()
}

fn is_ref(r: &PointResult, kind: Kind) -> bool {
    r.point.kind == kind
        && r.point.mode == FwdMode::Nat
        && r.point.fam == Fam::V4
        && r.point.size == Size::B64
        && matches!(r.point.pop, crate::flows::Pop::Uniform)
}

/// Bytes per connection: RSS growth over the table's capacity.
pub fn bytes_per_conn(r: &PointResult) -> f64 {
    if r.conn_capacity == 0 {
        0.0
    } else {
        r.rss_delta as f64 / r.conn_capacity as f64
    }
}

/// Evaluates the issue's targets on the reference profile (NAT, IPv4,
/// 64 B, uniform).
pub fn targets(res: &[PointResult], base: Baseline) -> Vec<Target> {
    let mut t = Vec::new();
    let est = |n: u32| {
        res.iter()
            .find(|r| is_ref(r, Kind::Established) && r.point.flows == n)
    };
    for (n, want) in [(1_000_000u32, 0.5), (1000, 0.8)] {
        let r = est(n);
        let rt = r.and_then(|r| point_ratio(r, base.swap_cpu()));
        t.push(Target {
            name: format!(
                "established 64 B NAT {} ≥ {want}× testpmd 5tswap",
                flows_label(n)
            ),
            value: match (r, rt) {
                (Some(r), Some(x)) => format!(
                    "capacity {:.2} Mpps ({:.0} cycles/pkt; {:.2} Mpps wall) = {x:.2}×",
                    r.capacity_pps / 1e6,
                    r.busy_cycles_per_pkt,
                    r.pps / 1e6
                ),
                (Some(r), None) => format!("{:.2} Mpps (no baseline)", r.pps / 1e6),
                _ => "not measured".into(),
            },
            met: rt.map(|x| x >= want),
        });
    }
    let nc = res.iter().find(|r| is_ref(r, Kind::NewConn));
    // Every packet of the new-conn profile is a SYN of a fresh flow, so
    // the worker's packet capacity is its connection rate per core.
    t.push(Target {
        name: "new connections ≥ 3 M/s/core".into(),
        value: nc.map_or("not measured".into(), |r| {
            format!(
                "capacity {:.2} M/s ({:.0} cycles/conn{}); {:.2} M/s wall",
                r.capacity_pps / 1e6,
                r.busy_cycles_per_pkt,
                if r.saturated { "" } else { ", upper bound" },
                r.new_conns_per_s.unwrap_or(0.0) / 1e6
            )
        }),
        met: nc.map(|r| r.capacity_pps >= 3e6),
    });
    let lat: Vec<&PointResult> = res
        .iter()
        .filter(|r| is_ref(r, Kind::Established) && r.latency.is_some())
        .collect();
    let worst = lat
        .iter()
        .filter_map(|r| r.latency.as_ref().map(|l| (l.p99_ns, r.point.flows)))
        .fold(None, |m: Option<(f64, u32)>, x| match m {
            Some(m) if m.0 >= x.0 => Some(m),
            _ => Some(x),
        });
    t.push(Target {
        name: "p99 added latency at half peak < 10 µs".into(),
        value: worst.map_or("not measured".into(), |(v, n)| {
            format!("worst p99 {:.1} µs ({} flows)", v / 1e3, flows_label(n))
        }),
        met: worst.map(|(v, _)| v < 10_000.0),
    });
    let big = res
        .iter()
        .filter(|r| is_ref(r, Kind::Established))
        .max_by_key(|r| r.point.flows);
    t.push(Target {
        name: "≤ 64 B per connection".into(),
        value: big.map_or("not measured".into(), |r| {
            format!(
                "{:.1} B (RSS +{:.0} MiB for capacity {})",
                bytes_per_conn(r),
                r.rss_delta as f64 / 1048576.0,
                r.conn_capacity
            )
        }),
        met: big.map(|r| bytes_per_conn(r) <= 64.0),
    });
    let ten = est(10_000_000);
    t.push(Target {
        name: "10M connections in < 1 GiB".into(),
        value: match (ten, big) {
            (Some(r), _) => format!("RSS +{:.0} MiB", r.rss_delta as f64 / 1048576.0),
            (None, Some(r)) => format!(
                "not run; extrapolated {:.0} MiB",
                bytes_per_conn(r) * 1e7 * 1.125 / 1048576.0
            ),
            _ => "not measured".into(),
        },
        met: ten.map(|r| (r.rss_delta as f64) < 1073741824.0),
    });
    let small = est(1000);
    let largest = big.filter(|r| r.point.flows > 1000);
    t.push(Target {
        name: "throughput drop < 2× from 1K to 10M".into(),
        value: match (small, largest) {
            (Some(a), Some(b)) => format!(
                "capacity 1K/{} = {:.2}×",
                flows_label(b.point.flows),
                a.capacity_pps / b.capacity_pps.max(1.0)
            ),
            _ => "not measured".into(),
        },
        met: match (small, largest) {
            (Some(a), Some(b)) if b.point.flows >= 10_000_000 => {
                Some(a.capacity_pps / b.capacity_pps.max(1.0) < 2.0)
            }
            _ => None,
        },
    });
    t
}

fn met_str(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "not measured",
    }
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or("-".into(), f)
}

/// The Markdown table (also printed to stdout).
pub fn markdown(res: &[PointResult], base: Baseline, targets: &[Target], header: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{header}\n");
    let _ = writeln!(
        s,
        "Baseline on the same core: `dpdk-testpmd` io {:.2} Mpps wall / {:.2} Mpps per CPU-s, 5tswap {:.2} Mpps wall / {:.2} Mpps per CPU-s (2 × net_null copy=1, 64 B; CPU share of its forwarding thread {} / {}).\n",
        base.io / 1e6,
        base.io_cpu() / 1e6,
        base.swap / 1e6,
        base.swap_cpu() / 1e6,
        base.io_share.map_or("?".into(), |x| format!("{x:.2}")),
        base.swap_share.map_or("?".into(), |x| format!("{x:.2}")),
    );
    if base.swap_ring > 0.0 {
        let _ = writeln!(
            s,
            "Second baseline, same run: 5tswap on two looped-back `net_ring` ports (no copy, no generator; `--tx-first`) {:.2} Mpps wall / {:.2} Mpps per CPU-s (CPU share {}).\n",
            base.swap_ring / 1e6,
            base.swap_ring_cpu() / 1e6,
            base.swap_ring_share.map_or("?".into(), |x| format!("{x:.2}")),
        );
    }
    let _ = writeln!(
        s,
        "Mpps wall: director RX of the client port per wall-clock second. Mpps/CPU-s: per on-CPU second of the worker thread (schedstat). cycles/pkt: the worker's on-CPU TSC cycles less (polls − packets) × the cost of an empty poll (measured idle before set-up), per packet: an upper bound on its cost. capacity: TSC Hz / cycles/pkt; the ratio to 5tswap uses it against testpmd's packets per on-CPU second. CPU: the worker's and generator's on-CPU share. Saturated: the director's RX ring refused the generator and the worker averaged at least 16 packets per poll (else the worker also spun on empty polls and cycles/packet is an upper bound). pkts/poll: packets per polling iteration (max 64).\n"
    );
    let _ = writeln!(
        s,
        "| profile | Mpps wall | Mpps/CPU-s | cycles/pkt | capacity Mpps | × 5tswap | CPU w/g | pkts/poll | saturated | new conn/s | p50 µs | p99 µs | p99.9 µs | conns / capacity | RSS Δ MiB | B/conn |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in res {
        let l = r.latency.as_ref();
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.2} | {:.0}{} | {:.2} | {} | {:.2}/{:.2} | {:.1} | {} | {} | {} | {} | {} | {} / {} | {:.0} | {:.1} |",
            r.point.label(),
            r.pps / 1e6,
            r.pps_cpu / 1e6,
            r.busy_cycles_per_pkt,
            if r.saturated { "" } else { " (≤)" },
            r.capacity_pps / 1e6,
            fmt_opt(point_ratio(r, base.swap_cpu()), |x| format!("{x:.2}")),
            r.cpu_share,
            r.gen_cpu_share,
            r.pkts_per_loop,
            if r.saturated { "yes" } else { "no" },
            fmt_opt(r.new_conns_per_s, |x| format!("{:.2} M", x / 1e6)),
            fmt_opt(l.map(|l| l.p50_ns), |x| format!("{:.1}", x / 1e3)),
            fmt_opt(l.map(|l| l.p99_ns), |x| format!("{:.1}", x / 1e3)),
            fmt_opt(l.map(|l| l.p999_ns), |x| format!("{:.1}", x / 1e3)),
            r.conn_entries,
            r.conn_capacity,
            r.rss_delta as f64 / 1048576.0,
            bytes_per_conn(r),
        );
    }
    for r in res {
        if let Some(why) = &r.implausible {
            let _ = writeln!(s, "\nNo ratio for {}: {why}.", r.point.label());
        }
    }
    let _ = writeln!(s, "\n| target | measured | |\n|---|---|---|");
    for t in targets {
        let _ = writeln!(s, "| {} | {} | {} |", t.name, t.value, met_str(t.met));
    }
    s
}

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn jf(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "null".into()
    }
}

/// The JSON report.
pub fn json(
    res: &[PointResult],
    base: Baseline,
    targets: &[Target],
    meta: &[(&str, String)],
) -> String {
    let mut s = String::from("{\n");
    for (k, v) in meta {
        let _ = writeln!(s, "  {}: {},", js(k), js(v));
    }
    let _ = writeln!(
        s,
        "  \"baseline\": {{\"testpmd_io_pps\": {}, \"testpmd_5tswap_pps\": {}, \"testpmd_io_cpu_share\": {}, \"testpmd_5tswap_cpu_share\": {}, \"testpmd_io_pps_per_cpu_s\": {}, \"testpmd_5tswap_pps_per_cpu_s\": {}, \"testpmd_5tswap_ring_pps\": {}, \"testpmd_5tswap_ring_pps_per_cpu_s\": {}}},",
        jf(base.io),
        jf(base.swap),
        base.io_share.map_or("null".into(), jf),
        base.swap_share.map_or("null".into(), jf),
        jf(base.io_cpu()),
        jf(base.swap_cpu()),
        jf(base.swap_ring),
        jf(base.swap_ring_cpu())
    );
    s.push_str("  \"points\": [\n");
    for (i, r) in res.iter().enumerate() {
        let p = &r.point;
        let lat = r.latency.as_ref().map_or("null".to_string(), |l| {
            format!(
                "{{\"rate_pps\": {}, \"samples\": {}, \"p50_ns\": {}, \"p99_ns\": {}, \"p999_ns\": {}, \"max_ns\": {}}}",
                jf(l.rate_pps),
                l.samples,
                jf(l.p50_ns),
                jf(l.p99_ns),
                jf(l.p999_ns),
                jf(l.max_ns)
            )
        });
        let _ = write!(
            s,
            "    {{\"label\": {}, \"kind\": {}, \"mode\": {}, \"family\": {}, \"size\": {}, \"popularity\": {}, \"flows\": {}, \
\"pps\": {}, \"out_pps\": {}, \"pps_per_cpu_s\": {}, \"worker_cpu_share\": {}, \"generator_cpu_share\": {}, \"ratio_5tswap\": {}, \"ratio_io\": {}, \"cycles_per_pkt\": {}, \"busy_cycles_per_pkt\": {}, \"capacity_pps\": {}, \"saturated\": {}, \"pkts_per_poll\": {}, \"idle_poll_cycles\": {}, \"refused_per_pkt\": {}, \
\"drops\": {}, \"new_conns_per_s\": {}, \"stateless_fallbacks\": {}, \"conn_entries\": {}, \"conn_capacity\": {}, \
\"established_sampled\": [{}, {}], \"rss_delta_bytes\": {}, \"bytes_per_conn\": {}, \"setup_s\": {}, \"latency\": {}}}",
            js(&p.label()),
            js(match p.kind {
                Kind::Established => "established",
                Kind::NewConn => "new_conn",
                Kind::Mix(_) => "mix",
            }),
            js(topo::mode_name(p.mode)),
            js(p.fam.name()),
            js(match p.size {
                Size::B64 => "64",
                Size::Imix => "imix",
            }),
            js(&match p.pop {
                crate::flows::Pop::Uniform => "uniform".to_string(),
                crate::flows::Pop::Zipf(x) => format!("zipf:{x}"),
            }),
            p.flows,
            jf(r.pps),
            jf(r.out_pps),
            jf(r.pps_cpu),
            jf(r.cpu_share),
            jf(r.gen_cpu_share),
            point_ratio(r, base.swap_cpu()).map_or("null".into(), jf),
            point_ratio(r, base.io_cpu()).map_or("null".into(), jf),
            jf(r.cycles_per_pkt),
            jf(r.busy_cycles_per_pkt),
            jf(r.capacity_pps),
            r.saturated,
            jf(r.pkts_per_loop),
            jf(r.idle_loop_cycles),
            jf(r.refused_per_pkt),
            r.drops,
            r.new_conns_per_s.map_or("null".into(), jf),
            r.stateless_fallbacks,
            r.conn_entries,
            r.conn_capacity,
            r.established_sample.0,
            r.established_sample.1,
            r.rss_delta,
            jf(bytes_per_conn(r)),
            jf(r.setup_secs),
            lat
        );
        s.push_str(if i + 1 < res.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ],\n  \"targets\": [\n");
    for (i, t) in targets.iter().enumerate() {
        let _ = write!(
            s,
            "    {{\"target\": {}, \"measured\": {}, \"met\": {}}}",
            js(&t.name),
            js(&t.value),
            t.met.map_or("null".into(), |m| m.to_string())
        );
        s.push_str(if i + 1 < targets.len() { ",\n" } else { "\n" });
    }
    s.push_str("  ]\n}\n");
    s
}

/// An SVG plot of established-flow throughput (Mpps) against concurrent
/// flows (log scale), one line per profile, baselines dashed.
pub fn svg(res: &[PointResult], base: Baseline) -> String {
    let (w, h) = (760.0f64, 440.0f64);
    let (ml, mr, mt, mb) = (70.0, 220.0, 40.0, 60.0);
    let (pw, ph) = (w - ml - mr, h - mt - mb);
    let est: Vec<&PointResult> = res
        .iter()
        .filter(|r| r.point.kind == Kind::Established && r.point.flows > 0)
        .collect();
    let mut series: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for r in &est {
        let label = r.point.label();
        let key = label.splitn(3, ' ').nth(2).unwrap_or("").to_string();
        let pt = (f64::from(r.point.flows), r.capacity_pps / 1e6);
        match series.iter_mut().find(|s| s.0 == key) {
            Some(s) => s.1.push(pt),
            None => series.push((key, vec![pt])),
        }
    }
    for s in &mut series {
        s.1.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let xs: Vec<f64> = est.iter().map(|r| f64::from(r.point.flows)).collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let hi = xs.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (dlo, dhi) = (lo.log10().floor(), hi.log10().ceil());
    let ymax = est
        .iter()
        .map(|r| r.capacity_pps / 1e6)
        .chain([base.swap_cpu() / 1e6, base.io_cpu() / 1e6])
        .fold(1.0, f64::max)
        * 1.1;
    let ystep = nice_step(ymax / 6.0);
    let ymax = (ymax / ystep).ceil() * ystep;
    let x = |v: f64| ml + (v.log10() - dlo) / (dhi - dlo).max(1e-9) * pw;
    let y = |v: f64| mt + ph - v / ymax * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">rvs worker capacity vs concurrent flows (one core; testpmd per on-CPU second)</text>"#,
        ml + pw / 2.0
    );
    // Grid and ticks.
    let mut d = dlo;
    while d <= dhi + 1e-9 {
        let xv = x(10f64.powf(d));
        let _ = writeln!(
            s,
            r##"<line x1="{xv:.1}" y1="{mt}" x2="{xv:.1}" y2="{:.1}" stroke="#ddd"/><text x="{xv:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            mt + ph,
            mt + ph + 18.0,
            flows_label(10f64.powf(d).round() as u32)
        );
        d += 1.0;
    }
    let mut v = 0.0;
    while v <= ymax + 1e-9 {
        let yv = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" y1="{yv:.1}" x2="{:.1}" y2="{yv:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ml + pw,
            ml - 6.0,
            yv + 4.0,
            trim_num(v)
        );
        v += ystep;
    }
    let _ = writeln!(
        s,
        r#"<line x1="{ml}" y1="{mt}" x2="{ml}" y2="{:.1}" stroke="black"/><line x1="{ml}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        mt + ph,
        mt + ph,
        ml + pw,
        mt + ph
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">concurrent flows (log scale)</text>"#,
        ml + pw / 2.0,
        h - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">Mpps (TSC Hz / busy cycles per packet)</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0
    );
    let colors = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    ];
    let mut ly = mt + 10.0;
    for (name, val, color) in [
        ("testpmd 5tswap", base.swap_cpu(), "#555"),
        ("testpmd io", base.io_cpu(), "#999"),
    ] {
        if val > 0.0 {
            let yv = y(val / 1e6);
            let _ = writeln!(
                s,
                r#"<line x1="{ml}" y1="{yv:.1}" x2="{:.1}" y2="{yv:.1}" stroke="{color}" stroke-dasharray="6 4"/>"#,
                ml + pw
            );
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}">{name} {:.2}</text>"#,
                ml + pw + 10.0,
                ml + pw + 34.0,
                ml + pw + 40.0,
                ly + 4.0,
                val / 1e6
            );
            ly += 18.0;
        }
    }
    for (i, (name, pts)) in series.iter().enumerate() {
        let c = colors[i % colors.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(fx, fy)| format!("{:.1},{:.1}", x(*fx), y(*fy)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            path.join(" ")
        );
        for (fx, fy) in pts {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{fy:.2}</text>"#,
                x(*fx),
                y(*fy),
                x(*fx),
                y(*fy) - 8.0
            );
        }
        let _ = writeln!(
            s,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ml + pw + 10.0,
            ml + pw + 34.0,
            ml + pw + 40.0,
            ly + 4.0,
            xml(name)
        );
        ly += 18.0;
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn nice_step(raw: f64) -> f64 {
    let m = 10f64.powf(raw.max(1e-9).log10().floor());
    for k in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if raw <= k * m {
            return k * m;
        }
    }
    10.0 * m
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_escaping() {
        assert_eq!(nice_step(3.3), 5.0);
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(trim_num(2.50), "2.5");
        assert_eq!(js("a\"b"), "\"a\\\"b\"");
        assert_eq!(xml("a<b"), "a&lt;b");
    }
}
