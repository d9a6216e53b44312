#!/usr/bin/env python3
"""mini_dr.py - a toy user-space DR director on packet sockets (stdlib only).

Usage: mini_dr.py IN_DEV OUT_DEV VIP4 RS_MAC [RS_MAC...]

Stands in for rvsd to prove the end-to-end topology before rvsd exists: it
reads IN_DEV (the client-side director port) with an AF_PACKET socket, the
same way DPDK net_af_packet does, answers ARP for VIP4 with IN_DEV's MAC,
and forwards every IPv4 frame to VIP4 out of OUT_DEV (the server-side port)
with only the Ethernet addresses rewritten (DR: destination = the chosen
real server's MAC). Real servers are chosen round robin per flow
(source address, source port, protocol). IPv4 only. Prints "READY" once
bound; a line of JSON per new flow: {"mode":"mini_dr","flow":..,"rs":MAC}.
"""
import json
import socket
import struct
import sys

ETH_P_ALL = 0x0003


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def main():
    in_dev, out_dev, vip = sys.argv[1], sys.argv[2], socket.inet_aton(sys.argv[3])
    rs_macs = [mac_bytes(m) for m in sys.argv[4:]]
    sin = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sin.bind((in_dev, ETH_P_ALL))
    sin.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sout = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sout.bind((out_dev, ETH_P_ALL))
    in_mac = sin.getsockname()[4]
    out_mac = sout.getsockname()[4]
    flows = {}
    print("READY", flush=True)
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
            key = (ip[12:16], sport, proto)
            rs = flows.get(key)
            if rs is None:
                rs = rs_macs[len(flows) % len(rs_macs)]
                flows[key] = rs
                print(json.dumps({"mode": "mini_dr", "rs": ":".join("%02x" % b for b in rs),
                                  "flow": "%s:%d/%d" % (socket.inet_ntoa(key[0]),
                                                        struct.unpack("!H", sport)[0] if sport else 0,
                                                        proto)}), flush=True)
            sout.send(rs + out_mac + frame[12:])


if __name__ == "__main__":
    main()
