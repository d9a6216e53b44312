//! The benchmark topology: port 0 faces the clients (198.18.0.1/24,
//! 2001:db8::1/64, default routes via a gateway there), port 1 the real
//! servers (198.19.0.1/24, 2001:db8:1::1/64). One TCP service per family on
//! port 80 with four real servers (rr) in the chosen forwarding mode, and
//! sixteen FullNAT local addresses.

use crate::pkt::Fam;
use dataplane::conn::FwdMode;
use dataplane::route::{RouteTable, RouteTableBuilder};
use dataplane::sched::{RealServer, SchedConfig, SchedKind, ServiceSched};
use dataplane::snapshot::{PortSnap, Role, Service, Snapshot, SnapshotBuilder};
use dataplane::wire::ethernet::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Real servers per service.
pub const REALS: u8 = 4;
/// FullNAT local addresses.
pub const LADDRS: u8 = 16;
/// The virtual port.
pub const VPORT: u16 = 80;

/// The VIP of a family.
pub fn vip(fam: Fam) -> IpAddr {
    match fam {
        Fam::V4 => IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100)),
        Fam::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x100)),
    }
}

fn real(fam: Fam, i: u8) -> IpAddr {
    match fam {
        Fam::V4 => IpAddr::V4(Ipv4Addr::new(198, 19, 0, 0x11 + i)),
        Fam::V6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            0,
            0x11 + u16::from(i),
        )),
    }
}

fn laddr(fam: Fam, i: u8) -> IpAddr {
    match fam {
        Fam::V4 => IpAddr::V4(Ipv4Addr::new(198, 19, 0, 200 + i)),
        Fam::V6 => IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8,
            1,
            0,
            0,
            0,
            0,
            0x200 + u16::from(i),
        )),
    }
}

/// Parses a forwarding mode name.
pub fn parse_mode(s: &str) -> Option<FwdMode> {
    match s.to_ascii_lowercase().as_str() {
        "nat" => Some(FwdMode::Nat),
        "dr" => Some(FwdMode::Dr),
        "tun" => Some(FwdMode::Tun),
        "fullnat" | "fnat" => Some(FwdMode::FullNat),
        _ => None,
    }
}

/// A mode's name.
pub fn mode_name(m: FwdMode) -> &'static str {
    match m {
        FwdMode::Nat => "NAT",
        FwdMode::Dr => "DR",
        FwdMode::Tun => "TUN",
        FwdMode::FullNat => "FullNAT",
    }
}

fn service(id: u16, fam: Fam, mode: FwdMode, toa: bool) -> Result<Service, String> {
    // DR and TUN cannot change the port.
    let rport = match mode {
        FwdMode::Nat | FwdMode::FullNat => 8080,
        FwdMode::Dr | FwdMode::Tun => 0,
    };
    let rs: Vec<RealServer> = (0..REALS)
        .map(|i| RealServer::new(u32::from(id) * 100 + u32::from(i), real(fam, i), rport, 1))
        .collect();
    let mh = ServiceSched::new(SchedConfig::new(SchedKind::Mh), rs.clone(), None, 1)
        .map_err(|e| format!("{e:?}"))?;
    Ok(Service {
        id,
        proto: 6,
        vip: vip(fam),
        vport: VPORT,
        sched: ServiceSched::new(SchedConfig::new(SchedKind::Rr), rs, None, 1)
            .map_err(|e| format!("{e:?}"))?,
        fwd: vec![mode; REALS as usize].into_boxed_slice(),
        sorry_fwd: mode,
        laddrs: (0..LADDRS).map(|i| laddr(fam, i)).collect(),
        stateless: Some(mh),
        passive_check: false,
        sloppy_tcp: false,
        ops: false,
        synproxy: false,
        toa,
        proxy_protocol: None,
    })
}

fn routes() -> Result<RouteTable, String> {
    let a = |s: &str| -> IpAddr { s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)) };
    RouteTableBuilder::new()
        .connected(0, a("198.18.0.1"), 24)
        .connected(1, a("198.19.0.1"), 24)
        .connected(0, a("2001:db8::1"), 64)
        .connected(1, a("2001:db8:1::1"), 64)
        .route(a("0.0.0.0"), 0, 0, Some(a("198.18.0.254")))
        .route(a("::"), 0, 0, Some(a("2001:db8::fe")))
        .build()
        .map_err(|e| format!("routes: {e:?}"))
}

/// The port addresses (MACs from the devices).
pub fn ports(macs: [[u8; 6]; 2]) -> Vec<PortSnap> {
    vec![
        PortSnap {
            mac: MacAddr(macs[0]),
            mtu: 1500,
            v4: Some((Ipv4Addr::new(198, 18, 0, 1), 24)),
            v6: Some(("2001:db8::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED), 64)),
        },
        PortSnap {
            mac: MacAddr(macs[1]),
            // Room for TUN's outer header on 1500-byte client frames.
            mtu: 1600,
            v4: Some((Ipv4Addr::new(198, 19, 0, 1), 24)),
            v6: Some(("2001:db8:1::1".parse().unwrap_or(Ipv6Addr::UNSPECIFIED), 64)),
        },
    ]
}

/// The snapshot: one service per family, both in `mode`.
pub fn snapshot(ports: Vec<PortSnap>, mode: FwdMode) -> Result<Snapshot, String> {
    snapshot_with(ports, mode, false)
}

/// [`snapshot`] with TOA (`Service::toa`) on both services or not.
pub fn snapshot_with(ports: Vec<PortSnap>, mode: FwdMode, toa: bool) -> Result<Snapshot, String> {
    SnapshotBuilder::new(1, ports, routes()?)
        .role(Role::Master)
        .service(service(0, Fam::V4, mode, toa)?)
        .service(service(1, Fam::V6, mode, toa)?)
        .build()
        .map_err(|e| format!("snapshot: {e:?}"))
}

/// The service id of a family.
pub fn service_id(fam: Fam) -> usize {
    match fam {
        Fam::V4 => 0,
        Fam::V6 => 1,
    }
}

/// The real servers' addresses and MACs (for static neighbours).
pub fn reals(fam: Fam) -> Vec<(IpAddr, [u8; 6])> {
    (0..REALS)
        .map(|i| (real(fam, i), crate::pkt::rs_mac(0x11 + i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_every_mode() {
        for m in ["nat", "dr", "tun", "fullnat"] {
            let mode = parse_mode(m).expect("mode");
            let s = snapshot(ports([[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]]), mode).expect("snap");
            assert!(s.service_for(6, vip(Fam::V4), 80).is_some());
            assert!(s.service_for(6, vip(Fam::V6), 80).is_some());
        }
    }
}
