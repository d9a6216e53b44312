//! VIP announcement by BGP through BIRD 2 (issue 13): the pure part.
//!
//! rvsd does not speak BGP. It owns one BIRD include file and tells BIRD
//! to re-read its configuration (`birdc configure`) when the set of VIPs
//! to announce changes; [`crate::daemon::bgp`] runs that. This module
//! holds the `[bgp]` config, its validation, which VIPs to announce
//! ([`announced`]) and the include file's text ([`include_text`]).
//!
//! Why BIRD 2: it is what most operators of Linux routers and directors
//! already run; its configuration plus `birdc configure` is a stable,
//! documented interface (a static protocol changes its routes on
//! reconfiguration without touching the BGP sessions); it has BFD built in
//! (sub-second failure detection, issue 13 item 4); it is packaged
//! everywhere (Debian `bird2`). ExaBGP needs a helper process speaking
//! its text API for every change and has no BFD; GoBGP's API is gRPC
//! (a protobuf client in rvsd) and its BFD is not in Debian 12's version.
//!
//! The include file always defines two static protocols, `rvs_vips4` and
//! `rvs_vips6`, with one `blackhole` route per announced VIP (/32, /128);
//! the operator's BGP protocols export them (`export where proto =
//! "rvs_vips4";`). With `local_as`, `neighbor_as` and `neighbors` set, the
//! file also holds the BGP sessions (`rvs_peer0`, ...) and, with
//! `bfd = true`, a BFD protocol (`rvs_bfd`), so a minimal bird.conf is
//! `router id ...; protocol device {} include "FILE";`.

use crate::model::{Model, ServiceKey};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Name of the static protocol holding the IPv4 VIPs.
pub const STATIC4: &str = "rvs_vips4";
/// Name of the static protocol holding the IPv6 VIPs.
pub const STATIC6: &str = "rvs_vips6";

/// `[bgp]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BgpConf {
    /// The speaker rvsd drives: "bird" (BIRD 2) only.
    pub speaker: String,
    /// The include file rvsd owns (absolute path); bird.conf includes it.
    #[serde(default = "default_include")]
    pub include: String,
    /// The `birdc` program.
    #[serde(default = "default_birdc")]
    pub birdc: String,
    /// BIRD's control socket (`birdc -s`); BIRD's default when absent.
    #[serde(default)]
    pub socket: Option<String>,
    /// Seconds between withdrawing the VIPs on SIGTERM and stopping (the
    /// routers move the flows meanwhile), 0..=3600.
    #[serde(default = "default_drain")]
    pub drain_seconds: i64,
    /// This director's AS number: with `neighbor_as` and `neighbors`,
    /// rvsd writes the BGP sessions into the include file too.
    #[serde(default)]
    pub local_as: Option<i64>,
    /// The routers' AS number.
    #[serde(default)]
    pub neighbor_as: Option<i64>,
    /// The routers' addresses (one session each).
    #[serde(default)]
    pub neighbors: Vec<String>,
    /// Local address of the sessions (BIRD picks one when absent).
    #[serde(default)]
    pub source: Option<String>,
    /// BGP hold time in seconds (0 or 3..=65535); BIRD's 240 when absent.
    #[serde(default)]
    pub hold_time: Option<i64>,
    /// BFD on the sessions (written sessions only).
    #[serde(default)]
    pub bfd: bool,
    /// BFD transmit and receive interval in milliseconds, 10..=10000.
    #[serde(default = "default_bfd_interval")]
    pub bfd_interval_ms: i64,
    /// BFD detection multiplier, 1..=255: a peer is down after this many
    /// intervals without a packet.
    #[serde(default = "default_bfd_multiplier")]
    pub bfd_multiplier: i64,
    /// rvsd runs the director's BIRD itself, as a child that the kernel
    /// stops (SIGTERM) when rvsd dies in any way, SIGKILL included, so a
    /// crashed rvsd takes its BGP sessions down and the routers withdraw
    /// its VIPs; rvsd restarts a BIRD that exits on its own.
    #[serde(default)]
    pub manage: bool,
    /// The `bird` program (with `manage`).
    #[serde(default = "default_bird")]
    pub bird: String,
    /// BIRD's config (`bird -c`, absolute path; needed with `manage`).
    #[serde(default)]
    pub bird_conf: Option<String>,
}

