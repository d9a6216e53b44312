//! The LVS sync protocol, version 1, as Linux `net/netfilter/ipvs/
//! ip_vs_sync.c` builds and parses it. All fields are big endian.
//!
//! ```text
//! message header (struct ip_vs_sync_mesg, 8 bytes)
//!   0  u8  reserved   must be 0 (a v0 message has nr_conns here)
//!   1  u8  syncid
//!   2  u16 size       whole message in bytes, header included
//!   4  u8  nr_conns
//!   5  s8  version    1
//!   6  u16 spare      0
//! then nr_conns entries, each starting on a 4-byte boundary (zero padding
//! between entries; never after the last one; the padding counts in size)
//!
//! entry (struct ip_vs_sync_v4: 36 bytes, ip_vs_sync_v6: 72 bytes)
//!   0  u8  type       0 = IPv4, 1 (STYPE_F_INET6) = IPv6
//!   1  u8  protocol
//!   2  u16 ver_size   version (top 4 bits, 0) | entry length in bytes,
//!                     options included, padding excluded (low 12 bits)
//!   4  u32 flags      IP_VS_CONN_F_* (fwd method in the low 3 bits,
//!                     NOOUTPUT 0x80, INACTIVE 0x100, SEQ 0x600, TEMPLATE
//!                     0x1000, ...), HASHED (0x40) cleared
//!   8  u16 state      IP_VS_TCP_S_* for TCP, 0 for UDP
//!  10  u16 cport
//!  12  u16 vport
//!  14  u16 dport
//!  16  u32 fwmark
//!  20  u32 timeout    seconds (the state's timeout, not the time left)
//!  24  caddr, vaddr, daddr: 4 bytes each (v4) or 16 bytes each (v6)
//! then options, each: u8 type, u8 length (1..=255), length bytes:
//!   1 IPVS_OPT_SEQ_DATA  24 bytes: in_seq, out_seq, each init_seq,
//!                        delta, previous_delta (u32)
//!   2 IPVS_OPT_PE_DATA   persistence-engine data (at most 255 bytes)
//!   3 IPVS_OPT_PE_NAME   persistence-engine name (at most 15 bytes)
//!   type | 0x40 (IPVS_OPT_F_PARAM): optional; a parser that does not know
//!   the type skips it. An unknown type without 0x40 is mandatory: the
//!   entry is skipped (IPVS's "Unknown mandatory param").
//!   0x60 RVS_OPT_FNAT_LOCAL (rvs's own, kind 0x20 above IPVS's 1..=7, sent
//!        optional so a Linux backup skips it): the FullNAT local address
//!        and port, 6 bytes (v4: addr 4, port 2) or 18 bytes (v6). A FullNAT
//!        connection travels as IP_VS_CONN_F_MASQ plus this option (a
//!        Linux backup therefore sees a NAT connection).
//! ```
//!
//! The parser checks the whole message before anything is installed
//! (IPVS installs entries as it goes and stops at the first bad one): a
//! message-level error drops every entry of the message; an entry-level
//! problem (unknown protocol, bad state, unknown mandatory option,
//! template, forwarding method rvs does not do) skips that entry only, as
//! in IPVS. Version 0 messages are recognised and dropped.

#![deny(clippy::indexing_slicing)]

