//! The packet parser: one pass over an Ethernet frame to a small `Copy`
//! summary ([`PacketMeta`]), or the named reason it is refused
//! ([`DropReason`]).
//!
//! [`parse`] accepts any byte string without panicking and never
//! allocates. It checks only what the rest of the packet path relies on:
//! every header it reports is wholly in the buffer and its length fields
//! are consistent. Fragments are not refused: the meta says what the
//! fragment header says, and for a non-first fragment
//! [`PacketMeta::has_l4`] is false (what to do with it is the caller's
//! concern).

use crate::wire::Error;
use crate::wire::{arp, ethernet, ethertype, icmpv4, icmpv6, ip_proto, ipv4, ipv6, tcp, udp};
use core::net::{IpAddr, Ipv4Addr};

/// The network layer of a parsed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L3 {
    /// ARP for Ethernet/IPv4; `src`/`dst` are the sender/target addresses.
    Arp,
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// What a fragment header says (IPv4 header fields, or the IPv6 fragment
/// extension header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragInfo {
    /// Identification (16 bits for IPv4, 32 for IPv6).
    pub ident: u32,
    /// Fragment offset in 8-byte units.
    pub offset: u16,
    /// More-fragments flag.
    pub more: bool,
    /// IPv4 don't-fragment flag (always false for IPv6).
    pub dont_frag: bool,
}

impl FragInfo {
    /// Whether this fragment starts the datagram (and so holds the L4
    /// header).
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// A parsed packet: offsets into the frame and the fields the packet path
/// decides on. `Copy`, no references into the buffer, 68 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketMeta {
    /// Ethernet header length: 14, or 18 with a VLAN tag.
    pub l2_len: u8,
    /// 802.1Q VLAN id, if the frame is tagged.
    pub vlan: Option<u16>,
    /// Ethertype of the payload (after the VLAN tag).
    pub ethertype: u16,
    /// Network layer.
    pub l3: L3,
    /// Offset of the network header in the frame (equals `l2_len`).
    pub l3_offset: u16,
    /// Source address (ARP: sender protocol address).
    pub src: IpAddr,
    /// Destination address (ARP: target protocol address).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit (0 for ARP).
    pub ttl: u8,
    /// L4 protocol: IPv4 protocol, or the IPv6 next header after the
    /// extension headers (0 for ARP).
    pub l4_proto: u8,
    /// Offset of the L4 header in the frame (for a non-first fragment:
    /// of the fragment's data).
    pub l4_offset: u16,
    /// Bytes from `l4_offset` to the end of the IP payload.
    pub l4_len: u16,
    /// IP payload length: IPv4 total length minus the header, or the IPv6
    /// payload length (extension headers included). 0 for ARP.
    pub ip_payload_len: u16,
    /// Whether an L4 header was found and checked (TCP, UDP, ICMP, ICMPv6
    /// in an unfragmented packet or first fragment). When false, the port,
    /// ICMP and flag fields are 0.
    pub has_l4: bool,
    /// TCP/UDP source port; ICMP/ICMPv6 echo identifier.
    pub src_port: u16,
    /// TCP/UDP destination port; ICMP/ICMPv6 echo identifier.
    pub dst_port: u16,
    /// ICMP/ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP/ICMPv6 code.
    pub icmp_code: u8,
    /// TCP flags ([`tcp::flags`]).
    pub tcp_flags: u8,
    /// Fragment information, if the packet is a fragment (IPv4: MF set or
    /// a non-zero offset; IPv6: a fragment header is present).
    pub frag: Option<FragInfo>,
}

impl PacketMeta {
    /// 4, 6, or 0 for ARP.
    pub fn ip_version(&self) -> u8 {
        match self.l3 {
            L3::Arp => 0,
            L3::Ipv4 => 4,
            L3::Ipv6 => 6,
        }
    }

    /// Whether the packet is a fragment.
    pub fn is_fragment(&self) -> bool {
        self.frag.is_some()
    }

    /// Whether the packet is a fragment other than the first (no L4
    /// header, no ports).
    pub fn is_non_first_fragment(&self) -> bool {
        self.frag.is_some_and(|f| !f.is_first())
    }

    /// Whether this is an ICMP or ICMPv6 error message (whose quoted packet
    /// starts at [`icmp_inner_offset`](Self::icmp_inner_offset) and was
    /// checked to hold an IP header and 8 more bytes).
    pub fn is_icmp_error(&self) -> bool {
        self.has_l4
            && match (self.l3, self.l4_proto) {
                (L3::Ipv4, ip_proto::ICMP) => icmpv4::is_error_type(self.icmp_type),
                (L3::Ipv6, ip_proto::ICMPV6) => icmpv6::is_error_type(self.icmp_type),
                _ => false,
            }
    }

    /// Offset in the frame of the packet quoted by an ICMP(v6) error.
    pub fn icmp_inner_offset(&self) -> u16 {
        self.l4_offset.saturating_add(8)
    }
}

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// Every way [`parse`] refuses a packet. Each has a stable
        /// snake_case [`name`](DropReason::name) for metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum DropReason {
            $( $(#[$doc])* $variant, )*
        }

        impl DropReason {
            /// Every reason, in [`index`](DropReason::index) order.
            pub const ALL: [DropReason; DropReason::COUNT] = [$(DropReason::$variant,)*];
            /// How many reasons there are.
            pub const COUNT: usize = [$($name,)*].len();

            /// The stable snake_case name, for metrics and `rvsadm`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( DropReason::$variant => $name, )*
                }
            }
        }
    };
}

