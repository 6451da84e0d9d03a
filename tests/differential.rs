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

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{
    Edns, QueryOpts, Reply, Rr, ServerProcess, TempDir, build_query, corefile_for,
    corefile_ready_target, env_flag, exchange_udp, free_port, parse_reply, rcode_name, start_knot,
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

/// One query of the list: a description for the report and the wire bytes
/// sent unchanged (same ID) to every server.
struct Case {
    desc: String,
    wire: Vec<u8>,
    /// False for queries whose answer is a product choice rather than a
    /// protocol rule (server identity over CHAOS): ringdns's differences
    /// there are reported, never failures.
    checked: bool,
}

fn fqdn(rel: &str) -> String {
    if rel == "@" {
        ORIGIN.to_string()
    } else {
        format!("{rel}.{ORIGIN}")
    }
}

/// 0x20 mixed case: alternates upper/lower within each label, starting
/// upper ("www.diff.test." -> "WwW.DiFf.TeSt.").
fn mixed_case(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            if c == '.' {
                upper = true;
                return c;
            }
            if !c.is_ascii_alphabetic() {
                return c;
            }
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = !upper;
            out
        })
        .collect()
}

fn describe(name: &str, rtype: Rtype, opts: &QueryOpts) -> String {
    let mut d = format!("{name} {} {rtype}", opts.class);
    match opts.edns {
        None => d.push_str(" noedns"),
        Some(Edns {
            payload,
            do_bit,
            version,
        }) => {
            d.push_str(&format!(" edns={payload}"));
            if version != 0 {
                d.push_str(&format!(" ednsver={version}"));
            }
            if do_bit {
                d.push_str(" +do");
            }
        }
    }
    for (on, flag) in [(opts.rd, "+rd"), (opts.cd, "+cd"), (opts.ad, "+ad")] {
        if on {
            d.push(' ');
            d.push_str(flag);
        }
    }
    if opts.opcode != 0 {
        d.push_str(&format!(" opcode={}", opts.opcode));
    }
    d
}

