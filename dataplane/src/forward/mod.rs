//! Forwarding rewrites: NAT, DR, TUN and FullNAT for IPv4 and IPv6, ICMP
//! error translation, and PMTU replies.
//!
//! Every function works in place on a [`PacketBuf`] holding an Ethernet
//! frame, with the [`PacketMeta`] the parser produced for it (no re-parse),
//! and a [`Translation`]: the connection's endpoints, independent of how
//! the connection table stores them. Nothing here allocates or panics; a
//! refusal is a named [`ForwardError`] and leaves the packet as it was.
//!
//! Semantics follow IPVS (`net/netfilter/ipvs/ip_vs_xmit.c`,
//! `ip_vs_core.c`) and DPVS:
//!
//! - **TTL / hop limit are not decremented.** IPVS forwards from the
//!   `LOCAL_IN`/`FORWARD` hooks after the routing decision without
//!   touching the TTL in NAT, DR, TUN or FullNAT; rvs does the same, so a
//!   traceroute through rvs shows the director as invisible, as with IPVS.
//! - Checksums are updated incrementally (RFC 1624) through
//!   [`crate::wire::nat`] and [`crate::wire::checksum`]; a UDP checksum of
//!   zero stays zero.
//! - The Ethernet header is rewritten in place: source MAC ← ours,
//!   destination MAC ← the next hop's, both given by the caller in
//!   [`L2Out`]. An 802.1Q tag in the input is kept as it is (use
//!   [`crate::wire::ethernet::vlan_pop`]/`vlan_push` to change it).
//! - ICMP echo: the identifier plays the port. Only the client side's
//!   "port" is ever mapped (FullNAT maps the identifier to the local port
//!   and back); NAT leaves it alone.
//! - A non-first fragment has no L4 header: its addresses are rewritten
//!   (the L4 checksum, in the first fragment, was updated for them); which
//!   connection it belongs to is the caller's question, answered by
//!   [`crate::frag::FragTable`].
//! - ICMP errors about a connection ([`PacketMeta::is_icmp_error`]) are
//!   found through [`icmp_inner_flow`] and translated by the same
//!   functions as the connection's packets ([`nat_in`], [`fullnat_out`],
//!   ...), quote included. For DR and TUN the ICMP error is forwarded to
//!   the real server unchanged, with [`dr`] or [`tun`] (IPVS does the
//!   same).
//! - Output MTU: a packet (after encapsulation) larger than
//!   [`L2Out::mtu`] is left alone and answered with [`Verdict::TooBig`]
//!   when the sender can be told (IPv4 with DF, IPv6); the caller then
//!   turns it into an ICMP reply with [`pmtu_reply`]. IPv4 without DF
//!   gives [`ForwardError::NeedsFragmentation`]: rvs does not fragment,
//!   the caller counts and drops (IPVS would fragment; Katran drops too).
//!
//! Limits: no NAT46/64 (the translation's addresses and the packet are the
//! same family), except TUN (ipip, GUE, GRE), whose outer header is the
//! real server's family (IPv4 over IPv6 and the reverse, as IPVS's
//! heterogeneous pools); quoted packets
//! in ICMP errors get their ports translated for TCP and UDP (and, in
//! FullNAT, the ICMP echo identifier); SCTP and other protocols get their
//! addresses only. TCP sequence adjustment ([`seq_adjust_packet`]) serves the
//! SYN proxy ([`synproxy`]) and the features that change a stream's length.

#![deny(clippy::indexing_slicing)]

use crate::buf::PacketBuf;
use crate::parse::{PacketMeta, L3};
use crate::wire::ethernet::MacAddr;
use crate::wire::{icmpv4, icmpv6, ip_proto, ipv6};
use core::net::IpAddr;

mod icmp;
mod nat;
mod pmtu;
pub mod proxyproto;
mod seqadj;
pub mod synproxy;
mod toa;
mod tun;

