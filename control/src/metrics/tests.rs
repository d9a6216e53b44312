//! The exposition is checked by a strict validator of text format 0.0.4
//! written from the format's description, independent of the renderer.

use super::*;
use crate::ipvsadm;
use std::collections::{HashMap, HashSet};

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_' || x == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && !s.starts_with("__")
}

fn is_value(s: &str) -> bool {
    matches!(s, "NaN" | "+Inf" | "-Inf") || s.parse::<f64>().is_ok()
}

type Labels = Vec<(String, String)>;

/// Parses `{a="x",b="y"}`; returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("no {")?;
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    c => return Err(format!("bad escape \\{c}")),
                },
                (_, '\n') => return Err("newline in label value".into()),
                (_, c) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or }".into());
        }
    }
}

/// Strict validator: HELP/TYPE at most once per family and before its
/// samples, families contiguous, known types, counters named *_total,
/// valid names, labels, escapes and values, no duplicate series, final
/// newline. Returns the number of samples.
fn validate(text: &str) -> Result<usize, String> {
    if !text.ends_with('\n') {
        return Err("no final newline".into());
    }
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut samples = 0;
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if line.is_empty() {
            return Err(err("empty line".into()));
        }
        let fam_switch = |current: &mut Option<String>,
                          finished: &mut HashSet<String>,
                          name: &str|
         -> Result<(), String> {
            if current.as_deref() != Some(name) {
                if finished.contains(name) {
                    return Err(format!("family {name} is not contiguous"));
                }
                if let Some(c) = current.take() {
                    finished.insert(c);
                }
                *current = Some(name.to_string());
            }
            Ok(())
        };
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("HELP"), Some(name), Some(help)) => {
                    if !is_metric_name(name) {
                        return Err(err("bad name in HELP".into()));
                    }
                    if help.contains('\\') && !help.contains("\\\\") && !help.contains("\\n") {
                        return Err(err("bad escape in HELP".into()));
                    }
                    fam_switch(&mut current, &mut finished, name).map_err(err)?;
                    if !helps.insert(name.to_string()) {
                        return Err(err("second HELP".into()));
                    }
                }
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(err("bad name in TYPE".into()));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(err("unknown type".into()));
                    }
                    fam_switch(&mut current, &mut finished, name).map_err(err)?;
                    if types.insert(name.to_string(), kind.to_string()).is_some() {
                        return Err(err("second TYPE".into()));
                    }
                }
                _ => {} // plain comment
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(err)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut seen = HashSet::new();
        for (k, _) in &labels {
            if !seen.insert(k) {
                return Err(err(format!("label {k} twice")));
            }
        }
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before value".into()))?;
        let mut fields = rest.split(' ');
        let value = fields.next().unwrap_or("");
        if !is_value(value) {
            return Err(err(format!("bad value {value:?}")));
        }
        if let Some(ts) = fields.next() {
            if ts.parse::<i64>().is_err() {
                return Err(err("bad timestamp".into()));
            }
        }
        if fields.next().is_some() {
            return Err(err("trailing fields".into()));
        }
        // TYPE, when given, must come before the family's samples
        if current.as_deref() != Some(name) && types.contains_key(name) {
            return Err(err("samples separated from their TYPE".into()));
        }
        fam_switch(&mut current, &mut finished, name).map_err(err)?;
        match types.get(name).map(String::as_str) {
            Some("counter") if !name.ends_with("_total") => {
                return Err(err("counter not named *_total".into()))
            }
            Some("counter" | "gauge" | "untyped") => {}
            Some(_) => return Err(err("histograms/summaries not expected".into())),
            None => return Err(err("sample without TYPE".into())),
        }
        if value.starts_with('-') && types.get(name).map(String::as_str) == Some("counter") {
            return Err(err("negative counter".into()));
        }
        let mut key: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        key.sort();
        if !series.insert(format!("{name}{{{}}}", key.join(","))) {
            return Err(err("duplicate series".into()));
        }
        samples += 1;
    }
    Ok(samples)
}