fn default_include() -> String {
    "/etc/bird/rvs-vips.conf".into()
}
fn default_birdc() -> String {
    "birdc".into()
}
fn default_bird() -> String {
    "bird".into()
}
fn default_drain() -> i64 {
    5
}
fn default_bfd_interval() -> i64 {
    100
}
fn default_bfd_multiplier() -> i64 {
    3
}

/// Whether `a` is a usable 4-byte AS number (RFC 6793: not 0, not
/// AS_TRANS 23456, not the reserved 4294967295).
fn asn_ok(a: i64) -> bool {
    (1..=4_294_967_294).contains(&a) && a != 23456
}

fn asn_why(a: i64) -> String {
    if a == 23456 {
        "23456 is AS_TRANS (RFC 6793), not an AS number".into()
    } else {
        format!("{a} is not an AS number (1..=4294967294)")
    }
}

/// A unicast address a BGP session can go to.
fn unicast(s: &str) -> Option<IpAddr> {
    let ip: IpAddr = s.parse().ok()?;
    (!ip.is_unspecified() && !ip.is_multicast() && !ip.is_loopback()).then_some(ip)
}

impl BgpConf {
    /// Every problem, as (field under `bgp.`, why).
    pub fn validate(&self) -> Vec<(String, String)> {
        let mut e: Vec<(String, String)> = Vec::new();
        let mut push = |f: &str, w: String| e.push((f.to_string(), w));
        if self.speaker != "bird" {
            push(
                "speaker",
                format!(
                    "unknown speaker '{}' (rvs drives BIRD 2: \"bird\")",
                    self.speaker
                ),
            );
        }
        if !self.include.starts_with('/') {
            push(
                "include",
                format!("'{}' must be an absolute path", self.include),
            );
        }
        if self.birdc.trim().is_empty() {
            push("birdc", "must name the birdc program".into());
        }
        if let Some(s) = &self.socket {
            if !s.starts_with('/') {
                push("socket", format!("'{s}' must be an absolute path"));
            }
        }
        if !(0..=3600).contains(&self.drain_seconds) {
            push(
                "drain_seconds",
                format!("must be 0..=3600, not {}", self.drain_seconds),
            );
        }
        for (f, v) in [
            ("local_as", self.local_as),
            ("neighbor_as", self.neighbor_as),
        ] {
            if let Some(a) = v {
                if !asn_ok(a) {
                    push(f, asn_why(a));
                }
            }
        }
        for (i, n) in self.neighbors.iter().enumerate() {
            if unicast(n).is_none() {
                push(
                    &format!("neighbors[{i}]"),
                    format!("'{n}' is not a unicast IPv4 or IPv6 address"),
                );
            } else if self.neighbors[..i].contains(n) {
                push(&format!("neighbors[{i}]"), format!("'{n}' is listed twice"));
            }
        }
        let sessions = [
            self.local_as.is_some(),
            self.neighbor_as.is_some(),
            !self.neighbors.is_empty(),
        ];
        if sessions.iter().any(|&b| b) && !sessions.iter().all(|&b| b) {
            for (f, set) in ["local_as", "neighbor_as", "neighbors"]
                .iter()
                .zip(sessions)
            {
                if !set {
                    push(
                        f,
                        "is needed: local_as, neighbor_as and neighbors go together \
                         (rvsd writes the BGP sessions only with all three)"
                            .into(),
                    );
                }
            }
        }
        if let Some(s) = &self.source {
            if unicast(s).is_none() {
                push("source", format!("'{s}' is not a unicast address"));
            }
        }
        if let Some(h) = self.hold_time {
            if h != 0 && !(3..=65535).contains(&h) {
                push("hold_time", format!("must be 0 or 3..=65535, not {h}"));
            }
        }
        if self.bfd && !self.writes_sessions() {
            push(
                "bfd",
                "BFD is set on the sessions rvsd writes; without local_as, neighbor_as and \
                 neighbors put `bfd on` in your own BGP protocols"
                    .into(),
            );
        }
        if !(10..=10_000).contains(&self.bfd_interval_ms) {
            push(
                "bfd_interval_ms",
                format!("must be 10..=10000, not {}", self.bfd_interval_ms),
            );
        }
        if !(1..=255).contains(&self.bfd_multiplier) {
            push(
                "bfd_multiplier",
                format!("must be 1..=255, not {}", self.bfd_multiplier),
            );
        }
        if self.bird.trim().is_empty() {
            push("bird", "must name the bird program".into());
        }
        match (&self.bird_conf, self.manage) {
            (Some(c), _) if !c.starts_with('/') => {
                push("bird_conf", format!("'{c}' must be an absolute path"));
            }
            (Some(_), false) => push(
                "bird_conf",
                "is used only with manage = true (rvsd starts BIRD with it)".into(),
            ),
            (None, true) => push(
                "bird_conf",
                "is needed with manage = true (the bird.conf rvsd starts BIRD with)".into(),
            ),
            _ => {}
        }
        e
    }

