//! DNS Cookies (RFC 7873, server cookies per RFC 9018) against the real
//! binary: a client cookie is answered with a server cookie that then
//! validates, malformed options are FORMERR, nothing changes without the
//! `cookies` directive, and a client that proves its address with a valid
//! server cookie is exempt from response rate limiting.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n";
const CLIENT_COOKIE: [u8; 8] = [0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57];
const OPTION_COOKIE: u16 = 10;

/// A query for www.example.test A with an OPT record holding one COOKIE
/// option with `cookie` as its data.
fn cookie_query(cookie: &[u8]) -> Vec<u8> {
    let mut packet = build_query("www.example.test.", Rtype::A, &QueryOpts::default());
    packet[10..12].copy_from_slice(&1u16.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0]);
    packet.extend_from_slice(&(4 + cookie.len() as u16).to_be_bytes());
    packet.extend_from_slice(&OPTION_COOKIE.to_be_bytes());
    packet.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    packet.extend_from_slice(cookie);
    packet
}

/// Steps over a possibly compressed name; the offset after it.
fn skip_name(message: &[u8], mut at: usize) -> usize {
    loop {
        let length = message[at] as usize;
        match length {
            0 => return at + 1,
            _ if length & 0xC0 == 0xC0 => return at + 2,
            _ => at += 1 + length,
        }
    }
}

/// The data of the COOKIE option in a reply's OPT record: `Some(None)`
/// when the reply has an OPT without one, `None` without an OPT.
fn reply_cookie(reply: &[u8]) -> Option<Option<Vec<u8>>> {
    let count = |at: usize| u16::from_be_bytes([reply[at], reply[at + 1]]) as usize;
    let mut at = 12;
    for _ in 0..count(4) {
        at = skip_name(reply, at) + 4;
    }
    for _ in 0..count(6) + count(8) + count(10) {
        at = skip_name(reply, at);
        let rtype = u16::from_be_bytes([reply[at], reply[at + 1]]);
        let rdata_len = u16::from_be_bytes([reply[at + 8], reply[at + 9]]) as usize;
        let rdata = &reply[at + 10..at + 10 + rdata_len];
        at += 10 + rdata_len;
        if rtype != 41 {
            continue;
        }
        let mut options = rdata;
        while options.len() >= 4 {
            let code = u16::from_be_bytes([options[0], options[1]]);
            let length = u16::from_be_bytes([options[2], options[3]]) as usize;
            if code == OPTION_COOKIE {
                return Some(Some(options[4..4 + length].to_vec()));
            }
            options = &options[4 + length..];
        }
        return Some(None);
    }
    None
}

fn unix_now_s() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// Asks with a client cookie alone and returns the full cookie (client
/// and server parts) the server answered with.
fn learn_cookie(server: SocketAddr) -> Vec<u8> {
    let reply = exchange_udp(server, &cookie_query(&CLIENT_COOKIE)).expect("a reply");
    reply_cookie(&reply)
        .expect("an OPT record")
        .expect("a COOKIE option")
}

fn start(dir: &TempDir, directives: &str) -> ServerProcess {
    dir.write("db", ZONE);
    let port = free_port();
    start_ringdns(
        &format!(
            "example.test:{port} {{\n    bind 127.0.0.1\n    file db\n{directives}    engine {{\n        workers 1\n    }}\n}}\n"
        ),
        dir.path(),
    )
}

#[test]
fn a_client_cookie_gets_a_server_cookie_that_then_validates() {
    let dir = TempDir::new("cookies");
    let metrics_port = free_port();
    let server = start(
        &dir,
        &format!("    cookies\n    prometheus 127.0.0.1:{metrics_port}\n"),
    );

    let cookie = learn_cookie(server.addr);
    assert_eq!(cookie.len(), 24, "client cookie + 16-byte server cookie");
    assert_eq!(cookie[..8], CLIENT_COOKIE, "the client cookie is echoed");
    let server_cookie = &cookie[8..];
    assert_eq!(server_cookie[0], 1, "RFC 9018 version");
    assert_eq!(server_cookie[1..4], [0, 0, 0], "reserved");
    let timestamp = u32::from_be_bytes(server_cookie[4..8].try_into().unwrap());
    assert!(
        timestamp.abs_diff(unix_now_s()) <= 5,
        "timestamp {timestamp} is now"
    );

    // Sent back, it validates: the same cookie is echoed (it is fresh), and
    // the answer is the usual one, over UDP and over TCP.
    let query = cookie_query(&cookie);
    for reply in [
        exchange_udp(server.addr, &query).expect("a UDP reply"),
        exchange_tcp(server.addr, &query).expect("a TCP reply"),
    ] {
        let parsed = parse_reply(&reply).unwrap();
        assert_eq!(parsed.rcode, 0);
        assert_eq!(parsed.answer.len(), 1, "{}", parsed.summary());
        assert_eq!(reply_cookie(&reply), Some(Some(cookie.clone())));
    }
    // A server cookie of ours for another client cookie is no proof: the
    // query is answered, with a fresh server cookie for this client cookie.
    let mut forged = cookie.clone();
    forged[0] ^= 0xFF;
    let reply = exchange_udp(server.addr, &cookie_query(&forged)).unwrap();
    assert_eq!(parse_reply(&reply).unwrap().answer.len(), 1);
    let answered = reply_cookie(&reply).unwrap().unwrap();
    assert_eq!(answered[..8], forged[..8]);
    assert_ne!(answered[8..], cookie[8..]);

    let (_, metrics) = http_get(SocketAddr::from(([127, 0, 0, 1], metrics_port)), "/metrics");
    // One of each (a UDP retry under load could add one).
    for metric in [
        "ringdns_cookie_client_only_total",
        "ringdns_cookie_valid_total",
        "ringdns_cookie_invalid_total",
    ] {
        let value: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{metric} ")))
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {metric} in:\n{metrics}"));
        assert!((1..=3).contains(&value), "{metric} {value}");
    }
}

