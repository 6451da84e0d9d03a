//! NOTIFY (RFC 1996), both ways. Out: when a zone gets a new serial, every
//! single address in its `transfer { to … }` is told, over UDP, retried
//! with backoff until it answers. In: a secondary zone's primaries tell us
//! of a new serial; the NOTIFY is answered at once (from the worker that
//! received it) and the zone's refresh thread is woken.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use crate::respond::rcode;
use crate::slowpath::xfr_out::{describe_tsig_failure, error_reply, now_unix, without_tsig};
use crate::slowpath::zones::{self, Notify, ZoneStore};
use crate::tsig::{self, RequestCheck};
use crate::wire::message::{self, Header, MessageWriter};
use crate::wire::name;
use crate::wire::rtype::{self, CLASS_IN};

pub const OPCODE_NOTIFY: u8 = 4;
/// Waits before each retry; RFC 1996 §3.6 suggests starting at 60 s, but
/// secondaries on a LAN answer in milliseconds, and a lost first packet
/// should not delay replication by a minute.
const RETRY_WAITS_MS: [u64; 5] = [1000, 2000, 4000, 8000, 16000];

/// Sends each NOTIFY on its own thread (they wait on timeouts).
pub fn send_all(notifies: Vec<Notify>, store: &Arc<ZoneStore>) {
    for notify in notifies {
        let store = Arc::clone(store);
        let spawned =
            std::thread::Builder::new()
                .name("notify".into())
                .spawn(move || match send_one(&notify) {
                    Ok(tries) => {
                        zones::count(&store.counters.notifies_sent);
                        eprintln!(
                            "ringdns: NOTIFY {} serial {} to {}: acknowledged (try {tries})",
                            notify.origin_text, notify.serial, notify.to
                        );
                    }
                    Err(reason) => {
                        zones::count(&store.counters.notifies_failed);
                        eprintln!(
                            "ringdns: NOTIFY {} serial {} to {} failed: {reason}",
                            notify.origin_text, notify.serial, notify.to
                        );
                    }
                });
        if let Err(error) = spawned {
            eprintln!("ringdns: cannot start a NOTIFY thread: {error}");
        }
    }
}

/// A message ID nobody on the path can guess cheaply.
pub fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let filled = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if filled != 2 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.subsec_nanos());
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_be_bytes(bytes)
}

/// Sends one NOTIFY until it is answered; returns on which try.
fn send_one(notify: &Notify) -> Result<usize, String> {
    let local: SocketAddr = if notify.to.is_ipv4() {
        "0.0.0.0:0".parse().map_err(|_| "address")?
    } else {
        "[::]:0".parse().map_err(|_| "address")?
    };
    // Not connected: an ICMP "port unreachable" from a secondary that is
    // down must not cut the retries short.
    let socket = UdpSocket::bind(local).map_err(|error| error.to_string())?;
    let id = random_id();
    let flags = (u16::from(OPCODE_NOTIFY) << 11) | 0x0400; // AA
    let mut writer = MessageWriter::new(id, flags, 512);
    writer.push_question(&notify.origin, rtype::SOA, CLASS_IN);
    let mut request = writer.finish();
    let mut verifier = notify.key.as_ref().map(|key| {
        let mac = tsig::sign_request(&mut request, key, now_unix());
        tsig::ResponseVerifier::new(key.clone(), mac)
    });
    let mut buffer = [0u8; 4096];
    for (try_index, wait) in RETRY_WAITS_MS.iter().enumerate() {
        socket
            .send_to(&request, notify.to)
            .map_err(|error| format!("send: {error}"))?;
        let deadline = std::time::Instant::now() + Duration::from_millis(*wait);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|error| error.to_string())?;
            let Ok((length, from)) = socket.recv_from(&mut buffer) else {
                break; // timed out: send again
            };
            if from != notify.to {
                continue;
            }
            let reply = &buffer[..length];
            let Some(header) = Header::read(reply) else {
                continue;
            };
            if header.id != id || !header.is_response() || header.opcode() != OPCODE_NOTIFY {
                continue; // not the answer to this NOTIFY
            }
            if let Some(verifier) = &mut verifier {
                verifier.verify(reply, now_unix())?;
            }
            return match header.rcode() {
                rcode::NOERROR => Ok(try_index + 1),
                code => Err(format!("answered with rcode {code}")),
            };
        }
    }
    Err(format!("no answer after {} tries", RETRY_WAITS_MS.len()))
}

