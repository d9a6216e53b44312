//! Ethernet ports and their queues.

use super::{Burst, DpdkError, Eal, Mempool};
use std::cell::Cell;
use std::ffi::{CStr, CString};
use std::marker::PhantomData;
use std::sync::Arc;

/// How a port is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortConfig {
    /// RX queues (one per worker). RSS spreads flows over them when the
    /// device supports it and there is more than one.
    pub rx_queues: u16,
    /// TX queues (one per worker).
    pub tx_queues: u16,
    /// RX descriptors per queue.
    pub rx_desc: u16,
    /// TX descriptors per queue.
    pub tx_desc: u16,
    /// Accept frames for any destination MAC (needed for VIPs on virtual
    /// devices and in DR set-ups).
    pub promiscuous: bool,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
    /// Extra TX attempts for what the driver refused before it is freed.
    pub tx_retries: u32,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            mtu: None,
            tx_retries: 4,
        }
    }
}

/// Rings owned by a `net_ring` port pair; freed after both ports close.
struct RingSet(Vec<*mut dpdk_sys::rte_ring>);

// SAFETY: the ring pointers are only freed (once, in Drop); rte_rings are
// MT-safe objects.
unsafe impl Send for RingSet {}
// SAFETY: as above.
unsafe impl Sync for RingSet {}

impl Drop for RingSet {
    fn drop(&mut self) {
        for r in &self.0 {
            // SAFETY: each ring was created by us and no port uses it any
            // more (both ports hold this set and are gone).
            unsafe { dpdk_sys::rte_ring_free(*r) }
        }
    }
}

struct PortInner {
    id: u16,
    name: String,
    /// The vdev we created (removed on drop), if any.
    vdev: Option<CString>,
    started: bool,
    rss: bool,
    _rings: Option<Arc<RingSet>>,
    _pool: Option<Arc<Mempool>>,
    _eal: Eal,
}

