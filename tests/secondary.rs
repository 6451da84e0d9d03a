//! ringdns as a secondary you can trust: it serves its copy from disk at
//! once after a restart, stops serving at the SOA expire time without a
//! primary, recovers when the primary returns, never serves a torn zone
//! after a `kill -9` in the middle of writing a large transfer, and keeps
//! what it has when a primary sends garbage, stalls, or has an older
//! serial. Also the two-hosts test in network namespaces.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::compare::subdir;
use common::{ServerProcess, TempDir, free_port, kdig, require_tool, wait_for};
use ringdns::wire::message::{Header, MessageWriter};
use ringdns::wire::{name, rtype};

const ZONE: &str = "example.com.";

/// A zone with SOA timers of `refresh`/`retry`/`expire` seconds and
/// `hosts` A records whose addresses depend on `serial`, so every record
/// says which version it belongs to.
fn zone_text(serial: u32, timers: (u32, u32, u32), hosts: u32) -> String {
    let (refresh, retry, expire) = timers;
    let mut text = format!(
        "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 hostmaster {serial} {refresh} {retry} {expire} 300\n@ IN NS ns1\nns1 IN A 127.0.0.1\nversion IN TXT \"{serial}\"\n"
    );
    for host in 0..hosts {
        let version = serial % 250;
        text.push_str(&format!(
            "h{host} IN A 10.{version}.{}.{}\n",
            host / 256 % 256,
            host % 256
        ));
    }
    text
}

fn localhost(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The serial the server answers with, `None` for no answer or an error.
fn soa_serial(addr: SocketAddr) -> Option<u32> {
    common::soa_serial(addr, ZONE)
}

fn status(addr: SocketAddr) -> String {
    let text = kdig(addr, &[ZONE, "SOA"]);
    text.split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_uppercase()).next())
        .unwrap_or("no answer")
        .to_string()
}

fn primary_corefile(port: u16, zone_file: &Path, notify_port: Option<u16>) -> String {
    let to = notify_port.map_or("*".to_string(), |port| format!("127.0.0.1:{port}"));
    format!(
        "example.com:{port} {{\n    bind 127.0.0.1\n    file {} {{\n        reload 0\n    }}\n    transfer {{\n        to {to}\n    }}\n}}\n",
        zone_file.display()
    )
}

fn secondary_corefile(port: u16, primary_port: u16, storage: &Path, metrics_port: u16) -> String {
    format!(
        "example.com:{port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary_port}\n        refresh-min 1s\n    }}\n    transfer {{\n        to *\n    }}\n    storage {}\n    prometheus 127.0.0.1:{metrics_port}\n}}\n",
        storage.display(),
    )
}

/// Starts ringdns without waiting for the zone (a secondary answers
/// SERVFAIL until it has one), but for its sockets.
fn start_secondary(corefile: &str, dir: &Path, port: u16) -> ServerProcess {
    let mut server = common::spawn_ringdns(corefile, dir, localhost(port));
    server.wait_ready(ZONE, false);
    server
}

#[test]
fn persisted_copy_serves_at_once_expires_without_a_primary_and_recovers() {
    if require_tool("kdig").is_none() {
        return;
    }
    let dir = TempDir::new("secondary-expiry");
    let (primary_port, secondary_port) = (free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(7, (1, 1, 6), 3));
    let primary_dir = subdir(&dir, "primary");
    let secondary_dir = subdir(&dir, "secondary");
    let primary_text = primary_corefile(primary_port, &zone_file, Some(secondary_port));
    let mut primary = common::start_ringdns(&primary_text, &primary_dir);
    let metrics_port = free_port();
    let corefile = secondary_corefile(
        secondary_port,
        primary_port,
        &dir.join("storage"),
        metrics_port,
    );
    let mut secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    assert!(
        wait_for(Duration::from_secs(10), || soa_serial(secondary.addr)
            == Some(7)),
        "{}",
        secondary.output()
    );
    // The expire timer is exported: last confirmation + the SOA's 6 s.
    let (_, metrics) = common::http_get(localhost(metrics_port), "/metrics");
    let timestamp = |metric: &str| -> u64 {
        metrics
            .lines()
            .find(|line| line.starts_with(&format!("{metric}{{zone=\"example.com.\"}} ")))
            .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("no {metric}:\n{metrics}"))
    };
    assert_eq!(
        timestamp("ringdns_secondary_expire_timestamp_seconds"),
        timestamp("ringdns_secondary_refresh_timestamp_seconds") + 6
    );

    // Primary gone, secondary restarted: it serves its copy at once.
    primary.stop();
    secondary.stop();
    let secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    assert_eq!(
        soa_serial(secondary.addr),
        Some(7),
        "{}",
        secondary.output()
    );
    assert!(secondary.stderr().contains("serving serial 7 from disk"));
    assert_eq!(
        kdig(secondary.addr, &["+short", "h1.example.com", "A"]).trim(),
        "10.7.0.1"
    );

    // Six seconds (the SOA expire) after the last contact: SERVFAIL.
    assert!(
        wait_for(Duration::from_secs(12), || status(secondary.addr)
            == "SERVFAIL"),
        "{}",
        secondary.output()
    );
    assert!(
        secondary.stderr().contains("expired"),
        "{}",
        secondary.output()
    );

    // The primary returns (with a newer serial): the secondary recovers.
    std::fs::write(&zone_file, zone_text(8, (1, 1, 6), 3)).unwrap();
    let _primary = common::start_ringdns(&primary_text, &primary_dir);
    assert!(
        wait_for(Duration::from_secs(10), || soa_serial(secondary.addr)
            == Some(8)),
        "{}",
        secondary.output()
    );
}

