//! The boundary between rvsd's control thread and the packet dataplane.
//!
//! The control thread owns one `Box<dyn Dataplane>` and talks to it only
//! through this trait: it publishes whole snapshots of the services
//! ([`Dataplane::apply`]), reads counters ([`Dataplane::stats`]) and asks
//! for listings. The DPDK dataplane implements it with per-worker rings and
//! `Arc<Snapshot>`s (ARCHITECTURE.md §3); [`super::mock::MockDataplane`]
//! implements it for tests and for running rvsd without DPDK.

use crate::ipvsadm::Extra;
use crate::metrics::{ConnTable, DropCounter, Handoff, PortCounters};
use crate::model::{ConnEntry, Model, ServiceKey, Stats, Timeouts};
use dataplane::channel::{ConnInstaller, SyncEvents};
use dataplane::sync::SyncParams;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The director's high-availability role (`[ha] role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No peer: always serves.
    Standalone,
    /// Serves the VIPs and (later) sends connection sync.
    Master,
    /// Holds the VIPs back and (later) receives connection sync.
    Backup,
}

impl Role {
    /// Parses the config name ("standalone", "master", "backup").
    pub fn from_name(s: &str) -> Option<Role> {
        match s {
            "standalone" => Some(Role::Standalone),
            "master" => Some(Role::Master),
            "backup" => Some(Role::Backup),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Standalone => "standalone",
            Role::Master => "master",
            Role::Backup => "backup",
        })
    }
}

/// Counters of one virtual service, summed over workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCounters {
    /// Which service.
    pub key: ServiceKey,
    /// Totals since the service was created or last zeroed.
    pub stats: Stats,
}

/// Counters and connection gauges of one real server, summed over workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealCounters {
    /// The service it belongs to.
    pub service: ServiceKey,
    /// The real server.
    pub addr: SocketAddr,
    /// Totals since the real server was added or last zeroed.
    pub stats: Stats,
    /// Established connections now.
    pub active_conns: u32,
    /// Other connections now.
    pub inact_conns: u32,
    /// Persistence templates now.
    pub persist_conns: u32,
}

/// Everything the dataplane counts, read by the control thread for
/// listings, rates and metrics. Counters are monotonic `u64` totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataplaneStats {
    /// Per virtual service.
    pub services: Vec<ServiceCounters>,
    /// Per real server.
    pub reals: Vec<RealCounters>,
    /// Per port and worker NIC counters.
    pub ports: Vec<PortCounters>,
    /// Drops by reason and worker.
    pub drops: Vec<DropCounter>,
    /// Packets handed between workers.
    pub handoffs: Vec<Handoff>,
    /// Connection table occupancy per worker.
    pub conn_tables: Vec<ConnTable>,
    /// Connection table occupancy per worker and address family.
    pub family_tables: Vec<crate::metrics::FamilyTable>,
    /// Losses (ring full) by kind and worker.
    pub losses: Vec<DropCounter>,
    /// Packets forwarded without a connection entry, by why and worker.
    pub stateless: Vec<DropCounter>,
    /// Packets forwarded by the established fast path, by worker.
    pub fast_path: Vec<DropCounter>,
    /// TCP segments of sequence-adjusted connections, by what happened
    /// (`adjusted`, `bad_options`) and worker.
    pub seq_adjust: Vec<DropCounter>,
    /// SYN proxy (issue 14 item 4): what it did, by what and worker.
    pub synproxy: Vec<DropCounter>,
    /// TOA (client address as TCP option 254), by what happened (`added`,
    /// `no_room`, `mss_clamped`, `evicted`) and worker.
    pub toa: Vec<DropCounter>,
    /// Proxy Protocol: headers inserted (`inserted_v1`, `inserted_v2`),
    /// SYN-ACKs clamped, connections and segments refused, by worker.
    pub proxy_protocol: Vec<DropCounter>,
    /// TUN packets too big once encapsulated, by tunnel type, action
    /// (`icmp_sent`, `dropped`) and worker.
    pub tun_too_big: Vec<crate::metrics::TunTooBig>,
    /// Connections LVS sync did not send (`mixed_family`), by worker.
    pub sync_skipped: Vec<DropCounter>,
    /// Each worker's polling loop: iterations, busy iterations, idle
    /// sleeps.
    pub worker_loops: Vec<crate::metrics::WorkerLoops>,
}

/// What rvsd needs from a packet dataplane. Every method is called from
/// the control thread only; none may block for long (a reply to `rvsadm`
/// waits on it).
pub trait Dataplane: Send {
    /// Publishes the services, real servers and local addresses of `model`
    /// as the new immutable snapshot, replacing the previous one. All or
    /// nothing: on `Err` the previous snapshot stays in force, and the
    /// text says why. Counters and rates in `model` are to be ignored;
    /// timeouts come through [`Dataplane::set_timeouts`].
    fn apply(&mut self, model: &Model) -> Result<(), String>;

    /// Sets the connection timeouts (`ipvsadm --set`) for new and
    /// existing connections.
    fn set_timeouts(&mut self, timeouts: Timeouts) -> Result<(), String>;

    /// Reads the counters now.
    fn stats(&self) -> DataplaneStats;

    /// The connection entries, for `rvsadm -L -c`.
    fn connections(&self) -> Vec<ConnEntry>;

    /// Zeroes the counters of one service (and its real servers) or all.
    fn zero(&mut self, service: Option<&ServiceKey>);

    /// Renders one of rvs's own listings (`--ports`, `--neigh`, `--routes`,
    /// `--drops`, `--workers`).
    fn extra(&self, what: Extra) -> String;

    /// Changes the HA role: a backup does not answer for the VIPs and
    /// drops their new flows (synced connections keep working).
    fn set_role(&mut self, role: Role) -> Result<(), String>;

    /// Turns the workers' connection-sync reports on (`Some`: IPVS's
    /// threshold/period rules) or off. The default dataplane has none.
    fn set_sync(&mut self, params: Option<SyncParams>) -> Result<(), String> {
        let _ = params;
        Ok(())
    }

    /// Replaces the `[[fwmark]]` classifier (on reload). The default
    /// dataplane classifies nothing.
    fn set_classifier(&mut self, c: dataplane::fwmark::Classifier) -> Result<(), String> {
        let _ = c;
        Ok(())
    }

    /// Sets IPVS's `conn_reuse_mode` (0..=3) for new SYNs from now on.
    /// The default dataplane has no connection table.
    fn set_conn_reuse_mode(&mut self, mode: u8) -> Result<(), String> {
        let _ = mode;
        Ok(())
    }

    /// The queue the workers' sync reports arrive on, if any.
    fn sync_events(&self) -> Option<Arc<SyncEvents>> {
        None
    }

    /// Passive health-check failures the workers reported since the last
    /// call: (service, real server, reason).
    fn passive_events(&mut self) -> Vec<(ServiceKey, SocketAddr, &'static str)> {
        Vec::new()
    }

    /// A handle that installs synced connections on the workers, if any.
    fn installer(&self) -> Option<ConnInstaller> {
        None
    }

    /// Stops the dataplane: drain TX, stop ports, clean up EAL.
    fn shutdown(self: Box<Self>);
}
