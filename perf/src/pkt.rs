//! Packets for the flow benchmarks: TCP over IPv4 or IPv6 built once per
//! (kind, size) as a template whose per-flow fields (low 32 bits of the
//! client address, client port, send timestamp) are zero, then patched per
//! packet with incremental one's-complement checksum updates. Plus the
//! neighbour answers the benchmark's real servers give (ARP reply, ND
//! neighbour advertisement).

use std::net::{Ipv4Addr, Ipv6Addr};

/// TCP flags.
pub const TCP_SYN: u8 = 0x02;
/// TCP ACK.
pub const TCP_ACK: u8 = 0x10;
/// TCP PSH.
pub const TCP_PSH: u8 = 0x08;

/// The client side's gateway MAC (source of every generated frame).
pub const MAC_GW: [u8; 6] = [0x02, 0, 0, 0, 0, 0xaa];

/// The MAC the benchmark's real server with this address byte answers with.
pub fn rs_mac(last: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, last]
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fam {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Fam {
    /// Ethernet + IP + TCP header bytes.
    pub fn headers(self) -> usize {
        match self {
            Fam::V4 => 14 + 20 + 20,
            Fam::V6 => 14 + 40 + 20,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            Fam::V4 => "IPv4",
            Fam::V6 => "IPv6",
        }
    }
}

/// Bytes of send timestamp at the end of every generated frame.
pub const STAMP: usize = 8;

/// Client endpoint of flow `i`: the low 32 bits of the client address
/// (added to 10.0.0.0 or 2001:db8:ff::) and the client port.
#[inline(always)]
pub fn flow_endpoint(i: u32) -> (u32, u16) {
    (1 + i / 64512, 1024 + (i % 64512) as u16)
}

/// The IPv4 client address of flow `i`.
pub fn client_v4(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0000u32.wrapping_add(flow_endpoint(i).0))
}

/// The IPv6 client address of flow `i`.
pub fn client_v6(i: u32) -> Ipv6Addr {
    let mut o = CLIENT_V6_BASE.octets();
    o[12..16].copy_from_slice(&flow_endpoint(i).0.to_be_bytes());
    Ipv6Addr::from(o)
}

const CLIENT_V4_BASE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 0);
const CLIENT_V6_BASE: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 0);

