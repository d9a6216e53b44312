//! rvsd as a process: command line, start-up order, the control socket,
//! the metrics endpoint, signals and the main (control) thread's loop.
//!
//! Start-up: the whole config is loaded and validated first; then the
//! control socket and the metrics port are bound (so a second rvsd or a
//! busy port fails before the dataplane starts), the dataplane is built
//! and given the model, and `READY=1` goes to systemd.
//!
//! Threads: the main thread owns the [`Daemon`] and waits on one channel.
//! Helper threads only do I/O and send it events: one per control
//! connection (reads the request with a timeout, waits for the reply,
//! writes it), one accepting control connections, one serving HTTP
//! scrapes, one turning signals into events. A stuck client therefore
//! never stalls the daemon.

use super::dataplane::Dataplane;
use super::http::{self, Route};
use super::log::log;
use super::notify::{notify, reloading_message};
use super::proto::{Reply, Request};
use super::{est, Daemon};
use crate::config::{self, Config};
use crate::metrics;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::io::{self, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Config file used when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/rvs/rvsd.toml";
/// How long a control client may take to send its request or read the reply.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most control connections served at once; more are closed at once.
pub const MAX_CLIENTS: usize = 32;

/// rvsd's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--config FILE`.
    pub config: PathBuf,
    /// `--check`: validate the config and exit.
    pub check: bool,
    /// Arguments after `--`: extra DPDK EAL arguments, appended to
    /// `[eal] extra_args`.
    pub eal_args: Vec<String>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run (or check) with these options.
    Run(Options),
    /// `-h`/`--help`.
    Help,
    /// `-V`/`--version`.
    Version,
}

/// The `--help` text.
pub fn usage() -> String {
    format!(
        "Usage: rvsd [--config FILE] [--check] [-- EAL-ARGS...]\n\
         \n\
         rvs director daemon: runs the dataplane and answers rvsadm.\n\
         \n\
         \x20 -c, --config FILE   config file (default {DEFAULT_CONFIG})\n\
         \x20     --check         validate the config, print every error, exit 0 or 1\n\
         \x20 -h, --help          this text\n\
         \x20 -V, --version       version\n\
         \x20 -- EAL-ARGS...      extra DPDK EAL arguments (after [eal] extra_args)\n\
         \n\
         Signals: HUP reloads the config file, TERM and INT stop (with [bgp]:\n\
         \x20 withdraw the VIPs, forward for bgp.drain_seconds, then stop; a\n\
         \x20 second signal stops at once).\n"
    )
}

/// Parses rvsd's arguments (without the program name).
pub fn parse_args<S: AsRef<str>>(args: &[S]) -> Result<Invocation, String> {
    let mut config = None;
    let mut check = false;
    let mut it = args.iter().map(AsRef::as_ref);
    let mut eal_args = Vec::new();
    while let Some(a) = it.next() {
        match a {
            "-c" | "--config" => {
                let v = it.next().ok_or_else(|| format!("{a} needs a file"))?;
                config = Some(PathBuf::from(v));
            }
            "--check" => check = true,
            "-h" | "--help" => return Ok(Invocation::Help),
            "-V" | "--version" => return Ok(Invocation::Version),
            "--" => {
                eal_args = it.by_ref().map(String::from).collect();
            }
            _ => match a.strip_prefix("--config=") {
                Some(v) => config = Some(PathBuf::from(v)),
                None => return Err(format!("unknown argument '{a}' (try --help)")),
            },
        }
    }
    Ok(Invocation::Run(Options {
        config: config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
        check,
        eal_args,
    }))
}

/// What the main loop waits for.
enum Event {
    Request(Request, Sender<Reply>),
    Scrape(Sender<String>),
    Signal(i32),
    Health(Box<crate::health::Report>),
}

/// Runs rvsd: returns the process exit status. `build` makes the
/// dataplane from the validated config (see [`super::backend`]).
pub fn run(opts: &Options, build: fn(&Config) -> Result<Box<dyn Dataplane>, String>) -> i32 {
    let cfg = match config::load(&opts.config) {
        Ok(c) => c,
        Err(errs) => {
            for e in &errs.0 {
                if opts.check {
                    eprintln!("{e}");
                } else {
                    log(format!("config error: {e}"));
                }
            }
            return 1;
        }
    };
    if opts.check {
        println!("{}: OK", opts.config.display());
        return 0;
    }
    match start(opts, cfg, build) {
        Ok(code) => code,
        Err(e) => {
            log(format!("cannot start: {e}"));
            1
        }
    }
}

