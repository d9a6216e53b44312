#!/usr/bin/env python3
"""http_name_server.py - end-to-end test HTTP server (python3 stdlib only).

Usage: http_name_server.py NAME [--port 80] [--bind ::]

Listens dual-stack (IPv4 and IPv6 on one socket) unless --bind names an
IPv4 address. Endpoints (every GET):
  /bytes/N[?seed=S][&kbps=K]
                     N deterministic pseudo-random bytes: the first N bytes of
                     SHAKE-128(b"rvs-e2e:" + str(S)), S defaults to 0. The
                     client recomputes them and compares byte for byte.
                     With K > 0, paced at about K KiB/s.
  /hold[?secs=T]     keeps the connection open, one line "NAME tick K\\n" every
                     0.5 s, for T seconds (default 600) or until the peer
                     closes. For "does a long-lived connection survive" tests.
  /whoami            "NAME PEER_IP PEER_PORT LOCAL_IP LOCAL_PORT\\n": the
                     addresses the server saw (NAT / FullNAT checks).
  anything else      "NAME\\n"
POST /upload (body of Content-Length bytes) answers "NAME LEN SHA256\\n"
(client-to-server bulk: the direction the director forwards in every mode).
Every response carries "X-Server: NAME". Prints "READY <port>" once
listening. Exits on SIGTERM.
"""
import argparse
import hashlib
import http.server
import signal
import socket
import sys
import time
import urllib.parse


def payload(seed, n):
    return hashlib.shake_128(b"rvs-e2e:" + str(seed).encode()).digest(n)


def unmap(ip):
    return ip[7:] if ip.startswith("::ffff:") else ip


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rvs-e2e"

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _send(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("X-Server", self.server.name)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_paced(self, body, kbps):
        """body at about kbps KiB/s, in 16 KiB chunks (in flight for a
        while: "a transfer survives a change" tests)."""
        self.send_response(200)
        self.send_header("X-Server", self.server.name)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        chunk = 16384
        start = time.monotonic()
        for off in range(0, len(body), chunk):
            self.wfile.write(body[off:off + chunk])
            due = start + (off + chunk) / (kbps * 1024.0)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def do_POST(self):  # noqa: N802 (http.server naming)
        """POST /upload: reads the body, answers "NAME LEN SHA256\\n"."""
        n = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        got = 0
        while got < n:
            c = self.rfile.read(min(65536, n - got))
            if not c:
                break
            h.update(c)
            got += len(c)
        self._send(("%s %d %s\n" % (self.server.name, got, h.hexdigest())).encode())

    def do_GET(self):  # noqa: N802 (http.server naming)
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        name = self.server.name
        if url.path.startswith("/bytes/"):
            n = int(url.path[len("/bytes/"):])
            seed = int(query.get("seed", ["0"])[0])
            kbps = int(query.get("kbps", ["0"])[0])
            if kbps <= 0:
                self._send(payload(seed, n), "application/octet-stream")
            else:
                self._send_paced(payload(seed, n), kbps)
        elif url.path == "/hold":
            secs = float(query.get("secs", ["600"])[0])
            self.send_response(200)
            self.send_header("X-Server", name)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            end = time.monotonic() + secs
            k = 0
            try:
                while time.monotonic() < end:
                    self.wfile.write(("%s tick %d\n" % (name, k)).encode())
                    self.wfile.flush()
                    k += 1
                    time.sleep(0.5)
            except OSError:
                pass
        elif url.path == "/whoami":
            peer = self.connection.getpeername()
            local = self.connection.getsockname()
            body = "%s %s %d %s %d\n" % (
                name, unmap(peer[0]), peer[1], unmap(local[0]), local[1])
            self._send(body.encode())
        else:
            self._send((name + "\n").encode())


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, name, bind, port):
        self.name = name
        self.address_family = socket.AF_INET if ":" not in bind else socket.AF_INET6
        super().__init__((bind, port), Handler, bind_and_activate=False)
        if self.address_family == socket.AF_INET6:
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--bind", default="::")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = Server(args.name, args.bind, args.port)
    print("READY %d" % args.port, flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
