//! The worker's packet path end to end on byte buffers: packets in,
//! exact packets out, counters. No EAL: the same code runs on mbufs.

mod common;

use common::*;
use dataplane::buf::{PacketBuf, VecBuf};
use dataplane::conn::FwdMode;
use dataplane::flow::HashKey;
use dataplane::pipeline::{Event, Pipeline, PipelineConfig, Sink};
use dataplane::sched::SchedKind;
use dataplane::snapshot::{Role, Snapshot};
use dataplane::stats::{PathDrop, WorkerCounters};
use dataplane::wire::ethernet::MacAddr;
use std::sync::Arc;

#[derive(Default)]
struct Collect {
    tx: Vec<(u16, Vec<u8>)>,
    handoffs: Vec<(u16, Vec<u8>)>,
    events: Vec<Event>,
    kernel: Vec<(u16, Vec<u8>)>,
    /// Ports with a TAP (exception path).
    taps: Vec<u16>,
}

impl Sink<VecBuf> for Collect {
    fn tx(&mut self, port: u16, pkt: VecBuf) {
        self.tx.push((port, pkt.data().to_vec()));
    }
    fn handoff(&mut self, worker: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        self.handoffs.push((worker, pkt.data().to_vec()));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecBuf> {
        Some(VecBuf::with_room(128, 256))
    }
    fn event(&mut self, ev: Event) {
        self.events.push(ev);
    }
    fn to_kernel(&mut self, port: u16, pkt: VecBuf) -> Result<(), VecBuf> {
        if !self.taps.contains(&port) {
            return Err(pkt);
        }
        self.kernel.push((port, pkt.data().to_vec()));
        Ok(())
    }
}

fn pipeline(
    snap: Arc<Snapshot>,
    worker: u16,
    workers: u16,
    cap: u32,
) -> (Pipeline<VecBuf>, Arc<WorkerCounters>) {
    let counters = Arc::new(WorkerCounters::new(16, 4096, 2, workers as usize));
    let p = Pipeline::new(
        &PipelineConfig::new(worker, workers, cap, cap),
        snap,
        HashKey::from_seed(7),
        counters.clone(),
    )
    .expect("pipeline");
    (p, counters)
}

#[test]
fn nat_connection_resolves_next_hop_then_forwards_both_ways() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 8080), (v4("198.19.0.12"), 8080)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut p, counters) = pipeline(snap, 0, 1, 1024);
    let mut out = Collect::default();
    let syn = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, true, false, b"");
    p.process(
        VecBuf::new(&syn),
        CLIENT_PORT,
        1_000_000_000,
        false,
        &mut out,
    );
    // The real server's MAC is unknown: an ARP request goes out of the
    // server port, the SYN waits.
    assert_eq!(out.tx.len(), 1, "{:?}", out.tx);
    let (port, arp) = &out.tx[0];
    assert_eq!(*port, SERVER_PORT);
    assert_eq!(&arp[12..14], &[0x08, 0x06]);
    assert_eq!(&arp[0..6], &[0xff; 6]);
    assert_eq!(&arp[38..42], &[198, 19, 0, 11], "asks for rs1");
    out.tx.clear();

    // rs1 answers; the SYN leaves rewritten to rs1:8080.
    let reply = arp_reply(MAC_RS1, "198.19.0.11", MAC_P1, "198.19.0.1");
    p.process(
        VecBuf::new(&reply),
        SERVER_PORT,
        1_100_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    assert_eq!(out.events.len(), 1, "learning is reported to control");
    let (port, fwd) = &out.tx[0];
    assert_eq!(*port, SERVER_PORT);
    let (src, sport, dst, dport, mac) = check_out(fwd);
    assert_eq!((src, sport), (v4("198.18.0.10"), 40000));
    assert_eq!((dst, dport), (v4("198.19.0.11"), 8080));
    assert_eq!(mac, MAC_RS1);
    assert_eq!(&fwd[6..12], &MAC_P1);
    out.tx.clear();

    // The SYN-ACK comes back from rs1 and leaves as VIP:80 → client,
    // through the default gateway's MAC (learned from its ARP reply).
    p.learn(
        v4("198.18.0.10"),
        CLIENT_PORT,
        MacAddr(MAC_GW),
        1_200_000_000,
        &mut out,
    );
    let synack = tcp4("198.19.0.11", 8080, "198.18.0.10", 40000, true, true, b"");
    p.process(
        VecBuf::new(&synack),
        SERVER_PORT,
        1_300_000_000,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1);
    let (port, back) = &out.tx[0];
    assert_eq!(*port, CLIENT_PORT);
    let (src, sport, dst, dport, mac) = check_out(back);
    assert_eq!(
        (src, sport, dst, dport),
        (v4("198.18.0.100"), 80, v4("198.18.0.10"), 40000)
    );
    assert_eq!(mac, MAC_GW);
    out.tx.clear();

    // Data on the established connection follows it; a second client goes
    // to rs2 (round robin).
    let data = tcp4(
        "198.18.0.10",
        40000,
        "198.18.0.100",
        80,
        false,
        true,
        b"GET / HTTP/1.0\r\n\r\n",
    );
    p.process(
        VecBuf::new(&data),
        CLIENT_PORT,
        1_400_000_000,
        false,
        &mut out,
    );
    assert_eq!(check_out(&out.tx[0].1).2, v4("198.19.0.11"));
    p.learn(
        v4("198.19.0.12"),
        SERVER_PORT,
        MacAddr(MAC_RS2),
        1_400_000_000,
        &mut out,
    );
    out.tx.clear();
    let syn2 = tcp4("198.18.0.11", 40001, "198.18.0.100", 80, true, false, b"");
    p.process(
        VecBuf::new(&syn2),
        CLIENT_PORT,
        1_500_000_000,
        false,
        &mut out,
    );
    let (_, _, dst, dport, mac) = check_out(&out.tx[0].1);
    assert_eq!((dst, dport, mac), (v4("198.19.0.12"), 8080, MAC_RS2));

    let s = counters.services[0].read();
    assert_eq!(s.conns, 2);
    assert_eq!(s.inpkts, 3);
    assert_eq!(s.outpkts, 1);
    assert_eq!(p.conns_v4().len(), 2);
}

