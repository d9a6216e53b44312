//! Connection synchronisation (issue 8): the LVS sync protocol version 1
//! codec and IPVS's "when to sync a connection" policy.
//!
//! Pure logic, no DPDK, no sockets: the workers use [`SyncConn`] and
//! [`policy`] on the packet path (only when the snapshot enables sync),
//! control's sync thread uses [`codec`] to batch connections into
//! messages and to parse what a peer sends. It lives in the dataplane
//! crate because both the worker (events, installs) and rvsd (sockets)
//! need the types, and the dataplane tests run master → wire → backup
//! without rvsd.

pub mod codec;
pub mod policy;

pub use codec::{
    decode, max_mesg_len, DecodeError, Entry, EntrySkip, Message, MessageBuilder, SeqData,
    SyncConn,
};
pub use policy::{SyncMark, SyncParams};