use crate::conn::{FwdMode, TcpState, TCP_STATES};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Protocol version this codec speaks (`SYNC_PROTO_VER`).
pub const SYNC_PROTO_VER: u8 = 1;
/// Length of the v1 message header.
pub const MESG_HEADER_LEN: usize = 8;
/// `SYNC_MESG_HEADER_LEN` (the v0 header) used by IPVS's size formula.
pub const V0_HEADER_LEN: usize = 4;
/// `SIMPLE_CONN_SIZE`: a v0 entry, the unit of IPVS's size formula.
pub const SIMPLE_CONN_SIZE: usize = 24;
/// `MAX_CONNS_PER_SYNCBUFF` (nr_conns is 8 bits).
pub const MAX_CONNS_PER_SYNCBUFF: usize = 255;
/// Length of an IPv4 entry without options.
pub const V4_ENTRY_LEN: usize = 36;
/// Length of an IPv6 entry without options.
pub const V6_ENTRY_LEN: usize = 72;
/// Entry type bit: IPv6.
pub const STYPE_F_INET6: u8 = 0x01;
/// Shift of the version in `ver_size`.
pub const SVER_SHIFT: u16 = 12;
/// Mask of the size in `ver_size`.
pub const SVER_MASK: u16 = 0x0fff;
/// Option: TCP sequence adjustment data.
pub const IPVS_OPT_SEQ_DATA: u8 = 1;
/// Option: persistence-engine data.
pub const IPVS_OPT_PE_DATA: u8 = 2;
/// Option: persistence-engine name.
pub const IPVS_OPT_PE_NAME: u8 = 3;
/// Option type bit: optional parameter (skip when unknown).
pub const IPVS_OPT_F_PARAM: u8 = 1 << (7 - 1);
/// rvs option: FullNAT local address and port (sent with
/// [`IPVS_OPT_F_PARAM`] set, i.e. as `0x60`).
pub const RVS_OPT_FNAT_LOCAL: u8 = 0x20;
/// Longest persistence-engine data (`IP_VS_PEDATA_MAXLEN`).
pub const PEDATA_MAXLEN: usize = 255;
/// Longest persistence-engine name, NUL excluded (`IP_VS_PENAME_MAXLEN`).
pub const PENAME_MAXLEN: usize = 16;

/// `IP_VS_CONN_F_MASQ`.
pub const F_MASQ: u32 = 0x0000;
/// `IP_VS_CONN_F_LOCALNODE`.
pub const F_LOCALNODE: u32 = 0x0001;
/// `IP_VS_CONN_F_TUNNEL`.
pub const F_TUNNEL: u32 = 0x0002;
/// `IP_VS_CONN_F_DROUTE`.
pub const F_DROUTE: u32 = 0x0003;
/// `IP_VS_CONN_F_BYPASS`.
pub const F_BYPASS: u32 = 0x0004;
/// `IP_VS_CONN_F_FWD_MASK`.
pub const F_FWD_MASK: u32 = 0x0007;
/// `IP_VS_CONN_F_SYNC`: set by the backup on synced connections.
pub const F_SYNC: u32 = 0x0020;
/// `IP_VS_CONN_F_HASHED`: never sent.
pub const F_HASHED: u32 = 0x0040;
/// `IP_VS_CONN_F_NOOUTPUT`.
pub const F_NOOUTPUT: u32 = 0x0080;
/// `IP_VS_CONN_F_INACTIVE`.
pub const F_INACTIVE: u32 = 0x0100;
/// `IP_VS_CONN_F_OUT_SEQ`.
pub const F_OUT_SEQ: u32 = 0x0200;
/// `IP_VS_CONN_F_IN_SEQ`.
pub const F_IN_SEQ: u32 = 0x0400;
/// `IP_VS_CONN_F_SEQ_MASK`.
pub const F_SEQ_MASK: u32 = 0x0600;
/// `IP_VS_CONN_F_NO_CPORT`.
pub const F_NO_CPORT: u32 = 0x0800;
/// `IP_VS_CONN_F_TEMPLATE`.
pub const F_TEMPLATE: u32 = 0x1000;
/// `IP_VS_CONN_F_BACKUP_MASK`: the flags a backup keeps.
pub const F_BACKUP_MASK: u32 =
    F_FWD_MASK | F_NOOUTPUT | F_INACTIVE | F_SEQ_MASK | F_NO_CPORT | F_TEMPLATE;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// IPVS's `IP_VS_UDP_S_LAST`: UDP has one state (0).
const UDP_STATES: u16 = 1;

/// The largest message IPVS's master builds for an interface MTU
/// (`set_sync_mesg_maxlen`): `4 + 24 * min((mtu - 20 - 8 - 4 - 20) / 24,
/// 255)`; 1444 for a 1500-byte MTU.
pub fn max_mesg_len(mtu: u16) -> usize {
    let room = usize::from(mtu).saturating_sub(20 + 8 + V0_HEADER_LEN + 20);
    let num = (room / SIMPLE_CONN_SIZE).min(MAX_CONNS_PER_SYNCBUFF);
    V0_HEADER_LEN + SIMPLE_CONN_SIZE * num
}