fn case(name: &str, rtype: Rtype, opts: QueryOpts) -> Case {
    Case {
        desc: describe(name, rtype, &opts),
        wire: build_query(name, rtype, &opts),
        checked: true,
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

/// What a server did with one query.
enum Outcome {
    NoReply,
    Unparsable(String),
    Reply(Reply),
}

impl Outcome {
    fn get(server: &ServerProcess, wire: &[u8]) -> Outcome {
        match exchange_udp(server.addr, wire) {
            None => Outcome::NoReply,
            Some(bytes) => match parse_reply(&bytes) {
                Ok(reply) => Outcome::Reply(reply),
                Err(e) => Outcome::Unparsable(e),
            },
        }
    }

    fn short(&self) -> String {
        match self {
            Outcome::NoReply => "no reply".into(),
            Outcome::Unparsable(e) => format!("unparsable reply ({e})"),
            Outcome::Reply(r) => r.summary(),
        }
    }

    fn full(&self) -> String {
        match self {
            Outcome::Reply(r) => r.to_string(),
            other => format!("{}\n", other.short()),
        }
    }
}

/// One field on which two outcomes differ, with the explanation lines.
struct FieldDiff {
    field: &'static str,
    text: String,
}

/// The fields on which two outcomes differ, labelling the two sides `la`
/// and `lb`. Empty means "agree". If either side is not a parsed reply the
/// only field is "reply".
fn diff(a: &Outcome, b: &Outcome, la: &str, lb: &str) -> Vec<FieldDiff> {
    let (x, y) = match (a, b) {
        (Outcome::Reply(x), Outcome::Reply(y)) => (x, y),
        (Outcome::NoReply, Outcome::NoReply) => return vec![],
        _ => {
            return vec![FieldDiff {
                field: "reply",
                text: format!("{la}: {}; {lb}: {}", a.short(), b.short()),
            }];
        }
    };
    let mut out = Vec::new();
    let mut scalar = |field: &'static str, vx: String, vy: String| {
        if vx != vy {
            out.push(FieldDiff {
                field,
                text: format!("{la}: {vx}; {lb}: {vy}"),
            });
        }
    };
    scalar("opcode", x.opcode.to_string(), y.opcode.to_string());
    scalar(
        "rcode",
        rcode_name(x.rcode.into()),
        rcode_name(y.rcode.into()),
    );
    scalar("flags", x.flags.to_string(), y.flags.to_string());
    let question = |r: &Reply| {
        if r.question.is_empty() {
            "(none)".to_string()
        } else {
            r.question.join(", ")
        }
    };
    scalar("question", question(x), question(y));
    let opt = |r: &Reply| r.opt.map_or("none".to_string(), |o| o.to_string());
    scalar("opt", opt(x), opt(y));
    for (field, sx, sy) in [
        ("answer", &x.answer, &y.answer),
        ("authority", &x.authority, &y.authority),
        ("additional", &x.additional, &y.additional),
    ] {
        if sx == sy {
            continue;
        }
        let list = |only: Vec<&Rr>| -> String {
            if only.is_empty() {
                "        (nothing)\n".to_string()
            } else {
                only.iter().map(|rr| format!("        {rr}\n")).collect()
            }
        };
        let text = format!(
            "\n      only {la}:\n{}      only {lb}:\n{}",
            list(sx.difference(sy).collect()),
            list(sy.difference(sx).collect())
        );
        out.push(FieldDiff {
            field,
            text: text.trim_end().to_string(),
        });
    }
    out
}

/// Formats a query's field differences as an indented block.
fn render(desc: &str, diffs: &[FieldDiff]) -> String {
    let mut s = desc.to_string();
    for d in diffs {
        s.push_str(&format!("\n    {}: {}", d.field, d.text));
    }
    s
}

fn subdir(tmp: &TempDir, name: &str) -> PathBuf {
    let dir = tmp.join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

/// Which reference ringdns followed on the fields Knot and NSD dispute.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Side {
    Knot,
    Nsd,
    Both,
    Neither,
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
    // Queries on which Knot and NSD agree on every field.
    let mut peers_agree = 0usize;
    // Queries on which ringdns matches every field Knot and NSD agree on.
    let mut ring_match = 0usize;
    let mut mismatches: Vec<String> = Vec::new();
    let mut disagreements: Vec<String> = Vec::new();
    // Disputed field set -> number of queries.
    let mut by_fields: BTreeMap<String, usize> = BTreeMap::new();
    // On disputed fields: whom ringdns followed.
    let mut sides: BTreeMap<Side, usize> = BTreeMap::new();
    let mut ring_neither: Vec<String> = Vec::new();
    // ringdns's differences on informational-only queries.
    let mut unchecked: Vec<String> = Vec::new();
    let checked = cases.iter().filter(|c| c.checked).count();

    for c in &cases {
        let k = Outcome::get(&knot, &c.wire);
        let n = Outcome::get(&nsd, &c.wire);
        let r = ringdns.as_ref().map(|s| Outcome::get(s, &c.wire));
        if verbose {
            println!("=== {}", c.desc);
            println!("--- knot: {}", k.full());
            println!("--- nsd: {}", n.full());
            if let Some(r) = &r {
                println!("--- ringdns: {}", r.full());
            }
        }

        // Fields the references dispute are reported, not checked.
        let peer_diff = diff(&k, &n, "knot", "nsd");
        let disputed: Vec<&str> = peer_diff.iter().map(|d| d.field).collect();
        if disputed.is_empty() {
            peers_agree += 1;
        } else {
            *by_fields.entry(disputed.join("+")).or_default() += 1;
            disagreements.push(render(&c.desc, &peer_diff));
        }
        let Some(r) = r else { continue };
        if disputed.contains(&"reply") {
            // One reference did not answer at all: nothing is agreed on.
            continue;
        }

        // Every field the references agree on must match.
        let ring_diff: Vec<FieldDiff> = diff(&k, &r, "knot+nsd", "ringdns")
            .into_iter()
            .filter(|d| !disputed.contains(&d.field))
            .collect();
        if !c.checked {
            if !ring_diff.is_empty() {
                unchecked.push(render(&c.desc, &ring_diff));
            }
        } else if ring_diff.is_empty() {
            ring_match += 1;
        } else {
            mismatches.push(format!(
                "{}\n    knot+nsd: {}\n    ringdns:  {}",
                render(&c.desc, &ring_diff),
                k.short(),
                r.short()
            ));
        }

        // Information: on the disputed fields, whom did ringdns follow?
        if !disputed.is_empty() {
            let same = |peer: &Outcome| {
                diff(peer, &r, "", "")
                    .iter()
                    .all(|d| !disputed.contains(&d.field))
            };
            let side = match (same(&k), same(&n)) {
                (true, true) => Side::Both,
                (true, false) => Side::Knot,
                (false, true) => Side::Nsd,
                (false, false) => Side::Neither,
            };
            *sides.entry(side).or_default() += 1;
            if side == Side::Neither {
                let ring_vs_knot: Vec<FieldDiff> = diff(&k, &r, "knot", "ringdns")
                    .into_iter()
                    .filter(|d| disputed.contains(&d.field))
                    .collect();
                ring_neither.push(render(&c.desc, &ring_vs_knot));
            }
        }
    }

    println!("\n##### Knot vs NSD disagreements (information only) #####");
    for d in &disagreements {
        println!("{d}");
    }
    println!("\n##### Knot vs NSD disagreements by disputed fields #####");
    for (fields, count) in &by_fields {
        println!("{count:5}  {fields}");
    }
    if !ring_neither.is_empty() {
        println!("\n##### Disputed fields where ringdns follows neither (information only) #####");
        for d in &ring_neither {
            println!("{d}");
        }
    }
    if !unchecked.is_empty() {
        println!("\n##### ringdns differences on informational-only queries #####");
        for d in &unchecked {
            println!("{d}");
        }
    }
    if !mismatches.is_empty() {
        println!("\n##### ringdns mismatches (on fields where Knot and NSD agree) #####");
        for m in &mismatches {
            println!("{m}");
        }
    }
    println!("\n##### Summary #####");
    println!("queries:                        {}", cases.len());
    println!("Knot and NSD agree fully:       {peers_agree}");
    println!("Knot and NSD dispute a field:   {}", disagreements.len());
    match &ringdns {
        Some(_) => {
            println!(
                "ringdns matches the agreed fields: {ring_match} of {checked} checked queries"
            );
            println!(
                "informational-only queries:     {} (ringdns differs on {})",
                cases.len() - checked,
                unchecked.len()
            );
            println!("ringdns on disputed fields:     {sides:?}");
        }
        None => println!("ringdns:                        not run"),
    }

    // Guards against a silently broken harness: the list is as large as
    // promised, and the references mostly agree (if they did not, the zone
    // or the configs would be wrong and the comparison would prove little).
    assert!(cases.len() >= 300, "only {} queries", cases.len());
    assert!(
        peers_agree * 10 >= cases.len() * 7,
        "Knot and NSD agree on only {peers_agree} of {} queries: check the zone and configs",
        cases.len()
    );
    assert!(
        mismatches.is_empty(),
        "ringdns differs from Knot+NSD on {} of {checked} checked queries (listed above):\n\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
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
