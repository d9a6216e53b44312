//! rvsd, the daemon: the control thread's state and what it does with it.
//!
//! [`Daemon`] owns the running [`Config`], the operator-visible [`Model`]
//! and the [`Dataplane`]. Every change (an `rvsadm` rule command, `-R`, a
//! reload) is made on a copy of the model, published to the dataplane, and
//! only when the dataplane accepted it does the copy replace the model:
//! nothing is ever half-applied. Listings are rendered from the model with
//! counters read from the dataplane and rates from IPVS-style estimators
//! ([`est`]).
//!
//! Reload (SIGHUP) semantics: the file owns what it lists, as keepalived
//! owns the IPVS services it created. The new file is parsed and
//! validated whole; if it is bad, the error is logged and nothing changes.
//! If it is good, every service the file lists becomes exactly the file's
//! (runtime edits of it are reverted), services the file made and no
//! longer lists are removed, and the timeouts become the file's. Services
//! made at run time with `rvsadm` (`-A`, `-R`; [`Origin::Rvsadm`]) are
//! left as they are, with their connections, unless the new file lists
//! the same service, which then becomes the file's; the log line says how
//! many were kept and which were taken over. `rvsadm -L --origin` and
//! `-S --origin` show who owns each service. Sections that need a restart
//! (`[eal]`, ports, routes, worker count, table size, the metrics and
//! control addresses) keep their running values; a changed one is logged.
//!
//! [`server`] runs the daemon as a process: control socket, metrics
//! endpoint, signals, systemd notification.

pub mod backend;
pub mod bgp;
pub mod client;
pub mod dataplane;
#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod est;
pub mod http;
pub mod log;
pub mod mock;
pub mod notify;
pub mod proto;
pub mod server;
pub mod sync;
#[cfg(feature = "dpdk")]
pub mod telemetry;

use self::dataplane::{Dataplane, DataplaneStats, Role};
use self::est::Estimator;
use self::proto::{Reply, Request};
use self::sync::{SyncDaemon, SyncSettings, SyncState};
use crate::config::{self, Config};
use crate::health::{self, Health, Report, Sink};
use crate::ipvsadm::{self, AdmError, Command, DaemonState, Outcome, SyncCmd};
use crate::metrics::{self, MetricsSnapshot};
use crate::model::{LocalAddr, Model, Origin, Service, ServiceKey};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The control thread's state.
pub struct Daemon {
    config_path: PathBuf,
    /// The config rvsd started with (restart-only sections come from it).
    boot: Config,
    /// The config last applied (start or reload).
    config: Config,
    model: Model,
    role: Role,
    dp: Box<dyn Dataplane>,
    service_est: HashMap<ServiceKey, Estimator>,
    real_est: HashMap<(ServiceKey, SocketAddr), Estimator>,
    sync_master: Option<SyncDaemon>,
    sync_backup: Option<SyncDaemon>,
    /// Health-check state; its checkers run once a sink is given.
    health: Health,
    /// Where checker threads report (set by [`Daemon::start_health`]).
    health_sink: Option<Sink>,
    /// The BIRD driver, when `[bgp]` is configured.
    bgp: Option<bgp::Speaker>,
    /// Services never announced (`announce = false`).
    bgp_opt_out: Vec<ServiceKey>,
    /// `rvsadm --drain on`: every VIP withdrawn, forwarding goes on.
    drained: bool,
    /// SIGTERM seen: VIPs withdrawn, stopping after the drain time.
    stopping: bool,
}

fn role_of(cfg: &Config) -> Role {
    // config validation only lets the three names through
    Role::from_name(&cfg.ha.role).unwrap_or(Role::Standalone)
}

fn err_reply(e: &AdmError) -> Reply {
    Reply {
        status: e.status,
        stdout: String::new(),
        stderr: format!("{}\n", e.message),
    }
}

