//! LVS schedulers: which real server gets a new connection.
//!
//! Split the way the rest of the dataplane is split:
//!
//! - [`ServiceSched`] is the shared, immutable part of one virtual
//!   service: its real servers (with their live [`RealCounters`] behind an
//!   `Arc`), the scheduler and its flags, and any precomputed table (sh/dh
//!   buckets, the Maglev lookup table). The control thread builds it (this
//!   may allocate) and workers read it through the snapshot's `Arc`.
//! - [`WorkerSched`] is the mutable per-(service, worker) part: the rr
//!   cursor, wrr's current weight, the twos random source, the lblc/lblcr
//!   cache and the persistence templates. It is created once, allocates
//!   only in [`WorkerSched::new`] and [`WorkerSched::prepare`], and resets
//!   itself when the service's generation changes (IPVS resets wrr on every
//!   destination update).
//!
//! [`WorkerSched::schedule`] is the packet-path entry point: persistence
//! template, then the scheduler, then the sorry server. It never allocates,
//! locks or panics. Dispatch is a `match` on [`SchedKind`].
//!
//! Semantics follow Linux IPVS (`net/netfilter/ipvs/ip_vs_*.c`): the same
//! orders, tie-breaks, overhead formulas and overload checks. Differences:
//! hashes are keyed from [`SchedConfig::seed`] instead of fixed/boot-time
//! keys; dh weights its buckets like sh; the sh/dh table size is
//! configurable (IPVS: 256); the persistence and locality tables are per
//! worker, bounded, and evict their oldest entry when a bucket is full.
//!
//! Limits:
//! - Persistence templates are per worker. A client keeps its real server
//!   across connections only while its connections reach the same worker;
//!   flow ownership by (client address, client port) does not promise
//!   that, so persistent services want ownership by the (masked) client
//!   address alone. Templates live `timeout` after their last use; unlike
//!   IPVS they are not kept alive by still-open connections.
//! - An lblcr set holds at most 8 servers (IPVS: unbounded).
//! - lc, wlc, sed, nq, fo, ovf, twos and the lblc/lblcr scheduling step
//!   walk every real server (O(N), as IPVS); wrr with all servers
//!   overloaded walks down from the largest weight before giving up.
//! - lblc/lblcr key on the destination address, as IPVS: on a VIP service
//!   that is one entry; they are meant for transparent cache clusters.

#![deny(clippy::indexing_slicing)]

mod algo;
mod assoc;
mod counters;
mod hash;
mod locality;
mod persist;
mod tables;

pub use counters::{RealCounters, Thresholds};
pub use hash::{HashKey, SplitMix64};
pub use persist::PersistTable;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use locality::{LblcTable, LblcrTable};

/// IPVS's largest weight (`ipvsadm -w` accepts 0..=65535).
pub const MAX_WEIGHT: u32 = 65_535;
/// Smallest Maglev table size accepted.
pub const MH_MIN_TABLE: u32 = 251;
/// Largest Maglev table size accepted.
pub const MH_MAX_TABLE: u32 = 131_071;
/// Default Maglev table size (the Maglev paper's 65537).
pub const MH_DEFAULT_TABLE: u32 = 65_537;
/// Default sh/dh table size in bits (IPVS: 8, 256 buckets).
pub const DEFAULT_BUCKET_BITS: u8 = 8;
/// Default lblc/lblcr entry expiry (IPVS sysctl `lblc_expiration`: 24 h).
pub const DEFAULT_LOCALITY_EXPIRE_S: u32 = 24 * 60 * 60;

/// Marks an empty slot of a bucket or Maglev table.
pub(crate) const EMPTY: u32 = u32::MAX;

/// The schedulers, by their ipvsadm names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedKind {
    /// Round robin.
    Rr,
    /// Weighted round robin (gcd-stepped).
    Wrr,
    /// Least connection (overhead = active × 256 + inactive).
    Lc,
    /// Weighted least connection.
    Wlc,
    /// Shortest expected delay (active + 1) / weight.
    Sed,
    /// Never queue: an idle server first, else sed.
    Nq,
    /// Weighted failover: the highest-weight available server.
    Fo,
    /// Weighted overflow: the highest-weight server with active < weight.
    Ovf,
    /// Locality-based least connection (by destination address).
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Source hashing.
    Sh,
    /// Destination hashing.
    Dh,
    /// Maglev hashing.
    Mh,
    /// Weighted power of two choices.
    Twos,
}

