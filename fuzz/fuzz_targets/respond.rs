//! The query path on arbitrary bytes: `respond()` over UDP and TCP against
//! a zone with every kind of answer, without and with DNS cookies. It must
//! never panic, and every reply must echo the ID, set QR and respect the
//! size limit.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ringdns::compile::{AnswerTable, ZoneInput, compile};
use ringdns::cookie::{CookieSecrets, SecretPair};
use ringdns::respond::{Cookies, Transport, UDP_PAYLOAD_SIZE_MAX, respond_with_cookies};
use ringdns::wire::name::from_text;
use ringdns::wire::query::Query;

const ZONE: &str = include_str!("../../tests/zones/diff.test.zone");

fn table() -> &'static AnswerTable {
    static TABLE: OnceLock<AnswerTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let origin = from_text("diff.test").unwrap();
        let loaded = ringdns::zone::load_text(&origin, ZONE, Path::new("diff.test.zone"))
            .expect("the test zone loads");
        compile(&[ZoneInput::Loaded(&loaded.zone)])
    })
}

fn secrets() -> &'static CookieSecrets {
    static SECRETS: OnceLock<CookieSecrets> = OnceLock::new();
    SECRETS.get_or_init(|| {
        CookieSecrets::new(SecretPair {
            current: [1; 16],
            previous: [2; 16],
        })
    })
}

fuzz_target!(|packet: &[u8]| {
    let mut query = Query::default();
    let mut out = vec![0u8; 65535];
    let cookies = Cookies::new(secrets(), std::net::Ipv4Addr::LOCALHOST.into());
    for (transport, cookies) in [
        (Transport::Udp, None),
        (Transport::Tcp, None),
        (Transport::Udp, Some(cookies)),
    ] {
        let length =
            respond_with_cookies(&mut query, packet, table(), transport, cookies, &mut out);
        if length == 0 {
            continue;
        }
        assert!(length >= 12 && length <= out.len());
        assert_eq!(&out[..2], &packet[..2], "the reply echoes the ID");
        assert_eq!(out[2] & 0x80, 0x80, "QR is set");
        if transport == Transport::Udp {
            assert!(length <= UDP_PAYLOAD_SIZE_MAX as usize);
        }
    }
});
