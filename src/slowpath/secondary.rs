//! Secondary zones: one thread per zone keeps a copy of the primary's zone.
//! It checks the primary's SOA on the SOA's refresh timer (and at once on
//! NOTIFY), pulls IXFR (RFC 1995) or AXFR (RFC 5936) over TCP when the
//! serial moved, checks the result, writes it to disk atomically and only
//! then publishes it. On failure it retries (backing off, within the SOA's
//! retry and refresh), and when the SOA's expire time passes without a
//! successful check it stops serving the zone (SERVFAIL), as RFC 1035
//! §4.3.5 asks. A restarted server serves the copy on disk at once.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use crate::config::SecondaryZones;
use crate::respond::rcode;
use crate::slowpath::notify::random_id;
use crate::slowpath::xfr_out::{now_unix, without_tsig};
use crate::slowpath::zones::{self, Source, ZoneStore};
use crate::tsig;
use crate::wire::message::{self, Header, MessageWriter, ReadRecord};
use crate::wire::name;
use crate::wire::rtype::{self, CLASS_IN};
use crate::zone::{self, Record, Zone, ZoneDiff};

/// A TCP connection to a primary must be made within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A primary that sends nothing for this long mid-transfer has stalled.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole transfer must finish within this.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(600);
/// Waits for an SOA answer over UDP, per try.
const SOA_TIMEOUTS_MS: [u64; 3] = [1000, 2000, 3000];
/// Before a zone has ever been loaded there are no SOA timers: retry this
/// often.
const RETRY_WITHOUT_ZONE: u32 = 10;

/// Starts one refresh thread per secondary zone of the store.
pub fn start(store: &Arc<ZoneStore>, directory: &Path) {
    let secondaries: Vec<(Vec<u8>, String, SecondaryZones)> = store
        .lock()
        .iter()
        .filter_map(|served| match &served.source {
            Source::Secondary(config) => Some((
                served.origin.clone(),
                served.origin_text.clone(),
                config.clone(),
            )),
            Source::File(_) => None,
        })
        .collect();
    for (origin, origin_text, config) in secondaries {
        start_zone(store, directory, origin, origin_text, config);
    }
}

/// Starts the refresh thread of one secondary zone. It runs until the
/// store drops the zone's waker (the zone left the Corefile, or its
/// settings changed and a new thread took over).
pub fn start_zone(
    store: &Arc<ZoneStore>,
    directory: &Path,
    origin: Vec<u8>,
    origin_text: String,
    config: SecondaryZones,
) {
    // One pending wake-up is enough: NOTIFYs that arrive while one is
    // pending coalesce into it.
    let (waker, woken) = mpsc::sync_channel(1);
    store.add_refresh_waker(origin.clone(), waker);
    let zone = SecondaryZone {
        origin,
        snapshot: zones::storage_file(directory, &origin_text, "zone"),
        timers: zones::storage_file(directory, &origin_text, "timers"),
        origin_text,
        config,
        store: Arc::clone(store),
    };
    let spawned = std::thread::Builder::new()
        .name("secondary".into())
        .spawn(move || zone.run(woken));
    if let Err(error) = spawned {
        eprintln!("ringdns: cannot start a secondary zone thread: {error}");
    }
}

/// A secondary zone's copy on disk, read at start-up: the zone, and when
/// it was last confirmed current with a primary (unix seconds).
pub fn load_persisted(directory: &Path, origin: &[u8], origin_text: &str) -> Option<(Zone, u64)> {
    let snapshot = zones::storage_file(directory, origin_text, "zone");
    let bytes = match std::fs::read(&snapshot) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
        Err(error) => {
            eprintln!(
                "ringdns: warning: cannot read {}: {error}",
                snapshot.display()
            );
            return None;
        }
    };
    let Some(zone) = decode_snapshot(origin, &bytes) else {
        eprintln!(
            "ringdns: warning: {} is damaged; transferring {origin_text} afresh",
            snapshot.display()
        );
        return None;
    };
    let timers = zones::storage_file(directory, origin_text, "timers");
    let refreshed_at = std::fs::read_to_string(timers)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    Some((zone, refreshed_at))
}

