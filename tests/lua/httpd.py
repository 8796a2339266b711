#!/usr/bin/env python3
"""httpd.py PORTFILE [WATCH_PID]: the servers gdlua.http's and gdlua.tcp's tests talk to.

Listens on two free loopback ports (the kernel picks them) and writes
"HTTP_PORT TCP_PORT PID" to PORTFILE (atomically) once both accept. Exits
when WATCH_PID (the test) is gone, so a test that dies leaves nothing
behind; the test stops it by its pid otherwise.

HTTP (one thread per connection, HTTP/1.1 keep-alive):
  /hello                 200 "hello"
  /delay?ms=N            200 "slept N" after N ms
  /barrier?n=N&key=K     200 "together N" once N requests with key K are
                         waiting at once; 504 "only M of N" if they never
                         are within 30 s (requests that do not overlap)
  /echo (any method)     200, the request body as the body, X-Method: the
                         method, X-Echo-<name>: each request header
  /status/CODE           CODE, body "status CODE"
  /redirect/N            302 to /redirect/N-1 ... /redirect/0: 200 "landed"
  /big/N                 N bytes of "0123456789abcdef" repeated
  /headers               200 with Set-Cookie twice and X-Spaced: "  v  "
  /hang                  never answers; ends when the client closes
  /drop                  closes the connection without an answer
  /stats                 "inflight N requests M": requests being handled
                         (this one included) and handled in all
TCP (a line protocol, one thread per connection):
  echo TEXT      -> TEXT CRLF
  bytes N        -> N bytes of the same pattern, no newline
  partial        -> "abc", then the connection is closed
  close          -> "bye\\n", then closed
  hang           -> nothing; ends when the client closes
  sink N         -> reads N bytes, then "got N\\n"
  barrier N KEY  -> "together N\\n" once N connections wait at once
  stats          -> "inflight N\\n": connections open now (this one included)
  backlog        -> the port of a third socket, listening with backlog 0
                    and never accepting: a connect to it past the first
                    one hangs (its SYN is dropped)
"""
import http.server
import os
import select
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

PATTERN = b"0123456789abcdef"
lock = threading.Condition()
stats = {"inflight": 0, "requests": 0, "tcp_inflight": 0}
barriers = {}


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def barrier(key, n):
    """Waits until n callers with key wait at once; returns how many came."""
    deadline = time.monotonic() + 30
    with lock:
        b = barriers.setdefault(key, {"waiting": 0, "released": False})
        b["waiting"] += 1
        if b["waiting"] >= n:
            b["released"] = True
            lock.notify_all()
        while not b["released"] and time.monotonic() < deadline:
            lock.wait(deadline - time.monotonic())
        came = b["waiting"]
        if not b["released"]:
            b["waiting"] -= 1
        return n if b["released"] else came


def wait_closed(sock):
    """Blocks until the peer closes sock."""
    while True:
        r, _, _ = select.select([sock], [], [], 1.0)
        if r:
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return
            except OSError:
                return
            sock.recv(65536)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # Counted from the request line read to the answer sent: a kept-alive
    # connection waiting for its next request is not a request in flight.
    def route(self):
        with lock:
            stats["inflight"] += 1
        try:
            return self.serve()
        finally:
            with lock:
                stats["inflight"] -= 1
                stats["requests"] += 1

    def serve(self):
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        parts = url.path.strip("/").split("/")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if parts[0] == "hello":
            return self.reply(200, b"hello")
        if parts[0] == "delay":
            time.sleep(int(q.get("ms", "100")) / 1000)
            return self.reply(200, b"slept " + q.get("ms", "100").encode())
        if parts[0] == "barrier":
            n = int(q["n"])
            came = barrier(q.get("key", "http"), n)
            if came == n:
                return self.reply(200, b"together %d" % n)
            return self.reply(504, b"only %d of %d" % (came, n))
        if parts[0] == "echo":
            hdrs = [("X-Method", self.command)] + [("X-Echo-" + k, v) for k, v in self.headers.items()]
            return self.reply(200, body, hdrs)
        if parts[0] == "status":
            code = int(parts[1])
            return self.reply(code, b"status %d" % code)
        if parts[0] == "redirect":
            n = int(parts[1])
            if n == 0:
                return self.reply(200, b"landed")
            return self.reply(302, b"", [("Location", "/redirect/%d" % (n - 1))])
        if parts[0] == "big":
            return self.reply(200, pattern(int(parts[1])))
        if parts[0] == "headers":
            return self.reply(200, b"ok", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Spaced", "  v  ")])
        if parts[0] == "hang":
            wait_closed(self.connection)
            self.close_connection = True
            return
        if parts[0] == "drop":
            self.close_connection = True
            return
        if parts[0] == "stats":
            with lock:
                s = b"inflight %d requests %d" % (stats["inflight"], stats["requests"])
            return self.reply(200, s)
        return self.reply(404, b"no such path")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = route


class TCPHandler(socketserver.BaseRequestHandler):
    def handle(self):
        with lock:
            stats["tcp_inflight"] += 1
        try:
            self.serve()
        finally:
            with lock:
                stats["tcp_inflight"] -= 1

    def serve(self):
        f = self.request.makefile("rb")
        for line in f:
            words = line.decode().split()
            if not words:
                continue
            cmd = words[0]
            if cmd == "echo":
                self.request.sendall(line[5:].rstrip(b"\r\n") + b"\r\n")
            elif cmd == "bytes":
                self.request.sendall(pattern(int(words[1])))
            elif cmd == "partial":
                self.request.sendall(b"abc")
                return
            elif cmd == "close":
                self.request.sendall(b"bye\n")
                return
            elif cmd == "hang":
                wait_closed(self.request)
                return
            elif cmd == "sink":
                left = int(words[1])
                while left > 0:
                    chunk = f.read1(min(left, 1 << 20))
                    if not chunk:
                        return
                    left -= len(chunk)
                self.request.sendall(b"got %s\n" % words[1].encode())
            elif cmd == "barrier":
                n = int(words[1])
                came = barrier("tcp:" + words[2], n)
                self.request.sendall(b"together %d\n" % n if came == n else b"only %d of %d\n" % (came, n))
            elif cmd == "stats":
                with lock:
                    self.request.sendall(b"inflight %d\n" % stats["tcp_inflight"])
            elif cmd == "backlog":
                self.request.sendall(b"%d\n" % backlog_port)


class HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


class TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def watch(pid):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        time.sleep(0.2)


if __name__ == "__main__":
    portfile = sys.argv[1]
    if len(sys.argv) > 2:
        threading.Thread(target=watch, args=(int(sys.argv[2]),), daemon=True).start()
    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    tcpd = TCPServer(("127.0.0.1", 0), TCPHandler)
    full = socket.socket()
    full.bind(("127.0.0.1", 0))
    full.listen(0)
    backlog_port = full.getsockname()[1]
    threading.Thread(target=tcpd.serve_forever, daemon=True).start()
    tmp = portfile + ".tmp"
    with open(tmp, "w") as out:
        out.write("%d %d %d\n" % (httpd.server_address[1], tcpd.server_address[1], os.getpid()))
    os.rename(tmp, portfile)
    httpd.serve_forever()
