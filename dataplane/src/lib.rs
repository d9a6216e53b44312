//! The rvs dataplane: everything a worker core does with a packet.
//!
//! Packet logic (`wire`, `flow`, `conn`, `sched`, `forward`, `neigh`) is
//! written against plain byte buffers so it runs on a DPDK mbuf in
//! production and on a `Vec<u8>` in unit tests, fuzzers and benches without
//! starting EAL. Only `dpdk` may use `unsafe`.
//!
//! The `dpdk` feature (on by default) brings in `dpdk-sys` and the modules
//! that need it: `dpdk` (EAL, ports, mbufs), `worker` (the polling loop)
//! and `runtime`. Without it (`--no-default-features`) the packet logic,
//! the channels and every unit test build on a machine with neither DPDK
//! nor libclang.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod buf;
pub mod channel;
pub mod conn;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod flow;
pub mod forward;
pub mod frag;
pub mod guard;
pub mod neigh;
pub mod parse;
pub mod pipeline;
pub mod route;
#[cfg(feature = "dpdk")]
pub mod runtime;
pub mod sched;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod wire;
#[cfg(feature = "dpdk")]
pub mod worker;
