//! rvsadm's side of the control socket, as a function the binary and the
//! tests call.

use super::proto::{Reply, Request};
use crate::ipvsadm::{self, Command};
use std::ffi::OsString;
use std::io::{BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Socket used when neither `--socket` nor [`SOCKET_ENV`] names one.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";
/// Environment variable naming the control socket.
pub const SOCKET_ENV: &str = "RVS_SOCKET";
/// How long rvsadm waits for rvsd's reply (a change waits for every
/// worker to take the new snapshot).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Takes rvsadm's own `--socket PATH` / `--socket=PATH` out of `args`.
pub fn split_socket(args: &[String]) -> Result<(Option<PathBuf>, Vec<String>), String> {
    let mut sock = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--socket" {
            let v = it.next().ok_or("option '--socket' needs a path")?;
            sock = Some(PathBuf::from(v));
        } else if let Some(v) = a.strip_prefix("--socket=") {
            sock = Some(PathBuf::from(v));
        } else {
            rest.push(a.clone());
        }
    }
    Ok((sock, rest))
}

/// The I/O error without Rust's " (os error N)" suffix, as strerror words it.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn fail(status: i32, msg: String) -> Reply {
    Reply {
        status,
        stdout: String::new(),
        stderr: format!("{msg}\n"),
    }
}

/// Everything rvsadm does but printing: `args` without the program name,
/// `env_socket` the value of [`SOCKET_ENV`], `stdin` read only for `-R`.
pub fn run(args: &[String], env_socket: Option<OsString>, stdin: &mut impl Read) -> Reply {
    let (sock, args) = match split_socket(args) {
        Ok(x) => x,
        Err(e) => return fail(2, e),
    };
    let path = sock
        .or_else(|| env_socket.filter(|s| !s.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    if args.first().map(String::as_str) == Some(super::HEALTH_FLAG) {
        if args.len() > 1 {
            return fail(2, format!("{} takes no arguments", super::HEALTH_FLAG));
        }
        return ask(
            &path,
            Request {
                args,
                stdin: String::new(),
            },
        );
    }
    let first = args.first().map(String::as_str);
    if first == Some(super::BGP_FLAG) || first == Some(super::DRAIN_FLAG) {
        let ok = match first {
            Some(super::BGP_FLAG) => args.len() == 1,
            _ => args.len() == 2 && matches!(args[1].as_str(), "on" | "off"),
        };
        if !ok {
            return fail(
                2,
                format!(
                    "usage: {} {} | {} on|off",
                    ipvsadm::PROGRAM,
                    super::BGP_FLAG,
                    super::DRAIN_FLAG
                ),
            );
        }
        return ask(
            &path,
            Request {
                args,
                stdin: String::new(),
            },
        );
    }
    if args.first().map(String::as_str) == Some(crate::health::keepalived::IMPORT_FLAG) {
        return crate::health::keepalived::import_command(&args[1..]);
    }
    // parse here too: usage errors and -h need no daemon
    let cmd = match ipvsadm::parse(&args) {
        Ok(c) => c,
        Err(e) => return fail(e.status, e.message),
    };
    if cmd == Command::Help {
        return Reply {
            status: 0,
            stdout: ipvsadm::usage(),
            stderr: String::new(),
        };
    }
    let mut input = String::new();
    if cmd == Command::Restore {
        if let Err(e) = stdin.read_to_string(&mut input) {
            return fail(1, format!("{}: cannot read rules: {e}", ipvsadm::PROGRAM));
        }
    }
    ask(&path, Request { args, stdin: input })
}

/// Sends one request to rvsd and waits for the reply.
fn ask(path: &std::path::Path, req: Request) -> Reply {
    let stream = match UnixStream::connect(path) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                1,
                format!(
                    "{}: cannot connect to rvsd at {}: {} (is rvsd running?)",
                    ipvsadm::PROGRAM,
                    path.display(),
                    strerror(&e)
                ),
            )
        }
    };
    let _ = stream.set_read_timeout(Some(REPLY_TIMEOUT));
    let _ = stream.set_write_timeout(Some(REPLY_TIMEOUT));
    let mut w = &stream;
    if let Err(e) = req.write_to(&mut w) {
        return fail(
            1,
            format!(
                "{}: cannot send to rvsd at {}: {}",
                ipvsadm::PROGRAM,
                path.display(),
                strerror(&e)
            ),
        );
    }
    match Reply::read_from(&mut BufReader::new(&stream)) {
        Ok(r) => r,
        Err(e) => fail(
            1,
            format!(
                "{}: no reply from rvsd at {}: {}",
                ipvsadm::PROGRAM,
                path.display(),
                strerror(&e)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn socket_option() {
        let (p, rest) = split_socket(&s(&["--socket", "/a", "-Ln"])).unwrap();
        assert_eq!((p, rest), (Some("/a".into()), s(&["-Ln"])));
        let (p, rest) = split_socket(&s(&["-L", "--socket=/b"])).unwrap();
        assert_eq!((p, rest), (Some("/b".into()), s(&["-L"])));
        assert!(split_socket(&s(&["--socket"])).is_err());
    }

    #[test]
    fn offline_help_usage_errors_and_missing_daemon() {
        let none = Some(OsString::from("/nonexistent/rvsd.sock"));
        let r = run(&s(&["-h"]), none.clone(), &mut std::io::empty());
        assert_eq!(r.status, 0);
        assert!(r.stdout.starts_with("Usage:"));
        let r = run(
            &s(&["-A", "-t", "bogus"]),
            none.clone(),
            &mut std::io::empty(),
        );
        assert_eq!(r.status, 2);
        assert_eq!(
            r.stderr,
            "illegal virtual server address[:port] specified\n"
        );
        let r = run(&s(&["-Ln"]), none, &mut std::io::empty());
        assert_eq!(r.status, 1);
        assert_eq!(
            r.stderr,
            "rvsadm: cannot connect to rvsd at /nonexistent/rvsd.sock: \
             No such file or directory (is rvsd running?)\n"
        );
    }
}
