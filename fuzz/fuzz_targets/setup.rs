//! The services, topology and pipeline the packet-path fuzz targets
//! (`packet`, `staged`) run on: two ports, NAT / DR / TUN / FullNAT
//! services over IPv4 and IPv6, small scheduler tables, two workers.

use dataplane::buf::VecBuf;
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Pipeline, PipelineConfig};
use dataplane::route::RouteTableBuilder;
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{PortSnap, Role, Service, SnapshotBuilder};
use dataplane::stats::WorkerCounters;
use dataplane::wire::ethernet::MacAddr;
use std::net::IpAddr;
use std::sync::Arc;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

fn service(
    id: u16,
    proto: u8,
    vip: &str,
    vport: u16,
    kind: SchedKind,
    reals: &[&str],
    fwd: FwdMode,
) -> Option<Service> {
    let rs: Vec<RealServer> = reals
        .iter()
        .enumerate()
        .map(|(i, a)| RealServer::new(u32::from(id) * 100 + i as u32, ip(a), 8080, 1))
        .collect();
    // Small Maglev and hash tables keep a pipeline cheap to build for
    // every input (the tables' own logic is the same at any size).
    let small = |kind| {
        let mut c = SchedConfig::new(kind);
        c.mh_table_size = 251;
        c.bucket_bits = 4;
        c
    };
    let mh = ServiceSched::new(small(SchedKind::Mh), rs.clone(), None, 1).ok()?;
    Some(Service {
        id,
        proto,
        vip: ip(vip),
        vport,
        sched: ServiceSched::new(small(kind), rs, None, 1).ok()?,
        fwd: vec![fwd; reals.len()].into_boxed_slice(),
        sorry_fwd: fwd,
        laddrs: vec![ip("198.19.0.250"), ip("2001:db8:1::250")].into_boxed_slice(),
        stateless: Some(mh),
        // every path on: passive reports, and stateless continuation where
        // a consistent scheduler makes it legal (DR/TUN)
        passive_check: true,
        sloppy_tcp: matches!(fwd, FwdMode::Dr | FwdMode::Tun),
        ops: false,
        synproxy: false,
        // TOA on the FullNAT TCP service: its option insertion and MSS
        // clamping see fuzzed segments too
        toa: proto == 6 && fwd == FwdMode::FullNat,
        // Proxy Protocol on FullNAT TCP: the header insertion path too
        proxy_protocol: (fwd == FwdMode::FullNat && proto == 6)
            .then_some(dataplane::forward::PpVersion::V1),
    })
}

/// A fresh pipeline (worker 0 of 2) and its counters.
pub fn pipeline() -> Option<(Pipeline<VecBuf>, Arc<WorkerCounters>)> {
    let ports = vec![
        PortSnap {
            mac: MacAddr([2, 0, 0, 0, 0, 1]),
            mtu: 1500,
            v4: Some(("198.18.0.1".parse().ok()?, 24)),
            v6: Some(("2001:db8::1".parse().ok()?, 64)),
        },
        PortSnap {
            mac: MacAddr([2, 0, 0, 0, 0, 2]),
            mtu: 1500,
            v4: Some(("198.19.0.1".parse().ok()?, 24)),
            v6: Some(("2001:db8:1::1".parse().ok()?, 64)),
        },
    ];
    let routes = RouteTableBuilder::new()
        .connected(0, ip("198.18.0.1"), 24)
        .connected(1, ip("198.19.0.1"), 24)
        .connected(0, ip("2001:db8::1"), 64)
        .connected(1, ip("2001:db8:1::1"), 64)
        .route(ip("0.0.0.0"), 0, 0, Some(ip("198.18.0.254")))
        .build()
        .ok()?;
    let rs4 = ["198.19.0.11", "198.19.0.12"];
    let rs6 = ["2001:db8:1::11", "2001:db8:1::12"];
    let services = [
        service(0, 6, "198.18.0.100", 80, SchedKind::Rr, &rs4, FwdMode::Nat)?,
        service(
            1,
            17,
            "198.18.0.100",
            53,
            SchedKind::Wrr,
            &rs4,
            FwdMode::FullNat,
        )?,
        service(2, 6, "198.18.0.101", 80, SchedKind::Mh, &rs4, FwdMode::Dr)?,
        service(3, 6, "198.18.0.102", 80, SchedKind::Sh, &rs4, FwdMode::Tun)?,
        service(4, 6, "2001:db8::100", 80, SchedKind::Rr, &rs6, FwdMode::Nat)?,
        service(
            5,
            6,
            "2001:db8::101",
            443,
            SchedKind::Lc,
            &rs6,
            FwdMode::FullNat,
        )?,
    ];
    let mut b = SnapshotBuilder::new(1, ports, routes).role(Role::Master);
    for s in services {
        b = b.service(s);
    }
    let snap = Arc::new(b.build().ok()?);
    let counters = Arc::new(WorkerCounters::new(8, 1024, 2, 2));
    let p = Pipeline::new(
        &PipelineConfig::new(0, 2, 64, 64),
        snap,
        HashKey::from_seed(7),
        counters.clone(),
    )
    .ok()?;
    Some((p, counters))
}
