//! Differential test on real data: ringdns against Knot and NSD, all three
//! serving the IANA root zone.
//!
//! The zone is `../shared/data/root.zone.2026082201.rrsig-stripped` next to
//! the crate (22,094 records, delegation-only; see `../shared/data/README.md`:
//! all but two RRSIGs were removed, so the NSEC bitmaps claim signatures that
//! are missing and Knot serves it only with semantic checks off, which
//! [`common::start_knot`] always sets). When the file is absent the test
//! prints a skip notice and passes.
//!
//! The query list (see [`build_cases`]) is generated from the zone text
//! itself, deterministically: a sample of the TLD delegations, names below
//! them, glue names, the apex, nonexistent TLDs, mixed-case variants, each
//! with and without EDNS. Replies are compared exactly as in
//! `tests/differential.rs` (see `tests/common/compare.rs`): on every field
//! where Knot and NSD agree, ringdns must agree too.
//!
//! Environment: `RINGDNS_DIFF_ONLY_PEERS`, `RINGDNS_DIFF_VERBOSE`,
//! `RINGDNS_KEEP_TMP` and `CI` as in `tests/differential.rs`. Run with
//! `-- --nocapture` to see the summary when the test passes.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::compare::{self, Case, case, mixed_case, subdir};
use common::{
    QueryOpts, ServerProcess, TempDir, corefile_for, env_flag, free_port, spawn_ringdns,
    start_knot, start_nsd,
};
use domain::base::iana::Rtype;

const ORIGIN: &str = ".";
const ZONE_FILE: &str = "../shared/data/root.zone.2026082201.rrsig-stripped";

/// Every how many-th TLD delegation (in zone order) is queried.
const TLD_STEP: usize = 10;
/// Every how many-th glue owner (in zone order) is queried.
const GLUE_STEP: usize = 60;
/// How many IDN (`xn--`) TLDs are added to the sample, spread evenly.
const IDN_TLDS: usize = 4;
/// How many random nonexistent TLD labels are queried.
const RANDOM_TLDS: usize = 12;

fn zone_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(ZONE_FILE)
}

/// The names of the zone that the query list is built from, in zone order.
#[derive(Default, Debug)]
struct ZoneNames {
    /// Owners of NS records other than the apex: the TLD delegations.
    delegations: Vec<String>,
    /// Delegations with a DS RRset.
    with_ds: HashSet<String>,
    /// Owners of A or AAAA records (all glue, the zone being delegation-only).
    glue: Vec<String>,
    /// Every owner name (lowercase) in the zone.
    owners: HashSet<String>,
}

/// Reads the names out of zone text in the form the IANA publishes: one
/// record per line, `owner TTL class type rdata`, absolute owners, no
/// directives, no parentheses. Panics on lines of any other shape, so a
/// different file format cannot silently yield an empty query list.
fn zone_names(text: &str) -> ZoneNames {
    let mut z = ZoneNames::default();
    let mut seen_deleg = HashSet::new();
    let mut seen_glue = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split(';').next().unwrap_or("").trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(
            fields.len() >= 5
                && fields[0].ends_with('.')
                && fields[1].parse::<u32>().is_ok()
                && fields[2] == "IN"
                && !line.contains('('),
            "{ZONE_FILE}:{}: unexpected line shape: {line:?}",
            i + 1
        );
        let owner = fields[0].to_ascii_lowercase();
        match fields[3] {
            "NS" if owner != "." && seen_deleg.insert(owner.clone()) => {
                z.delegations.push(owner.clone())
            }
            "DS" => {
                z.with_ds.insert(owner.clone());
            }
            "A" | "AAAA" if seen_glue.insert(owner.clone()) => z.glue.push(owner.clone()),
            _ => {}
        }
        z.owners.insert(owner);
    }
    z
}

/// The TLDs queried: every [`TLD_STEP`]-th delegation, `com.`, `org.`,
/// `arpa.`, and [`IDN_TLDS`] IDN ones spread over the `xn--` TLDs; zone
/// order, no duplicates.
fn tld_sample(z: &ZoneNames) -> Vec<String> {
    let mut pick: BTreeSet<usize> = (0..z.delegations.len()).step_by(TLD_STEP).collect();
    for must in ["com.", "org.", "arpa."] {
        let at = z
            .delegations
            .iter()
            .position(|d| d == must)
            .unwrap_or_else(|| panic!("{must} is not delegated in {ZONE_FILE}"));
        pick.insert(at);
    }
    let idn: Vec<usize> = (0..z.delegations.len())
        .filter(|&i| z.delegations[i].starts_with("xn--"))
        .collect();
    assert!(idn.len() >= IDN_TLDS, "only {} xn-- TLDs", idn.len());
    for k in 0..IDN_TLDS {
        // First, last and evenly in between.
        pick.insert(idn[k * (idn.len() - 1) / (IDN_TLDS - 1)]);
    }
    pick.into_iter().map(|i| z.delegations[i].clone()).collect()
}