fn snapshot() -> MetricsSnapshot {
    let mut model = Model::new();
    ipvsadm::restore(
        &mut model,
        "-A -t 198.18.0.100:80 -s rr\n\
         -a -t 198.18.0.100:80 -r 198.19.0.2:8080 -m -w 3\n\
         -A -u [2001:db8::100]:53 -s rr\n\
         -a -u [2001:db8::100]:53 -r [2001:db8:1::2]:53 -b -w 1\n",
    )
    .unwrap();
    model.services[0].stats.conns = 10;
    model.services[0].stats.inbytes = 12345;
    model.services[1].stats.conns = 5;
    model.services[0].reals[0].active_conns = 4;
    let mut m = MetricsSnapshot::from_model(&model);
    m.ports = vec![PortCounters {
        port: "d0".into(),
        worker: 0,
        rx_packets: 100,
        tx_packets: 90,
        rx_bytes: 6400,
        tx_bytes: 5760,
    }];
    m.drops = vec![
        DropCounter {
            reason: "no_service".into(),
            worker: 0,
            packets: 7,
        },
        DropCounter {
            reason: "odd \"reason\"\\with\nescapes".into(),
            worker: 1,
            packets: 1,
        },
    ];
    m.handoffs = vec![Handoff {
        from: 0,
        to: 1,
        packets: 3,
    }];
    m.conn_tables = vec![ConnTable {
        worker: 0,
        entries: 12,
        capacity: 65536,
    }];
    m
}

#[test]
fn output_is_valid_prometheus_text() {
    let text = render(&snapshot());
    assert_eq!(validate(&text), Ok(5 + 3 * 2 + 4 + 2 + 1 + 2), "{text}");
    // an empty snapshot is valid too
    assert_eq!(validate(&render(&MetricsSnapshot::default())), Ok(5));
}