/// True when a zone last confirmed at `refreshed_at` is past its SOA
/// expire time (clamped by the config) at `now`.
pub fn is_expired(zone: &Zone, config: &SecondaryZones, refreshed_at: u64, now: u64) -> bool {
    let expire = zone::soa_fields_of(zone).map_or(0, |soa| soa.expire.min(config.expire_max));
    now >= refreshed_at.saturating_add(u64::from(expire))
}

struct SecondaryZone {
    origin: Vec<u8>,
    origin_text: String,
    config: SecondaryZones,
    snapshot: PathBuf,
    timers: PathBuf,
    store: Arc<ZoneStore>,
}

/// What one refresh found.
enum Refreshed {
    UpToDate(u32),
    Updated { serial: u32, how: String },
}

impl SecondaryZone {
    fn current(&self) -> Option<Arc<Zone>> {
        self.store
            .lock()
            .iter()
            .find(|served| served.origin == self.origin)
            .and_then(|served| served.zone.clone())
    }

    fn refreshed_at(&self) -> u64 {
        std::fs::read_to_string(&self.timers)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// The SOA timers, clamped: (refresh, retry, expire) in seconds.
    fn timers_of(&self, zone: Option<&Zone>) -> (u32, u32, u32) {
        let Some(soa) = zone.and_then(zone::soa_fields_of) else {
            return (RETRY_WITHOUT_ZONE, RETRY_WITHOUT_ZONE, u32::MAX);
        };
        let clamp = |value: u32| value.clamp(self.config.refresh_min, self.config.refresh_max);
        (
            clamp(soa.refresh),
            clamp(soa.retry),
            soa.expire.min(self.config.expire_max),
        )
    }

    fn run(self, woken: Receiver<()>) {
        let mut refreshed_at = self.refreshed_at();
        let mut failures: u32 = 0;
        // The first check happens at once: a persisted copy may be stale.
        let mut next_check = Instant::now();
        loop {
            let wait = next_check.saturating_duration_since(Instant::now());
            match woken.recv_timeout(wait) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // The store let go of this zone (Corefile reload).
                    return;
                }
            }
            let current = self.current();
            let result = self.refresh(current.as_deref());
            let now = now_unix();
            match result {
                Ok(refreshed) => {
                    failures = 0;
                    refreshed_at = now;
                    self.store.set_refreshed(&self.origin, now);
                    if let Err(error) = write_atomically(&self.timers, now.to_string().as_bytes()) {
                        eprintln!(
                            "ringdns: warning: cannot write {}: {error}",
                            self.timers.display()
                        );
                    }
                    match refreshed {
                        Refreshed::UpToDate(serial) => eprintln!(
                            "ringdns: secondary {}: serial {serial} is current",
                            self.origin_text
                        ),
                        Refreshed::Updated { serial, how } => eprintln!(
                            "ringdns: secondary {}: now serving serial {serial} ({how})",
                            self.origin_text
                        ),
                    }
                }
                Err(reason) => {
                    failures = failures.saturating_add(1);
                    eprintln!(
                        "ringdns: secondary {}: refresh failed: {reason}",
                        self.origin_text
                    );
                }
            }
            let current = self.current();
            let (refresh, retry, expire) = self.timers_of(current.as_deref());
            if current.is_some() && now >= refreshed_at.saturating_add(u64::from(expire)) {
                self.expire();
            }
            let mut seconds = u64::from(if failures == 0 {
                refresh
            } else {
                // Back off from the SOA's retry, doubling, up to refresh.
                let backoff = retry.saturating_mul(1 << failures.min(6).saturating_sub(1));
                backoff.min(refresh.max(retry))
            });
            if current.is_some() {
                // Try once more right at the expire time, so the zone never
                // outlives it by a whole retry interval.
                let expires_at = refreshed_at.saturating_add(u64::from(expire));
                seconds = seconds.min(expires_at.saturating_sub(now).max(1));
            }
            next_check = Instant::now() + Duration::from_secs(seconds);
        }
    }

    fn expire(&self) {
        eprintln!(
            "ringdns: secondary {}: expired (no primary confirmed it within the SOA expire time); answering SERVFAIL",
            self.origin_text
        );
        let mut zones = self.store.lock();
        if let Some(served) = zones.iter_mut().find(|served| served.origin == self.origin) {
            served.zone = None;
        }
        self.store.publish(&zones);
    }

    /// Asks each primary in turn until one answers.
    fn refresh(&self, current: Option<&Zone>) -> Result<Refreshed, String> {
        let mut reasons = Vec::new();
        for (primary, key_name) in &self.config.from {
            let key = match key_name {
                Some(key_name) => match self.store.key(key_name) {
                    Some(key) => Some(key.clone()),
                    None => {
                        reasons.push(format!("{primary}: no tsig secret for key {key_name}"));
                        continue;
                    }
                },
                None => None,
            };
            match self.refresh_from(*primary, key.as_ref(), current) {
                Ok(refreshed) => return Ok(refreshed),
                Err(reason) => {
                    // Logged and counted per primary, so a bad primary shows
                    // even when the next one answers.
                    zones::count(&self.store.counters.transfers_in_failed);
                    eprintln!(
                        "ringdns: secondary {}: primary {primary} failed: {reason}",
                        self.origin_text
                    );
                    reasons.push(format!("{primary}: {reason}"));
                }
            }
        }
        Err(reasons.join("; "))
    }

    fn refresh_from(
        &self,
        primary: SocketAddr,
        key: Option<&tsig::Key>,
        current: Option<&Zone>,
    ) -> Result<Refreshed, String> {
        let serial = soa_serial(primary, &self.origin, key)?;
        if let Some(current) = current {
            let ours = current.serial();
            if !zone::serial_is_newer(serial, ours) {
                if serial != ours {
                    eprintln!(
                        "ringdns: secondary {}: primary {primary} has serial {serial}, older than ours ({ours}); keeping ours",
                        self.origin_text
                    );
                }
                return Ok(Refreshed::UpToDate(ours));
            }
        }
        let _running = zones::TransferRunning::new(&self.store);
        let transfer = transfer_in(primary, &self.origin, key, current)?;

        let (new_zone, diffs, how) = match transfer {
            Transfer::UpToDate => {
                return Ok(Refreshed::UpToDate(current.map_or(0, Zone::serial)));
            }
            Transfer::Full(records) => {
                let kind = if current.is_some() {
                    "AXFR fallback"
                } else {
                    "AXFR"
                };
                (
                    zone::from_records(&self.origin, records),
                    None,
                    format!("{kind} from {primary}"),
                )
            }
            Transfer::Incremental(diffs) => {
                let Some(current) = current else {
                    return Err("an incremental answer to a full request".into());
                };
                let zone = zone::apply_all(current, &diffs)
                    .map_err(|error| format!("IXFR does not apply: {error}"))?;
                (zone, Some(diffs), format!("IXFR from {primary}"))
            }
        };
        check_transferred(&new_zone, &self.origin, current)?;
        let serial = new_zone.serial();
        // On disk first: a crash after this serves the new copy. A disk
        // that refuses the write does not stop the new copy being served
        // (as BIND keeps serving a zone it cannot dump); it is said loudly,
        // since a restart would then serve the older copy on disk.
        if let Err(error) = write_atomically(&self.snapshot, &encode_snapshot(&new_zone)) {
            eprintln!(
                "ringdns: error: secondary {}: cannot write {}: {error}; serving the new copy from memory only",
                self.origin_text,
                self.snapshot.display()
            );
        }
        let index = usize::from(diffs.is_some());
        let notifies = {
            let mut zones = self.store.lock();
            let Some(position) = zones.iter().position(|served| served.origin == self.origin)
            else {
                return Err("the zone is no longer configured".into());
            };
            let notifies =
                self.store
                    .replace(&mut zones, position, new_zone, diffs.unwrap_or_default());
            // A transfer confirms the copy: its expiry counts from now in
            // the table published next (EDNS EXPIRE, metrics).
            zones[position].refreshed_at = Some(now_unix());
            self.store.publish(&zones);
            notifies
        };
        zones::count(&self.store.counters.transfers_in[index]);
        crate::slowpath::notify::send_all(notifies, &self.store);
        Ok(Refreshed::Updated { serial, how })
    }
}

