//! End-to-end test harness: network-namespace topologies with real kernel
//! TCP/UDP stacks at both ends of the director (ARCHITECTURE.md §9 item 5).
//!
//! A test binary uses it with `mod e2e;` (this directory is not a test target
//! of its own). Everything runs as subprocesses (`ip`, `ethtool`, `sysctl`,
//! `python3 scripts/e2e/*.py`) so the tests need no `unsafe` (`setns`) and no
//! extra crates. Needs root; where it is not, [`netns::skip_unless_root`]
//! fails the test in CI and reports it as skipped elsewhere.
//!
//! - [`netns`]: [`netns::Topology`] (build, RAII teardown, stale sweep), the
//!   address plan ([`netns::plan`]), per-mode real-server set-up, `exec` /
//!   `spawn` / neighbour helpers.
//! - [`servers`]: the Python servers and clients, and their parsed results.
//! - [`json`]: the flat-JSON-lines parser for the clients' output.
//! - [`rvsd`]: the real rvsd in a topology's director namespace (config
//!   written per test, readiness, rvsadm, SIGHUP, drop/stat checks,
//!   cleanup of the EAL runtime dir); the scenarios in `e2e_modes.rs` and
//!   `e2e_ops.rs` use it.
//!
//! # A scenario with rvsd (sketch)
//!
//! ```text
//! mod e2e;
//! use e2e::netns::{plan, Mode, Topology};
//! use e2e::servers::{self, HTTP_PORT};
//!
//! let topo = Topology::build();                 // 3 real servers, 4+4 client addresses
//! topo.setup_servers(Mode::Nat).unwrap();       // or Dr / FullNat (Tun: Err where no ipip)
//! let _srv = servers::start_all(&topo);         // HTTP :80 + UDP echo :5353 on every rs
//! // rvsd in the director namespace (af_packet opens interfaces of the
//! // namespace it runs in). DPDK port 0 = client segment, port 1 = server
//! // segment; the director owns, on port 0: plan::DIR_CLI4/6 (/24, /64) and
//! // the VIPs plan::VIP4/VIP6 (it answers ARP/NDP for them); on port 1:
//! // plan::DIR_SRV4/6 (/24, /64) and, for FullNAT, plan::LOCAL_POOL4/6.
//! // Next hops: clients 198.18.0.10-13 / 2001:db8:0:1::10-13 are on-link
//! // on port 0, real servers plan::server4(n)/server6(n) on port 1.
//! let mut argv: Vec<String> = vec![env!("CARGO_BIN_EXE_rvsd").into(), "--no-huge".into(),
//!     "-m".into(), "256".into(), "--no-pci".into(), format!("--file-prefix=rvs-{}", topo.tag)];
//! argv.extend(topo.dpdk_vdevs());   // --vdev=net_af_packet0,iface=<tag>-dc,qpairs=1 and ...1,iface=<tag>-ds
//! let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
//! let _rvsd = topo.spawn(&topo.director, &argv); // killed on drop
//! servers::wait_tcp(&topo.client, plan::VIP4, HTTP_PORT, std::time::Duration::from_secs(30)).unwrap();
//! let res = servers::http_get(&topo.client, Some(&topo.clients4[0]), plan::VIP4, HTTP_PORT, "/", 30);
//! ```
//!
//! Until rvsd runs, [`netns::Topology::kernel_director`] makes the director
//! namespace a kernel router with the same addresses, and
//! `scripts/e2e/mini_dr.py` is a toy packet-socket DR director; the harness
//! tests (`control/tests/e2e_harness.rs`) use both.
#![allow(dead_code)] // each test binary uses its own subset of the harness

pub mod json;
pub mod netns;
pub mod rvsd;
pub mod servers;