#[test]
fn drops_are_counted_by_reason() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut p, c) = pipeline(snap, 0, 1, 1024);
    let mut out = Collect::default();
    // ACK without a connection: IPVS drops it.
    p.process(
        VecBuf::new(&tcp4(
            "198.18.0.10",
            1,
            "198.18.0.100",
            80,
            false,
            true,
            b"",
        )),
        0,
        0,
        false,
        &mut out,
    );
    // Not for us.
    p.process(
        VecBuf::new(&tcp4(
            "198.18.0.10",
            1,
            "198.18.0.200",
            80,
            true,
            false,
            b"",
        )),
        0,
        0,
        false,
        &mut out,
    );
    // Truncated.
    p.process(VecBuf::new(&[0u8; 20]), 0, 0, false, &mut out);
    assert!(out.tx.is_empty());
    assert_eq!(c.path_drops[PathDrop::TcpNoConn.index()].get(), 1);
    assert_eq!(c.path_drops[PathDrop::NotOurs.index()].get(), 1);
    assert_eq!(c.parse_drops.iter().map(|x| x.get()).sum::<u64>(), 1);
}

#[test]
fn backup_role_serves_no_vip() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Nat,
        )],
        Role::Backup,
    );
    let (mut p, c) = pipeline(snap, 0, 1, 1024);
    let mut out = Collect::default();
    p.process(
        VecBuf::new(&tcp4(
            "198.18.0.10",
            1,
            "198.18.0.100",
            80,
            true,
            false,
            b"",
        )),
        0,
        0,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty());
    assert_eq!(c.path_drops[PathDrop::Backup.index()].get(), 1);
}