/// The glue owners queried: every [`GLUE_STEP`]-th, plus the root and the
/// `com.` name servers' first ones, which real resolvers ask for most.
fn glue_sample(z: &ZoneNames) -> Vec<String> {
    let mut out: Vec<String> = z.glue.iter().step_by(GLUE_STEP).cloned().collect();
    for must in ["a.root-servers.net.", "a.gtld-servers.net."] {
        if z.owners.contains(must) && !out.iter().any(|g| g == must) {
            out.push(must.to_string());
        }
    }
    out
}

/// Deterministic pseudo-random labels (a fixed-seed xorshift), 5 to 14
/// characters of `a-z0-9`, none of which is a TLD in the zone.
fn random_labels(z: &ZoneNames, count: usize) -> Vec<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state: u64 = 0x2026_0822_0100_5eed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    while out.len() < count {
        let len = 5 + (next() % 10) as usize;
        let mut label: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize] as char)
            .collect();
        label.push('.');
        if !z.owners.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// The whole query list, from the zone text. Every query has DO clear;
/// most are sent both with EDNS (1232) and without.
fn build_cases(z: &ZoneNames) -> Vec<Case> {
    let edns = QueryOpts::with_edns(1232);
    let plain = QueryOpts::default();
    let mut cases = Vec::new();
    let both = |cases: &mut Vec<Case>, name: &str, rtype: Rtype| {
        cases.push(case(name, rtype, edns.clone()));
        cases.push(case(name, rtype, plain.clone()));
    };
    let tlds = tld_sample(z);
    let glue = glue_sample(z);

    // The apex: every type it has, ANY, and one it does not have.
    for rtype in [
        Rtype::SOA,
        Rtype::NS,
        Rtype::DNSKEY,
        Rtype::ZONEMD,
        Rtype::NSEC,
        Rtype::ANY,
        Rtype::TXT,
    ] {
        both(&mut cases, ORIGIN, rtype);
    }

    // The TLDs: the delegation's own NS, DS (answered by the root, or
    // NODATA where there is none), and types only the child zone has
    // (referrals), TXT being in neither.
    for tld in &tlds {
        for rtype in [Rtype::NS, Rtype::DS, Rtype::A, Rtype::SOA, Rtype::TXT] {
            both(&mut cases, tld, rtype);
        }
    }

    // Below the TLDs: referrals to the TLD.
    both(&mut cases, "www.example.com.", Rtype::A);
    both(&mut cases, "www.example.com.", Rtype::DS);
    for tld in &tlds {
        both(&mut cases, &format!("a.b.{tld}"), Rtype::A);
    }

    // Glue names: the A/AAAA records live in the root zone but belong to
    // the child zone, so they are referrals too, whatever the type.
    for name in &glue {
        for rtype in [Rtype::A, Rtype::AAAA, Rtype::NS] {
            both(&mut cases, name, rtype);
        }
    }

    // Nonexistent TLDs: NXDOMAIN from the root.
    let mut missing = vec![
        "nonexistent-tld-xyz.".to_string(),
        "www.nonexistent-tld-xyz.".to_string(),
    ];
    missing.extend(random_labels(z, RANDOM_TLDS));
    for name in &missing {
        both(&mut cases, name, Rtype::A);
    }
    both(&mut cases, "nonexistent-tld-xyz.", Rtype::NS);
    both(&mut cases, "nonexistent-tld-xyz.", Rtype::DS);

    // 0x20 mixed case: the question is echoed case-exact, the records are
    // the same.
    for tld in &tlds {
        cases.push(case(&mixed_case(tld), Rtype::NS, edns.clone()));
        cases.push(case(&mixed_case(tld), Rtype::DS, edns.clone()));
    }
    for name in glue.iter().chain(&missing) {
        cases.push(case(&mixed_case(name), Rtype::A, edns.clone()));
    }
    cases.push(case("WwW.ExAmPlE.CoM.", Rtype::A, plain.clone()));
    cases
}

/// Spawns ringdns on the root zone and waits until it answers the apex SOA
/// authoritatively (NOERROR with AA): a zone this size takes a moment to
/// load, and any earlier reply proves nothing.
fn start_ringdns_root(zone: &Path, dir: &Path) -> ServerProcess {
    let zone_copy = dir.join("root.zone");
    fs::copy(zone, &zone_copy).expect("copy zone for ringdns");
    let port = free_port();
    let corefile = corefile_for(ORIGIN, port, &zone_copy);
    let addr = ([127, 0, 0, 1], port).into();
    let mut server = spawn_ringdns(&corefile, dir, addr);
    server.wait_ready(ORIGIN, true);
    server
}

