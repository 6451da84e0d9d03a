//! Differential test: ringdns against Knot and NSD.
//!
//! The zone `tests/zones/diff.test.zone` is served by all three servers on
//! 127.0.0.1, and the same list of UDP queries (about two thousand, generated
//! from the tables below) goes to each. For every query the replies are
//! compared on: RCODE, opcode, the QR AA TC RD RA AD CD flags, the question
//! (case-exact, for 0x20), the answer/authority/additional sections as sets
//! of records (owner lowercased, TTL included, rdata in canonical form), and
//! the OPT record (present or not, EDNS version, DO bit, extended RCODE; not
//! the advertised payload size, which every server picks for itself).
//!
//! Knot and NSD are the reference, field by field: on every field where
//! they agree, ringdns must agree with them, and the test fails listing
//! every such mismatch. Fields they dispute (both are RFC-compliant in
//! different ways: NSD adds the apex NS RRset to positive answers and Knot
//! does not, they pick different RRsets for a minimal ANY, ...) are only
//! reported, with which side ringdns took. Comparing per field rather than
//! per query keeps, e.g., the answer section of every positive answer under
//! test although the two references disagree on its authority section.
//!
//! Environment:
//! * `RINGDNS_DIFF_ONLY_PEERS=1`: do not start ringdns, only compare Knot
//!   and NSD (useful to check the harness and the zone);
//! * `RINGDNS_DIFF_VERBOSE=1`: print every query and every reply;
//! * `RINGDNS_KEEP_TMP=1`: keep the temp dir with configs and server logs;
//! * `CI`: missing knotd/nsd is a failure instead of a skip.
//!
//! The summary is printed to stdout: run with `-- --nocapture` to see it
//! when the test passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::compare::{self, Case, case, mixed_case, subdir};
use common::{
    Edns, QueryOpts, TempDir, corefile_for, corefile_ready_target, env_flag, free_port, start_knot,
    start_nsd, start_ringdns,
};
use domain::base::iana::{Class, Rtype};

const ORIGIN: &str = "diff.test.";

fn zone_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/zones/diff.test.zone")
}