#[test]
fn packets_of_another_workers_flow_are_handed_over() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut w0, c0) = pipeline(snap.clone(), 0, 2, 1024);
    let (mut w1, _) = pipeline(snap, 1, 2, 1024);
    let mut out = Collect::default();
    let mut handed = 0;
    for port in 1000..1100u16 {
        let syn = tcp4("198.18.0.10", port, "198.18.0.100", 80, true, false, b"");
        w0.process(VecBuf::new(&syn), 0, 0, false, &mut out);
        if let Some((to, pkt)) = out.handoffs.pop() {
            assert_eq!(to, 1);
            handed += 1;
            // The owner processes it (no second handoff) and creates the
            // connection in its own table.
            w1.process(VecBuf::new(&pkt), 0, 0, true, &mut out);
            assert!(out.handoffs.is_empty());
        }
    }
    assert!(handed > 20 && handed < 80, "about half: {handed}");
    assert_eq!(c0.handoff_out[1].get(), handed);
    assert_eq!(w0.conns_v4().len() as u64 + handed, 100);
    assert_eq!(w1.conns_v4().len() as u64, handed);
}

#[test]
fn full_table_falls_back_to_stateless_consistent_hashing() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80), (v4("198.19.0.12"), 80)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut p, c) = pipeline(snap, 0, 1, 64);
    let mut out = Collect::default();
    p.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    p.learn(
        v4("198.19.0.12"),
        SERVER_PORT,
        MacAddr(MAC_RS2),
        0,
        &mut out,
    );
    let cap = p.conns_v4().capacity();
    let mut first_dst = Vec::new();
    for port in 0..(cap as u16 + 50) {
        let syn = tcp4(
            "198.18.0.10",
            2000 + port,
            "198.18.0.100",
            80,
            true,
            false,
            b"",
        );
        p.process(VecBuf::new(&syn), 0, 0, false, &mut out);
        first_dst.push(check_out(&out.tx.last().expect("forwarded").1).2);
    }
    assert!(c.stateless_fallbacks.get() >= 50);
    // The same flows again (no connection for the overflow): each goes
    // where it went the first time.
    for port in cap as u16..(cap as u16 + 50) {
        let ack = tcp4(
            "198.18.0.10",
            2000 + port,
            "198.18.0.100",
            80,
            true,
            false,
            b"x",
        );
        p.process(VecBuf::new(&ack), 0, 0, false, &mut out);
        assert_eq!(
            check_out(&out.tx.last().expect("forwarded").1).2,
            first_dst[port as usize]
        );
    }
}

#[test]
fn dr_changes_only_the_destination_mac() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Dr,
        )],
        Role::Master,
    );
    let (mut p, _) = pipeline(snap, 0, 1, 1024);
    let mut out = Collect::default();
    p.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    let syn = tcp4("198.18.0.10", 4000, "198.18.0.100", 80, true, false, b"");
    p.process(VecBuf::new(&syn), CLIENT_PORT, 0, false, &mut out);
    let (port, f) = &out.tx[0];
    assert_eq!(*port, SERVER_PORT);
    assert_eq!(&f[0..6], &MAC_RS1);
    assert_eq!(&f[6..12], &MAC_P1);
    assert_eq!(&f[12..], &syn[12..], "IP packet untouched");
}

#[test]
fn fullnat_replies_return_to_the_creating_worker() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::FullNat,
        )],
        Role::Master,
    );
    let workers = 4;
    let mut pipes: Vec<_> = (0..workers)
        .map(|w| pipeline(snap.clone(), w, workers, 1024).0)
        .collect();
    let mut out = Collect::default();
    for p in pipes.iter_mut() {
        p.learn(
            v4("198.19.0.11"),
            SERVER_PORT,
            MacAddr(MAC_RS1),
            0,
            &mut out,
        );
        p.learn(v4("198.18.0.10"), CLIENT_PORT, MacAddr(MAC_GW), 0, &mut out);
    }
    for cport in 5000..5040u16 {
        out.tx.clear();
        out.handoffs.clear();
        let syn = tcp4("198.18.0.10", cport, "198.18.0.100", 80, true, false, b"");
        pipes[0].process(VecBuf::new(&syn), CLIENT_PORT, 0, false, &mut out);
        let owner = match out.handoffs.pop() {
            Some((w, pkt)) => {
                pipes[w as usize].process(VecBuf::new(&pkt), CLIENT_PORT, 0, true, &mut out);
                w as usize
            }
            None => 0,
        };
        let (src, lport, dst, dport, _) = check_out(&out.tx.last().expect("sent").1);
        assert_eq!(
            (src, dst, dport),
            (v4("198.19.0.250"), v4("198.19.0.11"), 80)
        );
        // The reply (RS → laddr:lport) arrives on worker 0 and is owned by
        // the creating worker.
        let reply = tcp4("198.19.0.11", 80, "198.19.0.250", lport, true, true, b"");
        out.tx.clear();
        pipes[0].process(VecBuf::new(&reply), SERVER_PORT, 0, false, &mut out);
        let to = match out.handoffs.pop() {
            Some((w, pkt)) => {
                pipes[w as usize].process(VecBuf::new(&pkt), SERVER_PORT, 0, true, &mut out);
                w as usize
            }
            None => 0,
        };
        assert_eq!(to, owner, "reply handled by the creating worker");
        let (src, sport, dst, dport, _) = check_out(&out.tx.last().expect("reply").1);
        assert_eq!(
            (src, sport, dst, dport),
            (v4("198.18.0.100"), 80, v4("198.18.0.10"), cport)
        );
    }
}

