//! The static route table: longest-prefix match from a destination address
//! to the output port and the next hop.
//!
//! A [`RouteTable`] is built once by [`RouteTableBuilder`] from the ports'
//! own addresses (connected routes) and the configured static routes, then
//! never changes: it lives in the immutable snapshot workers share through
//! an `Arc`. Lookups take `&self`, never allocate and never panic.
//!
//! # Layout and why
//!
//! Each address family has one array per prefix length that occurs in the
//! table, longest first; each array holds the masked prefixes of that
//! length, sorted, beside their next hops. A lookup masks the destination
//! to each length in turn and binary-searches that array; the first hit is
//! the longest match. A director's table is small (its connected subnets, a
//! default route, a few statics: a handful of distinct lengths), so a
//! lookup is a few binary searches over arrays that sit in L1, with no
//! hashing and no pointer chasing. A DIR-24-8 table would spend 64 MiB to
//! win nothing at that size; a hash map per length would need a hasher on
//! every probe for the same number of probes. The cost grows with the
//! number of *distinct lengths* (at most 33 or 129), not the number of
//! routes, and only logarithmically with the routes of one length.
//!
//! Limits: no metrics or ECMP (one next hop per prefix; a second route for
//! the same prefix is refused), no policy routing, no source selection.

#![deny(clippy::indexing_slicing)]

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Where a route sends packets: the output port and the gateway, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route<A> {
    /// Output port index.
    pub port: u16,
    /// The gateway, or `None` for a directly connected prefix (the
    /// destination itself is the next hop).
    pub gateway: Option<A>,
}

/// The answer of a lookup: the port to send on and the address whose MAC
/// the packet needs (the gateway, or the destination when connected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NextHop<A> {
    /// Output port index.
    pub port: u16,
    /// The neighbour to resolve: the gateway, or the destination itself.
    pub addr: A,
    /// Whether the destination is directly connected (no gateway).
    pub connected: bool,
}

/// Why a [`RouteTableBuilder`] refused a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteError {
    /// Prefix length longer than the address (over 32 or 128).
    BadPrefixLen {
        /// The prefix.
        prefix: IpAddr,
        /// The length given.
        len: u8,
    },
    /// A static route's prefix has bits set past its length.
    HostBitsSet {
        /// The prefix.
        prefix: IpAddr,
        /// The length given.
        len: u8,
    },
    /// Two routes for the same prefix and length.
    Duplicate {
        /// The prefix.
        prefix: IpAddr,
        /// The length.
        len: u8,
    },
    /// The gateway's family differs from the prefix's.
    FamilyMismatch {
        /// The prefix.
        prefix: IpAddr,
        /// The gateway.
        gateway: IpAddr,
    },
    /// The gateway is not inside a connected prefix of the route's port
    /// (IPv6 link-local gateways are always on-link and accepted).
    GatewayNotOnLink {
        /// The gateway.
        gateway: IpAddr,
        /// The route's port.
        port: u16,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::BadPrefixLen { prefix, len } => {
                write!(f, "{prefix}/{len}: prefix length too long")
            }
            RouteError::HostBitsSet { prefix, len } => {
                write!(f, "{prefix}/{len}: bits set past the prefix length")
            }
            RouteError::Duplicate { prefix, len } => {
                write!(f, "{prefix}/{len}: more than one route for this prefix")
            }
            RouteError::FamilyMismatch { prefix, gateway } => {
                write!(f, "route {prefix}: gateway {gateway} of the other family")
            }
            RouteError::GatewayNotOnLink { gateway, port } => {
                write!(
                    f,
                    "gateway {gateway} is not in a connected prefix of port {port}"
                )
            }
        }
    }
}

impl std::error::Error for RouteError {}

/// An address as an unsigned integer key, maskable to a prefix length.
trait Key: Copy + Ord {
    /// The key with every bit past `len` cleared (`len <= BITS`).
    fn mask(self, len: u8) -> Self;
}

impl Key for u32 {
    #[inline]
    fn mask(self, len: u8) -> Self {
        match u32::MAX.checked_shl(u32::from(32 - len.min(32))) {
            Some(m) if len > 0 => self & m,
            _ => 0,
        }
    }
}