/// TCP sequence adjustment (`struct ip_vs_sync_conn_options`): in_seq
/// then out_seq, each `init_seq, delta, previous_delta`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeqData {
    /// in_seq: init_seq, delta, previous_delta.
    pub in_seq: [u32; 3],
    /// out_seq: init_seq, delta, previous_delta.
    pub out_seq: [u32; 3],
}

impl SeqData {
    /// The adjustment the packet path applies.
    pub fn conn_seq(&self) -> crate::forward::ConnSeq {
        crate::forward::ConnSeq {
            in_seq: crate::forward::SeqAdj::from_words(self.in_seq),
            out_seq: crate::forward::SeqAdj::from_words(self.out_seq),
        }
    }

    /// The wire form of a connection's adjustment.
    pub fn from_conn_seq(c: &crate::forward::ConnSeq) -> Self {
        SeqData {
            in_seq: c.in_seq.words(),
            out_seq: c.out_seq.words(),
        }
    }
}

/// One connection as the sync protocol carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncConn {
    /// IP protocol.
    pub proto: u8,
    /// IPVS connection flags as sent (see the module docs); the
    /// forwarding method is `flags & F_FWD_MASK` plus the FullNAT option.
    pub flags: u32,
    /// State number (`IP_VS_TCP_S_*`, 0 for UDP).
    pub state: u16,
    /// Client address.
    pub client: IpAddr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: IpAddr,
    /// Virtual port.
    pub vport: u16,
    /// Real server ("destination") address.
    pub rip: IpAddr,
    /// Real server port.
    pub rport: u16,
    /// FullNAT local address and port (rvs option).
    pub local: Option<(IpAddr, u16)>,
    /// Firewall mark.
    pub fwmark: u32,
    /// Timeout in seconds.
    pub timeout: u32,
    /// TCP sequence adjustment option.
    pub seq: Option<SeqData>,
}

impl SyncConn {
    /// The flags rvs sends for a connection: the forwarding method
    /// (FullNAT as MASQ), NOOUTPUT, INACTIVE.
    pub fn flags_for(fwd: FwdMode, no_output: bool, active: bool) -> u32 {
        let mut f = match fwd {
            FwdMode::Nat | FwdMode::FullNat => F_MASQ,
            FwdMode::Tun => F_TUNNEL,
            FwdMode::Dr => F_DROUTE,
        };
        if no_output {
            f |= F_NOOUTPUT;
        }
        if !active {
            f |= F_INACTIVE;
        }
        f
    }

    /// The forwarding method, if rvs does it (`None` for LOCALNODE,
    /// BYPASS and unknown methods).
    pub fn fwd(&self) -> Option<FwdMode> {
        match self.flags & F_FWD_MASK {
            F_MASQ if self.local.is_some() => Some(FwdMode::FullNat),
            F_MASQ => Some(FwdMode::Nat),
            F_TUNNEL => Some(FwdMode::Tun),
            F_DROUTE => Some(FwdMode::Dr),
            _ => None,
        }
    }

    /// The TCP state (`TcpState::None` for UDP).
    pub fn tcp_state(&self) -> TcpState {
        if self.proto == IPPROTO_TCP {
            TcpState::from_u8(u8::try_from(self.state).unwrap_or(0))
        } else {
            TcpState::None
        }
    }

    /// Whether every address is IPv6 (`Some(false)`: every one IPv4;
    /// `None`: mixed, not encodable).
    fn is_v6(&self) -> Option<bool> {
        let v6 = self.client.is_ipv6();
        let same = self.vip.is_ipv6() == v6
            && self.rip.is_ipv6() == v6
            && self.local.is_none_or(|(a, _)| a.is_ipv6() == v6);
        same.then_some(v6)
    }

    /// Bytes this entry takes (options included, padding excluded), with
    /// persistence-engine data and name of the given lengths.
    fn wire_len(&self, v6: bool, pe_data: usize, pe_name: usize) -> usize {
        let mut len = if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN };
        if self.seq.is_some() {
            len += 2 + 24;
        }
        if pe_data > 0 {
            len += 2 + pe_data;
            if pe_name > 0 {
                len += 2 + pe_name;
            }
        }
        if self.local.is_some() {
            len += 2 + if v6 { 18 } else { 6 };
        }
        len
    }
}