#[test]
fn validator_rejects_bad_text() {
    for bad in [
        "x 1",                                             // no newline
        "# TYPE x counter\nx 1\n",                         // counter not *_total
        "# TYPE x_total counter\nx_total{a=\"b} 1\n",      // unterminated
        "# TYPE x gauge\nx{a=\"\\q\"} 1\n",                // bad escape
        "# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx 2\n", // not contiguous
        "# TYPE x gauge\nx 1\nx 2\n",                      // duplicate series
        "y 1\n",                                           // no TYPE
        "# TYPE x gauge\nx one\n",                         // bad value
        "# TYPE 1x gauge\n",                               // bad name
    ] {
        assert!(validate(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn golden_ipvs_families_match_node_exporter() {
    let text = render(&snapshot());
    let want_head = "# HELP node_ipvs_connections_total The total number of connections made.
# TYPE node_ipvs_connections_total counter
node_ipvs_connections_total 15
# HELP node_ipvs_incoming_packets_total The total number of incoming packets.
# TYPE node_ipvs_incoming_packets_total counter
node_ipvs_incoming_packets_total 0
# HELP node_ipvs_outgoing_packets_total The total number of outgoing packets.
# TYPE node_ipvs_outgoing_packets_total counter
node_ipvs_outgoing_packets_total 0
# HELP node_ipvs_incoming_bytes_total The total amount of incoming data.
# TYPE node_ipvs_incoming_bytes_total counter
node_ipvs_incoming_bytes_total 12345
# HELP node_ipvs_outgoing_bytes_total The total amount of outgoing data.
# TYPE node_ipvs_outgoing_bytes_total counter
node_ipvs_outgoing_bytes_total 0
# HELP node_ipvs_backend_connections_active The current active connections by local and remote address.
# TYPE node_ipvs_backend_connections_active gauge
node_ipvs_backend_connections_active{local_address=\"198.18.0.100\",local_port=\"80\",remote_address=\"198.19.0.2\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"} 4
node_ipvs_backend_connections_active{local_address=\"2001:db8::100\",local_port=\"53\",remote_address=\"2001:db8:1::2\",remote_port=\"53\",proto=\"UDP\",local_mark=\"\"} 0
";
    assert!(text.starts_with(want_head), "{text}");
    assert!(text.contains(
        "node_ipvs_backend_weight{local_address=\"198.18.0.100\",local_port=\"80\",remote_address=\"198.19.0.2\",remote_port=\"8080\",proto=\"TCP\",local_mark=\"\"} 3\n"
    ));
    for line in [
        "rvs_port_rx_packets_total{port=\"d0\",worker=\"0\"} 100\n",
        "rvs_port_tx_packets_total{port=\"d0\",worker=\"0\"} 90\n",
        "rvs_drops_total{reason=\"no_service\",worker=\"0\"} 7\n",
        "rvs_drops_total{reason=\"odd \\\"reason\\\"\\\\with\\nescapes\",worker=\"1\"} 1\n",
        "rvs_handoff_packets_total{from=\"0\",to=\"1\"} 3\n",
        "rvs_conn_table_entries{worker=\"0\"} 12\n",
        "rvs_conn_table_capacity{worker=\"0\"} 65536\n",
        "# TYPE rvs_conn_table_capacity gauge\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn table_families_and_losses_are_exposed() {
    let mut m = snapshot();
    m.family_tables = vec![
        FamilyTable {
            worker: 0,
            family: "ipv4",
            entries: 12,
            capacity: 65536,
        },
        FamilyTable {
            worker: 0,
            family: "ipv6",
            entries: 0,
            capacity: 262144,
        },
    ];
    m.losses = vec![DropCounter {
        reason: "lost_sync_event".into(),
        worker: 1,
        packets: 4,
    }];
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_conn_table_family_capacity gauge\n",
        "rvs_conn_table_family_entries{worker=\"0\",family=\"ipv4\"} 12\n",
        "rvs_conn_table_family_capacity{worker=\"0\",family=\"ipv4\"} 65536\n",
        "rvs_conn_table_family_capacity{worker=\"0\",family=\"ipv6\"} 262144\n",
        "# TYPE rvs_lost_total counter\n",
        "rvs_lost_total{what=\"lost_sync_event\",worker=\"1\"} 4\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn stateless_forwarding_is_exposed() {
    let mut m = snapshot();
    m.stateless = ["table_full", "ops", "nat_reply"]
        .iter()
        .enumerate()
        .map(|(i, what)| DropCounter {
            reason: (*what).into(),
            worker: 0,
            packets: 10 + i as u64,
        })
        .collect();
    m.fast_path = vec![DropCounter {
        reason: "fast".into(),
        worker: 1,
        packets: 99,
    }];
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_stateless_packets_total counter\n",
        "rvs_stateless_packets_total{what=\"table_full\",worker=\"0\"} 10\n",
        "rvs_stateless_packets_total{what=\"ops\",worker=\"0\"} 11\n",
        "rvs_stateless_packets_total{what=\"nat_reply\",worker=\"0\"} 12\n",
        "# TYPE rvs_fast_path_packets_total counter\n",
        "rvs_fast_path_packets_total{worker=\"1\"} 99\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn fwmark_backends_are_labelled_as_node_exporter_labels_them() {
    let mut model = Model::new();
    ipvsadm::restore(
        &mut model,
        "-A -f 26 -s rr\n\
         -a -f 26 -r 198.19.0.2 -m -w 2\n\
         -A -f 3 -6 -s rr\n\
         -a -f 3 -6 -r [2001:db8:1::2]:8080 -m -w 1\n",
    )
    .unwrap();
    let text = render(&MetricsSnapshot::from_model(&model));
    validate(&text).unwrap();
    let w: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("node_ipvs_backend_weight{"))
        .collect();
    assert_eq!(
        w,
        [
            "node_ipvs_backend_weight{local_address=\"\",local_port=\"0\",remote_address=\"2001:db8:1::2\",remote_port=\"8080\",proto=\"FWM\",local_mark=\"00000003\"} 1",
            "node_ipvs_backend_weight{local_address=\"\",local_port=\"0\",remote_address=\"198.19.0.2\",remote_port=\"0\",proto=\"FWM\",local_mark=\"0000001A\"} 2",
        ]
    );
}

#[test]
fn sequence_adjustment_is_exposed() {
    let mut m = snapshot();
    m.seq_adjust = ["adjusted", "bad_options"]
        .iter()
        .enumerate()
        .map(|(i, what)| DropCounter {
            reason: (*what).into(),
            worker: 1,
            packets: 7 + i as u64,
        })
        .collect();
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_seq_adjust_packets_total counter\n",
        "rvs_seq_adjust_packets_total{what=\"adjusted\",worker=\"1\"} 7\n",
        "rvs_seq_adjust_packets_total{what=\"bad_options\",worker=\"1\"} 8\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn synproxy_counters_are_exposed() {
    let mut m = snapshot();
    let c = dataplane::stats::SynProxyCounters::default();
    c.cookies_sent.add(20000);
    c.cookies_invalid.add(3);
    m.synproxy = c
        .named()
        .iter()
        .map(|(what, n)| DropCounter {
            reason: (*what).into(),
            worker: 0,
            packets: *n,
        })
        .collect();
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_synproxy_total counter\n",
        "rvs_synproxy_total{what=\"cookies_sent\",worker=\"0\"} 20000\n",
        "rvs_synproxy_total{what=\"cookies_invalid\",worker=\"0\"} 3\n",
        "rvs_synproxy_total{what=\"cookies_expired\",worker=\"0\"} 0\n",
        "rvs_synproxy_total{what=\"spliced\",worker=\"0\"} 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn toa_counters_are_exposed() {
    let mut m = snapshot();
    m.toa = ["added", "no_room", "mss_clamped", "evicted"]
        .iter()
        .enumerate()
        .map(|(i, what)| DropCounter {
            reason: (*what).into(),
            worker: 0,
            packets: 3 + i as u64,
        })
        .collect();
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_toa_packets_total counter\n",
        "rvs_toa_packets_total{what=\"added\",worker=\"0\"} 3\n",
        "rvs_toa_packets_total{what=\"no_room\",worker=\"0\"} 4\n",
        "rvs_toa_packets_total{what=\"mss_clamped\",worker=\"0\"} 5\n",
        "rvs_toa_packets_total{what=\"evicted\",worker=\"0\"} 6\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn tunnel_too_big_counters_are_exposed() {
    let mut m = snapshot();
    let c = dataplane::stats::TunTooBigCounters::default();
    let gue = dataplane::forward::TunEncap::Gue {
        port: 6080,
        csum: false,
    };
    c.count(gue, true);
    c.count(gue, true);
    c.count(dataplane::forward::TunEncap::Ipip, false);
    for w in [0, 1] {
        m.tun_too_big
            .extend(c.named().iter().map(|(tun_type, action, n)| TunTooBig {
                tun_type,
                action,
                worker: w,
                packets: *n,
            }));
    }
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("rvs_tunnel_too_big_total"))
        .collect();
    // HELP, TYPE, then 3 types x 2 actions x 2 workers.
    assert_eq!(lines.len(), 2 + 12, "{lines:?}");
    assert_eq!(lines[1], "# TYPE rvs_tunnel_too_big_total counter");
    for line in [
        "rvs_tunnel_too_big_total{type=\"ipip\",action=\"icmp_sent\",worker=\"0\"} 0\n",
        "rvs_tunnel_too_big_total{type=\"ipip\",action=\"dropped\",worker=\"0\"} 1\n",
        "rvs_tunnel_too_big_total{type=\"gue\",action=\"icmp_sent\",worker=\"1\"} 2\n",
        "rvs_tunnel_too_big_total{type=\"gue\",action=\"dropped\",worker=\"1\"} 0\n",
        "rvs_tunnel_too_big_total{type=\"gre\",action=\"dropped\",worker=\"0\"} 0\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn sync_skipped_counters_are_exposed() {
    let mut m = snapshot();
    m.sync_skipped = vec![DropCounter {
        reason: "mixed_family".into(),
        worker: 1,
        packets: 4,
    }];
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(
        text.contains("# TYPE rvs_sync_skipped_total counter\nrvs_sync_skipped_total{what=\"mixed_family\",worker=\"1\"} 4\n"),
        "{text}"
    );
}

#[test]
fn worker_loops_and_idle_sleeps_are_exposed() {
    let mut m = snapshot();
    m.worker_loops = vec![
        WorkerLoops {
            worker: 0,
            loops: 1_000_000,
            busy_loops: 2_500,
            idle_sleeps: 9_000,
            idle_sleep_ns: 1_234_567_890,
        },
        WorkerLoops {
            worker: 1,
            loops: 5,
            busy_loops: 5,
            idle_sleeps: 0,
            idle_sleep_ns: 7,
        },
    ];
    let text = render(&m);
    validate(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for line in [
        "# TYPE rvs_worker_loops_total counter\n",
        "rvs_worker_loops_total{worker=\"0\"} 1000000\n",
        "rvs_worker_loops_total{worker=\"1\"} 5\n",
        "rvs_worker_busy_loops_total{worker=\"0\"} 2500\n",
        "rvs_worker_idle_sleeps_total{worker=\"0\"} 9000\n",
        "rvs_worker_idle_sleeps_total{worker=\"1\"} 0\n",
        "# TYPE rvs_worker_idle_seconds_total counter\n",
        "rvs_worker_idle_seconds_total{worker=\"0\"} 1.234567890\n",
        "rvs_worker_idle_seconds_total{worker=\"1\"} 0.000000007\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // nothing when the dataplane reports no workers (the mock)
    assert!(!render(&snapshot()).contains("rvs_worker_"));
}
