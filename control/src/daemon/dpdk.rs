//! The DPDK dataplane behind rvsd's [`Dataplane`] trait: starts the
//! [`Runtime`] from the config and turns every operator model into a new
//! immutable [`Snapshot`].
//!
//! Identities survive changes: each virtual service keeps its service id
//! and each (service, real server) its real-server id and its shared
//! active/inactive counters for as long as it exists, so a reload or an
//! `rvsadm -e` never disturbs established connections or their counts.

use super::dataplane::{
    Dataplane, DataplaneStats, RealCounters as RealStats, Role, ServiceCounters,
};
use crate::config::{Cidr, Config};
use crate::ipvsadm::Extra;
use crate::metrics::{ConnTable, DropCounter, FamilyTable, Handoff, PortCounters};
use crate::model::{ConnEntry, Forward, Model, Netmask, Protocol, ServiceKey, Stats, Timeouts};
use dataplane::conn::{FwdMode, Timeouts as ConnTimeouts};
use dataplane::dpdk::{Backing, EalArgs};
use dataplane::neigh::LearnPolicy;
use dataplane::route::{RouteTable, RouteTableBuilder};
use dataplane::runtime::{ConnInstaller, SyncEvents};
use dataplane::runtime::{PortSpec, Runtime, RuntimeConfig};
use dataplane::sched::{
    Persistence, RealCounters, RealServer, SchedConfig, SchedKind, ServiceSched, Thresholds,
};
use dataplane::snapshot::{
    PortGuard, PortSnap, Role as SnapRole, RpFilter, Service, Snapshot, SnapshotBuilder,
};
use dataplane::stats::{Loss, Traffic};
use dataplane::sync::SyncParams;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Seed of the scheduler hashes (sh, dh, mh): the same on every director,
/// so every instance picks the same real server for a client.
const SCHED_SEED: u128 = 0x7276_735f_7363_6865_645f_7365_6564_0001;
/// Most services and real servers counted per worker.
const MAX_SERVICES: usize = 4096;
const MAX_REALS: usize = 65536;

type RealKey = (ServiceKey, SocketAddr);

/// rvsd's DPDK dataplane.
pub struct DpdkDataplane {
    rt: Option<Runtime>,
    routes: RouteTable,
    route_lines: Vec<(String, String, String)>,
    ports: Vec<PortSnap>,
    port_names: Vec<String>,
    /// Input checks per port (`[[port]]` rp_filter, source routes, ARP/ND
    /// learning), by port index.
    guards: Vec<PortGuard>,
    svc_ids: HashMap<ServiceKey, u16>,
    real_ids: HashMap<RealKey, (u32, Arc<RealCounters>, Thresholds)>,
    next_svc: u16,
    next_real: u32,
    generation: u64,
    timeouts: ConnTimeouts,
    role: SnapRole,
    sync: Option<SyncParams>,
    /// Gratuitous ARP rounds and interval (ms) on takeover.
    garp: (u8, u64),
    /// IPVS's `conn_reuse_mode` (`dataplane.conn_reuse_mode`).
    conn_reuse_mode: u8,
    /// SYN proxy settings (`[dataplane.synproxy]`, read at start).
    synproxy: dataplane::forward::synproxy::SynProxyConf,
    /// The `[[fwmark]]` classifier (config; replaced on reload).
    classifier: dataplane::fwmark::Classifier,
    model: Model,
    /// Counters at the last `-Z`, subtracted from what workers report.
    svc_base: HashMap<u16, Traffic>,
    real_base: HashMap<u32, Traffic>,
}

/// The input checks a `[[port]]` asks for (validated already).
fn port_guard(p: &crate::config::Port) -> PortGuard {
    PortGuard {
        rp_filter: match p.rp_filter.as_deref() {
            Some("off") => RpFilter::Off,
            Some("loose") => RpFilter::Loose,
            _ => RpFilter::Strict,
        },
        accept_source_route: p.accept_source_route,
        learn: LearnPolicy {
            arp_accept: p.arp_accept,
            garp_update: p.arp_garp_update,
            nd_override: p.nd_override,
        },
        ..PortGuard::default()
    }
}

fn parse_cidrs(list: &[String]) -> Vec<Cidr> {
    list.iter().filter_map(|a| a.parse().ok()).collect()
}