pub use icmp::{icmp_inner_flow, InnerFlow};
pub use nat::{dr, fullnat_in, fullnat_out, nat_in, nat_out};
pub use pmtu::{pmtu_reply, IPV4_ICMP_MAX_LEN, IPV6_ICMP_MAX_LEN};
pub use proxyproto::PpVersion;
pub use seqadj::{
    adjust_in as seq_adjust_in, adjust_out as seq_adjust_out, adjust_packet as seq_adjust_packet,
    seq_after, ConnSeq, SeqAdj, SeqAdjError, SeqAdjReport,
};
pub use toa::{
    add_toa, clamp_mss, toa_established, toa_len, toa_new_conn, toa_option, ToaError, ToaReport,
    ToaState, TOA_CACHE_SLOTS, TOA_KIND, TOA_LEN_V4, TOA_LEN_V6,
};
pub use tun::{gue_source_port, tun, TunEncap, TunParams, GUE_SPORT_MAX, GUE_SPORT_MIN};

/// A forwarding method (ipvsadm's `-m`, `-g`, `-i`, `-b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Masquerading: destination rewritten to the real server, replies'
    /// source rewritten back to the VIP.
    Nat,
    /// Direct routing: only the destination MAC changes.
    Dr,
    /// Tunnelling to the real server (IP-in-IP, GUE or GRE:
    /// [`Translation::tun`]).
    Tun,
    /// Full NAT: source and destination rewritten both ways.
    FullNat,
}

/// Which way a packet travels relative to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the client side toward the real server (client → VIP, and
    /// ICMP errors arriving from the client side).
    In,
    /// From the real server back toward the client (replies, and ICMP
    /// errors arriving from the real-server side). NAT and FullNAT only.
    Out,
}

/// An IP address and a port (ICMP echo: the identifier; other protocols:
/// ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint from an address and a port.
    pub const fn new(addr: IpAddr, port: u16) -> Self {
        Endpoint { addr, port }
    }
}

/// What one connection's packets are rewritten to, independent of the
/// connection table's record layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Translation {
    /// Forwarding method.
    pub mode: Mode,
    /// The client (source of the first packet).
    pub client: Endpoint,
    /// The virtual service the client addressed.
    pub vip: Endpoint,
    /// The real server chosen.
    pub rip: Endpoint,
    /// FullNAT's local address and port (the source the real server sees).
    pub laddr: Option<Endpoint>,
    /// The real server's tunnel type (TUN mode only; ignored otherwise).
    pub tun: TunEncap,
}

/// The output side of a forwarded packet, chosen by the caller (route and
/// neighbour lookups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L2Out {
    /// Our MAC on the output port.
    pub src_mac: MacAddr,
    /// The next hop's MAC (for DR: the real server's).
    pub dst_mac: MacAddr,
    /// IP MTU of the output link (bytes of IP packet, L2 excluded).
    pub mtu: u16,
}

/// What to do with the buffer after a successful call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Rewritten: transmit it on the output port.
    Transmit,
    /// Untouched: it does not fit the output MTU (after encapsulation) and
    /// the sender may be told. Call [`pmtu_reply`] with this `mtu` (the
    /// largest packet the sender may send) and send the result back out of
    /// the input port.
    TooBig {
        /// Largest IP packet the sender may send on this path.
        mtu: u16,
    },
    /// The buffer now holds a reply (ICMP) for the sender of the original
    /// packet: transmit it back out of the input port.
    Reply,
}

macro_rules! forward_errors {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// Why a rewrite refused a packet (the packet is unchanged). Each
        /// has a stable snake_case [`name`](ForwardError::name) for
        /// counters.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ForwardError {
            $( $(#[$doc])* $variant, )*
        }

        impl ForwardError {
            /// Every error.
            pub const ALL: [ForwardError; ForwardError::COUNT] = [$(ForwardError::$variant,)*];
            /// How many errors there are.
            pub const COUNT: usize = [$($name,)*].len();

            /// The stable snake_case name, for metrics and `rvsadm`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( ForwardError::$variant => $name, )*
                }
            }
        }
    };
}

