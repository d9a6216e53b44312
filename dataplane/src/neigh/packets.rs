//! Building ARP and ND frames: requests, solicitations, gratuitous ARP and
//! unsolicited neighbour advertisements, into a caller's buffer.
//!
//! Each builder writes one whole Ethernet frame at the start of `buf` and
//! returns its length, or `Err(Truncated)` (nothing meaningful written) if
//! `buf` is shorter than the frame. [`MAX_FRAME_LEN`] is always enough.

use crate::wire::ethernet::{self, MacAddr};
use crate::wire::icmpv6::{self, nd_flags, types, NdRepr};
use crate::wire::{arp, ethertype, ip_proto, ipv6, Error};
use core::net::{Ipv4Addr, Ipv6Addr};

/// Length of an untagged ARP frame (no Ethernet padding).
pub const ARP_FRAME_LEN: usize = ethernet::HEADER_LEN + arp::PACKET_LEN;
/// Length of an untagged NS/NA frame with a link-layer address option.
pub const ND_FRAME_LEN: usize = ethernet::HEADER_LEN + ND_L3_LEN;
/// The longest frame a builder here writes (a tagged NS/NA).
pub const MAX_FRAME_LEN: usize = ND_FRAME_LEN + ethernet::VLAN_TAG_LEN;
/// Bytes of an NS/NA with one link-layer option after the Ethernet
/// header: IPv6 header and ICMPv6 message.
pub(crate) const ND_L3_LEN: usize = ipv6::HEADER_LEN + ND_MSG_LEN;
/// Length of an NS/NA message with one link-layer address option.
pub(crate) const ND_MSG_LEN: usize = icmpv6::ND_LEN + 8;
/// The hop limit every ND message carries (RFC 4861).
pub const ND_HOP_LIMIT: u8 = 255;
/// ff02::1, all nodes.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast address of `addr` (ff02::1:ffXX:XXXX).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// The Ethernet multicast address of an IPv6 multicast address
/// (33:33 and its last four bytes, RFC 2464).
pub fn ipv6_multicast_mac(addr: Ipv6Addr) -> MacAddr {
    let o = addr.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Writes an Ethernet header followed by an ARP packet.
fn arp_frame(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    tci: Option<u16>,
    a: &arp::Repr,
) -> Result<usize, Error> {
    let eth = ethernet::Repr {
        dst,
        src,
        tci,
        ethertype: ethertype::ARP,
    };
    let hl = eth.header_len();
    let len = hl + arp::PACKET_LEN;
    let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
    eth.emit(b)?;
    a.emit(b.get_mut(hl..).ok_or(Error::Truncated)?)?;
    Ok(len)
}

/// Writes the IPv6 header and NS/NA (with its link-layer option) at the
/// start of `b`, which must be at least [`ND_L3_LEN`] bytes.
pub(crate) fn nd_l3(b: &mut [u8], src: Ipv6Addr, dst: Ipv6Addr, nd: &NdRepr) -> Result<(), Error> {
    ipv6::Repr {
        src,
        dst,
        next_header: ip_proto::ICMPV6,
        payload_len: nd.buffer_len() as u16,
        hop_limit: ND_HOP_LIMIT,
    }
    .emit(b)?;
    nd.emit(
        b.get_mut(ipv6::HEADER_LEN..).ok_or(Error::Truncated)?,
        src,
        dst,
    )
}

/// Writes an Ethernet header, IPv6 header and NS/NA.
fn nd_frame(
    buf: &mut [u8],
    dst_mac: MacAddr,
    src_mac: MacAddr,
    tci: Option<u16>,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nd: &NdRepr,
) -> Result<usize, Error> {
    let eth = ethernet::Repr {
        dst: dst_mac,
        src: src_mac,
        tci,
        ethertype: ethertype::IPV6,
    };
    let hl = eth.header_len();
    let len = hl + ipv6::HEADER_LEN + nd.buffer_len();
    let b = buf.get_mut(..len).ok_or(Error::Truncated)?;
    eth.emit(b)?;
    nd_l3(b.get_mut(hl..).ok_or(Error::Truncated)?, src, dst, nd)?;
    Ok(len)
}

/// An ARP request for `target` from (`src_mac`, `src_ip`), broadcast, or
/// unicast to `unicast` (a probe of a stale entry). `tci` tags the frame.
pub fn arp_request(
    buf: &mut [u8],
    src_mac: MacAddr,
    src_ip: Ipv4Addr,
    target: Ipv4Addr,
    unicast: Option<MacAddr>,
    tci: Option<u16>,
) -> Result<usize, Error> {
    let a = arp::Repr {
        operation: arp::OP_REQUEST,
        sender_mac: src_mac,
        sender_ip: src_ip,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    };
    arp_frame(buf, unicast.unwrap_or(MacAddr::BROADCAST), src_mac, tci, &a)
}

/// A gratuitous ARP (broadcast request for our own address) announcing
/// `ip` at `mac`, for when a VIP is added or a director takes over.
pub fn gratuitous_arp(
    buf: &mut [u8],
    mac: MacAddr,
    ip: Ipv4Addr,
    tci: Option<u16>,
) -> Result<usize, Error> {
    arp_frame(
        buf,
        MacAddr::BROADCAST,
        mac,
        tci,
        &arp::Repr::gratuitous(mac, ip),
    )
}

/// A neighbour solicitation for `target` from `src_ip` with a source
/// link-layer option `src_mac`: to the solicited-node multicast address,
/// or unicast to `target` at `unicast` (a probe of a stale entry).
pub fn neighbor_solicit(
    buf: &mut [u8],
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
    unicast: Option<MacAddr>,
    tci: Option<u16>,
) -> Result<usize, Error> {
    let (dst, dst_mac) = match unicast {
        Some(m) => (target, m),
        None => {
            let d = solicited_node(target);
            (d, ipv6_multicast_mac(d))
        }
    };
    let nd = NdRepr {
        msg_type: types::NEIGHBOR_SOLICIT,
        flags: 0,
        target,
        ll_addr: Some(src_mac),
    };
    nd_frame(buf, dst_mac, src_mac, tci, src_ip, dst, &nd)
}

/// An unsolicited neighbour advertisement (override set, solicited clear)
/// announcing `ip` at `mac` to all nodes: IPv6's gratuitous ARP.
pub fn unsolicited_na(
    buf: &mut [u8],
    mac: MacAddr,
    ip: Ipv6Addr,
    tci: Option<u16>,
) -> Result<usize, Error> {
    let nd = NdRepr {
        msg_type: types::NEIGHBOR_ADVERT,
        flags: nd_flags::OVERRIDE,
        target: ip,
        ll_addr: Some(mac),
    };
    nd_frame(
        buf,
        ipv6_multicast_mac(ALL_NODES),
        mac,
        tci,
        ip,
        ALL_NODES,
        &nd,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_addresses() {
        let a: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            ipv6_multicast_mac(solicited_node(a)),
            MacAddr([0x33, 0x33, 0xff, 0x12, 0x34, 0x56])
        );
        assert_eq!(
            ipv6_multicast_mac(ALL_NODES),
            MacAddr([0x33, 0x33, 0, 0, 0, 1])
        );
    }

    #[test]
    fn short_buffers_refused() {
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        let v4 = Ipv4Addr::new(10, 0, 0, 1);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut b = [0u8; MAX_FRAME_LEN];
        assert_eq!(gratuitous_arp(&mut b, mac, v4, None), Ok(ARP_FRAME_LEN));
        assert_eq!(gratuitous_arp(&mut b, mac, v4, Some(5)), Ok(46));
        assert_eq!(unsolicited_na(&mut b, mac, v6, None), Ok(ND_FRAME_LEN));
        assert_eq!(
            neighbor_solicit(&mut b, mac, v6, v6, None, Some(1)),
            Ok(MAX_FRAME_LEN)
        );
        assert!(gratuitous_arp(&mut b[..41], mac, v4, None).is_err());
        assert!(arp_request(&mut b[..45], mac, v4, v4, None, Some(1)).is_err());
        assert!(unsolicited_na(&mut b[..85], mac, v6, None).is_err());
        assert!(neighbor_solicit(&mut b[..89], mac, v6, v6, None, Some(1)).is_err());
    }
}
