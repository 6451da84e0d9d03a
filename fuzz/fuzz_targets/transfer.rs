//! The slow path's message parsing on arbitrary bytes: a whole message
//! read record by record, a TSIG check, the transfer reader of a secondary
//! (AXFR and IXFR answers, split into messages at each 0xFF 0xFF marker),
//! a transfer request's recognition, and a NOTIFY answered by a secondary.
//! None may panic; a NOTIFY reply must echo the ID and set QR.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringdns::compile::AnswerTable;
use ringdns::config::SecondaryZones;
use ringdns::publish::Published;
use ringdns::slowpath::journal::Journal;
use ringdns::slowpath::secondary::TransferParser;
use ringdns::slowpath::zones::{ServedZone, Source, ZoneStore};
use ringdns::slowpath::{notify, xfr_out};
use ringdns::tsig::{Key, check_request};
use ringdns::wire::message::read_message;
use ringdns::wire::name::from_text;
use ringdns::wire::rtype;

fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        Key::new(
            "fuzz-key.",
            "hmac-sha256",
            "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0",
        )
        .expect("key")
    })
}

/// A store with one secondary zone, example.com, whose primary is
/// 192.0.2.1 (the fuzzer's NOTIFYs come from there).
fn store() -> &'static ZoneStore {
    static STORE: OnceLock<ZoneStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let origin = from_text("example.com").expect("name");
        let secondary = SecondaryZones {
            zones: vec!["example.com.".into()],
            from: vec![("192.0.2.1:53".parse().expect("address"), None)],
            refresh_min: 5,
            refresh_max: 86400,
            expire_max: 86400,
            line: 1,
        };
        let zone = ServedZone {
            origin_text: "example.com.".into(),
            origin,
            source: Source::Secondary(secondary),
            zone: None,
            journal: Journal::in_memory(0),
            transfer_to: Vec::new(),
            tsig_required: Vec::new(),
            refreshed_at: None,
            loaded_at: None,
        };
        ZoneStore::new(
            vec![zone],
            Published::new(AnswerTable::default()),
            None,
            vec![key().clone()],
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = read_message(data);
    let _ = check_request(data, std::slice::from_ref(key()), 1_800_000_000);
    let _ = xfr_out::is_transfer_request(data);

    let origin = from_text("example.com").expect("name");
    let id = data
        .get(..2)
        .map_or(0, |id| u16::from_be_bytes([id[0], id[1]]));
    for (qtype, ours) in [(rtype::AXFR, None), (rtype::IXFR, Some(7))] {
        let mut parser = TransferParser::new(&origin, id, qtype, ours);
        for message in data
            .split(|byte| *byte == 0xFF)
            .filter(|part| !part.is_empty())
        {
            match parser.feed(message) {
                Ok(None) => continue,
                Ok(Some(_)) | Err(_) => break,
            }
        }
    }

    let peer: SocketAddr = "192.0.2.1:5353".parse().expect("address");
    if let Some(reply) = notify::answer(data, peer, store()) {
        assert!(reply.len() >= 12);
        assert_eq!(&reply[..2], &data[..2], "the reply echoes the ID");
        assert_eq!(reply[2] & 0x80, 0x80, "QR is set");
    }
});