drop_reasons! {
    /// Shorter than an Ethernet header (or its VLAN tag).
    TruncatedEthernet = "truncated_ethernet",
    /// Neither IPv4, IPv6 nor ARP.
    UnsupportedEthertype = "unsupported_ethertype",
    /// A second VLAN tag (QinQ), which rvs does not handle.
    StackedVlan = "stacked_vlan",
    /// ARP shorter than 28 bytes.
    TruncatedArp = "truncated_arp",
    /// ARP for something other than Ethernet/IPv4.
    UnsupportedArp = "unsupported_arp",
    /// Shorter than an IPv4 header (options included).
    TruncatedIpv4 = "truncated_ipv4",
    /// The IP version field does not match the ethertype.
    BadIpVersion = "bad_ip_version",
    /// IPv4 IHL below 5.
    BadIpv4Ihl = "bad_ipv4_ihl",
    /// IPv4 total length shorter than the header or longer than the frame.
    BadIpv4TotalLen = "bad_ipv4_total_len",
    /// IPv4 header checksum wrong (only with
    /// [`ParseOptions::verify_ipv4_checksum`]).
    BadIpv4Checksum = "bad_ipv4_checksum",
    /// Shorter than an IPv6 header.
    TruncatedIpv6 = "truncated_ipv6",
    /// IPv6 payload length longer than the frame.
    BadIpv6PayloadLen = "bad_ipv6_payload_len",
    /// An IPv6 extension header runs past the payload.
    TruncatedIpv6ExtHeader = "truncated_ipv6_ext_header",
    /// More IPv6 extension headers than `wire::ipv6::MAX_EXT_HEADERS`.
    Ipv6ExtChainTooLong = "ipv6_ext_chain_too_long",
    /// An IPv6 extension header rvs does not walk (AH, ESP).
    Ipv6ExtUnsupported = "ipv6_ext_unsupported",
    /// An IPv6 hop-by-hop header that is not first.
    Ipv6ExtBadOrder = "ipv6_ext_bad_order",
    /// Shorter than a TCP header (options included).
    TruncatedTcp = "truncated_tcp",
    /// TCP data offset below 5.
    BadTcpDataOffset = "bad_tcp_data_offset",
    /// Shorter than a UDP header.
    TruncatedUdp = "truncated_udp",
    /// UDP length below 8 or longer than the IP payload.
    BadUdpLength = "bad_udp_length",
    /// Shorter than an ICMP header.
    TruncatedIcmp = "truncated_icmp",
    /// An ICMP error quoting less than an IPv4 header and 8 bytes.
    BadIcmpEmbedded = "bad_icmp_embedded",
    /// Shorter than an ICMPv6 header (or an NS/NA body).
    TruncatedIcmpv6 = "truncated_icmpv6",
    /// An ICMPv6 error quoting less than an IPv6 header and 8 bytes.
    BadIcmpv6Embedded = "bad_icmpv6_embedded",
    /// An IPv4 option with a length below 2 or past the header (Linux
    /// `ip_options_compile` refuses these too).
    BadIpv4Options = "bad_ipv4_options",
    /// An IPv4 loose or strict source route option (LSRR/SSRR), refused
    /// unless the port accepts source routes (Linux
    /// `accept_source_route=0`).
    Ipv4SourceRoute = "ipv4_source_route",
    /// An IPv6 type-0 routing header, whatever its segments left
    /// (deprecated by RFC 5095; refused always).
    Ipv6RoutingType0 = "ipv6_routing_type0",
    /// Another IPv6 routing header with segments left: the packet is not
    /// at its final destination here.
    Ipv6RoutingSegmentsLeft = "ipv6_routing_segments_left",
    /// An 802.1Q-tagged frame on a port without that VLAN (the packet
    /// path drops it, instead of forwarding the tag on).
    VlanNotOnPort = "vlan_not_on_port",
    /// A source address that can never be a client's: one of ours (a VIP:
    /// a land attack; a local or port address), or multicast, broadcast,
    /// loopback or unspecified (Linux's martian source).
    MartianSource = "martian_source",
    /// The source would not be routed back through the port the packet
    /// came in on (`rp_filter`; strict by default): a real server's
    /// address arriving from the client side, a spoofed source.
    RpFilter = "rp_filter",
    /// A packet that would create a connection (TCP SYN, the first UDP
    /// datagram of a flow) with a wrong TCP checksum.
    BadTcpChecksum = "bad_tcp_checksum",
    /// A packet that would create a connection with a wrong UDP checksum
    /// (or a zero one over IPv6).
    BadUdpChecksum = "bad_udp_checksum",
    /// ARP from a sender whose address is not on this port's subnet or
    /// routes: never learned here.
    ArpWrongPort = "arp_wrong_port",
    /// An ARP reply or gratuitous ARP about a neighbour nobody is
    /// resolving: not learned (`arp_accept = false`).
    ArpUnsolicited = "arp_unsolicited",
    /// ARP that would change a known neighbour's MAC without answering a
    /// request of ours (an unsolicited reply, a request from another MAC,
    /// a gratuitous ARP with `arp_garp = "ignore"`): refused.
    ArpMacChangeRefused = "arp_mac_change_refused",
    /// NS/NA about an address not on this port's subnet or routes (nor
    /// link-local): never learned here.
    NdWrongPort = "nd_wrong_port",
    /// An unsolicited neighbour advertisement for an address nobody is
    /// resolving: not learned (Linux `accept_untracked_na = 0`).
    NdUnsolicited = "nd_unsolicited",
    /// NS/NA that would change a known neighbour's MAC without answering
    /// a solicitation of ours (an NS from another MAC, an unsolicited NA
    /// with the override flag under `nd_override = "solicited"`): refused.
    NdMacChangeRefused = "nd_mac_change_refused",
}

