//! rvs control plane: configuration, the control thread, statistics.
//!
//! The pure-logic parts live here: [`model`] (what `ipvsadm -L` shows and
//! the operations on it), [`config`] (the rvsd TOML file, validated whole),
//! [`ipvsadm`] (the `rvsadm` command line, listings, save/restore) and
//! [`metrics`] (Prometheus text exposition); [`daemon`] runs them as rvsd
//! and rvsadm.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bgp;
pub mod config;
pub mod daemon;
pub mod health;
pub mod ipvsadm;
pub mod metrics;
pub mod model;
