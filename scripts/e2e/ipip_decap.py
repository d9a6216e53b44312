#!/usr/bin/env python3
"""ipip_decap.py - userspace IPIP / IPv6-in-IPv6 decapsulation for a TUN-mode
real server whose kernel has no ipip / ip6_tunnel (python3 stdlib, root).

Usage: ipip_decap.py [--dev tunu0]

Creates the TUN device DEV (IFF_TUN | IFF_NO_PI), brings it up with
rp_filter off (the inner source is a client that is not routed via DEV)
and opens two raw sockets:
  AF_INET  / IPPROTO_IPIP (4):  IPv4-in-IPv4; the kernel hands over the
                                whole outer packet, the inner one starts
                                after the outer header (IHL * 4).
  AF_INET6 / IPPROTO_IPV6 (41): IPv6-in-IPv6; the kernel hands over the
                                payload after the outer header: the inner
                                packet.
Each inner packet is written to DEV, so the kernel receives it as if it had
arrived on DEV and delivers it to the local TCP/UDP stack (the VIP must be
a local address, e.g. on lo with the DR ARP settings); replies leave
through the normal routing table (directly, not through the director).
A raw socket bound to a protocol also keeps the kernel from answering
"protocol unreachable".

Prints "READY <dev>" once running, then one JSON line per decapsulated
packet for the first --log packets:
  {"mode":"decap","outer_src":..,"outer_dst":..,"inner_src":..,
   "inner_dst":..,"inner_proto":N,"len":L}
and a summary line {"mode":"decap-stats","v4":N,"v6":N} every 2 s when the
counts changed. Exits on SIGTERM / SIGKILL.
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
    for s in (s4, s6):  # bursts of ACKs during bulk downloads
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    emit(mode="decap-ready", dev=args.dev)
    print("READY %s" % args.dev, flush=True)

    counts = {"v4": 0, "v6": 0, "bad": 0}
    logged = 0
    last = dict(counts)
    next_report = time.monotonic() + 2
    while True:
        r, _, _ = select.select([s4, s6], [], [], 0.5)
        for s in r:
            data, peer = s.recvfrom(65535)
            if s is s4:
                if len(data) < 20 or data[0] >> 4 != 4:
                    counts["bad"] += 1
                    continue
                ihl = (data[0] & 0xF) * 4
                outer = (socket.inet_ntop(socket.AF_INET, data[12:16]),
                         socket.inet_ntop(socket.AF_INET, data[16:20]))
                inner = data[ihl:]
                key = "v4"
            else:
                # the outer IPv6 header is not part of what we read; the
                # outer destination is not reported by recvfrom
                outer = (peer[0], None)
                inner = data
                key = "v6"
            ia = inner_addrs(inner)
            if ia is None:
                counts["bad"] += 1
                continue
            os.write(tun, inner)
            counts[key] += 1
            if logged < args.log:
                logged += 1
                emit(mode="decap", outer_src=outer[0], outer_dst=outer[1],
                     inner_src=ia[0], inner_dst=ia[1], inner_proto=ia[2],
                     len=len(inner))
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + 2
            if counts != last:
                last = dict(counts)
                emit(mode="decap-stats", **counts)


if __name__ == "__main__":
    main()