#[test]
fn persistence_holds_across_workers_through_relayed_templates() {
    use dataplane::sched::{Persistence, SchedConfig, ServiceSched};
    let mut svc = service(
        0,
        v4("198.18.0.100"),
        80,
        SchedKind::Rr,
        &[(v4("198.19.0.11"), 80), (v4("198.19.0.12"), 80)],
        FwdMode::Nat,
    );
    let mut sc = SchedConfig::new(SchedKind::Rr);
    sc.persistence = Some(Persistence::new(300));
    svc.sched = ServiceSched::new(sc, svc.sched.reals().to_vec(), None, 1).expect("sched");
    let snap = snapshot(vec![svc], Role::Master);
    let mut w = [
        pipeline(snap.clone(), 0, 2, 1024).0,
        pipeline(snap, 1, 2, 1024).0,
    ];
    let mut out = Collect::default();
    for p in w.iter_mut() {
        p.learn(
            v4("198.19.0.11"),
            SERVER_PORT,
            MacAddr(MAC_RS1),
            0,
            &mut out,
        );
        p.learn(
            v4("198.19.0.12"),
            SERVER_PORT,
            MacAddr(MAC_RS2),
            0,
            &mut out,
        );
    }
    let mut servers = std::collections::HashSet::new();
    let mut owners = std::collections::HashSet::new();
    for cport in 30000..30040u16 {
        out.tx.clear();
        let syn = tcp4("198.18.0.10", cport, "198.18.0.100", 80, true, false, b"");
        w[0].process(
            VecBuf::new(&syn),
            CLIENT_PORT,
            1_000_000_000,
            false,
            &mut out,
        );
        let owner = match out.handoffs.pop() {
            Some((to, pkt)) => {
                w[to as usize].process(
                    VecBuf::new(&pkt),
                    CLIENT_PORT,
                    1_000_000_000,
                    true,
                    &mut out,
                );
                to as usize
            }
            None => 0,
        };
        owners.insert(owner);
        // What control's relay does: every template event reaches the
        // other worker.
        for ev in std::mem::take(&mut out.events) {
            if let Event::Template { svc, client, rs } = ev {
                w[1 - owner].adopt_template(svc, client, rs, 1_000_000_000);
            }
        }
        servers.insert(check_out(&out.tx.last().expect("forwarded").1).2);
    }
    assert_eq!(owners.len(), 2, "connections landed on both workers");
    assert_eq!(servers.len(), 1, "one client, one real server: {servers:?}");
}

