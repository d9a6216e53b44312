//! TOA ("TCP Option Address"): the client's address and port carried to
//! the real server as TCP option 254, so that a FullNAT real server
//! running DPVS's `toa` kernel module sees the true client in
//! `getpeername()` although the packets come from rvs's local address.
//!
//! Wire format, as DPVS's module (`kernel/linux/toa/toa.h`) reads it:
//!
//! | family | kind | length | then |
//! |---|---|---|---|
//! | IPv4 | 254 | 8  | port (2 bytes, network order), IPv4 address (4) |
//! | IPv6 | 254 | 20 | port (2 bytes, network order), IPv6 address (16) |
//!
//! Which segments carry it (DPVS's rule, `tcp_fnat_in_handler`): every
//! client → real-server segment without SYN or RST whose acknowledgement
//! number is the real server's initial sequence number + 1, i.e. the ACK
//! completing the handshake and the client's data segments until the
//! client acknowledges data from the real server. The server's ISN is
//! learnt from its SYN-ACK into a small per-worker direct-mapped cache
//! ([`ToaState`], keyed by connection record); a connection whose entry
//! was taken by a later one (counted as `evicted`) stops getting the
//! option, as does one installed by sync (no SYN-ACK seen).
//!
//! The option is placed first, right after the fixed 20-byte header, and
//! the existing options follow unchanged (an end-of-list option among
//! them cannot hide it; alignment is kept, both lengths are multiples of
//! 4). The headers (Ethernet, IP, fixed TCP) move into the buffer's
//! headroom; the payload does not move. IPv4 total length / IPv6 payload
//! length, the data offset, the IPv4 header checksum and the TCP checksum
//! (pseudo-header length, data-offset word, the option's words) are
//! updated incrementally and exactly. A segment whose options leave no
//! room (more than 40 − length bytes already) goes without and is counted
//! (`no_room`), as is one the headroom cannot hold.
//!
//! MSS: the SYN towards the real server and its SYN-ACK back to the
//! client have their MSS option lowered by the option's length (8 or 20),
//! so that the client's full-sized segments plus the option still fit the
//! real server's MTU (DPVS lowers the SYN's; rvs does both). A SYN without
//! an MSS option is left alone (the default MSS, 536 / 1220, leaves room).
//!
//! Nothing here allocates or panics; a packet that cannot take the option
//! is forwarded without it.

#![deny(clippy::indexing_slicing)]

use super::{Endpoint, Mode, Translation};
use crate::buf::PacketBuf;
use crate::conn::FwdMode;
use crate::parse::{PacketMeta, L3};
use crate::snapshot::Snapshot;
use crate::stats::WorkerCounters;
use crate::wire::{checksum, ip_proto, tcp};
use core::net::IpAddr;

/// TCP option kind of TOA (DPVS's `TCPOPT_TOA`).
pub const TOA_KIND: u8 = 254;
/// Option length for an IPv4 client (`TCPOLEN_IP4_TOA`).
pub const TOA_LEN_V4: usize = 8;
/// Option length for an IPv6 client (`TCPOLEN_IP6_TOA`).
pub const TOA_LEN_V6: usize = 20;
/// Most bytes of TCP options a header holds.
const MAX_OPTIONS: usize = 40;
/// TCP option kind of MSS.
const OPT_MSS: u8 = 2;
/// Entries of the per-worker cache of connections in their TOA phase
/// (8 bytes each).
pub const TOA_CACHE_SLOTS: usize = 8192;

/// Why a segment went without the option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToaError {
    /// Not a TCP segment with its header (or a fragment), or the meta does
    /// not describe the buffer.
    NotApplicable,
    /// The header's options leave less room than the option needs, or the
    /// IP packet would exceed 65 535 bytes.
    NoRoom,
    /// The buffer has not the headroom to grow.
    NoHeadroom,
}

/// The option's bytes for `client` (its length is the slice's).
pub fn toa_option(client: Endpoint, out: &mut [u8; TOA_LEN_V6]) -> usize {
    out[0] = TOA_KIND;
    out[2..4].copy_from_slice(&client.port.to_be_bytes());
    match client.addr {
        IpAddr::V4(a) => {
            out[1] = TOA_LEN_V4 as u8;
            out[4..8].copy_from_slice(&a.octets());
            TOA_LEN_V4
        }
        IpAddr::V6(a) => {
            out[1] = TOA_LEN_V6 as u8;
            out[4..20].copy_from_slice(&a.octets());
            TOA_LEN_V6
        }
    }
}