impl Key for u128 {
    #[inline]
    fn mask(self, len: u8) -> Self {
        match u128::MAX.checked_shl(u32::from(128 - len.min(128))) {
            Some(m) if len > 0 => self & m,
            _ => 0,
        }
    }
}

/// The prefixes of one length, sorted, beside their routes.
#[derive(Debug, Clone)]
struct Level<K, A> {
    len: u8,
    prefixes: Box<[K]>,
    routes: Box<[Route<A>]>,
}

/// One address family's table: levels longest prefix first.
#[derive(Debug, Clone)]
struct Lpm<K, A> {
    levels: Box<[Level<K, A>]>,
}

impl<K: Key, A: Copy> Lpm<K, A> {
    fn build(mut v: Vec<(K, u8, Route<A>)>) -> Self {
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut levels = Vec::new();
        let mut rest = &v[..];
        while let Some(&(_, len, _)) = rest.first() {
            let n = rest.iter().take_while(|e| e.1 == len).count();
            let (this, tail) = rest.split_at(n);
            levels.push(Level {
                len,
                prefixes: this.iter().map(|e| e.0).collect(),
                routes: this.iter().map(|e| e.2).collect(),
            });
            rest = tail;
        }
        Lpm {
            levels: levels.into_boxed_slice(),
        }
    }

    #[inline]
    fn lookup(&self, key: K) -> Option<Route<A>> {
        self.levels.iter().find_map(|l| {
            let i = l.prefixes.binary_search(&key.mask(l.len)).ok()?;
            l.routes.get(i).copied()
        })
    }

    fn len(&self) -> usize {
        self.levels.iter().map(|l| l.prefixes.len()).sum()
    }
}

/// An immutable IPv4 and IPv6 route table with longest-prefix match.
#[derive(Debug, Clone)]
pub struct RouteTable {
    v4: Lpm<u32, Ipv4Addr>,
    v6: Lpm<u128, Ipv6Addr>,
}

impl RouteTable {
    /// A table with no routes (every lookup misses).
    pub fn empty() -> Self {
        RouteTable {
            v4: Lpm::build(Vec::new()),
            v6: Lpm::build(Vec::new()),
        }
    }

    /// The longest-prefix route for an IPv4 destination.
    #[inline]
    pub fn route_v4(&self, dst: Ipv4Addr) -> Option<Route<Ipv4Addr>> {
        self.v4.lookup(u32::from(dst))
    }

    /// The longest-prefix route for an IPv6 destination.
    #[inline]
    pub fn route_v6(&self, dst: Ipv6Addr) -> Option<Route<Ipv6Addr>> {
        self.v6.lookup(u128::from(dst))
    }

    /// The port and next hop for an IPv4 destination, `None` if no route
    /// covers it.
    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Option<NextHop<Ipv4Addr>> {
        self.route_v4(dst).map(|r| NextHop {
            port: r.port,
            addr: r.gateway.unwrap_or(dst),
            connected: r.gateway.is_none(),
        })
    }

    /// The port and next hop for an IPv6 destination, `None` if no route
    /// covers it.
    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr) -> Option<NextHop<Ipv6Addr>> {
        self.route_v6(dst).map(|r| NextHop {
            port: r.port,
            addr: r.gateway.unwrap_or(dst),
            connected: r.gateway.is_none(),
        })
    }

    /// The port and next hop for a destination of either family.
    // always: once per forwarded packet; the burst loop around it made
    // LLVM keep it out of line.
    #[inline(always)]
    pub fn lookup(&self, dst: IpAddr) -> Option<NextHop<IpAddr>> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(a).map(|h| NextHop {
                port: h.port,
                addr: IpAddr::V4(h.addr),
                connected: h.connected,
            }),
            IpAddr::V6(a) => self.lookup_v6(a).map(|h| NextHop {
                port: h.port,
                addr: IpAddr::V6(h.addr),
                connected: h.connected,
            }),
        }
    }

    /// Number of IPv4 routes.
    pub fn len_v4(&self) -> usize {
        self.v4.len()
    }

    /// Number of IPv6 routes.
    pub fn len_v6(&self) -> usize {
        self.v6.len()
    }
}

