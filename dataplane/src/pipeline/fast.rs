//! The established-flow fast path of the staged burst
//! ([`Pipeline::process_burst`], stage 3): a packet of a connection that
//! needs nothing but its rewrite goes from the bytes stage 1 read straight
//! to the TX burst, without the full parser, `PacketMeta`, `Translation`,
//! route or neighbour lookup. One function per (address family,
//! forwarding mode, direction): the family is a type parameter, and one
//! match on the record's mode and direction picks the rewrite.
//!
//! It takes a packet only when the general path would do exactly the
//! same, and says so before it changes anything; any other packet goes on
//! to the general path ([`Pipeline::packet`]) untouched, with the lookup
//! result when it made one (so the table's statistics count it once):
//!
//! - stage 1 read it as plain TCP/UDP (untagged, IPv4 with a 20-byte
//!   header and no fragmentation, IPv6 without extension headers), and its
//!   lengths are those the parser accepts (IP total / payload length
//!   inside the frame, TCP data offset inside the segment, UDP length
//!   inside the datagram), so the parser could not have dropped it;
//! - its owner is this worker (the general path hands it off otherwise);
//! - it hits a connection in any mode (NAT and FullNAT both ways, DR and
//!   TUN client to server), it is not a TCP SYN or RST (connection reuse,
//!   SYN proxy and the passive health check look at those), and the worker
//!   has no SYN proxy handshake, TOA phase or sequence adjustment that
//!   could concern it;
//! - the adjacency cache ([`crate::adj`]) holds its next hop, and it fits
//!   the MTU with any tunnel header (the general path answers "too big"),
//!   and for TUN the headroom holds the outer headers.
//!
//! Then it does what the general path does for such a packet, in the same
//! order: the TCP state machine (or the refresh of a UDP entry), traffic
//! counters, the sync check, the rewrite (`crate::wire::nat::rewrite_plain`,
//! the same checksum steps as the checked rewrite) or the TUN
//! encapsulation (IP in IP of the packet's family inline, with the bytes
//! `forward::tun` writes; GUE and GRE by `forward::tun` itself, given the
//! parse fields it reads), the
//! MACs of the cached adjacency, and the TX. `dataplane/tests/staged.rs` compares the two
//! paths' frames, events and counters on mixed bursts of every mode.

use super::{
    activity, count_traffic, sync_check, PathDrop, Pipeline, Sink, Tables, IPPROTO_TCP, NS,
    TCP_RST, TCP_SYN,
};
use crate::buf::PacketBuf;
use crate::conn::{Direction as ConnDir, FwdMode, RecordIdx};
use crate::flow::{V4, V6};
use crate::forward::{self, Endpoint, L2Out, Mode, Translation, TunParams, Verdict};
use crate::parse::{PacketMeta, L3 as L3Kind};
use crate::wire::ethernet::MacAddr;
use crate::wire::nat::{rewrite_plain, Side};
use crate::wire::{be16, checksum, ethernet::HEADER_LEN as L3};
use core::net::{Ipv4Addr, Ipv6Addr};

/// What the general path gets back from the fast path: the packet, and the
/// connection lookup if the fast path made it (`Some(None)`: a miss).
pub(super) type Fallback<B> = (B, Option<Option<(RecordIdx, ConnDir)>>);

/// The per-family part of the fast path.
pub(super) trait Fast: Tables {
    /// IP header length of a plain packet (20 / 40).
    const IP_HDR: usize;
    /// The parser's name of the family.
    const L3: L3Kind;
    /// The IP packet's length as its header gives it (total length /
    /// 40 + payload length), if the version is right.
    fn ip_len(d: &[u8]) -> Option<usize>;
    /// Writes the outer header of an IP-in-IP packet of this family (as
    /// `forward::tun` does for `TunEncap::Ipip` with the default TTL):
    /// `h` holds the Ethernet header, the outer header's room and the
    /// inner IP header; `ip_len` is the inner packet's length.
    fn ipip(h: &mut [u8], ip_len: u16, ident: u16, src: Self::Addr, dst: Self::Addr);
    /// Rewrites one side's address and port (see `rewrite_plain`).
    fn rewrite(d: &mut [u8], side: Side, a: Self::Addr, port: u16, tcp: bool);
}

