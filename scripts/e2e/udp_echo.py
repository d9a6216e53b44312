#!/usr/bin/env python3
"""udp_echo.py - end-to-end test UDP echo server (python3 stdlib only).

Usage: udp_echo.py NAME [--port 5353] [--bind ::]

Answers every datagram with b"NAME:" + payload, from the address it was sent
to (IP_PKTINFO / IPV6_PKTINFO, so a VIP on lo answers as the VIP). Listens on
IPv4 and IPv6 (one socket each) unless --bind names one address.
Prints "READY <port>" once bound. Exits on SIGTERM.
"""
import argparse
import select
import signal
import socket
import sys


IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value


def open_socket(fam, bind, port):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    else:
        s.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    s.bind((bind, port))
    return s


def reply(s, prefix):
    data, anc, _flags, peer = s.recvmsg(65535, 256)
    cmsgs = []
    for level, typ, cdata in anc:
        # Answer from the address the request was sent to (a VIP on lo for
        # DR/TUN), not from whatever address the route lookup would pick.
        if level == socket.IPPROTO_IP and typ == IP_PKTINFO:
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
            cmsgs.append((level, typ, b"\0" * 4 + cdata[8:12] + b"\0" * 4))
        elif level == socket.IPPROTO_IPV6 and typ == socket.IPV6_PKTINFO:
            # struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
            cmsgs.append((level, typ, cdata[:16] + b"\0" * 4))
    try:
        s.sendmsg([prefix + data], cmsgs, 0, peer)
    except OSError:
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--port", type=int, default=5353)
    ap.add_argument("--bind", default="::",
                    help="'::' (default) listens on IPv4 and IPv6")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.bind == "::":
        socks = [open_socket(socket.AF_INET, "0.0.0.0", args.port),
                 open_socket(socket.AF_INET6, "::", args.port)]
    else:
        fam = socket.AF_INET6 if ":" in args.bind else socket.AF_INET
        socks = [open_socket(fam, args.bind, args.port)]
    print("READY %d" % args.port, flush=True)
    prefix = args.name.encode() + b":"
    while True:
        ready, _, _ = select.select(socks, [], [])
        for s in ready:
            reply(s, prefix)


if __name__ == "__main__":
    main()
