//! `ringdns check-zone --dnssec` with the real binary.
//!
//! * `root_zone_…`: the real IANA root zone of 2020-10-19
//!   (`../shared/data/`, skipped when absent) verifies clean at
//!   2020-10-20 and fails now, its expired signatures summarised.
//! * `…_verifies_clean`: our own zone (wildcards, empty non-terminals,
//!   signed and unsigned delegations, DNAME) signed in the test with BIND's
//!   `dnssec-keygen` and `dnssec-signzone` with each algorithm, with NSEC,
//!   NSEC3 and NSEC3 opt-out.
//! * `tampered_…`: copies of a signed zone with one thing broken (a changed
//!   A record, a removed NSEC, NSEC3 or RRSIG, a validity window that does
//!   not hold the time): each is reported at its file:line and the command
//!   exits 1.
//!
//! Without BIND's tools the signing tests print a skip notice (CI: a
//! failure, see `common::require_tool`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::TempDir;
use common::signing::{Denial, Signing, sign_zone};

const ROOT_ZONE_FILE: &str = "../shared/data/root.zone.2020101902.signed";
const ORIGIN: &str = "check.test.";

const ZONE: &str = r#"$ORIGIN check.test.
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
a.b.c    TXT   "deep"
*.wild   A     192.0.2.100
*.wild   TXT   "wild"
explicit.wild A 192.0.2.101
sub      NS    ns.sub
ns.sub   A     192.0.2.53
sec      NS    ns.sec
sec      DS    12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE49FD46E6C4B45C55D4AC69CB
ns.sec   A     192.0.2.54
ext      NS    ns.example.net.
x.y.ext2 NS    ns.example.net.
red      DNAME blue
blue     A     192.0.2.9
"#;

/// Signs `ZONE` in `dir` with a fresh KSK and ZSK of `algorithm`, valid
/// from `inception` to `expiration`, one record per line (`-O full`).
/// Returns the signed file, or `None` (after a skip notice) without BIND's
/// tools.
fn sign(
    dir: &Path,
    algorithm: &str,
    denial: Denial,
    inception: &str,
    expiration: &str,
) -> Option<PathBuf> {
    let signing = Signing {
        algorithm,
        denial,
        inception,
        expiration,
        one_record_per_line: true,
    };
    sign_zone(dir, ORIGIN, ZONE, signing).map(|(signed, _)| signed)
}

