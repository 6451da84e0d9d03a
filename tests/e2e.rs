//! End-to-end tests of the real binary over real sockets: serving over UDP
//! and TCP on both engine backends, the command line, and how bad input
//! (config, zone files) is reported.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "$ORIGIN example.test.
$TTL 3600
@        SOA   ns1 hostmaster 1 7200 900 1209600 300
         NS    ns1
ns1      A     192.0.2.1
www      A     192.0.2.80
alias    CNAME www
sub      NS    ns.sub
ns.sub   A     192.0.2.53
$GENERATE 1-40 big A 10.0.0.$
";

fn corefile(port: u16, zone_file: &str, engine: &str) -> String {
    format!("example.test:{port} {{\n    bind 127.0.0.1\n    file {zone_file}\n    {engine}\n}}\n")
}

fn start(dir: &TempDir, engine: &str) -> ServerProcess {
    dir.write("db.example.test", ZONE);
    start_ringdns(
        &corefile(free_port(), "db.example.test", engine),
        dir.path(),
    )
}

fn ask_udp(addr: SocketAddr, name: &str, rtype: Rtype) -> Reply {
    parse_reply(&query_udp(addr, name, rtype, &QueryOpts::default())).unwrap()
}

fn answers_correctly(addr: SocketAddr) {
    let www = ask_udp(addr, "WWW.example.test.", Rtype::A);
    assert!(www.flags.aa);
    assert_eq!(
        www.question,
        vec!["WWW.example.test. IN A"],
        "0x20 case echoed"
    );
    assert_eq!(www.answers_of(Rtype::A).len(), 1);
    let alias = ask_udp(addr, "alias.example.test.", Rtype::A);
    assert_eq!(alias.answer.len(), 2);
    let missing = ask_udp(addr, "nope.example.test.", Rtype::A);
    assert_eq!(missing.rcode, 3);
    let referral = ask_udp(addr, "deep.sub.example.test.", Rtype::A);
    assert!(!referral.flags.aa);
    assert_eq!(referral.authority.len(), 1);
    assert_eq!(referral.additional.len(), 1);
    let refused = ask_udp(addr, "example.org.", Rtype::A);
    assert_eq!(refused.rcode, 5);
    // 40 A records do not fit in 512 bytes: TC over UDP, all of them over TCP.
    let truncated = ask_udp(addr, "big.example.test.", Rtype::A);
    assert!(truncated.flags.tc);
    assert!(truncated.answer.is_empty());
    let tcp = parse_reply(&query_tcp(
        addr,
        "big.example.test.",
        Rtype::A,
        &QueryOpts::default(),
    ))
    .unwrap();
    assert!(!tcp.flags.tc);
    assert_eq!(tcp.answer.len(), 40);
}

#[test]
fn serves_udp_and_tcp_with_io_uring() {
    let dir = TempDir::new("e2e-uring");
    let server = start(
        &dir,
        "engine {\n        backend io_uring\n        workers 2\n    }",
    );
    assert!(
        server.stderr().contains("backend io_uring"),
        "{}",
        server.output()
    );
    answers_correctly(server.addr);
}

#[test]
fn serves_udp_and_tcp_with_recvmmsg() {
    let dir = TempDir::new("e2e-recvmmsg");
    let server = start(
        &dir,
        "engine {\n        backend recvmmsg\n        workers 2\n    }",
    );
    assert!(
        server.stderr().contains("backend recvmmsg"),
        "{}",
        server.output()
    );
    answers_correctly(server.addr);
}

#[test]
fn tcp_answers_pipelined_queries_on_one_connection() {
    let dir = TempDir::new("e2e-pipeline");
    let server = start(&dir, "");
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let names = [
        "www.example.test.",
        "alias.example.test.",
        "nope.example.test.",
        "big.example.test.",
    ];
    let mut batch = Vec::new();
    let mut ids = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let opts = QueryOpts {
            id: Some(100 + index as u16),
            ..QueryOpts::default()
        };
        let query = build_query(name, Rtype::A, &opts);
        batch.extend_from_slice(&(query.len() as u16).to_be_bytes());
        batch.extend_from_slice(&query);
        ids.push(100 + index as u16);
    }
    // All queries in one write: the server must answer every one.
    stream.write_all(&batch).unwrap();
    let mut seen = Vec::new();
    for _ in &names {
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).unwrap();
        let mut reply = vec![0u8; u16::from_be_bytes(length) as usize];
        stream.read_exact(&mut reply).unwrap();
        seen.push(parse_reply(&reply).unwrap().id);
    }
    seen.sort();
    assert_eq!(seen, ids);
}