    /// Whether the include file carries the BGP sessions too.
    pub fn writes_sessions(&self) -> bool {
        self.local_as.is_some() && self.neighbor_as.is_some() && !self.neighbors.is_empty()
    }
}

/// The VIPs to announce: none unless `serving` (the director is master or
/// standalone, not drained, not stopping); otherwise the VIP of every
/// service not in `opt_out` that has a usable real server (weight > 0;
/// health checks set failed ones to 0 or remove them).
pub fn announced(model: &Model, serving: bool, opt_out: &[ServiceKey]) -> BTreeSet<IpAddr> {
    if !serving {
        return BTreeSet::new();
    }
    model
        .services
        .iter()
        .filter(|s| !opt_out.contains(&s.key))
        .filter(|s| s.reals.iter().any(|r| r.weight > 0))
        .map(|s| s.key.addr.ip())
        .collect()
}

/// Every VIP a service has (what the metrics list, announced or not).
pub fn vips(model: &Model) -> BTreeSet<IpAddr> {
    model.services.iter().map(|s| s.key.addr.ip()).collect()
}

/// The include file for `vips`.
pub fn include_text(cfg: &BgpConf, vips: &BTreeSet<IpAddr>) -> String {
    let mut out = String::from(
        "# Written by rvsd ([bgp] include): the VIPs this director announces.\n\
         # Do not edit; rvsd rewrites it and runs `birdc configure`.\n",
    );
    for (name, v6) in [(STATIC4, false), (STATIC6, true)] {
        out.push_str(&format!(
            "protocol static {name} {{\n    {};\n",
            if v6 { "ipv6" } else { "ipv4" }
        ));
        for ip in vips.iter().filter(|ip| ip.is_ipv6() == v6) {
            let len = if v6 { 128 } else { 32 };
            out.push_str(&format!("    route {ip}/{len} blackhole;\n"));
        }
        out.push_str("}\n");
    }
    if !cfg.writes_sessions() {
        return out;
    }
    if cfg.bfd {
        out.push_str(&format!(
            "protocol bfd rvs_bfd {{\n    interface \"*\" {{\n        min rx interval {i} ms;\n        \
             min tx interval {i} ms;\n        idle tx interval 1000 ms;\n        multiplier {m};\n    }};\n}}\n",
            i = cfg.bfd_interval_ms,
            m = cfg.bfd_multiplier
        ));
    }
    let (local, peer) = (
        cfg.local_as.unwrap_or_default(),
        cfg.neighbor_as.unwrap_or_default(),
    );
    for (i, n) in cfg.neighbors.iter().enumerate() {
        let v6 = n.contains(':');
        let src = cfg
            .source
            .as_ref()
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        out.push_str(&format!(
            "protocol bgp rvs_peer{i} {{\n    local {src}as {local};\n    neighbor {n} as {peer};\n"
        ));
        if let Some(h) = cfg.hold_time {
            out.push_str(&format!(
                "    hold time {h};\n    connect retry time 1;\n    error wait time 1, 2;\n"
            ));
        }
        if cfg.bfd {
            out.push_str("    bfd on;\n");
        }
        let (fam, st) = if v6 {
            ("ipv6", STATIC6)
        } else {
            ("ipv4", STATIC4)
        };
        out.push_str(&format!(
            "    {fam} {{\n        import none;\n        export where proto = \"{st}\";\n    }};\n}}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    const BASE: &str = r#"
[eal]
cores = [0, 1]
hugepages = false
memory_mb = 64

[[port]]
name = "p0"
device = "net_null0"
addresses = ["198.18.0.2/24"]

[[service]]
protocol = "tcp"
address = "198.18.5.100:80"
scheduler = "mh"
forward = "route"
[[service.real]]
address = "198.18.1.10:80"

[[service]]
protocol = "tcp"
address = "[2001:db8:5::100]:80"
scheduler = "mh"
forward = "route"
[[service.real]]
address = "[2001:db8:0:2::10]:80"

[[service]]
protocol = "tcp"
address = "198.18.5.101:80"
forward = "route"
announce = false
[[service.real]]
address = "198.18.1.10:80"

[[service]]
protocol = "udp"
address = "198.18.5.102:53"
forward = "route"
[[service.real]]
address = "198.18.1.10:53"
weight = 0
"#;

    fn parse(bgp: &str) -> Result<config::Config, Vec<String>> {
        config::parse(&format!("{BASE}\n[bgp]\n{bgp}"), "t.toml")
            .map_err(|e| e.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn announces_served_vips_with_a_usable_real() {
        let cfg = parse("speaker = \"bird\"\n").unwrap();
        let m = cfg.to_model();
        let out = config::bgp_opt_out(&cfg);
        let got: Vec<String> = announced(&m, true, &out)
            .iter()
            .map(ToString::to_string)
            .collect();
        // .101 opted out, .102's only real has weight 0
        assert_eq!(got, ["198.18.5.100", "2001:db8:5::100"]);
        assert!(announced(&m, false, &out).is_empty());
        assert_eq!(vips(&m).len(), 4);
    }

    #[test]
    fn include_file_static_routes_only() {
        let cfg = parse("speaker = \"bird\"\n").unwrap();
        let b = cfg.bgp.unwrap();
        let set: BTreeSet<IpAddr> = [
            "198.18.5.100".parse().unwrap(),
            "2001:db8:5::100".parse().unwrap(),
        ]
        .into_iter()
        .collect();
        let t = include_text(&b, &set);
        assert!(t.contains(
            "protocol static rvs_vips4 {\n    ipv4;\n    route 198.18.5.100/32 blackhole;\n}\n"
        ));
        assert!(t.contains(
            "protocol static rvs_vips6 {\n    ipv6;\n    route 2001:db8:5::100/128 blackhole;\n}\n"
        ));
        assert!(!t.contains("protocol bgp"));
        // nothing to announce: both protocols still defined, empty
        let empty = include_text(&b, &BTreeSet::new());
        assert!(empty.contains("protocol static rvs_vips4 {\n    ipv4;\n}\n"));
        assert!(empty.contains("protocol static rvs_vips6 {\n    ipv6;\n}\n"));
    }

    #[test]
    fn include_file_with_sessions_and_bfd() {
        let cfg = parse(
            "speaker = \"bird\"\nlocal_as = 65001\nneighbor_as = 65000\n\
             neighbors = [\"198.18.0.254\", \"2001:db8:0:1::fe\"]\nsource = \"198.18.0.2\"\n\
             hold_time = 3\nbfd = true\nbfd_interval_ms = 50\n",
        )
        .unwrap();
        let t = include_text(&cfg.bgp.unwrap(), &BTreeSet::new());
        assert!(t.contains("protocol bfd rvs_bfd {"), "{t}");
        assert!(t.contains("min rx interval 50 ms;"), "{t}");
        assert!(t.contains("multiplier 3;"), "{t}");
        assert!(t.contains(
            "protocol bgp rvs_peer0 {\n    local 198.18.0.2 as 65001;\n    neighbor 198.18.0.254 as 65000;\n    hold time 3;\n"
        ), "{t}");
        assert!(t.contains("    bfd on;\n"), "{t}");
        assert!(t.contains("export where proto = \"rvs_vips4\";"), "{t}");
        assert!(t.contains("neighbor 2001:db8:0:1::fe as 65000;"), "{t}");
        assert!(t.contains("export where proto = \"rvs_vips6\";"), "{t}");
    }

    #[test]
    fn bad_bgp_config_is_refused_naming_the_field() {
        let errs = parse(
            "speaker = \"exabgp\"\nlocal_as = 0\nneighbor_as = 23456\n\
             neighbors = [\"198.18.0.300\", \"224.0.0.5\"]\ninclude = \"rvs.conf\"\n\
             drain_seconds = -1\nhold_time = 2\nbfd_multiplier = 0\n",
        )
        .unwrap_err();
        let want = [
            "t.toml: bgp.speaker: unknown speaker 'exabgp' (rvs drives BIRD 2: \"bird\")",
            "t.toml: bgp.include: 'rvs.conf' must be an absolute path",
            "t.toml: bgp.drain_seconds: must be 0..=3600, not -1",
            "t.toml: bgp.local_as: 0 is not an AS number (1..=4294967294)",
            "t.toml: bgp.neighbor_as: 23456 is AS_TRANS (RFC 6793), not an AS number",
            "t.toml: bgp.neighbors[0]: '198.18.0.300' is not a unicast IPv4 or IPv6 address",
            "t.toml: bgp.neighbors[1]: '224.0.0.5' is not a unicast IPv4 or IPv6 address",
            "t.toml: bgp.hold_time: must be 0 or 3..=65535, not 2",
            "t.toml: bgp.bfd_multiplier: must be 1..=255, not 0",
        ];
        assert_eq!(errs, want);
        let errs = parse("speaker = \"bird\"\nlocal_as = 65001\nbfd = true\n").unwrap_err();
        assert!(
            errs[0].starts_with("t.toml: bgp.neighbor_as: is needed"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("t.toml: bgp.neighbors: is needed"),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("t.toml: bgp.bfd: BFD is set on the sessions"),
            "{errs:?}"
        );
        let errs = parse("speaker = \"bird\"\nlocal_as = 4294967295\n").unwrap_err();
        assert!(
            errs[0] == "t.toml: bgp.local_as: 4294967295 is not an AS number (1..=4294967294)",
            "{errs:?}"
        );
        let errs = parse("speaker = \"bird\"\nmanage = true\n").unwrap_err();
        assert_eq!(
            errs,
            ["t.toml: bgp.bird_conf: is needed with manage = true (the bird.conf rvsd starts BIRD with)"]
        );
        let errs = parse("speaker = \"bird\"\nbird_conf = \"/etc/bird/bird.conf\"\n").unwrap_err();
        assert_eq!(
            errs,
            ["t.toml: bgp.bird_conf: is used only with manage = true (rvsd starts BIRD with it)"]
        );
        let errs =
            parse("speaker = \"bird\"\nmanage = true\nbird_conf = \"bird.conf\"\nbird = \"\"\n")
                .unwrap_err();
        assert_eq!(
            errs,
            [
                "t.toml: bgp.bird: must name the bird program",
                "t.toml: bgp.bird_conf: 'bird.conf' must be an absolute path"
            ]
        );
        let ok = parse("speaker = \"bird\"\nmanage = true\nbird_conf = \"/etc/bird/bird.conf\"\n")
            .unwrap()
            .bgp
            .unwrap();
        assert!(ok.manage);
        assert_eq!(ok.bird, "bird");
        // an unknown key names itself
        let errs = parse("speaker = \"bird\"\nneighbour = \"x\"\n").unwrap_err();
        assert!(errs[0].contains("bgp.neighbour"), "{errs:?}");
    }
}
