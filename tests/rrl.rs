//! Response rate limiting against the real binary: a flood from many
//! spoofed-looking addresses in one /24 is held to the configured rate,
//! with every second limited answer sent truncated, while a client in
//! another network is answered in full.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use domain::base::iana::Rtype;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n";

/// Sends `count` queries for www from each socket, then collects replies until
/// none comes for 300 ms: (answers, truncated replies).
fn ask_many(sockets: &[UdpSocket], server: SocketAddr, count: usize) -> (usize, usize) {
    for socket in sockets {
        for _ in 0..count {
            let query = build_query("www.example.test.", Rtype::A, &QueryOpts::default());
            socket.send_to(&query, server).unwrap();
        }
    }
    let (mut answers, mut truncated) = (0, 0);
    let mut buffer = [0u8; 1500];
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(300) {
        let mut got = false;
        for socket in sockets {
            while let Ok((length, _)) = socket.recv_from(&mut buffer) {
                got = true;
                let reply = parse_reply(&buffer[..length]).unwrap();
                if reply.flags.tc {
                    truncated += 1;
                } else if reply.answer.len() == 1 {
                    answers += 1;
                }
            }
        }
        if got {
            quiet_since = Instant::now();
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    (answers, truncated)
}

#[test]
fn a_flood_from_one_network_is_limited_and_others_are_not() {
    let dir = TempDir::new("rrl");
    dir.write("db", ZONE);
    let port = free_port();
    let server = start_ringdns(
        &format!(
            "example.test:{port} {{\n    bind 127.0.0.1\n    file db\n    rrl {{\n        responses-per-second 5\n        slip-ratio 2\n    }}\n    engine {{\n        workers 1\n    }}\n}}\n"
        ),
        dir.path(),
    );
    // 20 addresses of 127.1.0.0/24 (the whole of 127/8 is local), 10 queries each.
    let flood: Vec<UdpSocket> = (1..=20)
        .map(|host| {
            let socket = UdpSocket::bind(format!("127.1.0.{host}:0")).unwrap();
            socket.set_nonblocking(true).unwrap();
            socket
        })
        .collect();
    let started = Instant::now();
    let (answers, truncated) = ask_many(&flood, server.addr, 10);
    let seconds = started.elapsed().as_secs() + 1;
    // 5 per second, a fresh allowance per second started: at most 5 × (seconds + 1).
    assert!(
        answers <= 5 * (seconds as usize + 1),
        "{answers} answers in about {seconds} s"
    );
    assert!(
        answers >= 5,
        "the first five must be answered, got {answers}"
    );
    assert!(
        truncated >= 50,
        "every second limited answer is sent truncated, got {truncated}"
    );

    // A client in another network is not affected.
    let normal = UdpSocket::bind("127.0.0.1:0").unwrap();
    normal.set_nonblocking(true).unwrap();
    assert_eq!(ask_many(&[normal], server.addr, 5), (5, 0));
}
