#!/usr/bin/env python3
"""ipip_decap.py - userspace IPIP / IPv6-in-IPv6, GRE and GUE decapsulation
for a TUN-mode real server whose kernel has no ipip / ip6_tunnel / ip_gre /
fou (python3 stdlib, root).

Usage: ipip_decap.py [--dev tunu0] [--gue-port 6080]

Creates the TUN device DEV (IFF_TUN | IFF_NO_PI), brings it up with
rp_filter off (the inner source is a client that is not routed via DEV)
and opens two raw sockets:
  AF_INET  / IPPROTO_IPIP (4):  IPv4-in-IPv4; the kernel hands over the
                                whole outer packet, the inner one starts
                                after the outer header (IHL * 4).
  AF_INET6 / IPPROTO_IPV6 (41): IPv6-in-IPv6; the kernel hands over the
                                payload after the outer header: the inner
                                packet.
  AF_INET  / IPPROTO_IPV6 (41): IPv6-in-IPv4 and
  AF_INET6 / IPPROTO_IPIP (4):  IPv4-in-IPv6 (a real server of the other
                                family than its service, IPVS's
                                heterogeneous pools), read as above.
  AF_INET(6) / IPPROTO_GRE (47):  GRE (RFC 2784): 4-byte header, or 8
                                with the checksum present (C bit), which
                                is verified; protocol type 0x0800/0x86DD.
  AF_INET(6) / UDP on --gue-port: GUE variant 0 (Linux fou "gue"): the
                                kernel checks the UDP checksum (zero
                                accepted over IPv6: UDP_NO_CHECK6_RX);
                                the 4-byte GUE header (+ hlen * 4 option
                                bytes) precedes the inner packet, its
                                protocol field is 4 or 41.
Each inner packet is written to DEV, so the kernel receives it as if it had
arrived on DEV and delivers it to the local TCP/UDP stack (the VIP must be
a local address, e.g. on lo with the DR ARP settings); replies leave
through the normal routing table (directly, not through the director).
A raw socket bound to a protocol also keeps the kernel from answering
"protocol unreachable".

Prints "READY <dev>" once running, then one JSON line per decapsulated
packet for the first --log packets:
  {"mode":"decap","outer_src":..,"outer_dst":..,"inner_src":..,
   "inner_dst":..,"inner_proto":N,"len":L,"tun":"ipip|gre|gue",
   "csum":true|false|null (null: GUE, checked by the kernel)}
and a summary line {"mode":"decap-stats","v4":N,"v6":N,"bad":N,
"by_<tun>_v<4|6>_<csum|nocsum|any>_<tcp|udp|other>":N,...} every 2 s when
the counts changed ("bad": packets dropped as malformed or with a wrong
GRE checksum). Exits on SIGTERM / SIGKILL.
"""
import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
IPPROTO_GRE = 47
UDP_NO_CHECK6_RX = 102
IP_PKTINFO = 8
IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50


