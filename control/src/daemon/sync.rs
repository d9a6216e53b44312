//! rvsd's connection-sync daemons (`ipvsadm --start-daemon`), one thread
//! each, outside the control thread:
//!
//! - master: takes the connections the workers report (the runtime's
//!   [`SyncEvents`] queue, filled only while the snapshot enables sync),
//!   batches them into LVS sync v1 messages up to the size IPVS derives
//!   from the MTU, and sends a message when the next connection does not
//!   fit or when its first connection has waited `flush` (IPVS: 2 s);
//!   over UDP to the multicast group (TTL 1, loop off) or a unicast peer;
//! - backup: receives on the group (joined on the interface's address) or
//!   the unicast port, validates each datagram whole and installs its
//!   connections through the runtime's [`ConnInstaller`] on the worker
//!   that owns each client endpoint.
//!
//! The sockets are the kernel's (std UDP): sync runs on a management
//! interface, not on DPDK ports.

use dataplane::channel::{ConnInstaller, SyncEvents};
use dataplane::sync::SyncConn;
use dataplane::sync::{decode, max_mesg_len, DecodeError, EntrySkip, MessageBuilder, SyncParams};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// Sends.
    Master,
    /// Receives.
    Backup,
}

impl SyncState {
    /// Parses "master" / "backup".
    pub fn from_name(s: &str) -> Option<SyncState> {
        match s {
            "master" => Some(SyncState::Master),
            "backup" => Some(SyncState::Backup),
            _ => None,
        }
    }

    /// The name ipvsadm prints.
    pub fn name(self) -> &'static str {
        match self {
            SyncState::Master => "master",
            SyncState::Backup => "backup",
        }
    }
}

/// How a sync daemon runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSettings {
    /// Interface name (`--mcast-interface`).
    pub interface: Option<String>,
    /// Sync id.
    pub syncid: u8,
    /// Multicast group.
    pub group: Ipv4Addr,
    /// UDP port.
    pub port: u16,
    /// Multicast TTL.
    pub ttl: u32,
    /// Unicast peer instead of the group.
    pub peer: Option<SocketAddr>,
    /// Local address to bind (default: the interface's IPv4 address).
    pub bind: Option<IpAddr>,
    /// MTU of the sync path.
    pub mtu: u16,
    /// The sysctls.
    pub params: SyncParams,
    /// Longest wait of a connection in a message that is not full.
    pub flush: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            interface: None,
            syncid: 0,
            group: Ipv4Addr::new(224, 0, 0, 81),
            port: 8848,
            ttl: 1,
            peer: None,
            bind: None,
            mtu: 1500,
            params: SyncParams::default(),
            flush: Duration::from_secs(2),
        }
    }
}

impl SyncSettings {
    /// From `[ha]` (already validated).
    pub fn from_config(ha: &crate::config::Ha) -> SyncSettings {
        let d = SyncSettings::default();
        SyncSettings {
            interface: ha.sync_interface.clone(),
            syncid: ha.sync_id,
            group: ha.sync_group.parse().unwrap_or(d.group),
            port: ha.sync_port,
            ttl: ha.sync_ttl,
            peer: ha
                .sync_peer
                .as_deref()
                .and_then(|p| crate::config::parse_peer(p, ha.sync_port)),
            bind: ha.sync_bind.as_deref().and_then(|b| b.parse().ok()),
            mtu: ha.sync_mtu,
            params: SyncParams {
                threshold: ha.sync_threshold[0],
                period: ha.sync_threshold[1],
                refresh_period: ha.sync_refresh_period,
                retries: ha.sync_retries,
            },
            flush: Duration::from_millis(ha.sync_flush_ms.max(1)),
        }
    }

    /// The ipvsadm `-L --daemon` line.
    pub fn describe(&self, state: SyncState) -> String {
        let mut s = format!(
            "{} sync daemon (mcast={}, syncid={}",
            state.name(),
            self.interface.as_deref().unwrap_or(""),
            self.syncid
        );
        let d = SyncSettings::default();
        if self.group != d.group || self.port != d.port || self.ttl != d.ttl {
            let _ = write!(
                s,
                ", group={}, port={}, ttl={}",
                self.group, self.port, self.ttl
            );
        }
        if let Some(p) = self.peer {
            let _ = write!(s, ", peer={p}");
        }
        s.push(')');
        s
    }