impl DropReason {
    /// Position in [`DropReason::ALL`] and in [`DropCounters`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for DropReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// One plain counter per [`DropReason`], owned by one worker (control sums
/// them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropCounters {
    counts: [u64; DropReason::COUNT],
}

impl Default for DropCounters {
    fn default() -> Self {
        Self::new()
    }
}

impl DropCounters {
    /// All zero.
    pub const fn new() -> Self {
        DropCounters {
            counts: [0; DropReason::COUNT],
        }
    }

    /// Counts one drop.
    #[inline]
    pub fn inc(&mut self, reason: DropReason) {
        if let Some(c) = self.counts.get_mut(reason.index()) {
            *c = c.wrapping_add(1);
        }
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts.get(reason.index()).copied().unwrap_or(0)
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.wrapping_add(c))
    }

    /// Adds another worker's counters into these.
    pub fn add(&mut self, other: &DropCounters) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a = a.wrapping_add(*b);
        }
    }

    /// Every reason with its count, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .copied()
            .zip(self.counts.iter().copied())
    }
}

/// What [`parse_with`] checks beyond lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParseOptions {
    /// Verify the IPv4 header checksum (off by default: NICs verify it and
    /// say so in the mbuf's offload flags).
    pub verify_ipv4_checksum: bool,
    /// Accept IPv4 source route options (LSRR/SSRR); off by default, as
    /// Linux's `accept_source_route=0`.
    pub accept_source_route: bool,
}

/// Parses an Ethernet frame with [`ParseOptions::default`].
pub fn parse(frame: &[u8]) -> Result<PacketMeta, DropReason> {
    parse_with(frame, ParseOptions::default())
}

/// Parses an Ethernet frame.
pub fn parse_with(frame: &[u8], opts: ParseOptions) -> Result<PacketMeta, DropReason> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| DropReason::TruncatedEthernet)?;
    let l2_len = eth.header_len();
    let et = eth.ethertype();
    let mut meta = PacketMeta {
        l2_len: l2_len as u8,
        vlan: eth.vlan_id(),
        ethertype: et,
        l3: L3::Arp,
        l3_offset: l2_len as u16,
        src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        ttl: 0,
        l4_proto: 0,
        l4_offset: 0,
        l4_len: 0,
        ip_payload_len: 0,
        has_l4: false,
        src_port: 0,
        dst_port: 0,
        icmp_type: 0,
        icmp_code: 0,
        tcp_flags: 0,
        frag: None,
    };
    let l3 = eth.payload();
    match et {
        ethertype::IPV4 => parse_ipv4(l3, &mut meta, opts)?,
        ethertype::IPV6 => parse_ipv6(l3, &mut meta)?,
        ethertype::ARP => {
            let a = arp::Packet::new_checked(l3).map_err(|_| DropReason::TruncatedArp)?;
            if !a.is_ethernet_ipv4() {
                return Err(DropReason::UnsupportedArp);
            }
            meta.src = IpAddr::V4(a.sender_ip());
            meta.dst = IpAddr::V4(a.target_ip());
        }
        ethertype::VLAN | ethertype::QINQ => return Err(DropReason::StackedVlan),
        _ => return Err(DropReason::UnsupportedEthertype),
    }
    Ok(meta)
}

fn parse_ipv4(l3: &[u8], meta: &mut PacketMeta, opts: ParseOptions) -> Result<(), DropReason> {
    let ip = ipv4::Packet::new_checked(l3).map_err(|e| match e {
        Error::BadVersion => DropReason::BadIpVersion,
        Error::BadHeaderLen => DropReason::BadIpv4Ihl,
        Error::BadLength => DropReason::BadIpv4TotalLen,
        _ => DropReason::TruncatedIpv4,
    })?;
    if opts.verify_ipv4_checksum && !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    let hl = ip.header_len();
    if hl > ipv4::HEADER_LEN {
        check_ipv4_options(ip.as_bytes().get(ipv4::HEADER_LEN..hl).unwrap_or(&[]), opts)?;
    }
    meta.l3 = L3::Ipv4;
    meta.src = IpAddr::V4(ip.src_addr());
    meta.dst = IpAddr::V4(ip.dst_addr());
    meta.ttl = ip.ttl();
    meta.l4_proto = ip.protocol();
    meta.ip_payload_len = ip.total_len().saturating_sub(hl as u16);
    meta.l4_offset = meta.l3_offset.saturating_add(hl as u16);
    meta.l4_len = meta.ip_payload_len;
    if ip.is_fragment() {
        meta.frag = Some(FragInfo {
            ident: u32::from(ip.ident()),
            offset: ip.frag_offset(),
            more: ip.more_frags(),
            dont_frag: ip.dont_frag(),
        });
    }
    if meta.is_non_first_fragment() {
        return Ok(());
    }
    parse_l4(ip.payload(), meta, false)
}

/// Option types of IPv4 (RFC 791): end of list, no-op, loose and strict
/// source route.
const OPT_EOL: u8 = 0;
const OPT_NOP: u8 = 1;
const OPT_LSRR: u8 = 131;
const OPT_SSRR: u8 = 137;

