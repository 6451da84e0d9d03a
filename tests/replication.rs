//! Replication end to end, with real peers on loopback: ringdns as the
//! primary of Knot DNS and BIND secondaries (AXFR, then IXFR after an edit
//! of the zone file, triggered by NOTIFY; with TSIG; a wrong key refused; a
//! bad edit kept out), the IXFR journal across a restart, and ringdns as
//! the secondary of Knot and of ringdns.

mod common;

use std::ffi::OsStr;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::compare::subdir;
use common::{ServerProcess, TempDir, free_port, require_tool, wait_for};

const ZONE: &str = "example.com.";
const KEY_NAME: &str = "transfer-key.";
const KEY_SECRET: &str = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";
const WRONG_SECRET: &str = "d3Jvbmd3cm9uZ3dyb25nd3Jvbmd3cm9uZ3dyb25nMTI=";

fn zone_text(serial: u32, extra: &str) -> String {
    format!(
        "$ORIGIN example.com.\n$TTL 300\n\
         @ IN SOA ns1 hostmaster {serial} 3600 600 86400 300\n\
         @ IN NS ns1\n@ IN NS ns2\n\
         ns1 IN A 127.0.0.1\nns2 IN A 127.0.0.2\n\
         {extra}"
    )
}

const VERSION_1: &str = "www IN A 192.0.2.1\nold IN TXT \"to be deleted\"\nmail IN MX 10 www\n";
/// Against version 1: one record changed, one deleted, one added.
const VERSION_2: &str = "www IN A 192.0.2.2\nnew IN TXT \"added\"\nmail IN MX 10 www\n";
const VERSION_3: &str =
    "www IN A 192.0.2.3\nnew IN TXT \"added\"\nmail IN MX 10 www\nthird IN A 192.0.2.33\n";

/// Writes a zone file so its modification time surely changes.
fn write_zone(path: &Path, text: &str) {
    let before = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    std::fs::write(path, text).expect("write zone file");
    if before.is_some() && before == std::fs::metadata(path).and_then(|m| m.modified()).ok() {
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(path, text).expect("write zone file");
    }
}

/// `kdig +short` for NAME TYPE at `addr`, one line per record.
fn kdig_short(addr: SocketAddr, name: &str, rtype: &str) -> Vec<String> {
    common::kdig(addr, &["+short", name, rtype])
        .lines()
        .map(str::to_string)
        .collect()
}