impl Fast for V4 {
    const IP_HDR: usize = 20;
    const L3: L3Kind = L3Kind::Ipv4;
    #[inline(always)]
    fn ip_len(d: &[u8]) -> Option<usize> {
        // Stage 1 checked version 4 with IHL 5.
        Some(usize::from(be16(d, L3 + 2)))
    }
    #[inline(always)]
    fn ipip(h: &mut [u8], ip_len: u16, ident: u16, src: Ipv4Addr, dst: Ipv4Addr) {
        let inner = L3 + 20;
        // The inner header's DSCP/ECN and DF (`set_frag(df, false, 0)`).
        let tos = h.get(inner + 1).copied().unwrap_or(0);
        let df = h.get(inner + 6).copied().unwrap_or(0) & 0x40;
        let [l0, l1] = ip_len.saturating_add(20).to_be_bytes();
        let [i0, i1] = ident.to_be_bytes();
        let [s0, s1, s2, s3] = src.octets();
        let [d0, d1, d2, d3] = dst.octets();
        let ttl = TunParams::DEFAULT_TTL;
        let mut o = [
            0x45,
            tos,
            l0,
            l1,
            i0,
            i1,
            df,
            0,
            ttl,
            IPPROTO_IPIP,
            0,
            0,
            s0,
            s1,
            s2,
            s3,
            d0,
            d1,
            d2,
            d3,
        ];
        let c = checksum::checksum(&o);
        crate::wire::put(&mut o, 10, c.to_be_bytes());
        crate::wire::put(h, L3, o);
    }
    #[inline(always)]
    fn rewrite(d: &mut [u8], side: Side, a: Self::Addr, port: u16, tcp: bool) {
        rewrite_plain(d, L3, side, a.octets(), port, tcp);
    }
}

impl Fast for V6 {
    const IP_HDR: usize = 40;
    const L3: L3Kind = L3Kind::Ipv6;
    #[inline(always)]
    fn ip_len(d: &[u8]) -> Option<usize> {
        // Stage 1 checked only the ethertype and next header.
        if d.get(L3)? >> 4 != 6 {
            return None;
        }
        Some(40 + usize::from(be16(d, L3 + 4)))
    }
    #[inline(always)]
    fn ipip(h: &mut [u8], ip_len: u16, _ident: u16, src: Ipv6Addr, dst: Ipv6Addr) {
        // Version, traffic class and flow label as the inner header has
        // them (its version is 6), payload the inner packet, next header
        // IPv6, the default hop limit.
        let vtf: [u8; 4] = crate::wire::array(h, L3 + 40);
        let [l0, l1] = ip_len.to_be_bytes();
        crate::wire::put(h, L3, vtf);
        crate::wire::put(h, L3 + 4, [l0, l1, IPPROTO_IPV6, TunParams::DEFAULT_TTL]);
        crate::wire::put(h, L3 + 8, src.octets());
        crate::wire::put(h, L3 + 24, dst.octets());
    }
    #[inline(always)]
    fn rewrite(d: &mut [u8], side: Side, a: Self::Addr, port: u16, tcp: bool) {
        rewrite_plain(d, L3, side, a.octets(), port, tcp);
    }
}

/// IP protocol numbers of IPv4-in-IPv4 and IPv6-in-IPv6.
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;

/// How a TUN packet is encapsulated: IP in IP of the family inline, any
/// other tunnel by `forward::tun`.
enum Encap<A> {
    Ipip {
        src: A,
        dst: A,
    },
    General(
        Translation,
        core::net::IpAddr,
        L2Out,
        (u16, MacAddr, MacAddr),
    ),
}

/// The parser's length checks for a plain TCP (`TCP`) or UDP packet of
/// family `F` whose headers are `h` (Ethernet, IP and TCP/UDP, `hdr_len`
/// bytes) in a frame of `frame_len` bytes: the bytes IPVS counts (the IP
/// packet, header and payload), or `None` to let the parser see it and
/// drop it by its reason.
#[inline(always)]
fn plain<F: Fast, const TCP: bool>(h: &[u8], frame_len: usize) -> Option<u16> {
    let ip_len = F::ip_len(h)?;
    let l4 = L3 + F::IP_HDR;
    // The frame holds the headers (`h`), so neither subtraction wraps.
    if ip_len < F::IP_HDR + l4_min::<TCP>() || ip_len > frame_len - L3 {
        return None;
    }
    let l4_len = ip_len - F::IP_HDR;
    if TCP {
        let hl = usize::from(*h.get(l4 + 12)? >> 4) * 4;
        if hl < 20 || hl > l4_len {
            return None;
        }
    } else {
        let ul = usize::from(be16(h, l4 + 4));
        if ul < 8 || ul > l4_len {
            return None;
        }
    }
    u16::try_from(ip_len).ok()
}