/// The option length for a packet of this family.
#[inline]
pub fn toa_len(meta: &PacketMeta) -> usize {
    if meta.l3 == L3::Ipv6 {
        TOA_LEN_V6
    } else {
        TOA_LEN_V4
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(w) = b.get_mut(at..at + 2) {
        w.copy_from_slice(&v.to_be_bytes());
    }
}

/// Inserts the TOA option carrying `client` into the TCP segment of the
/// parsed frame in `buf`, and returns the meta of the grown frame. The
/// packet is unchanged on error.
pub fn add_toa<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    client: Endpoint,
) -> Result<PacketMeta, ToaError> {
    if meta.l4_proto != ip_proto::TCP || !meta.has_l4 || meta.is_fragment() {
        return Err(ToaError::NotApplicable);
    }
    let mut opt = [0u8; TOA_LEN_V6];
    let olen = toa_option(client, &mut opt);
    let opt = opt.get(..olen).ok_or(ToaError::NotApplicable)?;
    let l3 = usize::from(meta.l3_offset);
    let l4 = usize::from(meta.l4_offset);
    let ip_end = l4 + usize::from(meta.l4_len);
    let data = buf.data();
    if ip_end > data.len() || l4 + tcp::HEADER_LEN > ip_end || l3 >= l4 {
        return Err(ToaError::NotApplicable);
    }
    let doff_word = u16_at(data, l4 + 12).ok_or(ToaError::NotApplicable)?;
    let hlen = usize::from(doff_word >> 12) * 4;
    if hlen < tcp::HEADER_LEN || l4 + hlen > ip_end {
        return Err(ToaError::NotApplicable);
    }
    if hlen - tcp::HEADER_LEN + olen > MAX_OPTIONS {
        return Err(ToaError::NoRoom);
    }
    let olen16 = olen as u16;
    let (len_at, old_len) = match meta.l3 {
        L3::Ipv4 => (l3 + 2, u16_at(data, l3 + 2)),
        L3::Ipv6 => (l3 + 4, u16_at(data, l3 + 4)),
        L3::Arp => return Err(ToaError::NotApplicable),
    };
    let old_len = old_len.ok_or(ToaError::NotApplicable)?;
    let new_len = old_len.checked_add(olen16).ok_or(ToaError::NoRoom)?;
    let l4_len = meta.l4_len;
    let new_l4_len = l4_len.checked_add(olen16).ok_or(ToaError::NoRoom)?;
    if buf.headroom() < olen {
        return Err(ToaError::NoHeadroom);
    }
    let fixed_end = l4 + tcp::HEADER_LEN;
    if buf.prepend(olen).is_none() {
        return Err(ToaError::NoHeadroom);
    }
    let d = buf.data_mut();
    // Ethernet, IP and the fixed TCP header move `olen` bytes forward;
    // the gap they leave is the option, then the old options and payload
    // stay where they were.
    d.copy_within(olen..olen + fixed_end, 0);
    if let Some(gap) = d.get_mut(fixed_end..fixed_end + olen) {
        gap.copy_from_slice(opt);
    }
    // IP length.
    put16(d, len_at, new_len);
    if meta.l3 == L3::Ipv4 {
        if let Some(c) = u16_at(d, l3 + 10) {
            put16(d, l3 + 10, checksum::update16(c, old_len, new_len));
        }
    }
    // TCP: data offset, checksum.
    let new_doff = doff_word.wrapping_add((olen16 / 4) << 12);
    put16(d, l4 + 12, new_doff);
    if let Some(mut c) = u16_at(d, l4 + tcp::CHECKSUM_OFFSET) {
        c = checksum::update16(c, doff_word, new_doff);
        // The pseudo-header's TCP length (IPv6: the low half of 32 bits).
        c = checksum::update16(c, l4_len, new_l4_len);
        let zeros = [0u8; TOA_LEN_V6];
        c = checksum::update(c, zeros.get(..olen).unwrap_or(&[]), opt);
        put16(d, l4 + tcp::CHECKSUM_OFFSET, c);
    }
    let mut m = *meta;
    m.ip_payload_len = meta.ip_payload_len.saturating_add(olen16);
    m.l4_len = new_l4_len;
    Ok(m)
}

