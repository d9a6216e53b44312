//! The SYN proxy's place in the packet path (logic in
//! [`crate::forward::synproxy`]).
//!
//! - **No connection, service with `synproxy`**: a SYN is answered with a
//!   SYN-ACK carrying a cookie, out of the port it came in on, and
//!   nothing is stored. An ACK whose acknowledgement number minus one is
//!   a valid cookie is rewritten into the client's SYN (its ISN, the MSS
//!   and SACK the cookie carries) and goes through the normal
//!   new-connection path (scheduler, table, rewrite); the handshake is
//!   then pending. The ACK's data, if any, is not kept: the client
//!   retransmits it once the splice is done. RST, FIN and anything else
//!   are dropped and counted; nothing reaches a real server.
//! - **Pending handshake**: the real server's SYN-ACK is answered by rvs
//!   with the ACK the client would have sent, and the connection gets the
//!   sequence delta (out_seq: cookie ISN − real server ISN) that splices
//!   the two halves. A RST from the real server resets the client. Client
//!   segments meanwhile are dropped (counted); at most one per second is
//!   turned into a new SYN to the real server, `syn_retries` times; after
//!   `dup_ack_limit` drops the client is reset.

use super::{ConnDir, Pipeline, Sink, Tables, NS, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN};
use crate::buf::PacketBuf;
use crate::conn::RecordIdx;
use crate::flow::{Family, FlowKey, HashKey};
use crate::forward::synproxy::{
    check_cookie, epoch, handshake_options, make_cookie, syn_options, write_segment, CookieCheck,
    CookieData, CookieKeys, Pending, PendingTable, Segment, Tuple,
};
use crate::forward::{self, ConnSeq, Direction, SeqAdj};
use crate::parse::{parse_with, PacketMeta, ParseOptions, L3};
use crate::wire::tcp;

/// Handshakes in progress one worker can track.
const PENDING_SLOTS: usize = 8192;
/// The window rvs offers in its SYN-ACK (no window scale).
const SYNACK_WINDOW: u16 = 65535;
/// TTL of the ACK rvs sends the real server.
const ACK_TTL: u8 = 64;

/// Per-worker SYN proxy state.
pub(super) struct SynState {
    keys: CookieKeys,
    pending: PendingTable,
}

impl SynState {
    pub(super) fn new() -> Self {
        SynState {
            keys: CookieKeys::random(),
            pending: PendingTable::new(PENDING_SLOTS),
        }
    }

    /// Whether no handshake is pending: the established path's one
    /// compare.
    #[inline(always)]
    pub(super) fn idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// The TCP header fields read here.
#[derive(Clone, Copy)]
struct Hdr {
    seq: u32,
    ack: u32,
    window: u16,
}

fn hdr<B: PacketBuf>(pkt: &B, meta: &PacketMeta) -> Option<(Hdr, (u16, bool))> {
    let seg = pkt.data().get(usize::from(meta.l4_offset)..)?;
    let p = tcp::Packet::new_checked(seg).ok()?;
    let h = Hdr {
        seq: p.seq_number(),
        ack: p.ack_number(),
        window: p.window(),
    };
    Some((h, syn_options(p.options())))
}

fn pending_key<F: Family>(idx: RecordIdx) -> u32 {
    let fam = if F::NAME == crate::flow::V6::NAME {
        1u32 << 31
    } else {
        0
    };
    (idx.get() & !(1 << 31)) | fam
}

fn fingerprint<F: Family>(client: F::Addr, cport: u16) -> u32 {
    F::hash_endpoint(&HashKey::from_seed(0x0053_594e), client, cport) as u32
}

impl<B: PacketBuf> Pipeline<B> {
    /// Replaces this worker's cookie secret (golden tests; a running
    /// worker draws its own at start).
    pub fn set_synproxy_keys(&mut self, k: CookieKeys) {
        self.st.syn.keys = k;
    }

    /// Handshakes this worker is proxying (waiting for a real server's
    /// SYN-ACK).
    pub fn synproxy_pending(&self) -> u32 {
        self.st.syn.pending.len()
    }

    fn reparse(&self, pkt: &B, in_port: u16) -> Option<PacketMeta> {
        let opts = ParseOptions {
            accept_source_route: self.snap.accepts_source_route(in_port),
            ..ParseOptions::default()
        };
        parse_with(pkt.data(), opts).ok()
    }