/// A parsed entry: the connection, and the persistence-engine option
/// data, which rvs carries but does not use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The connection.
    pub conn: SyncConn,
    /// `IPVS_OPT_PE_DATA`.
    pub pe_data: Option<&'a [u8]>,
    /// `IPVS_OPT_PE_NAME`.
    pub pe_name: Option<&'a [u8]>,
}

/// Why a whole message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// Shorter than a header.
    TooShort,
    /// The size field is not the datagram's length.
    BadSize,
    /// Another sync id than ours.
    SyncId,
    /// A version 0 message (reserved byte not 0).
    V0,
    /// A v1-shaped header with another version or a non-zero spare.
    BadVersion,
    /// nr_conns promises an entry that is not there.
    Truncated,
    /// An entry's length runs past the message.
    EntryOverrun,
    /// An entry's version bits are not 0.
    EntryVersion,
    /// An entry's type is neither IPv4 nor IPv6.
    BadType,
    /// An entry's length is below its fixed part.
    EntryTooShort,
    /// An option's framing or a known option's length is wrong.
    BadOption,
}

impl DecodeError {
    /// Every reason, for counters.
    pub const ALL: [DecodeError; 11] = [
        DecodeError::TooShort,
        DecodeError::BadSize,
        DecodeError::SyncId,
        DecodeError::V0,
        DecodeError::BadVersion,
        DecodeError::Truncated,
        DecodeError::EntryOverrun,
        DecodeError::EntryVersion,
        DecodeError::BadType,
        DecodeError::EntryTooShort,
        DecodeError::BadOption,
    ];

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            DecodeError::TooShort => "too_short",
            DecodeError::BadSize => "bad_size",
            DecodeError::SyncId => "syncid",
            DecodeError::V0 => "v0",
            DecodeError::BadVersion => "bad_version",
            DecodeError::Truncated => "truncated",
            DecodeError::EntryOverrun => "entry_overrun",
            DecodeError::EntryVersion => "entry_version",
            DecodeError::BadType => "bad_type",
            DecodeError::EntryTooShort => "entry_too_short",
            DecodeError::BadOption => "bad_option",
        }
    }
}

/// Why one entry was skipped (the rest of the message is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntrySkip {
    /// An unknown option without the optional bit.
    UnknownMandatoryOption,
    /// Not TCP or UDP.
    UnknownProtocol,
    /// A state number the protocol does not have.
    BadState,
    /// A persistence template (rvs keeps templates in its schedulers).
    Template,
    /// LOCALNODE, BYPASS or an unknown forwarding method.
    UnsupportedForward,
    /// The FullNAT option on a non-MASQ entry, or of the wrong length.
    BadLocal,
    /// `IP_VS_CONN_F_IN_SEQ`/`OUT_SEQ` set but no `IPVS_OPT_SEQ_DATA`
    /// option: the deltas the flags promise are missing, and installing
    /// the connection without them would corrupt its byte streams.
    SeqWithoutOption,
}

impl EntrySkip {
    /// Every reason, for counters.
    pub const ALL: [EntrySkip; 7] = [
        EntrySkip::UnknownMandatoryOption,
        EntrySkip::UnknownProtocol,
        EntrySkip::BadState,
        EntrySkip::Template,
        EntrySkip::UnsupportedForward,
        EntrySkip::BadLocal,
        EntrySkip::SeqWithoutOption,
    ];

    /// Counter name.
    pub fn name(self) -> &'static str {
        match self {
            EntrySkip::UnknownMandatoryOption => "unknown_mandatory_option",
            EntrySkip::UnknownProtocol => "unknown_protocol",
            EntrySkip::BadState => "bad_state",
            EntrySkip::Template => "template",
            EntrySkip::UnsupportedForward => "unsupported_forward",
            EntrySkip::BadLocal => "bad_local",
            EntrySkip::SeqWithoutOption => "seq_without_option",
        }
    }
}

