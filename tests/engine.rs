//! The fast path's engine, end to end: worker count and CPU pinning are
//! honoured, a zero-length datagram does not silence a worker, and TCP keeps
//! answering quickly while UDP clients hammer the server.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use domain::base::iana::Rtype;

/// These tests measure timing and CPU placement: run them one at a time
/// so they do not load the machine for each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

const ZONE: &str = "$ORIGIN example.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n";

fn start(tag: &str, engine: &str) -> (TempDir, ServerProcess) {
    let dir = TempDir::new(tag);
    dir.write("db", ZONE);
    let port = free_port();
    let text = format!(
        "example.test:{port} {{\n    bind 127.0.0.1\n    file db\n    engine {{\n{engine}\n    }}\n}}\n"
    );
    let server = start_ringdns(&text, dir.path());
    (dir, server)
}

/// (thread name, allowed CPU list) of every thread of `pid`.
fn threads(pid: u32) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path();
        let name = std::fs::read_to_string(path.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let cpus = status
            .lines()
            .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
            .unwrap_or("")
            .trim()
            .to_string();
        found.push((name, cpus));
    }
    found.sort();
    found
}

fn www_answers(addr: SocketAddr) -> bool {
    let query = build_query("www.example.test.", Rtype::A, &QueryOpts::default());
    exchange_udp(addr, &query)
        .and_then(|reply| parse_reply(&reply).ok())
        .is_some_and(|reply| reply.answer.len() == 1)
}

#[test]
fn worker_count_and_pinning_are_honoured() {
    let _serial = serial();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    for backend in ["io_uring", "recvmmsg"] {
        let last_cpu = cpus - 1;
        let (_dir, server) = start(
            &format!("engine-pin-{backend}"),
            &format!("        backend {backend}\n        workers 2\n        cpus 0,{last_cpu}"),
        );
        let workers: Vec<(String, String)> = threads(server.pid())
            .into_iter()
            .filter(|(name, _)| name.starts_with("udp-"))
            .collect();
        assert_eq!(
            workers,
            vec![
                ("udp-0".to_string(), "0".to_string()),
                ("udp-1".to_string(), last_cpu.to_string())
            ],
            "{backend}: {}",
            server.output()
        );
        assert!(www_answers(server.addr));
    }
}

#[test]
fn a_zero_length_datagram_does_not_silence_a_worker() {
    let _serial = serial();
    for backend in ["io_uring", "recvmmsg"] {
        // One worker, so every datagram reaches the same receive loop.
        let (_dir, server) = start(
            &format!("engine-empty-{backend}"),
            &format!("        backend {backend}\n        workers 1"),
        );
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..5 {
            socket.send_to(&[], server.addr).unwrap();
            assert!(
                www_answers(server.addr),
                "{backend}: no answer after an empty datagram\n{}",
                server.output()
            );
        }
        // A burst of them, then a real query.
        for _ in 0..200 {
            socket.send_to(&[], server.addr).unwrap();
        }
        assert!(
            www_answers(server.addr),
            "{backend}: no answer after a burst of empty datagrams"
        );
    }
}

#[test]
fn tcp_stays_fast_while_udp_clients_hammer_the_server() {
    let _serial = serial();
    let (_dir, server) = start("engine-flood", "        workers 1");
    let addr = server.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let (stop, answered, wrong) =
                (Arc::clone(&stop), Arc::clone(&answered), Arc::clone(&wrong));
            std::thread::spawn(move || {
                let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(500)))
                    .unwrap();
                let name = if client % 2 == 0 {
                    "www.example.test."
                } else {
                    "nope.example.test."
                };
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut buffer = [0u8; 1500];
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    // A window of 16 queries in flight, then collect the replies.
                    let mut ids = Vec::new();
                    for _ in 0..16 {
                        let query = build_query(name, Rtype::A, &QueryOpts::default());
                        ids.push(u16::from_be_bytes([query[0], query[1]]));
                        let _ = socket.send_to(&query, addr);
                    }
                    for _ in 0..16 {
                        let Ok((length, _)) = socket.recv_from(&mut buffer) else {
                            break;
                        };
                        let Ok(reply) = parse_reply(&buffer[..length]) else {
                            wrong.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let right = ids.contains(&reply.id)
                            && if client % 2 == 0 {
                                reply.answer.len() == 1 && reply.rcode == 0
                            } else {
                                reply.rcode == 3
                            };
                        if right {
                            answered.fetch_add(1, Ordering::Relaxed);
                        } else {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let reply = query_tcp(addr, "www.example.test.", Rtype::A, &QueryOpts::default());
        slowest = slowest.max(started.elapsed());
        assert_eq!(parse_reply(&reply).unwrap().answer.len(), 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "every UDP answer must be right"
    );
    assert!(
        answered.load(Ordering::Relaxed) > 1000,
        "the clients got too few answers: {}",
        answered.load(Ordering::Relaxed)
    );
    println!(
        "slowest TCP query during the UDP flood: {slowest:?}, UDP answers: {}",
        answered.load(Ordering::Relaxed)
    );
    assert!(
        slowest < Duration::from_millis(100),
        "a TCP query took {slowest:?} during the UDP flood"
    );
}

#[test]
fn a_wildcard_bind_answers_from_the_address_the_query_was_sent_to() {
    let _serial = serial();
    for backend in ["io_uring", "recvmmsg"] {
        let dir = TempDir::new(&format!("engine-pktinfo-{backend}"));
        dir.write("db", ZONE);
        let port = free_port();
        // No `bind`: the server listens on 0.0.0.0 and [::].
        let text = format!(
            "example.test:{port} {{\n    file db\n    engine {{\n        backend {backend}\n        workers 1\n    }}\n}}\n"
        );
        let server = start_ringdns(&text, dir.path());
        // The whole of 127/8 is local: ask on two other addresses.
        for destination in ["127.0.0.2", "127.0.0.3"] {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let target: SocketAddr = format!("{destination}:{port}").parse().unwrap();
            let query = build_query("www.example.test.", Rtype::A, &QueryOpts::default());
            socket.send_to(&query, target).unwrap();
            let mut buffer = [0u8; 512];
            let (length, from) = socket.recv_from(&mut buffer).unwrap_or_else(|error| {
                panic!(
                    "{backend}: no reply via {destination}: {error}\n{}",
                    server.output()
                )
            });
            assert_eq!(
                from, target,
                "{backend}: the reply must come from the address the query went to"
            );
            assert_eq!(parse_reply(&buffer[..length]).unwrap().answer.len(), 1);
        }
    }
}