    /// A TCP segment with no connection to a `synproxy` service.
    pub(super) fn synproxy_miss<F: Tables>(
        &mut self,
        mut pkt: B,
        meta: &PacketMeta,
        svc_id: u16,
        key: FlowKey<F>,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) {
        let flags = meta.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN);
        let counters = self.st.counters.clone();
        let c = &counters.synproxy;
        if flags != TCP_SYN && flags != TCP_ACK {
            c.no_conn_drops.inc();
            return;
        }
        if let Some(r) = crate::guard::l4_checksum(&pkt, meta) {
            return counters.parse_drop(r);
        }
        let Some((h, (mss, sack))) = hdr(&pkt, meta) else {
            c.no_conn_drops.inc();
            return;
        };
        let t = Tuple {
            src: meta.src,
            dst: meta.dst,
            sport: meta.src_port,
            dport: meta.dst_port,
        };
        let v6 = meta.l3 == L3::Ipv6;
        let conf = self.snap.synproxy;
        let now = epoch(self.st.now_ns / NS);
        let l2 = usize::from(meta.l3_offset);
        if flags == TCP_SYN {
            let d = CookieData::for_mss(mss, v6, sack && conf.sack);
            let cookie = make_cookie(&self.st.syn.keys, &t, h.seq, now, d);
            let (o, n) = handshake_options(conf.mss, d.sack);
            let s = Segment {
                src: meta.dst,
                dst: meta.src,
                sport: meta.dst_port,
                dport: meta.src_port,
                seq: cookie,
                ack: h.seq.wrapping_add(1),
                flags: TCP_SYN | TCP_ACK,
                window: SYNACK_WINDOW,
                opts: o.get(..n).unwrap_or(&[]),
                ttl: conf.ttl,
            };
            if write_segment(&mut pkt, l2, true, &s).is_ok() {
                c.cookies_sent.inc();
                sink.tx(in_port, pkt);
            } else {
                counters.fwd_error(forward::ForwardError::NoHeadroom);
            }
            return;
        }
        let isn = h.seq.wrapping_sub(1);
        let cookie = h.ack.wrapping_sub(1);
        let d = match check_cookie(&self.st.syn.keys, &t, isn, cookie, now) {
            CookieCheck::Valid(d) => d,
            CookieCheck::Expired => return c.cookies_expired.inc(),
            CookieCheck::Invalid => return c.cookies_invalid.inc(),
        };
        c.cookies_valid.inc();
        let Some(meta2) = self.to_syn(&mut pkt, meta, isn, h.window, d, in_port) else {
            return counters.fwd_error(forward::ForwardError::NoHeadroom);
        };
        self.new_conn::<F>(pkt, &meta2, svc_id, key, false, in_port, sink);
        let table = F::table(&mut self.st);
        let Some((idx, ConnDir::In)) = table.lookup(&key) else {
            // Not tracked (table full: forwarded statelessly); nothing
            // to splice.
            return c.table_full.inc();
        };
        let now_s = (self.st.now_ns / NS) as u32;
        let p = Pending {
            fp: fingerprint::<F>(key.src, key.sport),
            cookie_isn: cookie,
            client_isn: isn,
            syn_at: now_s,
            since: now_s,
            window: h.window,
            data: d,
            retries: 0,
            drops: 0,
        };
        if !self.st.syn.pending.insert(pending_key::<F>(idx), p, now_s) {
            c.table_full.inc();
        }
    }

    /// Rewrites the client segment in `pkt` (client → VIP) into the SYN
    /// the client sent rvs, and parses it again.
    fn to_syn(
        &self,
        pkt: &mut B,
        meta: &PacketMeta,
        isn: u32,
        window: u16,
        d: CookieData,
        in_port: u16,
    ) -> Option<PacketMeta> {
        let (o, n) = handshake_options(d.mss(meta.l3 == L3::Ipv6), d.sack);
        let s = Segment {
            src: meta.src,
            dst: meta.dst,
            sport: meta.src_port,
            dport: meta.dst_port,
            seq: isn,
            ack: 0,
            flags: TCP_SYN,
            window,
            opts: o.get(..n).unwrap_or(&[]),
            ttl: meta.ttl,
        };
        write_segment(pkt, usize::from(meta.l3_offset), false, &s).ok()?;
        self.reparse(pkt, in_port)
    }