/// Names queried with every type in [`TYPES`], relative to the origin ("@"
/// is the apex), each with the case it exercises. Every owner in the zone is
/// here, plus the empty non-terminals and names that do not exist.
const NAMES: &[(&str, &str)] = &[
    ("@", "apex: SOA, NS, A, AAAA, MX, TXT"),
    ("ns1", "in-zone name server"),
    ("ns2", "in-zone name server"),
    ("www", "plain host"),
    ("mail", "MX target"),
    ("sip", "SRV target"),
    ("v6only", "AAAA only, own TTL"),
    ("mx", "MX with in-zone and out-of-zone targets"),
    ("txt", "multi-string TXT with escapes"),
    ("_sip._tcp", "SRV with in-zone and out-of-zone targets"),
    ("_tcp", "empty non-terminal above SRV owners"),
    ("_ldap._tcp", "SRV with out-of-zone target only"),
    ("ptr", "PTR"),
    ("caa", "CAA"),
    ("naptr", "NAPTR"),
    ("sshfp", "SSHFP"),
    ("_443._tcp.www", "TLSA below an existing host"),
    ("_tcp.www", "empty non-terminal below an existing host"),
    ("hinfo", "HINFO"),
    ("loc", "LOC"),
    ("_http._tcp", "URI"),
    ("svcb", "SVCB"),
    ("https", "HTTPS"),
    ("unknown", "TYPE65400"),
    ("chain1", "CNAME chain of 3 ending in an A"),
    ("chain2", "CNAME chain, middle"),
    ("chain3", "CNAME chain, last link"),
    ("cext", "CNAME out of the zone"),
    ("cdangling", "CNAME to a nonexistent in-zone name"),
    ("loop1", "CNAME loop"),
    ("loop2", "CNAME loop"),
    ("cent", "CNAME to an empty non-terminal"),
    ("a.b.c", "name creating empty non-terminals"),
    ("b.c", "empty non-terminal"),
    ("c", "empty non-terminal"),
    ("nothere", "nonexistent sibling (NXDOMAIN)"),
    ("x.nothere", "below a nonexistent name"),
    ("child.www", "nonexistent child of an existing host"),
    ("d.b.c", "nonexistent child of an empty non-terminal"),
    ("sub", "delegation with in-bailiwick glue"),
    ("ns1.sub", "glue (A + AAAA)"),
    ("ns2.sub", "glue (A only)"),
    ("ns.sub", "glue used by a sibling delegation"),
    ("deep.ns1.sub", "deeper than glue"),
    ("host.sub", "below a cut, no glue there"),
    ("a.b.sub", "two labels below a cut"),
    ("sib", "delegation with sibling glue"),
    ("host.sib", "below a sibling-glue cut"),
    ("ext", "delegation to out-of-zone name servers"),
    ("www.ext", "below an out-of-zone delegation"),
    ("sec", "delegation with DS"),
    ("ns.sec", "glue of the DS delegation"),
    ("x.sec", "below the DS delegation"),
    ("wild", "empty non-terminal above a wildcard"),
    ("*.wild", "the wildcard owner itself"),
    ("foo.wild", "wildcard match (A, TXT), one label"),
    ("a.b.wild", "wildcard match, two labels"),
    ("explicit.wild", "explicit node beside a wildcard"),
    ("x.explicit.wild", "below the explicit node: no wildcard"),
    ("foo.wcname", "wildcard CNAME"),
    ("a.b.wcname", "wildcard CNAME, two labels"),
    ("foo.blk", "wildcard match"),
    ("y.blk", "empty non-terminal blocking the wildcard"),
    ("x.y.blk", "name below the blocking ENT"),
    ("z.y.blk", "blocked by the ENT: NXDOMAIN"),
    ("foo.wmx", "wildcard MX to an in-zone target"),
    ("dname", "DNAME owner (in-zone target)"),
    ("host.dname", "below DNAME, target exists"),
    ("www.dname", "below DNAME, target with A and AAAA"),
    ("nothere.dname", "below DNAME, target does not exist"),
    ("a.b.dname", "two labels below DNAME"),
    ("tree", "DNAME target subtree (empty non-terminal)"),
    ("host.tree", "DNAME target"),
    ("dnameext", "DNAME out of the zone"),
    ("x.dnameext", "below an out-of-zone DNAME"),
    ("many", "40 A records: TC without EDNS"),
    ("bigtxt", "TXT too big even for 1232 bytes"),
];

/// Types asked at every name in [`NAMES`]; RP is present nowhere.
const TYPES: &[Rtype] = &[
    Rtype::A,
    Rtype::AAAA,
    Rtype::NS,
    Rtype::SOA,
    Rtype::MX,
    Rtype::TXT,
    Rtype::CNAME,
    Rtype::DS,
    Rtype::ANY,
    Rtype::SRV,
    Rtype::RP,
];

/// Types that exist only at a few owners, asked there.
const NATIVE: &[(&str, Rtype)] = &[
    ("ptr", Rtype::PTR),
    ("caa", Rtype::CAA),
    ("naptr", Rtype::NAPTR),
    ("sshfp", Rtype::SSHFP),
    ("_443._tcp.www", Rtype::TLSA),
    ("hinfo", Rtype::HINFO),
    ("loc", Rtype::LOC),
    ("_http._tcp", Rtype::URI),
    ("svcb", Rtype::SVCB),
    ("https", Rtype::HTTPS),
    ("unknown", Rtype::from_int(65400)),
    ("www", Rtype::from_int(65400)),
    ("dname", Rtype::DNAME),
    ("host.dname", Rtype::DNAME),
    ("dnameext", Rtype::DNAME),
    ("x.dnameext", Rtype::DNAME),
];

fn fqdn(rel: &str) -> String {
    if rel == "@" {
        ORIGIN.to_string()
    } else {
        format!("{rel}.{ORIGIN}")
    }
}

