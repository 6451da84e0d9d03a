//! TSIG (src/tsig.rs) against Knot's own implementation, both ways round:
//!
//! * `kdig` as the client: our `check_request` must accept its signed query,
//!   and kdig must accept our signed answer (and notice a damaged one, and
//!   read our BADSIG and BADTIME error answers);
//! * `knotd` as the server: our hand-built, `sign_request`-signed AXFR must
//!   be served, and `ResponseVerifier` must verify every message of Knot's
//!   multi-message stream; with a wrong secret Knot must answer NOTAUTH with
//!   TSIG BADSIG, which the verifier reports.
//!
//! Skipped (with a notice) when kdig or knotd is not installed.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream, UdpSocket};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use ringdns::tsig::{self, Key, RequestCheck, ResponseVerifier};
use ringdns::wire::name::read_compressed;

const KEY_NAME: &str = "testkey";
const ALGORITHM: &str = "hmac-sha256";
/// 32 random bytes, base64 (what `keymgr -t testkey` prints).
const SECRET: &str = "3q2+7wEjRWeJq83vEjRWeJq83v8BI0VniavN7xI0Vng=";
const WRONG_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// What kdig prints when an answer's TSIG does not verify.
const KDIG_BAD_TSIG: &str = "failed to verify TSIG";
/// What kdig prints when an answer's TSIG verifies but reports BADTIME.
const KDIG_BAD_TIME: &str = "TSIG out of time window";
/// TXT records in the transferred zone: enough for Knot to split the AXFR
/// into several messages (about 200 KB against its 64 KB message limit).
const ZONE_TXT_RECORDS: usize = 2500;