    /// A packet of connection `idx` while handshakes are pending: `Some`
    /// gives it back to the normal path (not a proxied handshake), `None`
    /// when it was consumed here.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn synproxy_conn<F: Tables>(
        &mut self,
        mut pkt: B,
        meta: &PacketMeta,
        idx: RecordIdx,
        out: bool,
        t: &forward::Translation,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) -> Option<B> {
        let pk = pending_key::<F>(idx);
        let fp = {
            let table = F::table(&mut self.st);
            let Some(c) = table.get(idx) else {
                return Some(pkt);
            };
            fingerprint::<F>(c.client(), c.cport())
        };
        let Some(mut p) = self.st.syn.pending.get(pk, fp) else {
            return Some(pkt);
        };
        let counters = self.st.counters.clone();
        let c = &counters.synproxy;
        let Some((h, _)) = hdr(&pkt, meta) else {
            c.held_drops.inc();
            return None;
        };
        let flags = meta.tcp_flags;
        let l2 = usize::from(meta.l3_offset);
        let now_s = (self.st.now_ns / NS) as u32;
        if out {
            if flags & TCP_RST != 0 {
                c.handshake_rsts.inc();
                self.st.syn.pending.remove(pk);
                self.reset_client_out(pkt, meta, &p, t, in_port, sink);
                return None;
            }
            if flags & (TCP_SYN | TCP_ACK) != TCP_SYN | TCP_ACK
                || h.ack != p.client_isn.wrapping_add(1)
            {
                c.held_drops.inc();
                return None;
            }
            self.st.syn.pending.remove(pk);
            let rs_isn = h.seq;
            let delta = p.cookie_isn.wrapping_sub(rs_isn);
            // keep a client-side delta already set (none today: the
            // SYN proxy is not combined with Proxy Protocol)
            let in_seq = F::table(&mut self.st)
                .seq_adj(idx)
                .map_or(SeqAdj::default(), |s| s.in_seq);
            let s = ConnSeq {
                in_seq,
                out_seq: SeqAdj {
                    init_seq: rs_isn,
                    delta,
                    previous_delta: delta,
                },
            };
            if !F::table(&mut self.st).set_seq_adj(idx, s) {
                c.table_full.inc();
                self.reset_client_out(pkt, meta, &p, t, in_port, sink);
                return None;
            }
            // The ACK the client would have sent, in its own (client →
            // VIP) form, rewritten like any client packet.
            let seg = Segment {
                src: t.client.addr,
                dst: t.vip.addr,
                sport: t.client.port,
                dport: t.vip.port,
                seq: p.client_isn.wrapping_add(1),
                ack: rs_isn.wrapping_add(1),
                flags: TCP_ACK,
                window: p.window,
                opts: &[],
                ttl: ACK_TTL,
            };
            if write_segment(&mut pkt, l2, false, &seg).is_err() {
                counters.fwd_error(forward::ForwardError::NoHeadroom);
                return None;
            }
            let meta2 = self.reparse(&pkt, in_port)?;
            let tick = now_s;
            let _ = F::table(&mut self.st).update_state(idx, TCP_ACK, ConnDir::In, tick);
            c.spliced.inc();
            self.emit(pkt, &meta2, t, Direction::In, in_port, sink);
            return None;
        }
        // A client segment while the real server's SYN-ACK is awaited.
        let conf = self.snap.synproxy;
        if flags & TCP_RST != 0 {
            c.handshake_rsts.inc();
            self.st.syn.pending.remove(pk);
            let seg = Segment {
                src: meta.src,
                dst: meta.dst,
                sport: meta.src_port,
                dport: meta.dst_port,
                seq: p.client_isn.wrapping_add(1),
                ack: 0,
                flags: TCP_RST,
                window: 0,
                opts: &[],
                ttl: meta.ttl,
            };
            if write_segment(&mut pkt, l2, false, &seg).is_ok() {
                if let Some(m) = self.reparse(&pkt, in_port) {
                    self.emit(pkt, &m, t, Direction::In, in_port, sink);
                }
            }
            return None;
        }
        p.drops = p.drops.saturating_add(1);
        if p.drops > conf.dup_ack_limit {
            c.given_up.inc();
            self.st.syn.pending.remove(pk);
            let seg = Segment {
                src: meta.dst,
                dst: meta.src,
                sport: meta.dst_port,
                dport: meta.src_port,
                seq: p.cookie_isn.wrapping_add(1),
                ack: h.seq,
                flags: TCP_RST | TCP_ACK,
                window: 0,
                opts: &[],
                ttl: conf.ttl,
            };
            if write_segment(&mut pkt, l2, true, &seg).is_ok() {
                sink.tx(in_port, pkt);
            }
            return None;
        }
        if now_s != p.syn_at && p.retries < conf.syn_retries {
            p.retries += 1;
            p.syn_at = now_s;
            self.st.syn.pending.update(pk, p);
            c.rs_syn_retries.inc();
            if let Some(m) = self.to_syn(&mut pkt, meta, p.client_isn, p.window, p.data, in_port) {
                self.emit(pkt, &m, t, Direction::In, in_port, sink);
            }
            return None;
        }
        self.st.syn.pending.update(pk, p);
        c.held_drops.inc();
        None
    }

    /// Turns a real server's segment (RS → rvs) into a RST for the client
    /// at the cookie's sequence number and sends it the way replies go.
    fn reset_client_out(
        &mut self,
        mut pkt: B,
        meta: &PacketMeta,
        p: &Pending,
        t: &forward::Translation,
        in_port: u16,
        sink: &mut impl Sink<B>,
    ) {
        let seg = Segment {
            src: meta.src,
            dst: meta.dst,
            sport: meta.src_port,
            dport: meta.dst_port,
            seq: p.cookie_isn.wrapping_add(1),
            ack: p.client_isn.wrapping_add(1),
            flags: TCP_RST | TCP_ACK,
            window: 0,
            opts: &[],
            ttl: meta.ttl,
        };
        if write_segment(&mut pkt, usize::from(meta.l3_offset), false, &seg).is_ok() {
            if let Some(m) = self.reparse(&pkt, in_port) {
                self.emit(pkt, &m, t, Direction::Out, in_port, sink);
            }
        }
    }
}
