//! The forwarding floor: RX→TX through rvs's safe DPDK layer with no packet
//! work at all, measured against `dpdk-testpmd --forward-mode=io` on the
//! same virtual devices. Everything rvs does later costs on top of this.

use dataplane::dpdk::{spawn_worker, Burst, Eal, Mempool, Port, PortConfig, RxQueue, TxQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Packets per RX call, as testpmd's default `--burst 32`.
pub const BURST: usize = 32;

/// The ports under test and their queue handles.
pub struct FwdBench {
    ports: Vec<Port>,
    queues: Option<(Vec<RxQueue>, Vec<TxQueue>)>,
    eal: Eal,
    _pool: Arc<Mempool>,
}

impl FwdBench {
    /// Opens one port per devargs string, one queue each.
    pub fn new(eal: &Eal, devargs: &[String]) -> Result<Self, String> {
        let pool = Mempool::new(eal, "fwd_pool", 16383, 256, 2176).map_err(|e| e.to_string())?;
        let mut ports = Vec::new();
        let (mut rxs, mut txs) = (Vec::new(), Vec::new());
        for d in devargs {
            let mut p = Port::open(eal, d, &PortConfig::default(), &pool)
                .map_err(|e| format!("{d}: {e}"))?;
            rxs.push(p.take_rx_queue(0).ok_or("rx queue")?);
            txs.push(p.take_tx_queue(0).ok_or("tx queue")?);
            ports.push(p);
        }
        Ok(FwdBench {
            ports,
            queues: Some((rxs, txs)),
            eal: eal.clone(),
            _pool: pool,
        })
    }

    fn rx_total(&self) -> u64 {
        self.ports
            .iter()
            .filter_map(|p| p.stats().ok())
            .map(|s| s.rx_packets)
            .sum()
    }

    /// Forwards port i → port i^1 on `core` for `warmup + periods` seconds;
    /// returns packets per second (all ports summed) for each period after
    /// the warm-up, as testpmd reports them.
    pub fn run(&mut self, core: usize, warmup: usize, periods: usize) -> Result<Vec<f64>, String> {
        let (mut rxs, mut txs) = self.queues.take().ok_or("queues in use")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_w = stop.clone();
        let worker = spawn_worker(&self.eal, "rvs-fwd", Some(core), move |_| {
            let n = rxs.len();
            let mut b = Burst::new();
            while !stop_w.load(Ordering::Relaxed) {
                for i in 0..n {
                    if rxs[i].rx_burst_max(&mut b, BURST) > 0 {
                        txs[i ^ 1].send(&mut b);
                    }
                }
            }
            (rxs, txs)
        })
        .map_err(|e| e.to_string())?;
        let mut samples = Vec::new();
        std::thread::sleep(Duration::from_millis(200));
        let mut last = (Instant::now(), self.rx_total());
        for i in 0..warmup + periods {
            std::thread::sleep(Duration::from_secs(1));
            let now = (Instant::now(), self.rx_total());
            if i >= warmup {
                let dt = now.0.duration_since(last.0).as_secs_f64();
                samples.push((now.1 - last.1) as f64 / dt);
            }
            last = now;
        }
        stop.store(true, Ordering::Relaxed);
        let queues = worker
            .join()
            .map_err(|e| format!("worker: {e}"))?
            .map_err(|e| e.to_string())?;
        self.queues = Some(queues);
        Ok(samples)
    }
}