fn start(
    opts: &Options,
    cfg: Config,
    build: fn(&Config) -> Result<Box<dyn Dataplane>, String>,
) -> Result<i32, String> {
    let sock_path = PathBuf::from(&cfg.control.socket);
    let (listener, sock_ino) = bind_control(&sock_path)?;
    let cleanup = SocketFile {
        path: sock_path.clone(),
        ino: sock_ino,
    };
    let metrics = TcpListener::bind(&cfg.metrics.listen)
        .map_err(|e| format!("metrics.listen {}: {e}", cfg.metrics.listen))?;
    let signals = Signals::new([SIGHUP, SIGTERM, SIGINT])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;

    // the dataplane gets the command line's EAL arguments too; the daemon
    // keeps the file's config, which is what a reload compares with
    let mut dp_cfg = cfg.clone();
    dp_cfg.eal.extra_args.extend(opts.eal_args.iter().cloned());
    let dp = build(&dp_cfg)?;
    let mut daemon = Daemon::start(&opts.config, cfg, dp)?;

    let (tx, rx) = mpsc::channel();
    {
        // checker threads report to the control thread's queue
        let htx = tx.clone();
        daemon.start_health(Arc::new(move |r| {
            let _ = htx.send(Event::Health(Box::new(r)));
        }))?;
    }
    let stopping = Arc::new(AtomicBool::new(false));
    spawn("rvsd-signals", {
        let tx = tx.clone();
        let mut signals = signals;
        move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        }
    })?;
    spawn("rvsd-control", {
        let tx = tx.clone();
        let stopping = stopping.clone();
        move || accept_control(&listener, &tx, &stopping)
    })?;
    spawn("rvsd-metrics", {
        let tx = tx.clone();
        move || serve_metrics(&metrics, &tx)
    })?;
    drop(tx);

    log(format!(
        "ready: {} service(s), control socket {}, metrics http://{}/metrics",
        daemon.model().services.len(),
        sock_path.display(),
        daemon.config().metrics.listen
    ));
    if let Err(e) = notify("READY=1\nSTATUS=running") {
        log(e);
    }
    main_loop(&mut daemon, &rx);

    // Stop: refuse new control connections, stop the dataplane, clean up.
    stopping.store(true, Ordering::SeqCst);
    let _ = notify("STOPPING=1");
    drop(cleanup);
    daemon.shutdown();
    log("stopped");
    Ok(0)
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("cannot start thread {name}: {e}"))
}

