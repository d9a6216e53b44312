//! rvs-perf: traffic profiles, the benchmark driver, baselines and reports.
//!
//! Every figure rvs-perf prints is paired with a baseline measured by the
//! same command on the same machine (these machines are shared and noisy),
//! and reported as a ratio to it.
#![forbid(unsafe_code)]

pub mod callgrind;
pub mod flows;
pub mod fwd;
pub mod gen;
pub mod hist;
pub mod pkt;
pub mod report;
pub mod stats;
pub mod testpmd;
pub mod topo;