/// Joins a server-starting thread, passing its panic on.
fn join<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

#[test]
fn differential_root_zone_against_knot_and_nsd() {
    let zone = zone_path();
    if !zone.is_file() {
        eprintln!(
            "SKIP: {} not found: the root-zone differential test needs it",
            zone.display()
        );
        return;
    }
    let started = Instant::now();
    // Declared before the servers so it is dropped after them.
    let tmp = TempDir::new("diff-root");
    let verbose = env_flag("RINGDNS_DIFF_VERBOSE");
    let text = fs::read_to_string(&zone).expect("read the root zone");
    let names = zone_names(&text);
    let cases = build_cases(&names);

    // The three servers load the zone concurrently (each wait checks for
    // an authoritative SOA answer at the apex).
    let only_peers = env_flag("RINGDNS_DIFF_ONLY_PEERS");
    let (knot, nsd, ringdns) = std::thread::scope(|s| {
        let knot = s.spawn(|| start_knot(ORIGIN, &zone, free_port(), &subdir(&tmp, "knot")));
        let nsd = s.spawn(|| start_nsd(ORIGIN, &zone, free_port(), &subdir(&tmp, "nsd")));
        let ringdns =
            (!only_peers).then(|| s.spawn(|| start_ringdns_root(&zone, &subdir(&tmp, "ringdns"))));
        (join(knot), join(nsd), ringdns.map(join))
    });
    let (Some(knot), Some(nsd)) = (knot, nsd) else {
        return; // knotd or nsd missing: skip notice printed
    };
    if only_peers {
        println!("RINGDNS_DIFF_ONLY_PEERS set: comparing Knot and NSD only");
    }
    let loaded = started.elapsed();

    let cmp = compare::run(&knot, &nsd, ringdns.as_ref(), &cases, verbose);
    cmp.report();
    println!(
        "zone: {} delegations, {} glue owners; queried {} TLDs, {} glue names",
        names.delegations.len(),
        names.glue.len(),
        tld_sample(&names).len(),
        glue_sample(&names).len()
    );
    println!(
        "time: {:.1?} to load, {:.1?} in all",
        loaded,
        started.elapsed()
    );

    cmp.assert_sound_and_no_mismatches(1000);
}

/// The zone reader and the sampling, on a small excerpt and (when present)
/// on the real file.
#[test]
fn query_list() {
    let excerpt = "\
.\t86400\tIN\tSOA\ta.root-servers.net. nstld.verisign-grs.com. 1 2 3 4 5
.\t518400\tIN\tNS\ta.root-servers.net.
Com.\t172800\tIN\tNS\ta.gtld-servers.net.
com.\t172800\tIN\tNS\tb.gtld-servers.net.
com.\t86400\tIN\tDS\t19718 13 2 8ACBB0CD28F41250A80A491389424D341522D946B0DA0C0291F2D3D7 71D7805A
a.gtld-servers.net.\t172800\tIN\tA\t192.5.6.30
a.gtld-servers.net.\t172800\tIN\tAAAA\t2001:503:a83e::2:30
net.\t172800\tIN\tNS\ta.gtld-servers.net.
";
    let z = zone_names(excerpt);
    assert_eq!(z.delegations, ["com.", "net."]);
    assert_eq!(z.glue, ["a.gtld-servers.net."]);
    assert!(z.with_ds.contains("com.") && !z.with_ds.contains("net."));
    assert_eq!(random_labels(&z, 5), random_labels(&z, 5));

    let path = zone_path();
    let Ok(text) = fs::read_to_string(&path) else {
        eprintln!("SKIP: {} not found", path.display());
        return;
    };
    let z = zone_names(&text);
    assert_eq!(z.delegations.len(), 1438);
    let tlds = tld_sample(&z);
    for must in ["com.", "org.", "arpa."] {
        assert!(tlds.iter().any(|t| t == must), "{must} not sampled");
    }
    assert!(tlds.iter().filter(|t| t.starts_with("xn--")).count() >= IDN_TLDS);
    assert!(tlds.iter().any(|t| z.with_ds.contains(t)));
    assert!(tlds.iter().any(|t| !z.with_ds.contains(t)));
    for g in glue_sample(&z) {
        assert!(z.glue.contains(&g), "{g} has no address records");
    }
    let cases = build_cases(&z);
    assert!(cases.len() >= 1000, "only {} queries", cases.len());
    for c in &cases {
        let msg = domain::base::Message::from_slice(&c.wire).expect("query parses");
        assert_eq!(msg.header_counts().qdcount(), 1, "{}", c.desc);
        assert!(
            !msg.opt().is_some_and(|o| o.dnssec_ok()),
            "{}: DO set",
            c.desc
        );
    }
}