fn soa_serial(addr: SocketAddr) -> Option<u32> {
    common::soa_serial(addr, ZONE)
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// A ringdns primary for example.com on `port`, transferring to
/// `secondaries` (each `ADDR:PORT`, with ` key NAME` when `key`).
fn primary_corefile(port: u16, zone_file: &Path, secondaries: &[u16], key: bool) -> String {
    let key_suffix = if key {
        format!(" key {KEY_NAME}")
    } else {
        String::new()
    };
    let to: String = secondaries
        .iter()
        .map(|port| format!("        to 127.0.0.1:{port}{key_suffix}\n"))
        .collect();
    format!(
        "example.com:{port} {{\n    bind 127.0.0.1\n    file {} {{\n        reload 1s\n    }}\n    transfer {{\n{to}    }}\n    tsig {{\n        secret {KEY_NAME} {KEY_SECRET}\n    }}\n}}\n",
        zone_file.display()
    )
}

/// Knot as a secondary of 127.0.0.1@`primary_port`, on `port`.
fn start_knot_secondary(
    dir: &Path,
    port: u16,
    primary_port: u16,
    secret: Option<&str>,
) -> Option<ServerProcess> {
    let knotd = require_tool("knotd")?;
    let (key_section, key_line) = match secret {
        Some(secret) => (
            format!(
                "key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {secret}\n\n"
            ),
            format!("    key: {KEY_NAME}\n"),
        ),
        None => (String::new(), String::new()),
    };
    let sections = format!(
        "{key_section}\
         remote:\n  - id: primary\n    address: 127.0.0.1@{primary_port}\n{key_line}\n\
         acl:\n  - id: notify_from_primary\n    address: 127.0.0.1\n    action: notify\n{key_line}\n\
         zone:\n  - domain: {ZONE}\n    master: primary\n    acl: notify_from_primary\n    storage: \"{storage}\"\n    zonefile-sync: -1\n    journal-content: changes\n",
        storage = common::knot_storage(dir).display(),
    );
    let mut knot = common::spawn_knot("knot", knotd, dir, port, &sections);
    knot.wait_ready(ZONE, false);
    Some(knot)
}

/// BIND's named as a secondary of 127.0.0.1 port `primary_port`, on `port`.
fn start_named_secondary(
    dir: &Path,
    port: u16,
    primary_port: u16,
    secret: Option<&str>,
) -> Option<ServerProcess> {
    let named = require_tool("named")?;
    let (key_section, key_clause) = match secret {
        Some(secret) => (
            format!("key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{secret}\"; }};\n"),
            format!(" key \"{KEY_NAME}\""),
        ),
        None => (String::new(), String::new()),
    };
    let conf = format!(
        "options {{\n    directory \"{dir}\";\n    pid-file none;\n    listen-on port {port} {{ 127.0.0.1; }};\n    listen-on-v6 {{ none; }};\n    recursion no;\n    notify no;\n    session-keyfile none;\n    managed-keys-directory \"{dir}\";\n}};\n\
         controls {{ }};\n\
         {key_section}\
         zone \"example.com\" {{\n    type secondary;\n    primaries port {primary_port} {{ 127.0.0.1{key_clause}; }};\n    file \"named-example.com.db\";\n    allow-notify {{ 127.0.0.1; }};\n}};\n",
        dir = dir.display(),
    );
    let conf_path = dir.join("named.conf");
    std::fs::write(&conf_path, conf).expect("write named.conf");
    let mut named = ServerProcess::spawn(
        "named",
        named,
        [OsStr::new("-g"), OsStr::new("-c"), conf_path.as_os_str()],
        dir,
        localhost(port),
    );
    named.wait_ready(ZONE, false);
    Some(named)
}

/// What every secondary must show after version 2 arrived.
fn assert_has_version_2(addr: SocketAddr, who: &str, output: &dyn Fn() -> String) {
    assert_eq!(
        kdig_short(addr, "www.example.com", "A"),
        ["192.0.2.2"],
        "{who}\n{}",
        output()
    );
    assert_eq!(
        kdig_short(addr, "new.example.com", "TXT"),
        ["\"added\""],
        "{who}"
    );
    assert!(
        kdig_short(addr, "old.example.com", "TXT").is_empty(),
        "{who}: deleted record gone"
    );
}

/// Knot and BIND follow a ringdns primary: AXFR first, then an edit of the
/// zone file reaches them by IXFR, triggered by NOTIFY, within 2 seconds.
#[test]
fn knot_and_bind_secondaries_follow_edits_by_ixfr_after_notify() {
    replicate_to_knot_and_bind(false);
}

/// The same with TSIG on every transfer and NOTIFY; a secondary with the
/// wrong secret is refused and keeps nothing.
#[test]
fn knot_and_bind_secondaries_with_tsig_and_a_wrong_key_refused() {
    replicate_to_knot_and_bind(true);
}

fn replicate_to_knot_and_bind(tsig: bool) {
    if require_tool("knotd").is_none() || require_tool("named").is_none() {
        return;
    }
    let dir = TempDir::new(if tsig { "repl-tsig" } else { "repl" });
    let (primary_port, knot_port, named_port) = (free_port(), free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(2024010101, VERSION_1));
    let primary_dir = subdir(&dir, "primary");
    let mut secondaries = vec![knot_port, named_port];
    let wrong_port = free_port();
    if tsig {
        secondaries.push(wrong_port);
    }
    let corefile = primary_corefile(primary_port, &zone_file, &secondaries, tsig);
    let primary = common::start_ringdns(&corefile, &primary_dir);
    let secret = tsig.then_some(KEY_SECRET);
    let knot_dir = subdir(&dir, "knot");
    let named_dir = subdir(&dir, "named");
    let knot = start_knot_secondary(&knot_dir, knot_port, primary_port, secret).unwrap();
    let named = start_named_secondary(&named_dir, named_port, primary_port, secret).unwrap();
    let wrong = if tsig {
        let wrong_dir = subdir(&dir, "knot-wrong");
        Some(
            start_knot_secondary(&wrong_dir, wrong_port, primary_port, Some(WRONG_SECRET)).unwrap(),
        )
    } else {
        None
    };
    let context = || {
        format!(
            "{}\n{}\n{}",
            primary.output(),
            knot.output(),
            named.output()
        )
    };

    for (addr, who) in [(knot.addr, "knot"), (named.addr, "named")] {
        assert!(
            wait_for(Duration::from_secs(10), || soa_serial(addr)
                == Some(2024010101)),
            "{who} did not get the zone by AXFR\n{}",
            context()
        );
    }

    // Edit: change www, delete old, add new; bump the serial.
    write_zone(&zone_file, &zone_text(2024010102, VERSION_2));
    let edited = Instant::now();
    for (addr, who) in [(knot.addr, "knot"), (named.addr, "named")] {
        assert!(
            wait_for(Duration::from_secs(5), || soa_serial(addr)
                == Some(2024010102)),
            "{who} did not get the edit\n{}",
            context()
        );
    }
    let took = edited.elapsed();
    eprintln!(
        "both secondaries had the edit {} ms after it",
        took.as_millis()
    );
    assert!(
        took <= Duration::from_secs(2),
        "the edit took {took:?} to reach the secondaries"
    );
    assert_has_version_2(knot.addr, "knot", &context);
    assert_has_version_2(named.addr, "named", &context);

    // They got it incrementally, because of NOTIFY.
    let log = primary.stderr();
    assert!(
        log.contains("NOTIFY example.com. serial 2024010102 to 127.0.0.1:"),
        "{log}"
    );
    let incremental = log
        .lines()
        .filter(|line| {
            line.contains("IXFR of example.com. to") && line.contains("sent incremental")
        })
        .count();
    assert!(incremental >= 2, "both secondaries used IXFR\n{log}");
    assert!(knot.stderr().contains("IXFR"), "{}", knot.output());

    // A bad edit (syntax error, newer serial) is kept out everywhere.
    write_zone(
        &zone_file,
        &format!(
            "{}broken IN A not-an-address\n",
            zone_text(2024010103, VERSION_3)
        ),
    );
    assert!(
        wait_for(Duration::from_secs(5), || primary
            .stderr()
            .contains("reload refused")),
        "{}",
        primary.output()
    );
    std::thread::sleep(Duration::from_millis(500));
    for addr in [primary.addr, knot.addr, named.addr] {
        assert_eq!(
            soa_serial(addr),
            Some(2024010102),
            "still the old version at {addr}"
        );
    }

    if let Some(wrong) = &wrong {
        assert_eq!(soa_serial(wrong.addr), None, "{}", wrong.output());
        let log = primary.stderr();
        assert!(
            log.contains("TSIG BADSIG"),
            "the wrong key is refused and logged\n{log}"
        );
    }
}

/// The journal survives a restart: a client two versions behind gets both
/// differences as IXFR from the restarted primary.
#[test]
fn the_journal_survives_a_restart() {
    let Some(kdig) = require_tool("kdig") else {
        return;
    };
    let dir = TempDir::new("journal-restart");
    let port = free_port();
    let zone_file = dir.write("db.example.com", zone_text(10, VERSION_1));
    let corefile = primary_corefile(port, &zone_file, &[free_port()], false);
    let mut primary = common::start_ringdns(&corefile, dir.path());
    write_zone(&zone_file, &zone_text(11, VERSION_2));
    assert!(wait_for(Duration::from_secs(5), || soa_serial(
        primary.addr
    ) == Some(11)));
    write_zone(&zone_file, &zone_text(12, VERSION_3));
    assert!(wait_for(Duration::from_secs(5), || soa_serial(
        primary.addr
    ) == Some(12)));
    primary.stop();
    let primary = common::start_ringdns(&corefile, dir.path());
    let output = Command::new(kdig)
        .args([
            format!("@{}", primary.addr.ip()),
            "-p".into(),
            primary.addr.port().to_string(),
        ])
        .args(["+retry=0", "+timeout=2", ZONE, "IXFR=10"])
        .output()
        .expect("kdig");
    let text = String::from_utf8_lossy(&output.stdout);
    let soa_serials: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("\tSOA\t"))
        .filter_map(|line| line.split_whitespace().nth(6))
        .collect();
    // New SOA, (old 10, new 11), (old 11, new 12), new SOA.
    assert_eq!(
        soa_serials,
        ["12", "10", "11", "11", "12", "12"],
        "{text}\n{}",
        primary.output()
    );
    assert!(text.contains("192.0.2.33"), "{text}");
}

