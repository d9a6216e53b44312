//! rvs's commands on DPDK's telemetry socket (`dpdk-telemetry.py`, next to
//! `/ethdev/stats`): what they answer, built from the model and the
//! counters on the control thread and published as immutable replies
//! ([`dataplane::dpdk::telemetry`]); DPDK's telemetry thread serves the last
//! ones. Refreshed every [`super::est::INTERVAL`] and after each change.
//!
//! | command | reply |
//! |---|---|
//! | `/rvs/info` | `{"version", "role", "workers", "ports", "services", "reals", "conns"}` |
//! | `/rvs/services` | `["tcp:198.18.0.100:80", ...]` |
//! | `/rvs/service,tcp:198.18.0.100:80` | `{"scheduler", "persistent", "conns", "inpkts", "outpkts", "inbytes", "outbytes", "cps", "inpps", "outpps", "inbps", "outbps", "reals": [rip:port...], "forward": [...], "weight": [...], "activeconns": [...], "inactconns": [...], "persistconns": [...], "real_conns": [...], "real_inpkts": [...], "real_outpkts": [...], "real_inbytes": [...], "real_outbytes": [...]}` |
//! | `/rvs/workers` | `{"rx_packets": [per worker...], "tx_packets", "rx_bytes", "tx_bytes", "conns", "conn_capacity", "handoff_out", "handoff_in", "drops"}` |
//! | `/rvs/drops` | `{"<reason>": packets summed over workers, ...}` |
//!
//! DPDK 22.11 nests only arrays in a reply, so per-real-server and
//! per-worker values are arrays indexed like `reals` / the worker number,
//! as `/ethdev/stats` does with its per-queue `q_ipackets`. Services are
//! named `proto:address:port` (`tcp:[2001:db8::1]:80` for IPv6), the
//! parameter `/rvs/service` takes.

use super::dataplane::{DataplaneStats, Role};
use crate::model::{Model, Service, ServiceKey};
use dataplane::dpdk::telemetry::{self as tel, Replies, Reply, Scalar, Value};
use std::collections::BTreeMap;

/// The commands rvsd registers, with their `/help` text (DPDK keeps 63
/// bytes of it).
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/rvs/info",
        "Returns rvs version, role and counts. No parameters",
    ),
    (
        "/rvs/services",
        "Returns rvs services with counters. No parameters",
    ),
    (
        "/rvs/service",
        "Returns one rvs service and its reals. Param: proto:vip:port",
    ),
    (
        "/rvs/workers",
        "Returns rvs per-worker counters. No parameters",
    ),
    ("/rvs/drops", "Returns rvs drops by reason. No parameters"),
];

/// Registers [`COMMANDS`] with DPDK's telemetry (after EAL started).
pub fn register() -> Result<(), String> {
    for (cmd, help) in COMMANDS {
        tel::register(cmd, help).map_err(|e| format!("telemetry {cmd}: {e}"))?;
    }
    Ok(())
}

/// The name of a service in replies and in `/rvs/service`'s parameter.
/// Fwmark services are `fwmark:N` and `fwmark:N:ipv6`.
pub fn service_name(k: &ServiceKey) -> String {
    if k.is_fwmark() {
        let fam = if k.addr.is_ipv6() { ":ipv6" } else { "" };
        return format!("fwmark:{}{fam}", k.fwmark);
    }
    format!("{}:{}", k.proto.lower(), k.addr)
}

fn one(reply: Reply) -> Replies {
    let mut r = Replies::new();
    r.insert(String::new(), reply);
    r
}