/// Version `serial`'s address for host `host`, as `zone_text` writes it.
fn address_of(serial: u32, host: u32) -> String {
    format!("10.{}.{}.{}", serial % 250, host / 256 % 256, host % 256)
}

/// Checks that `axfr` (kdig output) is one complete version of the zone:
/// every host present, every address of the same version. Returns it.
fn complete_version(axfr: &str, hosts: u32) -> Result<u32, String> {
    let serial: u32 = axfr
        .lines()
        .find(|line| line.contains("\tSOA\t"))
        .and_then(|line| line.split_whitespace().nth(6))
        .and_then(|serial| serial.parse().ok())
        .ok_or("no SOA")?;
    let mut seen = 0;
    for line in axfr.lines().filter(|line| line.starts_with('h')) {
        let mut words = line.split_whitespace();
        let owner = words.next().unwrap_or("");
        let address = words.nth(3).unwrap_or("");
        let host: u32 = owner
            .trim_start_matches('h')
            .split('.')
            .next()
            .and_then(|number| number.parse().ok())
            .ok_or_else(|| format!("odd owner {owner}"))?;
        if address != address_of(serial, host) {
            return Err(format!("{owner} has {address} in version {serial}"));
        }
        seen += 1;
    }
    if seen != hosts {
        return Err(format!("{seen} of {hosts} hosts in version {serial}"));
    }
    Ok(serial)
}

