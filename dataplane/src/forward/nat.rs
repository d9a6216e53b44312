//! NAT, FullNAT and DR: in-place rewrites of addresses, ports and MACs.

#![deny(clippy::indexing_slicing)]

use super::{
    check_mtu, client_port, icmp, ip_mut, rewrite, same_family, server_port, set_l2, ForwardError,
    L2Out, Translation, Verdict,
};
use crate::buf::PacketBuf;
use crate::parse::PacketMeta;
use crate::wire::nat::Side;

/// The local address of a FullNAT translation, checked for the family.
fn laddr(meta: &PacketMeta, t: &Translation) -> Result<super::Endpoint, ForwardError> {
    let l = t.laddr.ok_or(ForwardError::NoLocalAddress)?;
    if !same_family(meta, l.addr) {
        return Err(ForwardError::FamilyMismatch);
    }
    Ok(l)
}

/// Checks that every address of `t` the rewrite writes is the packet's
/// family.
fn families(meta: &PacketMeta, t: &Translation) -> Result<(), ForwardError> {
    if [t.client.addr, t.vip.addr, t.rip.addr]
        .iter()
        .all(|a| same_family(meta, *a))
    {
        Ok(())
    } else {
        Err(ForwardError::FamilyMismatch)
    }
}

/// NAT, client → real server: destination VIP:vport → RIP:rport.
///
/// An ICMP error arriving from the client side about the connection (found
/// with [`super::icmp_inner_flow`]) is translated instead: outer
/// destination → RIP, quoted source VIP:vport → RIP:rport.
pub fn nat_in<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    families(meta, t)?;
    if let Some(v) = check_mtu(buf, meta, 0, out.mtu)? {
        return Ok(v);
    }
    if meta.is_icmp_error() {
        icmp::translate(buf, meta, &icmp::nat_in_plan(t))?;
    } else {
        let port = server_port(meta, t.rip.port);
        rewrite(ip_mut(buf, meta)?, Side::Dst, t.rip.addr, port)?;
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}

/// NAT, real server → client: source RIP:rport → VIP:vport.
///
/// An ICMP error arriving from the real-server side is translated
/// instead: outer source → VIP (as IPVS does, whoever sent it), quoted
/// destination RIP:rport → VIP:vport.
pub fn nat_out<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    families(meta, t)?;
    if let Some(v) = check_mtu(buf, meta, 0, out.mtu)? {
        return Ok(v);
    }
    if meta.is_icmp_error() {
        icmp::translate(buf, meta, &icmp::nat_out_plan(t))?;
    } else {
        let port = server_port(meta, t.vip.port);
        rewrite(ip_mut(buf, meta)?, Side::Src, t.vip.addr, port)?;
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}

/// FullNAT, client → real server: destination VIP:vport → RIP:rport and
/// source client:cport → laddr:lport (ICMP echo: identifier → lport).
///
/// ICMP errors from the client side: outer source → laddr, outer
/// destination → RIP; quoted source VIP:vport → RIP:rport, quoted
/// destination client:cport → laddr:lport.
pub fn fullnat_in<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    families(meta, t)?;
    let l = laddr(meta, t)?;
    if let Some(v) = check_mtu(buf, meta, 0, out.mtu)? {
        return Ok(v);
    }
    if meta.is_icmp_error() {
        icmp::translate(buf, meta, &icmp::fullnat_in_plan(t, l))?;
    } else {
        // The client side first: its port check is the stricter (ICMP echo
        // identifiers count), so if it passes the second cannot fail and
        // the pair is all-or-nothing.
        let ip = ip_mut(buf, meta)?;
        rewrite(ip, Side::Src, l.addr, client_port(meta, l.port))?;
        rewrite(ip, Side::Dst, t.rip.addr, server_port(meta, t.rip.port))?;
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}

/// FullNAT, real server → client: RIP:rport → laddr:lport becomes
/// VIP:vport → client:cport (ICMP echo: identifier → cport).
///
/// ICMP errors from the real-server side: outer source → VIP, outer
/// destination → client; quoted source laddr:lport → client:cport, quoted
/// destination RIP:rport → VIP:vport.
pub fn fullnat_out<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    t: &Translation,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    families(meta, t)?;
    laddr(meta, t)?;
    if let Some(v) = check_mtu(buf, meta, 0, out.mtu)? {
        return Ok(v);
    }
    if meta.is_icmp_error() {
        icmp::translate(buf, meta, &icmp::fullnat_out_plan(t))?;
    } else {
        let ip = ip_mut(buf, meta)?;
        // The client side first (see `fullnat_in`).
        let port = client_port(meta, t.client.port);
        rewrite(ip, Side::Dst, t.client.addr, port)?;
        rewrite(ip, Side::Src, t.vip.addr, server_port(meta, t.vip.port))?;
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}

/// Direct routing: only the Ethernet header changes (destination ← the real
/// server's MAC in `out.dst_mac`, source ← ours); the IP packet is
/// untouched. ICMP errors about a DR connection are forwarded the same way.
pub fn dr<B: PacketBuf + ?Sized>(
    buf: &mut B,
    meta: &PacketMeta,
    out: &L2Out,
) -> Result<Verdict, ForwardError> {
    // Checks the meta describes this buffer.
    ip_mut(buf, meta)?;
    if let Some(v) = check_mtu(buf, meta, 0, out.mtu)? {
        return Ok(v);
    }
    set_l2(buf, out);
    Ok(Verdict::Transmit)
}
