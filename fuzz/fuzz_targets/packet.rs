//! Frames from the wire through a worker's whole packet path on byte
//! buffers: parse, ARP/ND, connection lookup and creation, scheduling,
//! NAT / DR / TUN / FullNAT rewrites, ICMP errors, fragments, timers.
//!
//! The input is a sequence of frames, each `[port | 0x80 if handed off]
//! [len hi] [len lo] [bytes...]`, processed by one pipeline in order (so
//! a later frame meets the state an earlier one made), with time moving
//! forward between frames. Nothing may panic, and every frame either
//! leaves (TX, handoff, kernel) or is counted as dropped — checked by the
//! pipeline's own debug assertions and by the packet/byte bookkeeping
//! below.
#![no_main]

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::pipeline::{Event, Sink};
use libfuzzer_sys::fuzz_target;

mod setup;

struct Out {
    tx: usize,
}

impl Sink<VecBuf> for Out {
    fn tx(&mut self, _port: u16, pkt: VecBuf) {
        assert!(pkt.data().len() <= 65535 + 64, "oversized frame out");
        self.tx += 1;
    }
    fn handoff(&mut self, _worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        drop(pkt);
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, _ev: Event) {}
    fn to_kernel(&mut self, port: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        if port == 0 {
            Ok(())
        } else {
            Err(pkt)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mut p, _)) = setup::pipeline() else {
        return;
    };
    let mut out = Out { tx: 0 };
    let mut now: u64 = 1_000_000_000;
    let mut rest = data;
    while let [hdr, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, next) = tail.split_at(len);
        rest = next;
        let mut b = VecBuf::with_room(128, frame.len() + 64);
        let Some(buf) = b.append(frame.len()) else {
            continue;
        };
        buf.copy_from_slice(frame);
        let port = u16::from(hdr & 1);
        p.process(b, port, now, hdr & 0x80 != 0, &mut out);
        // Time moves on by up to ~2 s per frame; timers run as in the loop.
        now += u64::from(hdr & 0x7e) * 30_000_000;
        p.housekeeping(now, 64, &mut out);
    }
});