/// Walks the IPv4 options (`opts`: the header past its 20 fixed bytes):
/// every option but EOL and NOP carries a length of at least 2 that stays
/// inside the header; source routes are refused unless accepted.
fn check_ipv4_options(opts: &[u8], po: ParseOptions) -> Result<(), DropReason> {
    let mut i = 0;
    // Each round consumes at least one byte: bounded by the 40-byte header.
    while let Some(&t) = opts.get(i) {
        match t {
            OPT_EOL => break,
            OPT_NOP => i += 1,
            _ => {
                let len = usize::from(*opts.get(i + 1).ok_or(DropReason::BadIpv4Options)?);
                if len < 2 || i + len > opts.len() {
                    return Err(DropReason::BadIpv4Options);
                }
                if matches!(t, OPT_LSRR | OPT_SSRR) && !po.accept_source_route {
                    return Err(DropReason::Ipv4SourceRoute);
                }
                i += len;
            }
        }
    }
    Ok(())
}

fn parse_ipv6(l3: &[u8], meta: &mut PacketMeta) -> Result<(), DropReason> {
    let ip = ipv6::Packet::new_checked(l3).map_err(|e| match e {
        Error::BadVersion => DropReason::BadIpVersion,
        Error::BadLength => DropReason::BadIpv6PayloadLen,
        _ => DropReason::TruncatedIpv6,
    })?;
    meta.l3 = L3::Ipv6;
    meta.src = IpAddr::V6(ip.src_addr());
    meta.dst = IpAddr::V6(ip.dst_addr());
    meta.ttl = ip.hop_limit();
    meta.ip_payload_len = ip.payload_len();
    let upper = ip.walk().map_err(|e| match e {
        Error::TooManyHeaders => DropReason::Ipv6ExtChainTooLong,
        Error::Unsupported => DropReason::Ipv6ExtUnsupported,
        Error::BadOrder => DropReason::Ipv6ExtBadOrder,
        _ => DropReason::TruncatedIpv6ExtHeader,
    })?;
    match upper.routing {
        // RFC 5095: RH0 is deprecated; Linux refuses it (it has no
        // handler for type 0), and so does rvs, whatever segments left.
        Some(r) if r.kind == 0 => return Err(DropReason::Ipv6RoutingType0),
        // Not at its final destination: never forward it as if it were.
        Some(r) if r.segments_left != 0 => return Err(DropReason::Ipv6RoutingSegmentsLeft),
        _ => {}
    }
    meta.l4_proto = upper.protocol;
    meta.l4_offset = meta.l3_offset.saturating_add(upper.offset as u16);
    let end = ipv6::HEADER_LEN + usize::from(ip.payload_len());
    meta.l4_len = end.saturating_sub(upper.offset) as u16;
    meta.frag = upper.frag.map(|f| FragInfo {
        ident: f.ident,
        offset: f.offset,
        more: f.more,
        dont_frag: false,
    });
    if meta.is_non_first_fragment() {
        return Ok(());
    }
    let l4 = ip.as_bytes().get(upper.offset..end).unwrap_or(&[]);
    parse_l4(l4, meta, true)
}