impl SchedKind {
    /// Every scheduler, in IPVS's documentation order.
    pub const ALL: [SchedKind; 14] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Sh,
        SchedKind::Dh,
        SchedKind::Mh,
        SchedKind::Twos,
    ];

    /// The ipvsadm name (`-s NAME`).
    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Sh => "sh",
            SchedKind::Dh => "dh",
            SchedKind::Mh => "mh",
            SchedKind::Twos => "twos",
        }
    }

    /// Looks a scheduler up by its ipvsadm name; `None` for any other name
    /// (no fallback: the caller says why it refuses).
    pub fn from_name(s: &str) -> Option<SchedKind> {
        SchedKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// "rr, wrr, ..., twos", for error messages.
    pub fn list() -> String {
        SchedKind::ALL.map(SchedKind::name).join(", ")
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SchedKind {
    type Err = SchedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedKind::from_name(s).ok_or(SchedError::UnknownScheduler)
    }
}

/// Why a scheduler configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedError {
    /// Not one of the ipvsadm scheduler names.
    UnknownScheduler,
    /// A weight above [`MAX_WEIGHT`].
    WeightTooLarge,
    /// The Maglev table size is not a prime in 251..=131071.
    BadMaglevSize,
    /// More real servers than Maglev table entries.
    TooManyReals,
    /// sh/dh bucket bits outside 1..=20.
    BadBucketBits,
    /// Two real servers share one [`RealId`].
    DuplicateRealId,
    /// A persistence netmask prefix longer than the address.
    BadNetmask,
}

impl fmt::Display for SchedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SchedError::UnknownScheduler => "unknown scheduler name",
            SchedError::WeightTooLarge => "weight above 65535",
            SchedError::BadMaglevSize => "mh table size must be a prime in 251..=131071",
            SchedError::TooManyReals => "more real servers than mh table entries",
            SchedError::BadBucketBits => "sh/dh bucket bits must be in 1..=20",
            SchedError::DuplicateRealId => "two real servers share one id",
            SchedError::BadNetmask => "persistence netmask longer than the address",
        };
        f.write_str(s)
    }
}

impl std::error::Error for SchedError {}

/// Persistence (`ipvsadm -p timeout -M netmask`): a client, masked by the
/// netmask, keeps its real server while its template lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistence {
    /// Template lifetime in seconds after its last use.
    pub timeout_s: u32,
    /// IPv4 client netmask as a prefix length (`-M 255.255.255.0` = 24).
    pub netmask_v4: u8,
    /// IPv6 client netmask as a prefix length (IPVS's default is 128).
    pub netmask_v6: u8,
    /// IPVS sysctl `expire_quiescent_template`: drop a template whose real
    /// server has weight 0 instead of following it.
    pub expire_quiescent: bool,
}

impl Persistence {
    /// `-p timeout` with IPVS's default netmasks (/32, /128).
    pub fn new(timeout_s: u32) -> Self {
        Self {
            timeout_s,
            netmask_v4: 32,
            netmask_v6: 128,
            expire_quiescent: false,
        }
    }
}

/// The scheduler configuration of one virtual service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedConfig {
    /// Which scheduler.
    pub kind: SchedKind,
    /// sh-fallback / mh-fallback: when the hashed server is unavailable,
    /// probe on to the next available one instead of giving up.
    pub fallback: bool,
    /// sh-port / mh-port: hash the client port too (TCP, UDP, SCTP).
    pub hash_port: bool,
    /// Seed of every scheduler hash; the same on every director.
    pub seed: u128,
    /// Maglev lookup table size, a prime in 251..=131071.
    pub mh_table_size: u32,
    /// sh/dh table size in bits.
    pub bucket_bits: u8,
    /// Locality (lblc/lblcr) entry expiry in seconds.
    pub locality_expire_s: u32,
    /// Persistence, when configured.
    pub persistence: Option<Persistence>,
}

impl SchedConfig {
    /// `kind` with IPVS defaults, no flags, no persistence, seed 0.
    pub fn new(kind: SchedKind) -> Self {
        Self {
            kind,
            fallback: false,
            hash_port: false,
            seed: 0,
            mh_table_size: MH_DEFAULT_TABLE,
            bucket_bits: DEFAULT_BUCKET_BITS,
            locality_expire_s: DEFAULT_LOCALITY_EXPIRE_S,
            persistence: None,
        }
    }
}

/// A stable real-server identity assigned by control; survives snapshot
/// changes (persistence and locality tables remember it, not indexes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealId(pub u32);