/// `kill -9` while the secondary writes a 100,000-record transfer, ten
/// times at random moments: every restart serves a complete zone, the old
/// version or the new one, never a mix or a torn file.
#[test]
fn kill_9_during_a_large_transfer_never_leaves_a_torn_zone() {
    if require_tool("kdig").is_none() {
        return;
    }
    const HOSTS: u32 = 100_000;
    let dir = TempDir::new("secondary-kill9");
    let (primary_port, secondary_port) = (free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(1, (3600, 600, 86400), HOSTS));
    let primary_dir = subdir(&dir, "primary");
    let secondary_dir = subdir(&dir, "secondary");
    let primary_text = primary_corefile(primary_port, &zone_file, Some(secondary_port));
    let mut primary = common::start_ringdns(&primary_text, &primary_dir);
    let corefile = secondary_corefile(
        secondary_port,
        primary_port,
        &dir.join("storage"),
        free_port(),
    );
    let mut secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    assert!(
        wait_for(Duration::from_secs(60), || soa_serial(secondary.addr)
            == Some(1)),
        "{}",
        secondary.output()
    );
    // Calibration: how long a new version takes from the primary's reload
    // to the secondary serving it, so the kills below land all over it.
    std::fs::write(&zone_file, zone_text(2, (3600, 600, 86400), HOSTS)).unwrap();
    let reloaded = Instant::now();
    // SAFETY: signalling the primary we started (its PID is ours to use).
    unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGHUP) };
    assert!(wait_for(Duration::from_secs(60), || soa_serial(
        secondary.addr
    ) == Some(2)));
    let propagation = reloaded.elapsed();
    eprintln!(
        "a new version takes {} ms to be served",
        propagation.as_millis()
    );
    let span = propagation.as_millis() as u64 * 13 / 10;
    let mut seed = std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    let mut versions_seen = Vec::new();
    for round in 3..13u32 {
        // A new version on the primary, every record changed.
        std::fs::write(&zone_file, zone_text(round, (3600, 600, 86400), HOSTS)).unwrap();
        // SAFETY: signalling the primary we started (its PID is ours to use).
        unsafe { libc::kill(primary.pid() as libc::pid_t, libc::SIGHUP) };
        // Kill the secondary at a random moment of its transfer (NOTIFY
        // arrives within milliseconds; the transfer and write take longer).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(seed % span.max(1));
        std::thread::sleep(delay);
        // SAFETY: SIGKILL to the secondary we started, not yet reaped.
        unsafe { libc::kill(secondary.pid() as libc::pid_t, libc::SIGKILL) };
        let _ = secondary.wait_exit(Duration::from_secs(5));
        // Restart without the primary: what it serves comes from disk.
        primary.stop();
        secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
        let axfr = kdig(secondary.addr, &["+tcp", ZONE, "AXFR"]);
        let version = complete_version(&axfr, HOSTS).unwrap_or_else(|problem| {
            panic!(
                "round {round} (killed after {delay:?}): {problem}\n{}",
                secondary.output()
            )
        });
        assert!(
            version == round || version == round - 1,
            "round {round}: served version {version}"
        );
        versions_seen.push(version);
        // Bring the primary back and let the secondary catch up before
        // the next round.
        primary = common::start_ringdns(&primary_text, &primary_dir);
        assert!(
            wait_for(Duration::from_secs(60), || soa_serial(secondary.addr)
                == Some(round)),
            "{}",
            secondary.output()
        );
    }
    eprintln!("versions served after each kill -9: {versions_seen:?}");
}

/// A fake primary: answers SOA over UDP with `serial`; over TCP does
/// `tcp` (garbage, stall, or nothing).
#[derive(Clone, Copy)]
enum Misbehaviour {
    Garbage,
    Stall,
}

fn fake_primary(serial: u32, misbehaviour: Misbehaviour) -> u16 {
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = udp.local_addr().unwrap().port();
    let tcp = TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((length, from)) = udp.recv_from(&mut buffer) {
            let Some(header) = Header::read(&buffer[..length]) else {
                continue;
            };
            let origin = name::from_text(ZONE).unwrap();
            let mut reply = MessageWriter::new(header.id, 0x8400, 512);
            reply.push_question(&origin, rtype::SOA, 1);
            let mut soa = name::from_text("ns1.example.com").unwrap();
            soa.extend_from_slice(&name::from_text("hostmaster.example.com").unwrap());
            for field in [serial, 1, 1, 86400, 300] {
                soa.extend_from_slice(&field.to_be_bytes());
            }
            reply.push_record(0, &origin, rtype::SOA, 1, 300, &soa);
            let _ = udp.send_to(&reply.finish(), from);
        }
    });
    std::thread::spawn(move || {
        for stream in tcp.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut request = [0u8; 512];
                let _ = stream.read(&mut request);
                match misbehaviour {
                    Misbehaviour::Garbage => {
                        let mut garbage = vec![0, 60];
                        garbage.extend((0..60u8).map(|byte| byte.wrapping_mul(37)));
                        let _ = stream.write_all(&garbage);
                    }
                    Misbehaviour::Stall => {
                        // Half a message, then silence.
                        let _ = stream.write_all(&[0x10, 0x00, 0xAB, 0xCD]);
                        std::thread::sleep(Duration::from_secs(30));
                    }
                }
            });
        }
    });
    port
}