forward_errors! {
    /// Not an IP packet (ARP), or the meta does not describe this buffer.
    NotIp = "fwd_not_ip",
    /// The packet's headers are not what the rewrite needs (truncated,
    /// bad length fields, AH/ESP in IPv6).
    Malformed = "fwd_malformed",
    /// An address of the translation is not the packet's family (TUN: the
    /// outer source is not the real server's family).
    FamilyMismatch = "fwd_family_mismatch",
    /// FullNAT without a local address.
    NoLocalAddress = "fwd_no_local_address",
    /// The mode does not handle this direction or packet (DR/TUN replies,
    /// a DR/TUN translation given to a NAT function).
    WrongMode = "fwd_wrong_mode",
    /// An ICMP error quoting a non-first fragment, or a quote too short to
    /// hold the ports.
    BadIcmpQuote = "fwd_bad_icmp_quote",
    /// An ICMP error of a type rvs does not translate (redirect, source
    /// quench, unknown ICMPv6 errors): it concerns the director's own
    /// routing, not the connection (IPVS leaves them alone too).
    IcmpUntranslatable = "fwd_icmp_untranslatable",
    /// Not enough headroom to encapsulate or build a reply.
    NoHeadroom = "fwd_no_headroom",
    /// Too big for the output MTU and the sender cannot be told (IPv4
    /// without DF, an ICMP error, an IPv6 packet under the minimum MTU):
    /// rvs does not fragment, drop and count.
    NeedsFragmentation = "fwd_needs_fragmentation",
    /// No ICMP error may be sent about this packet (an ICMP error itself,
    /// a non-first fragment, a multicast/broadcast/unspecified source).
    IcmpNotAllowed = "fwd_icmp_not_allowed",
}

impl core::fmt::Display for ForwardError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl From<crate::wire::Error> for ForwardError {
    fn from(_: crate::wire::Error) -> Self {
        ForwardError::Malformed
    }
}

/// Forwards one packet of a connection by its translation's mode: the
/// dispatcher over [`nat_in`], [`nat_out`], [`fullnat_in`],
/// [`fullnat_out`], [`dr`] and [`tun`] (ICMP errors included).
/// `tunnel` is used only in TUN mode.
pub fn forward<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    dir: Direction,
    out: &L2Out,
    tunnel: &TunParams,
) -> Result<Verdict, ForwardError> {
    match (t.mode, dir) {
        (Mode::Nat, Direction::In) => nat_in(buf, meta, t, out),
        (Mode::Nat, Direction::Out) => nat_out(buf, meta, t, out),
        (Mode::FullNat, Direction::In) => fullnat_in(buf, meta, t, out),
        (Mode::FullNat, Direction::Out) => fullnat_out(buf, meta, t, out),
        (Mode::Dr, Direction::In) => dr(buf, meta, out),
        (Mode::Tun, Direction::In) => tun(buf, meta, t, tunnel, out),
        (Mode::Dr | Mode::Tun, Direction::Out) => Err(ForwardError::WrongMode),
    }
}

// ---- helpers shared by the submodules ----

/// Whether `a` is the family of the packet.
fn same_family(meta: &PacketMeta, a: IpAddr) -> bool {
    matches!(
        (meta.l3, a),
        (L3::Ipv4, IpAddr::V4(_)) | (L3::Ipv6, IpAddr::V6(_))
    )
}

/// Length of the IP packet (header, extension headers and payload; no
/// Ethernet padding).
fn ip_len(meta: &PacketMeta) -> Result<usize, ForwardError> {
    match meta.l3 {
        L3::Ipv4 => Ok(usize::from(meta.l4_offset.saturating_sub(meta.l3_offset))
            + usize::from(meta.ip_payload_len)),
        L3::Ipv6 => Ok(ipv6::HEADER_LEN + usize::from(meta.ip_payload_len)),
        L3::Arp => Err(ForwardError::NotIp),
    }
}

/// The IP packet of the frame (from its first header byte to the end of
/// the buffer), after checking the meta fits the buffer.
fn ip_mut<'a, B: PacketBuf + ?Sized>(
    buf: &'a mut B,
    meta: &PacketMeta,
) -> Result<&'a mut [u8], ForwardError> {
    let end = usize::from(meta.l3_offset) + ip_len(meta)?;
    if end > buf.len() {
        return Err(ForwardError::NotIp);
    }
    buf.data_mut()
        .get_mut(usize::from(meta.l3_offset)..)
        .ok_or(ForwardError::NotIp)
}

