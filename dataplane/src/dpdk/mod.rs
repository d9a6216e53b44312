//! The only safe layer over DPDK, and the only module of rvs that may use
//! `unsafe`. Every `unsafe` block carries a `// SAFETY:` line.
//!
//! What it gives the rest of rvs:
//! - [`Eal`]: EAL initialised once per process from an argument list, with
//!   [`EalArgs::test`] for tests (no hugepages, no PCI, a unique file prefix,
//!   runtime directory removed);
//! - [`Mempool`] (RAII) and [`Mbuf`] (`#[repr(transparent)]`, `Send`, not
//!   `Sync`, freed on drop, bytes reachable without an FFI call);
//! - [`Burst`], a fixed array of mbufs moved between RX, the worker and TX;
//! - [`Port`] with N RX/TX queues (RSS on where the device has it), its MAC,
//!   link, basic and extended statistics, and [`RxQueue`]/[`TxQueue`]
//!   handles handed out once;
//! - [`Ring`]: typed `rte_ring` producer/consumer handles;
//! - [`spawn_worker`]: threads pinned with core_affinity and registered with
//!   `rte_thread_register`;
//! - [`HugeSlice`]: a fixed array on DPDK hugepages, transparent huge pages
//!   or ordinary pages ([`TableMem`] says which to try), for tables sized by
//!   connection count.
//!
//! # Shutdown order
//! Ownership enforces it. Queue handles and worker threads keep their port
//! alive; ports and mempools keep the EAL alive. So: join workers (they drop
//! their queues) → drop ports (stop, close, uninit the vdev) → drop mempools
//! → the last [`Eal`] handle runs `rte_eal_cleanup`. A mempool dropped with
//! mbufs still out is leaked on purpose, and then EAL is never cleaned up,
//! because those mbufs would otherwise point into unmapped memory.
#![allow(unsafe_code)]

mod eal;
mod error;
mod huge;
mod mbuf;
mod mempool;
mod port;
pub mod prefetch;
mod ring;
pub mod telemetry;
mod thread;

pub use eal::{tsc, tsc_hz, Eal, EalArgs};
pub use error::DpdkError;
pub use huge::{numa_node_of_cpu, Backing, HugeSlice, TableMem};
pub use mbuf::{Burst, Drain, Mbuf, MAX_BURST};
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortConfig, PortStats, RxQueue, TxQueue, TxStats};
pub use ring::{Consumer, Producer, Ring, RingItem};
pub use thread::{lcore_id, set_timer_slack_ns, spawn_worker, LcoreRegistration, WorkerHandle};