/// One real server of a service, as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct RealServer {
    /// Stable identity (see [`RealId`]).
    pub id: RealId,
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Weight 0..=65535; 0 quiesces (no new connections).
    pub weight: u32,
    /// The last non-zero weight (IPVS `last_weight`): mh builds its table
    /// from it so quiescing a server does not reshuffle everyone else.
    pub last_weight: u32,
    /// Connection thresholds (`-x`, `-y`).
    pub thresholds: Thresholds,
    /// Live counters, shared with control and every worker.
    pub counters: Arc<RealCounters>,
}

impl RealServer {
    /// A server with fresh counters and no thresholds.
    pub fn new(id: u32, addr: IpAddr, port: u16, weight: u32) -> Self {
        Self {
            id: RealId(id),
            addr,
            port,
            weight,
            last_weight: weight,
            thresholds: Thresholds::default(),
            counters: Arc::new(RealCounters::new()),
        }
    }

    /// IPVS's `!is_unavailable()`: weight > 0 and not overloaded.
    #[inline]
    pub fn available(&self) -> bool {
        self.weight > 0 && !self.counters.overloaded()
    }
}

/// What a scheduler needs to know about a new connection. Small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PickInput {
    /// Client (source) address.
    pub client: IpAddr,
    /// Client (source) port.
    pub client_port: u16,
    /// Virtual (destination) address.
    pub vip: IpAddr,
    /// Virtual (destination) port.
    pub vport: u16,
    /// IP protocol number (6 TCP, 17 UDP, 132 SCTP, ...).
    pub proto: u8,
}

impl PickInput {
    /// The port sh/mh hash with when `hash_port` is set: the client port
    /// for TCP, UDP and SCTP, 0 otherwise (as IPVS).
    #[inline]
    fn hash_port(&self, enabled: bool) -> u16 {
        match (enabled, self.proto) {
            (true, 6 | 17 | 132) => self.client_port,
            _ => 0,
        }
    }
}

/// The outcome of [`WorkerSched::schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// Index into [`ServiceSched::reals`].
    Real(usize),
    /// No real server available: use [`ServiceSched::sorry`].
    Sorry,
    /// No real server and no sorry server: drop (or reset) the flow.
    Unavailable,
}

/// The shared, immutable scheduler part of one service.
#[derive(Debug)]
pub struct ServiceSched {
    generation: u64,
    cfg: SchedConfig,
    reals: Box<[RealServer]>,
    sorry: Option<RealServer>,
    /// sh/dh buckets or the Maglev lookup table; indexes into `reals`.
    table: Box<[u32]>,
    /// (id, index) sorted by id.
    by_id: Box<[(RealId, u32)]>,
    lookup_key: HashKey,
    persist_key: HashKey,
}

/// Hash domains, so each use of the seed gets an independent key.
const DOM_LOOKUP: u64 = 1;
const DOM_MH_OFFSET: u64 = 2;
const DOM_MH_SKIP: u64 = 3;
const DOM_PERSIST: u64 = 4;
const DOM_LOCALITY: u64 = 5;
const DOM_TWOS: u64 = 6;

