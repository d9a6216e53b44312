#!/usr/bin/env python3
"""client.py - end-to-end test client (python3 stdlib only).

Run inside a namespace (ip netns exec NS python3 client.py ...). Every mode
prints flat JSON objects, one per line, for the Rust harness to parse; a
mode never raises: errors are reported in the "error" field (null on
success) and the exit status is 0 unless the arguments are wrong.

  http  HOST PORT [--path /] [--count N] [--source IP] [--sport P] [--timeout S]
        N requests, each on a new TCP connection; one line per request:
        {"mode":"http","i":I,"ok":B,"status":C,"server":"rs1","body":"..","error":E}
        --sport P: every connection from source port P (the tuple reused,
        as clients cycling through their ports do)
  bytes HOST PORT --n N [--seed S] [--kbps K] [--source IP] [--timeout S]
        GET /bytes/N?seed=S (paced at K KiB/s if K > 0) and compare with the expected SHAKE-128 stream:
        {"mode":"bytes","ok":B,"server":..,"len":L,"expected_len":N,
         "first_mismatch":OFFSET_or_null,"sha256":..,"error":E}
  upload HOST PORT --n N [--seed S] [--source IP] [--timeout S]
        POST /upload with the N-byte stream of seed S; the server answers
        with the length and SHA-256 it received:
        {"mode":"upload","ok":B,"server":..,"len":L,"expected_len":N,
         "sha256":..,"error":E}
  hold  HOST PORT [--secs T] [--source IP] [--timeout S]
        GET /hold and read ticks for T seconds. Prints
        {"mode":"hold","event":"connected","server":..} once the first tick
        arrives, then at the end
        {"mode":"hold","event":"done","ok":B,"server":..,"lines":K,
         "reset":B,"eof":B,"error":E}
        ok = still open after T seconds, no reset, no early EOF.
  udp   HOST PORT [--count N] [--payload P] [--source IP] [--timeout S]
        [--retries R] [--interval S]: N datagrams "P-I" from one socket,
        S seconds apart, each retried up to R times:
        {"mode":"udp","i":I,"ok":B,"reply":"rs1:P-I","server":"rs1",
         "from":IP (the reply's source address),"error":E}
  wait-tcp HOST PORT [--timeout S]
        retry connecting until it works: {"mode":"wait-tcp","ok":B,"error":E}
"""
import argparse
import hashlib
import http.client
import json
import socket
import sys
import time


def emit(**kv):
    print(json.dumps(kv, sort_keys=True), flush=True)


def payload(seed, n):
    return hashlib.shake_128(b"rvs-e2e:" + str(seed).encode()).digest(n)


def src(args):
    return (args.source, 0) if args.source else None


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def connect(args):
    s = socket.socket(family(args.host), socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    if args.source:
        s.bind((args.source, 0))
    s.connect((args.host, args.port))
    return s


def http_from_port(args):
    """One GET /path with Connection: close from source port args.sport:
    (status, server, body). The previous connection of the port may still
    be closing here: bind and connect are retried for up to 2 s."""
    for attempt in range(100):
        s = socket.socket(family(args.host), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.settimeout(args.timeout)
        try:
            s.bind((args.source or "", args.sport))
            s.connect((args.host, args.port))
            break
        except OSError as e:
            s.close()
            if attempt == 99:
                raise OSError("%s (bind/connect from port %d)" % (e, args.sport))
            time.sleep(0.02)
    try:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                   % (args.path, args.host)).encode())
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    status = int(lines[0].split()[1])
    server = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "x-server":
            server = v.strip()
    return status, server, body.decode(errors="replace")


def do_http(args):
    if args.sport:
        for i in range(args.count):
            res = {"mode": "http", "i": i, "ok": False, "status": None,
                   "server": None, "body": None, "error": None}
            try:
                status, server, body = http_from_port(args)
                res.update(status=status, server=server, body=body,
                           ok=status == 200)
            except Exception as e:  # noqa: BLE001 - reported, not raised
                res["error"] = "%s: %s" % (type(e).__name__, e)
            emit(**res)
        return
    for i in range(args.count):
        res = {"mode": "http", "i": i, "ok": False, "status": None,
               "server": None, "body": None, "error": None}
        try:
            conn = http.client.HTTPConnection(
                args.host, args.port, timeout=args.timeout,
                source_address=src(args))
            conn.request("GET", args.path, headers={"Connection": "close"})
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
            conn.close()
            res.update(status=resp.status, server=resp.getheader("X-Server"),
                       body=body, ok=resp.status == 200)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            res["error"] = "%s: %s" % (type(e).__name__, e)
        emit(**res)