/// Lowers the MSS option of a SYN (or SYN-ACK) in the parsed frame by
/// `by` bytes (not below 536), with the TCP checksum updated. Returns the
/// (old, new) MSS, or `None` when there is no MSS option (or no TCP
/// header) and nothing changed.
pub fn clamp_mss<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    by: u16,
) -> Option<(u16, u16)> {
    if meta.l4_proto != ip_proto::TCP || !meta.has_l4 || meta.is_non_first_fragment() {
        return None;
    }
    let l4 = usize::from(meta.l4_offset);
    let end = l4.checked_add(usize::from(meta.l4_len))?;
    let seg = buf.data_mut().get_mut(l4..end)?;
    let hlen = usize::from(*seg.get(12)? >> 4) * 4;
    if hlen < tcp::HEADER_LEN || hlen > seg.len() {
        return None;
    }
    let mut p = tcp::HEADER_LEN;
    while p < hlen {
        let kind = *seg.get(p)?;
        match kind {
            0 => return None,
            1 => {
                p += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*seg.get(p + 1)?);
        if len < 2 || p + len > hlen {
            return None;
        }
        if kind == OPT_MSS && len == 4 {
            let at = p + 2;
            let old = u16_at(seg, at)?;
            let new = old.saturating_sub(by).max(536).min(old);
            if new == old {
                return Some((old, old));
            }
            // The field may sit at an odd offset: update over the aligned
            // 16-bit words that hold it.
            let a = at & !1;
            let b = (at + 3) & !1;
            let mut before = [0u8; 4];
            let w = b - a;
            before.get_mut(..w)?.copy_from_slice(seg.get(a..b)?);
            put16(seg, at, new);
            let mut after = [0u8; 4];
            after.get_mut(..w)?.copy_from_slice(seg.get(a..b)?);
            let c = u16_at(seg, tcp::CHECKSUM_OFFSET)?;
            let c = checksum::update(c, before.get(..w)?, after.get(..w)?);
            put16(seg, tcp::CHECKSUM_OFFSET, c);
            return Some((old, new));
        }
        p += len;
    }
    None
}

/// The TCP acknowledgement and sequence numbers of the parsed segment.
fn seq_ack<B: PacketBuf + ?Sized>(buf: &B, meta: &PacketMeta) -> Option<(u32, u32)> {
    let l4 = usize::from(meta.l4_offset);
    let d = buf.data();
    let w = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
    };
    Some((w(l4 + 4)?, w(l4 + 8)?))
}

/// What a worker keeps for TOA: whether any service of the running
/// snapshot has it, and the direct-mapped cache of connections whose
/// client has not yet acknowledged data from the real server (record
/// index → the real server's ISN + 1). Allocated once, when the pipeline
/// is built.
#[derive(Debug)]
pub struct ToaState {
    enabled: bool,
    /// (key: record index and family, + 1; ISN + 1); key 0 is empty.
    slots: Box<[(u32, u32)]>,
}

impl Default for ToaState {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`ToaState::established`] did to one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToaReport {
    /// The option was added: the frame grew, here is its meta.
    pub added: Option<PacketMeta>,
    /// The segment should have carried it and did not: no room.
    pub no_room: bool,
    /// A SYN-ACK's MSS was lowered.
    pub mss_clamped: bool,
    /// Learning this SYN-ACK took the cache entry of another connection
    /// still in its TOA phase.
    pub evicted: bool,
}

impl ToaState {
    /// Off, with its cache allocated.
    pub fn new() -> Self {
        ToaState {
            enabled: false,
            slots: vec![(0, 0); TOA_CACHE_SLOTS].into_boxed_slice(),
        }
    }