impl ServiceSched {
    /// Validates `cfg` and builds the shared state (tables included).
    /// Called by control; allocates. `generation` must change whenever the
    /// real servers or their weights change, so workers reset their state.
    pub fn new(
        cfg: SchedConfig,
        reals: Vec<RealServer>,
        sorry: Option<RealServer>,
        generation: u64,
    ) -> Result<Self, SchedError> {
        if reals
            .iter()
            .any(|r| r.weight > MAX_WEIGHT || r.last_weight > MAX_WEIGHT)
        {
            return Err(SchedError::WeightTooLarge);
        }
        if let Some(p) = cfg.persistence {
            if p.netmask_v4 > 32 || p.netmask_v6 > 128 {
                return Err(SchedError::BadNetmask);
            }
        }
        let mut by_id: Vec<(RealId, u32)> = reals
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id, i as u32))
            .collect();
        by_id.sort_unstable();
        if by_id.windows(2).any(|w| matches!(w, [a, b] if a.0 == b.0)) {
            return Err(SchedError::DuplicateRealId);
        }
        let table = match cfg.kind {
            SchedKind::Sh | SchedKind::Dh => {
                if !(1..=20).contains(&cfg.bucket_bits) {
                    return Err(SchedError::BadBucketBits);
                }
                tables::weighted_buckets(&reals, 1usize << cfg.bucket_bits)
            }
            SchedKind::Mh => {
                let m = cfg.mh_table_size;
                if !(MH_MIN_TABLE..=MH_MAX_TABLE).contains(&m) || !tables::is_prime(m) {
                    return Err(SchedError::BadMaglevSize);
                }
                if reals.len() > m as usize {
                    return Err(SchedError::TooManyReals);
                }
                tables::maglev(
                    &reals,
                    m,
                    HashKey::new(cfg.seed, DOM_MH_OFFSET),
                    HashKey::new(cfg.seed, DOM_MH_SKIP),
                )
            }
            _ => Box::default(),
        };
        Ok(Self {
            generation,
            cfg,
            reals: reals.into_boxed_slice(),
            sorry,
            table,
            by_id: by_id.into_boxed_slice(),
            lookup_key: HashKey::new(cfg.seed, DOM_LOOKUP),
            persist_key: HashKey::new(cfg.seed, DOM_PERSIST),
        })
    }

    /// The generation this snapshot was built for.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The scheduler configuration.
    pub fn config(&self) -> &SchedConfig {
        &self.cfg
    }

    /// The real servers, in configuration order (the order IPVS walks).
    pub fn reals(&self) -> &[RealServer] {
        &self.reals
    }

    /// The sorry server, if one is configured.
    pub fn sorry(&self) -> Option<&RealServer> {
        self.sorry.as_ref()
    }

    /// The sh/dh bucket table or Maglev lookup table (indexes into
    /// [`Self::reals`], `u32::MAX` for an empty slot); empty for others.
    pub fn table(&self) -> &[u32] {
        &self.table
    }

    /// The index of the real server with `id`, if it is in this snapshot.
    #[inline]
    pub fn index_of(&self, id: RealId) -> Option<usize> {
        self.by_id
            .binary_search_by_key(&id, |e| e.0)
            .ok()
            .and_then(|i| self.by_id.get(i))
            .map(|e| e.1 as usize)
    }

    /// sh/mh/dh lookup: the table entry for (`addr`, `port`), with the
    /// fallback probe when `fallback` is set (IPVS `ip_vs_{sh,mh}_get*`).
    #[inline]
    fn hashed(&self, addr: IpAddr, port: u16, fallback: bool) -> Option<usize> {
        let size = self.table.len() as u64;
        let first = self.lookup_key.hash(addr, port, 0).checked_rem(size)?;
        let idx = *self.table.get(first as usize)?;
        let real = self.reals.get(idx as usize)?;
        if real.available() {
            return Some(idx as usize);
        }
        if !fallback {
            return None;
        }
        for off in 0..size {
            let roff = (off + first) % size;
            let h = self.lookup_key.hash(addr, port, roff as u32) % size;
            let idx = *self.table.get(h as usize)?;
            if self.reals.get(idx as usize)?.available() {
                return Some(idx as usize);
            }
        }
        None
    }
}

/// Sizes of the per-worker tables of one service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerSchedConfig {
    /// Worker number (seeds the twos random source).
    pub worker: u32,
    /// Persistence templates this worker can hold for the service
    /// (rounded up to a power of two, at least 4).
    pub persist_capacity: usize,
    /// lblc/lblcr entries this worker can hold for the service.
    pub locality_capacity: usize,
}

impl Default for WorkerSchedConfig {
    fn default() -> Self {
        Self {
            worker: 0,
            persist_capacity: 4096,
            locality_capacity: 4096,
        }
    }
}

/// Weighted round robin state (IPVS `ip_vs_wrr_mark`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WrrState {
    /// Last chosen index; `None` is the list head.
    pub(crate) cl: Option<usize>,
    /// Current weight.
    pub(crate) cw: i64,
    /// Max weight - (gcd - 1).
    pub(crate) mw: i64,
    /// gcd of the weights.
    pub(crate) di: i64,
}

/// The per-(service, worker) scheduler state. Not shared; never in the
/// snapshot.
#[derive(Debug)]
pub struct WorkerSched {
    generation: u64,
    cfg: WorkerSchedConfig,
    rr_cursor: Option<usize>,
    wrr: WrrState,
    rng: SplitMix64,
    lblc: LblcTable,
    lblcr: LblcrTable,
    persist: PersistTable,
}

impl WorkerSched {
    /// Creates the state for `svc` on one worker, allocating the tables
    /// the service needs (persistence, lblc/lblcr).
    pub fn new(svc: &ServiceSched, cfg: WorkerSchedConfig) -> Self {
        let mut s = Self {
            generation: svc.generation,
            cfg,
            rr_cursor: None,
            wrr: WrrState::default(),
            rng: SplitMix64::new(0),
            lblc: LblcTable::empty(),
            lblcr: LblcrTable::empty(),
            persist: PersistTable::empty(),
        };
        s.prepare(svc);
        s
    }

