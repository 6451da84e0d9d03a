//! Bad input costs nothing: `respond()` on random bytes and on mutated
//! queries never panics and always echoes the ID when it replies, and the
//! real server keeps answering after a burst of garbage.

mod common;

use std::net::UdpSocket;
use std::path::Path;

use common::*;
use domain::base::iana::Rtype;
use ringdns::compile::{ZoneInput, compile};
use ringdns::respond::{Transport, respond};
use ringdns::wire::name::from_text;
use ringdns::wire::query::Query;

const ZONE: &str = "$ORIGIN example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\nalias CNAME www\n*.wild A 192.0.2.3\nsub NS ns.sub\nns.sub A 192.0.2.4\nred DNAME blue\nblue A 192.0.2.5\n";

/// xorshift64*: a small deterministic generator, so failures reproduce.
struct Random(u64);
impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let opts = [QueryOpts::default(), QueryOpts::with_edns(1232)];
    let mut seeds = Vec::new();
    for name in [
        "www.example.",
        "a.b.wild.example.",
        "x.sub.example.",
        "x.red.example.",
        "nx.example.",
        "alias.example.",
    ] {
        for opt in &opts {
            seeds.push(build_query(name, Rtype::A, opt));
        }
    }
    seeds
}

#[test]
fn respond_survives_random_and_mutated_packets() {
    let origin = from_text("example").unwrap();
    let loaded = ringdns::zone::load_text(&origin, ZONE, Path::new("zone")).unwrap();
    let table = compile(&[ZoneInput::Loaded(&loaded.zone)]);
    let mut random = Random(0x1234_5678_9ABC_DEF1);
    let mut scratch = Query::default();
    let mut out = vec![0u8; 65535];
    let seeds = seeds();
    for round in 0..200_000 {
        let packet: Vec<u8> = if round % 4 == 0 {
            // Random bytes of random length.
            (0..random.below(300))
                .map(|_| random.next() as u8)
                .collect()
        } else {
            // A valid query with a few bits flipped, bytes changed, or a cut.
            let mut packet = seeds[random.below(seeds.len())].clone();
            for _ in 0..1 + random.below(4) {
                let at = random.below(packet.len());
                match random.below(3) {
                    0 => packet[at] ^= 1 << random.below(8),
                    1 => packet[at] = random.next() as u8,
                    _ => packet.truncate(at),
                }
                if packet.is_empty() {
                    break;
                }
            }
            packet
        };
        for transport in [Transport::Udp, Transport::Tcp] {
            let length = respond(&mut scratch, &packet, &table, transport, &mut out);
            if length > 0 {
                assert!(length >= 12, "round {round}: reply shorter than a header");
                assert_eq!(
                    &out[..2],
                    &packet[..2],
                    "round {round}: the reply echoes the ID"
                );
                assert_eq!(out[2] & 0x80, 0x80, "round {round}: QR set");
                if transport == Transport::Udp {
                    assert!(length <= 1232, "round {round}: UDP reply of {length} bytes");
                }
            }
        }
    }
}

#[test]
fn the_server_keeps_answering_after_garbage() {
    let dir = TempDir::new("hostile");
    dir.write("db", ZONE);
    let port = free_port();
    let server = start_ringdns(
        &format!("example:{port} {{\n    bind 127.0.0.1\n    file db\n}}\n"),
        dir.path(),
    );
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut random = Random(42);
    let seeds = seeds();
    for round in 0..5_000 {
        let mut packet = seeds[round % seeds.len()].clone();
        let at = random.below(packet.len());
        packet[at] = random.next() as u8;
        if round % 3 == 0 {
            packet.truncate(random.below(packet.len()));
        }
        socket.send_to(&packet, server.addr).unwrap();
    }
    let reply = parse_reply(&query_udp(
        server.addr,
        "www.example.",
        Rtype::A,
        &QueryOpts::default(),
    ))
    .unwrap();
    assert_eq!(reply.answer.len(), 1, "{}", server.output());
    let tcp = parse_reply(&query_tcp(
        server.addr,
        "www.example.",
        Rtype::A,
        &QueryOpts::default(),
    ))
    .unwrap();
    assert_eq!(tcp.answer.len(), 1);
}
