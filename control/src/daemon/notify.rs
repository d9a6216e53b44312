//! systemd's readiness protocol (`sd_notify`) without libsystemd: one
//! datagram of `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading '@').

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. "READY=1") to `$NOTIFY_SOCKET`; does nothing when
/// the variable is unset. Errors are returned for the caller to log.
pub fn notify(state: &str) -> Result<(), String> {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let target = target.to_string_lossy().into_owned();
    send(&target, state).map_err(|e| format!("sd_notify to {target}: {e}"))
}

fn send(target: &str, state: &str) -> std::io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        send_abstract(&sock, name, state)
    } else {
        sock.send_to(state.as_bytes(), target).map(|_| ())
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(sock: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    sock.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets are Linux-only",
    ))
}
