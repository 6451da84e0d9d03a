//! The fast path allocates nothing per query: a counting global allocator
//! watches `respond()` and the table reader answer every kind of query,
//! and the worker's handler answer them with DNS cookies on.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ringdns::compile::{ZoneInput, compile};
use ringdns::publish::Published;
use ringdns::respond::{Transport, respond};
use ringdns::wire::name::from_text;
use ringdns::wire::query::Query;

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(pointer, layout) }
    }
    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const ZONE: &str = "$ORIGIN example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\nns A 192.0.2.1\nwww A 192.0.2.2\nalias CNAME www\n*.wild A 192.0.2.3\nsub NS ns.sub\nns.sub A 192.0.2.4\nred DNAME blue\n";

/// A query with an OPT record holding one COOKIE option (RFC 7873) of
/// `cookie`.
fn cookie_query(name: &[u8], cookie: &[u8]) -> Vec<u8> {
    let mut packet = query(name, 1, true);
    let rdata_len = 4 + cookie.len() as u16;
    let at = packet.len() - 2;
    packet[at..].copy_from_slice(&rdata_len.to_be_bytes());
    packet.extend_from_slice(&10u16.to_be_bytes());
    packet.extend_from_slice(&(cookie.len() as u16).to_be_bytes());
    packet.extend_from_slice(cookie);
    packet
}

/// A client cookie and a server cookie of version 1 stamped now with a
/// wrong hash: checked against both secrets, then replaced.
fn server_cookie_now() -> Vec<u8> {
    let mut cookie = vec![7; 8];
    cookie.extend_from_slice(&[1, 0, 0, 0]);
    cookie.extend_from_slice(&ringdns::cookie::now_s().to_be_bytes());
    cookie.extend_from_slice(&[0; 8]);
    cookie
}

/// Signed zones (the signatures are placeholders: answering never checks
/// them) with an NSEC and an NSEC3 chain, so DO=1 queries take every
/// DNSSEC path: per-query NSEC lookups and NSEC3 hashing.
const SIGNED_NSEC: &str = "$ORIGIN nsec.example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC ns NS SOA RRSIG NSEC DNSKEY\n RRSIG SOA 13 2 60 20340101000000 20240101000000 1 nsec.example. AAAA\n RRSIG NSEC 13 2 60 20340101000000 20240101000000 1 nsec.example. AAAA\nns A 192.0.2.1\n NSEC *.wild A RRSIG NSEC\n RRSIG A 13 3 60 20340101000000 20240101000000 1 nsec.example. AAAA\n RRSIG NSEC 13 3 60 20340101000000 20240101000000 1 nsec.example. AAAA\n*.wild A 192.0.2.3\n NSEC nsec.example. A RRSIG NSEC\n RRSIG A 13 3 60 20340101000000 20240101000000 1 nsec.example. AAAA\n RRSIG NSEC 13 3 60 20340101000000 20240101000000 1 nsec.example. AAAA\n";

const SIGNED_NSEC3: &str = "$ORIGIN nsec3.example.\n$TTL 60\n@ SOA ns hm 1 2 3 4 5\n NS ns\n DNSKEY 257 3 13 AAAA\n NSEC3PARAM 1 0 5 CAFE\n RRSIG SOA 13 2 60 20340101000000 20240101000000 1 nsec3.example. AAAA\nns A 192.0.2.1\n*.wild A 192.0.2.3\n0p9mhaveqvm6t7vbl5lop2u3t2rp3tom NSEC3 1 0 5 CAFE 35MTHGPGCU1QG68FAB165KLNSNK3DPVL A RRSIG\n0p9mhaveqvm6t7vbl5lop2u3t2rp3tom RRSIG NSEC3 13 3 60 20340101000000 20240101000000 1 nsec3.example. AAAA\n35mthgpgcu1qg68fab165klnsnk3dpvl NSEC3 1 0 5 CAFE 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TOM A RRSIG\n";

fn query(name: &[u8], qtype: u16, edns: bool) -> Vec<u8> {
    let mut packet = vec![1, 2, 1, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
    packet.extend_from_slice(name);
    packet.extend_from_slice(&qtype.to_be_bytes());
    packet.extend_from_slice(&[0, 1]);
    if edns {
        packet.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0x80, 0, 0, 0]);
    }
    packet
}

/// A query with EDNS and the DO bit set.
fn dnssec_query(name: &[u8], qtype: u16) -> Vec<u8> {
    let mut packet = query(name, qtype, true);
    let flags_at = packet.len() - 4;
    packet[flags_at] = 0x80;
    packet
}