fn main_loop(daemon: &mut Daemon, rx: &Receiver<Event>) {
    let mut next_tick = Instant::now() + est::INTERVAL;
    // SIGTERM with [bgp]: the VIPs are withdrawn, forwarding goes on
    // until then, so the routers move the flows before anything stops
    let mut stop_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t) {
            log("drain time over: stopping");
            return;
        }
        if now >= next_tick {
            daemon.sample_rates();
            daemon.poll_passive();
            next_tick += est::INTERVAL;
            if next_tick <= now {
                next_tick = now + est::INTERVAL; // we were stalled; skip ahead
            }
            continue;
        }
        let wake = stop_at.map_or(next_tick, |t| t.min(next_tick));
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok(Event::Request(req, reply)) => {
                let _ = reply.send(daemon.handle(&req));
            }
            Ok(Event::Health(r)) => daemon.on_health(&r),
            Ok(Event::Scrape(reply)) => {
                let _ = reply.send(daemon.metrics());
            }
            Ok(Event::Signal(SIGHUP)) => {
                let _ = notify(&reloading_message());
                match daemon.reload() {
                    Ok(summary) => log(summary),
                    Err(e) => log(format!("reload failed, keeping the running state:\n{e}")),
                }
                let _ = notify("READY=1");
            }
            Ok(Event::Signal(sig)) => {
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                if stop_at.is_some() {
                    log(format!("{name} again: stopping now"));
                    return;
                }
                match daemon.begin_stop() {
                    Some(grace) => {
                        log(format!(
                            "{name}: VIPs withdrawn, forwarding for {} s more (bgp.drain_seconds), then stopping",
                            grace.as_secs()
                        ));
                        stop_at = Some(Instant::now() + grace);
                    }
                    None => {
                        log(format!("{name}: stopping"));
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Removes the control socket on drop, if it is still the one we bound.
struct SocketFile {
    path: PathBuf,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the control socket: creates its directory, replaces a stale
/// socket nobody answers on, refuses when a live daemon answers or the
/// path is not a socket. Returns the listener and the socket's inode.
pub fn bind_control(path: &Path) -> Result<(UnixListener, u64), String> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(format!(
                "control socket {shown} exists and is not a socket; not replacing it"
            ));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(format!("another rvsd is running: it answers on {shown}")),
            Err(_) => {
                log(format!("removing stale control socket {shown}"));
                std::fs::remove_file(path).map_err(|e| format!("{shown}: {e}"))?;
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{shown}: {e}")),
    }
    let l = UnixListener::bind(path).map_err(|e| format!("control socket {shown}: {e}"))?;
    // root and the group the operator gives the socket may administer
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660));
    let ino = std::fs::symlink_metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok((l, ino))
}

fn accept_control(listener: &UnixListener, tx: &Sender<Event>, stopping: &Arc<AtomicBool>) {
    let busy = Arc::new(AtomicUsize::new(0));
    for conn in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                log(format!("control socket accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            busy.fetch_sub(1, Ordering::SeqCst);
            log("control socket: too many clients at once; closing one");
            continue;
        }
        let tx = tx.clone();
        let busy2 = busy.clone();
        let spawned = spawn("rvsd-client", move || {
            serve_control(stream, &tx);
            busy2.fetch_sub(1, Ordering::SeqCst);
        });
        if let Err(e) = spawned {
            busy.fetch_sub(1, Ordering::SeqCst);
            log(e);
        }
    }
}

fn serve_control(stream: UnixStream, tx: &Sender<Event>) {
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let req = match Request::read_from(&mut BufReader::new(&stream)) {
        Ok(r) => r,
        // a liveness probe (connect and close) is not worth a log line
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return,
        Err(e) => {
            log(format!("control socket: bad request: {e}"));
            return;
        }
    };
    let (rtx, rrx) = mpsc::channel();
    let reply = if tx.send(Event::Request(req, rtx)).is_ok() {
        rrx.recv().ok()
    } else {
        None
    };
    let reply = reply.unwrap_or_else(|| Reply {
        status: 1,
        stdout: String::new(),
        stderr: "rvsd: shutting down\n".into(),
    });
    let mut w = &stream;
    if let Err(e) = reply.write_to(&mut w) {
        log(format!("control socket: cannot send the reply: {e}"));
    }
}

fn serve_metrics(listener: &TcpListener, tx: &Sender<Event>) {
    for conn in listener.incoming() {
        match conn {
            Ok(s) => {
                if let Err(e) = scrape(&s, tx) {
                    if e.kind() != io::ErrorKind::BrokenPipe {
                        log(format!("metrics: {e}"));
                    }
                }
            }
            Err(e) => {
                log(format!("metrics accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn scrape(stream: &TcpStream, tx: &Sender<Event>) -> io::Result<()> {
    stream.set_read_timeout(Some(http::CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(http::CLIENT_TIMEOUT))?;
    let mut r = stream;
    let route = http::read_request(&mut r)?;
    let mut w = stream;
    let plain = "text/plain; charset=utf-8";
    match route {
        Route::Metrics { head } => {
            let (rtx, rrx) = mpsc::channel();
            let body = tx
                .send(Event::Scrape(rtx))
                .ok()
                .and_then(|()| rrx.recv_timeout(http::CLIENT_TIMEOUT).ok());
            match body {
                Some(b) => http::respond(&mut w, "200 OK", metrics::CONTENT_TYPE, &b, head),
                None => http::respond(
                    &mut w,
                    "503 Service Unavailable",
                    plain,
                    "rvsd is busy or stopping\n",
                    head,
                ),
            }
        }
        Route::NotFound => http::respond(&mut w, "404 Not Found", plain, "not found\n", false),
        Route::BadMethod => http::respond(
            &mut w,
            "405 Method Not Allowed",
            plain,
            "only GET and HEAD\n",
            false,
        ),
        Route::BadRequest => {
            http::respond(&mut w, "400 Bad Request", plain, "bad request\n", false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        assert_eq!(
            parse_args(&["--config", "/x.toml", "--check"]).unwrap(),
            Invocation::Run(Options {
                config: "/x.toml".into(),
                check: true,
                eal_args: vec![],
            })
        );
        assert_eq!(
            parse_args(&["--config=/x.toml", "--", "-l", "0-3"]).unwrap(),
            Invocation::Run(Options {
                config: "/x.toml".into(),
                check: false,
                eal_args: vec!["-l".into(), "0-3".into()],
            })
        );
        assert_eq!(
            parse_args::<&str>(&[]).unwrap(),
            Invocation::Run(Options {
                config: DEFAULT_CONFIG.into(),
                check: false,
                eal_args: vec![],
            })
        );
        assert_eq!(parse_args(&["-h"]).unwrap(), Invocation::Help);
        assert!(parse_args(&["--config"]).is_err());
        assert!(parse_args(&["--bogus"]).is_err());
    }

    #[test]
    fn control_socket_stale_live_and_foreign() {
        let dir = std::env::temp_dir().join(format!("rvsd-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub/rvsd.sock");
        let (live, _) = bind_control(&path).unwrap();
        // a live listener answers: refuse
        assert!(bind_control(&path).unwrap_err().contains("another rvsd"));
        drop(live);
        // stale file left behind: replaced
        assert!(path.exists());
        let (_l, _) = bind_control(&path).unwrap();
        // not a socket: refuse and leave it
        let file = dir.join("plain");
        std::fs::write(&file, "x").unwrap();
        assert!(bind_control(&file).unwrap_err().contains("not a socket"));
        assert!(file.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