/// Sum of big-endian 16-bit words (odd tail padded with zero).
pub fn sum16(data: &[u8]) -> u32 {
    let mut s = 0u32;
    let mut it = data.chunks_exact(2);
    for w in &mut it {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [b] = it.remainder() {
        s += u32::from(*b) << 8;
    }
    s
}

/// Folds a 32-bit one's-complement sum to 16 bits.
#[inline(always)]
pub fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Sum of the four 16-bit words of a 64-bit value, folded (fits in u32).
#[inline(always)]
fn sum64(v: u64) -> u32 {
    ((v >> 48) as u32)
        + ((v >> 32) as u32 & 0xffff)
        + ((v >> 16) as u32 & 0xffff)
        + (v as u32 & 0xffff)
}

/// A frame with zeroed per-flow fields and the offsets to patch them.
#[derive(Debug, Clone)]
pub struct Template {
    /// The frame.
    pub bytes: Vec<u8>,
    fam: Fam,
    ip_csum: u16,
    tcp_csum: u16,
    tcp_off: usize,
}

impl Template {
    /// A TCP segment client(flow fields zero):0 → `dst`:`dport` with
    /// `flags`, `len` bytes on the wire (the last [`STAMP`] bytes are the
    /// timestamp), from [`MAC_GW`] to `dst_mac`.
    pub fn tcp(
        fam: Fam,
        dst: std::net::IpAddr,
        dport: u16,
        flags: u8,
        len: usize,
        dst_mac: [u8; 6],
    ) -> Self {
        let len = len.max(fam.headers() + STAMP) & !1;
        let mut f = vec![0u8; len];
        f[0..6].copy_from_slice(&dst_mac);
        f[6..12].copy_from_slice(&MAC_GW);
        let tcp_off;
        let mut pseudo;
        match (fam, dst) {
            (Fam::V4, std::net::IpAddr::V4(d)) => {
                f[12..14].copy_from_slice(&[0x08, 0x00]);
                let ip = &mut f[14..34];
                ip[0] = 0x45;
                ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
                ip[6] = 0x40; // DF
                ip[8] = 64;
                ip[9] = 6;
                ip[12..16].copy_from_slice(&CLIENT_V4_BASE.octets());
                ip[16..20].copy_from_slice(&d.octets());
                let c = !fold(sum16(ip));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                tcp_off = 34;
                pseudo = sum16(&f[26..34]) + 6 + (len - 34) as u32;
            }
            (Fam::V6, std::net::IpAddr::V6(d)) => {
                f[12..14].copy_from_slice(&[0x86, 0xdd]);
                let ip = &mut f[14..54];
                ip[0] = 0x60;
                ip[4..6].copy_from_slice(&((len - 54) as u16).to_be_bytes());
                ip[6] = 6;
                ip[7] = 64;
                ip[8..24].copy_from_slice(&CLIENT_V6_BASE.octets());
                ip[24..40].copy_from_slice(&d.octets());
                tcp_off = 54;
                pseudo = sum16(&f[22..54]) + 6 + (len - 54) as u32;
            }
            _ => panic!("template: address family mismatch"),
        }
        {
            let t = &mut f[tcp_off..];
            t[2..4].copy_from_slice(&dport.to_be_bytes());
            t[4..8].copy_from_slice(&1000u32.to_be_bytes());
            if flags & TCP_ACK != 0 {
                t[8..12].copy_from_slice(&1u32.to_be_bytes());
            }
            t[12] = 5 << 4;
            t[13] = flags;
            t[14..16].copy_from_slice(&65535u16.to_be_bytes());
            pseudo += sum16(t);
        }
        let tcp_csum = !fold(pseudo);
        f[tcp_off + 16..tcp_off + 18].copy_from_slice(&tcp_csum.to_be_bytes());
        let ip_csum = if fam == Fam::V4 {
            u16::from_be_bytes([f[24], f[25]])
        } else {
            0
        };
        Template {
            bytes: f,
            fam,
            ip_csum,
            tcp_csum,
            tcp_off,
        }
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the frame is empty (never).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Patches a copy of this template (already in `f`) for flow endpoint
    /// (`addr_lo`, `port`) and timestamp `stamp`; checksums are updated
    /// incrementally (the template's fields are zero, so each update is an
    /// addition).
    #[inline(always)]
    pub fn patch(&self, f: &mut [u8], addr_lo: u32, port: u16, stamp: u64) {
        let n = f.len();
        if n != self.bytes.len() {
            return;
        }
        let a = (addr_lo >> 16) + (addr_lo & 0xffff);
        let src_lo = match self.fam {
            Fam::V4 => 26,
            Fam::V6 => 34,
        };
        let base = match self.fam {
            Fam::V4 => u32::from_be_bytes([10, 0, 0, 0]).wrapping_add(addr_lo),
            Fam::V6 => addr_lo,
        };
        f[src_lo..src_lo + 4].copy_from_slice(&base.to_be_bytes());
        if self.fam == Fam::V4 {
            let c = !fold(u32::from(!self.ip_csum) + a);
            f[24..26].copy_from_slice(&c.to_be_bytes());
        }
        let t = self.tcp_off;
        f[t..t + 2].copy_from_slice(&port.to_be_bytes());
        f[n - STAMP..].copy_from_slice(&stamp.to_be_bytes());
        let c = !fold(u32::from(!self.tcp_csum) + a + u32::from(port) + sum64(stamp));
        f[t + 16..t + 18].copy_from_slice(&c.to_be_bytes());
    }
}

/// The timestamp at the end of a frame the generator built.
#[inline(always)]
pub fn stamp_of(f: &[u8]) -> Option<u64> {
    let n = f.len();
    let b: [u8; 8] = f.get(n.checked_sub(STAMP)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// Answers an ARP request or an ND neighbour solicitation as the real
/// server asked about (MAC [`rs_mac`] of the address's last byte). None for
/// anything else.
pub fn neigh_answer(f: &[u8]) -> Option<Vec<u8>> {
    if f.len() >= 42 && f[12..14] == [0x08, 0x06] && f[20..22] == [0, 1] {
        let target: [u8; 4] = f[38..42].try_into().ok()?;
        let mac = rs_mac(target[3]);
        let mut r = Vec::with_capacity(60);
        r.extend_from_slice(&f[22..28]); // requester's MAC
        r.extend_from_slice(&mac);
        r.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        r.extend_from_slice(&mac);
        r.extend_from_slice(&target);
        r.extend_from_slice(&f[22..32]); // requester's MAC and IP
        r.resize(60, 0);
        return Some(r);
    }
    // ICMPv6 neighbour solicitation without extension headers.
    if f.len() >= 78 && f[12..14] == [0x86, 0xdd] && f[20] == 58 && f[54] == 135 {
        let target: [u8; 16] = f[62..78].try_into().ok()?;
        let mac = rs_mac(target[15]);
        let src: [u8; 16] = f[22..38].try_into().ok()?;
        let mut r = vec![0u8; 14 + 40 + 32];
        r[0..6].copy_from_slice(&f[6..12]);
        r[6..12].copy_from_slice(&mac);
        r[12..14].copy_from_slice(&[0x86, 0xdd]);
        r[14] = 0x60;
        r[18..20].copy_from_slice(&32u16.to_be_bytes());
        r[20] = 58;
        r[21] = 255;
        r[22..38].copy_from_slice(&target);
        r[38..54].copy_from_slice(&src);
        let icmp = 54;
        r[icmp] = 136;
        r[icmp + 4] = 0x60; // solicited, override
        r[icmp + 8..icmp + 24].copy_from_slice(&target);
        r[icmp + 24] = 2; // target link-layer address
        r[icmp + 25] = 1;
        r[icmp + 26..icmp + 32].copy_from_slice(&mac);
        let s = sum16(&r[22..54]) + 32 + 58 + sum16(&r[icmp..]);
        let c = !fold(s);
        r[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
        return Some(r);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip4_ok(f: &[u8]) -> bool {
        fold(sum16(&f[14..34])) == 0xffff
    }

    fn tcp_ok(f: &[u8], fam: Fam) -> bool {
        let (t, pseudo) = match fam {
            Fam::V4 => (34, sum16(&f[26..34]) + 6 + (f.len() - 34) as u32),
            Fam::V6 => (54, sum16(&f[22..54]) + 6 + (f.len() - 54) as u32),
        };
        fold(pseudo + sum16(&f[t..])) == 0xffff
    }

    #[test]
    fn patched_frames_have_valid_checksums() {
        for (fam, dst) in [
            (Fam::V4, IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))),
            (Fam::V6, "2001:db8::100".parse().unwrap()),
        ] {
            for len in [64, 576, 1500] {
                let t = Template::tcp(fam, dst, 80, TCP_ACK, len, [2, 0, 0, 0, 0, 1]);
                assert!(tcp_ok(&t.bytes, fam));
                for i in [0u32, 1, 64511, 64512, 9_999_999] {
                    let mut f = t.bytes.clone();
                    let (a, p) = flow_endpoint(i);
                    t.patch(&mut f, a, p, 0xfedc_ba98_7654_3210 ^ u64::from(i));
                    assert!(tcp_ok(&f, fam), "{fam:?} {len} {i}");
                    if fam == Fam::V4 {
                        assert!(ip4_ok(&f));
                        assert_eq!(f[26..30], client_v4(i).octets());
                    } else {
                        assert_eq!(f[22..38], client_v6(i).octets());
                    }
                    assert_eq!(stamp_of(&f), Some(0xfedc_ba98_7654_3210 ^ u64::from(i)));
                }
            }
        }
    }

    #[test]
    fn flow_endpoints_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for i in (0..2_000_000u32).step_by(7) {
            assert!(seen.insert(flow_endpoint(i)));
        }
    }

    #[test]
    fn answers_arp_and_nd() {
        let mut req = vec![0xffu8; 6];
        req.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        req.extend_from_slice(&[
            2, 0, 0, 0, 0, 9, 198, 19, 0, 1, 0, 0, 0, 0, 0, 0, 198, 19, 0, 12,
        ]);
        let r = neigh_answer(&req).expect("arp reply");
        assert_eq!(r[0..6], [2, 0, 0, 0, 0, 9]);
        assert_eq!(r[20..22], [0, 2]);
        assert_eq!(r[22..28], rs_mac(12));
        assert_eq!(r[28..32], [198, 19, 0, 12]);
        assert_eq!(r[38..42], [198, 19, 0, 1]);

        let mut ns = vec![0u8; 86];
        ns[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        ns[12..14].copy_from_slice(&[0x86, 0xdd]);
        ns[20] = 58;
        ns[54] = 135;
        let tgt: Ipv6Addr = "2001:db8:1::12".parse().unwrap();
        ns[62..78].copy_from_slice(&tgt.octets());
        let na = neigh_answer(&ns).expect("na");
        assert_eq!(na[54], 136);
        let s = sum16(&na[22..54]) + 32 + 58 + sum16(&na[54..]);
        assert_eq!(fold(s), 0xffff);
        assert_eq!(na[80..86], rs_mac(0x12));
    }
}