fn key() -> Key {
    Key::new(KEY_NAME, ALGORITHM, SECRET).unwrap()
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// kdig as the client
// ---------------------------------------------------------------------------

/// Runs `kdig` with `secret` against a UDP socket of ours and answers its
/// one query: signed when `check_request` (run with our clock moved by
/// `clock_offset_s`) finds it valid, else with the error answer (BADSIG,
/// BADTIME). With `damage_mac`, one byte of our MAC is flipped. Returns
/// (our check of the query, kdig's output).
fn kdig_exchange(
    secret: &str,
    clock_offset_s: u64,
    damage_mac: bool,
) -> Option<(RequestCheck, String)> {
    let kdig = require_tool("kdig")?;
    let dir = TempDir::new("tsig-kdig");
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let port = addr.port().to_string();
    let key_arg = format!("{ALGORITHM}:{KEY_NAME}:{secret}");
    // ServerProcess kills kdig on every exit path; +retry=0 makes it send
    // exactly one datagram.
    let mut client = ServerProcess::spawn(
        "kdig",
        kdig,
        [
            "@127.0.0.1",
            "-p",
            &port,
            "-y",
            &key_arg,
            "example.com",
            "SOA",
            "+retry=0",
            "+timeout=3",
        ],
        dir.path(),
        addr,
    );
    let mut buffer = vec![0u8; 65535];
    let (length, peer) = socket
        .recv_from(&mut buffer)
        .unwrap_or_else(|e| panic!("no query from kdig: {e}\n{}", client.output()));
    let query = &buffer[..length];
    let now = now_unix() + clock_offset_s;
    let keys = [key()];
    let check = tsig::check_request(query, &keys, now);
    let mut reply = soa_answer(query);
    // Bytes after the MAC: original ID, error, other length, other data.
    let after_mac = match &check {
        RequestCheck::Valid { mac, .. } => {
            tsig::sign_response(&mut reply, &keys[0], mac, now);
            6
        }
        RequestCheck::Invalid(invalid) => {
            reply.truncate(query_question_end(query));
            reply[6..8].copy_from_slice(&[0, 0]); // no answer records
            tsig::append_error(&mut reply, invalid, &keys, now);
            if invalid.error == tsig::BADTIME {
                12
            } else {
                6
            }
        }
        other => panic!("kdig's query checked as {other:?}"),
    };
    if damage_mac {
        let at = reply.len() - after_mac - 1;
        reply[at] ^= 0x01;
    }
    socket.send_to(&reply, peer).unwrap();
    if client.wait_exit(Duration::from_secs(10)).is_none() {
        panic!("kdig did not exit\n{}", client.output());
    }
    let output = client.output();
    Some((check, output))
}

/// Offset just past the question of `query`.
fn query_question_end(query: &[u8]) -> usize {
    let mut qname = Vec::new();
    read_compressed(query, 12, &mut qname).expect("kdig's qname") + 4
}

/// An authoritative answer to `query` (one question, for example.com SOA)
/// with one SOA record, names compressed against the question.
fn soa_answer(query: &[u8]) -> Vec<u8> {
    let question_end = query_question_end(query);
    let mut reply = Vec::new();
    reply.extend_from_slice(&query[..2]);
    reply.extend_from_slice(&[0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0]);
    reply.extend_from_slice(&query[12..question_end]);
    let mut rdata = Vec::new();
    rdata.extend_from_slice(b"\x02ns\xC0\x0C\x0Ahostmaster\xC0\x0C");
    for value in [2024010101u32, 7200, 900, 1209600, 300] {
        rdata.extend_from_slice(&value.to_be_bytes());
    }
    reply.extend_from_slice(&[0xC0, 0x0C, 0, 6, 0, 1, 0, 0, 0x0E, 0x10]);
    reply.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    reply.extend_from_slice(&rdata);
    reply
}

#[test]
fn kdig_query_verifies_and_kdig_accepts_our_signed_answer() {
    let Some((check, output)) = kdig_exchange(SECRET, 0, false) else {
        return;
    };
    assert!(
        matches!(check, RequestCheck::Valid { key: 0, .. }),
        "{check:?}"
    );
    assert!(!output.contains("WARNING"), "kdig complained:\n{output}");
    assert!(output.contains("status: NOERROR"), "{output}");
    assert!(output.contains("TSIG PSEUDOSECTION"), "{output}");
    assert!(output.contains("ns.example.com."), "{output}");
}

#[test]
fn kdig_notices_a_damaged_mac() {
    // The control for the test above: proves kdig really checks our MAC and
    // says so in the words we look for.
    let Some((_, output)) = kdig_exchange(SECRET, 0, true) else {
        return;
    };
    assert!(
        output.contains(KDIG_BAD_TSIG),
        "kdig did not notice:\n{output}"
    );
}

#[test]
fn kdig_with_wrong_secret_gets_unsigned_badsig() {
    let Some((check, output)) = kdig_exchange(WRONG_SECRET, 0, false) else {
        return;
    };
    let RequestCheck::Invalid(invalid) = &check else {
        panic!("wrong secret checked as {check:?}");
    };
    assert_eq!(invalid.error, tsig::BADSIG);
    // kdig shows the TSIG error as the status, and the record with MAC size
    // 0 and the error; it cannot verify an unsigned answer and says so.
    assert!(output.contains("status: BADSIG"), "{output}");
    assert!(output.contains(" 300 0 "), "MAC size 0:\n{output}");
}

#[test]
fn kdig_far_from_our_clock_gets_signed_badtime() {
    let offset = u64::from(tsig::FUDGE) + 100;
    let Some((check, output)) = kdig_exchange(SECRET, offset, false) else {
        return;
    };
    let RequestCheck::Invalid(invalid) = &check else {
        panic!("query from the past checked as {check:?}");
    };
    assert_eq!(invalid.error, tsig::BADTIME);
    assert!(output.contains("status: BADTIME"), "{output}");
    // Other Data: our clock (kdig prints its length, 6, then the time).
    let server_time: u64 = output
        .split_once("BADTIME 6 ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|time| time.parse().ok())
        .unwrap_or_else(|| panic!("no server time in the TSIG record:\n{output}"));
    assert!(server_time.abs_diff(now_unix() + offset) < 10, "{output}");
    // kdig checks the MAC before the time (libknot's check_digest), so
    // "out of time window" means our MAC verified; the damaged control
    // proves the difference is visible.
    assert!(output.contains(KDIG_BAD_TIME), "{output}");
    assert!(!output.contains(KDIG_BAD_TSIG), "{output}");
    let Some((_, damaged)) = kdig_exchange(SECRET, offset, true) else {
        return;
    };
    assert!(damaged.contains(KDIG_BAD_TSIG), "{damaged}");
}

// ---------------------------------------------------------------------------
// knotd as the server
// ---------------------------------------------------------------------------

/// Starts knotd serving example.com (SOA, NS, A and `ZONE_TXT_RECORDS` TXT
/// records) on 127.0.0.1, allowing transfers to holders of the test key
/// only. Returns the process and the zone's record count.
fn start_knot_with_key(dir: &TempDir) -> Option<(ServerProcess, usize)> {
    let knotd = require_tool("knotd")?;
    let port = free_port();
    let mut zone = String::from(
        "$ORIGIN example.com.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 900 1209600 300\n@ NS ns\nns A 192.0.2.1\n",
    );
    for index in 0..ZONE_TXT_RECORDS {
        zone.push_str(&format!(
            "txt{index} TXT \"record {index:05} padding padding padding padding padding\"\n"
        ));
    }
    let records = 3 + ZONE_TXT_RECORDS;
    let zone_file = dir.write("example.com.zone", zone);
    let sections = format!(
        r#"key:
  - id: {KEY_NAME}
    algorithm: {ALGORITHM}
    secret: {SECRET}

acl:
  - id: transfer-with-key
    key: {KEY_NAME}
    action: transfer

zone:
  - domain: example.com.
    file: "{zone_file}"
    storage: "{storage}"
    semantic-checks: off
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
    dnssec-signing: off
    acl: transfer-with-key
"#,
        storage = common::knot_storage(dir.path()).display(),
        zone_file = zone_file.display(),
    );
    let mut server = common::spawn_knot("knot", knotd, dir.path(), port, &sections);
    server.wait_ready("example.com.", true);
    Some((server, records))
}

/// An AXFR query for example.com, unsigned.
fn axfr_query() -> Vec<u8> {
    let mut query = random_id().to_be_bytes().to_vec();
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    query.extend_from_slice(b"\x07example\x03com\x00\x00\xFC\x00\x01");
    query
}

/// One length-prefixed message from a TCP stream.
fn read_tcp_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// Sends an AXFR signed with `key` and reads messages until `records`
/// answer records arrived (the zone plus the closing SOA) or a message
/// fails verification. Returns (messages, verifier result of each).
fn signed_axfr(
    server: &ServerProcess,
    key: &Key,
    records: usize,
) -> (Vec<Vec<u8>>, Vec<Result<usize, String>>, ResponseVerifier) {
    let mut query = axfr_query();
    let request_mac = tsig::sign_request(&mut query, key, now_unix());
    let mut verifier = ResponseVerifier::new(key.clone(), request_mac);
    let mut stream = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    stream.write_all(&framed).unwrap();
    let (mut messages, mut results) = (Vec::new(), Vec::new());
    let mut answers = 0;
    // Bounded: a zone of this size never takes anywhere near 1000 messages.
    for _ in 0..1000 {
        let message = read_tcp_message(&mut stream)
            .unwrap_or_else(|e| panic!("AXFR stream ended early: {e}\n{}", server.output()));
        answers += usize::from(u16::from_be_bytes([message[6], message[7]]));
        let result = verifier.verify(&message, now_unix());
        let failed = result.is_err();
        messages.push(message);
        results.push(result);
        if failed || answers >= records {
            break;
        }
    }
    (messages, results, verifier)
}

#[test]
fn knot_axfr_stream_verifies_message_by_message() {
    let dir = TempDir::new("tsig-knot");
    let Some((server, zone_records)) = start_knot_with_key(&dir) else {
        return;
    };
    let records = zone_records + 1; // AXFR repeats the SOA at the end
    let (messages, results, verifier) = signed_axfr(&server, &key(), records);
    for (index, (message, result)) in messages.iter().zip(&results).enumerate() {
        let length = result
            .as_ref()
            .unwrap_or_else(|e| panic!("message {index} of {}: {e}", messages.len()));
        assert!(*length <= message.len());
        assert_eq!(message[3] & 0x0F, 0, "rcode of message {index}");
    }
    verifier.finish().unwrap();
    assert!(
        messages.len() > 1,
        "want a multi-message stream; got {} message(s)",
        messages.len()
    );
    let answers: usize = messages
        .iter()
        .map(|m| usize::from(u16::from_be_bytes([m[6], m[7]])))
        .sum();
    assert_eq!(answers, records);
    let signed = messages
        .iter()
        .filter(|m| tsig::unsigned_len(m).is_some())
        .count();
    eprintln!(
        "AXFR from knotd: {} messages, {signed} signed, {answers} records",
        messages.len()
    );
}

#[test]
fn knot_single_signed_answer_over_udp() {
    let dir = TempDir::new("tsig-knot-udp");
    let Some((server, _)) = start_knot_with_key(&dir) else {
        return;
    };
    let mut query = axfr_query();
    let qtype_low = query.len() - 3;
    query[qtype_low] = 6; // SOA instead of AXFR
    let request_mac = tsig::sign_request(&mut query, &key(), now_unix());
    let reply = exchange_udp(server.addr, &query).expect("SOA reply from knotd");
    let mut verifier = ResponseVerifier::new(key(), request_mac);
    let length = verifier.verify(&reply, now_unix()).unwrap();
    verifier.finish().unwrap();
    assert!(length < reply.len());
    assert_eq!(reply[3] & 0x0F, 0, "rcode");
}

#[test]
fn knot_refuses_wrong_secret_with_badsig() {
    let dir = TempDir::new("tsig-knot-bad");
    let Some((server, zone_records)) = start_knot_with_key(&dir) else {
        return;
    };
    let wrong = Key::new(KEY_NAME, ALGORITHM, WRONG_SECRET).unwrap();
    let (messages, results, verifier) = signed_axfr(&server, &wrong, zone_records + 1);
    assert_eq!(messages.len(), 1, "one error answer, no stream");
    assert_eq!(messages[0][3] & 0x0F, tsig::NOTAUTH, "rcode");
    let error = results[0].as_ref().unwrap_err();
    assert!(error.contains("BADSIG"), "{error}");
    assert!(verifier.finish().is_err());
}