def do_bytes(args):
    res = {"mode": "bytes", "ok": False, "server": None, "len": 0,
           "expected_len": args.n, "first_mismatch": None, "sha256": None,
           "error": None}
    try:
        conn = http.client.HTTPConnection(
            args.host, args.port, timeout=args.timeout,
            source_address=src(args))
        url = "/bytes/%d?seed=%d" % (args.n, args.seed)
        if args.kbps:
            url += "&kbps=%d" % args.kbps
        conn.request("GET", url,
                     headers={"Connection": "close"})
        resp = conn.getresponse()
        res["server"] = resp.getheader("X-Server")
        chunks = []
        while True:
            c = resp.read(65536)
            if not c:
                break
            chunks.append(c)
        conn.close()
        got = b"".join(chunks)
        want = payload(args.seed, args.n)
        res["len"] = len(got)
        res["sha256"] = hashlib.sha256(got).hexdigest()
        if got != want:
            res["first_mismatch"] = next(
                (k for k in range(min(len(got), len(want))) if got[k] != want[k]),
                min(len(got), len(want)))
        res["ok"] = resp.status == 200 and got == want
    except Exception as e:  # noqa: BLE001
        res["error"] = "%s: %s" % (type(e).__name__, e)
    emit(**res)


def do_upload(args):
    res = {"mode": "upload", "ok": False, "server": None, "len": 0,
           "expected_len": args.n, "sha256": None, "error": None}
    try:
        body = payload(args.seed, args.n)
        conn = http.client.HTTPConnection(
            args.host, args.port, timeout=args.timeout,
            source_address=src(args))
        conn.request("POST", "/upload", body=body,
                     headers={"Connection": "close",
                              "Content-Type": "application/octet-stream"})
        resp = conn.getresponse()
        res["server"] = resp.getheader("X-Server")
        text = resp.read().decode(errors="replace").split()
        conn.close()
        want = hashlib.sha256(body).hexdigest()
        if len(text) == 3:
            res["len"] = int(text[1])
            res["sha256"] = text[2]
        res["ok"] = (resp.status == 200 and res["len"] == args.n
                     and res["sha256"] == want)
    except Exception as e:  # noqa: BLE001
        res["error"] = "%s: %s" % (type(e).__name__, e)
    emit(**res)


def do_hold(args):
    res = {"mode": "hold", "event": "done", "ok": False, "server": None,
           "lines": 0, "reset": False, "eof": False, "error": None}
    try:
        s = connect(args)
        s.sendall(("GET /hold?secs=%d HTTP/1.1\r\nHost: x\r\n\r\n"
                   % (args.secs + 30)).encode())
        f = s.makefile("rb")
        while True:  # headers
            line = f.readline()
            if not line:
                raise EOFError("connection closed in the headers")
            if line.lower().startswith(b"x-server:"):
                res["server"] = line.split(b":", 1)[1].strip().decode()
            if line in (b"\r\n", b"\n"):
                break
        end = time.monotonic() + args.secs
        while time.monotonic() < end:
            line = f.readline()
            if not line:
                res["eof"] = True
                break
            if res["lines"] == 0:
                emit(mode="hold", event="connected", server=res["server"])
            res["lines"] += 1
        s.close()
        res["ok"] = not res["eof"] and res["lines"] > 0
    except ConnectionResetError as e:
        res["reset"] = True
        res["error"] = "reset: %s" % e
    except Exception as e:  # noqa: BLE001
        res["error"] = "%s: %s" % (type(e).__name__, e)
    emit(**res)


def do_udp(args):
    s = socket.socket(family(args.host), socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    if args.source:
        s.bind((args.source, 0))
    for i in range(args.count):
        if i and args.interval:
            time.sleep(args.interval)
        msg = "%s-%d" % (args.payload, i)
        res = {"mode": "udp", "i": i, "ok": False, "reply": None,
               "server": None, "from": None, "error": None}
        for _ in range(args.retries + 1):
            try:
                s.sendto(msg.encode(), (args.host, args.port))
                while True:
                    data, peer = s.recvfrom(65535)
                    reply = data.decode(errors="replace")
                    if reply.endswith(":" + msg):  # skip late answers
                        break
                res.update(ok=True, reply=reply, server=reply.split(":", 1)[0],
                           error=None, **{"from": peer[0]})
                break
            except Exception as e:  # noqa: BLE001
                res["error"] = "%s: %s" % (type(e).__name__, e)
        emit(**res)


def do_wait_tcp(args):
    end = time.monotonic() + args.timeout
    err = None
    while True:
        try:
            s = socket.create_connection((args.host, args.port), timeout=1.0)
            s.close()
            emit(mode="wait-tcp", ok=True, error=None)
            return
        except OSError as e:
            err = "%s: %s" % (type(e).__name__, e)
        if time.monotonic() > end:
            emit(mode="wait-tcp", ok=False, error=err)
            return
        time.sleep(0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["http", "bytes", "upload", "hold", "udp",
                                     "wait-tcp"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--path", default="/")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kbps", type=int, default=0)
    ap.add_argument("--secs", type=int, default=5)
    ap.add_argument("--payload", default="ping")
    ap.add_argument("--source", default=None)
    ap.add_argument("--sport", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--interval", type=float, default=0.0)
    args = ap.parse_args()
    {"http": do_http, "bytes": do_bytes, "upload": do_upload, "hold": do_hold,
     "udp": do_udp, "wait-tcp": do_wait_tcp}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