/// RFC 7873 §5.2.2: a COOKIE option of 8 bytes or of 16 to 40 is well
/// formed; any other length is FORMERR (as Knot's mod-cookies and NSD's
/// answer-cookie reply).
#[test]
fn a_malformed_cookie_option_is_formerr() {
    let dir = TempDir::new("cookies-formerr");
    let server = start(&dir, "    cookies\n");
    for length in [0, 7, 9, 15, 41] {
        let reply = exchange_udp(server.addr, &cookie_query(&[7; 41][..length])).unwrap();
        assert_eq!(
            parse_reply(&reply).unwrap().rcode,
            1,
            "a {length}-byte COOKIE option"
        );
    }
    for length in [8, 16, 40] {
        let reply = exchange_udp(server.addr, &cookie_query(&[7; 40][..length])).unwrap();
        assert_eq!(
            parse_reply(&reply).unwrap().rcode,
            0,
            "a {length}-byte COOKIE option"
        );
    }
}

#[test]
fn without_the_directive_no_cookie_is_answered() {
    let dir = TempDir::new("cookies-off");
    let server = start(&dir, "");
    let reply = exchange_udp(server.addr, &cookie_query(&CLIENT_COOKIE)).unwrap();
    assert_eq!(parse_reply(&reply).unwrap().answer.len(), 1);
    assert_eq!(reply_cookie(&reply), Some(None), "an OPT, with no COOKIE");
    // A malformed one is an unknown option like any other (Knot and NSD
    // without cookies answer it too).
    let reply = exchange_udp(server.addr, &cookie_query(&[7; 9])).unwrap();
    let parsed = parse_reply(&reply).unwrap();
    assert_eq!((parsed.rcode, parsed.answer.len()), (0, 1));
}

