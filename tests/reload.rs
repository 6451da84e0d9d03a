//! SIGHUP reloads the zone files and publishes the new answers atomically;
//! a file with an error, or new data under an old serial, leaves what is
//! served untouched, says why (with file:line) and counts it.

mod common;

use std::time::{Duration, Instant};

use common::*;
use domain::base::iana::Rtype;

fn zone(serial: u32, address: &str) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster {serial} 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A {address}\n"
    )
}

fn www(server: &ServerProcess) -> String {
    let reply = parse_reply(&query_udp(
        server.addr,
        "www.example.test.",
        Rtype::A,
        &QueryOpts::default(),
    ))
    .unwrap();
    reply
        .answer
        .iter()
        .next()
        .map(|record| record.text.clone())
        .unwrap_or_default()
}

fn hangup(server: &ServerProcess) {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) };
}

/// Waits until the server's stderr has said `needle` `count` times.
fn wait_for_log(server: &ServerProcess, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.stderr().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no '{needle}' in the log:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_and_keeps_serving_on_errors() {
    let dir = TempDir::new("reload");
    let db = dir.write("db", zone(1, "192.0.2.80"));
    let (dns, metrics_port) = (free_port(), free_port());
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db\n    prometheus 127.0.0.1:{metrics_port}\n}}\n"
        ),
        dir.path(),
    );
    assert_eq!(www(&server), "192.0.2.80");

    // A newer serial: the new data is served.
    std::fs::write(&db, zone(2, "192.0.2.81")).unwrap();
    hangup(&server);
    wait_for_log(&server, "ringdns: reloaded 1 zone(s)", 1);
    assert_eq!(www(&server), "192.0.2.81");

    // A broken file: the old data stays, the error names the line.
    std::fs::write(&db, format!("{}bad A 300.1.1.1\n", zone(3, "192.0.2.82"))).unwrap();
    hangup(&server);
    wait_for_log(&server, "reload refused", 1);
    assert!(server.stderr().contains("db:7:"), "{}", server.stderr());
    assert_eq!(www(&server), "192.0.2.81");

    // New data under the same serial: kept out, as Knot and CoreDNS do.
    std::fs::write(&db, zone(2, "192.0.2.83")).unwrap();
    hangup(&server);
    wait_for_log(&server, "reload refused", 2);
    assert!(
        server.stderr().contains("serial 2 is not newer than 2"),
        "{}",
        server.stderr()
    );
    assert_eq!(www(&server), "192.0.2.81");

    let (_, metrics) = http_get(
        format!("127.0.0.1:{metrics_port}").parse().unwrap(),
        "/metrics",
    );
    assert!(
        metrics.contains("coredns_reload_failed_total 2\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ringdns_zone_serial{zone=\"example.test.\"} 2\n"),
        "{metrics}"
    );
    // Start-up and the one reload that took published a table each.
    assert!(
        metrics.contains("ringdns_tables_published_total 2\n"),
        "{metrics}"
    );
    assert!(metrics.contains("ringdns_zone_loaded_timestamp_seconds{zone=\"example.test.\"} "));
}

#[test]
fn file_reload_interval_picks_up_a_new_serial() {
    let dir = TempDir::new("reload-interval");
    let db = dir.write("db", zone(1, "192.0.2.80"));
    let dns = free_port();
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db {{\n        reload 200ms\n    }}\n}}\n"
        ),
        dir.path(),
    );
    assert_eq!(www(&server), "192.0.2.80");
    // Some file systems keep modification times to the second.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&db, zone(2, "192.0.2.81")).unwrap();
    wait_for_log(&server, "ringdns: reloaded 1 zone(s)", 1);
    assert_eq!(www(&server), "192.0.2.81");
}

/// Version `v` of a zone whose every record says `v`: three TXT records at
/// one name, an MX whose exchange's address (in the additional section)
/// encodes `v`, and the SOA serial.
fn versioned_zone(v: u32) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster {v} 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\n\
         multi TXT \"v{v}-a\"\nmulti TXT \"v{v}-b\"\nmulti TXT \"v{v}-c\"\n\
         mail MX 10 mx{v}\nmx{v} A 10.0.{}.{}\n",
        v / 256,
        v % 256
    )
}