#[test]
fn answering_allocates_nothing() {
    let origin = from_text("example").unwrap();
    let loaded = ringdns::zone::load_text(&origin, ZONE, Path::new("zone")).unwrap();
    let nsec_origin = from_text("nsec.example").unwrap();
    let nsec = ringdns::zone::load_text(&nsec_origin, SIGNED_NSEC, Path::new("nsec")).unwrap();
    let nsec3_origin = from_text("nsec3.example").unwrap();
    let nsec3 = ringdns::zone::load_text(&nsec3_origin, SIGNED_NSEC3, Path::new("nsec3")).unwrap();
    let published = Published::new(compile(&[
        ZoneInput::Loaded(&loaded.zone),
        ZoneInput::Loaded(&nsec.zone),
        ZoneInput::Loaded(&nsec3.zone),
    ]));
    let mut reader = published.reader();
    let names = [
        "www.example",
        "alias.example",
        "a.b.wild.example",
        "x.sub.example",
        "nx.example",
        "x.red.example",
        "www.example.org",
    ];
    let packets: Vec<Vec<u8>> = names
        .iter()
        .flat_map(|name| {
            let wire = from_text(name).unwrap();
            [
                query(&wire, 1, false),
                query(&wire, 28, true),
                query(&wire, 255, true),
            ]
        })
        .chain([
            // A client cookie alone, and one with a server cookie to check.
            cookie_query(&from_text("www.example").unwrap(), &[7; 8]),
            cookie_query(&from_text("www.example").unwrap(), &server_cookie_now()),
            // DO=1: signed answers, NSEC/NSEC3 chosen per query.
            dnssec_query(&from_text("nsec.example").unwrap(), 6),
            dnssec_query(&from_text("nx.nsec.example").unwrap(), 1),
            dnssec_query(&from_text("a.b.wild.nsec.example").unwrap(), 1),
            dnssec_query(&from_text("a.b.wild.nsec.example").unwrap(), 16),
            dnssec_query(&from_text("ns.nsec.example").unwrap(), 46),
            dnssec_query(&from_text("nx.nsec3.example").unwrap(), 1),
            dnssec_query(&from_text("a.b.wild.nsec3.example").unwrap(), 1),
            dnssec_query(&from_text("ns.nsec3.example").unwrap(), 16),
            vec![0u8; 5],
            query(b"\xC0\x0C", 1, false),
        ])
        .collect();
    let mut out = vec![0u8; 65535];
    let mut scratch = Query::default();
    // Warm up: the reader's first load may set up its cache.
    let _ = respond(
        &mut scratch,
        &packets[0],
        reader.load(),
        Transport::Udp,
        &mut out,
    );

    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut replies = 0;
    for _ in 0..1000 {
        for packet in &packets {
            let table = reader.load();
            replies +=
                usize::from(respond(&mut scratch, packet, table, Transport::Udp, &mut out) > 0);
            replies +=
                usize::from(respond(&mut scratch, packet, table, Transport::Tcp, &mut out) > 0);
        }
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    // The worker's handler: respond(), the per-worker query counters and
    // the query log's queue (its writer thread, not running here, formats).
    let log = ringdns::querylog::LogQueue::new(ringdns::querylog::LogClasses::ALL);
    let mut handler = ringdns::engine::DnsHandler::new(
        published.reader(),
        std::sync::Arc::new(ringdns::metrics::QueryCounters::default()),
        Some(std::sync::Arc::new(log)),
        // Rate limiting on, at a rate these queries never reach.
        Some(ringdns::rrl::RateLimiter::new(ringdns::rrl::RrlConfig {
            rates: [u32::MAX; 5],
            ..Default::default()
        })),
        None,
    )
    .with_cookies(Some(std::sync::Arc::new(
        ringdns::cookie::CookieSecrets::new(ringdns::cookie::SecretPair {
            current: [1; 16],
            previous: [2; 16],
        }),
    )));
    // A sockaddr_in for 127.0.0.1:5353, as the kernel hands it over.
    let mut peer = (libc::AF_INET as u16).to_ne_bytes().to_vec();
    peer.extend_from_slice(&5353u16.to_be_bytes());
    peer.extend_from_slice(&[127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let before_handler = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..1000 {
        for packet in &packets {
            let _ = ringdns::engine::PacketHandler::handle(
                &mut handler,
                packet,
                &mut out,
                ringdns::metrics::Family::V4,
                ringdns::engine::Peer(&peer),
            );
        }
    }
    let handler_allocations = ALLOCATIONS.load(Ordering::Relaxed) - before_handler;
    assert_eq!(
        handler_allocations, 0,
        "the worker's handler allocated {handler_allocations} times"
    );
    assert_eq!(
        allocations, 0,
        "the fast path allocated {allocations} times"
    );
    assert_eq!(
        replies,
        1000 * 2 * (packets.len() - 1),
        "every packet but the short one is answered"
    );
}
