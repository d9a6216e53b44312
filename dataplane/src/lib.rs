//! The rvs dataplane: everything a worker core does with a packet.
//!
//! Packet logic (`wire`, `flow`, `conn`, `sched`, `forward`, `neigh`) is
//! written against plain byte buffers so it runs on a DPDK mbuf in
//! production and on a `Vec<u8>` in unit tests, fuzzers and benches without
//! starting EAL. Only `dpdk` may use `unsafe` (and `prefetch`, one
//! audited cache hint that must exist without DPDK).
//!
//! The `dpdk` feature (on by default) brings in `dpdk-sys` and the modules
//! that need it: `dpdk` (EAL, ports, mbufs), `worker` (the polling loop)
//! and `runtime`. Without it (`--no-default-features`) the packet logic,
//! the channels and every unit test build on a machine with neither DPDK
//! nor libclang.
#![deny(unsafe_code)]
// Packet code never panics on untrusted bytes: no panicking index or slice
// outside tests. A site that is in bounds by a stated contract (a wire
// view after `check_len`, an index masked to a power-of-two table) says
// so in a `// bounds:` comment on the smallest item's `#[allow]`.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod adj;
pub mod buf;
pub mod channel;
pub mod conn;
#[cfg(feature = "dpdk")]
#[allow(clippy::indexing_slicing)]
// FFI wrappers over DPDK structures (not packet parsing); unsafe-reviewed on its own
pub mod dpdk;
/// Without DPDK the `dpdk` module holds only the cache prefetch hint, which
/// the packet path needs in every build (the one `unsafe` there).
#[cfg(not(feature = "dpdk"))]
#[allow(unsafe_code)]
pub mod dpdk {
    pub mod prefetch;
}
pub mod flow;
pub mod forward;
pub mod frag;
pub mod fwmark;
pub mod guard;
pub mod idle;
pub mod mem;
pub mod neigh;
pub mod parse;
pub mod pipeline;
pub mod route;
#[cfg(feature = "dpdk")]
#[allow(clippy::indexing_slicing)] // start-up and control-side wiring, not the packet path
pub mod runtime;
pub mod sched;
pub mod snapshot;
pub mod stage;
pub mod stats;
pub mod sync;
pub mod wire;
#[cfg(feature = "dpdk")]
#[allow(clippy::indexing_slicing)] // the polling loop over DPDK bursts; packets go to the pipeline
pub mod worker;
