//! The safe DPDK layer on a real EAL with virtual ports (no hugepages, no
//! PCI). EAL can start once per process, so every test here shares one.

use dataplane::dpdk::{
    Burst, DpdkError, Eal, EalArgs, Mbuf, Mempool, Port, PortConfig, Ring, MAX_BURST,
};
use std::sync::{Arc, OnceLock};

fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| match Eal::init(&EalArgs::test("dpdk", 256)) {
        Ok(e) => e,
        Err(e) => panic!("EAL init failed: {e}"),
    })
}

fn pool(name: &str, n: u32) -> Arc<Mempool> {
    Mempool::new(eal(), name, n, 0, 2176).expect("mempool")
}

fn packet(i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|b| (b as u32).wrapping_mul(31).wrapping_add(i * 7) as u8)
        .collect()
}

#[test]
fn second_eal_init_is_refused_not_a_crash() {
    let _ = eal();
    let again = Eal::init(&EalArgs::test("again", 64));
    assert_eq!(again.err(), Some(DpdkError::AlreadyInitialised));
    assert!(eal().version().starts_with("DPDK "), "{}", eal().version());
}

#[test]
fn ring_pair_returns_packets_byte_for_byte() {
    let pool = pool("rp_pool", 1024);
    let cfg = PortConfig::default();
    let (mut a, mut b) = Port::ring_pair(eal(), "bytes", &cfg, &pool).expect("ring pair");
    let mut a_tx = a.take_tx_queue(0).expect("a tx");
    assert!(
        a.take_tx_queue(0).is_none(),
        "queue handles are handed out once"
    );
    let mut b_rx = b.take_rx_queue(0).expect("b rx");
    let mut b_tx = b.take_tx_queue(0).expect("b tx");
    let mut a_rx = a.take_rx_queue(0).expect("a rx");

    let lens = [60usize, 64, 128, 1514, 9, 1];
    let mut out = Burst::new();
    for (i, len) in lens.iter().enumerate() {
        let mut m = pool.alloc().expect("alloc");
        assert!(m.set_bytes(&packet(i as u32, *len)));
        out.push(m).expect("room");
    }
    assert_eq!(a_tx.send(&mut out), lens.len());
    assert!(out.is_empty());

    let mut got = Burst::new();
    assert_eq!(b_rx.rx_burst(&mut got), lens.len());
    for (i, m) in got.as_slice().iter().enumerate() {
        assert_eq!(m.data(), &packet(i as u32, lens[i])[..], "packet {i}");
        assert_eq!(m.pkt_len() as usize, lens[i]);
    }
    // And back the other way, modified in place.
    for m in got.as_mut_slice() {
        if let Some(first) = m.data_mut().first_mut() {
            *first ^= 0xff;
        }
    }
    assert_eq!(b_tx.send(&mut got), lens.len());
    let mut back = Burst::new();
    assert_eq!(a_rx.rx_burst(&mut back), lens.len());
    for (i, m) in back.as_slice().iter().enumerate() {
        let mut want = packet(i as u32, lens[i]);
        want[0] ^= 0xff;
        assert_eq!(m.data(), &want[..]);
    }
    drop(back);
    let stats = a.stats().expect("stats");
    assert_eq!(stats.tx_packets, lens.len() as u64);
    assert_eq!(stats.rx_packets, lens.len() as u64);
    assert!(a.link().expect("link").up);
    let _ = a.mac().expect("mac");
    let _ = a.xstats().expect("xstats");
}

#[test]
fn tx_refused_by_a_full_ring_is_freed_and_counted() {
    let pool = pool("full_pool", 8192);
    let (mut a, _b) =
        Port::ring_pair(eal(), "full", &PortConfig::default(), &pool).expect("ring pair");
    let mut tx = a.take_tx_queue(0).expect("tx");
    let mut sent = 0;
    // The ring holds 4095; nobody receives.
    for _ in 0..(5000 / MAX_BURST + 1) {
        let mut b = Burst::new();
        assert!(pool.alloc_bulk(&mut b, MAX_BURST));
        sent += tx.send(&mut b);
        assert!(b.is_empty(), "send leaves nothing behind");
    }
    let st = tx.stats();
    assert_eq!(sent, 4095);
    assert_eq!(st.sent, 4095);
    assert_eq!(
        st.dropped as usize,
        (5000 / MAX_BURST + 1) * MAX_BURST - 4095
    );
    assert!(st.retried > 0);
    // Dropped mbufs went back to the pool: only the 4095 in the ring are out.
    assert_eq!(pool.in_use(), 4095);
}

