#!/usr/bin/env python3
"""Writes the packet target's seed inputs (fuzz/seeds/packet/): a few
frame sequences in the target's framing ([flags][len hi][len lo][frame])
that reach each part of the pipeline: ARP for a VIP, TCP handshakes to
NAT / DR / TUN / FullNAT services over IPv4 and IPv6, a UDP query, an
ICMP error about a connection, a fragment. Run it after changing the
services in fuzz_targets/packet.rs."""
import os
import struct

D0 = bytes([2, 0, 0, 0, 0, 1])
D1 = bytes([2, 0, 0, 0, 0, 2])
CL = bytes([2, 0, 0, 0, 0, 0xAA])
RS = bytes([2, 0, 0, 0, 0, 0x11])


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


def ip6(a):
    import ipaddress
    return ipaddress.IPv6Address(a).packed


def eth(dst, src, typ, payload):
    return dst + src + struct.pack("!H", typ) + payload


def ipv4(src, dst, proto, l4, frag=0x4000, opts=b""):
    ihl = 5 + len(opts) // 4
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 20 + len(opts) + len(l4), 1, frag, 64, proto, 0, ip4(src), ip4(dst)) + opts
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + l4


def tcp(src, dst, sp, dp, flags, seq=1000, ack=0, data=b"", v6=False):
    h = struct.pack("!HHIIBBHHH", sp, dp, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    if v6:
        ph = ip6(src) + ip6(dst) + struct.pack("!I3xB", len(h), 6)
    else:
        ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(h))
    c = csum(ph + h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def udp(src, dst, sp, dp, data):
    h = struct.pack("!HHHH", sp, dp, 8 + len(data), 0) + data
    ph = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, len(h))
    c = csum(ph + h) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + h[8:]


def ipv6(src, dst, nh, l4):
    return struct.pack("!IHBB", 0x60000000, len(l4), nh, 64) + ip6(src) + ip6(dst) + l4


def arp(op, smac, sip, tmac, tip):
    return struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + smac + ip4(sip) + tmac + ip4(tip)


def frame(port, f, handoff=False, dt=2):
    return bytes([(port & 1) | (dt << 1) | (0x80 if handoff else 0)]) + struct.pack("!H", len(f)) + f


def syn_ack_data(vip, port, v6=False):
    c = "2001:db8::10" if v6 else "198.18.0.10"
    mk = (lambda l4: eth(D0, CL, 0x86DD, ipv6(c, vip, 6, l4))) if v6 else (lambda l4: eth(D0, CL, 0x0800, ipv4(c, vip, 6, l4)))
    return [
        frame(0, mk(tcp(c, vip, 40000, port, 0x02, v6=v6))),
        frame(0, mk(tcp(c, vip, 40000, port, 0x10, 1001, 5000, v6=v6))),
        frame(0, mk(tcp(c, vip, 40000, port, 0x18, 1001, 5000, b"GET / HTTP/1.0\r\n\r\n", v6=v6))),
        frame(0, mk(tcp(c, vip, 40000, port, 0x11, 1019, 5000, v6=v6))),
    ]


seeds = {
    "arp_vip": [frame(0, eth(b"\xff" * 6, CL, 0x0806, arp(1, CL, "198.18.0.10", b"\0" * 6, "198.18.0.100")))],
    "arp_reply_rs": [frame(1, eth(D1, RS, 0x0806, arp(2, RS, "198.19.0.11", D1, "198.19.0.1")))],
    "nat4": syn_ack_data("198.18.0.100", 80) + [frame(1, eth(D1, RS, 0x0806, arp(2, RS, "198.19.0.11", D1, "198.19.0.1")))]
    + [frame(1, eth(D1, RS, 0x0800, ipv4("198.19.0.11", "198.18.0.10", 6, tcp("198.19.0.11", "198.18.0.10", 8080, 40000, 0x12, 5000, 1001))))],
    "dr4": syn_ack_data("198.18.0.101", 80),
    "tun4": syn_ack_data("198.18.0.102", 80),
    "nat6": syn_ack_data("2001:db8::100", 80, v6=True),
    "fnat6": syn_ack_data("2001:db8::101", 443, v6=True),
    "udp_fnat4": [frame(0, eth(D0, CL, 0x0800, ipv4("198.18.0.10", "198.18.0.100", 17, udp("198.18.0.10", "198.18.0.100", 5353, 53, b"\x12\x34query"))))],
    "frag4": [frame(0, eth(D0, CL, 0x0800, ipv4("198.18.0.10", "198.18.0.100", 6, tcp("198.18.0.10", "198.18.0.100", 40001, 80, 0x02)[:16], frag=0x2000)))],
    "lsrr4": [frame(0, eth(D0, CL, 0x0800, ipv4("198.18.0.10", "198.18.0.100", 6, tcp("198.18.0.10", "198.18.0.100", 40002, 80, 0x02), opts=b"\x83\x07\x04\xc6\x12\x00\x01\x00")))],
}
# An ICMP frag-needed from a router about the NAT connection's reply.
inner = ipv4("198.18.0.10", "198.18.0.100", 6, tcp("198.18.0.10", "198.18.0.100", 40000, 80, 0x10, 1001, 5000))[:28]
icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + inner
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
seeds["icmp_err"] = seeds["nat4"][:2] + [frame(0, eth(D0, CL, 0x0800, ipv4("198.18.0.254", "198.18.0.100", 1, icmp)))]

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "packet")
os.makedirs(out, exist_ok=True)
for name, frames in seeds.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(b"".join(frames))
print(f"{len(seeds)} seeds in {out}")
