//! Differential: the staged burst path against packet-at-a-time.
//!
//! The input is the `packet` target's frame sequence (`[flags][len hi]
//! [len lo][bytes...]`; flags: bit 0 the port, 0x80 handed off by another
//! worker, 0x40 the burst ends after this frame, 0x3e time to move on
//! after the burst). Two pipelines built alike get the same frames: one
//! through `Pipeline::process` one at a time, the other through
//! `Pipeline::process_burst` one burst at a time (a burst also ends where
//! the handoff flag changes, as in the worker loop). Everything they hand
//! their sinks, in order and byte for byte, and every counter must be the
//! same.
#![no_main]

use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::pipeline::{Event, Sink};
use libfuzzer_sys::fuzz_target;

mod setup;

#[derive(Default)]
struct Log {
    out: Vec<(u8, u16, Vec<u8>)>,
}

impl Sink<VecBuf> for Log {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        self.out.push((0, port, pkt.data().to_vec()));
    }
    fn handoff(&mut self, worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        self.out.push((1, worker, pkt.data().to_vec()));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, ev: Event) {
        self.out.push((2, 0, format!("{ev:?}").into_bytes()));
    }
    fn to_kernel(&mut self, port: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        if port != 0 {
            return Err(pkt);
        }
        self.out.push((3, port, pkt.data().to_vec()));
        Ok(())
    }
}

fn buf(frame: &[u8]) -> VecBuf {
    VecBuf::from_slice(frame, 128, 64)
}

fuzz_target!(|data: &[u8]| {
    let (Some((mut one, c_one)), Some((mut staged, c_staged))) =
        (setup::pipeline(), setup::pipeline())
    else {
        return;
    };
    let (mut l_one, mut l_staged) = (Log::default(), Log::default());
    let mut now: u64 = 1_000_000_000;
    let mut burst: Vec<(&[u8], u16)> = Vec::new();
    let mut flag = false;
    let mut rest = data;
    loop {
        let next = match rest {
            [hdr, hi, lo, tail @ ..] => {
                let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                let (frame, after) = tail.split_at(len);
                rest = after;
                Some((*hdr, frame))
            }
            _ => None,
        };
        // A burst ends before a frame with the other handoff flag, after
        // a frame that says so, and at the end of the input.
        let cut = match next {
            Some((hdr, _)) => !burst.is_empty() && (hdr & 0x80 != 0) != flag,
            None => true,
        };
        if cut && !burst.is_empty() {
            for (f, port) in &burst {
                one.process(buf(f), *port, now, flag, &mut l_one);
            }
            staged.process_burst(
                burst.drain(..).map(|(f, port)| (buf(f), port)),
                now,
                flag,
                &mut l_staged,
            );
            one.housekeeping(now, 64, &mut l_one);
            staged.housekeeping(now, 64, &mut l_staged);
        }
        let Some((hdr, frame)) = next else { break };
        flag = hdr & 0x80 != 0;
        burst.push((frame, u16::from(hdr & 1)));
        if hdr & 0x40 != 0 {
            for (f, port) in &burst {
                one.process(buf(f), *port, now, flag, &mut l_one);
            }
            staged.process_burst(
                burst.drain(..).map(|(f, port)| (buf(f), port)),
                now,
                flag,
                &mut l_staged,
            );
            now += u64::from(hdr & 0x3e) * 30_000_000;
            one.housekeeping(now, 64, &mut l_one);
            staged.housekeeping(now, 64, &mut l_staged);
        }
    }
    assert_eq!(l_one.out, l_staged.out, "outputs differ");
    // Every counter agrees but the fast path's own (packet-at-a-time
    // processing never takes it).
    let fast = format!("fast_path: Counter({})", c_staged.fast_path.get());
    assert_eq!(
        format!("{c_one:?}"),
        format!("{c_staged:?}").replace(&fast, "fast_path: Counter(0)"),
        "counters differ"
    );
    assert_eq!(one.conns_v4().len(), staged.conns_v4().len());
    assert_eq!(one.conns_v6().len(), staged.conns_v6().len());
});
