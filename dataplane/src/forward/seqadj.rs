//! TCP sequence adjustment: the per-connection deltas that let rvs change
//! the length of one direction's byte stream (Proxy Protocol header, SYN
//! proxy's own initial sequence number) for the life of a connection.
//!
//! Semantics follow IPVS (`struct ip_vs_seq`, `vs_fix_seq`,
//! `vs_fix_ack_seq`, `vs_seq_update` in net/netfilter/ipvs/ip_vs_app.c):
//!
//! - Each direction has one [`SeqAdj`] `{init_seq, delta, previous_delta}`.
//!   `init_seq` is the (original-space) sequence number of the segment
//!   whose rewrite last changed the delta; a segment that starts after it
//!   is shifted by `delta`, one that starts at or before it (a
//!   retransmission of older data) by `previous_delta`.
//! - `in_seq` belongs to the client → real-server stream: it shifts the
//!   sequence number of inbound segments and, subtracted, the
//!   acknowledgement number of outbound ones. `out_seq` is the mirror.
//! - SACK blocks (TCP option 5) name edges in the same space as the
//!   acknowledgement number, so every left and right edge is shifted like
//!   the ack (IPVS leaves them alone, which breaks SACK recovery through
//!   an adjusted connection; DPVS adjusts them too).
//! - Timestamps (option 8) are clock values, not sequence numbers: they
//!   are left untouched. No other option refers to sequence space.
//! - All arithmetic is modulo 2^32 (`wrapping_*`, and "after" is the
//!   signed 32-bit comparison of RFC 793 / the kernel's `after()`), so the
//!   wrap of the sequence space needs no special case.
//! - The TCP checksum is updated incrementally (RFC 1624) for each 32-bit
//!   word changed; nothing is recomputed over the payload.
//!
//! Everything here is pure, allocation-free and panic-free on any bytes;
//! a malformed option list stops the SACK walk (reported, not fatal: the
//! sequence and acknowledgement numbers are still adjusted).
//!
//! Limits: a segment whose checksum the NIC will compute (TX offload, the
//! field holding only the pseudo-header sum) must not go through here
//! with incremental updates; rvs's TCP rewrites keep full checksums.

#![deny(clippy::indexing_slicing)]

use crate::buf::PacketBuf;
use crate::parse::PacketMeta;
use crate::wire::{checksum, tcp};

/// TCP option kinds walked here.
mod opt {
    /// End of option list.
    pub const EOL: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Selective acknowledgement blocks (RFC 2018).
    pub const SACK: u8 = 5;
}

/// One direction's sequence adjustment, IPVS's `struct ip_vs_seq`.
/// The all-zero value is "no adjustment".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdj {
    /// Original-space sequence number of the segment where `delta` last
    /// changed.
    pub init_seq: u32,
    /// Shift for segments that start after `init_seq` (modulo 2^32).
    pub delta: u32,
    /// Shift for segments that start at or before `init_seq`.
    pub previous_delta: u32,
}

/// Whether `a` comes after `b` in sequence space (the kernel's `after()`).
#[inline]
pub fn seq_after(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) < 0
}

impl SeqAdj {
    /// From the wire triple (`init_seq, delta, previous_delta`), the order
    /// of the sync protocol's SEQ_DATA option.
    pub fn from_words(w: [u32; 3]) -> Self {
        SeqAdj {
            init_seq: w[0],
            delta: w[1],
            previous_delta: w[2],
        }
    }

    /// The wire triple.
    pub fn words(&self) -> [u32; 3] {
        [self.init_seq, self.delta, self.previous_delta]
    }

    /// Whether this adjustment changes nothing.
    #[inline]
    pub fn is_identity(&self) -> bool {
        self.delta == 0 && self.previous_delta == 0
    }

    /// The adjusted sequence number of a segment of this direction
    /// (`vs_fix_seq`).
    #[inline]
    pub fn fix_seq(&self, seq: u32) -> u32 {
        if seq_after(seq, self.init_seq) {
            seq.wrapping_add(self.delta)
        } else {
            seq.wrapping_add(self.previous_delta)
        }
    }

    /// The original-space value of an acknowledgement number (or SACK
    /// edge) that the peer sent about this direction's stream
    /// (`vs_fix_ack_seq`): the peer acknowledges adjusted space, so the
    /// boundary is `init_seq + delta`.
    #[inline]
    pub fn fix_ack(&self, ack: u32) -> u32 {
        if seq_after(ack, self.init_seq.wrapping_add(self.delta)) {
            ack.wrapping_sub(self.delta)
        } else {
            ack.wrapping_sub(self.previous_delta)
        }
    }

