#!/usr/bin/env python3
"""A DPDK telemetry v2 client (what dpdk-telemetry.py does, scriptable).

Usage: telemetry_client.py SOCKET CMD [CMD...]

Connects to SOCKET (/var/run/dpdk/<prefix>/dpdk_telemetry.v2, SOCK_SEQPACKET),
reads the greeting, sends each CMD ("/rvs/services", "/rvs/service,tcp:..."),
and prints each reply flattened, one value a line:

    CMD<TAB>key/key=value

Lists print as key/0=..., key/1=...; a null reply (unknown command or
parameter) prints "CMD<TAB>=null". Exit 1 when the socket cannot be used.
"""
import json
import socket
import sys


def flatten(prefix, v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            flatten(f"{prefix}/{k}" if prefix else k, x, out)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            flatten(f"{prefix}/{i}" if prefix else str(i), x, out)
    else:
        out.append(f"{prefix}={'null' if v is None else v}")


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, cmds = sys.argv[1], sys.argv[2:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(10)
    try:
        s.connect(path)
        hello = json.loads(s.recv(65536).decode())
        bufsz = int(hello.get("max_output_len", 16384))
    except (OSError, ValueError) as e:
        print(f"telemetry_client: {path}: {e}", file=sys.stderr)
        return 1
    for cmd in cmds:
        s.send(cmd.encode())
        reply = json.loads(s.recv(bufsz).decode())
        # {"/rvs/x": value}: DPDK keys the reply by the command without params
        value = reply.get(cmd.split(",", 1)[0]) if isinstance(reply, dict) else reply
        lines = []
        flatten("", value, lines)
        for line in lines:
            print(f"{cmd}\t{line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
