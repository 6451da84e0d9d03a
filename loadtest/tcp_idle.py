#!/usr/bin/env python3
"""Holds 10,000 idle TCP connections to a running server, then measures.

    loadtest/tcp_idle.py PORT [COUNT]

Against a server on 127.0.0.1:PORT answering www.example.com A (as
examples/Corefile does, on its own port): UDP round trips (p50/p99 of
2,000 sequential queries) before and while COUNT (default 10,000) idle
connections are held, each from its own address in 127.1.0.0/16 so no
per-address cap applies, and whether (and how fast) a new TCP client is
answered before and while they are held. Any
server works (ringdns old and new, Knot, NSD): it is the comparison in
BENCHMARKS.md §10. Needs `ulimit -Hn` above COUNT.
"""

import resource
import socket
import struct
import sys
import time

QUERY = bytes.fromhex("12340000000100000000000003777777076578616d706c6503636f6d0000010001")


def udp_latencies_us(port, count=2000):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.connect(("127.0.0.1", port))
    udp.settimeout(2)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        udp.send(QUERY)
        udp.recv(512)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return int(latencies[count // 2] * 1e6), int(latencies[count * 99 // 100] * 1e6)


def new_tcp_client(port):
    started = time.perf_counter()
    try:
        stream = socket.create_connection(("127.0.0.1", port), timeout=3)
        stream.sendall(struct.pack("!H", len(QUERY)) + QUERY)
        if len(stream.recv(2)) < 2:
            return "closed after %.0f ms" % ((time.perf_counter() - started) * 1e3)
        return "answered in %.0f us" % ((time.perf_counter() - started) * 1e6)
    except OSError as error:
        return "failed (%s) after %.0f ms" % (error, (time.perf_counter() - started) * 1e3)


def new_tcp_clients(port, count=5):
    """`count` new clients one after the other: each one's outcome."""
    return ", ".join(new_tcp_client(port) for _ in range(count))


def main():
    port = int(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    new_tcp_client(port)  # the first call pays for the resolver's start-up
    print("UDP before: p50/p99 %d/%d us" % udp_latencies_us(port))
    print("5 new TCP clients before:", new_tcp_clients(port))
    idle = []
    for index in range(count):
        stream = socket.socket()
        stream.bind(("127.1.%d.%d" % (index // 250, index % 250 + 1), 0))
        stream.connect(("127.0.0.1", port))
        idle.append(stream)
    time.sleep(1)
    print("UDP with %d idle connections: p50/p99 %d/%d us" % ((count,) + udp_latencies_us(port)))
    print("5 new TCP clients:", new_tcp_clients(port))


if __name__ == "__main__":
    main()