/// A transferred zone must have its SOA at the apex, NS records there,
/// only names inside it, and a newer serial than the copy it replaces.
fn check_transferred(new: &Zone, origin: &[u8], current: Option<&Zone>) -> Result<(), String> {
    if new.rrset(origin, rtype::SOA).is_none() {
        return Err("the transferred zone has no SOA".into());
    }
    if new.rrset(origin, rtype::NS).is_none() {
        return Err("the transferred zone has no NS records at its apex".into());
    }
    if let Some(outside) = new
        .nodes
        .keys()
        .find(|owner| !name::is_within(owner, origin))
    {
        return Err(format!(
            "the transfer holds {}, outside the zone",
            name::to_text(outside)
        ));
    }
    if let Some(current) = current
        && !zone::serial_is_newer(new.serial(), current.serial())
    {
        return Err(format!(
            "the transfer's serial {} is not newer than ours ({})",
            new.serial(),
            current.serial()
        ));
    }
    Ok(())
}

/// The primary's SOA serial, over UDP (TCP when the answer is truncated).
fn soa_serial(primary: SocketAddr, origin: &[u8], key: Option<&tsig::Key>) -> Result<u32, String> {
    let id = random_id();
    let mut writer = MessageWriter::new(id, 0, 512);
    writer.push_question(origin, rtype::SOA, CLASS_IN);
    let mut request = writer.finish();
    let mut verifier = key.map(|key| {
        let mac = tsig::sign_request(&mut request, key, now_unix());
        tsig::ResponseVerifier::new(key.clone(), mac)
    });
    let local = if primary.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(local).map_err(|error| error.to_string())?;
    socket.connect(primary).map_err(|error| error.to_string())?;
    let mut buffer = vec![0u8; 65535];
    for timeout in SOA_TIMEOUTS_MS {
        socket.send(&request).map_err(|error| error.to_string())?;
        let deadline = Instant::now() + Duration::from_millis(timeout);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            socket
                .set_read_timeout(Some(left))
                .map_err(|error| error.to_string())?;
            let Ok(length) = socket.recv(&mut buffer) else {
                break;
            };
            let reply = &buffer[..length];
            let Some(header) = Header::read(reply) else {
                continue;
            };
            if header.id != id || !header.is_response() {
                continue;
            }
            if header.flags & 0x0200 != 0 {
                return soa_serial_tcp(primary, &request, verifier);
            }
            let unsigned = match &mut verifier {
                Some(verifier) => verifier.verify(reply, now_unix())?,
                None => reply.len(),
            };
            return serial_from_answer(
                &without_tsig(reply, unsigned).ok_or("short answer")?,
                origin,
            );
        }
    }
    Err("no answer to the SOA query".into())
}

