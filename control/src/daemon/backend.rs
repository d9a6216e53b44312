//! Which dataplane rvsd runs on: the DPDK dataplane, or the mock when the
//! environment asks for it (tests of the daemon's control logic).

use super::dataplane::Dataplane;
#[cfg(feature = "dpdk")]
use super::dpdk::DpdkDataplane;
use super::log::log;
use super::mock::MockDataplane;
use crate::config::Config;

/// Environment variable naming a file where the mock dataplane appends
/// every model it is given (tests of the rvsd binary read it). Setting it
/// selects the mock.
pub const MOCK_RECORD_ENV: &str = "RVSD_MOCK_RECORD";

/// `RVSD_DATAPLANE=mock` selects the mock dataplane (forwards nothing).
pub const DATAPLANE_ENV: &str = "RVSD_DATAPLANE";

/// Builds the dataplane for a validated config.
pub fn build_dataplane(cfg: &Config) -> Result<Box<dyn Dataplane>, String> {
    let record = std::env::var_os(MOCK_RECORD_ENV);
    let mock = std::env::var(DATAPLANE_ENV).is_ok_and(|v| v == "mock");
    if record.is_some() || mock {
        log("using the mock dataplane (no packets are forwarded)");
        let mut m = MockDataplane::from_config(cfg);
        if let Some(path) = record {
            m = m.record_to(path.into());
        }
        return Ok(Box::new(m));
    }
    start_dpdk(cfg)
}

#[cfg(feature = "dpdk")]
fn start_dpdk(cfg: &Config) -> Result<Box<dyn Dataplane>, String> {
    let dp = DpdkDataplane::start(cfg)?;
    log(format!(
        "DPDK dataplane up: {} port(s), {} worker(s)",
        cfg.ports.len(),
        cfg.dataplane.workers
    ));
    Ok(Box::new(dp))
}

#[cfg(not(feature = "dpdk"))]
fn start_dpdk(_cfg: &Config) -> Result<Box<dyn Dataplane>, String> {
    Err(format!(
        "this rvsd was built without the `dpdk` feature: only the mock dataplane ({DATAPLANE_ENV}=mock) is available"
    ))
}