    /// Whether any service of the running snapshot asks for TOA.
    #[inline(always)]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Set when a snapshot is installed.
    pub fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }

    #[inline]
    fn slot(&mut self, key: u32) -> Option<&mut (u32, u32)> {
        let h = (key.wrapping_mul(0x9e37_79b1) >> 19) as usize;
        self.slots.get_mut(h % TOA_CACHE_SLOTS)
    }

    /// One segment of an established FullNAT TCP connection of a TOA
    /// service, record `idx`, before its NAT rewrite: a SYN-ACK from the
    /// real server (`out`) is learnt and has its MSS lowered (as has a
    /// retransmitted SYN of the client); a client segment in the TOA phase
    /// gets the option with `client`.
    pub fn established<B: PacketBuf + ?Sized>(
        &mut self,
        buf: &mut B,
        meta: &PacketMeta,
        idx: u32,
        client: Endpoint,
        out: bool,
    ) -> ToaReport {
        let mut r = ToaReport::default();
        let f = meta.tcp_flags;
        // IPv4 and IPv6 records are numbered apart: the family is in the
        // key (0 stays "empty").
        let key = (idx << 1 | u32::from(meta.l3 == L3::Ipv6)).wrapping_add(1);
        if out {
            if f & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN | tcp::flags::ACK {
                let by = toa_len(meta) as u16;
                r.mss_clamped = clamp_mss(buf, meta, by).is_some_and(|(o, n)| n != o);
                if let (Some((seq, _)), Some(s)) = (seq_ack(buf, meta), self.slot(key)) {
                    r.evicted = s.0 != 0 && s.0 != key;
                    *s = (key, seq.wrapping_add(1));
                }
            }
            return r;
        }
        if f & (tcp::flags::SYN | tcp::flags::ACK) == tcp::flags::SYN {
            // A retransmitted SYN: lowered like the first.
            let by = toa_len(meta) as u16;
            r.mss_clamped = clamp_mss(buf, meta, by).is_some_and(|(o, n)| n != o);
            return r;
        }
        if f & (tcp::flags::SYN | tcp::flags::RST) != 0 || f & tcp::flags::ACK == 0 {
            return r;
        }
        let Some((_, ack)) = seq_ack(buf, meta) else {
            return r;
        };
        let Some(s) = self.slot(key) else { return r };
        if s.0 != key {
            return r;
        }
        if ack != s.1 {
            // The client acknowledged the real server's data: the TOA
            // phase is over.
            if super::seq_after(ack, s.1) {
                *s = (0, 0);
            }
            return r;
        }
        match add_toa(buf, meta, client) {
            Ok(m) => r.added = Some(m),
            Err(ToaError::NoRoom | ToaError::NoHeadroom) => r.no_room = true,
            Err(ToaError::NotApplicable) => {}
        }
        r
    }
}

/// The pipeline's hook for a packet of an established connection (called
/// only while some service has TOA; anything but TCP of a FullNAT
/// connection of a TOA service, ICMP errors included, is left alone):
/// `conn` is (its translation, service id, record index, whether it is
/// a reply). Returns the meta of the grown frame when the option was
/// added. Counts in the TOA block of [`WorkerCounters`]. Kept out of line:
/// services without TOA pay only the caller's flag test (and the path
/// without it is laid out as the likely one).
#[cold]
#[inline(never)]
pub fn toa_established<B: PacketBuf + ?Sized>(
    st: &mut ToaState,
    counters: &WorkerCounters,
    snap: &Snapshot,
    buf: &mut B,
    meta: &PacketMeta,
    conn: (&Translation, u16, u32, bool),
) -> Option<PacketMeta> {
    let (t, svc, idx, out) = conn;
    if meta.l4_proto != ip_proto::TCP
        || meta.is_icmp_error()
        || t.mode != Mode::FullNat
        || !snap.service(svc).is_some_and(|s| s.toa)
    {
        return None;
    }
    let r = st.established(buf, meta, idx, t.client, out);
    if r.mss_clamped {
        counters.toa_mss_clamped.inc();
    }
    if r.evicted {
        counters.toa_evicted.inc();
    }
    if r.no_room {
        counters.toa_no_room.inc();
    }
    if r.added.is_some() {
        counters.toa_added.inc();
    }
    r.added
}

/// The pipeline's hook for the packet that created a connection of a TOA
/// service (the caller tests `Service::toa`): the client's SYN of a
/// FullNAT connection has its MSS lowered by the option's length.
#[inline(never)]
pub fn toa_new_conn<B: PacketBuf + ?Sized>(
    counters: &WorkerCounters,
    fwd: FwdMode,
    buf: &mut B,
    meta: &PacketMeta,
) {
    if fwd != FwdMode::FullNat
        || meta.tcp_flags & (tcp::flags::SYN | tcp::flags::ACK) != tcp::flags::SYN
    {
        return;
    }
    if clamp_mss(buf, meta, toa_len(meta) as u16).is_some_and(|(o, n)| n != o) {
        counters.toa_mss_clamped.inc();
    }
}

