//! Differential tests of signed zones: ringdns against Knot and NSD, with
//! the DO bit set and clear (RFC 4033–4035, RFC 5155).
//!
//! * `signed_root_zone_against_knot_and_nsd`: the real IANA root zone of
//!   2020-10-19, fully signed with NSEC (`../shared/data/`, skipped when
//!   absent): a sample of TLDs (signed delegations with DS, unsigned ones
//!   proven by NSEC), names below them, glue, the apex's every type, RRSIG
//!   and NSEC queries, nonexistent names spread over the NSEC chain and at
//!   its ends.
//! * `nsec_zone_…`, `nsec3_zone_…`, `nsec3_opt_out_zone_…`: our own zone
//!   (`ZONE` below: wildcards, empty non-terminals, signed and unsigned
//!   delegations, CNAMEs to data, to nothing and to a wildcard, DNAME),
//!   signed in the test with BIND's `dnssec-keygen` and `dnssec-signzone`
//!   (fixed inception and expiration) with NSEC, NSEC3, and NSEC3 with
//!   opt-out. Skipped when the tools are missing (CI: a failure).
//!
//! Replies are compared as in `tests/differential.rs` (see
//! `tests/common/compare.rs`), RRSIG, NSEC and NSEC3 records included: on
//! every field where Knot and NSD agree, ringdns must agree.
//!
//! Environment: `RINGDNS_DIFF_ONLY_PEERS`, `RINGDNS_DIFF_VERBOSE`,
//! `RINGDNS_KEEP_TMP` and `CI` as in `tests/differential.rs`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::compare::{self, Case, case, mixed_case, subdir};
use common::signing::{Denial, Signing, sign_zone};
use common::{
    Edns, QueryOpts, ServerProcess, TempDir, corefile_for, env_flag, find_tool, free_port,
    spawn_ringdns, start_knot, start_nsd,
};
use domain::base::iana::Rtype;

const ROOT_ZONE_FILE: &str = "../shared/data/root.zone.2020101902.signed";

/// DO=1 with the usual resolver payload.
fn dnssec(payload: u16) -> QueryOpts {
    QueryOpts {
        edns: Some(Edns {
            do_bit: true,
            ..Edns::v0(payload)
        }),
        ..QueryOpts::default()
    }
}

/// The option sets every name/type pair is asked with: DO=1 (1232), DO=0
/// with EDNS, and DO=1 with a 512-byte payload (truncation).
fn option_sets() -> Vec<QueryOpts> {
    vec![dnssec(1232), QueryOpts::with_edns(1232), dnssec(512)]
}

/// Spawns ringdns for `origin` from `zone` and waits until it answers the
/// apex SOA authoritatively.
fn start_ringdns_zone(origin: &str, zone: &Path, dir: &Path) -> ServerProcess {
    let zone_copy = dir.join("zone");
    fs::copy(zone, &zone_copy).expect("copy zone for ringdns");
    let port = free_port();
    let addr = ([127, 0, 0, 1], port).into();
    let mut server = spawn_ringdns(&corefile_for(origin, port, &zone_copy), dir, addr);
    server.wait_ready(origin, true);
    server
}

/// Joins a server-starting thread, passing its panic on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Serves `zone` with the three servers, sends `cases`, prints the report
/// and fails on any mismatch where Knot and NSD agree.
fn run_differential(label: &str, origin: &str, zone: &Path, cases: &[Case], queries_min: usize) {
    let tmp = TempDir::new(label);
    let only_peers = env_flag("RINGDNS_DIFF_ONLY_PEERS");
    let (knot, nsd, ringdns) = std::thread::scope(|s| {
        let knot = s.spawn(|| start_knot(origin, zone, free_port(), &subdir(&tmp, "knot")));
        let nsd = s.spawn(|| start_nsd(origin, zone, free_port(), &subdir(&tmp, "nsd")));
        let ringdns = (!only_peers)
            .then(|| s.spawn(|| start_ringdns_zone(origin, zone, &subdir(&tmp, "ringdns"))));
        (join(knot), join(nsd), ringdns.map(join))
    });
    let (Some(knot), Some(nsd)) = (knot, nsd) else {
        return; // knotd or nsd missing: skip notice printed
    };
    let cmp = compare::run(
        &knot,
        &nsd,
        ringdns.as_ref(),
        cases,
        env_flag("RINGDNS_DIFF_VERBOSE"),
    );
    cmp.report();
    println!("{label}: {} queries", cases.len());
    cmp.assert_sound_and_no_mismatches(queries_min);
}