    /// The local IPv4 address to bind: configured, or the interface's.
    fn local_addr(&self) -> Option<IpAddr> {
        self.bind.or_else(|| {
            self.interface
                .as_deref()
                .and_then(interface_v4)
                .map(IpAddr::V4)
        })
    }
}

/// The first IPv4 address of a kernel interface (`ip -o -4 addr show dev
/// IF`), if the tool and the interface exist.
pub fn interface_v4(ifname: &str) -> Option<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", ifname])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "inet" {
            let a = words.next()?;
            return a.split('/').next()?.parse().ok();
        }
    }
    None
}

/// Sync counters (both daemons), read by `rvsadm --sync-stats`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Messages sent.
    pub sent_msgs: AtomicU64,
    /// Connections sent.
    pub sent_conns: AtomicU64,
    /// Send errors (messages lost).
    pub send_errors: AtomicU64,
    /// Connections that could not be encoded (mixed families).
    pub unencodable: AtomicU64,
    /// Age in milliseconds of the oldest connection of the last message
    /// sent (master lag).
    pub last_lag_ms: AtomicU64,
    /// Datagrams received.
    pub recv_msgs: AtomicU64,
    /// Receive errors.
    pub recv_errors: AtomicU64,
    /// Connections received in valid messages.
    pub recv_conns: AtomicU64,
    /// Connections queued to a worker.
    pub installed: AtomicU64,
    /// Connections lost because a worker's command ring was full.
    pub install_failed: AtomicU64,
    /// Whole messages dropped, by [`DecodeError::ALL`] index.
    pub dropped: [AtomicU64; DecodeError::ALL.len()],
    /// Entries skipped, by [`EntrySkip::ALL`] index.
    pub skipped: [AtomicU64; EntrySkip::ALL.len()],
    /// Milliseconds since the daemon started at the last valid message
    /// (backup lag: now minus this).
    pub last_recv_ms: AtomicU64,
}