#[test]
fn reads_corefile_from_the_working_directory_by_default() {
    let dir = TempDir::new("e2e-default");
    dir.write("db.example.test", ZONE);
    let port = free_port();
    dir.write("Corefile", corefile(port, "db.example.test", ""));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let no_args: [&str; 0] = [];
    let mut server = ServerProcess::spawn("ringdns", ringdns_bin(), no_args, dir.path(), addr);
    server.wait_ready("example.test.", true);
    assert_eq!(ask_udp(addr, "www.example.test.", Rtype::A).answer.len(), 1);
}

#[test]
fn a_zone_that_fails_to_load_answers_servfail_and_others_are_served() {
    let dir = TempDir::new("e2e-badzone");
    dir.write("db.example.test", ZONE);
    dir.write(
        "db.broken.test",
        "$ORIGIN broken.test.\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\nbad A 300.1.1.1\n",
    );
    let port = free_port();
    let text = format!(
        "example.test:{port} {{\n    bind 127.0.0.1\n    file db.example.test\n}}\nbroken.test:{port} {{\n    bind 127.0.0.1\n    file db.broken.test\n    errors\n}}\n"
    );
    let server = start_ringdns(&text, dir.path());
    assert_eq!(
        ask_udp(server.addr, "www.example.test.", Rtype::A)
            .answer
            .len(),
        1
    );
    assert_eq!(ask_udp(server.addr, "ns.broken.test.", Rtype::A).rcode, 2);
    let log = server.stderr();
    assert!(
        log.contains("db.broken.test:5:"),
        "the error names file and line:\n{log}"
    );
    // `errors`: the SERVFAIL is reported once with its context; repeats
    // within the minute are only counted.
    for _ in 0..20 {
        assert_eq!(ask_udp(server.addr, "ns.broken.test.", Rtype::A).rcode, 2);
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = server.stderr();
    let reported = log
        .lines()
        .filter(|line| line.starts_with("[ERROR] plugin/errors: 2 ns.broken.test. A: SERVFAIL"))
        .count();
    assert_eq!(reported, 1, "{log}");
}

fn ringdns(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(ringdns_bin())
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn check_and_check_zone_report_file_and_line() {
    let dir = TempDir::new("e2e-check");
    dir.write("db.example.test", ZONE);
    dir.write("Corefile", corefile(1053, "db.example.test", ""));
    let (code, stdout, _) = ringdns(&dir, &["check", "-conf", "Corefile"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("example.test.: serial 1"), "{stdout}");

    dir.write("db.bad", format!("{ZONE}www CNAME alias\n"));
    let (code, _, stderr) = ringdns(&dir, &["check-zone", "example.test", "db.bad"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("db.bad:11: CNAME and other data"),
        "{stderr}"
    );

    dir.write(
        "Corefile.bad",
        "example.test {\n    file db.example.test\n    fiel db\n}\n",
    );
    let (code, _, stderr) = ringdns(&dir, &["check", "--conf", "Corefile.bad"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Corefile.bad:3: unknown directive 'fiel'"),
        "{stderr}"
    );
}

#[test]
fn a_bad_corefile_stops_the_server_from_starting() {
    let dir = TempDir::new("e2e-badconf");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let text = format!("example.test:{port} {{\n    bind 127.0.0.300\n}}\n");
    let mut server = spawn_ringdns(&text, dir.path(), addr);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server exits");
    assert!(!status.success());
    assert!(
        server.stderr().contains("Corefile:2:"),
        "{}",
        server.output()
    );
}

#[test]
fn the_shipped_example_and_the_seed_corefiles() {
    let dir = TempDir::new("e2e-examples");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/Corefile");
    let (code, stdout, stderr) = ringdns(&dir, &["check", "-conf", example]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("example.com.: serial"), "{stdout}");
    // The seed's primary and secondary, unchanged, check clean.
    dir.write(
        "db.kevinmingtarja.com",
        "@ SOA ns1 hm 1 2 3 4 5\n NS ns1\nns1 A 18.140.254.171\n",
    );
    dir.write(
        "Corefile",
        "kevinmingtarja.com {\n    file db.kevinmingtarja.com\n\n    transfer {\n        to 3.89.236.104\n    }\n\n    health :8080\n    prometheus\n    log\n    errors\n}\n",
    );
    let (code, stdout, stderr) = ringdns(&dir, &["check"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("kevinmingtarja.com.: serial 1, 3 records: OK"),
        "{stdout}"
    );
    dir.write(
        "Corefile",
        "kevinmingtarja.com {\n    secondary {\n        transfer from 18.140.254.171\n    }\n\n    health :8080\n    prometheus\n    log\n    errors\n}\n",
    );
    let (code, stdout, stderr) = ringdns(&dir, &["check"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("kevinmingtarja.com.: secondary of 18.140.254.171:53: OK"),
        "{stdout}"
    );
}

#[test]
fn tcp_limits_slow_clients_and_connections_per_address() {
    let dir = TempDir::new("e2e-tcp-limits");
    let server = start(&dir, "tcp {\n        max-per-address 32\n    }");
    // A client that sends its message a byte at a time, slower than the
    // 2 s message deadline allows, is cut off.
    let query = build_query("www.example.test.", Rtype::A, &QueryOpts::default());
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut closed = false;
    for byte in &framed {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
        if started.elapsed() > Duration::from_secs(4) {
            break;
        }
    }
    let mut buffer = [0u8; 512];
    let closed = closed || matches!(slow.read(&mut buffer), Ok(0) | Err(_));
    assert!(closed, "a trickling client must be disconnected");
    assert!(started.elapsed() < Duration::from_secs(6));

    // 32 idle connections from 127.0.0.1 fill that address's share
    // (`max-per-address 32`)...
    let idle: Vec<TcpStream> = (0..32)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut extra = TcpStream::connect(server.addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let refused =
        extra.write_all(&framed).is_err() || matches!(extra.read(&mut buffer), Ok(0) | Err(_));
    assert!(refused, "the 33rd connection from one address is closed");
    // ...while another address is still served.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let mut other: TcpStream = socket.into();
    other
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    other.write_all(&framed).unwrap();
    let mut length = [0u8; 2];
    other.read_exact(&mut length).unwrap();
    let mut reply = vec![0u8; u16::from_be_bytes(length) as usize];
    other.read_exact(&mut reply).unwrap();
    assert_eq!(parse_reply(&reply).unwrap().answer.len(), 1);
    drop(idle);
}

#[test]
fn the_query_log_writes_coredns_lines_filtered_by_class() {
    let dir = TempDir::new("e2e-log");
    let server = start(&dir, "log");
    let opts = QueryOpts {
        id: Some(4242),
        ..QueryOpts::default()
    };
    query_udp(server.addr, "WWW.example.test.", Rtype::A, &opts);
    query_tcp(
        server.addr,
        "nope.example.test.",
        Rtype::AAAA,
        &QueryOpts::with_edns(1232),
    );
    let log_path = dir.path().join("ringdns.stdout");
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return line.to_string();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {needle}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let line = wait_for("WWW.example.test.");
    // [INFO] 127.0.0.1:PORT - 4242 "A IN WWW.example.test. udp SIZE false 512" NOERROR qr,aa 51 0.000012345s
    assert!(line.starts_with("[INFO] 127.0.0.1:"), "{line}");
    assert!(
        line.contains(" - 4242 \"A IN WWW.example.test. udp "),
        "{line}"
    );
    assert!(line.contains(" false 512\" NOERROR qr,aa "), "{line}");
    assert!(line.ends_with('s'), "{line}");
    let line = wait_for("nope.example.test.");
    assert!(line.contains("\"AAAA IN nope.example.test. tcp "), "{line}");
    assert!(line.contains(" false 1232\" NXDOMAIN qr,aa "), "{line}");
    drop(server);

    // class denial: only NXDOMAIN and NODATA replies are logged.
    let dir = TempDir::new("e2e-log-denial");
    let server = start(&dir, "log {\n        class denial\n    }");
    query_udp(
        server.addr,
        "www.example.test.",
        Rtype::A,
        &QueryOpts::default(),
    );
    query_udp(
        server.addr,
        "www.example.test.",
        Rtype::MX,
        &QueryOpts::default(),
    );
    let log_path = dir.path().join("ringdns.stdout");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut log = String::new();
    while std::time::Instant::now() < deadline && !log.contains("\"MX IN") {
        std::thread::sleep(Duration::from_millis(50));
        log = std::fs::read_to_string(&log_path).unwrap_or_default();
    }
    assert!(log.contains("\"MX IN www.example.test. udp"), "{log}");
    assert!(!log.contains("\"A IN www.example.test."), "{log}");
}

#[test]
fn nsid_answers_dig() {
    let Some(dig) = require_tool("dig") else {
        return;
    };
    let dir = TempDir::new("e2e-nsid");
    let server = start(&dir, "nsid ns-test");
    let output = Command::new(dig)
        .args([
            "+nsid",
            "+time=2",
            "+tries=1",
            "-p",
            &server.addr.port().to_string(),
            "@127.0.0.1",
            "www.example.test",
            "A",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("NSID: 6e 73 2d 74 65 73 74 (\"ns-test\")"),
        "{text}"
    );
    assert!(text.contains("status: NOERROR"), "{text}");
}
