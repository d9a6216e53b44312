//! The director's own addresses: which IPs it answers ARP/ND for, on which
//! port.

use core::net::IpAddr;

/// What an address of ours is for; answering ARP/ND can be switched per
/// class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrClass {
    /// A virtual service address. A DR backup director or a non-master HA
    /// node must not answer for these.
    Vip,
    /// A FullNAT local address (the source of packets to real servers).
    Local,
    /// An address of the director's port itself.
    Port,
}

impl AddrClass {
    /// Every class, in index order.
    pub const ALL: [AddrClass; 3] = [AddrClass::Vip, AddrClass::Local, AddrClass::Port];

    const fn index(self) -> usize {
        match self {
            AddrClass::Vip => 0,
            AddrClass::Local => 1,
            AddrClass::Port => 2,
        }
    }
}

/// One address of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OurAddr {
    /// The address.
    pub addr: IpAddr,
    /// The port it lives on (requests for it arriving elsewhere are
    /// ignored, as Linux with `arp_ignore`/`arp_filter`).
    pub port: u16,
    /// What it is for.
    pub class: AddrClass,
    /// Whether to answer ARP/ND for it (also subject to the class switch).
    pub answer: bool,
}

/// The set of our addresses, looked up by IP without allocating.
///
/// Built once (from the snapshot's services, local-address pools and port
/// addresses); [`set_answering`](Self::set_answering) switches answering
/// for a whole class, e.g. when a director becomes HA master.
#[derive(Debug, Clone, Default)]
pub struct OurAddrs {
    /// Sorted by address; one entry per address (the IPv4 ones first, as
    /// `IpAddr` orders them).
    addrs: Box<[OurAddr]>,
    /// The IPv4 entries' addresses as integers, then the IPv6 ones', in
    /// the same order: the lookup's binary search compares integers, not
    /// `IpAddr` enums (a new connection looks up its source and
    /// destination).
    keys4: Box<[u32]>,
    keys6: Box<[u128]>,
    answering: [bool; 3],
}

impl OurAddrs {
    /// A set from `addrs`, answering on for every class. A later entry
    /// for an address already given replaces the earlier one.
    pub fn new(addrs: impl IntoIterator<Item = OurAddr>) -> Self {
        let mut v: Vec<OurAddr> = addrs.into_iter().collect();
        // Stable sort, then keep the last of equal addresses.
        v.sort_by_key(|a| a.addr);
        let mut out: Vec<OurAddr> = Vec::with_capacity(v.len());
        for a in v {
            match out.last_mut() {
                Some(last) if last.addr == a.addr => *last = a,
                _ => out.push(a),
            }
        }
        let keys4 = out
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V4(v) => Some(u32::from(v)),
                IpAddr::V6(_) => None,
            })
            .collect();
        let keys6 = out
            .iter()
            .filter_map(|a| match a.addr {
                IpAddr::V6(v) => Some(u128::from(v)),
                IpAddr::V4(_) => None,
            })
            .collect();
        OurAddrs {
            addrs: out.into_boxed_slice(),
            keys4,
            keys6,
            answering: [true; 3],
        }
    }

    /// Switches answering ARP/ND for every address of `class`.
    pub fn set_answering(&mut self, class: AddrClass, on: bool) {
        if let Some(a) = self.answering.get_mut(class.index()) {
            *a = on;
        }
    }

    /// Whether answering is on for `class`.
    pub fn answering(&self, class: AddrClass) -> bool {
        self.answering.get(class.index()).copied().unwrap_or(false)
    }

    /// The entry for `addr`, if it is ours (on any port).
    #[inline]
    pub fn get(&self, addr: IpAddr) -> Option<&OurAddr> {
        let i = match addr {
            IpAddr::V4(a) => self.keys4.binary_search(&u32::from(a)).ok()?,
            IpAddr::V6(a) => self.keys4.len() + self.keys6.binary_search(&u128::from(a)).ok()?,
        };
        self.addrs.get(i)
    }

    /// Whether `addr` is ours (on any port).
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.get(addr).is_some()
    }

    /// Whether ARP/ND for `entry` is to be answered now: its own flag and
    /// its class switch.
    pub fn should_answer(&self, entry: &OurAddr) -> bool {
        entry.answer && self.answering(entry.class)
    }

    /// Every address, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &OurAddr> {
        self.addrs.iter()
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str, port: u16, class: AddrClass) -> OurAddr {
        OurAddr {
            addr: s.parse().unwrap(),
            port,
            class,
            answer: true,
        }
    }

    #[test]
    fn lookup_and_switch() {
        let mut s = OurAddrs::new([
            a("10.0.0.100", 0, AddrClass::Vip),
            a("10.0.0.1", 0, AddrClass::Port),
            a("2001:db8::100", 0, AddrClass::Vip),
            a("10.0.0.1", 1, AddrClass::Port),
            a("10.0.1.5", 1, AddrClass::Local),
        ]);
        assert_eq!(s.len(), 4);
        assert_eq!(s.get("10.0.0.1".parse().unwrap()).unwrap().port, 1);
        assert!(s.contains("2001:db8::100".parse().unwrap()));
        assert!(!s.contains("10.0.0.2".parse().unwrap()));
        let vip = *s.get("10.0.0.100".parse().unwrap()).unwrap();
        assert!(s.should_answer(&vip));
        s.set_answering(AddrClass::Vip, false);
        assert!(!s.should_answer(&vip));
        assert!(s.answering(AddrClass::Port));
        let local = *s.get("10.0.1.5".parse().unwrap()).unwrap();
        assert!(s.should_answer(&local));
        assert!(!s.should_answer(&OurAddr {
            answer: false,
            ..local
        }));
    }

    /// The integer lookup finds exactly what a scan of the entries finds,
    /// for every address in the set and for neighbours of each.
    #[test]
    fn lookup_is_a_scan() {
        let mut all = Vec::new();
        for i in 0..40u32 {
            let v4 = core::net::Ipv4Addr::from(0xc612_0000 + i * 7919);
            let v6 =
                core::net::Ipv6Addr::from((0x2001_0db8_u128 << 96) | (u128::from(i) * 104_729));
            all.push(OurAddr {
                addr: IpAddr::V4(v4),
                port: 0,
                class: AddrClass::Vip,
                answer: true,
            });
            all.push(OurAddr {
                addr: IpAddr::V6(v6),
                port: 1,
                class: AddrClass::Local,
                answer: true,
            });
        }
        let s = OurAddrs::new(all.clone());
        for e in &all {
            for d in [0u32, 1, 2] {
                let probe = match e.addr {
                    IpAddr::V4(v) => IpAddr::V4((u32::from(v) + d).into()),
                    IpAddr::V6(v) => IpAddr::V6((u128::from(v) + u128::from(d)).into()),
                };
                let scan = s.iter().find(|x| x.addr == probe);
                assert_eq!(s.get(probe), scan, "{probe}");
            }
        }
    }
}
