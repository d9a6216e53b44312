//! The rvs dataplane: everything a worker core does with a packet.
//!
//! Packet logic (`wire`, `flow`, `conn`, `sched`, `forward`, `neigh`) is
//! written against plain byte buffers so it runs on a DPDK mbuf in
//! production and on a `Vec<u8>` in unit tests, fuzzers and benches without
//! starting EAL. Only [`dpdk`] may use `unsafe`.
#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod buf;
pub mod conn;
pub mod dpdk;
pub mod flow;
pub mod forward;
pub mod frag;
pub mod guard;
pub mod neigh;
pub mod parse;
pub mod pipeline;
pub mod route;
pub mod runtime;
pub mod sched;
pub mod snapshot;
pub mod stats;
pub mod sync;
pub mod wire;
pub mod worker;
