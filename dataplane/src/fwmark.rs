//! Firewall-mark classifier: rvs's stand-in for the kernel's packet marks.
//!
//! IPVS groups ports and protocols into one service by a firewall mark
//! that iptables/nftables set (`ipvsadm -A -f MARK`). rvs has no netfilter
//! in front of it, so a mark is defined in config by an ordered list of
//! rules (destination address/prefix, protocol, destination port range);
//! the first rule that matches gives the packet its mark. IPVS looks a
//! marked packet up among the fwmark services first and falls back to the
//! (protocol, address, port) services (`ip_vs_service_find`); the pipeline
//! is to do the same with the mark this classifier returns.
//!
//! The rules are compiled once, on the control side, into two flat arrays
//! (IPv4, IPv6) carried by the snapshot; [`Classifier::classify`] walks
//! them with no allocation, no index and no panic.
//!
//! The snapshot carries the compiled classifier next to the fwmark
//! services ([`crate::snapshot::Snapshot::service_for`]); rvsd builds it
//! from the config's `[[fwmark]]` tables.

use std::fmt;
use std::net::IpAddr;

/// One rule as configuration gives it (before compilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MarkRule {
    /// The mark given to a matching packet (IPVS fwmarks are non-zero).
    pub mark: u32,
    /// Destination network (host bits must be zero).
    pub net: IpAddr,
    /// Prefix length of `net` (0..=32 for IPv4, 0..=128 for IPv6).
    pub prefix: u8,
    /// IP protocol (6 TCP, 17 UDP); `None` matches any protocol.
    pub proto: Option<u8>,
    /// Destination port range, inclusive (`(0, 65535)` for any port).
    pub ports: (u16, u16),
}

/// Why a rule list was refused; `rule` is the rule's index in the list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    /// Index of the offending rule.
    pub rule: usize,
    /// The field at fault (`mark`, `prefix`, `net`, `ports`).
    pub field: &'static str,
    /// Why.
    pub why: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule[{}].{}: {}", self.rule, self.field, self.why)
    }
}

impl std::error::Error for RuleError {}

/// A compiled rule; an IPv4 address sits in the low 32 bits of `net`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    net: u128,
    mask: u128,
    proto: Option<u8>,
    lo: u16,
    hi: u16,
    mark: u32,
}

impl Rule {
    #[inline]
    fn matches(&self, proto: u8, dst: u128, dport: u16) -> bool {
        dst & self.mask == self.net
            && self.proto.is_none_or(|p| p == proto)
            && (self.lo..=self.hi).contains(&dport)
    }
}

/// The first rule of `rules` that matches, as its mark.
#[inline]
fn first(rules: &[Rule], proto: u8, dst: u128, dport: u16) -> Option<u32> {
    rules
        .iter()
        .find(|r| r.matches(proto, dst, dport))
        .map(|r| r.mark)
}

/// A compiled, immutable rule list; first match wins, per address family.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Classifier {
    v4: Box<[Rule]>,
    v6: Box<[Rule]>,
}