/// Writes our MAC and the next hop's into the frame's Ethernet header (a
/// VLAN tag stays where it is).
fn set_l2<B: PacketBuf + ?Sized>(buf: &mut B, out: &L2Out) {
    if let Some((dst, rest)) = buf.data_mut().split_first_chunk_mut::<6>() {
        if let Some(src) = rest.first_chunk_mut::<6>() {
            *dst = out.dst_mac.0;
            *src = out.src_mac.0;
        }
    }
}

/// Whether the IPv4 packet in `buf` has DF set (false for IPv6).
fn dont_frag<B: PacketBuf + ?Sized>(buf: &B, meta: &PacketMeta) -> bool {
    meta.l3 == L3::Ipv4
        && buf
            .data()
            .get(usize::from(meta.l3_offset) + 6)
            .is_some_and(|b| b & 0x40 != 0)
}

/// The MTU check a router does before sending: `Ok(None)` if the packet
/// plus `overhead` fits `mtu`, `Ok(Some(TooBig))` if the sender can be
/// told, `Err(NeedsFragmentation)` otherwise.
fn check_mtu<B: PacketBuf + ?Sized>(
    buf: &B,
    meta: &PacketMeta,
    overhead: usize,
    mtu: u16,
) -> Result<Option<Verdict>, ForwardError> {
    let len = ip_len(meta)?;
    if len + overhead <= usize::from(mtu) {
        return Ok(None);
    }
    let allowed = usize::from(mtu).saturating_sub(overhead);
    if meta.is_icmp_error() {
        return Err(ForwardError::NeedsFragmentation);
    }
    match meta.l3 {
        L3::Ipv4 if dont_frag(buf, meta) => {
            let m = allowed.max(pmtu::IPV4_MIN_MTU);
            Ok(Some(Verdict::TooBig {
                mtu: u16::try_from(m).unwrap_or(u16::MAX),
            }))
        }
        L3::Ipv6 if len > pmtu::IPV6_MIN_MTU => {
            let m = allowed.max(pmtu::IPV6_MIN_MTU);
            Ok(Some(Verdict::TooBig {
                mtu: u16::try_from(m).unwrap_or(u16::MAX),
            }))
        }
        _ => Err(ForwardError::NeedsFragmentation),
    }
}

/// How the L4 "ports" of a packet can be rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ports {
    /// TCP or UDP with its header present.
    TcpUdp,
    /// ICMP(v6) echo: the identifier.
    Echo,
    /// No ports: another protocol, or a non-first fragment.
    None,
}

fn ports(meta: &PacketMeta) -> Ports {
    if !meta.has_l4 {
        return Ports::None;
    }
    match meta.l4_proto {
        ip_proto::TCP | ip_proto::UDP => Ports::TcpUdp,
        ip_proto::ICMP if meta.l3 == L3::Ipv4 && icmpv4::is_echo_type(meta.icmp_type) => {
            Ports::Echo
        }
        ip_proto::ICMPV6 if meta.l3 == L3::Ipv6 && icmpv6::is_echo_type(meta.icmp_type) => {
            Ports::Echo
        }
        _ => Ports::None,
    }
}

/// The port to write on the real server's side (destination of `In`,
/// source of `Out`): TCP/UDP only.
fn server_port(meta: &PacketMeta, port: u16) -> Option<u16> {
    (ports(meta) == Ports::TcpUdp).then_some(port)
}

/// The port to write on the client's side: TCP/UDP ports and the ICMP echo
/// identifier.
fn client_port(meta: &PacketMeta, port: u16) -> Option<u16> {
    (ports(meta) != Ports::None).then_some(port)
}

