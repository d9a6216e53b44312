//! Per-worker neighbour counters: plain `u64`s written only by their
//! worker, summed by control.

macro_rules! neigh_counters {
    ($( $(#[$doc:meta])* $field:ident, )*) => {
        /// Everything neighbour handling counts. Each field's name is its
        /// stable snake_case metric name ([`NeighCounters::iter`]).
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct NeighCounters {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl NeighCounters {
            /// How many counters there are.
            pub const COUNT: usize = [$(stringify!($field),)*].len();

            /// Every counter as `(name, value)`, in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$((stringify!($field), self.$field),)*].into_iter()
            }

            /// Adds `other` into `self` (control sums the workers).
            pub fn add(&mut self, other: &NeighCounters) {
                $( self.$field = self.$field.wrapping_add(other.$field); )*
            }
        }
    };
}

neigh_counters! {
    /// ARP requests for our addresses answered.
    arp_requests_answered,
    /// ARP requests for our addresses not answered because answering is
    /// switched off for the address or its class (backup director).
    arp_requests_suppressed,
    /// ARP packets ignored: not for one of our addresses, or for one on
    /// another port.
    arp_not_ours,
    /// ARP replies addressed to us.
    arp_replies_received,
    /// ARP packets refused: truncated, not Ethernet/IPv4, unknown
    /// operation, or a multicast/broadcast sender address.
    arp_malformed,
    /// Neighbour solicitations for our addresses answered.
    nd_solicits_answered,
    /// Neighbour solicitations for our addresses not answered because
    /// answering is switched off.
    nd_solicits_suppressed,
    /// Neighbour solicitations/advertisements ignored: target not ours
    /// (NS) or not in the table (NA).
    nd_not_ours,
    /// Neighbour advertisements received.
    nd_adverts_received,
    /// NS/NA refused because the hop limit was not 255 (RFC 4861 7.1).
    nd_bad_hop_limit,
    /// NS/NA refused because the ICMPv6 checksum was wrong.
    nd_bad_checksum,
    /// NS/NA refused otherwise: truncated, non-zero code, multicast
    /// target, a link-layer option where none may be, or an option too
    /// short.
    nd_malformed,
    /// Neighbour entries created or updated from ARP or ND (a new MAC, or
    /// an incomplete entry resolved).
    learned,
    /// Times a known neighbour's MAC changed.
    mac_changed,
    /// ARP requests/neighbour solicitations asked for (resolution and
    /// probes of stale entries).
    solicits_sent,
    /// Packets queued waiting for resolution.
    queued,
    /// Queued packets released when their neighbour resolved.
    released,
    /// Packets dropped because the per-neighbour or total wait queue was
    /// full (the newest packet is the one dropped).
    neigh_queue_full,
    /// Resolutions given up after the last unanswered solicitation.
    resolution_failed,
    /// Queued packets dropped because their resolution failed.
    queue_dropped_failed,
    /// ARP/ND from another MAC claiming one of our addresses (the HA peer
    /// taking a VIP over, or a duplicate address); never learned.
    addr_conflict,
    /// Entries removed after staying stale past the stale timeout.
    aged_out,
    /// Entries evicted to make room for a new one.
    evicted,
    /// New neighbours refused because the table was full of entries that
    /// could not be evicted.
    table_full,
    /// Packets handed to output that were dropped before resolution: not
    /// an Ethernet frame, or an unknown port.
    bad_frame,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sum() {
        let mut a = NeighCounters {
            learned: 2,
            ..Default::default()
        };
        let b = NeighCounters {
            learned: 3,
            neigh_queue_full: 1,
            ..Default::default()
        };
        a.add(&b);
        assert_eq!(a.iter().count(), NeighCounters::COUNT);
        let m: Vec<_> = a.iter().filter(|(_, v)| *v != 0).collect();
        assert_eq!(m, vec![("learned", 5), ("neigh_queue_full", 1)]);
    }
}
