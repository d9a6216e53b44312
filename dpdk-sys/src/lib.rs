//! Raw FFI bindings to the system DPDK (>= 22.11).
//!
//! Generated at build time by bindgen from the headers pkg-config names for
//! `libdpdk`. DPDK's `static inline` fast-path functions (RX/TX burst, mbuf
//! alloc/free, ring enqueue/dequeue, `rte_errno`, lcore id, TSC) are
//! re-exported by small C wrappers named `rvs_*`, compiled with the same
//! CFLAGS. Nothing here is safe to call directly: the safe layer is
//! `dataplane::dpdk`.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all, clippy::undocumented_unsafe_blocks)]
#![allow(missing_docs, rustdoc::all, unsafe_op_in_unsafe_fn)]

include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