impl Drop for PortInner {
    fn drop(&mut self) {
        // SAFETY: no queue handle is left (each holds this PortInner), so no
        // thread is polling; stop/close/uninit are called once.
        unsafe {
            if self.started {
                dpdk_sys::rte_eth_dev_stop(self.id);
            }
            match &self.vdev {
                Some(name) => {
                    dpdk_sys::rte_vdev_uninit(name.as_ptr());
                }
                None => {
                    dpdk_sys::rte_eth_dev_close(self.id);
                }
            }
        }
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (0 if unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets the NIC dropped because RX queues were full.
    pub rx_missed: u64,
    /// Erroneous received packets.
    pub rx_errors: u64,
    /// Failed transmissions.
    pub tx_errors: u64,
    /// RX mbuf allocation failures (pool exhausted).
    pub rx_nombuf: u64,
}

/// An Ethernet port, started, with its queue handles not yet handed out.
pub struct Port {
    inner: Arc<PortInner>,
    rxq: Vec<Option<RxQueue>>,
    txq: Vec<Option<TxQueue>>,
}

fn port_by_name(name: &str) -> Option<u16> {
    let c = CString::new(name).ok()?;
    let mut id = 0u16;
    // SAFETY: c is a valid C string; id is a valid out-pointer.
    let rc = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
    (rc == 0).then_some(id)
}

fn cstring(what: &str, s: &str) -> Result<CString, DpdkError> {
    CString::new(s).map_err(|_| DpdkError::InvalidArgument(format!("{what} {s:?} contains NUL")))
}

impl Port {
    /// Opens and starts a port. `device` is the name of a port EAL already
    /// probed (a PCI address, or a `--vdev` name), or vdev devargs such as
    /// `net_af_packet0,iface=veth0`, which are created here and removed on
    /// drop.
    pub fn open(
        eal: &Eal,
        device: &str,
        cfg: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<Port, DpdkError> {
        let name = device.split(',').next().unwrap_or(device).to_owned();
        let (id, vdev) = match port_by_name(&name) {
            Some(id) => (id, None),
            None if name.starts_with("net_") => {
                let args = device.get(name.len() + 1..).unwrap_or("");
                let c_name = cstring("device name", &name)?;
                let c_args = cstring("device arguments", args)?;
                // SAFETY: valid C strings; EAL is initialised.
                let rc = unsafe { dpdk_sys::rte_vdev_init(c_name.as_ptr(), c_args.as_ptr()) };
                if rc != 0 {
                    return Err(DpdkError::call("rte_vdev_init", rc));
                }
                let id = port_by_name(&name).ok_or_else(|| {
                    DpdkError::InvalidArgument(format!(
                        "device {name} was created but is not an Ethernet port"
                    ))
                })?;
                (id, Some(c_name))
            }
            None => {
                let c_dev = cstring("device", device)?;
                // SAFETY: valid C string; EAL is initialised.
                let rc = unsafe { dpdk_sys::rte_dev_probe(c_dev.as_ptr()) };
                if rc != 0 {
                    return Err(DpdkError::call("rte_dev_probe", rc));
                }
                let id = port_by_name(&name).ok_or_else(|| {
                    DpdkError::InvalidArgument(format!(
                        "device {name} probed but has no Ethernet port"
                    ))
                })?;
                (id, None)
            }
        };
        let inner = PortInner {
            id,
            name,
            vdev,
            started: false,
            rss: false,
            _rings: None,
            _pool: Some(pool.clone()),
            _eal: eal.clone(),
        };
        Self::setup(inner, cfg, pool)
    }

    /// Creates two `net_ring` ports wired back to back (what one sends, the
    /// other receives), `queues` queues each, named `net_ring_<tag>_a/_b`.
    pub fn ring_pair(
        eal: &Eal,
        tag: &str,
        cfg: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<(Port, Port), DpdkError> {
        let q = cfg.rx_queues.max(cfg.tx_queues) as usize;
        let mut rings = RingSet(Vec::with_capacity(2 * q));
        for dir in ["ab", "ba"] {
            for i in 0..q {
                let rname = cstring("ring name", &format!("rp_{tag}_{dir}{i}"))?;
                // SAFETY: valid name; EAL initialised. Single producer and
                // consumer: each queue is used by one worker.
                let r = unsafe {
                    dpdk_sys::rte_ring_create(
                        rname.as_ptr(),
                        4096,
                        dpdk_sys::rte_socket_id() as i32,
                        dpdk_sys::RING_F_SP_ENQ | dpdk_sys::RING_F_SC_DEQ,
                    )
                };
                if r.is_null() {
                    return Err(DpdkError::from_rte_errno("rte_ring_create"));
                }
                rings.0.push(r);
            }
        }
        let (ab, ba) = rings.0.split_at(q);
        let (ab, ba) = (ab.to_vec(), ba.to_vec());
        let rings = Arc::new(rings);
        let make =
            |suffix: &str, rx: &[*mut dpdk_sys::rte_ring], tx: &[*mut dpdk_sys::rte_ring]| {
                let name = format!("net_ring_{tag}_{suffix}");
                let c_name = cstring("port name", &name)?;
                // SAFETY: rx/tx point at q valid rings that outlive the port
                // (the port holds the RingSet).
                let id = unsafe {
                    dpdk_sys::rte_eth_from_rings(
                        c_name.as_ptr(),
                        rx.as_ptr(),
                        q as u32,
                        tx.as_ptr(),
                        q as u32,
                        dpdk_sys::rte_socket_id(),
                    )
                };
                if id < 0 {
                    return Err(DpdkError::from_rte_errno("rte_eth_from_rings"));
                }
                let inner = PortInner {
                    id: id as u16,
                    name,
                    vdev: Some(c_name),
                    started: false,
                    rss: false,
                    _rings: Some(rings.clone()),
                    _pool: Some(pool.clone()),
                    _eal: eal.clone(),
                };
                Self::setup(inner, cfg, pool)
            };
        let a = make("a", &ba, &ab)?;
        let b = make("b", &ab, &ba)?;
        Ok((a, b))
    }

    fn setup(
        mut inner: PortInner,
        cfg: &PortConfig,
        pool: &Arc<Mempool>,
    ) -> Result<Port, DpdkError> {
        let id = inner.id;
        if cfg.rx_queues == 0 || cfg.tx_queues == 0 {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: at least one RX and one TX queue",
                inner.name
            )));
        }
        let mut info = dpdk_sys::rte_eth_dev_info::default();
        // SAFETY: id is a valid port; info is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_dev_info_get(id, &mut info) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_dev_info_get", rc));
        }
        if cfg.rx_queues > info.max_rx_queues || cfg.tx_queues > info.max_tx_queues {
            return Err(DpdkError::InvalidArgument(format!(
                "port {}: {} RX / {} TX queues asked, device supports {} / {}",
                inner.name, cfg.rx_queues, cfg.tx_queues, info.max_rx_queues, info.max_tx_queues
            )));
        }
        let mut conf = dpdk_sys::rte_eth_conf::default();
        if cfg.rx_queues > 1 && info.flow_type_rss_offloads != 0 {
            conf.rxmode.mq_mode = dpdk_sys::RTE_ETH_MQ_RX_RSS;
            // SAFETY: returns a constant.
            let want = unsafe { dpdk_sys::rvs_rss_hf_ip_tcp_udp() };
            conf.rx_adv_conf.rss_conf.rss_hf = want & info.flow_type_rss_offloads;
            inner.rss = true;
        }
        // Let the NIC check TCP/UDP checksums where it can: the packet path
        // reads its verdict from the mbuf before creating a connection
        // (and computes the checksum itself where the NIC did not check).
        // SAFETY: returns a constant.
        let l4 = unsafe { dpdk_sys::rvs_rx_offload_l4_cksum() };
        conf.rxmode.offloads |= l4 & info.rx_offload_capa;
        // SAFETY: valid port and configuration.
        let rc =
            unsafe { dpdk_sys::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_dev_configure", rc));
        }
        if let Some(mtu) = cfg.mtu {
            // SAFETY: valid, configured port.
            let rc = unsafe { dpdk_sys::rte_eth_dev_set_mtu(id, mtu) };
            if rc != 0 {
                return Err(DpdkError::call("rte_eth_dev_set_mtu", rc));
            }
        }
        // SAFETY: valid port.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 {
            dpdk_sys::SOCKET_ID_ANY as u32
        } else {
            socket as u32
        };
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port and queue; NULL rxconf selects defaults; the
            // pool outlives the port (PortInner holds it).
            let rc = unsafe {
                dpdk_sys::rte_eth_rx_queue_setup(
                    id,
                    q,
                    cfg.rx_desc,
                    socket,
                    std::ptr::null(),
                    pool.as_ptr(),
                )
            };
            if rc != 0 {
                return Err(DpdkError::call("rte_eth_rx_queue_setup", rc));
            }
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: valid port and queue; NULL txconf selects defaults.
            let rc = unsafe {
                dpdk_sys::rte_eth_tx_queue_setup(id, q, cfg.tx_desc, socket, std::ptr::null())
            };
            if rc != 0 {
                return Err(DpdkError::call("rte_eth_tx_queue_setup", rc));
            }
        }
        // SAFETY: configured port with all queues set up.
        let rc = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_dev_start", rc));
        }
        inner.started = true;
        if cfg.promiscuous {
            // Some virtual devices do not support it; that is not an error.
            // SAFETY: valid, started port.
            unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        }
        let inner = Arc::new(inner);
        let rxq = (0..cfg.rx_queues)
            .map(|q| {
                Some(RxQueue {
                    port: id,
                    queue: q,
                    _port: inner.clone(),
                    _not_sync: PhantomData,
                })
            })
            .collect();
        let txq = (0..cfg.tx_queues)
            .map(|q| {
                Some(TxQueue {
                    port: id,
                    queue: q,
                    retries: cfg.tx_retries,
                    stats: TxStats::default(),
                    _port: inner.clone(),
                    _not_sync: PhantomData,
                })
            })
            .collect();
        Ok(Port { inner, rxq, txq })
    }

    /// DPDK's port id.
    pub fn id(&self) -> u16 {
        self.inner.id
    }

    /// The device name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// True when RSS spreads RX over the queues.
    pub fn rss_enabled(&self) -> bool {
        self.inner.rss
    }

    /// Takes RX queue `q`'s handle; None if out of range or already taken.
    pub fn take_rx_queue(&mut self, q: u16) -> Option<RxQueue> {
        self.rxq.get_mut(q as usize)?.take()
    }

    /// Takes TX queue `q`'s handle; None if out of range or already taken.
    pub fn take_tx_queue(&mut self, q: u16) -> Option<TxQueue> {
        self.txq.get_mut(q as usize)?.take()
    }

    /// The port's MAC address.
    pub fn mac(&self) -> Result<[u8; 6], DpdkError> {
        let mut addr = dpdk_sys::rte_ether_addr::default();
        // SAFETY: valid port; addr is a valid out-pointer of 6 bytes.
        let rc = unsafe { dpdk_sys::rte_eth_macaddr_get(self.inner.id, &mut addr) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_macaddr_get", rc));
        }
        // SAFETY: rte_ether_addr is exactly 6 bytes of address.
        Ok(unsafe { std::mem::transmute::<dpdk_sys::rte_ether_addr, [u8; 6]>(addr) })
    }

    /// Link status, without waiting.
    pub fn link(&self) -> Result<LinkStatus, DpdkError> {
        let mut link = dpdk_sys::rte_eth_link::default();
        // SAFETY: valid port; link is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_link_get_nowait(self.inner.id, &mut link) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_link_get_nowait", rc));
        }
        Ok(LinkStatus {
            up: link.link_status() as u32 == dpdk_sys::RTE_ETH_LINK_UP,
            speed_mbps: link.link_speed,
            full_duplex: link.link_duplex() != 0,
        })
    }

    /// Basic counters.
    pub fn stats(&self) -> Result<PortStats, DpdkError> {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid port; s is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_eth_stats_get(self.inner.id, &mut s) };
        if rc != 0 {
            return Err(DpdkError::call("rte_eth_stats_get", rc));
        }
        Ok(PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Extended counters, by the driver's names.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>, DpdkError> {
        let id = self.inner.id;
        // SAFETY: a NULL array with size 0 asks for the count.
        let n = unsafe { dpdk_sys::rte_eth_xstats_get_names(id, std::ptr::null_mut(), 0) };
        if n < 0 {
            return Err(DpdkError::call("rte_eth_xstats_get_names", n));
        }
        let n = n as usize;
        let mut names = vec![dpdk_sys::rte_eth_xstat_name::default(); n];
        let mut values = vec![dpdk_sys::rte_eth_xstat::default(); n];
        // SAFETY: both arrays hold n elements.
        let got_names =
            unsafe { dpdk_sys::rte_eth_xstats_get_names(id, names.as_mut_ptr(), n as u32) };
        // SAFETY: as above.
        let got = unsafe { dpdk_sys::rte_eth_xstats_get(id, values.as_mut_ptr(), n as u32) };
        if got_names < 0 || got < 0 {
            return Err(DpdkError::call("rte_eth_xstats_get", got.min(got_names)));
        }
        let count = (got as usize).min(got_names as usize).min(n);
        Ok(values[..count]
            .iter()
            .filter_map(|v| {
                let name = names.get(v.id as usize)?;
                // SAFETY: DPDK NUL-terminates names within the fixed array.
                let s = unsafe { CStr::from_ptr(name.name.as_ptr()) }
                    .to_string_lossy()
                    .into_owned();
                Some((s, v.value))
            })
            .collect())
    }
}

