#!/usr/bin/env python3
"""rawconn.py PORT [--source IP] [--keep-open] [--timeout S]: sends stdin's
bytes to 127.0.0.1:PORT in one write, half-closes (unless --keep-open), and
prints every byte received until the server closes the connection.

Exit status: 0 the server closed it; 2 it reset it (what came before is
printed); 3 nothing closed it within S seconds (default 20).
For the HTTP and console tests: raw requests curl would not send, from
another loopback address (--source 127.0.0.2), half-closed or not.
"""
import argparse
import socket
import sys

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--source", default=None)
ap.add_argument("--keep-open", action="store_true")
ap.add_argument("--timeout", type=float, default=20)
args = ap.parse_args()

data = sys.stdin.buffer.read()
src = (args.source, 0) if args.source else None
s = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout, source_address=src)
s.sendall(data)
if not args.keep_open:
    s.shutdown(socket.SHUT_WR)
out = sys.stdout.buffer
status = 0
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out.write(chunk)
except ConnectionResetError:
    status = 2
except socket.timeout:
    status = 3
out.flush()
sys.exit(status)
