//! Per-worker connection tables (ARCHITECTURE §5): fixed capacity, one
//! cache-line buckets, both directions of a connection indexed to one
//! record, IPVS's TCP state machine and timeouts, and expiry through a
//! hashed timer wheel. Nothing here allocates after construction or takes
//! a lock: each worker owns its table.
//!
//! Memory (see `memory_per_connection` in the tests): an IPv4 record is 44
//! bytes, the index about 18.3 bytes per connection (two 6-byte entries at
//! 70 % load when full of NAT connections), the wheel well under one byte:
//! about 63 bytes per connection at 1K capacity and 62.5 at 1M. An IPv6
//! record is 92 bytes (four 16-byte addresses), about 111 bytes per
//! connection all included.
//!
//! TCP sequence deltas (Proxy Protocol, SYN proxy) are kept beside the
//! records in a preallocated side table (`seqside`); persistence templates
//! live with the schedulers (`crate::sched`), not here.
//!
//! Limits: service ids are 16 bits (65 535 services per director); no
//! IPVS "secure_tcp" (SYN-flood) tables.

#![deny(clippy::indexing_slicing)]

mod record;
mod seqside;
mod state;
mod table;

pub use record::{Conn, Direction, FwdMode, NewConn};
pub use state::{
    tcp_next_state, TcpDir, TcpState, Timeouts, TCP_ACK, TCP_FIN, TCP_RST, TCP_STATES, TCP_SYN,
};
pub use table::{
    Activity, ConfigError, ConnConfig, ConnStats, ConnTable, InsertError, RecordIdx, StateChange,
    BUCKET_ENTRIES, MAX_CAPACITY, MAX_WHEEL_SLOTS,
};
