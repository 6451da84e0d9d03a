#!/usr/bin/env python3
"""Writes a benchmark zone and a dnsperf-format query file, reproducibly.

    loadtest/make_workload.py --names 10000 --seed 1 --origin bench.test. OUTDIR

OUTDIR gets `zone` (the zone file) and `queries` (one "name type" a line).
The zone has NAMES hosts with A (all), AAAA (half), MX and TXT (a tenth),
CNAMEs, wildcards and delegations with glue. The query mix is mostly
positive answers, with NXDOMAIN, NODATA, wildcard, CNAME and referral
queries, in proportions printed at the end. Same seed, same files.
"""

import argparse
import os
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=100000, help="lines in the query file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--origin", default="bench.test.")
    parser.add_argument("outdir")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    origin = args.origin if args.origin.endswith(".") else args.origin + "."
    os.makedirs(args.outdir, exist_ok=True)

    hosts = [f"host{i}" for i in range(args.names)]
    cnames = [f"alias{i}" for i in range(max(1, args.names // 20))]
    wildcards = [f"w{i}" for i in range(max(1, args.names // 100))]
    delegations = [f"d{i}" for i in range(max(1, args.names // 100))]

    with open(os.path.join(args.outdir, "zone"), "w") as zone:
        zone.write(f"$ORIGIN {origin}\n$TTL 3600\n")
        zone.write("@ SOA ns1 hostmaster 2026112601 7200 900 1209600 300\n")
        zone.write("@ NS ns1\n@ NS ns2\n@ MX 10 mail\nns1 A 192.0.2.1\nns2 A 192.0.2.2\nmail A 192.0.2.25\n")
        for i, host in enumerate(hosts):
            zone.write(f"{host} A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n")
            if i % 2 == 0:
                zone.write(f"{host} AAAA 2001:db8::{i >> 16:x}:{i & 0xffff:x}\n")
            if i % 10 == 0:
                zone.write(f"{host} MX 10 mail\n{host} TXT \"v=spf1 host {i}\"\n")
        for alias in cnames:
            zone.write(f"{alias} CNAME {rng.choice(hosts)}\n")
        for wild in wildcards:
            zone.write(f"*.{wild} A 192.0.2.{rng.randrange(1, 255)}\n")
        for cut in delegations:
            zone.write(f"{cut} NS ns.{cut}\nns.{cut} A 192.0.2.{rng.randrange(1, 255)}\n")

    # (weight, kind): mostly positive, as a real authoritative server sees.
    mix = [(55, "A"), (15, "AAAA"), (5, "MX"), (3, "TXT"), (5, "CNAME"), (5, "NXDOMAIN"),
           (4, "NODATA"), (4, "wildcard"), (4, "referral")]
    kinds = [kind for weight, kind in mix for _ in range(weight)]
    counts = {kind: 0 for _, kind in mix}
    with open(os.path.join(args.outdir, "queries"), "w") as queries:
        for _ in range(args.queries):
            kind = rng.choice(kinds)
            counts[kind] += 1
            if kind == "A":
                line = f"{rng.choice(hosts)}.{origin} A"
            elif kind == "AAAA":
                line = f"{hosts[rng.randrange(0, len(hosts), 2)]}.{origin} AAAA"
            elif kind in ("MX", "TXT"):
                line = f"{hosts[rng.randrange(0, len(hosts), 10)]}.{origin} {kind}"
            elif kind == "CNAME":
                line = f"{rng.choice(cnames)}.{origin} A"
            elif kind == "NXDOMAIN":
                line = f"nx{rng.randrange(10**9)}.{origin} A"
            elif kind == "NODATA":
                line = f"{hosts[rng.randrange(1, len(hosts), 2)]}.{origin} AAAA"
            elif kind == "wildcard":
                line = f"q{rng.randrange(10**6)}.{rng.choice(wildcards)}.{origin} A"
            else:
                line = f"www.{rng.choice(delegations)}.{origin} A"
            queries.write(line + "\n")
    total = sum(counts.values())
    print("query mix: " + ", ".join(f"{kind} {100 * n / total:.0f}%" for kind, n in counts.items()))


if __name__ == "__main__":
    main()