/// What `ringdns check-zone ARGS` did.
struct Checked {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn check_zone(args: &[&str], origin: &str, file: &Path) -> Checked {
    let output = Command::new(env!("CARGO_BIN_EXE_ringdns"))
        .arg("check-zone")
        .args(args)
        .arg(origin)
        .arg(file)
        .output()
        .expect("run ringdns check-zone");
    Checked {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Checked {
    fn assert_ok(&self, what: &str) {
        assert_eq!(
            self.code,
            Some(0),
            "{what}: expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        assert!(self.stdout.contains(": OK\n"), "{what}: {}", self.stdout);
        assert!(
            self.stderr.is_empty(),
            "{what}: no errors or warnings expected:\n{}",
            self.stderr
        );
    }

    /// Exit 1 with an error line that starts `file:line: ` and contains
    /// `message`.
    fn assert_problem(&self, file: &Path, line: usize, message: &str) {
        let prefix = format!("ringdns: error: {}:{line}: DNSSEC: ", file.display());
        assert!(
            self.stderr
                .lines()
                .any(|error| error.starts_with(&prefix) && error.contains(message)),
            "expected '{prefix}…{message}…' in\n{}",
            self.stderr
        );
        assert_eq!(self.code, Some(1), "exit status; stderr:\n{}", self.stderr);
        assert!(self.stdout.contains(": FAILED\n"), "{}", self.stdout);
    }
}

/// The fields of a `-O full` record line: owner, TTL, class, type, RDATA….
fn fields(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// The 1-based number of the first line of `text` matching `wanted`.
fn line_of(text: &str, wanted: impl Fn(&[&str]) -> bool) -> usize {
    text.lines()
        .position(|line| wanted(&fields(line)))
        .map(|index| index + 1)
        .expect("a line of the signed zone matching the test's pattern")
}

/// Writes a copy of `signed` as `name` in the same folder with `edit`
/// applied to its text.
fn tampered(signed: &Path, name: &str, edit: impl Fn(&str) -> String) -> (PathBuf, String) {
    let text = fs::read_to_string(signed).expect("read signed zone");
    let changed = edit(&text);
    assert_ne!(changed, text, "{name}: the edit changed nothing");
    let path = signed.with_file_name(name);
    fs::write(&path, &changed).expect("write tampered zone");
    (path, changed)
}

/// `text` without the lines matching `drop`.
fn without_lines(text: &str, drop: impl Fn(&[&str]) -> bool) -> String {
    text.lines()
        .filter(|line| !drop(&fields(line)))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn is_record(fields: &[&str], owner: &str, rtype: &str) -> bool {
    fields.first() == Some(&owner) && fields.get(3) == Some(&rtype)
}

fn is_rrsig_over(fields: &[&str], owner: &str, covered: &str) -> bool {
    is_record(fields, owner, "RRSIG") && fields.get(4) == Some(&covered)
}

#[test]
fn root_zone_verifies_at_2020_10_20_and_is_expired_now() {
    let zone = Path::new(ROOT_ZONE_FILE);
    if !zone.exists() {
        eprintln!("SKIP: {ROOT_ZONE_FILE} not found (see ../shared/data/README.md)");
        return;
    }
    let started = Instant::now();
    let checked = check_zone(&["--dnssec", "--time", "20201020000000"], ".", zone);
    let elapsed = started.elapsed();
    checked.assert_ok("root zone at 20201020000000");
    assert!(
        checked.stdout.contains(
            ".: DNSSEC: 2,884 signatures verified, NSEC chain of 1,509 names complete: OK"
        ),
        "{}",
        checked.stdout
    );
    println!(
        "root zone: {} in {:.3} s (check-zone --dnssec, load included)",
        checked.stdout.lines().last().unwrap_or_default(),
        elapsed.as_secs_f64()
    );

    // Now (after 2020-11-01) every signature has expired: ten are named,
    // the rest counted on one line.
    let checked = check_zone(&["--dnssec"], ".", zone);
    assert_eq!(checked.code, Some(1), "{}", checked.stderr);
    let errors: Vec<&str> = checked.stderr.lines().collect();
    let expired: Vec<&&str> = errors
        .iter()
        .filter(|error| error.contains(") expired at 2020"))
        .collect();
    assert_eq!(expired.len(), 10, "{}", checked.stderr);
    assert!(
        expired
            .iter()
            .all(|error| error.starts_with(&format!("ringdns: error: {ROOT_ZONE_FILE}:"))),
        "{}",
        checked.stderr
    );
    assert!(
        checked
            .stderr
            .contains("ringdns: error: .: DNSSEC: 2,874 more expired signatures (2,884 in all)"),
        "{}",
        checked.stderr
    );
    assert!(
        errors.len() <= 12,
        "one summary per kind:\n{}",
        checked.stderr
    );
    assert!(
        checked
            .stdout
            .contains(".: DNSSEC: 0 of 2,884 signatures valid"),
        "{}",
        checked.stdout
    );
}

/// Signs the zone with `algorithm` and `denial` and expects a clean check
/// with the right chain.
fn verifies_clean(label: &str, algorithm: &str, denial: Denial) {
    let tmp = TempDir::new(label);
    let Some(signed) = sign(
        tmp.path(),
        algorithm,
        denial,
        "20240101000000",
        "20340101000000",
    ) else {
        return;
    };
    let checked = check_zone(&["--dnssec"], ORIGIN, &signed);
    checked.assert_ok(&format!("{algorithm} {denial:?}"));
    let chain = match denial {
        Denial::Nsec => "NSEC chain of 15 names complete: OK",
        Denial::Nsec3 => "NSEC3 chain of 20 hashes complete: OK",
        Denial::Nsec3OptOut => "NSEC3 chain of 15 hashes complete: OK",
    };
    assert!(
        checked.stdout.contains(chain),
        "{algorithm} {denial:?}: {}",
        checked.stdout
    );
}

#[test]
fn nsec_zone_of_every_algorithm_verifies_clean() {
    for algorithm in [
        "RSASHA256",
        "RSASHA512",
        "ECDSAP256SHA256",
        "ECDSAP384SHA384",
        "ED25519",
    ] {
        verifies_clean(&format!("check-nsec-{algorithm}"), algorithm, Denial::Nsec);
    }
}

#[test]
fn nsec3_zone_verifies_clean() {
    verifies_clean("check-nsec3", "ECDSAP384SHA384", Denial::Nsec3);
}

#[test]
fn nsec3_opt_out_zone_verifies_clean() {
    verifies_clean("check-nsec3-optout", "ED25519", Denial::Nsec3OptOut);
}

const WWW: &str = "www.check.test.";

#[test]
fn tampered_nsec_zone_problems_name_their_lines() {
    let tmp = TempDir::new("check-tampered-nsec");
    let Some(signed) = sign(
        tmp.path(),
        "ECDSAP256SHA256",
        Denial::Nsec,
        "20240101000000",
        "20340101000000",
    ) else {
        return;
    };
    check_zone(&["--dnssec"], ORIGIN, &signed).assert_ok("untouched");

    // A changed A record: its signature no longer verifies.
    let (file, text) = tampered(&signed, "changed-a", |text| {
        text.replace("192.0.2.80", "192.0.2.81")
    });
    let line = line_of(&text, |f| is_record(f, WWW, "A"));
    check_zone(&["--dnssec"], ORIGIN, &file).assert_problem(
        &file,
        line,
        "BADSIG: the RRSIG A at www.check.test.",
    );

    // A removed NSEC: the chain has a hole at www; its RRSIG covers nothing.
    let (file, text) = tampered(&signed, "removed-nsec", |text| {
        without_lines(text, |f| is_record(f, WWW, "NSEC"))
    });
    let checked = check_zone(&["--dnssec"], ORIGIN, &file);
    let first_www = line_of(&text, |f| f.first() == Some(&WWW));
    checked.assert_problem(&file, first_www, "no NSEC at www.check.test.");
    let rrsig = line_of(&text, |f| is_rrsig_over(f, WWW, "NSEC"));
    checked.assert_problem(
        &file,
        rrsig,
        "RRSIG NSEC at www.check.test. covers no RRset",
    );
    assert!(
        checked.stdout.contains("NSEC chain of 15 names broken"),
        "{}",
        checked.stdout
    );
    // Loading warns too (the cheap check), without failing.
    let loaded = check_zone(&[], ORIGIN, &file);
    assert_eq!(loaded.code, Some(0), "{}", loaded.stderr);
    assert!(
        loaded.stderr.contains("NSEC chain not closed"),
        "{}",
        loaded.stderr
    );

    // A removed RRSIG: the A RRset is unsigned.
    let (file, text) = tampered(&signed, "removed-rrsig", |text| {
        without_lines(text, |f| is_rrsig_over(f, WWW, "A"))
    });
    let line = line_of(&text, |f| is_record(f, WWW, "A"));
    check_zone(&["--dnssec"], ORIGIN, &file).assert_problem(
        &file,
        line,
        "the A RRset at www.check.test. has no RRSIG",
    );
}

#[test]
fn tampered_nsec3_zone_problems_name_their_lines() {
    let tmp = TempDir::new("check-tampered-nsec3");
    let Some(signed) = sign(
        tmp.path(),
        "RSASHA256",
        Denial::Nsec3,
        "20240101000000",
        "20340101000000",
    ) else {
        return;
    };
    check_zone(&["--dnssec"], ORIGIN, &signed).assert_ok("untouched");
    // The NSEC3 of ns2: the only one whose bitmap is A AAAA RRSIG.
    let text = fs::read_to_string(&signed).expect("read signed zone");
    let nsec3_line = line_of(&text, |f| {
        f.get(3) == Some(&"NSEC3") && f.get(9..) == Some(&["A", "AAAA", "RRSIG"][..])
    });
    let nsec3_owner = fields(text.lines().nth(nsec3_line - 1).unwrap_or_default())[0].to_string();
    let (file, text) = tampered(&signed, "removed-nsec3", |text| {
        without_lines(text, |f| is_record(f, &nsec3_owner, "NSEC3"))
    });
    let checked = check_zone(&["--dnssec"], ORIGIN, &file);
    let ns2 = line_of(&text, |f| f.first() == Some(&"ns2.check.test."));
    checked.assert_problem(&file, ns2, "no NSEC3 for the name ns2.check.test.");
    assert!(
        checked.stdout.contains("NSEC3 chain of 19 hashes broken"),
        "{}",
        checked.stdout
    );
    // Loading warns that the chain does not close, without failing.
    let loaded = check_zone(&[], ORIGIN, &file);
    assert_eq!(loaded.code, Some(0), "{}", loaded.stderr);
    assert!(
        loaded.stderr.contains("NSEC3 chain not closed"),
        "{}",
        loaded.stderr
    );
}

#[test]
fn signatures_outside_their_window_name_their_lines() {
    let tmp = TempDir::new("check-window");
    let Some(signed) = sign(
        tmp.path(),
        "ECDSAP256SHA256",
        Denial::Nsec,
        "20200101000000",
        "20200201000000",
    ) else {
        return;
    };
    let text = fs::read_to_string(&signed).expect("read signed zone");
    // The first signature in the file (the listing names ten per kind).
    let line = line_of(&text, |f| is_rrsig_over(f, ORIGIN, "SOA"));
    // Now: long expired.
    check_zone(&["--dnssec"], ORIGIN, &signed).assert_problem(
        &signed,
        line,
        "expired at 20200201000000",
    );
    // Before the inception.
    check_zone(&["--dnssec", "--time", "20191201000000"], ORIGIN, &signed).assert_problem(
        &signed,
        line,
        "is not valid before 20200101000000",
    );
    // Inside the window.
    check_zone(&["--dnssec", "--time=20200115000000"], ORIGIN, &signed).assert_ok("in window");
}

#[test]
fn unsigned_zone_fails_and_bad_time_is_refused() {
    let tmp = TempDir::new("check-unsigned");
    let zone = tmp.path().join("zone");
    fs::write(&zone, ZONE).expect("write zone");
    let checked = check_zone(&["--dnssec"], ORIGIN, &zone);
    assert_eq!(checked.code, Some(1), "{}", checked.stderr);
    assert!(
        checked.stderr.contains("the zone is not signed"),
        "{}",
        checked.stderr
    );
    // Without --dnssec the same zone is fine.
    assert_eq!(check_zone(&[], ORIGIN, &zone).code, Some(0));
    let checked = check_zone(&["--dnssec", "--time", "2020-10-20"], ORIGIN, &zone);
    assert_eq!(checked.code, Some(2), "{}", checked.stderr);
    assert!(
        checked.stderr.contains("YYYYMMDDHHMMSS"),
        "{}",
        checked.stderr
    );
}
