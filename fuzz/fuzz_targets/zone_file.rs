//! The zone file scanner (with $GENERATE, the types we scan ourselves and
//! the checks) on arbitrary text. It must never panic; a zone that loads
//! must compile and answer.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use ringdns::compile::{ZoneInput, compile};
use ringdns::respond::{Transport, respond};
use ringdns::wire::name::from_text;
use ringdns::wire::query::Query;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A path in an empty, non-existent directory: $INCLUDEs find nothing.
    let path = Path::new("/nonexistent-ringdns-fuzz/zone");
    let origin = from_text("example").unwrap();
    let Ok(loaded) = ringdns::zone::load_text(&origin, text, path) else {
        return;
    };
    let table = compile(&[ZoneInput::Loaded(&loaded.zone)]);
    let mut query = Query::default();
    let mut out = vec![0u8; 65535];
    for owner in loaded.zone.nodes.keys().take(8) {
        for qtype in [1u16, 28, 255, 6] {
            let mut packet = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
            packet.extend_from_slice(owner);
            packet.extend_from_slice(&qtype.to_be_bytes());
            packet.extend_from_slice(&[0, 1]);
            let length = respond(&mut query, &packet, &table, Transport::Tcp, &mut out);
            assert!(length >= 12);
        }
    }
});