/// A parsed, fully validated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Its sync id.
    pub syncid: u8,
    /// Its entries in order; skipped ones say why.
    pub entries: Vec<Result<Entry<'a>, EntrySkip>>,
}

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*b.get(at..)?.first_chunk()?))
}

#[inline]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(at..)?.first_chunk()?))
}

fn addr(b: &[u8], at: usize, v6: bool) -> Option<IpAddr> {
    if v6 {
        let s: [u8; 16] = b.get(at..at + 16)?.try_into().ok()?;
        Some(IpAddr::V6(Ipv6Addr::from(s)))
    } else {
        let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(IpAddr::V4(Ipv4Addr::from(s)))
    }
}

/// Parses and validates a datagram. `syncid` 0 accepts any sync id (as
/// IPVS's backup with sync id 0 does).
pub fn decode(buf: &[u8], syncid: u8) -> Result<Message<'_>, DecodeError> {
    // ip_vs_process_message: the v0 header (4 bytes) is the minimum.
    let Some(&[v0_nr, msg_syncid, s0, s1]) = buf.first_chunk::<V0_HEADER_LEN>() else {
        return Err(DecodeError::TooShort);
    };
    let size = u16::from_be_bytes([s0, s1]);
    if usize::from(size) != buf.len() {
        return Err(DecodeError::BadSize);
    }
    if syncid != 0 && msg_syncid != syncid {
        return Err(DecodeError::SyncId);
    }
    if v0_nr != 0 {
        return Err(DecodeError::V0);
    }
    let Some(&[_, _, _, _, nr, version, r0, r1]) = buf.first_chunk::<MESG_HEADER_LEN>() else {
        return Err(DecodeError::TooShort);
    };
    if version != SYNC_PROTO_VER || r0 != 0 || r1 != 0 {
        return Err(DecodeError::BadVersion);
    }
    let nr = usize::from(nr);
    let mut entries = Vec::with_capacity(nr);
    let mut p = MESG_HEADER_LEN;
    for _ in 0..nr {
        if p + V4_ENTRY_LEN > buf.len() {
            return Err(DecodeError::Truncated);
        }
        let ver_size = be16(buf, p + 2).ok_or(DecodeError::Truncated)?;
        let size = usize::from(ver_size & SVER_MASK);
        let end = p + size;
        if end > buf.len() {
            return Err(DecodeError::EntryOverrun);
        }
        if ver_size >> SVER_SHIFT != 0 {
            return Err(DecodeError::EntryVersion);
        }
        let e = buf.get(p..end).ok_or(DecodeError::EntryOverrun)?;
        entries.push(entry(e)?);
        p += (size + 3) & !3;
    }
    Ok(Message {
        syncid: msg_syncid,
        entries,
    })
}

