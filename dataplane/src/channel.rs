//! The rings between control and the workers, and the handles control's
//! threads use on them: [`Command`]s to a worker, the [`Channels`] of one
//! worker, the sync report queue ([`SyncEvents`]) and the
//! [`ConnInstaller`] for synced connections. Pure data structures
//! (crossbeam rings), so control's logic and its tests build without DPDK;
//! the worker loop (`worker`) and the runtime
//! (`runtime`) that use them need the `dpdk` feature.

#![deny(clippy::indexing_slicing)]

use crate::flow::Ownership;
use crate::pipeline::Event;
use crate::snapshot::Snapshot;
use crate::sync::SyncConn;
use crate::wire::ethernet::MacAddr;
use crossbeam::queue::ArrayQueue;
use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Control → worker.
#[derive(Debug)]
pub enum Command {
    /// Run on this snapshot from now on; the old one goes back to control.
    Snapshot(Arc<Snapshot>),
    /// A neighbour control (or a test) states: installed as a static
    /// entry.
    Learn {
        /// Address.
        ip: IpAddr,
        /// Port.
        port: u16,
        /// MAC.
        mac: MacAddr,
    },
    /// A neighbour another worker learned from an answer: taken only where
    /// this worker is resolving or probing it (Linux-strict learning).
    Relayed {
        /// Address.
        ip: IpAddr,
        /// Port.
        port: u16,
        /// MAC.
        mac: MacAddr,
    },
    /// A persistence template another worker created.
    Template {
        /// Service id.
        svc: u16,
        /// Client address.
        client: IpAddr,
        /// Real-server id.
        rs: u32,
    },
    /// Copy connections into the request (operator listing).
    Dump(Arc<crate::pipeline::DumpRequest<crate::pipeline::ConnInfo>>),
    /// Copy the neighbour table into the request.
    DumpNeigh(Arc<crate::pipeline::DumpRequest<crate::pipeline::NeighEntry>>),
    /// Install a connection a sync message carried (HA backup); `count`:
    /// update the real server's connection counters (false for the
    /// FullNAT copy on the worker owning the local port).
    InstallConn {
        /// The connection.
        conn: crate::sync::SyncConn,
        /// Whether to count it.
        count: bool,
    },
    /// Leave the loop (TX drained first).
    Stop,
}

/// The rings between control and one worker.
#[derive(Debug, Clone)]
pub struct Channels {
    /// Commands for the worker.
    pub commands: Arc<ArrayQueue<Command>>,
    /// Snapshots the worker no longer uses (control drops them, so freeing
    /// never happens on a worker core).
    pub retired: Arc<ArrayQueue<Arc<Snapshot>>>,
    /// Events for control.
    pub events: Arc<ArrayQueue<Event>>,
}

impl Channels {
    /// Rings of the given depth.
    pub fn new(depth: usize) -> Self {
        Channels {
            commands: Arc::new(ArrayQueue::new(depth)),
            retired: Arc::new(ArrayQueue::new(depth)),
            events: Arc::new(ArrayQueue::new(depth)),
        }
    }
}

/// Connections the workers report for sync, collected by the relay
/// thread for control's sync sender.
#[derive(Debug)]
pub struct SyncEvents {
    /// The connections, oldest first.
    pub queue: ArrayQueue<SyncConn>,
    /// Connections lost because the queue was full.
    pub overflow: AtomicU64,
    /// Passive health-check failures (service id, real-server id, why)
    /// for control's health state; losses are counted in the relay's
    /// `lost_passive_event`.
    pub passive: ArrayQueue<(u16, u32, crate::pipeline::PassiveWhy)>,
}

impl SyncEvents {
    /// A queue of `n` connections.
    pub fn new(n: usize) -> Self {
        SyncEvents {
            queue: ArrayQueue::new(n.max(1)),
            overflow: AtomicU64::new(0),
            passive: ArrayQueue::new(4096),
        }
    }
}

/// Hands synced connections to the worker that owns them (a cloneable
/// handle for control's sync receiver thread).
#[derive(Debug, Clone)]
pub struct ConnInstaller {
    commands: Vec<Arc<ArrayQueue<Command>>>,
    own: Ownership,
}

impl ConnInstaller {
    /// An installer over the workers' command rings.
    pub fn new(commands: Vec<Arc<ArrayQueue<Command>>>, own: Ownership) -> Self {
        ConnInstaller { commands, own }
    }

    /// Queues `c` for its owner (and, for FullNAT, an uncounted copy for
    /// the owner of its local port). `false` if a ring was full.
    pub fn install(&self, c: SyncConn) -> bool {
        let (owner, second) = crate::sync::owners(&self.own, &c);
        let mut ok = true;
        for (w, count) in [(Some(owner), true), (second, false)] {
            let Some(q) = w.and_then(|w| self.commands.get(usize::from(w))) else {
                continue;
            };
            ok &= q.push(Command::InstallConn { conn: c, count }).is_ok();
        }
        ok
    }
}