#[test]
fn net_null_burst_loop() {
    let pool = pool("null_pool", 4096);
    let mut p = Port::open(
        eal(),
        "net_null_loop0,size=64,copy=1",
        &PortConfig::default(),
        &pool,
    )
    .expect("net_null");
    let mut rx = p.take_rx_queue(0).expect("rx");
    let mut tx = p.take_tx_queue(0).expect("tx");
    let mut b = Burst::new();
    let mut moved = 0usize;
    for _ in 0..1000 {
        rx.rx_burst(&mut b);
        assert!(b.iter_len_ok());
        moved += tx.send(&mut b);
    }
    assert_eq!(moved, 1000 * MAX_BURST);
    let s = p.stats().expect("stats");
    assert_eq!(s.rx_packets, moved as u64);
    assert_eq!(s.tx_packets, moved as u64);
    assert_eq!(pool.in_use(), 0);
}

trait BurstCheck {
    fn iter_len_ok(&self) -> bool;
}
impl BurstCheck for Burst {
    fn iter_len_ok(&self) -> bool {
        self.len() == MAX_BURST && self.as_slice().iter().all(|m| m.len() == 64)
    }
}

#[test]
fn mempool_exhaustion_is_counted_not_a_crash() {
    let pool = pool("tiny_pool", 127);
    let mut held: Vec<Mbuf> = Vec::new();
    while let Some(m) = pool.alloc() {
        held.push(m);
        assert!(held.len() <= 127);
    }
    assert_eq!(held.len(), 127);
    assert_eq!(pool.alloc_failures(), 1);
    assert!(pool.alloc().is_none());
    let mut b = Burst::new();
    assert!(!pool.alloc_bulk(&mut b, 4));
    assert_eq!(pool.alloc_failures(), 3);
    assert!(b.is_empty());

    // A port whose RX pool is empty receives nothing, without crashing
    // (net_null does not report rx_nombuf; real NICs do).
    let mut p = Port::open(
        eal(),
        "net_null_starved0,size=64,copy=1",
        &PortConfig::default(),
        &pool,
    )
    .expect("port");
    let mut rx = p.take_rx_queue(0).expect("rx");
    for _ in 0..10 {
        assert_eq!(rx.rx_burst(&mut b), 0);
    }
    assert_eq!(p.stats().expect("stats").rx_packets, 0);
    held.clear();
    assert_eq!(
        rx.rx_burst(&mut b),
        MAX_BURST,
        "recovers once mbufs come back"
    );
}

#[test]
fn ring_carries_mbufs_and_boxes_between_threads() {
    let pool = pool("ring_pool", 1024);
    let (mut prod, mut cons) = Ring::spsc::<Mbuf>(eal(), "handoff_t", 255).expect("ring");
    let mut b = Burst::new();
    assert!(pool.alloc_bulk(&mut b, 10));
    for (i, m) in b.as_mut_slice().iter_mut().enumerate() {
        assert!(m.set_bytes(&packet(i as u32, 100)));
    }
    assert_eq!(prod.enqueue_burst(&mut b), 10);
    let t = std::thread::spawn(move || {
        let mut got = Burst::new();
        assert_eq!(cons.dequeue_burst(&mut got), 10);
        got.as_slice()
            .iter()
            .enumerate()
            .all(|(i, m)| m.data() == &packet(i as u32, 100)[..])
    });
    assert!(t.join().expect("join"));
    assert_eq!(pool.in_use(), 0);

    let (mut p2, mut c2) = Ring::spsc::<Box<String>>(eal(), "msgs_t", 3).expect("ring");
    for s in ["a", "b", "c"] {
        p2.enqueue(Box::new(s.to_string())).expect("room");
    }
    assert_eq!(
        p2.enqueue(Box::new("d".into())).err().map(|b| *b),
        Some("d".to_string())
    );
    assert_eq!(c2.dequeue().map(|b| *b), Some("a".to_string()));
    drop(c2);
    drop(p2); // the two items left are dropped with the ring
}