    /// Records that the segment starting at `seq` (original space) grew
    /// by `diff` bytes (negative: shrank) from here on (`vs_seq_update`).
    /// A rewrite of a segment that is not newer than the last one (a
    /// retransmission) changes nothing.
    pub fn update(&mut self, seq: u32, diff: i32) {
        if self.init_seq == 0 || seq_after(seq, self.init_seq) {
            self.previous_delta = self.delta;
            self.delta = self.delta.wrapping_add(diff as u32);
            self.init_seq = seq;
        }
    }
}

/// Both directions of a connection's adjustment (IPVS's
/// `in_seq`/`out_seq`; the layout of the sync SEQ_DATA option).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnSeq {
    /// Client → real server stream.
    pub in_seq: SeqAdj,
    /// Real server → client stream.
    pub out_seq: SeqAdj,
}

impl ConnSeq {
    /// Whether neither direction is adjusted.
    #[inline]
    pub fn is_identity(&self) -> bool {
        self.in_seq.is_identity() && self.out_seq.is_identity()
    }
}

/// What one adjustment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqAdjReport {
    /// SACK blocks whose edges were shifted.
    pub sack_blocks: u8,
    /// The option list was malformed (length byte impossible, or a SACK
    /// option of a length that is not 2 + 8n): the walk stopped there.
    pub bad_options: bool,
}

/// Why a segment could not be adjusted at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqAdjError {
    /// Shorter than its TCP header (fixed part or data offset).
    Truncated,
}

/// Adjusts a client → real-server segment (`tcp`: the TCP header and
/// payload, checksum valid): sequence by `c.in_seq`, acknowledgement and
/// SACK edges by `c.out_seq`.
#[inline]
pub fn adjust_in(tcp: &mut [u8], c: &ConnSeq) -> Result<SeqAdjReport, SeqAdjError> {
    adjust(tcp, &c.in_seq, &c.out_seq)
}

/// Adjusts a real-server → client segment: sequence by `c.out_seq`,
/// acknowledgement and SACK edges by `c.in_seq`.
#[inline]
pub fn adjust_out(tcp: &mut [u8], c: &ConnSeq) -> Result<SeqAdjReport, SeqAdjError> {
    adjust(tcp, &c.out_seq, &c.in_seq)
}

/// Adjusts the TCP segment of a parsed packet in place: the step the
/// forwarding path runs for a connection with an adjustment, before the
/// NAT rewrite (the two touch different words; both keep the checksum
/// by incremental updates, so the order does not matter). `inbound`:
/// client → real server. `None` when the packet holds no adjustable TCP
/// header (not TCP, a non-first fragment, truncated): left as it is.
pub fn adjust_packet<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    c: &ConnSeq,
    inbound: bool,
) -> Option<SeqAdjReport> {
    if meta.l4_proto != crate::flow::IPPROTO_TCP || meta.is_non_first_fragment() {
        return None;
    }
    let start = usize::from(meta.l4_offset);
    let end = start.checked_add(usize::from(meta.l4_len))?;
    let l4 = buf.data_mut().get_mut(start..end)?;
    let r = if inbound {
        adjust_in(l4, c)
    } else {
        adjust_out(l4, c)
    };
    r.ok()
}

fn get32(b: &[u8], at: usize) -> Option<[u8; 4]> {
    b.get(at..at.checked_add(4)?)?.try_into().ok()
}

/// Replaces the 32-bit word at `at` through `f` and folds the change into
/// `csum`. `at + 4` is within `b` (callers check).
fn rewrite32(b: &mut [u8], at: usize, csum: &mut u16, f: impl Fn(u32) -> u32) {
    let Some(old) = get32(b, at) else { return };
    let new = f(u32::from_be_bytes(old)).to_be_bytes();
    if let Some(w) = b.get_mut(at..at + 4) {
        w.copy_from_slice(&new);
        *csum = checksum::update32(*csum, old, new);
    }
}

