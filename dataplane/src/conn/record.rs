//! The connection record: what the forwarding rewrite needs, packed so that
//! an IPv4 record is 44 bytes.

use crate::flow::{Family, FlowKey, IPPROTO_TCP};

use super::state::TcpState;

/// Forwarding mode of a connection (`ipvsadm -m/-g/-i/-b`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FwdMode {
    /// Masquerading: destination rewritten to the real server; replies
    /// come back through the director.
    Nat = 0,
    /// Direct routing: MAC rewrite only; no replies seen.
    Dr = 1,
    /// IPIP tunnelling; no replies seen.
    Tun = 2,
    /// FullNAT: source rewritten to a local address and port too.
    FullNat = 3,
}

impl FwdMode {
    #[inline]
    fn from_bits(b: u8) -> FwdMode {
        match b & 3 {
            0 => FwdMode::Nat,
            1 => FwdMode::Dr,
            2 => FwdMode::Tun,
            _ => FwdMode::FullNat,
        }
    }

    /// Whether the director sees the real server's replies (so the reply
    /// tuple is indexed too).
    #[inline]
    pub fn sees_replies(self) -> bool {
        matches!(self, FwdMode::Nat | FwdMode::FullNat)
    }
}

/// Which direction of a connection a packet (or an index entry) belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Client → VIP (IPVS "input").
    In,
    /// Real server → client (NAT) or → local address (FullNAT) (IPVS
    /// "output").
    Out,
}

/// What [`super::ConnTable::insert`] needs to create a connection.
///
/// `local`/`lport` are only meaningful for FullNAT (left unspecified
/// otherwise). Ports in host byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewConn<F: Family> {
    /// IP protocol number.
    pub proto: u8,
    /// Forwarding mode.
    pub fwd: FwdMode,
    /// Client address.
    pub client: F::Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: F::Addr,
    /// Virtual port.
    pub vport: u16,
    /// Real server address.
    pub rip: F::Addr,
    /// Real server port.
    pub rport: u16,
    /// FullNAT local address.
    pub local: F::Addr,
    /// FullNAT local port.
    pub lport: u16,
    /// Real-server id (index in the snapshot), for per-server counters.
    pub rs: u32,
    /// Service id (index in the snapshot).
    pub svc: u16,
}

impl<F: Family> NewConn<F> {
    /// The client→VIP key of this connection.
    #[inline]
    pub fn in_key(&self) -> FlowKey<F> {
        FlowKey::new(self.proto, self.client, self.cport, self.vip, self.vport)
    }

    /// The reply key, when the director sees replies (NAT: RIP:rport →
    /// client:cport; FullNAT: RIP:rport → local:lport).
    #[inline]
    pub fn out_key(&self) -> Option<FlowKey<F>> {
        match self.fwd {
            FwdMode::Nat => Some(FlowKey::new(
                self.proto,
                self.rip,
                self.rport,
                self.client,
                self.cport,
            )),
            FwdMode::FullNat => Some(FlowKey::new(
                self.proto, self.rip, self.rport, self.local, self.lport,
            )),
            FwdMode::Dr | FwdMode::Tun => None,
        }
    }
}

// Bits of `Conn::meta`.
pub(crate) const META_STATE: u8 = 0x0f;
pub(crate) const META_FWD_SHIFT: u8 = 4;
/// IPVS `IP_VS_CONN_F_INACTIVE`: counted in the server's inactive
/// connections.
pub(crate) const META_INACTIVE: u8 = 0x40;
/// IPVS `IP_VS_CONN_F_NOOUTPUT`: no reply seen yet (input-only table).
pub(crate) const META_NOOUTPUT: u8 = 0x80;

/// Sentinel for "no link".
pub(crate) const NIL: u32 = u32::MAX;

/// One connection. Fields that the tables index or time are read-only
/// outside the table; [`Conn::set_rs`] and [`Conn::set_svc`] may be changed
/// through [`super::ConnTable::get_mut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn<F: Family> {
    pub(crate) client: F::Addr,
    pub(crate) vip: F::Addr,
    pub(crate) rip: F::Addr,
    pub(crate) local: F::Addr,
    pub(crate) cport: u16,
    pub(crate) vport: u16,
    pub(crate) rport: u16,
    pub(crate) lport: u16,
    pub(crate) rs: u32,
    /// Tick at which the connection expires.
    pub(crate) expires: u32,
    /// Timer-wheel (or free-list) links: record index, slot sentinel or NIL.
    pub(crate) next: u32,
    /// NIL exactly when the record is free.
    pub(crate) prev: u32,
    pub(crate) svc: u16,
    pub(crate) proto: u8,
    /// State (low 4 bits), forwarding mode (2 bits), INACTIVE, NOOUTPUT.
    pub(crate) meta: u8,
}

impl<F: Family> Conn<F> {
    pub(crate) const EMPTY: Self = Self {
        client: F::UNSPECIFIED,
        vip: F::UNSPECIFIED,
        rip: F::UNSPECIFIED,
        local: F::UNSPECIFIED,
        cport: 0,
        vport: 0,
        rport: 0,
        lport: 0,
        rs: 0,
        expires: 0,
        next: NIL,
        prev: NIL,
        svc: 0,
        proto: 0,
        meta: 0,
    };

