#!/usr/bin/env python3
"""Regenerate the command metadata files from a running redis-server 7.0.x.

    redis-server --port 7391 --save '' &   # Debian's 7.0.15
    python3 gen.py 7391

Writes command-info.resp3 (COMMAND INFO) and command-docs.resp3 (COMMAND DOCS), the
raw RESP3 replies (maps and sets keep their types), which src/cmd/meta.rs embeds and
re-encodes in the client's protocol. Redis's command metadata is BSD-3-Clause.
"""
import os
import socket
import sys


def enc(*a):
    o = b"*%d\r\n" % len(a)
    for x in a:
        x = x.encode()
        o += b"$%d\r\n%s\r\n" % (len(x), x)
    return o


def read_reply(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    out = line
    if t in b"$=!":
        n = int(rest)
        if n >= 0:
            out += f.read(n + 2)
    elif t in b"*~>%|":
        n = int(rest)
        if t in b"%|":
            n *= 2
        for _ in range(max(n, 0)):
            out += read_reply(f)
    return out


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 6379
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    here = os.path.dirname(os.path.abspath(__file__))
    s.sendall(enc("HELLO", "3"))
    read_reply(f)
    for name, sub in (("command-info.resp3", "INFO"), ("command-docs.resp3", "DOCS")):
        s.sendall(enc("COMMAND", sub))
        data = read_reply(f)
        with open(os.path.join(here, name), "wb") as out:
            out.write(data)
        print(name, len(data), "bytes")


if __name__ == "__main__":
    main()