impl Default for RouteTable {
    fn default() -> Self {
        Self::empty()
    }
}

/// A route as given to the builder, before validation.
#[derive(Debug, Clone, Copy)]
struct Pending {
    prefix: IpAddr,
    len: u8,
    port: u16,
    gateway: Option<IpAddr>,
    connected: bool,
}

/// Collects connected and static routes, validates them together and
/// builds a [`RouteTable`].
///
/// ```
/// use dataplane::route::RouteTableBuilder;
/// let mut b = RouteTableBuilder::new();
/// b.connected(0, "10.0.0.1".parse().unwrap(), 24);
/// b.route("0.0.0.0".parse().unwrap(), 0, 0, Some("10.0.0.254".parse().unwrap()));
/// let t = b.build().unwrap();
/// let hop = t.lookup_v4("192.0.2.7".parse().unwrap()).unwrap();
/// assert_eq!(hop.addr, "10.0.0.254".parse::<std::net::Ipv4Addr>().unwrap());
/// ```
#[derive(Debug, Clone, Default)]
pub struct RouteTableBuilder {
    pending: Vec<Pending>,
}

impl RouteTableBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the connected route of a port address: `addr/len` on `port`
    /// (host bits of `addr` are cleared, as for `ip addr add`).
    pub fn connected(&mut self, port: u16, addr: IpAddr, len: u8) -> &mut Self {
        self.pending.push(Pending {
            prefix: addr,
            len,
            port,
            gateway: None,
            connected: true,
        });
        self
    }

    /// Adds a static route `prefix/len` via `gateway` on `port`, or
    /// directly connected on `port` when `gateway` is `None`. The prefix
    /// must have no bits set past `len`.
    pub fn route(
        &mut self,
        prefix: IpAddr,
        len: u8,
        port: u16,
        gateway: Option<IpAddr>,
    ) -> &mut Self {
        self.pending.push(Pending {
            prefix,
            len,
            port,
            gateway,
            connected: false,
        });
        self
    }

    /// Validates every route and builds the table; the first error found
    /// is returned and nothing is built.
    pub fn build(&self) -> Result<RouteTable, RouteError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in &self.pending {
            let bad_len = RouteError::BadPrefixLen {
                prefix: p.prefix,
                len: p.len,
            };
            let host_bits = RouteError::HostBitsSet {
                prefix: p.prefix,
                len: p.len,
            };
            match p.prefix {
                IpAddr::V4(a) => {
                    if p.len > u32::BITS as u8 {
                        return Err(bad_len);
                    }
                    let k = u32::from(a);
                    if !p.connected && k.mask(p.len) != k {
                        return Err(host_bits);
                    }
                    let gateway = match p.gateway {
                        None => None,
                        Some(IpAddr::V4(g)) => Some(g),
                        Some(g) => {
                            return Err(RouteError::FamilyMismatch {
                                prefix: p.prefix,
                                gateway: g,
                            })
                        }
                    };
                    v4.push((
                        k.mask(p.len),
                        p.len,
                        Route {
                            port: p.port,
                            gateway,
                        },
                    ));
                }
                IpAddr::V6(a) => {
                    if p.len > u128::BITS as u8 {
                        return Err(bad_len);
                    }
                    let k = u128::from(a);
                    if !p.connected && k.mask(p.len) != k {
                        return Err(host_bits);
                    }
                    let gateway = match p.gateway {
                        None => None,
                        Some(IpAddr::V6(g)) => Some(g),
                        Some(g) => {
                            return Err(RouteError::FamilyMismatch {
                                prefix: p.prefix,
                                gateway: g,
                            })
                        }
                    };
                    v6.push((
                        k.mask(p.len),
                        p.len,
                        Route {
                            port: p.port,
                            gateway,
                        },
                    ));
                }
            }
        }
        check_duplicates(&mut v4.clone(), |k| IpAddr::V4(Ipv4Addr::from(k)))?;
        check_duplicates(&mut v6.clone(), |k| IpAddr::V6(Ipv6Addr::from(k)))?;
        // Gateways must be on a connected prefix of their route's port.
        let on_link = |gw: IpAddr, port: u16| {
            if let IpAddr::V6(g) = gw {
                if (u128::from(g) >> 118) == 0x3fa {
                    return true; // fe80::/10
                }
            }
            self.pending.iter().any(|c| {
                c.connected
                    && c.port == port
                    && match (c.prefix, gw) {
                        (IpAddr::V4(c4), IpAddr::V4(g)) => {
                            u32::from(c4).mask(c.len) == u32::from(g).mask(c.len)
                        }
                        (IpAddr::V6(c6), IpAddr::V6(g)) => {
                            u128::from(c6).mask(c.len) == u128::from(g).mask(c.len)
                        }
                        _ => false,
                    }
            })
        };
        for p in &self.pending {
            if let Some(gw) = p.gateway {
                if !on_link(gw, p.port) {
                    return Err(RouteError::GatewayNotOnLink {
                        gateway: gw,
                        port: p.port,
                    });
                }
            }
        }
        Ok(RouteTable {
            v4: Lpm::build(v4),
            v6: Lpm::build(v6),
        })
    }
}