/// ringdns as a secondary: of Knot (with TSIG), then feeding a Knot
/// secondary of its own; NOTIFY from others is refused.
#[test]
fn ringdns_secondary_of_knot_feeds_a_knot_secondary() {
    if require_tool("knotd").is_none() {
        return;
    }
    let dir = TempDir::new("ringdns-secondary");
    let (primary_port, secondary_port, tertiary_port) = (free_port(), free_port(), free_port());
    let primary_dir = subdir(&dir, "knot-primary");
    let zone_file = primary_dir.join("example.com.zone");
    std::fs::write(&zone_file, zone_text(2024010101, VERSION_1)).unwrap();
    let knot_primary = start_knot_primary(&primary_dir, primary_port, &zone_file, secondary_port);
    let secondary_dir = subdir(&dir, "secondary");
    let corefile = format!(
        "example.com:{secondary_port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary_port} key {KEY_NAME}\n    }}\n    transfer {{\n        to 127.0.0.1:{tertiary_port}\n    }}\n    tsig {{\n        secret {KEY_NAME} {KEY_SECRET}\n    }}\n    storage {}\n}}\n",
        secondary_dir.join("data").display()
    );
    let secondary = common::spawn_ringdns(&corefile, &secondary_dir, localhost(secondary_port));
    let context = || format!("{}\n{}", secondary.output(), knot_primary.output());
    assert!(
        wait_for(Duration::from_secs(10), || soa_serial(secondary.addr)
            == Some(2024010101)),
        "{}",
        context()
    );
    let tertiary_dir = subdir(&dir, "tertiary");
    let tertiary =
        start_knot_secondary(&tertiary_dir, tertiary_port, secondary_port, None).unwrap();
    assert!(wait_for(Duration::from_secs(10), || soa_serial(
        tertiary.addr
    ) == Some(2024010101)));

    // Edit on the Knot primary; it NOTIFYs ringdns, which pulls IXFR and
    // NOTIFYs the Knot at the end of the chain.
    std::fs::write(&zone_file, zone_text(2024010102, VERSION_2)).unwrap();
    knotc_reload(&primary_dir);
    let edited = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || soa_serial(tertiary.addr)
            == Some(2024010102)),
        "the chain did not converge\n{}\n{}",
        context(),
        tertiary.output()
    );
    eprintln!(
        "chain converged {} ms after the reload",
        edited.elapsed().as_millis()
    );
    assert_has_version_2(secondary.addr, "ringdns secondary", &context);
    assert_has_version_2(tertiary.addr, "knot tertiary", &|| tertiary.output());
    let log = secondary.stderr();
    assert!(
        log.contains("NOTIFY for example.com. from 127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("(IXFR from 127.0.0.1"), "{log}");
}

fn start_knot_primary(dir: &Path, port: u16, zone_file: &Path, notify_port: u16) -> ServerProcess {
    let knotd = require_tool("knotd").expect("knotd");
    let sections = format!(
        "key:\n  - id: {KEY_NAME}\n    algorithm: hmac-sha256\n    secret: {KEY_SECRET}\n\n\
         remote:\n  - id: secondary\n    address: 127.0.0.1@{notify_port}\n    key: {KEY_NAME}\n\n\
         acl:\n  - id: transfer_to_secondary\n    address: 127.0.0.1\n    action: transfer\n    key: {KEY_NAME}\n\n\
         zone:\n  - domain: {ZONE}\n    file: \"{zone_file}\"\n    notify: secondary\n    acl: transfer_to_secondary\n    storage: \"{storage}\"\n    zonefile-sync: -1\n    zonefile-load: difference\n    journal-content: changes\n    semantic-checks: off\n",
        storage = common::knot_storage(dir).display(),
        zone_file = zone_file.display(),
    );
    let mut knot = common::spawn_knot("knot-primary", knotd, dir, port, &sections);
    knot.wait_ready(ZONE, true);
    knot
}

fn knotc_reload(dir: &Path) {
    let knotc = require_tool("knotc").expect("knotc");
    let socket = common::knot_control_socket(dir);
    let status = Command::new(knotc)
        .args([
            OsStr::new("-s"),
            socket.as_os_str(),
            OsStr::new("zone-reload"),
            OsStr::new(ZONE),
        ])
        .status()
        .expect("knotc");
    assert!(status.success());
}

/// A ringdns secondary's Corefile: `example.com` from 127.0.0.1:`primary`
/// (signed with `secret`, when given), feeding `to` (NOTIFY and transfer).
fn secondary_corefile(
    port: u16,
    primary: u16,
    secret: Option<&str>,
    to: Option<u16>,
    storage: &Path,
) -> String {
    let key = if secret.is_some() {
        format!(" key {KEY_NAME}")
    } else {
        String::new()
    };
    let tsig = secret.map_or(String::new(), |secret| {
        format!("    tsig {{\n        secret {KEY_NAME} {secret}\n    }}\n")
    });
    let transfer = to.map_or(String::new(), |to| {
        format!("    transfer {{\n        to 127.0.0.1:{to}\n    }}\n")
    });
    format!(
        "example.com:{port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary}{key}\n        refresh-min 1s\n    }}\n{transfer}{tsig}    storage {}\n}}\n",
        storage.display()
    )
}

/// BIND as the primary, with TSIG: ringdns transfers the zone, follows an
/// edit by IXFR after BIND's NOTIFY, and a ringdns secondary holding the
/// wrong secret gets nothing.
#[test]
fn ringdns_secondary_of_bind_with_tsig_and_a_wrong_key_refused() {
    let Some(named) = require_tool("named") else {
        return;
    };
    let dir = TempDir::new("bind-primary");
    let (primary_port, secondary_port, wrong_port) = (free_port(), free_port(), free_port());
    let named_dir = subdir(&dir, "named");
    let zone_file = named_dir.join("example.com.db");
    // Filler, so the edit is a small part of the zone: BIND answers IXFR
    // with the whole zone when the difference is large (max-ixfr-ratio).
    let filler: String = (0..50)
        .map(|i| format!("filler{i} IN A 192.0.2.{i}\n"))
        .collect();
    std::fs::write(
        &zone_file,
        zone_text(2024010101, &format!("{VERSION_1}{filler}")),
    )
    .unwrap();
    let conf = format!(
        "options {{\n    directory \"{dir}\";\n    pid-file none;\n    listen-on port {primary_port} {{ 127.0.0.1; }};\n    listen-on-v6 {{ none; }};\n    recursion no;\n    session-keyfile none;\n    managed-keys-directory \"{dir}\";\n    notify explicit;\n    notify-delay 0;\n}};\n\
         controls {{ }};\n\
         key \"{KEY_NAME}\" {{ algorithm hmac-sha256; secret \"{KEY_SECRET}\"; }};\n\
         zone \"example.com\" {{\n    type primary;\n    file \"example.com.db\";\n    ixfr-from-differences yes;\n    allow-transfer {{ key \"{KEY_NAME}\"; }};\n    also-notify {{ 127.0.0.1 port {secondary_port} key \"{KEY_NAME}\"; }};\n}};\n",
        dir = named_dir.display(),
    );
    let conf_path = named_dir.join("named.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let mut bind = ServerProcess::spawn(
        "named",
        named,
        [OsStr::new("-g"), OsStr::new("-c"), conf_path.as_os_str()],
        &named_dir,
        localhost(primary_port),
    );
    bind.wait_ready(ZONE, true);

    let secondary_dir = subdir(&dir, "secondary");
    let wrong_dir = subdir(&dir, "wrong");
    let corefile = secondary_corefile(
        secondary_port,
        primary_port,
        Some(KEY_SECRET),
        None,
        &secondary_dir.join("data"),
    );
    let mut secondary = common::spawn_ringdns(&corefile, &secondary_dir, localhost(secondary_port));
    secondary.wait_ready(ZONE, false);
    let wrong_corefile = secondary_corefile(
        wrong_port,
        primary_port,
        Some(WRONG_SECRET),
        None,
        &wrong_dir.join("data"),
    );
    let mut wrong = common::spawn_ringdns(&wrong_corefile, &wrong_dir, localhost(wrong_port));
    wrong.wait_ready(ZONE, false);
    let context = || format!("{}\n{}", secondary.output(), bind.output());
    assert!(
        wait_for(Duration::from_secs(10), || soa_serial(secondary.addr)
            == Some(2024010101)),
        "{}",
        context()
    );

    // Edit on BIND, SIGHUP: BIND computes the difference and NOTIFYs.
    std::fs::write(
        &zone_file,
        zone_text(2024010102, &format!("{VERSION_2}{filler}")),
    )
    .unwrap();
    // SAFETY: signalling the named we started.
    unsafe { libc::kill(bind.pid() as libc::pid_t, libc::SIGHUP) };
    let edited = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || soa_serial(secondary.addr)
            == Some(2024010102)),
        "{}",
        context()
    );
    eprintln!(
        "ringdns had BIND's edit {} ms after the reload",
        edited.elapsed().as_millis()
    );
    assert_has_version_2(secondary.addr, "ringdns secondary of BIND", &context);
    let log = secondary.stderr();
    assert!(
        log.contains("NOTIFY for example.com. from 127.0.0.1"),
        "{log}"
    );
    assert!(log.contains("(IXFR from 127.0.0.1"), "{log}");

    // The wrong secret: nothing transferred, the reason logged.
    assert_eq!(soa_serial(wrong.addr), None, "{}", wrong.output());
    assert!(
        wait_for(Duration::from_secs(5), || wrong.stderr().contains("BADSIG")),
        "{}",
        wrong.output()
    );
}

