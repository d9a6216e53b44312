#!/usr/bin/env python3
"""capture.py - what a packet socket (DPDK net_af_packet's view) sees on an
interface, with checksum verification (python3 stdlib only, needs root).

Usage: capture.py DEV DST_IP [--count 3] [--timeout 10]

Prints "READY" once the socket is bound, then reads frames on DEV until
COUNT IPv4/IPv6 TCP or UDP packets to DST_IP were seen (or TIMEOUT seconds
passed) and prints one JSON line per packet:
  {"mode":"capture","proto":"tcp"|"udp","ip_csum_ok":B,"l4_csum_ok":B,
   "src":..,"dst":..,"len":N}
ip_csum_ok is null for IPv6 (no header checksum). A checksum left
"partial" by offload (only the pseudo-header sum) shows as l4_csum_ok false.
TCP packets add "sport", "dport", "flags", "seq", "ack", "payload" (bytes),
"ip_len" (IP packet length), "mss" (the MSS option, or null) and "toa"
(TCP option 254 as "addr:port" / "[addr6]:port", or null; "toa_len" its
length byte).
"""
import argparse
import json
import socket
import struct
import time

ETH_P_ALL = 0x0003


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dev")
    ap.add_argument("dst")
    ap.add_argument("--count", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    fam = socket.AF_INET6 if ":" in args.dst else socket.AF_INET
    want = socket.inet_pton(fam, args.dst)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((args.dev, ETH_P_ALL))
    s.settimeout(0.2)
    print("READY", flush=True)
    end = time.monotonic() + args.timeout
    seen = 0
    while seen < args.count and time.monotonic() < end:
        try:
            frame, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        etype = struct.unpack("!H", frame[12:14])[0]
        p = frame[14:]
        if etype == 0x0800 and fam == socket.AF_INET and len(p) >= 20:
            ihl = (p[0] & 0xF) * 4
            total = struct.unpack("!H", p[2:4])[0]
            proto, src, dst = p[9], p[12:16], p[16:20]
            ip_ok = csum(p[:ihl]) == 0xFFFF
            l4 = p[ihl:total]
            pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        elif etype == 0x86DD and fam == socket.AF_INET6 and len(p) >= 40:
            plen = struct.unpack("!H", p[4:6])[0]
            proto, src, dst = p[6], p[8:24], p[24:40]
            ip_ok = None
            l4 = p[40:40 + plen]
            pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
        else:
            continue
        if dst != want or proto not in (6, 17):
            continue
        seen += 1
        out = {
            "mode": "capture", "proto": "tcp" if proto == 6 else "udp",
            "ip_csum_ok": ip_ok, "l4_csum_ok": csum(pseudo + l4) == 0xFFFF,
            "src": socket.inet_ntop(fam, src), "dst": args.dst,
            "len": len(frame)}
        if proto == 6 and len(l4) >= 20:
            out.update(tcp_fields(l4))
            out["ip_len"] = len(l4) + (ihl if fam == socket.AF_INET else 40)
        print(json.dumps(out, sort_keys=True), flush=True)


def tcp_fields(l4):
    """Ports, flags, numbers, payload length, MSS and TOA of a segment."""
    sport, dport, seq, ack = struct.unpack("!HHII", l4[:12])
    hlen = (l4[12] >> 4) * 4
    f = {"sport": sport, "dport": dport, "flags": l4[13], "seq": seq,
         "ack": ack, "payload": max(len(l4) - hlen, 0), "mss": None,
         "toa": None, "toa_len": None}
    opts, i = l4[20:hlen], 0
    while i < len(opts):
        kind = opts[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        if i + 1 >= len(opts) or opts[i + 1] < 2:
            break
        n = opts[i + 1]
        body = opts[i + 2:i + n]
        if kind == 2 and n == 4:
            f["mss"] = struct.unpack("!H", body)[0]
        elif kind == 254 and n in (8, 20) and len(body) == n - 2:
            port = struct.unpack("!H", body[:2])[0]
            if n == 8:
                f["toa"] = "%s:%d" % (socket.inet_ntop(socket.AF_INET, body[2:]), port)
            else:
                f["toa"] = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, body[2:]), port)
            f["toa_len"] = n
        i += n
    return f


if __name__ == "__main__":
    main()