    pub(crate) fn from_new(n: &NewConn<F>) -> Self {
        let mut meta = ((n.fwd as u8) << META_FWD_SHIFT) | META_INACTIVE;
        if !n.fwd.sees_replies() {
            meta |= META_NOOUTPUT;
        }
        Self {
            client: n.client,
            vip: n.vip,
            rip: n.rip,
            local: n.local,
            cport: n.cport,
            vport: n.vport,
            rport: n.rport,
            lport: n.lport,
            rs: n.rs,
            expires: 0,
            next: NIL,
            prev: NIL,
            svc: n.svc,
            proto: n.proto,
            meta,
        }
    }

    /// Client address.
    #[inline]
    pub fn client(&self) -> F::Addr {
        self.client
    }
    /// Client port.
    #[inline]
    pub fn cport(&self) -> u16 {
        self.cport
    }
    /// Virtual address.
    #[inline]
    pub fn vip(&self) -> F::Addr {
        self.vip
    }
    /// Virtual port.
    #[inline]
    pub fn vport(&self) -> u16 {
        self.vport
    }
    /// Real server address.
    #[inline]
    pub fn rip(&self) -> F::Addr {
        self.rip
    }
    /// Real server port.
    #[inline]
    pub fn rport(&self) -> u16 {
        self.rport
    }
    /// FullNAT local address (unspecified for other modes).
    #[inline]
    pub fn local(&self) -> F::Addr {
        self.local
    }
    /// FullNAT local port.
    #[inline]
    pub fn lport(&self) -> u16 {
        self.lport
    }
    /// IP protocol number.
    #[inline]
    pub fn proto(&self) -> u8 {
        self.proto
    }
    /// Forwarding mode.
    #[inline]
    pub fn fwd(&self) -> FwdMode {
        FwdMode::from_bits(self.meta >> META_FWD_SHIFT)
    }
    /// Real-server id.
    #[inline]
    pub fn rs(&self) -> u32 {
        self.rs
    }
    /// Service id.
    #[inline]
    pub fn svc(&self) -> u16 {
        self.svc
    }
    /// Re-point the connection at another real-server id (e.g. after the
    /// snapshot renumbered its servers).
    #[inline]
    pub fn set_rs(&mut self, rs: u32) {
        self.rs = rs;
    }
    /// Re-point the connection at another service id.
    #[inline]
    pub fn set_svc(&mut self, svc: u16) {
        self.svc = svc;
    }
    /// TCP state (`TcpState::None` for UDP and ICMP entries).
    #[inline]
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.meta & META_STATE)
    }
    /// Whether the connection counts as active for its real server (IPVS
    /// ActConn: TCP ESTABLISHED); otherwise it counts as inactive.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.meta & META_INACTIVE == 0
    }
    /// Whether no reply has been seen (always so for DR and TUN).
    #[inline]
    pub fn no_output(&self) -> bool {
        self.meta & META_NOOUTPUT != 0
    }
    /// Tick at which the connection expires unless refreshed.
    #[inline]
    pub fn expires(&self) -> u32 {
        self.expires
    }
    /// Whether this is a TCP connection.
    #[inline]
    pub fn is_tcp(&self) -> bool {
        self.proto == IPPROTO_TCP
    }

    /// The client→VIP key.
    #[inline]
    pub fn in_key(&self) -> FlowKey<F> {
        FlowKey::new(self.proto, self.client, self.cport, self.vip, self.vport)
    }

    /// The reply key, for modes where the director sees replies.
    #[inline]
    pub fn out_key(&self) -> Option<FlowKey<F>> {
        match self.fwd() {
            FwdMode::Nat => Some(FlowKey::new(
                self.proto,
                self.rip,
                self.rport,
                self.client,
                self.cport,
            )),
            FwdMode::FullNat => Some(FlowKey::new(
                self.proto, self.rip, self.rport, self.local, self.lport,
            )),
            FwdMode::Dr | FwdMode::Tun => None,
        }
    }

    /// Whether `key` is this connection's key in direction `dir`.
    #[inline(always)]
    pub(crate) fn matches(&self, key: &FlowKey<F>, dir: Direction) -> bool {
        if key.proto != self.proto {
            return false;
        }
        match dir {
            Direction::In => {
                key.src == self.client
                    && key.sport == self.cport
                    && key.dst == self.vip
                    && key.dport == self.vport
            }
            Direction::Out => {
                let (daddr, dport) = if self.fwd() == FwdMode::FullNat {
                    (self.local, self.lport)
                } else {
                    (self.client, self.cport)
                };
                key.src == self.rip
                    && key.sport == self.rport
                    && key.dst == daddr
                    && key.dport == dport
            }
        }
    }

    #[inline]
    pub(crate) fn set_state(&mut self, s: TcpState) {
        self.meta = (self.meta & !META_STATE) | (s as u8);
    }

    #[inline]
    pub(crate) fn is_live(&self) -> bool {
        self.prev != NIL
    }
}