/// ringdns primary → ringdns secondary → Knot secondary: an edit on the
/// primary's file converges down the chain.
#[test]
fn ringdns_primary_to_ringdns_secondary_to_knot_converges() {
    if require_tool("knotd").is_none() {
        return;
    }
    let dir = TempDir::new("ringdns-chain");
    let (primary_port, middle_port, knot_port) = (free_port(), free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(2024010101, VERSION_1));
    let (primary_dir, middle_dir, knot_dir) = (
        subdir(&dir, "primary"),
        subdir(&dir, "middle"),
        subdir(&dir, "knot"),
    );
    let primary = common::start_ringdns(
        &primary_corefile(primary_port, &zone_file, &[middle_port], true),
        &primary_dir,
    );
    let middle_text = secondary_corefile(
        middle_port,
        primary_port,
        Some(KEY_SECRET),
        Some(knot_port),
        &middle_dir.join("data"),
    );
    let mut middle = common::spawn_ringdns(&middle_text, &middle_dir, localhost(middle_port));
    middle.wait_ready(ZONE, false);
    let knot = start_knot_secondary(&knot_dir, knot_port, middle_port, None).unwrap();
    let context = || {
        format!(
            "{}\n{}\n{}",
            primary.output(),
            middle.output(),
            knot.output()
        )
    };
    assert!(
        wait_for(Duration::from_secs(10), || soa_serial(knot.addr)
            == Some(2024010101)),
        "{}",
        context()
    );
    write_zone(&zone_file, &zone_text(2024010102, VERSION_2));
    let edited = Instant::now();
    assert!(
        wait_for(Duration::from_secs(5), || soa_serial(knot.addr)
            == Some(2024010102)),
        "{}",
        context()
    );
    eprintln!(
        "the chain converged {} ms after the edit",
        edited.elapsed().as_millis()
    );
    assert_has_version_2(knot.addr, "knot at the end of the chain", &context);
    assert!(
        middle.stderr().contains("(IXFR from 127.0.0.1"),
        "{}",
        context()
    );
    assert!(knot.stderr().contains("IXFR"), "{}", context());
}