/// Under steady queries, 20 reloads: every answer is whole (all three
/// TXT records, or MX plus its glue) and of one version only, and no query
/// goes unanswered.
#[test]
fn answers_during_reloads_belong_wholly_to_one_version() {
    let dir = TempDir::new("reload-versions");
    let db = dir.write("db", versioned_zone(1));
    let dns = free_port();
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db {{\n        reload 0\n    }}\n}}\n"
        ),
        dir.path(),
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = ["multi.example.test.", "mail.example.test."]
        .into_iter()
        .map(|name| {
            let stop = std::sync::Arc::clone(&stop);
            let addr = server.addr;
            std::thread::spawn(move || {
                let rtype = if name.starts_with("multi") {
                    Rtype::TXT
                } else {
                    Rtype::MX
                };
                let (mut answered, mut versions) = (0u64, std::collections::BTreeSet::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let query = build_query(name, rtype, &QueryOpts::default());
                    let bytes = exchange_udp(addr, &query).expect("every query is answered");
                    let reply = parse_reply(&bytes).unwrap();
                    let texts: Vec<String> = reply
                        .answer
                        .iter()
                        .chain(&reply.additional)
                        .map(|record| record.text.clone())
                        .collect();
                    let seen: std::collections::BTreeSet<u32> =
                        texts.iter().filter_map(|text| version_of(text)).collect();
                    let expected_records = if rtype == Rtype::TXT { 3 } else { 2 };
                    assert_eq!(texts.len(), expected_records, "a whole answer: {texts:?}");
                    assert_eq!(seen.len(), 1, "one version per answer: {texts:?}");
                    versions.extend(seen);
                    answered += 1;
                }
                (answered, versions)
            })
        })
        .collect();
    for v in 2..=21 {
        std::fs::write(&db, versioned_zone(v)).unwrap();
        hangup(&server);
        wait_for_log(&server, &format!("reloaded serial {v}"), 1);
        std::thread::sleep(Duration::from_millis(30));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for client in clients {
        let (answered, versions) = client.join().expect("client thread");
        eprintln!("{answered} answers, versions seen: {versions:?}");
        assert!(answered > 100);
        assert!(versions.len() >= 10, "the reloads were seen: {versions:?}");
    }
}

/// The version a record's text carries: "v7-a" in TXT, 10.0.x.y in A, mxN
/// in MX.
fn version_of(text: &str) -> Option<u32> {
    if let Some(start) = text.find("\"v") {
        return text[start + 2..].split('-').next()?.parse().ok();
    }
    if let Some(address) = text.split_whitespace().last()
        && let Some(rest) = address.strip_prefix("10.0.")
    {
        let (high, low) = rest.split_once('.')?;
        return Some(high.parse::<u32>().ok()? * 256 + low.parse::<u32>().ok()?);
    }
    let exchange = text.split_whitespace().last()?;
    exchange.strip_prefix("mx")?.split('.').next()?.parse().ok()
}