/// The TCP (20) or UDP (8) header length.
#[inline(always)]
const fn l4_min<const TCP: bool>() -> usize {
    if TCP {
        20
    } else {
        8
    }
}

/// The rewrite of one (mode, direction).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rw {
    NatIn,
    NatOut,
    FullNatIn,
    FullNatOut,
    Dr,
    Tun,
}

impl<B: PacketBuf> Pipeline<B> {
    /// Stage 3 for the packet in `slot` of a staged round: forwards it
    /// (`Ok`) or gives it back for the general path (`Err`).
    #[inline(always)]
    pub(super) fn fast(
        &mut self,
        pkt: B,
        slot: usize,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) -> Result<(), Fallback<B>> {
        let cand = self.st.stage.candidate(slot);
        if let Some((k, h)) = self.st.stage.v4(slot) {
            self.fast_fam::<V4>(pkt, k, h, cand, from_handoff, sink)
        } else if let Some((k, h)) = self.st.stage.v6(slot) {
            self.fast_fam::<V6>(pkt, k, h, cand, from_handoff, sink)
        } else {
            Err((pkt, None))
        }
    }

    #[inline(always)]
    fn fast_fam<F: Fast>(
        &mut self,
        pkt: B,
        key: crate::flow::FlowKey<F>,
        hash: u64,
        cand: u32,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) -> Result<(), Fallback<B>> {
        // One body per protocol, so the header length is a constant and
        // the header's bytes are read and written without bounds checks.
        if key.proto == IPPROTO_TCP {
            self.fast_l4::<F, true>(pkt, key, hash, cand, from_handoff, sink)
        } else {
            self.fast_l4::<F, false>(pkt, key, hash, cand, from_handoff, sink)
        }
    }