// ---------------------------------------------------------------------------
// The signed root zone
// ---------------------------------------------------------------------------

/// Every how many-th TLD (in zone order) is queried.
const ROOT_TLD_STEP: usize = 40;

/// The TLDs of the root zone in zone order, and which have a DS RRset.
fn root_tlds(text: &str) -> (Vec<String>, Vec<String>) {
    let mut tlds: Vec<String> = Vec::new();
    let mut with_ds = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 5 || fields[0] == "." {
            continue;
        }
        let owner = fields[0].to_ascii_lowercase();
        match fields[3] {
            "NS" if owner.matches('.').count() == 1 && !tlds.contains(&owner) => tlds.push(owner),
            "DS" => with_ds.push(owner),
            _ => {}
        }
    }
    (tlds, with_ds)
}

fn root_cases(text: &str) -> Vec<Case> {
    let (tlds, with_ds) = root_tlds(text);
    assert!(tlds.len() > 1000, "only {} TLDs", tlds.len());
    let mut sample: Vec<String> = tlds.iter().step_by(ROOT_TLD_STEP).cloned().collect();
    for must in ["com.", "org.", "arpa.", "aaa.", "ae.", "zw.", "zuerich."] {
        if tlds.iter().any(|t| t == must) && !sample.iter().any(|t| t == must) {
            sample.push(must.to_string());
        }
    }
    assert!(sample.iter().any(|t| with_ds.contains(t)));
    assert!(sample.iter().any(|t| !with_ds.contains(t)));
    let mut cases = Vec::new();
    let all = |cases: &mut Vec<Case>, name: &str, rtype: Rtype| {
        for opts in option_sets() {
            cases.push(case(name, rtype, opts));
        }
    };
    for rtype in [
        Rtype::SOA,
        Rtype::NS,
        Rtype::DNSKEY,
        Rtype::NSEC,
        Rtype::RRSIG,
        Rtype::ANY,
        Rtype::TXT,
        Rtype::DS,
        Rtype::NSEC3PARAM,
    ] {
        all(&mut cases, ".", rtype);
    }
    for tld in &sample {
        for rtype in [Rtype::NS, Rtype::DS, Rtype::A, Rtype::NSEC, Rtype::RRSIG] {
            all(&mut cases, tld, rtype);
        }
        all(&mut cases, &format!("www.{tld}"), Rtype::A);
        all(&mut cases, &format!("a.b.{tld}"), Rtype::DS);
        // Nonexistent names beside the TLD in the NSEC chain.
        let label = tld.trim_end_matches('.');
        all(&mut cases, &format!("{label}0."), Rtype::A);
        all(&mut cases, &format!("x.{label}-0."), Rtype::A);
    }
    // Glue (referrals), and nonexistent names at and beyond the ends of
    // the chain and with odd labels.
    for name in [
        "a.root-servers.net.",
        "a.gtld-servers.net.",
        "ns1.dns.nic.aaa.",
        "0.",
        "-.",
        "zzzzzzzz.",
        "zz.",
        "a.zzzzzzzz.",
        "nonexistent-tld-xyz.",
        "www.nonexistent-tld-xyz.",
        "*.",
        "xn--0.",
        "a.b.c.d.e.f.",
    ] {
        all(&mut cases, name, Rtype::A);
    }
    // No EDNS (DO impossible), CD and RD set with DO, 0x20.
    for (name, rtype) in [
        (".", Rtype::DNSKEY),
        ("com.", Rtype::DS),
        ("nonexistent-tld-xyz.", Rtype::A),
        ("aaa.", Rtype::NS),
    ] {
        cases.push(case(name, rtype, QueryOpts::default()));
        cases.push(case(
            name,
            rtype,
            QueryOpts {
                cd: true,
                rd: true,
                ..dnssec(1232)
            },
        ));
        cases.push(case(&mixed_case(name), rtype, dnssec(1232)));
        cases.push(case(name, rtype, dnssec(4096)));
    }
    cases
}

