//! Micro-benchmarks of `respond()` per answer kind: nanoseconds per query,
//! no I/O. `cargo bench --bench respond` measures; under `cargo test` the
//! same code runs once, briefly, as a smoke test.
//!
//! Each kind is timed in 11 runs of 200,000 queries; the report gives the
//! median and the spread (min–max) of ns/query, as BENCHMARKS.md records.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use ringdns::compile::{AnswerTable, ZoneInput, compile};
use ringdns::respond::{Transport, respond};
use ringdns::wire::name::from_text;
use ringdns::wire::query::Query;

/// A zone like loadtest's: 10,000 hosts plus one of each special case.
fn zone_text() -> String {
    let mut text = String::from(
        "$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n NS ns1\n NS ns2\n MX 10 mail\nns1 A 192.0.2.1\nns2 A 192.0.2.2\nmail A 192.0.2.25\n\
alias CNAME host17\nchain CNAME alias\n*.wild A 192.0.2.100\nsub NS ns.sub\nns.sub A 192.0.2.53\nred DNAME blue\nblue A 192.0.2.9\nx.blue A 192.0.2.10\n",
    );
    for index in 0..10_000 {
        text.push_str(&format!(
            "host{index} A 10.{}.{}.{}\n",
            index >> 16,
            (index >> 8) & 255,
            index & 255
        ));
        if index % 2 == 0 {
            text.push_str(&format!("host{index} AAAA 2001:db8::{index:x}\n"));
        }
    }
    text
}

fn query(name: &str, qtype: u16, edns: bool) -> Vec<u8> {
    let mut packet = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    packet.extend_from_slice(&from_text(name).unwrap());
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&1u16.to_be_bytes());
    if edns {
        packet.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
    }
    packet
}

fn cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("positive A", query("host4242.bench.test", 1, false)),
        ("positive A, EDNS", query("host4242.bench.test", 1, true)),
        ("positive MX + additional", query("bench.test", 15, false)),
        ("CNAME chain (2) to A", query("chain.bench.test", 1, false)),
        ("NODATA", query("host4243.bench.test", 28, false)),
        (
            "NXDOMAIN (3 labels deep)",
            query("a.b.nothere.bench.test", 1, false),
        ),
        ("wildcard", query("anything.wild.bench.test", 1, false)),
        ("referral with glue", query("www.sub.bench.test", 1, false)),
        ("DNAME followed", query("x.red.bench.test", 1, false)),
        ("REFUSED (not our zone)", query("www.example.org", 1, false)),
        ("FORMERR (two questions)", {
            let mut packet = query("host1.bench.test", 1, false);
            packet[5] = 2;
            packet
        }),
    ]
}

fn table() -> AnswerTable {
    let origin = from_text("bench.test").unwrap();
    let loaded = ringdns::zone::load_text(&origin, &zone_text(), Path::new("bench.zone")).unwrap();
    compile(&[ZoneInput::Loaded(&loaded.zone)])
}

fn main() {
    let measuring = std::env::args().any(|argument| argument == "--bench");
    let (runs, queries_per_run) = if measuring { (11, 200_000) } else { (1, 1_000) };
    let table = table();
    let mut out = vec![0u8; 65535];
    let mut scratch = Query::default();
    println!(
        "{:<28} {:>10} {:>20}",
        "answer kind", "ns/query", "spread (min-max)"
    );
    for (kind, packet) in cases() {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            for _ in 0..queries_per_run {
                let length = respond(
                    &mut scratch,
                    black_box(&packet),
                    &table,
                    Transport::Udp,
                    &mut out,
                );
                assert!(length > 0, "{kind}: no reply");
                black_box(&out[..length]);
            }
            samples.push(started.elapsed().as_nanos() as f64 / queries_per_run as f64);
        }
        samples.sort_by(f64::total_cmp);
        let median = samples[samples.len() / 2];
        println!(
            "{kind:<28} {median:>10.1} {:>12.1} - {:<7.1}",
            samples[0],
            samples[samples.len() - 1]
        );
    }
}