/// One entry (`e` is exactly its `size` bytes): message-level errors as
/// `Err`, entry-level ones as `Ok(Err(skip))`.
#[allow(clippy::type_complexity)]
fn entry(e: &[u8]) -> Result<Result<Entry<'_>, EntrySkip>, DecodeError> {
    let ty = *e.first().ok_or(DecodeError::EntryTooShort)?;
    let v6 = match ty {
        0 => false,
        STYPE_F_INET6 => true,
        _ => return Err(DecodeError::BadType),
    };
    let fixed = if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN };
    if e.len() < fixed {
        return Err(DecodeError::EntryTooShort);
    }
    let short = DecodeError::EntryTooShort;
    let proto = *e.get(1).ok_or(short)?;
    let flags = be32(e, 4).ok_or(short)?;
    let state = be16(e, 8).ok_or(short)?;
    let cport = be16(e, 10).ok_or(short)?;
    let vport = be16(e, 12).ok_or(short)?;
    let dport = be16(e, 14).ok_or(short)?;
    let fwmark = be32(e, 16).ok_or(short)?;
    let timeout = be32(e, 20).ok_or(short)?;
    let al = if v6 { 16 } else { 4 };
    let client = addr(e, 24, v6).ok_or(short)?;
    let vip = addr(e, 24 + al, v6).ok_or(short)?;
    let rip = addr(e, 24 + 2 * al, v6).ok_or(short)?;

    let mut seq = None;
    let mut pe_data = None;
    let mut pe_name = None;
    let mut local = None;
    let mut skip = None;
    let mut p = fixed;
    while p < e.len() {
        let Some(&[ptype, plen]) = e.get(p..p + 2) else {
            return Err(DecodeError::BadOption);
        };
        let plen = usize::from(plen);
        p += 2;
        let data = match e.get(p..p + plen) {
            Some(d) if plen != 0 => d,
            _ => return Err(DecodeError::BadOption),
        };
        match ptype & !IPVS_OPT_F_PARAM {
            IPVS_OPT_SEQ_DATA => {
                // ip_vs_proc_seqopt: exact length, at most once
                if plen != 24 || seq.is_some() {
                    return Err(DecodeError::BadOption);
                }
                let w = |i: usize| be32(data, 4 * i).unwrap_or(0);
                seq = Some(SeqData {
                    in_seq: [w(0), w(1), w(2)],
                    out_seq: [w(3), w(4), w(5)],
                });
            }
            IPVS_OPT_PE_DATA => {
                // ip_vs_proc_str: at most once, within the maximum
                if plen > PEDATA_MAXLEN || pe_data.is_some() {
                    return Err(DecodeError::BadOption);
                }
                pe_data = Some(data);
            }
            IPVS_OPT_PE_NAME => {
                if plen > PENAME_MAXLEN || pe_name.is_some() {
                    return Err(DecodeError::BadOption);
                }
                pe_name = Some(data);
            }
            RVS_OPT_FNAT_LOCAL => {
                let want = if v6 { 18 } else { 6 };
                match (plen == want, addr(data, 0, v6), be16(data, al)) {
                    (true, Some(a), Some(port)) if local.is_none() => local = Some((a, port)),
                    _ => skip = skip.or(Some(EntrySkip::BadLocal)),
                }
            }
            _ => {
                if ptype & IPVS_OPT_F_PARAM == 0 {
                    skip = skip.or(Some(EntrySkip::UnknownMandatoryOption));
                }
            }
        }
        p += plen;
    }
    if let Some(s) = skip {
        return Ok(Err(s));
    }
    if flags & F_SEQ_MASK != 0 && seq.is_none() {
        return Ok(Err(EntrySkip::SeqWithoutOption));
    }
    if flags & F_TEMPLATE != 0 {
        return Ok(Err(EntrySkip::Template));
    }
    let states = match proto {
        IPPROTO_TCP => TCP_STATES as u16,
        IPPROTO_UDP => UDP_STATES,
        _ => return Ok(Err(EntrySkip::UnknownProtocol)),
    };
    if state >= states {
        return Ok(Err(EntrySkip::BadState));
    }
    let conn = SyncConn {
        proto,
        flags,
        state,
        client,
        cport,
        vip,
        vport,
        rip,
        rport: dport,
        local,
        fwmark,
        timeout,
        seq,
    };
    match conn.fwd() {
        None => return Ok(Err(EntrySkip::UnsupportedForward)),
        Some(FwdMode::Tun | FwdMode::Dr) if local.is_some() => return Ok(Err(EntrySkip::BadLocal)),
        _ => {}
    }
    Ok(Ok(Entry {
        conn,
        pe_data,
        pe_name,
    }))
}

/// Builds one message the way IPVS's master does (`ip_vs_sync_conn`):
/// entries appended while they fit in the maximum length, each padded to
/// a 4-byte boundary before the next one.
#[derive(Clone, Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    max_len: usize,
}

impl MessageBuilder {
    /// An empty message with sync id `syncid`, at most `max_len` bytes
    /// (see [`max_mesg_len`]); one entry always fits.
    pub fn new(syncid: u8, max_len: usize) -> Self {
        let mut buf = Vec::with_capacity(max_len.clamp(MESG_HEADER_LEN, 65535));
        buf.extend_from_slice(&[0, syncid, 0, MESG_HEADER_LEN as u8, 0, SYNC_PROTO_VER, 0, 0]);
        MessageBuilder { buf, max_len }
    }