fn soa_serial_tcp(
    primary: SocketAddr,
    request: &[u8],
    mut verifier: Option<tsig::ResponseVerifier>,
) -> Result<u32, String> {
    let mut stream = connect(primary)?;
    write_message(&mut stream, request)?;
    let reply = read_message(&mut stream, Instant::now() + READ_TIMEOUT)?;
    let unsigned = match &mut verifier {
        Some(verifier) => verifier.verify(&reply, now_unix())?,
        None => reply.len(),
    };
    let question = message::read_message(request)
        .and_then(|read| read.question)
        .ok_or("bad request")?;
    serial_from_answer(
        &without_tsig(&reply, unsigned).ok_or("short answer")?,
        &question.0,
    )
}

fn serial_from_answer(reply: &[u8], origin: &[u8]) -> Result<u32, String> {
    let header = Header::read(reply).ok_or("short answer")?;
    if header.rcode() != rcode::NOERROR {
        return Err(format!("SOA query answered with rcode {}", header.rcode()));
    }
    if header.flags & 0x0400 == 0 {
        return Err("the SOA answer is not authoritative".into());
    }
    let read = message::read_message(reply).ok_or("malformed SOA answer")?;
    read.answer
        .iter()
        .find(|record| record.rtype == rtype::SOA && record.owner == origin)
        .and_then(|record| zone::soa_fields(&record.rdata))
        .map(|fields| fields.serial)
        .ok_or_else(|| "no SOA in the answer".into())
}

fn connect(primary: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&primary, CONNECT_TIMEOUT)
        .map_err(|error| format!("cannot connect over TCP: {error}"))?;
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(READ_TIMEOUT)))
        .map_err(|error| error.to_string())?;
    Ok(stream)
}