def csum16(data):
    """The Internet checksum (RFC 1071) of data: 0 when a stored one is
    right."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def gre_inner(g):
    """(inner packet, checksum present) of a GRE payload, or None."""
    if len(g) < 4:
        return None
    flags, ptype = struct.unpack("!HH", g[:4])
    if flags & 0x7FFF or ptype not in (0x0800, 0x86DD):
        return None  # no key/sequence/routing: rvs never sends them
    if flags & 0x8000:
        if len(g) < 8 or csum16(g) != 0:
            return None
        return g[8:], True
    return g[4:], False


def gue_inner(u):
    """The inner packet of a GUE payload (after the UDP header), or None."""
    if len(u) < 4 or u[0] >> 6 != 0 or u[0] & 0x20:
        return None  # version 0 data messages only
    hl = 4 + (u[0] & 0x1F) * 4
    if u[1] not in (IPPROTO_IPIP, IPPROTO_IPV6) or len(u) < hl:
        return None
    return u[hl:]


def emit(**kv):
    print(json.dumps(kv, sort_keys=True), flush=True)


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    ifr = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def sh(*argv):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def inner_addrs(pkt):
    """(src, dst, proto) of an inner IPv4/IPv6 packet, or None."""
    if not pkt:
        return None
    v = pkt[0] >> 4
    if v == 4 and len(pkt) >= 20:
        return (socket.inet_ntop(socket.AF_INET, pkt[12:16]),
                socket.inet_ntop(socket.AF_INET, pkt[16:20]), pkt[9])
    if v == 6 and len(pkt) >= 40:
        return (socket.inet_ntop(socket.AF_INET6, pkt[8:24]),
                socket.inet_ntop(socket.AF_INET6, pkt[24:40]), pkt[6])
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dev", default="tunu0")
    ap.add_argument("--log", type=int, default=4)
    ap.add_argument("--gue-port", type=int, default=6080)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    tun = open_tun(args.dev)
    sh("ip", "link", "set", "dev", args.dev, "up")
    sh("sysctl", "-q", "-w", "net.ipv4.conf.%s.rp_filter=0" % args.dev)
    # allow IPv6 on the device (inner IPv6 packets are dropped otherwise)
    subprocess.run(["sysctl", "-q", "-w",
                    "net.ipv6.conf.%s.disable_ipv6=0" % args.dev],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    s4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPIP)
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPV6)
    x4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_IPV6)
    x6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_IPIP)
    g4 = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_GRE)
    g6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, IPPROTO_GRE)
    u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u4.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    u4.bind(("0.0.0.0", args.gue_port))
    u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u6.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    # zero UDP checksums over IPv6 (RFC 6935), as fou's gue sockets allow
    u6.setsockopt(socket.IPPROTO_UDP, UDP_NO_CHECK6_RX, 1)
    u6.bind(("::", args.gue_port))
    socks = (s4, s6, x4, x6, g4, g6, u4, u6)
    for s in socks:  # bursts of ACKs during bulk downloads
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    emit(mode="decap-ready", dev=args.dev)
    print("READY %s" % args.dev, flush=True)

    counts = {"v4": 0, "v6": 0, "bad": 0, "by": {}}
    logged = 0
    last = dict(counts)
    next_report = time.monotonic() + 2
    while True:
        r, _, _ = select.select(list(socks), [], [], 0.5)
        for s in r:
            csum = False
            if s in (u4, u6):
                data, anc, _, peer = s.recvmsg(65535, 64)
                dst = None
                for lvl, typ, val in anc:
                    if s is u4 and lvl == socket.IPPROTO_IP and typ == IP_PKTINFO:
                        dst = socket.inet_ntop(socket.AF_INET, val[8:12])
                    if s is u6 and lvl == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO:
                        dst = socket.inet_ntop(socket.AF_INET6, val[:16])
                outer = (peer[0], dst)
                inner = gue_inner(data)
                tname, key = "gue", "v4" if s is u4 else "v6"
                # the kernel verified a non-zero checksum (a wrong one is
                # dropped before us); whether it was zero is not visible on
                # a UDP socket: reported as "any"
                csum = None
            else:
                data, peer = s.recvfrom(65535)
                if s in (s4, x4, g4):
                    if len(data) < 20 or data[0] >> 4 != 4:
                        counts["bad"] += 1
                        continue
                    ihl = (data[0] & 0xF) * 4
                    outer = (socket.inet_ntop(socket.AF_INET, data[12:16]),
                             socket.inet_ntop(socket.AF_INET, data[16:20]))
                    payload = data[ihl:]
                    key = "v4"
                else:
                    # the outer IPv6 header is not part of what we read; the
                    # outer destination is not reported by recvfrom
                    outer = (peer[0], None)
                    payload = data
                    key = "v6"
                if s in (g4, g6):
                    tname = "gre"
                    g = gre_inner(payload)
                    inner, csum = g if g else (None, False)
                else:
                    tname, inner = "ipip", payload
            ia = inner_addrs(inner) if inner is not None else None
            if ia is None:
                counts["bad"] += 1
                continue
            os.write(tun, inner)
            counts[key] += 1
            p = {6: "tcp", 17: "udp"}.get(ia[2], "other")
            c = {True: "csum", False: "nocsum"}.get(csum, "any")
            k = "%s_%s_%s_%s" % (tname, key, c, p)
            counts["by"][k] = counts["by"].get(k, 0) + 1
            if logged < args.log:
                logged += 1
                emit(mode="decap", outer_src=outer[0], outer_dst=outer[1],
                     inner_src=ia[0], inner_dst=ia[1], inner_proto=ia[2],
                     len=len(inner), tun=tname, csum=csum)
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + 2
            if counts != last:
                last = json.loads(json.dumps(counts))
                flat = {k: v for k, v in counts.items() if k != "by"}
                for k, v in counts["by"].items():
                    flat["by_" + k] = v
                emit(mode="decap-stats", **flat)


if __name__ == "__main__":
    main()
