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

#![deny(clippy::indexing_slicing)]

pub mod codec;
pub mod policy;

pub use codec::{
    decode, max_mesg_len, DecodeError, Entry, EntrySkip, Message, MessageBuilder, SeqData, SyncConn,
};
pub use policy::{SyncMark, SyncParams};

use crate::flow::{Ownership, V4, V6};
use std::net::IpAddr;

/// The workers a synced connection is installed on: the owner of its
/// client endpoint (every client→VIP packet and every NAT reply goes
/// there), and for FullNAT the owner of its local endpoint when that is
/// another worker (replies to the local address go there; on the backup
/// the hash key and worker count may differ from the master's, so the
/// local port need not belong to the client's owner).
pub fn owners(own: &Ownership, c: &SyncConn) -> (u16, Option<u16>) {
    let of = |a: IpAddr, p: u16| match a {
        IpAddr::V4(a) => own.owner::<V4>(a, p),
        IpAddr::V6(a) => own.owner::<V6>(a, p),
    };
    let first = of(c.client, c.cport);
    let second = c.local.map(|(a, p)| of(a, p)).filter(|w| *w != first);
    (first, second)
}
