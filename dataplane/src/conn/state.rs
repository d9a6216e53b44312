//! IPVS's TCP state machine and per-state timeouts.
//!
//! The transition tables are those of Linux `ip_vs_proto_tcp.c`
//! (`tcp_states`, the default non-"secure_tcp" tables): one for packets
//! from the client (input), one for packets from the real server (output),
//! and one for input when the director never sees the server's side
//! (input-only: DR and TUN, or NAT before the first reply). The flag that
//! picks the row follows `tcp_state_idx`: RST first, then SYN, FIN, ACK; a
//! segment with none of these moves the connection to CLOSE, as in IPVS.

#![deny(clippy::indexing_slicing)]

use core::fmt;

/// TCP FIN flag bit (as in the TCP header's flags byte).
pub const TCP_FIN: u8 = 0x01;
/// TCP SYN flag bit.
pub const TCP_SYN: u8 = 0x02;
/// TCP RST flag bit.
pub const TCP_RST: u8 = 0x04;
/// TCP ACK flag bit.
pub const TCP_ACK: u8 = 0x10;

/// IPVS TCP connection states, numbered as `IP_VS_TCP_S_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// No packet seen yet (a connection just created).
    None = 0,
    /// Three-way handshake completed; the only "active" state.
    Established = 1,
    /// SYN seen from the server side.
    SynSent = 2,
    /// SYN seen from the client.
    SynRecv = 3,
    /// FIN seen from the client (input-only) or the server.
    FinWait = 4,
    /// Both sides closed.
    TimeWait = 5,
    /// Reset or closed.
    Close = 6,
    /// FIN seen from the client, server still open.
    CloseWait = 7,
    /// Last ACK awaited.
    LastAck = 8,
    /// Listen (used by IPVS for FTP data templates).
    Listen = 9,
    /// SYN-ACK seen (secure_tcp only in IPVS).
    SynAck = 10,
}

/// Number of TCP states.
pub const TCP_STATES: usize = 11;

