//! systemd's readiness protocol (`sd_notify`) without libsystemd: one
//! datagram of `KEY=VALUE` lines to the socket named by `$NOTIFY_SOCKET`
//! (a path, or an abstract name written with a leading '@').

use std::os::unix::net::UnixDatagram;

/// The `RELOADING=1` message: systemd (`Type=notify-reload`, and
/// `systemctl reload` on any notify unit since v253) wants the
/// `CLOCK_MONOTONIC` time at which the reload began, in microseconds, so it
/// can tell this reload's `READY=1` from an earlier one.
pub fn reloading_message() -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec())
}

/// `CLOCK_MONOTONIC` in microseconds (the clock systemd reads).
pub fn monotonic_usec() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let nsecs = u64::try_from(t.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nsecs / 1000)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reloading_carries_the_monotonic_time() {
        let before = monotonic_usec();
        let m = reloading_message();
        let after = monotonic_usec();
        let (head, usec) = m.split_once("\nMONOTONIC_USEC=").unwrap();
        assert_eq!(head, "RELOADING=1");
        let usec: u64 = usec.parse().unwrap();
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");
        assert!(usec > 0);
    }
}
