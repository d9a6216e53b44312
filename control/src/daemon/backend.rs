//! Which dataplane rvsd runs on. The DPDK dataplane replaces the body of
//! [`build_dataplane`]; everything else in rvsd talks to the trait only.

use super::dataplane::Dataplane;
use super::log::log;
use super::mock::MockDataplane;
use crate::config::Config;

/// Environment variable naming a file where the mock dataplane appends
/// every model it is given (tests of the rvsd binary read it).
pub const MOCK_RECORD_ENV: &str = "RVSD_MOCK_RECORD";

/// Builds the dataplane for a validated config. For now: the mock, which
/// forwards nothing.
pub fn build_dataplane(cfg: &Config) -> Result<Box<dyn Dataplane>, String> {
    log("no DPDK dataplane linked yet: using the mock dataplane (no packets are forwarded)");
    let mut mock = MockDataplane::from_config(cfg);
    if let Some(path) = std::env::var_os(MOCK_RECORD_ENV) {
        mock = mock.record_to(path.into());
    }
    Ok(Box::new(mock))
}