impl TcpState {
    /// All states, by number.
    pub const ALL: [TcpState; TCP_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state numbered `n` (`None` for out-of-range numbers).
    #[inline]
    pub fn from_u8(n: u8) -> TcpState {
        match Self::ALL.get(usize::from(n)) {
            Some(s) => *s,
            None => TcpState::None,
        }
    }

    /// The name `ipvsadm -lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts as active (IPVS: only
    /// ESTABLISHED is).
    #[inline]
    pub fn is_active(self) -> bool {
        self == TcpState::Established
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which table a TCP segment is looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpDir {
    /// Client → server, the director also sees replies.
    Input,
    /// Server → client.
    Output,
    /// Client → server, the director sees no replies (DR, TUN).
    InputOnly,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynRecv as SR, SynSent as SS, TimeWait as TW,
};

type Row = [TcpState; TCP_STATES];

// Columns:      sNO sES sSS sSR sFW sTW sCL sCW sLA sLI sSA
const INPUT: [Row; 4] = [
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];
const OUTPUT: [Row; 4] = [
    /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const INPUT_ONLY: [Row; 4] = [
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [CL, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The next state after a segment with TCP flags `flags` (the header's
/// flags byte) seen in direction `dir` by a connection in `state`.
#[inline]
// bounds: `row` is one of the literals 0..=3 and every table is [[TcpState; TCP_STATES]; 4]; `state as usize` < TCP_STATES because TCP_STATES counts the variants.
#[allow(clippy::indexing_slicing)]
pub fn tcp_next_state(state: TcpState, dir: TcpDir, flags: u8) -> TcpState {
    let row = if flags & TCP_RST != 0 {
        3
    } else if flags & TCP_SYN != 0 {
        0
    } else if flags & TCP_FIN != 0 {
        1
    } else if flags & TCP_ACK != 0 {
        2
    } else {
        return CL;
    };
    let table = match dir {
        TcpDir::Input => &INPUT,
        TcpDir::Output => &OUTPUT,
        TcpDir::InputOnly => &INPUT_ONLY,
    };
    table[row][state as usize]
}

/// Connection timeouts in seconds, per TCP state and for UDP and ICMP
/// (`ipvsadm --set` and `/proc/sys/net/ipv4/vs/timeout_*`). Defaults are
/// IPVS's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Per TCP state, indexed by `TcpState as usize`.
    pub tcp: [u32; TCP_STATES],
    /// UDP entries.
    pub udp: u32,
    /// ICMP entries.
    pub icmp: u32,
}

impl Default for Timeouts {
    // bounds: `TcpState` has exactly TCP_STATES variants (`TCP_STATES` is their count), so `s as usize` indexes an array of TCP_STATES.
    #[allow(clippy::indexing_slicing)]
    fn default() -> Self {
        let mut tcp = [0u32; TCP_STATES];
        tcp[TcpState::None as usize] = 2;
        tcp[TcpState::Established as usize] = 900;
        tcp[TcpState::SynSent as usize] = 120;
        tcp[TcpState::SynRecv as usize] = 60;
        tcp[TcpState::FinWait as usize] = 120;
        tcp[TcpState::TimeWait as usize] = 120;
        tcp[TcpState::Close as usize] = 10;
        tcp[TcpState::CloseWait as usize] = 60;
        tcp[TcpState::LastAck as usize] = 30;
        tcp[TcpState::Listen as usize] = 120;
        tcp[TcpState::SynAck as usize] = 120;
        Self {
            tcp,
            udp: 300,
            icmp: 60,
        }
    }
}

impl Timeouts {
    /// The timeout of TCP state `s`, in seconds.
    #[inline]
    // bounds: `TcpState` has exactly TCP_STATES variants (`TCP_STATES` is their count), so `s as usize` indexes an array of TCP_STATES.
    #[allow(clippy::indexing_slicing)]
    pub fn tcp(&self, s: TcpState) -> u32 {
        self.tcp[s as usize]
    }

    /// `ipvsadm --set tcp tcpfin udp`: ESTABLISHED, FIN_WAIT and UDP
    /// timeouts in seconds; 0 leaves a value unchanged, as in ipvsadm.
    // bounds: `TcpState` has exactly TCP_STATES variants (`TCP_STATES` is their count), so `s as usize` indexes an array of TCP_STATES.
    #[allow(clippy::indexing_slicing)]
    pub fn set_ipvsadm(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_ipvs() {
        let t = Timeouts::default();
        assert_eq!(t.tcp(TcpState::Established), 900);
        assert_eq!(t.tcp(TcpState::SynSent), 120);
        assert_eq!(t.tcp(TcpState::SynRecv), 60);
        assert_eq!(t.tcp(TcpState::FinWait), 120);
        assert_eq!(t.tcp(TcpState::TimeWait), 120);
        assert_eq!(t.tcp(TcpState::Close), 10);
        assert_eq!(t.tcp(TcpState::CloseWait), 60);
        assert_eq!(t.tcp(TcpState::LastAck), 30);
        assert_eq!(t.tcp(TcpState::Listen), 120);
        assert_eq!(t.tcp(TcpState::SynAck), 120);
        assert_eq!((t.udp, t.icmp), (300, 60));
    }

    #[test]
    fn ipvsadm_set() {
        let mut t = Timeouts::default();
        t.set_ipvsadm(3600, 0, 30);
        assert_eq!(t.tcp(TcpState::Established), 3600);
        assert_eq!(t.tcp(TcpState::FinWait), 120);
        assert_eq!(t.udp, 30);
        t.set_ipvsadm(0, 5, 0);
        assert_eq!(t.tcp(TcpState::FinWait), 5);
        assert_eq!(t.tcp(TcpState::Established), 3600);
    }

    #[test]
    fn nat_open_and_close() {
        use TcpDir::*;
        let mut s = TcpState::None;
        for (dir, flags, want) in [
            (Input, TCP_SYN, TcpState::SynRecv),
            (Output, TCP_SYN | TCP_ACK, TcpState::SynRecv),
            (Input, TCP_ACK, TcpState::Established),
            (Output, TCP_ACK, TcpState::Established),
            (Input, TCP_FIN | TCP_ACK, TcpState::CloseWait),
            (Output, TCP_ACK, TcpState::CloseWait),
            (Output, TCP_FIN | TCP_ACK, TcpState::TimeWait),
            (Input, TCP_ACK, TcpState::TimeWait),
        ] {
            s = tcp_next_state(s, dir, flags);
            assert_eq!(s, want, "{dir:?} {flags:#x}");
        }
        // Server closes first.
        let s = tcp_next_state(TcpState::Established, Output, TCP_FIN | TCP_ACK);
        assert_eq!(s, TcpState::FinWait);
        let s = tcp_next_state(s, Input, TCP_FIN | TCP_ACK);
        assert_eq!(s, TcpState::TimeWait);
    }

    #[test]
    fn rst_and_odd_segments() {
        use TcpDir::*;
        assert_eq!(
            tcp_next_state(TcpState::Established, Input, TCP_RST),
            TcpState::Close
        );
        assert_eq!(
            tcp_next_state(TcpState::Established, Output, TCP_RST | TCP_ACK),
            TcpState::Close
        );
        // RST wins over SYN.
        assert_eq!(
            tcp_next_state(TcpState::Established, Input, TCP_RST | TCP_SYN),
            TcpState::Close
        );
        // IPVS quirks kept: RST from the client in SYN_RECV stays, RST from
        // the server in TIME_WAIT stays, input-only SYNACK+RST closes.
        assert_eq!(
            tcp_next_state(TcpState::SynRecv, Input, TCP_RST),
            TcpState::SynRecv
        );
        assert_eq!(
            tcp_next_state(TcpState::TimeWait, Output, TCP_RST),
            TcpState::TimeWait
        );
        assert_eq!(
            tcp_next_state(TcpState::SynAck, InputOnly, TCP_RST),
            TcpState::Close
        );
        assert_eq!(
            tcp_next_state(TcpState::SynAck, Input, TCP_RST),
            TcpState::SynRecv
        );
        // No SYN/FIN/ACK/RST at all: CLOSE.
        assert_eq!(
            tcp_next_state(TcpState::Established, Input, 0x08),
            TcpState::Close
        );
    }

    #[test]
    fn input_only_open_and_close() {
        use TcpDir::InputOnly;
        let mut s = TcpState::None;
        for (flags, want) in [
            (TCP_SYN, TcpState::SynRecv),
            (TCP_ACK, TcpState::Established),
            (TCP_ACK | 0x08, TcpState::Established),
            (TCP_FIN | TCP_ACK, TcpState::FinWait),
            (TCP_ACK, TcpState::FinWait),
            (TCP_RST, TcpState::Close),
        ] {
            s = tcp_next_state(s, InputOnly, flags);
            assert_eq!(s, want);
        }
        assert!(TcpState::Established.is_active());
        assert!(!TcpState::FinWait.is_active());
        for (i, st) in TcpState::ALL.iter().enumerate() {
            assert_eq!(TcpState::from_u8(i as u8), *st);
        }
        assert_eq!(TcpState::from_u8(200), TcpState::None);
        assert_eq!(TcpState::SynAck.to_string(), "SYNACK");
    }
}