#[test]
fn gratuitous_arp_on_start_and_on_takeover() {
    let svc = || {
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Nat,
        )]
    };
    let (mut p, _) = pipeline(snapshot(svc(), Role::Backup), 0, 1, 1024);
    let mut out = Collect::default();
    p.housekeeping(0, 64, &mut out);
    // A backup announces its own port addresses, never the VIP.
    let targets = |out: &Collect| -> Vec<[u8; 4]> {
        out.tx
            .iter()
            .filter(|(_, f)| f[12..14] == [0x08, 0x06])
            .map(|(_, f)| [f[28], f[29], f[30], f[31]])
            .collect()
    };
    let t = targets(&out);
    assert!(t.contains(&[198, 18, 0, 1]) && t.contains(&[198, 19, 0, 1]));
    assert!(!t.contains(&[198, 18, 0, 100]));
    out.tx.clear();
    // Becoming master: the VIP is announced, out of the client port, with
    // sender = target = VIP and the port's MAC, three rounds a second apart.
    let _old = p.install(snapshot(svc(), Role::Master));
    let mut rounds = 0;
    for s in 1..=5u64 {
        p.housekeeping(s * 1_000_000_000 + 1, 64, &mut out);
        let vip: Vec<_> = out
            .tx
            .iter()
            .filter(|(_, f)| f[12..14] == [0x08, 0x06] && f[28..32] == [198, 18, 0, 100])
            .collect();
        if !vip.is_empty() {
            rounds += 1;
            let (port, f) = vip[0];
            assert_eq!(*port, CLIENT_PORT);
            assert_eq!(&f[0..6], &[0xff; 6]);
            assert_eq!(&f[22..28], &MAC_P0, "sender MAC is the port's");
            assert_eq!(
                &f[38..42],
                &[198, 18, 0, 100],
                "target = sender (gratuitous)"
            );
        }
        out.tx.clear();
    }
    assert_eq!(rounds, 3);
}

#[test]
fn host_traffic_takes_the_exception_path_to_the_kernel() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut p, c) = pipeline(snap, 0, 1, 1024);
    let mut out = Collect {
        taps: vec![CLIENT_PORT],
        ..Collect::default()
    };
    // SSH to the director's own address, VRRP (multicast), a reply to the
    // kernel's own ARP request: all for the host.
    let ssh = tcp4("198.18.0.10", 50000, "198.18.0.1", 22, true, false, b"");
    p.process(VecBuf::new(&ssh), CLIENT_PORT, 0, false, &mut out);
    let mut vrrp = tcp4("198.18.0.2", 1, "224.0.0.18", 1, false, false, b"");
    vrrp[0..6].copy_from_slice(&[0x01, 0x00, 0x5e, 0, 0, 0x12]);
    p.process(VecBuf::new(&vrrp), CLIENT_PORT, 0, false, &mut out);
    let arp = arp_reply(MAC_GW, "198.18.0.254", MAC_P0, "198.18.0.1");
    p.process(VecBuf::new(&arp), CLIENT_PORT, 0, false, &mut out);
    assert_eq!(
        out.kernel.len(),
        3,
        "{:?}",
        out.kernel.iter().map(|k| k.1.len()).collect::<Vec<_>>()
    );
    assert_eq!(out.kernel[0].1, ssh, "handed over untouched");
    assert!(out.tx.is_empty());
    assert_eq!(c.to_kernel.get(), 3);
    // The VIP is not the host's: a SYN to it is load balanced, not passed up.
    p.learn(
        v4("198.19.0.11"),
        SERVER_PORT,
        MacAddr(MAC_RS1),
        0,
        &mut out,
    );
    let syn = tcp4("198.18.0.10", 50001, "198.18.0.100", 80, true, false, b"");
    p.process(VecBuf::new(&syn), CLIENT_PORT, 0, false, &mut out);
    assert_eq!(out.kernel.len(), 3);
    assert_eq!(out.tx.len(), 1);
    // A port without a TAP drops host traffic as not ours.
    let ssh2 = tcp4("198.19.0.11", 50000, "198.19.0.1", 22, true, false, b"");
    p.process(VecBuf::new(&ssh2), SERVER_PORT, 0, false, &mut out);
    assert_eq!(out.kernel.len(), 3);
    assert_eq!(c.path_drops[PathDrop::NotOurs.index()].get(), 1);
}

