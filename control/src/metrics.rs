//! Prometheus text exposition (format 0.0.4), hand-written: the format is
//! a few lines of printing and a client crate would add a registry we do
//! not need (the daemon already holds every number in a snapshot).
//!
//! The IPVS families carry the names, help texts and labels of
//! node_exporter's IPVS collector, so dashboards and alerts written for
//! `node_ipvs_*` work unchanged; rvs's own families start with `rvs_`.

use crate::model::{Model, ServiceKey, Stats};
use std::fmt::Write;
use std::net::SocketAddr;

/// Content-Type of the exposition, for the HTTP response.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One real server's gauges (node_exporter's backend metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The virtual service.
    pub service: ServiceKey,
    /// The real server.
    pub real: SocketAddr,
    /// Active connections.
    pub active: u64,
    /// Inactive connections.
    pub inactive: u64,
    /// Weight.
    pub weight: u64,
}

/// Per-port, per-worker NIC counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortCounters {
    /// Port name from the config.
    pub port: String,
    /// Worker index.
    pub worker: u32,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// Packets dropped for one reason on one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounter {
    /// Drop counter name (e.g. "bad_ipv4_header", "no_service").
    pub reason: String,
    /// Worker index.
    pub worker: u32,
    /// Packets dropped.
    pub packets: u64,
}

/// Packets handed from one worker to the flow's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// Worker that received the packet.
    pub from: u32,
    /// Worker that owns the flow.
    pub to: u32,
    /// Packets handed over.
    pub packets: u64,
}

/// One worker's connection table occupancy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnTable {
    /// Worker index.
    pub worker: u32,
    /// Entries in use.
    pub entries: u64,
    /// Capacity.
    pub capacity: u64,
}

/// One worker's polling loop: iterations, those that found work, and the
/// adaptive idle policy's sleeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerLoops {
    /// Worker index.
    pub worker: u32,
    /// Polling iterations.
    pub loops: u64,
    /// Iterations that found a packet or a command.
    pub busy_loops: u64,
    /// Back-off sleeps (`[dataplane] idle = "adaptive"`).
    pub idle_sleeps: u64,
    /// Time asleep in them, in nanoseconds.
    pub idle_sleep_ns: u64,
}

/// One worker's table of one address family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyTable {
    /// Worker index.
    pub worker: u32,
    /// "ipv4" or "ipv6".
    pub family: &'static str,
    /// Entries in use.
    pub entries: u64,
    /// Capacity (`dataplane.conn_table_size` / `conn_table_size_v6`).
    pub capacity: u64,
}

/// TUN packets too big for the path once encapsulated, on one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunTooBig {
    /// Tunnel type: "ipip", "gue" or "gre".
    pub tun_type: &'static str,
    /// "icmp_sent" (frag-needed / packet-too-big sent) or "dropped".
    pub action: &'static str,
    /// Worker index.
    pub worker: u32,
    /// Packets.
    pub packets: u64,
}

/// Everything one scrape shows; the daemon fills it from the model and the
/// workers' counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Totals over all services (node_ipvs_*_total).
    pub totals: Stats,
    /// Real-server gauges.
    pub backends: Vec<Backend>,
    /// NIC counters.
    pub ports: Vec<PortCounters>,
    /// Drop counters.
    pub drops: Vec<DropCounter>,
    /// Handoff counters.
    pub handoffs: Vec<Handoff>,
    /// Connection tables.
    pub conn_tables: Vec<ConnTable>,
    /// Connection tables by address family.
    pub family_tables: Vec<FamilyTable>,
    /// Things (events, relays, snapshots) lost because a ring was full,
    /// by kind (`reason`) and worker.
    pub losses: Vec<DropCounter>,
    /// Packets forwarded without a connection entry, by why (`reason`:
    /// `table_full`, `ops`, `nat_reply`) and worker.
    pub stateless: Vec<DropCounter>,
    /// Packets forwarded by the established fast path, by worker
    /// (`reason` unused).
    pub fast_path: Vec<DropCounter>,
    /// TCP segments of sequence-adjusted connections (`reason`:
    /// `adjusted`, `bad_options`) by worker.
    pub seq_adjust: Vec<DropCounter>,
    /// SYN proxy (issue 14 item 4): cookies sent/valid/invalid/expired,
    /// RS SYN retries, held-packet drops, handshake RSTs, ... by worker.
    pub synproxy: Vec<DropCounter>,
    /// TOA (client address as TCP option 254) by what happened
    /// (`reason`: `added`, `no_room`, `mss_clamped`, `evicted`) and worker.
    pub toa: Vec<DropCounter>,
    /// Proxy Protocol counters by what and worker.
    pub proxy_protocol: Vec<DropCounter>,
    /// TUN packets too big once encapsulated, by tunnel type, action and
    /// worker.
    pub tun_too_big: Vec<TunTooBig>,
    /// Connections LVS sync did not send, by why (`reason`:
    /// `mixed_family`: a TUN real server of the other family) and worker.
    pub sync_skipped: Vec<DropCounter>,
    /// Each worker's polling loop and idle sleeps.
    pub worker_loops: Vec<WorkerLoops>,
}