/// NOTIFY lines a second at most; the rest are counted and reported with
/// the next line. NOTIFY arrives on the workers, and a spoofed flood must
/// not turn into a write to standard error per packet.
const NOTIFY_LINES_PER_SECOND: u64 = 10;

fn log_limited(line: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SECOND: AtomicU64 = AtomicU64::new(0);
    static LINES: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = now_unix();
    if SECOND.swap(now, Ordering::Relaxed) != now {
        LINES.store(0, Ordering::Relaxed);
    }
    if LINES.fetch_add(1, Ordering::Relaxed) >= NOTIFY_LINES_PER_SECOND {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    match SUPPRESSED.swap(0, Ordering::Relaxed) {
        0 => eprintln!("{line}"),
        suppressed => eprintln!("{line} ({suppressed} earlier NOTIFY lines not shown)"),
    }
}

/// True when `packet` is a NOTIFY request (not a response).
pub fn is_notify(packet: &[u8]) -> bool {
    Header::read(packet)
        .is_some_and(|header| header.opcode() == OPCODE_NOTIFY && !header.is_response())
}

/// Answers a NOTIFY from `peer`: NOERROR when it names a secondary zone of
/// ours and comes from one of its primaries (signed with the primary's
/// key when one is set), REFUSED or NOTAUTH otherwise. An accepted NOTIFY
/// wakes the zone's refresh thread. Runs on a worker for UDP, so it takes
/// no lock: the primaries and keys it reads never change while serving.
pub fn answer(packet: &[u8], peer: SocketAddr, store: &ZoneStore) -> Option<Vec<u8>> {
    let header = Header::read(packet).filter(|header| !header.is_response())?;
    let now = now_unix();
    zones::count(&store.counters.notifies_received);
    let keys = store.keys();
    let (signed_len, signer) = match tsig::check_request(packet, &keys, now) {
        RequestCheck::Unsigned => (packet.len(), None),
        RequestCheck::Valid { key, mac, .. } => (
            tsig::unsigned_len(packet).unwrap_or(packet.len()),
            Some((keys.get(key)?.clone(), mac)),
        ),
        RequestCheck::Invalid(failure) => {
            zones::count(&store.counters.notifies_refused);
            log_limited(&format!(
                "ringdns: NOTIFY from {peer} refused: {}",
                describe_tsig_failure(&failure)
            ));
            let mut reply = error_reply(packet, &header, tsig::NOTAUTH);
            tsig::append_error(&mut reply, &failure, &keys, now);
            return Some(reply);
        }
        RequestCheck::Malformed => return Some(error_reply(packet, &header, rcode::FORMERR)),
    };
    let verdict = without_tsig(packet, signed_len)
        .as_deref()
        .and_then(message::read_message)
        .and_then(|read| read.question)
        .ok_or((rcode::FORMERR, "no question".to_string()))
        .and_then(|(zone, _, _)| {
            let key_name = signer.as_ref().map(|(key, _)| key.name.as_slice());
            store.accept_notify(&zone, peer, key_name).map(|()| zone)
        });
    let code = match &verdict {
        Ok(zone) => {
            log_limited(&format!(
                "ringdns: NOTIFY for {} from {peer}: checking the primary",
                name::to_text(zone)
            ));
            rcode::NOERROR
        }
        Err((code, reason)) => {
            zones::count(&store.counters.notifies_refused);
            log_limited(&format!("ringdns: NOTIFY from {peer} refused: {reason}"));
            *code
        }
    };
    let mut reply = error_reply(packet, &header, code);
    if let Some((key, mac)) = signer {
        tsig::sign_response(&mut reply, &key, &mac, now);
    }
    Some(reply)
}