/// A primary that sends garbage, stalls mid-transfer, or has an older
/// serial: the secondary keeps serving what it has, logs, counts, retries.
#[test]
fn a_bad_primary_never_replaces_the_good_copy() {
    if require_tool("kdig").is_none() {
        return;
    }
    let dir = TempDir::new("secondary-bad-primary");
    let (primary_port, secondary_port) = (free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(50, (1, 1, 86400), 3));
    let primary_dir = subdir(&dir, "primary");
    let mut primary = common::start_ringdns(
        &primary_corefile(primary_port, &zone_file, None),
        &primary_dir,
    );
    let garbage = fake_primary(60, Misbehaviour::Garbage);
    let stall = fake_primary(61, Misbehaviour::Stall);
    let older = fake_primary(40, Misbehaviour::Garbage);
    let metrics_port = free_port();
    let corefile = format!(
        "example.com:{secondary_port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary_port}\n        refresh-min 1s\n    }}\n    storage {}\n    prometheus 127.0.0.1:{metrics_port}\n}}\n",
        dir.join("storage").display()
    );
    let secondary_dir = subdir(&dir, "secondary");
    let mut secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    assert!(wait_for(Duration::from_secs(10), || soa_serial(
        secondary.addr
    ) == Some(50)));
    primary.stop();
    secondary.stop();

    // The same secondary, now pointed at the bad primaries in turn.
    let bad = format!(
        "example.com:{secondary_port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{garbage} 127.0.0.1:{stall} 127.0.0.1:{older}\n        refresh-min 1s\n    }}\n    storage {}\n    prometheus 127.0.0.1:{metrics_port}\n}}\n",
        dir.join("storage").display()
    );
    let secondary = start_secondary(&bad, &secondary_dir, secondary_port);
    // Garbage, then a stall (the 10 s read timeout, for IXFR and again
    // for AXFR), then the older serial.
    assert!(
        wait_for(Duration::from_secs(40), || secondary
            .stderr()
            .contains("older than ours")),
        "{}",
        secondary.output()
    );
    let log = secondary.stderr();
    assert!(log.contains("older than ours (50); keeping ours"), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{garbage}")), "{log}");
    assert!(log.contains(&format!("127.0.0.1:{stall}")), "{log}");
    assert_eq!(soa_serial(secondary.addr), Some(50), "still the good copy");
    let (_, metrics) = common::http_get(localhost(metrics_port), "/metrics");
    assert!(
        metrics.contains("ringdns_transfers_in_total{result=\"failed\"} "),
        "{metrics}"
    );
    assert!(
        !metrics.contains("ringdns_transfers_in_total{result=\"failed\"} 0\n"),
        "{metrics}"
    );
}

/// `/ready` is 503 while a secondary has no copy of its zone, 200 once
/// the first transfer is in.
#[test]
fn ready_waits_for_the_secondary_zone() {
    if require_tool("kdig").is_none() {
        return;
    }
    let dir = TempDir::new("secondary-ready");
    let (primary_port, secondary_port, ready_port) = (free_port(), free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(3, (3600, 600, 86400), 3));
    let (primary_dir, secondary_dir) = (subdir(&dir, "primary"), subdir(&dir, "secondary"));
    let corefile = format!(
        "example.com:{secondary_port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary_port}\n    }}\n    storage {}\n    ready 127.0.0.1:{ready_port}\n}}\n",
        dir.join("storage").display()
    );
    let secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    let ready = || common::http_get(localhost(ready_port), "/ready").0;
    assert_eq!(ready(), 503, "no copy yet: not ready");
    assert_eq!(status(secondary.addr), "SERVFAIL");
    let _primary = common::start_ringdns(
        &primary_corefile(primary_port, &zone_file, Some(secondary_port)),
        &primary_dir,
    );
    assert!(
        wait_for(Duration::from_secs(15), || ready() == 200),
        "{}",
        secondary.output()
    );
    assert_eq!(soa_serial(secondary.addr), Some(3));
}

/// A NOTIFY flood from addresses that are not primaries: every one is
/// answered REFUSED, the log stays bounded (10 lines a second), and
/// queries are still answered.
#[test]
fn a_notify_flood_is_refused_without_flooding_the_log() {
    let dir = TempDir::new("secondary-notify-flood");
    let (primary_port, secondary_port) = (free_port(), free_port());
    let corefile = format!(
        "example.com:{secondary_port} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{primary_port}\n    }}\n    storage {}\n}}\n",
        dir.join("storage").display()
    );
    let secondary = start_secondary(&corefile, dir.path(), secondary_port);
    let origin = name::from_text(ZONE).unwrap();
    let mut refused = 0;
    for i in 0..2000u32 {
        let source = format!("127.3.{}.{}", i / 250, i % 250 + 1);
        let socket = UdpSocket::bind((source.as_str(), 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut writer = MessageWriter::new(i as u16, 4 << 11, 512);
        writer.push_question(&origin, rtype::SOA, 1);
        socket.send_to(&writer.finish(), secondary.addr).unwrap();
        let mut buffer = [0u8; 512];
        if let Ok(length) = socket.recv(&mut buffer)
            && Header::read(&buffer[..length]).is_some_and(|header| header.rcode() == 5)
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 2000, "every NOTIFY from a stranger is REFUSED");
    assert_eq!(
        status(secondary.addr),
        "SERVFAIL",
        "still answering (no copy yet)"
    );
    let lines = secondary
        .stderr()
        .lines()
        .filter(|line| line.contains("NOTIFY from"))
        .count();
    assert!(lines <= 100, "{lines} NOTIFY lines logged");
}

/// EDNS EXPIRE (RFC 7314): a primary answers its SOA's expire, a
/// secondary the seconds its copy has left, over UDP and in AXFR.
#[test]
fn edns_expire_is_answered_by_primary_and_secondary() {
    if require_tool("kdig").is_none() {
        return;
    }
    let dir = TempDir::new("secondary-expire-option");
    let (primary_port, secondary_port) = (free_port(), free_port());
    let zone_file = dir.write("db.example.com", zone_text(4, (3600, 600, 5000), 3));
    let (primary_dir, secondary_dir) = (subdir(&dir, "primary"), subdir(&dir, "secondary"));
    let primary = common::start_ringdns(
        &primary_corefile(primary_port, &zone_file, Some(secondary_port)),
        &primary_dir,
    );
    let metrics_port = free_port();
    let corefile = secondary_corefile(
        secondary_port,
        primary_port,
        &dir.join("storage"),
        metrics_port,
    );
    let secondary = start_secondary(&corefile, &secondary_dir, secondary_port);
    assert!(wait_for(Duration::from_secs(10), || soa_serial(
        secondary.addr
    ) == Some(4)));
    let expire_of = |text: &str| -> Option<u32> {
        let at = text.find("EXPIRE: ")?;
        text[at + 8..].split_whitespace().next()?.parse().ok()
    };
    let from_primary = kdig(primary.addr, &["+expire", ZONE, "SOA"]);
    assert_eq!(expire_of(&from_primary), Some(5000), "{from_primary}");
    // The secondary says what its copy has left: its expiry (as /metrics
    // shows it; a NOTIFY may have just moved it) minus now.
    let from_secondary = kdig(secondary.addr, &["+expire", ZONE, "SOA"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let left = expire_of(&from_secondary).unwrap_or_else(|| panic!("{from_secondary}"));
    let (_, metrics) = common::http_get(localhost(metrics_port), "/metrics");
    let expires_at: u64 = metrics
        .lines()
        .find_map(|line| {
            line.strip_prefix("ringdns_secondary_expire_timestamp_seconds{zone=\"example.com.\"} ")
        })
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    let expected = expires_at.saturating_sub(now) as i64;
    assert!(
        (i64::from(left) - expected).abs() <= 1 && left <= 5000,
        "{left} vs {expected}: {from_secondary}\n{}",
        secondary.output()
    );
    // AXFR over TCP with the option: our OPT with EXPIRE in the first
    // message (kdig does not print it for transfers: read it ourselves).
    let origin = name::from_text(ZONE).unwrap();
    let mut writer = MessageWriter::new(0x7777, 0, 512);
    writer.push_question(&origin, rtype::AXFR, 1);
    writer.push_record(2, &[0], rtype::OPT, 1232, 0, &[0, 9, 0, 0]);
    let request = writer.finish();
    let mut stream = std::net::TcpStream::connect(secondary.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    stream.write_all(&framed).unwrap();
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut first = vec![0u8; u16::from_be_bytes(length) as usize];
    stream.read_exact(&mut first).unwrap();
    let read = ringdns::wire::message::read_message(&first).unwrap();
    let opt = read
        .additional
        .iter()
        .find(|record| record.rtype == rtype::OPT)
        .unwrap_or_else(|| panic!("no OPT in the first AXFR message"));
    assert_eq!(&opt.rdata[..4], &[0, 9, 0, 4], "an EXPIRE option");
    let seconds = u32::from_be_bytes([opt.rdata[4], opt.rdata[5], opt.rdata[6], opt.rdata[7]]);
    assert!((4990..=5000).contains(&seconds), "{seconds}");
    // No option asked, none given.
    assert!(!kdig(primary.addr, &[ZONE, "SOA"]).contains("EXPIRE"));
}