#[test]
fn fullnat_local_addresses_move_with_the_master_role() {
    let svc = || {
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 80)],
            FwdMode::FullNat,
        )]
    };
    let (mut p, _) = pipeline(snapshot(svc(), Role::Backup), 0, 1, 1024);
    let mut out = Collect::default();
    let laddr = [198, 19, 0, 250];
    // A backup does not answer ARP for the local address...
    let who_has = |target: [u8; 4]| {
        let mut f = arp_reply(MAC_RS1, "198.19.0.11", [0xff; 6], "198.19.0.250");
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[21] = 1; // request
        f[32..38].copy_from_slice(&[0; 6]);
        f[38..42].copy_from_slice(&target);
        f
    };
    p.process(
        VecBuf::new(&who_has(laddr)),
        SERVER_PORT,
        0,
        false,
        &mut out,
    );
    assert!(out.tx.is_empty(), "backup answered for the local address");
    // ...the master does, and announces it on takeover.
    let _old = p.install(snapshot(svc(), Role::Master));
    p.housekeeping(1, 64, &mut out);
    assert!(out.tx.iter().any(|(port, f)| *port == SERVER_PORT
        && f[12..14] == [0x08, 0x06]
        && f[28..32] == laddr
        && f[38..42] == laddr));
    out.tx.clear();
    p.process(
        VecBuf::new(&who_has(laddr)),
        SERVER_PORT,
        0,
        false,
        &mut out,
    );
    assert_eq!(out.tx.len(), 1, "master answers");
    assert_eq!(&out.tx[0].1[28..32], &laddr);
}

/// The adjacency cache (established packets skip the route and neighbour
/// lookups) never outlives what it cached: a neighbour that changes its
/// MAC is followed at once, and one past its reachable time is still used
/// but probed, exactly as without the cache.
#[test]
fn established_flow_follows_neighbour_changes() {
    let snap = snapshot(
        vec![service(
            0,
            v4("198.18.0.100"),
            80,
            SchedKind::Rr,
            &[(v4("198.19.0.11"), 8080)],
            FwdMode::Nat,
        )],
        Role::Master,
    );
    let (mut p, _) = pipeline(snap.clone(), 0, 1, 1024);
    let mut out = Collect::default();
    let rs = v4("198.19.0.11");
    p.learn(rs, SERVER_PORT, MacAddr(MAC_RS1), 0, &mut out);
    let syn = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, true, false, b"");
    let ack = tcp4("198.18.0.10", 40000, "198.18.0.100", 80, false, true, b"x");
    let send = |p: &mut Pipeline<VecBuf>, pkt: &[u8], now: u64| {
        let mut out = Collect::default();
        p.process(VecBuf::new(pkt), CLIENT_PORT, now, false, &mut out);
        out.tx
    };
    let sec = 1_000_000_000u64;
    let first = send(&mut p, &syn, sec);
    assert_eq!(first.len(), 1);
    assert_eq!(&first[0].1[0..6], &MAC_RS1);
    for i in 0..3 {
        let tx = send(&mut p, &ack, 2 * sec + i);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].0, SERVER_PORT);
        assert_eq!(&tx[0].1[0..6], &MAC_RS1);
        assert_eq!(&tx[0].1[6..12], &MAC_P1);
    }
    // The real server's MAC changes (it moved to another NIC).
    p.learn(rs, SERVER_PORT, MacAddr(MAC_RS2), 3 * sec, &mut out);
    let tx = send(&mut p, &ack, 4 * sec);
    assert_eq!(tx.len(), 1);
    assert_eq!(&tx[0].1[0..6], &MAC_RS2, "the new MAC at once");
    let again = send(&mut p, &ack, 5 * sec);
    assert_eq!(again, tx, "and on every packet after it");
    // Past the reachable time (30 s after the last confirmation) the entry
    // is stale: still used, and a unicast probe goes out with the packet.
    let tx = send(&mut p, &ack, 34 * sec);
    assert_eq!(tx.len(), 2, "{tx:?}");
    let data: Vec<_> = tx
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x00])
        .collect();
    let probes: Vec<_> = tx
        .iter()
        .filter(|(_, f)| f[12..14] == [0x08, 0x06])
        .collect();
    assert_eq!((data.len(), probes.len()), (1, 1), "{tx:?}");
    assert_eq!(&data[0].1[0..6], &MAC_RS2);
    assert_eq!(&probes[0].1[0..6], &MAC_RS2, "unicast probe");
    // A new snapshot drops what was cached: the packets still leave the
    // same, worked out afresh.
    p.install(snap);
    let tx = send(&mut p, &ack, 34 * sec + 1);
    assert_eq!(tx.len(), 1);
    assert_eq!(&tx[0].1[0..6], &MAC_RS2);
}
