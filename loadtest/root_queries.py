#!/usr/bin/env python3
"""Writes a dnsperf query file for a root zone, reproducibly.

    loadtest/root_queries.py ../shared/data/root.zone.2020101902.signed OUT --count 100000

The mix, like traffic a root server sees: names under the TLDs (referrals
with DS or the NSEC no-DS proof) 60 %, TLD NS/DS queries 15 %, names
under TLDs that do not exist (NXDOMAIN with two NSEC proofs) 20 %, apex
SOA/DNSKEY/NS 5 %. Same seed, same file.
"""
import argparse
import random


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zone")
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=100000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    tlds = set()
    with open(args.zone) as zone:
        for line in zone:
            fields = line.split()
            if len(fields) >= 4 and fields[3] == "NS" and fields[0] != ".":
                tlds.add(fields[0].rstrip(".").lower())
    tlds = sorted(tlds)
    rng = random.Random(args.seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789"
    with open(args.out, "w") as out:
        for _ in range(args.count):
            roll = rng.random()
            if roll < 0.60:
                tld = rng.choice(tlds)
                out.write(f"www.example{rng.randrange(1000)}.{tld} {rng.choice(['A', 'AAAA'])}\n")
            elif roll < 0.75:
                out.write(f"{rng.choice(tlds)} {rng.choice(['NS', 'DS'])}\n")
            elif roll < 0.95:
                fake = "".join(rng.choice(letters) for _ in range(rng.randrange(5, 12)))
                out.write(f"www.{fake} A\n")
            else:
                out.write(f". {rng.choice(['SOA', 'DNSKEY', 'NS'])}\n")
    print(f"{args.count} queries over {len(tlds)} TLDs written to {args.out}")


if __name__ == "__main__":
    main()
