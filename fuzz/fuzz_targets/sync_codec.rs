//! LVS sync v1 messages from the network: `decode` never panics; every
//! entry it accepts re-encodes (when its families match) to a message that
//! decodes to the same connection (less HASHED, which senders clear).
#![no_main]

use dataplane::sync::codec::{decode, MessageBuilder, F_HASHED};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for syncid in [0u8, 1] {
        let Ok(msg) = decode(data, syncid) else {
            continue;
        };
        for e in msg.entries.iter().flatten() {
            let mut c = e.conn;
            let _ = (c.fwd(), c.tcp_state());
            let mut b = MessageBuilder::new(7, 1500);
            // A backup keeps HASHED as received; a sender clears it (Linux).
            c.flags &= !F_HASHED;
            if b.push(&c) {
                let again = decode(b.bytes(), 7).expect("own message decodes");
                let first = again.entries.first().and_then(|r| r.as_ref().ok());
                assert_eq!(first.map(|e| e.conn), Some(c), "sync round trip");
            }
        }
    }
});
