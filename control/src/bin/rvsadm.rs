//! rvsadm: ipvsadm's command line for rvs. Parses its arguments locally
//! (so usage errors and `-h` need no daemon), then sends them, with the
//! standard input for `-R`, to rvsd over the control socket and prints
//! the reply, exiting with the daemon's status.
#![forbid(unsafe_code)]

use control::daemon::client;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = client::run(
        &args,
        std::env::var_os(client::SOCKET_ENV),
        &mut std::io::stdin(),
    );
    let _ = std::io::stdout().write_all(out.stdout.as_bytes());
    let _ = std::io::stderr().write_all(out.stderr.as_bytes());
    let _ = std::io::stdout().flush();
    std::process::exit(out.status);
}
