//! Scheduler benchmarks: Maglev table build and per-scheduler pick cost.
//!
//! `cargo bench -p dataplane --bench sched -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use dataplane::sched::{
    HashKey, Persistence, PickInput, RealServer, SchedConfig, SchedKind, ServiceSched, WorkerSched,
    WorkerSchedConfig,
};

fn reals(n: usize, weighted: bool) -> Vec<RealServer> {
    (0..n)
        .map(|i| {
            let w = if weighted { 1 + (i as u32 % 5) } else { 1 };
            let r = RealServer::new(
                i as u32,
                IpAddr::V4(Ipv4Addr::from(0x0a00_0001 + i as u32)),
                80,
                w,
            );
            r.counters
                .set_counts((i as u32 * 7) % 13, (i as u32 * 11) % 17);
            r
        })
        .collect()
}

fn inputs() -> Vec<PickInput> {
    let k = HashKey::new(1, 1);
    (0..4096u64)
        .map(|i| {
            let h = k.hash_words(i, 0);
            PickInput {
                client: IpAddr::V4(Ipv4Addr::from(h as u32)),
                client_port: (h >> 32) as u16,
                vip: IpAddr::V4(Ipv4Addr::from((h >> 16) as u32)),
                vport: 80,
                proto: 6,
            }
        })
        .collect()
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build");
    for (n, m) in [(1000usize, 65_537u32), (100, 65_537), (1000, 131_071)] {
        let rs = reals(n, false);
        let mut cfg = SchedConfig::new(SchedKind::Mh);
        cfg.mh_table_size = m;
        g.bench_function(format!("N={n}/M={m}"), |b| {
            b.iter_batched(
                || rs.clone(),
                |rs| ServiceSched::new(cfg, rs, None, 1),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn pick(c: &mut Criterion) {
    let ins = inputs();
    for n in [16usize, 1000] {
        let mut g = c.benchmark_group(format!("pick/N={n}"));
        for kind in SchedKind::ALL {
            let mut cfg = SchedConfig::new(kind);
            cfg.seed = 42;
            let s = ServiceSched::new(cfg, reals(n, true), None, 1).expect("config");
            let mut w = WorkerSched::new(&s, WorkerSchedConfig::default());
            let mut i = 0usize;
            g.bench_function(kind.name(), |b| {
                b.iter(|| {
                    i = (i + 1) & 4095;
                    black_box(w.pick(&s, black_box(&ins[i]), 0))
                })
            });
        }
        // Persistence template lookup/insert on top of rr.
        let mut cfg = SchedConfig::new(SchedKind::Rr);
        cfg.persistence = Some(Persistence::new(300));
        let s = ServiceSched::new(cfg, reals(n, true), None, 1).expect("config");
        let mut w = WorkerSched::new(&s, WorkerSchedConfig::default());
        let mut i = 0usize;
        g.bench_function("rr+persistence", |b| {
            b.iter(|| {
                i = (i + 1) & 4095;
                black_box(w.schedule(&s, black_box(&ins[i]), 10))
            })
        });
        g.finish();
    }
}

criterion_group!(benches, maglev_build, pick);
criterion_main!(benches);