    /// Entries in the message.
    pub fn nr_conns(&self) -> usize {
        // The header `new` pushed is never removed: byte 4 is always there.
        self.buf.get(4).map_or(0, |&n| usize::from(n))
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.nr_conns() == 0
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Appends `c`; `false` (nothing written) when it does not fit or
    /// cannot be encoded (mixed address families).
    pub fn push(&mut self, c: &SyncConn) -> bool {
        self.push_pe(c, None, None)
    }

    /// Appends `c` with persistence-engine data and name (the name is only
    /// sent with data, as IPVS does).
    pub fn push_pe(
        &mut self,
        c: &SyncConn,
        pe_data: Option<&[u8]>,
        pe_name: Option<&[u8]>,
    ) -> bool {
        let Some(v6) = c.is_v6() else { return false };
        let pd = pe_data.unwrap_or(&[]);
        let pn = if pd.is_empty() {
            &[][..]
        } else {
            pe_name.unwrap_or(&[])
        };
        if pd.len() > PEDATA_MAXLEN || pn.len() > PENAME_MAXLEN {
            return false;
        }
        let len = c.wire_len(v6, pd.len(), pn.len());
        let pad = if self.is_empty() {
            0
        } else {
            (4 - (self.buf.len() & 3)) & 3
        };
        let total = self.buf.len() + pad + len;
        let fits = total <= self.max_len || self.is_empty();
        if !fits || total > usize::from(u16::MAX) || self.nr_conns() >= MAX_CONNS_PER_SYNCBUFF {
            return false;
        }
        let b = &mut self.buf;
        b.resize(b.len() + pad, 0);
        b.push(if v6 { STYPE_F_INET6 } else { 0 });
        b.push(c.proto);
        b.extend_from_slice(&((len as u16) & SVER_MASK).to_be_bytes());
        // The SEQ flags promise the option: never send one without the other.
        let mut flags = c.flags & !F_HASHED;
        if c.seq.is_none() {
            flags &= !F_SEQ_MASK;
        }
        b.extend_from_slice(&flags.to_be_bytes());
        b.extend_from_slice(&c.state.to_be_bytes());
        b.extend_from_slice(&c.cport.to_be_bytes());
        b.extend_from_slice(&c.vport.to_be_bytes());
        b.extend_from_slice(&c.rport.to_be_bytes());
        b.extend_from_slice(&c.fwmark.to_be_bytes());
        b.extend_from_slice(&c.timeout.to_be_bytes());
        for a in [c.client, c.vip, c.rip] {
            put_addr(b, a);
        }
        if let Some(s) = c.seq {
            b.push(IPVS_OPT_SEQ_DATA);
            b.push(24);
            for w in s.in_seq.iter().chain(s.out_seq.iter()) {
                b.extend_from_slice(&w.to_be_bytes());
            }
        }
        if !pd.is_empty() {
            b.push(IPVS_OPT_PE_DATA);
            b.push(pd.len() as u8);
            b.extend_from_slice(pd);
            if !pn.is_empty() {
                b.push(IPVS_OPT_PE_NAME);
                b.push(pn.len() as u8);
                b.extend_from_slice(pn);
            }
        }
        if let Some((a, port)) = c.local {
            b.push(RVS_OPT_FNAT_LOCAL | IPVS_OPT_F_PARAM);
            b.push(if v6 { 18 } else { 6 });
            put_addr(b, a);
            b.extend_from_slice(&port.to_be_bytes());
        }
        let size = (b.len() as u16).to_be_bytes();
        // The header `new` pushed is never removed, so this always matches.
        if let [_, _, s0, s1, nr, ..] = b.as_mut_slice() {
            *nr += 1;
            [*s0, *s1] = size;
        }
        true
    }

    /// The message bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The message, and an empty builder with the same sync id and limit
    /// in its place.
    pub fn take(&mut self) -> Vec<u8> {
        // The header `new` pushed is never removed: byte 1 is always there.
        let syncid = self.buf.get(1).copied().unwrap_or(0);
        let next = MessageBuilder::new(syncid, self.max_len);
        std::mem::replace(self, next).buf
    }
}

fn put_addr(b: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(a) => b.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => b.extend_from_slice(&a.octets()),
    }
}