impl MetricsSnapshot {
    /// Totals and backend gauges from the model's services and real servers
    /// (sorted as `ipvsadm -L` lists them); runtime counters stay empty.
    pub fn from_model(model: &Model) -> MetricsSnapshot {
        let mut m = MetricsSnapshot::default();
        for s in model.sorted() {
            m.totals.add(&s.stats);
            for r in &s.reals {
                m.backends.push(Backend {
                    service: s.key,
                    real: r.addr,
                    active: u64::from(r.active_conns),
                    inactive: u64::from(r.inact_conns),
                    weight: u64::from(r.weight),
                });
            }
        }
        m
    }
}

/// Escapes a label value: backslash, double quote, newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, String)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

fn backend_labels(b: &Backend) -> Vec<(&'static str, String)> {
    if b.service.is_fwmark() {
        // node_exporter reads /proc/net/ip_vs, where a fwmark service is
        // "FWM  %08X": no local address (""), port 0, proto "FWM" and the
        // mark as the kernel prints it (procfs keeps the hex text)
        return vec![
            ("local_address", String::new()),
            ("local_port", "0".into()),
            ("remote_address", b.real.ip().to_string()),
            ("remote_port", b.real.port().to_string()),
            ("proto", "FWM".into()),
            ("local_mark", format!("{:08X}", b.service.fwmark)),
        ];
    }
    vec![
        ("local_address", b.service.addr.ip().to_string()),
        ("local_port", b.service.addr.port().to_string()),
        ("remote_address", b.real.ip().to_string()),
        ("remote_port", b.real.port().to_string()),
        ("proto", b.service.proto.upper().to_string()),
        ("local_mark", String::new()),
    ]
}