    #[inline(always)]
    fn fast_l4<F: Fast, const TCP: bool>(
        &mut self,
        mut pkt: B,
        key: crate::flow::FlowKey<F>,
        hash: u64,
        cand: u32,
        from_handoff: bool,
        sink: &mut impl Sink<B>,
    ) -> Result<(), Fallback<B>> {
        // The Ethernet, IP and TCP/UDP headers: a constant length, so
        // every access at a fixed offset below is checked at compile time.
        let hdr_len = L3 + F::IP_HDR + l4_min::<TCP>();
        let headroom = pkt.headroom();
        let d = pkt.data_mut();
        let frame_len = d.len();
        let Some(h) = d.get_mut(..hdr_len) else {
            return Err((pkt, None));
        };
        // What sends the packet to the general path whatever the table
        // says comes first, so a SYN costs only these tests.
        let flags = if TCP {
            match h.get(L3 + F::IP_HDR + 13) {
                Some(&f) if f & (TCP_SYN | TCP_RST) == 0 && self.st.syn.idle() => f,
                _ => return Err((pkt, None)),
            }
        } else {
            0
        };
        if self.st.toa.enabled() {
            return Err((pkt, None));
        }
        let Some(ip_len) = plain::<F, TCP>(h, frame_len) else {
            return Err((pkt, None));
        };
        let snap = &*self.snap;
        if !from_handoff && self.st.own.workers() > 1 {
            // As the general path decides it (client→service by the
            // client endpoint, anything else by the destination).
            let (dst, src) = (F::to_ip(key.dst), key.src);
            let owner = if snap.to_service(key.proto, dst, key.dport) {
                self.st.own.owner::<F>(src, key.sport)
            } else {
                self.st.own.owner::<F>(key.dst, key.dport)
            };
            if owner != self.st.worker {
                return Err((pkt, None));
            }
        }
        let table = F::table(&mut self.st);
        let found = table.lookup_candidate(&key, hash, cand);
        let Some((idx, dir)) = found else {
            return Err((pkt, Some(found)));
        };
        let Some(c) = table.get(idx) else {
            return Err((pkt, Some(found)));
        };
        // The rewrite, and of the record only what it and the rest read
        // (the addresses and ports it writes, in the order it writes them).
        let u = (F::UNSPECIFIED, 0);
        let (rw, w1, w2) = match (c.fwd(), dir) {
            (FwdMode::Nat, ConnDir::In) => (Rw::NatIn, (c.rip(), c.rport()), u),
            (FwdMode::Nat, ConnDir::Out) => (Rw::NatOut, (c.vip(), c.vport()), u),
            (FwdMode::FullNat, ConnDir::In) => {
                (Rw::FullNatIn, (c.local(), c.lport()), (c.rip(), c.rport()))
            }
            (FwdMode::FullNat, ConnDir::Out) => (
                Rw::FullNatOut,
                (c.client(), c.cport()),
                (c.vip(), c.vport()),
            ),
            (FwdMode::Dr, ConnDir::In) => (Rw::Dr, u, u),
            (FwdMode::Tun, ConnDir::In) => (Rw::Tun, u, u),
            _ => return Err((pkt, Some(found))),
        };
        let (svc, rs) = (c.svc(), c.rs());
        let to = if dir == ConnDir::In {
            c.rip()
        } else {
            c.client()
        };
        // TUN: what the encapsulation reads. A connection to a real server
        // of the other family keeps no address of its own (the general
        // path finds it by id).
        let tun = if rw == Rw::Tun {
            if to == F::UNSPECIFIED {
                return Err((pkt, Some(found)));
            }
            let tun = snap.tunnel(rs);
            Some(Translation {
                mode: Mode::Tun,
                client: Endpoint::new(F::to_ip(c.client()), c.cport()),
                vip: Endpoint::new(F::to_ip(c.vip()), c.vport()),
                rip: Endpoint::new(F::to_ip(to), c.rport()),
                laddr: None,
                tun,
            })
        } else {
            None
        };
        if table.seq_adj(idx).is_some() {
            return Err((pkt, Some(found)));
        }
        let now = self.st.now_ns;
        let Some(a) = self.st.adj.get(F::to_ip(to), self.neigh.generation(), now) else {
            return Err((pkt, Some(found)));
        };
        // Of the adjacency, what every packet needs (TUN reads the rest).
        let (out_port, mtu, dst_mac, src_mac) = (a.port, a.mtu, a.dst_mac, a.neigh_src_mac);
        // TUN: the encapsulation must fit (headroom, MTU with the outer
        // headers) and the outer source be of the family, or the general
        // path answers.
        let (tun, overhead) = match tun {
            Some(t) => {
                let overhead = t.tun.overhead(F::IP_HDR == 40);
                if headroom < overhead || F::from_ip(a.tun_src).is_none() {
                    return Err((pkt, Some(found)));
                }
                let e = match (t.tun, F::from_ip(a.tun_src)) {
                    (forward::TunEncap::Ipip, Some(src)) => Encap::Ipip { src, dst: to },
                    _ => {
                        let l2 = L2Out {
                            src_mac: a.src_mac,
                            dst_mac: MacAddr::ZERO,
                            mtu,
                        };
                        let macs = (out_port, dst_mac, src_mac);
                        Encap::General(t, a.tun_src, l2, macs)
                    }
                };
                (Some(e), overhead)
            }
            None => (None, 0),
        };
        if usize::from(ip_len) + overhead > usize::from(mtu) {
            return Err((pkt, Some(found)));
        }
        // Committed: from here on exactly the general path's steps.
        if from_handoff {
            self.st.counters.handoff_in.inc();
        }
        let tick = (now / NS) as u32;
        let table = F::table(&mut self.st);
        if TCP {
            if !table.refresh_established(idx, flags, dir, tick) {
                if let Some(ch) = table.update_state(idx, flags, dir, tick) {
                    activity(snap, svc, rs, ch.activity);
                }
            }
        } else {
            table.touch(idx, tick);
        }
        let out = dir == ConnDir::Out;
        count_traffic(&self.st.counters, svc, rs, out, u64::from(ip_len));
        if let (Some(sp), false) = (&snap.sync, out) {
            sync_check::<F, B>(&mut self.st, sp, &snap.timeouts, idx, false, sink);
        }
        match tun {
            Some(Encap::General(t, tun_src, l2, macs)) => {
                return self.fast_tun::<F>(pkt, &key, flags, ip_len, &t, tun_src, &l2, sink, macs);
            }
            Some(Encap::Ipip { src, dst }) => {
                // `forward::tun`'s steps for IP in IP: the inner packet
                // without Ethernet padding, the outer header in front of
                // it, the Ethernet header moved to the front.
                self.st.tun_ident = self.st.tun_ident.wrapping_add(1);
                let ident = self.st.tun_ident;
                let pad = frame_len - (L3 + usize::from(ip_len));
                if pad > 0 {
                    pkt.trim(pad);
                }
                if pkt.prepend(F::IP_HDR).is_none() {
                    self.st
                        .counters
                        .fwd_error(forward::ForwardError::NoHeadroom);
                    return Ok(());
                }
                let Some(h) = pkt.data_mut().get_mut(..L3 + 2 * F::IP_HDR) else {
                    self.st.counters.fwd_error(forward::ForwardError::NotIp);
                    return Ok(());
                };
                h.copy_within(F::IP_HDR..F::IP_HDR + L3, 0);
                F::ipip(h, ip_len, ident, src, dst);
                crate::wire::put(h, 0, dst_mac.0);
                crate::wire::put(h, 6, src_mac.0);
                sink.tx(out_port, pkt);
                return Ok(());
            }
            None => {}
        }
        // The server side's new address and port (RIP toward the server,
        // VIP toward the client) and for FullNAT the client side's.
        match rw {
            Rw::NatIn => F::rewrite(h, Side::Dst, w1.0, w1.1, TCP),
            Rw::NatOut => F::rewrite(h, Side::Src, w1.0, w1.1, TCP),
            Rw::FullNatIn => {
                F::rewrite(h, Side::Src, w1.0, w1.1, TCP);
                F::rewrite(h, Side::Dst, w2.0, w2.1, TCP);
            }
            Rw::FullNatOut => {
                F::rewrite(h, Side::Dst, w1.0, w1.1, TCP);
                F::rewrite(h, Side::Src, w2.0, w2.1, TCP);
            }
            // TUN went above.
            Rw::Dr | Rw::Tun => {}
        }
        crate::wire::put(h, 0, dst_mac.0);
        crate::wire::put(h, 6, src_mac.0);
        sink.tx(out_port, pkt);
        Ok(())
    }