/// The transfer ACL by source address on 127/8: 127.0.0.2 is listed and
/// gets the zone, 127.0.0.3 is not and gets REFUSED (AXFR over TCP) and
/// NOTAUTH (IXFR over UDP, as Knot and NSD answer).
#[test]
fn transfers_only_to_listed_addresses() {
    let Some(kdig) = require_tool("kdig") else {
        return;
    };
    let dir = TempDir::new("transfer-acl");
    let port = free_port();
    let zone_file = dir.write("db.example.com", zone_text(7, VERSION_1));
    let primary = common::start_ringdns(
        &format!(
            "example.com:{port} {{\n    bind 127.0.0.1\n    file {}\n    transfer {{\n        to 127.0.0.2\n    }}\n}}\n",
            zone_file.display()
        ),
        dir.path(),
    );
    let ask = |source: &str, query: &[&str]| {
        let output = Command::new(&kdig)
            .args([
                "@127.0.0.1",
                "-p",
                &port.to_string(),
                "-b",
                source,
                "+retry=0",
                "+timeout=2",
            ])
            .args(query)
            .output()
            .expect("kdig");
        // kdig reports an error answer to a transfer on stderr.
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let allowed = ask("127.0.0.2", &[ZONE, "AXFR"]);
    assert!(
        allowed.contains("192.0.2.1") && allowed.contains("9 records"),
        "{allowed}"
    );
    let refused = ask("127.0.0.3", &[ZONE, "AXFR"]);
    assert!(!refused.contains("192.0.2.1"), "{refused}");
    assert!(
        primary
            .stderr()
            .contains("AXFR of example.com. from 127.0.0.3"),
        "{}",
        primary.output()
    );
    assert!(
        primary
            .stderr()
            .contains("refused: 127.0.0.3 is not in the zone's transfer list")
    );
    let udp_allowed = ask("127.0.0.2", &["+notcp", ZONE, "IXFR=6"]);
    assert!(
        udp_allowed.contains("status: NOERROR") || udp_allowed.contains("\tSOA\t"),
        "{udp_allowed}"
    );
    let udp_refused = ask("127.0.0.3", &["+notcp", "+norecurse", ZONE, "IXFR=6"]);
    assert!(udp_refused.contains("NOTAUTH"), "{udp_refused}");
}

/// SIGTERM lets a running transfer finish: a client that has asked for a
/// large AXFR and not read it yet still gets all of it, then the server
/// exits 0.
#[test]
fn sigterm_lets_a_running_transfer_finish() {
    use std::io::{Read, Write};
    // More than the kernel buffers on both ends hold, so the server is
    // still writing when SIGTERM comes.
    const HOSTS: usize = 300_000;
    let dir = TempDir::new("sigterm-transfer");
    let port = free_port();
    let hosts: String = (0..HOSTS)
        .map(|i| format!("h{i} IN A 10.0.{}.{}\n", i / 256 % 256, i % 256))
        .collect();
    let zone_file = dir.write("db.example.com", zone_text(3, &hosts));
    let mut primary = common::start_ringdns(
        &format!(
            "example.com:{port} {{\n    bind 127.0.0.1\n    file {}\n    transfer {{\n        to *\n    }}\n}}\n",
            zone_file.display()
        ),
        dir.path(),
    );
    // An AXFR request, then no reading until the server is told to stop.
    let name = ringdns::wire::name::from_text(ZONE).unwrap();
    let mut writer = ringdns::wire::message::MessageWriter::new(0x5151, 0, 512);
    writer.push_question(&name, 252, 1);
    let request = writer.finish();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&primary.addr.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    stream.write_all(&framed).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: signalling the server we started.
    unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGTERM) };
    assert!(
        wait_for(Duration::from_secs(5), || primary
            .stderr()
            .contains("waiting for 1 transfer(s)")),
        "{}",
        primary.output()
    );
    // Now read the whole transfer: it ends with the SOA again.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut records = 0usize;
    let mut soas = 0;
    while soas < 2 {
        let mut length = [0u8; 2];
        stream
            .read_exact(&mut length)
            .unwrap_or_else(|error| panic!("{error}\n{}", primary.output()));
        let mut message = vec![0u8; u16::from_be_bytes(length) as usize];
        stream.read_exact(&mut message).unwrap();
        let read = ringdns::wire::message::read_message(&message).unwrap();
        records += read.answer.len();
        soas += read
            .answer
            .iter()
            .filter(|record| record.rtype == 6)
            .count();
    }
    // The SOA twice, two NS and two addresses, and the hosts.
    assert_eq!(records, HOSTS + 6, "the whole zone");
    let status = primary
        .wait_exit(Duration::from_secs(10))
        .expect("it exits");
    assert!(status.success(), "{status}");
}