/// The whole query list.
fn build_cases() -> Vec<Case> {
    let edns = QueryOpts::with_edns(1232);
    let plain = QueryOpts::default();
    let mut cases = Vec::new();

    // Every name x every type, with EDNS (the normal resolver case) and
    // without (no OPT in the reply, 512-byte limit).
    for (rel, _) in NAMES {
        let name = fqdn(rel);
        for &rtype in TYPES {
            cases.push(case(&name, rtype, edns.clone()));
            cases.push(case(&name, rtype, plain.clone()));
        }
    }
    for &(rel, rtype) in NATIVE {
        let name = fqdn(rel);
        cases.push(case(&name, rtype, edns.clone()));
        cases.push(case(&name, rtype, plain.clone()));
    }

    // Per-name variants on A (and MX for 0x20, since MX answers carry names
    // in rdata and additional data): RD set (must be copied, RA stays
    // clear), DO set (echoed in OPT; the zone is unsigned), CD set (copied),
    // and a mixed-case qname (question echoed case-exact).
    for (rel, _) in NAMES {
        let name = fqdn(rel);
        let rd = QueryOpts {
            rd: true,
            ..edns.clone()
        };
        cases.push(case(&name, Rtype::A, rd));
        let dnssec_ok = QueryOpts {
            edns: Some(Edns {
                do_bit: true,
                ..Edns::v0(1232)
            }),
            ..QueryOpts::default()
        };
        cases.push(case(&name, Rtype::A, dnssec_ok));
        let cd = QueryOpts {
            cd: true,
            ..edns.clone()
        };
        cases.push(case(&name, Rtype::A, cd));
        let mixed = mixed_case(&name);
        cases.push(case(&mixed, Rtype::A, edns.clone()));
        cases.push(case(&mixed, Rtype::MX, edns.clone()));
    }

    // Size limits: a small advertised payload (treated as 512), and a large
    // one (servers cap it at their own maximum).
    for payload in [256, 512, 4096] {
        for name in ["many", "bigtxt"] {
            let rtype = if name == "many" { Rtype::A } else { Rtype::TXT };
            cases.push(case(&fqdn(name), rtype, QueryOpts::with_edns(payload)));
        }
        cases.push(case(ORIGIN, Rtype::ANY, QueryOpts::with_edns(payload)));
    }
    cases.push(case(
        &fqdn("many"),
        Rtype::A,
        QueryOpts {
            rd: true,
            ..plain.clone()
        },
    ));

    // Outside the zone: REFUSED (or no answer) expected from an
    // authoritative-only server.
    for name in ["example.com.", "diff.test.example.com.", "test.", "."] {
        for rtype in [Rtype::A, Rtype::SOA, Rtype::NS] {
            cases.push(case(name, rtype, edns.clone()));
            cases.push(case(name, rtype, plain.clone()));
        }
    }
    // Mixed-case apex and a mixed-case name below a cut and below DNAME.
    for rel in ["@", "host.sub", "host.dname", "foo.wild", "foo.wcname"] {
        let name = mixed_case(&fqdn(rel));
        for rtype in [Rtype::SOA, Rtype::NS, Rtype::ANY, Rtype::CNAME] {
            cases.push(case(&name, rtype, edns.clone()));
        }
    }

    // CHAOS server identification: informational only. Knot and NSD both
    // reveal their version and the machine's host name by default; whether
    // ringdns does is a product choice (many operators turn it off), not a
    // protocol rule this test should impose.
    for name in [
        "version.bind.",
        "version.server.",
        "hostname.bind.",
        "id.server.",
    ] {
        let ch = QueryOpts {
            class: Class::CH,
            ..edns.clone()
        };
        for opts in [ch.clone(), QueryOpts { edns: None, ..ch }] {
            cases.push(Case {
                checked: false,
                ..case(name, Rtype::TXT, opts)
            });
        }
    }
    // Other classes: class ANY, a class nobody serves (HS), CH for names of
    // the IN zone.
    for class in [Class::ANY, Class::HS, Class::CH] {
        let opts = QueryOpts {
            class,
            ..edns.clone()
        };
        cases.push(case(&fqdn("www"), Rtype::A, opts.clone()));
        cases.push(case(ORIGIN, Rtype::SOA, opts));
    }

    // EDNS version 1: BADVERS (extended RCODE 16) with an OPT of version 0.
    for (name, rtype) in [(fqdn("www"), Rtype::A), ("example.com.".into(), Rtype::A)] {
        let opts = QueryOpts {
            edns: Some(Edns {
                version: 1,
                ..Edns::v0(1232)
            }),
            ..QueryOpts::default()
        };
        cases.push(case(&name, rtype, opts));
    }

    // Opcodes other than QUERY: IQUERY (obsolete), STATUS, unassigned 3,
    // NOTIFY and UPDATE (both unconfigured here), unassigned 15.
    for opcode in [1, 2, 3, 4, 5, 15] {
        let opts = QueryOpts {
            opcode,
            ..edns.clone()
        };
        cases.push(case(ORIGIN, Rtype::SOA, opts.clone()));
        cases.push(case(ORIGIN, Rtype::SOA, QueryOpts { edns: None, ..opts }));
    }

    // Zone transfer and meta types over UDP.
    for rtype in [
        Rtype::AXFR,
        Rtype::IXFR,
        Rtype::from_int(253), // MAILB
        Rtype::from_int(254), // MAILA
        Rtype::RRSIG,
        Rtype::NSEC,
        Rtype::DNSKEY,
        Rtype::OPT,
    ] {
        cases.push(case(ORIGIN, rtype, edns.clone()));
    }
    cases
}