fn mask4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl Classifier {
    /// Validate and compile `rules`, keeping their order. Refuses a zero
    /// mark, a prefix longer than the family allows, host bits set in the
    /// network, and a port range whose start is above its end.
    pub fn new(rules: &[MarkRule]) -> Result<Self, RuleError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            let err = |field, why: String| RuleError {
                rule: i,
                field,
                why,
            };
            if r.mark == 0 {
                return Err(err("mark", "must be 1..=4294967295 (0 is no mark)".into()));
            }
            if r.ports.0 > r.ports.1 {
                return Err(err(
                    "ports",
                    format!("range {}-{} starts above its end", r.ports.0, r.ports.1),
                ));
            }
            let bits = if r.net.is_ipv4() { 32 } else { 128 };
            if u32::from(r.prefix) > bits {
                let family = if bits == 32 { "IPv4" } else { "IPv6" };
                return Err(err(
                    "prefix",
                    format!("/{} is longer than {bits} for {family}", r.prefix),
                ));
            }
            let (net, mask, list) = match r.net {
                IpAddr::V4(a) => (
                    u128::from(u32::from(a)),
                    u128::from(mask4(r.prefix)),
                    &mut v4,
                ),
                IpAddr::V6(a) => (u128::from(a), mask6(r.prefix), &mut v6),
            };
            if net & !mask != 0 {
                return Err(err(
                    "net",
                    format!("{}/{} has host bits set", r.net, r.prefix),
                ));
            }
            list.push(Rule {
                net,
                mask,
                proto: r.proto,
                lo: r.ports.0,
                hi: r.ports.1,
                mark: r.mark,
            });
        }
        Ok(Self {
            v4: v4.into_boxed_slice(),
            v6: v6.into_boxed_slice(),
        })
    }

    /// True when there are no rules (the pipeline can skip classifying).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    /// The single addresses the rules name (IPv4 /32, IPv6 /128), with
    /// their marks: the VIPs a fwmark service answers ARP/ND for. Wider
    /// prefixes are expected to be routed to the director.
    pub fn hosts(&self) -> impl Iterator<Item = (u32, IpAddr)> + '_ {
        let v4 = self
            .v4
            .iter()
            .filter(|r| r.mask == u128::from(u32::MAX))
            .map(|r| {
                let a = std::net::Ipv4Addr::from(r.net as u32);
                (r.mark, IpAddr::V4(a))
            });
        let v6 = self
            .v6
            .iter()
            .filter(|r| r.mask == u128::MAX)
            .map(|r| (r.mark, IpAddr::V6(std::net::Ipv6Addr::from(r.net))));
        v4.chain(v6)
    }

    /// The mark of a packet to `dst`:`dport` with protocol `proto`: the
    /// first matching rule's, or `None` (no mark). Packet path: no
    /// allocation, no index, no panic.
    #[inline]
    pub fn classify(&self, proto: u8, dst: IpAddr, dport: u16) -> Option<u32> {
        match dst {
            IpAddr::V4(a) => first(&self.v4, proto, u128::from(u32::from(a)), dport),
            IpAddr::V6(a) => first(&self.v6, proto, u128::from(a), dport),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mark: u32, net: &str, prefix: u8, proto: Option<u8>, ports: (u16, u16)) -> MarkRule {
        MarkRule {
            mark,
            net: net.parse().unwrap(),
            prefix,
            proto,
            ports,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn http_and_https_share_a_mark() {
        let c = Classifier::new(&[
            rule(1, "198.18.0.100", 32, Some(6), (80, 80)),
            rule(1, "198.18.0.100", 32, Some(6), (443, 443)),
        ])
        .unwrap();
        assert_eq!(c.classify(6, ip("198.18.0.100"), 80), Some(1));
        assert_eq!(c.classify(6, ip("198.18.0.100"), 443), Some(1));
        assert_eq!(c.classify(6, ip("198.18.0.100"), 8080), None);
        assert_eq!(c.classify(17, ip("198.18.0.100"), 80), None);
        assert_eq!(c.classify(6, ip("198.18.0.101"), 80), None);
    }

    #[test]
    fn first_match_wins_and_prefixes_and_ranges_match() {
        let c = Classifier::new(&[
            rule(7, "198.18.0.128", 25, None, (1000, 1999)),
            rule(2, "198.18.0.0", 24, Some(17), (0, 65535)),
            rule(3, "0.0.0.0", 0, None, (53, 53)),
        ])
        .unwrap();
        assert_eq!(c.classify(17, ip("198.18.0.200"), 1000), Some(7));
        assert_eq!(c.classify(6, ip("198.18.0.255"), 1999), Some(7));
        assert_eq!(c.classify(6, ip("198.18.0.255"), 2000), None);
        assert_eq!(c.classify(17, ip("198.18.0.200"), 2000), Some(2));
        assert_eq!(c.classify(17, ip("198.18.0.1"), 53), Some(2));
        assert_eq!(c.classify(6, ip("198.18.0.1"), 53), Some(3));
        assert_eq!(c.classify(6, ip("198.19.9.9"), 53), Some(3));
        // An IPv4 rule never matches an IPv6 packet, even /0.
        assert_eq!(c.classify(6, ip("2001:db8::1"), 53), None);
    }

    #[test]
    fn ipv6_rules() {
        let c = Classifier::new(&[
            rule(5, "2001:db8::100", 128, Some(6), (80, 80)),
            rule(6, "2001:db8:1::", 48, Some(6), (443, 443)),
        ])
        .unwrap();
        assert_eq!(c.classify(6, ip("2001:db8::100"), 80), Some(5));
        assert_eq!(c.classify(6, ip("2001:db8::101"), 80), None);
        assert_eq!(c.classify(6, ip("2001:db8:1:ffff::1"), 443), Some(6));
        assert_eq!(c.classify(6, ip("2001:db8:2::1"), 443), None);
        assert_eq!(c.classify(6, ip("198.18.0.100"), 80), None);
        assert!(!c.is_empty());
        assert_eq!(c.hosts().collect::<Vec<_>>(), [(5, ip("2001:db8::100"))]);
        assert!(Classifier::default().is_empty());
        assert_eq!(
            Classifier::default().classify(6, ip("2001:db8::100"), 80),
            None
        );
    }

    #[test]
    fn bad_rules_are_refused_naming_rule_and_field() {
        let ok = rule(1, "198.18.0.0", 24, None, (0, 65535));
        let cases = [
            (
                rule(0, "198.18.0.0", 24, None, (0, 1)),
                "rule[1].mark: must be 1..=4294967295 (0 is no mark)",
            ),
            (
                rule(1, "198.18.0.0", 33, None, (0, 1)),
                "rule[1].prefix: /33 is longer than 32 for IPv4",
            ),
            (
                rule(1, "2001:db8::", 129, None, (0, 1)),
                "rule[1].prefix: /129 is longer than 128 for IPv6",
            ),
            (
                rule(1, "198.18.0.1", 24, None, (0, 1)),
                "rule[1].net: 198.18.0.1/24 has host bits set",
            ),
            (
                rule(1, "2001:db8::1", 64, None, (0, 1)),
                "rule[1].net: 2001:db8::1/64 has host bits set",
            ),
            (
                rule(1, "198.18.0.0", 24, None, (443, 80)),
                "rule[1].ports: range 443-80 starts above its end",
            ),
        ];
        for (bad, msg) in cases {
            let e = Classifier::new(&[ok, bad]).unwrap_err();
            assert_eq!(e.to_string(), msg);
        }
    }

    #[test]
    fn masks() {
        assert_eq!(mask4(0), 0);
        assert_eq!(mask4(24), 0xffff_ff00);
        assert_eq!(mask4(32), u32::MAX);
        assert_eq!(mask6(0), 0);
        assert_eq!(mask6(128), u128::MAX);
        assert_eq!(mask6(64), u128::MAX << 64);
    }
}