fn service_fields(s: &Service) -> Vec<(String, Value)> {
    let st = &s.stats;
    let rt = &s.rates;
    let mut d: Vec<(String, Value)> = vec![
        ("scheduler".into(), s.scheduler.name().into()),
        ("persistent".into(), s.persistent.unwrap_or(0).into()),
        ("conns".into(), st.conns.into()),
        ("inpkts".into(), st.inpkts.into()),
        ("outpkts".into(), st.outpkts.into()),
        ("inbytes".into(), st.inbytes.into()),
        ("outbytes".into(), st.outbytes.into()),
        ("cps".into(), rt.cps.into()),
        ("inpps".into(), rt.inpps.into()),
        ("outpps".into(), rt.outpps.into()),
        ("inbps".into(), rt.inbps.into()),
        ("outbps".into(), rt.outbps.into()),
    ];
    let col = |f: &dyn Fn(&crate::model::RealServer) -> Scalar| -> Value {
        Value::Array(s.reals.iter().map(f).collect())
    };
    d.push(("reals".into(), col(&|r| r.addr.to_string().into())));
    d.push(("forward".into(), col(&|r| r.forward.column().into())));
    d.push(("weight".into(), col(&|r| r.weight.into())));
    d.push(("activeconns".into(), col(&|r| r.active_conns.into())));
    d.push(("inactconns".into(), col(&|r| r.inact_conns.into())));
    d.push(("persistconns".into(), col(&|r| r.persist_conns.into())));
    d.push(("real_conns".into(), col(&|r| r.stats.conns.into())));
    d.push(("real_inpkts".into(), col(&|r| r.stats.inpkts.into())));
    d.push(("real_outpkts".into(), col(&|r| r.stats.outpkts.into())));
    d.push(("real_inbytes".into(), col(&|r| r.stats.inbytes.into())));
    d.push(("real_outbytes".into(), col(&|r| r.stats.outbytes.into())));
    d
}

/// Every reply, keyed by command, for the model `view` (with counters and
/// rates filled in) and the raw counters `st`.
pub fn replies(
    view: &Model,
    st: &DataplaneStats,
    role: Role,
    workers: usize,
) -> Vec<(&'static str, Replies)> {
    let mut out = Vec::new();

    let conns: u64 = st.conn_tables.iter().map(|t| t.entries).sum();
    let reals: usize = view.services.iter().map(|s| s.reals.len()).sum();
    let mut ports: Vec<&str> = st.ports.iter().map(|p| p.port.as_str()).collect();
    ports.sort_unstable();
    ports.dedup();
    out.push((
        "/rvs/info",
        one(Reply::Dict(vec![
            ("version".into(), env!("CARGO_PKG_VERSION").into()),
            ("role".into(), role.to_string().into()),
            ("workers".into(), (workers as u64).into()),
            ("ports".into(), (ports.len() as u64).into()),
            ("services".into(), (view.services.len() as u64).into()),
            ("reals".into(), (reals as u64).into()),
            ("conns".into(), conns.into()),
        ])),
    ));

    out.push((
        "/rvs/services",
        one(Reply::Array(
            view.services
                .iter()
                .map(|s| service_name(&s.key).into())
                .collect(),
        )),
    ));

    let per: Replies = view
        .services
        .iter()
        .map(|s| (service_name(&s.key), Reply::Dict(service_fields(s))))
        .collect();
    out.push(("/rvs/service", per));

    // per worker, indexed by worker number
    let n = st
        .ports
        .iter()
        .map(|p| p.worker)
        .chain(st.conn_tables.iter().map(|t| t.worker))
        .chain(st.drops.iter().map(|d| d.worker))
        .chain(st.handoffs.iter().flat_map(|h| [h.from, h.to]))
        .map(|w| w as usize + 1)
        .max()
        .unwrap_or(0)
        .max(workers);
    let mut cols: Vec<(&str, Vec<u64>)> = [
        "rx_packets",
        "tx_packets",
        "rx_bytes",
        "tx_bytes",
        "conns",
        "conn_capacity",
        "handoff_out",
        "handoff_in",
        "drops",
        "fast_path",
        "loops",
        "busy_loops",
        "idle_sleeps",
        "idle_sleep_ns",
    ]
    .iter()
    .map(|k| (*k, vec![0u64; n]))
    .collect();
    let mut add = |col: usize, w: u32, v: u64| {
        if let Some(x) = cols[col].1.get_mut(w as usize) {
            *x = x.saturating_add(v);
        }
    };
    for p in &st.ports {
        add(0, p.worker, p.rx_packets);
        add(1, p.worker, p.tx_packets);
        add(2, p.worker, p.rx_bytes);
        add(3, p.worker, p.tx_bytes);
    }
    for t in &st.conn_tables {
        add(4, t.worker, t.entries);
        add(5, t.worker, t.capacity);
    }
    for h in &st.handoffs {
        add(6, h.from, h.packets);
        add(7, h.to, h.packets);
    }
    for f in &st.fast_path {
        add(9, f.worker, f.packets);
    }
    for l in &st.worker_loops {
        add(10, l.worker, l.loops);
        add(11, l.worker, l.busy_loops);
        add(12, l.worker, l.idle_sleeps);
        add(13, l.worker, l.idle_sleep_ns);
    }
    let mut drops: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &st.drops {
        add(8, d.worker, d.packets);
        *drops.entry(d.reason.as_str()).or_default() += d.packets;
    }
    out.push((
        "/rvs/workers",
        one(Reply::Dict(
            cols.drain(..)
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value::Array(v.into_iter().map(Scalar::U64).collect()),
                    )
                })
                .collect(),
        )),
    ));

    out.push((
        "/rvs/drops",
        one(Reply::Dict(
            drops
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect(),
        )),
    ));
    out
}