impl std::fmt::Debug for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Port")
            .field("id", &self.inner.id)
            .field("name", &self.inner.name)
            .finish()
    }
}

/// The handle on one RX queue: `Send`, not `Sync`, handed out once.
pub struct RxQueue {
    port: u16,
    queue: u16,
    _port: Arc<PortInner>,
    _not_sync: PhantomData<Cell<()>>,
}

impl RxQueue {
    /// Receives into the free tail of `burst`; returns how many arrived.
    #[inline(always)]
    pub fn rx_burst(&mut self, burst: &mut Burst) -> usize {
        let (tail, room) = burst.tail_ptr();
        // SAFETY: this handle is the queue's only user (handed out once,
        // !Sync); tail has room writable slots; DPDK writes n valid mbuf
        // pointers, now owned by the burst.
        let n = unsafe { dpdk_sys::rvs_eth_rx_burst(self.port, self.queue, tail, room as u16) }
            as usize;
        burst.grew(n);
        n
    }

    /// Receives at most `max` packets into the free tail of `burst`.
    #[inline(always)]
    pub fn rx_burst_max(&mut self, burst: &mut Burst, max: usize) -> usize {
        let (tail, room) = burst.tail_ptr();
        let want = room.min(max) as u16;
        // SAFETY: as in rx_burst, with want <= room slots.
        let n = unsafe { dpdk_sys::rvs_eth_rx_burst(self.port, self.queue, tail, want) } as usize;
        burst.grew(n);
        n
    }