/// Rewrites source or destination of the IP packet `ip` with the
/// [`crate::wire::nat`] functions.
fn rewrite(
    ip: &mut [u8],
    side: crate::wire::nat::Side,
    addr: IpAddr,
    port: Option<u16>,
) -> Result<(), ForwardError> {
    match addr {
        IpAddr::V4(a) => crate::wire::nat::rewrite_ipv4(ip, side, a, port)?,
        IpAddr::V6(a) => crate::wire::nat::rewrite_ipv6(ip, side, a, port)?,
    }
    Ok(())
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::parse::parse;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use etherparse::PacketBuilder;

    fn v4_frame(payload: usize, df: bool) -> Vec<u8> {
        let mut h = etherparse::Ipv4Header::new(
            0,
            64,
            etherparse::IpNumber::UDP,
            [10, 0, 0, 1],
            [192, 0, 2, 10],
        )
        .unwrap();
        h.dont_fragment = df;
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ip(etherparse::IpHeaders::Ipv4(h, Default::default()))
            .udp(40000, 53)
            .write(&mut out, &vec![0u8; payload])
            .unwrap();
        out
    }

    fn v6_frame(payload: usize) -> Vec<u8> {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(
                Ipv6Addr::LOCALHOST.octets(),
                Ipv6Addr::LOCALHOST.octets(),
                64,
            )
            .udp(40000, 53)
            .write(&mut out, &vec![0u8; payload])
            .unwrap();
        out
    }

    #[test]
    fn error_names_are_unique_snake_case() {
        for (i, a) in ForwardError::ALL.iter().enumerate() {
            assert!(a.name().starts_with("fwd_"));
            assert!(a.name().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            for b in &ForwardError::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
        assert_eq!(ForwardError::NoHeadroom.to_string(), "fwd_no_headroom");
    }

    #[test]
    fn mtu_boundaries() {
        // 28 bytes of headers + 972 = 1000 exactly.
        let f = v4_frame(972, true);
        let b = VecBuf::new(&f);
        let m = parse(&f).unwrap();
        assert_eq!(check_mtu(&b, &m, 0, 1000), Ok(None));
        assert_eq!(
            check_mtu(&b, &m, 0, 999),
            Ok(Some(Verdict::TooBig { mtu: 999 }))
        );
        assert_eq!(
            check_mtu(&b, &m, 20, 1000),
            Ok(Some(Verdict::TooBig { mtu: 980 }))
        );
        // Absurd MTUs report the IPv4 minimum.
        assert_eq!(
            check_mtu(&b, &m, 20, 30),
            Ok(Some(Verdict::TooBig { mtu: 68 }))
        );
        let f = v4_frame(972, false);
        let m = parse(&f).unwrap();
        let b = VecBuf::new(&f);
        assert_eq!(
            check_mtu(&b, &m, 0, 999),
            Err(ForwardError::NeedsFragmentation)
        );
        // IPv6: never below 1280; a packet of 1280 that does not fit after
        // encapsulation cannot be helped by the sender.
        let f = v6_frame(1280 - 48);
        let m = parse(&f).unwrap();
        let b = VecBuf::new(&f);
        assert_eq!(
            check_mtu(&b, &m, 40, 1300),
            Err(ForwardError::NeedsFragmentation)
        );
        let f = v6_frame(1400);
        let m = parse(&f).unwrap();
        let b = VecBuf::new(&f);
        assert_eq!(
            check_mtu(&b, &m, 40, 1300),
            Ok(Some(Verdict::TooBig { mtu: 1280 }))
        );
    }

    #[test]
    fn dispatcher_refuses_replies_for_dr_and_tun_and_arp() {
        let f = v4_frame(10, true);
        let m = parse(&f).unwrap();
        let a: IpAddr = Ipv4Addr::LOCALHOST.into();
        let e = Endpoint::new(a, 1);
        let out = L2Out {
            src_mac: MacAddr([1; 6]),
            dst_mac: MacAddr([2; 6]),
            mtu: 1500,
        };
        let tp = TunParams {
            src: a,
            ttl: None,
            ident: 0,
        };
        for mode in [Mode::Dr, Mode::Tun] {
            let t = Translation {
                mode,
                client: e,
                vip: e,
                rip: e,
                laddr: None,
                tun: TunEncap::Ipip,
            };
            let mut b = VecBuf::new(&f);
            assert_eq!(
                forward(&mut b, &m, &t, Direction::Out, &out, &tp),
                Err(ForwardError::WrongMode)
            );
        }
        // An ARP meta.
        let mut arp = vec![0xffu8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        arp.resize(42, 0);
        let m = parse(&arp).unwrap();
        let mut b = VecBuf::new(&arp);
        assert_eq!(dr(&mut b, &m, &out), Err(ForwardError::NotIp));
    }
}