#[test]
fn signed_root_zone_against_knot_and_nsd() {
    let zone = Path::new(env!("CARGO_MANIFEST_DIR")).join(ROOT_ZONE_FILE);
    if !zone.is_file() {
        eprintln!("SKIP: {} not found", zone.display());
        return;
    }
    let text = fs::read_to_string(&zone).expect("read the signed root zone");
    let cases = root_cases(&text);
    run_differential("diff-root-signed", ".", &zone, &cases, 500);
}

// ---------------------------------------------------------------------------
// Our own zone, signed three ways
// ---------------------------------------------------------------------------

const ORIGIN: &str = "sig.test.";

/// The zone signed by the tests. The SOA minimum (300) is below the SOA
/// TTL, so negative answers show which TTL the SOA's RRSIG gets.
pub const ZONE: &str = r#"$ORIGIN sig.test.
$TTL 3600
@        SOA   ns1 hostmaster 2026010101 7200 900 1209600 300
         NS    ns1
         NS    ns2
         MX    10 mail
ns1      A     192.0.2.1
ns2      A     192.0.2.2
         AAAA  2001:db8::2
mail     A     192.0.2.25
www      A     192.0.2.80
         TXT   "hello"
alias    CNAME www
calias   CNAME nothere
cent     CNAME b.c
cwild    CNAME foo.wild
a.b.c    TXT   "deep"
*.wild   A     192.0.2.100
*.wild   TXT   "wild"
explicit.wild A 192.0.2.101
*.wmx    MX    10 mail
*.wcname CNAME www
sub      NS    ns.sub
ns.sub   A     192.0.2.53
sec      NS    ns.sec
sec      DS    12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE49FD46E6C4B45C55D4AC69CB
ns.sec   A     192.0.2.54
ext      NS    ns.example.net.
red      DNAME blue
blue     A     192.0.2.9
x.blue   A     192.0.2.10
"#;

/// Names queried in the signed zones, relative to the origin.
const NAMES: &[&str] = &[
    "@",
    "ns1",
    "ns2",
    "mail",
    "www",
    "alias",
    "calias",
    "cent",
    "cwild",
    "a.b.c",
    "b.c",
    "c",
    "d.b.c",
    "nothere",
    "x.nothere",
    "child.www",
    "zzz",
    "0",
    "*.wild",
    "wild",
    "foo.wild",
    "a.b.wild",
    "explicit.wild",
    "x.explicit.wild",
    "foo.wmx",
    "foo.wcname",
    "sub",
    "ns.sub",
    "host.sub",
    "sec",
    "ns.sec",
    "x.sec",
    "ext",
    "host.ext",
    "red",
    "host.red",
    "blue",
];

const TYPES: &[Rtype] = &[
    Rtype::A,
    Rtype::AAAA,
    Rtype::TXT,
    Rtype::MX,
    Rtype::NS,
    Rtype::SOA,
    Rtype::DS,
    Rtype::DNSKEY,
    Rtype::NSEC,
    Rtype::NSEC3,
    Rtype::NSEC3PARAM,
    Rtype::RRSIG,
    Rtype::CNAME,
    Rtype::ANY,
];

fn fqdn(relative: &str) -> String {
    match relative {
        "@" => ORIGIN.to_string(),
        _ => format!("{relative}.{ORIGIN}"),
    }
}

fn own_zone_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for relative in NAMES {
        for &rtype in TYPES {
            for opts in [dnssec(1232), QueryOpts::with_edns(1232)] {
                cases.push(case(&fqdn(relative), rtype, opts));
            }
        }
        cases.push(case(&fqdn(relative), Rtype::A, dnssec(512)));
        cases.push(case(&mixed_case(&fqdn(relative)), Rtype::A, dnssec(1232)));
    }
    cases
}

fn own_zone(label: &str, denial: Denial) {
    if find_tool("dnssec-signzone").is_none() && !env_flag("CI") {
        eprintln!("SKIP: dnssec-signzone not installed");
        return;
    }
    let tmp = TempDir::new(label);
    let Some((signed, _)) = sign_zone(tmp.path(), ORIGIN, ZONE, Signing::ecdsa(denial)) else {
        return;
    };
    let cases = own_zone_cases();
    run_differential(label, ORIGIN, &signed, &cases, 1000);
}