/// The shared body: this direction's `seq` adjustment, and `ack` the
/// adjustment of the stream the acknowledgement refers to.
fn adjust(tcp: &mut [u8], seq: &SeqAdj, ack: &SeqAdj) -> Result<SeqAdjReport, SeqAdjError> {
    let hlen = {
        let p = tcp::Packet::new_checked(&*tcp).map_err(|_| SeqAdjError::Truncated)?;
        if p.header_len() > tcp.len() {
            return Err(SeqAdjError::Truncated);
        }
        (p.header_len(), p.flags(), p.checksum())
    };
    let (hlen, flags, mut csum) = hlen;
    let mut report = SeqAdjReport::default();
    if !seq.is_identity() {
        rewrite32(tcp, 4, &mut csum, |v| seq.fix_seq(v));
    }
    if ack.is_identity() || flags & tcp::flags::ACK == 0 {
        put_csum(tcp, csum);
        return Ok(report);
    }
    rewrite32(tcp, 8, &mut csum, |v| ack.fix_ack(v));
    // Walk the options for SACK blocks.
    let mut p = tcp::HEADER_LEN;
    while p < hlen {
        let Some(&kind) = tcp.get(p) else { break };
        match kind {
            opt::EOL => break,
            opt::NOP => {
                p += 1;
                continue;
            }
            _ => {}
        }
        let len = match tcp.get(p + 1) {
            Some(&l) if l >= 2 && p + usize::from(l) <= hlen => usize::from(l),
            _ => {
                report.bad_options = true;
                break;
            }
        };
        if kind == opt::SACK {
            if (len - 2) % 8 != 0 || len == 2 {
                report.bad_options = true;
                break;
            }
            let mut e = p + 2;
            while e < p + len {
                rewrite32(tcp, e, &mut csum, |v| ack.fix_ack(v));
                rewrite32(tcp, e + 4, &mut csum, |v| ack.fix_ack(v));
                report.sack_blocks = report.sack_blocks.saturating_add(1);
                e += 8;
            }
        }
        p += len;
    }
    put_csum(tcp, csum);
    Ok(report)
}

