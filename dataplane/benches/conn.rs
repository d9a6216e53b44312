//! Connection-table lookup cost: hits in both directions on tables of 1K
//! and 1M NAT connections, keys visited in a random order (so the 1M case
//! measures cache and TLB misses, as a busy worker sees them), plus misses
//! and insert+remove churn on the 1M table.
//!
//! Run: `cargo bench -p dataplane --bench conn -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dataplane::conn::{ConnConfig, ConnTable, FwdMode, NewConn};
use dataplane::flow::{FlowKey, HashKey, IPPROTO_TCP, V4};

/// Keys visited per benchmark iteration.
const BATCH: usize = 1024;

/// xorshift64*: a deterministic stream of pseudo-random numbers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn new_conn(rng: &mut Rng) -> NewConn<V4> {
    let r = rng.next();
    NewConn {
        proto: IPPROTO_TCP,
        fwd: FwdMode::Nat,
        client: Ipv4Addr::from((r >> 32) as u32),
        cport: r as u16,
        vip: Ipv4Addr::new(192, 168, 0, 1),
        vport: 80,
        rip: Ipv4Addr::new(172, 16, 0, (r >> 16) as u8),
        rport: 8080,
        local: Ipv4Addr::UNSPECIFIED,
        lport: 0,
        rs: 0,
        svc: 0,
    }
}

/// A table of `n` connections and `n` of their keys (in and out
/// directions alternating) in random order.
fn filled(n: u32) -> (ConnTable<V4>, Vec<FlowKey<V4>>, Rng) {
    let mut t = ConnTable::<V4>::new(&ConnConfig::new(n), HashKey::from_seed(42)).expect("config");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut keys = Vec::with_capacity(n as usize);
    while t.len() < n {
        let c = new_conn(&mut rng);
        if t.insert(&c, 0).is_ok() {
            let k = if t.len() & 1 == 0 {
                c.in_key()
            } else {
                c.out_key().expect("nat")
            };
            keys.push(k);
        }
    }
    // Fisher-Yates shuffle.
    for i in (1..keys.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    (t, keys, rng)
}

fn lookup_hit(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn_lookup_hit");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, n) in [("1K", 1u32 << 10), ("1M", 1 << 20)] {
        let (mut t, keys, _) = filled(n);
        let mut pos = 0usize;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let mut hits = 0u32;
                for _ in 0..BATCH {
                    let k = &keys[pos];
                    pos += 1;
                    if pos == keys.len() {
                        pos = 0;
                    }
                    if let Some((idx, _)) = t.lookup(k) {
                        hits += black_box(t.get(idx)).map_or(0, |c| u32::from(c.vport() != 0));
                    }
                }
                assert_eq!(hits as usize, BATCH);
                hits
            })
        });
    }
    g.finish();
}

fn lookup_miss_and_churn(c: &mut Criterion) {
    let (mut t, _, mut rng) = filled(1 << 20);
    let misses: Vec<FlowKey<V4>> = (0..(1 << 16))
        .map(|_| new_conn(&mut rng).in_key())
        .collect();
    let mut g = c.benchmark_group("conn_1M");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut pos = 0usize;
    g.bench_function("lookup_miss", |b| {
        b.iter(|| {
            let mut found = 0u32;
            for _ in 0..BATCH {
                found += u32::from(t.lookup(&misses[pos]).is_some());
                pos = (pos + 1) % misses.len();
            }
            found
        })
    });
    // Make room, then measure insert + lookup + remove of new flows in a
    // 7/8-full table.
    let idxs: Vec<_> = t.iter().map(|(i, _)| i).take(1 << 17).collect();
    for i in idxs {
        t.remove(i);
    }
    g.bench_function("insert_remove", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                let c = new_conn(&mut rng);
                if let Ok(idx) = t.insert(&c, 0) {
                    black_box(t.lookup(&c.in_key()));
                    t.remove(idx);
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, lookup_hit, lookup_miss_and_churn);
criterion_main!(benches);
