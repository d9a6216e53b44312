#!/usr/bin/env python3
"""arp_probe.py - who answers ARP for an address on a segment (stdlib only).

Usage: arp_probe.py DEV TARGET_IP [--source IP] [--count 3] [--wait 2.0]

Sends COUNT broadcast ARP requests "who-has TARGET_IP" out of DEV (raw
AF_PACKET socket, needs root) and collects replies for WAIT seconds after
the last one. Works without an address on DEV (the sender IP defaults to
0.0.0.0, an ARP probe, which Linux answers like any request). Prints one
JSON line: {"mode":"arp","target":..,"macs":"aa:..,bb:..","replies":N}
with the distinct MACs that answered (comma separated, "" for none).
Replaces arping (package iputils-arping) so the tests need no package.
"""
import argparse
import json
import socket
import struct
import time

ETH_P_ARP = 0x0806


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dev")
    ap.add_argument("target")
    ap.add_argument("--source", default="0.0.0.0")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--wait", type=float, default=2.0)
    args = ap.parse_args()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    s.bind((args.dev, ETH_P_ARP))
    my_mac = s.getsockname()[4]
    tip = socket.inet_aton(args.target)
    sip = socket.inet_aton(args.source)
    frame = (b"\xff" * 6 + my_mac + struct.pack("!H", ETH_P_ARP)
             + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
             + my_mac + sip + b"\x00" * 6 + tip)
    frame += b"\x00" * (60 - len(frame))
    macs = []
    replies = 0
    s.settimeout(0.1)
    for _ in range(args.count):
        s.send(frame)
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            try:
                pkt = s.recv(2048)
            except socket.timeout:
                continue
            if len(pkt) < 42:
                continue
            op = struct.unpack("!H", pkt[20:22])[0]
            if op == 2 and pkt[28:32] == tip:
                replies += 1
                m = mac_str(pkt[22:28])
                if m not in macs:
                    macs.append(m)
    end = time.monotonic() + args.wait
    while time.monotonic() < end:
        try:
            pkt = s.recv(2048)
        except socket.timeout:
            continue
        if len(pkt) >= 42 and struct.unpack("!H", pkt[20:22])[0] == 2 \
                and pkt[28:32] == tip:
            replies += 1
            m = mac_str(pkt[22:28])
            if m not in macs:
                macs.append(m)
    print(json.dumps({"mode": "arp", "target": args.target,
                      "macs": ",".join(macs), "replies": replies}), flush=True)


if __name__ == "__main__":
    main()