#[test]
fn pinned_registered_workers_then_orderly_shutdown() {
    let pool = pool("worker_pool", 4096);
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        ..PortConfig::default()
    };
    let (mut a, mut b) = Port::ring_pair(eal(), "workers", &cfg, &pool).expect("ring pair");
    let mut handles = Vec::new();
    // Both workers hold their registration at once, so their ids differ.
    let barrier = Arc::new(std::sync::Barrier::new(2));
    for q in 0..2u16 {
        let barrier = barrier.clone();
        let mut tx = a.take_tx_queue(q).expect("tx");
        let mut rx = b.take_rx_queue(q).expect("rx");
        let pool = pool.clone();
        let h =
            dataplane::dpdk::spawn_worker(eal(), &format!("w{q}"), Some(q as usize), move |reg| {
                let lcore = reg.lcore();
                barrier.wait();
                let mut out = Burst::new();
                assert!(pool.alloc_bulk(&mut out, 16));
                let sent = tx.send(&mut out);
                let mut got = Burst::new();
                let mut n = 0;
                for _ in 0..100_000 {
                    n += rx.rx_burst(&mut got);
                    got.clear();
                    if n == sent {
                        break;
                    }
                }
                (lcore, sent, n)
            })
            .expect("spawn");
        handles.push(h);
    }
    let mut lcores = Vec::new();
    for h in handles {
        let (lcore, sent, got) = h.join().expect("no panic").expect("registered");
        assert_eq!((sent, got), (16, 16));
        lcores.push(lcore);
    }
    assert_ne!(lcores[0], lcores[1], "each worker has its own lcore id");
    assert!(lcores.iter().all(|l| *l != u32::MAX && *l != 0));
    // Workers joined and their queues dropped: now the ports may stop.
    drop(a);
    drop(b);
    assert_eq!(pool.in_use(), 0);
}

/// The cores a thread may run on, from /proc (e.g. "1" or "0-1").
fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/thread-self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn workers_are_pinned_even_when_spawned_from_a_pinned_thread() {
    let cores = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    if cores.trim() == "0" {
        // A skip must never read as a pass: CI has two cores, so there it
        // fails; elsewhere it is counted as skipped by scripts/test.sh.
        let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
        assert!(!ci, "needs two online cores");
        eprintln!(
            "SKIP workers_are_pinned_even_when_spawned_from_a_pinned_thread: one core online"
        );
        if let Ok(path) = std::env::var("RVS_SKIP_LOG") {
            let line =
                "workers_are_pinned_even_when_spawned_from_a_pinned_thread: one core online\n";
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        }
        return;
    }
    let eal = eal().clone();
    // EAL pins the thread that initialises it; a worker spawned from such a
    // thread must still land on its own core, not inherit the caller's.
    let got = std::thread::spawn(move || {
        core_affinity::set_for_current(core_affinity::CoreId { id: 0 });
        assert_eq!(cpus_allowed(), "0");
        let h = dataplane::dpdk::spawn_worker(&eal, "pin1", Some(1), |_| cpus_allowed())
            .expect("spawn");
        h.join().expect("no panic").expect("registered")
    })
    .join()
    .expect("join");
    assert_eq!(got, "1");
}

#[test]
fn tables_use_dpdk_memory_only_when_eal_has_hugepages() {
    use dataplane::dpdk::{Backing, HugeSlice, TableMem};
    // The tests' EAL runs with --no-huge: tables must not take its (small,
    // ordinary) memory unless asked to.
    let auto = TableMem::dpdk(eal(), Some(0));
    assert!(!auto.uses_dpdk());
    let s = HugeSlice::new(&auto, 1000, 3u64);
    assert!(!s.is_dpdk());
    // The DPDK allocation path itself: rte_malloc_socket, filled, freed on
    // drop, reported as ordinary pages under --no-huge.
    let forced = TableMem::dpdk_always(eal(), None);
    for round in 0..3u64 {
        let mut d = HugeSlice::new(&forced, 100_000, round);
        assert!(d.is_dpdk());
        assert_eq!(d.backing(), Backing::SmallPages);
        assert_eq!(d.as_ptr() as usize % 64, 0);
        assert!(d.iter().all(|&x| x == round));
        d[99_999] = 7;
        assert_eq!(d[99_999], 7);
    }
}
