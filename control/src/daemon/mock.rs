//! A [`Dataplane`] that forwards nothing: it records what the control
//! thread published and returns scripted counters. For tests, and for
//! running rvsd before the DPDK dataplane is linked in.
//!
//! A [`MockHandle`] (from [`MockDataplane::handle`]) shares the mock's state
//! with a test after the mock has been boxed and handed to the daemon.
//! [`MockDataplane::record_to`] also appends every applied model, in
//! `ipvsadm -S` form, to a file, so tests of the rvsd binary can see what
//! the dataplane received.

use super::dataplane::{Dataplane, DataplaneStats, Role};
use crate::config::Config;
use crate::ipvsadm::{list, Extra};
use crate::metrics::{ConnTable, PortCounters};
use crate::model::{ConnEntry, Model, ServiceKey, Stats, Timeouts};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the mock has received and what it will answer.
#[derive(Debug, Default)]
pub struct MockState {
    /// Every model accepted by `apply`, oldest first.
    pub applied: Vec<Model>,
    /// Every timeout setting accepted, oldest first.
    pub timeouts: Vec<Timeouts>,
    /// Every `zero` call (None: all services).
    pub zeroed: Vec<Option<ServiceKey>>,
    /// Every role set.
    pub roles: Vec<Role>,
    /// When set, the next `apply` fails with this text (then it is cleared).
    pub fail_next_apply: Option<String>,
    /// Counters `stats` returns.
    pub stats: DataplaneStats,
    /// Entries `connections` returns.
    pub conns: Vec<ConnEntry>,
    /// Whether `shutdown` was called.
    pub shut_down: bool,
    /// Passive failures `passive_events` hands out (then forgets).
    pub passive: Vec<(ServiceKey, std::net::SocketAddr, &'static str)>,
}

/// Shared access to a [`MockDataplane`]'s state.
#[derive(Debug, Clone, Default)]
pub struct MockHandle(Arc<Mutex<MockState>>);

impl MockHandle {
    /// Locks the state (a poisoned lock is taken over: tests only).
    pub fn lock(&self) -> MutexGuard<'_, MockState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The mock dataplane.
#[derive(Debug, Default)]
pub struct MockDataplane {
    state: MockHandle,
    record: Option<PathBuf>,
}

impl MockDataplane {
    /// A mock with no counters.
    pub fn new() -> MockDataplane {
        MockDataplane::default()
    }

    /// A mock whose counters list every port and worker of `cfg` (all
    /// zero) and a connection table of the configured capacity per worker,
    /// so listings and metrics have the shape the real dataplane gives.
    pub fn from_config(cfg: &Config) -> MockDataplane {
        let m = MockDataplane::new();
        {
            let mut st = m.state.lock();
            let workers = u32::try_from(cfg.dataplane.workers.max(1)).unwrap_or(1);
            for w in 0..workers {
                for p in &cfg.ports {
                    st.stats.ports.push(PortCounters {
                        port: p.name.clone(),
                        worker: w,
                        rx_packets: 0,
                        tx_packets: 0,
                        rx_bytes: 0,
                        tx_bytes: 0,
                    });
                }
                st.stats.conn_tables.push(ConnTable {
                    worker: w,
                    entries: 0,
                    capacity: u64::try_from(cfg.dataplane.conn_table_size).unwrap_or(0),
                });
            }
        }
        m
    }

    /// Also appends each applied model, as `ipvsadm -S` text after a
    /// `# apply N` line, to the file at `path`.
    pub fn record_to(mut self, path: PathBuf) -> MockDataplane {
        self.record = Some(path);
        self
    }

    /// A handle on the state, usable after the mock is boxed.
    pub fn handle(&self) -> MockHandle {
        self.state.clone()
    }

    fn write_record(&self, n: usize, model: &Model) -> Result<(), String> {
        let Some(path) = &self.record else {
            return Ok(());
        };
        let text = format!("# apply {n}\n{}", list::save(model));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("mock record file {}: {e}", path.display()))
    }
}

fn zero_stats(s: &mut Stats) {
    *s = Stats::default();
}

impl Dataplane for MockDataplane {
    fn passive_events(&mut self) -> Vec<(ServiceKey, std::net::SocketAddr, &'static str)> {
        std::mem::take(&mut self.state.lock().passive)
    }

    fn apply(&mut self, model: &Model) -> Result<(), String> {
        let n = {
            let mut st = self.state.lock();
            if let Some(why) = st.fail_next_apply.take() {
                return Err(why);
            }
            st.applied.push(model.clone());
            st.applied.len()
        };
        self.write_record(n, model)
    }

    fn set_timeouts(&mut self, timeouts: Timeouts) -> Result<(), String> {
        self.state.lock().timeouts.push(timeouts);
        Ok(())
    }

    fn stats(&self) -> DataplaneStats {
        self.state.lock().stats.clone()
    }

    fn connections(&self) -> Vec<ConnEntry> {
        self.state.lock().conns.clone()
    }

    fn zero(&mut self, service: Option<&ServiceKey>) {
        let mut st = self.state.lock();
        st.zeroed.push(service.copied());
        let hit = |k: &ServiceKey| service.is_none() || service == Some(k);
        for s in st.stats.services.iter_mut().filter(|s| hit(&s.key)) {
            zero_stats(&mut s.stats);
        }
        for r in st.stats.reals.iter_mut().filter(|r| hit(&r.service)) {
            zero_stats(&mut r.stats);
        }
    }

    fn extra(&self, what: Extra) -> String {
        let st = self.state.lock();
        let mut out = String::new();
        match what {
            Extra::Ports => {
                out.push_str("Port     Worker   RxPackets   TxPackets     RxBytes     TxBytes\n");
                for p in &st.stats.ports {
                    let _ = writeln!(
                        out,
                        "{:<8} {:>6} {:>11} {:>11} {:>11} {:>11}",
                        p.port, p.worker, p.rx_packets, p.tx_packets, p.rx_bytes, p.tx_bytes
                    );
                }
            }
            Extra::Drops => {
                out.push_str("Reason                   Worker     Packets\n");
                for d in &st.stats.drops {
                    let _ = writeln!(out, "{:<24} {:>6} {:>11}", d.reason, d.worker, d.packets);
                }
            }
            Extra::Workers => {
                out.push_str("Worker   Conns    Capacity\n");
                for c in &st.stats.conn_tables {
                    let _ = writeln!(out, "{:>6} {:>7} {:>11}", c.worker, c.entries, c.capacity);
                }
            }
            Extra::Neigh => out.push_str("mock dataplane: no neighbour table\n"),
            Extra::Routes => out.push_str("mock dataplane: no route table\n"),
        }
        out
    }

    fn set_role(&mut self, role: Role) -> Result<(), String> {
        self.state.lock().roles.push(role);
        Ok(())
    }

    fn shutdown(self: Box<Self>) {
        self.state.lock().shut_down = true;
    }
}