/// Sends every query in `queries` from `socket`, then collects replies
/// until none comes for 300 ms: (full answers, truncated replies, truncated
/// replies that carry a COOKIE option).
fn flood(socket: &UdpSocket, server: SocketAddr, queries: &[Vec<u8>]) -> (usize, usize, usize) {
    for query in queries {
        socket.send_to(query, server).unwrap();
    }
    let (mut answers, mut truncated, mut truncated_with_cookie) = (0, 0, 0);
    let mut buffer = [0u8; 1500];
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300) {
        match socket.recv_from(&mut buffer) {
            Ok((length, _)) => {
                quiet_since = Instant::now();
                let reply = &buffer[..length];
                let parsed = parse_reply(reply).unwrap();
                if parsed.flags.tc {
                    truncated += 1;
                    truncated_with_cookie +=
                        usize::from(matches!(reply_cookie(reply), Some(Some(_))));
                } else if parsed.answer.len() == 1 {
                    answers += 1;
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    (answers, truncated, truncated_with_cookie)
}

#[test]
fn a_valid_server_cookie_is_exempt_from_rate_limiting() {
    let dir = TempDir::new("cookies-rrl");
    let server = start(
        &dir,
        "    cookies\n    rrl {\n        responses-per-second 5\n        slip-ratio 2\n    }\n",
    );
    let cookie = learn_cookie(server.addr);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();

    // 200 from one address proving it: every one answered.
    let proven: Vec<Vec<u8>> = (0..200).map(|_| cookie_query(&cookie)).collect();
    let (answers, truncated, _) = flood(&socket, server.addr, &proven);
    assert_eq!((answers, truncated), (200, 0));

    // 200 from the same address with a client cookie alone: held to the
    // rate, and the truncated replies carry the server cookie, so a real
    // client learns how to prove itself.
    let started = Instant::now();
    let first_contact: Vec<Vec<u8>> = (0..200).map(|_| cookie_query(&CLIENT_COOKIE)).collect();
    let (answers, truncated, truncated_with_cookie) = flood(&socket, server.addr, &first_contact);
    let seconds = started.elapsed().as_secs() as usize + 1;
    assert!(
        answers <= 5 * (seconds + 1),
        "{answers} answers in about {seconds} s"
    );
    assert!(
        truncated >= 50,
        "every second limited reply is truncated, got {truncated}"
    );
    assert_eq!(truncated_with_cookie, truncated);

    // And 200 without any cookie: limited too.
    let started = Instant::now();
    let plain: Vec<Vec<u8>> = (0..200)
        .map(|_| build_query("www.example.test.", Rtype::A, &QueryOpts::default()))
        .collect();
    let (answers, _, _) = flood(&socket, server.addr, &plain);
    let seconds = started.elapsed().as_secs() as usize + 1;
    assert!(
        answers <= 5 * (seconds + 1),
        "{answers} answers in about {seconds} s"
    );
}

/// kdig (Knot's dig) speaks cookies: it sends a client cookie, and with the
/// server cookie it got, reports the pair as good.
#[test]
fn kdig_gets_and_returns_a_cookie() {
    let Some(kdig) = require_tool("kdig") else {
        return;
    };
    let dir = TempDir::new("cookies-kdig");
    let server = start(&dir, "    cookies\n");
    let run = |cookie: &str| {
        let output = std::process::Command::new(&kdig)
            .args([
                "@127.0.0.1",
                "-p",
                &server.addr.port().to_string(),
                cookie,
                "www.example.test",
                "A",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let first = run("+cookie=2464c4abcf10c957");
    let line = first
        .lines()
        .find(|line| line.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("no COOKIE in kdig's output:\n{first}"));
    let hex = line
        .split_whitespace()
        .find(|word| word.len() == 48)
        .unwrap_or_else(|| panic!("no client + server cookie in {line:?}"));
    assert!(hex.to_ascii_lowercase().starts_with("2464c4abcf10c957"));
    let second = run(&format!("+cookie={hex}"));
    assert!(second.contains("192.0.2.80"), "{second}");
    assert!(
        second
            .to_ascii_lowercase()
            .contains(&hex.to_ascii_lowercase()),
        "the same cookie is echoed while fresh:\n{second}"
    );
}

/// RFC 9018's point: servers of an anycast address, of any make, that
/// share a secret accept each other's cookies. Knot (mod-cookies) with the
/// same secret accepts ours (it answers BADCOOKIE to a server cookie it
/// cannot validate), and we accept Knot's (we echo only a valid one).
#[test]
fn a_secret_shared_with_knot_validates_both_ways() {
    let Some(knotd) = require_tool("knotd") else {
        return;
    };
    const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
    let dir = TempDir::new("cookies-knot");
    let ringdns = start(
        &dir,
        &format!("    cookies {{\n        secret {SECRET}\n    }}\n"),
    );
    let knot_port = free_port();
    let (rundir, storage) = (dir.join("knot-run"), dir.join("knot-db"));
    std::fs::create_dir_all(&rundir).unwrap();
    std::fs::create_dir_all(&storage).unwrap();
    let conf = format!(
        "server:\n    rundir: \"{rundir}\"\n    listen: 127.0.0.1@{knot_port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{storage}\"\nlog:\n  - target: stderr\n    any: info\nmod-cookies:\n  - id: shared\n    secret: 0x{SECRET}\ntemplate:\n  - id: default\n    global-module: mod-cookies/shared\nzone:\n  - domain: example.test.\n    file: \"{zone}\"\n    storage: \"{storage}\"\n    journal-content: none\n    zonefile-sync: -1\n",
        rundir = rundir.display(),
        storage = storage.display(),
        zone = dir.join("db").display(),
    );
    let conf_path = dir.write("knot.conf", conf);
    let mut knot = ServerProcess::spawn(
        "knot",
        knotd,
        [std::ffi::OsStr::new("-c"), conf_path.as_os_str()],
        dir.path(),
        SocketAddr::from(([127, 0, 0, 1], knot_port)),
    );
    knot.wait_ready("example.test.", true);

    let ours = learn_cookie(ringdns.addr);
    let reply = exchange_udp(knot.addr, &cookie_query(&ours)).expect("Knot answers");
    let parsed = parse_reply(&reply).unwrap();
    assert_eq!(parsed.full_rcode(), 0, "Knot: {}", parsed.summary());
    assert_eq!(parsed.answer.len(), 1);
    // A server cookie Knot cannot validate gets BADCOOKIE (23).
    let mut forged = ours.clone();
    forged[23] ^= 1;
    let reply = exchange_udp(knot.addr, &cookie_query(&forged)).expect("Knot answers");
    assert_eq!(parse_reply(&reply).unwrap().full_rcode(), 23);

    let knots = learn_cookie(knot.addr);
    assert_eq!(knots.len(), 24);
    let reply = exchange_udp(ringdns.addr, &cookie_query(&knots)).unwrap();
    assert_eq!(reply_cookie(&reply), Some(Some(knots)));
}