/// Parses the L4 header in `l4` (exactly the bytes up to the end of the IP
/// payload) for TCP, UDP, ICMP and ICMPv6; other protocols pass with
/// `has_l4` false.
fn parse_l4(l4: &[u8], meta: &mut PacketMeta, v6: bool) -> Result<(), DropReason> {
    match meta.l4_proto {
        ip_proto::TCP => {
            let t = tcp::Packet::new_checked(l4).map_err(|e| match e {
                Error::BadHeaderLen => DropReason::BadTcpDataOffset,
                _ => DropReason::TruncatedTcp,
            })?;
            meta.src_port = t.src_port();
            meta.dst_port = t.dst_port();
            meta.tcp_flags = t.flags();
        }
        ip_proto::UDP => {
            let u = udp::Packet::new_checked_header(l4).map_err(|_| DropReason::TruncatedUdp)?;
            // A first fragment holds only part of the datagram.
            if !meta.is_fragment() {
                u.check_len().map_err(|_| DropReason::BadUdpLength)?;
            }
            meta.src_port = u.src_port();
            meta.dst_port = u.dst_port();
        }
        ip_proto::ICMP if !v6 => {
            let m = icmpv4::Packet::new_checked(l4).map_err(|_| DropReason::TruncatedIcmp)?;
            meta.icmp_type = m.msg_type();
            meta.icmp_code = m.msg_code();
            if m.is_error() {
                m.embedded().map_err(|_| DropReason::BadIcmpEmbedded)?;
            } else if icmpv4::is_echo_type(m.msg_type()) {
                meta.src_port = m.echo_ident();
                meta.dst_port = m.echo_ident();
            }
        }
        ip_proto::ICMPV6 if v6 => {
            let m = icmpv6::Packet::new_checked(l4).map_err(|_| DropReason::TruncatedIcmpv6)?;
            meta.icmp_type = m.msg_type();
            meta.icmp_code = m.msg_code();
            if m.is_error() {
                m.embedded().map_err(|_| DropReason::BadIcmpv6Embedded)?;
            } else if icmpv6::is_echo_type(m.msg_type()) {
                meta.src_port = m.echo_ident();
                meta.dst_port = m.echo_ident();
            }
        }
        _ => return Ok(()),
    }
    meta.has_l4 = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::flags;
    use core::net::Ipv6Addr;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const C4: [u8; 4] = [10, 0, 0, 1];
    const V4: [u8; 4] = [192, 0, 2, 10];
    const C6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
    const V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 10);

    /// Ethernet + IPv4 + {TCP, UDP, ICMP echo}, optionally VLAN-tagged.
    fn v4(kind: u8, vlan: Option<u16>, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let e = PacketBuilder::ethernet2(MAC_A, MAC_B);
        let ip = match vlan {
            Some(v) => e.single_vlan(v.try_into().unwrap()).ipv4(C4, V4, 64),
            None => e.ipv4(C4, V4, 64),
        };
        match kind {
            0 => ip.tcp(40000, 80, 1, 1000).syn().write(&mut out, payload),
            1 => ip.udp(40000, 53).write(&mut out, payload),
            _ => ip.icmpv4_echo_request(0x1234, 1).write(&mut out, payload),
        }
        .unwrap();
        out
    }

    fn v6(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let ip = PacketBuilder::ethernet2(MAC_A, MAC_B).ipv6(C6.octets(), V6.octets(), 64);
        match kind {
            0 => ip
                .tcp(40000, 80, 1, 1000)
                .syn()
                .ack(1)
                .write(&mut out, payload),
            1 => ip.udp(40000, 53).write(&mut out, payload),
            _ => ip.icmpv6_echo_request(0x1234, 1).write(&mut out, payload),
        }
        .unwrap();
        out
    }

    /// Sets the IPv4 total length (frame offset 14) and fixes the checksum.
    fn set_total_len(frame: &mut [u8], len: u16) {
        let mut ip = ipv4::Packet::new_unchecked(&mut frame[14..]);
        ip.set_total_len(len);
        ip.fill_checksum();
    }

    #[test]
    fn ipv4_tcp() {
        let f = v4(0, None, b"hi");
        let m = parse(&f).unwrap();
        assert_eq!(m.l2_len, 14);
        assert_eq!(m.vlan, None);
        assert_eq!(m.ethertype, ethertype::IPV4);
        assert_eq!(m.l3, L3::Ipv4);
        assert_eq!(m.ip_version(), 4);
        assert_eq!(m.l3_offset, 14);
        assert_eq!(m.src, IpAddr::from(C4));
        assert_eq!(m.dst, IpAddr::from(V4));
        assert_eq!(m.ttl, 64);
        assert_eq!(m.l4_proto, ip_proto::TCP);
        assert_eq!(m.l4_offset, 34);
        assert_eq!(m.l4_len, 22);
        assert_eq!(m.ip_payload_len, 22);
        assert!(m.has_l4);
        assert_eq!((m.src_port, m.dst_port), (40000, 80));
        assert_eq!(m.tcp_flags, flags::SYN);
        assert_eq!(m.frag, None);
        assert!(!m.is_icmp_error());
    }

    #[test]
    fn ipv4_udp_icmp_with_vlan_and_padding() {
        let mut f = v4(1, Some(100), b"");
        f.resize(64, 0); // Ethernet minimum-size padding
        let m = parse(&f).unwrap();
        assert_eq!(
            (m.l2_len, m.vlan, m.l3_offset, m.l4_offset),
            (18, Some(100), 18, 38)
        );
        assert_eq!(
            (m.l4_proto, m.src_port, m.dst_port, m.l4_len),
            (17, 40000, 53, 8)
        );

        let m = parse(&v4(2, None, b"ping")).unwrap();
        assert_eq!(m.l4_proto, ip_proto::ICMP);
        assert_eq!((m.icmp_type, m.icmp_code), (icmpv4::types::ECHO_REQUEST, 0));
        assert_eq!((m.src_port, m.dst_port), (0x1234, 0x1234));
    }

    #[test]
    fn ipv6_all_kinds() {
        for kind in 0..3 {
            let m = parse(&v6(kind, b"abc")).unwrap();
            assert_eq!(m.l3, L3::Ipv6);
            assert_eq!(m.ip_version(), 6);
            assert_eq!((m.src, m.dst), (IpAddr::V6(C6), IpAddr::V6(V6)));
            assert_eq!(m.l4_offset, 54);
            assert!(m.has_l4);
            match kind {
                0 => assert_eq!((m.src_port, m.tcp_flags), (40000, flags::SYN | flags::ACK)),
                1 => assert_eq!((m.dst_port, m.l4_len), (53, 11)),
                _ => assert_eq!((m.icmp_type, m.src_port), (128, 0x1234)),
            }
        }
    }

    #[test]
    fn arp() {
        let mut f = vec![0u8; 42];
        crate::wire::ethernet::Repr {
            dst: crate::wire::ethernet::MacAddr::BROADCAST,
            src: crate::wire::ethernet::MacAddr(MAC_A),
            tci: None,
            ethertype: ethertype::ARP,
        }
        .emit(&mut f)
        .unwrap();
        arp::Repr::gratuitous(crate::wire::ethernet::MacAddr(MAC_A), V4.into())
            .emit(&mut f[14..])
            .unwrap();
        let m = parse(&f).unwrap();
        assert_eq!(
            (m.l3, m.ip_version(), m.src, m.dst),
            (L3::Arp, 0, IpAddr::from(V4), IpAddr::from(V4))
        );
        for n in 14..42 {
            assert_eq!(parse(&f[..n]), Err(DropReason::TruncatedArp));
        }
        f[14 + 5] = 16;
        assert_eq!(parse(&f), Err(DropReason::UnsupportedArp));
    }

    #[test]
    fn ethernet_refusals() {
        let f = v4(0, Some(5), b"");
        for n in 0..18 {
            assert_eq!(
                parse(&f[..n]),
                Err(DropReason::TruncatedEthernet),
                "len {n}"
            );
        }
        let mut g = f.clone();
        g[16..18].copy_from_slice(&0x8100u16.to_be_bytes());
        assert_eq!(parse(&g), Err(DropReason::StackedVlan));
        g[12..14].copy_from_slice(&0x88a8u16.to_be_bytes());
        assert_eq!(parse(&g), Err(DropReason::StackedVlan));
        g[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        assert_eq!(parse(&g), Err(DropReason::UnsupportedEthertype));
    }

    #[test]
    fn ipv4_truncated_at_every_length() {
        let f = v4(0, None, b"payload");
        for n in 14..34 {
            assert_eq!(parse(&f[..n]), Err(DropReason::TruncatedIpv4), "len {n}");
        }
        for n in 34..f.len() {
            assert_eq!(parse(&f[..n]), Err(DropReason::BadIpv4TotalLen), "len {n}");
        }
        // Consistent lengths, short L4 headers.
        for (kind, hdr, reason) in [
            (0, 20, DropReason::TruncatedTcp),
            (1, 8, DropReason::TruncatedUdp),
            (2, 8, DropReason::TruncatedIcmp),
        ] {
            let f = v4(kind, None, b"");
            for l4 in 0..hdr {
                let mut g = f[..34 + l4].to_vec();
                set_total_len(&mut g, 20 + l4 as u16);
                assert_eq!(parse(&g), Err(reason), "kind {kind} l4 {l4}");
            }
        }
    }

    #[test]
    fn ipv4_bad_fields() {
        let f = v4(0, None, b"");
        for ihl in 0..5u8 {
            let mut g = f.clone();
            g[14] = 0x40 | ihl;
            assert_eq!(parse(&g), Err(DropReason::BadIpv4Ihl));
        }
        let mut g = f.clone();
        g[14] = 0x65;
        assert_eq!(parse(&g), Err(DropReason::BadIpVersion));
        let mut g = f.clone();
        g[14] = 0x4f; // 60-byte header in a 40-byte packet
        assert_eq!(parse(&g), Err(DropReason::TruncatedIpv4));
        let mut g = f.clone();
        set_total_len(&mut g, 19);
        assert_eq!(parse(&g), Err(DropReason::BadIpv4TotalLen));
        let mut g = f.clone();
        g[24] ^= 0xff; // checksum
        assert!(parse(&g).is_ok());
        let strict = ParseOptions {
            verify_ipv4_checksum: true,
            ..ParseOptions::default()
        };
        assert_eq!(parse_with(&g, strict), Err(DropReason::BadIpv4Checksum));
        assert!(parse_with(&f, strict).is_ok());
        for off in 0..5u8 {
            let mut g = f.clone();
            g[34 + 12] = off << 4;
            assert_eq!(parse(&g), Err(DropReason::BadTcpDataOffset));
        }
        let mut g = f.clone();
        g[34 + 12] = 0x60; // 24-byte header in 20 bytes
        assert_eq!(parse(&g), Err(DropReason::TruncatedTcp));
    }

    #[test]
    fn ipv4_options_are_skipped() {
        let f = v4(1, None, b"x");
        let mut g = f[..34].to_vec();
        g.extend_from_slice(&[1, 1, 1, 0, 1, 1, 1, 0]); // two option words
        g.extend_from_slice(&f[34..]);
        g[14] = 0x47;
        set_total_len(&mut g, 28 + 9);
        let m = parse_with(
            &g,
            ParseOptions {
                verify_ipv4_checksum: true,
                ..ParseOptions::default()
            },
        )
        .unwrap();
        assert_eq!((m.l4_offset, m.ip_payload_len, m.dst_port), (42, 9, 53));
    }

    /// A v4 UDP frame with `opts` (a multiple of 4 bytes) as IPv4 options.
    fn v4_with_options(opts: &[u8]) -> Vec<u8> {
        let f = v4(1, None, b"x");
        let mut g = f[..34].to_vec();
        g.extend_from_slice(opts);
        g.extend_from_slice(&f[34..]);
        g[14] = 0x45 + (opts.len() / 4) as u8;
        set_total_len(&mut g, (20 + opts.len() + 9) as u16);
        g
    }

    #[test]
    fn ipv4_source_routes_and_bad_options_refused() {
        // LSRR (131) and SSRR (137), each with one address, after a NOP.
        for t in [131u8, 137] {
            let g = v4_with_options(&[1, t, 7, 4, 198, 18, 0, 9]);
            assert_eq!(parse(&g), Err(DropReason::Ipv4SourceRoute), "type {t}");
            let accept = ParseOptions {
                accept_source_route: true,
                ..ParseOptions::default()
            };
            assert!(parse_with(&g, accept).is_ok(), "type {t} accepted");
        }
        // Record route (7) is harmless and passes.
        assert!(parse(&v4_with_options(&[7, 7, 4, 0, 0, 0, 0, 0])).is_ok());
        // Lengths below 2, past the header, or missing.
        for bad in [[68u8, 1, 0, 0], [68, 0, 0, 0], [68, 5, 5, 0], [1, 1, 1, 68]] {
            assert_eq!(
                parse(&v4_with_options(&bad)),
                Err(DropReason::BadIpv4Options),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ipv6_routing_headers() {
        let udp = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0, 0];
        let rh = |kind: u8, left: u8| {
            // next UDP, hdr ext len 2 (24 bytes), type, segments left,
            // reserved, one address.
            let mut h = vec![ip_proto::UDP, 2, kind, left, 0, 0, 0, 0];
            h.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            h.extend_from_slice(&[0; 12]);
            h
        };
        // RH0 is refused whatever its segments left (RFC 5095).
        for left in [0, 1, 2] {
            let g = v6_ext(ip_proto::IPV6_ROUTE, &rh(0, left), &udp);
            assert_eq!(parse(&g), Err(DropReason::Ipv6RoutingType0), "sl {left}");
        }
        // Other types: refused with segments left, passed without.
        for kind in [2u8, 4] {
            let g = v6_ext(ip_proto::IPV6_ROUTE, &rh(kind, 1), &udp);
            assert_eq!(parse(&g), Err(DropReason::Ipv6RoutingSegmentsLeft));
            let g = v6_ext(ip_proto::IPV6_ROUTE, &rh(kind, 0), &udp);
            assert_eq!(parse(&g).map(|m| m.dst_port), Ok(53), "type {kind}");
        }
    }

    #[test]
    fn udp_length() {
        let f = v4(1, None, b"abcd");
        for bad in [0u16, 7, 13, 0xffff] {
            let mut g = f.clone();
            g[38..40].copy_from_slice(&bad.to_be_bytes());
            assert_eq!(parse(&g), Err(DropReason::BadUdpLength), "len {bad}");
        }
        let mut g = f.clone();
        g[38..40].copy_from_slice(&8u16.to_be_bytes()); // shorter than IP says: allowed
        assert!(parse(&g).is_ok());
    }

    #[test]
    fn ipv4_fragments() {
        // First fragment: MF, offset 0, UDP length covers the whole datagram.
        let mut f = v4(1, None, &[0; 16]);
        f[38..40].copy_from_slice(&3000u16.to_be_bytes());
        ipv4::Packet::new_unchecked(&mut f[14..]).set_frag(false, true, 0);
        let m = parse(&f).unwrap();
        assert_eq!(
            m.frag,
            Some(FragInfo {
                ident: 0,
                offset: 0,
                more: true,
                dont_frag: false
            })
        );
        assert!(m.is_fragment() && !m.is_non_first_fragment() && m.has_l4);
        assert_eq!(m.dst_port, 53);
        // Non-first fragment: no L4 header, whatever the bytes say.
        ipv4::Packet::new_unchecked(&mut f[14..]).set_frag(false, false, 185);
        f[34..].fill(0xff);
        let m = parse(&f).unwrap();
        assert!(m.is_non_first_fragment() && !m.has_l4);
        assert_eq!(
            (m.l4_offset, m.src_port, m.frag.unwrap().offset),
            (34, 0, 185)
        );
    }

    /// Ethernet + IPv6 with raw extension headers `ext` then `l4`.
    fn v6_ext(next: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
        let mut f = v6(1, b"");
        f.truncate(54);
        let mut ip = ipv6::Packet::new_unchecked(&mut f[14..]);
        ip.set_next_header(next);
        ip.set_payload_len((ext.len() + l4.len()) as u16);
        f.extend_from_slice(ext);
        f.extend_from_slice(l4);
        f
    }

    #[test]
    fn ipv6_extension_headers() {
        let udp = [0x9c, 0x40, 0x00, 0x35, 0x00, 0x08, 0, 0];
        let hbh = [ip_proto::IPV6_FRAG, 0, 1, 4, 0, 0, 0, 0];
        let frag = [ip_proto::UDP, 0, 0, 1, 0, 0, 0, 9];
        let mut ext = hbh.to_vec();
        ext.extend_from_slice(&frag);
        let f = v6_ext(ip_proto::HOP_BY_HOP, &ext, &udp);
        let m = parse(&f).unwrap();
        assert_eq!(
            (m.l4_proto, m.l4_offset, m.l4_len, m.ip_payload_len),
            (17, 70, 8, 24)
        );
        assert_eq!(
            m.frag,
            Some(FragInfo {
                ident: 9,
                offset: 0,
                more: true,
                dont_frag: false
            })
        );
        assert_eq!(m.dst_port, 53);
        for n in 0..ext.len() {
            let g = v6_ext(ip_proto::HOP_BY_HOP, &ext[..n], &[]);
            assert_eq!(
                parse(&g),
                Err(DropReason::TruncatedIpv6ExtHeader),
                "ext {n}"
            );
        }
        for n in 0..8 {
            let g = v6_ext(ip_proto::HOP_BY_HOP, &ext, &udp[..n]);
            assert_eq!(parse(&g), Err(DropReason::TruncatedUdp), "udp {n}");
        }
        // Non-first fragment.
        let g = v6_ext(
            ip_proto::IPV6_FRAG,
            &[ip_proto::TCP, 0, 0, 0x08, 0, 0, 0, 9],
            &[1, 2, 3],
        );
        let m = parse(&g).unwrap();
        assert!(m.is_non_first_fragment() && !m.has_l4);
        assert_eq!((m.l4_proto, m.frag.unwrap().offset), (ip_proto::TCP, 1));
        // Refused chains.
        let g = v6_ext(
            ip_proto::AH,
            &[ip_proto::UDP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &udp,
        );
        assert_eq!(parse(&g), Err(DropReason::Ipv6ExtUnsupported));
        let g = v6_ext(ip_proto::ESP, &[0; 16], &[]);
        assert_eq!(parse(&g), Err(DropReason::Ipv6ExtUnsupported));
        let opts = [ip_proto::IPV6_OPTS, 0, 0, 0, 0, 0, 0, 0].repeat(20);
        let g = v6_ext(ip_proto::IPV6_OPTS, &opts, &[]);
        assert_eq!(parse(&g), Err(DropReason::Ipv6ExtChainTooLong));
        let g = v6_ext(
            ip_proto::IPV6_OPTS,
            &[
                ip_proto::HOP_BY_HOP,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                17,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ],
            &udp,
        );
        assert_eq!(parse(&g), Err(DropReason::Ipv6ExtBadOrder));
    }

    #[test]
    fn ipv6_refusals() {
        let f = v6(0, b"xyz");
        for n in 14..54 {
            assert_eq!(parse(&f[..n]), Err(DropReason::TruncatedIpv6), "len {n}");
        }
        for n in 54..f.len() {
            assert_eq!(
                parse(&f[..n]),
                Err(DropReason::BadIpv6PayloadLen),
                "len {n}"
            );
        }
        let mut g = f.clone();
        g[14] = 0x45;
        assert_eq!(parse(&g), Err(DropReason::BadIpVersion));
        let g = v6_ext(ip_proto::ICMPV6, &[], &[128, 0, 0]);
        assert_eq!(parse(&g), Err(DropReason::TruncatedIcmpv6));
        let g = v6_ext(ip_proto::ICMPV6, &[], &[135, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&g), Err(DropReason::TruncatedIcmpv6));
    }

    #[test]
    fn icmp_errors() {
        // Port unreachable quoting the client's UDP packet.
        let quoted = &v4(1, None, b"")[14..];
        let mut f = v4(2, None, b"");
        f.truncate(34);
        f.extend_from_slice(&[3, 3, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(quoted);
        set_total_len(&mut f, (20 + 8 + quoted.len()) as u16);
        let m = parse(&f).unwrap();
        assert!(m.is_icmp_error());
        assert_eq!((m.icmp_type, m.icmp_code, m.src_port), (3, 3, 0));
        assert_eq!(m.icmp_inner_offset(), 42);
        let inner = ipv4::Packet::new_checked_header(&f[42..]).unwrap();
        assert_eq!(inner.dst_addr(), Ipv4Addr::from(V4));
        // Quotes shorter than a header and 8 bytes are refused.
        for cut in 1..=quoted.len() {
            let mut g = f[..f.len() - cut].to_vec();
            let l = (g.len() - 14) as u16;
            set_total_len(&mut g, l);
            assert_eq!(parse(&g), Err(DropReason::BadIcmpEmbedded), "cut {cut}");
        }
        // ICMPv6 packet too big quoting an IPv6 TCP header.
        let quoted6 = &v6(0, b"")[14..62];
        let mut l4 = vec![2, 0, 0, 0, 0, 0, 5, 0];
        l4.extend_from_slice(quoted6);
        let g = v6_ext(ip_proto::ICMPV6, &[], &l4);
        let m = parse(&g).unwrap();
        assert!(m.is_icmp_error());
        let g = v6_ext(ip_proto::ICMPV6, &[], &l4[..l4.len() - 1]);
        assert_eq!(parse(&g), Err(DropReason::BadIcmpv6Embedded));
    }

    #[test]
    fn drop_reasons_are_named_and_indexed() {
        let mut names = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            let n = r.name();
            assert!(n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
            assert!(names.insert(n), "duplicate {n}");
            assert_eq!(r.to_string(), n);
        }
        assert_eq!(names.len(), DropReason::COUNT);
        let mut c = DropCounters::new();
        c.inc(DropReason::BadUdpLength);
        c.inc(DropReason::BadUdpLength);
        c.inc(DropReason::TruncatedEthernet);
        assert_eq!(c.get(DropReason::BadUdpLength), 2);
        assert_eq!(c.total(), 3);
        let mut sum = DropCounters::default();
        sum.add(&c);
        sum.add(&c);
        assert_eq!(sum.get(DropReason::TruncatedEthernet), 2);
        assert_eq!(sum.iter().filter(|(_, n)| *n > 0).count(), 2);
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for k in 0..3 {
            v.push(v4(k, None, b"data"));
            v.push(v4(k, Some(7), b""));
            v.push(v6(k, b"data"));
        }
        v
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_with(&data, ParseOptions { verify_ipv4_checksum: true, ..ParseOptions::default() });
        }

        #[test]
        fn never_panics_on_mutated_packets(
            which in 0usize..9,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut f = valid_frames().swap_remove(which);
            for (i, b) in edits {
                let at = i.index(f.len());
                f[at] = b;
            }
            let n = cut.index(f.len() + 1);
            let _ = parse(&f[..n]);
            let _ = parse(&f);
        }

        #[test]
        fn agrees_with_etherparse(
            kind in 0u8..3,
            v6_ in any::<bool>(),
            payload in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let f = if v6_ { v6(kind, &payload) } else { v4(kind, None, &payload) };
            let m = parse(&f).unwrap();
            let e = etherparse::SlicedPacket::from_ethernet(&f).unwrap();
            match e.transport.unwrap() {
                etherparse::TransportSlice::Tcp(t) => {
                    prop_assert_eq!((m.src_port, m.dst_port), (t.source_port(), t.destination_port()));
                    prop_assert_eq!(usize::from(m.l4_len), t.slice().len());
                }
                etherparse::TransportSlice::Udp(u) => {
                    prop_assert_eq!((m.src_port, m.dst_port), (u.source_port(), u.destination_port()));
                }
                etherparse::TransportSlice::Icmpv4(i) => prop_assert_eq!(m.icmp_type, i.type_u8()),
                etherparse::TransportSlice::Icmpv6(i) => prop_assert_eq!(m.icmp_type, i.type_u8()),
            }
        }
    }
}

#[cfg(test)]
mod size {
    /// The meta is 68 bytes (two `IpAddr`s are 34); keep it from growing.
    #[test]
    fn meta_stays_small() {
        assert!(core::mem::size_of::<super::PacketMeta>() <= 68);
    }
}