#[test]
fn differential_against_knot_and_nsd_io_uring() {
    differential_against_knot_and_nsd("io_uring");
}

#[test]
fn differential_against_knot_and_nsd_recvmmsg() {
    differential_against_knot_and_nsd("recvmmsg");
}

/// The whole comparison, with ringdns on the given engine backend.
fn differential_against_knot_and_nsd(backend: &str) {
    // Declared first so it is dropped last: the servers (which live in it)
    // are stopped before it is removed.
    let tmp = TempDir::new("diff");
    let zone = zone_path();
    let verbose = env_flag("RINGDNS_DIFF_VERBOSE");

    // Peers first: if they are missing the test is skipped (or fails
    // under CI) before ringdns is even started.
    let Some(knot) = start_knot(ORIGIN, &zone, free_port(), &subdir(&tmp, "knot")) else {
        return;
    };
    let Some(nsd) = start_nsd(ORIGIN, &zone, free_port(), &subdir(&tmp, "nsd")) else {
        return;
    };
    let ringdns = if env_flag("RINGDNS_DIFF_ONLY_PEERS") {
        println!("RINGDNS_DIFF_ONLY_PEERS set: comparing Knot and NSD only");
        None
    } else {
        let dir = subdir(&tmp, "ringdns");
        let zone_copy = dir.join("diff.test.zone");
        fs::copy(&zone, &zone_copy).expect("copy zone for ringdns");
        let corefile = corefile_for(ORIGIN, free_port(), &zone_copy).replace(
            "    file",
            &format!("    engine {{\n        backend {backend}\n    }}\n    file"),
        );
        Some(start_ringdns(&corefile, &dir))
    };

    let cases = build_cases();
    let cmp = compare::run(&knot, &nsd, ringdns.as_ref(), &cases, verbose);
    cmp.report();

    cmp.assert_sound_and_no_mismatches(300);
}

/// The small pure helpers this test relies on.
#[test]
fn helpers() {
    assert_eq!(mixed_case("www.diff.test."), "WwW.DiFf.TeSt.");
    assert_eq!(mixed_case("_443._tcp.a1b."), "_443._TcP.A1b.");
    let corefile = corefile_for(ORIGIN, 5353, Path::new("/z/diff.test.zone"));
    assert_eq!(
        corefile,
        "diff.test:5353 {\n    bind 127.0.0.1\n    file /z/diff.test.zone\n}\n"
    );
    let (addr, zone) = corefile_ready_target(&corefile);
    assert_eq!(addr.to_string(), "127.0.0.1:5353");
    assert_eq!(zone, "diff.test.");
    let (addr, zone) = corefile_ready_target("# comment\n. {\n  bind ::1 127.0.0.1\n}\n");
    assert_eq!(addr.to_string(), "[::1]:53");
    assert_eq!(zone, ".");
    let (addr, zone) =
        corefile_ready_target("dns://example.org:1053 other:1 {\n}\nx {\n bind 10.0.0.1\n}");
    assert_eq!(addr.to_string(), "127.0.0.1:1053");
    assert_eq!(zone, "example.org.");
    // The generated query list parses back and is large enough.
    let cases = build_cases();
    assert!(cases.len() >= 300);
    for c in &cases {
        let msg = domain::base::Message::from_slice(&c.wire).expect("query parses");
        assert_eq!(msg.header_counts().qdcount(), 1, "{}", c.desc);
    }
}