fn put_csum(tcp: &mut [u8], csum: u16) {
    if let Some(c) = tcp.get_mut(tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2) {
        c.copy_from_slice(&csum.to_be_bytes());
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};

    const C4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const R4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 20);

    /// A TCP segment over IPv4 built by etherparse (the independent
    /// oracle), returned as the whole IP packet.
    fn seg4(seq: u32, ack: Option<u32>, opts: &[TcpOptionElement], payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ipv4(C4.octets(), R4.octets(), 64).tcp(40000, 80, seq, 65535);
        if let Some(a) = ack {
            b = b.ack(a);
        }
        let b = b.options(opts).expect("options fit");
        let mut out = Vec::new();
        b.write(&mut out, payload).expect("build");
        out
    }

    fn seg6(seq: u32, ack: u32, opts: &[TcpOptionElement]) -> Vec<u8> {
        let c: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let r: Ipv6Addr = "2001:db8:1::20".parse().unwrap();
        let b = PacketBuilder::ipv6(c.octets(), r.octets(), 64)
            .tcp(40000, 80, seq, 65535)
            .ack(ack)
            .options(opts)
            .expect("options fit");
        let mut out = Vec::new();
        b.write(&mut out, b"hello").expect("build");
        out
    }

    /// (seq, ack, SACK blocks, timestamps) as etherparse reads them, after
    /// checking the TCP checksum independently.
    #[allow(clippy::type_complexity)]
    fn read(pkt: &[u8]) -> (u32, u32, Vec<(u32, u32)>, Option<(u32, u32)>) {
        let s = SlicedPacket::from_ip(pkt).expect("parse");
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("not tcp")
        };
        let want = match s.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => t
                .calc_checksum_ipv4(ip.header().source(), ip.header().destination())
                .unwrap(),
            Some(etherparse::NetSlice::Ipv6(ip)) => t
                .calc_checksum_ipv6(ip.header().source(), ip.header().destination())
                .unwrap(),
            _ => panic!("no ip"),
        };
        assert_eq!(t.checksum(), want, "checksum after adjustment");
        let mut sack = Vec::new();
        let mut ts = None;
        for o in t.options_iterator() {
            match o.expect("options") {
                TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                    sack.push(first);
                    sack.extend(rest.iter().flatten().copied());
                }
                TcpOptionElement::Timestamp(a, b) => ts = Some((a, b)),
                _ => {}
            }
        }
        (t.sequence_number(), t.acknowledgment_number(), sack, ts)
    }

    fn l4(pkt: &mut [u8]) -> &mut [u8] {
        let off = if pkt[0] >> 4 == 4 { 20 } else { 40 };
        &mut pkt[off..]
    }

    fn conn(in_delta: u32, out_delta: u32) -> ConnSeq {
        ConnSeq {
            in_seq: SeqAdj {
                init_seq: 1000,
                delta: in_delta,
                previous_delta: 0,
            },
            out_seq: SeqAdj {
                init_seq: 5000,
                delta: out_delta,
                previous_delta: 0,
            },
        }
    }

    #[test]
    fn inbound_shifts_seq_by_in_and_ack_by_out() {
        // The client's stream grew by 28 bytes (a PP header) after 1000;
        // the server's stream is 16 bytes ahead of what the client sees.
        let c = conn(28, 16);
        let mut p = seg4(2000, Some(7016), &[], b"data");
        let r = adjust_in(l4(&mut p), &c).unwrap();
        assert_eq!(r, SeqAdjReport::default());
        let (seq, ack, _, _) = read(&p);
        assert_eq!((seq, ack), (2028, 7000));
    }

    #[test]
    fn outbound_shifts_seq_by_out_and_ack_by_in() {
        let c = conn(28, 16);
        let mut p = seg4(7000, Some(2028), &[], b"reply");
        adjust_out(l4(&mut p), &c).unwrap();
        let (seq, ack, _, _) = read(&p);
        assert_eq!((seq, ack), (7016, 2000));
    }

    #[test]
    fn in_then_out_round_trips_through_the_peer() {
        // What the server acknowledges of an adjusted inbound segment maps
        // back to the client's own numbering.
        let c = conn(0x1234_5678, 0x9abc_def0);
        for seq in [0u32, 1001, 0x7fff_ffff, 0xffff_fff0] {
            let fixed = c.in_seq.fix_seq(seq);
            if seq_after(seq, c.in_seq.init_seq) {
                assert_eq!(c.in_seq.fix_ack(fixed), seq, "seq {seq:#x}");
            }
        }
    }

    #[test]
    fn retransmission_before_init_seq_uses_previous_delta() {
        let mut a = SeqAdj::default();
        a.update(1000, 28); // first rewrite: +28 from 1000 on
        a.update(3000, 10); // a later segment grew by 10 more
        assert_eq!(
            a,
            SeqAdj {
                init_seq: 3000,
                delta: 38,
                previous_delta: 28
            }
        );
        // A retransmission of the segment at 2000 (before 3000) keeps +28.
        assert_eq!(a.fix_seq(2000), 2028);
        assert_eq!(a.fix_seq(3000), 3028); // at init_seq: not after it
        assert_eq!(a.fix_seq(3001), 3039);
        // Acks: boundary in adjusted space is init_seq + delta.
        assert_eq!(a.fix_ack(3038), 3010);
        assert_eq!(a.fix_ack(3039), 3001);
        // Re-rewriting the older segment does not move the state.
        let before = a;
        a.update(2000, 5);
        assert_eq!(a, before);
    }

    #[test]
    fn wrap_around_of_the_sequence_space() {
        let c = ConnSeq {
            in_seq: SeqAdj {
                init_seq: 0xffff_ff00,
                delta: 0x200,
                previous_delta: 0,
            },
            out_seq: SeqAdj {
                init_seq: 0xffff_fff0,
                delta: (-0x20i32) as u32,
                previous_delta: 0,
            },
        };
        // seq 0xffff_ff80 + 0x200 wraps to 0x180; ack 0x10 (after the
        // out boundary 0xffff_ffd0) minus -0x20 becomes 0x30.
        let mut p = seg4(0xffff_ff80, Some(0x10), &[], b"x");
        adjust_in(l4(&mut p), &c).unwrap();
        let (seq, ack, _, _) = read(&p);
        assert_eq!((seq, ack), (0x180, 0x30));
        // A segment just past zero is still "after" 0xffff_ff00.
        assert_eq!(c.in_seq.fix_seq(5), 0x205);
        // Negative delta the other way: server seq 0x8 becomes 0xffff_ffe8.
        let mut p = seg4(0x8, Some(0x180), &[], b"y");
        adjust_out(l4(&mut p), &c).unwrap();
        let (seq, ack, _, _) = read(&p);
        assert_eq!((seq, ack), (0xffff_ffe8, 0xffff_ff80));
    }

    #[test]
    fn sack_edges_follow_the_ack_and_timestamps_stay() {
        let c = conn(0, 100);
        let opts = [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(0xdead_beef, 0x0102_0304),
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(
                (6200, 6300),
                [Some((6400, 6500)), Some((0x1_0000, 0x1_0100)), None],
            ),
        ];
        let mut p = seg4(2000, Some(6100), &opts, b"");
        let r = adjust_in(l4(&mut p), &c).unwrap();
        assert_eq!(
            r,
            SeqAdjReport {
                sack_blocks: 3,
                bad_options: false
            }
        );
        let (seq, ack, sack, ts) = read(&p);
        assert_eq!((seq, ack), (2000, 6000));
        assert_eq!(sack, vec![(6100, 6200), (6300, 6400), (0xff9c, 0x1_009c)]);
        assert_eq!(ts, Some((0xdead_beef, 0x0102_0304)));
    }

    #[test]
    fn sack_over_ipv6_with_four_blocks() {
        let c = conn(0, 16);
        let opts = [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::SelectiveAcknowledgement(
                (5100, 5200),
                [Some((5300, 5400)), Some((5500, 5600)), Some((5700, 5800))],
            ),
        ];
        let mut p = seg6(1, 5050, &opts);
        let r = adjust_in(l4(&mut p), &c).unwrap();
        assert_eq!(r.sack_blocks, 4);
        let (_, ack, sack, _) = read(&p);
        assert_eq!(ack, 5034);
        assert_eq!(
            sack,
            vec![(5084, 5184), (5284, 5384), (5484, 5584), (5684, 5784)]
        );
    }

    #[test]
    fn exact_bytes_of_an_adjusted_segment() {
        // Golden: the fixed header before and after, byte for byte.
        let c = conn(28, 0);
        let mut p = seg4(0x0000_1000, Some(0x0000_2000), &[], b"");
        let before = p[20..40].to_vec();
        adjust_in(l4(&mut p), &c).unwrap();
        let mut want = before.clone();
        want[4..8].copy_from_slice(&0x0000_101cu32.to_be_bytes());
        // Checksum: the old one plus 0x1c (the only changed word grew by
        // 0x1c), in ones' complement.
        let old = u16::from_be_bytes([before[16], before[17]]);
        let new = !fold_add(!old, 0x1c);
        want[16..18].copy_from_slice(&new.to_be_bytes());
        assert_eq!(&p[20..40], &want[..]);
        read(&p);
    }

    fn fold_add(a: u16, b: u16) -> u16 {
        let s = u32::from(a) + u32::from(b);
        ((s & 0xffff) + (s >> 16)) as u16
    }

    #[test]
    fn no_ack_flag_leaves_the_ack_field() {
        let c = conn(28, 16);
        let mut p = seg4(2000, None, &[], b"");
        adjust_in(l4(&mut p), &c).unwrap();
        let (seq, ack, _, _) = read(&p);
        assert_eq!((seq, ack), (2028, 0));
    }

    #[test]
    fn malformed_options_are_reported_and_never_panic() {
        let c = conn(0, 100);
        // SACK with length 7 (not 2 + 8n), then a zero-length option.
        let mut p = seg4(2000, Some(6100), &[], b"");
        let mut t = p[20..].to_vec();
        t[12] = 0x80; // data offset 32
        t.extend_from_slice(&[5, 7, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0]);
        t.truncate(32);
        let r = adjust_in(&mut t, &c).unwrap();
        assert!(r.bad_options);
        assert_eq!(r.sack_blocks, 0);
        // Truncated headers are refused.
        assert_eq!(adjust_in(&mut t[..19], &c), Err(SeqAdjError::Truncated));
        assert_eq!(adjust_in(&mut t[..24], &c), Err(SeqAdjError::Truncated));
        // Any bytes at all: no panic.
        for n in 0..64u8 {
            let mut junk: Vec<u8> = (0..60u8)
                .map(|i| i.wrapping_mul(n).wrapping_add(n))
                .collect();
            junk[12] = 0xf0;
            let _ = adjust_in(&mut junk, &c);
            let _ = adjust_out(&mut junk[..(usize::from(n) % 60)], &c);
        }
        drop(p.drain(..));
    }

    #[test]
    fn identity_changes_nothing() {
        let c = ConnSeq::default();
        assert!(c.is_identity());
        let mut p = seg4(1, Some(2), &[], b"z");
        let before = p.clone();
        adjust_in(l4(&mut p), &c).unwrap();
        adjust_out(l4(&mut p), &c).unwrap();
        assert_eq!(p, before);
    }
}