impl SyncStats {
    fn drop_reason(&self, e: DecodeError) {
        if let Some(i) = DecodeError::ALL.iter().position(|x| *x == e) {
            self.dropped[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn skip_reason(&self, e: EntrySkip) {
        if let Some(i) = EntrySkip::ALL.iter().position(|x| *x == e) {
            self.skipped[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages dropped for `e`.
    pub fn dropped_for(&self, e: DecodeError) -> u64 {
        DecodeError::ALL
            .iter()
            .position(|x| *x == e)
            .and_then(|i| self.dropped.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Entries skipped for `e`.
    pub fn skipped_for(&self, e: EntrySkip) -> u64 {
        EntrySkip::ALL
            .iter()
            .position(|x| *x == e)
            .and_then(|i| self.skipped.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Handles one received datagram: validates it whole, then hands each
/// usable connection to `install` (which says whether it was queued).
/// Nothing of an invalid message is installed.
pub fn handle_datagram(
    buf: &[u8],
    syncid: u8,
    stats: &SyncStats,
    install: &mut dyn FnMut(SyncConn) -> bool,
) {
    stats.recv_msgs.fetch_add(1, Ordering::Relaxed);
    let msg = match decode(buf, syncid) {
        Ok(m) => m,
        Err(e) => {
            stats.drop_reason(e);
            return;
        }
    };
    for e in msg.entries {
        match e {
            Ok(e) => {
                stats.recv_conns.fetch_add(1, Ordering::Relaxed);
                if install(e.conn) {
                    stats.installed.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.install_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(s) => stats.skip_reason(s),
        }
    }
}

/// A connection the codec cannot carry (addresses of mixed families).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unencodable;

/// Batches connections into messages, as IPVS's master does.
#[derive(Debug)]
pub struct Batcher {
    b: MessageBuilder,
    first: Option<Instant>,
    flush: Duration,
}

impl Batcher {
    /// For sync id `syncid`, MTU `mtu`, flushing after `flush`.
    pub fn new(syncid: u8, mtu: u16, flush: Duration) -> Self {
        Batcher {
            b: MessageBuilder::new(syncid, max_mesg_len(mtu)),
            first: None,
            flush,
        }
    }

    /// Adds `c` at `now`; returns a full message to send first, if `c`
    /// did not fit in the current one. `Err` when `c` is not encodable.
    pub fn push(
        &mut self,
        c: &SyncConn,
        now: Instant,
    ) -> Result<Option<(Vec<u8>, Duration)>, Unencodable> {
        if self.b.push(c) {
            self.first.get_or_insert(now);
            return Ok(None);
        }
        if self.b.is_empty() {
            return Err(Unencodable);
        }
        let age = self.first.map_or(Duration::ZERO, |f| now.duration_since(f));
        let full = self.b.take();
        self.first = None;
        if self.b.push(c) {
            self.first = Some(now);
        }
        Ok(Some((full, age)))
    }

    /// The pending message, if its first connection has waited long
    /// enough (or `force`).
    pub fn due(&mut self, now: Instant, force: bool) -> Option<(Vec<u8>, Duration)> {
        let f = self.first?;
        let age = now.duration_since(f);
        if !force && age < self.flush {
            return None;
        }
        self.first = None;
        Some((self.b.take(), age))
    }
}

/// A running sync daemon.
#[derive(Debug)]
pub struct SyncDaemon {
    /// Master or backup.
    pub state: SyncState,
    /// Its settings.
    pub settings: SyncSettings,
    /// Its counters.
    pub stats: Arc<SyncStats>,
    /// Where it sends (master) or listens (backup).
    pub addr: SocketAddr,
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyncDaemon {
    /// Starts a master: sends what `events` collects (nothing when the
    /// dataplane has no queue, e.g. the mock).
    pub fn start_master(
        settings: SyncSettings,
        events: Option<Arc<SyncEvents>>,
    ) -> Result<SyncDaemon, String> {
        let local = settings
            .local_addr()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let sock = UdpSocket::bind(SocketAddr::new(local, 0))
            .map_err(|e| format!("sync master socket on {local}: {e}"))?;
        let dest = match settings.peer {
            Some(p) => p,
            None => {
                sock.set_multicast_ttl_v4(settings.ttl)
                    .map_err(|e| format!("sync multicast ttl: {e}"))?;
                let _ = sock.set_multicast_loop_v4(false);
                SocketAddr::new(IpAddr::V4(settings.group), settings.port)
            }
        };
        let stats = Arc::new(SyncStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop, s) = (stats.clone(), stop.clone(), settings.clone());
            std::thread::Builder::new()
                .name("rvsd-sync-master".into())
                .spawn(move || master_loop(&sock, dest, &s, events.as_deref(), &stats, &stop))
                .map_err(|e| format!("sync master thread: {e}"))?
        };
        Ok(SyncDaemon {
            state: SyncState::Master,
            settings,
            stats,
            addr: dest,
            started: Instant::now(),
            stop,
            thread: Some(thread),
        })
    }

    /// Starts a backup: installs what arrives through `installer` (only
    /// counts when there is none).
    pub fn start_backup(
        settings: SyncSettings,
        installer: Option<ConnInstaller>,
    ) -> Result<SyncDaemon, String> {
        let local = settings.local_addr();
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let bind = match settings.peer {
            Some(_) => SocketAddr::new(local.unwrap_or(any), settings.port),
            None => SocketAddr::new(any, settings.port),
        };
        let sock = UdpSocket::bind(bind).map_err(|e| format!("sync backup socket {bind}: {e}"))?;
        if settings.peer.is_none() {
            let ifaddr = match local {
                Some(IpAddr::V4(a)) => a,
                _ => Ipv4Addr::UNSPECIFIED,
            };
            sock.join_multicast_v4(&settings.group, &ifaddr)
                .map_err(|e| format!("joining {} on {ifaddr}: {e}", settings.group))?;
        }
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("sync backup socket: {e}"))?;
        let addr = sock.local_addr().unwrap_or(bind);
        let started = Instant::now();
        let stats = Arc::new(SyncStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stats, stop, s) = (stats.clone(), stop.clone(), settings.clone());
            std::thread::Builder::new()
                .name("rvsd-sync-backup".into())
                .spawn(move || backup_loop(&sock, &s, installer.as_ref(), &stats, &stop, started))
                .map_err(|e| format!("sync backup thread: {e}"))?
        };
        Ok(SyncDaemon {
            state: SyncState::Backup,
            settings,
            stats,
            addr,
            started,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread (a master sends what it holds first).
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// The `--sync-stats` block.
    pub fn render_stats(&self, events: Option<&SyncEvents>) -> String {
        let s = &self.stats;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = format!("{} ({})\n", self.settings.describe(self.state), self.addr);
        match self.state {
            SyncState::Master => {
                let _ = writeln!(
                    out,
                    "  sent: {} messages, {} connections; send errors {}; unencodable {}",
                    g(&s.sent_msgs),
                    g(&s.sent_conns),
                    g(&s.send_errors),
                    g(&s.unencodable)
                );
                let (queued, lost) = events.map_or((0, 0), |e| {
                    (e.queue.len(), e.overflow.load(Ordering::Relaxed))
                });
                let _ = writeln!(
                    out,
                    "  queued: {queued}; dropped (queue full): {lost}; lag: {} ms",
                    g(&s.last_lag_ms)
                );
            }
            SyncState::Backup => {
                let _ = writeln!(
                    out,
                    "  received: {} messages, {} connections; installed {}; install failed {}; receive errors {}",
                    g(&s.recv_msgs),
                    g(&s.recv_conns),
                    g(&s.installed),
                    g(&s.install_failed),
                    g(&s.recv_errors)
                );
                for (i, r) in DecodeError::ALL.iter().enumerate() {
                    let n = s.dropped.get(i).map_or(0, g);
                    if n > 0 {
                        let _ = writeln!(out, "  dropped {}: {n}", r.name());
                    }
                }
                for (i, r) in EntrySkip::ALL.iter().enumerate() {
                    let n = s.skipped.get(i).map_or(0, g);
                    if n > 0 {
                        let _ = writeln!(out, "  skipped {}: {n}", r.name());
                    }
                }
                let last = g(&s.last_recv_ms);
                if last > 0 {
                    let now = self.started.elapsed().as_millis() as u64;
                    let _ = writeln!(
                        out,
                        "  lag: last connection {} ms ago",
                        now.saturating_sub(last)
                    );
                }
            }
        }
        out
    }
}

impl Drop for SyncDaemon {
    fn drop(&mut self) {
        self.halt();
    }
}

fn send(sock: &UdpSocket, dest: SocketAddr, msg: &[u8], age: Duration, stats: &SyncStats) {
    let n = u64::from(msg.get(4).copied().unwrap_or(0));
    match sock.send_to(msg, dest) {
        Ok(_) => {
            stats.sent_msgs.fetch_add(1, Ordering::Relaxed);
            stats.sent_conns.fetch_add(n, Ordering::Relaxed);
            stats
                .last_lag_ms
                .store(age.as_millis() as u64, Ordering::Relaxed);
        }
        Err(_) => {
            stats.send_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn master_loop(
    sock: &UdpSocket,
    dest: SocketAddr,
    s: &SyncSettings,
    events: Option<&SyncEvents>,
    stats: &SyncStats,
    stop: &AtomicBool,
) {
    let mut b = Batcher::new(s.syncid, s.mtu, s.flush);
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        let mut got = 0;
        if let Some(ev) = events {
            while let Some(c) = ev.queue.pop() {
                got += 1;
                match b.push(&c, Instant::now()) {
                    Ok(Some((m, age))) => send(sock, dest, &m, age, stats),
                    Ok(None) => {}
                    Err(Unencodable) => {
                        stats.unencodable.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if got >= 4096 {
                    break;
                }
            }
        }
        if let Some((m, age)) = b.due(Instant::now(), stopping) {
            send(sock, dest, &m, age, stats);
        }
        if stopping {
            return;
        }
        if got == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn backup_loop(
    sock: &UdpSocket,
    s: &SyncSettings,
    installer: Option<&ConnInstaller>,
    stats: &SyncStats,
    stop: &AtomicBool,
    t0: Instant,
) {
    let mut buf = vec![0u8; 65536];
    let mut install = |c: SyncConn| installer.is_none_or(|i| i.install(c));
    while !stop.load(Ordering::SeqCst) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if s.peer.is_some_and(|p| p.ip() != from.ip()) {
                    continue; // unicast: only the configured peer
                }
                let before = stats.recv_conns.load(Ordering::Relaxed);
                handle_datagram(buf.get(..n).unwrap_or(&[]), s.syncid, stats, &mut install);
                if stats.recv_conns.load(Ordering::Relaxed) != before {
                    stats
                        .last_recv_ms
                        .store(t0.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                stats.recv_errors.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::sync::codec::F_INACTIVE;

    fn conn(i: u16) -> SyncConn {
        SyncConn {
            proto: 6,
            flags: F_INACTIVE,
            state: 3,
            client: "198.18.0.10".parse().unwrap(),
            cport: 1000 + i,
            vip: "198.18.0.100".parse().unwrap(),
            vport: 80,
            rip: "198.19.0.11".parse().unwrap(),
            rport: 80,
            local: None,
            fwmark: 0,
            timeout: 60,
            seq: None,
        }
    }

    #[test]
    fn invalid_messages_are_counted_and_never_installed() {
        let stats = SyncStats::default();
        let mut installed = Vec::new();
        let mut b = MessageBuilder::new(7, 1444);
        assert!(b.push(&conn(1)));
        assert!(b.push(&conn(2)));
        let good = b.take();
        let mut wrong_id = good.clone();
        wrong_id[1] = 8;
        let mut v2 = good.clone();
        v2[5] = 2;
        let mut lying = good.clone();
        lying[3] ^= 4;
        let mut v0 = good.clone();
        v0[0] = 2;
        let cut = good[..good.len() - 1].to_vec();
        for m in [&wrong_id, &v2, &lying, &v0, &cut] {
            handle_datagram(m, 7, &stats, &mut |c| {
                installed.push(c);
                true
            });
        }
        assert!(installed.is_empty());
        assert_eq!(stats.dropped_for(DecodeError::SyncId), 1);
        assert_eq!(stats.dropped_for(DecodeError::BadVersion), 1);
        assert_eq!(stats.dropped_for(DecodeError::BadSize), 2);
        assert_eq!(stats.dropped_for(DecodeError::V0), 1);
        handle_datagram(&good, 7, &stats, &mut |c| {
            installed.push(c);
            true
        });
        assert_eq!(installed.len(), 2);
        assert_eq!(stats.installed.load(Ordering::Relaxed), 2);
        assert_eq!(stats.recv_msgs.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn batcher_fills_messages_and_flushes_on_time() {
        let t = Instant::now();
        let mut b = Batcher::new(1, 1500, Duration::from_secs(2));
        let mut sent = Vec::new();
        for i in 0..100 {
            if let Some((m, _)) = b.push(&conn(i), t).unwrap() {
                sent.push(m);
            }
        }
        // 39 IPv4 entries fit in 1444 bytes
        assert_eq!(sent.len(), 2);
        assert!(sent.iter().all(|m| m[4] == 39 && m.len() <= 1444));
        assert!(b.due(t + Duration::from_secs(1), false).is_none());
        let (last, age) = b.due(t + Duration::from_secs(2), false).unwrap();
        assert_eq!(last[4], 22);
        assert_eq!(age, Duration::from_secs(2));
        assert!(b.due(t + Duration::from_secs(9), false).is_none());
    }

    #[test]
    fn loopback_unicast_master_to_backup() {
        // backup on an ephemeral loopback port
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let s = SyncSettings {
            syncid: 3,
            port,
            peer: Some(SocketAddr::new("127.0.0.1".parse().unwrap(), port)),
            bind: Some("127.0.0.1".parse().unwrap()),
            flush: Duration::from_millis(10),
            ..SyncSettings::default()
        };
        let backup = SyncDaemon::start_backup(s.clone(), None).unwrap();
        let events = Arc::new(SyncEvents::new(16));
        for i in 0..3 {
            events.queue.push(conn(i)).unwrap();
        }
        let master = SyncDaemon::start_master(s, Some(events)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while backup.stats.installed.load(Ordering::Relaxed) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(backup.stats.installed.load(Ordering::Relaxed), 3);
        assert_eq!(master.stats.sent_conns.load(Ordering::Relaxed), 3);
        assert!(backup.render_stats(None).contains("installed 3"));
        master.stop();
        backup.stop();
    }
}