/// `tsig { require AXFR }`: an unsigned AXFR is refused (NOTAUTH) even
/// from a listed address, a signed one is served.
#[test]
fn tsig_require_refuses_unsigned_transfers() {
    let Some(kdig) = require_tool("kdig") else {
        return;
    };
    let dir = TempDir::new("tsig-require");
    let port = free_port();
    let zone_file = dir.write("db.example.com", zone_text(9, VERSION_1));
    let primary = common::start_ringdns(
        &format!(
            "example.com:{port} {{\n    bind 127.0.0.1\n    file {}\n    transfer {{\n        to *\n    }}\n    tsig {{\n        secret {KEY_NAME} {KEY_SECRET}\n        require AXFR\n    }}\n}}\n",
            zone_file.display()
        ),
        dir.path(),
    );
    let axfr = |key: Option<&str>| {
        let mut command = Command::new(&kdig);
        command.args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+retry=0",
            "+timeout=2",
        ]);
        if let Some(key) = key {
            command.args(["-y", key]);
        }
        let output = command.args([ZONE, "AXFR"]).output().expect("kdig");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    };
    let unsigned = axfr(None);
    assert!(unsigned.contains("NOTAUTH"), "{unsigned}");
    assert!(!unsigned.contains("192.0.2.1"), "{unsigned}");
    let signed = axfr(Some(&format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}")));
    assert!(
        signed.contains("192.0.2.1"),
        "{signed}\n{}",
        primary.output()
    );
    assert!(
        primary
            .stderr()
            .contains("tsig require: the request is not signed")
    );
}
