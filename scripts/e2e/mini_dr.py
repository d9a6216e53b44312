#!/usr/bin/env python3
"""mini_dr.py - a toy user-space DR director on packet sockets (stdlib only).

Usage: mini_dr.py IN_DEV OUT_DEV VIP4 [--vip6 VIP6] RS_MAC [RS_MAC...]

Stands in for rvsd to prove the end-to-end topology before rvsd exists: it
reads IN_DEV (the client-side director port) with an AF_PACKET socket, the
same way DPDK net_af_packet does, answers ARP for VIP4 with IN_DEV's MAC,
(and neighbour solicitations for VIP6), and forwards every frame to a VIP out
of OUT_DEV (the server-side port) with only the Ethernet addresses rewritten
(DR: destination = the chosen real server's MAC). Real servers are chosen
round robin per flow (source address, source port, protocol; IPv6 extension
headers are not parsed). Prints "READY" once
bound; a line of JSON per new flow: {"mode":"mini_dr","flow":..,"rs":MAC}.
"""
import argparse
import json
import socket
import struct
import sys

ETH_P_ALL = 0x0003


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    t = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return (~t) & 0xFFFF


def neighbour_advert(frame, in_mac, vip6):
    """The NA answering the NS in `frame` (validated by the caller)."""
    src_ip = frame[22:38]
    dst_ip = src_ip if src_ip != b"\0" * 16 else socket.inet_pton(
        socket.AF_INET6, "ff02::1")
    flags = 0x60000000 if src_ip != b"\0" * 16 else 0x20000000
    icmp = struct.pack("!BBHI", 136, 0, 0, flags) + vip6 + b"\x02\x01" + in_mac
    pseudo = vip6 + dst_ip + struct.pack("!IxxxB", len(icmp), 58)
    c = csum(pseudo + icmp)
    icmp = icmp[:2] + struct.pack("!H", c) + icmp[4:]
    ip6 = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + vip6 + dst_ip
    dst_mac = frame[6:12]
    return dst_mac + in_mac + b"\x86\xdd" + ip6 + icmp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("in_dev")
    ap.add_argument("out_dev")
    ap.add_argument("vip4")
    ap.add_argument("--vip6")
    ap.add_argument("rs_macs", nargs="+")
    args = ap.parse_args()
    in_dev, out_dev = args.in_dev, args.out_dev
    vip = socket.inet_aton(args.vip4)
    vip6 = socket.inet_pton(socket.AF_INET6, args.vip6) if args.vip6 else None
    rs_macs = [mac_bytes(m) for m in args.rs_macs]
    sin = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sin.bind((in_dev, ETH_P_ALL))
    sin.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sout = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sout.bind((out_dev, ETH_P_ALL))
    in_mac = sin.getsockname()[4]
    out_mac = sout.getsockname()[4]
    flows = {}
    print("READY", flush=True)

    def forward(key, frame, fam):
        rs = flows.get(key)
        if rs is None:
            rs = rs_macs[len(flows) % len(rs_macs)]
            flows[key] = rs
            port = struct.unpack("!H", key[1])[0] if key[1] else 0
            print(json.dumps({"mode": "mini_dr", "rs": ":".join("%02x" % b for b in rs),
                              "flow": "%s:%d/%d" % (socket.inet_ntop(fam, key[0]),
                                                    port, key[2])}), flush=True)
        sout.send(rs + out_mac + frame[12:])

    while True:
        frame, addr = sin.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING or len(frame) < 34:
            continue
        etype = struct.unpack("!H", frame[12:14])[0]
        if etype == 0x0806 and frame[20:22] == b"\x00\x01" and frame[38:42] == vip:
            sha, spa = frame[22:28], frame[28:32]
            reply = (sha + in_mac + b"\x08\x06" + frame[14:20] + b"\x00\x02"
                     + in_mac + vip + sha + spa)
            sin.send(reply + b"\x00" * (60 - len(reply)))
        elif etype == 0x0800 and frame[30:34] == vip:
            ip = frame[14:]
            ihl = (ip[0] & 0xF) * 4
            proto = ip[9]
            sport = ip[ihl:ihl + 2] if proto in (6, 17) else b""
            forward((ip[12:16], sport, proto), frame, socket.AF_INET)
        elif etype == 0x86DD and vip6 is not None and len(frame) >= 54:
            ip6 = frame[14:]
            nh = ip6[6]
            if nh == 58 and len(ip6) >= 64 and ip6[40] == 135 and ip6[48:64] == vip6:
                sin.send(neighbour_advert(frame, in_mac, vip6))
            elif ip6[24:40] == vip6:
                sport = ip6[40:42] if nh in (6, 17) else b""
                forward((ip6[8:24], sport, nh), frame, socket.AF_INET6)


if __name__ == "__main__":
    main()