fn check_duplicates<K: Key, A>(
    v: &mut [(K, u8, Route<A>)],
    addr: impl Fn(K) -> IpAddr,
) -> Result<(), RouteError> {
    v.sort_by_key(|a| (a.1, a.0));
    for w in v.windows(2) {
        if let [a, b] = w {
            if a.0 == b.0 && a.1 == b.1 {
                return Err(RouteError::Duplicate {
                    prefix: addr(a.0),
                    len: a.1,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> RouteTable {
        let mut b = RouteTableBuilder::new();
        b.connected(0, ip("10.0.0.1"), 24)
            .connected(1, ip("192.168.1.10"), 16)
            .connected(0, ip("2001:db8::1"), 64)
            .connected(1, ip("2001:db8:1::1"), 48)
            .route(ip("0.0.0.0"), 0, 0, Some(ip("10.0.0.254")))
            .route(ip("172.16.0.0"), 12, 1, Some(ip("192.168.0.1")))
            .route(ip("172.16.5.0"), 24, 0, Some(ip("10.0.0.253")))
            .route(ip("172.16.5.7"), 32, 1, Some(ip("192.168.200.2")))
            .route(ip("198.51.100.9"), 32, 1, None)
            .route(ip("::"), 0, 1, Some(ip("fe80::1")))
            .route(ip("2001:db8:2::"), 48, 0, Some(ip("2001:db8::fe")))
            .route(ip("2001:db8:2::80"), 128, 1, Some(ip("2001:db8:1::fe")));
        b.build().unwrap()
    }

    #[test]
    fn ipv4_longest_prefix_wins() {
        let t = table();
        assert_eq!(t.len_v4(), 7);
        let h = |s| t.lookup_v4(v4(s)).unwrap();
        // Connected: the destination is the next hop.
        assert_eq!(
            h("10.0.0.9"),
            NextHop {
                port: 0,
                addr: v4("10.0.0.9"),
                connected: true
            }
        );
        assert_eq!(h("192.168.7.7").addr, v4("192.168.7.7"));
        assert_eq!(h("192.168.7.7").port, 1);
        // Default route.
        assert_eq!(h("8.8.8.8").addr, v4("10.0.0.254"));
        assert!(!h("8.8.8.8").connected);
        // /12 < /24 < /32 overlapping.
        assert_eq!(h("172.31.255.255").addr, v4("192.168.0.1"));
        assert_eq!(h("172.16.0.1").addr, v4("192.168.0.1"));
        assert_eq!(h("172.16.5.1").addr, v4("10.0.0.253"));
        assert_eq!(h("172.16.5.7").addr, v4("192.168.200.2"));
        assert_eq!(h("172.16.5.7").port, 1);
        assert_eq!(h("172.16.5.8").addr, v4("10.0.0.253"));
        // Just outside the /12 falls to the default.
        assert_eq!(h("172.32.0.0").addr, v4("10.0.0.254"));
        assert_eq!(h("172.15.255.255").addr, v4("10.0.0.254"));
        // A connected host route.
        assert_eq!(
            h("198.51.100.9"),
            NextHop {
                port: 1,
                addr: v4("198.51.100.9"),
                connected: true
            }
        );
        assert_eq!(h("198.51.100.8").addr, v4("10.0.0.254"));
        assert_eq!(t.lookup(ip("10.0.0.200")).unwrap().addr, ip("10.0.0.200"));
    }

    #[test]
    fn ipv6_longest_prefix_wins() {
        let t = table();
        assert_eq!(t.len_v6(), 5);
        let h = |s| t.lookup_v6(v6(s)).unwrap();
        assert_eq!(h("2001:db8::77").addr, v6("2001:db8::77"));
        assert!(h("2001:db8::77").connected);
        assert_eq!(h("2001:db8:1:ffff::1").port, 1);
        assert_eq!(h("2001:db8:2::1").addr, v6("2001:db8::fe"));
        assert_eq!(h("2001:db8:2::80").addr, v6("2001:db8:1::fe"));
        assert_eq!(h("2001:db8:2::81").addr, v6("2001:db8::fe"));
        assert_eq!(h("2001:db9::1").addr, v6("fe80::1"));
        assert_eq!(h("2001:db9::1").port, 1);
        assert_eq!(t.lookup(ip("::1")).unwrap().addr, ip("fe80::1"));
    }

    #[test]
    fn no_default_means_miss() {
        let mut b = RouteTableBuilder::new();
        b.connected(3, ip("10.1.2.3"), 8);
        let t = b.build().unwrap();
        assert_eq!(t.lookup_v4(v4("10.255.0.1")).unwrap().port, 3);
        assert!(t.lookup_v4(v4("11.0.0.1")).is_none());
        assert!(t.lookup_v6(v6("::1")).is_none());
        assert!(RouteTable::empty().lookup(ip("1.2.3.4")).is_none());
    }

    #[test]
    fn masks() {
        assert_eq!(0xffff_ffffu32.mask(0), 0);
        assert_eq!(0xffff_ffffu32.mask(1), 0x8000_0000);
        assert_eq!(0xffff_ffffu32.mask(32), 0xffff_ffff);
        assert_eq!(u128::MAX.mask(0), 0);
        assert_eq!(u128::MAX.mask(128), u128::MAX);
        assert_eq!(u128::MAX.mask(127), u128::MAX - 1);
    }

    #[test]
    fn refused_routes() {
        let build = |f: &dyn Fn(&mut RouteTableBuilder)| {
            let mut b = RouteTableBuilder::new();
            b.connected(0, ip("10.0.0.1"), 24);
            f(&mut b);
            b.build()
        };
        assert!(matches!(
            build(&|b| {
                b.route(ip("10.0.0.0"), 33, 0, None);
            }),
            Err(RouteError::BadPrefixLen { .. })
        ));
        assert!(matches!(
            build(&|b| {
                b.route(ip("::"), 129, 0, None);
            }),
            Err(RouteError::BadPrefixLen { .. })
        ));
        assert!(matches!(
            build(&|b| {
                b.route(ip("10.1.0.1"), 16, 0, None);
            }),
            Err(RouteError::HostBitsSet { .. })
        ));
        assert!(matches!(
            build(&|b| {
                b.route(ip("10.0.0.0"), 24, 1, None);
            }),
            Err(RouteError::Duplicate { len: 24, .. })
        ));
        assert!(matches!(
            build(&|b| {
                b.route(ip("0.0.0.0"), 0, 0, Some(ip("2001:db8::1")));
            }),
            Err(RouteError::FamilyMismatch { .. })
        ));
        // Gateway in a connected prefix, but of another port.
        let e = build(&|b| {
            b.route(ip("0.0.0.0"), 0, 1, Some(ip("10.0.0.254")));
        })
        .unwrap_err();
        assert!(matches!(e, RouteError::GatewayNotOnLink { port: 1, .. }));
        assert!(e.to_string().contains("10.0.0.254"));
        assert!(build(&|b| {
            b.route(ip("0.0.0.0"), 0, 0, Some(ip("10.0.0.254")));
        })
        .is_ok());
    }
}