/// Renders the snapshot as Prometheus text format 0.0.4.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let t = &m.totals;
    for (name, help, v) in [
        (
            "node_ipvs_connections_total",
            "The total number of connections made.",
            t.conns,
        ),
        (
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
            t.inpkts,
        ),
        (
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
            t.outpkts,
        ),
        (
            "node_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
            t.inbytes,
        ),
        (
            "node_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
            t.outbytes,
        ),
    ] {
        family(&mut out, name, "counter", help);
        sample(&mut out, name, &[], v);
    }
    type Pick = fn(&Backend) -> u64;
    let gauges: [(&str, &str, Pick); 3] = [
        (
            "node_ipvs_backend_connections_active",
            "The current active connections by local and remote address.",
            |b| b.active,
        ),
        (
            "node_ipvs_backend_connections_inactive",
            "The current inactive connections by local and remote address.",
            |b| b.inactive,
        ),
        (
            "node_ipvs_backend_weight",
            "The current backend weight by local and remote address.",
            |b| b.weight,
        ),
    ];
    for (name, help, pick) in gauges {
        family(&mut out, name, "gauge", help);
        for b in &m.backends {
            sample(&mut out, name, &backend_labels(b), pick(b));
        }
    }

    type PortPick = fn(&PortCounters) -> u64;
    let ports: [(&str, &str, PortPick); 4] = [
        (
            "rvs_port_rx_packets_total",
            "Packets received on a port by a worker.",
            |p| p.rx_packets,
        ),
        (
            "rvs_port_tx_packets_total",
            "Packets sent on a port by a worker.",
            |p| p.tx_packets,
        ),
        (
            "rvs_port_rx_bytes_total",
            "Bytes received on a port by a worker.",
            |p| p.rx_bytes,
        ),
        (
            "rvs_port_tx_bytes_total",
            "Bytes sent on a port by a worker.",
            |p| p.tx_bytes,
        ),
    ];
    for (name, help, pick) in ports {
        family(&mut out, name, "counter", help);
        for p in &m.ports {
            sample(
                &mut out,
                name,
                &[("port", p.port.clone()), ("worker", p.worker.to_string())],
                pick(p),
            );
        }
    }

    family(
        &mut out,
        "rvs_drops_total",
        "counter",
        "Packets dropped, by reason and worker.",
    );
    for d in &m.drops {
        sample(
            &mut out,
            "rvs_drops_total",
            &[
                ("reason", d.reason.clone()),
                ("worker", d.worker.to_string()),
            ],
            d.packets,
        );
    }
    family(
        &mut out,
        "rvs_handoff_packets_total",
        "counter",
        "Packets handed from the receiving worker to the worker owning the flow.",
    );
    for h in &m.handoffs {
        sample(
            &mut out,
            "rvs_handoff_packets_total",
            &[("from", h.from.to_string()), ("to", h.to.to_string())],
            h.packets,
        );
    }
    type TablePick = fn(&ConnTable) -> u64;
    let tables: [(&str, &str, TablePick); 2] = [
        (
            "rvs_conn_table_entries",
            "Connections in a worker's table.",
            |c| c.entries,
        ),
        (
            "rvs_conn_table_capacity",
            "Capacity of a worker's connection table.",
            |c| c.capacity,
        ),
    ];
    for (name, help, pick) in tables {
        family(&mut out, name, "gauge", help);
        for c in &m.conn_tables {
            sample(&mut out, name, &[("worker", c.worker.to_string())], pick(c));
        }
    }
    type FamilyPick = fn(&FamilyTable) -> u64;
    let by_family: [(&str, &str, FamilyPick); 2] = [
        (
            "rvs_conn_table_family_entries",
            "Connections in a worker's table of one address family.",
            |c| c.entries,
        ),
        (
            "rvs_conn_table_family_capacity",
            "Capacity of a worker's connection table of one address family.",
            |c| c.capacity,
        ),
    ];
    for (name, help, pick) in by_family {
        if m.family_tables.is_empty() {
            continue;
        }
        family(&mut out, name, "gauge", help);
        for c in &m.family_tables {
            sample(
                &mut out,
                name,
                &[
                    ("worker", c.worker.to_string()),
                    ("family", c.family.into()),
                ],
                pick(c),
            );
        }
    }
    if !m.fast_path.is_empty() {
        family(
            &mut out,
            "rvs_fast_path_packets_total",
            "counter",
            "Packets of established flows forwarded by the fast path (no full parse, route or neighbour lookup); the other received packets took the general path.",
        );
        for d in &m.fast_path {
            sample(
                &mut out,
                "rvs_fast_path_packets_total",
                &[("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    if !m.stateless.is_empty() {
        family(
            &mut out,
            "rvs_stateless_packets_total",
            "counter",
            "Packets forwarded without a connection entry: table_full (the table had no room; the service's Maglev table picks), ops (one-packet scheduling), nat_reply (NAT replies reverse-translated statelessly).",
        );
        for d in &m.stateless {
            sample(
                &mut out,
                "rvs_stateless_packets_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    if !m.seq_adjust.is_empty() {
        family(
            &mut out,
            "rvs_seq_adjust_packets_total",
            "counter",
            "TCP segments of connections carrying a sequence delta: adjusted (seq/ack/SACK rewritten), bad_options (option list malformed: seq/ack adjusted, SACK not).",
        );
        for d in &m.seq_adjust {
            sample(
                &mut out,
                "rvs_seq_adjust_packets_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    // SYN proxy (issue 14 item 4)
    if !m.synproxy.is_empty() {
        family(
            &mut out,
            "rvs_synproxy_total",
            "counter",
            "SYN proxy: cookies_sent, cookies_valid, cookies_invalid, cookies_expired, rs_syn_retries, held_drops (client segments dropped while the real server's SYN-ACK was awaited), handshake_rsts, no_conn_drops (RST/FIN without a connection), spliced, table_full, given_up.",
        );
        for d in &m.synproxy {
            sample(
                &mut out,
                "rvs_synproxy_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    // TOA (client address as TCP option 254).
    if !m.toa.is_empty() {
        family(
            &mut out,
            "rvs_toa_packets_total",
            "counter",
            "TOA (client address as TCP option 254): added (segments that got the option), no_room (should have, their options left no room), mss_clamped (SYN/SYN-ACK MSS lowered by the option length), evicted (connections whose TOA-phase cache entry a newer one took).",
        );
        for d in &m.toa {
            sample(
                &mut out,
                "rvs_toa_packets_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    if !m.proxy_protocol.is_empty() {
        family(
            &mut out,
            "rvs_proxy_protocol_total",
            "counter",
            "Proxy Protocol on FullNAT TCP services: inserted_v1/inserted_v2 (headers written into a client's first segment, retransmissions included), mss_clamped (real servers' SYN-ACKs), side_full (new connections refused: no room for their sequence delta), no_room/bad_checksum/malformed/mismatch (first segments dropped).",
        );
        for d in &m.proxy_protocol {
            sample(
                &mut out,
                "rvs_proxy_protocol_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    if !m.tun_too_big.is_empty() {
        family(
            &mut out,
            "rvs_tunnel_too_big_total",
            "counter",
            "TUN packets too big for the output MTU once encapsulated, by tunnel type (ipip, gue, gre) and action: icmp_sent (frag-needed / packet-too-big sent to the client with the MTU less the tunnel overhead), dropped (IPv4 without DF, ICMP errors, IPv6 at the minimum MTU).",
        );
        for d in &m.tun_too_big {
            sample(
                &mut out,
                "rvs_tunnel_too_big_total",
                &[
                    ("type", d.tun_type.into()),
                    ("action", d.action.into()),
                    ("worker", d.worker.to_string()),
                ],
                d.packets,
            );
        }
    }
    if !m.sync_skipped.is_empty() {
        family(
            &mut out,
            "rvs_sync_skipped_total",
            "counter",
            "Connection sync messages not sent to the backup, by why: mixed_family (a TUN real server of the other address family; LVS sync v1 carries one family per connection).",
        );
        for d in &m.sync_skipped {
            sample(
                &mut out,
                "rvs_sync_skipped_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    if !m.worker_loops.is_empty() {
        type LoopPick = fn(&WorkerLoops) -> u64;
        let loops: [(&str, &str, LoopPick); 3] = [
            (
                "rvs_worker_loops_total",
                "Polling iterations of a worker.",
                |w| w.loops,
            ),
            (
                "rvs_worker_busy_loops_total",
                "Polling iterations of a worker that found a packet (RX, TAP or handoff queue) or a control command.",
                |w| w.busy_loops,
            ),
            (
                "rvs_worker_idle_sleeps_total",
                "Back-off sleeps of a worker with nothing to do (dataplane.idle = \"adaptive\").",
                |w| w.idle_sleeps,
            ),
        ];
        for (name, help, pick) in loops {
            family(&mut out, name, "counter", help);
            for w in &m.worker_loops {
                sample(&mut out, name, &[("worker", w.worker.to_string())], pick(w));
            }
        }
        family(
            &mut out,
            "rvs_worker_idle_seconds_total",
            "counter",
            "Time a worker spent in back-off sleeps (measured).",
        );
        for w in &m.worker_loops {
            let _ = writeln!(
                out,
                "rvs_worker_idle_seconds_total{{worker=\"{}\"}} {}.{:09}",
                w.worker,
                w.idle_sleep_ns / 1_000_000_000,
                w.idle_sleep_ns % 1_000_000_000
            );
        }
    }
    if !m.losses.is_empty() {
        family(
            &mut out,
            "rvs_lost_total",
            "counter",
            "Events, relays and snapshots lost because a ring was full, by kind and worker.",
        );
        for d in &m.losses {
            sample(
                &mut out,
                "rvs_lost_total",
                &[("what", d.reason.clone()), ("worker", d.worker.to_string())],
                d.packets,
            );
        }
    }
    out
}

#[cfg(test)]
mod tests;