fn build_routes(cfg: &Config) -> Result<RouteTable, String> {
    let mut b = RouteTableBuilder::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        for c in parse_cidrs(&p.addresses) {
            b.connected(i as u16, c.addr, c.prefix);
        }
    }
    for (i, r) in cfg.routes.iter().enumerate() {
        let pfx: Cidr = r
            .prefix
            .parse()
            .map_err(|_| format!("route[{i}].prefix: bad prefix {}", r.prefix))?;
        let port = cfg
            .ports
            .iter()
            .position(|p| p.name == r.port)
            .ok_or_else(|| format!("route[{i}].port: no port named {}", r.port))?;
        let via = match &r.via {
            Some(v) => Some(
                v.parse::<IpAddr>()
                    .map_err(|_| format!("route[{i}].via: bad address {v}"))?,
            ),
            None => None,
        };
        b.route(pfx.addr, pfx.prefix, port as u16, via);
    }
    b.build().map_err(|e| format!("routes: {e:?}"))
}

/// Gives the kernel side of a port's TAP the port's addresses and brings it
/// up, so the host's own services (VRRP, SSH, BGP) answer there.
fn setup_tap(name: &str, addrs: &[String]) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| format!("tap {name}: running ip: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "tap {name}: ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    for a in addrs {
        if a.contains(':') {
            run(&["-6", "addr", "replace", a, "dev", name, "nodad"])?;
        } else {
            run(&["addr", "replace", a, "dev", name])?;
        }
    }
    run(&["link", "set", name, "up"])
}

/// Whether a kernel CPU list (`0-3,6`) contains `core` (true when the list
/// cannot be read).
fn cpu_list_contains(list: &str, core: usize) -> bool {
    let list = list.trim();
    if list.is_empty() {
        return true;
    }
    list.split(',').any(|part| match part.split_once('-') {
        Some((a, b)) => matches!((a.parse::<usize>(), b.parse::<usize>()), (Ok(a), Ok(b)) if (a..=b).contains(&core)),
        None => part.parse::<usize>() == Ok(core),
    })
}

/// EAL arguments from `[eal]`: main lcore on the first core, workers on
/// the others (registered threads, not EAL lcores).
pub fn eal_args(cfg: &Config) -> EalArgs {
    let mut a: Vec<String> = vec!["rvsd".into()];
    if let Some(c) = cfg.eal.cores.first() {
        a.push("-l".into());
        a.push(c.to_string());
    }
    if !cfg.eal.hugepages {
        a.push("--no-huge".into());
    }
    if let Some(m) = cfg.eal.memory_mb {
        a.push("-m".into());
        a.push(m.to_string());
    }
    a.extend(cfg.eal.extra_args.iter().cloned());
    EalArgs::new(a)
}

fn fwd(f: Forward) -> FwdMode {
    match f {
        Forward::Masq => FwdMode::Nat,
        Forward::Route => FwdMode::Dr,
        Forward::Tunnel => FwdMode::Tun,
        Forward::FullNat => FwdMode::FullNat,
    }
}

