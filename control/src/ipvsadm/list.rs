//! Listings in ipvsadm's byte-for-byte layout (`-L` and its formats, `-c`,
//! `--timeout`, `-S`, DPVS's `--get-laddr`).
//!
//! Column widths follow ipvsadm.c's printf formats, trailing spaces
//! included. Addresses are always numeric: rvs does no name look-ups.

use super::{AdmError, ListOptions};
use crate::model::{ConnEntry, Model, ModelError, Service, ServiceKey};
use crate::model::{Forward, RealServer};
use std::fmt::Write;
use std::net::SocketAddr;

/// IPVS version the header line reports (the Linux IPVS ABI rvs mimics).
pub const IPVS_VERSION: &str = "1.2.1";

/// `addr:port`, IPv6 in brackets, as ipvsadm's `addrport_to_anyname -n`.
pub fn addrport(a: &SocketAddr) -> String {
    match a {
        SocketAddr::V4(v) => format!("{}:{}", v.ip(), v.port()),
        SocketAddr::V6(v) => format!("[{}]:{}", v.ip(), v.port()),
    }
}

/// ipvsadm's `print_largenum`: 9 columns, K/M/G/T above 10^8 unless exact.
fn largenum(out: &mut String, i: u64, exact: bool) {
    let _ = if exact {
        let len = i.to_string().len();
        let w = if len <= 8 { 9 } else { len + 1 };
        write!(out, "{i:>w$}")
    } else if i < 100_000_000 {
        write!(out, "{i:>9}")
    } else if i < 1_000_000_000 {
        write!(out, "{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        write!(out, "{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        write!(out, "{:>8}G", i / 1_000_000_000)
    } else {
        write!(out, "{:>8}T", i / 1_000_000_000_000)
    };
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Plain,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
}

fn fmt_of(o: &ListOptions) -> Fmt {
    if o.stats {
        Fmt::Stats
    } else if o.rate {
        Fmt::Rate
    } else if o.thresholds {
        Fmt::Thresholds
    } else if o.persistent_conn {
        Fmt::PersistentConn
    } else if o.tun_info {
        Fmt::TunInfo
    } else {
        Fmt::Plain
    }
}

fn title(out: &mut String, f: Fmt) {
    let p = "Prot LocalAddress:Port";
    let _ = match f {
        Fmt::Stats => writeln!(
            out,
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        ),
        Fmt::Rate => writeln!(
            out,
            "{p:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        ),
        Fmt::Thresholds => writeln!(
            out,
            "{p:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        ),
        Fmt::PersistentConn => writeln!(
            out,
            "{p:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        ),
        Fmt::Plain => writeln!(
            out,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn"
        ),
        Fmt::TunInfo => writeln!(
            out,
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn"
        ),
    };
}

fn truncate(mut s: String, n: usize, v4: bool) -> String {
    if v4 && s.len() > n {
        s.truncate(n);
    }
    s
}

/// "TCP  198.18.0.1:80" (two spaces), cut at 33 characters for IPv4;
/// "FWM  1" or "FWM  1 IPv6" for a fwmark service, as ipvsadm 1.31's
/// `print_service_entry` writes them.
fn svc_name(s: &Service) -> String {
    if s.key.is_fwmark() {
        let fam = if s.key.addr.is_ipv6() { " IPv6" } else { "" };
        return format!("FWM  {}{fam}", s.key.fwmark);
    }
    truncate(
        format!("{}  {}", s.key.proto.upper(), addrport(&s.key.addr)),
        33,
        s.key.addr.is_ipv4(),
    )
}

fn service_entry(out: &mut String, s: &Service, f: Fmt, o: &ListOptions) {
    let exact = o.exact;
    let name = svc_name(s);
    match f {
        Fmt::Stats => {
            let _ = write!(out, "{name:<33}");
            let st = &s.stats;
            for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                largenum(out, v, exact);
            }
        }
        Fmt::Rate => {
            let _ = write!(out, "{name:<33}");
            let r = &s.rates;
            for v in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
                largenum(out, v, exact);
            }
        }
        _ => {
            let _ = write!(out, "{name} {}", s.scheduler);
            if !s.flags.is_empty() {
                let _ = write!(out, " ({})", s.flags.names().join(","));
            }
            if let Some(t) = s.persistent {
                let _ = write!(out, " persistent {t}");
                if !s.netmask.is_full() {
                    let _ = write!(out, " mask {}", s.netmask);
                }
            }
            // ipvsadm 1.31 print_service_entry: after the persistence part
            if s.ops {
                out.push_str(" ops");
            }
            // DPVS's ipvsadm print_service_entry: after the flags
            if s.synproxy {
                out.push_str(" synproxy");
            }
            // rvs extension (DPVS has TOA on every FullNAT TCP service)
            if s.toa {
                out.push_str(" toa");
            }
            // DPVS's ipvsadm: " ppv1" / " ppv2" after its own flags
            if let Some(v) = s.proxy_protocol {
                let _ = write!(out, " pp{}", v.name());
            }
        }
    }
    if o.origin {
        let _ = write!(out, " origin {}", s.origin.name());
    }
    out.push('\n');
    let v4 = s.key.addr.is_ipv4();
    for r in &s.reals {
        let d = truncate(addrport(&r.addr), 28, v4);
        let _ = match f {
            Fmt::Stats => {
                let _ = write!(out, "  -> {d:<28}");
                let st = &r.stats;
                for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                    largenum(out, v, exact);
                }
                writeln!(out)
            }
            Fmt::Rate => {
                let rt = &r.rates;
                let _ = write!(
                    out,
                    "  -> {d:<28} {:>8} {:>8} {:>8}",
                    rt.cps, rt.inpps, rt.outpps
                );
                largenum(out, rt.inbps, exact);
                largenum(out, rt.outbps, exact);
                writeln!(out)
            }
            Fmt::Thresholds => writeln!(
                out,
                "  -> {d:<28} {:<10} {:<10} {:<10} {:<10}",
                r.u_threshold, r.l_threshold, r.active_conns, r.inact_conns
            ),
            Fmt::PersistentConn => writeln!(
                out,
                "  -> {d:<28} {:<9} {:<11} {:<10} {:<10}",
                r.weight, r.persist_conns, r.active_conns, r.inact_conns
            ),
            Fmt::Plain => writeln!(
                out,
                "  -> {d:<28} {:<7} {:<6} {:<10} {:<10}",
                r.forward.column(),
                r.weight,
                r.active_conns,
                r.inact_conns
            ),
            Fmt::TunInfo => writeln!(
                out,
                "  -> {d:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
                r.forward.column(),
                tun_info(r),
                r.weight,
                r.active_conns,
                r.inact_conns
            ),
        };
    }
}

/// `--tun-info`'s column: the tunnel of a TUN real server, "n/a" for
/// the others (ipvsadm's `fwd_tun_info`).
fn tun_info(r: &RealServer) -> String {
    if r.forward == Forward::Tunnel {
        r.tunnel.info()
    } else {
        "n/a".into()
    }
}

fn services(model: &Model, nosort: bool) -> Vec<Service> {
    if nosort {
        model.services.clone()
    } else {
        model.sorted()
    }
}

/// `-L` with its options: everything, one service, `-c` or `--timeout`.
pub fn list(model: &Model, o: &ListOptions, conns: &[ConnEntry]) -> Result<String, AdmError> {
    if o.connections {
        return Ok(connections(conns));
    }
    if o.timeout {
        return Ok(timeout(model));
    }
    let f = fmt_of(o);
    let mut out = String::new();
    if let Some(k) = &o.service {
        let s = services(model, o.nosort)
            .into_iter()
            .find(|s| s.key == *k)
            .ok_or(AdmError {
                message: ModelError::NoSuchService.to_string(),
                status: 1,
            })?;
        title(&mut out, f);
        service_entry(&mut out, &s, f, o);
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "IP Virtual Server version {IPVS_VERSION} (size={})",
        model.conn_table_size
    );
    title(&mut out, f);
    for s in services(model, o.nosort) {
        service_entry(&mut out, &s, f, o);
    }
    Ok(out)
}

/// `--timeout`: "Timeout (tcp tcpfin udp): 900 120 300".
pub fn timeout(model: &Model) -> String {
    let t = model.timeouts;
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcp_fin, t.udp
    )
}

/// `-L -c`: "IPVS connection entries" and one line per connection.
pub fn connections(conns: &[ConnEntry]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for c in conns {
        let expire = format!("{:02}:{:02}", c.expire_secs / 60, c.expire_secs % 60);
        let _ = writeln!(
            out,
            "{:<3} {:<6} {:<11} {:<18} {:<18} {}",
            c.proto.upper(),
            expire,
            c.state,
            addrport(&c.client),
            addrport(&c.virt),
            addrport(&c.dest)
        );
        // IPVS has no column for this; an adjusted connection gets a
        // trailing field so plain lines stay byte-identical to ipvsadm's.
        if let Some((i, o)) = c.seq_delta {
            out.pop();
            let _ = writeln!(out, " seqadj in:{i:+} out:{o:+}");
        }
    }
    out
}

/// `-S`: the rules as `ipvsadm -Sn` writes them; `-R` reads them back.
/// FullNAT local addresses follow their service as `--add-laddr` lines.
pub fn save(model: &Model) -> String {
    save_with(model, false)
}

/// `-S`, with `origin`: `# origin config` or `# origin rvsadm` before each
/// service's `-A` line (a comment, which `-R` skips).
pub fn save_with(model: &Model, origin: bool) -> String {
    let mut out = String::new();
    for s in model.sorted() {
        if origin {
            let _ = writeln!(out, "# origin {}", s.origin.name());
        }
        let name = rule_name(&s.key);
        // ipvsadm 1.31's order (print_service_entry, FMT_RULE): -s, -p
        // with -M, -o, then -b.
        let _ = write!(out, "-A {name} -s {}", s.scheduler);
        if let Some(t) = s.persistent {
            let _ = write!(out, " -p {t}");
            if !s.netmask.is_full() {
                let _ = write!(out, " -M {}", s.netmask);
            }
        }
        if s.ops {
            out.push_str(" -o");
        }
        if !s.flags.is_empty() {
            let _ = write!(out, " -b {}", s.flags.names().join(","));
        }
        // DPVS's -S leaves it out (so a restore loses it); rvs writes the
        // flag that restores it.
        if s.synproxy {
            out.push_str(" -j enable");
        }
        if s.toa {
            out.push_str(" --toa");
        }
        // DPVS's flag (its -S leaves it out, so -R would lose it)
        if let Some(v) = s.proxy_protocol {
            let _ = write!(out, " --proxy-protocol {}", v.name());
        }
        out.push('\n');
        for r in &s.reals {
            let _ = write!(
                out,
                "-a {name} -r {} {} -w {}",
                addrport(&r.addr),
                r.forward.switch(),
                r.weight
            );
            if r.forward == Forward::Tunnel {
                let _ = write!(out, " {}", r.tunnel.rule());
            }
            if r.u_threshold != 0 {
                let _ = write!(out, " -x {}", r.u_threshold);
            }
            if r.l_threshold != 0 {
                let _ = write!(out, " -y {}", r.l_threshold);
            }
            out.push('\n');
        }
        for l in &s.laddrs {
            let a = match l.addr {
                std::net::IpAddr::V4(v) => v.to_string(),
                std::net::IpAddr::V6(v) => format!("[{v}]"),
            };
            let _ = writeln!(out, "--add-laddr {name} -z {a} -F {}", l.ifname);
        }
    }
    out
}

/// The service as `-S` names it: "-t 198.18.0.1:80", "-f 1", "-f 1 -6".
fn rule_name(k: &ServiceKey) -> String {
    if k.is_fwmark() {
        let fam = if k.addr.is_ipv6() { " -6" } else { "" };
        return format!("-f {}{fam}", k.fwmark);
    }
    format!("{} {}", k.proto.switch(), addrport(&k.addr))
}

/// DPVS `--get-laddr`: each service with its local addresses.
pub fn laddrs(model: &Model, key: Option<&ServiceKey>) -> Result<String, AdmError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<8} {:<20} {:<10} {:<10}",
        "VIP:VPORT", "TOTAL", "LADDR", "CONFLICTS", "CONNS"
    );
    let list: Vec<Service> = match key {
        Some(k) => vec![model.service(k).cloned().ok_or(AdmError {
            message: ModelError::ServiceNotDefined.to_string(),
            status: 255,
        })?],
        None => model.sorted(),
    };
    for s in list {
        let _ = writeln!(out, "{:<20} {:<8} ", addrport(&s.key.addr), s.laddrs.len());
        for l in &s.laddrs {
            let _ = writeln!(
                out,
                "{:<20} {:<8} {:<20} {:<10} {:<10}",
                "",
                "",
                l.addr.to_string(),
                0,
                0
            );
        }
    }
    Ok(out)
}