    /// The TUN encapsulation of a committed fast-path packet: the general
    /// path's `forward::tun`, given the fields of the parse and translation
    /// it reads, then the cached adjacency's MACs and the TX.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn fast_tun<F: Fast>(
        &mut self,
        mut pkt: B,
        key: &crate::flow::FlowKey<F>,
        flags: u8,
        ip_len: u16,
        t: &Translation,
        tun_src: core::net::IpAddr,
        l2: &L2Out,
        sink: &mut impl Sink<B>,
        (out_port, dst_mac, src_mac): (u16, MacAddr, MacAddr),
    ) -> Result<(), Fallback<B>> {
        self.st.tun_ident = self.st.tun_ident.wrapping_add(1);
        let params = TunParams {
            src: tun_src,
            ttl: Some(TunParams::DEFAULT_TTL),
            ident: self.st.tun_ident,
        };
        let l4_len = ip_len - F::IP_HDR as u16;
        let meta = PacketMeta {
            l2_len: L3 as u8,
            vlan: None,
            ethertype: if F::IP_HDR == 40 { 0x86dd } else { 0x0800 },
            l3: F::L3,
            l3_offset: L3 as u16,
            src: F::to_ip(key.src),
            dst: F::to_ip(key.dst),
            ttl: 0,
            l4_proto: key.proto,
            l4_offset: (L3 + F::IP_HDR) as u16,
            l4_len,
            ip_payload_len: l4_len,
            has_l4: true,
            src_port: key.sport,
            dst_port: key.dport,
            icmp_type: 0,
            icmp_code: 0,
            tcp_flags: flags,
            frag: None,
        };
        match forward::tun(&mut pkt, &meta, t, &params, l2) {
            Ok(Verdict::Transmit) => {}
            // Not reached: the checks before the commit are the ones that
            // lead elsewhere; counted, never silent.
            Ok(_) => {
                self.st.counters.path_drop(PathDrop::NeedsFragmentation);
                return Ok(());
            }
            Err(e) => {
                self.st.counters.fwd_error(e);
                return Ok(());
            }
        }
        let d = pkt.data_mut();
        crate::wire::put(d, 0, dst_mac.0);
        crate::wire::put(d, 6, src_mac.0);
        sink.tx(out_port, pkt);
        Ok(())
    }
}
