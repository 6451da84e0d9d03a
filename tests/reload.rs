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
