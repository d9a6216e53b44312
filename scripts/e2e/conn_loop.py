#!/usr/bin/env python3
"""Short HTTP requests in a loop, each on a new TCP connection (failover
tests: "are new connections served, and from when").

  conn_loop.py HOST PORT [--secs T] [--interval S] [--timeout S] [--source IP]

For T seconds, GET / on a new connection every S seconds (after the
previous attempt ended), each attempt limited to --timeout seconds (connect
and answer). Prints "READY" first, then one JSON line per attempt:
{"t0_ms": start (unix ms), "t1_ms": end, "ok": bool, "server": X-Server or null,
 "error": str or null}. python3 stdlib only.
"""
import argparse
import json
import socket
import sys
import time


def attempt(args):
    res = {"t0_ms": int(time.time() * 1000), "t1_ms": None, "ok": False, "server": None,
           "error": None}
    s = None
    try:
        s = socket.socket(socket.AF_INET6 if ":" in args.host
                          else socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(args.timeout)
        if args.source:
            s.bind((args.source, 0))
        s.connect((args.host, args.port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
        for line in head.split("\r\n"):
            if line.lower().startswith("x-server:"):
                res["server"] = line.split(":", 1)[1].strip()
        res["ok"] = head.startswith("HTTP/1.") and " 200 " in head.split(
            "\r\n", 1)[0] + " "
    except Exception as e:  # noqa: BLE001
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        if s is not None:
            s.close()
    res["t1_ms"] = int(time.time() * 1000)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--source")
    args = ap.parse_args()
    print("READY", flush=True)
    end = time.monotonic() + args.secs
    while time.monotonic() < end:
        print(json.dumps(attempt(args)), flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