/// The `-Z` commands a rule command or a `-R` input contains, in order.
fn zeros_in(cmd: &Command, stdin: &str) -> Vec<Option<ServiceKey>> {
    match cmd {
        Command::Zero(k) => vec![*k],
        Command::Restore => stdin
            .lines()
            .map(ipvsadm::split_line)
            .filter(|a| !a.is_empty())
            .filter_map(|a| match ipvsadm::parse(&a) {
                Ok(Command::Zero(k)) => Some(k),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Checks a FullNAT local address given at run time as the config file's
/// `laddrs` are checked: the port `-F` names exists and the address is on
/// one of its subnets (the dataplane answers ARP/ND for it there).
fn check_laddr(cfg: &Config, l: &LocalAddr) -> Result<(), String> {
    let ports = cfg.port_cidrs();
    let Some((_, cidrs)) = ports.iter().find(|(name, _)| *name == l.ifname) else {
        let names: Vec<&str> = ports.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "-F {}: unknown port '{}' (ports: {})",
            l.ifname,
            l.ifname,
            names.join(", ")
        ));
    };
    if cidrs.iter().any(|c| c.contains(l.addr)) {
        return Ok(());
    }
    let subnets: Vec<String> = cidrs.iter().map(ToString::to_string).collect();
    Err(format!(
        "-z {}: local address {} is not on a subnet of port '{}' ({})",
        l.addr,
        l.addr,
        l.ifname,
        if subnets.is_empty() {
            "it has no addresses".to_string()
        } else {
            subnets.join(", ")
        }
    ))
}

/// The `--add-laddr` commands of a rule command or a `-R` input, each
/// checked with [`check_laddr`]; `-R` errors name the line.
fn check_laddrs(cfg: &Config, cmd: &Command, stdin: &str) -> Result<(), AdmError> {
    let refuse = |message: String| AdmError {
        message,
        status: 255,
    };
    match cmd {
        Command::AddLaddr(_, l) => check_laddr(cfg, l).map_err(refuse),
        Command::Restore => {
            for (n, line) in stdin.lines().enumerate() {
                let args = ipvsadm::split_line(line);
                if let Ok(Command::AddLaddr(_, l)) = ipvsadm::parse(&args) {
                    check_laddr(cfg, &l).map_err(|e| refuse(format!("line {}: {e}", n + 1)))?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Counts of services added, removed and changed from `old` to `new`.
fn diff(old: &Model, new: &Model) -> (usize, usize, usize) {
    let added = new
        .services
        .iter()
        .filter(|s| old.service(&s.key).is_none())
        .count();
    let removed = old
        .services
        .iter()
        .filter(|s| new.service(&s.key).is_none())
        .count();
    let changed = new
        .services
        .iter()
        .filter(|s| old.service(&s.key).is_some_and(|o| o != *s))
        .count();
    (added, removed, changed)
}

impl Daemon {
    /// Publishes the model built from `config` to `dp` and returns the
    /// running daemon. `config_path` is what SIGHUP re-reads.
    pub fn start(
        config_path: &Path,
        config: Config,
        mut dp: Box<dyn Dataplane>,
    ) -> Result<Daemon, String> {
        let mut model = config.to_model();
        let bgp_conf = config.bgp.clone();
        let bgp_opt_out = config::bgp_opt_out(&config);
        // alpha: real servers checked before they get traffic
        let health = Health::new(health::config::plan(&config), 1);
        health.apply_all(&mut model);
        let role = role_of(&config);
        dp.set_role(role)
            .map_err(|e| format!("dataplane refused role {role}: {e}"))?;
        dp.set_timeouts(model.timeouts)
            .map_err(|e| format!("dataplane refused the timeouts: {e}"))?;
        dp.apply(&model)
            .map_err(|e| format!("dataplane refused the services: {e}"))?;
        let mut d = Daemon {
            config_path: config_path.to_path_buf(),
            boot: config.clone(),
            config,
            model,
            role,
            dp,
            service_est: HashMap::new(),
            real_est: HashMap::new(),
            sync_master: None,
            sync_backup: None,
            health,
            health_sink: None,
            bgp: None,
            bgp_opt_out,
            drained: false,
            stopping: false,
        };
        if let Some(b) = bgp_conf {
            let want = d.bgp_wanted();
            d.bgp = Some(bgp::Speaker::start(b, want)?);
        }
        d.publish_telemetry();
        if d.config.ha.sync {
            let state = match role {
                Role::Backup => SyncState::Backup,
                _ => SyncState::Master,
            };
            let settings = SyncSettings::from_config(&d.config.ha);
            d.start_sync(state, settings)?;
        }
        Ok(d)
    }

    /// Starts the master (send) or backup (receive) sync daemon.
    pub fn start_sync(&mut self, state: SyncState, settings: SyncSettings) -> Result<(), String> {
        let running = match state {
            SyncState::Master => self.sync_master.is_some(),
            SyncState::Backup => self.sync_backup.is_some(),
        };
        if running {
            return Err(format!("{} sync daemon is already running", state.name()));
        }
        let d = match state {
            SyncState::Master => {
                self.dp.set_sync(Some(settings.params))?;
                SyncDaemon::start_master(settings, self.dp.sync_events()).inspect_err(|_| {
                    let _ = self.dp.set_sync(None);
                })?
            }
            SyncState::Backup => SyncDaemon::start_backup(settings, self.dp.installer())?,
        };
        log::log(format!(
            "started {} ({})",
            d.settings.describe(state),
            d.addr
        ));
        match state {
            SyncState::Master => self.sync_master = Some(d),
            SyncState::Backup => self.sync_backup = Some(d),
        }
        Ok(())
    }

    /// Stops a sync daemon (the master's workers stop reporting).
    pub fn stop_sync(&mut self, state: SyncState) -> Result<(), String> {
        let d = match state {
            SyncState::Master => self.sync_master.take(),
            SyncState::Backup => self.sync_backup.take(),
        };
        let Some(d) = d else {
            return Err(format!("no {} sync daemon is running", state.name()));
        };
        if state == SyncState::Master {
            self.dp.set_sync(None)?;
        }
        d.stop();
        log::log(format!("stopped the {} sync daemon", state.name()));
        Ok(())
    }

    /// Switches the HA role by hand or from keepalived's notify script:
    /// the dataplane starts or stops answering for the VIPs (announcing
    /// them with gratuitous ARP when it takes over), and when `[ha] sync`
    /// is on, the sync daemon follows: a master sends, a backup receives.
    pub fn set_role(&mut self, role: Role) -> Result<(), String> {
        if role == self.role {
            return Ok(());
        }
        self.dp.set_role(role)?;
        let old = self.role;
        self.role = role;
        log::log(format!("role {old} -> {role}"));
        self.bgp_refresh();
        if self.config.ha.sync {
            let (stop, start) = match role {
                Role::Backup => (SyncState::Master, SyncState::Backup),
                _ => (SyncState::Backup, SyncState::Master),
            };
            if self.sync_daemon(stop).is_some() {
                self.stop_sync(stop)?;
            }
            if self.sync_daemon(start).is_none() {
                let settings = SyncSettings::from_config(&self.config.ha);
                self.start_sync(start, settings)?;
            }
        }
        Ok(())
    }

    /// The running sync daemon of `state`.
    pub fn sync_daemon(&self, state: SyncState) -> Option<&SyncDaemon> {
        match state {
            SyncState::Master => self.sync_master.as_ref(),
            SyncState::Backup => self.sync_backup.as_ref(),
        }
    }

    fn sync_command(&mut self, c: &SyncCmd) -> Result<String, AdmError> {
        let st = |s: DaemonState| match s {
            DaemonState::Master => SyncState::Master,
            DaemonState::Backup => SyncState::Backup,
        };
        let fail = |e: String| AdmError {
            message: e,
            status: 255,
        };
        match c {
            SyncCmd::Start {
                state,
                interface,
                syncid,
                group,
                port,
                ttl,
            } => {
                let mut s = SyncSettings::from_config(&self.config.ha);
                if interface.is_some() {
                    s.interface = interface.clone();
                }
                s.syncid = syncid.unwrap_or(s.syncid);
                s.group = group.unwrap_or(s.group);
                s.port = port.unwrap_or(s.port);
                s.ttl = ttl.unwrap_or(s.ttl);
                self.start_sync(st(*state), s).map_err(fail)?;
                Ok(String::new())
            }
            SyncCmd::Stop(state) => {
                self.stop_sync(st(*state)).map_err(fail)?;
                Ok(String::new())
            }
            SyncCmd::Role(name) => {
                let role =
                    Role::from_name(name).ok_or_else(|| fail(format!("unknown role {name}")))?;
                self.set_role(role).map_err(fail)?;
                Ok(String::new())
            }
            SyncCmd::List => Ok([&self.sync_master, &self.sync_backup]
                .into_iter()
                .flatten()
                .map(|d| format!("{}\n", d.settings.describe(d.state)))
                .collect()),
            SyncCmd::Stats => {
                let events = self.dp.sync_events();
                let out: String = [&self.sync_master, &self.sync_backup]
                    .into_iter()
                    .flatten()
                    .map(|d| d.render_stats(events.as_deref()))
                    .collect();
                Ok(if out.is_empty() {
                    "no sync daemon is running\n".into()
                } else {
                    out
                })
            }
        }
    }

    /// Starts the health checkers; their reports go to `sink`, which must
    /// bring them back to [`Daemon::on_health`] on the control thread.
    pub fn start_health(&mut self, sink: Sink) -> Result<(), String> {
        self.health_sink = Some(sink.clone());
        self.health.start(sink)?;
        let n = self.health.plan().checks();
        if n > 0 {
            log::log(format!(
                "health: {n} check(s) on {} service(s)",
                self.health.plan().services.len()
            ));
        }
        Ok(())
    }

    /// Folds in one checker report; on a verdict change, logs it, runs
    /// its notify script and publishes the model it implies (keepalived's
    /// edits of IPVS), through the same path as an `rvsadm -e`.
    pub fn on_health(&mut self, r: &Report) {
        let changes = self.health.on_report(r);
        self.publish_health(&changes);
    }

    /// Folds in the passive failures the dataplane reported and puts back
    /// passively failed servers without active checks after
    /// `passive_recover`; verdict changes go the way of
    /// [`Daemon::on_health`]'s.
    pub fn poll_passive(&mut self) {
        let now = std::time::SystemTime::now();
        let mut changes = self.health.passive_recover(now);
        for (key, addr, why) in self.dp.passive_events() {
            let plan = self.health.plan();
            let Some(si) = plan.services.iter().position(|s| s.key == Some(key)) else {
                continue;
            };
            let Some(ri) = plan.services[si]
                .reals
                .iter()
                .position(|r| r.template.addr == addr)
            else {
                continue;
            };
            changes.extend(self.health.on_passive(si, ri, why, now));
        }
        self.publish_health(&changes);
    }

    fn publish_health(&mut self, changes: &[health::Transition]) {
        if changes.is_empty() {
            return;
        }
        let mut next = self.model.clone();
        let mut done = Vec::new();
        for t in changes {
            log::log(self.health.describe(t));
            self.health.notify(t);
            if !done.contains(&t.svc()) {
                done.push(t.svc());
                self.health.apply(&mut next, t.svc());
            }
        }
        if let Err(e) = self.commit(next, &[]) {
            log::log(format!("health: the dataplane refused the change: {e}"));
        }
    }

    /// The health state.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// The model in force (without counters).
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The config last applied.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Executes one `rvsadm` request.
    pub fn handle(&mut self, req: &Request) -> Reply {
        match req.args.first().map(String::as_str) {
            Some(BGP_FLAG) => return self.bgp_listing(),
            Some(DRAIN_FLAG) => return self.drain(req.args.get(1).map(String::as_str)),
            _ => {}
        }
        if req.args.first().map(String::as_str) == Some(HEALTH_FLAG) {
            return Reply {
                status: 0,
                stdout: self.health.listing(),
                stderr: String::new(),
            };
        }
        let cmd = match ipvsadm::parse(&req.args) {
            Ok(c) => c,
            Err(e) => return err_reply(&e),
        };
        let result = match &cmd {
            Command::Extra(e) => Ok(self.dp.extra(*e)),
            Command::List(_) | Command::Save { .. } | Command::GetLaddr(_) => {
                let conns = match &cmd {
                    Command::List(o) if o.connections => self.dp.connections(),
                    _ => Vec::new(),
                };
                let mut view = self.view(&self.dp.stats());
                ipvsadm::execute(&mut view, &cmd, &conns, "").map(text)
            }
            Command::Sync(c) => {
                let r = self.sync_command(c);
                if r.is_ok() && !matches!(c, SyncCmd::List | SyncCmd::Stats) {
                    log::log(format!("rvsadm {}: applied", req.args.join(" ")));
                }
                r
            }
            Command::Help | Command::Version => {
                let mut scratch = Model::new();
                ipvsadm::execute(&mut scratch, &cmd, &[], "").map(text)
            }
            _ => {
                let r = self.change(&cmd, &req.stdin);
                if r.is_ok() {
                    // an audit trail of changes (never the -R input itself)
                    log::log(format!("rvsadm {}: applied", req.args.join(" ")));
                }
                r
            }
        };
        match result {
            Ok(stdout) => Reply {
                status: 0,
                stdout,
                stderr: String::new(),
            },
            Err(e) => err_reply(&e),
        }
    }

    /// A rule command or `-R`: on a copy, then published, then swapped in.
    fn change(&mut self, cmd: &Command, stdin: &str) -> Result<String, AdmError> {
        check_laddrs(&self.config, cmd, stdin)?;
        let mut next = self.model.clone();
        let out = ipvsadm::execute(&mut next, cmd, &[], stdin).map(text)?;
        self.commit(next, &zeros_in(cmd, stdin))
            .map_err(|e| AdmError {
                message: format!("rvsd: the dataplane refused the change: {e}"),
                status: 255,
            })?;
        Ok(out)
    }

    /// Publishes `next` (timeouts first, then services) and makes it the
    /// model; on any refusal restores what was published and keeps the
    /// old model.
    fn commit(&mut self, next: Model, zeros: &[Option<ServiceKey>]) -> Result<(), String> {
        let timeouts_changed = next.timeouts != self.model.timeouts;
        if timeouts_changed {
            self.dp.set_timeouts(next.timeouts)?;
        }
        if next.services != self.model.services {
            if let Err(e) = self.dp.apply(&next) {
                if timeouts_changed {
                    let _ = self.dp.set_timeouts(self.model.timeouts);
                }
                log::log(format!("dataplane refused a change: {e}"));
                return Err(e);
            }
        }
        for z in zeros {
            self.dp.zero(z.as_ref());
            // as ip_vs_zero_estimator: rates restart from the zeroed counters
            self.service_est.retain(|k, _| z.is_some_and(|zk| zk != *k));
            self.real_est
                .retain(|(k, _), _| z.is_some_and(|zk| zk != *k));
        }
        self.model = next;
        self.publish_telemetry();
        self.bgp_refresh();
        Ok(())
    }

    /// Whether this director should announce its VIPs at all: master or
    /// standalone, not drained, not stopping.
    fn bgp_serving(&self) -> bool {
        self.role != Role::Backup && !self.drained && !self.stopping
    }

    /// Why the director announces or not, for `rvsadm --bgp`.
    fn bgp_reason(&self) -> String {
        let mut why = vec![format!("role {}", self.role)];
        if self.drained {
            why.push("drained (rvsadm --drain on)".into());
        }
        if self.stopping {
            why.push("stopping".into());
        }
        let verdict = if self.bgp_serving() {
            "announcing VIPs with a usable real server"
        } else {
            "withdrawn"
        };
        format!("{verdict} ({})", why.join(", "))
    }

    /// The VIPs to announce now.
    fn bgp_wanted(&self) -> std::collections::BTreeSet<std::net::IpAddr> {
        crate::bgp::announced(&self.model, self.bgp_serving(), &self.bgp_opt_out)
    }

    /// Hands the VIPs to announce to the BIRD driver (after every change
    /// of model, role, drain or stop).
    fn bgp_refresh(&self) {
        if let Some(b) = &self.bgp {
            b.set(self.bgp_wanted());
        }
    }

    fn bgp_listing(&self) -> Reply {
        let stdout = match &self.bgp {
            Some(b) => b.listing(&crate::bgp::vips(&self.model), &self.bgp_reason()),
            None => "no [bgp] section: nothing is announced\n".into(),
        };
        Reply {
            status: 0,
            stdout,
            stderr: String::new(),
        }
    }

    /// `rvsadm --drain on|off`: withdraws every VIP (forwarding goes on,
    /// so the connections the routers still send keep working) or
    /// announces them again; waits for BIRD to confirm.
    fn drain(&mut self, arg: Option<&str>) -> Reply {
        let on = match arg {
            Some("on") => true,
            Some("off") => false,
            _ => {
                return Reply {
                    status: 2,
                    stdout: String::new(),
                    stderr: format!("{DRAIN_FLAG} needs 'on' or 'off'\n"),
                }
            }
        };
        let Some(b) = &self.bgp else {
            return Reply {
                status: 1,
                stdout: String::new(),
                stderr: "rvsd: no [bgp] section: nothing is announced, nothing to drain\n".into(),
            };
        };
        self.drained = on;
        let want = self.bgp_wanted();
        b.set(want.clone());
        log::log(format!(
            "rvsadm {DRAIN_FLAG} {}: applied",
            if on { "on" } else { "off" }
        ));
        let list: Vec<String> = want.iter().map(ToString::to_string).collect();
        match b.wait(DRAIN_WAIT) {
            Ok(()) => Reply {
                status: 0,
                stdout: if on {
                    "drained: every VIP withdrawn\n".into()
                } else {
                    format!("announcing: {}\n", list.join(" "))
                },
                stderr: String::new(),
            },
            Err(e) => Reply {
                status: 1,
                stdout: String::new(),
                stderr: format!(
                    "rvsd: drain {}: BIRD has not confirmed: {e}; rvsd keeps trying\n",
                    if on { "on" } else { "off" }
                ),
            },
        }
    }

    /// SIGTERM with `[bgp]`: withdraws every VIP, waits for BIRD to
    /// confirm, and returns how long to keep forwarding before stopping
    /// (`drain_seconds`). None without `[bgp]`: stop at once.
    pub fn begin_stop(&mut self) -> Option<std::time::Duration> {
        let b = self.bgp.as_ref()?;
        self.stopping = true;
        b.set(std::collections::BTreeSet::new());
        if let Err(e) = b.wait(DRAIN_WAIT) {
            log::log(format!("bgp: withdraw before stopping not confirmed: {e}"));
        }
        Some(std::time::Duration::from_secs(
            u64::try_from(b.config().drain_seconds).unwrap_or(0),
        ))
    }

    /// Refreshes the replies of rvs's DPDK telemetry commands.
    fn publish_telemetry(&self) {
        let st = self.dp.stats();
        self.publish_telemetry_with(&st);
    }

    #[cfg(feature = "dpdk")]
    fn publish_telemetry_with(&self, st: &DataplaneStats) {
        let workers = usize::try_from(self.config.dataplane.workers).unwrap_or(1);
        telemetry::publish(&self.view(st), st, self.role, workers);
    }

    /// Without DPDK there is no telemetry socket to publish to.
    #[cfg(not(feature = "dpdk"))]
    fn publish_telemetry_with(&self, _st: &DataplaneStats) {}

    /// Re-reads the config file and applies it (see the module docs).
    /// Returns a summary for the log, or every error; on error nothing
    /// changed.
    pub fn reload(&mut self) -> Result<String, String> {
        let cfg = config::load(&self.config_path).map_err(|e| e.to_string())?;
        self.reload_with(cfg)
    }

    /// Applies an already validated config, as [`Daemon::reload`] does.
    pub fn reload_with(&mut self, mut cfg: Config) -> Result<String, String> {
        let mut notes = Vec::new();
        let b = &self.boot;
        for (changed, what) in [
            (cfg.eal != b.eal, "[eal]"),
            (cfg.ports != b.ports, "[[port]]"),
            (cfg.routes != b.routes, "[[route]]"),
            (
                cfg.dataplane.workers != b.dataplane.workers,
                "dataplane.workers",
            ),
            (
                cfg.dataplane.conn_table_size != b.dataplane.conn_table_size,
                "dataplane.conn_table_size",
            ),
            (
                cfg.dataplane.conn_table_size_v6 != b.dataplane.conn_table_size_v6,
                "dataplane.conn_table_size_v6",
            ),
            (
                cfg.dataplane.seq_adj_conns != b.dataplane.seq_adj_conns,
                "dataplane.seq_adj_conns",
            ),
            (
                cfg.dataplane.idle_policy() != b.dataplane.idle_policy(),
                "dataplane.idle",
            ),
            (cfg.metrics != b.metrics, "metrics.listen"),
            (cfg.control != b.control, "control.socket"),
            (cfg.bgp != b.bgp, "[bgp]"),
        ] {
            if changed {
                notes.push(what);
            }
        }
        // keep what the running process was started with
        cfg.eal = b.eal.clone();
        cfg.ports = b.ports.clone();
        cfg.routes = b.routes.clone();
        cfg.dataplane.workers = b.dataplane.workers;
        cfg.dataplane.conn_table_size = b.dataplane.conn_table_size;
        cfg.dataplane.conn_table_size_v6 = b.dataplane.conn_table_size_v6;
        cfg.dataplane.seq_adj_conns = b.dataplane.seq_adj_conns;
        cfg.dataplane.idle = b.dataplane.idle.clone();
        cfg.dataplane.idle_empty_polls = b.dataplane.idle_empty_polls;
        cfg.dataplane.idle_pause_polls = b.dataplane.idle_pause_polls;
        cfg.dataplane.idle_max_sleep_us = b.dataplane.idle_max_sleep_us;
        cfg.metrics = b.metrics.clone();
        cfg.control = b.control.clone();
        cfg.bgp = b.bgp.clone();
        let mut next = cfg.to_model();
        next.conn_table_size = self.model.conn_table_size;
        // what rvsadm made stays, unless the file now lists it too
        let mut kept = 0;
        let mut taken = Vec::new();
        for s in &self.model.services {
            if s.origin != Origin::Rvsadm {
                continue;
            }
            if next.service(&s.key).is_some() {
                taken.push(s.key.to_string());
            } else {
                next.services.push(s.clone());
                kept += 1;
            }
        }
        // checks that did not change keep their verdicts
        let mut health = Health::new(health::config::plan(&cfg), self.health.generation() + 1);
        health.inherit(&self.health);
        health.apply_all(&mut next);
        let role = role_of(&cfg);
        let (added, removed, changed) = diff(&self.model, &next);
        self.commit(next, &[])?;
        self.health.replace_by(health.plan());
        self.health = health;
        if let Some(sink) = self.health_sink.clone() {
            self.health.start(sink)?;
        }
        if role != self.role {
            self.dp.set_role(role)?;
            self.role = role;
        }
        // the [[fwmark]] rules, for new connections from now on
        self.dp.set_classifier(cfg.classifier())?;
        self.bgp_opt_out = config::bgp_opt_out(&cfg);
        self.bgp_refresh();
        // like the sysctl, it applies to new SYNs at once (validated 0..=3)
        self.dp
            .set_conn_reuse_mode(u8::try_from(cfg.dataplane.conn_reuse_mode).unwrap_or(1))?;
        self.config = cfg;
        let mut summary = format!(
            "reloaded {}: {added} service(s) added, {removed} removed, {changed} changed, \
             {kept} made with rvsadm kept",
            self.config_path.display()
        );
        if !taken.is_empty() {
            summary.push_str(&format!(
                "; the file now owns {}, made with rvsadm before",
                taken.join(", ")
            ));
        }
        if !notes.is_empty() {
            summary.push_str(&format!(
                "; changes to {} take effect only on restart",
                notes.join(", ")
            ));
        }
        Ok(summary)
    }

    /// Samples the counters into the rate estimators; call every
    /// [`est::INTERVAL`].
    pub fn sample_rates(&mut self) {
        let st = self.dp.stats();
        let mut seen_s = HashMap::new();
        for c in &st.services {
            seen_s.insert(c.key, ());
            match self.service_est.get_mut(&c.key) {
                Some(e) => e.sample(&c.stats),
                None => {
                    self.service_est.insert(c.key, Estimator::new(&c.stats));
                }
            }
        }
        self.service_est.retain(|k, _| seen_s.contains_key(k));
        let mut seen_r = HashMap::new();
        for c in &st.reals {
            let k = (c.service, c.addr);
            seen_r.insert(k, ());
            match self.real_est.get_mut(&k) {
                Some(e) => e.sample(&c.stats),
                None => {
                    self.real_est.insert(k, Estimator::new(&c.stats));
                }
            }
        }
        self.real_est.retain(|k, _| seen_r.contains_key(k));
        self.publish_telemetry_with(&st);
    }

    /// The model with counters, connection gauges and rates filled in.
    fn view(&self, st: &DataplaneStats) -> Model {
        let svc: HashMap<_, _> = st.services.iter().map(|c| (c.key, c)).collect();
        let real: HashMap<_, _> = st.reals.iter().map(|c| ((c.service, c.addr), c)).collect();
        let mut v = self.model.clone();
        for s in &mut v.services {
            let Service { key, .. } = *s;
            if let Some(c) = svc.get(&key) {
                s.stats = c.stats;
            }
            if let Some(e) = self.service_est.get(&key) {
                s.rates = e.rates();
            }
            for r in &mut s.reals {
                if let Some(c) = real.get(&(key, r.addr)) {
                    r.stats = c.stats;
                    r.active_conns = c.active_conns;
                    r.inact_conns = c.inact_conns;
                    r.persist_conns = c.persist_conns;
                }
                if let Some(e) = self.real_est.get(&(key, r.addr)) {
                    r.rates = e.rates();
                }
            }
        }
        v
    }

    /// The Prometheus exposition for GET /metrics.
    pub fn metrics(&self) -> String {
        let st = self.dp.stats();
        let mut m = MetricsSnapshot::from_model(&self.view(&st));
        m.ports = st.ports;
        m.drops = st.drops;
        m.handoffs = st.handoffs;
        m.conn_tables = st.conn_tables;
        m.family_tables = st.family_tables;
        m.losses = st.losses;
        m.stateless = st.stateless;
        m.fast_path = st.fast_path;
        m.seq_adjust = st.seq_adjust;
        m.synproxy = st.synproxy;
        m.toa = st.toa;
        m.proxy_protocol = st.proxy_protocol;
        m.tun_too_big = st.tun_too_big;
        m.sync_skipped = st.sync_skipped;
        m.worker_loops = st.worker_loops;
        let mut out = metrics::render(&m);
        out.push_str(&self.health.metrics());
        if let Some(b) = &self.bgp {
            out.push_str(&b.metrics(&crate::bgp::vips(&self.model)));
        }
        out
    }

    /// Stops the sync daemons, then the dataplane.
    pub fn shutdown(mut self) {
        self.health.stop();
        if let Some(b) = self.bgp.take() {
            // withdraw before forwarding stops (a no-op after begin_stop)
            b.set(std::collections::BTreeSet::new());
            if let Err(e) = b.wait(DRAIN_WAIT) {
                log::log(format!("bgp: withdraw at shutdown not confirmed: {e}"));
            }
            b.stop();
        }
        if let Some(d) = self.sync_master.take() {
            d.stop();
        }
        if let Some(d) = self.sync_backup.take() {
            d.stop();
        }
        self.dp.shutdown();
    }
}

/// rvsadm's flag for the health listing (answered by the daemon).
pub const HEALTH_FLAG: &str = "--health";
/// rvsadm's flag for the BGP listing (what is announced).
pub const BGP_FLAG: &str = "--bgp";
/// rvsadm's `--drain on|off`: withdraw every VIP, or announce again.
pub const DRAIN_FLAG: &str = "--drain";
/// How long a drain or a stop waits for BIRD to confirm.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_secs(6);

fn text(o: Outcome) -> String {
    match o {
        Outcome::Text(t) => t,
        // handled before execute; an Extra here renders nothing
        Outcome::Extra(_) => String::new(),
    }
}

#[cfg(test)]
mod tests;
