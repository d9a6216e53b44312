//! rvsd: the rvs director daemon. See `rvsd --help` and
//! `control::daemon::server` for what it does at start, on signals and at
//! stop.
#![forbid(unsafe_code)]

use control::daemon::{backend, server};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match server::parse_args(&args) {
        Ok(server::Invocation::Run(opts)) => server::run(&opts, backend::build_dataplane),
        Ok(server::Invocation::Help) => {
            print!("{}", server::usage());
            0
        }
        Ok(server::Invocation::Version) => {
            println!("rvsd {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Err(e) => {
            eprintln!("rvsd: {e}");
            2
        }
    };
    std::process::exit(code);
}
