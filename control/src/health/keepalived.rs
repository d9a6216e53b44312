//! keepalived.conf virtual servers as rvs configuration.

use crate::daemon::proto::Reply;

/// rvsadm's flag for the converter.
pub const IMPORT_FLAG: &str = "--import-keepalived";

/// `rvsadm --import-keepalived FILE`.
pub fn import_command(_args: &[String]) -> Reply {
    Reply {
        status: 1,
        stdout: String::new(),
        stderr: "not yet\n".into(),
    }
}