fn write_message(stream: &mut TcpStream, message: &[u8]) -> Result<(), String> {
    let mut framed = Vec::with_capacity(2 + message.len());
    framed.extend_from_slice(&(message.len() as u16).to_be_bytes());
    framed.extend_from_slice(message);
    stream
        .write_all(&framed)
        .map_err(|error| format!("send: {error}"))
}

fn read_message(stream: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>, String> {
    if Instant::now() > deadline {
        return Err("the transfer took too long".into());
    }
    let mut length = [0u8; 2];
    stream
        .read_exact(&mut length)
        .map_err(|error| format!("read: {error}"))?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream
        .read_exact(&mut message)
        .map_err(|error| format!("read: {error}"))?;
    Ok(message)
}

/// What a transfer brought.
pub enum Transfer {
    UpToDate,
    Full(Vec<Record>),
    Incremental(Vec<ZoneDiff>),
}

/// Where the reading of a transfer's records stands.
enum Phase {
    /// Expecting the first SOA.
    Start,
    /// Have the first SOA (serial given); the second record decides.
    Second(Record),
    /// AXFR form: records until the SOA comes again.
    Full(Vec<Record>),
    /// IXFR: removing records of the current difference.
    Removing(ZoneDiff),
    /// IXFR: adding records of the current difference.
    Adding(ZoneDiff),
}

/// Pulls the zone over TCP: IXFR from `current`'s serial when there is a
/// copy, else AXFR; an IXFR that the primary refuses or cannot answer is
/// retried as AXFR.
fn transfer_in(
    primary: SocketAddr,
    origin: &[u8],
    key: Option<&tsig::Key>,
    current: Option<&Zone>,
) -> Result<Transfer, String> {
    if let Some(current) = current {
        match transfer_once(primary, origin, key, Some(current)) {
            Ok(transfer) => return Ok(transfer),
            Err(reason) => eprintln!(
                "ringdns: secondary {}: IXFR from {primary} failed ({reason}); trying AXFR",
                name::to_text(origin)
            ),
        }
    }
    transfer_once(primary, origin, key, None)
}

fn transfer_once(
    primary: SocketAddr,
    origin: &[u8],
    key: Option<&tsig::Key>,
    current: Option<&Zone>,
) -> Result<Transfer, String> {
    let id = random_id();
    let mut writer = MessageWriter::new(id, 0, 65535);
    let qtype = if current.is_some() {
        rtype::IXFR
    } else {
        rtype::AXFR
    };
    writer.push_question(origin, qtype, CLASS_IN);
    let our_serial = current.map(Zone::serial);
    if let Some(current) = current {
        let soa = current
            .rrset(origin, rtype::SOA)
            .and_then(|rrset| Some((rrset.ttl, rrset.rdatas.first()?.clone())))
            .ok_or("our copy has no SOA")?;
        writer.push_record(1, origin, rtype::SOA, CLASS_IN, soa.0, &soa.1);
    }
    let mut request = writer.finish();
    let mut verifier = key.map(|key| {
        let mac = tsig::sign_request(&mut request, key, now_unix());
        tsig::ResponseVerifier::new(key.clone(), mac)
    });
    let mut stream = connect(primary)?;
    write_message(&mut stream, &request)?;
    let deadline = Instant::now() + TRANSFER_DEADLINE;
    let mut parser = TransferParser::new(origin, id, qtype, our_serial);
    loop {
        let reply = read_message(&mut stream, deadline)?;
        let unsigned = match &mut verifier {
            Some(verifier) => verifier.verify(&reply, now_unix())?,
            None => reply.len(),
        };
        let message = without_tsig(&reply, unsigned).ok_or("short message")?;
        if let Some(transfer) = parser.feed(&message)? {
            // The RFC lets intermediate messages go unsigned; the last
            // must be signed.
            if let Some(verifier) = &verifier {
                verifier.finish()?;
            }
            return Ok(transfer);
        }
    }
}

/// Reads the messages of an AXFR or IXFR answer one by one (TSIG already
/// checked and removed) and says when the transfer is complete. Pure, so
/// the fuzzer can feed it anything.
pub struct TransferParser {
    origin: Vec<u8>,
    id: u16,
    qtype: u16,
    our_serial: Option<u32>,
    phase: Phase,
    new_serial: u32,
    diffs: Vec<ZoneDiff>,
    first_message: bool,
}

impl TransferParser {
    /// For the answer to request `id` of type `qtype` (AXFR or IXFR) for
    /// zone `origin`, when we hold `our_serial`.
    pub fn new(origin: &[u8], id: u16, qtype: u16, our_serial: Option<u32>) -> TransferParser {
        TransferParser {
            origin: origin.to_vec(),
            id,
            qtype,
            our_serial,
            phase: Phase::Start,
            new_serial: 0,
            diffs: Vec::new(),
            first_message: true,
        }
    }

    /// Takes the next message; `Ok(Some(..))` when the transfer is
    /// complete, `Ok(None)` when more messages must follow.
    pub fn feed(&mut self, message: &[u8]) -> Result<Option<Transfer>, String> {
        let header = Header::read(message).ok_or("short message")?;
        if header.id != self.id || !header.is_response() {
            return Err("a message that does not answer our request".into());
        }
        if header.rcode() != rcode::NOERROR {
            return Err(format!(
                "{} answered with rcode {}",
                rtype::to_text(self.qtype),
                header.rcode()
            ));
        }
        let read = message::read_message(message).ok_or("malformed message")?;
        let first_message = std::mem::replace(&mut self.first_message, false);
        let record_count = read.answer.len();
        for ReadRecord {
            owner,
            rtype: record_type,
            class,
            ttl,
            rdata,
        } in read.answer
        {
            if class != CLASS_IN {
                continue;
            }
            let record = Record {
                owner,
                rtype: record_type,
                ttl,
                rdata,
            };
            if let Some(transfer) = self.record(record)? {
                return Ok(Some(transfer));
            }
        }
        // One SOA alone in the first message of an IXFR answer, not newer
        // than ours: we are current (RFC 1995 §4).
        if first_message
            && record_count == 1
            && self.qtype == rtype::IXFR
            && let Phase::Second(first) = &self.phase
            && let Some(ours) = self.our_serial
        {
            let serial = zone::soa_fields(&first.rdata).map_or(0, |fields| fields.serial);
            if !zone::serial_is_newer(serial, ours) {
                return Ok(Some(Transfer::UpToDate));
            }
        }
        Ok(None)
    }

    /// Moves the state on by one record.
    fn record(&mut self, record: Record) -> Result<Option<Transfer>, String> {
        let is_soa = record.rtype == rtype::SOA && record.owner == self.origin;
        let serial = zone::soa_fields(&record.rdata).map_or(0, |fields| fields.serial);
        let phase = std::mem::replace(&mut self.phase, Phase::Start);
        self.phase = match phase {
            Phase::Start => {
                if !is_soa {
                    return Err("the transfer does not start with the SOA".into());
                }
                self.new_serial = serial;
                Phase::Second(record)
            }
            Phase::Second(first) => {
                if is_soa && Some(serial) == self.our_serial && serial != self.new_serial {
                    Phase::Removing(ZoneDiff {
                        old_soa: record,
                        removed: Vec::new(),
                        new_soa: first,
                        added: Vec::new(),
                    })
                } else if is_soa {
                    // A zone of only an SOA cannot be served.
                    return Err("the transfer holds nothing but the SOA".into());
                } else {
                    Phase::Full(vec![first, record])
                }
            }
            Phase::Full(mut all) => {
                if is_soa {
                    return Ok(Some(Transfer::Full(all)));
                }
                all.push(record);
                Phase::Full(all)
            }
            Phase::Removing(mut diff) => {
                if is_soa {
                    diff.new_soa = record;
                    Phase::Adding(diff)
                } else {
                    diff.removed.push(record);
                    Phase::Removing(diff)
                }
            }
            Phase::Adding(mut diff) => {
                if is_soa {
                    let done = diff.to_serial() == self.new_serial;
                    self.diffs.push(diff);
                    if done {
                        return Ok(Some(Transfer::Incremental(std::mem::take(&mut self.diffs))));
                    }
                    Phase::Removing(ZoneDiff {
                        old_soa: record.clone(),
                        removed: Vec::new(),
                        new_soa: record,
                        added: Vec::new(),
                    })
                } else {
                    diff.added.push(record);
                    Phase::Adding(diff)
                }
            }
        };
        Ok(None)
    }
}

const SNAPSHOT_MAGIC: &[u8; 8] = b"RINGZON1";

/// A zone as bytes: magic, record count, records (owner, type, TTL, RDATA,
/// each length-prefixed), then an FNV-1a checksum of all before it, so a
/// torn or damaged file is recognised.
fn encode_snapshot(zone: &Zone) -> Vec<u8> {
    let records = zone::records(zone);
    let mut bytes = Vec::new();
    bytes.extend_from_slice(SNAPSHOT_MAGIC);
    bytes.extend_from_slice(&(records.len() as u64).to_be_bytes());
    for record in &records {
        bytes.push(record.owner.len() as u8);
        bytes.extend_from_slice(&record.owner);
        bytes.extend_from_slice(&record.rtype.to_be_bytes());
        bytes.extend_from_slice(&record.ttl.to_be_bytes());
        bytes.extend_from_slice(&(record.rdata.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&record.rdata);
    }
    let checksum = fnv1a(&bytes);
    bytes.extend_from_slice(&checksum.to_be_bytes());
    bytes
}

fn decode_snapshot(origin: &[u8], bytes: &[u8]) -> Option<Zone> {
    let body_len = bytes.len().checked_sub(8)?;
    let (body, checksum) = bytes.split_at(body_len);
    if fnv1a(body).to_be_bytes() != checksum || body.get(..8)? != SNAPSHOT_MAGIC {
        return None;
    }
    let mut at: usize = 8;
    let mut take = |count: usize| {
        let slice = body.get(at..at.checked_add(count)?)?;
        at += count;
        Some(slice)
    };
    let count = u64::from_be_bytes(take(8)?.try_into().ok()?);
    let mut records = Vec::new();
    for _ in 0..count {
        let owner_len = usize::from(*take(1)?.first()?);
        let owner = take(owner_len)?.to_vec();
        let rtype = u16::from_be_bytes(take(2)?.try_into().ok()?);
        let ttl = u32::from_be_bytes(take(4)?.try_into().ok()?);
        let rdata_len = usize::from(u16::from_be_bytes(take(2)?.try_into().ok()?));
        let rdata = take(rdata_len)?.to_vec();
        records.push(Record {
            owner,
            rtype,
            ttl,
            rdata,
        });
    }
    let zone = zone::from_records(origin, records);
    zone.rrset(origin, rtype::SOA)?;
    Some(zone)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Replaces `path` with `bytes` so that a crash at any moment leaves the
/// old file or the new one, never a torn one: write a temporary file,
/// fsync it, rename it over `path`, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(directory)?;
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)?;
    std::fs::File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Zone {
        let origin = name::from_text("example.com").unwrap();
        let mut soa = name::from_text("ns.example.com").unwrap();
        soa.extend_from_slice(&name::from_text("host.example.com").unwrap());
        soa.extend_from_slice(&[
            0, 0, 0, 7, 0, 0, 0, 60, 0, 0, 0, 30, 0, 0, 14, 16, 0, 0, 0, 60,
        ]);
        zone::from_records(
            &origin,
            [
                Record {
                    owner: origin.clone(),
                    rtype: rtype::SOA,
                    ttl: 60,
                    rdata: soa,
                },
                Record {
                    owner: origin.clone(),
                    rtype: rtype::NS,
                    ttl: 60,
                    rdata: name::from_text("ns.example.com").unwrap(),
                },
                Record {
                    owner: name::from_text("ns.example.com").unwrap(),
                    rtype: rtype::A,
                    ttl: 60,
                    rdata: vec![192, 0, 2, 1],
                },
            ],
        )
    }

    #[test]
    fn snapshots_round_trip_and_damage_is_detected() {
        let zone = zone();
        let bytes = encode_snapshot(&zone);
        let decoded = decode_snapshot(&zone.origin, &bytes).unwrap();
        assert_eq!(decoded.nodes, zone.nodes);
        for cut in 0..bytes.len() {
            assert!(decode_snapshot(&zone.origin, &bytes[..cut]).is_none());
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert!(decode_snapshot(&zone.origin, &flipped).is_none());
    }

    fn soa_rdata(serial: u32) -> Vec<u8> {
        let mut rdata = name::from_text("ns.example.com").unwrap();
        rdata.extend_from_slice(&name::from_text("host.example.com").unwrap());
        rdata.extend_from_slice(&serial.to_be_bytes());
        rdata.extend_from_slice(&[0, 0, 0, 60, 0, 0, 0, 30, 0, 0, 14, 16, 0, 0, 0, 60]);
        rdata
    }

    /// One answer message with `records` (owner text, type, rdata).
    fn answer(id: u16, records: &[(&str, u16, Vec<u8>)]) -> Vec<u8> {
        let mut writer = MessageWriter::new(id, 0x8400, 65535);
        for (owner, record_type, rdata) in records {
            let owner = name::from_text(owner).unwrap();
            assert!(writer.push_record(0, &owner, *record_type, CLASS_IN, 60, rdata));
        }
        writer.finish()
    }

    #[test]
    fn an_axfr_over_several_messages_completes_at_the_second_soa() {
        let origin = name::from_text("example.com").unwrap();
        let mut parser = TransferParser::new(&origin, 9, rtype::AXFR, None);
        let first = answer(9, &[("example.com", rtype::SOA, soa_rdata(8))]);
        assert!(parser.feed(&first).unwrap().is_none());
        let ns = name::from_text("ns.example.com").unwrap();
        let second = answer(9, &[("example.com", rtype::NS, ns.clone())]);
        assert!(parser.feed(&second).unwrap().is_none());
        let last = answer(
            9,
            &[
                ("ns.example.com", rtype::A, vec![192, 0, 2, 1]),
                ("example.com", rtype::SOA, soa_rdata(8)),
            ],
        );
        let Some(Transfer::Full(records)) = parser.feed(&last).unwrap() else {
            panic!("the AXFR is complete");
        };
        assert_eq!(records.len(), 3);
        assert!(parser.feed(&answer(10, &[])).is_err(), "wrong ID");
    }

    #[test]
    fn an_ixfr_yields_its_differences_and_a_lone_soa_means_current() {
        let origin = name::from_text("example.com").unwrap();
        let mut parser = TransferParser::new(&origin, 1, rtype::IXFR, Some(7));
        let message = answer(
            1,
            &[
                ("example.com", rtype::SOA, soa_rdata(9)),
                ("example.com", rtype::SOA, soa_rdata(7)),
                ("www.example.com", rtype::A, vec![192, 0, 2, 1]),
                ("example.com", rtype::SOA, soa_rdata(8)),
                ("www.example.com", rtype::A, vec![192, 0, 2, 2]),
                ("example.com", rtype::SOA, soa_rdata(8)),
                ("example.com", rtype::SOA, soa_rdata(9)),
                ("new.example.com", rtype::A, vec![192, 0, 2, 3]),
                ("example.com", rtype::SOA, soa_rdata(9)),
            ],
        );
        let Some(Transfer::Incremental(diffs)) = parser.feed(&message).unwrap() else {
            panic!("the IXFR is complete");
        };
        assert_eq!(diffs.len(), 2);
        assert_eq!((diffs[0].from_serial(), diffs[0].to_serial()), (7, 8));
        assert_eq!((diffs[1].from_serial(), diffs[1].to_serial()), (8, 9));
        assert_eq!(diffs[1].added.len(), 1);

        let mut current = TransferParser::new(&origin, 2, rtype::IXFR, Some(9));
        let lone = answer(2, &[("example.com", rtype::SOA, soa_rdata(9))]);
        assert!(matches!(current.feed(&lone), Ok(Some(Transfer::UpToDate))));
    }

    #[test]
    fn transferred_zones_are_checked() {
        let zone = zone();
        assert!(check_transferred(&zone, &zone.origin, None).is_ok());
        assert!(
            check_transferred(&zone, &zone.origin, Some(&zone)).is_err(),
            "same serial"
        );
        let other = name::from_text("example.net").unwrap();
        assert!(check_transferred(&zone, &other, None).is_err());
    }
}