#[test]
fn nsec_zone_against_knot_and_nsd() {
    own_zone("diff-nsec", Denial::Nsec);
}

#[test]
fn nsec3_zone_against_knot_and_nsd() {
    own_zone("diff-nsec3", Denial::Nsec3);
}

#[test]
fn nsec3_opt_out_zone_against_knot_and_nsd() {
    own_zone("diff-nsec3-optout", Denial::Nsec3OptOut);
}

// ---------------------------------------------------------------------------
// Validation of ringdns's answers by a validator
// ---------------------------------------------------------------------------

/// `delv` (BIND's validating lookup tool) with the test zone's KSK as its
/// only trust anchor asks ringdns alone on loopback (no other server is
/// reachable through it) and must call every answer "fully validated":
/// positive, NODATA, NXDOMAIN, a wildcard answer and a wildcard NODATA, a
/// CNAME, a DNAME, and referrals below signed and unsigned delegations.
fn validated_by_delv(label: &str, denial: Denial) {
    let Some(delv) = common::require_tool("delv") else {
        return;
    };
    if find_tool("dnssec-signzone").is_none() && !env_flag("CI") {
        eprintln!("SKIP: dnssec-signzone not installed");
        return;
    }
    let tmp = TempDir::new(label);
    let Some((signed, dnskey)) = sign_zone(tmp.path(), ORIGIN, ZONE, Signing::ecdsa(denial)) else {
        return;
    };
    // "sig.test. IN DNSKEY 257 3 13 KEY…" → a static trust anchor.
    let fields: Vec<&str> = dnskey.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|field| *field == "DNSKEY")
        .expect("DNSKEY in the key line");
    let anchor = format!(
        "trust-anchors {{ \"{ORIGIN}\" static-key {} {} {} \"{}\"; }};\n",
        fields[at + 1],
        fields[at + 2],
        fields[at + 3],
        fields[at + 4..].concat()
    );
    let anchor_file = tmp.write("anchor.conf", anchor);
    let server = start_ringdns_zone(ORIGIN, &signed, &subdir(&tmp, "ringdns"));
    let port = server.addr.port().to_string();
    let mut failures = Vec::new();
    for (name, rtype, expected) in [
        ("www", "A", "; fully validated"),
        ("www", "MX", "; negative response, fully validated"),
        ("b.c", "A", "; negative response, fully validated"),
        ("nothere", "A", "; negative response, fully validated"),
        ("x.nothere", "TXT", "; negative response, fully validated"),
        // Under opt-out the NSEC3 covering the next closer name may hide
        // an unsigned delegation, so BIND calls a wildcard answer insecure
        // (RFC 5155 §9.2); Knot and NSD send the same proof.
        (
            "a.b.wild",
            "TXT",
            match denial {
                Denial::Nsec3OptOut => "; unsigned answer",
                _ => "; fully validated",
            },
        ),
        ("foo.wild", "MX", "; negative response, fully validated"),
        ("alias", "A", "; fully validated"),
        ("host.red", "A", "; fully validated"),
        ("sec", "DS", "; fully validated"),
        ("sub", "DS", "; negative response, fully validated"),
        ("@", "DNSKEY", "; fully validated"),
    ] {
        let output = Command::new(&delv)
            .args(["@127.0.0.1", "-p", &port, "-a"])
            .arg(&anchor_file)
            .arg(format!("+root={ORIGIN}"))
            .args([&fqdn(name), rtype])
            .output()
            .expect("run delv");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        println!("delv {} {rtype}:\n{text}", fqdn(name));
        if !text.lines().any(|line| line == expected) {
            failures.push(format!("{} {rtype}: expected {expected:?}", fqdn(name)));
        }
    }
    assert!(
        failures.is_empty(),
        "delv did not validate:\n{}",
        failures.join("\n")
    );
}

#[test]
fn nsec_answers_validate_with_delv() {
    validated_by_delv("delv-nsec", Denial::Nsec);
}

#[test]
fn nsec3_answers_validate_with_delv() {
    validated_by_delv("delv-nsec3", Denial::Nsec3);
}

#[test]
fn nsec3_opt_out_answers_validate_with_delv() {
    validated_by_delv("delv-nsec3-optout", Denial::Nsec3OptOut);
}
