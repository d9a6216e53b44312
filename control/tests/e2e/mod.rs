//! End-to-end test harness: network-namespace topologies with real kernel
//! TCP/UDP stacks at both ends of the director (ARCHITECTURE.md §8 item 5).
//!
//! A test binary uses it with `mod e2e;` (this directory is not a test target
//! of its own). Everything runs as subprocesses (`ip`, `ethtool`, `sysctl`,
//! `python3 scripts/e2e/*.py`) so the tests need no `unsafe` (`setns`) and no
//! extra crates. Needs root; [`netns::skip_unless_root`] lets a test skip
//! (with a printed reason) where it is not.
//!
//! - [`netns`]: [`netns::Topology`] (build, RAII teardown, stale sweep), the
//!   address plan ([`netns::plan`]), per-mode real-server set-up, `exec` /
//!   `spawn` / neighbour helpers.
//! - [`servers`]: the Python servers and clients, and their parsed results.
#![allow(dead_code)] // each test binary uses its own subset of the harness

pub mod json;
pub mod netns;
pub mod servers;