    /// Port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// Queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}

/// TX counters of one queue, kept by its owner (no atomics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Packets the driver accepted.
    pub sent: u64,
    /// Bursts that needed a retry.
    pub retried: u64,
    /// Packets freed because the driver kept refusing them.
    pub dropped: u64,
}

/// The handle on one TX queue: `Send`, not `Sync`, handed out once.
pub struct TxQueue {
    port: u16,
    queue: u16,
    retries: u32,
    stats: TxStats,
    _port: Arc<PortInner>,
    _not_sync: PhantomData<Cell<()>>,
}

impl TxQueue {
    /// One transmit attempt: what the driver took leaves the front of
    /// `burst`; what it refused stays. Returns how many were sent.
    #[inline(always)]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let len = burst.len();
        if len == 0 {
            return 0;
        }
        // SAFETY: this handle is the queue's only user; the first len
        // pointers are owned mbufs; the driver takes ownership of the first
        // n, which the burst then forgets.
        let n = unsafe {
            dpdk_sys::rvs_eth_tx_burst(self.port, self.queue, burst.head_ptr(), len as u16)
        } as usize;
        burst.consumed_front(n);
        self.stats.sent += n as u64;
        n
    }

    /// Sends the whole burst: retries what the driver refused up to the
    /// configured number of times, then frees the rest and counts it as
    /// dropped. The burst is empty afterwards. Returns how many were sent.
    #[inline(always)]
    pub fn send(&mut self, burst: &mut Burst) -> usize {
        let mut sent = self.tx_burst(burst);
        if !burst.is_empty() {
            self.stats.retried += 1;
            let mut tries = 0;
            while !burst.is_empty() && tries < self.retries {
                sent += self.tx_burst(burst);
                tries += 1;
            }
            self.stats.dropped += burst.len() as u64;
            burst.clear();
        }
        sent
    }

    /// This queue's counters.
    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// Port id.
    pub fn port_id(&self) -> u16 {
        self.port
    }

    /// Queue index.
    pub fn queue_id(&self) -> u16 {
        self.queue
    }
}