/// inotify: with the poll interval at an hour, an edit (written in place,
/// or renamed over the file as editors do, or to an `$INCLUDE`d file) is
/// served within a second.
#[test]
fn edits_are_served_at_once_through_inotify() {
    let dir = TempDir::new("reload-inotify");
    let db = dir.write(
        "db",
        "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\n$INCLUDE hosts.inc\n",
    );
    let hosts = dir.write("hosts.inc", "www A 192.0.2.80\n");
    let dns = free_port();
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db {{\n        reload 1h\n    }}\n}}\n"
        ),
        dir.path(),
    );
    let served_within = |expected: &str| {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            if www(&server) == expected {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{expected} not served\n{}", server.output());
    };
    // Renamed over the zone file, with a new serial and a new address.
    let text = std::fs::read_to_string(&db)
        .unwrap()
        .replace(" 1 7200", " 2 7200");
    std::fs::write(&hosts, "www A 192.0.2.81\n").unwrap();
    let temporary = dir.join("db.tmp");
    std::fs::write(&temporary, text).unwrap();
    std::fs::rename(&temporary, &db).unwrap();
    let took = served_within("192.0.2.81");
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Only the included file changes (and the serial, in place).
    let text = std::fs::read_to_string(&db)
        .unwrap()
        .replace(" 2 7200", " 3 7200");
    std::fs::write(&db, text).unwrap();
    std::fs::write(&hosts, "www A 192.0.2.82\n").unwrap();
    let took = served_within("192.0.2.82");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

/// CoreDNS's `reload`: a changed Corefile adds and removes zones and
/// changes transfer rules while serving; a broken one changes nothing.
#[test]
fn corefile_reload_adds_and_removes_zones_and_keeps_on_errors() {
    let dir = TempDir::new("corefile-reload");
    dir.write("db", zone(1, "192.0.2.80"));
    dir.write(
        "db.other",
        "$ORIGIN other.test.\n$TTL 60\n@ SOA ns1 hostmaster 5 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.90\n",
    );
    let dns = free_port();
    let corefile = |zones: &str| {
        format!(
            "{zones} {{\n    bind 127.0.0.1\n    reload 2s\n    file db example.test\n{}}}\n",
            if zones.contains("other.test") {
                "    file db.other other.test\n    transfer other.test {\n        to 127.0.0.9\n    }\n"
            } else {
                ""
            }
        )
    };
    let first = corefile(&format!("example.test:{dns}"));
    let server = start_ringdns(&first, dir.path());
    let www_other = || {
        parse_reply(&query_udp(
            server.addr,
            "www.other.test.",
            Rtype::A,
            &QueryOpts::default(),
        ))
        .unwrap()
    };
    assert_eq!(www_other().rcode, 5, "not served yet: REFUSED");

    // Add other.test (with a transfer rule): served within the interval.
    std::fs::write(
        dir.join("Corefile"),
        corefile(&format!("example.test:{dns} other.test:{dns}")),
    )
    .unwrap();
    wait_for_log(&server, "ringdns: Corefile reloaded", 1);
    let reply = www_other();
    assert_eq!(reply.rcode, 0, "{}", server.output());
    assert_eq!(reply.answer.iter().next().unwrap().text, "192.0.2.90");
    assert_eq!(www(&server), "192.0.2.80", "example.test still served");

    // A broken Corefile changes nothing.
    std::fs::write(dir.join("Corefile"), "example.test {\n    fiel db\n}\n").unwrap();
    wait_for_log(&server, "Corefile reload refused", 1);
    assert!(server.stderr().contains("unknown directive 'fiel'"));
    assert_eq!(www_other().rcode, 0);

    // Back to example.test alone: other.test is no longer served.
    std::fs::write(dir.join("Corefile"), first).unwrap();
    wait_for_log(&server, "ringdns: Corefile reloaded", 2);
    assert_eq!(www_other().rcode, 5, "{}", server.output());
    assert!(
        server
            .stderr()
            .contains("zone other.test. is no longer served")
    );
}

/// `serve-unchanged-serial`: new data under the old serial is served (with
/// a warning) instead of kept out.
#[test]
fn serve_unchanged_serial_serves_new_data_under_the_same_serial() {
    let dir = TempDir::new("reload-same-serial");
    let db = dir.write("db", zone(1, "192.0.2.80"));
    let dns = free_port();
    let server = start_ringdns(
        &format!(
            "example.test:{dns} {{\n    bind 127.0.0.1\n    file db {{\n        reload 0\n        serve-unchanged-serial\n    }}\n}}\n"
        ),
        dir.path(),
    );
    std::fs::write(&db, zone(1, "192.0.2.81")).unwrap();
    hangup(&server);
    wait_for_log(&server, "serving it (serve-unchanged-serial)", 1);
    assert_eq!(www(&server), "192.0.2.81");
}