/// Publishes [`replies`] for DPDK's telemetry thread to serve.
pub fn publish(view: &Model, st: &DataplaneStats, role: Role, workers: usize) {
    for (cmd, r) in replies(view, st, role, workers) {
        tel::publish(cmd, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::DropCounter;

    #[test]
    fn replies_name_services_and_sum_drops() {
        let cfg = crate::config::parse(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/nat.toml"))
                .unwrap(),
            "nat.toml",
        )
        .unwrap();
        let model = cfg.to_model();
        let st = DataplaneStats {
            drops: vec![
                DropCounter {
                    reason: "not_ours".into(),
                    worker: 0,
                    packets: 3,
                },
                DropCounter {
                    reason: "not_ours".into(),
                    worker: 1,
                    packets: 4,
                },
            ],
            fast_path: vec![DropCounter {
                reason: "fast".into(),
                worker: 1,
                packets: 9,
            }],
            worker_loops: vec![crate::metrics::WorkerLoops {
                worker: 0,
                loops: 100,
                busy_loops: 40,
                idle_sleeps: 5,
                idle_sleep_ns: 6000,
            }],
            ..Default::default()
        };
        let r: BTreeMap<_, _> = replies(&model, &st, Role::Standalone, 2)
            .into_iter()
            .collect();
        let Reply::Dict(drops) = &r["/rvs/drops"][""] else {
            panic!()
        };
        assert_eq!(
            drops,
            &vec![("not_ours".to_string(), Value::Scalar(Scalar::U64(7)))]
        );
        assert_eq!(
            r["/rvs/services"][""],
            Reply::Array(vec![
                Scalar::Str("tcp:198.18.0.100:80".into()),
                Scalar::Str("tcp:[2001:db8::100]:80".into())
            ])
        );
        let Reply::Dict(one) = &r["/rvs/service"]["tcp:198.18.0.100:80"] else {
            panic!()
        };
        let field = |k: &str| one.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(
            field("reals"),
            Some(Value::Array(vec![
                Scalar::Str("198.19.0.2:8080".into()),
                Scalar::Str("198.19.0.3:8080".into())
            ]))
        );
        assert_eq!(
            field("weight"),
            Some(Value::Array(vec![Scalar::U64(2), Scalar::U64(1)]))
        );
        let Reply::Dict(ws) = &r["/rvs/workers"][""] else {
            panic!()
        };
        assert_eq!(
            ws[0],
            (
                "rx_packets".to_string(),
                Value::Array(vec![Scalar::U64(0), Scalar::U64(0)])
            )
        );
        let drops_per_worker = ws.iter().find(|(k, _)| k == "drops").unwrap();
        assert_eq!(
            drops_per_worker.1,
            Value::Array(vec![Scalar::U64(3), Scalar::U64(4)])
        );
        let col = |k: &str| ws.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let u = |a: u64, b: u64| Some(Value::Array(vec![Scalar::U64(a), Scalar::U64(b)]));
        assert_eq!(col("fast_path"), u(0, 9));
        assert_eq!(col("loops"), u(100, 0));
        assert_eq!(col("busy_loops"), u(40, 0));
        assert_eq!(col("idle_sleeps"), u(5, 0));
        assert_eq!(col("idle_sleep_ns"), u(6000, 0));
    }

    #[test]
    fn fwmark_services_have_their_own_names() {
        let cfg = crate::config::parse(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../configs/fwmark.toml"
            ))
            .unwrap(),
            "fwmark.toml",
        )
        .unwrap();
        let r: BTreeMap<_, _> = replies(
            &cfg.to_model(),
            &DataplaneStats::default(),
            Role::Standalone,
            2,
        )
        .into_iter()
        .collect();
        assert_eq!(
            r["/rvs/services"][""],
            Reply::Array(vec![
                Scalar::Str("fwmark:1".into()),
                Scalar::Str("fwmark:2:ipv6".into())
            ])
        );
        assert!(matches!(r["/rvs/service"]["fwmark:2:ipv6"], Reply::Dict(_)));
    }
}