    /// Installs a new snapshot of the service (between bursts): resets the
    /// state if the generation changed and allocates any table the
    /// scheduler now needs. May allocate; [`Self::schedule`] never does.
    pub fn prepare(&mut self, svc: &ServiceSched) {
        let c = &svc.cfg;
        if c.persistence.is_some() && self.persist.capacity() == 0 {
            self.persist = PersistTable::new(self.cfg.persist_capacity, svc.persist_key);
        }
        let lkey = HashKey::new(c.seed, DOM_LOCALITY);
        if c.kind == SchedKind::Lblc && self.lblc.capacity() == 0 {
            self.lblc = LblcTable::new(self.cfg.locality_capacity, lkey);
        }
        if c.kind == SchedKind::Lblcr && self.lblcr.capacity() == 0 {
            self.lblcr = LblcrTable::new(self.cfg.locality_capacity, lkey);
        }
        self.reset(svc);
    }

    /// Resets cursors when `svc` is a new generation (no allocation): rr
    /// and wrr restart from the head, wrr keeping its current weight as
    /// IPVS's `dest_changed` does.
    /// Persistence and locality entries survive: they name servers by id.
    #[inline]
    fn sync(&mut self, svc: &ServiceSched) {
        if self.generation != svc.generation {
            self.reset(svc);
        }
    }

    fn reset(&mut self, svc: &ServiceSched) {
        self.generation = svc.generation;
        self.rr_cursor = None;
        self.wrr = algo::wrr_changed(&svc.reals, self.wrr);
        let tseed = HashKey::new(svc.cfg.seed, DOM_TWOS).hash_words(u64::from(self.cfg.worker), 0);
        self.rng = SplitMix64::new(tseed);
    }

    /// Adopts a persistence template another worker created (relayed by
    /// control), so the client's next connection keeps its real server
    /// whichever worker owns it. No-op for services without persistence.
    pub fn adopt_template(&mut self, svc: &ServiceSched, client: IpAddr, real: RealId, now: u32) {
        if let Some(p) = svc.cfg.persistence {
            if self.persist.capacity() > 0 && svc.index_of(real).is_some() {
                self.persist.insert(&p, client, real, now);
            }
        }
    }

    /// The persistence templates of this worker.
    pub fn persist_table(&self) -> &PersistTable {
        &self.persist
    }

    /// Runs the service's scheduler alone (no persistence, no sorry
    /// server): the index of the chosen real server, or `None`.
    /// `now` is in seconds (any epoch, monotonic).
    #[inline]
    pub fn pick(&mut self, svc: &ServiceSched, input: &PickInput, now: u32) -> Option<usize> {
        self.sync(svc);
        let reals = &svc.reals[..];
        match svc.cfg.kind {
            SchedKind::Rr => algo::rr(reals, &mut self.rr_cursor),
            SchedKind::Wrr => algo::wrr(reals, &mut self.wrr),
            SchedKind::Lc => algo::lc(reals),
            SchedKind::Wlc => algo::wlc(reals),
            SchedKind::Sed => algo::sed(reals),
            SchedKind::Nq => algo::nq(reals),
            SchedKind::Fo => algo::fo(reals),
            SchedKind::Ovf => algo::ovf(reals),
            SchedKind::Twos => algo::twos(reals, &mut self.rng),
            SchedKind::Lblc => self.lblc.pick(svc, input.vip, now),
            SchedKind::Lblcr => self.lblcr.pick(svc, input.vip, now),
            SchedKind::Sh | SchedKind::Mh => svc.hashed(
                input.client,
                input.hash_port(svc.cfg.hash_port),
                svc.cfg.fallback,
            ),
            SchedKind::Dh => svc.hashed(input.vip, 0, false),
        }
    }

    /// Chooses the real server for a new connection: the persistence
    /// template if one holds this client, else the scheduler (recording a
    /// template when the service is persistent), else the sorry server.
    #[inline]
    pub fn schedule(&mut self, svc: &ServiceSched, input: &PickInput, now: u32) -> Pick {
        if let Some(p) = svc.cfg.persistence {
            if let Some(idx) = self.persist.lookup(svc, &p, input.client, now) {
                return Pick::Real(idx);
            }
            if let Some(idx) = self.pick(svc, input, now) {
                if let Some(r) = svc.reals.get(idx) {
                    self.persist.insert(&p, input.client, r.id, now);
                }
                return Pick::Real(idx);
            }
        } else if let Some(idx) = self.pick(svc, input, now) {
            return Pick::Real(idx);
        }
        if svc.sorry.is_some() {
            Pick::Sorry
        } else {
            Pick::Unavailable
        }
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests;