#[cfg(test)]
// Tests index fixtures whose lengths they set themselves.
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use crate::parse::parse;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use etherparse::{PacketBuilder, SlicedPacket, TcpOptionElement, TransportSlice};

    const C4: [u8; 4] = [198, 18, 0, 10];
    const R4: [u8; 4] = [198, 19, 0, 20];

    fn frame4(flags: u8, opts: &[TcpOptionElement], payload: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(C4, R4, 64)
            .tcp(40000, 80, 1000, 65535);
        if flags & tcp::flags::SYN != 0 {
            b = b.syn();
        }
        if flags & tcp::flags::ACK != 0 {
            b = b.ack(5001);
        }
        let b = b.options(opts).expect("fit");
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    fn frame6(flags: u8, opts: &[TcpOptionElement], payload: &[u8]) -> Vec<u8> {
        let c: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let r: Ipv6Addr = "2001:db8:1::20".parse().unwrap();
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv6(c.octets(), r.octets(), 64)
            .tcp(40000, 80, 1000, 65535);
        if flags & tcp::flags::SYN != 0 {
            b = b.syn();
        }
        if flags & tcp::flags::ACK != 0 {
            b = b.ack(5001);
        }
        let b = b.options(opts).expect("fit");
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    /// Checks every length and checksum of the frame independently
    /// (etherparse and a full recompute) and returns the TCP options and
    /// payload.
    fn check(frame: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let s = SlicedPacket::from_ethernet(frame).expect("parse");
        let Some(TransportSlice::Tcp(t)) = s.transport else {
            panic!("not tcp")
        };
        let ok = match s.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => {
                let h = ip.header();
                assert_eq!(
                    h.to_header().calc_header_checksum(),
                    h.header_checksum(),
                    "ipv4 header checksum"
                );
                t.calc_checksum_ipv4(h.source(), h.destination()).unwrap()
            }
            Some(etherparse::NetSlice::Ipv6(ip)) => t
                .calc_checksum_ipv6(ip.header().source(), ip.header().destination())
                .unwrap(),
            _ => panic!("not ip"),
        };
        assert_eq!(ok, t.checksum(), "tcp checksum");
        (t.options().to_vec(), t.payload().to_vec())
    }

    fn c4() -> Endpoint {
        Endpoint::new(IpAddr::V4(Ipv4Addr::new(198, 18, 7, 9)), 0xa1b2)
    }

    fn c6() -> Endpoint {
        Endpoint::new("2001:db8:77::9".parse().unwrap(), 0xa1b2)
    }

    #[test]
    fn v4_ack_without_options_gets_exact_bytes() {
        let f = frame4(tcp::flags::ACK, &[], b"");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        let m2 = add_toa(&mut b, &m, c4()).unwrap();
        let out = b.data().to_vec();
        assert_eq!(out.len(), f.len() + 8);
        // Golden bytes: Ethernet and IP (total length 48, checksum
        // updated), TCP with data offset 7 and the option first.
        let mut want = f[..14].to_vec();
        let mut ip = f[14..34].to_vec();
        ip[2..4].copy_from_slice(&48u16.to_be_bytes());
        let mut h = etherparse::Ipv4Header::from_slice(&ip).unwrap().0;
        h.header_checksum = h.calc_header_checksum();
        want.extend_from_slice(&h.to_bytes());
        let mut t = f[34..54].to_vec();
        t[12] = 0x70;
        t.extend_from_slice(&[254, 8, 0xa1, 0xb2, 198, 18, 7, 9]);
        let ck = checksum::l4_checksum_v4(C4.into(), R4.into(), 6, &{
            let mut z = t.clone();
            z[16] = 0;
            z[17] = 0;
            z
        });
        t[16..18].copy_from_slice(&ck.to_be_bytes());
        want.extend_from_slice(&t);
        assert_eq!(out, want);
        let (opts, payload) = check(&out);
        assert_eq!(opts, [254, 8, 0xa1, 0xb2, 198, 18, 7, 9]);
        assert!(payload.is_empty());
        // The returned meta is the parser's view of the new frame.
        assert_eq!(m2, parse(&out).unwrap());
    }

    #[test]
    fn v4_data_with_timestamps_keeps_options_and_payload() {
        let opts = [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(0x01020304, 0x05060708),
        ];
        let f = frame4(tcp::flags::ACK, &opts, b"GET / HTTP/1.0\r\n\r\n");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        let m2 = add_toa(&mut b, &m, c4()).unwrap();
        let (o, p) = check(b.data());
        assert_eq!(
            o,
            [254, 8, 0xa1, 0xb2, 198, 18, 7, 9, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(p, b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(m2, parse(b.data()).unwrap());
    }

    #[test]
    fn v6_gets_the_20_byte_variant() {
        let opts = [
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(7, 9),
        ];
        let f = frame6(tcp::flags::ACK, &opts, b"hello");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        let m2 = add_toa(&mut b, &m, c6()).unwrap();
        let out = b.data().to_vec();
        assert_eq!(out.len(), f.len() + 20);
        // IPv6 payload length: 20 + 12 + 5 + 20.
        assert_eq!(&out[18..20], &57u16.to_be_bytes());
        let (o, p) = check(&out);
        let mut want = vec![254, 20, 0xa1, 0xb2];
        want.extend_from_slice(&"2001:db8:77::9".parse::<Ipv6Addr>().unwrap().octets());
        want.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
        assert_eq!(o, want);
        assert_eq!(p, b"hello");
        assert_eq!(m2, parse(&out).unwrap());
    }

    #[test]
    fn full_option_space_is_refused_untouched() {
        // 36 bytes of options: 4 left, less than 8.
        let opts = [
            TcpOptionElement::Timestamp(1, 2),
            TcpOptionElement::Timestamp(3, 4),
            TcpOptionElement::Timestamp(5, 6),
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
        ];
        let f = frame4(tcp::flags::ACK, &opts, b"x");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(add_toa(&mut b, &m, c4()), Err(ToaError::NoRoom));
        assert_eq!(b.data(), &f[..]);
        // 32 bytes: exactly 8 left for IPv4, too few for IPv6.
        let opts = &opts[..5];
        let f = frame4(tcp::flags::ACK, opts, b"x");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        add_toa(&mut b, &m, c4()).unwrap();
        let (o, _) = check(b.data());
        assert_eq!(o.len(), 40);
        let f = frame6(tcp::flags::ACK, opts, b"x");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(add_toa(&mut b, &m, c6()), Err(ToaError::NoRoom));
        assert_eq!(b.data(), &f[..]);
    }

    #[test]
    fn no_headroom_and_non_tcp_are_refused_untouched() {
        let f = frame4(tcp::flags::ACK, &[], b"");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::from_slice(&f, 4, 64);
        assert_eq!(add_toa(&mut b, &m, c4()), Err(ToaError::NoHeadroom));
        assert_eq!(b.data(), &f[..]);
        let mut u = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(C4, R4, 64)
            .udp(1, 2)
            .write(&mut u, b"x")
            .unwrap();
        let m = parse(&u).unwrap();
        let mut b = VecBuf::new(&u);
        assert_eq!(add_toa(&mut b, &m, c4()), Err(ToaError::NotApplicable));
    }

    #[test]
    fn mss_is_lowered_at_even_and_odd_offsets() {
        for lead in [0usize, 1] {
            let mut opts = vec![TcpOptionElement::Noop; lead];
            opts.push(TcpOptionElement::MaximumSegmentSize(1460));
            let f = frame4(tcp::flags::SYN, &opts, b"");
            let m = parse(&f).unwrap();
            let mut b = VecBuf::new(&f);
            assert_eq!(clamp_mss(&mut b, &m, 8), Some((1460, 1452)));
            let (o, _) = check(b.data());
            assert_eq!(&o[lead..lead + 4], &[2, 4, 0x05, 0xac]);
        }
        // No MSS option: nothing changes.
        let f = frame6(tcp::flags::SYN, &[TcpOptionElement::Timestamp(1, 2)], b"");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(clamp_mss(&mut b, &m, 20), None);
        assert_eq!(b.data(), &f[..]);
        // Never below 536.
        let f = frame6(
            tcp::flags::SYN,
            &[TcpOptionElement::MaximumSegmentSize(540)],
            b"",
        );
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(clamp_mss(&mut b, &m, 20), Some((540, 536)));
        check(b.data());
    }

    #[test]
    fn state_follows_dpvs_rule() {
        let mut st = ToaState::new();
        // SYN-ACK from the real server, seq 5000: learnt, MSS lowered.
        let mut sa = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(R4, C4, 64)
            .tcp(80, 40000, 5000, 65535)
            .syn()
            .ack(1001)
            .options(&[TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap()
            .write(&mut sa, b"")
            .unwrap();
        let m = parse(&sa).unwrap();
        let mut b = VecBuf::new(&sa);
        let r = st.established(&mut b, &m, 3, c4(), true);
        assert!(r.mss_clamped && r.added.is_none() && !r.evicted);
        check(b.data());
        // The handshake ACK (ack 5001) and the first data get the option.
        for payload in [&b""[..], b"data"] {
            let f = frame4(tcp::flags::ACK, &[], payload);
            let m = parse(&f).unwrap();
            let mut b = VecBuf::new(&f);
            let r = st.established(&mut b, &m, 3, c4(), false);
            assert!(r.added.is_some());
            check(b.data());
            // Another record: nothing.
            let mut b = VecBuf::new(&f);
            assert_eq!(
                st.established(&mut b, &m, 4, c4(), false),
                ToaReport::default()
            );
        }
        // Acknowledging server data (ack 5001 + 10) ends the phase.
        let mut f = frame4(tcp::flags::ACK, &[], b"more");
        f[14 + 20 + 8..14 + 20 + 12].copy_from_slice(&5011u32.to_be_bytes());
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(
            st.established(&mut b, &m, 3, c4(), false),
            ToaReport::default()
        );
        let f = frame4(tcp::flags::ACK, &[], b"");
        let m = parse(&f).unwrap();
        let mut b = VecBuf::new(&f);
        assert_eq!(
            st.established(&mut b, &m, 3, c4(), false),
            ToaReport::default()
        );
        assert_eq!(b.data(), &f[..]);
    }

    #[test]
    fn families_do_not_share_cache_entries() {
        let mut st = ToaState::new();
        let c: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let r: Ipv6Addr = "2001:db8:1::20".parse().unwrap();
        for (v6, seq) in [(false, 5000u32), (true, 9000)] {
            let mut sa = Vec::new();
            let b = PacketBuilder::ethernet2([2; 6], [4; 6]);
            let b = if v6 {
                b.ipv6(r.octets(), c.octets(), 64)
            } else {
                b.ipv4(R4, C4, 64)
            };
            b.tcp(80, 40000, seq, 65535)
                .syn()
                .ack(1001)
                .write(&mut sa, b"")
                .unwrap();
            let m = parse(&sa).unwrap();
            let r = st.established(&mut VecBuf::new(&sa), &m, 3, c4(), true);
            assert!(!r.evicted, "v6={v6}");
        }
        // Record 3 of each family keeps its own ISN: the v4 ACK (5001)
        // and a v6 ACK of 9001 both get the option.
        let f = frame4(tcp::flags::ACK, &[], b"");
        let m = parse(&f).unwrap();
        assert!(st
            .established(&mut VecBuf::new(&f), &m, 3, c4(), false)
            .added
            .is_some());
        let mut f = frame6(tcp::flags::ACK, &[], b"");
        f[14 + 40 + 8..14 + 40 + 12].copy_from_slice(&9001u32.to_be_bytes());
        let m = parse(&f).unwrap();
        let r = st.established(&mut VecBuf::new(&f), &m, 3, c6(), false);
        assert!(r.added.is_some());
    }

    #[test]
    fn any_bytes_never_panic() {
        let base = frame4(
            tcp::flags::ACK,
            &[TcpOptionElement::MaximumSegmentSize(1460)],
            b"abc",
        );
        let m = parse(&base).unwrap();
        let mut st = ToaState::new();
        for i in 0..base.len() {
            for v in [0u8, 0x0f, 0xf0, 0xff] {
                let mut f = base.clone();
                f[i] = v;
                let mut b = VecBuf::from_slice(&f, 32, 0);
                let _ = add_toa(&mut b, &m, c4());
                let mut b = VecBuf::new(&f);
                let _ = clamp_mss(&mut b, &m, 8);
                let mut b = VecBuf::new(&f);
                let _ = st.established(&mut b, &m, 1, c6(), i % 2 == 0);
            }
        }
        for n in 0..base.len() {
            let mut b = VecBuf::new(&base[..n]);
            let _ = add_toa(&mut b, &m, c4());
            let _ = clamp_mss(&mut b, &m, 8);
        }
    }
}