fn proto(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

fn stats_of(t: Traffic) -> Stats {
    Stats {
        conns: t.conns,
        inpkts: t.inpkts,
        outpkts: t.outpkts,
        inbytes: t.inbytes,
        outbytes: t.outbytes,
    }
}

fn minus(a: Traffic, b: Option<&Traffic>) -> Traffic {
    let Some(b) = b else { return a };
    Traffic {
        conns: a.conns.saturating_sub(b.conns),
        inpkts: a.inpkts.saturating_sub(b.inpkts),
        outpkts: a.outpkts.saturating_sub(b.outpkts),
        inbytes: a.inbytes.saturating_sub(b.inbytes),
        outbytes: a.outbytes.saturating_sub(b.outbytes),
    }
}

impl DpdkDataplane {
    /// Starts EAL, ports and workers for a validated config and publishes
    /// its services.
    pub fn start(cfg: &Config) -> Result<DpdkDataplane, String> {
        let routes = build_routes(cfg)?;
        let mut specs = Vec::new();
        let queues = usize::try_from(cfg.dataplane.workers.clamp(1, 128)).unwrap_or(1);
        for (i, p) in cfg.ports.iter().enumerate() {
            let cidrs = parse_cidrs(&p.addresses);
            specs.push(PortSpec {
                name: p.name.clone(),
                device: p.devargs(i, queues),
                mtu: p.mtu.and_then(|m| u16::try_from(m).ok()).unwrap_or(1500),
                v4: cidrs.iter().find_map(|c| match c.addr {
                    IpAddr::V4(a) => Some((a, c.prefix)),
                    IpAddr::V6(_) => None,
                }),
                v6: cidrs.iter().find_map(|c| match c.addr {
                    IpAddr::V6(a) => Some((a, c.prefix)),
                    IpAddr::V4(_) => None,
                }),
                tap: p.tap.clone(),
            });
        }
        let workers = u16::try_from(cfg.dataplane.workers.clamp(1, 128)).unwrap_or(1);
        // Both tables are sized by their own setting (validated powers of
        // two); nothing is derived from the other.
        let per_worker =
            u32::try_from(cfg.dataplane.conn_table_size.clamp(64, 1 << 28)).unwrap_or(1 << 20);
        let per_worker_v6 =
            u32::try_from(cfg.dataplane.conn_table_size_v6.clamp(64, 1 << 28)).unwrap_or(1 << 18);
        let worker_cores: Vec<Option<usize>> = (0..workers as usize)
            .map(|w| {
                cfg.eal
                    .cores
                    .get(w + 1)
                    .and_then(|c| usize::try_from(*c).ok())
            })
            .collect();
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
        for (w, c) in worker_cores.iter().enumerate() {
            match c {
                Some(c) if !cpu_list_contains(&online, *c) => super::log::log(format!(
                    "warning: worker {w}: core {c} (eal.cores[{}]) is not online; the worker runs unpinned",
                    w + 1
                )),
                None => super::log::log(format!(
                    "warning: worker {w}: eal.cores has no core for it; the worker runs unpinned"
                )),
                _ => {}
            }
        }
        let rcfg = RuntimeConfig {
            eal: eal_args(cfg),
            ports: specs,
            workers,
            worker_cores,
            conns_v4: per_worker,
            conns_v6: per_worker_v6,
            seq_adj: u32::try_from(cfg.dataplane.seq_adj_conns).unwrap_or(0),
            mbufs: 16383,
            max_services: MAX_SERVICES,
            max_reals: MAX_REALS,
            idle: cfg.dataplane.idle_policy(),
        };
        let mut dp = DpdkDataplane {
            rt: None,
            routes: routes.clone(),
            route_lines: cfg
                .routes
                .iter()
                .map(|r| {
                    (
                        r.prefix.clone(),
                        r.port.clone(),
                        r.via.clone().unwrap_or_else(|| "on-link".into()),
                    )
                })
                .collect(),
            ports: Vec::new(),
            port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            guards: cfg.ports.iter().map(port_guard).collect(),
            svc_ids: HashMap::new(),
            real_ids: HashMap::new(),
            next_svc: 0,
            next_real: 0,
            generation: 0,
            timeouts: ConnTimeouts::default(),
            garp: (
                u8::try_from(cfg.ha.garp_master_repeat).unwrap_or(3),
                cfg.ha.garp_master_interval_ms,
            ),
            role: if cfg.ha.role == "backup" {
                SnapRole::Backup
            } else {
                SnapRole::Master
            },
            sync: None,
            conn_reuse_mode: u8::try_from(cfg.dataplane.conn_reuse_mode.clamp(0, 3)).unwrap_or(1),
            synproxy: cfg.dataplane.synproxy.conf(),
            classifier: cfg.classifier(),
            model: Model::new(),
            svc_base: HashMap::new(),
            real_base: HashMap::new(),
        };
        let model = cfg.to_model();
        dp.set_conn_timeouts(model.timeouts);
        let rt = Runtime::start(rcfg, |ports| {
            dp.ports = ports.to_vec();
            dp.snapshot(&model)
        })?;
        for (w, c) in rt.counters().iter().enumerate() {
            let b = Backing::from_code(c.conn_backing.get());
            if !b.is_huge() {
                super::log::log(format!(
                    "warning: worker {w}: connection tables on 4 KiB pages (no EAL hugepages, transparent huge pages off): expect TLB misses on every lookup of a big table"
                ));
            }
        }
        dp.rt = Some(rt);
        dp.model = model;
        // `dpdk-telemetry.py` (EAL's telemetry socket): rvs's own commands
        if let Err(e) = super::telemetry::register() {
            super::log::log(format!("warning: {e}"));
        }
        for p in &cfg.ports {
            if let Some(tap) = &p.tap {
                setup_tap(tap, &p.addresses)?;
            }
        }
        Ok(dp)
    }

    fn rt(&self) -> Option<&Runtime> {
        self.rt.as_ref()
    }

    fn set_conn_timeouts(&mut self, t: Timeouts) {
        let mut ct = ConnTimeouts::default();
        ct.set_ipvsadm(t.tcp, t.tcp_fin, t.udp);
        self.timeouts = ct;
    }

    fn svc_id(&mut self, k: &ServiceKey) -> Option<u16> {
        if let Some(id) = self.svc_ids.get(k) {
            return Some(*id);
        }
        let used: std::collections::HashSet<u16> = self.svc_ids.values().copied().collect();
        let id = (0..MAX_SERVICES as u16)
            .map(|i| self.next_svc.wrapping_add(i) % MAX_SERVICES as u16)
            .find(|i| !used.contains(i))?;
        self.next_svc = id.wrapping_add(1);
        self.svc_ids.insert(*k, id);
        Some(id)
    }

    fn real_entry(&mut self, k: RealKey, th: Thresholds) -> Option<(u32, Arc<RealCounters>)> {
        if let Some(e) = self.real_ids.get_mut(&k) {
            if e.2 != th {
                e.1.thresholds_changed(e.2, th);
                e.2 = th;
            }
            return Some((e.0, e.1.clone()));
        }
        let used: std::collections::HashSet<u32> = self.real_ids.values().map(|e| e.0).collect();
        let id = (0..MAX_REALS as u32)
            .map(|i| (self.next_real + i) % MAX_REALS as u32)
            .find(|i| !used.contains(i))?;
        self.next_real = id + 1;
        let c = Arc::new(RealCounters::new());
        self.real_ids.insert(k, (id, c.clone(), th));
        Some((id, c))
    }

    /// Builds the snapshot for `model`, assigning ids to new services and
    /// real servers. Ids of services and real servers that left the model
    /// are released (their connections keep running on their records).
    fn snapshot(&mut self, model: &Model) -> Result<Snapshot, String> {
        self.generation += 1;
        let mut b = SnapshotBuilder::new(self.generation, self.ports.clone(), self.routes.clone())
            .timeouts(self.timeouts)
            .role(self.role)
            .sync(self.sync)
            .garp(self.garp.0, self.garp.1)
            .conn_reuse_mode(self.conn_reuse_mode)
            .synproxy(self.synproxy)
            .classifier(self.classifier.clone());
        for (i, g) in self.guards.iter().enumerate() {
            b = b.guard(i as u16, *g);
        }
        let live_svcs: std::collections::HashSet<ServiceKey> =
            model.services.iter().map(|s| s.key).collect();
        self.svc_ids.retain(|k, _| live_svcs.contains(k));
        let live_reals: std::collections::HashSet<RealKey> = model
            .services
            .iter()
            .flat_map(|s| {
                s.reals
                    .iter()
                    .chain(s.sorry.iter())
                    .map(move |r| (s.key, r.addr))
            })
            .collect();
        self.real_ids.retain(|k, _| live_reals.contains(k));
        let mut tunnels = Vec::new();
        for s in &model.services {
            let id = self.svc_id(&s.key).ok_or("too many services")?;
            let mut reals = Vec::new();
            let mut fwds = Vec::new();
            for r in &s.reals {
                let th = Thresholds {
                    upper: r.u_threshold,
                    lower: r.l_threshold,
                };
                let (rid, counters) = self
                    .real_entry((s.key, r.addr), th)
                    .ok_or("too many real servers")?;
                if r.forward == Forward::Tunnel {
                    tunnels.push((dataplane::sched::RealId(rid), r.tunnel.encap()));
                }
                reals.push(RealServer {
                    id: dataplane::sched::RealId(rid),
                    addr: r.addr.ip(),
                    port: r.addr.port(),
                    weight: r.weight,
                    last_weight: r.weight.max(1),
                    thresholds: th,
                    counters,
                });
                fwds.push(fwd(r.forward));
            }
            let mut sc = SchedConfig::new(s.scheduler);
            sc.seed = SCHED_SEED;
            sc.fallback = s.flags.sh_fallback || s.flags.mh_fallback;
            sc.hash_port = s.flags.sh_port || s.flags.mh_port;
            if let Some(t) = s.persistent {
                let mut p = Persistence::new(t);
                match s.netmask {
                    Netmask::V4(m) => p.netmask_v4 = u32::from(m).leading_ones() as u8,
                    Netmask::V6(l) => p.netmask_v6 = l,
                }
                sc.persistence = Some(p);
            }
            // the sorry server (config, health quorum) has an id and
            // counters like a real server
            let sorry = match &s.sorry {
                Some(r) => {
                    let th = Thresholds::default();
                    let (rid, counters) = self
                        .real_entry((s.key, r.addr), th)
                        .ok_or("too many real servers")?;
                    Some(RealServer {
                        id: dataplane::sched::RealId(rid),
                        addr: r.addr.ip(),
                        port: r.addr.port(),
                        weight: r.weight.max(1),
                        last_weight: r.weight.max(1),
                        thresholds: th,
                        counters,
                    })
                }
                None => None,
            };
            let sched = ServiceSched::new(sc, reals.clone(), sorry, self.generation)
                .map_err(|e| format!("{}: {e}", s.key))?;
            let mut mh = SchedConfig::new(SchedKind::Mh);
            mh.seed = SCHED_SEED;
            let stateless = ServiceSched::new(mh, reals, None, self.generation).ok();
            // IPVS's sloppy_tcp, per service: on by default where the
            // service is consistent across directors and replies bypass
            // them (mh over DR/TUN), as issue 13 asks.
            let sloppy_tcp = s.key.proto == Protocol::Tcp
                && s.sloppy_tcp.unwrap_or(
                    s.scheduler == SchedKind::Mh
                        && !fwds.is_empty()
                        && fwds.iter().all(|f| matches!(f, FwdMode::Dr | FwdMode::Tun)),
                );
            let sorry_fwd = match &s.sorry {
                Some(r) => fwd(r.forward),
                None => fwds.first().copied().unwrap_or(FwdMode::Dr),
            };
            let svc = Service {
                id,
                proto: proto(s.key.proto),
                vip: s.key.addr.ip(),
                vport: s.key.addr.port(),
                sched,
                fwd: fwds.into_boxed_slice(),
                sorry_fwd,
                laddrs: s.laddrs.iter().map(|l| l.addr).collect(),
                stateless,
                passive_check: s.passive_check,
                sloppy_tcp,
                ops: s.ops && s.key.proto == Protocol::Udp,
                synproxy: s.synproxy,
                toa: s.toa && s.key.proto == Protocol::Tcp,
                proxy_protocol: s.proxy_protocol.filter(|_| s.key.proto == Protocol::Tcp),
            };
            b = if s.key.is_fwmark() {
                b.fwmark_service(s.key.fwmark, svc)
            } else {
                b.service(svc)
            };
        }
        for (rid, t) in tunnels {
            b = b.tunnel(rid, t);
        }
        b.build().map_err(|e| e.to_string())
    }

    fn publish(&mut self, model: &Model) -> Result<(), String> {
        let saved = (
            self.svc_ids.clone(),
            self.real_ids.clone(),
            self.next_svc,
            self.next_real,
        );
        let snap = match self.snapshot(model) {
            Ok(s) => s,
            Err(e) => {
                (self.svc_ids, self.real_ids, self.next_svc, self.next_real) = saved;
                return Err(e);
            }
        };
        match self.rt.as_mut() {
            Some(rt) => rt.publish(snap),
            None => Err("dataplane not running".into()),
        }
    }

    fn traffic_svc(&self, id: u16) -> Traffic {
        let mut t = Traffic::default();
        for w in self.rt().map(|r| r.counters()).unwrap_or(&[]) {
            if let Some(c) = w.services.get(id as usize) {
                t += c.read();
            }
        }
        minus(t, self.svc_base.get(&id))
    }

    fn traffic_real(&self, id: u32) -> Traffic {
        let mut t = Traffic::default();
        for w in self.rt().map(|r| r.counters()).unwrap_or(&[]) {
            if let Some(c) = w.reals.get(id as usize) {
                t += c.read();
            }
        }
        minus(t, self.real_base.get(&id))
    }
}

impl Dataplane for DpdkDataplane {
    fn apply(&mut self, model: &Model) -> Result<(), String> {
        self.publish(model)?;
        self.model = model.clone();
        Ok(())
    }

    fn set_timeouts(&mut self, timeouts: Timeouts) -> Result<(), String> {
        let old = self.timeouts;
        self.set_conn_timeouts(timeouts);
        let model = self.model.clone();
        if let Err(e) = self.publish(&model) {
            self.timeouts = old;
            return Err(e);
        }
        Ok(())
    }

    fn stats(&self) -> DataplaneStats {
        let mut st = DataplaneStats::default();
        for s in &self.model.services {
            let Some(id) = self.svc_ids.get(&s.key) else {
                continue;
            };
            st.services.push(ServiceCounters {
                key: s.key,
                stats: stats_of(self.traffic_svc(*id)),
            });
            for r in &s.reals {
                let Some((rid, c, _)) = self.real_ids.get(&(s.key, r.addr)) else {
                    continue;
                };
                st.reals.push(RealStats {
                    service: s.key,
                    addr: r.addr,
                    stats: stats_of(self.traffic_real(*rid)),
                    active_conns: c.active(),
                    inact_conns: c.inactive(),
                    persist_conns: 0,
                });
            }
        }
        let Some(rt) = self.rt() else { return st };
        for (w, c) in rt.counters().iter().enumerate() {
            let w = w as u32;
            for (p, pc) in c.ports.iter().enumerate() {
                st.ports.push(PortCounters {
                    port: self
                        .port_names
                        .get(p)
                        .cloned()
                        .unwrap_or_else(|| p.to_string()),
                    worker: w,
                    rx_packets: pc.rx_packets.get(),
                    tx_packets: pc.tx_packets.get(),
                    rx_bytes: pc.rx_bytes.get(),
                    tx_bytes: pc.tx_bytes.get(),
                });
            }
            for (reason, n) in c.drops() {
                st.drops.push(DropCounter {
                    reason: reason.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            for (to, h) in c.handoff_out.iter().enumerate() {
                if to as u32 != w {
                    st.handoffs.push(Handoff {
                        from: w,
                        to: to as u32,
                        packets: h.get(),
                    });
                }
            }
            st.worker_loops.push(crate::metrics::WorkerLoops {
                worker: w,
                loops: c.loops.get(),
                busy_loops: c.busy_loops.get(),
                idle_sleeps: c.idle_sleeps.get(),
                idle_sleep_ns: c.idle_sleep_ns.get(),
            });
            st.conn_tables.push(ConnTable {
                worker: w,
                entries: c.conn_entries.get(),
                capacity: c.conn_capacity.get(),
            });
            for (family, entries, capacity) in [
                ("ipv4", &c.conn_entries_v4, &c.conn_capacity_v4),
                ("ipv6", &c.conn_entries_v6, &c.conn_capacity_v6),
            ] {
                st.family_tables.push(FamilyTable {
                    worker: w,
                    family,
                    entries: entries.get(),
                    capacity: capacity.get(),
                });
            }
            st.fast_path.push(DropCounter {
                reason: "fast".to_string(),
                worker: w,
                packets: c.fast_path.get(),
            });
            for (what, n) in [
                ("table_full", c.stateless_fallbacks.get()),
                ("ops", c.ops_packets.get()),
                ("nat_reply", c.stateless_replies.get()),
            ] {
                st.stateless.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            // TOA (client address as TCP option 254).
            for (what, n) in [
                ("added", c.toa_added.get()),
                ("no_room", c.toa_no_room.get()),
                ("mss_clamped", c.toa_mss_clamped.get()),
                ("evicted", c.toa_evicted.get()),
            ] {
                st.toa.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            for (what, n) in [
                ("adjusted", c.seq_adjusted.get()),
                ("bad_options", c.seq_bad_options.get()),
            ] {
                st.seq_adjust.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            // SYN proxy (issue 14 item 4)
            for (what, n) in c.synproxy.named() {
                st.synproxy.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            st.sync_skipped.push(DropCounter {
                reason: "mixed_family".to_string(),
                worker: w,
                packets: c.sync_skipped_mixed.get(),
            });
            for (tun_type, action, n) in c.tun_too_big.named() {
                st.tun_too_big.push(crate::metrics::TunTooBig {
                    tun_type,
                    action,
                    worker: w,
                    packets: n,
                });
            }
            for (what, n) in c.pp.all() {
                st.proxy_protocol.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
            let relay = rt.relay_counters();
            let relayed = [Loss::NeighRelay, Loss::TemplateRelay]
                .map(|l| (l.name(), relay.get(w as usize, l)));
            for (what, n) in c
                .losses()
                .into_iter()
                .filter(|(name, _)| !relayed.iter().any(|r| r.0 == *name))
                .chain(relayed)
            {
                // passive reports are lost on the worker's ring or on the
                // relay's queue to control: one count for both
                let n = if what == Loss::PassiveEvent.name() {
                    n + relay.get(w as usize, Loss::PassiveEvent)
                } else {
                    n
                };
                st.losses.push(DropCounter {
                    reason: what.to_string(),
                    worker: w,
                    packets: n,
                });
            }
        }
        st
    }

    fn connections(&self) -> Vec<ConnEntry> {
        let Some(rt) = self.rt() else {
            return Vec::new();
        };
        rt.connections(65536)
            .into_iter()
            .map(|c| ConnEntry {
                proto: if c.proto == 17 {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                expire_secs: c.expires_in,
                state: c.state.to_string(),
                client: SocketAddr::new(c.client.0, c.client.1),
                virt: SocketAddr::new(c.vip.0, c.vip.1),
                dest: SocketAddr::new(c.rip.0, c.rip.1),
                seq_delta: c
                    .seq
                    .map(|s| (s.in_seq.delta as i32, s.out_seq.delta as i32)),
            })
            .collect()
    }

    fn zero(&mut self, service: Option<&ServiceKey>) {
        let keys: Vec<ServiceKey> = self
            .model
            .services
            .iter()
            .map(|s| s.key)
            .filter(|k| service.is_none_or(|s| s == k))
            .collect();
        for k in keys {
            if let Some(id) = self.svc_ids.get(&k).copied() {
                let t = self.traffic_svc(id);
                let base = self.svc_base.entry(id).or_default();
                *base += t;
            }
            let reals: Vec<u32> = self
                .real_ids
                .iter()
                .filter(|(rk, _)| rk.0 == k)
                .map(|(_, e)| e.0)
                .collect();
            for rid in reals {
                let t = self.traffic_real(rid);
                let base = self.real_base.entry(rid).or_default();
                *base += t;
            }
        }
    }

    fn extra(&self, what: Extra) -> String {
        let mut out = String::new();
        let Some(rt) = self.rt() else { return out };
        let st = self.stats();
        match what {
            Extra::Ports => {
                out.push_str("Port     Link  Speed     RxPackets   TxPackets     RxBytes     TxBytes  RxMissed  RxNoMbuf\n");
                for (name, s, l) in rt.port_status() {
                    let s = s.unwrap_or_default();
                    let (up, speed) = l.map_or(("?", 0), |l| {
                        (if l.up { "up" } else { "down" }, l.speed_mbps)
                    });
                    let _ = writeln!(
                        out,
                        "{:<8} {:<5} {:>5} {:>13} {:>11} {:>11} {:>11} {:>9} {:>9}",
                        name,
                        up,
                        speed,
                        s.rx_packets,
                        s.tx_packets,
                        s.rx_bytes,
                        s.tx_bytes,
                        s.rx_missed,
                        s.rx_nombuf
                    );
                }
                let (used, size) = rt.pool_usage();
                let _ = writeln!(out, "mbufs in use: {used}/{size} ({})", rt.dpdk_version());
            }
            Extra::Drops => {
                out.push_str("Reason                   Worker     Packets\n");
                for d in st.drops.iter().filter(|d| d.packets > 0) {
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", d.reason, d.worker, d.packets);
                }
                // Not packets: events, relays and snapshots a full ring
                // refused (they are gone), listed so nothing vanishes
                // silently.
                for d in st.losses.iter().filter(|d| d.packets > 0) {
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", d.reason, d.worker, d.packets);
                }
                // The SYN proxy's counters (not all drops: cookies sent,
                // handshakes spliced), prefixed so they read as its own.
                for d in st.synproxy.iter().filter(|d| d.packets > 0) {
                    let what = format!("synproxy_{}", d.reason);
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", what, d.worker, d.packets);
                }
                // TUN packets too big once encapsulated, by tunnel type
                // and action (a breakdown of pmtu_replies and of the
                // needs_fragmentation drops).
                for d in st.tun_too_big.iter().filter(|d| d.packets > 0) {
                    let what = format!("tunnel_{}_{}", d.tun_type, d.action);
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", what, d.worker, d.packets);
                }
                // Not packets: connections LVS sync did not send.
                for d in st.sync_skipped.iter().filter(|d| d.packets > 0) {
                    let what = format!("sync_skipped_{}", d.reason);
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", what, d.worker, d.packets);
                }
            }
            Extra::Workers => {
                out.push_str(
                    "Worker   Conns    Capacity  Table-mem  Handoffs-out  Stateless  PMTU-replies  To-kernel  From-kernel  Generation   Conns-v4  Capacity-v4   Conns-v6  Capacity-v6     Reused   Lost   Sloppy      Ops  Stateless-rx    Fast-path          Loops     Busy-loops  Idle-sleeps    Idle-ms\n",
                );
                for (w, c) in rt.counters().iter().enumerate() {
                    let h: u64 = c.handoff_out.iter().map(|x| x.get()).sum();
                    let lost: u64 = st
                        .losses
                        .iter()
                        .filter(|d| d.worker == w as u32)
                        .map(|d| d.packets)
                        .sum();
                    let _ = writeln!(
                        out,
                        "{:>6} {:>7} {:>11} {:>10} {:>13} {:>10} {:>13} {:>10} {:>12} {:>11} {:>10} {:>12} {:>10} {:>12} {:>10} {:>6} {:>8} {:>8} {:>13} {:>12} {:>14} {:>14} {:>12} {:>10}",
                        w,
                        c.conn_entries.get(),
                        c.conn_capacity.get(),
                        Backing::from_code(c.conn_backing.get()).name(),
                        h,
                        c.stateless_fallbacks.get(),
                        c.pmtu_replies.get(),
                        c.to_kernel.get(),
                        c.from_kernel.get(),
                        c.generation.get(),
                        c.conn_entries_v4.get(),
                        c.conn_capacity_v4.get(),
                        c.conn_entries_v6.get(),
                        c.conn_capacity_v6.get(),
                        c.conn_reused.get(),
                        lost,
                        c.sloppy_conns.get(),
                        c.ops_packets.get(),
                        c.stateless_replies.get(),
                        c.fast_path.get(),
                        c.loops.get(),
                        c.busy_loops.get(),
                        c.idle_sleeps.get(),
                        c.idle_sleep_ns.get() / 1_000_000
                    );
                }
            }
            Extra::Routes => {
                out.push_str("Destination                               Port      Gateway\n");
                for (i, name) in self.port_names.iter().enumerate() {
                    if let Some(p) = self.ports.get(i) {
                        for (a, l) in [
                            p.v4.map(|(a, l)| (IpAddr::V4(a), l)),
                            p.v6.map(|(a, l)| (IpAddr::V6(a), l)),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            let _ =
                                writeln!(out, "{:<41} {:<9} connected", format!("{a}/{l}"), name);
                        }
                    }
                }
                for (prefix, port, via) in &self.route_lines {
                    let _ = writeln!(out, "{prefix:<41} {port:<9} {via}");
                }
            }
            Extra::Neigh => {
                // Every ARP/ND frame that changed a worker's table is
                // counted; refusals are drop reasons (`--drops`).
                let changes: u64 = rt.counters().iter().map(|c| c.neigh_changes.get()).sum();
                let _ = writeln!(out, "Table changes by ARP/ND: {changes}");
                out.push_str("Address                                   Port      HWaddress          State       Origin      Worker\n");
                for (w, e) in rt.neighbours() {
                    let m = e.mac.0;
                    let _ = writeln!(
                        out,
                        "{:<41} {:<9} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}  {:<11} {:<11} {}",
                        e.ip.to_string(),
                        self.port_names
                            .get(e.port as usize)
                            .map_or("?", String::as_str),
                        m[0],
                        m[1],
                        m[2],
                        m[3],
                        m[4],
                        m[5],
                        format!("{:?}", e.state).to_uppercase(),
                        e.origin.name(),
                        w
                    );
                }
            }
        }
        out
    }

    fn set_role(&mut self, role: Role) -> Result<(), String> {
        let old = self.role;
        self.role = if role == Role::Backup {
            SnapRole::Backup
        } else {
            SnapRole::Master
        };
        let model = self.model.clone();
        if let Err(e) = self.publish(&model) {
            self.role = old;
            return Err(e);
        }
        Ok(())
    }

    fn set_sync(&mut self, params: Option<SyncParams>) -> Result<(), String> {
        let old = self.sync;
        self.sync = params;
        let model = self.model.clone();
        if let Err(e) = self.publish(&model) {
            self.sync = old;
            return Err(e);
        }
        Ok(())
    }

    fn set_classifier(&mut self, c: dataplane::fwmark::Classifier) -> Result<(), String> {
        if c == self.classifier {
            return Ok(());
        }
        let old = std::mem::replace(&mut self.classifier, c);
        let model = self.model.clone();
        if let Err(e) = self.publish(&model) {
            self.classifier = old;
            return Err(e);
        }
        Ok(())
    }

    fn set_conn_reuse_mode(&mut self, mode: u8) -> Result<(), String> {
        if mode == self.conn_reuse_mode {
            return Ok(());
        }
        let old = self.conn_reuse_mode;
        self.conn_reuse_mode = mode;
        let model = self.model.clone();
        if let Err(e) = self.publish(&model) {
            self.conn_reuse_mode = old;
            return Err(e);
        }
        Ok(())
    }

    fn sync_events(&self) -> Option<Arc<SyncEvents>> {
        self.rt().map(|r| r.sync_events())
    }

    fn passive_events(&mut self) -> Vec<(ServiceKey, SocketAddr, &'static str)> {
        let Some(ev) = self.rt().map(|r| r.sync_events()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while let Some((svc, rs, why)) = ev.passive.pop() {
            let Some(key) = self
                .svc_ids
                .iter()
                .find(|(_, v)| **v == svc)
                .map(|(k, _)| *k)
            else {
                continue;
            };
            let addr = self
                .real_ids
                .iter()
                .find(|((k, _), v)| *k == key && v.0 == rs)
                .map(|((_, a), _)| *a);
            if let Some(a) = addr {
                out.push((key, a, why.reason()));
            }
        }
        out
    }

    fn installer(&self) -> Option<ConnInstaller> {
        self.rt().map(|r| r.installer())
    }

    fn shutdown(mut self: Box<Self>) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_list_contains;

    #[test]
    fn cpu_lists() {
        assert!(cpu_list_contains("0-3,6", 2));
        assert!(cpu_list_contains("0-3,6", 6));
        assert!(!cpu_list_contains("0-3,6", 5));
        assert!(!cpu_list_contains("0-1", 2));
        assert!(cpu_list_contains("", 7));
    }
}
